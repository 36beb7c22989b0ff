//! The Dockerfile corpus (tests/build-corpus) built by berthd and by Docker, compared.
//!
//! Every case is built by berthd twice (the real `docker build` with the classic builder, and
//! `berth build`) and by a private dockerd 20.10 (`docker build`, DOCKER_BUILDKIT=0), from the
//! same busybox rootfs tar imported into both daemons. The images are compared by their
//! flattened file trees (from `docker save`, whiteouts applied: paths, types, modes, owners,
//! contents, link targets) and their configs (Env, Cmd, Entrypoint, WorkingDir, User,
//! ExposedPorts, Volumes, Labels, Healthcheck, StopSignal, OnBuild); every difference is printed
//! by path. Cases that need BuildKit (heredocs, `COPY --chmod`) have no classic-builder
//! reference: their trees are compared with expected trees written here.
//!
//! The same suite also runs `berth build` against dockerd itself, next to the docker CLI, which
//! checks the CLI (context tarring, .dockerignore, -f, build args, errors and exit codes) against
//! the reference daemon, independently of berthd's builder.
//!
//! RUN needs a network mode in Docker's classic builder: both daemons build with
//! `--network none`. The tests fail (naming the package) when dockerd is missing.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How long one build (or save) may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(180);
const DOCKERD: &str = "/usr/sbin/dockerd";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/build-corpus")
}

fn case_dir(name: &str) -> String {
    corpus().join(name).to_string_lossy().into_owned()
}

/// How a case's result is judged.
#[derive(Debug, Clone, Copy)]
enum Judge {
    /// Same tree and config as Docker's classic builder.
    Docker,
    /// BuildKit-only syntax: the paths the build adds to busybox, as written here.
    Expected(fn() -> Vec<(&'static str, Node)>),
}

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    build_args: &'static [&'static str],
    judge: Judge,
}

/// Every case, in build order (onbuild-child is built FROM onbuild-base's tag).
const CASES: &[Case] = &[
    Case {
        name: "multistage",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "args-env",
        build_args: &["OVERRIDE=from-cli", "BASE_TAG=latest"],
        judge: Judge::Docker,
    },
    Case {
        name: "copy-chown",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "copy-chmod",
        build_args: &[],
        judge: Judge::Expected(expected_copy_chmod),
    },
    Case {
        name: "add-tar",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "workdir",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "user-name",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "heredoc",
        build_args: &[],
        judge: Judge::Expected(expected_heredoc),
    },
    Case {
        name: "dockerignore",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "shell",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "onbuild-base",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "onbuild-child",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "healthcheck",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "metadata",
        build_args: &[],
        judge: Judge::Docker,
    },
    Case {
        name: "entrypoint-cmd",
        build_args: &[],
        judge: Judge::Docker,
    },
];

/// The tag a case's image gets (onbuild-child names onbuild-base's).
fn tag_of(case: &str) -> String {
    format!("berth-corpus/{case}")
}

// ---------------------------------------------------------------------------------------------
// Flattened images

/// One path of a flattened image.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// 'd' directory, 'f' file (hard links resolved to their target's content), 'l' symlink,
    /// 'p' fifo, 'c'/'b' devices.
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
    link: String,
}

fn dir(mode: u32, uid: u64, gid: u64) -> Node {
    Node {
        kind: 'd',
        mode,
        uid,
        gid,
        data: Vec::new(),
        link: String::new(),
    }
}

fn file(mode: u32, uid: u64, gid: u64, data: &str) -> Node {
    Node {
        kind: 'f',
        mode,
        uid,
        gid,
        data: data.as_bytes().to_vec(),
        link: String::new(),
    }
}

fn describe(n: &Node) -> String {
    let what = match n.kind {
        'f' => format!("file {} bytes", n.data.len()),
        'l' => format!("symlink -> {}", n.link),
        'd' => "dir".to_string(),
        k => format!("type {k}"),
    };
    format!("{what} {:04o} {}:{}", n.mode, n.uid, n.gid)
}

