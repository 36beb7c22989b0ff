//! Bad input against berth-registry: each answer carries the spec's code and status, and
//! nothing is stored.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod server_support;

use berth_image::digest::Digest;
use server_support::{error_code, http, manifest_json, Server};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn blob_files(srv: &Server) -> usize {
    std::fs::read_dir(srv.root.join("content/blobs/sha256"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn digest_mismatch_at_finish_stores_nothing() {
    let srv = Server::start(&[]);
    let h = http();
    let r = h
        .post(srv.url("/v2/bad/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let wrong = Digest::sha256_of(b"something else");
    let r = h
        .put(srv.url(&format!("{loc}?digest={wrong}")))
        .body("the data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    assert_eq!(blob_files(&srv), 0);
    let r = h
        .head(srv.url(&format!("/v2/bad/blobs/{wrong}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The session is over.
    let r = h.get(srv.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // Monolithic too.
    let r = h
        .post(srv.url(&format!("/v2/bad/blobs/uploads/?digest={wrong}")))
        .body("other data")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    assert_eq!(blob_files(&srv), 0);
    let r = h
        .post(srv.url("/v2/bad/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = h
        .put(srv.url(&format!("{loc}?digest=sha256:nothex")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn chunk_that_does_not_continue_is_416() {
    let srv = Server::start(&[]);
    let h = http();
    let r = h
        .post(srv.url("/v2/c/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = h
        .patch(srv.url(&loc))
        .header("content-range", "0-4")
        .header("content-type", "application/octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-4");
    let r = h
        .patch(srv.url(&loc))
        .header("content-range", "3-7")
        .body("xxxxx")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-4");
    // Without Content-Range: appended (streamed).
    let r = h.patch(srv.url(&loc)).body(" world").send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-10");
    let d = Digest::sha256_of(b"hello world");
    let r = h
        .put(srv.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], format!("/v2/c/blobs/{d}"));
    let r = h
        .get(srv.url(&format!("/v2/c/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(r.text().await.unwrap(), "hello world");
}

#[tokio::test]
async fn manifests_naming_missing_blobs_or_malformed_are_refused() {
    let srv = Server::start(&[]);
    let h = http();
    let cfg = b"{}";
    let dc = Digest::sha256_of(cfg);
    let r = h
        .post(srv.url(&format!("/v2/m/blobs/uploads/?digest={dc}")))
        .body(&cfg[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let missing = Digest::sha256_of(b"never pushed");
    let m = manifest_json((dc.as_str(), 2), &[(missing.as_str(), 12)]);
    let r = h
        .put(srv.url("/v2/m/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(v["errors"][0]["detail"]["digest"], missing.as_str());

    // A blob of another repository is not this one's.
    let m = manifest_json((dc.as_str(), 2), &[]);
    let r = h
        .put(srv.url("/v2/elsewhere/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");

    // An index naming a manifest the repository does not have.
    let idx = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing.as_str(), "size": 1}]});
    let r = h
        .put(srv.url("/v2/m/manifests/multi"))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(idx.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");

    for bad in [
        "{not json",
        "[]",
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
    ] {
        let r = h
            .put(srv.url("/v2/m/manifests/v1"))
            .header("content-type", OCI_MANIFEST)
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(error_code(r).await, "MANIFEST_INVALID", "{bad}");
    }
    // Digest in the URL that is not the body's.
    let r = h
        .put(srv.url(&format!("/v2/m/manifests/{missing}")))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    // Oversized: refused with 413 before it is read whole.
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = h
        .put(srv.url("/v2/m/manifests/big"))
        .header("content-type", OCI_MANIFEST)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "SIZE_INVALID");

    let r = h.get(srv.url("/v2/m/manifests/v1")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = h.get(srv.url("/v2/m/tags/list")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"name": "m", "tags": []}));
    let r = h.get(srv.url("/v2/never/tags/list")).send().await.unwrap();
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn invalid_names_tags_and_traversal() {
    let srv = Server::start(&[]);
    let outside = srv.root.parent().unwrap().join("escaped");
    let h = http();
    for path in [
        "/v2/UPPER/tags/list",
        "/v2/a/%2e%2e/tags/list",
        "/v2/%2e%2e/%2e%2e/manifests/latest",
        "/v2/a%2fb/manifests/latest",
        "/v2/a/../../escaped/manifests/latest",
        "/v2/a//b/manifests/latest",
        "/v2/-a/blobs/uploads/",
    ] {
        let r = h.get(srv.url(path)).send().await.unwrap();
        // reqwest normalises "..": whatever reaches the server is refused.
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{path}: {}",
            r.status()
        );
        let code = error_code(r).await;
        assert!(
            matches!(code.as_str(), "NAME_INVALID" | "NAME_UNKNOWN"),
            "{path}: {code}"
        );
    }
    // Raw request so the ".." reaches the server untouched.
    let raw = raw_get(&srv.addr, "/v2/../../escaped/manifests/latest");
    assert!(
        raw.starts_with("HTTP/1.1 400") || raw.starts_with("HTTP/1.1 404"),
        "{raw}"
    );
    let long = "a".repeat(256);
    let r = h
        .get(srv.url(&format!("/v2/{long}/tags/list")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "NAME_INVALID");
    for tag in [".hidden", "a%2fb", &"t".repeat(129)] {
        let r = h
            .put(srv.url(&format!("/v2/ok/manifests/{tag}")))
            .header("content-type", OCI_MANIFEST)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{tag}");
        assert_eq!(error_code(r).await, "TAG_INVALID", "{tag}");
    }
    // Upload ids are ours: anything else is unknown and never a path.
    let r = h
        .get(srv.url("/v2/ok/blobs/uploads/..%2f..%2fregistry.redb"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(!outside.exists());
    assert!(srv.root.join("registry.redb").exists());
}

fn raw_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
