//! Runtime-spec resources turned into the list of cgroup file writes that set them: the
//! "describe" half of `apply`. Pure, so the conversions between the v1 and v2 interfaces
//! (shares to weight, memory+swap to swap, blkio to io) are unit-tested without a kernel.
//!
//! Only what is set is written. As in runc, a zero limit means "not set" for memory and CPU
//! knobs, because the runtime-spec's Go types cannot tell zero from absent.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use super::devices::{self, DeviceRule};
use super::{CgroupError, CgroupPaths, Layout};

/// Which hierarchy a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// The v1 hierarchy of this controller.
    V1(&'static str),
    /// The unified (cgroup2) directory.
    Unified,
}

/// One value to write into one cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub target: Target,
    /// The controller the file belongs to (v2 name for unified writes; "" for core files). On v2
    /// it must be enabled in the parent's `cgroup.subtree_control` for the file to exist.
    pub controller: String,
    pub file: String,
    pub value: String,
    /// Written instead when `file` does not exist (`blkio.weight` is `blkio.bfq.weight` under BFQ).
    pub fallback: Option<(String, String)>,
    /// Skipped when the file does not exist: knobs that depend on kernel options (swap
    /// accounting) or that newer kernels dropped.
    pub optional: bool,
    /// When the kernel refuses this write with EINVAL, try it again after the other writes:
    /// the CFS period may be rejected until the new quota is in place.
    pub retry_last: bool,
}

impl Write {
    fn new(
        target: Target,
        controller: &str,
        file: impl Into<String>,
        value: impl ToString,
    ) -> Self {
        Write {
            target,
            controller: controller.to_string(),
            file: file.into(),
            value: value.to_string(),
            fallback: None,
            optional: false,
            retry_last: false,
        }
    }

    fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Optional when `default` holds: writing a knob's default value to a kernel that lacks
    /// the knob changes nothing, so its absence is no error.
    fn optional_if(mut self, default: bool) -> Self {
        self.optional |= default;
        self
    }

    fn fallback(mut self, file: impl Into<String>, value: impl ToString) -> Self {
        self.fallback = Some((file.into(), value.to_string()));
        self
    }
}

/// Everything `apply` has to do for one set of resources.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    /// cgroup v2 device rules, to be compiled into a BPF program and attached to the unified dir.
    pub device_filter: Option<Vec<DeviceRule>>,
}

/// What the kernel currently has, for the decisions that depend on it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Current {
    /// v1 `memory.limit_in_bytes`, read only when both a memory limit and a swap limit are set:
    /// it decides whether memsw or the memory limit must be written first.
    pub v1_memory_limit: Option<i64>,
}

