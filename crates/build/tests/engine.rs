//! The engine on its own (no daemon): real stores in a temp root, busybox imported as the base,
//! RUN steps through the berth-runtime binary. Needs root (overlay mounts, containers).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use berth_build::engine::{BuildError, BuildRequest, Engine, Event, Host, NetworkMode, RunNetwork};
use berth_image::content::ContentStore;
use berth_image::reference::Reference;
use berth_image::snapshot::{chain_id, Snapshotter};
use berth_image::store::{ImageRecord, ImageStore};

/// The runtime binary cargo built for the workspace (`cargo build -p berth-runtime`).
fn runtime_bin() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin = tmp.parent().unwrap().join("debug").join("berth-runtime");
    assert!(
        bin.is_file(),
        "{} is missing: build it first: cargo build -p berth-runtime",
        bin.display()
    );
    bin
}

struct Stores {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    content: ContentStore,
    snapshots: Snapshotter,
    images: ImageStore,
}

/// Local images only: busybox, imported at setup.
struct LocalHost<'a>(&'a Stores);

impl Host for LocalHost<'_> {
    fn image(
        &self,
        name: &str,
        _pull: bool,
        _out: &(dyn Fn(&str) + Sync),
    ) -> Result<ImageRecord, BuildError> {
        self.0
            .images
            .resolve(name)
            .map_err(|e| BuildError::NotFound(format!("{name}: {e}")))
    }

    /// No daemon, no bridge: RUN gets loopback only, as under `berthd --bridge=none`.
    fn run_network(&self, _id: &str, _hostname: &str) -> Result<Option<RunNetwork>, BuildError> {
        Ok(None)
    }
}

