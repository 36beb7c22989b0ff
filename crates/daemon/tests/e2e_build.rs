//! `docker build` (the classic builder, DOCKER_BUILDKIT=0) against berthd, end to end: the
//! docker CLI sends the context, berthd builds with berth-build, the result runs.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// berth-runtime runs the RUN steps; cargo builds it only when asked.
fn require_runtime() {
    let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
    let rt = berthd.parent().unwrap().join("berth-runtime");
    assert!(
        rt.is_file(),
        "{} is missing: build it first: cargo build -p berth-runtime",
        rt.display()
    );
}

fn start() -> TestDaemon {
    require_runtime();
    TestDaemon::start()
}

/// A context directory with these files (path, contents).
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let p = d.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    d
}

fn build(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap();
    args.push(c);
    let mut cmd = d.docker_cmd(&args);
    cmd.env("DOCKER_BUILDKIT", "0");
    run_with_timeout(cmd, std::time::Duration::from_secs(120), None)
}

#[track_caller]
fn build_ok(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> String {
    let o = build(d, ctx, extra);
    assert!(
        o.status.success(),
        "docker build failed ({}):\nstdout: {}\nstderr: {}\n{}",
        o.status,
        o.out(),
        o.err(),
        d.log_tail()
    );
    o.out()
}

fn run_out(d: &TestDaemon, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    d.ok(&args)
}

fn run_root(d: &TestDaemon, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "-u", "0", image];
    args.extend_from_slice(cmd);
    d.ok(&args)
}

/// Nothing but the cache is left under the build dir; no mounts under the data root; no
/// runtime state.
#[track_caller]
fn assert_clean(d: &TestDaemon) {
    let build = d.data_root.join("build");
    for sub in ["tmp", "mnt"] {
        let p = build.join(sub);
        let left: Vec<_> = std::fs::read_dir(&p)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind in {}: {left:?}", p.display());
    }
    let mounts = mounts_under(&d.data_root);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let rt = d.exec_root.join("build-runtime");
    let left: Vec<_> = std::fs::read_dir(&rt)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name())
                .filter(|n| n != "seccomp")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().chars().all(|c| c.is_ascii_hexdigit())),
        "runtime state left: {left:?}"
    );
    let snaps =
        std::fs::read_to_string(d.data_root.join("snapshots/index.json")).unwrap_or_default();
    assert!(!snaps.contains("\"build-"), "build snapshot left: {snaps}");
}

#[test]
fn multi_stage_copy_from_args_env_workdir_user() {
    let d = start();
    let ctx = context(&[
        (
            "Dockerfile",
            r#"ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
ENV TARGET=world
WORKDIR /src
RUN echo "$GREETING $TARGET" > out.txt && echo app:x:1234:1234::/home/app:/bin/sh >> /etc/passwd && echo app:x:1234: >> /etc/group
COPY --chown=app:app --chmod=640 data.txt /src/data.txt

FROM busybox
COPY --from=builder /src/out.txt /src/data.txt /app/
COPY --from=builder /etc/passwd /etc/passwd
USER app
WORKDIR /home/work
EXPOSE 8080 53/udp
LABEL org.example.k="v 1"
CMD ["cat", "/app/out.txt"]
"#,
        ),
        ("data.txt", "data\n"),
    ]);
    let out = build_ok(&d, ctx.path(), &["-t", "ms:1"]);
    assert!(out.contains("Step 1/15 : ARG BASE=busybox"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Step 2/15 : FROM $BASE AS builder"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged ms:1"), "{out}");
    assert_eq!(run_out(&d, "ms:1", &[]), "hello world");
    // COPY --chown by name and --chmod in the first stage, carried by COPY --from.
    let ls = run_out(&d, "ms:1", &["ls", "-ln", "/app/data.txt"]);
    assert!(ls.starts_with("-rw-r-----"), "{ls}");
    assert!(
        ls.contains(" 0 "),
        "COPY --from without --chown is root-owned: {ls}"
    );
    assert_eq!(run_out(&d, "ms:1", &["id", "-u"]), "1234");
    assert_eq!(run_out(&d, "ms:1", &["pwd"]), "/home/work");
    let cfg = d.inspect("ms:1");
    let c = &cfg["Config"];
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/home/work");
    assert_eq!(c["Labels"]["org.example.k"], "v 1");
    assert!(c["ExposedPorts"].get("8080/tcp").is_some(), "{c}");
    assert!(c["ExposedPorts"].get("53/udp").is_some(), "{c}");
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "/app/out.txt"]));
    // History as the classic builder writes it.
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "ms:1",
    ]);
    assert!(
        hist.contains(r#"/bin/sh -c #(nop)  CMD ["cat" "/app/out.txt"]"#),
        "{hist}"
    );
    assert!(
        hist.contains("/bin/sh -c #(nop) WORKDIR /home/work"),
        "{hist}"
    );
    assert_clean(&d);
}

