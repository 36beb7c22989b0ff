//! Behaviour docker-py's integration tests rely on: kill waits for the exit, a tty exec keeps the
//! pty's output processing, GroupAdd, log driver and runtime validation as dockerd words them.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

fn json(r: &HttpResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn kill_returns_after_the_exit() {
    let d = TestDaemon::start();
    for sig in ["", "?signal=SIGKILL", "?signal=9"] {
        let id = d.ok(&["run", "-d", "busybox", "sleep", "1000"]);
        let id = id.trim();
        let r = d.http("POST", &format!("/containers/{id}/kill{sig}"), None);
        assert_eq!(r.status, 204, "{}", r.text());
        // No wait in between: dockerd's kill returns once the exit is recorded.
        let st = json(&d.http("GET", &format!("/containers/{id}/json"), None))["State"].clone();
        assert_eq!(st["Running"], false, "kill{sig}: {st}");
        assert_eq!(st["ExitCode"], 137, "kill{sig}: {st}");
        let r = d.http("DELETE", &format!("/containers/{id}"), None);
        assert_eq!(r.status, 204, "remove right after kill{sig}: {}", r.text());
    }
    // Other signals return at once and leave a process that ignores them running.
    let id = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "trap '' USR1; sleep 1000",
    ]);
    let id = id.trim();
    std::thread::sleep(Duration::from_millis(300));
    let r = d.http("POST", &format!("/containers/{id}/kill?signal=USR1"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(d.status(id).as_deref(), Some("running"));
    d.ok(&["rm", "-f", id]);
}

/// POST /exec/{id}/start over an upgraded connection; returns what follows the headers.
fn exec_start_raw(d: &TestDaemon, eid: &str, body: &str) -> Vec<u8> {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "POST /exec/{eid}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no headers: {}", String::from_utf8_lossy(&all)));
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    all[end + 4..].to_vec()
}

/// The payloads of a multiplexed stream, per stream number.
fn demux(mut b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let payload = &b[8..8 + n];
        match b[0] {
            1 => out.extend_from_slice(payload),
            2 => err.extend_from_slice(payload),
            s => panic!("unexpected stream {s}"),
        }
        b = &b[8 + n..];
    }
    assert!(b.is_empty(), "trailing bytes {b:?}");
    (out, err)
}