/// The differences between two nodes of one path, in words.
fn node_diff(path: &str, a: &Node, b: &Node, an: &str, bn: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let mut parts = Vec::new();
    if a.kind != b.kind {
        parts.push(format!("type {} vs {}", a.kind, b.kind));
    }
    if a.mode != b.mode {
        parts.push(format!("mode {:04o} vs {:04o}", a.mode, b.mode));
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        parts.push(format!("owner {}:{} vs {}:{}", a.uid, a.gid, b.uid, b.gid));
    }
    if a.link != b.link {
        parts.push(format!("link {:?} vs {:?}", a.link, b.link));
    }
    if a.data != b.data {
        let show = |d: &[u8]| {
            if d.len() <= 200 {
                format!("{:?}", String::from_utf8_lossy(d))
            } else {
                format!("{} bytes", d.len())
            }
        };
        parts.push(format!("content {} vs {}", show(&a.data), show(&b.data)));
    }
    Some(format!("{path}: {} ({an} vs {bn})", parts.join(", ")))
}

/// Path-by-path differences of two trees.
fn tree_diff(
    a: &BTreeMap<String, Node>,
    b: &BTreeMap<String, Node>,
    an: &str,
    bn: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, na) in a {
        match b.get(p) {
            None => out.push(format!("{p}: only in {an} ({})", describe(na))),
            Some(nb) => out.extend(node_diff(p, na, nb, an, bn)),
        }
    }
    for (p, nb) in b {
        if !a.contains_key(p) {
            out.push(format!("{p}: only in {bn} ({})", describe(nb)));
        }
    }
    out
}

fn clean(name: &str) -> String {
    let n = name.trim_start_matches("./").trim_start_matches('/');
    n.trim_end_matches('/').to_string()
}

/// Applies one layer (a tar) onto `tree`, whiteouts included.
fn apply_layer(tree: &mut BTreeMap<String, Node>, layer: &[u8]) {
    let data: Vec<u8> = if layer.starts_with(&[0x1f, 0x8b]) {
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(layer)
            .read_to_end(&mut d)
            .unwrap();
        d
    } else {
        layer.to_vec()
    };
    let mut ar = tar::Archive::new(data.as_slice());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = clean(&e.path().unwrap().to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let (parent, base) = match path.rsplit_once('/') {
            Some((p, b)) => (p.to_string(), b.to_string()),
            None => (String::new(), path.clone()),
        };
        if base == ".wh..wh..opq" {
            let prefix = format!("{parent}/");
            tree.retain(|k, _| !k.starts_with(&prefix));
            continue;
        }
        if let Some(gone) = base.strip_prefix(".wh.") {
            let victim = if parent.is_empty() {
                gone.to_string()
            } else {
                format!("{parent}/{gone}")
            };
            let prefix = format!("{victim}/");
            tree.retain(|k, _| k != &victim && !k.starts_with(&prefix));
            continue;
        }
        let h = e.header().clone();
        let mode = h.mode().unwrap() & 0o7777;
        let uid = h.uid().unwrap();
        let gid = h.gid().unwrap();
        let et = h.entry_type();
        let node = if et.is_hard_link() {
            let target = clean(&e.link_name().unwrap().unwrap().to_string_lossy());
            tree.get(&target)
                .cloned()
                .unwrap_or_else(|| panic!("hard link {path} to missing {target}"))
        } else {
            let (kind, link) = if et.is_dir() {
                ('d', String::new())
            } else if et.is_symlink() {
                (
                    'l',
                    e.link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if et.is_fifo() {
                ('p', String::new())
            } else if et.is_character_special() {
                ('c', String::new())
            } else if et.is_block_special() {
                ('b', String::new())
            } else {
                ('f', String::new())
            };
            let mut d = Vec::new();
            if kind == 'f' {
                e.read_to_end(&mut d).unwrap();
            }
            Node {
                kind,
                mode,
                uid,
                gid,
                data: d,
                link,
            }
        };
        // A non-directory replaces whatever was there, a directory's old children included.
        if node.kind != 'd' {
            let prefix = format!("{path}/");
            tree.retain(|k, _| !k.starts_with(&prefix));
        }
        tree.insert(path, node);
    }
}

/// An image as compared: its flattened tree and the config fields that matter.
#[derive(Debug)]
struct Image {
    /// For failure messages.
    #[allow(dead_code, reason = "shown by Debug")]
    id: String,
    tree: BTreeMap<String, Node>,
    config: BTreeMap<&'static str, Value>,
}

const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "StopSignal",
    "OnBuild",
];

/// null, "", [] and {} all mean "not set".
fn normal(v: &Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        other => other.clone(),
    }
}

