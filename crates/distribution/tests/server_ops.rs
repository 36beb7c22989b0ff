//! Operations of berth-registry: gc (while serving, through the admin socket, and offline),
//! read-only mode, abandoned uploads, metrics and logs, graceful shutdown with an upload in
//! flight, concurrent uploads of one blob, referrers, pagination.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod server_support;

use std::time::Duration;

use berth_image::digest::Digest;
use server_support::{error_code, http, manifest_json, pseudo_random, Server};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn put_blob(srv: &Server, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let r = http()
        .post(srv.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    d
}

async fn put_manifest(srv: &Server, repo: &str, reference: &str, m: &[u8]) -> reqwest::Response {
    http()
        .put(srv.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", OCI_MANIFEST)
        .body(m.to_vec())
        .send()
        .await
        .unwrap()
}

fn gc_cmd(root: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth-registry"));
    cmd.arg("gc").arg("--root").arg(root).args(extra);
    let out = berth_testutil::harness::run_with_timeout(cmd, Duration::from_secs(60), None);
    assert!(out.status.success(), "gc: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_the_reachable_and_removes_the_rest() {
    let mut srv = Server::start(&[]);
    let cfg = put_blob(&srv, "app", b"{}").await;
    let keep = put_blob(&srv, "app", &pseudo_random(5000, 1)).await;
    let drop1 = put_blob(&srv, "app", &pseudo_random(5000, 2)).await;
    let orphan = put_blob(&srv, "app", &pseudo_random(5000, 3)).await;
    let m_keep = manifest_json((cfg.as_str(), 2), &[(keep.as_str(), 5000)]);
    assert_eq!(put_manifest(&srv, "app", "v1", &m_keep).await.status(), 201);
    let m_drop = manifest_json((cfg.as_str(), 2), &[(drop1.as_str(), 5000)]);
    let r = put_manifest(&srv, "app", "old", &m_drop).await;
    let d_drop = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let r = http()
        .delete(srv.url(&format!("/v2/app/manifests/{d_drop}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Touch times are in seconds: let them fall before a zero-grace cutoff.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // While serving: through the admin socket. Dry run first.
    let root = srv.root.clone();
    let dry = tokio::task::spawn_blocking({
        let root = root.clone();
        move || gc_cmd(&root, &["--dry-run", "--grace", "0"])
    })
    .await
    .unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["swept"].as_array().unwrap().len(), 3, "{dry}");
    assert!(srv
        .root
        .join("content/blobs/sha256")
        .join(orphan.hex())
        .exists());
    let rep = tokio::task::spawn_blocking({
        let root = root.clone();
        move || gc_cmd(&root, &["--grace", "0"])
    })
    .await
    .unwrap();
    let mut swept: Vec<String> = rep["swept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    swept.sort();
    let mut want = vec![drop1.to_string(), orphan.to_string(), d_drop.clone()];
    want.sort();
    assert_eq!(swept, want);
    // The server still serves what is reachable, and says the swept blob is gone.
    let r = http()
        .get(srv.url("/v2/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &m_keep[..]);
    let r = http()
        .get(srv.url(&format!("/v2/app/blobs/{keep}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .head(srv.url(&format!("/v2/app/blobs/{orphan}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Offline, with the default grace: a fresh orphan stays.
    let fresh = put_blob(&srv, "app", b"fresh").await;
    srv.stop();
    let rep = gc_cmd(&root, &[]);
    assert_eq!(rep["swept"].as_array().unwrap().len(), 0, "{rep}");
    assert!(root.join("content/blobs/sha256").join(fresh.hex()).exists());
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut srv = Server::start_at(&root, &[]);
    let d = put_blob(&srv, "ro", b"data").await;
    srv.stop();
    let srv = Server::start_at(&root, &["--read-only"]);
    let r = http()
        .post(srv.url("/v2/ro/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
    let r = put_manifest(&srv, "ro", "v1", b"{}").await;
    assert_eq!(r.status(), 405);
    let r = http()
        .delete(srv.url(&format!("/v2/ro/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = http()
        .get(srv.url(&format!("/v2/ro/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "data");
}

#[tokio::test]
async fn abandoned_upload_is_cleaned() {
    let srv = Server::start(&["--upload-max-age", "1", "--upload-purge-interval", "1"]);
    let h = http();
    let r = h
        .post(srv.url("/v2/up/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let uuid = loc.rsplit('/').next().unwrap().to_string();
    let r = h
        .patch(srv.url(&loc))
        .body(vec![7u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let file = srv.root.join("uploads").join(&uuid);
    assert!(file.exists());
    berth_testutil::harness::wait_until(
        "the abandoned upload removed",
        Duration::from_secs(10),
        || (!file.exists()).then_some(()),
    );
    let r = h.get(srv.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(srv
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("removed abandoned uploads")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_request_logs() {
    let srv = Server::start(&[]);
    let d = put_blob(&srv, "m", b"0123456789").await;
    let r = http()
        .get(srv.url(&format!("/v2/m/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    let r = http()
        .get(srv.url(
            "/v2/m/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let text = http()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("berth_registry_requests_total{method=\"POST\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("berth_registry_requests_total{method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("berth_registry_bytes_received_total 10"),
        "{text}"
    );
    assert!(
        text.contains("berth_registry_bytes_sent_total 10"),
        "{text}"
    );
    assert!(text.contains("berth_registry_blobs 1"), "{text}");
    assert!(
        text.contains("berth_registry_uploads_in_flight 0"),
        "{text}"
    );
    let logs = srv.logs.lock().unwrap().clone();
    let get = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["method"] == "GET"
                && v["status"] == 200
                && v["path"].as_str().unwrap().contains("/blobs/")
        })
        .unwrap();
    assert_eq!(get["bytes"], 10);
    assert!(get["ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_upload_in_flight_finish() {
    let mut srv = Server::start(&[]);
    let h = http();
    let r = h
        .post(srv.url("/v2/slow/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let data = pseudo_random(3 << 20, 9);
    let d = Digest::sha256_of(&data);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }));
    let url = srv.url(&format!("{loc}?digest={d}"));
    let put = tokio::spawn(async move { http().put(url).body(body).send().await });
    tx.send(Ok(data[..1 << 20].to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = http()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("berth_registry_uploads_in_flight 1\n"),
        "{text}"
    );
    // SIGTERM mid-upload; the rest of the body arrives afterwards.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(srv.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No longer accepting.
    assert!(std::net::TcpStream::connect(&srv.addr).is_err());
    tx.send(Ok(data[1 << 20..].to_vec())).await.unwrap();
    drop(tx);
    let r = put.await.unwrap().unwrap();
    assert_eq!(r.status(), 201);
    let st = srv.stop();
    assert!(st.success(), "{st:?}");
    let blob = srv.root.join("content/blobs/sha256").join(d.hex());
    assert_eq!(std::fs::read(blob).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_blob_end_with_one_blob() {
    let srv = Server::start(&[]);
    let data = pseudo_random(2 << 20, 11);
    let d = Digest::sha256_of(&data);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let url_base = srv.url(&format!("/v2/con{i}"));
        let data = data.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let h = http();
            if i % 2 == 0 {
                h.post(format!("{url_base}/blobs/uploads/?digest={d}"))
                    .body(data)
                    .send()
                    .await
                    .unwrap()
                    .status()
            } else {
                let r = h
                    .post(format!("{url_base}/blobs/uploads/"))
                    .send()
                    .await
                    .unwrap();
                let loc = r.headers()["location"].to_str().unwrap().to_string();
                let origin = url_base.split("/v2/").next().unwrap().to_string();
                for c in data.chunks(512 << 10) {
                    let r = h
                        .patch(format!("{origin}{loc}"))
                        .body(c.to_vec())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                }
                h.put(format!("{origin}{loc}?digest={d}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let dir = srv.root.join("content/blobs/sha256");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(std::fs::read(dir.join(d.hex())).unwrap(), data);
    assert_eq!(
        std::fs::read_dir(srv.root.join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
    for i in 0..6 {
        let r = http()
            .head(srv.url(&format!("/v2/con{i}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-length"], data.len().to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_subject_and_pagination() {
    let srv = Server::start(&[]);
    let cfg = put_blob(&srv, "art", b"{}").await;
    let m = manifest_json((cfg.as_str(), 2), &[]);
    let r = put_manifest(&srv, "art", "v1", &m).await;
    let subject = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    for (i, at) in [
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .iter()
    .enumerate()
    {
        let empty = put_blob(&srv, "art", format!("{{\"n\":{i}}}").as_bytes()).await;
        let refm = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 7},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": m.len()},
            "annotations": {"k": "v"},
        });
        let body = serde_json::to_vec(&refm).unwrap();
        let r = put_manifest(&srv, "art", Digest::sha256_of(&body).as_str(), &body).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"], subject.as_str());
    }
    let r = http()
        .get(srv.url(&format!("/v2/art/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(v["manifests"][0]["annotations"]["k"], "v");
    let r = http()
        .get(srv.url(&format!(
            "/v2/art/referrers/{subject}?artifactType=application/vnd.example.sbom"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );

    for t in ["a", "b", "c", "d", "e"] {
        assert_eq!(put_manifest(&srv, "art", t, &m).await.status(), 201);
    }
    let r = http()
        .get(srv.url("/v2/art/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/art/tags/list?n=2&last=b>; rel=\"next\""
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
    let r = http()
        .get(srv.url("/v2/art/tags/list?n=2&last=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/art/tags/list?n=2&last=d>; rel=\"next\""
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["c", "d"]));
    // The last page: no Link.
    let r = http()
        .get(srv.url("/v2/art/tags/list?n=2&last=d"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["e", "v1"]));
    // Deleting the tag leaves the manifest; deleting by digest removes the remaining tags.
    let r = http()
        .delete(srv.url("/v2/art/manifests/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http()
        .get(srv.url(&format!("/v2/art/manifests/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
