//! Interop of berth-registry with real clients: a private dockerd (Debian's docker.io) pushes and
//! pulls, with basic auth and with token auth; skopeo copies in and out byte for byte; podman
//! pushes and pulls; berth's own client pushes and pulls; concurrent pushes of one blob from
//! several clients leave one correct blob. A missing tool fails the test naming its package.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod conformance_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_distribution::{ClientConfig, RegistryClient, Repository};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_testutil::harness::{busybox_rootfs_tar, run_with_timeout, wait_until};
use bytes::Bytes;
use conformance_support::{data, request, BerthOptions, BerthRegistry, OCI_MANIFEST};

const T: Duration = Duration::from_secs(120);

fn require(bin: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(bin).is_file();
    assert!(found, "{bin} not found: apt-get install {package}");
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn busybox_tar() -> PathBuf {
    busybox_rootfs_tar(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The raw manifest a registry serves for `repo:reference`.
fn manifest(host: &str, repo: &str, reference: &str) -> (String, Vec<u8>) {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
    let r = request(
        host,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", accept.to_string())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}: {}", r.what(), r.text());
    (r.header("Content-Type").unwrap_or("").to_string(), r.body)
}

/// A private dockerd: its own data root, exec root and socket; no bridge, no iptables. Killed
/// by its pid on drop (containerd, which it started, exits with it).
struct Dockerd {
    child: Child,
    sock: String,
    cli_config: PathBuf,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start() -> Dockerd {
        require("dockerd", "docker.io");
        require("docker", "docker.io");
        // Short paths: containerd's sockets live under the exec root.
        let dir = tempfile::Builder::new()
            .prefix("bdk")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        for d in ["data", "exec", "cli"] {
            std::fs::create_dir(p.join(d)).unwrap();
        }
        let sock = format!("{}/d.sock", p.display());
        std::fs::write(
            p.join("daemon.json"),
            format!("{{\"deprecated-key-path\": \"{}/key.json\"}}", p.display()),
        )
        .unwrap();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("d.pid"))
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{sock}"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver=vfs",
                "--log-level=warn",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Dockerd {
            child,
            sock,
            cli_config: p.join("cli"),
            dir,
        };
        wait_until("dockerd answers", Duration::from_secs(60), || {
            let mut c = d.cmd(&["version", "--format", "{{.Server.Version}}"]);
            c.stderr(Stdio::null());
            let out = run_with_timeout(c, Duration::from_secs(10), None);
            out.status.success().then_some(())
        });
        d
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock))
            .env("DOCKER_CONFIG", &self.cli_config)
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.cmd(args), T, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        if !out.status.success() {
            let log = self.log();
            let tail = &log[log.len().saturating_sub(3000)..];
            eprintln!("dockerd log (tail):\n{tail}");
        }
        ok(out, &format!("docker {args:?}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM first: dockerd stops its containerd and unmounts what it mounted.
        // SAFETY: kill(2) on the pid of the child this struct spawned and has not reaped.
        unsafe {
            libc::kill(
                i32::try_from(self.child.id()).unwrap_or(i32::MAX),
                libc::SIGTERM,
            );
        }
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dockerd_pushes_and_pulls_with_basic_and_token_auth() {
    require("htpasswd", "apache2-utils");
    let open = BerthRegistry::start(BerthOptions::default());
    let basic = BerthRegistry::start(BerthOptions {
        users: vec![("alice".into(), "s3cret".into())],
        ..Default::default()
    });
    let token = BerthRegistry::start(BerthOptions {
        users: vec![
            ("alice".into(), "s3cret".into()),
            ("reader".into(), "r3ad".into()),
        ],
        token: true,
        access: vec![
            (
                "alice".into(),
                "*".into(),
                vec!["pull".into(), "push".into()],
            ),
            ("reader".into(), "*".into(), vec!["pull".into()]),
        ],
        ..Default::default()
    });
    let d = Dockerd::start();
    d.ok(&["import", busybox_tar().to_str().unwrap(), "busybox:latest"]);
    let local_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]);

    // Open registry: push, drop the local copy, pull back the same image.
    let img = format!("{}/interop/busybox:v1", open.host);
    d.ok(&["tag", "busybox:latest", &img]);
    let push = d.ok(&["push", &img]);
    assert!(push.contains("digest: sha256:"), "docker push: {push}");
    let pushed: String = push
        .split("digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (ct, body) = manifest(&open.host, "interop/busybox", "v1");
    assert_eq!(ct, "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(Digest::sha256_of(&body).as_str(), pushed);
    d.ok(&["rmi", &img, "busybox:latest"]);
    let pull = d.ok(&["pull", &img]);
    assert!(pull.contains(&pushed), "docker pull: {pull}");
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Id}}", &img]),
        local_id,
        "pulled image differs from the pushed one"
    );
    // By digest too.
    d.ok(&["pull", &format!("{}/interop/busybox@{pushed}", open.host)]);

    // Basic auth: wrong credentials are refused with 401, right ones push.
    let bimg = format!("{}/interop/authed:v1", basic.host);
    d.ok(&["tag", &img, &bimg]);
    let denied = d.run(&["push", &bimg]);
    assert!(!denied.status.success(), "push without login succeeded");
    let bad = run_with_timeout(
        d.cmd(&["login", &basic.host, "-u", "alice", "--password-stdin"]),
        T,
        Some(b"wrong\n"),
    );
    assert!(
        !bad.status.success(),
        "login with a wrong password succeeded"
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("401") || err.contains("unauthorized"),
        "wrong password: {err}"
    );
    ok(
        run_with_timeout(
            d.cmd(&["login", &basic.host, "-u", "alice", "--password-stdin"]),
            T,
            Some(b"s3cret\n"),
        ),
        "docker login",
    );
    d.ok(&["push", &bimg]);
    d.ok(&["rmi", &bimg]);
    d.ok(&["pull", &bimg]);

    // Token auth: alice pushes; reader may pull but not push.
    let timg = format!("{}/interop/tokened:v1", token.host);
    d.ok(&["tag", &img, &timg]);
    ok(
        run_with_timeout(
            d.cmd(&["login", &token.host, "-u", "alice", "--password-stdin"]),
            T,
            Some(b"s3cret\n"),
        ),
        "docker login alice (token)",
    );
    d.ok(&["push", &timg]);
    ok(
        run_with_timeout(
            d.cmd(&["login", &token.host, "-u", "reader", "--password-stdin"]),
            T,
            Some(b"r3ad\n"),
        ),
        "docker login reader (token)",
    );
    d.ok(&["rmi", &timg]);
    d.ok(&["pull", &timg]);
    let rimg = format!("{}/interop/reader-push:v1", token.host);
    d.ok(&["tag", &img, &rimg]);
    let out = d.run(&["push", &rimg]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "reader pushed: {err}");
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "reader push error: {err}"
    );
    // Nothing of it landed.
    let r = request(
        &token.host,
        "GET",
        "/v2/interop/reader-push/tags/list",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401, "tag list without a token: {}", r.text());
    drop(d);
}

