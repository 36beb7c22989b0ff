//! The container filesystem endpoints through the real docker CLI and raw HTTP against a real
//! berthd: `docker cp` both ways on running and stopped containers, `docker diff`, `docker
//! export`, `docker commit`, and the bad input around them (missing paths, `..` and absolute
//! tar entries, symlinks aimed at the host, read-only root filesystems).
//!
//! Needs root (mounts, namespaces), the docker CLI at /usr/local/bin/docker, curl, and
//! berth-shim built next to berthd (`cargo build -p berth-shim`).

#[path = "common/seed.rs"]
mod seed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

const DOCKER: &str = "/usr/local/bin/docker";

/// A berthd of its own: temp data and exec roots, socket, and an image `busybox:latest`.
/// Dropping it removes every container (so no shim or mount is left) and stops the daemon.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
}

fn require(bin: &str, hint: &str) {
    assert!(Path::new(bin).exists(), "{bin} is missing: {hint}");
}

impl Daemon {
    fn start() -> Daemon {
        assert!(nix::unistd::geteuid().is_root(), "these tests need root");
        require(
            DOCKER,
            "install the docker CLI (static build) at /usr/local/bin/docker",
        );
        let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
        let shim = berthd.with_file_name("berth-shim");
        require(
            shim.to_str().unwrap_or("berth-shim"),
            "build it next to berthd: cargo build -p berth-shim",
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-archive-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let exec = dir.path().join("exec");
        let sock = dir.path().join("s.sock");
        let bundle = berth_testutil::Bundle::busybox(&["sh"]).expect("busybox rootfs");
        let tar = dir.path().join("rootfs.tar");
        bundle.write_rootfs_tar(&tar).expect("rootfs tar");
        seed::seed_image(&data, &tar, "busybox:latest", &[]);
        let log = std::fs::File::create(dir.path().join("berthd.log")).expect("log");
        let child = Command::new(&berthd)
            .arg("--data-root")
            .arg(&data)
            // No bridge or nftables table in the host namespace from a test daemon.
            .args(["--bridge=none", "--iptables=false"])
            .arg("--exec-root")
            .arg(&exec)
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("-p")
            .arg(dir.path().join("berthd.pid"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berthd");
        let d = Daemon { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if d.docker(&["version"]).status.success() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berthd did not come up: {}", d.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .current_dir(self.dir.path())
            .output()
            .expect("run docker")
    }

    /// Runs docker and returns stdout, failing the test (with berthd's log) on an error.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n--- berthd log ---\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs docker expecting a failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} succeeded unexpectedly"
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// Raw HTTP: (status, headers, body).
    fn curl(&self, method: &str, url: &str, body: Option<&Path>) -> (u16, String, Vec<u8>) {
        let hdr = self.dir.path().join(format!("h-{}", rand_suffix()));
        let mut c = Command::new("curl");
        c.arg("-s")
            .arg("--unix-socket")
            .arg(&self.sock)
            .arg("-D")
            .arg(&hdr)
            .arg("-X")
            .arg(method);
        if method == "HEAD" {
            c.arg("-I");
        }
        if let Some(b) = body {
            c.arg("-H").arg("Content-Type: application/x-tar");
            c.arg("--data-binary").arg(format!("@{}", b.display()));
        }
        let o = c
            .arg(format!("http://berth{url}"))
            .output()
            .expect("run curl");
        let headers = std::fs::read_to_string(&hdr).unwrap_or_default();
        let code = headers
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, headers, o.stdout)
    }

    /// Polls `docker diff` until it contains `line` (the container works in the background).
    fn wait_diff(&self, ctr: &str, line: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.ok(&["diff", ctr]);
            if out.lines().any(|l| l == line) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A tar built entry by entry, for the bad-input tests.
fn tar_file(path: &Path, entries: &[(&str, &str)]) {
    let f = std::fs::File::create(path).expect("create tar");
    let mut b = tar::Builder::new(f);
    for (name, spec) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        // Names are written raw: the tar crate refuses `..` and absolute names in set_path.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(target) = spec.strip_prefix("symlink:") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_link_name_literal(target).expect("link name");
            h.set_cksum();
            b.append(&h, std::io::empty()).expect("append");
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(spec.len() as u64);
            h.set_cksum();
            b.append(&h, spec.as_bytes()).expect("append");
        }
    }
    b.into_inner().expect("finish tar").flush().expect("flush");
}

fn decode_stat(headers: &str) -> serde_json::Value {
    let v = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("X-Docker-Container-Path-Stat")
                .then(|| v.trim().to_string())
        })
        .expect("stat header");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v)
        .expect("standard base64");
    serde_json::from_slice(&raw).expect("stat JSON")
}