#[test]
fn rebuild_hits_the_cache_and_content_changes_miss() {
    let d = start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
        ),
        ("a.txt", "one\n"),
    ]);
    let first = build_ok(&d, ctx.path(), &["-t", "c:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = d.ok(&["image", "inspect", "-f", "{{.Id}}", "c:1"]);
    let second = build_ok(&d, ctx.path(), &["-t", "c:2"]);
    assert_eq!(second.matches("Using cache").count(), 2, "{second}");
    let id2 = d.ok(&["image", "inspect", "-f", "{{.Id}}", "c:2"]);
    assert_eq!(id1, id2);
    // Same size, new content (and an old mtime): a miss, found by content.
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let third = build_ok(&d, ctx.path(), &["-t", "c:3"]);
    assert!(!third.contains("Using cache"), "{third}");
    assert_eq!(run_out(&d, "c:3", &["cat", "/b.txt"]), "two");
    // --no-cache runs everything again.
    let fourth = build_ok(&d, ctx.path(), &["--no-cache", "-t", "c:4"]);
    assert!(!fourth.contains("Using cache"), "{fourth}");
    assert!(fourth.contains("Running in"), "{fourth}");
    // The cache survives a daemon restart.
    let mut d = d;
    d.terminate();
    d.spawn();
    let fifth = build_ok(&d, ctx.path(), &["-t", "c:5"]);
    assert_eq!(fifth.matches("Using cache").count(), 2, "{fifth}");
    // `docker system df` counts the cached steps (the RUN's layer among them, shared with
    // the images that use it) and the kept context.
    let df = d.http("GET", "/system/df", None).json();
    let bc = df["BuildCache"].as_array().unwrap();
    assert!(
        bc.iter().any(|e| e["Type"] == "regular"
            && e["Description"]
                .as_str()
                .unwrap_or("")
                .contains("cat /a.txt")),
        "{df}"
    );
    assert!(
        bc.iter()
            .any(|e| e["Type"] == "source.local" && e["Size"].as_i64() > Some(0)),
        "{df}"
    );
    assert!(bc.iter().any(|e| e["Shared"] == true), "{df}");
    let shown = d.ok(&["system", "df"]);
    let line = shown
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap();
    assert!(!line.contains("Build Cache     0 "), "{shown}");
    // builder prune empties it.
    let r = d.http("POST", "/build/prune", None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(!v["CachesDeleted"].as_array().unwrap().is_empty(), "{v}");
    let df = d.http("GET", "/system/df", None).json();
    assert_eq!(df["BuildCache"].as_array().map(Vec::len), Some(0), "{df}");
    let sixth = build_ok(&d, ctx.path(), &["-t", "c:6"]);
    assert!(!sixth.contains("Using cache"), "{sixth}");
    assert_clean(&d);
}

#[test]
fn source_date_epoch_gives_the_same_digest_twice() {
    let d = start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nARG SOURCE_DATE_EPOCH\nCOPY f /f\nRUN echo built > /g\nENV X=1\n",
        ),
        ("f", "x\n"),
    ]);
    let args = [
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        "r:1",
    ];
    build_ok(&d, ctx.path(), &args);
    let a = d.ok(&["image", "inspect", "-f", "{{.Id}}", "r:1"]);
    build_ok(&d, ctx.path(), &args);
    let b = d.ok(&["image", "inspect", "-f", "{{.Id}}", "r:1"]);
    assert_eq!(a, b);
    let created = d.ok(&["image", "inspect", "-f", "{{.Created}}", "r:1"]);
    assert!(created.starts_with("2023-11-14T22:13:20"), "{created}");
}

