//! Container commands of the berth CLI against a real berthd, compared with docker's CLI on the
//! same daemon: table headers, `--format` results, exit codes, and what the container sees.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::{OutputExt, TestDaemon};

fn header(out: &str) -> String {
    out.lines().next().unwrap_or("").to_string()
}

/// Column titles of a table (cells are separated by at least three spaces).
fn titles(out: &str) -> Vec<String> {
    header(out)
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn ps_matches_docker() {
    let d = TestDaemon::start();
    d.bok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "1000000000000000",
    ]);
    d.bok(&["create", "--name", "idle", "busybox", "true"]);
    d.bok(&["run", "--name", "done", "busybox", "true"]);

    for args in [
        &["ps"][..],
        &["ps", "-a"],
        &["ps", "-a", "-s"],
        &["ps", "-a", "--no-trunc"],
    ] {
        let (b, k) = d.both_settled(args);
        assert_eq!(b.code(), 0, "{args:?}: {}", b.err());
        // The padding depends on the rows (times move between the two calls): compare titles.
        assert_eq!(titles(&b.out()), titles(&k.out()), "header of {args:?}");
        assert_eq!(
            b.out().lines().count(),
            k.out().lines().count(),
            "rows of {args:?}:\n{}\n{}",
            b.out(),
            k.out()
        );
    }
    // Truncated command, as docker: quoted, 20 characters with an ellipsis.
    let row = d.bok(&["ps", "--filter", "name=web", "--format", "{{.Command}}"]);
    assert_eq!(row, "\"sleep 1000000000000…\"");
    for f in [
        "{{.Names}}",
        "{{.ID}} {{.Image}} {{.Command}} {{.State}}",
        "{{.Names}}\\t{{.Labels}}\\t{{.Mounts}}\\t{{.Networks}}",
        "table {{.Names}}\\t{{.Image}}\\t{{.Command}}",
        "{{.Names}} {{.Size}}",
        "{{upper .Names}} {{json .Names}} {{.Label \"tier\"}}",
    ] {
        let (b, k) = d.both(&["ps", "-a", "--format", f]);
        assert_eq!(b.code(), 0, "{f}: {}", b.err());
        let mut bl: Vec<String> = b.out().lines().map(String::from).collect();
        let mut kl: Vec<String> = k.out().lines().map(String::from).collect();
        if !f.starts_with("table") {
            bl.sort();
            kl.sort();
        }
        assert_eq!(bl, kl, "ps -a --format {f}");
    }
    // {{json .}}: the same keys and values, except times that moved between the two calls.
    let b = d.bok(&["ps", "-a", "--filter", "name=web", "--format", "{{json .}}"]);
    let k = d.ok(&["ps", "-a", "--filter", "name=web", "--format", "{{json .}}"]);
    let mut bj: serde_json::Value = serde_json::from_str(&b).unwrap();
    let mut kj: serde_json::Value = serde_json::from_str(&k).unwrap();
    for j in [&mut bj, &mut kj] {
        let m = j.as_object_mut().unwrap();
        m.remove("RunningFor");
        m.remove("Status");
    }
    assert_eq!(bj, kj);
    for args in [
        &["ps", "-q"][..],
        &["ps", "-aq"],
        &["ps", "-a", "-n", "1", "--format", "{{.Names}}"],
        &["ps", "-l", "--format", "{{.Names}}"],
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}",
        ],
        &[
            "ps",
            "-a",
            "--filter",
            "label=tier=front",
            "--format",
            "{{.Names}}",
        ],
        &["ps", "-a", "--no-trunc", "--format", "{{.ID}}"],
    ] {
        let (b, k) = d.both_settled(args);
        assert_eq!(b.code(), 0, "{args:?}: {}", b.err());
        assert_eq!(b.out(), k.out(), "{args:?}");
    }
}

