//! Resource usage of a container's cgroup, in the JSON shape of the `data` object that
//! `runc events --stats` prints (field names as runc spells them, zero counters left out where
//! runc leaves them out). The parsers and the assembly take file contents through a closure, so
//! they are tested with fake files for each layout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::Target;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Statistics of one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Keyed by page size as the kernel names it in cgroup files ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(rename = "percpu_kernel", skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(rename = "percpu_user", skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory+swap, as v1's memsw counts it (v2 numbers are converted to that meaning).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat`, as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Bytes; a limit of `u64::MAX` means none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when there is no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlkioStats {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HugetlbStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// A single-value file: a number, or "max" (`u64::MAX`). A negative number (v1's `-1`) is
/// unlimited too.
pub(crate) fn parse_value(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" || text.starts_with('-') {
        return Some(u64::MAX);
    }
    text.parse().ok()
}

/// A flat-keyed file (`memory.stat`, `cpu.stat`, `memory.events`, `memory.oom_control`):
/// "key value" lines; lines that do not parse are skipped.
pub(crate) fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let key = fields.next()?;
            let value = fields.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn parse_device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A v1 blkio file: "8:0 Read 4096" lines (or "8:0 4096" for the op-less ones), with a "Total"
/// line at the end that is left out.
pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (major, minor) = parse_device(fields.first()?)?;
            let (op, value) = match fields.as_slice() {
                [_, op, value] => (op.to_string(), value.parse().ok()?),
                [_, value] => (String::new(), value.parse().ok()?),
                _ => return None,
            };
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" lines, as v1's
/// service-bytes and serviced entries.
pub(crate) fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(parse_device) else {
            continue;
        };
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// `hugepages-2048kB` (a directory of /sys/kernel/mm/hugepages) as the cgroup files name the
/// size: `2MB`.
pub(crate) fn hugepage_size_name(dir_name: &str) -> Option<String> {
    let kb: u64 = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    let name = if kb >= 1 << 20 && kb % (1 << 20) == 0 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb % (1 << 10) == 0 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    };
    Some(name)
}

/// How the statistics are read: which hierarchy serves each controller, and a reader that
/// returns a file's contents (`None` when it does not exist).
pub(crate) struct Sources<'a> {
    /// The v1 hierarchy of a controller, or the unified directory, or `None` if neither.
    pub route: &'a dyn Fn(&'static str) -> Option<Target>,
    pub read: &'a dyn Fn(Target, &str) -> Option<String>,
    /// Huge page sizes the machine has, as cgroup file names spell them.
    pub hugepage_sizes: &'a [String],
    /// `sysconf(_SC_CLK_TCK)`: the unit of v1's `cpuacct.stat`.
    pub clock_ticks: u64,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("hugepage_sizes", &self.hugepage_sizes)
            .finish()
    }
}

impl Sources<'_> {
    fn value(&self, target: Target, file: &str) -> Option<u64> {
        (self.read)(target, file).and_then(|t| parse_value(&t))
    }

    fn keyed(&self, target: Target, file: &str) -> BTreeMap<String, u64> {
        (self.read)(target, file)
            .map(|t| parse_keyed(&t))
            .unwrap_or_default()
    }
}

fn v1_entry(s: &Sources<'_>, target: Target, prefix: &str) -> MemoryEntry {
    let get = |suffix: &str| s.value(target, &format!("{prefix}.{suffix}")).unwrap_or(0);
    MemoryEntry {
        limit: get("limit_in_bytes"),
        usage: get("usage_in_bytes"),
        max: get("max_usage_in_bytes"),
        failcnt: get("failcnt"),
    }
}

