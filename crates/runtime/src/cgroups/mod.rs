//! Control groups: v1, v2 and the hybrid layout (v1 controllers plus a cgroup2 mount used for
//! process tracking, and for any controller the kernel has not bound to v1).
//!
//! A [`Cgroup`] is a set of directories, one per mounted hierarchy, computed once by
//! [`Cgroup::resolve`] and persisted in the container's state as [`CgroupPaths`]. Each controller
//! is served by its v1 hierarchy when it has one and by the unified directory otherwise, so the
//! same code handles all three layouts; on this project's hybrid machines that means memory, CPU,
//! pids... through v1 and hugetlb through cgroup2.
//!
//! The work is split as the rest of the runtime is: `paths` parses `/proc/self/mountinfo` and
//! `/proc/self/cgroup` into directories, `plan` turns runtime-spec resources into a list of file
//! writes, `devices` turns device rules into v1 lines or a cgroup v2 eBPF program, and `stats`
//! parses usage files. All four are pure and unit-tested with fake input. This file and `bpf`
//! are the parts that touch the kernel.
//!
//! Only the systemd-free "cgroupfs" driver exists: a `slice:prefix:name` cgroups path is refused.

mod bpf;
mod devices;
mod paths;
mod plan;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use plan::{Target, Write};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

/// How long `freeze` waits for every task to stop, and `destroy` for tasks to leave.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// An errno as the kernel's text, lowercase and without Rust's "(os error N)" suffix, so messages
/// read like `write 1000 to /sys/fs/cgroup/...: device or resource busy`.
fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// Errors from cgroup setup and control.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroups path {0:?}: systemd cgroup driver is not supported: use cgroupfs")]
    SystemdPath(String),
    #[error("invalid cgroups path {}: {reason}", .path.display())]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("no cgroup hierarchy is mounted (according to {})", .path.display())]
    NoHierarchy { path: PathBuf },
    #[error("parse {} line {line}: {reason}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error(
        "own cgroup {} is not below the root {} of the hierarchy mounted on {}",
        .cgroup.display(), .root.display(), .mount_point.display()
    )]
    NotBelowMount {
        cgroup: PathBuf,
        root: PathBuf,
        mount_point: PathBuf,
    },
    #[error("read {}: {}", .path.display(), errno_text(.source))]
    Read { path: PathBuf, source: io::Error },
    #[error("write {value} to {}: {}", .path.display(), errno_text(.source))]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error(
        "write {value} to {}: no such file (the controller is not available to this cgroup)",
        .path.display()
    )]
    MissingFile { path: PathBuf, value: String },
    #[error("create cgroup {}: {}", .path.display(), errno_text(.source))]
    Create { path: PathBuf, source: io::Error },
    #[error("remove cgroup {}: {}", .path.display(), errno_text(.source))]
    Remove { path: PathBuf, source: io::Error },
    #[error(
        "enable controllers {controllers} in {}: device or resource busy (cgroup v2 allows \
         controllers for the children of a cgroup only when it has no processes of its own: use \
         an absolute cgroups path, or run the caller in a leaf cgroup)",
        .path.display()
    )]
    SubtreeBusy { path: PathBuf, controllers: String },
    #[error("the {controller} controller is not available in {}: cannot set {knob}", .path.display())]
    ControllerUnavailable {
        controller: String,
        path: PathBuf,
        knob: String,
    },
    #[error("the {controller} controller is not mounted: cannot set {knob}")]
    ControllerMissing {
        controller: &'static str,
        knob: &'static str,
    },
    #[error("invalid {knob} value {value}: {reason}")]
    InvalidResource {
        knob: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid device rule {rule:?}: {reason}")]
    InvalidDeviceRule { rule: String, reason: String },
    #[error("cannot build the device filter: {reason}")]
    DeviceProgram { reason: String },
    #[error("unified resource {key:?} needs cgroup v2, and this machine has cgroup v1 only")]
    UnifiedOnV1 { key: String },
    #[error("invalid unified resource {key:?}: expected a cgroup file name such as memory.high")]
    InvalidUnifiedKey { key: String },
    #[error("{op} {}: {}{}", .path.display(), errno_text(.source),
        if .log.is_empty() { String::new() } else { format!(" (verifier: {})", .log) })]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
        log: String,
    },
    #[error("freeze {}: tasks did not stop within {timeout:?} (state {state})", .path.display())]
    FreezeTimeout {
        path: PathBuf,
        timeout: Duration,
        state: String,
    },
    #[error("no freezer for cgroup {}: neither a v1 freezer hierarchy nor cgroup.freeze", .path.display())]
    NoFreezer { path: PathBuf },
    #[error("remove cgroup {}: still busy after {timeout:?} (tasks left in it?)", .path.display())]
    RemoveTimeout { path: PathBuf, timeout: Duration },
}

