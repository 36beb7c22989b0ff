//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_api::models::{
    Commit, LocalNodeState, PluginsInfo, SwarmInfo, SystemInfo, SystemInfoCgroupDriverEnum,
    SystemInfoCgroupVersionEnum, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};
use berth_api::version::{MAX_API_VERSION, MIN_API_VERSION};

use crate::error::{ApiError, ApiResult};
use crate::events::{self, parse_time_nanos, EVENT_FILTERS};
use crate::server::{json, json_line, json_stream, Params};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(crate::routes::system::df))
        .route("/events", get(events_stream))
}

fn ping_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

async fn ping() -> Response {
    ping_headers(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "OK",
        )
            .into_response(),
    )
}

async fn ping_head() -> Response {
    let mut r = ping_headers(StatusCode::OK.into_response());
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version_info() -> SystemVersion {
    let details = HashMap::from([
        ("ApiVersion".to_string(), MAX_API_VERSION.to_string()),
        ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
        ("GitCommit".to_string(), "berth".to_string()),
        ("GoVersion".to_string(), "rust".to_string()),
        ("Os".to_string(), "linux".to_string()),
        ("Arch".to_string(), arch().to_string()),
        ("KernelVersion".to_string(), kernel_version()),
    ]);
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "berth".into(),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: crate::server::SERVER_VERSION.into(),
            details: Some(details),
        }]),
        version: Some(crate::server::SERVER_VERSION.into()),
        api_version: Some(MAX_API_VERSION.to_string()),
        min_api_version: Some(MIN_API_VERSION.to_string()),
        git_commit: Some("berth".into()),
        go_version: Some("rust".into()),
        os: Some("linux".into()),
        arch: Some(arch().into()),
        kernel_version: Some(kernel_version()),
        experimental: Some(false),
        build_time: Some(String::new()),
    }
}

async fn version() -> Response {
    json(&version_info())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

async fn info(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let all = d.all_containers();
    let mut running = 0;
    let mut paused = 0;
    for c in &all {
        match c.status() {
            crate::container::Status::Running => running += 1,
            crate::container::Status::Paused => paused += 1,
            _ => {}
        }
    }
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let images = d.images.list()?.len();
    let layout = berth_runtime::cgroups::detect_layout().ok();
    let v2_only = matches!(layout, Some(berth_runtime::cgroups::Layout::V2));
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = SystemInfo {
        id: Some(daemon_id(&d)),
        containers: Some(total),
        containers_running: Some(running),
        containers_paused: Some(paused),
        containers_stopped: Some(total - running - paused),
        images: Some(i64::try_from(images).unwrap_or(0)),
        driver: Some("overlay2".into()),
        driver_status: Some(vec![
            vec!["Backing Filesystem".into(), "extfs".into()],
            vec!["Supports d_type".into(), "true".into()],
        ]),
        docker_root_dir: Some(d.config.data_root.to_string_lossy().into_owned()),
        plugins: Some(PluginsInfo {
            volume: Some(vec!["local".into()]),
            network: Some(vec!["host".into(), "null".into()]),
            authorization: None,
            log: Some(vec!["json-file".into()]),
        }),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(false),
        ipv4_forwarding: Some(true),
        debug: Some(false),
        nfd: Some(open_fds()),
        n_goroutines: Some(0),
        system_time: Some(crate::util::now_rfc3339()),
        logging_driver: Some("json-file".into()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if v2_only {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(kernel_version()),
        operating_system: Some(os_name()),
        os_version: Some(String::new()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(
            std::thread::available_parallelism()
                .map(|n| i64::try_from(n.get()).unwrap_or(1))
                .unwrap_or(1),
        ),
        mem_total: Some(mem_total()),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        name: Some(host),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(crate::server::SERVER_VERSION.into()),
        default_runtime: Some("berth".into()),
        swarm: Some(SwarmInfo {
            local_node_state: Some(LocalNodeState::INACTIVE),
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            control_available: Some(false),
            error: Some(String::new()),
            remote_managers: None,
            ..Default::default()
        }),
        live_restore_enabled: Some(true),
        init_binary: Some("berth-init".into()),
        containerd_commit: Some(Commit {
            id: Some(String::new()),
        }),
        runc_commit: Some(Commit {
            id: Some("berth-runtime".into()),
        }),
        init_commit: Some(Commit {
            id: Some("berth-init".into()),
        }),
        security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
        warnings: Some(Vec::new()),
        ..Default::default()
    };
    Ok(json(&info))
}

fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |r| i64::try_from(r.count()).unwrap_or(0))
}

/// A stable id for this daemon's data root, made on first use.
fn daemon_id(d: &Daemon) -> String {
    let p = d.config.data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        return s.trim().to_string();
    }
    let id = crate::util::new_id();
    let _ = crate::util::write_atomic(&p, id.as_bytes());
    id
}

async fn events_stream(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(EVENT_FILTERS)?;
    let parse = |k: &str| -> ApiResult<Option<i64>> {
        match q.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time_nanos(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for {k}: {v:?}"))),
        }
    };
    let since = parse("since")?;
    let until = parse("until")?;
    let (past, mut rx) = d.events.subscribe(since);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        for e in past {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if events::matches(&f, &e) && tx.send(Ok(json_line(&e))).await.is_err() {
                return;
            }
        }
        loop {
            let wait_until = async {
                match until {
                    Some(u) => {
                        let left = u - events::now_nanos();
                        if left > 0 {
                            tokio::time::sleep(std::time::Duration::from_nanos(
                                u64::try_from(left).unwrap_or(0),
                            ))
                            .await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(e) => {
                        if events::matches(&f, &e) && tx.send(Ok(json_line(&e))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                _ = wait_until => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(json_stream(tokio_stream(out)))
}

/// An mpsc receiver as a body stream.
pub fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `GET /system/df`: images, containers (with their writable layer size) and volumes.
pub async fn df(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let dd = d.clone();
    let v = tokio::task::spawn_blocking(move || crate::usage::disk_usage(&dd))
        .await
        .map_err(|e| ApiError::internal(format!("disk usage: {e}")))??;
    Ok(json(&v))
}