#[test]
fn shell_heredocs_onbuild_healthcheck_add_tar() {
    let d = start();
    // A tar for ADD to unpack.
    let tar_path = tempfile::NamedTempFile::new().unwrap();
    {
        let f = std::fs::File::create(tar_path.path()).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o755);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "pkg/bin.sh", &b"abc"[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    let ctx = context(&[(
        "Dockerfile",
        r#"FROM busybox
SHELL ["/bin/sh", "-e", "-c"]
RUN <<EOF
echo one > /h1
echo two >> /h1
EOF
COPY <<EOF /etc/conf.txt
name=${NAME:-dflt}
EOF
ADD pkg.tgz /opt/
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo triggered > /onbuild.txt
STOPSIGNAL SIGINT
"#,
    )]);
    std::fs::copy(tar_path.path(), ctx.path().join("pkg.tgz")).unwrap();
    build_ok(&d, ctx.path(), &["-t", "feat:1"]);
    assert_eq!(run_out(&d, "feat:1", &["cat", "/h1"]), "one\ntwo");
    assert_eq!(
        run_out(&d, "feat:1", &["cat", "/etc/conf.txt"]),
        "name=dflt"
    );
    let ls = run_out(&d, "feat:1", &["ls", "-ln", "/opt/pkg/bin.sh"]);
    assert!(ls.starts_with("-rwxr-xr-x"), "{ls}");
    assert!(
        ls.contains(" 7 ") && ls.contains(" 8 "),
        "ADD keeps the tar's owners: {ls}"
    );
    let cfg = d.inspect("feat:1");
    let c = &cfg["Config"];
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo triggered > /onbuild.txt"])
    );
    assert_eq!(c["StopSignal"], "SIGINT");
    // A child image runs the trigger and does not keep it.
    let child = context(&[("Dockerfile", "FROM feat:1\nRUN true\n")]);
    let out = build_ok(&d, child.path(), &["-t", "child:1"]);
    assert!(out.contains("Executing 1 build trigger"), "{out}");
    assert_eq!(
        run_out(&d, "child:1", &["cat", "/onbuild.txt"]),
        "triggered"
    );
    let c = d.inspect("child:1");
    assert!(
        c["Config"]["OnBuild"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{}",
        c["Config"]
    );
}

#[test]
fn failing_run_reports_code_and_output_and_leaves_nothing() {
    let d = start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo before-fail && exit 3\nRUN echo never\n",
    )]);
    let o = build(&d, ctx.path(), &["-t", "bad:1"]);
    assert!(!o.status.success());
    assert_eq!(
        o.status.code(),
        Some(3),
        "the CLI exits with errorDetail.code"
    );
    let all = format!("{}{}", o.out(), o.err());
    assert!(all.contains("before-fail"), "{all}");
    assert!(
        all.contains(
            "The command '/bin/sh -c echo before-fail && exit 3' returned a non-zero code: 3"
        ),
        "{all}"
    );
    assert!(!all.contains("never"), "{all}");
    assert!(d.docker(&["image", "inspect", "bad:1"]).status.code() != Some(0));
    assert_clean(&d);
}

