//! `/containers/{id}/exec`, `/exec/{id}/start|resize|json`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, ProcessConfig};
use berth_shim::protocol::{ExecState, Request};

use crate::error::{ApiError, ApiResult};
use crate::server::{hijack, json, json_status, parse_json_or_default, JsonBody, Params, Version};
use crate::state::{Container, Daemon, ExecRecord};

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(mut raw): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    // Go's JSON decoding matches field names case-insensitively; docker-py sends the detach
    // keys of its config file as "detachKeys".
    fold_keys(&mut raw, EXEC_CONFIG_FIELDS);
    let cfg: ExecConfig = serde_json::from_value(raw)
        .map_err(|e| ApiError::invalid(format!("invalid exec config: {e}")))?;
    let c = d.find(&id)?;
    let st = c.status();
    if st == crate::container::Status::Paused {
        return Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    if !st.can_exec() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    if cfg.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::invalid("No exec command specified"));
    }
    if let Some(k) = cfg.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        crate::attach::parse_detach_keys(k)?;
    }
    let eid = crate::util::new_id();
    d.execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .insert(
            eid.clone(),
            ExecRecord {
                id: eid.clone(),
                container_id: c.id.clone(),
                config: cfg.clone(),
                running: false,
                exit_code: None,
                pid: 0,
                started: false,
            },
        );
    let rec = c.snapshot();
    let mut attrs = rec.event_attrs();
    attrs.insert("execID".into(), eid.clone());
    d.events.emit(
        "container",
        &format!("exec_create: {}", cfg.cmd.unwrap_or_default().join(" ")),
        &rec.id,
        attrs,
    );
    // bollard's IdResponse serialises its field as "id" (it only aliases "Id" for reading);
    // Go's decoder does not mind the case, docker-py's `exec_create()['Id']` does.
    Ok(json_status(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": eid }),
    ))
}

const EXEC_CONFIG_FIELDS: &[&str] = &[
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ConsoleSize",
    "DetachKeys",
    "Tty",
    "Env",
    "Cmd",
    "Privileged",
    "User",
    "WorkingDir",
];

/// Renames top-level keys that match one of `fields` but for case to that field, as Go's
/// encoding/json does when dockerd decodes a body; an exact match wins over a folded one.
fn fold_keys(v: &mut serde_json::Value, fields: &[&str]) {
    let Some(m) = v.as_object_mut() else {
        return;
    };
    for f in fields {
        if m.contains_key(*f) {
            continue;
        }
        let other = m.keys().find(|k| k.eq_ignore_ascii_case(f)).cloned();
        if let Some(k) = other {
            if let Some(val) = m.remove(&k) {
                m.insert((*f).to_string(), val);
            }
        }
    }
}

