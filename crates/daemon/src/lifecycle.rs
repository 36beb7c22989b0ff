//! The container lifecycle: start (bundle, shim, start), the exit monitor, stop/kill/restart,
//! restart policies, remove, and re-adoption of running containers when berthd starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{ContainerTopResponse, ContainerUpdateBody, RestartPolicyNameEnum};
use berth_shim::protocol::{ExitInfo, Request, Status as ShimStatus};
use tokio::sync::watch;

use crate::container::{ContainerRecord, Status};
pub use crate::create::create;
use crate::error::{ApiError, ApiResult};
use crate::server::{json_line, json_stream};
use crate::state::{Container, Daemon, Lifecycle};

fn blocking_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("background task failed: {e}"))
}

/// Reads the container's /etc/passwd and /etc/group through the mounted rootfs without
/// following symlinks out of it.
fn read_in_root(root: &std::path::Path, path: &str) -> String {
    use std::io::Read;
    let Ok(rootfd) = std::fs::File::open(root) else {
        return String::new();
    };
    let how = nix::fcntl::OpenHow::new()
        .flags(nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    match nix::fcntl::openat2(&rootfd, path.trim_start_matches('/'), how) {
        Ok(fd) => {
            let mut s = String::new();
            let _ = std::fs::File::from(fd).take(4 << 20).read_to_string(&mut s);
            s
        }
        Err(_) => String::new(),
    }
}

/// Copies what the image has at a volume's mount point into the empty volume (first use).
fn copy_up(rootfs: &std::path::Path, dest: &str, target: &std::path::Path) -> ApiResult<()> {
    let src = rootfs.join(dest.trim_start_matches('/'));
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    if std::fs::read_dir(target)
        .map(|mut r| r.next().is_some())
        .unwrap_or(true)
    {
        return Ok(());
    }
    // cp -a keeps owners, modes, links and xattrs; the source is the container's own view,
    // which the daemon reads as root.
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(target)
        .status()
        .map_err(|e| ApiError::internal(format!("copy image content into volume: {e}")))?;
    if !st.success() {
        return Err(ApiError::internal(format!(
            "copy image content at {dest} into volume {}: cp failed",
            target.display()
        )));
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _ = std::fs::set_permissions(
        target,
        std::fs::Permissions::from_mode(meta.mode() & 0o7777),
    );
    let _ = nix::unistd::chown(
        target,
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    );
    Ok(())
}

/// Mounts the rootfs, writes config.json; returns the bundle dir. Blocking.
fn prepare_bundle(d: &Daemon, rec: &ContainerRecord) -> ApiResult<std::path::PathBuf> {
    let bundle = d.bundle_dir(&rec.id);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", rootfs.display())))?;
    let spec = rec
        .rootfs
        .as_ref()
        .ok_or_else(|| ApiError::internal(format!("container {} has no rootfs", rec.id)))?;
    if !is_mountpoint(&rootfs) {
        if rec.host_config.auto_remove.unwrap_or(false) {
            // Its upper dir is thrown away at exit: no sync of the host's filesystem when
            // it is unmounted.
            berth_image::snapshot::mount_volatile(spec, &rootfs)?;
        } else {
            berth_image::snapshot::mount(spec, &rootfs)?;
        }
    }
    let r = (|| {
        for m in rec.mounts.iter().filter(|m| m.typ == "volume" && m.copy_up) {
            if let Ok(mut v) = d.volumes.get(&m.name) {
                if !v.seeded {
                    copy_up(&rootfs, &m.destination, &m.source)?;
                    v.seeded = true;
                    d.volumes.save(&v)?;
                }
            }
        }
        let user_spec = rec.config.user.clone().unwrap_or_default();
        let group_file = read_in_root(&rootfs, "/etc/group");
        let mut user = crate::spec::resolve_user(
            &user_spec,
            &read_in_root(&rootfs, "/etc/passwd"),
            &group_file,
        )?;
        crate::spec::add_groups(
            &mut user,
            rec.host_config.group_add.as_deref().unwrap_or_default(),
            &group_file,
        )?;
        let join_netns = match rec.host_config.network_mode.as_deref() {
            Some(m) if m.starts_with("container:") => {
                let other = d.find(&m["container:".len()..])?;
                let (pid, ns) = {
                    let o = other.lock();
                    (o.state.pid, o.netns.clone())
                };
                if !other.status().is_running() || pid <= 0 {
                    return Err(ApiError::conflict(format!(
                        "cannot join network namespace of a non running container: container {} is {}",
                        other.id,
                        other.status().as_str()
                    )));
                }
                // A bridge-mode container's namespace file outlives its process's restarts.
                Some(match ns {
                    Some(p) => p.to_string_lossy().into_owned(),
                    None => format!("/proc/{pid}/ns/net"),
                })
            }
            _ => rec.netns.as_ref().map(|p| p.to_string_lossy().into_owned()),
        };
        let init_path = d.config.data_root.join("bin").join("berth-init");
        let inputs = crate::spec::Inputs {
            rootfs: &rootfs,
            container_dir: &d.container_dir(&rec.id),
            user,
            join_netns,
            init_path: (rec.host_config.init.unwrap_or(false) && init_path.exists())
                .then_some(init_path.as_path()),
            cgroup_parent: d.config.cgroup_parent.as_deref(),
            default_ulimits: &d.config.default_ulimits,
        };
        // Volume subpaths are resolved now, when the directory must exist inside the volume.
        let with_subpaths;
        let rec = if rec.mounts.iter().any(|m| !m.subpath.is_empty()) {
            let mut r = rec.clone();
            for m in &mut r.mounts {
                m.source = m.resolved_source().map_err(ApiError::invalid)?;
            }
            with_subpaths = r;
            &with_subpaths
        } else {
            rec
        };
        let linked = crate::network::links::resolve(d, rec)?;
        let spec = if linked.is_empty() {
            crate::spec::build(rec, &inputs)?
        } else {
            crate::spec::build(&crate::network::links::with_env(rec, &linked), &inputs)?
        };
        let bytes = serde_json::to_vec(&spec)
            .map_err(|e| ApiError::internal(format!("encode config.json: {e}")))?;
        std::fs::write(bundle.join("config.json"), bytes)
            .map_err(|e| ApiError::internal(format!("write config.json: {e}")))?;
        Ok(())
    })();
    if let Err(e) = r {
        teardown_bundle(d, &rec.id);
        return Err(e);
    }
    Ok(bundle)
}

fn is_mountpoint(p: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Unmounts the rootfs and removes the bundle dir. Blocking.
fn teardown_bundle(d: &Daemon, id: &str) {
    let bundle = d.bundle_dir(id);
    let rootfs = bundle.join("rootfs");
    if is_mountpoint(&rootfs) {
        if let Err(e) = berth_image::snapshot::unmount(&rootfs) {
            tracing::warn!("unmount {}: {e}", rootfs.display());
        }
    }
    let _ = std::fs::remove_dir_all(&bundle);
}

/// Starts a created or exited container.
pub async fn start(d: &Arc<Daemon>, c: &Arc<Container>) -> ApiResult<()> {
    let r = {
        let _op = c.op.lock().await;
        start_locked(d, c, false).await
    };
    if let Err(e) = &r {
        // `docker run --rm` waits for the removal after a failed start, as dockerd removes it,
        // whatever the error (an address or port already taken is a 409). Only a start that
        // failed: a refusal (304, or 409 for a paused, restarting or removing container)
        // leaves the container in a state other than created or exited.
        let failed = e.kind != crate::error::Kind::NotModified
            && matches!(c.status(), Status::Created | Status::Exited);
        if failed && c.lock().host_config.auto_remove.unwrap_or(false) {
            let (d, c) = (d.clone(), c.clone());
            tokio::spawn(async move {
                if let Err(e) = remove(&d, &c, true, true).await {
                    tracing::warn!("auto-remove {} after a failed start: {e}", c.id);
                }
            });
        }
    }
    r
}

/// Undoes a start that failed before the process ran: the shim's container (when it was
/// created), the bundle and the network; records the error.
async fn abort_start(d: &Arc<Daemon>, c: &Arc<Container>, shim_created: bool, error: &str) {
    if shim_created {
        let socket = d.shim_socket(&c.id);
        let _ = crate::shim::request(&socket, &Request::Delete { force: true }).await;
    }
    let dd = d.clone();
    let id = c.id.clone();
    let _ = tokio::task::spawn_blocking(move || teardown_bundle(&dd, &id)).await;
    crate::network::wire::teardown(d, c).await;
    let _ = c.update(|r| r.state.error = error.to_string());
}

async fn start_locked(d: &Arc<Daemon>, c: &Arc<Container>, restarting: bool) -> ApiResult<()> {
    let st = c.status();
    match st {
        Status::Running => return Err(ApiError::not_modified()),
        Status::Paused => {
            return Err(ApiError::conflict(
                "cannot start a paused container, try unpause instead",
            ))
        }
        Status::Restarting if !restarting => {
            return Err(ApiError::conflict(format!(
                "cannot start container {}: container is restarting",
                c.id
            )))
        }
        Status::Removing | Status::Dead => {
            return Err(ApiError::conflict(format!(
                "cannot start container {}: container is marked for removal",
                c.id
            )))
        }
        _ => {}
    }
    let t0 = std::time::Instant::now();
    if let Err(e) = crate::network::wire::setup(d, c).await {
        let _ = c.update(|r| r.state.error = e.message.clone());
        return Err(e);
    }
    let t_net = t0.elapsed();
    let rec = c.snapshot();
    let dd = d.clone();
    let r2 = rec.clone();
    let bundle = tokio::task::spawn_blocking(move || {
        if !dd.container_dir(&r2.id).join("hosts").exists() {
            crate::create::write_etc_files(&dd, &r2)?;
        }
        prepare_bundle(&dd, &r2)
    })
    .await
    .map_err(blocking_err)?;
    let bundle = match bundle {
        Ok(b) => b,
        Err(e) => {
            abort_start(d, c, false, &e.message).await;
            return Err(e);
        }
    };
    let socket = d.shim_socket(&rec.id);
    if let Some(p) = socket.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let logging = rec
        .host_config
        .log_config
        .as_ref()
        .and_then(|l| l.typ.clone())
        .is_none_or(|t| t != "none");
    let (max_size, max_file) = match crate::create::log_options(
        rec.host_config
            .log_config
            .as_ref()
            .and_then(|l| l.config.as_ref()),
    ) {
        Ok(o) => o,
        Err(e) => {
            abort_start(d, c, false, &e.message).await;
            return Err(e);
        }
    };
    let args = crate::shim::SpawnArgs {
        id: rec.id.clone(),
        bundle: bundle.clone(),
        runtime_root: d.runtime_root(),
        socket: socket.clone(),
        log_path: logging.then(|| rec.log_path.clone()),
        log_max_size: max_size,
        log_max_file: max_file,
        tty: rec.tty(),
        stdin: rec.config.open_stdin.unwrap_or(false),
        // As dockerd: StdinOnce closes the container's stdin when the attached client's ends,
        // but only without a tty. With one (`run -it` sets StdinOnce), closing the pty's input
        // on detach would leave a re-attached client typing into nothing.
        stdin_once: rec.config.stdin_once.unwrap_or(false) && !rec.tty(),
    };
    let t_bundle = t0.elapsed();
    let spawned = crate::shim::spawn(&args).await;
    let ready = match spawned {
        Ok(r) => r,
        Err(e) => {
            abort_start(d, c, false, &e.message).await;
            let code = if e.message.contains("permission denied") {
                126
            } else {
                127
            };
            let _ = c.update(|r| r.state.exit_code = code);
            return Err(e);
        }
    };
    // Attaches that arrived while the container was created get their streams now, before
    // the process runs, so they see all of its output.
    let pending: Vec<_> = c
        .pending_attach
        .lock()
        .map(|mut v| v.drain(..).collect())
        .unwrap_or_default();
    for p in pending {
        let req = Request::Attach {
            stdin: p.stdin,
            stdout: p.stdout,
            stderr: p.stderr,
        };
        if let Ok((s, _)) = crate::shim::open_stream(&socket, &req).await {
            let _ = p.tx.send(s);
        }
    }
    let t_shim = t0.elapsed();
    if let Err(e) = crate::shim::request(&socket, &Request::Start).await {
        let e = crate::shim::start_error(e.message);
        abort_start(d, c, true, &e.message).await;
        return Err(e);
    }
    let now = crate::util::now_rfc3339();
    let rec = c.update(|r| {
        r.state.status = Status::Running;
        r.state.pid = ready.pid;
        r.state.started_at = now.clone();
        r.state.error.clear();
        r.state.oom_killed = false;
        r.state.exit_code = 0;
        r.has_been_started = true;
        r.shim_pid = ready.shim_pid;
        if r.config
            .healthcheck
            .as_ref()
            .is_some_and(crate::health::enabled)
        {
            r.state.health = Some(crate::container::HealthState {
                status: "starting".into(),
                failing_streak: 0,
                log: Vec::new(),
            });
        }
        r.clone()
    })?;
    c.lifecycle.send_modify(|l| {
        l.starts += 1;
        l.running = true;
        l.error = None;
    });
    tracing::debug!(
        "start {}: network {:?}, bundle {:?}, shim ready {:?}, started {:?}",
        c.short_id(),
        t_net,
        t_bundle,
        t_shim,
        t0.elapsed()
    );
    d.emit_container(&rec, "start");
    spawn_monitor(d.clone(), c.clone());
    crate::health::spawn(d.clone(), c.clone());
    Ok(())
}

/// Waits (through the shim, no polling) for the container's exit, then records it.
pub fn spawn_monitor(d: Arc<Daemon>, c: Arc<Container>) {
    tokio::spawn(async move {
        let socket = d.shim_socket(&c.id);
        let exit = match crate::shim::request(&socket, &Request::Wait).await {
            Ok(r) => r.state.and_then(|s| s.exit),
            Err(e) => {
                tracing::warn!("lost shim of {}: {e}", c.id);
                None
            }
        };
        let exit = exit.unwrap_or_else(|| ExitInfo {
            code: 255,
            exited_at: crate::util::now_rfc3339(),
            oom_killed: false,
        });
        handle_exit(&d, &c, exit).await;
    });
}

/// Records an exit: cleans up the run, emits `die`, then removes (`--rm`) or restarts
/// (restart policy) the container.
async fn handle_exit(d: &Arc<Daemon>, c: &Arc<Container>, exit: ExitInfo) {
    let t0 = std::time::Instant::now();
    let socket = d.shim_socket(&c.id);
    let _ = crate::shim::request(&socket, &Request::Delete { force: true }).await;
    let _ = std::fs::remove_file(&socket);
    let t_del = t0.elapsed();
    let dd = d.clone();
    let id = c.id.clone();
    let _ = tokio::task::spawn_blocking(move || {
        // A shim that died leaves the runtime's state behind.
        let _ = dd.runtime().delete(&id, true);
        teardown_bundle(&dd, &id)
    })
    .await;
    let t_bundle = t0.elapsed();
    crate::network::wire::teardown(d, c).await;
    tracing::debug!(
        "exit {}: shim delete {:?}, bundle {:?}, network {:?}",
        c.short_id(),
        t_del,
        t_bundle,
        t0.elapsed()
    );
    let rec = match c.update(|r| {
        r.state.status = Status::Exited;
        r.state.exit_code = i64::from(exit.code);
        r.state.finished_at = exit.exited_at.clone();
        r.state.oom_killed = exit.oom_killed;
        r.state.pid = 0;
        r.shim_pid = 0;
        if let Some(h) = r.state.health.as_mut() {
            h.status = "unhealthy".into();
        }
        r.state.health = None;
        r.clone()
    }) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("record exit of {}: {e}", c.id);
            c.snapshot()
        }
    };
    if exit.oom_killed {
        d.emit_container(&rec, "oom");
    }
    let mut attrs = rec.event_attrs();
    attrs.insert("exitCode".into(), exit.code.to_string());
    d.events.emit("container", "die", &rec.id, attrs);
    // Read before the exit is announced: `restart` waits for that and then clears it.
    let restarting = c.restarting.load(std::sync::atomic::Ordering::SeqCst);
    c.lifecycle.send_modify(|l| {
        l.exits += 1;
        l.running = false;
        l.exit_code = i64::from(exit.code);
    });
    if rec.host_config.auto_remove.unwrap_or(false) && !restarting {
        let dd = d.clone();
        let cc = c.clone();
        tokio::spawn(async move {
            if let Err(e) = remove(&dd, &cc, true, true).await {
                tracing::warn!("auto-remove {}: {e}", cc.id);
            }
        });
        return;
    }
    maybe_restart(d, c, &rec);
}

fn policy(rec: &ContainerRecord) -> (RestartPolicyNameEnum, i64) {
    let p = rec.host_config.restart_policy.clone().unwrap_or_default();
    (
        p.name.unwrap_or(RestartPolicyNameEnum::NO),
        p.maximum_retry_count.unwrap_or(0),
    )
}

/// Whether the policy asks for a restart after this exit.
pub fn should_restart(rec: &ContainerRecord) -> bool {
    if rec.manually_stopped {
        return false;
    }
    let (name, max) = policy(rec);
    match name {
        RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
        RestartPolicyNameEnum::ON_FAILURE => {
            rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// Docker's backoff: 100 ms doubling per restart, at most a minute; reset after a run of 10 s.
pub fn backoff(restart_count: i64, ran_for: Duration) -> Duration {
    if ran_for >= Duration::from_secs(10) {
        return Duration::from_millis(100);
    }
    let exp = u32::try_from(restart_count.clamp(0, 20)).unwrap_or(20);
    Duration::from_millis(100u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(60))
}

fn maybe_restart(d: &Arc<Daemon>, c: &Arc<Container>, rec: &ContainerRecord) {
    if !should_restart(rec) {
        return;
    }
    let ran = crate::util::parse_rfc3339_nanos(&rec.state.finished_at)
        .zip(crate::util::parse_rfc3339_nanos(&rec.state.started_at))
        .map_or(Duration::ZERO, |(f, s)| {
            Duration::from_nanos(u64::try_from(f - s).unwrap_or(0))
        });
    let delay = backoff(rec.restart_count, ran);
    let _ = c.update(|r| {
        r.state.status = Status::Restarting;
        r.restart_count += 1;
    });
    let d = d.clone();
    let c = c.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        // stop or rm during the backoff cancels the restart.
        if rec.state.status != Status::Restarting || rec.manually_stopped {
            return;
        }
        if let Err(e) = start_locked(&d, &c, true).await {
            tracing::warn!("restart {}: {e}", c.id);
            let _ = c.update(|r| {
                r.state.status = Status::Exited;
                r.state.error = e.message.clone();
            });
        }
    });
}

/// Sends a signal through the shim.
async fn signal(d: &Daemon, c: &Container, sig: i32) -> ApiResult<()> {
    crate::shim::request(
        &d.shim_socket(&c.id),
        &Request::Kill {
            signal: sig,
            all: false,
        },
    )
    .await
    .map(|_| ())
}

pub async fn kill(d: &Arc<Daemon>, c: &Arc<Container>, sig: &str) -> ApiResult<()> {
    let n = crate::spec::parse_signal(sig)?;
    let st = c.status();
    if !st.can_kill() {
        return Err(ApiError::conflict(format!(
            "cannot kill container: {}: container {} is not running",
            c.short_id(),
            c.id
        )));
    }
    if n == libc::SIGKILL || n == libc::SIGTERM || n == libc::SIGINT {
        let _ = c.update(|r| r.manually_stopped = true);
    }
    let mut rx = c.lifecycle.subscribe();
    let before = rx.borrow().exits;
    signal(d, c, n).await?;
    let rec = c.snapshot();
    let mut attrs = rec.event_attrs();
    attrs.insert("signal".into(), n.to_string());
    d.events.emit("container", "kill", &rec.id, attrs);
    // dockerd's Kill (no signal, or SIGKILL) returns only once the exit is recorded, so an
    // inspect or remove right after sees the container stopped; other signals return at once.
    if n == libc::SIGKILL && !wait_exit(&mut rx, before, Some(Duration::from_secs(10))).await {
        return Err(ApiError::internal(format!(
            "tried to kill container {}, but did not receive an exit event",
            c.id
        )));
    }
    Ok(())
}

/// Waits until the lifecycle shows an exit after `exits_before`, up to `timeout`.
async fn wait_exit(
    rx: &mut watch::Receiver<Lifecycle>,
    exits_before: u64,
    timeout: Option<Duration>,
) -> bool {
    let fut = rx.wait_for(|l| l.exits > exits_before || l.removed);
    match timeout {
        Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
        None => fut.await.is_ok(),
    }
}

/// `docker stop`: the stop signal, then SIGKILL after the timeout.
pub async fn stop(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    sig: Option<&str>,
    t: Option<i64>,
) -> ApiResult<()> {
    let _op = c.op.lock().await;
    stop_locked(d, c, sig, t).await
}

async fn stop_locked(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    sig: Option<&str>,
    t: Option<i64>,
) -> ApiResult<()> {
    let rec = c.snapshot();
    if rec.state.status == Status::Restarting {
        c.update(|r| {
            r.manually_stopped = true;
            r.state.status = Status::Exited;
        })?;
        return Ok(());
    }
    if !rec.state.status.is_running() {
        return Err(ApiError::not_modified());
    }
    let stop_sig = sig
        .map(str::to_string)
        .or_else(|| rec.config.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    let n = crate::spec::parse_signal(&stop_sig)?;
    let timeout = t.or(rec.config.stop_timeout).unwrap_or(10);
    c.update(|r| r.manually_stopped = true)?;
    let mut rx = c.lifecycle.subscribe();
    let before = rx.borrow().exits;
    if rec.state.status == Status::Paused {
        let dd = d.clone();
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || dd.runtime().resume(&id)).await;
    }
    let _ = signal(d, c, n).await;
    let mut attrs = rec.event_attrs();
    attrs.insert("signal".into(), n.to_string());
    d.events.emit("container", "kill", &rec.id, attrs);
    let graceful = if timeout < 0 {
        wait_exit(&mut rx, before, None).await
    } else {
        wait_exit(
            &mut rx,
            before,
            Some(Duration::from_secs(u64::try_from(timeout).unwrap_or(0))),
        )
        .await
    };
    if !graceful {
        let _ = signal(d, c, libc::SIGKILL).await;
        if !wait_exit(&mut rx, before, Some(Duration::from_secs(30))).await {
            return Err(ApiError::internal(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )));
        }
    }
    d.emit_container(&c.snapshot(), "stop");
    Ok(())
}

pub async fn restart(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    sig: Option<&str>,
    t: Option<i64>,
) -> ApiResult<()> {
    let _op = c.op.lock().await;
    use std::sync::atomic::Ordering;
    c.restarting.store(true, Ordering::SeqCst);
    let stopped = stop_locked(d, c, sig, t).await;
    c.restarting.store(false, Ordering::SeqCst);
    match stopped {
        Ok(()) => {}
        Err(e) if e.kind == crate::error::Kind::NotModified => {}
        Err(e) => return Err(e),
    }
    c.update(|r| r.manually_stopped = false)?;
    start_locked(d, c, true).await?;
    d.emit_container(&c.snapshot(), "restart");
    Ok(())
}

/// `POST /wait`: headers at once, the body when the condition holds.
pub fn wait_response(
    d: &Arc<Daemon>,
    c: Arc<Container>,
    cond: &str,
) -> ApiResult<axum::response::Response> {
    if !["not-running", "next-exit", "removed"].contains(&cond) {
        return Err(ApiError::invalid(format!("invalid condition: \"{cond}\"")));
    }
    let cond = cond.to_string();
    let mut rx = c.lifecycle.subscribe();
    let now = rx.borrow().clone();
    let _ = d;
    let (tx, out) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let done = match cond.as_str() {
            "not-running" if !now.running && !matches!(c.status(), Status::Restarting) => {
                Some(now.clone())
            }
            "not-running" => rx
                .wait_for(|l| l.exits > now.exits || l.removed)
                .await
                .ok()
                .map(|l| l.clone()),
            "next-exit" => rx
                .wait_for(|l| l.exits > now.exits || l.removed)
                .await
                .ok()
                .map(|l| l.clone()),
            _ => rx.wait_for(|l| l.removed).await.ok().map(|l| l.clone()),
        };
        let code = done.map_or(c.lock().state.exit_code, |l| l.exit_code);
        let body = berth_api::models::ContainerWaitResponse {
            status_code: code,
            error: None,
        };
        let _ = tx.send(Ok(json_line(&body))).await;
    });
    Ok(json_stream(crate::routes::system::tokio_stream(out)))
}

