//! berth-registry: an OCI distribution-spec 1.1 / Docker Registry HTTP API v2 server.
//!
//! Layers, from the wire in: [`serve`] accepts TCP (optionally TLS) connections and drives
//! hyper; [`handle`] logs, counts, checks auth and routes; `handlers` turns each endpoint into a
//! call on [`storage::Storage`], which keeps blobs in the engine's content store and everything
//! else in a redb database. Only `error` knows the spec's error codes and their statuses.
//!
//! Routing is done by hand on the raw path (names contain slashes, and the spec's name grammar
//! is checked on the still-encoded path so encoded traversal never decodes into a name).

pub mod auth;
pub mod config;
pub mod error;
pub mod gc;
pub mod handlers;
pub mod metrics;
pub mod names;
pub mod storage;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

pub use config::Config;
pub use storage::{Storage, StorageError};

/// The live registry: its validated config, storage and counters.
#[derive(Debug)]
pub struct Registry {
    pub config: Config,
    pub storage: Storage,
    pub metrics: metrics::Metrics,
    pub auth: Option<auth::Auth>,
}

/// Errors of opening a registry.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
}

impl Registry {
    pub fn open(config: Config) -> Result<Registry, OpenError> {
        let storage = Storage::open(&config.root)?;
        let auth = match &config.auth {
            Some(a) => Some(auth::Auth::load(a.clone(), config.access.clone())?),
            None => None,
        };
        Ok(Registry {
            config,
            storage,
            metrics: metrics::Metrics::default(),
            auth,
        })
    }
}

/// One request: route, serve, count and log it.
pub async fn handle(reg: Arc<Registry>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let bytes_in = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut resp = route(reg.clone(), req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let status = resp.status().as_u16();
    let bytes_out = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    reg.metrics.count(method.as_str(), status);
    if reg.config.log_requests {
        let line = serde_json::json!({
            "time": httpdate_now(),
            "method": method.as_str(),
            "path": path,
            "status": status,
            "bytes_in": bytes_in,
            "bytes": if method == Method::HEAD { 0 } else { bytes_out },
            "ms": (ms * 1000.0).round() / 1000.0,
        });
        eprintln!("{line}");
    }
    resp
}

fn httpdate_now() -> u64 {
    storage::now_secs()
}

async fn route(reg: Arc<Registry>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/metrics" && req.method() == Method::GET {
        let text = reg.metrics.render(reg.storage.blob_count());
        let mut r = Response::new(Body::from(text));
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return r;
    }
    let tls = reg.config.tls.is_some();
    if path == "/token" {
        // Only token auth hands out tokens (basic mode would not accept them anyway).
        let Some(a) = reg.auth.as_ref().filter(|a| a.token_mode()) else {
            return handlers::not_found();
        };
        let scopes: Vec<String> = handlers::query_pairs(req.uri().query())
            .into_iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v)
            .collect();
        return match a.issue_token(req.headers(), &scopes) {
            Ok(v) => {
                let mut r = Response::new(Body::from(v.to_string()));
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                r
            }
            Err(e) => e.into_response(),
        };
    }
    let Some(route) = names::route(&path) else {
        return handlers::not_found();
    };
    let mut req = req;
    if let Some(a) = &reg.auth {
        match a.check(&route, req.method(), req.headers(), tls) {
            Ok(id) => {
                req.extensions_mut().insert(id);
            }
            Err(e) => return e.into_response(),
        }
    }
    match handlers::dispatch(reg, route, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The axum service of the registry.
pub fn router(reg: Arc<Registry>) -> axum::Router {
    axum::Router::new().fallback(move |req: Request| handle(reg.clone(), req))
}

/// Serves on `listener` until `shutdown` resolves; then stops accepting and waits (up to
/// `drain`) for requests in flight (uploads included) to finish.
pub async fn serve(
    reg: Arc<Registry>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) {
    use hyper_util::rt::TokioIo;
    let app = router(reg.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let purge = tokio::spawn(purge_uploads(reg.clone()));
    let (admin_stop, admin_rx) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(serve_admin(reg.clone(), async move {
        let _ = admin_rx.await;
    }));
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{}", serde_json::json!({"msg": "accept", "error": e.to_string()}));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                let req = req.map(Body::new);
                tower::ServiceExt::oneshot(app, req).await
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true);
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(tcp), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    purge.abort();
    let _ = admin_stop.send(());
    let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
    if let Ok(Err(e)) = admin.await {
        eprintln!(
            "{}",
            serde_json::json!({"msg": "admin socket", "error": e.to_string()})
        );
    }
}

/// Removes abandoned uploads every `upload_purge_interval`.
async fn purge_uploads(reg: Arc<Registry>) {
    let mut tick = tokio::time::interval(reg.config.upload_purge_interval);
    loop {
        tick.tick().await;
        let r = reg.clone();
        let max_age = reg.config.upload_max_age;
        let res = tokio::task::spawn_blocking(move || r.storage.purge_uploads(max_age)).await;
        match res {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => eprintln!(
                "{}",
                serde_json::json!({"msg": "removed abandoned uploads", "count": n})
            ),
            Ok(Err(e)) => eprintln!(
                "{}",
                serde_json::json!({"msg": "purge uploads", "error": e.to_string()})
            ),
            Err(_) => {}
        }
    }
}

/// The admin socket under the root, through which `berth-registry gc` asks a running server to
/// collect (the metadata database allows one process at a time).
pub fn admin_socket(root: &std::path::Path) -> std::path::PathBuf {
    root.join("admin.sock")
}

/// Runs the collector in this process, on the blocking pool.
pub async fn run_gc(
    reg: Arc<Registry>,
    grace: std::time::Duration,
    dry_run: bool,
) -> Result<gc::GcReport, StorageError> {
    match tokio::task::spawn_blocking(move || gc::collect(&reg.storage, grace, dry_run)).await {
        Ok(r) => r,
        Err(e) => Err(StorageError::Join(e.to_string())),
    }
}

/// Serves `POST /gc[?dry_run=true][&grace=SECS]` on the admin socket (mode 0600).
pub async fn serve_admin(
    reg: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = admin_socket(&reg.config.root);
    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("{} is in use by another berth-registry", path.display()),
        ));
    }
    let _ = std::fs::remove_file(&path);
    let l = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let app = axum::Router::new().fallback(move |req: Request| {
        let reg = reg.clone();
        async move {
            if req.method() != Method::POST || req.uri().path() != "/gc" {
                return handlers::not_found();
            }
            let pairs = handlers::query_pairs(req.uri().query());
            let dry = pairs.iter().any(|(k, v)| k == "dry_run" && v == "true");
            let grace = pairs
                .iter()
                .find(|(k, _)| k == "grace")
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .map_or(reg.config.gc_grace, std::time::Duration::from_secs);
            match run_gc(reg, grace, dry).await {
                Ok(r) => {
                    let body = serde_json::to_string(&r).unwrap_or_default();
                    let mut resp = Response::new(Body::from(body));
                    resp.headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/json"));
                    resp
                }
                Err(e) => error::ApiError::internal(e).into_response(),
            }
        }
    });
    let r = axum::serve(l, app).with_graceful_shutdown(shutdown).await;
    let _ = std::fs::remove_file(&path);
    r
}