impl CgroupError {
    /// How callers should treat the error (see [`crate::error::ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::SystemdPath(_)
            | Self::InvalidPath { .. }
            | Self::InvalidResource { .. }
            | Self::InvalidDeviceRule { .. }
            | Self::InvalidUnifiedKey { .. }
            | Self::UnifiedOnV1 { .. } => ErrorKind::InvalidInput,
            Self::ControllerMissing { .. }
            | Self::ControllerUnavailable { .. }
            | Self::MissingFile { .. }
            | Self::NoHierarchy { .. }
            | Self::NoFreezer { .. }
            | Self::SubtreeBusy { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// How the machine's cgroup hierarchies are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// v1 hierarchies only.
    V1,
    /// The unified hierarchy only.
    V2,
    /// v1 hierarchies and a cgroup2 mount next to them (systemd's "hybrid").
    Hybrid,
}

/// The layout of this machine, from `/proc/self/mountinfo`.
pub fn detect_layout() -> Result<Layout, CgroupError> {
    let text = read_proc(paths::MOUNTINFO)?;
    paths::layout_of(&paths::parse_mountinfo(&text)?)
}

/// The directories of one container's cgroup, as persisted in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    pub layout: Layout,
    /// v1: controller name (`memory`, `cpu`, `name=systemd`...) to the container's directory in
    /// that hierarchy. Co-mounted controllers (`cpu,cpuacct`) share a directory.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// v2 and hybrid: the container's directory in the unified hierarchy.
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// Where the unified hierarchy is mounted: the walk that enables controllers in the
    /// ancestors' `cgroup.subtree_control` starts there.
    #[serde(default)]
    pub unified_mount: Option<PathBuf>,
}

impl CgroupPaths {
    /// Every directory of the container, each once: the v1 ones, then the unified one.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut seen = BTreeSet::new();
        let v1 = self.v1.values().map(PathBuf::as_path);
        v1.chain(self.unified.as_deref())
            .filter(|d| seen.insert(*d))
            .collect()
    }

    /// What the container's `/sys/fs/cgroup` shows: one entry per hierarchy, named as hosts
    /// name their mounts (`memory`, `cpu,cpuacct`, `systemd`, `unified`), with the container's
    /// directory in it.
    pub fn mount_dirs(&self) -> Vec<(String, PathBuf)> {
        let mut by_dir: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
        for (name, dir) in &self.v1 {
            by_dir
                .entry(dir.as_path())
                .or_default()
                .push(name.strip_prefix("name=").unwrap_or(name));
        }
        let mut out: Vec<(String, PathBuf)> = by_dir
            .into_iter()
            .map(|(dir, mut names)| {
                names.sort_unstable();
                (names.join(","), dir.to_path_buf())
            })
            .collect();
        if let Some(u) = &self.unified {
            out.push(("unified".to_string(), u.clone()));
        }
        out
    }

    /// The directory a write goes to.
    fn dir(&self, target: Target) -> Option<&Path> {
        match target {
            Target::V1(controller) => self.v1.get(controller).map(PathBuf::as_path),
            Target::Unified => self.unified.as_deref(),
        }
    }

    /// The v1 hierarchy of the controller, else the unified directory (not on pure v1).
    fn route(&self, v1_controller: &'static str) -> Option<Target> {
        if self.v1.contains_key(v1_controller) {
            Some(Target::V1(v1_controller))
        } else if self.layout != Layout::V1 && self.unified.is_some() {
            Some(Target::Unified)
        } else {
            None
        }
    }
}

