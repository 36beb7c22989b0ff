//! The docker CLI against berthd: run, ps, logs, inspect, attach, stop/start/restart, restart
//! policies, --rm, stats, events.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn run_detached_and_ps() {
    let d = TestDaemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
    d.ok(&[
        "create",
        "--name",
        "idle",
        "--label",
        "tier=back",
        "busybox",
        "true",
    ]);
    let done = d.ok(&[
        "run", "-d", "--name", "done", "busybox", "sh", "-c", "exit 3",
    ]);
    d.wait_status(&done, "exited", T);

    // Default table: header columns, one row per running container.
    let table = d.ok(&["ps"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "ps header lacks {col}: {header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the running container: {table}");
    assert!(rows[0].starts_with(&id[..12]), "{table}");
    assert!(rows[0].contains("\"sleep 1000\""), "{table}");
    assert!(rows[0].contains("Up "), "{table}");
    assert!(rows[0].trim_end().ends_with("web"), "{table}");

    let fmt = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(fmt.starts_with("web Up "), "{fmt}");

    let all = d.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    let mut names: Vec<&str> = all.lines().map(|l| l.split('|').next().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["done", "idle", "web"], "{all}");
    assert!(all.contains("idle|Created"), "{all}");
    assert!(all.contains("done|Exited (3)"), "{all}");

    let q = d.ok(&["ps", "-q"]);
    assert_eq!(q, &id[..12]);
    let qa = d.ok(&["ps", "-aq"]);
    assert_eq!(qa.lines().count(), 3);
    let full = d.ok(&["ps", "-q", "--no-trunc"]);
    assert_eq!(full, id);

    let by_status = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "status=exited",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_status, "done");
    let by_status = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "status=created",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_status, "idle");
    let by_label = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=back",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_label, "idle");
    let by_label_key = d.ok(&[
        "ps",
        "-a",
        "--filter",
        "label=tier",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_label_key.lines().count(), 2, "{by_label_key}");
    let by_name = d.ok(&["ps", "-a", "--filter", "name=don", "--format", "{{.Names}}"]);
    assert_eq!(by_name, "done");
    let none = d.ok(&["ps", "-a", "--filter", "name=nothing-like-this"]);
    assert_eq!(none.lines().count(), 1, "header only: {none}");
    // A bad filter is the client's mistake.
    let bad = d.fails(&["ps", "--filter", "colour=red"]);
    assert!(bad.err().contains("invalid filter"), "{}", bad.err());
}