/// `docker rm`.
pub async fn remove(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    force: bool,
    volumes: bool,
) -> ApiResult<()> {
    let _op = c.op.lock().await;
    let t0 = std::time::Instant::now();
    let st = c.status();
    if st == Status::Removing {
        return Err(ApiError::conflict(format!(
            "removal of container {} is already in progress",
            c.id
        )));
    }
    if st.is_running() || st == Status::Restarting {
        if !force {
            let what = if st == Status::Paused {
                "paused"
            } else {
                "running"
            };
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                c.lock().name
            )));
        }
        c.update(|r| r.manually_stopped = true)?;
        if st == Status::Restarting {
            c.update(|r| r.state.status = Status::Exited)?;
        } else {
            let mut rx = c.lifecycle.subscribe();
            let before = rx.borrow().exits;
            if st == Status::Paused {
                let dd = d.clone();
                let id = c.id.clone();
                let _ = tokio::task::spawn_blocking(move || dd.runtime().resume(&id)).await;
            }
            let _ = signal(d, c, libc::SIGKILL).await;
            if !wait_exit(&mut rx, before, Some(Duration::from_secs(30))).await {
                return Err(ApiError::internal(format!(
                    "could not kill running container {}, cannot remove",
                    c.id
                )));
            }
        }
    }
    let rec = c.update(|r| {
        r.state.status = Status::Removing;
        r.clone()
    })?;
    let dd = d.clone();
    let r2 = rec.clone();
    let res = tokio::task::spawn_blocking(move || -> ApiResult<()> {
        teardown_bundle(&dd, &r2.id);
        let _ = dd.runtime().delete(&r2.id, true);
        dd.snapshots.remove(&r2.id)?;
        dd.images.remove_user(&r2.image, &r2.id)?;
        if let Ok(mut e) = dd.execs.lock() {
            e.retain(|_, x| x.container_id != r2.id);
        }
        std::fs::remove_dir_all(dd.container_dir(&r2.id))
            .map_err(|e| ApiError::internal(format!("remove container {}: {e}", r2.id)))?;
        Ok(())
    })
    .await
    .map_err(blocking_err)?;
    if let Err(e) = res {
        let _ = c.update(|r| r.state.status = Status::Dead);
        return Err(e);
    }
    d.forget(&c.id);
    tracing::debug!("remove {}: {:?}", c.short_id(), t0.elapsed());
    for m in rec.mounts.iter().filter(|m| m.typ == "volume") {
        let removable = volumes && m.anonymous;
        if removable
            && crate::routes::volumes::users(d, &m.name).is_empty()
            && d.volumes.remove(&m.name).is_ok()
        {
            d.events.emit("volume", "destroy", &m.name, HashMap::new());
        }
    }
    d.emit_container(&rec, "destroy");
    c.lifecycle.send_modify(|l| l.removed = true);
    Ok(())
}

