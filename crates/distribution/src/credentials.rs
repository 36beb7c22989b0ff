//! Registry credentials: Docker's `config.json` (`auths`, `credsStore`, `credHelpers`) and the
//! `docker-credential-<name>` helper protocol, or a fixed set given by the caller.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// Errors from reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("read docker config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse docker config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("docker config {path}: invalid auth for {server}: {reason}")]
    BadAuth {
        path: PathBuf,
        server: String,
        reason: &'static str,
    },
    #[error("credential helper docker-credential-{helper} for {server}: {reason}")]
    Helper {
        helper: String,
        server: String,
        reason: String,
    },
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(..)"),
        }
    }
}

impl Credential {
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } => Some(username),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// Where the client looks for credentials.
#[derive(Debug, Clone, Default)]
pub enum CredentialsSource {
    /// Anonymous access only.
    #[default]
    None,
    /// Docker's config.json in this directory, or (None) in `$DOCKER_CONFIG` or `$HOME/.docker`.
    DockerConfig(Option<PathBuf>),
    /// Fixed credentials keyed by registry domain ("127.0.0.1:5000", "docker.io").
    Static(HashMap<String, Credential>),
}

impl CredentialsSource {
    /// Credentials for `registry` (a domain as in references: "docker.io", "host:port").
    pub fn lookup(&self, registry: &str) -> Result<Option<Credential>, CredentialsError> {
        self.lookup_with_path(registry, None)
    }

    /// `lookup` with the search path for credential helpers given (tests), instead of `$PATH`.
    fn lookup_with_path(
        &self,
        registry: &str,
        helper_path: Option<&std::ffi::OsStr>,
    ) -> Result<Option<Credential>, CredentialsError> {
        match self {
            CredentialsSource::None => Ok(None),
            CredentialsSource::Static(m) => Ok(m.get(registry).cloned()),
            CredentialsSource::DockerConfig(dir) => {
                let dir = match dir {
                    Some(d) => d.clone(),
                    None => match default_config_dir() {
                        Some(d) => d,
                        None => return Ok(None),
                    },
                };
                let path = dir.join("config.json");
                let text = match std::fs::read(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(CredentialsError::Read { path, source }),
                };
                let cfg: DockerConfig =
                    serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                cfg.lookup(&path, registry, helper_path)
            }
        }
    }
}

fn default_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".docker"))
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The key Docker uses for Docker Hub in config.json.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Normalises an `auths` key ("https://host:port/v2/", "host") to the bare host.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