fn stores() -> Stores {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the engine tests mount overlays: run as root"
    );
    let tmp = tempfile::Builder::new()
        .prefix("be")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().to_path_buf();
    let content = ContentStore::open(&root).unwrap();
    let snapshots = Snapshotter::open(&root).unwrap();
    let images = ImageStore::open(&root).unwrap();
    let tar = berth_testutil::harness::busybox_rootfs_tar(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let imp = berth_image::archive::import_rootfs(
        &content,
        std::fs::File::open(tar).unwrap(),
        &[r#"CMD ["sh"]"#.to_string()],
        &berth_image::platform::Platform::host(),
    )
    .unwrap();
    let rec = ImageRecord::from_import(&imp, &content).unwrap();
    let chain = chain_id(std::slice::from_ref(&imp.diff_id));
    snapshots
        .prepare_layer(&chain, None, |dir| {
            let f = content.open_blob(&imp.layer_digest).unwrap();
            berth_image::unpack::unpack_layer(f, None, dir)
                .map(drop)
                .map_err(|e| berth_image::snapshot::SnapshotError::unpack(&chain, e))
        })
        .unwrap();
    images
        .put(&rec, &[Reference::parse("busybox:latest").unwrap()])
        .unwrap();
    Stores {
        _tmp: tmp,
        root,
        content,
        snapshots,
        images,
    }
}

fn build(
    s: &Stores,
    files: &[(&str, &str)],
    args: &[(&str, &str)],
) -> (Result<ImageRecord, BuildError>, String) {
    let ctx = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let p = ctx.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    let text = std::fs::read_to_string(ctx.path().join("Dockerfile")).unwrap();
    let host = LocalHost(s);
    let eng = Engine {
        content: &s.content,
        snapshots: &s.snapshots,
        images: &s.images,
        host: &host,
        build_root: s.root.join("build"),
        runtime_root: s.root.join("rt"),
        runtime_bin: runtime_bin(),
    };
    let req = BuildRequest {
        context: ctx.path().to_path_buf(),
        dockerfile: berth_build::parser::parse(&text, "Dockerfile").unwrap(),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect::<BTreeMap<_, _>>(),
        target: None,
        no_cache: false,
        pull: false,
        labels: BTreeMap::new(),
        network: NetworkMode::Default,
        env_source_date_epoch: None,
    };
    let log = Mutex::new(String::new());
    let out = |e: Event| {
        if let Event::Stream(s) = e {
            log.lock().unwrap().push_str(&s);
        }
    };
    let r = eng.build(&req, &AtomicBool::new(false), &out);
    (r, log.into_inner().unwrap())
}

fn config(s: &Stores, rec: &ImageRecord) -> serde_json::Value {
    serde_json::from_slice(&s.content.read_blob(&rec.config_digest, 1 << 20).unwrap()).unwrap()
}

#[test]
fn history_config_and_build_args_as_the_classic_builder() {
    let s = stores();
    let (r, log) = build(
        &s,
        &[(
            "Dockerfile",
            "FROM busybox\nARG A=1\nARG B\nENV E=e\nRUN echo $A$B$E > /out\nCMD [\"cat\", \"/out\"]\nENTRYPOINT [\"/bin/sh\"]\n",
        )],
        &[("B", "2"), ("UNUSED", "x")],
    );
    let rec = r.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(
        log.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{log}"
    );
    let cfg = config(&s, &rec);
    let hist: Vec<String> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap().to_string())
        .collect();
    assert!(
        hist.contains(&"|2 A=1 B=2 /bin/sh -c echo $A$B$E > /out".to_string()),
        "{hist:?}"
    );
    assert!(
        hist.contains(&"/bin/sh -c #(nop)  ENV E=e".to_string()),
        "{hist:?}"
    );
    assert!(
        hist.contains(&r#"/bin/sh -c #(nop)  CMD ["cat" "/out"]"#.to_string()),
        "{hist:?}"
    );
    // ENTRYPOINT after CMD in the same stage keeps the CMD.
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["cat", "/out"]));
    assert_eq!(cfg["config"]["Entrypoint"], serde_json::json!(["/bin/sh"]));
    let empty = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] == true)
        .count();
    let layers = cfg["rootfs"]["diff_ids"].as_array().unwrap().len();
    assert_eq!(layers, 2, "busybox + RUN");
    assert_eq!(cfg["history"].as_array().unwrap().len() - empty, layers);
    // A RUN leaves no active snapshot, mount or temp dir behind.
    let idx = std::fs::read_to_string(s.root.join("snapshots/index.json")).unwrap();
    assert!(!idx.contains("build-"), "{idx}");
    assert!(std::fs::read_dir(s.root.join("build/tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true));
}

#[test]
fn scratch_images_and_reproducible_digests() {
    let s = stores();
    let files = [
        (
            "Dockerfile",
            "FROM scratch\nCOPY a /a\nCOPY d/ /dir/\nLABEL x=y\n",
        ),
        ("a", "A"),
        ("d/one", "1"),
        ("d/sub/two", "2"),
    ];
    let (a, log) = build(&s, &files, &[("SOURCE_DATE_EPOCH", "1000")]);
    let a = a.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(a.layers.len(), 2);
    let cfg = config(&s, &a);
    assert_eq!(cfg["created"], "1970-01-01T00:16:40Z");
    // A separate store: the same inputs give the same image id.
    let s2 = stores();
    let (b, _) = build(&s2, &files, &[("SOURCE_DATE_EPOCH", "1000")]);
    assert_eq!(a.id(), b.unwrap().id());
    // The layer is stored uncompressed (as Docker's builder keeps layers), its digest is its
    // diff id, and it holds the files in sorted order with clamped times.
    assert_eq!(
        a.layers[1].media_type,
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    assert_eq!(a.layers[1].digest, a.layers[1].diff_id);
    let blob = s.content.open_blob(&a.layers[1].digest).unwrap();
    let mut ar = tar::Archive::new(blob);
    let names: Vec<(String, u64)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mtime().unwrap(),
            )
        })
        .collect();
    let paths: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(paths, vec!["dir", "dir/one", "dir/sub", "dir/sub/two"]);
    assert!(names.iter().all(|(_, t)| *t <= 1000), "{names:?}");
}

