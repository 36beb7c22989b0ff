//! Root tests against the machine's real hierarchies. Each test makes its own cgroup below this
//! process's cgroup (`berth-test/<unique>`), and a guard kills its children and removes the
//! cgroup even when an assertion fails.

use super::*;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResourcesBuilder,
};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "cgroup tests need root (CI runs them as root): run cargo test as root"
    );
}

fn unique(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{name}-{}-{n}-{nanos}", std::process::id())
}

/// Kills the children and removes the cgroup, whatever happened in the test.
struct Guard {
    cgroup: Cgroup,
    children: Vec<Child>,
    /// More trees to remove after `cgroup`.
    cleanup: Vec<Cgroup>,
}

impl Guard {
    fn new(name: &str) -> Guard {
        require_root();
        let id = unique(name);
        let path = PathBuf::from("berth-test").join(&id);
        let cgroup = Cgroup::resolve(Some(&path), &id).expect("resolve");
        Guard {
            cgroup,
            children: Vec::new(),
            cleanup: Vec::new(),
        }
    }

    fn spawn_sleep(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep (coreutils)");
        let pid = i32::try_from(child.id()).expect("pid");
        self.children.push(child);
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cgroup.thaw();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cgroup.destroy();
        for cgroup in &self.cleanup {
            let _ = cgroup.destroy();
        }
        // The shared parent goes too when no other test uses it (EBUSY otherwise).
        for dir in self.cgroup.paths().dirs() {
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .expect(file)
        .trim()
        .to_string()
}

fn own_cgroup(controller: &str) -> PathBuf {
    let text = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let entries = paths::parse_proc_cgroup(&text).expect("parse");
    entries
        .into_iter()
        .find(|e| {
            e.controllers.iter().any(|c| c == controller)
                || (controller.is_empty() && e.hierarchy == 0)
        })
        .map(|e| e.path)
        .expect("own cgroup")
}

#[test]
fn detects_this_machines_layout() {
    let layout = detect_layout().expect("layout");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let has_v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let has_v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    let expected = match (has_v1, has_v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        _ => Layout::V2,
    };
    assert_eq!(layout, expected);
}

#[test]
fn resolve_refuses_bad_paths_before_touching_anything() {
    let err = Cgroup::resolve(Some(Path::new("a/../../b")), "x").expect_err("..");
    assert!(matches!(err, CgroupError::InvalidPath { .. }), "{err}");
    let err = Cgroup::resolve(Some(Path::new("system.slice:berth:x")), "x").expect_err("systemd");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("use cgroupfs"), "{err}");
}

#[test]
fn lifecycle_create_apply_tasks_freeze_destroy() {
    let mut guard = Guard::new("lifecycle");
    let paths = guard.cgroup.paths().clone();
    let id_path = paths.dirs()[0].file_name().expect("name").to_owned();

    // A relative path lands below our own cgroup in each hierarchy.
    if let Some(memory) = paths.v1.get("memory") {
        let own = own_cgroup("memory");
        let expected = Path::new("/sys/fs/cgroup/memory")
            .join(own.strip_prefix("/").expect("absolute"))
            .join("berth-test")
            .join(&id_path);
        assert_eq!(memory, &expected);
    }

    guard.cgroup.create().expect("create");
    for dir in paths.dirs() {
        assert!(dir.is_dir(), "{} was not created", dir.display());
    }
    if let Some(cpuset) = paths.v1.get("cpuset") {
        assert!(
            !read(cpuset, "cpuset.cpus").is_empty(),
            "cpuset.cpus copied from the parent"
        );
        assert!(
            !read(cpuset, "cpuset.mems").is_empty(),
            "cpuset.mems copied from the parent"
        );
    }

    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .build()
                .expect("memory"),
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(10i64)
                .build()
                .expect("pids"),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .build()
                .expect("cpu"),
        )
        .build()
        .expect("resources");
    guard.cgroup.apply(&resources).expect("apply");
    match paths.layout {
        Layout::V1 | Layout::Hybrid => {
            assert_eq!(
                read(&paths.v1["memory"], "memory.limit_in_bytes"),
                "67108864"
            );
            assert_eq!(read(&paths.v1["pids"], "pids.max"), "10");
            assert_eq!(read(&paths.v1["cpu"], "cpu.shares"), "512");
        }
        Layout::V2 => {
            let dir = paths.unified.as_deref().expect("unified");
            assert_eq!(read(dir, "memory.max"), "67108864");
            assert_eq!(read(dir, "pids.max"), "10");
            assert_eq!(read(dir, "cpu.weight"), "20");
        }
    }

