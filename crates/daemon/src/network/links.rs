//! Legacy links (`--link child:alias`, `HostConfig.Links`) on the default bridge, as dockerd
//! keeps them: the child must exist when the parent is created and run when it starts; the
//! parent then gets `/etc/hosts` lines for the child and the child's address, ports and
//! environment as `ALIAS_*` variables. On user networks links are endpoint settings resolved
//! by the embedded DNS instead (the docker CLI copies `--link` there).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::container::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

/// One `HostConfig.Links` entry, as dockerd records it: `/child:/parent/alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub child: String,
    pub alias: String,
}

/// Parses `child`, `child:alias` or the recorded `/child:/parent/alias`.
pub fn parse(spec: &str) -> ApiResult<Link> {
    let (child, alias) = spec.split_once(':').unwrap_or((spec, spec));
    let child = child.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if !valid(child) || !valid(alias) {
        return Err(ApiError::invalid(format!(
            "invalid link {spec:?}: expected container[:alias]"
        )));
    }
    Ok(Link {
        child: child.to_string(),
        alias: alias.to_string(),
    })
}

/// Checks a new container's links and writes them as dockerd records them. Links belong to
/// the default bridge: user networks ignore them here, host and container modes refuse them.
pub fn normalize(d: &Daemon, parent: &str, mode: &str, links: &[String]) -> ApiResult<Vec<String>> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    if mode == "host" {
        return Err(ApiError::invalid(
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ));
    }
    if mode.starts_with("container:") {
        return Err(ApiError::invalid(
            "conflicting options: container type network can't be used with links. This would result in undefined behavior",
        ));
    }
    let mut out = Vec::new();
    for spec in links {
        let l = parse(spec)?;
        // Invalid input rather than not found, as dockerd: a 404 from create makes the CLI
        // report a missing image and try to pull it.
        let child = d.find(&l.child).map_err(|e| {
            ApiError::invalid(format!("could not get container for {}: {e}", l.child))
        })?;
        let name = child.lock().name.clone();
        out.push(format!("/{name}:/{parent}/{}", l.alias));
    }
    Ok(out)
}

/// A link made live for a start: the child's address on the default bridge and what the
/// parent learns of it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub alias: String,
    pub child_name: String,
    pub child_hostname: String,
    pub ip: Ipv4Addr,
    pub env: Vec<String>,
}

/// The parent's links, each child running on the default bridge; dockerd's errors otherwise.
pub fn resolve(d: &Daemon, rec: &ContainerRecord) -> ApiResult<Vec<Resolved>> {
    let specs = rec.host_config.links.as_deref().unwrap_or_default();
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let Ok(bridge) = d.networks.get("bridge") else {
        return Ok(Vec::new());
    };
    if !rec.networks.iter().any(|a| a.network_id == bridge.id) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for spec in specs {
        let l = parse(spec)?;
        // Invalid input rather than not found, as dockerd: a 404 from create makes the CLI
        // report a missing image and try to pull it.
        let child = d.find(&l.child).map_err(|e| {
            ApiError::invalid(format!("could not get container for {}: {e}", l.child))
        })?;
        let c = child.snapshot();
        if !child.status().is_running() {
            return Err(ApiError::invalid(format!(
                "Cannot link to a non running container: /{} AS /{}/{}",
                c.name, rec.name, l.alias
            )));
        }
        let Some(ep) = bridge.endpoints.get(&c.id) else {
            return Err(ApiError::invalid(format!(
                "Cannot link to /{}, as it does not belong to the default network",
                c.name
            )));
        };
        let hostname = c
            .config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| crate::util::short(&c.id).to_string());
        let ports: Vec<String> = c
            .config
            .exposed_ports
            .iter()
            .flat_map(|m| m.iter().cloned())
            .collect();
        let env = env(
            &format!("/{}/{}", rec.name, l.alias),
            &l.alias,
            ep.ip,
            &ports,
            c.config.env.as_deref().unwrap_or_default(),
        );
        out.push(Resolved {
            alias: l.alias,
            child_name: c.name.clone(),
            child_hostname: hostname,
            ip: ep.ip,
            env,
        });
    }
    Ok(out)
}

