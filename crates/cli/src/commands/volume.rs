//! `volume create/ls/rm/prune` (inspect goes through the shared inspect command).

use anyhow::Result;
use berth_api::models::VolumeListResponse;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{PruneArgs, VolumeCreateArgs, VolumeLsArgs};
use crate::client::{enc, Client, Query};
use crate::format::{human_size_prec, row, Format};
use crate::opts;
use crate::Exit;

const DEFAULT: &str = "table {{.Driver}}\t{{.Name}}";
const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Scope", "SCOPE"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Links", "LINKS"),
    ("Availability", "AVAILABILITY"),
    ("Group", "GROUP"),
    ("Status", "STATUS"),
];

pub async fn create(c: &Client, a: VolumeCreateArgs) -> Result<()> {
    let kv = |l: &[String]| -> serde_json::Map<String, Value> {
        l.iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_string(), json!(v)),
                None => (s.clone(), json!("")),
            })
            .collect()
    };
    let body = json!({
        "Name": a.name.clone().unwrap_or_default(),
        "Driver": a.driver,
        "DriverOpts": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    let v: Value = c.json(Method::POST, "/volumes/create", Some(&body)).await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn ls(c: &Client, a: VolumeLsArgs) -> Result<()> {
    let f = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let list: VolumeListResponse = c
        .get_json(&Query::new().opt("filters", f).path("/volumes"))
        .await?;
    let fmt_text = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        match a.format.as_deref() {
            Some("json") => "{{json .}}".into(),
            Some(f) if !f.is_empty() => f.to_string(),
            _ => DEFAULT.into(),
        }
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    let mut vols = list.volumes.unwrap_or_default();
    vols.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<_> = vols
        .iter()
        .map(|v| {
            let mut labels: Vec<String> =
                v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let (size, links) = match &v.usage_data {
                Some(u) => (
                    if u.size < 0 {
                        "N/A".into()
                    } else {
                        human_size_prec(u.size as f64, 3)
                    },
                    if u.ref_count < 0 {
                        "N/A".into()
                    } else {
                        u.ref_count.to_string()
                    },
                ),
                None => ("N/A".into(), "N/A".into()),
            };
            row(vec![
                ("Driver", v.driver.clone()),
                ("Name", v.name.clone()),
                ("Mountpoint", v.mountpoint.clone()),
                (
                    "Scope",
                    v.scope
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "local".into()),
                ),
                ("Labels", labels.join(",")),
                ("Size", size),
                ("Links", links),
                ("Availability", "N/A".into()),
                ("Group", "N/A".into()),
                ("Status", "N/A".into()),
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
        let path = Query::new()
            .flag("force", force)
            .path(&format!("/volumes/{}", enc(&n)));
        async move { c.call(Method::DELETE, &path, None).await.map(|_| ()) }
    })
    .await
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !super::confirm(warning, a.force) {
        return Ok(());
    }
    let mut filter = a.filter.clone();
    if a.all {
        filter.push("all=true".into());
    }
    let f = opts::filters(&filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let v: Value = c
        .json(
            Method::POST,
            &Query::new().opt("filters", f).path("/volumes/prune"),
            None,
        )
        .await?;
    super::container::print_pruned(&v, "VolumesDeleted", "Deleted Volumes:");
    Ok(())
}