    let pid = guard.spawn_sleep();
    guard.cgroup.add_task(pid).expect("add_task");
    assert_eq!(guard.cgroup.pids().expect("pids"), vec![pid]);
    for dir in paths.dirs() {
        assert_eq!(
            read(dir, "cgroup.procs"),
            pid.to_string(),
            "{}",
            dir.display()
        );
    }

    assert!(!guard.cgroup.is_frozen().expect("is_frozen"));
    guard.cgroup.freeze().expect("freeze");
    assert!(guard.cgroup.is_frozen().expect("is_frozen"));
    guard.cgroup.thaw().expect("thaw");
    assert!(!guard.cgroup.is_frozen().expect("is_frozen"));

    let stats = guard.cgroup.stats().expect("stats");
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 10);
    let json = serde_json::to_value(&stats).expect("json");
    assert!(json["memory"]["usage"].get("limit").is_some());
    assert_eq!(guard.cgroup.oom_kill_count().expect("oom_kill_count"), 0);

    // Reloaded from state, the cgroup is the same one.
    let json = serde_json::to_string(&paths).expect("serialize");
    let reloaded = Cgroup::from_paths(serde_json::from_str(&json).expect("deserialize"));
    assert_eq!(reloaded.pids().expect("pids"), vec![pid]);

    for child in &mut guard.children {
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
    guard.children.clear();
    guard.cgroup.destroy().expect("destroy");
    for dir in paths.dirs() {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    guard.cgroup.destroy().expect("destroy is idempotent");
}

#[test]
fn refused_write_names_file_and_value() {
    let guard = Guard::new("refused");
    guard.cgroup.create().expect("create");
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .cpus("4095")
                .build()
                .expect("cpu"),
        )
        .build()
        .expect("resources");
    let err = guard.cgroup.apply(&resources).expect_err("no cpu 4095");
    let text = err.to_string();
    assert!(text.starts_with("write 4095 to "), "{text}");
    assert!(text.contains("cpuset.cpus: "), "{text}");
    assert!(!text.contains("os error"), "{text}");
}

/// Run `sh -c script` after it moves itself into `procs`; its exit success and stderr.
fn run_in(procs: &Path, script: &str) -> (bool, String) {
    let full = format!("echo $$ > {} && {script}", procs.display());
    let out = Command::new("sh")
        .arg("-c")
        .arg(full)
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Inside the cgroup: /dev/null opens, /dev/zero is refused by the device controller.
fn assert_only_null(procs: &Path) {
    let (ok, stderr) = run_in(procs, "head -c1 /dev/null && head -c1 /dev/zero");
    assert!(!ok, "/dev/zero must be refused");
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
}

fn device_rules(allow_all: bool) -> LinuxResources {
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(allow_all)
        .access("rwm")
        .build()
        .expect("rule")];
    rules.push(
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1i64)
            .minor(3i64)
            .access("rw")
            .build()
            .expect("rule"),
    );
    LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .expect("resources")
}

#[test]
fn v1_devices_are_enforced() {
    let guard = Guard::new("devices-v1");
    let Some(dir) = guard.cgroup.paths().v1.get("devices").cloned() else {
        assert_ne!(
            guard.cgroup.paths().layout,
            Layout::V1,
            "v1 without a devices hierarchy"
        );
        return;
    };
    guard.cgroup.create().expect("create");
    guard.cgroup.apply(&device_rules(false)).expect("apply");
    assert_eq!(read(&dir, "devices.list"), "c 1:3 rw");
    assert_only_null(&dir.join("cgroup.procs"));
}