fn config_diff(a: &Image, b: &Image, an: &str, bn: &str) -> Vec<String> {
    CONFIG_FIELDS
        .iter()
        .filter(|f| a.config[*f] != b.config[*f])
        .map(|f| {
            format!(
                "config {f}: {} ({an}) vs {} ({bn})",
                a.config[f], b.config[f]
            )
        })
        .collect()
}

/// Something that answers the Docker API on a unix socket.
trait Engine {
    fn label(&self) -> &'static str;
    /// `docker ARGS` against this engine, with the classic builder.
    fn docker_cmd_for(&self, args: &[&str]) -> Command;

    fn run_docker(&self, args: &[&str], timeout: Duration) -> Output {
        run_with_timeout(self.docker_cmd_for(args), timeout, None)
    }

    fn image(&self, tag: &str) -> Image {
        let o = self.run_docker(&["save", tag], BUILD_TIMEOUT);
        assert!(
            o.status.success(),
            "docker save {tag} on {}: {}",
            self.label(),
            o.err()
        );
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut ar = tar::Archive::new(o.stdout.as_slice());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = clean(&e.path().unwrap().to_string_lossy());
            if e.header().entry_type().is_symlink() {
                // Duplicate layers are symlinks to the first copy.
                let t = e
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let base = p.rsplit_once('/').map(|x| x.0).unwrap_or("");
                let target = clean(&Path::new(base).join(t).to_string_lossy());
                if let Some(d) = files.get(&target).cloned() {
                    files.insert(p, d);
                }
                continue;
            }
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            files.insert(p, d);
        }
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let layers = manifest[0]["Layers"].as_array().unwrap();
        let mut tree = BTreeMap::new();
        for l in layers {
            let name = clean(l.as_str().unwrap());
            let data = files
                .get(&name)
                .unwrap_or_else(|| panic!("{}: layer {name} missing from save", self.label()));
            apply_layer(&mut tree, data);
        }
        let o = self.run_docker(&["image", "inspect", tag], DOCKER_TIMEOUT);
        assert!(o.status.success(), "inspect {tag}: {}", o.err());
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let cfg = &v[0]["Config"];
        let config = CONFIG_FIELDS
            .iter()
            .map(|f| (*f, normal(&cfg[*f])))
            .collect();
        Image {
            id: v[0]["Id"].as_str().unwrap_or("").to_string(),
            tree,
            config,
        }
    }
}

impl Engine for TestDaemon {
    fn label(&self) -> &'static str {
        "berthd"
    }
    fn docker_cmd_for(&self, args: &[&str]) -> Command {
        let mut c = self.docker_cmd(args);
        c.env("DOCKER_BUILDKIT", "0");
        c
    }
}

// ---------------------------------------------------------------------------------------------
// A private dockerd

