//! The OCI runtime suite, part two: config features (joined namespaces, sysctls, devices, hooks,
//! a terminal), the other commands (update, events, ps, list, spec, features, kill --all, exec
//! options, run -d), and the known container-escape classes (CVE-2019-5736, CVE-2021-30465,
//! CVE-2024-21626, leaked descriptors).
//!
//! Same rules as `runtime_suite.rs`: it drives `berth-runtime` unless `BERTH_TEST_RUNTIME`
//! names another runtime (`BERTH_TEST_RUNTIME=runc cargo test -p berth-runtime --test
//! runtime_suite2`), every test has its own root, bundle, id and cgroup and a guard that deletes
//! the container, and assertions only berth promises are skipped, with a note, for others.

mod common;

use anyhow::{bail, ensure, Context, Result};
use berth_testutil::console::read_until;
use berth_testutil::{ConsoleSocket, Extras};
use common::{push, Case, WAIT};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `PATH` for hook scripts (hooks get only the environment their config gives them).
const HOOK_PATH_ENV: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads a cgroup file of the container: `v1` in a v1 hierarchy, else `v2` in the unified one.
fn cgroup_file(c: &Case, controller: &str, v1: &str, v2: &str) -> Result<String> {
    let dir = c.cgroup_dir(controller)?;
    let path = if dir.join(v1).exists() {
        dir.join(v1)
    } else {
        dir.join(v2)
    };
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// The descriptors of `pid`, as (number, link target), read from the host.
fn open_fds(pid: i32) -> Result<Vec<(u32, PathBuf)>> {
    let dir = format!("/proc/{pid}/fd");
    let mut fds = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
        let entry = entry?;
        let Ok(n) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A descriptor closed between the listing and the readlink is simply gone.
        if let Ok(target) = fs::read_link(entry.path()) {
            fds.push((n, target));
        }
    }
    fds.sort();
    Ok(fds)
}

