//! `GET /containers/{id}/stats`: samples from the container's cgroups in Docker's shape.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerPidsStats, ContainerStatsResponse, ContainerThrottlingData,
};

use crate::error::{ApiError, ApiResult};
use crate::server::{json_line, json_stream};
use crate::state::{Container, Daemon};

/// Host CPU time in nanoseconds, from the first line of /proc/stat (Docker's system_cpu_usage).
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// One sample of the container.
pub fn sample(
    rec_id: &str,
    name: &str,
    s: &berth_runtime::cgroups::Stats,
) -> ContainerStatsResponse {
    let cpu = ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(s.cpu.usage.total),
            percpu_usage: Some(s.cpu.usage.percpu.clone()),
            usage_in_kernelmode: Some(s.cpu.usage.kernel),
            usage_in_usermode: Some(s.cpu.usage.user),
        }),
        system_cpu_usage: Some(system_cpu_ns()),
        online_cpus: Some(online_cpus()),
        throttling_data: Some(ContainerThrottlingData {
            periods: Some(s.cpu.throttling.periods),
            throttled_periods: Some(s.cpu.throttling.throttled_periods),
            throttled_time: Some(0),
        }),
    };
    let mut mstats: HashMap<String, u64> = s.memory.raw.clone().into_iter().collect();
    // docker stats subtracts this (v1 name) or inactive_file (v2 name).
    if let Some(v) = s.memory.raw.get("total_inactive_file") {
        mstats.insert("inactive_file".into(), *v);
    }
    let limit = if s.memory.usage.limit == 0 || s.memory.usage.limit >= (1 << 62) {
        host_mem()
    } else {
        s.memory.usage.limit
    };
    let memory = ContainerMemoryStats {
        usage: Some(s.memory.usage.usage),
        max_usage: Some(s.memory.usage.max),
        stats: Some(mstats),
        failcnt: Some(s.memory.usage.failcnt),
        limit: Some(limit),
        ..Default::default()
    };
    let entries = |v: &[berth_runtime::cgroups::BlkioEntry]| -> Vec<ContainerBlkioStatEntry> {
        v.iter()
            .map(|e| ContainerBlkioStatEntry {
                major: Some(e.major),
                minor: Some(e.minor),
                op: Some(e.op.clone()),
                value: Some(e.value),
            })
            .collect()
    };
    ContainerStatsResponse {
        id: Some(rec_id.to_string()),
        name: Some(format!("/{name}")),
        os_type: Some("linux".into()),
        read: Some(crate::util::now_rfc3339()),
        cpu_stats: Some(cpu),
        memory_stats: Some(memory),
        networks: Some(HashMap::new()),
        pids_stats: Some(ContainerPidsStats {
            current: Some(s.pids.current),
            limit: Some(if s.pids.limit == 0 {
                u64::MAX
            } else {
                s.pids.limit
            }),
        }),
        blkio_stats: Some(ContainerBlkioStats {
            io_service_bytes_recursive: Some(entries(&s.blkio.io_service_bytes_recursive)),
            ..Default::default()
        }),
        num_procs: Some(0),
        storage_stats: None,
        preread: Some(crate::util::ZERO_TIME.into()),
        precpu_stats: Some(ContainerCpuStats::default()),
    }
}

fn host_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// A zeroed sample, as Docker sends for a container that is not running.
fn empty(rec_id: &str, name: &str) -> ContainerStatsResponse {
    ContainerStatsResponse {
        id: Some(rec_id.to_string()),
        name: Some(format!("/{name}")),
        read: Some(crate::util::ZERO_TIME.into()),
        preread: Some(crate::util::ZERO_TIME.into()),
        cpu_stats: Some(ContainerCpuStats::default()),
        precpu_stats: Some(ContainerCpuStats::default()),
        memory_stats: Some(ContainerMemoryStats::default()),
        pids_stats: Some(ContainerPidsStats::default()),
        ..Default::default()
    }
}

async fn take(d: &Arc<Daemon>, c: &Arc<Container>) -> ContainerStatsResponse {
    let name = c.lock().name.clone();
    if !c.status().is_running() {
        return empty(&c.id, &name);
    }
    match crate::lifecycle::cgroup_stats(d, c).await {
        Ok(s) => sample(&c.id, &name, &s),
        Err(_) => empty(&c.id, &name),
    }
}

pub fn stats_response(
    d: Arc<Daemon>,
    c: Arc<Container>,
    stream: bool,
    one_shot: bool,
) -> ApiResult<axum::response::Response> {
    if one_shot && stream {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut prev = take(&d, &c).await;
        if !stream {
            if !one_shot {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut cur = take(&d, &c).await;
                cur.precpu_stats = prev.cpu_stats.clone();
                cur.preread = prev.read.clone();
                prev = cur;
            }
            let _ = tx.send(Ok(json_line(&prev))).await;
            return;
        }
        if tx.send(Ok(json_line(&prev))).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut cur = take(&d, &c).await;
            cur.precpu_stats = prev.cpu_stats.clone();
            cur.preread = prev.read.clone();
            if tx.send(Ok(json_line(&cur))).await.is_err() {
                return;
            }
            if !c.status().is_running() && c.lifecycle.borrow().removed {
                return;
            }
            prev = cur;
        }
    });
    Ok(json_stream(crate::routes::system::tokio_stream(rx)))
}
