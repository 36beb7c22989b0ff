//! Auth on berth-registry: basic (htpasswd, bcrypt), bearer tokens from its token endpoint,
//! per-repository rules, and TLS.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod server_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use berth_distribution::{
    ClientConfig, Credential, CredentialsSource, PushOutcome, RegistryClient, Repository,
};
use berth_image::digest::Digest;
use bytes::Bytes;
use server_support::{error_code, http, manifest_json, Server};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn write_auth(dir: &Path) -> (String, String) {
    let h = bcrypt::hash("s3cret", 4).unwrap();
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{h}\nreader:{h}\n")).unwrap();
    let config = dir.join("registry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth]
htpasswd = "{}"
service = "test-registry"

[[access]]
user = "alice"
repository = "*"
actions = ["pull", "push", "delete"]

[[access]]
user = "*"
repository = "public/*"
actions = ["pull"]
"#,
            htpasswd.display()
        ),
    )
    .unwrap();
    (htpasswd.display().to_string(), config.display().to_string())
}

fn basic(user: &str, pass: &str) -> String {
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {v}")
}

fn client_as(addr: &str, user: &str) -> RegistryClient {
    let mut m = HashMap::new();
    m.insert(
        addr.to_string(),
        Credential::Basic {
            username: user.into(),
            password: "s3cret".into(),
        },
    );
    RegistryClient::new(ClientConfig {
        credentials: CredentialsSource::Static(m),
        max_attempts: 1,
        retry_delay: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

async fn push_image(c: &RegistryClient, repo: &Repository) -> Result<Digest, String> {
    let cfg = b"{\"os\":\"linux\"}".to_vec();
    let layer = server_support::pseudo_random(100_000, 7);
    let (dc, dl) = (Digest::sha256_of(&cfg), Digest::sha256_of(&layer));
    c.push_blob(repo, &dc, Bytes::from(cfg.clone()), None)
        .await
        .map_err(|e| e.to_string())?;
    let out = c
        .push_blob(repo, &dl, Bytes::from(layer.clone()), None)
        .await
        .map_err(|e| e.to_string())?;
    assert!(matches!(
        out,
        PushOutcome::Uploaded | PushOutcome::AlreadyExists
    ));
    let m = manifest_json((dc.as_str(), cfg.len()), &[(dl.as_str(), layer.len())]);
    c.put_manifest(repo, "v1", OCI_MANIFEST, Bytes::from(m))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_challenges_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_auth(dir.path());
    let srv = Server::start(&["--config", &config]);
    let h = http();

    let r = h.get(srv.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"test-registry\""
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    let r = h
        .get(srv.url("/v2/"))
        .header("authorization", basic("alice", "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = h
        .get(srv.url("/v2/"))
        .header("authorization", basic("alice", "s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // alice pushes anywhere; reader may only pull public/*.
    let alice = client_as(&srv.addr, "alice");
    push_image(&alice, &Repository::new(srv.addr.clone(), "public/app"))
        .await
        .unwrap();
    push_image(&alice, &Repository::new(srv.addr.clone(), "team/app"))
        .await
        .unwrap();
    let reader = client_as(&srv.addr, "reader");
    let err = push_image(&reader, &Repository::new(srv.addr.clone(), "public/app2"))
        .await
        .unwrap_err();
    assert!(
        err.contains("403") || err.to_lowercase().contains("denied"),
        "{err}"
    );
    let r = h
        .get(srv.url("/v2/public/app/manifests/v1"))
        .header("authorization", basic("reader", "s3cret"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .get(srv.url("/v2/team/app/manifests/v1"))
        .header("authorization", basic("reader", "s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "DENIED");
    let r = h
        .delete(srv.url("/v2/public/app/manifests/v1"))
        .header("authorization", basic("reader", "s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_from_the_token_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_auth(dir.path());
    let srv = Server::start(&["--config", &config, "--token-auth"]);
    let h = http();

    let r = h
        .get(srv.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!(
            "Bearer realm=\"http://{}/token\",service=\"test-registry\",scope=\"repository:team/app:pull\"",
            srv.addr
        )
    );
    let r = h
        .post(srv.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .ends_with("scope=\"repository:team/app:pull,push\""));

    // Berth's client follows the challenge, gets a token, pushes and pulls.
    let alice = client_as(&srv.addr, "alice");
    let repo = Repository::new(srv.addr.clone(), "team/app");
    let md = push_image(&alice, &repo).await.unwrap();
    let m = alice.get_manifest(&repo, md.as_str()).await.unwrap();
    assert_eq!(m.digest, md);

    // Wrong password: no token.
    let r = h
        .get(srv.url("/token?service=test-registry&scope=repository:team/app:pull"))
        .header("authorization", basic("alice", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // reader asks for push on team/app: the token carries nothing there; the push is denied.
    let r = h
        .get(srv.url("/token?service=test-registry&scope=repository:team/app:pull,push"))
        .header("authorization", basic("reader", "s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: serde_json::Value = r.json().await.unwrap();
    // Docker's client parses issued_at as RFC 3339 and gives up on anything else.
    let issued = tok["issued_at"].as_str().unwrap();
    assert!(
        issued.len() == 20 && issued.as_bytes()[10] == b'T' && issued.ends_with('Z'),
        "{issued}"
    );
    assert!(tok["expires_in"].as_u64().unwrap() >= 60);
    let tok = tok["token"].as_str().unwrap().to_string();
    let r = h
        .post(srv.url("/v2/team/app/blobs/uploads/"))
        .header("authorization", format!("Bearer {tok}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "DENIED");
    let reader = client_as(&srv.addr, "reader");
    let err = push_image(&reader, &Repository::new(srv.addr.clone(), "public/x"))
        .await
        .unwrap_err();
    assert!(
        err.contains("403") || err.to_lowercase().contains("denied"),
        "{err}"
    );

    // alice's pull-only token lacks push: 401 with the challenge, so a client asks again.
    let r = h
        .get(srv.url("/token?service=test-registry&scope=repository:team/app:pull"))
        .header("authorization", basic("alice", "s3cret"))
        .send()
        .await
        .unwrap();
    let tok: serde_json::Value = r.json().await.unwrap();
    let tok = tok["token"].as_str().unwrap().to_string();
    let r = h
        .get(srv.url("/v2/team/app/tags/list"))
        .header("authorization", format!("Bearer {tok}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .delete(srv.url(&format!("/v2/team/app/manifests/{md}")))
        .header("authorization", format!("Bearer {tok}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"insufficient_scope\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_cert_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (ca_cert, ca_key, csr, cert, key, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("leaf.csr"),
        p("cert.pem"),
        p("key.pem"),
        p("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<&str>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            &ca_key,
            "-out",
            &ca_cert,
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ];
    for args in steps {
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(&args);
        let out = berth_testutil::harness::run_with_timeout(cmd, Duration::from_secs(30), None);
        assert!(
            out.status.success(),
            "openssl {args:?} (apt-get install openssl): {out:?}"
        );
    }
    let srv = Server::start(&["--tls-cert", &cert, "--tls-key", &key]);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_cert).unwrap()).unwrap();
    let h = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = h
        .get(format!("https://{}/v2/", srv.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // Plain HTTP on the TLS port gets no answer of the API.
    let plain = http().get(srv.url("/v2/")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}