#[test]
fn lifecycle_commands() {
    let d = TestDaemon::start();
    let id = d.bok(&[
        "run",
        "-d",
        "--name",
        "app",
        "busybox",
        "sh",
        "-c",
        "echo started; echo oops >&2; exec sleep 1000",
    ]);
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let status = |n: &str| d.bok(&["inspect", "--format", "{{.State.Status}}", n]);
    assert_eq!(status("app"), "running");
    // logs: stdout and stderr kept apart.
    common::wait_until("logs", Duration::from_secs(10), || {
        let o = d.berth(&["logs", "app"]);
        (o.out() == "started\n" && o.err() == "oops\n").then_some(())
    });
    let (b, k) = d.both(&["logs", "--tail", "1", "app"]);
    assert_eq!((b.out(), b.err()), (k.out(), k.err()));
    let b = d.bok(&["logs", "-t", "app"]);
    assert!(b.contains("Z started"), "{b}");
    for args in [
        &["logs", "--since", "10m", "app"][..],
        &["logs", "--until", "2000-01-01T00:00:00Z", "app"],
        &["logs", "-n", "0", "app"],
    ] {
        let (b, k) = d.both_settled(args);
        assert_eq!(
            (b.code(), b.out(), b.err()),
            (k.code(), k.out(), k.err()),
            "{args:?}"
        );
    }
    // -f follows until the container exits.
    d.bok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done",
    ]);
    let o = d.berth(&["logs", "-f", "talker"]);
    assert_eq!((o.code(), o.out().as_str()), (0, "line1\nline2\nline3\n"));
    // inspect --format agrees with docker's.
    for f in [
        "{{.Name}} {{.State.Running}} {{.Config.Image}}",
        "{{.Config.Cmd}}",
        "{{json .Config.Cmd}}",
        "{{.HostConfig.Memory}} {{.RestartCount}}",
        "{{range .Config.Env}}{{.}};{{end}}",
        "{{index .Config.Cmd 0}} {{len .Config.Cmd}}",
    ] {
        let (b, k) = d.both(&["inspect", "--format", f, "app"]);
        assert_eq!(b.code(), 0, "{f}: {}", b.err());
        assert_eq!(b.out(), k.out(), "inspect --format {f}");
    }
    let full: serde_json::Value = serde_json::from_str(&d.bok(&["inspect", "app"])).unwrap();
    assert_eq!(full[0]["Id"], id.as_str());
    let (b, k) = d.both(&[
        "inspect", "--type", "image", "--format", "{{.Id}}", "busybox",
    ]);
    assert_eq!(b.out(), k.out());
    // exec: output, exit status, -e/-w/-u, stdin.
    assert_eq!(d.bok(&["exec", "app", "echo", "hi"]), "hi");
    assert_eq!(d.berth(&["exec", "app", "sh", "-c", "exit 4"]).code(), 4);
    assert_eq!(
        d.bok(&[
            "exec",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "12:34",
            "app",
            "sh",
            "-c",
            "echo $A $PWD $(id -u):$(id -g)"
        ]),
        "1 /tmp 12:34"
    );
    assert_eq!(
        d.berth_stdin(&["exec", "-i", "app", "cat"], b"piped\n")
            .out(),
        "piped\n"
    );
    assert_eq!(d.berth(&["exec", "-d", "app", "sleep", "1"]).code(), 0);
    // top, port, diff, update, rename, pause/unpause.
    let (b, k) = d.both(&["top", "app"]);
    assert_eq!(titles(&b.out()), titles(&k.out()));
    assert!(b.out().contains("sleep 1000"), "{}", b.out());
    let (b, k) = d.both(&["port", "app"]);
    assert_eq!((b.code(), b.out()), (k.code(), k.out()));
    d.bok(&["exec", "app", "touch", "/newfile"]);
    let (b, k) = d.both(&["diff", "app"]);
    assert_eq!(b.out(), k.out());
    assert!(b.out().contains("A /newfile"), "{}", b.out());
    assert_eq!(
        d.bok(&["update", "--memory", "64m", "--memory-swap", "-1", "app"]),
        "app"
    );
    assert_eq!(
        d.bok(&["inspect", "--format", "{{.HostConfig.Memory}}", "app"]),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(d.bok(&["pause", "app"]), "app");
    assert_eq!(status("app"), "paused");
    assert_eq!(d.bok(&["unpause", "app"]), "app");
    assert_eq!(d.bok(&["rename", "app", "app2"]), "");
    assert_eq!(status("app2"), "running");
    // stats --no-stream: docker's header, one row.
    let (b, k) = d.both(&["stats", "--no-stream"]);
    assert_eq!(titles(&b.out()), titles(&k.out()));
    assert_eq!(b.out().lines().count(), 2, "{}", b.out());
    let b = d.bok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "app2",
    ]);
    assert!(b.starts_with("app2 "), "{b}");
    // stop, start, restart, kill, wait, rm.
    assert_eq!(d.bok(&["stop", "-t", "1", "app2"]), "app2");
    assert_eq!(status("app2"), "exited");
    assert_eq!(d.bok(&["start", "app2"]), "app2");
    assert_eq!(d.bok(&["restart", "-t", "1", "app2"]), "app2");
    assert_eq!(status("app2"), "running");
    assert_eq!(d.bok(&["kill", "-s", "KILL", "app2"]), "app2");
    assert_eq!(d.bok(&["wait", "app2"]), "137");
    let (b, k) = d.both(&["kill", "app2"]);
    assert_eq!(
        b.code(),
        k.code(),
        "kill of a stopped container: {} / {}",
        b.err(),
        k.err()
    );
    assert_eq!(d.bok(&["rm", "app2"]), "app2");
    assert_eq!(d.berth(&["inspect", "app2"]).code(), 1);
    let x = d.bok(&["run", "-d", "busybox", "sleep", "1000"]);
    assert_eq!(d.bok(&["rm", "-f", &x]), x);
}