#[test]
fn bad_input_is_reported_clearly() {
    let d = start();
    /// (context files, extra docker build flags, expected text in the output)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("Dockerfile", "FROM busybox\nCOPY missing.txt /x\n")],
            &[],
            "file not found in build context or excluded by .dockerignore: stat missing.txt",
        ),
        (
            &[("Dockerfile", "FROM busybox\nCOPY ../../etc/passwd /x\n")],
            &[],
            "file not found in build context",
        ),
        (
            &[("Dockerfile", "ARG IMG\nFROM $IMG\n")],
            &[],
            "base name ($IMG) should not be blank",
        ),
        (
            &[("Dockerfile", "FROM busybox\nRUN true\nFOO bar\n")],
            &[],
            "Dockerfile:3",
        ),
        (
            &[
                ("Dockerfile", "FROM busybox\nCOPY a b /notadir\n"),
                ("a", "1"),
                ("b", "2"),
            ],
            &[],
            "the destination must be a directory and end with a /",
        ),
        (
            &[("Dockerfile", "FROM busybox\n")],
            &["--target", "nosuch"],
            "nosuch",
        ),
    ];
    for (files, extra, want) in cases {
        let ctx = context(files);
        let o = build(&d, ctx.path(), extra);
        let all = format!("{}{}", o.out(), o.err());
        assert!(!o.status.success(), "{files:?} built:\n{all}");
        assert!(all.contains(want), "{files:?}: want {want:?} in:\n{all}");
    }
    // A symlink pointing out of the context: followed inside the context only.
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY link /x\n")]);
    std::os::unix::fs::symlink("/etc/hostname", ctx.path().join("link")).unwrap();
    let o = build(&d, ctx.path(), &[]);
    let all = format!("{}{}", o.out(), o.err());
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("file not found in build context"), "{all}");
    assert_clean(&d);
}

