//! `/containers/...`: create, list, inspect and the lifecycle verbs. The work happens in
//! [`crate::lifecycle`]; this module maps requests and results.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use berth_api::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerPruneResponse,
    ContainerState, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, ContainerUpdateBody,
    ContainerUpdateResponse, Health, HealthStatusEnum, HealthcheckResult, NetworkSettings,
};

use crate::container::{ContainerRecord, Status};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle;
use crate::server::{json, json_status, no_content, JsonBody, Params, Version};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/{alias}", delete(remove_link))
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The `Status` column of `docker ps`.
pub fn status_text(rec: &ContainerRecord) -> String {
    let st = &rec.state;
    let since = |t: &str| human_duration(now_secs() - crate::util::rfc3339_secs(t));
    let health = match st.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    match st.status {
        Status::Running => format!("Up {}{health}", since(&st.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => {
            if st.finished_at == crate::util::ZERO_TIME {
                "Created".into()
            } else {
                format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at))
            }
        }
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn inspect_state(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

/// One row of `GET /containers/json`.
pub fn summary(d: &Daemon, rec: &ContainerRecord, size: bool) -> ContainerSummary {
    let (size_rw, size_root) = if size {
        let (rw, root) = lifecycle::sizes(d, rec);
        (Some(rw), Some(root))
    } else {
        (None, None)
    };
    ContainerSummary {
        id: Some(rec.id.clone()),
        names: Some(vec![format!("/{}", rec.name)]),
        image: Some(rec.image_name.clone()),
        image_id: Some(rec.image.clone()),
        command: Some(rec.command()),
        created: Some(crate::util::rfc3339_secs(&rec.created)),
        ports: Some(
            rec.published
                .iter()
                .map(|p| berth_api::models::PortSummary {
                    ip: Some(
                        p.host_ip
                            .map(|i| i.to_string())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                    ),
                    private_port: p.container_port,
                    public_port: Some(p.host_port),
                    typ: match p.proto.as_str() {
                        "udp" => Some(berth_api::models::PortSummaryTypeEnum::UDP),
                        "sctp" => Some(berth_api::models::PortSummaryTypeEnum::SCTP),
                        _ => Some(berth_api::models::PortSummaryTypeEnum::TCP),
                    },
                })
                .collect(),
        ),
        size_rw,
        size_root_fs: size_root,
        labels: Some(rec.labels()),
        state: Some(summary_state(rec.state.status)),
        status: Some(status_text(rec)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(network_mode(rec)),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(crate::routes::networks::endpoint_settings(d, rec)),
        }),
        mounts: Some(rec.mounts.iter().map(|m| m.to_api()).collect()),
        ..Default::default()
    }
}

fn network_mode(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_deref() {
        None | Some("") => "default".into(),
        Some(m) => m.to_string(),
    }
}

pub fn inspect_of(d: &Daemon, rec: &ContainerRecord, size: bool) -> ContainerInspectResponse {
    let st = &rec.state;
    let dir = d.container_dir(&rec.id);
    let health = st.health.as_ref().map(|h| Health {
        status: Some(match h.status.as_str() {
            "starting" => HealthStatusEnum::STARTING,
            "healthy" => HealthStatusEnum::HEALTHY,
            "unhealthy" => HealthStatusEnum::UNHEALTHY,
            _ => HealthStatusEnum::NONE,
        }),
        failing_streak: Some(h.failing_streak),
        log: Some(
            h.log
                .iter()
                .map(|l| HealthcheckResult {
                    start: Some(l.start.clone()),
                    end: Some(l.end.clone()),
                    exit_code: Some(l.exit_code),
                    output: Some(l.output.clone()),
                })
                .collect(),
        ),
    });
    let (size_rw, size_root) = if size {
        let (rw, root) = lifecycle::sizes(d, rec);
        (Some(rw), Some(root))
    } else {
        (None, None)
    };
    let exec_ids: Vec<String> = d
        .execs
        .lock()
        .map(|m| {
            m.values()
                .filter(|e| e.container_id == rec.id)
                .map(|e| e.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut host_config = rec.host_config.clone();
    // The CLI sends `LogConfig: {"Type": ""}`; an empty type means the default driver, and
    // docker-py only streams logs when it reads "json-file" here.
    let lc = host_config.log_config.get_or_insert_with(Default::default);
    if lc.typ.as_deref().is_none_or(str::is_empty) {
        lc.typ = Some("json-file".into());
    }
    lc.config.get_or_insert_with(HashMap::new);
    // dockerd names its default runtime "runc", the only one berthd has (create refuses others).
    if host_config.runtime.as_deref().is_none_or(str::is_empty) {
        host_config.runtime = Some("runc".into());
    }
    ContainerInspectResponse {
        id: Some(rec.id.clone()),
        created: Some(rec.created.clone()),
        path: Some(rec.path.clone()),
        args: Some(rec.args.clone()),
        state: Some(ContainerState {
            status: Some(inspect_state(st.status)),
            running: Some(st.status.is_running()),
            paused: Some(st.status == Status::Paused),
            restarting: Some(st.status == Status::Restarting),
            oom_killed: Some(st.oom_killed),
            dead: Some(st.status == Status::Dead),
            pid: Some(i64::from(st.pid)),
            exit_code: Some(st.exit_code),
            error: Some(st.error.clone()),
            started_at: Some(st.started_at.clone()),
            finished_at: Some(st.finished_at.clone()),
            health,
        }),
        image: Some(rec.image.clone()),
        resolv_conf_path: Some(dir.join("resolv.conf").to_string_lossy().into_owned()),
        hostname_path: Some(dir.join("hostname").to_string_lossy().into_owned()),
        hosts_path: Some(dir.join("hosts").to_string_lossy().into_owned()),
        log_path: Some(rec.log_path.to_string_lossy().into_owned()),
        name: Some(format!("/{}", rec.name)),
        restart_count: Some(rec.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: (!exec_ids.is_empty()).then_some(exec_ids),
        host_config: Some(host_config),
        size_rw,
        size_root_fs: size_root,
        mounts: Some(rec.mounts.iter().map(|m| m.to_api()).collect()),
        config: Some(rec.config.clone()),
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(String::new()),
            sandbox_key: Some(
                rec.netns
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            ports: Some(crate::network::ports::port_map(
                &rec.host_config,
                rec.config.exposed_ports.as_deref().unwrap_or_default(),
                &rec.published,
            )),
            networks: Some(crate::routes::networks::endpoint_settings(d, rec)),
        }),
        ..Default::default()
    }
}

/// The create body, with the container-wide `MacAddress` that API versions before 1.44 (and
/// docker-py) send in the config rather than in the endpoint settings.
#[derive(serde::Deserialize)]
struct CreateRequest {
    #[serde(flatten)]
    body: ContainerCreateBody,
    #[serde(rename = "MacAddress", default)]
    mac_address: Option<String>,
}

async fn create(
    State(d): State<Arc<Daemon>>,
    q: Params,
    JsonBody(req): JsonBody<CreateRequest>,
) -> ApiResult<Response> {
    let name = q.get("name").filter(|s| !s.is_empty()).map(str::to_string);
    let mut body = req.body;
    if let Some(mac) = req.mac_address.filter(|m| !m.is_empty()) {
        primary_endpoint_mac(&mut body, mac)?;
    }
    let (id, warnings) = lifecycle::create(&d, name, body).await?;
    Ok(json_status(
        StatusCode::CREATED,
        &ContainerCreateResponse { id, warnings },
    ))
}

/// Moves a container-wide MAC address to the endpoint settings of the primary network (where
/// API 1.44+ clients put it), unless those name one already; host and container: modes have
/// no endpoint of their own to give it to (dockerd refuses), none ignores it.
fn primary_endpoint_mac(body: &mut ContainerCreateBody, mac: String) -> ApiResult<()> {
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "default".into());
    if mode == "host" || mode.starts_with("container:") {
        return Err(ApiError::invalid(
            "conflicting options: mac-address and the network mode",
        ));
    }
    if mode == "none" {
        return Ok(());
    }
    let eps = body
        .networking_config
        .get_or_insert_with(Default::default)
        .endpoints_config
        .get_or_insert_with(Default::default);
    let ep = eps.entry(mode).or_default();
    if ep.mac_address.as_deref().is_none_or(str::is_empty) {
        ep.mac_address = Some(mac);
    }
    Ok(())
}

pub const LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

async fn list(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(LIST_FILTERS)?;
    for s in f.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::invalid(format!("invalid filter 'status={s}'")));
        }
    }
    let all = q.bool("all");
    let size = q.bool("size");
    let limit = q.int("limit")?.unwrap_or(-1);
    let mut recs: Vec<ContainerRecord> = d.all_containers().iter().map(|c| c.snapshot()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let mut link_names: HashMap<String, Vec<String>> = HashMap::new();
    for r in &recs {
        for l in r.host_config.links.iter().flatten() {
            // Recorded as `/child:/parent/alias` (default-bridge links only).
            if let Some((child, name)) = l.split_once(':').filter(|(_, n)| n.starts_with('/')) {
                let child = child.trim_start_matches('/').to_string();
                link_names.entry(child).or_default().push(name.to_string());
            }
        }
    }
    let find_created = |key: &str| -> ApiResult<String> { Ok(d.find(key)?.lock().created.clone()) };
    let before = f
        .get("before")
        .first()
        .map(|k| find_created(k))
        .transpose()?;
    let since = f
        .get("since")
        .first()
        .map(|k| find_created(k))
        .transpose()?;
    let mut out = Vec::new();
    for rec in recs {
        let st = rec.state.status;
        let explicit_status = f.contains("status");
        if !all && !explicit_status && limit <= 0 && !st.is_running() {
            continue;
        }
        let img_names = [rec.image_name.clone(), rec.image.clone()];
        let ok = f.any_or_absent("status", |s| s == st.as_str())
            && f.any_or_absent("id", |s| rec.id.starts_with(s))
            && f.any_or_absent("name", |s| rec.name.contains(s.trim_start_matches('/')))
            && f.any_or_absent("exited", |s| {
                st == Status::Exited && s.parse::<i64>().ok() == Some(rec.state.exit_code)
            })
            && f.any_or_absent("ancestor", |s| {
                img_names.iter().any(|n| {
                    n == s
                        || crate::images::familiar(n) == crate::images::familiar(s)
                        || n.strip_prefix("sha256:")
                            .is_some_and(|h| h.starts_with(s.trim_start_matches("sha256:")))
                })
            })
            && f.any_or_absent("volume", |s| {
                rec.mounts.iter().any(|m| m.name == s || m.destination == s)
            })
            && f.any_or_absent("health", |s| {
                let h = rec
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                h == s
            })
            && f.any_or_absent("network", |s| network_mode(&rec) == s)
            && f.any_or_absent("is-task", |s| !berth_api::query_bool(s))
            && before.as_ref().is_none_or(|b| rec.created < *b)
            && since.as_ref().is_none_or(|b| rec.created > *b)
            && f.match_labels(&rec.labels());
        if ok {
            let mut s = summary(&d, &rec, size);
            // A linked child is also listed under its link names, as dockerd does.
            if let (Some(names), Some(extra)) = (s.names.as_mut(), link_names.get(&rec.name)) {
                names.extend(extra.iter().cloned());
            }
            out.push(s);
        }
    }
    if limit > 0 {
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(json(&out))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
    v: Version,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let rec = c.snapshot();
    let out = inspect_of(&d, &rec, q.bool("size"));
    let mut val = serde_json::to_value(&out)
        .map_err(|e| ApiError::internal(format!("encode inspect: {e}")))?;
    endpoint_nulls(&mut val);
    if v.0 >= berth_api::version::ApiVersion(1, 52) {
        return Ok(json(&val));
    }
    // Before API 1.52 NetworkSettings also carried the default bridge's endpoint at its top
    // level (`{{.NetworkSettings.IPAddress}}` in scripts); the models no longer have the fields.
    if let Some(ns) = val
        .get_mut("NetworkSettings")
        .and_then(|n| n.as_object_mut())
    {
        let bridge = ns
            .get("Networks")
            .and_then(|n| n.get("bridge"))
            .cloned()
            .unwrap_or_default();
        let s = |k: &str| {
            bridge
                .get(k)
                .cloned()
                .unwrap_or_else(|| serde_json::json!(""))
        };
        ns.insert("IPAddress".into(), s("IPAddress"));
        ns.insert("Gateway".into(), s("Gateway"));
        ns.insert("MacAddress".into(), s("MacAddress"));
        ns.insert("EndpointID".into(), s("EndpointID"));
        ns.insert(
            "IPPrefixLen".into(),
            bridge
                .get("IPPrefixLen")
                .cloned()
                .unwrap_or_else(|| serde_json::json!(0)),
        );
        ns.insert("Bridge".into(), serde_json::json!(""));
        ns.insert("HairpinMode".into(), serde_json::json!(false));
        ns.insert("LinkLocalIPv6Address".into(), serde_json::json!(""));
        ns.insert("LinkLocalIPv6PrefixLen".into(), serde_json::json!(0));
        ns.insert("SecondaryIPAddresses".into(), serde_json::Value::Null);
        ns.insert("SecondaryIPv6Addresses".into(), serde_json::Value::Null);
        ns.insert("GlobalIPv6Address".into(), s("GlobalIPv6Address"));
        ns.insert(
            "GlobalIPv6PrefixLen".into(),
            bridge
                .get("GlobalIPv6PrefixLen")
                .cloned()
                .unwrap_or_else(|| serde_json::json!(0)),
        );
        ns.insert("IPv6Gateway".into(), s("IPv6Gateway"));
    }
    Ok(json(&val))
}

/// dockerd writes every field of an endpoint's settings, unset lists and maps as null, and
/// clients index them without a default (docker-py's tests read `['Aliases']`,
/// `['IPAMConfig']`); the models skip unset fields.
fn endpoint_nulls(val: &mut serde_json::Value) {
    const NULLABLE: &[&str] = &["IPAMConfig", "Links", "Aliases", "DriverOpts", "DNSNames"];
    let networks = val
        .pointer_mut("/NetworkSettings/Networks")
        .and_then(|n| n.as_object_mut());
    for ep in networks.into_iter().flat_map(|n| n.values_mut()) {
        if let Some(ep) = ep.as_object_mut() {
            for k in NULLABLE {
                ep.entry(*k).or_insert(serde_json::Value::Null);
            }
        }
    }
}

async fn start(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.find(&id)?;
    lifecycle::start(&d, &c).await?;
    Ok(no_content())
}

fn stop_params(q: &Params) -> ApiResult<(Option<String>, Option<i64>)> {
    let sig = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let t = q.int("t")?;
    Ok((sig, t))
}

async fn stop(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let (sig, t) = stop_params(&q)?;
    lifecycle::stop(&d, &c, sig.as_deref(), t).await?;
    Ok(no_content())
}

async fn restart(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let (sig, t) = stop_params(&q)?;
    lifecycle::restart(&d, &c, sig.as_deref(), t).await?;
    Ok(no_content())
}

async fn kill(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let sig = q.get("signal").filter(|s| !s.is_empty()).unwrap_or("KILL");
    lifecycle::kill(&d, &c, sig).await?;
    Ok(no_content())
}

async fn wait(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let cond = q
        .get("condition")
        .filter(|s| !s.is_empty())
        .unwrap_or("not-running");
    lifecycle::wait_response(&d, c, cond)
}

async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
    v: Version,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let (mut parts, _body): (Parts, _) = req.into_parts();
    crate::attach::attach(d, c, &q, v.0, &mut parts).await
}

async fn logs(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
    v: Version,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    crate::logs::logs_response(d, c, &q, v.0)
}

async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let ps_args = q.get("ps_args").unwrap_or("-ef").to_string();
    let r = lifecycle::top(&d, &c, &ps_args).await?;
    Ok(json(&r))
}

async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    crate::stats::stats_response(d, c, q.bool_or("stream", true), q.bool("one-shot"))
}