/// cgroup v1 `cpu.shares` to cgroup v2 `cpu.weight`: maps [2, 262144] onto [1, 10000] linearly.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// cgroup v1 `blkio.weight` ([10, 1000]) to cgroup v2 `io.weight` ([1, 10000]).
pub(crate) fn blkio_weight_to_io(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

/// The runtime-spec's `swap` is memory+swap (v1 memsw). cgroup v2 limits swap alone, so
/// `memory.swap.max` is the difference. Returns `None` when nothing is to be written,
/// `Some(-1)` for "max".
pub(crate) fn swap_to_v2(
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<Option<i64>, CgroupError> {
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    let invalid = |reason: &'static str| CgroupError::InvalidResource {
        knob: "memory.swap",
        value: swap.to_string(),
        reason,
    };
    match (limit, swap) {
        // Unlimited memory and swap unset: unlimited swap too, as memsw would follow on v1.
        (-1, 0) => Ok(Some(-1)),
        (_, 0) => Ok(None),
        (_, -1) => Ok(Some(-1)),
        (0 | -1, _) => Err(invalid("a swap limit needs a memory limit")),
        (l, _) if l < 0 => Err(invalid("the memory limit is negative")),
        (l, s) if s < l => Err(invalid(
            "memory+swap must not be lower than the memory limit",
        )),
        (l, s) => Ok(Some(s - l)),
    }
}

fn max_or(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// Knob values a user can give that the kernel reads as "no limit" or nonsense.
fn check_limit(knob: &'static str, value: i64) -> Result<(), CgroupError> {
    if value < -1 {
        return Err(CgroupError::InvalidResource {
            knob,
            value: value.to_string(),
            reason: "must be -1 (unlimited) or positive",
        });
    }
    Ok(())
}

/// Which hierarchy serves each controller for one container.
#[derive(Debug)]
pub(crate) struct Routing<'a> {
    paths: &'a CgroupPaths,
}

impl<'a> Routing<'a> {
    pub fn new(paths: &'a CgroupPaths) -> Self {
        Routing { paths }
    }

    fn has_v1(&self, controller: &str) -> bool {
        self.paths.v1.contains_key(controller)
    }

    fn has_unified(&self) -> bool {
        self.paths.layout != Layout::V1 && self.paths.unified.is_some()
    }

    /// The v1 hierarchy when the controller is mounted there, else the unified one.
    fn route(&self, v1: &'static str, knob: &'static str) -> Result<Target, CgroupError> {
        if self.has_v1(v1) {
            Ok(Target::V1(v1))
        } else if self.has_unified() {
            Ok(Target::Unified)
        } else {
            Err(CgroupError::ControllerMissing {
                controller: v1,
                knob,
            })
        }
    }
}

/// Turn resources into writes for this container's hierarchies.
pub(crate) fn plan(
    r: &LinuxResources,
    routing: &Routing<'_>,
    current: Current,
) -> Result<Plan, CgroupError> {
    let mut plan = Plan::default();
    if let Some(memory) = r.memory() {
        plan_memory(memory, routing, current, &mut plan.writes)?;
    }
    if let Some(cpu) = r.cpu() {
        plan_cpu(cpu, routing, &mut plan.writes)?;
    }
    if let Some(pids) = r.pids() {
        let target = routing.route("pids", "pids.limit")?;
        plan.writes.push(Write::new(
            target,
            "pids",
            "pids.max",
            pids_value(pids.limit()),
        ));
    }
    if let Some(blkio) = r.block_io() {
        plan_blkio(blkio, routing, &mut plan.writes)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        for limit in limits {
            let size = limit.page_size();
            let valid = size.len() > 2
                && size.ends_with('B')
                && size[..size.len() - 2].bytes().all(|b| b.is_ascii_digit())
                && matches!(size.as_bytes()[size.len() - 2], b'K' | b'M' | b'G');
            if !valid {
                return Err(CgroupError::InvalidResource {
                    knob: "hugepageLimits.pageSize",
                    value: size.clone(),
                    reason: "expected a size such as 2MB or 1GB",
                });
            }
            let target = routing.route("hugetlb", "hugepageLimits")?;
            let (file, rsvd, value) = match target {
                Target::V1(_) => (
                    format!("hugetlb.{size}.limit_in_bytes"),
                    format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                    limit.limit().to_string(),
                ),
                Target::Unified => (
                    format!("hugetlb.{size}.max"),
                    format!("hugetlb.{size}.rsvd.max"),
                    max_or(limit.limit()),
                ),
            };
            plan.writes
                .push(Write::new(target, "hugetlb", file, &value));
            plan.writes
                .push(Write::new(target, "hugetlb", rsvd, &value).optional());
        }
    }
    if let Some(network) = r.network() {
        // net_cls and net_prio exist on v1 only; without them the knobs have nowhere to go.
        if let (Some(class_id), true) = (network.class_id(), routing.has_v1("net_cls")) {
            let target = Target::V1("net_cls");
            plan.writes
                .push(Write::new(target, "net_cls", "net_cls.classid", class_id));
        }
        if let (Some(priorities), true) = (network.priorities(), routing.has_v1("net_prio")) {
            for p in priorities {
                let value = format!("{} {}", p.name(), p.priority());
                let target = Target::V1("net_prio");
                plan.writes
                    .push(Write::new(target, "net_prio", "net_prio.ifpriomap", value));
            }
        }
    }
    if let Some(rdma) = r.rdma() {
        let sorted: BTreeMap<_, _> = rdma.iter().collect();
        for (device, limit) in sorted {
            if device.is_empty() || device.contains(char::is_whitespace) {
                return Err(CgroupError::InvalidResource {
                    knob: "rdma",
                    value: device.clone(),
                    reason: "not a device name",
                });
            }
            let mut value = device.clone();
            if let Some(handles) = limit.hca_handles() {
                value.push_str(&format!(" hca_handle={handles}"));
            }
            if let Some(objects) = limit.hca_objects() {
                value.push_str(&format!(" hca_object={objects}"));
            }
            if value.len() > device.len() {
                let target = routing.route("rdma", "rdma")?;
                plan.writes
                    .push(Write::new(target, "rdma", "rdma.max", value));
            }
        }
    }
    if let Some(rules) = r.devices() {
        let rules = devices::normalize(rules)?;
        if routing.has_v1("devices") {
            let target = Target::V1("devices");
            // Start from "deny everything" (unless the first rule says so), then replay the
            // rules in order.
            let denies_all = |r: &DeviceRule| !r.allow && devices::v1_lines(r) == ["a"];
            if !rules.first().is_some_and(denies_all) {
                plan.writes
                    .push(Write::new(target, "devices", "devices.deny", "a"));
            }
            for rule in &rules {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                for line in devices::v1_lines(rule) {
                    plan.writes.push(Write::new(target, "devices", file, line));
                }
            }
        } else if routing.has_unified() {
            plan.device_filter = Some(rules);
        } else {
            return Err(CgroupError::ControllerMissing {
                controller: "devices",
                knob: "devices",
            });
        }
    }
    if let Some(unified) = r.unified() {
        let sorted: BTreeMap<_, _> = unified.iter().collect();
        for (key, value) in sorted {
            if !routing.has_unified() {
                return Err(CgroupError::UnifiedOnV1 { key: key.clone() });
            }
            let Some((controller, _)) = key.split_once('.') else {
                return Err(CgroupError::InvalidUnifiedKey { key: key.clone() });
            };
            if controller.is_empty() || key.contains('/') || key.contains('\0') {
                return Err(CgroupError::InvalidUnifiedKey { key: key.clone() });
            }
            let controller = if controller == "cgroup" {
                ""
            } else {
                controller
            };
            plan.writes
                .push(Write::new(Target::Unified, controller, key.clone(), value));
        }
    }
    Ok(plan)
}

/// `pids.max`: a positive limit, or "max" for 0 and -1 (no limit).
pub(crate) fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

fn nonzero(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

fn plan_memory(
    m: &LinuxMemory,
    routing: &Routing<'_>,
    current: Current,
    out: &mut Vec<Write>,
) -> Result<(), CgroupError> {
    let limit = nonzero(m.limit());
    let swap = nonzero(m.swap());
    let reservation = nonzero(m.reservation());
    for (knob, value) in [
        ("memory.limit", limit),
        ("memory.swap", swap),
        ("memory.reservation", reservation),
    ] {
        if let Some(v) = value {
            check_limit(knob, v)?;
        }
    }
    let needs_controller = limit.is_some()
        || swap.is_some()
        || reservation.is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.kernel_tcp().is_some();
    if !needs_controller {
        return Ok(());
    }
    match routing.route("memory", "memory")? {
        target @ Target::V1(_) => {
            let w = |file: &str, value: i64| Write::new(target, "memory", file, value);
            let limit_write = limit.map(|l| w("memory.limit_in_bytes", l));
            // Without swap accounting the memsw files are absent; the swap limit is then moot.
            let swap_write = swap.map(|s| w("memory.memsw.limit_in_bytes", s).optional());
            match (limit_write, swap_write) {
                (Some(l), Some(s)) => {
                    let (limit, swap) = (limit.unwrap_or(0), swap.unwrap_or(0));
                    if swap != -1 && limit != -1 && swap < limit {
                        return Err(CgroupError::InvalidResource {
                            knob: "memory.swap",
                            value: swap.to_string(),
                            reason: "memory+swap must not be lower than the memory limit",
                        });
                    }
                    // The kernel keeps limit <= memsw at every step. Raising memsw first works
                    // when the new memsw is at least the current limit; otherwise the new limit
                    // is below the current memsw and lowering the limit first works.
                    let current = current.v1_memory_limit.unwrap_or(i64::MAX);
                    if swap == -1 || swap >= current {
                        out.extend([s, l]);
                    } else {
                        out.extend([l, s]);
                    }
                }
                (l, s) => out.extend(l.into_iter().chain(s)),
            }
            if let Some(r) = reservation {
                out.push(w("memory.soft_limit_in_bytes", r));
            }
            if let Some(tcp) = m.kernel_tcp() {
                out.push(w("memory.kmem.tcp.limit_in_bytes", tcp).optional());
            }
            // u64::MAX is how -1 ("unset") arrives through unsigned Go types.
            if let Some(swappiness) = m.swappiness().filter(|s| *s != u64::MAX) {
                if swappiness > 100 {
                    return Err(CgroupError::InvalidResource {
                        knob: "memory.swappiness",
                        value: swappiness.to_string(),
                        reason: "must be between 0 and 100",
                    });
                }
                out.push(Write::new(
                    target,
                    "memory",
                    "memory.swappiness",
                    swappiness,
                ));
            }
            if m.disable_oom_killer() == Some(true) {
                out.push(Write::new(target, "memory", "memory.oom_control", 1));
            }
        }
        Target::Unified => {
            let w = |file: &str, value: String| Write::new(Target::Unified, "memory", file, value);
            if let Some(l) = limit {
                out.push(w("memory.max", max_or(l)));
            }
            if let Some(s) = swap_to_v2(limit, swap)? {
                out.push(w("memory.swap.max", max_or(s)).optional());
            }
            if let Some(r) = reservation {
                out.push(w("memory.low", max_or(r)));
            }
            // Swappiness, the OOM killer switch and kernel memory have no v2 files.
        }
    }
    Ok(())
}

fn plan_cpu(c: &LinuxCpu, routing: &Routing<'_>, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    let shares = c.shares().filter(|s| *s != 0);
    let quota = nonzero(c.quota());
    let period = c.period().filter(|p| *p != 0);
    if let Some(q) = quota {
        check_limit("cpu.quota", q)?;
    }
    if shares.is_some()
        || quota.is_some()
        || period.is_some()
        || c.burst().is_some()
        || c.idle().is_some()
    {
        match routing.route("cpu", "cpu")? {
            target @ Target::V1(_) => {
                if let Some(s) = shares {
                    out.push(Write::new(target, "cpu", "cpu.shares", s));
                }
                if let Some(p) = period {
                    let mut w = Write::new(target, "cpu", "cpu.cfs_period_us", p);
                    w.retry_last = quota.is_some();
                    out.push(w);
                }
                if let Some(q) = quota {
                    out.push(Write::new(target, "cpu", "cpu.cfs_quota_us", q));
                }
                if let Some(b) = c.burst() {
                    out.push(Write::new(target, "cpu", "cpu.cfs_burst_us", b).optional_if(b == 0));
                }
                if let Some(i) = c.idle() {
                    out.push(Write::new(target, "cpu", "cpu.idle", i).optional_if(i == 0));
                }
            }
            Target::Unified => {
                if let Some(s) = shares {
                    out.push(Write::new(
                        Target::Unified,
                        "cpu",
                        "cpu.weight",
                        shares_to_weight(s),
                    ));
                }
                if quota.is_some() || period.is_some() {
                    // "$MAX $PERIOD"; without a period the kernel keeps the current one.
                    let mut value = max_or(quota.unwrap_or(-1));
                    if let Some(p) = period {
                        value.push_str(&format!(" {p}"));
                    }
                    out.push(Write::new(Target::Unified, "cpu", "cpu.max", value));
                }
                if let Some(b) = c.burst() {
                    let w = Write::new(Target::Unified, "cpu", "cpu.max.burst", b);
                    out.push(w.optional_if(b == 0));
                }
                if let Some(i) = c.idle() {
                    out.push(Write::new(Target::Unified, "cpu", "cpu.idle", i).optional_if(i == 0));
                }
            }
        }
    }
    // Real-time runtime and period are not set: the container's cgroups get no RT budget.
    for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            let target = routing.route("cpuset", file)?;
            out.push(Write::new(target, "cpuset", file, v.trim()));
        }
    }
    Ok(())
}