/// Files, directories and symlinks in and out of a running container and a stopped one.
#[test]
fn cp_in_and_out_running_and_stopped() {
    let d = Daemon::start();
    let src = d.path("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(src.join("dir/sub/a.txt"), "a\n").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", src.join("dir/link")).unwrap();

    d.ok(&["run", "-d", "--name", "run1", "busybox", "sleep", "1000"]);
    d.ok(&["create", "--name", "stop1", "busybox", "true"]);
    for ctr in ["run1", "stop1"] {
        d.ok(&["cp", "src/hello.txt", &format!("{ctr}:/tmp/")]);
        d.ok(&["cp", "src/dir", &format!("{ctr}:/tmp/dir")]);
        // To a new name in an existing directory.
        d.ok(&["cp", "src/hello.txt", &format!("{ctr}:/renamed.txt")]);

        let out = d.path(&format!("out-{ctr}"));
        std::fs::create_dir_all(&out).unwrap();
        let o = out.to_str().unwrap();
        d.ok(&["cp", &format!("{ctr}:/tmp/hello.txt"), o]);
        d.ok(&["cp", &format!("{ctr}:/tmp/dir"), o]);
        d.ok(&["cp", &format!("{ctr}:/renamed.txt"), o]);
        d.ok(&["cp", &format!("{ctr}:/bin/sh"), &format!("{o}/sh")]);
        assert_eq!(
            std::fs::read_to_string(out.join("hello.txt")).unwrap(),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("renamed.txt")).unwrap(),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("dir/sub/a.txt")).unwrap(),
            "a\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("dir/link")).unwrap(),
            PathBuf::from("sub/a.txt")
        );
        // A symlink is copied as the link, as docker cp does without -L.
        assert_eq!(
            std::fs::read_link(out.join("sh")).unwrap(),
            PathBuf::from("/bin/busybox")
        );
        // The image's own files come out too.
        let passwd = d.ok(&["cp", &format!("{ctr}:/etc/passwd"), "-"]);
        assert!(passwd.contains("root:"), "{ctr}: {passwd}");
    }
    // What was copied into the stopped container is there when it runs.
    d.ok(&["commit", "stop1", "stopped-copy"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "stopped-copy",
        "cat",
        "/tmp/hello.txt",
        "/tmp/dir/link",
    ]);
    assert_eq!(out, "hello\na\n");

    // `cp -a` (copyUIDGID): files take the container user's ids; without it, the archive's.
    d.ok(&[
        "create",
        "-u",
        "1234:5678",
        "--name",
        "u",
        "busybox",
        "true",
    ]);
    d.ok(&["cp", "-a", "src/hello.txt", "u:/owned.txt"]);
    let tar = d.path("owned.tar");
    let (code, _, body) = d.curl("GET", "/containers/u/archive?path=/owned.txt", None);
    assert_eq!(code, 200);
    std::fs::write(&tar, body).unwrap();
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap(), Path::new("owned.txt"));
    assert_eq!(
        (e.header().uid().unwrap(), e.header().gid().unwrap()),
        (1234, 5678)
    );

    // HEAD: the stat header, with Go's mode bits and the symlink's target in the container.
    let (code, headers, _) = d.curl("HEAD", "/containers/run1/archive?path=/bin/sh", None);
    assert_eq!(code, 200, "{headers}");
    let st = decode_stat(&headers);
    assert_eq!(st["name"], "sh");
    assert_eq!(st["linkTarget"], "/bin/busybox");
    assert_eq!(st["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "{st}");
    let (_, headers, _) = d.curl(
        "HEAD",
        "/v1.41/containers/stop1/archive?path=/tmp/dir",
        None,
    );
    let st = decode_stat(&headers);
    assert_eq!(st["mode"].as_u64().unwrap() & (1 << 31), 1 << 31, "{st}");
    assert_eq!(st["name"], "dir");
    assert!(st["mtime"].as_str().unwrap().ends_with('Z'));
}

/// `docker diff` after files are created, changed and deleted.
#[test]
fn diff_reports_changes() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "echo x >> /etc/passwd; rm /bin/ls; mkdir -p /root/new; echo n > /root/new/f; touch /done; sleep 1000",
    ]);
    let out = d.wait_diff("w", "A /done");
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "C /etc",
        "C /etc/passwd",
        "C /bin",
        "D /bin/ls",
        "A /root/new",
        "A /root/new/f",
        "A /done",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{out}");
    }
    // Mount points the runtime made are not changes.
    for not in [
        "A /proc",
        "A /sys",
        "A /dev",
        "A /etc/hosts",
        "C /etc/hostname",
    ] {
        assert!(!lines.contains(&not), "unexpected {not:?} in:\n{out}");
    }
    // The raw API: Kind 0/1/2.
    let (code, _, body) = d.curl("GET", "/containers/w/changes", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let kinds: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Path"].as_str().unwrap().to_string(),
                c["Kind"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("/bin/ls".into(), 2)), "{kinds:?}");
    assert!(kinds.contains(&("/done".into(), 1)), "{kinds:?}");
    assert!(kinds.contains(&("/etc/passwd".into(), 0)), "{kinds:?}");
    // A fresh container has no changes.
    d.ok(&["create", "--name", "fresh", "busybox", "true"]);
    assert_eq!(d.ok(&["diff", "fresh"]), "");
}