fn get_exec(d: &Daemon, id: &str) -> ApiResult<ExecRecord> {
    d.execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

fn set_exec(d: &Daemon, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = d.execs.lock() {
        if let Some(e) = m.get_mut(id) {
            f(e);
        }
    }
}

async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    v: Version,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("read request body: {e}")))?;
    let sc: ExecStartConfig = parse_json_or_default(&bytes)?;
    let e = get_exec(&d, &id)?;
    if e.started {
        return Err(ApiError::conflict(format!(
            "Error: Exec command {id} is already running"
        )));
    }
    let c = d.find(&e.container_id)?;
    if !c.status().can_exec() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let cfg = &e.config;
    // As dockerd: the process gets a pty when the exec was created with Tty; the start body's
    // Tty only chooses whether the hijacked stream is raw or multiplexed (docker-py starts a
    // tty exec with Tty=false and demultiplexes the pty's output).
    let tty = sc.tty.or(cfg.tty).unwrap_or(false);
    let spec = crate::exec::ExecSpec {
        cmd: cfg.cmd.clone().unwrap_or_default(),
        env: cfg.env.clone().unwrap_or_default(),
        user: cfg.user.clone(),
        workdir: cfg.working_dir.clone(),
        tty: cfg.tty.unwrap_or(false),
        privileged: cfg.privileged.unwrap_or(false),
    };
    let process = crate::exec::process_for(&d, &c, &spec)?;
    let stdin = cfg.attach_stdin.unwrap_or(false);
    let detach = sc.detach.unwrap_or(false);
    let keys = match cfg.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(crate::attach::parse_detach_keys(k)?),
        None if stdin => Some(vec![16, 17]),
        None => None,
    };
    set_exec(&d, &id, |x| {
        x.started = true;
        x.running = true;
    });
    let req = Request::Exec {
        exec_id: id.clone(),
        process: Box::new(process),
        stdin,
        detach,
    };
    let ct = if !tty && v.0.at_least(1, 42) {
        berth_api::stream::MULTIPLEXED_STREAM
    } else {
        berth_api::stream::RAW_STREAM
    };
    if detach {
        let (_stream, reply) = match crate::shim::open_stream(&d.shim_socket(&c.id), &req).await {
            Ok(x) => x,
            Err(err) => return Err(start_failed(&d, &id, err)),
        };
        started(&d, &c, &id, &spec, &reply);
        // The shim keeps the exit code; exec inspect asks for it.
        return Ok(StatusCode::OK.into_response());
    }
    // As dockerd, the process starts once the upgrade's headers are out: output that followed
    // them at once could land in the client's header buffer, which docker-py drops when it
    // takes the raw socket (the first line of a quick exec went missing).
    let dd = d.clone();
    let eid = id.clone();
    let cid = c.id.clone();
    Ok(hijack(&mut parts, ct, move |mut client| async move {
        let opened = crate::shim::open_stream(&dd.shim_socket(&cid), &req).await;
        let stream = match opened {
            Ok((stream, reply)) => {
                started(&dd, &c, &eid, &spec, &reply);
                stream
            }
            Err(err) => {
                // The attached client reads the exit code from exec inspect afterwards: dockerd
                // writes the error on the stream and closes it (answering 400 would make the CLI
                // fail with "unable to upgrade to tcp" and exit 1 rather than 127).
                let err = start_failed(&dd, &eid, err);
                let text = format!("{}\r\n", err.message);
                use tokio::io::AsyncWriteExt;
                let bytes = if tty {
                    text.into_bytes()
                } else {
                    berth_api::stream::frame(berth_api::stream::STDOUT, text.as_bytes())
                };
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        let d2 = dd.clone();
        let e2 = eid.clone();
        crate::attach::pump(client, stream, tty, stdin, keys, move |payload| {
            if let Ok(st) = serde_json::from_slice::<ExecState>(&payload) {
                set_exec(&d2, &e2, |x| {
                    x.running = st.running;
                    x.exit_code = st.exit_code.map(i64::from);
                });
            }
        })
        .await;
        // The exit code may not have arrived (client detached): ask the shim.
        if get_exec(&dd, &eid).is_ok_and(|x| x.exit_code.is_none()) {
            refresh(&dd, &cid, &eid).await;
        }
        let _ = dd.find(&cid).map(|c| {
            let rec = c.snapshot();
            let mut attrs = rec.event_attrs();
            attrs.insert("execID".into(), eid.clone());
            if let Ok(x) = get_exec(&dd, &eid) {
                attrs.insert("exitCode".into(), x.exit_code.unwrap_or(-1).to_string());
            }
            dd.events.emit("container", "exec_die", &rec.id, attrs);
        });
    }))
}

/// Records a start that failed: as docker, a missing program exits 127, anything else 126.
fn start_failed(d: &Daemon, id: &str, err: ApiError) -> ApiError {
    let lower = err.message.to_ascii_lowercase();
    let code = if lower.contains("no such file") || lower.contains("not found") {
        127
    } else {
        126
    };
    set_exec(d, id, |x| {
        x.running = false;
        x.exit_code = Some(code);
    });
    crate::shim::start_error(err.message)
}

/// Records a started exec's pid and announces it.
fn started(
    d: &Daemon,
    c: &Container,
    id: &str,
    spec: &crate::exec::ExecSpec,
    reply: &berth_shim::protocol::Response,
) {
    if let Some(st) = &reply.exec {
        set_exec(d, id, |x| x.pid = st.pid);
    }
    let rec = c.snapshot();
    let mut attrs = rec.event_attrs();
    attrs.insert("execID".into(), id.to_string());
    d.events.emit(
        "container",
        &format!("exec_start: {}", spec.cmd.join(" ")),
        &rec.id,
        attrs,
    );
}

async fn refresh(d: &Daemon, cid: &str, eid: &str) {
    let r = crate::shim::request(
        &d.shim_socket(cid),
        &Request::ExecState {
            exec_id: eid.to_string(),
        },
    )
    .await;
    match r {
        Ok(resp) => {
            if let Some(st) = resp.exec {
                set_exec(d, eid, |x| {
                    x.running = st.running;
                    x.exit_code = st.exit_code.map(i64::from);
                    x.pid = st.pid;
                });
            }
        }
        Err(_) => set_exec(d, eid, |x| x.running = false),
    }
}

async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let e = get_exec(&d, &id)?;
    let c = d.find(&e.container_id)?;
    let (h, w) = crate::routes::containers::resize_params(&q)?;
    crate::lifecycle::resize(&d, &c, Some(id), w, h).await?;
    Ok(StatusCode::OK.into_response())
}

async fn inspect(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let mut e = get_exec(&d, &id)?;
    if e.running {
        refresh(&d, &e.container_id, &id).await;
        e = get_exec(&d, &id)?;
    }
    let cfg = &e.config;
    let cmd = cfg.cmd.clone().unwrap_or_default();
    Ok(json(&ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: cfg.detach_keys.clone(),
        id: Some(e.id.clone()),
        running: Some(e.running),
        exit_code: e.exit_code,
        process_config: Some(ProcessConfig {
            privileged: cfg.privileged,
            user: cfg.user.clone(),
            tty: cfg.tty,
            entrypoint: cmd.first().cloned(),
            arguments: Some(cmd.get(1..).unwrap_or_default().to_vec()),
        }),
        open_stdin: cfg.attach_stdin,
        open_stderr: cfg.attach_stderr,
        open_stdout: cfg.attach_stdout,
        container_id: Some(e.container_id.clone()),
        pid: Some(i64::from(e.pid)),
    }))
}
