//! `/images/...` and `/auth`. The work happens in [`crate::images`]; this module maps
//! requests and results.
//!
//! Image names carry `/` and `:` (`/images/localhost:5000/x/y:1/push`), so every per-image
//! route goes through one wildcard and the known suffixes (`/json`, `/history`, `/get`,
//! `/tag`, `/push`) are split off here.

use std::io::{self, Read, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::images::{self, ImportRequest, Lines};
use crate::server::{json, json_line, json_stream, JsonBody, Params, Version};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    // An image may be called `json`, `load`…: DELETE on those paths removes it, since the
    // fixed routes would otherwise answer 405 before the wildcard is tried.
    let rm = |name: &'static str| {
        move |State(d): State<Arc<Daemon>>, q: Params| remove_image(d, name.to_string(), q)
    };
    Router::new()
        .route("/images/json", get(list).delete(rm("json")))
        .route("/images/create", post(create).delete(rm("create")))
        .route("/images/load", post(load).delete(rm("load")))
        .route("/images/prune", post(prune).delete(rm("prune")))
        .route("/images/get", get(save_many).delete(rm("get")))
        .route(
            "/images/{*rest}",
            get(per_image).post(per_image).delete(per_image),
        )
        .route("/auth", post(auth))
}

/// Runs store work off the async workers.
async fn blocking<T, F>(d: &Arc<Daemon>, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Daemon) -> ApiResult<T> + Send + 'static,
{
    let d = d.clone();
    tokio::task::spawn_blocking(move || f(&d))
        .await
        .map_err(|e| ApiError::internal(format!("image task: {e}")))?
}

/// A streamed JSON-lines reply and the sender that feeds it; headers go out at once.
pub(crate) fn line_stream() -> (Lines, Response) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let s = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, io::Error>))
    });
    (Lines(tx), json_stream(s))
}