/// `(number, target)` pairs from `ls -l` of a /proc/N/fd directory run inside a container.
fn parse_ls_fds(listing: &str) -> Vec<(u32, String)> {
    listing
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let n = left.split_whitespace().last()?.parse().ok()?;
            Some((n, target.trim().to_owned()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Config features
// ---------------------------------------------------------------------------------------------

#[test]
fn join_namespaces_by_path() -> Result<()> {
    let mut a = Case::new("join-a", &["sleep", "100"])?;
    a.config()["hostname"] = json!("host-a");
    a.save()?;
    let _run_a = a.create_and_start()?;
    let a_pid = a.pid()?;

    let mut b = Case::new("join-b", &["sleep", "100"])?;
    // A hostname in B's config would be set in the joined UTS namespace, i.e. change A's.
    b.config()
        .as_object_mut()
        .context("config is an object")?
        .remove("hostname");
    let joined = [("network", "net"), ("ipc", "ipc"), ("uts", "uts")];
    for ns in b.config()["linux"]["namespaces"]
        .as_array_mut()
        .context("namespaces")?
    {
        if let Some((_, file)) = joined.iter().find(|(t, _)| ns["type"] == *t) {
            ns["path"] = json!(format!("/proc/{a_pid}/ns/{file}"));
        }
    }
    b.save()?;
    let _run_b = b.create_and_start()?;
    let b_pid = b.pid()?;

    let link = |pid: i32, file: &str| fs::read_link(format!("/proc/{pid}/ns/{file}"));
    for (_, file) in joined {
        ensure!(
            link(a_pid, file)? == link(b_pid, file)?,
            "B is not in A's {file} namespace"
        );
    }
    for file in ["mnt", "pid"] {
        ensure!(
            link(a_pid, file)? != link(b_pid, file)?,
            "B should have its own {file} namespace"
        );
    }
    let hostname = b.rt.exec(b.id(), &["hostname"])?.check()?;
    ensure!(
        hostname.stdout.trim() == "host-a",
        "B's hostname: {hostname}"
    );
    let hostname = a.rt.exec(a.id(), &["hostname"])?.check()?;
    ensure!(
        hostname.stdout.trim() == "host-a",
        "A's hostname: {hostname}"
    );
    Ok(())
}

#[test]
fn sysctl_in_new_network_namespace() -> Result<()> {
    let host = "/proc/sys/net/ipv4/ip_forward";
    let before = fs::read_to_string(host)?;
    let mut c = Case::new("sysctl", &["cat", host])?;
    c.config()["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
    c.save()?;
    let out = c.run()?.check()?;
    ensure!(
        out.stdout.trim() == "1",
        "ip_forward in the container: {out}"
    );
    ensure!(
        fs::read_to_string(host)? == before,
        "the host's ip_forward changed"
    );
    Ok(())
}

#[test]
fn sysctl_not_namespaced_refused() -> Result<()> {
    let host = "/proc/sys/vm/swappiness";
    // The value the host already has: should a runtime wrongly apply it, the host is unchanged.
    let current = fs::read_to_string(host)?.trim().to_owned();
    let mut c = Case::new("sysctl-vm", &["true"])?;
    c.config()["linux"]["sysctl"] = json!({ "vm.swappiness": current });
    c.save()?;
    let out = c.rt.create(c.id(), c.bundle.path())?;
    c.assert_refused(&out, &["vm.swappiness"], &[])?;
    c.assert_nothing_left()
}

#[test]
fn device_from_config() -> Result<()> {
    let mut c = Case::new(
        "device",
        &[
            "sh",
            "-c",
            "ls -ln /dev/mydev; echo hi > /dev/mydev && echo write-ok; \
             echo \"read=$(head -c 4 /dev/mydev | wc -c)\"",
        ],
    )?;
    c.config()["linux"]["devices"] = json!([{
        "path": "/dev/mydev", "type": "c", "major": 1, "minor": 3,
        "fileMode": 438, "uid": 1000, "gid": 1000
    }]);
    push(
        &mut c.config()["linux"]["resources"]["devices"],
        json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }),
    )?;
    c.save()?;
    let out = c.run()?.check()?;
    let line = out
        .stdout
        .lines()
        .find(|l| l.ends_with("/dev/mydev"))
        .with_context(|| format!("no ls line for /dev/mydev: {out}"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        f.len() > 5 && f[0] == "crw-rw-rw-" && f[2] == "1000" && f[3] == "1000",
        "mode or owner of /dev/mydev: {line}"
    );
    ensure!(
        f[4] == "1," && f[5] == "3",
        "/dev/mydev is not device 1,3: {line}"
    );
    ensure!(out.stdout.contains("write-ok"), "write failed: {out}");
    ensure!(
        out.stdout.contains("read=0"),
        "a read of 1,3 (null) returns nothing: {out}"
    );
    Ok(())
}

#[test]
fn domainname_and_oom_score_adj() -> Result<()> {
    // oom_score_adj can only be raised without CAP_SYS_RESOURCE: stay above our own.
    let own: i32 = fs::read_to_string("/proc/self/oom_score_adj")?
        .trim()
        .parse()?;
    let adj = own.max(500);
    let mut c = Case::new(
        "domain",
        &[
            "sh",
            "-c",
            "echo \"domain=$(cat /proc/sys/kernel/domainname)\"; \
             echo \"oom=$(cat /proc/self/oom_score_adj)\"",
        ],
    )?;
    c.config()["domainname"] = json!("berth.example");
    c.config()["process"]["oomScoreAdj"] = json!(adj);
    c.save()?;
    let out = c.run()?.check()?;
    // runc before 1.2 ignores `domainname`.
    if c.berth_only("domainname is set") {
        ensure!(
            out.stdout.contains("domain=berth.example\n"),
            "domainname: {out}"
        );
    }
    ensure!(
        out.stdout.contains(&format!("oom={adj}\n")),
        "oom_score_adj: {out}"
    );
    Ok(())
}

#[test]
fn cwd_only_root_can_search() -> Result<()> {
    // /root is 0700 root: the runtime enters the cwd while still root (as runc does, retrying
    // as the user only if root is refused), so `docker run -u 1000 -w /root` works.
    let mut c = Case::new("cwdroot", &["pwd"])?;
    c.config()["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    c.config()["process"]["cwd"] = json!("/root");
    c.save()?;
    let out = c.run()?;
    ensure!(
        out.success() && out.stdout.trim() == "/root",
        "uid 1000 with cwd /root: {out}"
    );
    Ok(())
}

#[test]
fn bad_cwd_is_a_file() -> Result<()> {
    // The init fails late (at chdir, after the mounts): create must still fail and say why,
    // not succeed and leave a stopped container whose start cannot tell what went wrong.
    let mut c = Case::new("cwdfile", &["true"])?;
    c.config()["process"]["cwd"] = json!("/etc/passwd");
    c.save()?;
    let out = c.rt.create(c.id(), c.bundle.path())?;
    c.assert_refused(&out, &["/etc/passwd"], &[])?;
    c.assert_nothing_left()
}

// ---------------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------------

/// A hook that saves its stdin to `<dir>/<name>.json` and appends its name to `<dir>/order`.
fn recording_hook(dir: &str, name: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")],
        "env": [HOOK_PATH_ENV]
    })
}

/// The state a hook received, which must name the container.
fn hook_state(path: &Path, id: &str) -> Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("hook did not run: no {}", path.display()))?;
    let state: Value = serde_json::from_str(&text)
        .with_context(|| format!("hook stdin is not state JSON: {text:?}"))?;
    ensure!(
        state["id"] == id,
        "state on the stdin of {}: {state}",
        path.display()
    );
    Ok(state)
}

