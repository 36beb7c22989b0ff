//! `version`, `info`, `system df`, `system prune`, `events`.

use std::io::Write;

use anyhow::Result;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{DfArgs, EventsArgs, SystemPruneArgs};
use crate::client::{Client, ClientError, JsonLines, Query};
use crate::format::{bytes_size, from_json, human_size, row, Format};
use crate::opts;
use crate::Exit;

fn client_info(c: &Client) -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": berth_api::version::MAX_API_VERSION.to_string(),
        "DefaultAPIVersion": berth_api::version::MAX_API_VERSION.to_string(),
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
        "Host": c.host,
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Aligns "key:\tvalue" lines as docker's version template does (min width 20, padding 1).
fn aligned(text: &str) -> Result<String> {
    let mut tw = crate::format::go_tabwriter(20, 1);
    tw.write_all(text.as_bytes())?;
    tw.flush()?;
    Ok(String::from_utf8_lossy(&tw.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?).into_owned())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn version(c: &Client, format: Option<String>) -> Result<()> {
    let client = client_info(c);
    let server: Result<Value, ClientError> = c.get_json("/version").await;
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let fmt = Format::parse(&f, "").map_err(|e| Exit::msg(1, e.to_string()))?;
        // Go templates name the struct fields (APIVersion), JSON the wire keys (ApiVersion).
        let mut server_v = server.as_ref().ok().cloned().unwrap_or(Value::Null);
        if server_v.is_object() {
            server_v["APIVersion"] = server_v["ApiVersion"].clone();
        }
        let mut client_v = client.clone();
        client_v["APIVersion"] = client["ApiVersion"].clone();
        let data = json!({"Client": client_v, "Server": server_v});
        println!(
            "{}",
            fmt.render(&from_json(&data))
                .map_err(|e| Exit::msg(1, e.to_string()))?
        );
        return server.map(|_| ()).map_err(Into::into);
    }
    let mut t = format!(
        "Client:\n Version:\t{}\n API version:\t{}\n Go version:\t{}\n Git commit:\t{}\n Built:\t{}\n OS/Arch:\t{}/{}\n Context:\t{}\n",
        s(&client["Version"]),
        s(&client["ApiVersion"]),
        s(&client["GoVersion"]),
        s(&client["GitCommit"]),
        s(&client["BuildTime"]),
        s(&client["Os"]),
        s(&client["Arch"]),
        s(&client["Context"]),
    );
    if let Ok(v) = &server {
        {
            let name = v["Platform"]["Name"].as_str().unwrap_or("");
            t.push_str(&format!(
                "\nServer:{}\n Engine:\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}\n",
                if name.is_empty() { String::new() } else { format!(" {name}") },
                s(&v["Version"]),
                s(&v["ApiVersion"]),
                s(&v["MinAPIVersion"]),
                s(&v["GoVersion"]),
                s(&v["GitCommit"]),
                s(&v["BuildTime"]),
                s(&v["Os"]),
                s(&v["Arch"]),
                v["Experimental"].as_bool().unwrap_or(false),
            ));
            for comp in v["Components"].as_array().into_iter().flatten() {
                let n = comp["Name"].as_str().unwrap_or("");
                if n == "Engine" || n.is_empty() {
                    continue;
                }
                t.push_str(&format!(" {n}:\n  Version:\t{}\n", s(&comp["Version"])));
                if let Some(d) = comp["Details"].as_object() {
                    for (k, dv) in d {
                        t.push_str(&format!("  {k}:\t{}\n", s(dv)));
                    }
                }
            }
        }
    }
    print!("{}", aligned(&t)?);
    std::io::stdout().flush()?;
    server.map(|_| ()).map_err(Into::into)
}

