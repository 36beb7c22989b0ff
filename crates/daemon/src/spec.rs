//! The OCI runtime spec of a container, built from its record the way Docker builds it:
//! Docker's default capabilities, mounts, masked paths, device rules and seccomp profile, then
//! the create options on top. Pure: [`build`] computes JSON; the caller writes it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::container::ContainerRecord;
use crate::error::{ApiError, ApiResult};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = berth_runtime::seccomp::DOCKER_DEFAULT_CAPS;

/// Every capability berthd can hand on (for `--privileged` and `--cap-add ALL`).
pub fn all_caps() -> Vec<String> {
    // The caps berthd itself may pass on: its bounding set. Asking for more (a capability the
    // kernel does not know, or one taken from berthd when it runs inside a container) makes
    // capset fail and `--privileged` could never start; podman does the same.
    caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_else(|_| caps::all())
        .into_iter()
        .map(|c| c.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name CAP_NET_ADMIN.
pub fn normalize_cap(c: &str) -> ApiResult<String> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if full.parse::<caps::Capability>().is_err() {
        return Err(ApiError::invalid(format!("unknown capability: \"{full}\"")));
    }
    Ok(full)
}

/// The capability set after `--cap-add`/`--cap-drop` (Docker's order: drop ALL first, then
/// add, then drop the named).
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> ApiResult<Vec<String>> {
    if privileged {
        return Ok(all_caps());
    }
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<ApiResult<_>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<ApiResult<_>>()?;
    let mut set: BTreeSet<String> = if drop.iter().any(|c| c == "ALL") {
        BTreeSet::new()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if add.iter().any(|c| c == "ALL") {
        set.extend(all_caps());
    } else {
        set.extend(add.iter().cloned());
    }
    for d in drop.iter().filter(|c| *c != "ALL") {
        if !add.contains(d) {
            set.remove(d);
        }
    }
    Ok(set.into_iter().collect())
}

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A resolved user: uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `user[:group]` (names or ids) against the container's /etc/passwd and /etc/group
/// contents, as Docker does: a numeric uid needs no passwd entry; a name must exist.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> ApiResult<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if let Ok(n) = u.parse::<u32>() {
        match pw.iter().find(|f| f[2] == u) {
            Some(f) => (n, f[3].parse().unwrap_or(0), Some(f[0].to_string())),
            None => (n, 0, None),
        }
    } else {
        let f = pw.iter().find(|f| f[0] == u).ok_or_else(|| {
            ApiError::invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        let uid = f[2].parse::<u32>().map_err(|_| {
            ApiError::invalid(format!(
                "invalid uid {:?} for user {u} in /etc/passwd",
                f[2]
            ))
        })?;
        (uid, f[3].parse().unwrap_or(0), Some(u.to_string()))
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional: Vec<u32> = match &name {
        Some(n) => gr
            .iter()
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == n))
            .filter_map(|f| f[2].parse().ok())
            .collect(),
        None => Vec::new(),
    };
    additional.retain(|g| *g != gid);
    additional.sort_unstable();
    additional.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// Adds HostConfig.GroupAdd to the user's supplementary groups, as dockerd does for the
/// container's process and its execs: numbers as they are, names from the container's /etc/group.
pub fn add_groups(user: &mut User, groups: &[String], group: &str) -> ApiResult<()> {
    for g in groups.iter().filter(|g| !g.is_empty()) {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(())
}

/// Parses a signal name or number (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> ApiResult<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ApiError::invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+')
                .parse::<i32>()
                .map_err(|_| ApiError::invalid(format!("Invalid signal: {s}")))?
        };
        return Ok(base + off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| ApiError::invalid(format!("Invalid signal: {s}")))
}

/// Everything [`build`] needs besides the record.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    pub user: User,
    /// The netns to join (`--network container:x`), or None for a new one / host.
    pub join_netns: Option<String>,
    pub init_path: Option<&'a Path>,
    pub cgroup_parent: Option<&'a str>,
    pub default_ulimits: &'a [crate::config::Ulimit],
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// The container's config.json.
pub fn build(rec: &ContainerRecord, inp: &Inputs) -> ApiResult<Value> {
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let privileged = hc.privileged.unwrap_or(false);
    let caps = capabilities(
        privileged,
        hc.cap_add.as_deref().unwrap_or_default(),
        hc.cap_drop.as_deref().unwrap_or_default(),
    )?;
    let sec = SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or_default())?;

    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    if hc.init.unwrap_or(false) {
        if let Some(_p) = inp.init_path {
            let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
            a.extend(args);
            args = a;
        }
    }
    let tty = rec.tty();
    let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let hostname = cfg
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| crate::util::short(&rec.id).to_string());
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = cfg
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());

    let mut rlimits = Vec::new();
    let mut seen = BTreeSet::new();
    for u in hc.ulimits.as_deref().unwrap_or_default() {
        let name = u.name.clone().unwrap_or_default();
        seen.insert(name.clone());
        rlimits.push(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": u.soft.unwrap_or(0), "hard": u.hard.unwrap_or(0)}));
    }
    for u in inp.default_ulimits {
        if !seen.contains(&u.name) {
            rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard}));
        }
    }

    let cap_list: Vec<Value> = caps.iter().map(|c| s(c)).collect();
    let process = json!({
        "terminal": tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid, "additionalGids": inp.user.additional_gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        "noNewPrivileges": sec.no_new_privileges,
        "oomScoreAdj": hc.oom_score_adj.unwrap_or(0),
        "rlimits": rlimits,
    });

    let shm_size = hc.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];
    let user_dests: BTreeSet<&str> = rec.mounts.iter().map(|m| m.destination.as_str()).collect();
    for f in ["resolv.conf", "hostname", "hosts"] {
        let dest = format!("/etc/{f}");
        if user_dests.contains(dest.as_str()) {
            continue;
        }
        mounts.push(json!({"destination": dest, "type": "bind", "source": inp.container_dir.join(f), "options": ["rbind", "rprivate"]}));
    }
    if let (true, Some(p)) = (hc.init.unwrap_or(false), inp.init_path) {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": p, "options": ["bind", "ro"]}));
    }
    for m in &rec.mounts {
        match m.typ.as_str() {
            "tmpfs" => {
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "noexec".to_string(),
                ];
                o.extend(m.options.iter().cloned());
                if !m.rw {
                    o.push("ro".into());
                }
                mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            _ => {
                let mut o = vec![
                    "rbind".to_string(),
                    if m.rw { "rw" } else { "ro" }.to_string(),
                ];
                o.push(m.propagation().unwrap_or("rprivate").to_string());
                mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": o}));
            }
        }
    }

    let net_mode = hc.network_mode.as_deref().unwrap_or("default");
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if net_mode != "host" {
        match &inp.join_netns {
            Some(p) => namespaces.push(json!({"type": "network", "path": p})),
            None => namespaces.push(json!({"type": "network"})),
        }
    }
    if hc.pid_mode.as_deref() == Some("host") {
        namespaces.retain(|n| n["type"] != "pid");
    }
    if hc.ipc_mode.as_deref() == Some("host") {
        namespaces.retain(|n| n["type"] != "ipc");
    }
    if hc.uts_mode.as_deref() == Some("host") {
        namespaces.retain(|n| n["type"] != "uts");
    }

    let mut resources = json!({});
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    if privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        for (t, maj, min) in [("c", None::<i64>, None::<i64>), ("b", None, None)] {
            devices
                .push(json!({"allow": true, "type": t, "major": maj, "minor": min, "access": "m"}));
        }
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
            devices.push(
                json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rwm"}),
            );
        }
        devices.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    }
    let mut linux_devices = Vec::new();
    for dm in hc.devices.as_deref().unwrap_or_default() {
        let host = dm.path_on_host.clone().unwrap_or_default();
        let inside = dm
            .path_in_container
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| host.clone());
        let perms = dm
            .cgroup_permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".into());
        let dev = host_device(&host)?;
        linux_devices.push(json!({"path": inside, "type": dev.0, "major": dev.1, "minor": dev.2, "fileMode": dev.3, "uid": 0, "gid": 0}));
        devices.push(
            json!({"allow": true, "type": dev.0, "major": dev.1, "minor": dev.2, "access": perms}),
        );
    }
    resources["devices"] = Value::Array(devices);
    let mut mem = serde_json::Map::new();
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        mem.insert("limit".into(), json!(m));
        match hc.memory_swap {
            Some(-1) => {
                mem.insert("swap".into(), json!(-1));
            }
            Some(sw) if sw > 0 => {
                mem.insert("swap".into(), json!(sw));
            }
            // Docker's default: as much swap as memory.
            _ => {
                mem.insert("swap".into(), json!(m * 2));
            }
        }
    }
    if let Some(r) = hc.memory_reservation.filter(|m| *m > 0) {
        mem.insert("reservation".into(), json!(r));
    }
    if !mem.is_empty() {
        resources["memory"] = Value::Object(mem);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        let period = 100_000i64;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(n * period / 1_000_000_000));
    }
    if let Some(q) = hc.cpu_quota.filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
        cpu.insert(
            "period".into(),
            json!(hc.cpu_period.filter(|p| *p > 0).unwrap_or(100_000)),
        );
    }
    if let Some(sh) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(sh));
    }
    if let Some(c) = hc.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(c) = hc.cpuset_mems.clone().filter(|c| !c.is_empty()) {
        cpu.insert("mems".into(), json!(c));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
    }
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        resources["blockIO"] = json!({"weight": w});
    }

    let cgroups_path = match inp
        .cgroup_parent
        .or(hc.cgroup_parent.as_deref().filter(|p| !p.is_empty()))
    {
        Some(p) => format!("{}/{}", p.trim_end_matches('/'), rec.id),
        None => format!("berth/{}", rec.id),
    };

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
        "devices": linux_devices,
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    let sysctls = hc.sysctls.clone().unwrap_or_default();
    if !sysctls.is_empty() {
        linux["sysctl"] = json!(sysctls);
    }
    if !privileged {
        match &sec.seccomp {
            Seccomp::Default => {
                let refs: Vec<&str> = caps.iter().map(String::as_str).collect();
                let prof = berth_runtime::seccomp::default_profile(&refs);
                linux["seccomp"] = serde_json::to_value(prof)
                    .map_err(|e| ApiError::internal(format!("encode seccomp profile: {e}")))?;
            }
            Seccomp::Unconfined => {}
            Seccomp::Profile(p) => linux["seccomp"] = p.clone(),
        }
    }

    Ok(json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": hc.readonly_rootfs.unwrap_or(false)},
        "hostname": hostname,
        "domainname": cfg.domainname.clone().unwrap_or_default(),
        "mounts": mounts,
        "linux": linux,
    }))
}