#[test]
fn dockerignore_is_honoured_by_the_daemon() {
    let d = start();
    // The docker CLI applies .dockerignore itself; send a raw context so the daemon's own
    // filtering is what is tested.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        (".dockerignore", "*.log\nsecret/\n"),
        ("a.log", "x"),
        ("keep.txt", "k"),
        ("secret/key", "s"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    let body = b.into_inner().unwrap();
    let r = http_request_bytes(&d, "/build?t=ign:1", &body);
    assert!(r.contains("Successfully built"), "{r}");
    let ls = run_out(&d, "ign:1", &["ls", "-a", "/ctx"]);
    let names: Vec<&str> = ls.split_whitespace().collect();
    assert!(names.contains(&"keep.txt"), "{ls}");
    assert!(!names.contains(&"a.log"), "{ls}");
    assert!(!names.contains(&"secret"), "{ls}");
    assert_clean(&d);
}

/// POST with a binary body over the daemon's socket; the raw reply text.
fn http_request_bytes(d: &TestDaemon, path: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts `docker build` of a RUN that sleeps, returns once the step runs: the client and
/// the `sleep N` it runs (N of this attempt's own, so [`kill_build_processes`] finds this
/// build's process and no other's: a retried attempt, another test binary).
fn sleeping_build(d: &TestDaemon) -> (std::process::Child, String) {
    let secs = 600
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_micros();
    let sleep = format!("sleep {secs}");
    let dockerfile = format!("FROM busybox\nRUN echo started && {sleep}\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    let mut cmd = d.docker_cmd(&["build", ctx.path().to_str().unwrap()]);
    cmd.env("DOCKER_BUILDKIT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let started = std::time::Instant::now();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        seen.push_str(&line);
        // The step's own output, not the "Step 2/2 : RUN echo started ..." line.
        if n == 0
            || line.trim() == "started"
            || started.elapsed() > std::time::Duration::from_secs(60)
        {
            break;
        }
    }
    if !seen.lines().any(|l| l.trim() == "started") {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the RUN step did not start: {seen}");
    }
    (child, sleep)
}

/// SIGKILLs the build steps' processes running `sleep` (their cgroup is berth-build's);
/// returns their pids.
fn kill_build_processes(sleep: &str) -> Vec<String> {
    let ps = std::process::Command::new("pgrep")
        .args(["-f", sleep])
        .output()
        .unwrap();
    let leaked: Vec<String> = std::str::from_utf8(&ps.stdout)
        .unwrap()
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .unwrap_or_default()
                .contains("berth-build")
        })
        .map(str::to_string)
        .collect();
    for pid in &leaked {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    leaked
}

#[test]
fn client_going_away_cancels_the_build_and_leaves_nothing() {
    let d = start();
    let (mut child, sleep) = sleeping_build(&d);
    child.kill().unwrap();
    child.wait().unwrap();
    // The step's container dies with the build; every mount, snapshot and temp dir goes.
    wait_until(
        "the build to be cleaned up",
        std::time::Duration::from_secs(30),
        || {
            let mounts = mounts_under(&d.data_root);
            let tmp_empty = std::fs::read_dir(d.data_root.join("build/tmp"))
                .map(|mut r| r.next().is_none())
                .unwrap_or(true);
            let snaps = std::fs::read_to_string(d.data_root.join("snapshots/index.json"))
                .unwrap_or_default();
            (mounts.is_empty() && tmp_empty && !snaps.contains("\"build-")).then_some(())
        },
    );
    let leaked = kill_build_processes(&sleep);
    assert!(
        leaked.is_empty(),
        "the RUN's processes {leaked:?} still ran"
    );
    assert_clean(&d);
}

/// Serves `body` to every GET on a loopback port; returns the URL.
fn serve_once_per_request(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/files/tool.txt")
}

#[test]
fn run_mounts_network_none_add_url_and_user_by_name() {
    let d = start();
    let url = serve_once_per_request(b"downloaded\n");
    let dockerfile = format!(
        r#"FROM busybox
ADD {url} /dl/
RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /cache-count
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/in.txt > /from-bind
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && test ! -e /scratch-left
RUN --network=none sh -c 'ip link 2>/dev/null | grep -c ": " > /links || cat /proc/net/dev | tail -n +3 | wc -l > /links'
USER user
RUN id -un > /tmp/who
"#
    );
    let ctx = context(&[
        ("Dockerfile", dockerfile.as_str()),
        ("src/in.txt", "bound\n"),
    ]);
    build_ok(&d, ctx.path(), &["-t", "mnt:1"]);
    assert_eq!(
        run_root(&d, "mnt:1", &["cat", "/dl/tool.txt"]),
        "downloaded"
    );
    let ls = run_root(&d, "mnt:1", &["ls", "-ln", "/dl/tool.txt"]);
    assert!(ls.starts_with("-rw-------"), "ADD of a URL is 0600: {ls}");
    assert_eq!(run_root(&d, "mnt:1", &["cat", "/cache-count"]), "1");
    assert_eq!(run_root(&d, "mnt:1", &["cat", "/from-bind"]), "bound");
    assert_eq!(
        run_root(&d, "mnt:1", &["cat", "/links"]),
        "1",
        "only loopback with --network=none"
    );
    assert_eq!(run_root(&d, "mnt:1", &["cat", "/tmp/who"]), "user");
    // Mount targets made for the step are not in the image.
    let o = d.docker(&[
        "run", "--rm", "mnt:1", "ls", "-d", "/cache", "/scratch", "/mnt/src",
    ]);
    assert!(
        !o.status.success(),
        "mount points left in the image: {}",
        o.out()
    );
    // The cache mount persists across builds (a no-cache rebuild sees the first run's file).
    build_ok(&d, ctx.path(), &["--no-cache", "-t", "mnt:2"]);
    assert_eq!(run_root(&d, "mnt:2", &["cat", "/cache-count"]), "2");
    assert_clean(&d);
}

#[test]
fn only_the_stages_the_target_needs_are_built() {
    let d = start();
    let ctx = context(&[(
        "Dockerfile",
        r#"FROM busybox AS a
RUN echo a > /a
FROM busybox AS broken
RUN exit 1
FROM busybox AS b
RUN echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=2 /b /b
"#,
    )]);
    let out = build_ok(&d, ctx.path(), &["-t", "stages:1"]);
    assert!(!out.contains("exit 1"), "the unneeded stage ran:\n{out}");
    assert_eq!(run_out(&d, "stages:1", &["cat", "/a", "/b"]), "a\nb");
    let o = build(&d, ctx.path(), &["--target", "broken"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", o.out(), o.err());
    assert_clean(&d);
}

// The network of RUN steps: on the default bridge as dockerd runs them (own namespace, eth0
// with an address of the bridge's pool, default route, a `docker run` container's
// resolv.conf), loopback only without a default bridge or with `--network none`, the
// daemon's namespace with `--network host`; nothing of a step's wiring left once it is done,
// failed or its daemon was killed.

/// A file of the built image.
fn cat(d: &TestDaemon, image: &str, file: &str) -> String {
    run_root(d, image, &["cat", file])
}

/// Interface names of an `ip -o link` listing, sorted, one per line.
const LINKS: &str = "ip -o link | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | sort";

fn bridge_subnet(d: &TestDaemon) -> (ipnet_lite::Net, Ipv4Addr) {
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    let cfg = &v[0]["IPAM"]["Config"][0];
    let subnet = ipnet_lite::Net::parse(cfg["Subnet"].as_str().unwrap());
    let gw: Ipv4Addr = cfg["Gateway"].as_str().unwrap().parse().unwrap();
    (subnet, gw)
}

/// A tiny IPv4 prefix, enough to ask whether an address is inside the bridge's subnet.
mod ipnet_lite {
    use std::net::Ipv4Addr;

    #[derive(Debug, Clone, Copy)]
    pub struct Net {
        pub addr: Ipv4Addr,
        pub len: u32,
    }

    impl Net {
        pub fn parse(s: &str) -> Net {
            let (a, l) = s.split_once('/').unwrap();
            Net {
                addr: a.parse().unwrap(),
                len: l.parse().unwrap(),
            }
        }

        pub fn contains(&self, ip: Ipv4Addr) -> bool {
            let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
            u32::from(ip) & mask == u32::from(self.addr) & mask
        }
    }
}

/// `vb*` host ends of veths in the daemon's namespace.
fn veths(d: &TestDaemon) -> Vec<String> {
    let o = d.host(&["ip", "-o", "link"]);
    assert!(o.status.success(), "ip link: {}", o.err());
    o.out()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with("vb"))
        .collect()
}

/// The bridge network's record as berthd stored it.
fn bridge_record(d: &TestDaemon) -> serde_json::Value {
    let dir = d.data_root.join("network");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap_or_default();
        if v["name"] == "bridge" {
            return v;
        }
    }
    panic!("no bridge network record under {}", dir.display());
}

fn is_empty_map(v: &serde_json::Value) -> bool {
    v.is_null() || v.as_object().is_some_and(|m| m.is_empty())
}

/// Nothing of a build step's wiring is left: no veth, no lease or endpoint (in the API and on
/// disk), no namespace file under the exec root.
#[track_caller]
fn assert_network_clean(d: &TestDaemon) {
    // The kernel takes a veth with its namespace a little after the namespace's last user.
    let left = std::cell::RefCell::new(Vec::new());
    let gone = (0..100).any(|_| {
        *left.borrow_mut() = veths(d);
        let ok = left.borrow().is_empty();
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(gone, "veths left: {:?}", left.borrow());
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert!(
        is_empty_map(&v[0]["Containers"]),
        "endpoints left on bridge: {}",
        v[0]["Containers"]
    );
    let rec = bridge_record(d);
    assert!(
        is_empty_map(&rec["pool"]["leases"]),
        "leases left: {}",
        rec["pool"]
    );
    assert!(
        is_empty_map(&rec["endpoints"]),
        "endpoints left: {}",
        rec["endpoints"]
    );
    let ns: Vec<_> = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
}

/// Every path in the layers of a saved image.
fn saved_paths(d: &TestDaemon, image: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), image]);
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let mut c = Command::new("tar");
    c.arg("-xf").arg(&tar).arg("-C").arg(&x);
    let o = run_with_timeout(c, Duration::from_secs(30), None);
    assert!(o.status.success(), "untar: {}", o.err());
    let mut out = Vec::new();
    let mut todo = vec![x];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
            continue;
        }
        let mut c = Command::new("tar");
        c.arg("-tf").arg(&p);
        let o = run_with_timeout(c, Duration::from_secs(30), None);
        if o.status.success() {
            out.extend(o.out().lines().map(str::to_string));
        }
    }
    out
}

