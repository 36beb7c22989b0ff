//! `POST /containers/create`: the request merged with the image's config, every option
//! checked before anything is stored, then the record, the writable layer and the volumes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use berth_api::models::{ContainerConfig, ContainerCreateBody, HostConfig, RestartPolicyNameEnum};
use serde_json::Value;

use crate::container::{validate_name, ContainerRecord, MountRecord, State};
use crate::error::{ApiError, ApiResult};
use crate::state::{Container, Daemon};

/// The parts of an image's config a container inherits, by Docker's names.
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    pub raw: Value,
}

impl ImageDefaults {
    fn get(&self, k: &str) -> Option<&Value> {
        self.raw.get(k).filter(|v| !v.is_null())
    }
    fn strings(&self, k: &str) -> Option<Vec<String>> {
        self.get(k)?.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    }
    fn string(&self, k: &str) -> Option<String> {
        self.get(k)?
            .as_str()
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    }
    fn keys(&self, k: &str) -> Vec<String> {
        self.get(k)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Reads the image's `config` section.
pub fn image_defaults(
    d: &Daemon,
    img: &berth_image::store::ImageRecord,
) -> ApiResult<ImageDefaults> {
    let bytes = d
        .content
        .read_blob(&img.config_digest, berth_image::manifest::MAX_CONFIG_SIZE)?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("image config {}: {e}", img.id())))?;
    Ok(ImageDefaults {
        raw: v.get("config").cloned().unwrap_or(Value::Null),
    })
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// The container's config: the request over the image's defaults, as Docker merges them.
pub fn merge_config(body: &ContainerCreateBody, img: &ImageDefaults) -> ApiResult<ContainerConfig> {
    let mut env: Vec<String> = img.strings("Env").unwrap_or_default();
    for e in body.env.clone().unwrap_or_default() {
        if e.is_empty() || e.starts_with('=') {
            return Err(ApiError::invalid(format!(
                "invalid environment variable: {e:?}"
            )));
        }
        let k = env_key(&e).to_string();
        env.retain(|x| env_key(x) != k);
        env.push(e);
    }
    let user_entry = body.entrypoint.clone();
    let entrypoint = match &user_entry {
        Some(v) if v.len() == 1 && v[0].is_empty() => None,
        Some(v) if v.is_empty() => img.strings("Entrypoint"),
        Some(v) => Some(v.clone()),
        None => img.strings("Entrypoint"),
    };
    let user_cmd = body.cmd.clone().filter(|c| !c.is_empty());
    // A new entrypoint drops the image's Cmd (Docker's rule).
    let cmd = match (&user_cmd, &user_entry) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(e)) if !e.is_empty() => None,
        _ => img.strings("Cmd"),
    };
    let mut labels: HashMap<String, String> = img
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(body.labels.clone().unwrap_or_default());
    let mut ports: Vec<String> = img.keys("ExposedPorts");
    for p in body.exposed_ports.clone().unwrap_or_default() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let mut volumes: Vec<String> = img.keys("Volumes");
    for v in body.volumes.clone().unwrap_or_default() {
        if !volumes.contains(&v) {
            volumes.push(v);
        }
    }
    let healthcheck = match body.healthcheck.clone() {
        Some(h) if h.test.is_some() => Some(h),
        _ => img
            .get("Healthcheck")
            .and_then(|h| serde_json::from_value(h.clone()).ok()),
    };
    let non_empty = |s: &Option<String>| s.clone().filter(|x| !x.is_empty());
    Ok(ContainerConfig {
        hostname: non_empty(&body.hostname),
        domainname: non_empty(&body.domainname),
        user: non_empty(&body.user).or_else(|| img.string("User")),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: (!ports.is_empty()).then_some(ports),
        tty: Some(body.tty.unwrap_or(false)),
        open_stdin: Some(body.open_stdin.unwrap_or(false)),
        stdin_once: Some(body.stdin_once.unwrap_or(false)),
        env: Some(env),
        cmd,
        healthcheck,
        args_escaped: None,
        image: body.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: non_empty(&body.working_dir).or_else(|| img.string("WorkingDir")),
        entrypoint,
        network_disabled: body.network_disabled,
        on_build: None,
        labels: Some(labels),
        stop_signal: non_empty(&body.stop_signal).or_else(|| img.string("StopSignal")),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone().or_else(|| img.strings("Shell")),
    })
}