/// `docker export | tar t`: the whole root filesystem, with what the container wrote.
#[test]
fn export_is_the_whole_rootfs() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "e",
        "busybox",
        "sh",
        "-c",
        "echo hi > /marker; sleep 1000",
    ]);
    d.wait_diff("e", "A /marker");
    let tar = d.path("e.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "e"]);
    let list = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    assert!(list.status.success());
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    let names: Vec<&str> = names.lines().map(|l| l.trim_end_matches('/')).collect();
    for want in ["bin/busybox", "etc/passwd", "marker", "bin/sh"] {
        assert!(names.contains(&want), "missing {want} in export");
    }
    assert!(!names.iter().any(|n| n.starts_with('/') || n.contains("..")));
    let marker = Command::new("tar")
        .arg("xOf")
        .arg(&tar)
        .arg("marker")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&marker.stdout), "hi\n");
    // Stopped containers export too.
    d.ok(&["create", "--name", "e2", "busybox", "true"]);
    d.ok(&["export", "-o", d.path("e2.tar").to_str().unwrap(), "e2"]);
    let (code, _, _) = d.curl("GET", "/containers/nope/export", None);
    assert_eq!(code, 404);
}

/// `docker commit` then run the new image: the file is there, `--change CMD` took effect.
#[test]
fn commit_then_run() {
    let d = Daemon::start();
    std::fs::write(d.path("greeting"), "committed\n").unwrap();
    d.ok(&[
        "run", "-d", "--name", "c", "-e", "KEEP=1", "busybox", "sleep", "1000",
    ]);
    d.ok(&["cp", "greeting", "c:/greeting"]);
    let id = d.ok(&[
        "commit",
        "--change",
        r#"CMD ["cat", "/greeting"]"#,
        "--change",
        "ENV ADDED=2",
        "-m",
        "a message",
        "-a",
        "tester",
        "c",
        "mine:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&["run", "--rm", "mine:v1"]), "committed\n");
    let env = d.ok(&["run", "--rm", "mine:v1", "sh", "-c", "echo $KEEP$ADDED"]);
    assert_eq!(env, "12\n");
    // The container kept running through the pause.
    let running = d.ok(&["inspect", "-f", "{{.State.Running}}", "c"]);
    assert_eq!(running.trim(), "true");
    // Its parent is the container's image; a --change EXPOSE on a container without exposed
    // ports is kept (the merge with the container's config used to drop it).
    let busybox_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Parent}}", "mine:v1"])
            .trim(),
        busybox_id.trim()
    );
    d.ok(&["commit", "--change", "EXPOSE 8000", "c", "mine:ports"]);
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.ExposedPorts}}",
            "mine:ports"
        ])
        .trim(),
        r#"{"8000/tcp":{}}"#
    );
    // Commit of the committed image's container stacks a third layer.
    d.ok(&["create", "--name", "c2", "mine:v1"]);
    d.ok(&["cp", "greeting", "c2:/second"]);
    d.ok(&["commit", "c2", "mine:v2"]);
    assert_eq!(
        d.ok(&["run", "--rm", "mine:v2", "cat", "/greeting", "/second"]),
        "committed\ncommitted\n"
    );
    // Untagged commit via the API answers 201 {"Id"}.
    let (code, _, body) = d.curl("POST", "/commit?container=c&pause=0", None);
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["Id"].as_str().unwrap().starts_with("sha256:"));
    // Bad input.
    let e = d.fails(&["commit", "--change", "RUN rm -rf /", "c", "x"]);
    assert!(e.contains("RUN is not one of"), "{e}");
    let e = d.fails(&["commit", "nope", "x"]);
    assert!(e.contains("No such container: nope"), "{e}");
    let (code, _, _) = d.curl("POST", "/commit?container=c&repo=Bad%20Name", None);
    assert_eq!(code, 400);
}