/// (type, major, minor, mode) of a host device node.
fn host_device(path: &str) -> ApiResult<(&'static str, u64, u64, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).map_err(|e| {
        ApiError::invalid(format!(
            "error gathering device information while adding custom device \"{path}\": {e}"
        ))
    })?;
    let ft = m.file_type();
    let t = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(ApiError::invalid(format!(
            "error gathering device information while adding custom device \"{path}\": not a device node"
        )));
    };
    let rdev = m.rdev();
    Ok((
        t,
        libc::major(rdev).into(),
        libc::minor(rdev).into(),
        m.mode() & 0o7777,
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seccomp {
    Default,
    Unconfined,
    /// An OCI seccomp section converted from a Docker profile.
    Profile(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
}

impl SecurityOpts {
    pub fn parse(opts: &[String]) -> ApiResult<SecurityOpts> {
        let mut out = SecurityOpts {
            no_new_privileges: false,
            seccomp: Seccomp::Default,
        };
        for o in opts {
            let (k, v) = match o.split_once(['=', ':']) {
                Some((k, v)) => (k, Some(v)),
                None => (o.as_str(), None),
            };
            match (k, v) {
                ("no-new-privileges", None) => out.no_new_privileges = true,
                ("no-new-privileges", Some(v)) => {
                    out.no_new_privileges = v.parse::<bool>().map_err(|_| {
                        ApiError::invalid(format!("invalid --security-opt 2: {o:?}"))
                    })?
                }
                ("seccomp", Some("unconfined")) => out.seccomp = Seccomp::Unconfined,
                ("seccomp", Some("builtin")) => out.seccomp = Seccomp::Default,
                ("seccomp", Some(profile)) => {
                    out.seccomp = Seccomp::Profile(docker_seccomp_to_oci(profile)?)
                }
                // Labels for LSMs this host does not run: accepted and ignored, as Docker does
                // when AppArmor/SELinux is off.
                ("apparmor" | "label", Some(_)) => {}
                _ => return Err(ApiError::invalid(format!("invalid --security-opt: {o:?}"))),
            }
        }
        Ok(out)
    }
}

/// Converts a Docker seccomp profile (the JSON the docker CLI sends inline) into the OCI
/// `linux.seccomp` section: `archMap` becomes `architectures`, and rules whose
/// `includes`/`excludes` name capabilities or architectures are kept as Docker keeps them for
/// the default capability set on this architecture.
pub fn docker_seccomp_to_oci(profile: &str) -> ApiResult<Value> {
    let p: Value = serde_json::from_str(profile)
        .map_err(|e| ApiError::invalid(format!("decoding seccomp profile failed: {e}")))?;
    let obj = p
        .as_object()
        .ok_or_else(|| ApiError::invalid("decoding seccomp profile failed: not a JSON object"))?;
    let default_action = obj
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("seccomp profile has no defaultAction"))?;
    let mut out = json!({"defaultAction": default_action});
    if let Some(e) = obj.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    let mut arches: Vec<Value> = Vec::new();
    if let Some(a) = obj.get("architectures").and_then(Value::as_array) {
        arches.extend(a.iter().cloned());
    }
    if let Some(m) = obj.get("archMap").and_then(Value::as_array) {
        let native = match std::env::consts::ARCH {
            "x86_64" => "SCMP_ARCH_X86_64",
            "aarch64" => "SCMP_ARCH_AARCH64",
            _ => "",
        };
        for a in m {
            if a.get("architecture").and_then(Value::as_str) == Some(native) {
                arches.push(s(native));
                if let Some(sub) = a.get("subArchitectures").and_then(Value::as_array) {
                    arches.extend(sub.iter().cloned());
                }
            }
        }
    }
    if !arches.is_empty() {
        out["architectures"] = Value::Array(arches);
    }
    let defaults: BTreeSet<&str> = DEFAULT_CAPS.iter().copied().collect();
    let mut rules = Vec::new();
    for r in obj
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let caps_ok = |v: Option<&Value>, want: bool| {
            v.and_then(|x| x.get("caps"))
                .and_then(Value::as_array)
                .is_none_or(|caps| {
                    caps.iter()
                        .filter_map(Value::as_str)
                        .all(|c| defaults.contains(c) == want)
                })
        };
        if !caps_ok(r.get("includes"), true) || !caps_ok(r.get("excludes"), false) {
            continue;
        }
        let mut rule = serde_json::Map::new();
        let names = match (r.get("names"), r.get("name")) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) => json!([n]),
            _ => return Err(ApiError::invalid("seccomp profile: a rule has no names")),
        };
        rule.insert("names".into(), names);
        rule.insert(
            "action".into(),
            r.get("action")
                .cloned()
                .ok_or_else(|| ApiError::invalid("seccomp profile: a rule has no action"))?,
        );
        for k in ["errnoRet", "args"] {
            if let Some(v) = r.get(k).filter(|v| !v.is_null()) {
                rule.insert(k.into(), v.clone());
            }
        }
        rules.push(Value::Object(rule));
    }
    out["syscalls"] = Value::Array(rules);
    // Check the result is a valid OCI section before it reaches a container.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| ApiError::invalid(format!("invalid seccomp profile: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_add_drop() {
        let c = capabilities(false, &["net_admin".into()], &["MKNOD".into()]).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_MKNOD".to_string()));
        let c = capabilities(false, &["CHOWN".into()], &["ALL".into()]).unwrap();
        assert_eq!(c, vec!["CAP_CHOWN".to_string()]);
        assert!(capabilities(false, &["CAP_BOGUS".into()], &[]).is_err());
        assert!(capabilities(true, &[], &[]).unwrap().len() > 30);
    }

    #[test]
    fn users() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n";
        let group = "root:x:0:\nwww:x:33:\nstaff:x:50:www,bob\n";
        assert_eq!(
            resolve_user("www", passwd, group).unwrap(),
            User {
                uid: 33,
                gid: 33,
                additional_gids: vec![50]
            }
        );
        assert_eq!(resolve_user("1000:50", passwd, group).unwrap().gid, 50);
        assert_eq!(resolve_user("www:staff", passwd, group).unwrap().gid, 50);
        assert!(resolve_user("nobody", passwd, group).is_err());
        assert!(resolve_user("www:nogroup", passwd, group).is_err());
        assert_eq!(resolve_user("", passwd, group).unwrap().uid, 0);
        let mut u = resolve_user("www", passwd, group).unwrap();
        add_groups(&mut u, &["1000".into(), "staff".into(), "50".into()], group).unwrap();
        assert_eq!(u.additional_gids, vec![50, 1000]);
        let err = add_groups(&mut u, &["nogroup".into()], group).unwrap_err();
        assert!(
            err.message.contains("unable to find group nogroup"),
            "{}",
            err.message
        );
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("SIGBOGUS").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn security_opts() {
        let o = SecurityOpts::parse(&["no-new-privileges".into(), "seccomp=unconfined".into()])
            .unwrap();
        assert!(o.no_new_privileges);
        assert_eq!(o.seccomp, Seccomp::Unconfined);
        assert!(SecurityOpts::parse(&["bogus".into()]).is_err());
        let prof = r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}}]}"#;
        let v = docker_seccomp_to_oci(prof).unwrap();
        assert_eq!(v["syscalls"].as_array().unwrap().len(), 1);
        assert!(docker_seccomp_to_oci("{").is_err());
        assert!(docker_seccomp_to_oci(r#"{"syscalls":[]}"#).is_err());
    }
}
