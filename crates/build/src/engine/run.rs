//! RUN: the OCI spec of a build step's container (Docker's defaults: capabilities, mounts,
//! masked paths, seccomp) and running it through the runtime.
//!
//! The container is run by the `berth-runtime run` binary rather than by calling
//! `berth_runtime::container::Runtime::create` in-process: create forks with a raw clone and runs
//! Rust code in the child, which is only sound in a single-threaded caller (the runtime says so
//! at `clone_fork`), and berthd is a multi-threaded tokio process. The binary is the same library
//! in a single-threaded process; cleanup after a cancel uses the library's `delete`, which does
//! not fork.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use super::fsutil::User;
use super::BuildError;

/// The network a build or a RUN step asks for (POST /build `networkmode`, `RUN --network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The daemon's default bridge, as `docker build` gives RUN (only loopback when the daemon
    /// has no default bridge).
    #[default]
    Default,
    /// The host's network namespace.
    Host,
    /// A private network namespace with only loopback.
    None,
}

/// The network namespace a RUN container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// A private network namespace with only loopback.
    None,
    /// The namespace bind-mounted at this path (the daemon wired it to the default bridge).
    Join(PathBuf),
}

/// What one RUN container needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub hostname: String,
    pub network: Network,
    /// Extra OCI mounts (RUN --mount, resolv.conf and hosts).
    pub mounts: Vec<Value>,
    pub cgroups_path: String,
}

/// The container's config.json.
pub fn oci_spec(s: &RunSpec) -> Value {
    let caps: Vec<&str> = berth_runtime::seccomp::DOCKER_DEFAULT_CAPS.to_vec();
    let mut env = s.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    mounts.extend(s.mounts.iter().cloned());
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &s.network {
        Network::Host => {}
        Network::None => namespaces.push(json!({"type": "network"})),
        Network::Join(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    for (maj, min) in [
        (1, 3),
        (1, 8),
        (1, 7),
        (5, 0),
        (1, 5),
        (1, 9),
        (5, 1),
        (5, 2),
    ] {
        devices
            .push(json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rwm"}));
    }
    devices.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    let seccomp =
        serde_json::to_value(berth_runtime::seccomp::default_profile(&caps)).unwrap_or(Value::Null);
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": {"devices": devices},
        "cgroupsPath": s.cgroups_path,
        "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
            "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    if !seccomp.is_null() {
        linux["seccomp"] = seccomp;
    }
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": s.user.uid, "gid": s.user.gid, "additionalGids": s.user.additional_gids},
            "args": s.args,
            "env": env,
            "cwd": if s.cwd.is_empty() { "/" } else { s.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": s.rootfs, "readonly": false},
        "hostname": s.hostname,
        "mounts": mounts,
        "linux": linux,
    })
}

/// The `berth-runtime` binary: `BERTH_RUNTIME`, else next to the running executable, else PATH.
pub fn runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-runtime")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-runtime"))
}

/// Deletes the runtime's state of `id` (killing what is left) when dropped.
struct Container<'a> {
    root: &'a Path,
    id: &'a str,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let rt = berth_runtime::container::Runtime::new(self.root);
        let _ = rt.delete(self.id, true);
    }
}

/// Runs the bundle in `bundle` as container `id`; its output (stdout and stderr, merged)
/// goes to `out` as it comes. Returns the exit code; a cancel kills the container.
pub fn run(
    runtime: &Path,
    runtime_root: &Path,
    bundle: &Path,
    id: &str,
    cancel: &AtomicBool,
    out: &(dyn Fn(&[u8]) + Sync),
) -> Result<i32, BuildError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| BuildError::io("create pipe", bundle, e.into()))?;
    let r = std::fs::File::from(r);
    let w2 = w
        .try_clone()
        .map_err(|e| BuildError::io("dup pipe", bundle, e))?;
    let mut child = Command::new(runtime)
        .arg("--root")
        .arg(runtime_root)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(w)
        .stderr(w2)
        .spawn()
        .map_err(|e| BuildError::io("run", runtime, e))?;
    let _guard = Container {
        root: runtime_root,
        id,
    };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut r = r;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => out(&chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // Every writer is gone: the runtime exited (a daemonised straggler would keep
                // the pipe open and is killed with the container below).
                break child
                    .wait()
                    .map_err(|e| BuildError::io("wait", runtime, e))?;
            }
        }
        if cancel.load(Ordering::Relaxed) {
            let rt = berth_runtime::container::Runtime::new(runtime_root);
            let _ = rt.kill(id, nix::sys::signal::Signal::SIGKILL, true);
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            return Err(BuildError::Cancelled);
        }
        if let Some(st) = child
            .try_wait()
            .map_err(|e| BuildError::io("wait", runtime, e))?
        {
            // Drain what is already in the pipe, then stop: processes the step left in the
            // background die with the container (the guard deletes it).
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(20)) {
                out(&chunk);
            }
            break st;
        }
    };
    drop(_guard);
    let _ = reader.join();
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_dockers_defaults_and_the_network_asked() {
        let mut s = RunSpec {
            rootfs: "/r".into(),
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            cwd: String::new(),
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
            },
            hostname: "h".into(),
            network: Network::Host,
            mounts: vec![],
            cgroups_path: "berth-build/x".into(),
        };
        let v = oci_spec(&s);
        assert_eq!(v["process"]["cwd"], "/");
        assert_eq!(
            v["process"]["env"][0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
        assert_eq!(v["process"]["user"]["uid"], 1000);
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_CHOWN"));
        assert!(!caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        s.network = Network::None;
        let v = oci_spec(&s);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        let net: Vec<_> = ns.iter().filter(|n| n["type"] == "network").collect();
        assert_eq!(net.len(), 1);
        assert!(net[0].get("path").is_none());
        s.network = Network::Join("/run/berth/netns/abc".into());
        let v = oci_spec(&s);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        let net: Vec<_> = ns.iter().filter(|n| n["type"] == "network").collect();
        assert_eq!(net.len(), 1);
        assert_eq!(net[0]["path"], "/run/berth/netns/abc");
    }
}