/// dockerd 20.10 on its own temp roots and socket, stopped by its pid on drop.
struct Dockerd {
    root: PathBuf,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} not found: install the docker.io package (dockerd 20.10) to compare builds with Docker"
        );
        let tmp = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in("/tmp")
            .unwrap();
        let root = tmp.path().to_path_buf();
        let socket = root.join("d.sock");
        let config = root.join("cfg");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.json"), "{}").unwrap();
        std::fs::write(root.join("daemon.json"), "{}").unwrap();
        let log = root.join("dockerd.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            root,
            socket,
            config,
            log,
            child: Some(child),
            tmp: Some(tmp),
        };
        let sock = d.socket.clone();
        let logp = d.log.clone();
        let child = d.child.as_mut().unwrap();
        wait_until("dockerd to answer /_ping", Duration::from_secs(60), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "dockerd exited during start ({st}):\n{}",
                    std::fs::read_to_string(&logp).unwrap_or_default()
                );
            }
            match http_request(&sock, "GET", "/_ping", None, Duration::from_secs(5)) {
                Ok(r) if r.status == 200 => Some(()),
                _ => None,
            }
        });
        let tar = busybox_tar();
        let o = d.run_docker(
            &[
                "import",
                "--change",
                r#"CMD ["sh"]"#,
                tar.to_str().unwrap(),
                "busybox:latest",
            ],
            DOCKER_TIMEOUT,
        );
        assert!(
            o.status.success(),
            "import busybox into dockerd: {}",
            o.err()
        );
        d
    }

    fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.args(args)
            .env("BERTH_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("BERTH_API_VERSION");
        cmd
    }
}

impl Engine for Dockerd {
    fn label(&self) -> &'static str {
        "dockerd"
    }
    fn docker_cmd_for(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env("DOCKER_CLI_HINTS", "false");
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let s = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = s.lines().rev().take(30).collect();
            eprintln!(
                "--- dockerd log (tail) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(30));
        }
        for m in mounts_under(&self.root) {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(t) = self.tmp.take() {
            if !mounts_under(&self.root).is_empty() {
                let _ = t.keep();
            }
        }
    }
}

/// berthd runs RUN steps with the berth-runtime binary next to it.
fn berthd_with_runtime() -> TestDaemon {
    let rt = Path::new(BERTH)
        .parent()
        .map(|d| d.join("berth-runtime"))
        .unwrap();
    assert!(
        rt.is_file(),
        "{} is missing: berthd runs RUN with it; build it first: cargo build -p berth-runtime",
        rt.display()
    );
    TestDaemon::start()
}

