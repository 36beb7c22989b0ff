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

pub async fn create(c: &Client, a: NetworkCreateArgs) -> Result<()> {
    let mut ipam = Vec::new();
    if a.subnet.is_some() || a.gateway.is_some() || a.ip_range.is_some() {
        let mut cfg = Map::new();
        for (k, v) in [
            ("Subnet", &a.subnet),
            ("Gateway", &a.gateway),
            ("IPRange", &a.ip_range),
        ] {
            if let Some(v) = v {
                cfg.insert(k.into(), json!(v));
            }
        }
        ipam.push(Value::Object(cfg));
    }
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
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
    aliases: Vec<String>,
) -> Result<()> {
    let mut ep = Map::new();
    if let Some(ip) = ip {
        ep.insert("IPAMConfig".into(), json!({"IPv4Address": ip}));
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