#[test]
fn logs_follow_tail_since_timestamps() {
    let d = TestDaemon::start();
    // Prints 1..5 then waits for /tmp/go, prints "late" and exits: the follow must see "late"
    // arrive after it attached, and end when the container exits.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo err1 >&2; \
         while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late; exit 0",
    ]);
    wait_until("five lines", T, || {
        let o = d.docker(&["logs", "talk"]);
        o.out().contains("line5").then_some(())
    });
    let o = d.docker(&["logs", "talk"]);
    assert_eq!(o.out(), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(o.err(), "err1\n", "stderr stays on stderr");

    // --tail counts lines of both streams, as docker's does: the last two are line5 and err1.
    let tail = d.docker(&["logs", "--tail", "2", "talk"]);
    assert_eq!(tail.out(), "line5\n");
    assert_eq!(tail.err(), "err1\n");
    let tail = d.docker(&["logs", "--tail", "3", "talk"]);
    assert_eq!(tail.out(), "line4\nline5\n");
    let tail0 = d.docker(&["logs", "--tail", "0", "talk"]);
    assert_eq!(tail0.out(), "");

    let ts = d.ok(&["logs", "-t", "--tail", "2", "talk"]);
    let (stamp, text) = ts.split_once(' ').unwrap();
    assert_eq!(text, "line5");
    assert!(
        stamp.len() >= 20 && stamp.contains('T') && stamp.ends_with('Z'),
        "RFC3339Nano timestamp: {stamp}"
    );

    // --since in the future shows nothing; in the past shows everything.
    let future = d.docker(&["logs", "--since", "2099-01-01T00:00:00Z", "talk"]);
    assert!(future.status.success(), "{}", future.err());
    assert_eq!(future.out(), "");
    let past = d.ok(&["logs", "--since", "10m", "talk"]);
    assert!(past.starts_with("line1"), "{past}");

    // Follow: reads the old lines, then "late" when it is written, then ends with the container.
    let mut follow = d
        .docker_cmd(&["logs", "-f", "talk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    for want in ["line1", "line2", "line3", "line4", "line5"] {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), want);
    }
    d.ok(&["exec", "talk", "touch", "/tmp/go"]);
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "late");
    let deadline = Instant::now() + T;
    let st = loop {
        if let Some(st) = follow.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("logs -f did not end when the container exited");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(st.success());
    line.clear();
    assert_eq!(
        reader.read_line(&mut line).unwrap(),
        0,
        "nothing after exit: {line:?}"
    );
}

#[test]
fn inspect_fields() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "insp",
        "-e",
        "FOO=bar",
        "--memory",
        "64m",
        "-v",
        "vol1:/data",
        "--restart",
        "on-failure:2",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v = d.inspect("insp");
    assert_eq!(v["Name"], "/insp");
    assert_eq!(v["Id"].as_str().unwrap().len(), 64);
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["1000"]));
    assert_eq!(v["RestartCount"], 0);
    let st = &v["State"];
    assert_eq!(st["Status"], "running");
    assert_eq!(st["Running"], true);
    assert_eq!(st["Paused"], false);
    assert_eq!(st["OOMKilled"], false);
    assert!(st["Pid"].as_i64().unwrap() > 0);
    assert_eq!(st["ExitCode"], 0);
    assert!(st["StartedAt"].as_str().unwrap().starts_with("20"));
    let cfg = &v["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(cfg["Image"], "busybox");
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"FOO=bar"), "{env:?}");
    assert_eq!(v["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
    let mounts = v["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "vol1");
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["RW"], true);
    let log_path = v["LogPath"].as_str().unwrap();
    assert!(
        log_path.ends_with("-json.log") && std::path::Path::new(log_path).is_file(),
        "LogPath {log_path}"
    );
    assert!(v["NetworkSettings"].is_object());
    // Short id, and the name with a slash, find the same container.
    let id = v["Id"].as_str().unwrap();
    assert_eq!(d.inspect(&id[..12])["Id"], id);
    let r = d.http("GET", "/containers//insp/json", None);
    assert!(
        r.status == 200 || r.status == 301 || r.status == 404,
        "{}",
        r.status
    );
    let fmt = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.HostConfig.Memory}}",
        "insp",
    ]);
    assert_eq!(fmt, "running 67108864");

    d.ok(&["stop", "-t", "1", "insp"]);
    let v = d.inspect("insp");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["Running"], false);
    assert!(v["State"]["FinishedAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(v["State"]["Pid"], 0);
}

#[test]
fn attach_without_tty_gets_output() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo tick$i; i=$((i+1)); sleep 0.1; done",
    ]);
    let mut att = d
        .docker_cmd(&["attach", "--no-stdin", "ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(att.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("tick"), "{line:?}");
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("tick"), "{line:?}");
    // Killing the container ends the attach.
    d.ok(&["kill", "ticker"]);
    let deadline = Instant::now() + T;
    while att.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = att.kill();
            panic!("attach did not end when the container was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    d.wait_status("ticker", "exited", T);
}

#[test]
fn stop_start_restart() {
    let d = TestDaemon::start();
    d.ok(&["run", "-d", "--name", "svc", "busybox", "sleep", "1000"]);
    let pid1 = d.inspect("svc")["State"]["Pid"].as_i64().unwrap();
    let t0 = Instant::now();
    d.ok(&["stop", "svc"]);
    // sleep as pid 1 ignores SIGTERM: the stop escalates to SIGKILL after the 10 s timeout;
    // with -t it would be faster. Either way it ends exited with 137.
    let v = d.inspect("svc");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137, "killed after the timeout");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // stop again: nothing to do, still success for the CLI (304).
    d.ok(&["stop", "svc"]);
    let r = d.http("POST", "/containers/svc/stop", None);
    assert_eq!(r.status, 304);

    d.ok(&["start", "svc"]);
    let v = d.inspect("svc");
    assert_eq!(v["State"]["Status"], "running");
    let pid2 = v["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid1, pid2);
    let r = d.http("POST", "/containers/svc/start", None);
    assert_eq!(r.status, 304, "start of a running container");

    d.ok(&["restart", "-t", "0", "svc"]);
    let v = d.inspect("svc");
    assert_eq!(v["State"]["Status"], "running");
    assert_ne!(v["State"]["Pid"].as_i64().unwrap(), pid2);

    // A shell that handles TERM stops quickly with its own code.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    let t0 = Instant::now();
    d.ok(&["stop", "polite"]);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(d.inspect("polite")["State"]["ExitCode"], 7);

    // kill of a stopped container is a conflict.
    let o = d.fails(&["kill", "polite"]);
    assert!(o.err().contains("is not running"), "{}", o.err());
}

#[test]
fn restart_on_failure_counts_to_max() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "crash",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    // Docker's backoff is 100 ms, 200 ms, 400 ms...: three restarts fit well within 30 s.
    wait_until(
        "three restarts then exited",
        Duration::from_secs(30),
        || {
            let v = d.inspect("crash");
            (v["State"]["Status"] == "exited" && v["RestartCount"] == 3).then_some(())
        },
    );
    // And it stays that way.
    std::thread::sleep(Duration::from_millis(1500));
    let v = d.inspect("crash");
    assert_eq!(v["RestartCount"], 3);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 1);
}

