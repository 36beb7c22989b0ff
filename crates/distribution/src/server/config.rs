//! The registry's configuration: a TOML file, then command-line flags over it, validated once
//! into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The config file as written (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    pub root: Option<PathBuf>,
    pub read_only: Option<bool>,
    pub log_requests: Option<bool>,
    pub upload_max_age_secs: Option<u64>,
    pub upload_purge_interval_secs: Option<u64>,
    pub gc_grace_secs: Option<u64>,
    pub tls: Option<TlsFile>,
    pub auth: Option<AuthFile>,
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub htpasswd: Option<PathBuf>,
    /// Bearer tokens from the built-in `/token` endpoint instead of basic auth on every request.
    pub token: Option<bool>,
    pub service: Option<String>,
    pub realm: Option<String>,
    pub token_ttl_secs: Option<u64>,
}

/// Who may do what where: `user` is a name from the htpasswd file or `*` (any authenticated
/// user); `repository` a glob (`*` matches any run of characters, `/` included).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub user: String,
    pub repository: String,
    pub actions: Vec<String>,
}

/// Flags given on the command line; they override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub addr: Option<String>,
    pub root: Option<PathBuf>,
    pub htpasswd: Option<PathBuf>,
    pub token: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub read_only: bool,
    pub upload_max_age_secs: Option<u64>,
    pub upload_purge_interval_secs: Option<u64>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub read_only: bool,
    pub log_requests: bool,
    pub upload_max_age: Duration,
    pub upload_purge_interval: Duration,
    pub gc_grace: Duration,
    pub tls: Option<TlsFile>,
    pub auth: Option<AuthConfig>,
    pub access: Vec<AccessRule>,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub htpasswd: PathBuf,
    pub token: bool,
    pub service: String,
    pub realm: Option<String>,
    pub token_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("listen address {0:?}: not HOST:PORT")]
    Addr(String),
    #[error("TLS needs both a certificate and a key")]
    TlsHalf,
    #[error("access rule for {user:?} on {repository:?}: unknown action {action:?} (pull, push, delete)")]
    Action {
        user: String,
        repository: String,
        action: String,
    },
    #[error("token auth needs an htpasswd file")]
    TokenWithoutHtpasswd,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
pub const DEFAULT_ROOT: &str = "/var/lib/berth-registry";

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }
}

impl Config {
    /// Merges flags over the file and validates.
    pub fn build(file: FileConfig, o: Overrides) -> Result<Config, ConfigError> {
        let addr_s = o
            .addr
            .or(file.addr)
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let addr: SocketAddr = match addr_s.parse() {
            Ok(a) => a,
            Err(_) => {
                use std::net::ToSocketAddrs;
                addr_s
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| ConfigError::Addr(addr_s.clone()))?
            }
        };
        let tls = match (o.tls_cert, o.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFile { cert, key }),
            (None, None) => file.tls,
            _ => return Err(ConfigError::TlsHalf),
        };
        let fa = file.auth.unwrap_or_default();
        let htpasswd = o.htpasswd.or(fa.htpasswd);
        let token = o.token || fa.token.unwrap_or(false);
        let auth = match htpasswd {
            Some(h) => Some(AuthConfig {
                htpasswd: h,
                token,
                service: fa.service.unwrap_or_else(|| "berth-registry".to_string()),
                realm: fa.realm,
                token_ttl: Duration::from_secs(fa.token_ttl_secs.unwrap_or(300)),
            }),
            None if token => return Err(ConfigError::TokenWithoutHtpasswd),
            None => None,
        };
        for r in &file.access {
            for a in &r.actions {
                if !matches!(a.as_str(), "pull" | "push" | "delete" | "*") {
                    return Err(ConfigError::Action {
                        user: r.user.clone(),
                        repository: r.repository.clone(),
                        action: a.clone(),
                    });
                }
            }
        }
        Ok(Config {
            addr,
            root: o
                .root
                .or(file.root)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            read_only: o.read_only || file.read_only.unwrap_or(false),
            log_requests: file.log_requests.unwrap_or(true),
            upload_max_age: Duration::from_secs(
                o.upload_max_age_secs
                    .or(file.upload_max_age_secs)
                    .unwrap_or(3600),
            ),
            upload_purge_interval: Duration::from_secs(
                o.upload_purge_interval_secs
                    .or(file.upload_purge_interval_secs)
                    .unwrap_or(300)
                    .max(1),
            ),
            gc_grace: Duration::from_secs(file.gc_grace_secs.unwrap_or(3600)),
            tls,
            auth,
            access: file.access,
        })
    }

    /// A config for tests and embedding: defaults, this root and address.
    pub fn for_root(root: &Path) -> Config {
        let o = Overrides {
            root: Some(root.to_path_buf()),
            addr: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        };
        // The defaults always validate.
        match Config::build(FileConfig::default(), o) {
            Ok(c) => c,
            Err(_) => unreachable_config(),
        }
    }
}

#[cold]
fn unreachable_config() -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: PathBuf::from(DEFAULT_ROOT),
        read_only: false,
        log_requests: true,
        upload_max_age: Duration::from_secs(3600),
        upload_purge_interval: Duration::from_secs(300),
        gc_grace: Duration::from_secs(3600),
        tls: None,
        auth: None,
        access: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
addr = "0.0.0.0:6000"
root = "/srv/reg"
upload_max_age_secs = 10
[auth]
htpasswd = "/etc/reg/htpasswd"
token = true
[[access]]
user = "*"
repository = "library/*"
actions = ["pull"]
"#,
        )
        .unwrap();
        let c = Config::build(
            file,
            Overrides {
                addr: Some("127.0.0.1:7000".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:7000");
        assert_eq!(c.root, PathBuf::from("/srv/reg"));
        assert_eq!(c.upload_max_age, Duration::from_secs(10));
        assert!(c.auth.as_ref().unwrap().token);
        assert_eq!(c.access.len(), 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        let file: FileConfig =
            toml::from_str("[[access]]\nuser = \"a\"\nrepository = \"*\"\nactions = [\"fly\"]\n")
                .unwrap();
        let e = Config::build(file, Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("unknown action \"fly\""), "{e}");
        let o = Overrides {
            tls_cert: Some("/c".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::build(FileConfig::default(), o),
            Err(ConfigError::TlsHalf)
        ));
    }
}
