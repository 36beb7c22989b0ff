//! HTTP: listeners, the router, the version prefix, Docker's common headers, and the small
//! extractors and responders every handler uses (query parameters, JSON bodies, JSON streams,
//! hijacked connections).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_api::version::{self, ApiVersion};
use futures_util::Stream;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, Kind};
use crate::state::Daemon;

pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The whole API.
pub fn router(d: Arc<Daemon>) -> Router {
    Router::new()
        .merge(crate::routes::system::router())
        .merge(crate::routes::containers::router())
        .merge(crate::routes::exec::router())
        .merge(crate::routes::images::router())
        .merge(crate::routes::volumes::router())
        .merge(crate::routes::networks::router())
        .merge(crate::routes::archive::router())
        .merge(crate::routes::build::router())
        .fallback(not_found)
        .with_state(d)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    unserved(&method, uri.path())
}

/// The answer for a path no route serves. berthd is never part of a swarm, so the swarm
/// endpoints answer as dockerd does on a node outside one (503, its wording), which clients
/// rely on: docker-py's `leave_swarm(force=True)` takes that 503 as "nothing to leave".
fn unserved(method: &Method, path: &str) -> ApiError {
    const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next().unwrap_or(""), parts.next()) {
        ("swarm", Some("leave")) => {
            ApiError::new(Kind::Unavailable, "This node is not part of a swarm")
        }
        ("swarm", Some("init" | "join")) => ApiError::new(
            Kind::Unavailable,
            "berth does not run swarm mode: this node cannot init or join a swarm",
        ),
        ("swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs", _) => {
            ApiError::new(Kind::Unavailable, NOT_MANAGER)
        }
        _ => ApiError::not_found(format!("page not found: {method} {path}")),
    }
}

/// Strips `/vX.Y`, refuses versions out of range, records the version in the request, and
/// adds Docker's headers to every response.
pub async fn version_layer(mut req: Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_string();
    let (prefix, rest) = version::split_version_prefix(&path);
    let v = match version::negotiate(prefix) {
        Ok(v) => v,
        Err(e) => return with_headers(ApiError::invalid(e.to_string()).into_response()),
    };
    if prefix.is_some() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(u) = pq.parse::<Uri>() {
            *req.uri_mut() = u;
        }
    }
    req.extensions_mut().insert(v);
    with_headers(next.run(req).await)
}

fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_str(&version::MAX_API_VERSION.to_string())
            .unwrap_or(HeaderValue::from_static("1.41")),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("Docker/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    r
}

/// The negotiated API version of a request.
#[derive(Debug, Clone, Copy)]
pub struct Version(pub ApiVersion);

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Version(
            parts
                .extensions
                .get::<ApiVersion>()
                .copied()
                .unwrap_or(version::MAX_API_VERSION),
        ))
    }
}

/// Query parameters in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn bool(&self, k: &str) -> bool {
        self.get(k).is_some_and(berth_api::query_bool)
    }
    /// A boolean that defaults to true when absent.
    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        self.get(k).map_or(default, berth_api::query_bool)
    }
    pub fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(format!("invalid value for {k}: {v:?} is not an integer"))
            }),
        }
    }
    pub fn filters(&self) -> ApiResult<berth_api::filters::Filters> {
        Ok(berth_api::filters::Filters::parse(self.get("filters"))?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let v: Vec<(String, String)> = serde_urlencoded_pairs(q)?;
        Ok(Params(v))
    }
}

fn serde_urlencoded_pairs(q: &str) -> ApiResult<Vec<(String, String)>> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{q}")
            .parse::<Uri>()
            .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))
}

/// A JSON body, refused with 400 and a message naming the problem.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Largest JSON body accepted (create bodies are a few KiB).
const MAX_JSON_BODY: usize = 4 << 20;

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|e| ApiError::invalid(format!("read request body: {e}")))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: empty means `T::default()`.
pub fn parse_json_or_default<T: DeserializeOwned + Default>(b: &[u8]) -> ApiResult<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(b)
}

pub fn parse_json<T: DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "request body is empty, a JSON object is expected",
        ));
    }
    serde_json::from_slice(b).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

/// `200` with a JSON body.
pub fn json<T: Serialize>(v: &T) -> Response {
    json_status(StatusCode::OK, v)
}

pub fn json_status<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            b,
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("encode response: {e}")).into_response(),
    }
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A chunked stream of JSON lines (pull progress, events, stats). Headers go out at once.
pub fn json_stream<S>(s: S) -> Response
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut r = Response::new(Body::from_stream(s));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One JSON value as a line of a stream.
pub fn json_line<T: Serialize>(v: &T) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The fd of the unix socket a request came on (axum's connect info for the unix listeners).
#[derive(Debug, Clone, Copy)]
pub struct UnixFd(std::os::fd::RawFd);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for UnixFd
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        use std::os::fd::AsRawFd;
        UnixFd(s.io().as_raw_fd())
    }
}