#[test]
fn v2_device_filter_is_enforced_and_replaced() {
    let guard = Guard::new("devices-bpf");
    let Some(dir) = guard.cgroup.paths().unified.clone() else {
        assert_eq!(
            guard.cgroup.paths().layout,
            Layout::V1,
            "no unified hierarchy mounted"
        );
        return;
    };
    guard.cgroup.create().expect("create");
    let procs = dir.join("cgroup.procs");
    let filter = |allow_all: bool| {
        let rules = device_rules(allow_all);
        let rules =
            devices::normalize(rules.devices().as_deref().unwrap_or_default()).expect("normalize");
        bpf::install_device_filter(&dir, &devices::program(&rules).expect("program"))
            .expect("install the device filter (kernel with CONFIG_CGROUP_BPF)");
    };
    filter(false);
    assert_only_null(&procs);
    // `update` installs a new filter; the old, narrower one must not stay attached.
    filter(true);
    let (ok, stderr) = run_in(&procs, "head -c1 /dev/zero >/dev/null");
    assert!(ok, "everything allowed after the update: {stderr}");

    // A later deny of one access bit wins over an earlier allow of all of them.
    let mut rules = device_rules(false).devices().clone().unwrap_or_default();
    for (allow, access) in [(true, "rwm"), (false, "w")] {
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(allow)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(5i64)
                .access(access)
                .build()
                .expect("rule"),
        );
    }
    let rules = devices::normalize(&rules).expect("normalize");
    bpf::install_device_filter(&dir, &devices::program(&rules).expect("program")).expect("install");
    let (ok, stderr) = run_in(&procs, "head -c1 /dev/zero >/dev/null");
    assert!(ok, "/dev/zero readable: {stderr}");
    let (ok, stderr) = run_in(&procs, "echo x > /dev/zero");
    assert!(
        !ok && stderr.contains("Operation not permitted"),
        "/dev/zero not writable: {stderr}"
    );
}

/// The v2 code paths (subtree_control walk, cgroup.freeze, cgroup.events, unified pids and
/// stats) on a real cgroup2 hierarchy: the machine's unified mount, with a test directory of
/// our own standing in for the mount point so nothing above it is touched.
#[test]
fn v2_paths_on_the_unified_hierarchy() {
    let mut guard = Guard::new("v2");
    let Some(dir) = guard.cgroup.paths().unified.clone() else {
        assert_eq!(
            guard.cgroup.paths().layout,
            Layout::V1,
            "no unified hierarchy mounted"
        );
        return;
    };
    let top = dir;
    let leaf = top.join("inner").join("c");
    let v2 = Cgroup::from_paths(CgroupPaths {
        layout: Layout::V2,
        v1: BTreeMap::new(),
        unified: Some(leaf.clone()),
        unified_mount: Some(top.clone()),
    });
    guard.cgroup = Cgroup::from_paths(CgroupPaths {
        layout: Layout::V2,
        v1: BTreeMap::new(),
        unified: Some(top.clone()),
        unified_mount: None,
    });
    guard.cleanup.push(Cgroup::from_paths(v2.paths().clone()));

    v2.create().expect("create");
    assert!(leaf.is_dir());
    let pid = guard.spawn_sleep();
    v2.add_task(pid).expect("add_task");
    assert_eq!(read(&leaf, "cgroup.procs"), pid.to_string());
    assert_eq!(v2.pids().expect("pids"), vec![pid]);
    // pids() is recursive: the parent sees the process too.
    assert_eq!(guard.cgroup.pids().expect("pids"), vec![pid]);

    v2.freeze().expect("freeze");
    assert!(v2.is_frozen().expect("is_frozen"));
    assert_eq!(read(&leaf, "cgroup.freeze"), "1");
    v2.thaw().expect("thaw");
    assert!(!v2.is_frozen().expect("is_frozen"));

    let stats = v2.stats().expect("stats");
    assert_eq!(
        stats.pids,
        PidsStats::default(),
        "pids controller not enabled here"
    );

    // The test root enables no controllers, so a pids limit has no file to go to.
    let resources = LinuxResourcesBuilder::default()
        .pids(
            LinuxPidsBuilder::default()
                .limit(5i64)
                .build()
                .expect("pids"),
        )
        .build()
        .expect("resources");
    let err = v2.apply(&resources).expect_err("no pids controller");
    assert!(err.to_string().contains("pids.max"), "{err}");

    for child in &mut guard.children {
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
    guard.children.clear();
    v2.destroy().expect("destroy");
    assert!(!leaf.exists());
    assert!(
        top.join("inner").exists(),
        "only the container's own directory is removed"
    );
}