#[test]
fn tty_exec_output_has_crlf_and_start_tty_only_chooses_framing() {
    let d = TestDaemon::start();
    let id = d.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim();
    let create = |tty: bool| {
        let body = serde_json::json!({
            "Cmd": ["sh", "-c", "echo hello out; sleep 0.2; echo hello err >&2"],
            "Tty": tty, "AttachStdout": true, "AttachStderr": true,
        })
        .to_string();
        let r = d.http("POST", &format!("/containers/{id}/exec"), Some(&body));
        assert_eq!(r.status, 201, "{}", r.text());
        json(&r)["Id"].as_str().unwrap().to_string()
    };
    // docker-py creates with Tty=true and starts with Tty=false: a pty (with the kernel's
    // default ONLCR), its output multiplexed on stdout.
    let eid = create(true);
    let (out, err) = demux(&exec_start_raw(&d, &eid, r#"{"Detach":false,"Tty":false}"#));
    assert_eq!(String::from_utf8_lossy(&out), "hello out\r\nhello err\r\n");
    assert!(err.is_empty(), "{err:?}");
    // Tty in both: raw stream, same bytes.
    let eid = create(true);
    let raw = exec_start_raw(&d, &eid, r#"{"Tty":true}"#);
    assert_eq!(String::from_utf8_lossy(&raw), "hello out\r\nhello err\r\n");
    // No tty: pipes, two streams, no carriage returns.
    let eid = create(false);
    let (out, err) = demux(&exec_start_raw(&d, &eid, r#"{"Tty":false}"#));
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"hello out\n"[..], &b"hello err\n"[..])
    );
    // `docker run -t` logs what the pty wrote, `\r\n` included, as dockerd.
    let c = d.ok(&["run", "-t", "-d", "busybox", "echo", "hi"]);
    d.wait_status(c.trim(), "exited", Duration::from_secs(20));
    let logs = d.docker(&["logs", c.trim()]);
    assert_eq!(logs.stdout, b"hi\r\n");
    d.ok(&["rm", "-f", id]);
}

#[test]
fn group_add_applies_to_the_process_and_execs() {
    let d = TestDaemon::start();
    // busybox's /etc/group here: root 0, tty 5, user 1000, nogroup 65534.
    let out = d.ok(&[
        "run",
        "--rm",
        "--group-add",
        "1234",
        "--group-add",
        "tty",
        "busybox",
        "id",
        "-G",
    ]);
    let mut gids: Vec<&str> = out.split_whitespace().collect();
    gids.sort_unstable();
    assert_eq!(gids, ["0", "1234", "5"], "{out}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--user",
        "1000",
        "--group-add",
        "user",
        "--group-add",
        "77",
        "busybox",
        "id",
        "-G",
    ]);
    assert!(out.split_whitespace().any(|g| g == "77"), "{out}");
    let id = d.ok(&[
        "run",
        "-d",
        "--group-add",
        "4321",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    assert!(d
        .ok(&["exec", id, "id", "-G"])
        .split_whitespace()
        .any(|g| g == "4321"));
    let with_user = d.ok(&["exec", "-u", "1000", id, "id", "-G"]);
    assert!(
        with_user.split_whitespace().any(|g| g == "4321"),
        "{with_user}"
    );
    d.ok(&["rm", "-f", id]);
    // A name the container's /etc/group lacks stops the start with a clear error.
    let o = d.fails(&[
        "run",
        "--rm",
        "--group-add",
        "nosuchgroup",
        "busybox",
        "true",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unable to find group nosuchgroup"), "{err}");
}

#[test]
fn log_driver_and_runtime_as_dockerd() {
    let d = TestDaemon::start();
    let create = |hc: serde_json::Value| {
        let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": hc});
        d.http("POST", "/containers/create", Some(&body.to_string()))
    };
    let r = create(serde_json::json!({"LogConfig": {"Type": "asdf", "Config": {}}}));
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r)["message"],
        "logger: no log driver named 'asdf' is registered"
    );
    // max-file alone is accepted by dockerd's json-file (it never rotates then).
    for typ in ["json-file", ""] {
        let r =
            create(serde_json::json!({"LogConfig": {"Type": typ, "Config": {"max-file": "100"}}}));
        assert_eq!(r.status, 201, "{}", r.text());
        let id = json(&r)["Id"].as_str().unwrap().to_string();
        d.ok(&["start", &id]);
        let hc = d.inspect(&id)["HostConfig"].clone();
        assert_eq!(hc["LogConfig"]["Type"], "json-file");
        assert_eq!(
            hc["LogConfig"]["Config"],
            serde_json::json!({"max-file": "100"})
        );
        assert_eq!(hc["Runtime"], "runc");
    }
    let r = create(serde_json::json!({"Runtime": "runc"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = create(serde_json::json!({"Runtime": "nosuch"}));
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r)["message"],
        "unknown or invalid runtime name: nosuch"
    );
}

#[test]
fn exec_detach_keys_in_any_case() {
    let d = TestDaemon::start();
    let id = d.ok(&["run", "-d", "-i", "busybox", "cat"]);
    let id = id.trim();
    // docker-py sends its config file's detach keys as "detachKeys"; Go decodes field names
    // case-insensitively, so dockerd honours them.
    let body = r#"{"Cmd":["cat"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"detachKeys":"ctrl-p"}"#;
    let r = d.http("POST", &format!("/containers/{id}/exec"), Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    let eid = json(&r)["Id"].as_str().unwrap().to_string();
    assert_eq!(
        json(&d.http("GET", &format!("/exec/{eid}/json"), None))["DetachKeys"],
        "ctrl-p"
    );
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = r#"{"Tty":true}"#;
    let req = format!(
        "POST /exec/{eid}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // ctrl-p alone detaches: the daemon closes the stream (a read error would be a timeout).
    s.write_all(&[0x10]).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .unwrap_or_else(|e| panic!("not detached: {e}: {}", String::from_utf8_lossy(&all)));
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 101"));
    // Bad keys are refused at create whatever their case.
    let bad = r#"{"Cmd":["cat"],"detachkeys":"ctrl-"}"#;
    assert_eq!(
        d.http("POST", &format!("/containers/{id}/exec"), Some(bad))
            .status,
        400
    );
    d.ok(&["rm", "-f", id]);
}

#[test]
fn bind_propagation_is_reported_and_applied() {
    let d = TestDaemon::start();
    let src = d.root.join("bindsrc");
    std::fs::create_dir_all(&src).unwrap();
    let src = src.to_str().unwrap();
    for (mode, want) in [
        ("", "rprivate"),
        (":ro", "rprivate"),
        (":rw,rshared", "rshared"),
        (":rslave", "rslave"),
        (":rprivate", "rprivate"),
        (":shared", "shared"),
        (":ro,slave", "slave"),
        (":private", "private"),
    ] {
        let id = d.ok(&[
            "create",
            "-v",
            &format!("{src}:/mnt{mode}"),
            "busybox",
            "true",
        ]);
        let m = d.inspect(id.trim())["Mounts"][0].clone();
        assert_eq!(m["Propagation"], want, "{mode}: {m}");
        d.ok(&["rm", id.trim()]);
    }
    // rshared makes the container's mount a peer of a shared group.
    let info = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{src}:/mnt:rw,rshared"),
        "busybox",
        "grep",
        " /mnt ",
        "/proc/self/mountinfo",
    ]);
    assert!(info.contains("shared:"), "{info}");
    let info = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{src}:/mnt"),
        "busybox",
        "grep",
        " /mnt ",
        "/proc/self/mountinfo",
    ]);
    assert!(!info.contains("shared:"), "{info}");
}

#[test]
fn volume_subpath_mounts_a_directory_of_the_volume() {
    let d = TestDaemon::start();
    d.ok(&["volume", "create", "sv"]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /v/sub/deep && echo inside > /v/sub/deep/f && echo top > /v/top \
         && ln -s / /v/out && ln -s sub /v/tosub",
    ]);
    let create = |sub: &str| {
        let body = serde_json::json!({
            "Image": "busybox", "Cmd": ["sh", "-c", "cat /mnt/deep/f; ls /mnt"],
            "HostConfig": {"Mounts": [{"Type": "volume", "Source": "sv", "Target": "/mnt",
                "VolumeOptions": {"Subpath": sub}}]},
        });
        d.http("POST", "/containers/create", Some(&body.to_string()))
    };
    for sub in ["sub", "tosub"] {
        let r = create(sub);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = json(&r)["Id"].as_str().unwrap().to_string();
        d.ok(&["start", &id]);
        d.wait_status(&id, "exited", Duration::from_secs(20));
        let out = d.ok(&["logs", &id]);
        assert_eq!(out.trim_end(), "inside\ndeep", "subpath {sub}");
    }
    // Refused at create: absolute, or climbing out.
    for sub in ["/sub", "../sv", "sub/../../x"] {
        let r = create(sub);
        assert_eq!(r.status, 400, "{sub}: {}", r.text());
        assert!(
            json(&r)["message"].as_str().unwrap().contains("subpath"),
            "{}",
            r.text()
        );
    }
    // Refused at start: missing, or a symlink out of the volume.
    for (sub, why) in [
        ("nosuch", "cannot access path"),
        ("out", "outside the volume"),
    ] {
        let r = create(sub);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = json(&r)["Id"].as_str().unwrap().to_string();
        let o = d.fails(&["start", &id]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{sub}: {err}");
    }
}

#[test]
fn hijacked_output_waits_until_the_headers_are_read() {
    let d = TestDaemon::start();
    let id = d.ok(&["run", "-d", "busybox", "echo", "hello"]);
    let id = id.trim();
    d.wait_status(id, "exited", Duration::from_secs(20));
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /containers/{id}/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    // A client slow to read the headers (docker-py reads them through a buffer it then drops)
    // must not find the logs queued behind them.
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.starts_with("HTTP/1.1 101"), "{first}");
    assert!(
        first.ends_with("\r\n\r\n"),
        "output came with the headers: {first:?}"
    );
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let (out, _) = demux(&rest);
    assert_eq!(out, b"hello\n");
}