async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let (h, w) = resize_params(&q)?;
    lifecycle::resize(&d, &c, None, w, h).await?;
    Ok(StatusCode::OK.into_response_default())
}

pub fn resize_params(q: &Params) -> ApiResult<(u16, u16)> {
    let num = |k: &str| -> ApiResult<u16> {
        let v = q.get(k).unwrap_or("");
        v.parse::<u16>()
            .map_err(|_| ApiError::invalid(format!("invalid value for {k}: {v:?}")))
    };
    Ok((num("h")?, num("w")?))
}

trait DefaultResponse {
    fn into_response_default(self) -> Response;
}
impl DefaultResponse for StatusCode {
    fn into_response_default(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn rename(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let name = q.get("name").unwrap_or("");
    lifecycle::rename(&d, &c, name)?;
    Ok(no_content())
}

async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContainerUpdateBody>,
) -> ApiResult<Response> {
    let c = d.find(&id)?;
    let warnings = lifecycle::update(&d, &c, body).await?;
    Ok(json(&ContainerUpdateResponse {
        warnings: Some(warnings),
    }))
}

async fn pause(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.find(&id)?;
    lifecycle::pause(&d, &c, true).await?;
    Ok(no_content())
}

async fn unpause(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.find(&id)?;
    lifecycle::pause(&d, &c, false).await?;
    Ok(no_content())
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    if q.bool("link") {
        return unlink(&d, &id);
    }
    let c = d.find(&id)?;
    lifecycle::remove(&d, &c, q.bool("force"), q.bool("v")).await?;
    Ok(no_content())
}

/// `DELETE /containers/parent/alias?link=1` (`docker rm --link`): the parent forgets the link;
/// both containers stay.
async fn remove_link(
    State(d): State<Arc<Daemon>>,
    Path((id, alias)): Path<(String, String)>,
    q: Params,
) -> ApiResult<Response> {
    if !q.bool("link") {
        return Err(ApiError::not_found(format!(
            "No such container: {id}/{alias}"
        )));
    }
    unlink(&d, &format!("{id}/{alias}"))
}

fn unlink(d: &Daemon, name: &str) -> ApiResult<Response> {
    let Some((parent, alias)) = name.trim_start_matches('/').split_once('/') else {
        return Err(ApiError::conflict(
            "Conflict, cannot remove the default link name of the container",
        ));
    };
    let c = d.find(parent).map_err(|_| {
        ApiError::not_found(format!("Cannot get parent /{parent} for link name /{name}"))
    })?;
    let links = c.snapshot().host_config.links.unwrap_or_default();
    let keep: Vec<String> = links
        .iter()
        .filter(|l| crate::network::links::parse(l).map_or(true, |p| p.alias != alias))
        .cloned()
        .collect();
    if keep.len() == links.len() {
        return Err(ApiError::not_found(format!(
            "No such link: /{parent}/{alias}"
        )));
    }
    c.update(|r| r.host_config.links = (!keep.is_empty()).then_some(keep))?;
    Ok(no_content())
}

async fn prune(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(&["label", "label!", "until"])?;
    let until = f
        .get("until")
        .first()
        .map(|u| {
            crate::events::parse_time_nanos(u)
                .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={u}'")))
        })
        .transpose()?;
    let mut deleted = Vec::new();
    let mut space = 0i64;
    for c in d.all_containers() {
        let rec = c.snapshot();
        // `docker container prune` takes every container that is not running.
        if !matches!(
            rec.state.status,
            Status::Exited | Status::Created | Status::Dead
        ) {
            continue;
        }
        if !f.match_labels(&rec.labels()) {
            continue;
        }
        let labels = rec.labels();
        if f.get("label!").iter().any(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        }) {
            continue;
        }
        if until.is_some_and(|u| crate::util::parse_rfc3339_nanos(&rec.created).unwrap_or(0) >= u) {
            continue;
        }
        let (rw, _) = lifecycle::sizes(&d, &rec);
        if lifecycle::remove(&d, &c, false, false).await.is_ok() {
            space += rw;
            deleted.push(rec.id.clone());
        }
    }
    Ok(json(&ContainerPruneResponse {
        containers_deleted: Some(deleted),
        space_reclaimed: Some(space),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_docker_prints_them() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(300), "5 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
