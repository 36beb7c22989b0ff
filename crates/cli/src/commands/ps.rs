//! `ps`: docker's container table, `--format` fields and truncation rules.

use anyhow::Result;
use berth_api::models::ContainerSummary;

use crate::cli::PsArgs;
use crate::client::{Client, Query};
use crate::format::{ago, ellipsis, go_quote, go_time, human_size_prec, row, short_id, Format};
use crate::opts;
use crate::Exit;

const DEFAULT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("State", "STATE"),
    ("Platform", "PLATFORM"),
];

pub async fn ps(c: &Client, a: PsArgs) -> Result<()> {
    let filters = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let limit = if a.latest { 1 } else { a.last };
    let q = Query::new()
        .flag("all", a.all || limit > 0)
        .flag("size", a.size)
        .opt("limit", (limit > 0).then_some(limit))
        .opt("filters", filters);
    let fmt_text = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some("json") => "{{json .}}".to_string(),
            Some(f) if !f.is_empty() => f.to_string(),
            _ => {
                if a.size {
                    format!("{DEFAULT}\t{{{{.Size}}}}")
                } else {
                    DEFAULT.to_string()
                }
            }
        }
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    // As docker's CLI: a template that shows the size asks the daemon to compute it.
    let q = if !a.quiet && !a.size && (fmt_text.contains(".Size") || fmt_text.contains("json .")) {
        q.add("size", 1)
    } else {
        q
    };
    let list: Vec<ContainerSummary> = c.get_json(&q.path("/containers/json")).await?;
    let trunc = !a.no_trunc;
    let rows: Vec<_> = list.iter().map(|s| container_row(s, trunc)).collect();
    let mut out = std::io::stdout().lock();
    fmt.write_rows(&mut out, HEADERS, &rows)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    Ok(())
}

fn port_string(s: &ContainerSummary) -> String {
    let mut ports: Vec<String> = s
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let typ = p
                .typ
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "tcp".into());
            match (p.ip.as_deref(), p.public_port) {
                (Some(ip), Some(pp)) if !ip.is_empty() => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{pp}->{}/{typ}", p.private_port)
                }
                (_, Some(pp)) => format!("{pp}->{}/{typ}", p.private_port),
                _ => format!("{}/{typ}", p.private_port),
            }
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports.join(", ")
}

pub fn container_row(s: &ContainerSummary, trunc: bool) -> gtmpl_value::Value {
    let id = s.id.clone().unwrap_or_default();
    let names: Vec<String> = s
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let mut image = s.image.clone().unwrap_or_default();
    if trunc {
        if image.starts_with("sha256:") {
            image = short_id(&image);
        } else if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let command = s.command.clone().unwrap_or_default();
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    let created = s.created.unwrap_or(0);
    let size = {
        let srw = human_size_prec(s.size_rw.unwrap_or(0) as f64, 3);
        match s.size_root_fs {
            Some(v) if v > 0 => format!("{srw} (virtual {})", human_size_prec(v as f64, 3)),
            _ => srw,
        }
    };
    let mut labels: Vec<String> = s
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let mounts: Vec<String> = s
        .mounts
        .iter()
        .flatten()
        .map(|m| {
            let n = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| m.source.clone().unwrap_or_default());
            if trunc {
                ellipsis(&n, 15)
            } else {
                n
            }
        })
        .collect();
    let local_volumes = s
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<String> = s
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let mut r = row(vec![
        ("ID", if trunc { short_id(&id) } else { id }),
        ("Names", names.join(",")),
        ("Image", image),
        ("Command", go_quote(&command)),
        ("CreatedAt", go_time(created)),
        ("RunningFor", ago(created)),
        ("Ports", port_string(s)),
        (
            "State",
            s.state.as_ref().map(|x| x.to_string()).unwrap_or_default(),
        ),
        ("Status", s.status.clone().unwrap_or_default()),
        ("Size", size),
        ("Labels", labels.join(",")),
        ("Mounts", mounts.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
        ("Networks", networks.join(",")),
    ]);
    if let gtmpl_value::Value::Object(m) = &mut r {
        m.insert("Platform".into(), gtmpl_value::Value::Nil);
        let l: std::collections::HashMap<String, gtmpl_value::Value> = s
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), gtmpl_value::Value::String(v.clone())))
            .collect();
        m.insert("__labels".into(), gtmpl_value::Value::Map(l));
    }
    r
}

#[allow(dead_code, reason = "kept for the stats table's name column")]
pub fn first_name(s: &ContainerSummary) -> String {
    s.names
        .iter()
        .flatten()
        .next()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format;

    #[test]
    fn row_as_docker() {
        let s: ContainerSummary = serde_json::from_value(serde_json::json!({
            "Id": "0123456789abcdef0123", "Names": ["/web", "/other/link"],
            "Image": "busybox", "Command": "sleep 1000000000000000", "Created": 0,
            "State": "running", "Status": "Up 2 seconds",
            "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"}]
        }))
        .unwrap();
        let r = format::to_json(&container_row(&s, true));
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp");
        assert_eq!(r["Size"], "0B");
    }
}