#[test]
fn run_steps_are_on_the_default_bridge_and_leave_nothing() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let (subnet, gateway) = bridge_subnet(&d);
    let dockerfile = format!(
        r#"FROM busybox
RUN ip -4 -o addr show eth0 > /addr
RUN cat /etc/resolv.conf > /resolv && cat /etc/hosts > /hosts && hostname > /hostname
RUN ip -4 route > /route
RUN {LINKS} > /links
RUN --network=none {LINKS} > /links-none
RUN --network=default {LINKS} > /links-default
RUN --network=host {LINKS} > /links-host
"#
    );
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["-t", "net:1"]);

    let addr = cat(&d, "net:1", "/addr");
    // "N: eth0    inet A.B.C.D/L brd ... scope global eth0"
    let cidr = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet address: {addr}"));
    let ip: Ipv4Addr = cidr.split('/').next().unwrap().parse().unwrap();
    assert!(
        subnet.contains(ip),
        "{ip} is not in the bridge's {subnet:?}"
    );
    assert_ne!(ip, gateway);
    assert_eq!(
        cidr.split('/').nth(1).unwrap(),
        subnet.len.to_string(),
        "{addr}"
    );
    let route = cat(&d, "net:1", "/route");
    assert!(
        route.contains(&format!("default via {gateway} dev eth0")),
        "no default route via the gateway: {route}"
    );

    // What a `docker run` container on the bridge gets.
    let run_resolv = d.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert_eq!(cat(&d, "net:1", "/resolv"), run_resolv);
    let hostname = cat(&d, "net:1", "/hostname");
    let hosts = cat(&d, "net:1", "/hosts");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [ip.to_string(), hostname.clone()]),
        "no line for {ip} {hostname} in:\n{hosts}"
    );

    // Only the step's own interfaces; the daemon's (the bridge, other veths) stay outside.
    assert_eq!(cat(&d, "net:1", "/links"), "eth0\nlo");
    assert_eq!(cat(&d, "net:1", "/links-default"), "eth0\nlo");
    assert_eq!(cat(&d, "net:1", "/links-none"), "lo");
    let host_links = cat(&d, "net:1", "/links-host");
    let host_links: Vec<&str> = host_links.lines().collect();
    assert!(
        host_links.contains(&"lo") && host_links.contains(&"berth0"),
        "--network=host sees the daemon's namespace: {host_links:?}"
    );
    assert!(!host_links.contains(&"eth0"), "{host_links:?}");

    // The files the step saw are mounts, not part of the image (busybox has neither).
    let paths = saved_paths(&d, "net:1");
    assert!(paths.iter().any(|p| p.ends_with("addr")), "{paths:?}");
    for f in ["etc/resolv.conf", "etc/hosts"] {
        assert!(
            !paths.iter().any(|p| p.trim_start_matches("./") == f),
            "{f} in the image's layers"
        );
    }

    assert_network_clean(&d);
    assert_clean(&d);
    // The steps' addresses are free again: a container gets the first one, as a build step did.
    let run_addr = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(run_addr.contains(&format!("inet {cidr}")), "{run_addr}");
    assert_network_clean(&d);
}

