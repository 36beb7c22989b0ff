//! Flags turned into API values: sizes, CPUs, ports, volumes, env files, ulimits, devices,
//! durations and filters, validated as docker's CLI validates them (same messages), then the
//! `POST /containers/create` body.

// Sizes and durations parsed as floats become whole bytes/nanoseconds, truncated as docker does.
#![allow(
    clippy::cast_possible_truncation,
    reason = "truncation is the Go semantics being matched"
)]

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::cli::RunArgs;

/// A flag value docker's CLI would refuse before calling the daemon.
#[derive(Debug, thiserror::Error)]
pub enum OptError {
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid spec: {0}: empty section between colons")]
    EmptySection(String),
    #[error("invalid spec: {0}: too many colons")]
    TooManyColons(String),
    #[error("invalid volume specification: '{spec}': invalid mount config for type \"{typ}\": invalid mount path: '{path}' mount path must be absolute")]
    NotAbsolute {
        spec: String,
        typ: &'static str,
        path: String,
    },
    #[error("invalid argument \"{value}\" for \"--{flag}\" flag: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("open {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("bad format for filter (expected name=value)")]
    Filter,
}

fn flag(flag: &'static str, value: &str, reason: impl Into<String>) -> OptError {
    OptError::Flag {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// docker's RAMInBytes: a number with an optional b/k/m/g/t/p suffix (binary units).
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return Err(format!("invalid suffix: '{}'", unit)),
    };
    Ok((n * mult) as i64)
}

/// `--memory-swap`: a size, or -1 for unlimited.
pub fn parse_memory_swap(s: &str) -> Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    parse_memory(s)
}

/// `--cpus 1.5` as nano CPUs.
pub fn parse_nanocpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))?;
    if !(0.0..=1e6).contains(&v) {
        return Err("value is too precise".into());
    }
    Ok((v * 1e9).round() as i64)
}

/// Go's time.ParseDuration, in nanoseconds ("1m30s", "500ms").
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
    }
    Some(total as i64)
}

/// Reads an env or label file: `KEY=VALUE` lines, `#` comments, a bare `KEY` taken from the
/// environment (dropped when unset).
pub fn read_kv_file(path: &str, from_env: bool) -> Result<Vec<String>, OptError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptError::File {
        path: path.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('=') {
            out.push(line.to_string());
        } else if from_env {
            if let Ok(v) = std::env::var(line.trim()) {
                out.push(format!("{}={v}", line.trim()));
            }
        } else {
            out.push(line.trim().to_string());
        }
    }
    Ok(out)
}

/// `-e K=V` as is; `-e K` takes K from this environment, or is dropped when unset.
pub fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>, OptError> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_kv_file(f, true)?);
    }
    for e in env {
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    }
    Ok(out)
}

/// `-l k=v` and label files as a map.
pub fn labels(list: &[String], files: &[String]) -> Result<BTreeMap<String, String>, OptError> {
    let mut all = Vec::new();
    for f in files {
        all.extend(read_kv_file(f, false)?);
    }
    all.extend(list.iter().cloned());
    Ok(all
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect())
}

/// `-p` values: ExposedPorts and PortBindings.
/// ExposedPorts and PortBindings of a container.
pub type PortMaps = (Map<String, Value>, Map<String, Value>);