pub fn rename(d: &Arc<Daemon>, c: &Arc<Container>, new: &str) -> ApiResult<()> {
    let new = new.trim_start_matches('/');
    if new.is_empty() {
        return Err(ApiError::invalid("Neither old nor new names may be empty"));
    }
    crate::container::validate_name(new)?;
    let old = c.lock().name.clone();
    if old == new {
        return Err(ApiError::invalid(
            "Renaming a container with the same name as its current name",
        ));
    }
    if let Some(o) = d.name_owner(new) {
        return Err(ApiError::conflict(format!(
            "Conflict. The container name \"/{new}\" is already in use by container \"{o}\". You have to remove (or rename) that container to be able to reuse that name."
        )));
    }
    let rec = c.update(|r| {
        r.name = new.to_string();
        r.clone()
    })?;
    // The embedded DNS answers the new name from now on.
    for n in d.networks.all() {
        if n.endpoints.contains_key(&rec.id) {
            let _ = d.networks.modify(&n.id, false, |n| {
                if let Some(ep) = n.endpoints.get_mut(&rec.id) {
                    ep.name = rec.name.clone();
                }
                Ok(())
            });
        }
    }
    let mut attrs = rec.event_attrs();
    attrs.insert("oldName".into(), format!("/{old}"));
    d.events.emit("container", "rename", &rec.id, attrs);
    Ok(())
}