fn skopeo(args: &[&str]) -> String {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy").args(args);
    ok(run_with_timeout(c, T, None), &format!("skopeo {args:?}"))
}

/// A one-layer OCI image layout written by hand; returns the manifest bytes.
fn oci_layout(layout: &Path) -> Vec<u8> {
    use std::io::Write;
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let put = |b: &[u8]| {
        let d = Digest::sha256_of(b);
        std::fs::write(blobs.join(d.hex()), b).unwrap();
        d
    };
    let tar = std::fs::read(busybox_tar()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let diff = Digest::sha256_of(&tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff.as_str()]},
    }))
    .unwrap();
    let (cd, ld) = (put(&config), put(&layer));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": ld.as_str(), "size": layer.len()}],
    }))
    .unwrap();
    let md = put(&manifest);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.as_str(),
                           "size": manifest.len(),
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    manifest
}

#[test]
fn skopeo_copies_in_and_out_byte_identical() {
    require("skopeo", "skopeo");
    let reg = BerthRegistry::start(BerthOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let want = oci_layout(&src);
    let dest = format!("docker://{}/skopeo/busybox:v1", reg.host);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &dest,
    ]);
    let (ct, got) = manifest(&reg.host, "skopeo/busybox", "v1");
    assert_eq!(ct, OCI_MANIFEST);
    assert_eq!(got, want, "registry's manifest differs from the copied one");
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert_eq!(raw.as_bytes(), &want[..]);
    // Out again, into a fresh layout: same manifest bytes, same blobs.
    let out = dir.path().join("out");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:v1", out.display()),
    ]);
    let md = Digest::sha256_of(&want);
    let copied = std::fs::read(out.join("blobs/sha256").join(md.hex())).unwrap();
    assert_eq!(copied, want);
    for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let a = std::fs::read(e.path()).unwrap();
        let b = std::fs::read(out.join("blobs/sha256").join(e.file_name())).unwrap();
        assert!(
            a == b,
            "blob {:?} differs after the round trip",
            e.file_name()
        );
    }
    // A docker-archive source too (converted to a Docker schema2 manifest by skopeo).
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!(
            "docker-archive:{}:skopeo/busybox:v2",
            dir.path().join("a.tar").display()
        ),
    ]);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", dir.path().join("a.tar").display()),
        &format!("docker://{}/skopeo/archive:v2", reg.host),
    ]);
    let (ct, body) = manifest(&reg.host, "skopeo/archive", "v2");
    assert_eq!(ct, "application/vnd.docker.distribution.manifest.v2+json");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/skopeo/archive:v2", reg.host),
    ]);
    assert_eq!(raw.as_bytes(), &body[..]);
}