impl DockerConfig {
    fn lookup(
        &self,
        path: &Path,
        registry: &str,
        helper_path: Option<&std::ffi::OsStr>,
    ) -> Result<Option<Credential>, CredentialsError> {
        let hub = is_docker_hub(registry);
        let server = if hub { DOCKER_HUB_KEY } else { registry };
        let helper = self
            .cred_helpers
            .get(registry)
            .or_else(|| hub.then(|| self.cred_helpers.get(DOCKER_HUB_KEY)).flatten())
            .or(self.creds_store.as_ref());
        if let Some(h) = helper.filter(|h| !h.is_empty()) {
            if let Some(c) = run_helper(h, server, helper_path)? {
                return Ok(Some(c));
            }
        }
        let entry = self.auths.iter().find(|(k, _)| {
            if hub {
                k.as_str() == DOCKER_HUB_KEY || is_docker_hub(key_host(k))
            } else {
                key_host(k) == registry
            }
        });
        let Some((key, e)) = entry else {
            return Ok(None);
        };
        let bad = |reason| CredentialsError::BadAuth {
            path: path.to_path_buf(),
            server: key.clone(),
            reason,
        };
        if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken(t.clone())));
        }
        if let Some(a) = e.auth.as_ref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| bad("auth is not base64"))?;
            let s = String::from_utf8(raw).map_err(|_| bad("auth is not utf-8"))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| bad("auth is not user:password"))?;
            return Ok(Some(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        match (&e.username, &e.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[derive(Debug, Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin.
fn run_helper(
    helper: &str,
    server: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credential>, CredentialsError> {
    let err = |reason: String| CredentialsError::Helper {
        helper: helper.to_string(),
        server: server.to_string(),
        reason,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(err("invalid helper name".to_string()));
    }
    let mut cmd = Command::new(format!("docker-credential-{helper}"));
    if let Some(p) = search_path {
        // std looks the program up in the PATH given to the child when there is one.
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| err(format!("write stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("wait: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // The helper protocol reports a missing entry as this message on stdout.
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(err(format!("{}: {msg}{stderr}", out.status)));
    }
    let r: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("parse reply: {e}")))?;
    if r.secret.is_empty() {
        return Ok(None);
    }
    if r.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(r.secret)));
    }
    Ok(Some(Credential::Basic {
        username: r.username,
        password: r.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn auths_base64_and_username_password() {
        let d = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        write_config(
            d.path(),
            &format!(
                r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},
                "https://reg.example:443/v2/":{{"username":"bob","password":"pw"}},
                "https://index.docker.io/v1/":{{"identitytoken":"tok"}}}}}}"#
            ),
        );
        let src = CredentialsSource::DockerConfig(Some(d.path().to_path_buf()));
        assert_eq!(
            src.lookup("127.0.0.1:5000").unwrap(),
            Some(Credential::Basic {
                username: "alice".into(),
                password: "s3cr:et".into()
            })
        );
        assert_eq!(
            src.lookup("reg.example:443").unwrap(),
            Some(Credential::Basic {
                username: "bob".into(),
                password: "pw".into()
            })
        );
        assert_eq!(
            src.lookup("docker.io").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
        assert_eq!(src.lookup("other:1").unwrap(), None);
    }

    #[test]
    fn missing_file_is_anonymous_and_bad_json_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let src = CredentialsSource::DockerConfig(Some(d.path().to_path_buf()));
        assert_eq!(src.lookup("x").unwrap(), None);
        write_config(d.path(), "{not json");
        let e = src.lookup("x").unwrap_err().to_string();
        assert!(e.starts_with("parse docker config"), "{e}");
        write_config(d.path(), r#"{"auths":{"x":{"auth":"%%%"}}}"#);
        let e = src.lookup("x").unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn credential_helper_protocol() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let name = format!("berthtest{}", std::process::id());
        let helper = bin.join(format!("docker-credential-{name}"));
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = \"h:1\" ]; then echo '{\"ServerURL\":\"h:1\",\"Username\":\"u\",\"Secret\":\"p\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_config(
            d.path(),
            &format!(r#"{{"credHelpers":{{"h:1":"{name}","h:2":"{name}"}}}}"#),
        );
        let src = CredentialsSource::DockerConfig(Some(d.path().to_path_buf()));
        assert_eq!(
            src.lookup_with_path("h:1", Some(bin.as_os_str())).unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            src.lookup_with_path("h:2", Some(bin.as_os_str())).unwrap(),
            None
        );
        // The global store, with `auths` as the fallback when the store has nothing.
        write_config(
            d.path(),
            &format!(
                r#"{{"credsStore":"{name}","auths":{{"h:2":{{"username":"x","password":"y"}}}}}}"#
            ),
        );
        let user = |r: &str| {
            src.lookup_with_path(r, Some(bin.as_os_str()))
                .unwrap()
                .and_then(|c| c.username().map(str::to_string))
        };
        assert_eq!(user("h:1").as_deref(), Some("u"));
        assert_eq!(user("h:2").as_deref(), Some("x"));
        // A helper that is not installed is an error naming it.
        write_config(d.path(), r#"{"credsStore":"berth-no-such-helper"}"#);
        let e = src
            .lookup_with_path("h:1", Some(bin.as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("credential helper docker-credential-berth-no-such-helper for h:1: run:"),
            "{e}"
        );
    }
}