#[test]
fn build_networkmode_picks_the_network_of_every_run() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let dockerfile = format!("FROM busybox\nRUN {LINKS} > /links\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["--network", "none", "-t", "n:none"]);
    assert_eq!(cat(&d, "n:none", "/links"), "lo");
    build_ok(&d, ctx.path(), &["--network", "bridge", "-t", "n:bridge"]);
    assert_eq!(cat(&d, "n:bridge", "/links"), "eth0\nlo");
    build_ok(&d, ctx.path(), &["--network", "host", "-t", "n:host"]);
    let host = cat(&d, "n:host", "/links");
    assert!(host.lines().any(|l| l == "berth0"), "{host}");
    assert_network_clean(&d);
}

#[test]
fn without_a_default_bridge_run_has_only_loopback() {
    require_runtime();
    let d = start();
    let dockerfile = format!("FROM busybox\nRUN {LINKS} > /links\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["-t", "lo:1"]);
    assert_eq!(cat(&d, "lo:1", "/links"), "lo");
}

#[test]
fn unknown_network_mode_is_refused_before_any_step() {
    require_runtime();
    // In a namespace of its own: the user network below may get a bridge.
    let d = TestDaemon::start_in_netns();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo ran-a-step\n")]);
    // dockerd 20.10 says the same words, at the first RUN.
    let o = build(&d, ctx.path(), &["--network", "nonexistent"]);
    assert!(!o.status.success(), "{}", o.out());
    assert!(
        o.err().contains("network nonexistent not found"),
        "{}",
        o.err()
    );
    assert!(!o.out().contains("Step 1/"), "{}", o.out());
    assert!(!o.out().contains("ran-a-step"), "{}", o.out());
    let r = d.http("POST", "/build?networkmode=nonexistent", None);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 404, "{body}");
    assert!(body.contains("network nonexistent not found"), "{body}");
    let r = d.http("POST", "/build?networkmode=container:abc", None);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 404, "{body}");
    assert!(body.contains("No such container: abc"), "{body}");
    d.ok(&["create", "--name", "abc", "busybox"]);
    let r = d.http("POST", "/build?networkmode=container:abc", None);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 400, "{body}");
    assert!(
        body.contains("container:abc") && body.contains("is not supported for builds"),
        "{body}"
    );
}