/// Parses Docker's byte sizes: `64m`, `1g`, `512k`, `100` (bytes), `1.5g`.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(format!("invalid size: '{s}'"));
    }
    let v = n * mul as f64;
    if v > i64::MAX as f64 {
        return Err(format!("invalid size: '{s}': too large"));
    }
    #[allow(clippy::cast_possible_truncation)] // checked against i64::MAX just above
    Ok(v as i64)
}

fn ncpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// Parses a cpuset list (`0-1,3`) and checks the CPUs exist.
fn check_cpuset(s: &str, what: &str) -> ApiResult<()> {
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (a.trim().parse::<i64>(), b.trim().parse::<i64>());
        match (a, b) {
            (Ok(a), Ok(b)) if a <= b && a >= 0 => {
                if what == "cpus" && b >= ncpus() {
                    return Err(ApiError::invalid(format!(
                        "Requested CPUs are not available - requested {s}, available: 0-{}",
                        ncpus() - 1
                    )));
                }
            }
            _ => return Err(ApiError::invalid(format!("Invalid value {s} for {what}"))),
        }
    }
    Ok(())
}

/// Checks the host config the way dockerd does before it creates anything.
pub fn validate_host_config(hc: &HostConfig) -> ApiResult<()> {
    if let Some(m) = hc.memory {
        if m < 0 {
            return Err(ApiError::invalid(format!("invalid memory limit {m}")));
        }
        if m > 0 && m < 6 * 1024 * 1024 {
            return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    if let Some(sw) = hc.memory_swap.filter(|s| *s > 0) {
        match hc.memory {
            Some(m) if m > 0 && sw < m => {
                return Err(ApiError::invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ))
            }
            None | Some(0) => {
                return Err(ApiError::invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage",
                ))
            }
            _ => {}
        }
    }
    if let Some(n) = hc.nano_cpus.filter(|n| *n != 0) {
        if hc.cpu_quota.is_some_and(|q| q > 0) || hc.cpu_period.is_some_and(|p| p > 0) {
            return Err(ApiError::invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        if n < 10_000_000 || n > ncpus() * 1_000_000_000 {
            return Err(ApiError::invalid(format!(
                "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                ncpus(),
                ncpus()
            )));
        }
    }
    if let Some(s) = hc.cpu_shares {
        if s < 0 {
            return Err(ApiError::invalid(format!("invalid CPU shares {s}")));
        }
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        check_cpuset(c, "cpus")?;
    }
    if let Some(c) = hc.cpuset_mems.as_deref().filter(|c| !c.is_empty()) {
        check_cpuset(c, "mems")?;
    }
    for u in hc.ulimits.as_deref().unwrap_or_default() {
        let name = u.name.clone().unwrap_or_default();
        if !crate::config::RLIMIT_NAMES.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!("invalid ulimit type: {name}")));
        }
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if soft > hard {
            return Err(ApiError::invalid(format!(
                "ulimit {name}: soft limit {soft} is above the hard limit {hard}"
            )));
        }
        let (_, host_hard) = crate::config::host_rlimit(&name);
        if host_hard != u64::MAX
            && (hard < 0 || u64::try_from(hard).unwrap_or(u64::MAX) > host_hard)
        {
            return Err(ApiError::invalid(format!(
                "ulimit {name}={soft}:{hard}: the hard limit is above the daemon's own hard limit {host_hard}, which cannot be raised without CAP_SYS_RESOURCE"
            )));
        }
    }
    if let Some(rp) = &hc.restart_policy {
        let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let count = rp.maximum_retry_count.unwrap_or(0);
        if count < 0 {
            return Err(ApiError::invalid("maximum retry count cannot be negative"));
        }
        if count > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(ApiError::invalid(
                "maximum retry count can only be used with 'on-failure'",
            ));
        }
        if hc.auto_remove.unwrap_or(false)
            && !matches!(
                name,
                RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
            )
        {
            return Err(ApiError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
    }
    // User network names are checked against the network table at create
    // (network::wire::plan_attachments); here only what no network can be.
    if let Some(m) = hc.network_mode.as_deref() {
        if m == "container:" {
            return Err(ApiError::invalid(
                "--network container: needs a container name or id",
            ));
        }
    }
    for (k, v) in [
        ("pid", &hc.pid_mode),
        ("ipc", &hc.ipc_mode),
        ("uts", &hc.uts_mode),
    ] {
        match v.as_deref() {
            None | Some("") | Some("host") | Some("private") | Some("shareable") => {}
            Some(m) => return Err(ApiError::invalid(format!("invalid {k} mode: {m}"))),
        }
    }
    if let Some(lc) = &hc.log_config {
        match lc.typ.as_deref() {
            None | Some("") | Some("json-file") | Some("none") => {}
            Some(t) => {
                return Err(ApiError::invalid(format!(
                    "logger: no log driver named '{t}' is registered"
                )))
            }
        }
        log_options(lc.config.as_ref())?;
    }
    match hc.runtime.as_deref() {
        None | Some("") | Some("runc") => {}
        Some(r) => {
            return Err(ApiError::invalid(format!(
                "unknown or invalid runtime name: {r}"
            )))
        }
    }
    crate::spec::SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or_default())?;
    crate::spec::capabilities(
        hc.privileged.unwrap_or(false),
        hc.cap_add.as_deref().unwrap_or_default(),
        hc.cap_drop.as_deref().unwrap_or_default(),
    )?;
    for dm in hc.devices.as_deref().unwrap_or_default() {
        let host = dm.path_on_host.clone().unwrap_or_default();
        if !host.starts_with('/') {
            return Err(ApiError::invalid(format!(
                "invalid device path {host:?}: must be absolute"
            )));
        }
        if let Some(p) = dm.cgroup_permissions.as_deref() {
            if !p.chars().all(|c| "rwm".contains(c)) {
                return Err(ApiError::invalid(format!(
                    "invalid device cgroup permissions {p:?}"
                )));
            }
        }
        if std::fs::metadata(&host).is_err() {
            return Err(ApiError::invalid(format!(
                "error gathering device information while adding custom device \"{host}\": no such file or directory"
            )));
        }
    }
    if let Some(s) = hc.shm_size {
        if s < 0 {
            return Err(ApiError::invalid("SHM size can not be less than 0"));
        }
    }
    if let Some(o) = hc.oom_score_adj {
        if !(-1000..=1000).contains(&o) {
            return Err(ApiError::invalid(format!(
                "Invalid value {o}, range for oom score adj is [-1000, 1000]"
            )));
        }
    }
    Ok(())
}

