//! Image, volume and system commands of the berth CLI against a real berthd, compared with
//! docker's CLI; pull, push and login against Debian's docker-registry on loopback.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{OutputExt, TestDaemon};

fn titles(out: &str) -> Vec<String> {
    out.lines()
        .next()
        .unwrap_or("")
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn images_match_docker() {
    let d = TestDaemon::start();
    d.bok(&["tag", "busybox", "localhost:5999/team/box:v1"]);
    for args in [
        &["images"][..],
        &["image", "ls"],
        &["images", "--digests"],
        &["images", "--no-trunc"],
        &["images", "-q"],
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        &[
            "images",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}",
        ],
        &["images", "busybox"],
        &["images", "--filter", "reference=localhost:5999/*/*"],
        &["history", "busybox"],
        &["history", "-q", "busybox"],
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CreatedBy}} {{.Size}}",
            "busybox",
        ],
    ] {
        let (b, k) = d.both_settled(args);
        assert_eq!(b.code(), 0, "{args:?}: {}", b.err());
        // docker walks an image's tags through a Go map: rows of one image come in any
        // order. The header stays first.
        let rows = |s: &str| -> (String, Vec<String>) {
            let mut l: Vec<String> = s.lines().map(String::from).collect();
            let first =
                if args.contains(&"--format") && !args.iter().any(|a| a.starts_with("table")) {
                    String::new()
                } else {
                    l.remove(0)
                };
            l.sort();
            (first, l)
        };
        assert_eq!(rows(&b.out()), rows(&k.out()), "{args:?}");
    }
    let parse = |s: &str| -> Vec<serde_json::Value> {
        let mut v: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v.sort_by_key(|x| x["Repository"].as_str().unwrap_or("").to_string());
        v
    };
    // Key order differs (berth prints JSON keys sorted), so the bytes never match and
    // both_settled cannot tell a relative time that moved between the two runs: compare the
    // parsed values, again when a "CreatedSince" crossed a boundary in between.
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (b, k) = d.both(&["images", "--format", "{{json .}}"]);
        last = (parse(&b.out()), parse(&k.out()));
        if last.0 == last.1 {
            break;
        }
    }
    assert_eq!(last.0, last.1);
    assert_eq!(
        d.bok(&["inspect", "--format", "{{.RepoTags}}", "busybox"]),
        d.ok(&["inspect", "--format", "{{.RepoTags}}", "busybox"])
    );
    // rmi of a tag untags it, as docker prints it.
    let (b, _) = (d.berth(&["rmi", "localhost:5999/team/box:v1"]), ());
    assert_eq!(b.out(), "Untagged: localhost:5999/team/box:v1\n");
}

#[test]
fn save_load_import() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    d.bok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 500_000);
    d.bok(&["rmi", "busybox"]);
    let o = d.berth(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(o.code(), 0, "{}", o.err());
    assert!(
        o.out().contains("Loaded image: busybox:latest"),
        "{}",
        o.out()
    );
    assert_eq!(d.bok(&["run", "--rm", "busybox", "echo", "ok"]), "ok");
    // save to stdout, load from stdin.
    let saved = d.berth(&["save", "busybox"]);
    assert_eq!(saved.code(), 0);
    d.bok(&["tag", "busybox", "other:1"]);
    d.bok(&["rmi", "busybox", "other:1"]);
    let o = d.berth_stdin(&["load"], &saved.stdout);
    assert_eq!(o.code(), 0, "{}", o.err());
    // import a rootfs tar with --change.
    let rootfs = dir.path().join("rootfs.tar");
    berth_testutil::Bundle::busybox(&["sh"])
        .unwrap()
        .write_rootfs_tar(&rootfs)
        .unwrap();
    let id = d.bok(&[
        "import",
        "--change",
        "ENV IMPORTED=yes",
        "--change",
        "CMD [\"sh\", \"-c\", \"echo $IMPORTED\"]",
        rootfs.to_str().unwrap(),
        "mine:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.bok(&["run", "--rm", "mine:1"]), "yes");
}

#[test]
fn volumes_and_system() {
    let d = TestDaemon::start();
    assert_eq!(
        d.bok(&["volume", "create", "--label", "k=v", "data"]),
        "data"
    );
    let anon = d.bok(&["volume", "create"]);
    assert_eq!(anon.len(), 64, "{anon}");
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}",
        ],
        &["volume", "ls", "--filter", "label=k=v"],
        &[
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
            "data",
        ],
        &["system", "df"],
        &[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ],
    ] {
        let (b, k) = d.both_settled(args);
        assert_eq!(b.code(), 0, "{args:?}: {}", b.err());
        assert_eq!(b.out(), k.out(), "{args:?}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&d.bok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(d.bok(&["volume", "rm", "data"]), "data");
    let (b, k) = d.both(&["volume", "rm", "nosuch"]);
    assert_eq!((b.code(), b.err()), (k.code(), k.err()));
    let o = d.bok(&["volume", "prune", "-f"]);
    assert!(o.contains(&anon), "{o}");
    assert!(o.ends_with("Total reclaimed space: 0B"), "{o}");
    d.bok(&["run", "--name", "stopped", "busybox", "true"]);
    let o = d.bok(&["container", "prune", "-f"]);
    assert!(o.starts_with("Deleted Containers:\n"), "{o}");
    let o = d.bok(&["system", "prune", "-f"]);
    assert!(o.contains("Total reclaimed space:"), "{o}");
    let (b, k) = d.both(&["system", "df"]);
    assert_eq!(titles(&b.out()), titles(&k.out()));
}

#[test]
fn events_since_until() {
    let d = TestDaemon::start();
    let start = d.bok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!start.is_empty());
    let since = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1)
    .to_string();
    d.bok(&["run", "--name", "ev", "busybox", "true"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let args = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ];
    let (b, k) = d.both(&args);
    assert_eq!(b.code(), 0, "{}", b.err());
    assert_eq!(b.out(), k.out());
    assert!(b.out().contains("container start ev"), "{}", b.out());
    let plain = d.bok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
    ]);
    assert!(plain.contains(" container die "), "{plain}");
    assert!(plain.contains("name=ev"), "{plain}");
}