#[test]
fn run_flags_reach_the_container() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let envf = dir.path().join("env");
    std::fs::write(&envf, "# comment\nFROMFILE=yes\n\nSECOND=2\n").unwrap();
    let labf = dir.path().join("labels");
    std::fs::write(&labf, "fromfile=1\n").unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from host").unwrap();
    let cid = dir.path().join("cid");
    let out = d.bok(&[
        "run", "--rm",
        "-e", "A=1", "--env-file", envf.to_str().unwrap(),
        "-w", "/tmp", "-u", "5:6", "-h", "boxname",
        "-v", &format!("{}:/data:ro", host.display()),
        "--tmpfs", "/scratch",
        "busybox", "sh", "-c",
        "echo $A $FROMFILE $SECOND $PWD $(id -u):$(id -g) $(hostname) $(cat /data/f); touch /data/x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs",
    ]);
    assert_eq!(out, "1 yes 2 /tmp 5:6 boxname from host\nro\ntmpfs");
    let id = d.bok(&[
        "run",
        "-d",
        "--name",
        "opts",
        "--label-file",
        labf.to_str().unwrap(),
        "-l",
        "a=b",
        "--memory",
        "32m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--ulimit",
        "nofile=100:200",
        "--cap-drop",
        "CHOWN",
        "--init",
        "--read-only",
        "--restart",
        "on-failure:2",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "3",
        "--health-cmd",
        "true",
        "--health-interval",
        "1m30s",
        "--log-opt",
        "max-size=1m",
        "--entrypoint",
        "sh",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "-c",
        "ulimit -n; sleep 1000",
    ]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let f = "{{.Config.Labels.fromfile}} {{.Config.Labels.a}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CapDrop}} {{.HostConfig.Init}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.Config.Healthcheck.Interval}} {{.HostConfig.LogConfig.Config}} {{.Config.Entrypoint}}";
    let (b, k) = d.both(&["inspect", "--format", f, "opts"]);
    assert_eq!(b.out(), k.out());
    assert_eq!(
        b.out().trim(),
        "1 b 33554432 50 500000000 512 [CHOWN] true true on-failure:2 SIGUSR1 3 90000000000 map[max-size:1m] [sh]"
    );
    common::wait_until("ulimit output", Duration::from_secs(10), || {
        (d.bok(&["logs", "opts"]) == "100").then_some(())
    });
    // --mount, and the create/start pair.
    d.bok(&["volume", "create", "vol"]);
    let c = d.bok(&[
        "create",
        "--mount",
        "type=volume,source=vol,target=/v",
        "busybox",
        "sh",
        "-c",
        "echo in-volume > /v/f",
    ]);
    assert_eq!(d.bok(&["start", "-a", &c]), "");
    let out = d.bok(&[
        "run",
        "--rm",
        "--mount",
        "source=vol,target=/v,readonly",
        "busybox",
        "cat",
        "/v/f",
    ]);
    assert_eq!(out, "in-volume");
}

