//! `docker login`'s check: credentials tried against docker-registry's `/v2/` with htpasswd
//! basic auth, behind a token server, and with no auth at all; a registry that is down.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::collections::HashMap;
use std::time::Duration;

use berth_distribution::{
    ClientConfig, Credential, CredentialsSource, RegistryClient, RegistryError,
};
use registry_support::{free_port, Auth, Registry, TokenServer};

fn client(host: &str, cred: Option<(&str, &str)>) -> RegistryClient {
    let credentials = match cred {
        Some((u, p)) => CredentialsSource::Static(HashMap::from([(
            host.to_string(),
            Credential::Basic {
                username: u.into(),
                password: p.into(),
            },
        )])),
        None => CredentialsSource::None,
    };
    RegistryClient::new(ClientConfig {
        credentials,
        max_attempts: 1,
        retry_delay: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_basic_auth() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::Htpasswd {
        user: "dave".into(),
        password: "pw1".into(),
    });
    client(&reg.host, Some(("dave", "pw1")))
        .login(&reg.host)
        .await
        .unwrap();
    let e = client(&reg.host, Some(("dave", "nope")))
        .login(&reg.host)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WrongCredentials { .. }), "{e:?}");
    assert!(e.to_string().contains("401 Unauthorized"), "{e}");
    let e = client(&reg.host, None).login(&reg.host).await.unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_a_token_server() {
    registry_support::require_registry();
    let ts = TokenServer::start("erin", "pw2");
    let reg = Registry::start(Auth::Token {
        realm: ts.realm.clone(),
        service: ts.service.clone(),
        issuer: ts.issuer.clone(),
        cert: ts.cert.clone(),
    });
    client(&reg.host, Some(("erin", "pw2")))
        .login(&reg.host)
        .await
        .unwrap();
    let e = client(&reg.host, Some(("erin", "bad")))
        .login(&reg.host)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WrongCredentials { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_to_an_open_registry_and_to_none() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::None);
    // Docker accepts any credentials for a registry that asks for none.
    client(&reg.host, Some(("anyone", "x")))
        .login(&reg.host)
        .await
        .unwrap();
    let down = format!("127.0.0.1:{}", free_port());
    let e = client(&down, Some(("a", "b")))
        .login(&down)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Connect { .. }), "{e:?}");
}
