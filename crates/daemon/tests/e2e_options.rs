//! Create options seen from inside the container: memory, ulimits, user, init, read-only,
//! tmpfs, capabilities, no-new-privileges, workdir, hostname, env.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::*;

/// Runs `sh -c SCRIPT` in a fresh `--rm` container with `opts`; returns stdout (asserting
/// success).
#[track_caller]
fn sh(d: &TestDaemon, opts: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.ok(&args)
}

#[test]
fn memory_limit_in_the_cgroup() {
    let d = TestDaemon::start();
    // v1 and v2 files; whichever the host has.
    let out = sh(
        &d,
        &["--memory", "64m"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    );
    assert_eq!(out, "67108864");
    // And from the host: the running container's cgroup, via its pid.
    d.ok(&[
        "run", "-d", "--name", "m", "--memory", "32m", "busybox", "sleep", "1000",
    ]);
    let pid = d.inspect("m")["State"]["Pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = cg
        .lines()
        .find(|l| l.split(':').nth(1) == Some("memory"))
        .or_else(|| cg.lines().find(|l| l.starts_with("0::")))
        .unwrap();
    let rel = line.splitn(3, ':').nth(2).unwrap();
    let v1 = format!("/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes");
    let v2 = format!("/sys/fs/cgroup{rel}/memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap_or_else(|e| panic!("read {v1} or {v2}: {e}"));
    assert_eq!(limit.trim(), "33554432");
    // docker update changes it live.
    d.ok(&["update", "--memory", "48m", "--memory-swap", "96m", "m"]);
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap();
    assert_eq!(limit.trim(), "50331648");
    assert_eq!(d.inspect("m")["HostConfig"]["Memory"], 50331648);
}

#[test]
fn ulimit_user_workdir_hostname_env() {
    let d = TestDaemon::start();
    assert_eq!(
        sh(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn"),
        "100\n200"
    );
    let id = sh(&d, &["--user", "1000:1000"], "id");
    assert!(id.starts_with("uid=1000(user) gid=1000(user)"), "{id}");
    // Names resolve from the image's /etc/passwd.
    assert_eq!(sh(&d, &["--user", "user"], "id -u; id -g"), "1000\n1000");
    assert_eq!(sh(&d, &["-w", "/tmp/new/dir"], "pwd"), "/tmp/new/dir");
    assert_eq!(sh(&d, &["--hostname", "boxy"], "hostname"), "boxy");
    assert_eq!(
        sh(&d, &["-e", "A=1", "-e", "B=two words"], "echo \"$A|$B\""),
        "1|two words"
    );
    let o = d.docker(&["run", "--rm", "--user", "nosuchuser", "busybox", "true"]);
    assert_ne!(o.code(), 0);
    assert!(o.err().contains("nosuchuser"), "{}", o.err());
}

#[test]
fn init_is_pid_1() {
    let d = TestDaemon::start();
    let ps = sh(&d, &["--init"], "ps -o pid,args");
    let first = ps.lines().nth(1).unwrap();
    assert!(first.trim_start().starts_with("1 "), "{ps}");
    assert!(
        first.contains("berth-init") || first.contains("init"),
        "pid 1: {ps}"
    );
    // Without --init the command is pid 1.
    assert_eq!(sh(&d, &[], "echo $$"), "1");
    // `--init` shows in HostConfig.Init, and the init forwards SIGTERM to its child (sleep as
    // pid 1 would ignore it and wait for the SIGKILL after the timeout).
    d.ok(&[
        "run", "-d", "--init", "--name", "ini", "busybox", "sleep", "1000",
    ]);
    assert_eq!(d.inspect("ini")["HostConfig"]["Init"], true);
    let t = std::time::Instant::now();
    d.ok(&["stop", "-t", "10", "ini"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(d.inspect("ini")["State"]["ExitCode"], 143);
}

#[test]
fn read_only_and_tmpfs() {
    let d = TestDaemon::start();
    let o = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/newfile"]);
    assert_ne!(o.code(), 0);
    assert!(o.err().contains("Read-only file system"), "{}", o.err());
    // --tmpfs makes one writable place in a read-only rootfs.
    let out = sh(
        &d,
        &["--read-only", "--tmpfs", "/run:size=1m"],
        "echo ok > /run/f && cat /run/f && grep ' /run ' /proc/mounts",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ok"));
    let m = lines.next().unwrap();
    assert!(m.starts_with("tmpfs /run tmpfs"), "{m}");
    assert!(m.contains("size=1024k"), "{m}");
    let out = sh(
        &d,
        &["--mount", "type=tmpfs,target=/scratch"],
        "grep ' /scratch ' /proc/mounts",
    );
    assert!(out.starts_with("tmpfs /scratch"), "{out}");
}

#[test]
fn capabilities_and_no_new_privileges() {
    let d = TestDaemon::start();
    // Root can chown by default (CAP_CHOWN is in Docker's default set)...
    sh(&d, &[], "touch /f && chown 1000 /f");
    // ...not without capabilities.
    let o = d.docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "sh",
        "-c",
        "touch /f && chown 1000 /f",
    ]);
    assert_ne!(o.code(), 0);
    assert!(o.err().contains("Operation not permitted"), "{}", o.err());
    // The bounding set in /proc shows the drop; cap-add brings one back.
    let caps = sh(
        &d,
        &["--cap-drop", "ALL", "--cap-add", "CHOWN"],
        "grep CapEff /proc/self/status",
    );
    assert!(caps.ends_with("0000000000000001"), "{caps}");
    let nnp = sh(
        &d,
        &["--security-opt", "no-new-privileges"],
        "grep NoNewPrivs /proc/self/status",
    );
    assert_eq!(nnp.split_whitespace().last(), Some("1"), "{nnp}");
    let nnp = sh(&d, &[], "grep NoNewPrivs /proc/self/status");
    assert_eq!(nnp.split_whitespace().last(), Some("0"), "{nnp}");
    // Privileged sees all capabilities.
    // Privileged gets every capability berthd has (its bounding set; in a container that may
    // be fewer than the kernel knows).
    let caps = sh(&d, &["--privileged"], "grep CapEff /proc/self/status");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = host.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert_eq!(
        caps.split_whitespace().last(),
        bnd.split_whitespace().last(),
        "{caps} vs {bnd}"
    );
}

#[test]
fn bind_mounts() {
    let d = TestDaemon::start();
    let host = d.root.join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let hs = host.to_str().unwrap();
    let out = sh(
        &d,
        &["-v", &format!("{hs}:/h")],
        "cat /h/in; echo back > /h/out",
    );
    assert_eq!(out, "from host");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "back\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{hs}:/h:ro"),
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert_ne!(o.code(), 0);
    let out = sh(
        &d,
        &[
            "--mount",
            &format!("type=bind,source={hs},target=/m,readonly"),
        ],
        "cat /m/in",
    );
    assert_eq!(out, "from host");
}