pub async fn pause(d: &Arc<Daemon>, c: &Arc<Container>, on: bool) -> ApiResult<()> {
    let _op = c.op.lock().await;
    let st = c.status();
    if on && !st.can_pause() {
        return Err(ApiError::conflict(if st == Status::Paused {
            format!("container {} is already paused", c.id)
        } else {
            format!("container {} is not running", c.id)
        }));
    }
    if !on && !st.can_unpause() {
        return Err(ApiError::conflict(format!(
            "container {} is not paused",
            c.id
        )));
    }
    let dd = d.clone();
    let id = c.id.clone();
    tokio::task::spawn_blocking(move || {
        if on {
            dd.runtime().pause(&id)
        } else {
            dd.runtime().resume(&id)
        }
    })
    .await
    .map_err(blocking_err)??;
    let rec = c.update(|r| {
        r.state.status = if on { Status::Paused } else { Status::Running };
        r.clone()
    })?;
    d.emit_container(&rec, if on { "pause" } else { "unpause" });
    Ok(())
}

pub async fn update(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    body: ContainerUpdateBody,
) -> ApiResult<Vec<String>> {
    let _op = c.op.lock().await;
    let mut hc = c.lock().host_config.clone();
    macro_rules! set {
        ($($f:ident),*) => { $( if body.$f.is_some() { hc.$f = body.$f.clone(); } )* };
    }
    set!(
        cpu_shares,
        memory,
        memory_swap,
        memory_reservation,
        nano_cpus,
        cpu_period,
        cpu_quota,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        blkio_weight,
        restart_policy
    );
    if body.restart_policy.is_some() && hc.auto_remove.unwrap_or(false) {
        let p = body.restart_policy.as_ref().and_then(|p| p.name);
        if !matches!(
            p,
            None | Some(RestartPolicyNameEnum::NO) | Some(RestartPolicyNameEnum::EMPTY)
        ) {
            return Err(ApiError::invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
    }
    crate::create::validate_host_config(&hc)?;
    let running = c.status().is_running();
    if running {
        let rec = {
            let mut r = c.snapshot();
            r.host_config = hc.clone();
            r
        };
        let bundle = d.bundle_dir(&rec.id);
        let user = crate::spec::User {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        };
        let inputs = crate::spec::Inputs {
            rootfs: &bundle.join("rootfs"),
            container_dir: &d.container_dir(&rec.id),
            user,
            join_netns: None,
            init_path: None,
            cgroup_parent: None,
            default_ulimits: &[],
        };
        let spec = crate::spec::build(&rec, &inputs)?;
        let res: oci_spec::runtime::LinuxResources =
            serde_json::from_value(spec["linux"]["resources"].clone())
                .map_err(|e| ApiError::internal(format!("resources: {e}")))?;
        crate::shim::request(
            &d.shim_socket(&c.id),
            &Request::Update {
                resources: Box::new(res),
            },
        )
        .await
        .map_err(|e| e.context(format!("Cannot update container {}", c.id)))?;
    }
    let rec = c.update(|r| {
        r.host_config = hc;
        r.clone()
    })?;
    d.emit_container(&rec, "update");
    Ok(Vec::new())
}

pub async fn resize(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    exec_id: Option<String>,
    w: u16,
    h: u16,
) -> ApiResult<()> {
    if !c.status().is_running() {
        return Err(ApiError::conflict(format!(
            "cannot resize container {}: container is not running",
            c.id
        )));
    }
    crate::shim::request(
        &d.shim_socket(&c.id),
        &Request::Resize {
            width: w,
            height: h,
            exec_id,
        },
    )
    .await
    .map(|_| ())
}

/// `docker top`: host `ps` output restricted to the container's processes.
pub async fn top(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    ps_args: &str,
) -> ApiResult<ContainerTopResponse> {
    if !c.status().is_running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let dd = d.clone();
    let id = c.id.clone();
    let pids = tokio::task::spawn_blocking(move || dd.runtime().ps(&id))
        .await
        .map_err(blocking_err)??;
    let args: Vec<&str> = ps_args.split_whitespace().collect();
    if args.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::invalid("invalid ps arguments"));
    }
    let out = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("run ps: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::invalid(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`.
pub fn parse_ps(out: &str, pids: &[i32]) -> ApiResult<ContainerTopResponse> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(procs),
    })
}