/// (max-size bytes, max-file) of a json-file log config.
pub fn log_options(cfg: Option<&HashMap<String, String>>) -> ApiResult<(u64, u32)> {
    let mut size = 0u64;
    let mut files = 1u32;
    for (k, v) in cfg.into_iter().flatten() {
        match k.as_str() {
            "max-size" => {
                let b = parse_bytes(v).map_err(ApiError::invalid)?;
                size = u64::try_from(b).unwrap_or(0);
            }
            "max-file" => {
                files = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::invalid(format!("invalid value for max-file: {v:?}"))
                })?;
            }
            "compress" | "labels" | "env" | "tag" | "mode" | "max-buffer-size" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )))
            }
        }
    }
    // dockerd's json-file accepts max-file without max-size and never rotates then.
    if size == 0 {
        files = 1;
    }
    Ok((size, files))
}

/// A volume's Subpath (API 1.45) must name something inside the volume: relative, without
/// `..`. Symlinks that lead out of it are caught at start, where the path is resolved.
fn check_subpath(sub: &str) -> ApiResult<()> {
    if sub.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "invalid mount config for type \"volume\": subpath must be a relative path within the volume: {sub:?}"
        )));
    }
    if std::path::Path::new(sub)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ApiError::invalid(format!(
            "invalid mount config for type \"volume\": subpath must not contain \"..\": {sub:?}"
        )));
    }
    Ok(())
}

fn check_dest(dest: &str, spec: &str) -> ApiResult<()> {
    if !dest.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config: mount path must be absolute"
        )));
    }
    if dest == "/" {
        return Err(ApiError::invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config: destination can't be '/'"
        )));
    }
    Ok(())
}