fn hook_order(dir: &Path) -> Result<Vec<String>> {
    Ok(fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect())
}

#[test]
fn hooks_run_in_order_with_state() -> Result<()> {
    let mut c = Case::new("hooks", &["sleep", "100"])?;
    let dir = tempfile::Builder::new().prefix("berth-hooks-").tempdir()?;
    let d = dir.path().to_string_lossy().into_owned();
    // startContainer runs in the container, after pivot_root: it writes into the rootfs.
    c.config()["root"]["readonly"] = json!(false);
    c.config()["hooks"] = json!({
        "createRuntime": [recording_hook(&d, "createRuntime")],
        "createContainer": [recording_hook(&d, "createContainer")],
        "startContainer": [recording_hook("/tmp", "startContainer")],
        "poststart": [recording_hook(&d, "poststart")],
        "poststop": [recording_hook(&d, "poststop")],
    });
    c.save()?;

    let _create = c.create()?;
    let order = hook_order(dir.path())?;
    ensure!(
        order.starts_with(&["createRuntime".to_owned(), "createContainer".to_owned()]),
        "after create: {order:?}"
    );
    // runc before 1.2 ran poststart hooks at create; the spec says after the program started.
    if c.berth_only("poststart hooks wait for start") {
        ensure!(order.len() == 2, "after create: {order:?}");
    }
    hook_state(&dir.path().join("createRuntime.json"), c.id())?;
    hook_state(&dir.path().join("createContainer.json"), c.id())?;
    let in_rootfs = c.bundle.rootfs().join("tmp/startContainer.json");
    ensure!(!in_rootfs.exists(), "startContainer ran before start");

    c.rt.start_container(c.id())?.check()?;
    let order = hook_order(dir.path())?;
    ensure!(
        order == ["createRuntime", "createContainer", "poststart"],
        "after start: {order:?}"
    );
    hook_state(&in_rootfs, c.id())?;
    hook_state(&dir.path().join("poststart.json"), c.id())?;

    c.rt.kill(c.id(), "KILL")?.check()?;
    c.rt.wait_for_status(c.id(), "stopped", WAIT)?;
    c.rt.delete(c.id())?.check()?;
    let stopped = hook_state(&dir.path().join("poststop.json"), c.id())?;
    ensure!(
        hook_order(dir.path())?.last().map(String::as_str) == Some("poststop"),
        "after delete: {:?}",
        hook_order(dir.path())?
    );
    if c.berth_only("poststop hooks see status stopped") {
        ensure!(stopped["status"] == "stopped", "poststop state: {stopped}");
    }
    c.assert_nothing_left()
}

#[test]
fn failing_hook_fails_create() -> Result<()> {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut c = Case::new("hookfail", &["true"])?;
        c.config()["hooks"] = json!({
            kind: [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "echo hook-says-no >&2; exit 1"],
                "env": [HOOK_PATH_ENV]
            }]
        });
        c.save()?;
        let out = c.rt.create(c.id(), c.bundle.path())?;
        ensure!(
            !out.success(),
            "create succeeded with a failing {kind} hook: {out}"
        );
        c.assert_nothing_left()
            .with_context(|| format!("after a failing {kind} hook"))?;
    }
    Ok(())
}