#[test]
fn restart_always_brings_a_killed_container_back() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid1 = d.inspect("phoenix")["State"]["Pid"].as_i64().unwrap();
    // Killed from outside (an OOM kill, a crash): `docker kill` would count as a manual stop,
    // which `always` respects until the daemon restarts, as dockerd does.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid1).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let pid2 = wait_until("phoenix running again", T, || {
        let v = d.inspect("phoenix");
        let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
        (v["State"]["Status"] == "running" && pid != pid1 && pid > 0).then_some(pid)
    });
    assert!(pid2 > 0);
    assert!(d.inspect("phoenix")["RestartCount"].as_i64().unwrap() >= 1);
    // docker kill and docker stop are manual: always does not restart the container then.
    d.ok(&["kill", "phoenix"]);
    d.wait_status("phoenix", "exited", T);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.status("phoenix").unwrap(), "exited");
    d.ok(&["start", "phoenix"]);
    d.ok(&["stop", "-t", "1", "phoenix"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.status("phoenix").unwrap(), "exited");
}

#[test]
fn run_rm_leaves_nothing() {
    let d = TestDaemon::start();
    let out = d.ok(&["run", "--rm", "--name", "gone", "busybox", "echo", "bye"]);
    assert_eq!(out, "bye");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let dirs: Vec<_> = std::fs::read_dir(d.data_root.join("containers"))
        .unwrap()
        .collect();
    assert!(dirs.is_empty(), "container dirs left: {dirs:?}");
    let m = d.mounts_under_root();
    assert!(m.is_empty(), "mounts left: {m:?}");
    // Exit code passes through --rm.
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(o.code(), 42);
    // Detached --rm: removed when it exits.
    let id = d.ok(&["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"]);
    wait_until("--rm -d container removed", T, || {
        d.status(&id).is_none().then_some(())
    });
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(d.mounts_under_root().is_empty());
    // A --rm container restarts as with dockerd (its volatile rootfs mounts again), keeps its
    // files across the restart, and is removed when it finally exits.
    let id = d.ok(&[
        "run",
        "-d",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo kept >> /f; sleep 100",
    ]);
    d.ok(&["restart", "-t", "1", &id]);
    wait_until("--rm container running again", T, || {
        (d.status(&id).as_deref() == Some("running")).then_some(())
    });
    assert_eq!(d.ok(&["exec", &id, "cat", "/f"]), "kept\nkept");
    d.ok(&["kill", &id]);
    wait_until("restarted --rm container removed", T, || {
        d.status(&id).is_none().then_some(())
    });
    assert!(d.mounts_under_root().is_empty());
    let shims = d.shim_pids();
    assert!(shims.is_empty(), "shims left: {shims:?}");
}

#[test]
fn run_exit_codes() {
    let d = TestDaemon::start();
    assert_eq!(d.docker(&["run", "--rm", "busybox", "true"]).code(), 0);
    assert_eq!(d.docker(&["run", "--rm", "busybox", "false"]).code(), 1);
    let o = d.docker(&["run", "busybox", "/nonexistent"]);
    assert_eq!(o.code(), 127, "{}", o.err());
    let o = d.docker(&["run", "busybox", "/etc/passwd"]);
    assert_eq!(o.code(), 126, "not executable: {}", o.err());
    // With --rm the failed container is removed (the CLI waits for that).
    let o = d.docker(&["run", "--rm", "--name", "failed", "busybox", "/nonexistent"]);
    assert_eq!(o.code(), 127, "{}", o.err());
    assert!(
        d.status("failed").is_none(),
        "--rm container left after a failed start"
    );
    // stdin piped through run -i.
    let o = d.docker_stdin(
        &["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"],
        b"shout\n",
    );
    assert_eq!(o.out(), "SHOUT\n", "{}", o.err());
}