pub fn ports(specs: &[String], expose: &[String]) -> Result<PortMaps, OptError> {
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for e in expose {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        for p in port_range(port).ok_or_else(|| OptError::ContainerPort(port.to_string()))? {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }
    for spec in specs {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p),
            None => (spec.as_str(), "tcp"),
        };
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(OptError::Proto(proto.to_string()));
        }
        // ip:hostPort:containerPort, hostPort:containerPort, or containerPort; an IPv6 ip is
        // in brackets.
        let parts: Vec<&str> = if let Some(r) = rest.strip_prefix('[') {
            match r.split_once("]:") {
                Some((ip, tail)) => {
                    let mut v = vec![ip];
                    v.extend(tail.splitn(2, ':'));
                    v
                }
                None => return Err(OptError::ContainerPort(spec.clone())),
            }
        } else {
            rest.split(':').collect()
        };
        let (ip, host, container) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [ip, h, c] => (*ip, *h, *c),
            _ => return Err(OptError::ContainerPort(spec.clone())),
        };
        if container.is_empty() {
            return Err(OptError::ContainerPort(spec.clone()));
        }
        let cports =
            port_range(container).ok_or_else(|| OptError::ContainerPort(container.to_string()))?;
        let hports = if host.is_empty() {
            None
        } else {
            Some(port_range(host).ok_or_else(|| OptError::HostPort(host.to_string()))?)
        };
        for (i, p) in cports.iter().enumerate() {
            let key = format!("{p}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let hp = match &hports {
                Some(h) if h.len() == cports.len() => h[i].to_string(),
                Some(h) if h.len() > 1 => format!("{}-{}", h[0], h[h.len() - 1]),
                Some(h) => h[0].to_string(),
                None => String::new(),
            };
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                a.push(json!({"HostIp": ip, "HostPort": hp}));
            }
        }
    }
    Ok((exposed, bindings))
}

fn port_range(s: &str) -> Option<Vec<u16>> {
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u16 = a.parse().ok()?;
            let b: u16 = b.parse().ok()?;
            (a <= b).then(|| (a..=b).collect())
        }
        None => Some(vec![s.parse().ok()?]),
    }
}

/// `-v` values: binds (`src:dst[:mode]`) and anonymous volumes (`/dst`).
pub fn volumes(specs: &[String]) -> Result<(Vec<String>, Map<String, Value>), OptError> {
    let mut binds = Vec::new();
    let mut anon = Map::new();
    for spec in specs {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(OptError::EmptySection(spec.clone()));
        }
        match parts.as_slice() {
            [dst] => {
                if !dst.starts_with('/') {
                    return Err(OptError::NotAbsolute {
                        spec: spec.clone(),
                        typ: "volume",
                        path: dst.to_string(),
                    });
                }
                anon.insert(dst.to_string(), json!({}));
            }
            [src, dst] | [src, dst, _] => {
                if !dst.starts_with('/') {
                    return Err(OptError::NotAbsolute {
                        spec: spec.clone(),
                        typ: if src.starts_with('/') {
                            "bind"
                        } else {
                            "volume"
                        },
                        path: dst.to_string(),
                    });
                }
                binds.push(spec.clone());
            }
            _ => return Err(OptError::TooManyColons(spec.clone())),
        }
    }
    Ok((binds, anon))
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn mount(spec: &str) -> Result<Value, OptError> {
    let mut m = Map::new();
    let mut typ = "volume".to_string();
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.to_string()),
            None => (field.trim().to_ascii_lowercase(), "true".to_string()),
        };
        let truthy = matches!(v.as_str(), "1" | "true" | "yes");
        match k.as_str() {
            "type" => typ = v,
            "source" | "src" => {
                m.insert("Source".into(), json!(v));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(v));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(truthy));
            }
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), json!(v));
            }
            "volume-nocopy" => {
                vol_opts.insert("NoCopy".into(), json!(truthy));
            }
            "tmpfs-size" => {
                let n = parse_memory(&v).map_err(|r| flag("mount", spec, r))?;
                tmpfs_opts.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let n =
                    u32::from_str_radix(&v, 8).map_err(|e| flag("mount", spec, e.to_string()))?;
                tmpfs_opts.insert("Mode".into(), json!(n));
            }
            "consistency" => {}
            _ => {
                return Err(flag(
                    "mount",
                    spec,
                    format!("unexpected key '{k}' in '{field}'"),
                ));
            }
        }
    }
    if !m.contains_key("Target") {
        return Err(flag("mount", spec, "target is required"));
    }
    m.insert("Type".into(), json!(typ));
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind_opts));
    }
    if !vol_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol_opts));
    }
    if !tmpfs_opts.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs_opts));
    }
    Ok(Value::Object(m))
}