/// Gather the statistics. Files that do not exist leave their numbers at zero: which ones
/// exist depends on the kernel, its options and the controllers enabled.
pub(crate) fn collect(s: &Sources<'_>) -> Stats {
    let mut stats = Stats::default();
    let ns_per_tick = 1_000_000_000u64.checked_div(s.clock_ticks).unwrap_or(0);

    match (s.route)("cpuacct") {
        Some(t @ Target::V1(_)) => {
            let usage = &mut stats.cpu.usage;
            usage.total = s.value(t, "cpuacct.usage").unwrap_or(0);
            usage.percpu = (s.read)(t, "cpuacct.usage_percpu")
                .map(|v| parse_list(&v))
                .unwrap_or_default();
            usage.percpu_user = (s.read)(t, "cpuacct.usage_percpu_user")
                .map(|v| parse_list(&v))
                .unwrap_or_default();
            usage.percpu_kernel = (s.read)(t, "cpuacct.usage_percpu_sys")
                .map(|v| parse_list(&v))
                .unwrap_or_default();
            let ticks = s.keyed(t, "cpuacct.stat");
            usage.user = ticks
                .get("user")
                .copied()
                .unwrap_or(0)
                .saturating_mul(ns_per_tick);
            usage.kernel = ticks
                .get("system")
                .copied()
                .unwrap_or(0)
                .saturating_mul(ns_per_tick);
        }
        Some(Target::Unified) => {
            let stat = s.keyed(Target::Unified, "cpu.stat");
            let us = |key: &str| stat.get(key).copied().unwrap_or(0).saturating_mul(1000);
            stats.cpu.usage.total = us("usage_usec");
            stats.cpu.usage.user = us("user_usec");
            stats.cpu.usage.kernel = us("system_usec");
        }
        None => {}
    }
    if let Some(t) = (s.route)("cpu") {
        let stat = s.keyed(t, "cpu.stat");
        let get = |key: &str| stat.get(key).copied().unwrap_or(0);
        stats.cpu.throttling.periods = get("nr_periods");
        stats.cpu.throttling.throttled_periods = get("nr_throttled");
        stats.cpu.throttling.throttled_time = match t {
            Target::V1(_) => get("throttled_time"),
            Target::Unified => get("throttled_usec").saturating_mul(1000),
        };
    }

    match (s.route)("memory") {
        Some(t @ Target::V1(_)) => {
            let m = &mut stats.memory;
            m.usage = v1_entry(s, t, "memory");
            m.swap = v1_entry(s, t, "memory.memsw");
            m.kernel = v1_entry(s, t, "memory.kmem");
            m.kernel_tcp = v1_entry(s, t, "memory.kmem.tcp");
            m.raw = s.keyed(t, "memory.stat");
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
        }
        Some(t @ Target::Unified) => {
            let m = &mut stats.memory;
            let events = s.keyed(t, "memory.events");
            m.usage = MemoryEntry {
                limit: s.value(t, "memory.max").unwrap_or(u64::MAX),
                usage: s.value(t, "memory.current").unwrap_or(0),
                max: s.value(t, "memory.peak").unwrap_or(0),
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            // v2 counts swap alone; report memory+swap like v1's memsw.
            if let Some(swap) = s.value(t, "memory.swap.current") {
                let limit = s.value(t, "memory.swap.max").unwrap_or(u64::MAX);
                m.swap = MemoryEntry {
                    limit: if limit == u64::MAX || m.usage.limit == u64::MAX {
                        u64::MAX
                    } else {
                        limit.saturating_add(m.usage.limit)
                    },
                    usage: swap.saturating_add(m.usage.usage),
                    max: 0,
                    failcnt: s
                        .keyed(t, "memory.swap.events")
                        .get("max")
                        .copied()
                        .unwrap_or(0),
                };
            }
            m.raw = s.keyed(t, "memory.stat");
            m.cache = m.raw.get("file").copied().unwrap_or(0);
        }
        None => {}
    }

    if let Some(t) = (s.route)("pids") {
        stats.pids.current = s.value(t, "pids.current").unwrap_or(0);
        stats.pids.limit = s
            .value(t, "pids.max")
            .filter(|v| *v != u64::MAX)
            .unwrap_or(0);
    }

    match (s.route)("blkio") {
        Some(t @ Target::V1(_)) => {
            let list = |file: &str| {
                (s.read)(t, file)
                    .map(|v| parse_blkio_v1(&v))
                    .unwrap_or_default()
            };
            // The CFQ files, then BFQ's, then the throttling layer's, which counts every device.
            let b = &mut stats.blkio;
            for prefix in ["blkio", "blkio.bfq", "blkio.throttle"] {
                b.io_service_bytes_recursive =
                    list(&format!("{prefix}.io_service_bytes_recursive"));
                b.io_serviced_recursive = list(&format!("{prefix}.io_serviced_recursive"));
                if !b.io_service_bytes_recursive.is_empty() || !b.io_serviced_recursive.is_empty() {
                    break;
                }
            }
            b.io_queued_recursive = list("blkio.io_queued_recursive");
            b.io_service_time_recursive = list("blkio.io_service_time_recursive");
            b.io_wait_time_recursive = list("blkio.io_wait_time_recursive");
            b.io_merged_recursive = list("blkio.io_merged_recursive");
            b.io_time_recursive = list("blkio.time_recursive");
            b.sectors_recursive = list("blkio.sectors_recursive");
        }
        Some(t @ Target::Unified) => {
            if let Some(text) = (s.read)(t, "io.stat") {
                let (bytes, ios) = parse_io_stat(&text);
                stats.blkio.io_service_bytes_recursive = bytes;
                stats.blkio.io_serviced_recursive = ios;
            }
        }
        None => {}
    }

    if let Some(t) = (s.route)("hugetlb") {
        for size in s.hugepage_sizes {
            let entry = match t {
                Target::V1(_) => {
                    let get = |suffix: &str| s.value(t, &format!("hugetlb.{size}.{suffix}"));
                    let Some(usage) = get("usage_in_bytes") else {
                        continue;
                    };
                    HugetlbStats {
                        usage,
                        max: get("max_usage_in_bytes").unwrap_or(0),
                        failcnt: get("failcnt").unwrap_or(0),
                    }
                }
                Target::Unified => {
                    let Some(usage) = s.value(t, &format!("hugetlb.{size}.current")) else {
                        continue;
                    };
                    let events = s.keyed(t, &format!("hugetlb.{size}.events"));
                    HugetlbStats {
                        usage,
                        max: 0,
                        failcnt: events.get("max").copied().unwrap_or(0),
                    }
                }
            };
            stats.hugetlb.insert(size.clone(), entry);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sources_from<'a>(
        files: &'a HashMap<(Target, &'static str), &'static str>,
    ) -> impl Fn(Target, &str) -> Option<String> + 'a {
        move |t, f| {
            files
                .iter()
                .find(|((ft, ff), _)| *ft == t && *ff == f)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_value("max\n"), Some(u64::MAX));
        assert_eq!(parse_value("-1"), Some(u64::MAX));
        assert_eq!(parse_value("42\n"), Some(42));
        assert_eq!(parse_value("x"), None);
        let keyed = parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbad\n");
        assert_eq!(keyed.get("oom_kill"), Some(&3));
        assert_eq!(keyed.len(), 3);
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(
            v1[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(parse_blkio_v1("8:16 77\n")[0].op, "");
        let (bytes, ios) = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(bytes.len(), 3);
        assert_eq!(
            bytes[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 10
            }
        );
        assert_eq!(ios[1].value, 2);
        assert_eq!(
            hugepage_size_name("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(hugepage_size_name("other"), None);
    }

    #[test]
    fn collects_v1() {
        let mem = Target::V1("memory");
        let cpuacct = Target::V1("cpuacct");
        let files: HashMap<(Target, &'static str), &'static str> = [
            ((cpuacct, "cpuacct.usage"), "5000000\n"),
            ((cpuacct, "cpuacct.usage_percpu"), "3000000 2000000 \n"),
            ((cpuacct, "cpuacct.stat"), "user 3\nsystem 2\n"),
            (
                (Target::V1("cpu"), "cpu.stat"),
                "nr_periods 10\nnr_throttled 2\nthrottled_time 500\n",
            ),
            ((mem, "memory.usage_in_bytes"), "4096\n"),
            ((mem, "memory.limit_in_bytes"), "67108864\n"),
            ((mem, "memory.max_usage_in_bytes"), "8192\n"),
            ((mem, "memory.failcnt"), "1\n"),
            (
                (mem, "memory.memsw.limit_in_bytes"),
                "9223372036854771712\n",
            ),
            ((mem, "memory.stat"), "cache 100\nrss 200\n"),
            ((Target::V1("pids"), "pids.current"), "3\n"),
            ((Target::V1("pids"), "pids.max"), "max\n"),
            (
                (
                    Target::V1("blkio"),
                    "blkio.throttle.io_service_bytes_recursive",
                ),
                "8:0 Read 1\nTotal 1\n",
            ),
        ]
        .into_iter()
        .collect();
        let read = sources_from(&files);
        let route = |c: &'static str| Some(Target::V1(c));
        let sizes = vec!["2MB".to_string()];
        let stats = collect(&Sources {
            route: &route,
            read: &read,
            hugepage_sizes: &sizes,
            clock_ticks: 100,
        });
        assert_eq!(stats.cpu.usage.total, 5_000_000);
        assert_eq!(stats.cpu.usage.percpu, vec![3_000_000, 2_000_000]);
        assert_eq!(stats.cpu.usage.user, 30_000_000);
        assert_eq!(stats.cpu.usage.kernel, 20_000_000);
        assert_eq!(stats.cpu.throttling.throttled_time, 500);
        assert_eq!(stats.memory.usage.limit, 67_108_864);
        assert_eq!(stats.memory.usage.max, 8192);
        assert_eq!(stats.memory.cache, 100);
        assert_eq!(stats.pids.current, 3);
        assert_eq!(stats.pids.limit, 0);
        assert_eq!(stats.blkio.io_service_bytes_recursive.len(), 1);
        assert!(stats.hugetlb.is_empty(), "no hugetlb files, no entry");

        let json = serde_json::to_value(&stats).expect("json");
        assert_eq!(json["cpu"]["usage"]["total"], 5_000_000);
        assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(json["memory"]["usage"]["limit"], 67_108_864);
        assert_eq!(json["memory"]["raw"]["rss"], 200);
        assert_eq!(json["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert!(
            json["pids"].get("limit").is_none(),
            "omitted like runc's omitempty"
        );
        assert!(json["memory"].get("kernelTCP").is_some());
        let back: Stats = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, stats);
    }

    #[test]
    fn collects_v2() {
        let u = Target::Unified;
        let files: HashMap<(Target, &'static str), &'static str> = [
            ((u, "cpu.stat"), "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n"),
            ((u, "memory.current"), "1000\n"),
            ((u, "memory.max"), "max\n"),
            ((u, "memory.events"), "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
            ((u, "memory.swap.current"), "10\n"),
            ((u, "memory.swap.max"), "max\n"),
            ((u, "memory.stat"), "anon 1\nfile 2\n"),
            ((u, "pids.current"), "2\n"),
            ((u, "pids.max"), "10\n"),
            ((u, "io.stat"), "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ((u, "hugetlb.2MB.current"), "0\n"),
            ((u, "hugetlb.2MB.events"), "max 3\n"),
        ]
        .into_iter()
        .collect();
        let read = sources_from(&files);
        let route = |_c: &'static str| Some(Target::Unified);
        let sizes = vec!["2MB".to_string(), "1GB".to_string()];
        let stats = collect(&Sources {
            route: &route,
            read: &read,
            hugepage_sizes: &sizes,
            clock_ticks: 100,
        });
        assert_eq!(stats.cpu.usage.total, 100_000);
        assert_eq!(stats.cpu.usage.user, 60_000);
        assert_eq!(stats.cpu.throttling.throttled_time, 7000);
        assert_eq!(stats.memory.usage.limit, u64::MAX);
        assert_eq!(stats.memory.usage.failcnt, 4);
        assert_eq!(stats.memory.swap.usage, 1010);
        assert_eq!(stats.memory.swap.limit, u64::MAX);
        assert_eq!(stats.memory.cache, 2);
        assert_eq!(stats.pids.limit, 10);
        assert_eq!(stats.blkio.io_serviced_recursive.len(), 3);
        assert_eq!(stats.hugetlb.len(), 1);
        assert_eq!(stats.hugetlb["2MB"].failcnt, 3);
    }
}