#[test]
fn hook_timeout_fails_create() -> Result<()> {
    let mut c = Case::new("hooktime", &["true"])?;
    c.config()["hooks"] = json!({
        "createRuntime": [{ "path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1 }]
    });
    c.save()?;
    let started = Instant::now();
    let out = c.rt.invoke_with_timeout(
        [
            OsStr::new("create"),
            OsStr::new("--bundle"),
            c.bundle.path().as_os_str(),
            OsStr::new(c.id()),
        ],
        Duration::from_secs(8),
    )?;
    let took = started.elapsed();
    ensure!(
        !out.success(),
        "create succeeded past the hook's timeout: {out}"
    );
    ensure!(
        took < Duration::from_secs(6),
        "create took {took:?} with a 1s hook timeout"
    );
    c.assert_nothing_left()
}

// ---------------------------------------------------------------------------------------------
// Terminal
// ---------------------------------------------------------------------------------------------

#[test]
fn console_socket_receives_pty_master() -> Result<()> {
    let mut c = Case::new("tty", &["sh", "-c", "tty; echo hi"])?;
    c.config()["process"]["terminal"] = json!(true);
    c.save()?;
    let socket = ConsoleSocket::new()?;
    let sock = socket.path().to_string_lossy().into_owned();
    let mut create = c.spawn_create(&["--console-socket", &sock], &Extras::default())?;
    let master = socket.receive_pty(WAIT)?;
    create.wait()?.check()?;
    c.rt.start_container(c.id())?.check()?;
    let text = read_until(&master, "hi", WAIT)?;
    ensure!(
        text.contains("/dev/pts/") && !text.contains("not a tty"),
        "tty inside the container: {text:?}"
    );
    Ok(())
}

#[test]
fn exec_with_terminal() -> Result<()> {
    let c = Case::new("exectty", &["sleep", "100"])?;
    let _create = c.create_and_start()?;
    let socket = ConsoleSocket::new()?;
    let sock = socket.path().to_string_lossy().into_owned();
    // A console socket goes with --detach (containerd's shim does the same).
    let mut exec = c.rt.spawn([
        "exec",
        "-d",
        "-t",
        "--console-socket",
        &sock,
        c.id(),
        "sh",
        "-c",
        "tty; echo hi",
    ])?;
    let master = socket.receive_pty(WAIT)?;
    exec.wait()?.check()?;
    let text = read_until(&master, "hi", WAIT)?;
    ensure!(
        text.contains("/dev/pts/") && !text.contains("not a tty"),
        "tty of the exec'd process: {text:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

#[test]
fn run_detached_returns_while_running() -> Result<()> {
    let c = Case::new("rund", &["sleep", "100"])?;
    let out = c.rt.invoke_with_timeout(
        [
            OsStr::new("run"),
            OsStr::new("-d"),
            OsStr::new("--bundle"),
            c.bundle.path().as_os_str(),
            OsStr::new(c.id()),
        ],
        Duration::from_secs(10),
    )?;
    out.check()?;
    let state = c.rt.state(c.id())?;
    ensure!(state["status"] == "running", "after run -d: {state}");
    let pid = c.pid()?;
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} gone"
    );
    Ok(())
}

#[test]
fn update_changes_limits() -> Result<()> {
    let c = Case::new("update", &["sleep", "100"])?;
    let _create = c.create_and_start()?;
    let memory = || cgroup_file(&c, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = || cgroup_file(&c, "pids", "pids.max", "pids.max");

    c.rt.invoke(["update", "--memory", "100m", c.id()])?
        .check()?;
    ensure!(memory()? == "104857600", "memory limit {}", memory()?);

    c.rt.invoke(["update", "--pids-limit", "20", c.id()])?
        .check()?;
    ensure!(pids()? == "20", "pids limit {}", pids()?);

    let resources = json!({ "memory": { "limit": 52428800 }, "pids": { "limit": 30 } });
    let extras = Extras {
        stdin: Some(resources.to_string().into_bytes()),
        ..Extras::default()
    };
    c.rt.invoke_with(["update", "--resources", "-", c.id()], &extras)?
        .check()?;
    ensure!(memory()? == "52428800", "memory limit {}", memory()?);
    ensure!(pids()? == "30", "pids limit {}", pids()?);
    // The container is unaffected.
    ensure!(c.rt.state(c.id())?["status"] == "running");
    Ok(())
}

#[test]
fn events_stats_ps_and_list() -> Result<()> {
    let c = Case::new("stats", &["sleep", "100"])?;
    let _create = c.create_and_start()?;
    let pid = c.pid()?;

    let events = c.rt.invoke(["events", "--stats", c.id()])?.check()?;
    let lines: Vec<&str> = events.stdout.lines().filter(|l| !l.is_empty()).collect();
    ensure!(lines.len() == 1, "expected one JSON line: {events}");
    let stats: Value = serde_json::from_str(lines[0])?;
    ensure!(stats["type"] == "stats", "event type: {stats}");
    ensure!(stats["id"] == c.id(), "event id: {stats}");
    let usage = stats["data"]["memory"]["usage"]["usage"]
        .as_u64()
        .with_context(|| format!("no data.memory.usage.usage: {stats}"))?;
    ensure!(usage > 0, "memory usage 0: {stats}");

    let ps = c.rt.invoke(["ps", "--format", "json", c.id()])?.check()?;
    let pids: Vec<i64> = serde_json::from_str(ps.stdout.trim())
        .with_context(|| format!("ps --format json: {ps}"))?;
    ensure!(pids.contains(&i64::from(pid)), "init {pid} not in {pids:?}");

    let list = c.rt.invoke(["list", "--format", "json"])?.check()?;
    let all: Value = serde_json::from_str(list.stdout.trim())
        .with_context(|| format!("list --format json: {list}"))?;
    let mine = all
        .as_array()
        .context("list json is an array")?
        .iter()
        .find(|e| e["id"] == c.id())
        .with_context(|| format!("{} not listed: {all}", c.id()))?;
    ensure!(mine["status"] == "running", "listed as {mine}");
    ensure!(mine["pid"] == pid, "listed pid {mine}");

    let quiet = c.rt.invoke(["list", "-q"])?.check()?;
    ensure!(
        quiet.stdout.lines().any(|l| l.trim() == c.id()),
        "list -q: {quiet}"
    );
    Ok(())
}

#[test]
fn spec_writes_a_config_that_runs() -> Result<()> {
    let mut c = Case::new("spec", &["true"])?;
    let dir = tempfile::Builder::new().prefix("berth-spec-").tempdir()?;
    c.rt.invoke([
        OsStr::new("spec"),
        OsStr::new("--bundle"),
        dir.path().as_os_str(),
    ])?
    .check()?;
    let path = dir.path().join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&path)?)
        .with_context(|| format!("parse {}", path.display()))?;
    ensure!(spec["ociVersion"].is_string(), "no ociVersion: {spec}");
    if c.berth_only("spec has a seccomp profile") {
        let syscalls = spec["linux"]["seccomp"]["syscalls"]
            .as_array()
            .map_or(0, Vec::len);
        ensure!(syscalls > 0, "no seccomp syscalls in {}", path.display());
    }

    let again = c.rt.invoke([
        OsStr::new("spec"),
        OsStr::new("--bundle"),
        dir.path().as_os_str(),
    ])?;
    c.assert_refused(&again, &["exist"], &[])?;

    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["true"]);
    spec["root"]["path"] = json!("rootfs");
    spec["linux"]["cgroupsPath"] = json!(c.cgroup.clone());
    *c.config() = spec;
    c.save()?;
    c.run()?.check()?;
    Ok(())
}