/// Waits (200 ms at most) until the client has read the 101 headers off a unix socket.
/// docker-py reads the headers through a buffered reader and then takes the raw socket,
/// dropping whatever the buffer held: output written right behind the headers (a quick
/// exec, attach logs) was lost. `up` owns the connection, so the fd stays this socket's.
async fn after_headers_read(up: hyper::upgrade::Upgraded, fd: Option<UnixFd>) -> Upgraded {
    if let Some(UnixFd(fd)) = fd {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        while unread_by_peer(fd) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    TokioIo::new(up)
}

/// Bytes written on a unix socket that its peer has not read yet (SIOCOUTQ); 0 on error.
fn unread_by_peer(fd: std::os::fd::RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one c_int through the pointer, which points at `n`,
    // alive for the call; a bad fd only makes the call fail.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r < 0 {
        0
    } else {
        n
    }
}

/// Answers 101 and hands the raw connection to `f` once the client has it: the attach and
/// exec streams. `content_type` is raw-stream or multiplexed-stream.
pub fn hijack<F, Fut>(req_parts: &mut Parts, content_type: &'static str, f: F) -> Response
where
    F: FnOnce(Upgraded) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(on) = req_parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::invalid("this endpoint needs a connection upgrade (Upgrade: tcp)")
            .into_response();
    };
    let fd = req_parts
        .extensions
        .get::<axum::extract::ConnectInfo<UnixFd>>()
        .map(|c| c.0);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => f(after_headers_read(up, fd).await).await,
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Whether the client asked for an upgraded connection.
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).is_some()
}

/// Serves the API on every configured listener until `shutdown` resolves.
pub async fn serve(
    d: Arc<Daemon>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow_like::Result<()> {
    use tower::Layer;
    let app = router(d.clone());
    let svc = axum::middleware::from_fn(version_layer).layer(app);
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for h in &d.config.hosts {
        match h {
            crate::config::Host::Unix(path) => {
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| format!("create {}: {e}", p.display()))?;
                }
                // A socket left by a previous run; a live daemon on it answers /_ping.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(format!(
                        "{} is in use by another daemon; give another socket with -H",
                        path.display()
                    ));
                }
                let _ = std::fs::remove_file(path);
                let l = tokio::net::UnixListener::bind(path)
                    .map_err(|e| format!("listen on {}: {e}", path.display()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                    .map_err(|e| format!("chmod {}: {e}", path.display()))?;
                let svc = svc.clone();
                let mut stop = stop_tx.subscribe();
                tasks.push(tokio::spawn(async move {
                    let r = axum::serve(
                        l,
                        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<UnixFd>(
                            svc,
                        ),
                    )
                    .with_graceful_shutdown(async move {
                        let _ = stop.recv().await;
                    })
                    .await;
                    if let Err(e) = r {
                        tracing::error!("serve: {e}");
                    }
                }));
            }
            crate::config::Host::Tcp(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("listen on tcp://{addr}: {e}"))?;
                let svc = svc.clone();
                if let Some(t) = &d.config.tls {
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(t)?));
                    let stop = stop_tx.subscribe();
                    tasks.push(tokio::spawn(serve_tls(l, acceptor, svc, stop)));
                    continue;
                }
                let mut stop = stop_tx.subscribe();
                tasks.push(tokio::spawn(async move {
                    let r = axum::serve(l, axum::ServiceExt::<Request>::into_make_service(svc))
                        .with_graceful_shutdown(async move {
                            let _ = stop.recv().await;
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::error!("serve: {e}");
                    }
                }));
            }
        }
    }
    shutdown.await;
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    for h in &d.config.hosts {
        if let crate::config::Host::Unix(p) = h {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// Listener errors are plain strings; the binary adds context.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}

/// The TLS server config of `--tlscert/--tlskey` (and `--tlsverify --tlscacert`).
pub fn tls_config(t: &crate::config::TlsConfig) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .map_err(|e| format!("read TLS certificate {}: {e}", t.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("read TLS certificate {}: {e}", t.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", t.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key)
        .map_err(|e| format!("read TLS key {}: {e}", t.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("read TLS CA {}: {e}", ca.display()))?
            {
                let c = c.map_err(|e| format!("read TLS CA {}: {e}", ca.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("TLS CA {}: {e}", ca.display()))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("TLS client verifier: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Accepts TLS connections and serves each with hyper (upgrades on, for attach and exec).
async fn serve_tls<S>(
    l: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    svc: S,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (tcp, _) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            },
            _ = stop.recv() => return,
        };
        let acceptor = acceptor.clone();
        let svc = svc.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("TLS handshake: {e}");
                    return;
                }
            };
            let hsvc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut svc = svc.clone();
                    async move {
                        let req = req.map(axum::body::Body::new);
                        tower::Service::call(&mut svc, req).await
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), hsvc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("TLS connection: {e}");
            }
        });
    }
}
