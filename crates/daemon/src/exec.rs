//! Processes run in a running container (`docker exec`, health checks), through its shim.

use std::sync::Arc;

use berth_shim::protocol::{ExecState, Request};
use oci_spec::runtime::Process;

use crate::error::{ApiError, ApiResult};
use crate::state::{Container, Daemon};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub privileged: bool,
}

/// The container's process (from its config.json) with the exec's changes.
pub fn process_for(d: &Daemon, c: &Container, e: &ExecSpec) -> ApiResult<Process> {
    if e.cmd.is_empty() {
        return Err(ApiError::invalid("No exec command specified"));
    }
    let bundle = d.bundle_dir(&c.id);
    let bytes = std::fs::read(bundle.join("config.json"))
        .map_err(|err| ApiError::conflict(format!("container {} is not running: {err}", c.id)))?;
    let spec: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::internal(format!("container config: {err}")))?;
    let mut p = spec["process"].clone();
    p["args"] = serde_json::json!(e.cmd);
    p["terminal"] = serde_json::json!(e.tty);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for kv in &e.env {
        let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != k);
        env.push(kv.clone());
    }
    if e.tty && !env.iter().any(|x| x.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = serde_json::json!(env);
    if let Some(w) = e.workdir.as_ref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            return Err(ApiError::invalid(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
        p["cwd"] = serde_json::json!(w);
    }
    if let Some(u) = e.user.as_ref().filter(|u| !u.is_empty()) {
        let root = bundle.join("rootfs");
        let rd = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
        let mut user = crate::spec::resolve_user(u, &rd("etc/passwd"), &rd("etc/group"))?;
        // Without a user the exec keeps the container's process user, GroupAdd included.
        crate::spec::add_groups(
            &mut user,
            c.snapshot()
                .host_config
                .group_add
                .as_deref()
                .unwrap_or_default(),
            &rd("etc/group"),
        )?;
        p["user"] = serde_json::json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids});
    }
    if e.privileged {
        let all = crate::spec::all_caps();
        p["capabilities"] =
            serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    serde_json::from_value(p).map_err(|err| ApiError::internal(format!("exec process: {err}")))
}

/// Runs `spec` to completion and returns its exit code and output (for health checks).
pub async fn run_capture(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    spec: &ExecSpec,
    max_output: usize,
) -> ApiResult<(i64, String)> {
    use tokio::io::AsyncReadExt;
    let process = process_for(d, c, spec)?;
    let id = crate::util::new_id();
    let (mut s, _) = crate::shim::open_stream(
        &d.shim_socket(&c.id),
        &Request::Exec {
            exec_id: id,
            process: Box::new(process),
            stdin: false,
            detach: false,
        },
    )
    .await?;
    let mut out = Vec::new();
    let mut code = -1i64;
    let mut hdr = [0u8; 8];
    while s.read_exact(&mut hdr).await.is_ok() {
        let (stream, len) = berth_shim::protocol::parse_frame_header(&hdr);
        let mut p = vec![0u8; len];
        if s.read_exact(&mut p).await.is_err() {
            break;
        }
        if stream == berth_shim::protocol::STREAM_SYSTEM {
            if let Ok(st) = serde_json::from_slice::<ExecState>(&p) {
                code = st.exit_code.map_or(-1, i64::from);
            }
        } else if out.len() < max_output {
            out.extend_from_slice(&p);
        }
    }
    out.truncate(max_output);
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}