#[test]
fn podman_pushes_and_pulls() {
    require("podman", "podman");
    let reg = BerthRegistry::start(BerthOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let podman = |args: &[&str]| -> Output {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .arg("--storage-driver=vfs")
            .args(args);
        run_with_timeout(c, T, None)
    };
    let img = format!("{}/podman/busybox:v1", reg.host);
    ok(
        podman(&["import", busybox_tar().to_str().unwrap(), &img]),
        "podman import",
    );
    let id = ok(
        podman(&["image", "inspect", "-f", "{{.Id}}", &img]),
        "inspect",
    );
    ok(podman(&["push", "--tls-verify=false", &img]), "podman push");
    let (_, body) = manifest(&reg.host, "podman/busybox", "v1");
    assert!(!body.is_empty());
    ok(podman(&["rmi", &img]), "podman rmi");
    ok(podman(&["pull", "--tls-verify=false", &img]), "podman pull");
    assert_eq!(
        ok(
            podman(&["image", "inspect", "-f", "{{.Id}}", &img]),
            "inspect"
        ),
        id
    );
    // Podman's OCI manifest format too.
    let oimg = format!("{}/podman/busybox:oci", reg.host);
    ok(podman(&["tag", &img, &oimg]), "podman tag");
    ok(
        podman(&["push", "--tls-verify=false", "--format", "oci", &oimg]),
        "podman push --format oci",
    );
    let (ct, _) = manifest(&reg.host, "podman/busybox", "oci");
    assert_eq!(ct, OCI_MANIFEST);
    let _ = podman(&["rmi", "-af"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_client_pushes_and_pulls() {
    let reg = BerthRegistry::start(BerthOptions::default());
    let c = RegistryClient::new(ClientConfig::default()).unwrap();
    let repo = Repository::new(reg.host.clone(), "berth/client");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let small = data(100_000, 1);
    let big = data(5 * 1024 * 1024 + 3, 2);
    let (dc, ds, db) = (
        Digest::sha256_of(config),
        Digest::sha256_of(&small),
        Digest::sha256_of(&big),
    );
    assert_eq!(c.blob_exists(&repo, &ds).await.unwrap(), None);
    c.push_blob(&repo, &dc, Bytes::from_static(config), None)
        .await
        .unwrap();
    c.push_blob(&repo, &ds, Bytes::from(small.clone()), None)
        .await
        .unwrap();
    c.push_blob_chunked(&repo, &db, &big[..], 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        c.blob_exists(&repo, &db).await.unwrap(),
        Some(u64::try_from(big.len()).unwrap())
    );
    let layers: Vec<serde_json::Value> = [(&ds, small.len()), (&db, big.len())]
        .iter()
        .map(|(d, n)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": n}))
        .collect();
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": dc.as_str(), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    let r: Reference = format!("{}/berth/client:v1", reg.host).parse().unwrap();
    let md = c
        .put_manifest(&repo, "v1", OCI_MANIFEST, Bytes::from(m.clone()))
        .await
        .unwrap();
    assert_eq!(md, Digest::sha256_of(&m));
    let resolved = c.resolve(&r).await.unwrap();
    assert_eq!(resolved.digest, md);
    let (_, body) = manifest(&reg.host, "berth/client", "v1");
    assert_eq!(body, m);
    for (d, want) in [(&ds, &small), (&db, &big)] {
        let mut s = c.get_blob(&repo, d, 0).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = s.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert!(got == want[..], "blob {d} differs");
    }
    // Mount into another repository.
    let other = Repository::new(reg.host.clone(), "berth/other");
    assert!(c.mount_blob(&other, &db, "berth/client").await.unwrap());
    assert!(c.blob_exists(&other, &db).await.unwrap().is_some());
}

/// Files under `root` whose name contains `hex` (the blob and any leftover partial copy).
fn files_named(root: &Path, hex: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(hex) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn concurrent_pushes_of_one_blob_leave_one_correct_blob() {
    let reg = Arc::new(BerthRegistry::start(BerthOptions::default()));
    let blob = Arc::new(data(8 * 1024 * 1024 + 11, 77));
    let d = Digest::sha256_of(&blob);
    let barrier = Arc::new(Barrier::new(8));
    let mut threads = Vec::new();
    for i in 0..8 {
        let (reg, blob, d, barrier) = (reg.clone(), blob.clone(), d.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let repo = format!("race/r{i}");
            match i % 4 {
                // berth's client, monolithic and chunked, each on its own runtime.
                0 | 1 => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let c = RegistryClient::new(ClientConfig::default()).unwrap();
                    let r = Repository::new(reg.host.clone(), &repo);
                    barrier.wait();
                    rt.block_on(async {
                        if i % 4 == 0 {
                            c.push_blob(&r, &d, Bytes::from(blob.to_vec()), None).await
                        } else {
                            c.push_blob_chunked(&r, &d, &blob[..], 1 << 20).await
                        }
                    })
                    .map(|_| ())
                    .map_err(|e| format!("client {i}: {e}"))
                }
                // Raw HTTP: POST then one PUT; and a streamed PATCH then PUT.
                2 | 3 => {
                    let loc = |r: &conformance_support::Resp| -> Result<String, String> {
                        let l = r
                            .header("Location")
                            .ok_or(format!("{}: no Location", r.what()))?;
                        Ok(l.split_once("://")
                            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
                            .unwrap_or_else(|| l.to_string()))
                    };
                    let p = request(
                        &reg.host,
                        "POST",
                        &format!("/v2/{repo}/blobs/uploads/"),
                        &[],
                        b"",
                    )?;
                    let mut l = loc(&p)?;
                    barrier.wait();
                    let body: &[u8] = if i % 4 == 3 {
                        let r = request(
                            &reg.host,
                            "PATCH",
                            &l,
                            &[("Content-Type", "application/octet-stream".into())],
                            &blob,
                        )?;
                        if r.status != 202 {
                            return Err(format!("{}: {}", r.what(), r.text()));
                        }
                        l = loc(&r)?;
                        b""
                    } else {
                        &blob
                    };
                    let sep = if l.contains('?') { '&' } else { '?' };
                    let r = request(
                        &reg.host,
                        "PUT",
                        &format!("{l}{sep}digest={d}"),
                        &[("Content-Type", "application/octet-stream".into())],
                        body,
                    )?;
                    if r.status != 201 {
                        return Err(format!("{}: {}", r.what(), r.text()));
                    }
                    Ok(())
                }
                _ => unreachable!(),
            }
        }));
    }
    let errors: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap().err())
        .collect();
    assert!(errors.is_empty(), "concurrent pushes failed: {errors:?}");
    for i in 0..8 {
        let r = request(
            &reg.host,
            "GET",
            &format!("/v2/race/r{i}/blobs/{d}"),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.what());
        assert!(r.body == blob[..], "race/r{i}: served blob differs");
    }
    let files = files_named(&reg.root, d.hex());
    assert_eq!(
        files.len(),
        1,
        "copies of the blob under the root: {files:?}"
    );
    let on_disk = std::fs::read(&files[0]).unwrap();
    assert_eq!(Digest::sha256_of(&on_disk), d);
}
