//! Bad and unusual servers, mocked: a blob whose bytes do not match its digest, a download cut
//! short and resumed, an unknown manifest media type, 5xx answers, a bearer challenge with
//! short-lived tokens, a Docker Hub mirror, and garbage headers.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_distribution::{ClientConfig, RegistryClient, RegistryError, Repository};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use registry_support::{pseudo_random, respond, MockServer};

fn client() -> RegistryClient {
    RegistryClient::new(ClientConfig {
        retry_delay: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

fn repo(m: &MockServer) -> Repository {
    Repository::new(format!("127.0.0.1:{}", m.port), "mock/app")
}

#[tokio::test]
async fn blob_digest_mismatch_is_detected() {
    let good = pseudo_random(50_000, 3);
    let digest = Digest::sha256_of(&good);
    let mut bad = good.clone();
    bad[25_000] ^= 1;
    let srv = MockServer::start(move |_req, s| respond(s, "200 OK", &[], &bad));
    let mut sink = Vec::new();
    let e = client()
        .pull_blob(&repo(&srv), &digest, Some(good.len() as u64), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "digest mismatch for 127.0.0.1:{}/mock/app: expected {digest}, got sha256:",
            srv.port
        )),
        "{msg}"
    );

    // Too many bytes: refused as soon as they exceed the expected size.
    let e = client()
        .pull_blob(&repo(&srv), &digest, Some(1000), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::SizeMismatch { .. }), "{e:?}");
}

#[tokio::test]
async fn truncated_download_resumes_with_range() {
    let data = pseudo_random(300_000, 4);
    let digest = Digest::sha256_of(&data);
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let (d2, r2) = (data.clone(), ranges.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let srv = MockServer::start(move |req, s| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let range = req.header("range").map(str::to_string);
        r2.lock().unwrap().push(range.clone());
        let start: usize = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let body = &d2[start..];
        let status = if start > 0 {
            "206 Partial Content"
        } else {
            "200 OK"
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\n\r\n",
            body.len(),
            d2.len() - 1,
            d2.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // The first two answers are cut short.
        let send = if n < 2 { body.len() / 3 } else { body.len() };
        let _ = s.write_all(&body[..send]);
    });
    let mut sink = Vec::new();
    let n = client()
        .pull_blob(&repo(&srv), &digest, Some(data.len() as u64), &mut sink)
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(sink, data);
    let ranges = ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert_eq!(ranges[1], Some(format!("bytes={}-", data.len() / 3)));
}

#[tokio::test]
async fn unknown_manifest_media_type_is_passed_through() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#.to_vec();
    let digest = Digest::sha256_of(&body);
    let (b2, d2) = (body.clone(), digest.clone());
    let srv = MockServer::start(move |req, s| {
        let h = [
            (
                "Content-Type",
                "application/vnd.example.thing+json; charset=utf-8".to_string(),
            ),
            ("Docker-Content-Digest", d2.to_string()),
        ];
        if req.method == "HEAD" {
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: {}\r\nDocker-Content-Digest: {}\r\n\r\n",
                b2.len(), h[0].1, h[1].1
            );
            let _ = s.write_all(head.as_bytes());
        } else {
            respond(s, "200 OK", &h, &b2);
        }
    });
    let c = client();
    let m = c.get_manifest(&repo(&srv), "latest").await.unwrap();
    assert_eq!(m.media_type, "application/vnd.example.thing+json");
    assert_eq!(m.digest, digest);
    let r = Reference::parse(&format!("127.0.0.1:{}/mock/app:latest", srv.port)).unwrap();
    let res = c.resolve(&r).await.unwrap();
    assert_eq!(res.media_type, "application/vnd.example.thing+json");
    assert_eq!(res.digest, digest);
    assert_eq!(res.size, body.len() as u64);
}

