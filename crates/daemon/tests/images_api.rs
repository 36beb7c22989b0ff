//! The image endpoints of berthd driven by the real docker CLI and raw HTTP: import, images
//! (formats, filters), inspect, tag, rmi and its conflicts, history, save/load, pull/push
//! through a local docker-registry, login, prune, and bad input that must leave the store as
//! it was. Each test starts its own berthd on its own temp dirs, stopped in Drop.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const DOCKER: &str = "/usr/local/bin/docker";
const REGISTRY: &str = "/usr/bin/docker-registry";

fn require(path: &str, hint: &str) {
    assert!(Path::new(path).exists(), "{path} is missing: {hint}");
}

/// The busybox rootfs tar every test imports (built once per test binary).
fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &TAR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rootfs.tar");
        let bundle = berth_testutil::Bundle::busybox(&["sh"]).unwrap();
        bundle.write_rootfs_tar(&p).unwrap();
        (dir, p)
    })
    .1
}

struct Berthd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Berthd {
    fn start() -> Berthd {
        require(
            DOCKER,
            "install the docker CLI (docker.io or docker-ce-cli)",
        );
        berth_testutil::require_root().unwrap();
        let dir = tempfile::Builder::new().prefix("bimg").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dc")).unwrap();
        let log = std::fs::File::create(dir.path().join("berthd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            // No bridge or nftables table in the host namespace from a test daemon.
            .args(["--bridge=none", "--iptables=false"])
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", dir.path().join("s.sock").display()))
            .arg("--pidfile")
            .arg(dir.path().join("berthd.pid"))
            .arg("--config-file")
            .arg(dir.path().join("absent.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Berthd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(d.sock()).is_err() {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("berthd exited with {st}: {}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not listen: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("dc"))
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().unwrap()
    }

    /// Runs docker and returns stdout; fails the test on a non-zero exit.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs docker expecting failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// Raw HTTP: (status, body).
    fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[&str],
    ) -> (u16, Vec<u8>) {
        let out = self.dir.path().join(format!("curl-{}", rand_suffix()));
        let mut c = Command::new("curl");
        c.arg("-s")
            .arg("--unix-socket")
            .arg(self.sock())
            .args(["-X", method, "-o"])
            .arg(&out)
            .args(["-w", "%{http_code}"]);
        for h in headers {
            c.args(["-H", h]);
        }
        if body.is_some() {
            c.args(["--data-binary", "@-"]);
        }
        c.arg(format!("http://localhost{path}"));
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            if let Some(b) = body {
                stdin.write_all(b).unwrap();
            }
        }
        let o = child.wait_with_output().unwrap();
        let code: u16 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let body = std::fs::read(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        (code, body)
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (code, body) = self.curl("GET", path, None, &[]);
        (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn import(&self, name: &str, extra: &[&str]) -> String {
        let tar = rootfs_tar().to_string_lossy().into_owned();
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        args.push(&tar);
        if !name.is_empty() {
            args.push(name);
        }
        let id = self.ok(&args).trim().to_string();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        id
    }

    fn blob_count(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("data/content/blobs/sha256"))
            .map(|r| r.count())
            .unwrap_or(0)
    }

    fn images(&self) -> Vec<Value> {
        let (code, v) = self.get_json("/images/json");
        assert_eq!(code, 200);
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        // Containers first: their shims outlive berthd.
        if let Ok(o) = self.docker_cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.docker_cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on a free loopback port (htpasswd auth when given a user).
struct Registry {
    child: Child,
    host: String,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start(user: Option<(&str, &str)>) -> Registry {
        require(REGISTRY, "apt-get install docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let auth = match user {
            None => String::new(),
            Some((u, p)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "htpasswd failed (apt-get install apache2-utils)"
                );
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    f.display()
                )
            }
        };
        for _ in 0..5 {
            let port = free_port();
            let cfg = dir.path().join("config.yml");
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n{auth}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(REGISTRY)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        host: format!("127.0.0.1:{port}"),
                        dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(30));
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
fn import_images_inspect_tag_history() {
    let d = Berthd::start();
    let id = d.import(
        "bb:1",
        &[
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "LABEL team=core",
            "-m",
            "first import",
        ],
    );
    d.ok(&["tag", "bb:1", "localhost:5000/x/y:2"]);

    let rows = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let short = &id[7..19];
    assert!(rows.contains(&format!("bb:1 {short}")), "{rows}");
    assert!(
        rows.contains(&format!("localhost:5000/x/y:2 {short}")),
        "{rows}"
    );
    let q = d.ok(&["images", "-q"]);
    assert!(q.lines().all(|l| l == short), "{q}");
    // Filters: reference (glob), label, dangling.
    let f = d.ok(&[
        "images",
        "--filter",
        "reference=bb",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(f.trim(), "bb:1");
    let f = d.ok(&["images", "--filter", "reference=localhost:5000/*/*", "-q"]);
    assert_eq!(f.trim(), short);
    let f = d.ok(&["images", "--filter", "label=team=core", "-q"]);
    assert!(f.contains(short), "{f}");
    let f = d.ok(&["images", "--filter", "label=team=other", "-q"]);
    assert!(f.trim().is_empty(), "{f}");
    let f = d.ok(&["images", "--filter", "dangling=true", "-q"]);
    assert!(f.trim().is_empty(), "{f}");

    // Inspect through the CLI and every way docker-py names an image.
    let v: Value = serde_json::from_str(&d.ok(&["inspect", "bb:1"])).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(img["Config"]["Labels"]["team"], "core");
    assert_eq!(img["ContainerConfig"], serde_json::json!({}));
    assert_eq!(img["Comment"], "first import");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags, ["bb:1", "localhost:5000/x/y:2"]);
    for name in [
        id.clone(),
        id[7..].to_string(),
        short.to_string(),
        id[..15].to_string(),
    ] {
        let (code, v) = d.get_json(&format!("/images/{name}/json"));
        assert_eq!(code, 200, "{name}");
        assert_eq!(v["Id"], id.as_str());
    }
    let (code, v) = d.get_json("/images/localhost:5000/x/y:2/json");
    assert_eq!((code, v["Id"].as_str()), (200, Some(id.as_str())));
    let fmt = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Cmd}} {{.Os}}",
        "bb:1",
    ]);
    assert_eq!(fmt.trim(), "[sh] linux");

    // Tag with the long form the CLI sends: 201, shown short.
    let (code, _) = d.curl(
        "POST",
        "/images/bb:1/tag?repo=docker.io/library/long&tag=t",
        None,
        &[],
    );
    assert_eq!(code, 201);
    assert!(d
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("long:t"));

    let h = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "bb:1",
    ]);
    assert_eq!(h.trim(), format!("{id}|first import"));
    let (code, v) = d.get_json("/images/bb:1/history");
    assert_eq!(code, 200);
    assert_eq!(v[0]["Tags"].as_array().unwrap().len(), 3);