/// `--ulimit nofile=1024:2048`.
pub fn ulimit(spec: &str) -> Result<Value, OptError> {
    let (name, vals) = spec
        .split_once('=')
        .ok_or_else(|| flag("ulimit", spec, format!("invalid ulimit argument: {spec}")))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let soft: i64 = soft
        .parse()
        .map_err(|_| flag("ulimit", spec, format!("invalid ulimit soft value: {soft}")))?;
    let hard: i64 = hard
        .parse()
        .map_err(|_| flag("ulimit", spec, format!("invalid ulimit hard value: {hard}")))?;
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(spec: &str) -> Result<Value, OptError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, cont, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if p.chars().all(|c| "rwm".contains(c)) && !p.is_empty() => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => {
            return Err(flag(
                "device",
                spec,
                format!("invalid device specification: {spec}"),
            ))
        }
    };
    Ok(json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms}))
}

/// `--restart on-failure:3`.
pub fn restart(spec: &str) -> Result<Value, OptError> {
    let (name, max) = spec.split_once(':').unwrap_or((spec, ""));
    let max: i64 = if max.is_empty() {
        0
    } else {
        max.parse().map_err(|_| {
            flag(
                "restart",
                spec,
                "invalid restart policy format: maximum retry count must be an integer",
            )
        })?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": max}))
}

/// `--filter k=v` (repeatable) as the API's JSON filter map.
pub fn filters(list: &[String]) -> Result<Option<String>, OptError> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut m: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in list {
        let (k, v) = f.split_once('=').ok_or(OptError::Filter)?;
        m.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(serde_json::to_string(&m).ok())
}

/// A container create body and the query parameters that go with it.
#[derive(Debug)]
pub struct CreateSpec {
    pub body: Value,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub image: String,
}

/// Builds `POST /containers/create` from `run`/`create` flags.
pub fn create_spec(a: &RunArgs) -> Result<CreateSpec, OptError> {
    let image = a.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = a.args.iter().skip(1).cloned().collect();
    let env = env_list(&a.env, &a.env_file)?;
    let labels = labels(&a.label, &a.label_file)?;
    let (exposed, port_bindings) = ports(&a.publish, &a.expose)?;
    let (binds, anon) = volumes(&a.volume)?;
    let mounts = a
        .mount
        .iter()
        .map(|m| mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| ulimit(u))
        .collect::<Result<Vec<_>, _>>()?;
    let devices = a
        .device
        .iter()
        .map(|d| device(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    let attach: Vec<String> = a.attach.iter().map(|s| s.to_ascii_lowercase()).collect();
    let (att_in, att_out, att_err) = if a.detach {
        (false, false, false)
    } else if attach.is_empty() {
        (a.interactive, true, true)
    } else {
        (
            attach.iter().any(|s| s == "stdin"),
            attach.iter().any(|s| s == "stdout"),
            attach.iter().any(|s| s == "stderr"),
        )
    };

    let mut config = Map::new();
    config.insert("Image".into(), json!(image));
    if !cmd.is_empty() {
        config.insert("Cmd".into(), json!(cmd));
    }
    if let Some(e) = &a.entrypoint {
        config.insert("Entrypoint".into(), json!([e]));
    }
    config.insert("Env".into(), json!(env));
    config.insert("Labels".into(), json!(labels));
    config.insert("Tty".into(), json!(a.tty));
    config.insert("OpenStdin".into(), json!(a.interactive));
    config.insert("StdinOnce".into(), json!(a.interactive && !a.detach));
    config.insert("AttachStdin".into(), json!(att_in));
    config.insert("AttachStdout".into(), json!(att_out));
    config.insert("AttachStderr".into(), json!(att_err));
    if let Some(v) = &a.workdir {
        config.insert("WorkingDir".into(), json!(v));
    }
    if let Some(v) = &a.user {
        config.insert("User".into(), json!(v));
    }
    if let Some(v) = &a.hostname {
        config.insert("Hostname".into(), json!(v));
    }
    if let Some(v) = &a.domainname {
        config.insert("Domainname".into(), json!(v));
    }
    if let Some(v) = &a.stop_signal {
        config.insert("StopSignal".into(), json!(v));
    }
    if let Some(v) = a.stop_timeout {
        config.insert("StopTimeout".into(), json!(v));
    }
    if !exposed.is_empty() {
        config.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if !anon.is_empty() {
        config.insert("Volumes".into(), Value::Object(anon));
    }
    if a.no_healthcheck {
        config.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
    } else if a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some()
    {
        let mut h = Map::new();
        if let Some(c) = &a.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (key, fl, v) in [
            ("Interval", "health-interval", &a.health_interval),
            ("Timeout", "health-timeout", &a.health_timeout),
            ("StartPeriod", "health-start-period", &a.health_start_period),
        ] {
            if let Some(v) = v {
                let ns = parse_go_duration(v)
                    .ok_or_else(|| flag(fl, v, format!("time: invalid duration \"{v}\"")))?;
                h.insert(key.into(), json!(ns));
            }
        }
        if let Some(r) = a.health_retries {
            h.insert("Retries".into(), json!(r));
        }
        config.insert("Healthcheck".into(), Value::Object(h));
    }

    let mut hc = Map::new();
    hc.insert("Binds".into(), json!(binds));
    if !mounts.is_empty() {
        hc.insert("Mounts".into(), json!(mounts));
    }
    if !tmpfs.is_empty() {
        hc.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    hc.insert("AutoRemove".into(), json!(a.rm));
    hc.insert(
        "NetworkMode".into(),
        json!(a.network.clone().unwrap_or_else(|| "default".into())),
    );
    if !port_bindings.is_empty() {
        hc.insert("PortBindings".into(), Value::Object(port_bindings));
    }
    hc.insert("PublishAllPorts".into(), json!(a.publish_all));
    if let Some(r) = &a.restart {
        hc.insert("RestartPolicy".into(), restart(r)?);
    }
    for (k, v) in [
        ("Memory", a.memory),
        ("MemorySwap", a.memory_swap),
        ("MemoryReservation", a.memory_reservation),
        ("ShmSize", a.shm_size),
        ("NanoCpus", a.cpus),
        ("CpuShares", a.cpu_shares),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            hc.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        hc.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        hc.insert("CpusetMems".into(), json!(v));
    }
    if !ulimits.is_empty() {
        hc.insert("Ulimits".into(), json!(ulimits));
    }
    if !devices.is_empty() {
        hc.insert("Devices".into(), json!(devices));
    }
    if !a.cap_add.is_empty() {
        hc.insert("CapAdd".into(), json!(a.cap_add));
    }
    if !a.cap_drop.is_empty() {
        hc.insert("CapDrop".into(), json!(a.cap_drop));
    }
    hc.insert("Privileged".into(), json!(a.privileged));
    if !a.security_opt.is_empty() {
        hc.insert("SecurityOpt".into(), json!(a.security_opt));
    }
    if a.init {
        hc.insert("Init".into(), json!(true));
    }
    hc.insert("ReadonlyRootfs".into(), json!(a.read_only));
    if a.log_driver.is_some() || !a.log_opt.is_empty() {
        let cfg: BTreeMap<String, String> = a
            .log_opt
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (o.clone(), String::new()),
            })
            .collect();
        hc.insert(
            "LogConfig".into(),
            json!({"Type": a.log_driver.clone().unwrap_or_default(), "Config": cfg}),
        );
    }
    if !a.add_host.is_empty() {
        hc.insert("ExtraHosts".into(), json!(a.add_host));
    }
    if !a.dns.is_empty() {
        hc.insert("Dns".into(), json!(a.dns));
    }
    if !a.group_add.is_empty() {
        hc.insert("GroupAdd".into(), json!(a.group_add));
    }
    if !a.sysctl.is_empty() {
        let m: BTreeMap<String, String> = a
            .sysctl
            .iter()
            .filter_map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        hc.insert("Sysctls".into(), json!(m));
    }
    for (k, v) in [
        ("IpcMode", &a.ipc),
        ("PidMode", &a.pid),
        ("UTSMode", &a.uts),
        ("Runtime", &a.runtime),
    ] {
        if let Some(v) = v {
            hc.insert(k.into(), json!(v));
        }
    }
    if a.oom_kill_disable {
        hc.insert("OomKillDisable".into(), json!(true));
    }
    config.insert("HostConfig".into(), Value::Object(hc));
    let mut endpoints = Map::new();
    if let Some(net) = a.network.as_deref().filter(|n| {
        !matches!(*n, "" | "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
    }) {
        let mut ep = Map::new();
        if !a.network_alias.is_empty() {
            ep.insert("Aliases".into(), json!(a.network_alias));
        }
        if let Some(ipam) = endpoint_ipam(a.ip.as_deref(), a.ip6.as_deref()) {
            ep.insert("IPAMConfig".into(), ipam);
        }
        endpoints.insert(net.to_string(), Value::Object(ep));
    } else if a.ip.is_some() || a.ip6.is_some() || !a.network_alias.is_empty() {
        let mut ep = Map::new();
        if !a.network_alias.is_empty() {
            ep.insert("Aliases".into(), json!(a.network_alias));
        }
        if let Some(ipam) = endpoint_ipam(a.ip.as_deref(), a.ip6.as_deref()) {
            ep.insert("IPAMConfig".into(), ipam);
        }
        endpoints.insert("bridge".into(), Value::Object(ep));
    }
    if !a.dns_search.is_empty() {
        if let Some(Value::Object(hc)) = config.get_mut("HostConfig") {
            hc.insert("DnsSearch".into(), json!(a.dns_search));
        }
    }
    if !a.dns_option.is_empty() {
        if let Some(Value::Object(hc)) = config.get_mut("HostConfig") {
            hc.insert("DnsOptions".into(), json!(a.dns_option));
        }
    }
    config.insert(
        "NetworkingConfig".into(),
        json!({"EndpointsConfig": Value::Object(endpoints)}),
    );
    Ok(CreateSpec {
        body: Value::Object(config),
        name: a.name.clone(),
        platform: a.platform.clone(),
        image,
    })
}

/// docker's term.ToBytes: "ctrl-p,ctrl-q" → [16, 17].
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [c] if c.is_ascii_lowercase() => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// `--build-arg`: `k=v`, or `k` alone, which takes `k`'s value from the environment when it is
/// set there (and is sent without a value otherwise, so the Dockerfile's default applies), as
/// docker's ValidateEnv does.
pub fn parse_build_arg(s: &str) -> Result<String, String> {
    let (k, v) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if v.is_some() {
        return Ok(s.to_string());
    }
    match std::env::var_os(k) {
        Some(val) => Ok(format!("{k}={}", val.to_string_lossy())),
        None => Ok(s.to_string()),
    }
}

/// `--label` of build: `k=v` or `k` (an empty value); the name must not be empty.
pub fn parse_build_label(s: &str) -> Result<String, String> {
    let k = s.split('=').next().unwrap_or("");
    if k.trim_start().is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    Ok(s.to_string())
}

/// `-t`: a reference as docker's reference grammar accepts it (`[domain/]path[:tag]`, the path
/// lowercase), with docker's messages.
pub fn parse_tag(s: &str) -> Result<String, String> {
    const BAD: &str = "invalid reference format";
    if s.is_empty() || s.contains('@') {
        return Err(BAD.into());
    }
    let (name, tag) = {
        let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
        match s[slash..].rfind(':') {
            Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
            None => (s, None),
        }
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(BAD.into());
        }
    }
    // A first component with a dot, a colon or "localhost" is a registry host.
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if d.contains('.') || d.contains(':') || d == "localhost" => (Some(d), p),
        _ => (None, name),
    };
    if let Some(d) = domain {
        if !d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(BAD.into());
        }
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        // Separators: one '.', one or two '_', or any number of '-', between alphanumerics.
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    };
    if path.is_empty() {
        return Err(BAD.into());
    }
    let mut upper = false;
    for comp in path.split('/') {
        if !component_ok(&comp.to_ascii_lowercase()) {
            return Err(BAD.into());
        }
        upper |= comp.chars().any(|c| c.is_ascii_uppercase());
    }
    if upper {
        let full = if domain.is_none() && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        return Err(format!("{BAD}: repository name ({full}) must be lowercase"));
    }
    Ok(s.to_string())
}

/// Splits `name[:tag][@digest]` into repository and tag (or digest); no tag means latest.
pub fn split_ref(r: &str) -> (String, String) {
    if let Some((repo, digest)) = r.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

/// An endpoint's `IPAMConfig` from `--ip` / `--ip6` (None when neither is given).
pub fn endpoint_ipam(ip: Option<&str>, ip6: Option<&str>) -> Option<Value> {
    let mut m = Map::new();
    if let Some(ip) = ip {
        m.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip6) = ip6 {
        m.insert("IPv6Address".into(), json!(ip6));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("100"), Ok(100));
        assert_eq!(parse_memory("1.5k"), Ok(1536));
        assert_eq!(parse_memory("1x"), Err("invalid suffix: 'x'".to_string()));
        assert!(parse_memory("abc").is_err());
        assert_eq!(parse_memory_swap("-1"), Ok(-1));
        assert_eq!(parse_nanocpus("1.5"), Ok(1_500_000_000));
    }

    #[test]
    fn port_specs() {
        let (e, b) = ports(&["8080:80".into(), "127.0.0.1::53/udp".into()], &[]).unwrap();
        assert!(e.contains_key("80/tcp") && e.contains_key("53/udp"));
        assert_eq!(b["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(b["53/udp"][0]["HostIp"], "127.0.0.1");
        assert_eq!(
            ports(&["abc".into()], &[]).unwrap_err().to_string(),
            "invalid containerPort: abc"
        );
        assert!(ports(&["80/foo".into()], &[]).is_err());
    }

    #[test]
    fn volume_specs() {
        let (b, a) = volumes(&["/a:/b:ro".into(), "/data".into(), "v:/x".into()]).unwrap();
        assert_eq!(b, vec!["/a:/b:ro", "v:/x"]);
        assert!(a.contains_key("/data"));
        assert!(volumes(&["a:b:c:d".into()])
            .unwrap_err()
            .to_string()
            .contains("too many colons"));
        assert!(volumes(&["/a:rel".into()])
            .unwrap_err()
            .to_string()
            .contains("must be absolute"));
    }

    #[test]
    fn build_flags() {
        assert_eq!(parse_build_arg("A=1=2"), Ok("A=1=2".into()));
        assert_eq!(
            parse_build_arg("=v"),
            Err("invalid environment variable: =v".into())
        );
        // PATH is set in any test environment; a name nobody sets stays bare.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(parse_build_arg("PATH"), Ok(format!("PATH={path}")));
        assert_eq!(
            parse_build_arg("BERTH_SURELY_UNSET_ARG"),
            Ok("BERTH_SURELY_UNSET_ARG".into())
        );
        assert_eq!(parse_build_label("a"), Ok("a".into()));
        assert_eq!(
            parse_build_label("=x"),
            Err("invalid label '=x': empty name".into())
        );
        for ok in [
            "a",
            "a:1",
            "localhost:5000/a/b:v1.0",
            "my-app__x.y",
            "x.io/Ab/c",
        ] {
            let r = parse_tag(ok);
            if ok == "x.io/Ab/c" {
                assert_eq!(
                    r,
                    Err(
                        "invalid reference format: repository name (Ab/c) must be lowercase".into()
                    )
                );
            } else {
                assert_eq!(r, Ok(ok.to_string()), "{ok}");
            }
        }
        assert_eq!(
            parse_tag("Bad:Tag"),
            Err("invalid reference format: repository name (library/Bad) must be lowercase".into())
        );
        for bad in ["", "a:", "a:-x", "-a", "a//b", "a@sha256:00", "a b", "a..b"] {
            assert_eq!(
                parse_tag(bad),
                Err("invalid reference format".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn misc() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(detach_keys("a,ctrl-@"), Ok(vec![b'a', 0]));
        assert!(detach_keys("ctrl-xx").is_err());
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_ref("localhost:5000/a/b:1"),
            ("localhost:5000/a/b".into(), "1".into())
        );
        assert_eq!(split_ref("a@sha256:00"), ("a".into(), "sha256:00".into()));
        assert_eq!(
            ulimit("nofile=10:20").unwrap(),
            json!({"Name":"nofile","Soft":10,"Hard":20})
        );
        assert_eq!(
            filters(&["label=a=b".into(), "status=exited".into()]).unwrap(),
            Some(r#"{"label":{"a=b":true},"status":{"exited":true}}"#.into())
        );
    }
}
