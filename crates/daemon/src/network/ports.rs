//! Published ports: `HostConfig.PortBindings` and `-P` (the image's and the container's
//! `ExposedPorts`) turned into a list of requests, validated at create so a bad spec is a 400
//! before anything exists.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use berth_api::models::{HostConfig, PortBinding, PortMap};
use berth_network::firewall::Proto;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// One host port to bind for one container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Option<IpAddr>,
    /// Inclusive range to try, in order; (0, 0) = an ephemeral port.
    pub host_ports: (u16, u16),
}

/// A port bound for the current run of a container (kept in its record, so a restarted
/// daemon binds the same ports again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub proto: String,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub container_ip: Ipv4Addr,
    /// On IPv6 networks: IPv6 clients are DNATed here (`ip6` table).
    #[serde(default)]
    pub container_ip6: Option<std::net::Ipv6Addr>,
    pub bridge: String,
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    }
}

pub fn parse_proto(s: &str) -> Option<Proto> {
    match s {
        "tcp" | "" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        "sctp" => Some(Proto::Sctp),
        _ => None,
    }
}

/// `80/tcp` (protocol defaults to tcp).
pub fn parse_port_key(key: &str) -> ApiResult<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto =
        parse_proto(proto).ok_or_else(|| ApiError::invalid(format!("invalid proto: {proto}")))?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, proto))
}

fn parse_host_port(s: &str) -> ApiResult<(u16, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return Ok((0, 0));
    }
    let one = |v: &str| {
        v.parse::<u16>()
            .map_err(|_| ApiError::invalid(format!("invalid hostPort: {s}")))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b || a == 0 {
                return Err(ApiError::invalid(format!("invalid hostPort: {s}")));
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

/// The ports to publish: explicit bindings, then (with `-P`) every exposed port not bound.
pub fn plan(hc: &HostConfig, exposed: &[String]) -> ApiResult<Vec<PortRequest>> {
    let mut out = Vec::new();
    let empty = PortMap::new();
    let bindings: BTreeMap<&String, &Option<Vec<PortBinding>>> =
        hc.port_bindings.as_ref().unwrap_or(&empty).iter().collect();
    for (key, list) in &bindings {
        let (cport, proto) = parse_port_key(key)?;
        let list: Vec<PortBinding> = list.as_ref().cloned().unwrap_or_default();
        let list = if list.is_empty() {
            vec![PortBinding::default()]
        } else {
            list
        };
        for b in list {
            let host_ip = match b
                .host_ip
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                None => None,
                Some(s) => {
                    let ip = s
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_err(|_| ApiError::invalid(format!("invalid IP address: {s}")))?;
                    (!ip.is_unspecified() || ip.is_ipv6()).then_some(ip)
                }
            };
            if host_ip.is_some_and(|ip| ip.is_ipv6()) {
                // Only IPv4 is published; Docker's CLI adds `::` twins itself.
                continue;
            }
            let host_ports = parse_host_port(b.host_port.as_deref().unwrap_or(""))?;
            out.push(PortRequest {
                proto,
                container_port: cport,
                host_ip,
                host_ports,
            });
        }
    }
    if hc.publish_all_ports.unwrap_or(false) {
        let mut keys: Vec<&String> = exposed.iter().collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (cport, proto) = parse_port_key(key)?;
            if out
                .iter()
                .any(|r| r.container_port == cport && r.proto == proto)
            {
                continue;
            }
            out.push(PortRequest {
                proto,
                container_port: cport,
                host_ip: None,
                host_ports: (0, 0),
            });
        }
    }
    Ok(out)
}

/// `NetworkSettings.Ports`: every exposed or bound port, with its host bindings (none when the
/// container is not running).
pub fn port_map(hc: &HostConfig, exposed: &[String], published: &[Published]) -> PortMap {
    let mut m = PortMap::new();
    for k in exposed {
        if let Ok((p, proto)) = parse_port_key(k) {
            m.insert(format!("{p}/{}", proto_name(proto)), None);
        }
    }
    for k in hc.port_bindings.iter().flatten().map(|(k, _)| k) {
        if let Ok((p, proto)) = parse_port_key(k) {
            m.insert(format!("{p}/{}", proto_name(proto)), None);
        }
    }
    for p in published {
        let e = m
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None);
        e.get_or_insert_with(Vec::new).push(PortBinding {
            host_ip: Some(
                p.host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
            ),
            host_port: Some(p.host_port.to_string()),
        });
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hc(b: &[(&str, &str, &str)], all: bool) -> HostConfig {
        let mut m: PortMap = HashMap::new();
        for (k, ip, port) in b {
            m.entry(k.to_string())
                .or_insert(Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(ip.to_string()),
                    host_port: Some(port.to_string()),
                });
        }
        HostConfig {
            port_bindings: Some(m),
            publish_all_ports: Some(all),
            ..Default::default()
        }
    }

    #[test]
    fn plans_bindings_and_publish_all() {
        let p = plan(
            &hc(&[("80/tcp", "", "8080"), ("53/udp", "127.0.0.1", "")], true),
            &["80/tcp".into(), "443/tcp".into()],
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert!(p.contains(&PortRequest {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: None,
            host_ports: (8080, 8080)
        }));
        assert!(p.contains(&PortRequest {
            proto: Proto::Udp,
            container_port: 53,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_ports: (0, 0)
        }));
        assert!(p
            .iter()
            .any(|r| r.container_port == 443 && r.host_ports == (0, 0)));
        let r = plan(&hc(&[("80", "", "9000-9005")], false), &[]).unwrap();
        assert_eq!(r[0].host_ports, (9000, 9005));
    }

    #[test]
    fn refuses_bad_specs() {
        for (k, ip, port) in [
            ("0/tcp", "", "80"),
            ("abc/tcp", "", "80"),
            ("80/xyz", "", "80"),
            ("80/tcp", "", "99999"),
            ("80/tcp", "", "x"),
            ("80/tcp", "", "20-10"),
            ("80/tcp", "1.2.3", "80"),
        ] {
            let e = plan(&hc(&[(k, ip, port)], false), &[]).unwrap_err();
            assert_eq!(
                e.status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{k} {ip} {port}"
            );
        }
    }

    #[test]
    fn port_map_shows_bindings() {
        let h = hc(&[("80/tcp", "", "8080")], false);
        let m = port_map(
            &h,
            &["80/tcp".into(), "53/udp".into()],
            &[Published {
                proto: "tcp".into(),
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                container_ip: Ipv4Addr::new(10, 0, 0, 2),
                container_ip6: None,
                bridge: "b".into(),
            }],
        );
        assert_eq!(m["53/udp"], None);
        let b = m["80/tcp"].as_ref().unwrap();
        assert_eq!(b[0].host_port.as_deref(), Some("8080"));
        assert_eq!(b[0].host_ip.as_deref(), Some("0.0.0.0"));
    }
}
