//! Container verbs that are one API call per container, plus logs, top, port, diff, update,
//! commit and prune.

use std::io::Write;

use anyhow::Result;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{CommitArgs, KillArgs, LogsArgs, PruneArgs, RmArgs, StopArgs, UpdateArgs};
use crate::client::{enc, Client, Query};
use crate::format::human_size;
use crate::opts;
use crate::Exit;

pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> Result<()> {
    let verb = if restart { "restart" } else { "stop" };
    super::for_each(&a.containers, |n| {
        let q = Query::new()
            .opt("t", a.time)
            .opt("signal", a.signal.as_deref());
        let path = q.path(&format!("/containers/{}/{verb}", enc(&n)));
        async move { c.call(Method::POST, &path, None).await.map(|_| ()) }
    })
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<()> {
    super::for_each(&a.containers, |n| {
        let path = Query::new()
            .opt("signal", a.signal.as_deref())
            .path(&format!("/containers/{}/kill", enc(&n)));
        async move { c.call(Method::POST, &path, None).await.map(|_| ()) }
    })
    .await
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    super::for_each(&a.containers, |n| {
        let path = Query::new()
            .flag("force", a.force)
            .flag("v", a.volumes)
            .flag("link", a.link)
            .path(&format!("/containers/{}", enc(&n)));
        async move { c.call(Method::DELETE, &path, None).await.map(|_| ()) }
    })
    .await
}

/// pause, unpause.
pub async fn simple(c: &Client, names: Vec<String>, verb: &str) -> Result<()> {
    super::for_each(&names, |n| {
        let path = format!("/containers/{}/{verb}", enc(&n));
        async move { c.call(Method::POST, &path, None).await.map(|_| ()) }
    })
    .await
}

pub async fn wait(c: &Client, names: Vec<String>) -> Result<()> {
    let mut failed = false;
    for n in &names {
        match c
            .json::<Value>(Method::POST, &format!("/containers/{}/wait", enc(n)), None)
            .await
        {
            Ok(v) => println!("{}", v["StatusCode"].as_i64().unwrap_or(0)),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::code(1).into());
    }
    Ok(())
}

pub async fn rename(c: &Client, old: &str, new: &str) -> Result<()> {
    if new.trim().is_empty() {
        return Err(Exit::msg(1, "Error: neither old nor new names may be empty").into());
    }
    let path = Query::new()
        .add("name", new)
        .path(&format!("/containers/{}/rename", enc(old)));
    c.call(Method::POST, &path, None).await?;
    Ok(())
}

/// A time for `--since`/`--until`: a unix timestamp, an RFC 3339 time, or a Go duration back
/// from now.
pub fn time_arg(s: &str) -> Option<String> {
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Some(s.to_string());
    }
    if let Some(ns) = opts::parse_go_duration(s) {
        let secs = crate::format::now_secs() - ns / 1_000_000_000;
        return Some(secs.to_string());
    }
    crate::format::parse_rfc3339(s).map(|t| t.to_string())
}

pub async fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let info: Value = c
        .get_json(&format!("/containers/{}/json", enc(&a.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = Query::new()
        .add("stdout", 1)
        .add("stderr", 1)
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps)
        .flag("details", a.details)
        .add("tail", &a.tail);
    for (k, v) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = v {
            let t = time_arg(v).ok_or_else(|| {
                Exit::msg(1, format!("invalid value for \"{k}\": failed to parse value as time or duration: \"{v}\""))
            })?;
            q = q.add(k, t);
        }
    }
    let path = q.path(&format!("/containers/{}/logs", enc(&a.container)));
    let resp = c.get(&path).await?;
    let mut body = crate::client::BodyReader::new(resp, &path);
    let mut demux = berth_api::stream::Demuxer::default();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while let Some(chunk) = body.chunk().await? {
        if tty {
            let mut o = stdout.lock();
            o.write_all(&chunk)?;
            o.flush()?;
            continue;
        }
        demux.push(&chunk);
        while let Ok(Some((s, d))) = demux.next_frame() {
            if s == berth_api::stream::STDERR {
                let mut e = stderr.lock();
                e.write_all(&d)?;
                e.flush()?;
            } else {
                let mut o = stdout.lock();
                o.write_all(&d)?;
                o.flush()?;
            }
        }
    }
    Ok(())
}