/// Errors as Docker words them, and nothing written where it must not be.
#[test]
fn bad_input_is_refused() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "b", "busybox", "sleep", "1000"]);
    std::fs::write(d.path("f.txt"), "f\n").unwrap();

    let e = d.fails(&["cp", "b:/nope", d.path("x").to_str().unwrap()]);
    assert!(
        e.contains("Could not find the file /nope in container b"),
        "{e}"
    );
    let (code, _, body) = d.curl("HEAD", "/containers/b/archive?path=/nope", None);
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    let (code, _, body) = d.curl("GET", "/containers/b/archive", None);
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("'path' cannot be empty"));
    let (code, _, body) = d.curl("GET", "/containers/nope/archive?path=/", None);
    assert_eq!(code, 404);
    assert!(String::from_utf8_lossy(&body).contains("No such container: nope"));
    let e = d.fails(&["cp", "f.txt", "nope:/tmp"]);
    assert!(e.contains("No such container"), "{e}");

    // Into a file path, and into a missing directory.
    let t = d.path("one.tar");
    tar_file(&t, &[("x.txt", "x")]);
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/etc/passwd", Some(&t));
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("extraction point is not a directory"));
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/no/such/dir", Some(&t));
    assert_eq!(code, 404);
    assert!(String::from_utf8_lossy(&body).contains("Could not find the file /no/such/dir"));

    // `..` and absolute entries are refused; nothing lands outside the container.
    let outside = d.path("escaped.txt");
    let up = format!("../../../../../../../../../..{}", outside.display());
    let t = d.path("dotdot.tar");
    tar_file(&t, &[(up.as_str(), "bad")]);
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/tmp", Some(&t));
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("path contains"));
    let abs = outside.display().to_string();
    let t = d.path("abs.tar");
    tar_file(&t, &[(abs.as_str(), "bad")]);
    let (code, _, _) = d.curl("PUT", "/containers/b/archive?path=/tmp", Some(&t));
    assert_eq!(code, 400);
    assert!(!outside.exists(), "a tar entry escaped the container");
    let t = d.path("relink.tar");
    tar_file(&t, &[("up", "symlink:../../../../../../..")]);
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/tmp", Some(&t));
    assert_eq!(code, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("invalid symlink"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // A symlink to /etc followed by a write through it: the container's /etc, not the host's.
    let marker = format!("berth-escape-{}", rand_suffix());
    let t = d.path("symesc.tar");
    let through = format!("etclink/{marker}");
    tar_file(
        &t,
        &[("etclink", "symlink:/etc"), (through.as_str(), "inside")],
    );
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/tmp", Some(&t));
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "wrote to the host's /etc"
    );
    assert!(d
        .ok(&["cp", &format!("b:/etc/{marker}"), "-"])
        .contains("inside"));

    // Reads through symlinks planted in the container stay inside it too.
    let t = d.path("planted.tar");
    tar_file(
        &t,
        &[
            ("hostname-abs", "symlink:/etc/hostname"),
            ("hostname-rel", "symlink:../../../../etc/hostname"),
        ],
    );
    let (code, _, body) = d.curl("PUT", "/containers/b/archive?path=/", Some(&t));
    assert_eq!(
        code,
        400,
        "relative escape refused: {}",
        String::from_utf8_lossy(&body)
    );
    tar_file(&t, &[("shadow-abs", "symlink:/etc/shadow-of-host")]);
    let (code, _, _) = d.curl("PUT", "/containers/b/archive?path=/", Some(&t));
    assert_eq!(code, 200);
    let host_shadow = Path::new("/etc/shadow-of-host");
    assert!(!host_shadow.exists());
    let (code, headers, _) = d.curl("HEAD", "/containers/b/archive?path=/shadow-abs/", None);
    assert_eq!(code, 404, "followed outside: {headers}");
    let (_, headers, _) = d.curl("HEAD", "/containers/b/archive?path=/shadow-abs", None);
    assert_eq!(decode_stat(&headers)["linkTarget"], "/etc/shadow-of-host");

    // Directory and non-directory do not replace each other with noOverwriteDirNonDir.
    let t = d.path("dirclash.tar");
    tar_file(&t, &[("etc", "a file where a directory is")]);
    let (code, _, body) = d.curl(
        "PUT",
        "/containers/b/archive?path=/&noOverwriteDirNonDir=true",
        Some(&t),
    );
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("cannot overwrite directory"));

    // Read-only root filesystem: refused, but a volume in it takes the copy.
    let vol = d.path("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let bind = format!("{}:/data", vol.display());
    d.ok(&[
        "run",
        "-d",
        "--read-only",
        "-v",
        &bind,
        "--name",
        "ro",
        "busybox",
        "sleep",
        "1000",
    ]);
    let e = d.fails(&["cp", "f.txt", "ro:/tmp/"]);
    assert!(e.contains("container rootfs is marked read-only"), "{e}");
    d.ok(&["cp", "f.txt", "ro:/data/"]);
    assert_eq!(std::fs::read_to_string(vol.join("f.txt")).unwrap(), "f\n");
    // And reads of the volume come from its source.
    std::fs::write(vol.join("from-host"), "host\n").unwrap();
    assert!(d.ok(&["cp", "ro:/data/from-host", "-"]).contains("host\n"));
}