#[test]
fn features_json() -> Result<()> {
    let c = Case::new("features", &["true"])?;
    let out = c.rt.invoke(["features"])?.check()?;
    let f: Value =
        serde_json::from_str(&out.stdout).with_context(|| format!("features json: {out}"))?;
    for key in ["ociVersionMin", "ociVersionMax"] {
        ensure!(f[key].is_string(), "no {key}: {f}");
    }
    let namespaces: BTreeSet<&str> = f["linux"]["namespaces"]
        .as_array()
        .context("linux.namespaces")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for ns in ["pid", "network", "mount", "uts", "ipc", "user", "cgroup"] {
        ensure!(namespaces.contains(ns), "{ns} missing from {namespaces:?}");
    }
    Ok(())
}

#[test]
fn kill_all_signals_every_process() -> Result<()> {
    // pid 1 of a pid namespace ignores signals it has no handler for, even from the host, so
    // TERM reaches only the sleeps: plain `kill` does nothing, `kill --all` ends the sleeps.
    let c = Case::new(
        "killall",
        &[
            "sh",
            "-c",
            "sleep 100 & sleep 100 & echo started; wait; echo children-gone; exec sleep 100",
        ],
    )?;
    let mut create = c.create_and_start()?;
    create.wait_for_stdout("started", WAIT)?;
    let procs = || -> Result<Vec<String>> {
        let dir = c.cgroup_dir("pids")?;
        Ok(fs::read_to_string(dir.join("cgroup.procs"))?
            .lines()
            .map(str::to_owned)
            .collect())
    };
    let deadline = Instant::now() + WAIT;
    while procs()?.len() < 3 {
        ensure!(
            Instant::now() < deadline,
            "sleeps not started: {:?}",
            procs()?
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    c.rt.kill(c.id(), "TERM")?.check()?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        !create.stdout().contains("children-gone"),
        "TERM to the init alone ended the children"
    );

    c.rt.invoke(["kill", "--all", c.id(), "TERM"])?.check()?;
    create.wait_for_stdout("children-gone", WAIT)?;

    c.rt.invoke(["kill", "--all", c.id(), "KILL"])?.check()?;
    c.rt.wait_for_status(c.id(), "stopped", WAIT)?;
    let deadline = Instant::now() + WAIT;
    while !procs()?.is_empty() {
        ensure!(Instant::now() < deadline, "processes left: {:?}", procs()?);
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[test]
fn exec_options() -> Result<()> {
    let c = Case::new("execopt", &["sleep", "100"])?;
    let _create = c.create_and_start()?;
    let exec = |args: &[&str]| -> Result<String> {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        Ok(c.rt.invoke(all)?.check()?.stdout.trim().to_owned())
    };
    let id = c.id();
    let env = exec(&["-e", "FOO=bar", id, "sh", "-c", "echo $FOO"])?;
    ensure!(env == "bar", "-e FOO=bar: {env:?}");
    let cwd = exec(&["--cwd", "/tmp", id, "pwd"])?;
    ensure!(cwd == "/tmp", "--cwd /tmp: {cwd:?}");
    let user = exec(&["-u", "1000:1000", id, "id"])?;
    ensure!(
        user.contains("uid=1000") && user.contains("gid=1000"),
        "-u 1000:1000: {user:?}"
    );

    let dir = tempfile::Builder::new()
        .prefix("berth-process-")
        .tempdir()?;
    let process = dir.path().join("process.json");
    fs::write(
        &process,
        json!({
            "terminal": false,
            "user": { "uid": 1000, "gid": 1000 },
            "args": ["sh", "-c", "echo \"$GREETING from $(pwd) as $(id -u)\""],
            "env": [berth_testutil::DEFAULT_PATH_ENV, "GREETING=hello"],
            "cwd": "/home/user"
        })
        .to_string(),
    )?;
    let out =
        c.rt.invoke([
            OsStr::new("exec"),
            OsStr::new("--process"),
            process.as_os_str(),
            OsStr::new(id),
        ])?
        .check()?;
    ensure!(
        out.stdout.trim() == "hello from /home/user as 1000",
        "exec --process: {out}"
    );

    let missing = c.rt.exec(id, &["no-such-program-xyz"])?;
    ensure!(!missing.success(), "exec of a missing program succeeded");
    c.assert_refused(&missing, &["not found"], &[])?;
    Ok(())
}

#[test]
fn exec_in_stopped_container_fails() -> Result<()> {
    let c = Case::new("execstop", &["true"])?;
    let _create = c.create_and_start()?;
    c.rt.wait_for_status(c.id(), "stopped", WAIT)?;
    let out = c.rt.exec(c.id(), &["true"])?;
    c.assert_refused(&out, &["stopped", "not running"], &[])
}

// ---------------------------------------------------------------------------------------------
// Escapes: each of these has been a real container breakout in some runtime
// ---------------------------------------------------------------------------------------------

#[test]
fn host_fds_do_not_leak_into_container() -> Result<()> {
    let c = Case::new("fdleak", &["sleep", "100"])?;
    let marker = tempfile::Builder::new()
        .prefix("berth-leak-marker-")
        .tempfile()?;
    let extras = Extras {
        inherited_fds: vec![
            (5, marker.path().to_path_buf()),
            (9, marker.path().to_path_buf()),
        ],
        ..Extras::default()
    };
    let leaked = |target: &str| target.contains("berth-leak-marker-");

    let _create = c.create_with(&[], &extras)?;
    c.rt.invoke_with(["start", c.id()], &extras)?.check()?;
    let pid = c.pid()?;
    let fds = open_fds(pid)?;
    let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
    ensure!(
        numbers == [0, 1, 2] && !fds.iter().any(|(_, t)| leaked(&t.to_string_lossy())),
        "the init holds more than stdio: {fds:?}"
    );

    // ls holds one descriptor of its own: the /proc/self/fd directory it reads.
    let out = c
        .exec_with(&["ls", "-l", "/proc/self/fd/"], &extras)?
        .check()?;
    let fds = parse_ls_fds(&out.stdout);
    ensure!(
        fds.iter()
            .all(|(n, t)| *n <= 2 || (*n == 3 && t.contains("/fd"))),
        "exec'd process holds more than stdio: {fds:?}\n{out}"
    );
    ensure!(!fds.iter().any(|(_, t)| leaked(t)), "leaked: {fds:?}");

    // `run`, with the listing done by the shell's child, about pid 1.
    let r = Case::new("fdleak-run", &["sh", "-c", "ls -l /proc/1/fd/; true"])?;
    let out =
        r.rt.invoke_with(
            [
                OsStr::new("run"),
                OsStr::new("--bundle"),
                r.bundle.path().as_os_str(),
                OsStr::new(r.id()),
            ],
            &extras,
        )?
        .check()?;
    let fds = parse_ls_fds(&out.stdout);
    ensure!(!fds.is_empty(), "no listing: {out}");
    ensure!(
        fds.iter().all(|(n, _)| *n <= 2) && !fds.iter().any(|(_, t)| leaked(t)),
        "pid 1 holds more than stdio: {fds:?}"
    );
    Ok(())
}

#[test]
fn proc_self_exe_interpreter_cannot_reach_runtime() -> Result<()> {
    // CVE-2019-5736: a program whose interpreter is /proc/self/exe is run by whatever binary the
    // exec'ing process is; were that the runtime on the host, the container could rewrite it.
    let bin = fs::canonicalize(&Case::new("exe-probe", &["true"])?.rt.bin)?;
    let before = fs::read(&bin)?;
    for args in [&["/evil"][..], &["/evil", "x"][..]] {
        let c = Case::new("selfexe", args)?;
        c.bundle
            .write_rootfs_file("/evil", b"#!/proc/self/exe\n", 0o755)?;
        let out = c.rt.invoke_with_timeout(
            [
                OsStr::new("run"),
                OsStr::new("--bundle"),
                c.bundle.path().as_os_str(),
                OsStr::new(c.id()),
            ],
            Duration::from_secs(10),
        );
        let out = match out {
            Ok(out) => out,
            Err(e) => bail!("`run` of a #!/proc/self/exe program with args {args:?} hung: {e}"),
        };
        // Run as the interpreter, a runtime would print its usage (or a complaint about an
        // unknown command, which is what runc, re-executed from its sealed copy, says).
        let all = format!("{}{}", out.stdout, out.stderr).to_lowercase();
        ensure!(
            !all.contains("usage") && !all.contains("unknown command"),
            "the runtime ran inside the container (args {args:?}): {out}"
        );
    }
    ensure!(
        fs::read(&bin)? == before,
        "the runtime binary {} changed",
        bin.display()
    );

    // While created, the init must not be the host binary either.
    let c = Case::new("selfexe-created", &["sleep", "100"])?;
    let _create = c.create()?;
    let exe = fs::read_link(format!("/proc/{}/exe", c.pid()?))?;
    ensure!(
        exe != bin,
        "the created container's init is {}",
        exe.display()
    );
    if c.berth_only("a created container's init runs from a memfd") {
        ensure!(
            exe.to_string_lossy().contains("memfd"),
            "init exe {}",
            exe.display()
        );
    }
    Ok(())
}

/// A program that climbs far above its cwd and reports whether it is still in the container's
/// root (which holds a marker file) or escaped to the host's.
const CLIMB: &str = "cd ../../../../../../../../..; \
    if [ -e berth-inside-marker ]; then echo in-root; else echo \"escaped: $(ls -a | tr '\\n' ' ')\"; fi";

#[test]
fn cwd_through_proc_self_fd_stays_inside() -> Result<()> {
    // CVE-2024-21626: a runtime descriptor of a host directory, still open when the process
    // enters its cwd, would put the process outside the root.
    for fd in 3..=10 {
        let mut c = Case::new("cwdfd", &["sh", "-c", CLIMB])?;
        c.bundle
            .write_rootfs_file("/berth-inside-marker", b"", 0o644)?;
        c.config()["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        c.save()?;
        let out = c.run()?;
        ensure!(
            !out.stdout.contains("escaped"),
            "cwd /proc/self/fd/{fd} reached the host: {out}"
        );
        ensure!(
            !out.success() || out.stdout.contains("in-root"),
            "cwd /proc/self/fd/{fd}: {out}"
        );
    }

    let c = Case::new("cwdfd-exec", &["sleep", "100"])?;
    c.bundle
        .write_rootfs_file("/berth-inside-marker", b"", 0o644)?;
    let _create = c.create_and_start()?;
    for fd in 3..=10 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out =
            c.rt.invoke(["exec", "--cwd", &cwd, c.id(), "sh", "-c", CLIMB])?;
        ensure!(
            !out.stdout.contains("escaped"),
            "exec --cwd {cwd} reached the host: {out}"
        );
        ensure!(
            !out.success() || out.stdout.contains("in-root"),
            "exec --cwd {cwd}: {out}"
        );
    }
    Ok(())
}

#[test]
fn mount_through_absolute_symlink_stays_in_rootfs() -> Result<()> {
    // CVE-2021-30465 class: a mount destination whose path crosses a symlink to an absolute
    // path must be resolved inside the rootfs, never on the host.
    let host_dir = tempfile::Builder::new()
        .prefix("berth-symlink-target-")
        .tempdir()?;
    let host_path = host_dir.path().to_string_lossy().into_owned();
    let mut c = Case::new(
        "symmount",
        &[
            "sh",
            "-c",
            "touch /mnt/link/sub/x && echo wrote; cat /proc/self/mountinfo",
        ],
    )?;
    c.bundle.create_rootfs_dir("/mnt")?;
    symlink(host_dir.path(), c.bundle.rootfs().join("mnt/link"))?;
    push(
        &mut c.config()["mounts"],
        json!({ "destination": "/mnt/link/sub", "type": "tmpfs", "source": "tmpfs" }),
    )?;
    c.save()?;
    let out = c.run()?;

    let on_host: Vec<_> = fs::read_dir(host_dir.path())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    ensure!(
        on_host.is_empty(),
        "the mount reached the host: {host_path} now holds {on_host:?}"
    );
    ensure!(
        !fs::read_to_string("/proc/self/mountinfo")?.contains(&host_path),
        "something is mounted on the host under {host_path}"
    );
    if !out.success() {
        eprintln!("note: {} refused the mount: {out}", c.rt.name());
        return Ok(());
    }
    ensure!(out.stdout.contains("wrote"), "tmpfs not writable: {out}");
    let inside = c.bundle.rootfs_path(&format!("{host_path}/sub"))?;
    ensure!(
        inside.is_dir(),
        "the mount point was not made inside the rootfs at {}",
        inside.display()
    );
    let target = format!("{host_path}/sub");
    ensure!(
        out.stdout.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) == Some(&target.as_str()) && l.contains(" - tmpfs ")
        }),
        "no tmpfs at {target} inside the container: {out}"
    );
    Ok(())
}