#[test]
fn exec_variants() {
    let d = TestDaemon::start();
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    assert_eq!(d.ok(&["exec", "box", "echo", "hi"]), "hi");
    assert_eq!(d.docker(&["exec", "box", "sh", "-c", "exit 5"]).code(), 5);
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "box",
            "sh",
            "-c",
            "echo $X $PWD"
        ]),
        "1 /tmp"
    );
    assert_eq!(d.ok(&["exec", "-u", "1000", "box", "id", "-u"]), "1000");
    let o = d.docker_stdin(&["exec", "-i", "box", "cat"], b"piped\n");
    assert_eq!(o.out(), "piped\n");
    let o = d.docker(&["exec", "box", "/nope"]);
    assert_eq!(o.code(), 127, "{}", o.err());
    d.ok(&["exec", "-d", "box", "sh", "-c", "echo x > /tmp/detached"]);
    wait_until("detached exec ran", T, || {
        (d.docker(&["exec", "box", "cat", "/tmp/detached"]).out() == "x\n").then_some(())
    });
}

#[test]
fn stats_no_stream() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 2000000 /dev/zero | tr '\\0' a); sleep 1000",
    ]);
    let out = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}",
        "busy",
    ]);
    let parts: Vec<&str> = out.split('|').collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(parts[0], "busy");
    let usage = parts[1].split('/').next().unwrap().trim();
    assert!(
        !usage.starts_with("0B"),
        "MEM USAGE must be non-zero: {out}"
    );
    assert!(parts[2].ends_with('%'), "{out}");
    assert_ne!(parts[3], "0", "{out}");
    // The table form too.
    let table = d.ok(&["stats", "--no-stream"]);
    assert!(table.contains("MEM USAGE / LIMIT"), "{table}");
    assert!(table.contains("busy"), "{table}");
}

#[test]
fn events_during_a_run() {
    let d = TestDaemon::start();
    let since = d.ok(&["version", "-f", "{{.Server.Os}}"]);
    assert_eq!(since, "linux");
    let mut ev = d
        .docker_cmd(&[
            "events",
            "--filter",
            "type=container",
            "--filter",
            "container=evt",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(ev.stdout.take().unwrap());
    // Another container's events must not show up.
    d.ok(&["run", "--rm", "--name", "other", "busybox", "true"]);
    d.ok(&["run", "--name", "evt", "busybox", "true"]);
    d.ok(&["rm", "evt"]);
    let mut actions = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let _ = tx.send(line.trim().to_string());
            line.clear();
        }
    });
    let deadline = Instant::now() + T;
    while !actions.iter().any(|a| a == "destroy") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(a) => actions.push(a),
            Err(_) => break,
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    let pos = |a: &str| {
        actions
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("no {a} event in {actions:?}"))
    };
    assert!(pos("create") < pos("start"), "{actions:?}");
    assert!(pos("start") < pos("die"), "{actions:?}");
    assert!(pos("die") < pos("destroy"), "{actions:?}");

    // The raw stream keeps the legacy fields and the exit code.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1; // whole seconds: the die event of this second must be inside the range
    let r = d.http(
        "GET",
        &format!("/events?since=0&until={now}&filters=%7B%22event%22%3A%5B%22die%22%5D%7D"),
        None,
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "die");
    assert_eq!(first["Type"], "container");
    assert!(first["id"].is_string());
    assert!(first["timeNano"].is_number());
    assert_eq!(first["Actor"]["Attributes"]["exitCode"], "0");
}

#[test]
fn rename_pause_top_wait() {
    let d = TestDaemon::start();
    d.ok(&["run", "-d", "--name", "a", "busybox", "sleep", "1000"]);
    d.ok(&["rename", "a", "b"]);
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "b");
    d.ok(&["pause", "b"]);
    assert_eq!(d.status("b").unwrap(), "paused");
    assert!(d
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    d.ok(&["unpause", "b"]);
    assert_eq!(d.status("b").unwrap(), "running");
    let top = d.ok(&["top", "b"]);
    assert!(top.contains("sleep 1000"), "{top}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 9",
    ]);
    assert_eq!(d.ok(&["wait", "w"]), "9");
}
