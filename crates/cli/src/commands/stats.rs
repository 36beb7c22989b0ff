//! `stats`: one sample per container (`--no-stream`) or a live table redrawn as samples arrive.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use berth_api::models::ContainerSummary;
use serde_json::Value;

use crate::cli::StatsArgs;
use crate::client::{enc, Client, JsonLines, Query};
use crate::format::{bytes_size, human_size_prec, row, short_id, Format};
use crate::Exit;

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// The figures docker computes from one stats sample.
pub fn sample_row(container: &str, v: &Value, trunc: bool) -> gtmpl_value::Value {
    let f = |p: &[&str]| -> f64 {
        let mut x = v;
        for k in p {
            x = &x[*k];
        }
        x.as_f64().unwrap_or(0.0)
    };
    let cpu_delta = f(&["cpu_stats", "cpu_usage", "total_usage"])
        - f(&["precpu_stats", "cpu_usage", "total_usage"]);
    let sys_delta =
        f(&["cpu_stats", "system_cpu_usage"]) - f(&["precpu_stats", "system_cpu_usage"]);
    let mut online = f(&["cpu_stats", "online_cpus"]);
    if online == 0.0 {
        online = v["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = f(&["memory_stats", "usage"]);
    let stats = &v["memory_stats"]["stats"];
    let cache = stats["total_inactive_file"]
        .as_f64()
        .filter(|c| *c < usage)
        .or_else(|| stats["inactive_file"].as_f64().filter(|c| *c < usage))
        .unwrap_or(0.0);
    let mem = usage - cache;
    let limit = f(&["memory_stats", "limit"]);
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(n) = v["networks"].as_object() {
        for i in n.values() {
            rx += i["rx_bytes"].as_f64().unwrap_or(0.0);
            tx += i["tx_bytes"].as_f64().unwrap_or(0.0);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => wr += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = v["id"].as_str().unwrap_or(container).to_string();
    let name = v["name"].as_str().unwrap_or("").trim_start_matches('/');
    row(vec![
        ("Container", container.to_string()),
        ("ID", if trunc { short_id(&id) } else { id }),
        ("Name", name.to_string()),
        ("CPUPerc", format!("{cpu:.2}%")),
        (
            "MemUsage",
            format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        ),
        ("MemPerc", format!("{mem_perc:.2}%")),
        (
            "NetIO",
            format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        ),
        (
            "BlockIO",
            format!("{} / {}", human_size_prec(rd, 3), human_size_prec(wr, 3)),
        ),
        (
            "PIDs",
            format!("{}", v["pids_stats"]["current"].as_u64().unwrap_or(0)),
        ),
    ])
}

pub async fn stats(c: &Client, a: StatsArgs) -> Result<()> {
    let fmt_text = match a.format.as_deref() {
        Some("json") => "{{json .}}".to_string(),
        Some(f) if !f.is_empty() => f.to_string(),
        _ => DEFAULT.to_string(),
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    let names: Vec<String> = if a.containers.is_empty() {
        let list: Vec<ContainerSummary> = c
            .get_json(&Query::new().flag("all", a.all).path("/containers/json"))
            .await?;
        list.iter().filter_map(|s| s.id.clone()).collect()
    } else {
        a.containers.clone()
    };
    let trunc = !a.no_trunc;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut failed = false;
        for n in &names {
            let path = Query::new()
                .add("stream", 0)
                .path(&format!("/containers/{}/stats", enc(n)));
            match c.get_json::<Value>(&path).await {
                Ok(v) => rows.push(sample_row(n, &v, trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        let mut out = std::io::stdout().lock();
        fmt.write_rows(&mut out, HEADERS, &rows)
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        if failed {
            return Err(Exit::code(1).into());
        }
        return Ok(());
    }
    let latest: Arc<Mutex<BTreeMap<usize, gtmpl_value::Value>>> = Arc::default();
    for (i, n) in names.iter().enumerate() {
        let c = c.clone();
        let n = n.clone();
        let latest = latest.clone();
        tokio::spawn(async move {
            let path = Query::new()
                .add("stream", 1)
                .path(&format!("/containers/{}/stats", enc(&n)));
            let Ok(resp) = c.get(&path).await else {
                return;
            };
            let mut lines = JsonLines::new(resp, &path);
            while let Ok(Some(v)) = lines.next::<Value>().await {
                if let Ok(mut l) = latest.lock() {
                    l.insert(i, sample_row(&n, &v, trunc));
                }
            }
            if let Ok(mut l) = latest.lock() {
                l.remove(&i);
            }
        });
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tick.tick().await;
        let rows: Vec<_> = latest
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        let mut buf = Vec::new();
        fmt.write_rows(&mut buf, HEADERS, &rows)
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        let mut out = std::io::stdout().lock();
        // Clear the screen and redraw, as docker's live table does.
        out.write_all(b"\x1b[2J\x1b[H")?;
        out.write_all(&buf)?;
        out.flush()?;
    }
}