pub async fn info(c: &Client, format: Option<String>) -> Result<()> {
    let client = client_info(c);
    let server: Result<Value, ClientError> = c.get_json("/info").await;
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let fmt = Format::parse(&f, "").map_err(|e| Exit::msg(1, e.to_string()))?;
        let mut data = server.as_ref().cloned().unwrap_or_else(|_| json!({}));
        data["ClientInfo"] =
            json!({"Debug": false, "Context": "default", "Version": client["Version"]});
        println!(
            "{}",
            fmt.render(&from_json(&data))
                .map_err(|e| Exit::msg(1, e.to_string()))?
        );
        return server.map(|_| ()).map_err(Into::into);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
        s(&client["Version"])
    ));
    let v = match server {
        Ok(v) => v,
        Err(e) => {
            print!("{out}\nServer:\n");
            return Err(e.into());
        }
    };
    out.push_str("\nServer:\n");
    let i = |k: &str| v[k].as_i64().unwrap_or(0);
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        i("Containers"),
        i("ContainersRunning"),
        i("ContainersPaused"),
        i("ContainersStopped"),
        i("Images"),
        s(&v["ServerVersion"]),
        s(&v["Driver"]),
    ));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        if let Some([k, val]) = pair.as_array().map(|a| a.as_slice()) {
            out.push_str(&format!("  {}: {}\n", s(k), s(val)));
        }
    }
    out.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        s(&v["LoggingDriver"]),
        s(&v["CgroupDriver"]),
        s(&v["CgroupVersion"]),
    ));
    out.push_str(" Plugins:\n");
    for (k, title) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
        let list: Vec<String> = v["Plugins"][k]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        out.push_str(&format!("  {title}: {}\n", list.join(" ")));
    }
    out.push_str(&format!(
        " Swarm: {}\n",
        v["Swarm"]["LocalNodeState"].as_str().unwrap_or("inactive")
    ));
    if let Some(r) = v["Runtimes"].as_object() {
        let mut names: Vec<&String> = r.keys().collect();
        names.sort();
        out.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    out.push_str(&format!(" Default Runtime: {}\n", s(&v["DefaultRuntime"])));
    out.push_str(&format!(" Init Binary: {}\n", s(&v["InitBinary"])));
    let sec: Vec<String> = v["SecurityOptions"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    if !sec.is_empty() {
        out.push_str(" Security Options:\n");
        for o in sec {
            for (n, part) in o.split(',').enumerate() {
                let part = part.strip_prefix("name=").unwrap_or(part);
                if n == 0 {
                    out.push_str(&format!("  {part}\n"));
                } else if let Some((k, val)) = part.split_once('=') {
                    let mut title = k.to_string();
                    if let Some(f) = title.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    out.push_str(&format!("   {title}: {val}\n"));
                }
            }
        }
    }
    out.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n Experimental: {}\n Insecure Registries:\n",
        s(&v["KernelVersion"]),
        s(&v["OperatingSystem"]),
        s(&v["OSType"]),
        s(&v["Architecture"]),
        i("NCPU"),
        bytes_size(i("MemTotal") as f64),
        s(&v["Name"]),
        s(&v["ID"]),
        s(&v["DockerRootDir"]),
        v["Debug"].as_bool().unwrap_or(false),
        v["ExperimentalBuild"].as_bool().unwrap_or(false),
    ));
    for r in v["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("  {}\n", s(r)));
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    print!("{out}");
    let warnings: Vec<String> = v["Warnings"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(())
}

pub async fn df(c: &Client, a: DfArgs) -> Result<()> {
    const DEFAULT: &str =
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
    let headers: &[(&str, &str)] = &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    let v: Value = c.get_json("/system/df").await?;
    let fmt_text = match a.format.as_deref() {
        Some("json") => "{{json .}}".to_string(),
        Some(f) if !f.is_empty() => f.to_string(),
        _ => DEFAULT.to_string(),
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    let pct = |recl: i64, total: i64| {
        if total > 0 {
            format!("{} ({}%)", human_size(recl), recl * 100 / total)
        } else {
            human_size(recl)
        }
    };
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let img_total = v["LayersSize"].as_i64().unwrap_or(0);
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let used: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .map(|i| {
            let size = i["Size"].as_i64().unwrap_or(0);
            let shared = i["SharedSize"].as_i64().unwrap_or(-1);
            if shared >= 0 {
                size - shared
            } else {
                size
            }
        })
        .sum();
    let img_recl = (img_total - used).max(0);
    let ctrs = v["Containers"].as_array().cloned().unwrap_or_default();
    let c_active = ctrs
        .iter()
        .filter(|c| c["State"].as_str() == Some("running"))
        .count();
    let c_size: i64 = ctrs.iter().map(|c| c["SizeRw"].as_i64().unwrap_or(0)).sum();
    let c_recl: i64 = ctrs
        .iter()
        .filter(|c| c["State"].as_str() != Some("running"))
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    let v_active = vols
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let v_size: i64 = vols
        .iter()
        .map(|x| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let v_recl: i64 = vols
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) <= 0)
        .map(|x| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let bc = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let bc_size: i64 = bc.iter().map(|x| x["Size"].as_i64().unwrap_or(0)).sum();
    let rows = vec![
        row(vec![
            ("Type", "Images".into()),
            ("TotalCount", images.len().to_string()),
            ("Active", img_active.to_string()),
            ("Size", human_size(img_total)),
            ("Reclaimable", pct(img_recl, img_total)),
        ]),
        row(vec![
            ("Type", "Containers".into()),
            ("TotalCount", ctrs.len().to_string()),
            ("Active", c_active.to_string()),
            ("Size", human_size(c_size)),
            ("Reclaimable", pct(c_recl, c_size)),
        ]),
        row(vec![
            ("Type", "Local Volumes".into()),
            ("TotalCount", vols.len().to_string()),
            ("Active", v_active.to_string()),
            ("Size", human_size(v_size)),
            ("Reclaimable", pct(v_recl, v_size)),
        ]),
        row(vec![
            ("Type", "Build Cache".into()),
            ("TotalCount", bc.len().to_string()),
            ("Active", "0".into()),
            ("Size", human_size(bc_size)),
            ("Reclaimable", human_size(bc_size)),
        ]),
    ];
    let mut out = std::io::stdout().lock();
    fmt.write_rows(&mut out, headers, &rows)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    Ok(())
}

pub async fn prune(c: &Client, a: SystemPruneArgs) -> Result<()> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str("  - all images without at least one container associated to them\n");
    } else {
        warning.push_str("  - all dangling images\n");
    }
    if !super::confirm(warning.trim_end(), a.force) {
        return Ok(());
    }
    let f = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let mut total = 0i64;
    let cv: Value = c
        .json(
            Method::POST,
            &Query::new()
                .opt("filters", f.clone())
                .path("/containers/prune"),
            None,
        )
        .await?;
    print_list(&cv, "ContainersDeleted", "Deleted Containers:");
    total += cv["SpaceReclaimed"].as_i64().unwrap_or(0);
    if a.volumes {
        let vv: Value = c
            .json(
                Method::POST,
                &Query::new()
                    .opt("filters", f.clone())
                    .path("/volumes/prune"),
                None,
            )
            .await?;
        print_list(&vv, "VolumesDeleted", "Deleted Volumes:");
        total += vv["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    let mut filt = a.filter.clone();
    filt.push(format!("dangling={}", !a.all));
    let fi = opts::filters(&filt).map_err(|e| Exit::msg(125, e.to_string()))?;
    let iv: Value = c
        .json(
            Method::POST,
            &Query::new().opt("filters", fi).path("/images/prune"),
            None,
        )
        .await?;
    let items = iv["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in items {
            if let Some(u) = i["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = i["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    total += iv["SpaceReclaimed"].as_i64().unwrap_or(0);
    println!("Total reclaimed space: {}", human_size(total));
    Ok(())
}

fn print_list(v: &Value, key: &str, title: &str) {
    let items: Vec<&str> = v[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !items.is_empty() {
        println!("{title}");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

/// RFC 3339 with nanoseconds, as docker's events print (UTC).
fn event_time(nanos: i64, secs: i64) -> String {
    let ns = if nanos > 0 {
        nanos
    } else {
        secs * 1_000_000_000
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    humantime::format_rfc3339_nanos(t).to_string()
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<()> {
    let f = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let conv = |v: &Option<String>| -> Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(s) => super::container::time_arg(s)
                .map(Some)
                .ok_or_else(|| Exit::msg(1, format!("invalid time: {s}")).into()),
        }
    };
    let q = Query::new()
        .opt("since", conv(&a.since)?)
        .opt("until", conv(&a.until)?)
        .opt("filters", f);
    let fmt = match a.format.as_deref() {
        Some("json") => Some(Format::parse("{{json .}}", "")),
        Some(f) if !f.is_empty() => Some(Format::parse(f, "")),
        _ => None,
    }
    .transpose()
    .map_err(|e| Exit::msg(1, e.to_string()))?;
    let path = q.path("/events");
    let resp = c.get(&path).await?;
    let mut lines = JsonLines::new(resp, &path);
    while let Some(ev) = lines.next::<Value>().await? {
        let line = match &fmt {
            Some(f) => f
                .render(&from_json(&ev))
                .map_err(|e| Exit::msg(1, e.to_string()))?,
            None => {
                let mut attrs: Vec<(String, String)> = ev["Actor"]["Attributes"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                    .unwrap_or_default();
                attrs.sort();
                let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut l = format!(
                    "{} {} {} {}",
                    event_time(
                        ev["timeNano"].as_i64().unwrap_or(0),
                        ev["time"].as_i64().unwrap_or(0)
                    ),
                    s(&ev["Type"]),
                    s(&ev["Action"]),
                    s(&ev["Actor"]["ID"]),
                );
                if !attrs.is_empty() {
                    l.push_str(&format!(" ({})", attrs.join(", ")));
                }
                l
            }
        };
        println!("{line}");
        std::io::stdout().flush()?;
    }
    Ok(())
}