fn throttle_lines(
    list: &Option<Vec<LinuxThrottleDevice>>,
) -> impl Iterator<Item = (i64, i64, u64)> + '_ {
    list.iter()
        .flatten()
        .map(|d| (d.major(), d.minor(), d.rate()))
}

fn plan_blkio(
    b: &LinuxBlockIo,
    routing: &Routing<'_>,
    out: &mut Vec<Write>,
) -> Result<(), CgroupError> {
    let any_throttle = [
        b.throttle_read_bps_device(),
        b.throttle_write_bps_device(),
        b.throttle_read_iops_device(),
        b.throttle_write_iops_device(),
    ]
    .iter()
    .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
    // A zero weight is "not set" (the kernel's range starts at 10, or 1 for BFQ).
    let weight = b.weight().filter(|w| *w != 0);
    let leaf_weight = b.leaf_weight().filter(|w| *w != 0);
    let any_weight = weight.is_some()
        || leaf_weight.is_some()
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty());
    if !any_throttle && !any_weight {
        return Ok(());
    }
    match routing.route("blkio", "blockIO")? {
        target @ Target::V1(_) => {
            let w = |file: &str, value: String| Write::new(target, "blkio", file, value);
            // CFQ had blkio.weight; BFQ, the scheduler left on current kernels, has blkio.bfq.weight.
            if let Some(weight) = weight {
                out.push(
                    w("blkio.weight", weight.to_string()).fallback("blkio.bfq.weight", weight),
                );
            }
            if let Some(leaf) = leaf_weight {
                out.push(w("blkio.leaf_weight", leaf.to_string()).optional());
            }
            for d in b.weight_device().iter().flatten() {
                if let Some(weight) = d.weight().filter(|w| *w != 0) {
                    let value = format!("{}:{} {}", d.major(), d.minor(), weight);
                    out.push(
                        w("blkio.weight_device", value.clone())
                            .fallback("blkio.bfq.weight_device", value),
                    );
                }
                if let Some(leaf) = d.leaf_weight().filter(|w| *w != 0) {
                    let value = format!("{}:{} {}", d.major(), d.minor(), leaf);
                    out.push(w("blkio.leaf_weight_device", value).optional());
                }
            }
            let files = [
                (
                    "blkio.throttle.read_bps_device",
                    b.throttle_read_bps_device(),
                ),
                (
                    "blkio.throttle.write_bps_device",
                    b.throttle_write_bps_device(),
                ),
                (
                    "blkio.throttle.read_iops_device",
                    b.throttle_read_iops_device(),
                ),
                (
                    "blkio.throttle.write_iops_device",
                    b.throttle_write_iops_device(),
                ),
            ];
            for (file, list) in files {
                for (major, minor, rate) in throttle_lines(list) {
                    out.push(w(file, format!("{major}:{minor} {rate}")));
                }
            }
        }
        Target::Unified => {
            let w = |file: &str, value: String| Write::new(Target::Unified, "io", file, value);
            // io.bfq.weight takes blkio's scale; io.weight (other schedulers) its own.
            if let Some(weight) = weight {
                out.push(
                    w("io.bfq.weight", weight.to_string())
                        .fallback("io.weight", blkio_weight_to_io(weight)),
                );
            }
            for d in b.weight_device().iter().flatten() {
                if let Some(weight) = d.weight().filter(|w| *w != 0) {
                    let dev = format!("{}:{}", d.major(), d.minor());
                    out.push(
                        w("io.bfq.weight", format!("{dev} {weight}"))
                            .fallback("io.weight", format!("{dev} {}", blkio_weight_to_io(weight))),
                    );
                }
            }
            let keys = [
                ("rbps", b.throttle_read_bps_device()),
                ("wbps", b.throttle_write_bps_device()),
                ("riops", b.throttle_read_iops_device()),
                ("wiops", b.throttle_write_iops_device()),
            ];
            for (key, list) in keys {
                for (major, minor, rate) in throttle_lines(list) {
                    // On v1 a zero rate removes the limit; on v2 that is spelled "max".
                    let rate = if rate == 0 {
                        "max".to_string()
                    } else {
                        rate.to_string()
                    };
                    out.push(w("io.max", format!("{major}:{minor} {key}={rate}")));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
        LinuxHugepageLimitBuilder, LinuxInterfacePriorityBuilder, LinuxMemoryBuilder,
        LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
        LinuxWeightDeviceBuilder,
    };
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn v1_paths() -> CgroupPaths {
        let mut v1 = BTreeMap::new();
        for c in [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "name=systemd",
        ] {
            v1.insert(
                c.to_string(),
                PathBuf::from(format!("/sys/fs/cgroup/{c}/c1")),
            );
        }
        CgroupPaths {
            layout: Layout::V1,
            v1,
            unified: None,
            unified_mount: None,
        }
    }

    fn hybrid_paths() -> CgroupPaths {
        let mut p = v1_paths();
        p.layout = Layout::Hybrid;
        p.unified = Some(PathBuf::from("/sys/fs/cgroup/unified/c1"));
        p.unified_mount = Some(PathBuf::from("/sys/fs/cgroup/unified"));
        p
    }

    fn v2_paths() -> CgroupPaths {
        CgroupPaths {
            layout: Layout::V2,
            v1: BTreeMap::new(),
            unified: Some(PathBuf::from("/sys/fs/cgroup/c1")),
            unified_mount: Some(PathBuf::from("/sys/fs/cgroup")),
        }
    }

    fn writes(r: &LinuxResources, paths: &CgroupPaths) -> Vec<(Target, String, String)> {
        plan(r, &Routing::new(paths), Current::default())
            .expect("plan")
            .writes
            .into_iter()
            .map(|w| (w.target, w.file, w.value))
            .collect()
    }

    fn tuple(target: Target, file: &str, value: &str) -> (Target, String, String) {
        (target, file.to_string(), value.to_string())
    }

    #[test]
    fn shares_to_weight_matches_runc_formula() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1, "clamped, no underflow");
        assert_eq!(shares_to_weight(u64::MAX), 10_000, "clamped, no overflow");
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(blkio_weight_to_io(500), 4950);
    }

    #[test]
    fn swap_conversion() {
        let mib = 1 << 20;
        assert_eq!(
            swap_to_v2(Some(64 * mib), Some(128 * mib)).expect("ok"),
            Some(64 * mib)
        );
        assert_eq!(
            swap_to_v2(Some(64 * mib), Some(64 * mib)).expect("ok"),
            Some(0)
        );
        assert_eq!(swap_to_v2(Some(64 * mib), Some(-1)).expect("ok"), Some(-1));
        assert_eq!(swap_to_v2(Some(64 * mib), None).expect("ok"), None);
        assert_eq!(swap_to_v2(Some(-1), None).expect("ok"), Some(-1));
        assert_eq!(swap_to_v2(None, None).expect("ok"), None);
        assert!(swap_to_v2(None, Some(mib)).is_err());
        assert!(swap_to_v2(Some(-1), Some(mib)).is_err());
        assert!(swap_to_v2(Some(2 * mib), Some(mib)).is_err());
    }

    fn memory(limit: i64, swap: Option<i64>) -> LinuxResources {
        let mut m = LinuxMemoryBuilder::default()
            .limit(limit)
            .swappiness(10u64)
            .reservation(1000i64);
        if let Some(s) = swap {
            m = m.swap(s);
        }
        LinuxResourcesBuilder::default()
            .memory(m.build().expect("memory"))
            .build()
            .expect("resources")
    }

    #[test]
    fn memory_v1() {
        let r = memory(64 << 20, Some(128 << 20));
        let m = Target::V1("memory");
        assert_eq!(
            writes(&r, &v1_paths()),
            vec![
                // A fresh cgroup has an unlimited limit: lower the limit before memsw.
                tuple(m, "memory.limit_in_bytes", "67108864"),
                tuple(m, "memory.memsw.limit_in_bytes", "134217728"),
                tuple(m, "memory.soft_limit_in_bytes", "1000"),
                tuple(m, "memory.swappiness", "10"),
            ]
        );
        // Raising both above the current limit: memsw first.
        let current = Current {
            v1_memory_limit: Some(32 << 20),
        };
        let p = plan(&r, &Routing::new(&v1_paths()), current).expect("plan");
        assert_eq!(p.writes[0].file, "memory.memsw.limit_in_bytes");
        assert!(
            p.writes[0].optional,
            "memsw is absent without swap accounting"
        );
        assert_eq!(p.writes[1].file, "memory.limit_in_bytes");
        // Swap below the limit is refused.
        let bad = memory(64 << 20, Some(32 << 20));
        assert!(plan(&bad, &Routing::new(&v1_paths()), Current::default()).is_err());
        let bad_swappiness = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .swappiness(101u64)
                    .build()
                    .expect("m"),
            )
            .build()
            .expect("r");
        assert!(plan(
            &bad_swappiness,
            &Routing::new(&v1_paths()),
            Current::default()
        )
        .is_err());
    }

    #[test]
    fn memory_v2_and_hybrid() {
        let r = memory(64 << 20, Some(128 << 20));
        let u = Target::Unified;
        assert_eq!(
            writes(&r, &v2_paths()),
            vec![
                tuple(u, "memory.max", "67108864"),
                tuple(u, "memory.swap.max", "67108864"),
                tuple(u, "memory.low", "1000"),
            ]
        );
        let unlimited = memory(-1, None);
        assert_eq!(
            writes(&unlimited, &v2_paths()),
            vec![
                tuple(u, "memory.max", "max"),
                tuple(u, "memory.swap.max", "max"),
                tuple(u, "memory.low", "1000")
            ]
        );
        // Hybrid: memory is a v1 controller here, so the v1 files are used.
        assert_eq!(writes(&r, &hybrid_paths())[0].0, Target::V1("memory"));
    }

    #[test]
    fn cpu_v1_and_v2() {
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .realtime_runtime(1000i64)
                    .cpus("0-1")
                    .build()
                    .expect("cpu"),
            )
            .build()
            .expect("resources");
        let c = Target::V1("cpu");
        assert_eq!(
            writes(&r, &v1_paths()),
            vec![
                tuple(c, "cpu.shares", "512"),
                tuple(c, "cpu.cfs_period_us", "100000"),
                tuple(c, "cpu.cfs_quota_us", "50000"),
                tuple(Target::V1("cpuset"), "cpuset.cpus", "0-1"),
            ]
        );
        let p = plan(&r, &Routing::new(&v1_paths()), Current::default()).expect("plan");
        assert!(p.writes[1].retry_last);
        let u = Target::Unified;
        assert_eq!(
            writes(&r, &v2_paths()),
            vec![
                tuple(u, "cpu.weight", "20"),
                tuple(u, "cpu.max", "50000 100000"),
                tuple(u, "cpuset.cpus", "0-1"),
            ]
        );
        let unlimited = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(-1i64)
                    .build()
                    .expect("cpu"),
            )
            .build()
            .expect("resources");
        assert_eq!(
            writes(&unlimited, &v2_paths()),
            vec![tuple(u, "cpu.max", "max")]
        );
    }

    #[test]
    fn pids_limits() {
        let r = |limit| {
            LinuxResourcesBuilder::default()
                .pids(
                    LinuxPidsBuilder::default()
                        .limit(limit)
                        .build()
                        .expect("pids"),
                )
                .build()
                .expect("resources")
        };
        assert_eq!(
            writes(&r(10), &v1_paths()),
            vec![tuple(Target::V1("pids"), "pids.max", "10")]
        );
        assert_eq!(
            writes(&r(-1), &v1_paths()),
            vec![tuple(Target::V1("pids"), "pids.max", "max")]
        );
        assert_eq!(
            writes(&r(0), &v2_paths()),
            vec![tuple(Target::Unified, "pids.max", "max")]
        );
    }

    fn blkio() -> LinuxResources {
        let throttle = |rate: u64| {
            vec![LinuxThrottleDeviceBuilder::default()
                .major(8i64)
                .minor(0i64)
                .rate(rate)
                .build()
                .expect("t")]
        };
        LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(500u16)
                    .weight_device(vec![LinuxWeightDeviceBuilder::default()
                        .major(8i64)
                        .minor(16i64)
                        .weight(100u16)
                        .build()
                        .expect("wd")])
                    .throttle_read_bps_device(throttle(1_048_576))
                    .throttle_write_iops_device(throttle(0))
                    .build()
                    .expect("blkio"),
            )
            .build()
            .expect("resources")
    }

    #[test]
    fn blkio_v1() {
        let b = Target::V1("blkio");
        let p = plan(&blkio(), &Routing::new(&v1_paths()), Current::default()).expect("plan");
        let got: Vec<_> = p
            .writes
            .iter()
            .map(|w| (w.target, w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (b, "blkio.weight", "500"),
                (b, "blkio.weight_device", "8:16 100"),
                (b, "blkio.throttle.read_bps_device", "8:0 1048576"),
                (b, "blkio.throttle.write_iops_device", "8:0 0"),
            ]
        );
        assert_eq!(
            p.writes[0].fallback,
            Some(("blkio.bfq.weight".to_string(), "500".to_string()))
        );
    }

    #[test]
    fn blkio_v2() {
        let p = plan(&blkio(), &Routing::new(&v2_paths()), Current::default()).expect("plan");
        let got: Vec<_> = p
            .writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("io.bfq.weight", "500"),
                ("io.bfq.weight", "8:16 100"),
                ("io.max", "8:0 rbps=1048576"),
                ("io.max", "8:0 wiops=max"),
            ]
        );
        assert_eq!(
            p.writes[0].fallback,
            Some(("io.weight".to_string(), "4950".to_string()))
        );
        assert_eq!(
            p.writes[1].fallback,
            Some(("io.weight".to_string(), "8:16 910".to_string()))
        );
    }

    #[test]
    fn hugetlb_routes_to_unified_on_hybrid() {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4_194_304i64)
                .build()
                .expect("h")])
            .build()
            .expect("resources");
        // This machine's layout: hugetlb is not a v1 hierarchy but lives in the unified one.
        let p = plan(&r, &Routing::new(&hybrid_paths()), Current::default()).expect("plan");
        assert_eq!(p.writes[0].target, Target::Unified);
        assert_eq!(p.writes[0].file, "hugetlb.2MB.max");
        assert_eq!(p.writes[0].controller, "hugetlb");
        assert!(p.writes[1].optional);
        // Pure v1 without a hugetlb hierarchy: a clear error.
        let err = plan(&r, &Routing::new(&v1_paths()), Current::default()).expect_err("missing");
        assert!(err.to_string().contains("hugetlb"), "{err}");
        let mut with_hugetlb = v1_paths();
        with_hugetlb.v1.insert(
            "hugetlb".to_string(),
            PathBuf::from("/sys/fs/cgroup/hugetlb/c1"),
        );
        assert_eq!(
            writes(&r, &with_hugetlb)[0],
            tuple(
                Target::V1("hugetlb"),
                "hugetlb.2MB.limit_in_bytes",
                "4194304"
            )
        );
        let bad = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("../x")
                .limit(1i64)
                .build()
                .expect("h")])
            .build()
            .expect("resources");
        assert!(plan(&bad, &Routing::new(&hybrid_paths()), Current::default()).is_err());
    }

    fn devices() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .expect("d"),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1i64)
                    .minor(3i64)
                    .access("rwm")
                    .build()
                    .expect("d"),
            ])
            .build()
            .expect("resources")
    }

    #[test]
    fn devices_v1_and_v2() {
        let d = Target::V1("devices");
        assert_eq!(
            writes(&devices(), &v1_paths()),
            vec![
                tuple(d, "devices.deny", "a"),
                tuple(d, "devices.allow", "c 1:3 rwm")
            ]
        );
        let p = plan(&devices(), &Routing::new(&v2_paths()), Current::default()).expect("plan");
        assert!(p.writes.is_empty());
        assert_eq!(p.device_filter.map(|r| r.len()), Some(2));
        // Without a leading "deny all" rule the v1 writes start from one anyway.
        let only_allow = LinuxResourcesBuilder::default()
            .devices(vec![LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::B)
                .major(8i64)
                .access("r")
                .build()
                .expect("d")])
            .build()
            .expect("resources");
        assert_eq!(
            writes(&only_allow, &v1_paths()),
            vec![
                tuple(d, "devices.deny", "a"),
                tuple(d, "devices.allow", "b 8:* r")
            ]
        );
        // Nowhere to enforce device rules: an error, never silently ignored.
        let mut no_devices = v1_paths();
        no_devices.v1.remove("devices");
        assert!(plan(&devices(), &Routing::new(&no_devices), Current::default()).is_err());
    }

    #[test]
    fn unified_keys() {
        let mut map = HashMap::new();
        map.insert("memory.high".to_string(), "1G".to_string());
        map.insert("cgroup.max.depth".to_string(), "3".to_string());
        let r = LinuxResourcesBuilder::default()
            .unified(map)
            .build()
            .expect("resources");
        let err = plan(&r, &Routing::new(&v1_paths()), Current::default()).expect_err("v1");
        assert!(err.to_string().contains("cgroup v2"), "{err}");
        let p = plan(&r, &Routing::new(&v2_paths()), Current::default()).expect("plan");
        let got: Vec<_> = p
            .writes
            .iter()
            .map(|w| (w.controller.as_str(), w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("", "cgroup.max.depth", "3"),
                ("memory", "memory.high", "1G")
            ]
        );
        for bad in ["../../etc/passwd.x", "nodot", ".hidden"] {
            let mut map = HashMap::new();
            map.insert(bad.to_string(), "1".to_string());
            let r = LinuxResourcesBuilder::default()
                .unified(map)
                .build()
                .expect("resources");
            assert!(
                plan(&r, &Routing::new(&v2_paths()), Current::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn nothing_set_writes_nothing() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(0i64)
                    .kernel(1000i64)
                    .build()
                    .expect("m"),
            )
            .cpu(LinuxCpuBuilder::default().build().expect("c"))
            .build()
            .expect("resources");
        assert!(writes(&r, &v1_paths()).is_empty());
        assert!(writes(&r, &v2_paths()).is_empty());
        let zero_weight = LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(0u16)
                    .build()
                    .expect("b"),
            )
            .build()
            .expect("resources");
        assert!(writes(&zero_weight, &v1_paths()).is_empty());
    }

    #[test]
    fn default_values_of_newer_knobs_are_optional() {
        let r = |idle: i64| {
            LinuxResourcesBuilder::default()
                .cpu(LinuxCpuBuilder::default().idle(idle).build().expect("c"))
                .build()
                .expect("resources")
        };
        let p = plan(&r(0), &Routing::new(&v1_paths()), Current::default()).expect("plan");
        assert!(
            p.writes[0].optional,
            "cpu.idle 0 on a kernel without cpu.idle is a no-op"
        );
        let p = plan(&r(1), &Routing::new(&v2_paths()), Current::default()).expect("plan");
        assert!(
            !p.writes[0].optional,
            "asking for idle scheduling needs the file"
        );
    }

    #[test]
    fn network_is_v1_only() {
        let r = LinuxResourcesBuilder::default()
            .network(
                LinuxNetworkBuilder::default()
                    .class_id(0x10001u32)
                    .priorities(vec![LinuxInterfacePriorityBuilder::default()
                        .name("eth0")
                        .priority(5u32)
                        .build()
                        .expect("p")])
                    .build()
                    .expect("n"),
            )
            .build()
            .expect("resources");
        assert!(
            writes(&r, &v1_paths()).is_empty(),
            "net_cls/net_prio not mounted: ignored"
        );
        assert!(writes(&r, &v2_paths()).is_empty());
        let mut with_net = v1_paths();
        for c in ["net_cls", "net_prio"] {
            with_net.v1.insert(
                c.to_string(),
                PathBuf::from("/sys/fs/cgroup/net_cls,net_prio/c1"),
            );
        }
        assert_eq!(
            writes(&r, &with_net),
            vec![
                tuple(Target::V1("net_cls"), "net_cls.classid", "65537"),
                tuple(Target::V1("net_prio"), "net_prio.ifpriomap", "eth0 5"),
            ]
        );
    }
}
