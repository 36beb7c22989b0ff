//! `POST /build` and `POST /build/prune`. The work happens in [`crate::build`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use crate::build::{self, BuildParams};
use crate::error::{ApiError, ApiResult};
use crate::images;
use crate::server::{json, Params};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/build", post(build_image))
        .route("/build/prune", post(prune))
}

fn params(d: &Daemon, q: &Params, headers: &HeaderMap) -> ApiResult<BuildParams> {
    let mut tags = Vec::new();
    for t in q.all("t").into_iter().filter(|t| !t.is_empty()) {
        let r = images::pull_reference(t, "")
            .map_err(|e| ApiError::invalid(format!("invalid tag {t:?}: {e}")))?;
        if r.digest().is_some() {
            return Err(ApiError::invalid(format!(
                "invalid tag {t:?}: a build result cannot be tagged with a digest"
            )));
        }
        tags.push(r);
    }
    let labels = build::parse_map("labels", q.get("labels"))?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let (network, network_id) = build::parse_network(d, q.get("networkmode"))?;
    Ok(BuildParams {
        dockerfile: q.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        tags,
        build_args: build::parse_map("buildargs", q.get("buildargs"))?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache"),
        labels,
        quiet: q.bool("q"),
        pull: q.bool("pull"),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        network,
        network_id,
        auths: build::parse_registry_config(
            headers
                .get("X-Registry-Config")
                .and_then(|v| v.to_str().ok()),
        )?,
    })
}

/// Streams the build's JSON lines; a client that goes away cancels the build.
async fn build_image(
    State(d): State<Arc<Daemon>>,
    q: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let p = match params(&d, &q, &headers) {
        Ok(p) => p,
        Err(e) => {
            // The docker CLI sends the whole context before it reads the answer: a refusal
            // with the body unread closes the connection under it, and it reports a broken
            // pipe instead of the error (dockerd reads the context first too).
            drain(body).await;
            return Err(e);
        }
    };
    let reader = crate::routes::images::body_reader(body);
    let (lines, resp) = crate::routes::images::line_stream();
    let cancel = Arc::new(AtomicBool::new(false));
    let watch = {
        let tx = lines.0.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tx.closed().await;
            cancel.store(true, Ordering::Relaxed);
        })
    };
    let rt = tokio::runtime::Handle::current();
    tokio::spawn(async move {
        // Image writers hold the GC lock shared: a concurrent prune must not take the blobs
        // and snapshots the build adds before its image record names them.
        let _writer = d.image_gc.read().await;
        let d2 = d.clone();
        let task = tokio::task::spawn_blocking(move || {
            build::run(d2, rt, p, reader, lines, &cancel);
        });
        let _ = task.await;
        watch.abort();
    });
    Ok(resp)
}

/// Reads a request body to its end, discarding it.
async fn drain(body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    while let Some(Ok(_)) = body.frame().await {}
}

async fn prune(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let d2 = d.clone();
    let v = tokio::task::spawn_blocking(move || build::prune(&d2))
        .await
        .map_err(|e| ApiError::internal(format!("build prune task: {e}")))??;
    Ok(json(&v))
}