/// Debian's docker-registry on a free loopback port (optionally with htpasswd auth).
struct Registry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(user: Option<(&str, &str)>) -> Registry {
        const BIN: &str = "/usr/bin/docker-registry";
        assert!(
            Path::new(BIN).exists(),
            "{BIN} is missing: apt-get install docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let auth = match user {
            None => String::new(),
            Some((u, p)) => {
                let out = Command::new("htpasswd").args(["-Bbn", u, p]).output();
                let out = out.expect("htpasswd is missing: apt-get install apache2-utils");
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    f.display()
                )
            }
        };
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let cfg = dir.path().join("config.yml");
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: s\n{auth}",
                    storage.display()
                ),
            )
            .unwrap();
            let mut child = Command::new(BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        host: format!("127.0.0.1:{port}"),
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_pull_through_a_registry() {
    let d = TestDaemon::start();
    let r = Registry::start(None);
    let name = format!("{}/lib/box:v1", r.host);
    d.bok(&["tag", "busybox", &name]);
    let o = d.berth(&["push", &name]);
    assert_eq!(o.code(), 0, "{}\n{}", o.out(), o.err());
    // Not a terminal: plain lines, no progress bars.
    assert!(!o.out().contains('\r'), "{:?}", o.out());
    assert!(
        o.out().contains("Pushed") || o.out().contains("exists"),
        "{}",
        o.out()
    );
    d.bok(&["rmi", &name]);
    let o = d.berth(&["pull", &name]);
    assert_eq!(o.code(), 0, "{}\n{}", o.out(), o.err());
    assert!(o.out().ends_with(&format!("{name}\n")), "{}", o.out());
    assert!(o.out().contains("Digest: sha256:"), "{}", o.out());
    d.bok(&["rmi", &name]);
    let o = d.berth(&["pull", "-q", &name]);
    assert_eq!((o.code(), o.out()), (0, format!("{name}\n")), "{}", o.err());
    // On a terminal: a line per layer with its status, and the final name.
    d.bok(&["rmi", &name]);
    let mut p = d.berth_pty(&["pull", &name]);
    common::wait_until("a layer's final status", Duration::from_secs(30), || {
        (p.seen_within(": Pull complete", Duration::from_millis(100))
            || p.seen_within(": Already exists", Duration::ZERO))
        .then_some(())
    });
    p.expect("Status: ", Duration::from_secs(30));
    assert_eq!(p.wait(Duration::from_secs(30)), 0, "{}", p.transcript());
    // run pulls a missing image first, on stderr.
    d.bok(&["rmi", &name]);
    let o = d.berth(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!((o.code(), o.out().as_str()), (0, "pulled\n"), "{}", o.err());
    assert!(
        o.err()
            .contains(&format!("Unable to find image '{name}' locally")),
        "{}",
        o.err()
    );
    // A missing tag fails with the daemon's error, status 1 as docker.
    let missing = format!("{}/lib/box:nope", r.host);
    let (b, k) = d.both(&["pull", &missing]);
    assert_eq!(b.code(), k.code(), "{} / {}", b.err(), k.err());
    let (b, k) = d.both(&["run", "--rm", &missing]);
    assert_eq!(b.code(), k.code(), "{} / {}", b.err(), k.err());
}

#[test]
fn login_writes_docker_config() {
    let d = TestDaemon::start();
    let r = Registry::start(Some(("alice", "s3cret")));
    let name = format!("{}/priv/box:v1", r.host);
    d.bok(&["tag", "busybox", &name]);
    let o = d.berth(&["push", &name]);
    assert_ne!(o.code(), 0, "push without login must fail: {}", o.out());
    let o = d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &r.host],
        b"wrong\n",
    );
    assert_ne!(o.code(), 0);
    let o = d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &r.host],
        b"s3cret\n",
    );
    assert_eq!(o.code(), 0, "{}", o.err());
    assert!(o.out().contains("Login Succeeded"), "{}", o.out());
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.docker_config.join("config.json")).unwrap())
            .unwrap();
    // As docker writes it: base64 of user:password under auths.<registry>.auth.
    assert_eq!(cfg["auths"][&r.host]["auth"], "YWxpY2U6czNjcmV0");
    // docker's CLI reads what berth wrote, and the other way round.
    let o = d.docker(&["push", &name]);
    assert_eq!(o.code(), 0, "docker push with berth's login: {}", o.err());
    let o = d.berth(&["push", &name]);
    assert_eq!(o.code(), 0, "{}", o.err());
    d.bok(&["rmi", &name]);
    d.bok(&["pull", "-q", &name]);
    assert_eq!(
        d.bok(&["logout", &r.host]),
        format!("Removing login credentials for {}", r.host)
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.docker_config.join("config.json")).unwrap())
            .unwrap();
    assert!(cfg["auths"].get(&r.host).is_none());
    assert_eq!(
        d.bok(&["logout", &r.host]),
        format!("Not logged in to {}", r.host)
    );
}