fn busybox_tar() -> PathBuf {
    busybox_rootfs_tar(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

// ---------------------------------------------------------------------------------------------
// Building

fn build_flags(case: &Case) -> Vec<String> {
    let mut v = vec![
        "build".to_string(),
        "--network".into(),
        "none".into(),
        "-t".into(),
        tag_of(case.name),
    ];
    for a in case.build_args {
        v.push("--build-arg".into());
        v.push((*a).into());
    }
    v.push(case_dir(case.name));
    v
}

/// Builds with a command; Err is the failure report.
fn run_build(mut cmd: Command, what: &str) -> Result<Output, String> {
    cmd.env("DOCKER_BUILDKIT", "0");
    let o = run_with_timeout(cmd, BUILD_TIMEOUT, None);
    if o.status.success() {
        Ok(o)
    } else {
        Err(format!(
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            o.out(),
            o.err()
        ))
    }
}

/// The paths `image` adds to or changes in `base`, and the ones it removes.
fn added(base: &Image, image: &Image) -> BTreeMap<String, Node> {
    image
        .tree
        .iter()
        .filter(|(p, n)| base.tree.get(*p) != Some(*n))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

fn check_expected(
    base: &Image,
    image: &Image,
    expected: &[(&str, Node)],
    who: &str,
) -> Vec<String> {
    let got = added(base, image);
    let want: BTreeMap<String, Node> = expected
        .iter()
        .map(|(p, n)| ((*p).to_string(), n.clone()))
        .collect();
    let mut d = tree_diff(&got, &want, who, "expected");
    for p in base.tree.keys() {
        if !image.tree.contains_key(p) {
            d.push(format!("{p}: removed from the base by {who}"));
        }
    }
    d
}

fn expected_heredoc() -> Vec<(&'static str, Node)> {
    vec![
        ("hd", dir(0o755, 0, 0)),
        (
            "hd/run.txt",
            file(0o644, 0, 0, "line one\nline two hello\n"),
        ),
        ("hd/sh.txt", file(0o644, 0, 0, "via sh\n")),
        // BuildKit writes inline documents 0664 and expands them unless the delimiter is quoted.
        ("hd/expanded.txt", file(0o664, 0, 0, "say hello\n")),
        ("hd/literal.txt", file(0o664, 0, 0, "say $GREETING\n")),
        ("hd/tabs.txt", file(0o664, 0, 0, "tab stripped\n")),
        ("hd/multi", dir(0o755, 0, 0)),
        ("hd/multi/EOT1", file(0o664, 0, 0, "first\n")),
        ("hd/multi/EOT2", file(0o664, 0, 0, "second\n")),
    ]
}

fn expected_copy_chmod() -> Vec<(&'static str, Node)> {
    vec![
        ("usr/local", dir(0o755, 0, 0)),
        ("usr/local/bin", dir(0o755, 0, 0)),
        (
            "usr/local/bin/script.sh",
            file(0o755, 0, 0, "#!/bin/sh\necho script\n"),
        ),
        ("secret.txt", file(0o600, 1000, 1000, "secret\n")),
        // --chmod applies to the copied directory itself too (BuildKit's copier).
        ("dir", dir(0o750, 0, 0)),
        ("dir/f", file(0o750, 0, 0, "f\n")),
    ]
}

/// Builds the corpus on berthd (docker CLI and berth CLI) and on dockerd, and compares.
#[test]
fn corpus_matches_docker_build() {
    let berthd = berthd_with_runtime();
    let dockerd = Dockerd::start();
    let base_b = berthd.image("busybox:latest");
    let base_d = dockerd.image("busybox:latest");
    let mut failures: Vec<String> = tree_diff(&base_b.tree, &base_d.tree, "berthd", "dockerd")
        .into_iter()
        .map(|d| format!("[busybox] {d}"))
        .collect();
    for case in CASES {
        let flags = build_flags(case);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        // berthd, through the docker CLI's classic builder.
        let via_docker = run_build(berthd.docker_cmd_for(&flags), "docker build on berthd");
        let img_docker_cli = match via_docker {
            Ok(_) => Some(berthd.image(&tag_of(case.name))),
            Err(e) => {
                failures.push(format!("[{}] {e}", case.name));
                None
            }
        };
        // berthd, through berth build (tagged the same: the later build wins the tag, and
        // onbuild-child builds FROM whichever it is).
        let via_berth = run_build(berthd.berth_cmd(&flags), "berth build on berthd");
        let img_berth = match via_berth {
            Ok(_) => Some(berthd.image(&tag_of(case.name))),
            Err(e) => {
                failures.push(format!("[{}] {e}", case.name));
                None
            }
        };
        if let (Some(a), Some(b)) = (&img_docker_cli, &img_berth) {
            for d in tree_diff(&a.tree, &b.tree, "docker build", "berth build")
                .into_iter()
                .chain(config_diff(a, b, "docker build", "berth build"))
            {
                failures.push(format!("[{}] {d}", case.name));
            }
        }
        match case.judge {
            Judge::Expected(f) => {
                // No classic-builder reference: compare with the tree written above.
                for img in img_berth.iter() {
                    for d in check_expected(&base_b, img, &f(), "berthd") {
                        failures.push(format!("[{}] {d}", case.name));
                    }
                }
            }
            Judge::Docker => {
                if let Err(e) = run_build(dockerd.docker_cmd_for(&flags), "docker build on dockerd")
                {
                    failures.push(format!("[{}] {e}", case.name));
                    continue;
                }
                let reference = dockerd.image(&tag_of(case.name));
                if let Some(img) = &img_berth {
                    for d in tree_diff(&img.tree, &reference.tree, "berthd", "dockerd")
                        .into_iter()
                        .chain(config_diff(img, &reference, "berthd", "dockerd"))
                    {
                        failures.push(format!("[{}] {d}", case.name));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences between berthd's and Docker's builds:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        berthd.log_tail()
    );
}

/// `berth build` against dockerd gives the images `docker build` gives there: the CLI's context
/// (walk, .dockerignore, Dockerfile, build args) is what docker's CLI sends.
#[test]
fn berth_build_on_dockerd_matches_docker_cli() {
    let dockerd = Dockerd::start();
    let mut failures = Vec::new();
    for case in CASES.iter().filter(|c| matches!(c.judge, Judge::Docker)) {
        let flags = build_flags(case);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let tag = tag_of(case.name);
        if let Err(e) = run_build(dockerd.docker_cmd_for(&flags), "docker build") {
            failures.push(format!("[{}] {e}", case.name));
            continue;
        }
        let reference = dockerd.image(&tag);
        match run_build(dockerd.berth_cmd(&flags), "berth build") {
            Ok(o) => {
                // Classic output: the steps, then the summary lines.
                let out = o.out();
                if !out.contains("Step 1/")
                    || !out.contains(&format!("Successfully tagged {tag}:latest"))
                {
                    failures.push(format!(
                        "[{}] unexpected berth build output:\n{out}",
                        case.name
                    ));
                }
            }
            Err(e) => {
                failures.push(format!("[{}] {e}", case.name));
                continue;
            }
        }
        let mine = dockerd.image(&tag);
        for d in tree_diff(&mine.tree, &reference.tree, "berth build", "docker build")
            .into_iter()
            .chain(config_diff(
                &mine,
                &reference,
                "berth build",
                "docker build",
            ))
        {
            failures.push(format!("[{}] {d}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences between berth build and docker build on dockerd:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The first and last lines of an error output, after the classic builder's deprecation banner
/// (which only docker prints).
fn message_ends(s: &str) -> (String, String) {
    let mut lines: Vec<&str> = s.lines().collect();
    if lines.first().is_some_and(|l| l.starts_with("DEPRECATED:")) {
        let blank = lines.iter().position(|l| l.trim().is_empty()).unwrap_or(0);
        lines.drain(..=blank);
    }
    let lines: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    (
        lines.first().copied().unwrap_or("").to_string(),
        lines.last().copied().unwrap_or("").to_string(),
    )
}

fn last_line(s: &str) -> String {
    message_ends(s).1
}

/// Bad input: the same exit code and message as docker build, and the context variants
/// (Dockerfile outside the context, from stdin, a tar or a Dockerfile as the context on stdin).
#[test]
fn bad_input_and_context_variants_as_docker() {
    let dockerd = Dockerd::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f.txt"), "context file\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo out && exit 3\n",
    )
    .unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let c = ctx.to_str().unwrap();
    let e = empty.to_str().unwrap();
    let missing = tmp.path().join("missing");
    let m = missing.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["build", m],
        vec!["build", e],
        vec!["build", "-f", "/nonexistent/Dockerfile", c],
        vec!["build", "--build-arg", "=v", c],
        vec!["build", "--label", "=x", c],
        vec!["build", "-t", "Bad:Tag", c],
        vec!["build", "--bogus", c],
        vec!["build"],
        vec!["build", "--network", "none", c],
        vec!["build", "-q", "--network", "none", c],
    ];
    let mut failures = Vec::new();
    for args in &cases {
        let d = dockerd.run_docker(args, BUILD_TIMEOUT);
        let b = run_with_timeout(dockerd.berth_cmd(args), BUILD_TIMEOUT, None);
        let (dc, bc) = (d.status.code(), b.status.code());
        let (d1, d2) = message_ends(&d.err());
        // berth says "berth daemon" where docker says "Docker daemon"; docker's progress line
        // ends in a carriage return.
        let dm = format!("{} | {}", d1.trim_end(), d2.trim_end())
            .replace("docker", "berth")
            .replace("Docker daemon", "berth daemon");
        let (b1, b2) = message_ends(&b.err());
        let bm = format!("{b1} | {b2}");
        if dc != bc || dm != bm {
            failures.push(format!(
                "{args:?}: docker exit {dc:?} {dm:?}, berth exit {bc:?} {bm:?}"
            ));
        }
    }
    // The failing RUN's output is shown and its code is the exit code.
    let b = run_with_timeout(
        dockerd.berth_cmd(&["build", "--network", "none", c]),
        BUILD_TIMEOUT,
        None,
    );
    assert_eq!(b.status.code(), Some(3), "{}", b.err());
    assert!(b.out().contains("\nout\n"), "{}", b.out());

    // A file the user cannot read: the build stops before sending anything (as nobody; root
    // reads everything).
    let secret = ctx.join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (name, mut cmd) in [
        ("docker", dockerd.docker_cmd_for(&["build", c])),
        ("berth", dockerd.berth_cmd(&["build", c])),
    ] {
        let prog = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = cmd
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(prog)
            .args(args)
            .envs(envs)
            .env("HOME", "/tmp");
        let o = run_with_timeout(cmd, BUILD_TIMEOUT, None);
        let msg = last_line(&o.err());
        let want = format!(
            "error checking context: no permission to read from '{}'",
            secret.display()
        );
        if o.status.code() != Some(1) || msg != want {
            failures.push(format!(
                "{name} as nobody with an unreadable file: exit {:?} {msg:?}, want 1 {want:?}",
                o.status.code()
            ));
        }
    }
    std::fs::remove_file(&secret).unwrap();

    // Dockerfile outside the context, from stdin, and stdin as the context.
    let outside = tmp.path().join("outside.Dockerfile");
    std::fs::write(
        &outside,
        "FROM busybox\nCOPY f.txt /f.txt\nLABEL via=outside\n",
    )
    .unwrap();
    let id = run_with_timeout(
        dockerd.berth_cmd(&["build", "-q", "-f", outside.to_str().unwrap(), c]),
        BUILD_TIMEOUT,
        None,
    );
    assert!(id.status.success(), "-f outside: {}", id.err());
    let id = id.out().trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let inspect = dockerd.run_docker(&["image", "inspect", &id], DOCKER_TIMEOUT);
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["via"], "outside");
    let img = dockerd.image(&id);
    assert_eq!(img.tree["f.txt"].data, b"context file\n");
    assert!(
        !img.tree.keys().any(|k| k.starts_with(".dockerfile.")),
        "the added Dockerfile leaked into the image"
    );

    let o = run_with_timeout(
        dockerd.berth_cmd(&["build", "-q", "-f", "-", c]),
        BUILD_TIMEOUT,
        Some(b"FROM busybox\nLABEL via=stdin-dockerfile\nCOPY f.txt /\n"),
    );
    assert!(o.status.success(), "-f -: {}", o.err());
    let o = run_with_timeout(
        dockerd.berth_cmd(&["build", "-q", "-"]),
        BUILD_TIMEOUT,
        Some(b"FROM busybox\nLABEL via=stdin\n"),
    );
    assert!(o.status.success(), "Dockerfile on stdin: {}", o.err());
    let mut tarball = tar::Builder::new(Vec::new());
    tarball
        .append_path_with_name(&outside, "Dockerfile")
        .unwrap();
    tarball
        .append_path_with_name(ctx.join("f.txt"), "f.txt")
        .unwrap();
    let tarball = tarball.into_inner().unwrap();
    let iid = tmp.path().join("iid");
    let o = run_with_timeout(
        dockerd.berth_cmd(&["build", "--iidfile", iid.to_str().unwrap(), "-"]),
        BUILD_TIMEOUT,
        Some(&tarball),
    );
    assert!(o.status.success(), "tar on stdin: {}", o.err());
    let written = std::fs::read_to_string(&iid).unwrap();
    assert!(written.starts_with("sha256:"), "{written}");
    assert!(
        o.out().contains("Step 3/3 : LABEL via=outside"),
        "{}",
        o.out()
    );

    // On a terminal, --progress tty shows the steps live and leaves only the summary.
    let runner = tmp.path().join("run.Dockerfile");
    std::fs::write(
        &runner,
        "FROM busybox\nRUN echo from-run && sleep 1\nLABEL done=1\n",
    )
    .unwrap();
    let mut pty = PtyProcess::spawn(dockerd.berth_cmd(&[
        "build",
        "--progress",
        "tty",
        "--network",
        "none",
        "-f",
        runner.to_str().unwrap(),
        c,
    ]));
    pty.expect("Successfully built", BUILD_TIMEOUT);
    assert_eq!(pty.wait(BUILD_TIMEOUT), 0, "{}", pty.transcript());
    let shown = pty.transcript();
    assert!(
        shown.contains("Step 2/3 : RUN echo from-run && sleep 1"),
        "{shown}"
    );
    assert!(
        !shown.contains("Removing intermediate container"),
        "{shown}"
    );

    // The context is streamed: berth's peak RSS stays far below the context's size.
    let big = tmp.path().join("big");
    std::fs::create_dir(&big).unwrap();
    std::fs::write(big.join("Dockerfile"), "FROM busybox\nLABEL big=1\n").unwrap();
    {
        let f = std::fs::File::create(big.join("blob")).unwrap();
        f.set_len(0).unwrap();
        let mut w = std::io::BufWriter::new(f);
        let chunk: Vec<u8> = (0..1u32 << 20)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
            .collect();
        for _ in 0..128 {
            std::io::Write::write_all(&mut w, &chunk).unwrap();
        }
    }
    let mut cmd = dockerd.berth_cmd(&["build", "-q", big.to_str().unwrap()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth build of a 128 MiB context did not finish within {BUILD_TIMEOUT:?}");
        }
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "berth build of the big context failed");
    assert!(peak_kb > 0, "no RSS sample of berth build");
    eprintln!("berth build, 128 MiB context: peak RSS {peak_kb} kB");
    assert!(
        peak_kb < 64 * 1024,
        "berth build peaked at {peak_kb} kB for a 128 MiB context: it is not streamed"
    );

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two builds with SOURCE_DATE_EPOCH (and no cache) give the same image ID.
#[test]
fn source_date_epoch_builds_are_reproducible() {
    let berthd = berthd_with_runtime();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut cmd = berthd.berth_cmd(&[
            "build",
            "-q",
            "--no-cache",
            "--network",
            "none",
            &case_dir("multistage"),
        ]);
        cmd.env("SOURCE_DATE_EPOCH", "1700000000");
        let o = run_with_timeout(cmd, BUILD_TIMEOUT, None);
        assert!(
            o.status.success(),
            "berth build: {}\n{}",
            o.err(),
            berthd.log_tail()
        );
        ids.push(o.out().trim().to_string());
    }
    assert!(ids[0].starts_with("sha256:"), "{ids:?}");
    assert_eq!(ids[0], ids[1], "SOURCE_DATE_EPOCH builds differ");
}

#[test]
fn flatten_applies_whiteouts() {
    let mut l1 = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, p: &str, d: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, d).unwrap();
    };
    add(&mut l1, "a/x", b"1");
    add(&mut l1, "a/y", b"2");
    add(&mut l1, "b/z", b"3");
    add(&mut l1, "c", b"4");
    let l1 = l1.into_inner().unwrap();
    let mut l2 = tar::Builder::new(Vec::new());
    add(&mut l2, "a/.wh..wh..opq", b"");
    add(&mut l2, "a/new", b"5");
    add(&mut l2, ".wh.b", b"");
    add(&mut l2, "c", b"6");
    let l2 = l2.into_inner().unwrap();
    let mut tree = BTreeMap::new();
    apply_layer(&mut tree, &l1);
    apply_layer(&mut tree, &l2);
    let keys: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["a/new", "c"]);
    assert_eq!(tree["c"].data, b"6");
}
