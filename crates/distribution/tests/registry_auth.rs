//! Auth against docker-registry: htpasswd basic auth, and token auth behind the test's own
//! token server; errors for missing and wrong credentials and for a registry that is down.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::collections::HashMap;
use std::time::Duration;

use berth_distribution::{
    ClientConfig, Credential, CredentialsSource, PushOutcome, RegistryClient, RegistryError,
    Repository,
};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use bytes::Bytes;
use registry_support::{free_port, pseudo_random, Auth, Registry, TokenServer};

fn client_with(host: &str, user: &str, password: &str) -> RegistryClient {
    let mut m = HashMap::new();
    m.insert(
        host.to_string(),
        Credential::Basic {
            username: user.into(),
            password: password.into(),
        },
    );
    RegistryClient::new(ClientConfig {
        credentials: CredentialsSource::Static(m),
        retry_delay: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .unwrap()
}

fn anonymous() -> RegistryClient {
    RegistryClient::new(ClientConfig {
        retry_delay: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .unwrap()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes one blob, a config and a manifest under `tag`, pulls them back.
async fn push_and_pull(c: &RegistryClient, repo: &Repository, tag: &str) {
    let blob = pseudo_random(200_000, 7);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let (db, dc) = (Digest::sha256_of(&blob), Digest::sha256_of(&config));
    c.push_blob(repo, &db, Bytes::from(blob.clone()), None)
        .await
        .unwrap();
    c.push_blob(repo, &dc, Bytes::from(config.clone()), None)
        .await
        .unwrap();
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": db.as_str(), "size": blob.len()}],
    }))
    .unwrap();
    let dm = c
        .put_manifest(repo, tag, OCI_MANIFEST, Bytes::from(m))
        .await
        .unwrap();
    let r = Reference::parse(&format!("{repo}:{tag}")).unwrap();
    assert_eq!(c.resolve(&r).await.unwrap().digest, dm);
    let mut got = Vec::new();
    c.pull_blob(repo, &db, Some(blob.len() as u64), &mut got)
        .await
        .unwrap();
    assert_eq!(got, blob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "wonderland".into(),
    });
    let repo = Repository::new(reg.host.clone(), "secure/app");

    push_and_pull(&client_with(&reg.host, "alice", "wonderland"), &repo, "v1").await;

    let e = anonymous().get_manifest(&repo, "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "authentication required for {}/secure/app: ",
            reg.host
        )),
        "{msg}"
    );

    let e = client_with(&reg.host, "alice", "wrong")
        .get_manifest(&repo, "v1")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WrongCredentials { .. }), "{e:?}");
    assert!(e.to_string().contains("user alice"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_credentials_with_basic_auth() {
    registry_support::require_registry();
    use base64::Engine as _;
    let reg = Registry::start(Auth::Htpasswd {
        user: "bob".into(),
        password: "builder".into(),
    });
    let cfgdir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:builder");
    std::fs::write(
        cfgdir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let c = RegistryClient::new(ClientConfig {
        credentials: CredentialsSource::DockerConfig(Some(cfgdir.path().to_path_buf())),
        ..ClientConfig::default()
    })
    .unwrap();
    push_and_pull(&c, &Repository::new(reg.host.clone(), "cfg/app"), "latest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_with_own_token_server() {
    registry_support::require_registry();
    let ts = TokenServer::start("carol", "secret");
    let reg = Registry::start(Auth::Token {
        realm: ts.realm.clone(),
        service: ts.service.clone(),
        issuer: ts.issuer.clone(),
        cert: ts.cert.clone(),
    });
    let c = client_with(&reg.host, "carol", "secret");
    let repo = Repository::new(reg.host.clone(), "private/app");
    push_and_pull(&c, &repo, "v1").await;

    // Tokens are cached per scope: more pulls of the same repo fetch no new token.
    let before = ts.requests.load(std::sync::atomic::Ordering::SeqCst);
    c.get_manifest(&repo, "v1").await.unwrap();
    c.get_manifest(&repo, "v1").await.unwrap();
    assert_eq!(
        ts.requests.load(std::sync::atomic::Ordering::SeqCst),
        before
    );

    // Anonymous pull of a private repo: the token server grants nothing, the registry says 401.
    let e = anonymous().get_manifest(&repo, "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "authentication required for {}/private/app",
            reg.host
        )),
        "{e}"
    );

    // Wrong password: the token server refuses.
    let e = client_with(&reg.host, "carol", "nope")
        .get_manifest(&repo, "v1")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WrongCredentials { .. }), "{e:?}");

    // Right password, but the token grants nothing on this repository: access denied.
    let denied = Repository::new(reg.host.clone(), "denied/app");
    let e = c.get_manifest(&denied, "v1").await.unwrap_err();
    assert!(matches!(e, RegistryError::Denied { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("access denied to {}/denied/app: ", reg.host)),
        "{e}"
    );

    // Anonymous pull of a public repo works; anonymous push to it is refused.
    let public = Repository::new(reg.host.clone(), "public/app");
    push_and_pull(&c, &public, "v1").await;
    let anon = anonymous();
    anon.get_manifest(&public, "v1").await.unwrap();
    let d = Digest::sha256_of(b"anon");
    let e = anon
        .push_blob(&public, &d, Bytes::from_static(b"anon"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");

    // Cross-repository mount needs pull on the source too: one token with both scopes.
    let other = Repository::new(reg.host.clone(), "private/other");
    let blob = pseudo_random(200_000, 7);
    let db = Digest::sha256_of(&blob);
    assert_eq!(
        c.push_blob(&other, &db, Bytes::from(blob), Some("private/app"))
            .await
            .unwrap(),
        PushOutcome::Mounted
    );
}

#[tokio::test]
async fn registry_down_is_a_clear_error() {
    let port = free_port();
    let c = anonymous();
    let repo = Repository::new(format!("127.0.0.1:{port}"), "x");
    let e = c.get_manifest(&repo, "latest").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("connect to 127.0.0.1:{port}: connection refused")
    );
}
