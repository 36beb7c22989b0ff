//! A container's filesystem over HTTP: `/containers/{id}/archive` (HEAD, GET, PUT: `docker cp`),
//! `/containers/{id}/export`, `/containers/{id}/changes` and `/commit`. The work is in
//! [`crate::fs_ops`]; this module maps requests and results.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{ChangeType, ContainerConfig, FilesystemChange};

use crate::error::{ApiError, ApiResult};
use crate::fs_ops::{self, changes::Kind, commit::CommitOptions, PathStat, PutOptions};
use crate::server::{json, json_status, parse_json, Params};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// The `path` query parameter, required as Docker requires it.
fn path_param(q: &Params) -> ApiResult<String> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::invalid("bad parameter: 'path' cannot be empty")),
    }
}

fn with_stat(mut r: Response, stat: &PathStat) -> Response {
    if let Ok(v) = HeaderValue::from_str(&stat.header_value()) {
        r.headers_mut().insert(STAT_HEADER, v);
    }
    r
}

async fn head_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let c = d.find(&id)?;
    let stat = fs_ops::stat_path(d.clone(), c, id, path).await?;
    Ok(with_stat(StatusCode::OK.into_response(), &stat))
}

async fn get_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let c = d.find(&id)?;
    let (stat, body) = fs_ops::archive_path(d.clone(), c.clone(), id, path).await?;
    d.emit_container(&c.snapshot(), "archive-path");
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(with_stat(r, &stat))
}

async fn put_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
    body: Body,
) -> ApiResult<Response> {
    let found = path_param(&q).and_then(|p| Ok((p, d.find(&id)?)));
    let (path, c) = match found {
        Ok(x) => x,
        Err(e) => {
            // Read the upload before answering: a client still writing its tar would get a
            // broken pipe instead of the error (the docker CLI shows only that).
            fs_ops::drain(body).await;
            return Err(e);
        }
    };
    let opts = PutOptions {
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
        copy_uid_gid: q.bool("copyUIDGID"),
    };
    fs_ops::extract_to_dir(d.clone(), c.clone(), id, path, opts, body).await?;
    d.emit_container(&c.snapshot(), "extract-to-dir");
    Ok(StatusCode::OK.into_response())
}

async fn export(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let body = fs_ops::export(d.clone(), c.clone()).await?;
    d.emit_container(&c.snapshot(), "export");
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

async fn changes(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let list = fs_ops::changes(c).await?;
    let out: Vec<FilesystemChange> = list
        .into_iter()
        .map(|(path, k)| FilesystemChange {
            path,
            kind: match k {
                Kind::Modified => ChangeType::_0,
                Kind::Added => ChangeType::_1,
                Kind::Deleted => ChangeType::_2,
            },
        })
        .collect();
    Ok(json(&out))
}

async fn commit(State(d): State<Arc<Daemon>>, q: Params, body: Bytes) -> ApiResult<Response> {
    let Some(key) = q.get("container").filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid(
            "bad parameter: 'container' cannot be empty",
        ));
    };
    let c = d.find(key)?;
    // An empty body (the CLI without --change JSON) means "the container's config".
    let config: Option<ContainerConfig> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = parse_json(&body)?;
        if v.is_null() {
            None
        } else {
            Some(
                serde_json::from_value(v)
                    .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?,
            )
        }
    };
    let reference =
        fs_ops::commit::parse_reference(q.get("repo").unwrap_or(""), q.get("tag").unwrap_or(""))?;
    let opts = CommitOptions {
        reference: reference.clone(),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        changes: q
            .all("changes")
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .collect(),
        config,
    };
    let image = fs_ops::commit(d.clone(), c.clone(), opts, q.bool_or("pause", true)).await?;
    let id = image.id().to_string();
    let rec = c.snapshot();
    let mut attrs = rec.event_attrs();
    attrs.insert("comment".into(), q.get("comment").unwrap_or("").to_string());
    attrs.insert("imageID".into(), id.clone());
    attrs.insert(
        "imageRef".into(),
        reference.as_ref().map(|r| r.familiar()).unwrap_or_default(),
    );
    d.events.emit("container", "commit", &rec.id, attrs);
    if let Some(r) = &reference {
        d.events.emit(
            "image",
            "tag",
            &id,
            HashMap::from([("name".to_string(), r.familiar())]),
        );
    }
    Ok(json_status(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id }),
    ))
}
