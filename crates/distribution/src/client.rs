//! The registry client: content negotiation for manifests, token and basic auth, blob transfer
//! with resume, uploads (monolithic, chunked, cross-repository mount), retries with backoff.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth_image::digest::{Digest, Hasher};
use berth_image::reference::Reference;
use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::challenge::{self, Challenge};
use crate::credentials::{Credential, CredentialsError, CredentialsSource};

/// Every manifest media type the client asks for.
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests larger than this are refused (containerd uses the same bound).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Errors from talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("authentication required for {repo}: {detail}")]
    AuthRequired { repo: String, detail: String },
    #[error("wrong credentials for {repo} (user {user}): {detail}")]
    WrongCredentials {
        repo: String,
        user: String,
        detail: String,
    },
    #[error("access denied to {repo}: {detail}")]
    Denied { repo: String, detail: String },
    #[error("{what} not found in {repo}: {detail}")]
    NotFound {
        repo: String,
        what: String,
        detail: String,
    },
    #[error("{method} {url}: unexpected status {status}: {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{method} {url}: {reason}")]
    Transfer {
        method: String,
        url: String,
        reason: String,
    },
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error("digest mismatch for {repo}: expected {expected}, got {actual}")]
    DigestMismatch {
        repo: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size mismatch for {digest} in {repo}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        repo: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("manifest {reference} in {repo} is larger than {max} bytes")]
    ManifestTooLarge {
        repo: String,
        reference: String,
        max: u64,
    },
    #[error("credentials for {registry}: {source}")]
    Credentials {
        registry: String,
        source: CredentialsError,
    },
    #[error("invalid registry address {registry}: {reason}")]
    BadRegistry { registry: String, reason: String },
    #[error("write blob {digest}: {source}")]
    Sink {
        digest: Digest,
        source: std::io::Error,
    },
    #[error("read blob {digest} for upload: {source}")]
    Source {
        digest: Digest,
        source: std::io::Error,
    },
    #[error("open {path} for upload: {source}")]
    OpenUpload {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("build http client: {0}")]
    Client(String),
}

/// How a caller should treat a registry error (the daemon maps these to statuses in one place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    /// Authentication missing or refused, or access denied.
    Unauthorized,
    /// A bad reference, registry address, credentials file or local file.
    InvalidInput,
    /// The registry cannot be reached or keeps failing.
    Unavailable,
    /// The registry sent data that does not match what was asked (digest, size, protocol).
    BadData,
    Internal,
}