/// A mount the user asked for, before volumes are created.
#[derive(Debug, Clone, PartialEq)]
pub struct MountRequest {
    pub rec: MountRecord,
    /// For volumes: create if missing, with these labels.
    pub labels: HashMap<String, String>,
    /// `-v` binds create a missing host directory; `--mount` refuses.
    pub create_source: bool,
}

/// Parses `Binds`, `Mounts` and `Tmpfs` into mount requests (no side effects).
pub fn parse_mounts(hc: &HostConfig) -> ApiResult<Vec<MountRequest>> {
    let mut out: Vec<MountRequest> = Vec::new();
    for b in hc.binds.as_deref().unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [d] => ("", *d, ""),
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => {
                return Err(ApiError::invalid(format!(
                    "invalid volume specification: '{b}'"
                )))
            }
        };
        check_dest(dst, b)?;
        let mut rw = true;
        let mut opts = Vec::new();
        let mut nocopy = false;
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => rw = false,
                "rw" => rw = true,
                "nocopy" => nocopy = true,
                "z" | "Z" | "consistent" | "cached" | "delegated" => {}
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                    opts.push(m.to_string())
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid mode: {m} in volume specification '{b}'"
                    )))
                }
            }
        }
        let rec = if src.is_empty() || !src.starts_with('/') {
            if !src.is_empty() {
                crate::volumes::validate_name(src)?;
            }
            MountRecord {
                typ: "volume".into(),
                name: src.to_string(),
                source: Default::default(),
                destination: dst.to_string(),
                rw,
                mode: mode.to_string(),
                options: opts,
                copy_up: !nocopy,
                anonymous: src.is_empty(),
                subpath: String::new(),
            }
        } else {
            MountRecord {
                typ: "bind".into(),
                name: String::new(),
                source: src.into(),
                destination: dst.to_string(),
                rw,
                mode: mode.to_string(),
                options: opts,
                copy_up: false,
                anonymous: false,
                subpath: String::new(),
            }
        };
        out.push(MountRequest {
            rec,
            labels: HashMap::new(),
            create_source: true,
        });
    }
    for m in hc.mounts.as_deref().unwrap_or_default() {
        let typ = m
            .typ
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let dst = m.target.clone().unwrap_or_default();
        let spec = format!("type={typ},target={dst}");
        if dst.is_empty() {
            return Err(ApiError::invalid(
                "invalid mount config: Target must not be empty",
            ));
        }
        check_dest(&dst, &spec)?;
        let ro = m.read_only.unwrap_or(false);
        let src = m.source.clone().unwrap_or_default();
        let rec = match typ.as_str() {
            "bind" => {
                if src.is_empty() {
                    return Err(ApiError::invalid(
                        "invalid mount config for type \"bind\": field Source must not be empty",
                    ));
                }
                if !src.starts_with('/') {
                    return Err(ApiError::invalid(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                    )));
                }
                if std::fs::symlink_metadata(&src).is_err() {
                    return Err(ApiError::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                let prop = m
                    .bind_options
                    .as_ref()
                    .and_then(|b| b.propagation.map(|p| serde_json::to_value(p).ok()))
                    .flatten()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .filter(|s| !s.is_empty());
                MountRecord {
                    typ: "bind".into(),
                    name: String::new(),
                    source: src.into(),
                    destination: dst.clone(),
                    rw: !ro,
                    mode: String::new(),
                    options: prop.into_iter().collect(),
                    copy_up: false,
                    anonymous: false,
                    subpath: String::new(),
                }
            }
            "volume" => {
                if !src.is_empty() {
                    crate::volumes::validate_name(&src)?;
                }
                let nocopy = m
                    .volume_options
                    .as_ref()
                    .and_then(|v| v.no_copy)
                    .unwrap_or(false);
                let subpath = m
                    .volume_options
                    .as_ref()
                    .and_then(|v| v.subpath.clone())
                    .unwrap_or_default();
                check_subpath(&subpath)?;
                MountRecord {
                    typ: "volume".into(),
                    name: src.clone(),
                    source: Default::default(),
                    destination: dst.clone(),
                    rw: !ro,
                    mode: if ro { "ro".into() } else { "z".into() },
                    options: Vec::new(),
                    copy_up: !nocopy,
                    anonymous: src.is_empty(),
                    subpath,
                }
            }
            "tmpfs" => {
                if !src.is_empty() {
                    return Err(ApiError::invalid(
                        "invalid mount config for type \"tmpfs\": field Source must be empty",
                    ));
                }
                let mut opts = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
                        opts.push(format!("size={s}"));
                    }
                    if let Some(md) = t.mode.filter(|m| *m > 0) {
                        opts.push(format!("mode={md:o}"));
                    }
                }
                MountRecord {
                    typ: "tmpfs".into(),
                    name: String::new(),
                    source: Default::default(),
                    destination: dst.clone(),
                    rw: !ro,
                    mode: String::new(),
                    options: opts,
                    copy_up: false,
                    anonymous: false,
                    subpath: String::new(),
                }
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "invalid mount config: mount type unknown: {other:?}"
                )))
            }
        };
        let labels = m
            .volume_options
            .as_ref()
            .and_then(|v| v.labels.clone())
            .unwrap_or_default();
        out.push(MountRequest {
            rec,
            labels,
            create_source: false,
        });
    }
    let tmpfs: BTreeMap<_, _> = hc.tmpfs.clone().unwrap_or_default().into_iter().collect();
    for (dst, opts) in tmpfs {
        check_dest(&dst, &dst)?;
        let mut o: Vec<String> = Vec::new();
        let mut rw = true;
        for x in opts.split(',').filter(|x| !x.is_empty()) {
            match x {
                "ro" => rw = false,
                "rw" => rw = true,
                _ if x.starts_with("size=")
                    || x.starts_with("mode=")
                    || x.starts_with("uid=")
                    || x.starts_with("gid=")
                    || ["exec", "noexec", "suid", "nosuid", "dev", "nodev"].contains(&x) =>
                {
                    o.push(x.to_string())
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid tmpfs option {x:?} for {dst}"
                    )))
                }
            }
        }
        out.push(MountRequest {
            rec: MountRecord {
                typ: "tmpfs".into(),
                name: String::new(),
                source: Default::default(),
                destination: dst.clone(),
                rw,
                mode: opts.clone(),
                options: o,
                copy_up: false,
                anonymous: false,
                subpath: String::new(),
            },
            labels: HashMap::new(),
            create_source: false,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.rec.destination.trim_end_matches('/').to_string()) {
            return Err(ApiError::invalid(format!(
                "Duplicate mount point: {}",
                m.rec.destination
            )));
        }
    }
    Ok(out)
}