#[test]
fn stdin_and_exit_status_as_docker() {
    let d = TestDaemon::start();
    // -i: stdin reaches the container and its EOF ends it.
    let o = d.berth_stdin(
        &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo end"],
        b"line\n",
    );
    assert_eq!(
        (o.code(), o.out().as_str()),
        (0, "line\nend\n"),
        "{}",
        o.err()
    );
    // No -i: stdin is not attached (cat sees EOF at once).
    let o = d.berth_stdin(&["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!((o.code(), o.out().as_str()), (0, ""));
    // stderr stays stderr.
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(
        (o.code(), o.out().as_str(), o.err().as_str()),
        (5, "out\n", "err\n")
    );
    // start -a -i of a created -i container.
    let id = d.bok(&["create", "-i", "busybox", "sh", "-c", "read x; echo got $x"]);
    let o = d.berth_stdin(&["start", "-a", "-i", &id], b"value\n");
    assert_eq!(
        (o.code(), o.out().as_str()),
        (0, "got value\n"),
        "{}",
        o.err()
    );
    // --rm removes after exit.
    d.berth(&["run", "--rm", "--name", "gone", "busybox", "true"]);
    assert_eq!(d.berth(&["inspect", "gone"]).code(), 1);
    // A signal to an attached (non-tty) run goes to the container (--sig-proxy).
    let mut child = d
        .berth_cmd(&[
            "run",
            "--rm",
            "--name",
            "sig",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = common::wait_until("berth run to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap()
    });
    assert_eq!(st.code(), Some(7));
}

#[test]
fn cp_export_commit() {
    let d = TestDaemon::start();
    d.bok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.txt");
    std::fs::write(&src, "to the container").unwrap();
    d.bok(&["cp", src.to_str().unwrap(), "box:/tmp/"]);
    assert_eq!(
        d.bok(&["exec", "box", "cat", "/tmp/in.txt"]),
        "to the container"
    );
    d.bok(&["cp", src.to_str().unwrap(), "box:/tmp/renamed.txt"]);
    assert_eq!(
        d.bok(&["exec", "box", "cat", "/tmp/renamed.txt"]),
        "to the container"
    );
    let back = dir.path().join("back.txt");
    d.bok(&["cp", "box:/tmp/in.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "to the container");
    d.bok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /d/sub && echo x > /d/sub/f",
    ]);
    let into = dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    d.bok(&["cp", "box:/d", into.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(into.join("d/sub/f")).unwrap(),
        "x\n"
    );
    // "-": a tar on stdout, and a tar from stdin.
    let o = d.berth(&["cp", "box:/tmp/in.txt", "-"]);
    assert_eq!(o.code(), 0, "{}", o.err());
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["in.txt"]);
    let o = d.berth_stdin(&["cp", "-", "box:/tmp/sub"], &o.stdout);
    assert_eq!(o.code(), 1, "no such directory yet: {}", o.err());
    d.bok(&["exec", "box", "mkdir", "/tmp/sub"]);
    let t = d.berth(&["cp", "box:/tmp/in.txt", "-"]).stdout;
    let o = d.berth_stdin(&["cp", "-", "box:/tmp/sub"], &t);
    assert_eq!(o.code(), 0, "{}", o.err());
    assert_eq!(
        d.bok(&["exec", "box", "cat", "/tmp/sub/in.txt"]),
        "to the container"
    );
    let tar = dir.path().join("fs.tar");
    d.bok(&["export", "-o", tar.to_str().unwrap(), "box"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 100_000);
    let img = d.bok(&["commit", "-c", "ENV COMMITTED=1", "box", "snap:v1"]);
    assert!(img.starts_with("sha256:"), "{img}");
    assert_eq!(
        d.bok(&[
            "run",
            "--rm",
            "snap:v1",
            "sh",
            "-c",
            "cat /tmp/in.txt; echo \" $COMMITTED\""
        ]),
        "to the container 1"
    );
}