/// dockerd's link variables: `ALIAS_NAME`, `ALIAS_PORT` (the lowest port),
/// `ALIAS_PORT_<port>_<PROTO>` with `_ADDR`, `_PORT`, `_PROTO`, and the child's environment
/// as `ALIAS_ENV_<name>` (less HOME and PATH).
pub fn env(
    full_name: &str,
    alias: &str,
    ip: Ipv4Addr,
    ports: &[String],
    child_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace(['-', '.'], "_");
    let mut out = vec![format!("{prefix}_NAME={full_name}")];
    let mut sorted: BTreeSet<(u16, String)> = BTreeSet::new();
    for p in ports {
        let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        if let Ok(n) = port.parse::<u16>() {
            sorted.insert((n, proto.to_ascii_lowercase()));
        }
    }
    if let Some((n, proto)) = sorted.iter().next() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{n}"));
    }
    for (n, proto) in &sorted {
        let key = format!("{prefix}_PORT_{n}_{}", proto.to_ascii_uppercase());
        out.push(format!("{key}={proto}://{ip}:{n}"));
        out.push(format!("{key}_ADDR={ip}"));
        out.push(format!("{key}_PORT={n}"));
        out.push(format!("{key}_PROTO={proto}"));
    }
    for e in child_env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k == "HOME" || k == "PATH" {
            continue;
        }
        out.push(format!("{prefix}_ENV_{k}={v}"));
    }
    out
}

/// The record with the links' variables ahead of its own environment, which wins a clash.
pub fn with_env(rec: &ContainerRecord, links: &[Resolved]) -> ContainerRecord {
    let mut out = rec.clone();
    let own = rec.config.env.clone().unwrap_or_default();
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let own_keys: BTreeSet<String> = own.iter().map(|e| key(e)).collect();
    let mut env: Vec<String> = links
        .iter()
        .flat_map(|l| l.env.iter())
        .filter(|e| !own_keys.contains(&key(e)))
        .cloned()
        .collect();
    env.extend(own);
    out.config.env = Some(env);
    out
}

/// `/etc/hosts` entries for the links: the alias, the child's hostname and its name.
pub fn hosts(links: &[Resolved]) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for l in links {
        for name in [&l.alias, &l.child_hostname, &l.child_name] {
            if !out.iter().any(|(n, _): &(String, IpAddr)| n == name) {
                out.push((name.clone(), IpAddr::V4(l.ip)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_in_every_form_dockerd_takes() {
        let l = parse("db").unwrap();
        assert_eq!((l.child.as_str(), l.alias.as_str()), ("db", "db"));
        let l = parse("db:store").unwrap();
        assert_eq!((l.child.as_str(), l.alias.as_str()), ("db", "store"));
        let l = parse("/db:/web/store").unwrap();
        assert_eq!((l.child.as_str(), l.alias.as_str()), ("db", "store"));
        for bad in ["", ":x", "db:", "d b:x", "db:a:b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_ports_and_child_environment_as_dockerd() {
        let e = env(
            "/web/my-db",
            "my-db",
            "172.17.0.3".parse().unwrap(),
            &["6379/tcp".into(), "53/udp".into()],
            &[
                "FOO=1".into(),
                "PATH=/bin".into(),
                "HOME=/root".into(),
                "A=b=c".into(),
            ],
        );
        assert_eq!(
            e,
            [
                "MY_DB_NAME=/web/my-db",
                "MY_DB_PORT=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.3",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_6379_TCP=tcp://172.17.0.3:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_ENV_FOO=1",
                "MY_DB_ENV_A=b=c",
            ]
        );
    }
}