    // API versions: VirtualSize before 1.44, `<none>` placeholders before 1.43.
    let untagged = d.import("", &[]);
    let (_, old) = d.get_json("/v1.41/images/json");
    let e = old
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Id"] == untagged.as_str())
        .unwrap();
    assert_eq!(e["RepoTags"], serde_json::json!(["<none>:<none>"]));
    assert!(e["VirtualSize"].is_i64());
    let (_, new) = d.get_json("/images/json");
    let e = new
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Id"] == untagged.as_str())
        .unwrap();
    assert_eq!(e["RepoTags"], serde_json::json!([]));
    assert!(e.get("VirtualSize").is_none());
    let f = d.ok(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(f.trim(), &untagged[7..19]);

    // Events: import and tag, as Docker names them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (code, body) = d.curl(
        "GET",
        &format!(
            "/events?since=0&until={}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D",
            now + 1
        ),
        None,
        &[],
    );
    assert_eq!(code, 200);
    let evs = lines(&body);
    assert!(
        evs.iter()
            .any(|e| e["Action"] == "import" && e["id"] == id.as_str()),
        "{evs:?}"
    );
    assert!(evs
        .iter()
        .any(|e| e["Action"] == "tag" && e["Actor"]["Attributes"]["name"] == "long:t"));
}