#[test]
fn personality_linux32() -> Result<()> {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("note: personality test needs an x86_64 host; skipped");
        return Ok(());
    }
    let mut c = Case::new("persona", &["uname", "-m"])?;
    c.config()["linux"]["personality"] = json!({ "domain": "LINUX32" });
    c.save()?;
    let out = c.run()?.check()?;
    // runc before 1.2 ignores `linux.personality`.
    if c.berth_only("linux.personality is applied") {
        ensure!(out.stdout.trim() == "i686", "uname -m under LINUX32: {out}");
    }
    Ok(())
}

#[test]
fn bad_idmapped_mount_refused() -> Result<()> {
    let mut c = Case::new("idmap", &["true"])?;
    let mounts = c.config()["mounts"].as_array_mut().map(|m| {
        m.push(json!({
            "destination": "/mnt/idm",
            "type": "bind",
            "source": "/tmp",
            "options": ["rbind", "idmap"],
            "uidMappings": [{ "containerID": 0, "hostID": 100000, "size": 1 }],
            "gidMappings": [{ "containerID": 0, "hostID": 100000, "size": 1 }]
        }))
    });
    ensure!(mounts.is_some(), "config has no mounts array");
    c.save()?;
    let out = c.rt.create(c.id(), c.bundle.path())?;
    // runc 1.1 ignores idmapped mount fields; berth refuses what it cannot honour.
    if c.berth_only("idmapped mounts are refused") {
        c.assert_refused(&out, &["idmapped"], &[])?;
        c.assert_nothing_left()?;
    }
    Ok(())
}

#[test]
fn run_attached_with_terminal_relays_the_pty() -> Result<()> {
    // `run` without --console-socket and process.terminal true: the runtime is the console.
    // `script` gives the runtime a terminal of its own to relay to.
    let mut c = Case::new(
        "runtty",
        &["sh", "-c", "tty; read line; echo got:$line; exit 3"],
    )?;
    c.config()["process"]["terminal"] = json!(true);
    c.save()?;
    let cmd = format!(
        "{} --root {} run -b {} {}",
        c.rt.bin.display(),
        c.rt.root.display(),
        c.bundle.path().display(),
        c.id()
    );
    let mut child = std::process::Command::new("timeout")
        .args(["20", "script", "-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("run script(1) (package bsdutils)")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        // Give the container a moment to reach `read`; a line typed earlier is buffered anyway.
        stdin.write_all(b"hello\n")?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("/dev/pts/"),
        "no tty in the container: {text:?}"
    );
    ensure!(text.contains("got:hello"), "input not relayed: {text:?}");
    ensure!(
        out.status.code() == Some(3),
        "exit status {:?}, output {text:?}",
        out.status
    );
    Ok(())
}