#[tokio::test]
async fn manifest_digest_mismatch_and_oversize() {
    let body = br#"{"schemaVersion":2}"#.to_vec();
    let wrong = Digest::sha256_of(b"other");
    let w2 = wrong.clone();
    let srv = MockServer::start(move |req, s| {
        if req.path().ends_with("/big") {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n";
            let _ = s.write_all(head.as_bytes());
            return;
        }
        respond(
            s,
            "200 OK",
            &[
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest", w2.to_string()),
            ],
            &body,
        );
    });
    let c = client();
    // By digest: the body must hash to it.
    let e = c
        .get_manifest(&repo(&srv), wrong.as_str())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");
    // By tag: the registry's Docker-Content-Digest must match what it sent.
    let e = c.get_manifest(&repo(&srv), "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");
    let e = c.get_manifest(&repo(&srv), "big").await.unwrap_err();
    assert!(matches!(e, RegistryError::ManifestTooLarge { .. }), "{e:?}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let srv = MockServer::start(move |req, s| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        if req.path().ends_with("/always-down") || n < 2 {
            respond(s, "503 Service Unavailable", &[], b"busy");
        } else {
            respond(
                s,
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                b"{}",
            );
        }
    });
    let c = client();
    c.get_manifest(&repo(&srv), "v1").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    calls.store(10, Ordering::SeqCst);
    let e = c
        .get_manifest(&repo(&srv), "always-down")
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::Status { status: 503, .. }),
        "{e:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        14,
        "bounded to max_attempts = 4"
    );
}

#[tokio::test]
async fn bearer_challenge_against_mock_with_expiring_tokens() {
    let tokens_issued = Arc::new(AtomicUsize::new(0));
    let t2 = tokens_issued.clone();
    let port_cell = Arc::new(Mutex::new(0u16));
    let p2 = port_cell.clone();
    let srv = MockServer::start(move |req, s| {
        let port = *p2.lock().unwrap();
        if req.path() == "/token" {
            assert_eq!(req.query("service"), vec!["mock-svc".to_string()]);
            assert_eq!(
                req.query("scope"),
                vec!["repository:mock/app:pull".to_string()]
            );
            let n = t2.fetch_add(1, Ordering::SeqCst);
            let body = format!(r#"{{"access_token":"tok{n}","expires_in":1}}"#);
            respond(s, "200 OK", &[], body.as_bytes());
            return;
        }
        match req.header("authorization") {
            Some(a) if a.starts_with("Bearer tok") => respond(
                s,
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                b"{}",
            ),
            _ => respond(
                s,
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="http://127.0.0.1:{port}/token",service="mock-svc",scope="repository:mock/app:pull,push""#
                    ),
                )],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ),
        }
    });
    *port_cell.lock().unwrap() = srv.port;
    let c = client();
    c.get_manifest(&repo(&srv), "v1").await.unwrap();
    c.get_manifest(&repo(&srv), "v1").await.unwrap();
    assert_eq!(tokens_issued.load(Ordering::SeqCst), 1, "token cached");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.get_manifest(&repo(&srv), "v1").await.unwrap();
    assert_eq!(
        tokens_issued.load(Ordering::SeqCst),
        2,
        "expired token renewed"
    );
}

