//! `network create/ls/rm/connect/disconnect/prune` (inspect goes through the shared inspect
//! command).

use anyhow::Result;
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::cli::{NetworkCreateArgs, NetworkLsArgs};
use crate::client::{enc, Client, Query};
use crate::format::{row, Format};
use crate::opts;
use crate::Exit;

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

fn kv(l: &[String]) -> Map<String, Value> {
    l.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (s.clone(), json!("")),
        })
        .collect()
}

/// An address or subnet (`a.b.c.d`, `x::y`, with or without `/len`) as (address bits, prefix
/// length, is IPv6).
fn parse_net(s: &str) -> Option<(u128, u8, bool)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let len = len.unwrap_or(32);
            (len <= 32).then_some((u128::from(u32::from(v4)) << 96, len, false))
        }
        std::net::IpAddr::V6(v6) => {
            let len = len.unwrap_or(128);
            (len <= 128).then_some((u128::from(v6), len, true))
        }
    }
}

/// Whether `inner` (address or subnet) lies in the subnet `outer`.
fn contains(outer: &str, inner: &str) -> bool {
    let (Some((o, olen, o6)), Some((i, ilen, i6))) = (parse_net(outer), parse_net(inner)) else {
        return false;
    };
    // IPv4 sits in the top 32 bits (see parse_net): its prefix lengths count from the top too.
    if o6 != i6 || ilen < olen {
        return false;
    }
    let mask = if olen == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(olen))
    };
    o & mask == i & mask
}

/// The IPAM configs of `--subnet`/`--gateway`/`--ip-range` (each repeatable, as the docker CLI):
/// each gateway and range goes with the subnet containing it.
fn ipam_configs(subnets: &[String], gateways: &[String], ranges: &[String]) -> Result<Vec<Value>> {
    let mut out: Vec<Map<String, Value>> = subnets
        .iter()
        .map(|s| Map::from_iter([("Subnet".to_string(), json!(s))]))
        .collect();
    for (key, values) in [("Gateway", gateways), ("IPRange", ranges)] {
        for v in values {
            let owner = out.iter_mut().find(|c| {
                !c.contains_key(key)
                    && c.get("Subnet")
                        .and_then(Value::as_str)
                        .is_some_and(|s| contains(s, v))
            });
            match owner {
                Some(c) => {
                    c.insert(key.to_string(), json!(v));
                }
                None if subnets.is_empty() => {
                    return Err(Exit::msg(
                        125,
                        "every ip-range or gateway must have a corresponding subnet",
                    )
                    .into())
                }
                None => {
                    let what = if key == "Gateway" {
                        "gateway"
                    } else {
                        "ip-range"
                    };
                    return Err(Exit::msg(125, format!("no matching subnet for {what} {v}")).into());
                }
            }
        }
    }
    Ok(out.into_iter().map(Value::Object).collect())
}

pub async fn create(c: &Client, a: NetworkCreateArgs) -> Result<()> {
    let ipam = ipam_configs(&a.subnet, &a.gateway, &a.ip_range)?;
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "EnableIPv6": a.ipv6,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "IPAM": {"Driver": "default", "Config": ipam, "Options": {}},
        "Options": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    let v: Value = c
        .json(Method::POST, "/networks/create", Some(&body))
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn ls(c: &Client, a: NetworkLsArgs) -> Result<()> {
    let f = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let list: Vec<Value> = c
        .get_json(&Query::new().opt("filters", f).path("/networks"))
        .await?;
    let fmt_text = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some("json") => "{{json .}}".into(),
            Some(f) if !f.is_empty() => f.to_string(),
            _ => DEFAULT.into(),
        }
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let rows: Vec<_> = list
        .iter()
        .map(|n| {
            let id = str_of(n, "Id");
            let id = if a.no_trunc {
                id
            } else {
                id.get(..12).unwrap_or(&id).to_string()
            };
            let mut labels: Vec<String> = n["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            row(vec![
                ("ID", id),
                ("Name", str_of(n, "Name")),
                ("Driver", str_of(n, "Driver")),
                ("Scope", str_of(n, "Scope")),
                (
                    "IPv6",
                    n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                ),
                (
                    "Internal",
                    n["Internal"].as_bool().unwrap_or(false).to_string(),
                ),
                ("Labels", labels.join(",")),
                ("CreatedAt", str_of(n, "Created")),
            ])
        })
        .collect();
    let mut out = std::io::stdout().lock();
    fmt.write_rows(&mut out, HEADERS, &rows)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    Ok(())
}

pub async fn rm(c: &Client, force: bool, names: Vec<String>) -> Result<()> {
    super::for_each(&names, |n| {
        let path = format!("/networks/{}", enc(&n));
        async move {
            match c.call(Method::DELETE, &path, None).await {
                Err(e) if force && e.status() == Some(404) => Ok(()),
                r => r.map(|_| ()),
            }
        }
    })
    .await
}

pub async fn connect(
    c: &Client,
    network: &str,
    container: &str,
    ip: Option<String>,
    ip6: Option<String>,
    aliases: Vec<String>,
) -> Result<()> {
    let mut ep = Map::new();
    if let Some(ipam) = opts::endpoint_ipam(ip.as_deref(), ip6.as_deref()) {
        ep.insert("IPAMConfig".into(), ipam);
    }
    if !aliases.is_empty() {
        ep.insert("Aliases".into(), json!(aliases));
    }
    let body = json!({"Container": container, "EndpointConfig": Value::Object(ep)});
    c.call(
        Method::POST,
        &format!("/networks/{}/connect", enc(network)),
        Some(&body),
    )
    .await?;
    Ok(())
}

pub async fn disconnect(c: &Client, network: &str, container: &str, force: bool) -> Result<()> {
    let body = json!({"Container": container, "Force": force});
    c.call(
        Method::POST,
        &format!("/networks/{}/disconnect", enc(network)),
        Some(&body),
    )
    .await?;
    Ok(())
}

pub async fn prune(c: &Client, filter: Vec<String>, force: bool) -> Result<()> {
    if !super::confirm(
        "WARNING! This will remove all custom networks not used by at least one container.",
        force,
    ) {
        return Ok(());
    }
    let f = opts::filters(&filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let v: Value = c
        .json(
            Method::POST,
            &Query::new().opt("filters", f).path("/networks/prune"),
            None,
        )
        .await?;
    let names: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in names {
            println!("{n}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn gateways_and_ranges_go_with_their_subnets() {
        let c = ipam_configs(
            &v(&["10.5.0.0/16", "fd00:b0::/64"]),
            &v(&["fd00:b0::1", "10.5.0.254"]),
            &v(&["fd00:b0::/80"]),
        )
        .unwrap();
        assert_eq!(
            c,
            vec![
                json!({"Subnet": "10.5.0.0/16", "Gateway": "10.5.0.254"}),
                json!({"Subnet": "fd00:b0::/64", "Gateway": "fd00:b0::1", "IPRange": "fd00:b0::/80"}),
            ]
        );
        assert!(ipam_configs(&[], &[], &[]).unwrap().is_empty());
        let e = ipam_configs(&v(&["10.5.0.0/16"]), &v(&["fd00::1"]), &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("no matching subnet for gateway fd00::1"),
            "{e}"
        );
        let e = ipam_configs(&[], &v(&["10.0.0.1"]), &[]).unwrap_err();
        assert!(e.to_string().contains("corresponding subnet"), "{e}");
        assert!(contains("0.0.0.0/0", "10.1.2.3"));
        assert!(!contains("10.5.0.0/16", "10.6.0.1"));
        assert!(!contains("fd00:b0::/64", "fd00:b0::/48"));
    }
}