/// One container's cgroup across all hierarchies.
#[derive(Debug)]
pub struct Cgroup {
    paths: CgroupPaths,
    /// Set once `create` has enabled every available controller on the way down the unified
    /// hierarchy, so the `apply` that follows does not check again.
    controllers_enabled: AtomicBool,
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: PathBuf::from(path),
        source,
    })
}

/// A cgroup file's contents, `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A file of a controller that is not enabled, on some kernels.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Write one value with one write(2), as cgroup files expect. The file is never created.
fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_raw(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// `mkdir -p`, tolerating a concurrent creator or remover of a shared parent (`berth/`).
fn create_dir_all(dir: &Path) -> Result<(), CgroupError> {
    let mut attempts = 0;
    loop {
        match fs::create_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(source) => {
                return Err(CgroupError::Create {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Sleep between polls: short at first (freezing usually takes microseconds), then longer.
fn backoff(delay: &mut Duration) {
    std::thread::sleep(*delay);
    *delay = (*delay * 2).min(Duration::from_millis(10));
}

impl Cgroup {
    /// Compute the container's directories. `cgroups_path` is `linux.cgroupsPath` from
    /// config.json; `None` means the relative `berth/<id>`. A relative path goes below the
    /// caller's own cgroup in each hierarchy (from `/proc/self/cgroup`), an absolute one below
    /// each hierarchy's mount point (docker passes `/docker/<id>`, containerd `/<ns>/<id>`).
    /// Paths with `..` and the systemd driver's `slice:prefix:name` form are refused.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        let placement = paths::placement(cgroups_path, id)?;
        let mounts = paths::parse_mountinfo(&read_proc(paths::MOUNTINFO)?)?;
        let own = paths::parse_proc_cgroup(&read_proc(paths::PROC_CGROUP)?)?;
        Ok(Cgroup::from_paths(paths::compute_paths(
            &mounts, &own, &placement,
        )?))
    }

    /// A cgroup reloaded from persisted state.
    pub fn from_paths(paths: CgroupPaths) -> Cgroup {
        Cgroup {
            paths,
            controllers_enabled: AtomicBool::new(false),
        }
    }

    /// The directories, to persist in the container's state.
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// Create the directories (`mkdir -p`) in every hierarchy. On v2, enable every available
    /// controller in the `cgroup.subtree_control` of each ancestor, as runc does, so resources
    /// and statistics work. On v1, give a new cpuset cgroup its parent's CPUs and memory nodes:
    /// tasks cannot join a cpuset with none.
    pub fn create(&self) -> Result<(), CgroupError> {
        for dir in self.paths.v1.values().collect::<BTreeSet<_>>() {
            create_dir_all(dir)?;
        }
        if let Some(dir) = self.paths.v1.get("cpuset") {
            init_cpuset(dir)?;
        }
        if let Some(dir) = &self.paths.unified {
            if self.paths.layout == Layout::V2 {
                self.enable_controllers(None, "")?;
                self.controllers_enabled.store(true, Ordering::Relaxed);
            }
            create_dir_all(dir)?;
        }
        Ok(())
    }

    /// The unified directory's ancestors below the mount point, top-down, excluding the
    /// container's own directory.
    fn unified_ancestors(&self) -> Vec<PathBuf> {
        let (Some(dir), Some(mount)) = (&self.paths.unified, &self.paths.unified_mount) else {
            return Vec::new();
        };
        let Ok(relative) = dir.strip_prefix(mount) else {
            return Vec::new();
        };
        let mut out = vec![mount.clone()];
        let mut current = mount.clone();
        let parts: Vec<_> = relative.components().collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            current.push(part);
            out.push(current.clone());
        }
        out
    }

    /// Walk down the unified hierarchy to the container's parent, creating missing levels and
    /// enabling controllers in each level's `cgroup.subtree_control`: `wanted` ones (an error
    /// if a level does not offer one), or with `None` every controller a level offers.
    fn enable_controllers(
        &self,
        wanted: Option<&BTreeSet<String>>,
        knob: &str,
    ) -> Result<(), CgroupError> {
        for level in self.unified_ancestors() {
            create_dir_all(&level)?;
            let offered = read_file(&level.join("cgroup.controllers"))?;
            let offered: BTreeSet<&str> = offered.split_whitespace().collect();
            let enabled = read_file(&level.join("cgroup.subtree_control"))?;
            let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
            let mut missing = Vec::new();
            match wanted {
                None => missing.extend(offered.difference(&enabled).map(|c| c.to_string())),
                Some(wanted) => {
                    for controller in wanted {
                        if !offered.contains(controller.as_str()) {
                            return Err(CgroupError::ControllerUnavailable {
                                controller: controller.clone(),
                                path: level.clone(),
                                knob: knob.to_string(),
                            });
                        }
                        if !enabled.contains(controller.as_str()) {
                            missing.push(controller.clone());
                        }
                    }
                }
            }
            if missing.is_empty() {
                continue;
            }
            let value = missing
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            let path = level.join("cgroup.subtree_control");
            match write_raw(&path, &value) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::SubtreeBusy {
                        path,
                        controllers: value,
                    })
                }
                Err(source) => {
                    return Err(CgroupError::Write {
                        path,
                        value,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Set the resources: only what is set is written. Used at create and by `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let routing = plan::Routing::new(&self.paths);
        let mut current = plan::Current::default();
        if let Some(m) = r.memory() {
            let both = m.limit().is_some_and(|l| l != 0) && m.swap().is_some_and(|s| s != 0);
            if let (true, Some(dir)) = (both, self.paths.v1.get("memory")) {
                let path = dir.join("memory.limit_in_bytes");
                current.v1_memory_limit =
                    read_optional(&path)?.and_then(|t| t.trim().parse::<i64>().ok());
            }
        }
        let plan = plan::plan(r, &routing, current)?;

        // Controllers the unified writes need, enabled on the way down (hybrid: only these).
        let unified_controllers: BTreeSet<String> = plan
            .writes
            .iter()
            .filter(|w| w.target == Target::Unified && !w.controller.is_empty())
            .map(|w| w.controller.clone())
            .collect();
        if !unified_controllers.is_empty() && !self.controllers_enabled.load(Ordering::Relaxed) {
            let knob = unified_controllers
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            self.enable_controllers(Some(&unified_controllers), &knob)?;
        }

        let mut deferred = Vec::new();
        for w in &plan.writes {
            match self.write(w) {
                Err(CgroupError::Write { source, .. })
                    if w.retry_last && source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    deferred.push(w);
                }
                other => other?,
            }
        }
        for w in deferred {
            self.write(w)?;
        }

        if let Some(rules) = &plan.device_filter {
            let dir = self
                .paths
                .unified
                .as_deref()
                .ok_or(CgroupError::ControllerMissing {
                    controller: "devices",
                    knob: "devices",
                })?;
            bpf::install_device_filter(dir, &devices::program(rules)?)?;
        }
        Ok(())
    }

    fn write(&self, w: &Write) -> Result<(), CgroupError> {
        let Some(dir) = self.paths.dir(w.target) else {
            return Err(CgroupError::MissingFile {
                path: PathBuf::from(&w.file),
                value: w.value.clone(),
            });
        };
        let path = dir.join(&w.file);
        let not_found = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        match write_raw(&path, &w.value) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => {
                if let Some((file, value)) = &w.fallback {
                    let fallback = dir.join(file);
                    match write_raw(&fallback, value) {
                        Ok(()) => return Ok(()),
                        Err(e) if not_found(&e) => {}
                        Err(source) => {
                            return Err(CgroupError::Write {
                                path: fallback,
                                value: value.clone(),
                                source,
                            })
                        }
                    }
                }
                if w.optional {
                    Ok(())
                } else {
                    Err(CgroupError::MissingFile {
                        path,
                        value: w.value.clone(),
                    })
                }
            }
            Err(source) => Err(CgroupError::Write {
                path,
                value: w.value.clone(),
                source,
            }),
        }
    }

    /// Move a process into the container's cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.paths.dirs() {
            write_file(&dir.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }

    /// Where freezing happens: the v1 freezer, else the unified directory's `cgroup.freeze`.
    fn freezer(&self) -> Result<Target, CgroupError> {
        match self.paths.route("freezer") {
            Some(t) => Ok(t),
            None => Err(CgroupError::NoFreezer {
                path: self
                    .paths
                    .dirs()
                    .first()
                    .map(|d| d.to_path_buf())
                    .unwrap_or_default(),
            }),
        }
    }

    fn freezer_dir(&self) -> Result<(Target, &Path), CgroupError> {
        let target = self.freezer()?;
        let dir = self
            .paths
            .dir(target)
            .ok_or_else(|| CgroupError::NoFreezer {
                path: PathBuf::new(),
            })?;
        Ok((target, dir))
    }

    /// The freezer's state: v1 `THAWED`/`FREEZING`/`FROZEN`, v2 `frozen 0|1` from cgroup.events.
    fn freezer_state(target: Target, dir: &Path) -> Result<String, CgroupError> {
        match target {
            Target::V1(_) => Ok(read_file(&dir.join("freezer.state"))?.trim().to_string()),
            Target::Unified => {
                let events = stats::parse_keyed(&read_file(&dir.join("cgroup.events"))?);
                let frozen = events.get("frozen").copied().unwrap_or(0);
                Ok(if frozen == 1 { "FROZEN" } else { "THAWED" }.to_string())
            }
        }
    }

    /// Ask the freezer for `want` ("FROZEN" or "THAWED") and wait until every task is there.
    fn set_frozen(&self, want: &str) -> Result<(), CgroupError> {
        let (target, dir) = self.freezer_dir()?;
        let (file, value) = match (target, want) {
            (Target::V1(_), _) => (dir.join("freezer.state"), want),
            (Target::Unified, "FROZEN") => (dir.join("cgroup.freeze"), "1"),
            (Target::Unified, _) => (dir.join("cgroup.freeze"), "0"),
        };
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        let mut delay = Duration::from_micros(50);
        loop {
            // v1 can stay in FREEZING when a task is caught mid-syscall; asking again retries.
            write_file(&file, value)?;
            let state = Self::freezer_state(target, dir)?;
            if state == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if want == "FROZEN" {
                    // Leave the container running rather than half frozen.
                    let thaw = if target == Target::Unified {
                        "0"
                    } else {
                        "THAWED"
                    };
                    let _ = write_raw(&file, thaw);
                }
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    timeout: FREEZE_TIMEOUT,
                    state,
                });
            }
            backoff(&mut delay);
        }
    }

    /// Stop every task (pause): v1 `freezer.state` FROZEN, v2 `cgroup.freeze` 1, and wait until
    /// the kernel reports them all frozen (at most a few seconds).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen("FROZEN")
    }

    /// Let the tasks run again (resume).
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen("THAWED")
    }

    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let (target, dir) = self.freezer_dir()?;
        Ok(Self::freezer_state(target, dir)? == "FROZEN")
    }

    /// The hierarchy used to list processes: the unified one on v2, else a v1 hierarchy that
    /// every task joins.
    fn tracking_dir(&self) -> Option<&Path> {
        if self.paths.layout == Layout::V2 {
            return self.paths.unified.as_deref();
        }
        [
            "freezer",
            "pids",
            "memory",
            "cpu",
            "devices",
            "name=systemd",
        ]
        .iter()
        .find_map(|c| self.paths.v1.get(*c))
        .or_else(|| self.paths.v1.values().next())
        .map(PathBuf::as_path)
        .or(self.paths.unified.as_deref())
    }

    /// Every process in the container's cgroup and its descendants (for `ps` and `kill --all`).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = BTreeSet::new();
        if let Some(dir) = self.tracking_dir() {
            collect_pids(dir, &mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    /// Resource usage, in the shape of `runc events --stats`.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let failure: std::cell::RefCell<Option<CgroupError>> = std::cell::RefCell::new(None);
        let read = |target: Target, file: &str| -> Option<String> {
            let dir = self.paths.dir(target)?;
            match read_optional(&dir.join(file)) {
                Ok(text) => text,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let route = |c: &'static str| self.paths.route(c);
        let sizes = hugepage_sizes();
        let clock_ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(100);
        let sources = stats::Sources {
            route: &route,
            read: &read,
            hugepage_sizes: &sizes,
            clock_ticks,
        };
        let stats = stats::collect(&sources);
        match failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// How many times the kernel's OOM killer killed a task of the container: v1
    /// `memory.oom_control`, v2 `memory.events`, field `oom_kill`. 0 when the file is absent.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let Some(target) = self.paths.route("memory") else {
            return Ok(0);
        };
        let Some(dir) = self.paths.dir(target) else {
            return Ok(0);
        };
        let file = match target {
            Target::V1(_) => "memory.oom_control",
            Target::Unified => "memory.events",
        };
        let text = read_optional(&dir.join(file))?.unwrap_or_default();
        Ok(stats::parse_keyed(&text)
            .get("oom_kill")
            .copied()
            .unwrap_or(0))
    }

    /// Remove the container's directories, children first. Waits briefly while exiting tasks
    /// leave; a directory that is already gone is fine. Every directory is tried; the first
    /// error is returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for dir in self.paths.dirs() {
            if let Err(e) = remove_cgroup_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Give each level down to `dir` that has no CPUs or memory nodes its parent's.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    // Walk up to the first level that has both; everything below it gets copies, top-down.
    let mut chain = Vec::new();
    let mut current = dir;
    loop {
        let cpus = read_optional(&current.join("cpuset.cpus"))?;
        let mems = read_optional(&current.join("cpuset.mems"))?;
        match (cpus, mems) {
            (Some(c), Some(m)) if !c.trim().is_empty() && !m.trim().is_empty() => break,
            (Some(_), Some(_)) => chain.push(current),
            // Above the hierarchy's root.
            _ => return Ok(()),
        }
        match current.parent() {
            Some(parent) => current = parent,
            None => return Ok(()),
        }
    }
    for level in chain.into_iter().rev() {
        let Some(parent) = level.parent() else {
            continue;
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let path = level.join(file);
            if read_file(&path)?.trim().is_empty() {
                let value = read_file(&parent.join(file))?;
                write_file(&path, value.trim())?;
            }
        }
    }
    Ok(())
}

/// Huge page sizes of this machine, as cgroup files name them ("2MB").
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| stats::hugepage_size_name(&e.file_name().to_string_lossy()))
        .collect();
    sizes.sort();
    sizes
}

fn subdirs(dir: &Path) -> Result<Option<Vec<PathBuf>>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(Some(out))
}

fn collect_pids(dir: &Path, out: &mut BTreeSet<i32>) -> Result<(), CgroupError> {
    let Some(text) = read_optional(&dir.join("cgroup.procs"))? else {
        return Ok(());
    };
    out.extend(
        text.split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok()),
    );
    for child in subdirs(dir)?.unwrap_or_default() {
        collect_pids(&child, out)?;
    }
    Ok(())
}

fn remove_cgroup_dir(dir: &Path) -> Result<(), CgroupError> {
    let Some(children) = subdirs(dir)? else {
        return Ok(());
    };
    for child in children {
        remove_cgroup_dir(&child)?;
    }
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut delay = Duration::from_micros(100);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if Instant::now() >= deadline {
                    return Err(CgroupError::RemoveTimeout {
                        path: dir.to_path_buf(),
                        timeout: REMOVE_TIMEOUT,
                    });
                }
                backoff(&mut delay);
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