pub async fn top(c: &Client, container: &str, ps_args: &[String]) -> Result<()> {
    let q = if ps_args.is_empty() {
        Query::new()
    } else {
        Query::new().add("ps_args", ps_args.join(" "))
    };
    let v: Value = c
        .get_json(&q.path(&format!("/containers/{}/top", enc(container))))
        .await?;
    let mut tw = crate::format::go_tabwriter(20, 3);
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    writeln!(tw, "{}", titles.join("\t"))?;
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cols: Vec<&str> = p
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        writeln!(tw, "{}", cols.join("\t"))?;
    }
    tw.flush()?;
    let out = tw.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::io::stdout().write_all(&out)?;
    Ok(())
}

pub async fn port(c: &Client, container: &str, private: Option<String>) -> Result<()> {
    let info: Value = c
        .get_json(&format!("/containers/{}/json", enc(container)))
        .await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    let want = private.map(|p| {
        if p.contains('/') {
            p
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for k in keys {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k].as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
            let hp = b["HostPort"].as_str().unwrap_or("");
            found = true;
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{k} -> {ip}:{hp}");
            }
        }
    }
    if let Some(w) = want {
        if !found {
            return Err(Exit::msg(
                1,
                format!("Error: No public port '{w}' published for {container}"),
            )
            .into());
        }
    }
    Ok(())
}

pub async fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let mut body = serde_json::Map::new();
    for (k, v) in [
        ("Memory", a.memory),
        ("MemorySwap", a.memory_swap),
        ("MemoryReservation", a.memory_reservation),
        ("NanoCpus", a.cpus),
        ("CpuShares", a.cpu_shares),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        body.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(r) = &a.restart {
        body.insert(
            "RestartPolicy".into(),
            opts::restart(r).map_err(|e| Exit::msg(125, e.to_string()))?,
        );
    }
    if body.is_empty() {
        return Err(Exit::msg(
            1,
            "you must provide one or more flags when using this command",
        )
        .into());
    }
    let body = Value::Object(body);
    let mut failed = false;
    for n in &a.containers {
        match c
            .json::<Value>(
                Method::POST,
                &format!("/containers/{}/update", enc(n)),
                Some(&body),
            )
            .await
        {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    if let Some(w) = w.as_str() {
                        eprintln!("{w}");
                    }
                }
                println!("{n}");
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::code(1).into());
    }
    Ok(())
}

pub async fn diff(c: &Client, container: &str) -> Result<()> {
    let v: Value = c
        .get_json(&format!("/containers/{}/changes", enc(container)))
        .await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<()> {
    let mut q = Query::new()
        .add("container", &a.container)
        .add("pause", if a.pause { "1" } else { "0" })
        .opt("author", a.author.as_deref())
        .opt("comment", a.message.as_deref());
    if let Some(r) = &a.repository {
        let (repo, tag) = opts::split_ref(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    let v: Value = c
        .json(Method::POST, &q.path("/commit"), Some(&json!({})))
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !super::confirm("WARNING! This will remove all stopped containers.", a.force) {
        return Ok(());
    }
    let f = opts::filters(&a.filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let v: Value = c
        .json(
            Method::POST,
            &Query::new().opt("filters", f).path("/containers/prune"),
            None,
        )
        .await?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:");
    Ok(())
}

/// Prints a prune answer as docker does: the list, then "Total reclaimed space".
pub fn print_pruned(v: &Value, key: &str, title: &str) {
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
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
}