/// A complete JSON-lines reply.
fn lines_response(lines: &[serde_json::Value]) -> Response {
    let mut body = Vec::new();
    for l in lines {
        body.extend_from_slice(&json_line(l));
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The request body as a blocking reader, for tar streams handled in `spawn_blocking`.
pub(crate) struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

pub(crate) fn body_reader(mut body: Body) -> BodyReader {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if tx.send(Ok(data)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx
                        .send(Err(io::Error::other(format!("read request body: {e}"))))
                        .await;
                    break;
                }
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// Reads what is left of a refused upload, so the client finishes sending and reads the error
/// (the docker CLI reports "broken pipe" instead when the server stops reading first).
fn drain(r: &mut BodyReader) {
    let _ = io::copy(r, &mut io::sink());
}

async fn drain_body(mut body: Body) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// A blocking writer into a streamed response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(b)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn registry_auth(h: &HeaderMap) -> ApiResult<images::AuthConfig> {
    images::decode_registry_auth(h.get("X-Registry-Auth").and_then(|v| v.to_str().ok()))
}

async fn list(State(d): State<Arc<Daemon>>, q: Params, v: Version) -> ApiResult<Response> {
    let f = q.filters()?;
    let out = blocking(&d, move |d| images::list(d, &f, v.0)).await?;
    Ok(json(&out))
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc=-`).
async fn create(
    State(d): State<Arc<Daemon>>,
    q: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return Err(ApiError::invalid(format!(
                "importing from a URL ({src}) is not supported: download the file and send it as the request body with fromSrc=-"
            )));
        }
        let req = ImportRequest {
            repo: q.get("repo").unwrap_or("").to_string(),
            tag: q.get("tag").unwrap_or("").to_string(),
            changes: q
                .all("changes")
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            message: q.get("message").map(str::to_string),
            platform: q.get("platform").map(str::to_string),
        };
        // Refuse bad parameters before storing anything; the upload is still read to its end
        // so the client gets the error instead of a broken pipe.
        if let Err(e) = images::check_import(&req) {
            drain_body(body).await;
            return Err(e);
        }
        let reader = body_reader(body);
        let _writer = d.image_gc.read().await;
        let id = blocking(&d, move |d| {
            let mut reader = reader;
            let r = images::import(d, &mut reader, &req);
            if r.is_err() {
                drain(&mut reader);
            }
            r
        })
        .await?;
        return Ok(lines_response(&[json!({ "status": id })]));
    }
    let from = q.get("fromImage").unwrap_or("");
    if from.is_empty() {
        return Err(ApiError::invalid(
            "give fromImage (to pull) or fromSrc=- (to import)",
        ));
    }
    let reference = images::pull_reference(from, q.get("tag").unwrap_or(""))?;
    let auth = registry_auth(&headers)?;
    let prepared = images::prepare_pull(&d, reference, q.get("platform"), &auth).await?;
    let (lines, resp) = line_stream();
    tokio::spawn(prepared.run(d.clone(), lines));
    Ok(resp)
}

/// Everything under `/images/<name>`: inspect, history, save, tag, push, remove.
async fn per_image(
    State(d): State<Arc<Daemon>>,
    method: Method,
    Path(rest): Path<String>,
    q: Params,
    v: Version,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rest = rest.trim_start_matches('/').to_string();
    let split = |suffix: &str| rest.strip_suffix(suffix).map(str::to_string);
    let unknown = || ApiError::not_found(format!("page not found: {method} /images/{rest}"));
    match method {
        Method::GET => {
            if let Some(name) = split("/json") {
                let body = blocking(&d, move |d| {
                    let rec = images::resolve(d, &name)?;
                    images::inspect(d, &rec, v.0)
                })
                .await?;
                Ok(json(&body))
            } else if let Some(name) = split("/history") {
                let body = blocking(&d, move |d| {
                    let rec = images::resolve(d, &name)?;
                    images::history(d, &rec)
                })
                .await?;
                Ok(json(&body))
            } else if let Some(name) = split("/get") {
                save(d, vec![name]).await
            } else {
                Err(unknown())
            }
        }
        Method::POST => {
            if let Some(name) = split("/tag") {
                let repo = q.get("repo").unwrap_or("").to_string();
                let tag = q.get("tag").unwrap_or("").to_string();
                blocking(&d, move |d| images::tag(d, &name, &repo, &tag)).await?;
                Ok(StatusCode::CREATED.into_response())
            } else if let Some(name) = split("/push") {
                let tag = q.get("tag").unwrap_or("").to_string();
                let auth = registry_auth(&headers)?;
                let prepared =
                    blocking(&d, move |d| images::prepare_push(d, &name, &tag, &auth)).await?;
                let (lines, resp) = line_stream();
                tokio::spawn(prepared.run(d.clone(), lines));
                Ok(resp)
            } else {
                Err(unknown())
            }
        }
        Method::DELETE => remove_image(d, rest, q).await,
        _ => Err(unknown()),
    }
}

/// `DELETE /images/{name}?force=`.
async fn remove_image(d: Arc<Daemon>, name: String, q: Params) -> ApiResult<Response> {
    let force = q.bool("force");
    let _gc = d.image_gc.write().await;
    let out = blocking(&d, move |d| images::remove(d, &name, force)).await?;
    Ok(json(&out))
}

async fn save_many(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let names = q.all("names").into_iter().map(str::to_string).collect();
    save(d, names).await
}

/// `docker save`: names are resolved first (404 before any output), then the tar streams.
async fn save(d: Arc<Daemon>, names: Vec<String>) -> ApiResult<Response> {
    let plan = blocking(&d, move |d| images::save_plan(d, &names)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        // Shared: a prune must not take blobs this archive is about to read.
        let _reader = d.image_gc.blocking_read();
        let w = io::BufWriter::with_capacity(1 << 20, ChannelWriter(tx.clone()));
        if let Err(e) = images::save(&d, &plan, w) {
            // Headers are out: cut the body short so the client sees a broken transfer.
            tracing::warn!("docker save: {e}");
            let _ = tx.blocking_send(Err(io::Error::other(e.message)));
        }
    });
    let mut r = Response::new(Body::from_stream(crate::routes::system::tokio_stream(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

async fn load(State(d): State<Arc<Daemon>>, body: Body) -> ApiResult<Response> {
    let reader = body_reader(body);
    let _writer = d.image_gc.read().await;
    let lines = blocking(&d, move |d| {
        let mut reader = reader;
        let r = images::load(d, &mut reader);
        if r.is_err() {
            drain(&mut reader);
        }
        r
    })
    .await?;
    let out: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| json!({ "stream": format!("{l}\n") }))
        .collect();
    Ok(lines_response(&out))
}

async fn prune(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    let _gc = d.image_gc.write().await;
    let out = blocking(&d, move |d| images::prune(d, &f)).await?;
    Ok(json(&out))
}

/// `POST /auth` (`docker login`).
async fn auth(
    State(d): State<Arc<Daemon>>,
    JsonBody(cfg): JsonBody<images::AuthConfig>,
) -> ApiResult<Response> {
    images::login(&d, &cfg).await?;
    Ok(json(
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