#[tokio::test]
async fn docker_hub_pulls_go_to_the_mirror() {
    let body = br#"{"schemaVersion":2}"#.to_vec();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let p2 = paths.clone();
    let srv = MockServer::start(move |req, s| {
        p2.lock().unwrap().push(req.path().to_string());
        respond(
            s,
            "200 OK",
            &[(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            &body,
        );
    });
    let c = RegistryClient::new(ClientConfig {
        mirrors: vec![format!("http://127.0.0.1:{}", srv.port)],
        ..ClientConfig::default()
    })
    .unwrap();
    let m = c
        .get_manifest(&Repository::new("docker.io", "library/busybox"), "latest")
        .await
        .unwrap();
    assert_eq!(m.digest, Digest::sha256_of(br#"{"schemaVersion":2}"#));
    assert_eq!(
        paths.lock().unwrap()[0],
        "/v2/library/busybox/manifests/latest"
    );
}

#[tokio::test]
async fn garbage_from_the_server_is_an_error_not_a_panic() {
    let srv = MockServer::start(move |req, s| {
        let p = req.path();
        if p.contains("/blobs/sha256") && req.method == "HEAD" {
            respond(s, "404 Not Found", &[], b"");
        } else if p.contains("/blobs/sha256") {
            // A 206 whose range does not start where we asked.
            let head = "HTTP/1.1 206 Partial Content\r\nConnection: close\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\nhello";
            let _ = s.write_all(head.as_bytes());
        } else if p.ends_with("/badauth") {
            respond(
                s,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Bearer realm=\"unterminated".into())],
                b"",
            );
        } else if p.ends_with("/badrealm") {
            respond(
                s,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Bearer realm=\"::not a url::\"".into())],
                b"",
            );
        } else if p.ends_with("/uploads/") {
            respond(s, "202 Accepted", &[], b"");
        } else {
            let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n");
        }
    });
    let c = client();
    let r = repo(&srv);
    let d = Digest::sha256_of(b"x");
    let e = c.get_blob(&r, &d, 3).await.unwrap_err();
    assert!(matches!(e, RegistryError::InvalidResponse { .. }), "{e:?}");
    let e = c.get_manifest(&r, "badauth").await.unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    let e = c.get_manifest(&r, "badrealm").await.unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    let e = c.get_manifest(&r, "junk").await.unwrap_err();
    assert!(matches!(e, RegistryError::Transfer { .. }), "{e:?}");
    // An upload session without Location.
    let e = c
        .push_blob_chunked(&r, &d, &b"x"[..], 10)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("without Location")
            || matches!(e, RegistryError::InvalidResponse { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn resolve_falls_back_to_get_when_head_gives_no_digest() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
    let methods = Arc::new(Mutex::new(Vec::new()));
    let (b2, m2) = (body.clone(), methods.clone());
    let srv = MockServer::start(move |req, s| {
        m2.lock().unwrap().push(req.method.clone());
        let ct = [(
            "Content-Type",
            "application/vnd.oci.image.index.v1+json".to_string(),
        )];
        if req.method == "HEAD" {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        } else {
            respond(s, "200 OK", &ct, &b2);
        }
    });
    let r = Reference::parse(&format!("127.0.0.1:{}/mock/app:v1", srv.port)).unwrap();
    let res = client().resolve(&r).await.unwrap();
    assert_eq!(res.digest, Digest::sha256_of(&body));
    assert_eq!(res.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(res.size, body.len() as u64);
    assert_eq!(*methods.lock().unwrap(), ["HEAD", "GET"]);
}

#[tokio::test]
async fn identity_token_is_exchanged_with_a_form_post() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let port_cell = Arc::new(Mutex::new(0u16));
    let p2 = port_cell.clone();
    let srv = MockServer::start(move |req, s| {
        let port = *p2.lock().unwrap();
        if req.path() == "/oauth" {
            s2.lock().unwrap().push((
                req.method.clone(),
                String::from_utf8_lossy(&req.body).into_owned(),
            ));
            let ok = req.method == "POST"
                && String::from_utf8_lossy(&req.body).contains("refresh_token=refresh-me");
            if ok {
                respond(s, "200 OK", &[], br#"{"access_token":"fresh"}"#);
            } else {
                respond(s, "401 Unauthorized", &[], b"");
            }
            return;
        }
        if req.header("authorization") == Some("Bearer fresh") {
            respond(
                s,
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                b"{}",
            );
        } else {
            respond(
                s,
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="http://127.0.0.1:{port}/oauth",service="svc""#),
                )],
                b"",
            );
        }
    });
    *port_cell.lock().unwrap() = srv.port;
    let mut creds = std::collections::HashMap::new();
    creds.insert(
        format!("127.0.0.1:{}", srv.port),
        berth_distribution::Credential::IdentityToken("refresh-me".into()),
    );
    let c = RegistryClient::new(ClientConfig {
        credentials: berth_distribution::CredentialsSource::Static(creds),
        ..ClientConfig::default()
    })
    .unwrap();
    c.get_manifest(&repo(&srv), "v1").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "POST");
    assert!(
        seen[0].1.contains("grant_type=refresh_token"),
        "{}",
        seen[0].1
    );
    assert!(
        seen[0].1.contains("scope=repository%3Amock%2Fapp%3Apull"),
        "{}",
        seen[0].1
    );
}
