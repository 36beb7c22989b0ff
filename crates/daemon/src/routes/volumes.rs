//! `/volumes`: create, list, inspect, remove, prune.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{
    Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse, VolumeScopeEnum,
};

use crate::error::{ApiError, ApiResult};
use crate::server::{json, json_status, no_content, JsonBody, Params};
use crate::state::Daemon;
use crate::volumes::VolumeRecord;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

pub fn to_api(d: &Daemon, v: &VolumeRecord) -> Volume {
    Volume {
        name: v.name.clone(),
        driver: "local".into(),
        mountpoint: d.volumes.data_dir(&v.name).to_string_lossy().into_owned(),
        created_at: Some(v.created_at.clone()),
        status: None,
        labels: v.labels.clone(),
        scope: Some(VolumeScopeEnum::LOCAL),
        cluster_volume: None,
        options: v.options.clone(),
        usage_data: None,
    }
}

/// Containers that mount the volume.
pub fn users(d: &Daemon, name: &str) -> Vec<String> {
    d.all_containers()
        .into_iter()
        .filter(|c| {
            c.lock()
                .mounts
                .iter()
                .any(|m| m.typ == "volume" && m.name == name)
        })
        .map(|c| c.id.clone())
        .collect()
}

async fn create(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<VolumeCreateRequest>,
) -> ApiResult<Response> {
    if let Some(drv) = req
        .driver
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "local")
    {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {drv}: plugin \"{drv}\" not found"
        )));
    }
    let (v, created) = d.volumes.create(
        req.name.as_deref(),
        req.labels.unwrap_or_default(),
        req.driver_opts.unwrap_or_default(),
    )?;
    if created {
        d.events.emit(
            "volume",
            "create",
            &v.name,
            HashMap::from([("driver".to_string(), "local".to_string())]),
        );
    }
    Ok(json_status(StatusCode::CREATED, &to_api(&d, &v)))
}

async fn list(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(&["dangling", "driver", "label", "name"])?;
    let mut out = Vec::new();
    for v in d.volumes.list()? {
        let in_use = !users(&d, &v.name).is_empty();
        let ok = f.any_or_absent("dangling", |x| berth_api::query_bool(x) != in_use)
            && f.any_or_absent("driver", |x| x == "local")
            && f.any_or_absent("name", |x| v.name.contains(x))
            && f.match_labels(&v.labels);
        if ok {
            out.push(to_api(&d, &v));
        }
    }
    Ok(json(&VolumeListResponse {
        volumes: Some(out),
        warnings: Some(Vec::new()),
    }))
}

async fn inspect(State(d): State<Arc<Daemon>>, Path(name): Path<String>) -> ApiResult<Response> {
    let v = d.volumes.get(&name)?;
    Ok(json(&to_api(&d, &v)))
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    if d.volumes.get(&name).is_err() && q.bool("force") {
        return Ok(no_content());
    }
    d.volumes.get(&name)?;
    let u = users(&d, &name);
    if !u.is_empty() {
        return Err(ApiError::conflict(format!(
            "remove {name}: volume is in use - [{}]",
            u.join(", ")
        )));
    }
    d.volumes.remove(&name)?;
    d.events.emit(
        "volume",
        "destroy",
        &name,
        HashMap::from([("driver".to_string(), "local".to_string())]),
    );
    Ok(no_content())
}

async fn prune(
    State(d): State<Arc<Daemon>>,
    q: Params,
    v: crate::server::Version,
) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(&["label", "all"])?;
    // From API 1.42 only anonymous volumes go, unless all=true.
    let all = !v.0.at_least(1, 42) || f.get("all").iter().any(|x| berth_api::query_bool(x));
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for vol in d.volumes.list()? {
        if (!all && !vol.anonymous)
            || !f.match_labels(&vol.labels)
            || !users(&d, &vol.name).is_empty()
        {
            continue;
        }
        space += d.volumes.remove(&vol.name)?;
        d.events
            .emit("volume", "destroy", &vol.name, HashMap::new());
        deleted.push(vol.name);
    }
    Ok(json(&VolumePruneResponse {
        volumes_deleted: Some(deleted),
        space_reclaimed: Some(i64::try_from(space).unwrap_or(i64::MAX)),
    }))
}