/// Creates the container: checks everything, then stores the record and its writable layer.
pub async fn create(
    d: &Arc<Daemon>,
    name: Option<String>,
    body: ContainerCreateBody,
) -> ApiResult<(String, Vec<String>)> {
    // rmi/prune take this exclusively: the image cannot be collected between being resolved
    // here and being marked as used by the new container.
    let _gc = d.image_gc.read().await;
    let image_ref = body.image.clone().unwrap_or_default();
    if image_ref.is_empty() {
        return Err(ApiError::invalid(
            "config cannot be empty in order to create a container",
        ));
    }
    let hc = body.host_config.clone().unwrap_or_default();
    validate_host_config(&hc)?;
    let mounts = parse_mounts(&hc)?;
    if let Some(n) = &name {
        validate_name(n.trim_start_matches('/'))?;
    }
    if body.env.iter().flatten().any(|e| e.contains('\0')) {
        return Err(ApiError::invalid(
            "environment variables must not contain NUL bytes",
        ));
    }
    let dd = d.clone();
    let img_name = image_ref.clone();
    let (img, defaults) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let img = dd.images.resolve(&img_name).map_err(|e| match e {
            berth_image::store::StoreError::NotFound(_) => ApiError::not_found(format!(
                "No such image: {}",
                normalize_for_message(&img_name)
            )),
            other => other.into(),
        })?;
        let defaults = image_defaults(&dd, &img)?;
        Ok((img, defaults))
    })
    .await
    .map_err(|e| ApiError::internal(format!("resolve image: {e}")))??;
    let config = merge_config(&body, &defaults)?;
    let mut full: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    full.extend(config.cmd.clone().unwrap_or_default());
    if full.is_empty() {
        return Err(ApiError::invalid("No command specified"));
    }
    if let Some(u) = &config.user {
        if u.contains(char::is_whitespace) {
            return Err(ApiError::invalid(format!("invalid user {u:?}")));
        }
    }
    if let Some(w) = &config.working_dir {
        if !w.starts_with('/') {
            return Err(ApiError::invalid(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
    }
    if let Some(h) = &config.healthcheck {
        if let Some(t) = &h.test {
            if !t.is_empty() && !["NONE", "CMD", "CMD-SHELL"].contains(&t[0].as_str()) {
                return Err(ApiError::invalid(format!(
                    "invalid healthcheck test {:?}: must start with NONE, CMD or CMD-SHELL",
                    t[0]
                )));
            }
        }
        for (k, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
        ] {
            if v.is_some_and(|v| v != 0 && v < 1_000_000) {
                return Err(ApiError::invalid(format!(
                    "{k} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if h.retries.is_some_and(|r| r < 0) {
            return Err(ApiError::invalid(
                "Retries in Healthcheck cannot be negative",
            ));
        }
    }
    if let Some(sig) = &config.stop_signal {
        crate::spec::parse_signal(sig)?;
    }
    let join = match hc.network_mode.as_deref() {
        Some(m) if m.starts_with("container:") => {
            let other = d.find(&m["container:".len()..])?;
            Some(other.id.clone())
        }
        _ => None,
    };
    let _ = join;
    let warnings = crate::network::check_mode(&body, &hc)?;
    let networks = crate::network::wire::plan_attachments(d, &hc, body.networking_config.as_ref())?;
    {
        let exposed = config.exposed_ports.clone().unwrap_or_default();
        crate::network::ports::plan(&hc, &exposed)?;
    }

    // Reserve the name and an id whose 12-char prefix is unique (the shim socket uses it).
    let id = loop {
        let id = crate::util::new_id();
        let taken = d
            .all_containers()
            .iter()
            .any(|c| crate::util::short(&c.id) == crate::util::short(&id));
        if !taken {
            break id;
        }
    };
    let name = match name {
        Some(n) => n.trim_start_matches('/').to_string(),
        None => generate_name(d),
    };
    let mut hc = hc;
    let mode = hc.network_mode.clone().unwrap_or_default();
    if matches!(mode.as_str(), "" | "default" | "bridge" | "host") || mode.starts_with("container:")
    {
        let links = hc.links.clone().unwrap_or_default();
        let links = crate::network::links::normalize(d, &name, &mode, &links)?;
        hc.links = (!links.is_empty()).then_some(links);
    }
    {
        let mut r = d
            .reserved_names
            .lock()
            .map_err(|_| ApiError::internal("name table poisoned"))?;
        let owner = r.get(&name).cloned().or_else(|| {
            d.all_containers()
                .into_iter()
                .find(|c| c.lock().name == name)
                .map(|c| c.id.clone())
        });
        if let Some(o) = owner {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{o}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        r.insert(name.clone(), id.clone());
    }
    let result = finish_create(d, &id, &name, &image_ref, img, config, hc, mounts, networks).await;
    if let Ok(mut r) = d.reserved_names.lock() {
        r.remove(&name);
    }
    result.map(|()| (id, warnings))
}

fn normalize_for_message(r: &str) -> String {
    match berth_image::reference::Reference::parse(r) {
        Ok(p) => p.familiar(),
        Err(_) => r.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn finish_create(
    d: &Arc<Daemon>,
    id: &str,
    name: &str,
    image_ref: &str,
    img: berth_image::store::ImageRecord,
    config: ContainerConfig,
    hc: HostConfig,
    mounts: Vec<MountRequest>,
    networks: Vec<crate::container::Attachment>,
) -> ApiResult<()> {
    let dir = d.container_dir(id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
    let guard = DirGuard(Some(dir.clone()));
    let mut full: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    full.extend(config.cmd.clone().unwrap_or_default());
    let path = full.remove(0);

    // Anonymous volumes for the image's VOLUMEs not covered by a mount.
    let mut reqs = mounts;
    for v in config.volumes.clone().unwrap_or_default() {
        let dst = v.trim_end_matches('/').to_string();
        let dst = if dst.is_empty() { "/".to_string() } else { dst };
        if !reqs
            .iter()
            .any(|m| m.rec.destination.trim_end_matches('/') == dst)
        {
            reqs.push(MountRequest {
                rec: MountRecord {
                    typ: "volume".into(),
                    name: String::new(),
                    source: Default::default(),
                    destination: dst,
                    rw: true,
                    mode: String::new(),
                    options: Vec::new(),
                    copy_up: true,
                    anonymous: true,
                    subpath: String::new(),
                },
                labels: HashMap::new(),
                create_source: false,
            });
        }
    }
    let mut records = Vec::new();
    for mut m in reqs {
        match m.rec.typ.as_str() {
            "volume" => {
                let name = (!m.rec.name.is_empty()).then(|| m.rec.name.clone());
                let (v, created) =
                    d.volumes
                        .create(name.as_deref(), m.labels.clone(), HashMap::new())?;
                if created {
                    d.events.emit(
                        "volume",
                        "create",
                        &v.name,
                        HashMap::from([("driver".to_string(), "local".to_string())]),
                    );
                }
                m.rec.name = v.name.clone();
                m.rec.source = d.volumes.data_dir(&v.name);
                m.rec.anonymous = v.anonymous;
            }
            "bind" if m.create_source && std::fs::symlink_metadata(&m.rec.source).is_err() => {
                std::fs::create_dir_all(&m.rec.source).map_err(|e| {
                    ApiError::invalid(format!(
                        "create bind source {}: {e}",
                        m.rec.source.display()
                    ))
                })?;
            }
            _ => {}
        }
        records.push(m.rec);
    }

    let chain = img
        .chain_id
        .clone()
        .ok_or_else(|| ApiError::invalid(format!("image {} has no layers to run", img.id())))?;
    let dd = d.clone();
    let key = id.to_string();
    let rootfs = tokio::task::spawn_blocking(move || dd.snapshots.mounts(&chain, &key, false))
        .await
        .map_err(|e| ApiError::internal(format!("prepare rootfs: {e}")))??;
    let (log_size, _) =
        crate::create::log_options(hc.log_config.as_ref().and_then(|l| l.config.as_ref()))?;
    let _ = log_size;
    let rec = ContainerRecord {
        id: id.to_string(),
        name: name.to_string(),
        created: crate::util::now_rfc3339(),
        image: img.id().to_string(),
        image_name: image_ref.to_string(),
        config,
        host_config: hc,
        path,
        args: full,
        state: State::default(),
        mounts: records,
        rootfs: Some(rootfs),
        restart_count: 0,
        manually_stopped: false,
        has_been_started: false,
        shim_pid: 0,
        log_path: dir.join(format!("{id}-json.log")),
        networks,
        published: Vec::new(),
        netns: None,
    };
    write_etc_files(d, &rec)?;
    rec.save(&dir)?;
    d.images.add_user(img.id(), id)?;
    let c = Arc::new(Container::new(dir, rec.clone()));
    d.insert(c);
    guard.disarm();
    d.emit_container(&rec, "create");
    Ok(())
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of the container, bind-mounted at start.
pub fn write_etc_files(d: &Daemon, rec: &ContainerRecord) -> ApiResult<()> {
    let dir = d.container_dir(&rec.id);
    let hostname = rec
        .config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| crate::util::short(&rec.id).to_string());
    let host_net = rec.host_config.network_mode.as_deref() == Some("host");
    let hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let mut h = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for e in rec.host_config.extra_hosts.as_deref().unwrap_or_default() {
            if let Some((n, ip)) = e.split_once(':') {
                h.push_str(&format!("{ip}\t{n}\n"));
            }
        }
        h
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if let Some(dns) = rec.host_config.dns.as_ref().filter(|d| !d.is_empty()) {
        dns.iter().map(|s| format!("nameserver {s}\n")).collect()
    } else {
        resolv
    };
    for (f, body) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        // Regenerated from the record whenever missing: no fsync needed.
        crate::util::write_replace(&dir.join(f), body.as_bytes(), false)
            .map_err(|e| ApiError::internal(format!("write {f} for {}: {e}", rec.id)))?;
    }
    Ok(())
}

struct DirGuard(Option<std::path::PathBuf>);

impl DirGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring", "bold", "brave", "clever", "dazzling", "eager", "elastic", "festive", "gallant",
    "happy", "jolly", "keen", "lucid", "modest", "nifty", "quirky", "serene", "tender", "vibrant",
    "zealous",
];
const NAMES: &[&str] = &[
    "babbage",
    "curie",
    "darwin",
    "euclid",
    "fermat",
    "galois",
    "hopper",
    "kepler",
    "lovelace",
    "noether",
    "pascal",
    "ramanujan",
    "shannon",
    "tesla",
    "turing",
    "wozniak",
];

/// A free `adjective_name`, as Docker names containers.
fn generate_name(d: &Daemon) -> String {
    for _ in 0..64 {
        let mut b = [0u8; 2];
        rand::fill(&mut b);
        let n = format!(
            "{}_{}",
            ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
            NAMES[b[1] as usize % NAMES.len()]
        );
        if d.name_owner(&n).is_none() {
            return n;
        }
    }
    format!("berth_{}", &crate::util::new_id()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("10MB").unwrap(), 10 << 20);
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("-1m").is_err());
    }

    #[test]
    fn merge_follows_docker() {
        let img = ImageDefaults {
            raw: serde_json::json!({"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"/w","Volumes":{"/data":{}}}),
        };
        let body = ContainerCreateBody {
            env: Some(vec!["A=2".into()]),
            entrypoint: Some(vec!["/bin/echo".into()]),
            ..Default::default()
        };
        let c = merge_config(&body, &img).unwrap();
        assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.cmd, None, "a new entrypoint drops the image's cmd");
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.volumes.unwrap(), vec!["/data"]);
        let body = ContainerCreateBody {
            cmd: Some(vec!["true".into()]),
            ..Default::default()
        };
        assert_eq!(
            merge_config(&body, &img).unwrap().cmd.unwrap(),
            vec!["true"]
        );
        let bad = ContainerCreateBody {
            env: Some(vec!["=x".into()]),
            ..Default::default()
        };
        assert!(merge_config(&bad, &img).is_err());
    }

    #[test]
    fn host_config_checks() {
        let mut hc = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(validate_host_config(&hc)
            .unwrap_err()
            .message
            .contains("6MB"));
        hc.memory = Some(64 << 20);
        hc.memory_swap = Some(32 << 20);
        assert!(validate_host_config(&hc).is_err());
        hc.memory_swap = Some(-1);
        assert!(validate_host_config(&hc).is_ok());
        hc.network_mode = Some("container:".into());
        assert_eq!(
            validate_host_config(&hc).unwrap_err().kind,
            crate::error::Kind::InvalidInput
        );
    }

    #[test]
    fn mounts_parse() {
        let hc = HostConfig {
            binds: Some(vec!["/tmp:/h:ro".into(), "data:/d".into(), "/anon".into()]),
            tmpfs: Some(HashMap::from([("/run".to_string(), "size=1m".to_string())])),
            ..Default::default()
        };
        let m = parse_mounts(&hc).unwrap();
        assert_eq!(m.len(), 4);
        assert!(!m[0].rec.rw);
        assert_eq!(m[1].rec.typ, "volume");
        assert!(m[2].rec.anonymous);
        for bad in ["/tmp:rel", "/a:/b:bogus", "a:b:c:d", "../x:/y", "/tmp:/"] {
            let hc = HostConfig {
                binds: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert!(parse_mounts(&hc).is_err(), "{bad}");
        }
        let hc = HostConfig {
            binds: Some(vec!["/tmp:/x".into(), "/var:/x".into()]),
            ..Default::default()
        };
        assert!(parse_mounts(&hc).unwrap_err().message.contains("Duplicate"));
        let hc = HostConfig {
            mounts: Some(vec![berth_api::models::Mount {
                typ: Some(berth_api::models::MountType::BIND),
                source: Some("/definitely/not/here".into()),
                target: Some("/x".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(parse_mounts(&hc)
            .unwrap_err()
            .message
            .contains("bind source path does not exist"));
    }
}