impl RegistryError {
    pub fn kind(&self) -> ErrorKind {
        use RegistryError as E;
        match self {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::AuthRequired { .. } | E::WrongCredentials { .. } | E::Denied { .. } => {
                ErrorKind::Unauthorized
            }
            E::Credentials { .. }
            | E::BadRegistry { .. }
            | E::OpenUpload { .. }
            | E::Source { .. } => ErrorKind::InvalidInput,
            E::Connect { .. } | E::Transfer { .. } => ErrorKind::Unavailable,
            E::Status { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            E::Status { .. }
            | E::InvalidResponse { .. }
            | E::DigestMismatch { .. }
            | E::SizeMismatch { .. }
            | E::ManifestTooLarge { .. } => ErrorKind::BadData,
            E::Sink { .. } | E::Client(_) => ErrorKind::Internal,
        }
    }
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP ("host:port" or "host"), besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Mirrors tried (in order) before Docker Hub for pulls: "host:port" or "http(s)://host:port".
    pub mirrors: Vec<String>,
    pub credentials: CredentialsSource,
    /// Attempts per request on 5xx and connection errors (1 = no retry).
    pub max_attempts: u32,
    /// First backoff delay, doubled at each retry.
    pub retry_delay: Duration,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            credentials: CredentialsSource::None,
            max_attempts: 4,
            retry_delay: Duration::from_millis(200),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A repository in a registry: the reference's domain ("docker.io", "127.0.0.1:5000") and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    pub domain: String,
    pub path: String,
}

impl Repository {
    pub fn new(domain: impl Into<String>, path: impl Into<String>) -> Repository {
        Repository {
            domain: domain.into(),
            path: path.into(),
        }
    }
}

impl From<&Reference> for Repository {
    fn from(r: &Reference) -> Repository {
        Repository::new(r.domain(), r.path())
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

/// What `resolve` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A fetched manifest, its media type passed through unchecked (the caller refuses unknown ones).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// How a blob push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    AlreadyExists,
    Mounted,
    Uploaded,
}

/// Destination of a pulled blob: the content store's ingest, a file, a buffer.
///
/// `offset()` bytes are already held (a partial download); the pull resumes after them with a
/// Range request. When the sink can give the hash of those bytes (`prefix_hasher`), the client
/// verifies the whole blob's digest itself; otherwise that is left to the sink (the content
/// store's commit verifies anyway).
pub trait BlobSink: Send {
    fn offset(&self) -> u64 {
        0
    }
    fn prefix_hasher(&mut self) -> Option<Hasher> {
        None
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl BlobSink for Vec<u8> {
    fn offset(&self) -> u64 {
        self.len() as u64
    }
    fn prefix_hasher(&mut self) -> Option<Hasher> {
        let mut h = Hasher::new();
        h.update(self);
        Some(h)
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Adapts any `Write` starting from empty as a sink.
#[derive(Debug)]
pub struct WriteSink<W>(pub W);

impl<W: std::io::Write + Send> BlobSink for WriteSink<W> {
    fn prefix_hasher(&mut self) -> Option<Hasher> {
        Some(Hasher::new())
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }
}

/// A blob body being downloaded.
#[derive(Debug)]
pub struct BlobStream {
    resp: reqwest::Response,
    url: String,
    /// Where the body starts in the blob (the Range offset the server honoured).
    pub offset: u64,
    /// Total blob size when the server said.
    pub total: Option<u64>,
}

impl BlobStream {
    /// The next chunk, None at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        self.resp
            .chunk()
            .await
            .map_err(|e| RegistryError::Transfer {
                method: "GET".into(),
                url: self.url.clone(),
                reason: error_chain(&e),
            })
    }
}

#[derive(Debug, Clone)]
enum AuthMethod {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// The async registry client. Cheap to share behind an `Arc`; caches tokens per scope.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// Auth method learned from each registry's challenge, keyed by host.
    methods: Mutex<HashMap<String, AuthMethod>>,
    /// Bearer tokens keyed by (host, scopes).
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    /// Credentials looked up once per registry domain.
    creds: Mutex<HashMap<String, Option<Credential>>>,
}

/// One place a repository can be reached: its base URL and the domain for credentials.
#[derive(Debug, Clone)]
struct Endpoint {
    base: Url,
    host: String,
    domain: String,
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Renders an error and its sources, the io error's kind in words ("connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::Other => io.to_string(),
                k => k.to_string(),
            };
        }
        last = c.to_string();
        cur = c.source();
    }
    last
}

/// Registry error body as one line, or the status text.
fn error_detail(status: StatusCode, body: &[u8]) -> String {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
        let parts: Vec<String> = b
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.to_lowercase()
                } else {
                    e.message.clone()
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() && text.len() < 200 && !text.contains('<') {
        return text.to_string();
    }
    status
        .canonical_reason()
        .unwrap_or("unknown status")
        .to_lowercase()
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// Whether `host` ("host[:port]") is reached over plain HTTP, as Docker decides: loopback
/// addresses, localhost, and registries listed as insecure.
pub fn is_plain_http(host: &str, insecure: &[String]) -> bool {
    let h = host_without_port(host);
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    if h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let ip = h.parse::<IpAddr>().ok();
    insecure.iter().any(|i| {
        let i = i
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        i == host || i == h || ip.is_some_and(|ip| cidr_contains(i, ip))
    })
}

/// Whether `cidr` ("10.0.0.0/8", "fd00::/8") contains `ip`; false for anything else.
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn parse_digest_header(h: &HeaderMap) -> Option<Digest> {
    h.get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v.trim()).ok())
}

fn header_str(h: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn content_type(h: &HeaderMap) -> String {
    header_str(h, CONTENT_TYPE)
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

/// The body of a request, rebuilt for each attempt.
#[derive(Debug, Clone)]
enum Body {
    Empty,
    Bytes(Bytes),
    /// A file streamed from disk, reopened for each attempt.
    File {
        path: std::path::PathBuf,
        size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

impl RegistryClient {
    pub fn new(config: ClientConfig) -> Result<RegistryClient, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| RegistryError::Client(error_chain(&e)))?;
        Ok(RegistryClient {
            http,
            config,
            methods: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        })
    }

    fn endpoint_for(&self, host_or_url: &str, domain: &str) -> Result<Endpoint, RegistryError> {
        let bad = |reason: String| RegistryError::BadRegistry {
            registry: host_or_url.to_string(),
            reason,
        };
        let url = if host_or_url.contains("://") {
            host_or_url.trim_end_matches('/').to_string()
        } else {
            let scheme = if is_plain_http(host_or_url, &self.config.insecure_registries) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host_or_url}")
        };
        let base = Url::parse(&format!("{url}/v2/")).map_err(|e| bad(e.to_string()))?;
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err(bad("no host".to_string())),
        };
        Ok(Endpoint {
            base,
            host,
            domain: domain.to_string(),
        })
    }

    /// Endpoints to try for reads: mirrors first for Docker Hub, then the registry itself.
    fn read_endpoints(&self, repo: &Repository) -> Result<Vec<Endpoint>, RegistryError> {
        let mut out = Vec::new();
        if repo.domain == "docker.io" {
            for m in &self.config.mirrors {
                out.push(
                    self.endpoint_for(
                        m,
                        m.trim_start_matches("http://")
                            .trim_start_matches("https://"),
                    )?,
                );
            }
        }
        out.push(self.write_endpoint(repo)?);
        Ok(out)
    }

    fn write_endpoint(&self, repo: &Repository) -> Result<Endpoint, RegistryError> {
        let host = if repo.domain == "docker.io" {
            "registry-1.docker.io"
        } else {
            repo.domain.as_str()
        };
        self.endpoint_for(host, &repo.domain)
    }

    fn credential(&self, domain: &str) -> Result<Option<Credential>, RegistryError> {
        if let Ok(m) = self.creds.lock() {
            if let Some(c) = m.get(domain) {
                return Ok(c.clone());
            }
        }
        let c = self.config.credentials.lookup(domain).map_err(|source| {
            RegistryError::Credentials {
                registry: domain.to_string(),
                source,
            }
        })?;
        if let Ok(mut m) = self.creds.lock() {
            m.insert(domain.to_string(), c.clone());
        }
        Ok(c)
    }

    fn scopes(repo: &Repository, access: Access, extra_pull: Option<&str>) -> Vec<String> {
        let a = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        let mut v = vec![format!("repository:{}:{a}", repo.path)];
        if let Some(from) = extra_pull {
            v.push(format!("repository:{from}:pull"));
        }
        v
    }

    async fn backoff(&self, attempt: u32) {
        let factor = 1u32 << attempt.min(6);
        tokio::time::sleep(self.config.retry_delay * factor).await;
    }

    /// Authorization header value for a request, from what the registry asked for before.
    async fn auth_header(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        let method = self
            .methods
            .lock()
            .ok()
            .and_then(|m| m.get(&ep.host).cloned());
        match method {
            None => Ok(None),
            Some(AuthMethod::Basic) => Ok(match self.credential(&ep.domain)? {
                Some(Credential::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )),
                _ => None,
            }),
            Some(AuthMethod::Bearer { realm, service }) => {
                let key = (ep.host.clone(), scopes.join(" "));
                let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
                if let Some(t) = cached.filter(|t| t.expires > Instant::now()) {
                    return Ok(Some(format!("Bearer {}", t.token)));
                }
                let t = self
                    .fetch_token(ep, repo, &realm, service.as_deref(), scopes)
                    .await?;
                let header = format!("Bearer {}", t.token);
                if let Ok(mut m) = self.tokens.lock() {
                    m.insert(key, t);
                }
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<CachedToken, RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::InvalidResponse {
            url: ep.base.to_string(),
            reason: format!("bad token realm {realm:?}: {e}"),
        })?;
        let cred = self.credential(&ep.domain)?;
        let req = match &cred {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = Url::parse("http://form.invalid/")
                    .map_err(|e| RegistryError::Client(e.to_string()))?;
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    q.append_pair("refresh_token", refresh);
                    q.append_pair("client_id", "berth");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &scopes.join(" "));
                }
                self.http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.query().unwrap_or("").to_string())
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let r = self.http.get(url.clone());
                match &cred {
                    Some(Credential::Basic { username, password }) => {
                        r.basic_auth(username, Some(password))
                    }
                    _ => r,
                }
            }
        };
        let url_s = url.to_string();
        let mut attempt = 0;
        let resp = loop {
            match req.try_clone().map(|r| r.send()) {
                Some(fut) => match fut.await {
                    Ok(r)
                        if r.status().is_server_error()
                            && attempt + 1 < self.config.max_attempts => {}
                    Ok(r) => break r,
                    Err(e)
                        if attempt + 1 < self.config.max_attempts
                            && (e.is_connect() || e.is_timeout()) => {}
                    Err(e) => {
                        return Err(RegistryError::Connect {
                            host: url.host_str().unwrap_or("").to_string(),
                            reason: error_chain(&e),
                        })
                    }
                },
                None => return Err(RegistryError::Client("token request not clonable".into())),
            }
            self.backoff(attempt).await;
            attempt += 1;
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = format!("token server {}: {}", url_s, error_detail(status, &body));
            return Err(match cred {
                Some(c) => RegistryError::WrongCredentials {
                    repo: repo.to_string(),
                    user: c.username().unwrap_or("<identity token>").to_string(),
                    detail,
                },
                None => RegistryError::AuthRequired {
                    repo: repo.to_string(),
                    detail,
                },
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url: url_s,
                status: status.as_u16(),
                detail: error_detail(status, &body),
            });
        }
        let reply: TokenReply =
            serde_json::from_slice(&body).map_err(|e| RegistryError::InvalidResponse {
                url: url_s.clone(),
                reason: format!("token reply: {e}"),
            })?;
        let token = reply
            .token
            .filter(|t| !t.is_empty())
            .or(reply.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: url_s.clone(),
                reason: "token reply without token".into(),
            })?;
        // Tokens live 60 s unless said otherwise; renew a little early.
        let life = reply.expires_in.unwrap_or(60).clamp(1, 24 * 3600);
        let life = Duration::from_secs(life).saturating_sub(Duration::from_secs(life.min(60) / 6));
        Ok(CachedToken {
            token,
            expires: Instant::now() + life,
        })
    }

    /// Learns the auth method from a 401 response; returns false when nothing usable was offered.
    fn learn_challenge(&self, ep: &Endpoint, headers: &HeaderMap) -> bool {
        let mut found: Option<AuthMethod> = None;
        for v in headers.get_all(WWW_AUTHENTICATE) {
            let Ok(v) = v.to_str() else { continue };
            let Ok(chs) = challenge::parse(v) else {
                continue;
            };
            for Challenge { scheme, params } in chs {
                match scheme.as_str() {
                    "bearer" => {
                        // A realm that is not an http(s) URL is unusable: ignore the challenge.
                        let usable = params.get("realm").filter(|r| {
                            Url::parse(r).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                        });
                        if let Some(realm) = usable {
                            found = Some(AuthMethod::Bearer {
                                realm: realm.clone(),
                                service: params.get("service").cloned(),
                            });
                        }
                    }
                    "basic" if found.is_none() => found = Some(AuthMethod::Basic),
                    _ => {}
                }
            }
        }
        match found {
            Some(m) => {
                if let Ok(mut map) = self.methods.lock() {
                    map.insert(ep.host.clone(), m);
                }
                true
            }
            None => false,
        }
    }

    /// Sends one request with auth, retries on 5xx and connection errors, and one re-auth on 401.
    /// Returns the response whatever its status (other than the handled 401s).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        access: Access,
        mount_from: Option<&str>,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Body,
    ) -> Result<reqwest::Response, RegistryError> {
        let scopes = Self::scopes(repo, access, mount_from);
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            let auth = self.auth_header(ep, repo, &scopes).await?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = &auth {
                if let Ok(v) = HeaderValue::from_str(a) {
                    req = req.header(AUTHORIZATION, v);
                }
            }
            req = match &body {
                Body::Empty => req,
                Body::Bytes(b) => req.body(b.clone()),
                Body::File { path, size } => {
                    let f = tokio::fs::File::open(path).await.map_err(|source| {
                        RegistryError::OpenUpload {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    req.header(reqwest::header::CONTENT_LENGTH, *size)
                        .body(reqwest::Body::from(f))
                }
            };
            let res = req.send().await;
            let retriable = attempt + 1 < self.config.max_attempts;
            match res {
                Err(e) => {
                    if retriable && (e.is_connect() || e.is_timeout() || e.is_request()) {
                        self.backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(if e.is_connect() {
                        RegistryError::Connect {
                            host: ep.host.clone(),
                            reason: error_chain(&e),
                        }
                    } else {
                        RegistryError::Transfer {
                            method: method.to_string(),
                            url: url.to_string(),
                            reason: error_chain(&e),
                        }
                    });
                }
                Ok(r) if r.status().is_server_error() && retriable => {
                    self.backoff(attempt).await;
                    attempt += 1;
                    continue;
                }
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    let headers = r.headers().clone();
                    let body = r.bytes().await.unwrap_or_default();
                    let detail = error_detail(StatusCode::UNAUTHORIZED, &body);
                    let cred = self.credential(&ep.domain)?;
                    if !reauthed && self.learn_challenge(ep, &headers) {
                        // Drop a token the registry refused, then try again with fresh auth.
                        if let Ok(mut t) = self.tokens.lock() {
                            t.remove(&(ep.host.clone(), scopes.join(" ")));
                        }
                        reauthed = true;
                        let basic = matches!(
                            self.methods
                                .lock()
                                .ok()
                                .and_then(|m| m.get(&ep.host).cloned()),
                            Some(AuthMethod::Basic)
                        );
                        // Basic auth without basic credentials cannot succeed: report it now.
                        if !basic || matches!(cred, Some(Credential::Basic { .. })) {
                            continue;
                        }
                    }
                    let bearer = matches!(
                        self.methods
                            .lock()
                            .ok()
                            .and_then(|m| m.get(&ep.host).cloned()),
                        Some(AuthMethod::Bearer { .. })
                    );
                    return Err(match (cred, auth.is_some()) {
                        // The token server accepted the credentials (or it would have refused
                        // the token): the registry refuses this access, not the user.
                        (Some(_), true) if bearer => RegistryError::Denied {
                            repo: repo.to_string(),
                            detail,
                        },
                        (Some(c), true) => RegistryError::WrongCredentials {
                            repo: repo.to_string(),
                            user: c.username().unwrap_or("<identity token>").to_string(),
                            detail,
                        },
                        _ => RegistryError::AuthRequired {
                            repo: repo.to_string(),
                            detail,
                        },
                    });
                }
                Ok(r) => return Ok(r),
            }
        }
    }

    async fn fail(
        repo: &Repository,
        what: &str,
        method: &str,
        r: reqwest::Response,
    ) -> RegistryError {
        let status = r.status();
        let url = r.url().to_string();
        let body = r.bytes().await.unwrap_or_default();
        let detail = error_detail(status, &body);
        match status {
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                repo: repo.to_string(),
                what: what.to_string(),
                detail,
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                repo: repo.to_string(),
                detail,
            },
            _ => RegistryError::Status {
                method: method.to_string(),
                url,
                status: status.as_u16(),
                detail,
            },
        }
    }

    fn join(ep: &Endpoint, path: &str) -> Result<Url, RegistryError> {
        ep.base.join(path).map_err(|e| RegistryError::BadRegistry {
            registry: ep.host.clone(),
            reason: format!("{path}: {e}"),
        })
    }

    fn manifest_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&MANIFEST_ACCEPT.join(", ")) {
            h.insert(ACCEPT, v);
        }
        h
    }

    /// Tries each read endpoint in turn; a mirror that fails is skipped.
    async fn read<T, F, Fut>(&self, repo: &Repository, f: F) -> Result<T, RegistryError>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let eps = self.read_endpoints(repo)?;
        let n = eps.len();
        let mut last = None;
        for (i, ep) in eps.into_iter().enumerate() {
            match f(ep).await {
                Ok(v) => return Ok(v),
                Err(e) if i + 1 < n => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::BadRegistry {
            registry: repo.domain.clone(),
            reason: "no endpoint".into(),
        }))
    }

    /// `docker login`: checks this client's credentials for `registry` (a domain as in
    /// references: "docker.io", "host:port") against the registry's `/v2/`, as Docker does:
    /// a registry that asks for no auth accepts anyone; basic auth is tried with the
    /// credentials; a bearer challenge sends them to the token server (no scope).
    pub async fn login(&self, registry: &str) -> Result<(), RegistryError> {
        let repo = Repository::new(registry, "");
        let ep = self.write_endpoint(&repo)?;
        let url = ep.base.clone();
        let get = |auth: Option<String>| {
            let mut req = self.http.get(url.clone());
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            req.send()
        };
        let connect = |e: reqwest::Error| RegistryError::Connect {
            host: ep.host.clone(),
            reason: error_chain(&e),
        };
        let r = get(None).await.map_err(connect)?;
        if r.status().is_success() {
            return Ok(());
        }
        if r.status() != StatusCode::UNAUTHORIZED {
            return Err(Self::fail(&repo, "registry API", "GET", r).await);
        }
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap_or_default();
        let cred = self.credential(&ep.domain)?;
        let Some(cred) = cred else {
            return Err(RegistryError::AuthRequired {
                repo: registry.to_string(),
                detail: error_detail(StatusCode::UNAUTHORIZED, &body),
            });
        };
        if !self.learn_challenge(&ep, &headers) {
            return Err(RegistryError::InvalidResponse {
                url: url.to_string(),
                reason: "401 without a usable WWW-Authenticate challenge".into(),
            });
        }
        let method = self
            .methods
            .lock()
            .ok()
            .and_then(|m| m.get(&ep.host).cloned());
        let wrong = |detail: String| RegistryError::WrongCredentials {
            repo: registry.to_string(),
            user: cred.username().unwrap_or("<identity token>").to_string(),
            detail,
        };
        let header = match method {
            Some(AuthMethod::Bearer { realm, service }) => {
                // The token server checks the credentials (401 → WrongCredentials).
                let t = self
                    .fetch_token(&ep, &repo, &realm, service.as_deref(), &[])
                    .await?;
                format!("Bearer {}", t.token)
            }
            _ => match &cred {
                Credential::Basic { username, password } => format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                ),
                Credential::IdentityToken(_) => {
                    return Err(wrong(
                        "the registry takes basic auth, not an identity token".into(),
                    ))
                }
            },
        };
        let r = get(Some(header)).await.map_err(connect)?;
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        let body = r.bytes().await.unwrap_or_default();
        let detail = format!(
            "login attempt to {url} failed with status: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(wrong(detail));
        }
        Err(RegistryError::Status {
            method: "GET".into(),
            url: url.to_string(),
            status: status.as_u16(),
            detail: error_detail(status, &body),
        })
    }

    /// Resolves a reference to the digest, media type and size of its manifest: HEAD with every
    /// manifest type accepted, then GET when the registry gives no digest.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved, RegistryError> {
        let repo = Repository::from(reference);
        let tag_or_digest = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        self.read(&repo, |ep| {
            let repo = repo.clone();
            let tag_or_digest = tag_or_digest.clone();
            async move {
                let url = Self::join(&ep, &format!("{}/manifests/{}", repo.path, tag_or_digest))?;
                let r = self
                    .send(
                        &ep,
                        &repo,
                        Access::Pull,
                        None,
                        Method::HEAD,
                        url,
                        Self::manifest_headers(),
                        Body::Empty,
                    )
                    .await?;
                if r.status().is_success() {
                    let h = r.headers();
                    let digest = parse_digest_header(h).or_else(|| reference.digest().cloned());
                    let size = h
                        .get(reqwest::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let mt = content_type(h);
                    if let (Some(digest), Some(size)) = (digest, size) {
                        if !mt.is_empty() {
                            return Ok(Resolved {
                                digest,
                                media_type: mt,
                                size,
                            });
                        }
                    }
                } else if r.status() != StatusCode::METHOD_NOT_ALLOWED
                    && !r.status().is_server_error()
                {
                    return Err(
                        Self::fail(&repo, &format!("manifest {tag_or_digest}"), "HEAD", r).await,
                    );
                }
                let m = self.get_manifest_at(&ep, &repo, &tag_or_digest).await?;
                Ok(Resolved {
                    size: m.bytes.len() as u64,
                    digest: m.digest,
                    media_type: m.media_type,
                })
            }
        })
        .await
    }

    /// Fetches a manifest by tag or digest. Fetched by digest, its bytes are verified; by tag,
    /// the digest is computed (and checked against the registry's Docker-Content-Digest).
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        tag_or_digest: &str,
    ) -> Result<Manifest, RegistryError> {
        self.read(repo, |ep| async move {
            self.get_manifest_at(&ep, repo, tag_or_digest).await
        })
        .await
    }

    async fn get_manifest_at(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        tag_or_digest: &str,
    ) -> Result<Manifest, RegistryError> {
        let url = Self::join(ep, &format!("{}/manifests/{}", repo.path, tag_or_digest))?;
        let mut r = self
            .send(
                ep,
                repo,
                Access::Pull,
                None,
                Method::GET,
                url.clone(),
                Self::manifest_headers(),
                Body::Empty,
            )
            .await?;
        if !r.status().is_success() {
            return Err(Self::fail(repo, &format!("manifest {tag_or_digest}"), "GET", r).await);
        }
        let too_large = || RegistryError::ManifestTooLarge {
            repo: repo.to_string(),
            reference: tag_or_digest.to_string(),
            max: MAX_MANIFEST_SIZE,
        };
        if r.content_length().is_some_and(|l| l > MAX_MANIFEST_SIZE) {
            return Err(too_large());
        }
        let media_type = content_type(r.headers());
        let header_digest = parse_digest_header(r.headers());
        let mut buf = Vec::new();
        while let Some(c) = r.chunk().await.map_err(|e| RegistryError::Transfer {
            method: "GET".into(),
            url: url.to_string(),
            reason: error_chain(&e),
        })? {
            buf.extend_from_slice(&c);
            if buf.len() as u64 > MAX_MANIFEST_SIZE {
                return Err(too_large());
            }
        }
        let actual = Digest::sha256_of(&buf);
        let expected = match Digest::parse(tag_or_digest) {
            Ok(d) => Some(d),
            Err(_) => header_digest.filter(|d| d.algorithm() == "sha256"),
        };
        if let Some(expected) = expected {
            if expected.algorithm() == "sha256" && expected != actual {
                return Err(RegistryError::DigestMismatch {
                    repo: repo.to_string(),
                    expected,
                    actual,
                });
            }
        }
        Ok(Manifest {
            bytes: Bytes::from(buf),
            media_type,
            digest: actual,
        })
    }

    /// Whether the registry holds the blob (HEAD), with its size.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let ep = self.write_endpoint(repo)?;
        self.blob_exists_at(&ep, repo, digest).await
    }

    async fn blob_exists_at(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let url = Self::join(ep, &format!("{}/blobs/{}", repo.path, digest))?;
        let r = self
            .send(
                ep,
                repo,
                Access::Pull,
                None,
                Method::HEAD,
                url,
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(
                r.headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::fail(repo, &format!("blob {digest}"), "HEAD", r).await),
        }
    }

    /// Starts downloading a blob from `offset` (a Range request when > 0).
    pub async fn get_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, RegistryError> {
        self.read(repo, |ep| async move {
            self.get_blob_at(&ep, repo, digest, offset).await
        })
        .await
    }

    async fn get_blob_at(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, RegistryError> {
        let url = Self::join(ep, &format!("{}/blobs/{}", repo.path, digest))?;
        let mut h = HeaderMap::new();
        if offset > 0 {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes={offset}-")) {
                h.insert(reqwest::header::RANGE, v);
            }
        }
        let r = self
            .send(
                ep,
                repo,
                Access::Pull,
                None,
                Method::GET,
                url.clone(),
                h,
                Body::Empty,
            )
            .await?;
        let status = r.status();
        if !status.is_success() {
            return Err(Self::fail(repo, &format!("blob {digest}"), "GET", r).await);
        }
        let (start, total) = if status == StatusCode::PARTIAL_CONTENT {
            // Content-Range: bytes <start>-<end>/<total>
            let cr = header_str(r.headers(), reqwest::header::CONTENT_RANGE).unwrap_or_default();
            let parsed = cr.strip_prefix("bytes ").and_then(|rest| {
                let (range, total) = rest.split_once('/')?;
                let start = range.split_once('-')?.0.parse::<u64>().ok()?;
                Some((start, total.parse::<u64>().ok()))
            });
            match parsed {
                Some(p) if p.0 == offset => p,
                _ => {
                    return Err(RegistryError::InvalidResponse {
                        url: url.to_string(),
                        reason: format!("range response {cr:?} does not start at {offset}"),
                    })
                }
            }
        } else {
            (0, r.content_length())
        };
        Ok(BlobStream {
            resp: r,
            url: url.to_string(),
            offset: start,
            total,
        })
    }

    /// Downloads a blob into `sink`, resuming after the bytes it already holds, resuming again
    /// (bounded) when the connection drops, and verifying size and digest as the bytes flow.
    /// Returns the blob's size.
    pub async fn pull_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        expected_size: Option<u64>,
        sink: &mut dyn BlobSink,
    ) -> Result<u64, RegistryError> {
        let mut offset = sink.offset();
        let mut hasher = if offset == 0 {
            Some(Hasher::new())
        } else {
            sink.prefix_hasher()
        };
        let mut resumes = 0u32;
        let mut skip: u64 = 0;
        loop {
            let mut s = self.get_blob(repo, digest, offset).await?;
            if s.offset != offset {
                // The server ignored the Range: drop what we already have from the body.
                skip = offset - s.offset;
            }
            let dropped = loop {
                match s.chunk().await {
                    Ok(Some(mut c)) => {
                        if skip > 0 {
                            let n = usize::try_from(skip.min(c.len() as u64)).unwrap_or(c.len());
                            let _ = c.split_to(n);
                            skip -= n as u64;
                            if c.is_empty() {
                                continue;
                            }
                        }
                        if let Some(max) = expected_size {
                            if offset + c.len() as u64 > max {
                                return Err(RegistryError::SizeMismatch {
                                    repo: repo.to_string(),
                                    digest: digest.clone(),
                                    expected: max,
                                    actual: offset + c.len() as u64,
                                });
                            }
                        }
                        if let Some(h) = hasher.as_mut() {
                            h.update(&c);
                        }
                        sink.write_chunk(&c).map_err(|source| RegistryError::Sink {
                            digest: digest.clone(),
                            source,
                        })?;
                        offset += c.len() as u64;
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            let short =
                expected_size.is_some_and(|n| offset < n) || s.total.is_some_and(|t| offset < t);
            match dropped {
                None if !short => break,
                Some(e) if resumes + 1 >= self.config.max_attempts => return Err(e),
                None if resumes + 1 >= self.config.max_attempts => {
                    return Err(RegistryError::SizeMismatch {
                        repo: repo.to_string(),
                        digest: digest.clone(),
                        expected: expected_size.or(s.total).unwrap_or(0),
                        actual: offset,
                    })
                }
                _ => {
                    resumes += 1;
                    self.backoff(resumes - 1).await;
                }
            }
        }
        if let Some(n) = expected_size {
            if offset != n {
                return Err(RegistryError::SizeMismatch {
                    repo: repo.to_string(),
                    digest: digest.clone(),
                    expected: n,
                    actual: offset,
                });
            }
        }
        if let Some(h) = hasher {
            let actual = h.finish();
            if digest.algorithm() == "sha256" && &actual != digest {
                return Err(RegistryError::DigestMismatch {
                    repo: repo.to_string(),
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        Ok(offset)
    }

    /// Uploads a manifest under a tag or digest; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        tag_or_digest: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let ep = self.write_endpoint(repo)?;
        let url = Self::join(&ep, &format!("{}/manifests/{}", repo.path, tag_or_digest))?;
        let mut h = HeaderMap::new();
        let ct = HeaderValue::from_str(media_type).map_err(|_| RegistryError::InvalidResponse {
            url: url.to_string(),
            reason: format!("media type {media_type:?} is not a valid header"),
        })?;
        h.insert(CONTENT_TYPE, ct);
        let computed = Digest::sha256_of(&bytes);
        let r = self
            .send(
                &ep,
                repo,
                Access::Push,
                None,
                Method::PUT,
                url,
                h,
                Body::Bytes(bytes),
            )
            .await?;
        if !r.status().is_success() {
            return Err(Self::fail(repo, &format!("manifest {tag_or_digest}"), "PUT", r).await);
        }
        Ok(computed)
    }

    /// Starts an upload session; with `mount_from`, first asks the registry to mount the blob from
    /// that repository (same registry). Returns None when mounted, else the session URL.
    async fn start_upload(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Option<Url>, RegistryError> {
        let mut url = Self::join(ep, &format!("{}/blobs/uploads/", repo.path))?;
        if let Some((d, from)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", d.as_str())
                .append_pair("from", from);
        }
        let r = self
            .send(
                ep,
                repo,
                Access::Push,
                mount.map(|m| m.1),
                Method::POST,
                url.clone(),
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match r.status() {
            StatusCode::CREATED if mount.is_some() => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(Self::location(&url, &r)?)),
            _ => Err(Self::fail(repo, "upload", "POST", r).await),
        }
    }

    fn location(base: &Url, r: &reqwest::Response) -> Result<Url, RegistryError> {
        let loc = header_str(r.headers(), reqwest::header::LOCATION).ok_or_else(|| {
            RegistryError::InvalidResponse {
                url: base.to_string(),
                reason: "upload response without Location".into(),
            }
        })?;
        base.join(&loc).map_err(|e| RegistryError::InvalidResponse {
            url: base.to_string(),
            reason: format!("bad Location {loc:?}: {e}"),
        })
    }

    /// Tries a cross-repository mount of `digest` from `from` (a path in the same registry).
    /// Returns true when mounted; false when the registry started a plain upload instead (which
    /// is then abandoned).
    pub async fn mount_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let ep = self.write_endpoint(repo)?;
        match self.start_upload(&ep, repo, Some((digest, from))).await? {
            None => Ok(true),
            Some(session) => {
                let _ = self
                    .send(
                        &ep,
                        repo,
                        Access::Push,
                        None,
                        Method::DELETE,
                        session,
                        HeaderMap::new(),
                        Body::Empty,
                    )
                    .await;
                Ok(false)
            }
        }
    }

    /// Pushes a blob held in memory: skipped when the registry has it, mounted from `mount_from`
    /// when given and possible, else uploaded in one PUT.
    pub async fn push_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        data: Bytes,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome, RegistryError> {
        self.push_body(repo, digest, Body::Bytes(data), mount_from)
            .await
    }

    /// Pushes a blob streamed from a file of `size` bytes (the content store's blob): skipped
    /// when present, mounted from `mount_from` when possible, else one streaming PUT.
    pub async fn push_blob_file(
        &self,
        repo: &Repository,
        digest: &Digest,
        path: &std::path::Path,
        size: u64,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome, RegistryError> {
        let body = Body::File {
            path: path.to_path_buf(),
            size,
        };
        self.push_body(repo, digest, body, mount_from).await
    }

    /// HEAD to skip, then a mount attempt, then one PUT of `body`.
    async fn push_body(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Body,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome, RegistryError> {
        let ep = self.write_endpoint(repo)?;
        if self.blob_exists_at(&ep, repo, digest).await?.is_some() {
            return Ok(PushOutcome::AlreadyExists);
        }
        let Some(session) = self
            .start_upload(&ep, repo, mount_from.map(|f| (digest, f)))
            .await?
        else {
            return Ok(PushOutcome::Mounted);
        };
        self.finish_upload(&ep, repo, digest, session, body).await?;
        Ok(PushOutcome::Uploaded)
    }

    async fn finish_upload(
        &self,
        ep: &Endpoint,
        repo: &Repository,
        digest: &Digest,
        mut session: Url,
        body: Body,
    ) -> Result<(), RegistryError> {
        session
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let r = self
            .send(ep, repo, Access::Push, None, Method::PUT, session, h, body)
            .await?;
        if r.status() != StatusCode::CREATED && !r.status().is_success() {
            return Err(Self::fail(repo, &format!("blob {digest}"), "PUT", r).await);
        }
        Ok(())
    }

    /// Pushes a blob read from `reader` in PATCH chunks of `chunk_size` bytes, then the closing
    /// PUT with the digest. Skipped when the registry already has it.
    pub async fn push_blob_chunked<R: tokio::io::AsyncRead + Unpin>(
        &self,
        repo: &Repository,
        digest: &Digest,
        mut reader: R,
        chunk_size: usize,
    ) -> Result<PushOutcome, RegistryError> {
        let ep = self.write_endpoint(repo)?;
        if self.blob_exists_at(&ep, repo, digest).await?.is_some() {
            return Ok(PushOutcome::AlreadyExists);
        }
        let mut session = match self.start_upload(&ep, repo, None).await? {
            Some(s) => s,
            None => return Ok(PushOutcome::Mounted),
        };
        let chunk_size = chunk_size.max(1);
        let mut sent: u64 = 0;
        loop {
            let mut buf = Vec::with_capacity(chunk_size);
            while buf.len() < chunk_size {
                let mut limited = (&mut reader).take((chunk_size - buf.len()) as u64);
                let n =
                    limited
                        .read_buf(&mut buf)
                        .await
                        .map_err(|source| RegistryError::Source {
                            digest: digest.clone(),
                            source,
                        })?;
                if n == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            let len = buf.len() as u64;
            let mut h = HeaderMap::new();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("{}-{}", sent, sent + len - 1)) {
                h.insert(reqwest::header::CONTENT_RANGE, v);
            }
            let r = self
                .send(
                    &ep,
                    repo,
                    Access::Push,
                    None,
                    Method::PATCH,
                    session.clone(),
                    h,
                    Body::Bytes(Bytes::from(buf)),
                )
                .await?;
            if r.status() != StatusCode::ACCEPTED && !r.status().is_success() {
                return Err(Self::fail(repo, &format!("blob {digest}"), "PATCH", r).await);
            }
            session = Self::location(&session, &r)?;
            sent += len;
            if len < chunk_size as u64 {
                break;
            }
        }
        self.finish_upload(&ep, repo, digest, session, Body::Empty)
            .await?;
        Ok(PushOutcome::Uploaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_decision() {
        let insecure = vec![
            "reg.lan:5000".to_string(),
            "other.lan".to_string(),
            "10.1.0.0/16".to_string(),
        ];
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "reg.lan:5000",
            "other.lan:443",
            "10.1.2.3:5000",
        ] {
            assert!(is_plain_http(h, &insecure), "{h}");
        }
        for h in [
            "docker.io",
            "registry-1.docker.io",
            "reg.lan:5001",
            "10.0.0.1:5000",
            "10.2.0.1",
            "[::2]:5000",
        ] {
            assert!(!is_plain_http(h, &insecure), "{h}");
        }
    }

    #[test]
    fn client_is_shareable_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RegistryClient>();
    }

    #[test]
    fn error_details() {
        let b = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(
            error_detail(StatusCode::UNAUTHORIZED, b),
            "authentication required"
        );
        assert_eq!(error_detail(StatusCode::NOT_FOUND, b"<html>"), "not found");
        assert_eq!(error_detail(StatusCode::NOT_FOUND, b"no such"), "no such");
    }

    #[test]
    fn endpoints_and_mirrors() {
        let c = RegistryClient::new(ClientConfig {
            mirrors: vec!["http://127.0.0.1:9".into(), "mirror.lan".into()],
            ..ClientConfig::default()
        })
        .unwrap();
        let eps = c
            .read_endpoints(&Repository::new("docker.io", "library/busybox"))
            .unwrap();
        let urls: Vec<String> = eps.iter().map(|e| e.base.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9/v2/",
                "https://mirror.lan/v2/",
                "https://registry-1.docker.io/v2/"
            ]
        );
        let eps = c
            .read_endpoints(&Repository::new("localhost:5000", "a/b"))
            .unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].base.as_str(), "http://localhost:5000/v2/");
    }
}