/// (writable layer size, whole rootfs size) in bytes.
pub fn sizes(d: &Daemon, rec: &ContainerRecord) -> (i64, i64) {
    let upper = rec
        .rootfs
        .as_ref()
        .and_then(|m| m.options.iter().find_map(|o| o.strip_prefix("upperdir=")))
        .map(std::path::PathBuf::from);
    let rw = upper.map_or(0, |u| crate::volumes::dir_size(&u));
    let img = d
        .images
        .get(&rec.image)
        .ok()
        .flatten()
        .map_or(0, |i| i.size);
    let rw = i64::try_from(rw).unwrap_or(i64::MAX);
    (rw, rw.saturating_add(i64::try_from(img).unwrap_or(0)))
}

/// Loads every container record at start and re-adopts running containers through their
/// shims; exits that happened while berthd was down are recorded, and restart policies apply.
pub async fn restore(d: &Arc<Daemon>) -> ApiResult<()> {
    let dir = d.config.data_root.join("containers");
    let mut loaded = Vec::new();
    for e in std::fs::read_dir(&dir)
        .map_err(|e| ApiError::internal(format!("read {}: {e}", dir.display())))?
        .flatten()
    {
        let p = e.path();
        match ContainerRecord::load(&p) {
            Ok(rec) => {
                let c = Arc::new(Container::new(p, rec));
                d.insert(c.clone());
                loaded.push(c);
            }
            Err(err) => {
                // A directory without a record is a create that never finished.
                if !p.join(crate::container::RECORD_FILE).exists() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    tracing::error!("skip container {}: {err}", p.display());
                }
            }
        }
    }
    // Image uses are written without fsync on the hot path; the records are the truth.
    let users: Vec<(String, String)> = loaded
        .iter()
        .map(|c| (c.lock().image.clone(), c.id.clone()))
        .collect();
    if let Err(e) = d.images.set_users(&users) {
        tracing::warn!("reconcile image users: {e}");
    }
    // Before any container is started again or torn down: the sweep must not race a start.
    crate::network::wire::restore(d).await;
    for c in loaded {
        let st = c.status();
        match st {
            Status::Running | Status::Paused => {
                let socket = d.shim_socket(&c.id);
                match crate::shim::request(&socket, &Request::State).await {
                    Ok(r) => match r.state {
                        Some(s) if s.status != ShimStatus::Stopped => {
                            let status = if s.status == ShimStatus::Paused {
                                Status::Paused
                            } else {
                                Status::Running
                            };
                            let _ = c.update(|r| {
                                r.state.status = status;
                                r.state.pid = s.pid;
                            });
                            c.lifecycle.send_modify(|l| l.running = true);
                            spawn_monitor(d.clone(), c.clone());
                            crate::health::spawn(d.clone(), c.clone());
                        }
                        Some(s) => {
                            let exit = s.exit.unwrap_or(ExitInfo {
                                code: 255,
                                exited_at: crate::util::now_rfc3339(),
                                oom_killed: false,
                            });
                            c.lifecycle.send_modify(|l| l.running = true);
                            handle_exit(d, &c, exit).await;
                        }
                        None => {}
                    },
                    Err(_) => {
                        c.lifecycle.send_modify(|l| l.running = true);
                        handle_exit(
                            d,
                            &c,
                            ExitInfo {
                                code: 255,
                                exited_at: crate::util::now_rfc3339(),
                                oom_killed: false,
                            },
                        )
                        .await;
                    }
                }
            }
            Status::Restarting => {
                let rec = c.snapshot();
                let _ = c.update(|r| r.state.status = Status::Exited);
                maybe_restart(d, &c, &rec);
            }
            Status::Removing => {
                let _ = c.update(|r| r.state.status = Status::Dead);
            }
            _ => {
                let rec = c.snapshot();
                let (name, _) = policy(&rec);
                let always = matches!(
                    name,
                    RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED
                );
                if always && rec.has_been_started && !rec.manually_stopped && st == Status::Exited {
                    let dd = d.clone();
                    tokio::spawn(async move {
                        let _ = start(&dd, &c).await;
                    });
                }
            }
        }
    }
    Ok(())
}

/// The stats stream and top need the runtime's view; this gives the container's cgroup stats.
pub async fn cgroup_stats(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
) -> ApiResult<berth_runtime::cgroups::Stats> {
    let dd = d.clone();
    let id = c.id.clone();
    tokio::task::spawn_blocking(move || dd.runtime().stats(&id))
        .await
        .map_err(blocking_err)?
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets() {
        assert_eq!(backoff(0, Duration::ZERO), Duration::from_millis(100));
        assert_eq!(backoff(3, Duration::ZERO), Duration::from_millis(800));
        assert_eq!(backoff(30, Duration::ZERO), Duration::from_secs(60));
        assert_eq!(
            backoff(5, Duration::from_secs(11)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn ps_parsing() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 00:00 ? 00:00:00 sleep 100\nroot 11 1 0 00:00 ? 00:00:00 other\n";
        let r = parse_ps(out, &[10]).unwrap();
        assert_eq!(
            r.processes.unwrap(),
            vec![vec![
                "root",
                "10",
                "1",
                "0",
                "00:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
        assert!(parse_ps("A B\n", &[]).is_err());
    }
}