#[test]
fn rmi_untags_deletes_and_refuses_images_in_use() {
    let d = Berthd::start();
    let blobs_before = d.blob_count();
    let id = d.import("bb:1", &["-c", r#"CMD ["sh"]"#]);
    let short = &id[7..19];
    let c = d.ok(&["create", "bb:1"]).trim().to_string();
    let e = d.fails(&["rmi", "bb:1"]);
    assert!(
        e.contains(&format!(
            "conflict: unable to remove repository reference \"bb:1\" (must force) - container {} is using its referenced image {short}",
            &c[..12]
        )),
        "{e}"
    );
    let (code, _) = d.curl("DELETE", "/images/bb:1", None, &[]);
    assert_eq!(code, 409);
    let e = d.fails(&["rmi", short]);
    assert!(
        e.contains(&format!(
            "unable to delete {short} (must be forced) - image is being used by stopped container {}",
            &c[..12]
        )),
        "{e}"
    );
    // A second tag goes on its own even while the image is used.
    d.ok(&["tag", "bb:1", "bb:2"]);
    assert_eq!(d.ok(&["rmi", "bb:2"]).trim(), "Untagged: bb:2");
    d.ok(&["rm", &c]);
    let out = d.ok(&["rmi", "bb:1"]);
    assert!(out.contains("Untagged: bb:1"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(d.images().is_empty());
    assert_eq!(
        d.blob_count(),
        blobs_before,
        "the image's blobs were collected"
    );
    let e = d.fails(&["rmi", "bb:1"]);
    assert!(e.contains("No such image: bb:1"), "{e}");

    // Names that are also fixed routes.
    d.import("json", &[]);
    d.ok(&["tag", "json", "load"]);
    assert_eq!(d.ok(&["rmi", "load"]).trim(), "Untagged: load:latest");
    assert!(d.ok(&["rmi", "json"]).contains("Deleted: sha256:"));

    // By id with two tags: refused unless forced, as Docker does.
    let id = d.import("a:1", &[]);
    d.ok(&["tag", "a:1", "b:1"]);
    let e = d.fails(&["rmi", &id[7..19]]);
    assert!(e.contains("referenced in multiple repositories"), "{e}");
    let out = d.ok(&["rmi", "-f", &id[7..19]]);
    assert!(
        out.contains("Untagged: a:1") && out.contains("Untagged: b:1"),
        "{out}"
    );
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
}

#[test]
fn running_containers_image_cannot_be_force_removed() {
    let d = Berthd::start();
    let shim = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth-shim");
    require(
        &shim.to_string_lossy(),
        "build it first: cargo build -p berth-shim (same target dir)",
    );
    let id = d.import("bb:run", &["-c", r#"CMD ["sh"]"#]);
    let c = d
        .ok(&["run", "-d", "bb:run", "sleep", "600"])
        .trim()
        .to_string();
    let e = d.fails(&["rmi", "-f", &id[7..19]]);
    assert!(
        e.contains(&format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            &id[7..19],
            &c[..12]
        )),
        "{e}"
    );
    assert!(d.ok(&["images", "-q"]).contains(&id[7..19]));
    d.ok(&["rm", "-f", &c]);
}

#[test]
fn save_and_load_round_trip() {
    let d = Berthd::start();
    let id = d.import("bb:1", &["-c", "ENV A=b"]);
    d.ok(&["tag", "bb:1", "localhost:5000/other/name:x"]);
    let out = d.dir.path().join("save.tar");
    let out_s = out.to_string_lossy().into_owned();
    d.ok(&["save", "-o", &out_s, "bb:1", "localhost:5000/other/name:x"]);
    let listing = Command::new("tar").arg("tf").arg(&out).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("manifest.json") && listing.contains("index.json"),
        "{listing}"
    );
    // Raw API: several names, streamed as a tar.
    let (code, body) = d.curl(
        "GET",
        "/images/get?names=bb:1&names=localhost:5000/other/name:x",
        None,
        &[],
    );
    assert_eq!(code, 200);
    assert!(body.len() > 100_000);

    d.ok(&["rmi", "bb:1", "localhost:5000/other/name:x"]);
    assert!(d.images().is_empty());
    let loaded = d.ok(&["load", "-i", &out_s]);
    assert!(loaded.contains("Loaded image: bb:1"), "{loaded}");
    assert!(
        loaded.contains("Loaded image: localhost:5000/other/name:x"),
        "{loaded}"
    );
    let v: Value = serde_json::from_str(&d.ok(&["inspect", "bb:1"])).unwrap();
    assert_eq!(
        v[0]["Id"],
        id.as_str(),
        "same image id after the round trip"
    );
    assert_eq!(v[0]["Config"]["Env"], serde_json::json!(["A=b"]));
    // The loaded image is unpacked: a container can be created from it.
    d.ok(&["create", "bb:1", "sh"]);

    // Saved by id: no names, loads as "Loaded image ID".
    let by_id = d.dir.path().join("byid.tar");
    let mut f = std::fs::File::create(&by_id).unwrap();
    let o = d.docker(&["save", &id[7..19]]);
    assert!(o.status.success());
    f.write_all(&o.stdout).unwrap();
    let (code, body) = d.curl(
        "POST",
        "/images/load?quiet=1",
        Some(&std::fs::read(&by_id).unwrap()),
        &[],
    );
    assert_eq!(code, 200);
    let l = lines(&body);
    assert_eq!(l[0]["stream"], format!("Loaded image ID: {id}\n"));

    // Unknown names: 404 before any output.
    let (code, body) = d.curl("GET", "/images/get?names=bb:1&names=nope", None, &[]);
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn push_and_pull_through_a_local_registry() {
    let d = Berthd::start();
    let reg = Registry::start(None);
    let name = format!("{}/team/bb:v1", reg.host);
    let id = d.import(&name, &["-c", r#"CMD ["sh"]"#]);
    let out = d.ok(&["push", &name]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/team/bb]",
            reg.host
        )),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");

    // Raw push: progress lines and the final aux that compose reads.
    let (code, body) = d.curl(
        "POST",
        &format!("/images/{}/team/bb/push?tag=v1", reg.host),
        None,
        &["X-Registry-Auth: e30="],
    );
    assert_eq!(code, 200);
    let l = lines(&body);
    assert!(
        l.iter().any(|x| x["status"] == "Layer already exists"),
        "{l:?}"
    );
    let aux = &l.last().unwrap()["aux"];
    assert_eq!(aux["Tag"], "v1");
    let digest = aux["Digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:") && aux["Size"].as_u64().unwrap() > 0);

    d.ok(&["rmi", &name]);
    assert!(d.images().is_empty());
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("v1: Pulling from team/bb"), "{out}");
    assert!(
        out.contains(": Pulling fs layer") && out.contains(": Pull complete"),
        "{out}"
    );
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let v: Value = serde_json::from_str(&d.ok(&["inspect", &name])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(
        v[0]["RepoDigests"],
        serde_json::json!([format!("{}/team/bb@{digest}", reg.host)])
    );
    let out = d.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    assert!(
        out.contains(": Already exists") && !out.contains("Pulling fs layer"),
        "{out}"
    );
    let digests = d.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(digests.trim(), digest);
    // By digest.
    d.ok(&["rmi", &name]);
    let out = d.ok(&["pull", &format!("{}/team/bb@{digest}", reg.host)]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    d.ok(&["create", &format!("{}/team/bb@{digest}", reg.host)]);

    // Raw pull: Docker's JSON progress lines.
    let (code, body) = d.curl(
        "POST",
        &format!("/images/create?fromImage={}/team/bb&tag=v1", reg.host),
        None,
        &[],
    );
    assert_eq!(code, 200);
    let l = lines(&body);
    assert_eq!(l[0]["status"], "Pulling from team/bb");
    assert_eq!(l[0]["id"], "v1");
    assert!(
        l.iter()
            .any(|x| x["status"] == "Already exists" && x["id"].is_string()),
        "{l:?}"
    );
    assert!(
        l.iter().any(|x| x["status"] == format!("Digest: {digest}")),
        "{l:?}"
    );

    // Unknown tag and repository: 404 before any output, in Docker's words.
    let e = d.fails(&["pull", &format!("{}/team/bb:nope", reg.host)]);
    assert!(
        e.contains(&format!("manifest for {}/team/bb:nope not found", reg.host)),
        "{e}"
    );
    let (code, body) = d.curl(
        "POST",
        &format!("/images/create?fromImage={}/no/such&tag=1", reg.host),
        None,
        &[],
    );
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    // A single-platform image pulled for another platform: refused before any output.
    let (code, body) = d.curl(
        "POST",
        &format!(
            "/images/create?fromImage={}/team/bb&tag=v1&platform=linux/s390x",
            reg.host
        ),
        None,
        &[],
    );
    assert_eq!(code, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("does not match the specified platform"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Push of an image that is not here.
    let e = d.fails(&["push", &format!("{}/team/absent:1", reg.host)]);
    assert!(
        e.contains("An image does not exist locally with the tag"),
        "{e}"
    );

    // Events: push and pull.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_, body) = d.curl(
        "GET",
        &format!("/events?since=0&until={}", now + 1),
        None,
        &[],
    );
    let evs = lines(&body);
    assert!(
        evs.iter()
            .any(|e| e["Action"] == "push" && e["id"] == name.as_str()),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| e["Action"] == "pull" && e["id"] == name.as_str()),
        "{evs:?}"
    );
}

#[test]
fn login_push_and_pull_with_credentials() {
    let d = Berthd::start();
    let reg = Registry::start(Some(("berth", "s3cret")));
    let name = format!("{}/private/bb:1", reg.host);
    d.import(&name, &[]);
    let e = d.fails(&["push", &name]);
    assert!(e.contains("authentication required"), "{e}");

    let mut c = d.docker_cmd(&["login", "-u", "berth", "--password-stdin", &reg.host]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let (code, _) = d.curl(
        "POST",
        "/auth",
        Some(
            format!(
                r#"{{"username":"berth","password":"wrong","serveraddress":"{}"}}"#,
                reg.host
            )
            .as_bytes(),
        ),
        &["Content-Type: application/json"],
    );
    assert_eq!(code, 401);
    let (code, body) = d.curl(
        "POST",
        "/auth",
        Some(
            format!(
                r#"{{"username":"berth","password":"s3cret","serveraddress":"{}"}}"#,
                reg.host
            )
            .as_bytes(),
        ),
        &["Content-Type: application/json"],
    );
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Status"], "Login Succeeded");

    let mut c = d.docker_cmd(&["login", "-u", "berth", "--password-stdin", &reg.host]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The CLI now sends X-Registry-Auth with the stored credentials.
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
}

#[test]
fn prune_removes_unused_images_and_their_blobs() {
    let d = Berthd::start();
    let tagged = d.import("keep:1", &[]);
    let untagged = d.import("", &["-c", "ENV X=1"]);
    let used = d.import("used:1", &["-c", r#"CMD ["sh"]"#, "-c", "ENV U=1"]);
    d.ok(&["create", "used:1"]);
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {untagged}")), "{out}");
    let ids: Vec<String> = d
        .images()
        .iter()
        .map(|i| i["Id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&tagged) && ids.contains(&used) && !ids.contains(&untagged),
        "{ids:?}"
    );

    let (code, v) = {
        let (c, b) = d.curl(
            "POST",
            "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
            None,
            &[],
        );
        (c, serde_json::from_slice::<Value>(&b).unwrap())
    };
    assert_eq!(code, 200);
    let deleted = v["ImagesDeleted"].to_string();
    assert!(deleted.contains(&tagged) && !deleted.contains(&used), "{v}");
    assert!(v["SpaceReclaimed"].as_i64().unwrap() > 0, "{v}");
    let ids: Vec<String> = d
        .images()
        .iter()
        .map(|i| i["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![used.clone()]);
    // The used image is still whole: its container can be recreated.
    d.ok(&["create", "used:1"]);
    let (code, _) = d.curl(
        "POST",
        "/images/prune?filters=%7B%22bogus%22%3A%5B%221%22%5D%7D",
        None,
        &[],
    );
    assert_eq!(code, 400);
}

#[test]
fn bad_input_is_refused_and_nothing_is_lost() {
    let d = Berthd::start();
    let id = d.import("bb:1", &["-c", r#"CMD ["sh"]"#]);
    let before_images = d.images();
    let before_blobs = d.blob_count();

    let e = d.fails(&["image", "inspect", "nope"]);
    assert!(e.contains("No such image: nope"), "{e}");
    let (code, v) = d.get_json("/images/nope/json");
    assert_eq!(
        (code, v["message"].as_str()),
        (404, Some("No such image: nope:latest"))
    );
    let (code, _) = d.get_json("/images/nope/history");
    assert_eq!(code, 404);
    let (code, _) = d.curl("DELETE", "/images/nope", None, &[]);
    assert_eq!(code, 404);
    // Bad references.
    let (code, v) = d.curl(
        "POST",
        "/images/create?fromImage=Bad%2FName&tag=1",
        None,
        &[],
    );
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&v));
    assert!(String::from_utf8_lossy(&v).contains("invalid reference format"));
    let (code, _) = d.curl("POST", "/images/bb:1/tag?repo=UPPER&tag=x", None, &[]);
    assert_eq!(code, 400);
    let (code, _) = d.curl("POST", "/images/bb:1/tag?repo=ok&tag=bad%20tag", None, &[]);
    assert_eq!(code, 400);
    let (code, _) = d.curl("POST", "/images/create", None, &[]);
    assert_eq!(code, 400);
    let (code, _) = d.curl(
        "POST",
        "/images/create?fromSrc=http://example.invalid/x.tar",
        None,
        &[],
    );
    assert_eq!(code, 400);
    let (code, _) = d.curl(
        "POST",
        "/images/create?fromImage=localhost:1/x&tag=1",
        None,
        &["X-Registry-Auth: %%%"],
    );
    assert_eq!(code, 400);
    let (code, _) = d.curl(
        "POST",
        "/images/create?fromImage=busybox&platform=linux/amd64/v9/extra",
        None,
        &[],
    );
    assert_eq!(code, 400);
    let (code, _) = d.curl(
        "GET",
        "/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        None,
        &[],
    );
    assert_eq!(code, 400);
    let (code, _) = d.curl(
        "GET",
        "/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D",
        None,
        &[],
    );
    assert_eq!(code, 400);
    // Garbage archives and rootfs tars.
    let (code, v) = d.curl(
        "POST",
        "/images/load",
        Some(b"this is not a tar archive at all"),
        &[],
    );
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&v));
    let garbage = d.dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![7u8; 4096]).unwrap();
    let e = d.fails(&["load", "-i", &garbage.to_string_lossy()]);
    assert!(e.contains("Error response from daemon"), "{e}");
    let e = d.fails(&["import", &garbage.to_string_lossy(), "junk:1"]);
    assert!(e.contains("not a tar archive"), "{e}");
    let (code, _) = d.curl(
        "POST",
        "/images/create?fromSrc=-&repo=junk",
        Some(b"nope"),
        &[],
    );
    assert_eq!(code, 400);
    let e = d.fails(&[
        "import",
        "-c",
        "RUN rm -rf /",
        &rootfs_tar().to_string_lossy(),
        "junk:2",
    ]);
    assert!(e.contains("RUN is not one of"), "{e}");
    // A load archive whose blob was tampered with.
    let good = d.dir.path().join("good.tar");
    d.ok(&["save", "-o", &good.to_string_lossy(), "bb:1"]);
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    let (code, _) = d.curl("POST", "/images/load", Some(&bytes), &[]);
    assert_eq!(code, 400);

    assert_eq!(d.images(), before_images, "the image list is unchanged");
    assert_eq!(d.blob_count(), before_blobs, "no blob added or lost");
    let v: Value = serde_json::from_str(&d.ok(&["inspect", "bb:1"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    d.ok(&["create", "bb:1"]);
}

#[test]
fn a_pull_that_fails_midway_ends_with_an_error_line_and_stores_nothing() {
    let d = Berthd::start();
    let reg = Registry::start(None);
    let name = format!("{}/broken/bb:1", reg.host);
    d.import(&name, &[]);
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    let blobs_before = d.blob_count();
    // Take the layer blob out of the registry's storage: the manifest still resolves (no error
    // before the reply), the download fails after the progress started.
    let mut removed = 0;
    let blobs = reg
        .dir
        .path()
        .join("storage/docker/registry/v2/blobs/sha256");
    for prefix in std::fs::read_dir(&blobs).unwrap().flatten() {
        for b in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            let data = b.path().join("data");
            let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
            // The layer is the only large blob (config and manifest are small JSON).
            if size > 100_000 {
                std::fs::remove_file(&data).unwrap();
                removed += 1;
            }
        }
    }
    assert_eq!(removed, 1);
    let (code, body) = d.curl(
        "POST",
        &format!("/images/create?fromImage={}/broken/bb&tag=1", reg.host),
        None,
        &[],
    );
    assert_eq!(code, 200);
    let l = lines(&body);
    let last = l.last().unwrap();
    let msg = last["errorDetail"]["message"].as_str().unwrap();
    assert_eq!(last["error"], msg, "{last}");
    assert!(!l.iter().any(|x| x["status"]
        .as_str()
        .is_some_and(|s| s.starts_with("Status:"))));
    let e = d.fails(&["pull", &name]);
    assert!(e.contains("not found"), "{e}");
    assert!(d.images().is_empty(), "no image recorded");
    assert_eq!(
        d.blob_count(),
        blobs_before,
        "the pull's blobs were taken out again"
    );
}
