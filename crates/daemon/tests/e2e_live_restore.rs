//! Live restore: berthd is SIGKILLed while containers run and started again on the same roots.
//! The shims keep the containers; the new berthd re-adopts them.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

fn log_lines(d: &TestDaemon, name: &str) -> usize {
    d.ok(&["logs", name]).lines().count()
}

#[test]
fn kill9_berthd_and_restart() {
    let mut d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done",
    ]);
    // Exits while berthd is down, when the test puts a marker in its rootfs.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/quit ]; do sleep 0.05; done; exit 7",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        // Takes the marker away, so the restarted one waits again.
        "while [ ! -e /tmp/quit ]; do sleep 0.05; done; rm /tmp/quit; exit 3",
    ]);
    d.ok(&[
        "run", "-d", "--name", "ttybox", "-t", "busybox", "sleep", "1000",
    ]);
    wait_until("the writer to log", T, || {
        (log_lines(&d, "writer") >= 2).then_some(())
    });
    let writer = d.inspect("writer");
    let writer_pid = writer["State"]["Pid"].as_i64().unwrap();
    let phoenix_pid = d.inspect("phoenix")["State"]["Pid"].as_i64().unwrap();
    let quitter_pid = d.inspect("quitter")["State"]["Pid"].as_i64().unwrap();
    let shims_before = d.shim_pids();
    assert_eq!(shims_before.len(), 4, "one shim per container");

    d.kill9();
    // Containers and shims survive berthd.
    for pid in [writer_pid, phoenix_pid, quitter_pid] {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "container process {pid} died with berthd"
        );
    }
    assert_eq!(d.shim_pids().len(), 4);
    // While berthd is down, two containers exit: tell them through their rootfs (the merged
    // overlay is visible from the host via /proc/<pid>/root).
    for pid in [quitter_pid, phoenix_pid] {
        std::fs::write(format!("/proc/{pid}/root/tmp/quit"), "").unwrap();
    }
    wait_until("quitter and phoenix to exit", T, || {
        (!std::path::Path::new(&format!("/proc/{quitter_pid}")).exists()
            && !std::path::Path::new(&format!("/proc/{phoenix_pid}")).exists())
        .then_some(())
    });
    let lines_down = {
        let lp = writer["LogPath"].as_str().unwrap();
        let before = std::fs::read_to_string(lp).unwrap().lines().count();
        // The shim keeps writing the log while berthd is down.
        wait_until("log lines while berthd is down", T, || {
            (std::fs::read_to_string(lp).unwrap().lines().count() > before + 1).then_some(())
        });
        std::fs::read_to_string(lp).unwrap().lines().count()
    };

    d.spawn();
    // The running one is running, with the same pid.
    let v = d.inspect("writer");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Pid"].as_i64().unwrap(), writer_pid);
    let ps = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.lines().any(|l| l == "writer"), "{ps}");
    assert!(ps.lines().any(|l| l == "ttybox"), "{ps}");
    // The one that exited meanwhile is recorded with its code.
    wait_until("quitter recorded as exited", T, || {
        (d.status("quitter").as_deref() == Some("exited")).then_some(())
    });
    let q = d.inspect("quitter");
    assert_eq!(q["State"]["ExitCode"], 7, "{}", q["State"]);
    assert!(!q["State"]["FinishedAt"]
        .as_str()
        .unwrap()
        .starts_with("0001"));
    // The restart policy applies to the exit that happened while berthd was down.
    let new_pid = wait_until("phoenix running again", T, || {
        let v = d.inspect("phoenix");
        let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
        (v["State"]["Status"] == "running" && pid > 0 && pid != phoenix_pid).then_some(pid)
    });
    assert!(new_pid > 0);
    // Logs continue: new lines arrive after the restart, and logs -f follows them.
    let n = log_lines(&d, "writer");
    assert!(n >= lines_down, "{n} < {lines_down}");
    wait_until("more log lines after the restart", T, || {
        (log_lines(&d, "writer") > n + 2).then_some(())
    });
    // logs -f on the re-adopted container streams lines as they are written.
    let mut follow = d
        .docker_cmd(&["logs", "--tail", "1", "-f", "writer"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut r = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut r, &mut l).unwrap();
        let n: u64 = l.trim().trim_start_matches("line").parse().unwrap();
        seen.push(n);
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    // Exec and attach work against re-adopted shims.
    assert_eq!(d.ok(&["exec", "writer", "echo", "still"]), "still");
    assert_eq!(d.ok(&["exec", "ttybox", "echo", "tty"]), "tty");
    // stats read the same cgroup.
    let s = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "writer",
    ]);
    assert!(!s.starts_with("0B"), "{s}");
    // docker stop works: the container ends, the shim goes.
    d.ok(&["stop", "-t", "1", "writer"]);
    let v = d.inspect("writer");
    assert_eq!(v["State"]["Status"], "exited");
    assert!(!std::path::Path::new(&format!("/proc/{writer_pid}")).exists());
    d.ok(&["rm", "-f", "writer", "quitter", "phoenix", "ttybox"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    wait_until("all shims gone", T, || {
        d.shim_pids().is_empty().then_some(())
    });
    let m = d.mounts_under_root();
    assert!(m.is_empty(), "mounts left: {m:?}");
}

#[test]
fn sigterm_leaves_containers_running_too() {
    let mut d = TestDaemon::start();
    d.ok(&["run", "-d", "--name", "stay", "busybox", "sleep", "1000"]);
    let pid = d.inspect("stay")["State"]["Pid"].as_i64().unwrap();
    d.terminate();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    d.spawn();
    assert_eq!(d.status("stay").unwrap(), "running");
    assert_eq!(d.inspect("stay")["State"]["Pid"].as_i64().unwrap(), pid);
    // A --rm container that exited while berthd was down is removed on restore.
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "tmp",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/q ]; do sleep 0.05; done",
    ]);
    let tpid = d.inspect("tmp")["State"]["Pid"].as_i64().unwrap();
    d.kill9();
    std::fs::write(format!("/proc/{tpid}/root/tmp/q"), "").unwrap();
    wait_until("tmp to exit", T, || {
        (!std::path::Path::new(&format!("/proc/{tpid}")).exists()).then_some(())
    });
    d.spawn();
    wait_until("tmp removed on restore", T, || {
        d.status("tmp").is_none().then_some(())
    });
}