/// `--network <user network>`: RUN steps join that network (as dockerd's builder does), get
/// an address in its subnet and its embedded DNS, and so reach a container there by name;
/// afterwards nothing of the steps is left on it.
#[test]
fn run_steps_join_a_user_network_and_resolve_its_names() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--subnet", "10.88.0.0/24", "usernet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "websrv",
        "--network",
        "usernet",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /w && echo served-$((3*4)) > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN ip -4 -o addr show eth0 > /addr && cat /etc/resolv.conf > /resolv && \\\n    for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO /page http://websrv/ && break; sleep 0.5; done\n",
    )]);
    let o = build(&d, ctx.path(), &["--network", "usernet", "-t", "onnet"]);
    assert!(o.status.success(), "{}\n{}", o.out(), o.err());
    let addr = run_out(&d, "onnet", &["cat", "/addr"]);
    assert!(addr.contains("inet 10.88.0."), "{addr}");
    let resolv = run_out(&d, "onnet", &["cat", "/resolv"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert_eq!(run_out(&d, "onnet", &["cat", "/page"]), "served-12");
    // Only websrv is left on the network.
    let eps = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "usernet"]);
    assert_eq!(eps.trim(), "1", "{eps}");
    d.ok(&["rm", "-f", "websrv"]);
    assert_network_clean(&d);
}

#[test]
fn failing_run_on_the_bridge_releases_everything() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN ip -4 -o addr show eth0 && exit 3\n",
    )]);
    let o = build(&d, ctx.path(), &[]);
    assert!(!o.status.success());
    assert!(
        o.out().contains("inet "),
        "the step ran on eth0: {}",
        o.out()
    );
    assert!(
        o.err().contains("returned a non-zero code: 3"),
        "{}",
        o.err()
    );
    assert_network_clean(&d);
    assert_clean(&d);
}

#[test]
fn cancelled_run_on_the_bridge_releases_everything() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let (mut child, sleep) = sleeping_build(&d);
    let wired = veths(&d);
    child.kill().unwrap();
    child.wait().unwrap();
    // The cancel reaches the step within the engine's poll; its unwiring follows it.
    let mut left = Vec::new();
    let clean = (0..100).any(|_| {
        left = veths(&d);
        std::thread::sleep(Duration::from_millis(100));
        left.is_empty()
    });
    // The test's own leftovers go before the verdict.
    let leaked = kill_build_processes(&sleep);
    assert_eq!(wired.len(), 1, "the step's veth while it ran: {wired:?}");
    assert!(clean, "the cancelled step kept its veth: {left:?}");
    assert!(
        leaked.is_empty(),
        "the step's processes {leaked:?} still ran"
    );
    assert_network_clean(&d);
}

#[test]
fn a_build_killed_with_its_daemon_leaves_nothing_after_restart() {
    require_runtime();
    let mut d = TestDaemon::start_in_netns();
    let (mut child, sleep) = sleeping_build(&d);
    let wired = veths(&d);
    let leases = bridge_record(&d)["pool"]["leases"].clone();
    d.kill9();
    let _ = child.kill();
    let _ = child.wait();
    // The step's processes outlive berthd; the test's own leftovers go before any verdict.
    kill_build_processes(&sleep);
    assert_eq!(wired.len(), 1, "the step's veth while it ran: {wired:?}");
    assert!(!is_empty_map(&leases), "the step's lease while it ran");
    d.spawn();
    assert_network_clean(&d);
    // And the bridge works as before: a container gets the address the step had.
    let step_ip = leases.as_object().unwrap().keys().next().unwrap().clone();
    let run_addr = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(run_addr.contains(&format!("inet {step_ip}/")), "{run_addr}");
}