#[test]
fn errors_name_what_was_wrong() {
    let s = stores();
    let (r, _) = build(&s, &[("Dockerfile", "FROM busybox\nRUN exit 7\n")], &[]);
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some(7));
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    );
    let (r, _) = build(&s, &[("Dockerfile", "FROM nosuchimage\n")], &[]);
    assert!(r.unwrap_err().to_string().contains("nosuchimage"));
    let (r, _) = build(
        &s,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY --chmod=999 Dockerfile /\n",
        )],
        &[],
    );
    assert!(r.unwrap_err().to_string().contains("invalid chmod"));
    let (r, _) = build(
        &s,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY --chown=nobody2 Dockerfile /\n",
        )],
        &[],
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("unable to find user nobody2"));
    let (r, _) = build(
        &s,
        &[("Dockerfile", "FROM busybox\nCOPY *.nomatch /\n")],
        &[],
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("no source files were specified"));
}

/// Path → (mode, uid, gid, contents) of the files the build's layers (past the base's) hold;
/// later layers win.
fn built_files(
    s: &Stores,
    rec: &ImageRecord,
    base_layers: usize,
) -> BTreeMap<String, (u32, u64, u64, String)> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    for l in &rec.layers[base_layers..] {
        let mut ar = tar::Archive::new(s.content.open_blob(&l.digest).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let h = e.header().clone();
            let mut body = String::new();
            if h.entry_type().is_file() {
                e.read_to_string(&mut body).unwrap();
            }
            out.insert(
                p,
                (
                    h.mode().unwrap() & 0o7777,
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    body,
                ),
            );
        }
    }
    out
}

/// The rules the corpus against dockerd 20.10 (and BuildKit for --chmod and heredocs) showed:
/// the default PATH of a base without one, EXPOSE ranges, RUN's supplementary groups, --chmod on
/// a copied directory, heredoc file modes.
#[test]
fn docker_rules_path_expose_groups_chmod_heredoc() {
    let s = stores();
    let df = "FROM busybox\n\
        ENV PATH=/opt/bin:$PATH\n\
        EXPOSE 9000-9002 53/udp\n\
        USER user\n\
        RUN echo $PATH > /home/user/path.txt && id > /home/user/id.txt\n\
        USER 1000:65534\n\
        RUN id > /home/user/id2.txt\n\
        USER root\n\
        COPY --chmod=0750 d /d/\n\
        COPY d /plain/\n\
        COPY <<EOT /hd.txt\n\
        hello\n\
        EOT\n\
        COPY --chmod=0600 <<EOT /hd600.txt\n\
        x\n\
        EOT\n";
    let (r, log) = build(&s, &[("Dockerfile", df), ("d/f", "f\n")], &[]);
    let rec = r.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let cfg = config(&s, &rec);
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!([
            "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ])
    );
    let ports: Vec<&String> = cfg["config"]["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(ports, vec!["53/udp", "9000/tcp", "9001/tcp", "9002/tcp"]);
    let hist: Vec<&str> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert!(
        hist.contains(&"/bin/sh -c #(nop)  EXPOSE 9000-9002 53/udp"),
        "{hist:?}"
    );
    let files = built_files(&s, &rec, 1);
    let body = |p: &str| {
        files
            .get(p)
            .unwrap_or_else(|| panic!("{p}: {files:?}"))
            .3
            .clone()
    };
    assert_eq!(
        body("home/user/path.txt"),
        "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    assert_eq!(
        body("home/user/id.txt"),
        "uid=1000(user) gid=1000(user) groups=1000(user)\n"
    );
    assert_eq!(
        body("home/user/id2.txt"),
        "uid=1000(user) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
    let mode = |p: &str| files.get(p).unwrap_or_else(|| panic!("{p}: {files:?}")).0;
    assert_eq!(mode("d"), 0o750);
    assert_eq!(mode("d/f"), 0o750);
    assert_eq!(mode("plain"), 0o755);
    assert_eq!(mode("plain/f"), 0o644);
    assert_eq!(mode("hd.txt"), 0o664);
    assert_eq!(body("hd.txt"), "hello\n");
    assert_eq!(mode("hd600.txt"), 0o600);
}
