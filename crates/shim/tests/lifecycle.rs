//! The container's life through the shim: start, attach, state, wait, kill, stdin, survival
//! of the foreground process, delete, and bad input.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use berth_shim::protocol::Status;
use common::{Opts, Shim};
use serde_json::json;

#[test]
fn start_attach_separates_streams_and_wait_reports_the_exit_code() {
    let shim = Shim::start(
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        Opts::default(),
    );
    let st = shim.state();
    assert_eq!(st.status, Status::Created);
    assert_eq!(st.pid, shim.ready.pid);

    let mut attach = shim.connect();
    attach.send(&json!({"op": "attach", "stdout": true, "stderr": true}));
    assert!(attach.response().ok);
    shim.ok(json!({"op": "start"}));
    let frames = attach.frames();
    assert_eq!(frames.out(), "out\n");
    assert_eq!(frames.err(), "err\n");

    let st = shim.wait();
    assert_eq!(st.status, Status::Stopped);
    let exit = st.exit.unwrap();
    assert_eq!(exit.code, 3);
    assert!(!exit.oom_killed);
    assert!(exit.exited_at.ends_with('Z'));
    assert!(st.started_at.unwrap().ends_with('Z'));
    // State after the fact, and an attach to an exited container ends at once.
    assert_eq!(shim.state().exit.unwrap().code, 3);
    let mut late = shim.connect();
    late.send(&json!({"op": "attach"}));
    assert!(late.response().ok);
    assert!(late.frame().is_none());
}

#[test]
fn kill_9_is_137_and_every_waiter_is_answered() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    assert_eq!(shim.state().status, Status::Running);
    let mut w1 = shim.connect();
    let mut w2 = shim.connect();
    w1.send(&json!({"op": "wait"}));
    w2.send(&json!({"op": "wait"}));
    // The waits are registered before the kill: a state request on a third connection is
    // served after them by the same loop.
    shim.state();
    shim.ok(json!({"op": "kill", "signal": 9}));
    for w in [&mut w1, &mut w2] {
        let r = w.response();
        assert!(r.ok);
        assert_eq!(r.state.unwrap().exit.unwrap().code, 137);
    }
    let r = shim.call(json!({"op": "kill", "signal": 15}));
    assert!(!r.ok, "kill of a stopped container must fail");
}

#[test]
fn stdin_once_feeds_cat_and_half_close_ends_it() {
    let shim = Shim::start(
        &["cat"],
        Opts {
            stdin: true,
            stdin_once: true,
            ..Opts::default()
        },
    );
    let mut a = shim.connect();
    a.send(&json!({"op": "attach", "stdin": true}));
    assert!(a.response().ok);
    shim.ok(json!({"op": "start"}));
    a.send_raw(b"hello shim\n");
    a.send_raw(b"second line\n");
    a.close_stdin();
    let f = a.frames();
    assert_eq!(f.out(), "hello shim\nsecond line\n");
    assert_eq!(shim.wait().exit.unwrap().code, 0);
}

#[test]
fn detach_is_not_a_kill_and_stdin_stays_open_without_stdin_once() {
    let shim = Shim::start(
        &["cat"],
        Opts {
            stdin: true,
            ..Opts::default()
        },
    );
    shim.ok(json!({"op": "start"}));
    {
        let mut a = shim.connect();
        a.send(&json!({"op": "attach", "stdin": true}));
        assert!(a.response().ok);
        a.send_raw(b"one\n");
        assert_eq!(a.read_until("one\n"), "one\n");
        a.close_stdin();
        // Dropped: a detach.
    }
    let mut b = shim.connect();
    b.send(&json!({"op": "attach", "stdin": true}));
    assert!(b.response().ok);
    assert_eq!(shim.state().status, Status::Running);
    b.send_raw(b"two\n");
    assert_eq!(b.read_until("two\n"), "two\n");
}

#[test]
fn the_shim_outlives_its_foreground_and_delete_cleans_up() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    // The foreground has exited (launch waited for it); the shim serves a new client.
    let pid = shim.shim_pid();
    assert!(Shim::alive(pid));
    assert_ne!(pid, shim.ready.pid);
    let mode = std::fs::metadata(&shim.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(shim.state().status, Status::Created);
    shim.ok(json!({"op": "start"}));

    let r = shim.call(json!({"op": "delete"}));
    assert!(
        !r.ok,
        "delete of a running container without force must fail"
    );
    assert!(r.error.unwrap().contains("not stopped"));

    let mut waiter = shim.connect();
    waiter.send(&json!({"op": "wait"}));
    shim.state();
    shim.ok(json!({"op": "delete", "force": true}));
    assert_eq!(waiter.response().state.unwrap().exit.unwrap().code, 137);
    assert!(
        !shim.root.path().join(&shim.id).exists(),
        "runtime state left"
    );
    assert!(!shim.socket.exists(), "socket left");
    assert!(Shim::wait_gone(pid), "shim still running after delete");
    assert!(!Shim::alive(shim.ready.pid));
}

#[test]
fn bad_requests_get_an_error_line_and_the_shim_carries_on() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    for bad in [
        &b"this is not json\n"[..],
        b"{\"op\":\"explode\"}\n",
        b"{\"op\":\"kill\"}\n",
        b"[1,2,3]\n",
    ] {
        let mut c = shim.connect();
        c.send_raw(bad);
        let r = c.response();
        assert!(!r.ok);
        assert!(
            r.error.as_deref().unwrap().starts_with("invalid request:"),
            "{r:?}"
        );
        assert!(c.frame().is_none(), "connection must be closed");
    }
    // A line longer than 64 KiB.
    let mut c = shim.connect();
    let big = vec![b'x'; 70 * 1024];
    let _ = c.w.write_all(&big);
    let r = c.response();
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("64 KiB"));

    shim.ok(json!({"op": "start"}));
    let r = shim.call(json!({"op": "start"}));
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("already running"), "start twice");
    let r = shim.call(json!({"op": "kill", "signal": 12345}));
    assert!(!r.ok);
    let r = shim.call(json!({"op": "exec_state", "exec_id": "nope"}));
    assert_eq!(r.error.as_deref(), Some("no such exec instance: nope"));
    let r = shim.call(json!({"op": "resize", "width": 80, "height": 24}));
    assert!(!r.ok, "resize without a terminal");
    assert_eq!(shim.state().status, Status::Running);
}

#[test]
fn a_broken_config_is_reported_and_leaves_nothing() {
    berth_testutil::require_root().unwrap();
    let id = berth_testutil::unique_id("shim-bad");
    let b = common::bundle(&id, &["true"], false);
    std::fs::write(b.config_path(), b"{ not json").unwrap();
    let root = tempfile::Builder::new()
        .prefix("berth-shim-rt-")
        .tempdir_in("/run")
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("bs-")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("s");
    let log = dir.path().join("c.log");
    let (ready, code, _) = common::launch(&id, &b, root.path(), &socket, &log, &Opts::default());
    assert!(!ready.ok);
    assert_eq!(code, 1);
    assert!(
        ready.error.as_deref().unwrap().contains("config"),
        "{ready:?}"
    );
    assert!(!root.path().join(&id).exists());
    assert!(!socket.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "left behind in the socket dir"
    );
    if ready.shim_pid > 0 {
        assert!(Shim::wait_gone(ready.shim_pid));
    }
}

#[test]
fn update_changes_the_cgroup() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    shim.ok(json!({"op": "update", "resources": {"pids": {"limit": 77}}}));
}

#[test]
fn an_oom_kill_is_reported() {
    berth_testutil::require_root().unwrap();
    let id = berth_testutil::unique_id("shim-oom");
    let mut b = common::bundle(
        &id,
        &["sh", "-c", "a=xxxxxxxx; while :; do a=$a$a; done"],
        false,
    );
    b.config_mut()["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    b.save().unwrap();
    let shim = Shim::start_bundle(id, b, Opts::default());
    shim.ok(json!({"op": "start"}));
    let exit = shim.wait().exit.unwrap();
    assert_eq!(exit.code, 137);
    assert!(exit.oom_killed, "{exit:?}");
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_never_stalls_the_container() {
    let shim = Shim::start(
        &["sh", "-c", "head -c 4000000 /dev/zero; echo end"],
        Opts::default(),
    );
    let mut slow = shim.connect();
    slow.send(&json!({"op": "attach"}));
    assert!(slow.response().ok);
    let mut fast = shim.connect();
    fast.send(&json!({"op": "attach"}));
    assert!(fast.response().ok);
    shim.ok(json!({"op": "start"}));
    let f = fast.frames();
    assert_eq!(f.stdout.len(), 4_000_004);
    assert_eq!(shim.wait().exit.unwrap().code, 0);
    // The slow one got at most its socket buffer plus the backlog, then end-of-stream.
    let mut got = 0;
    while let Some((_, b)) = slow.frame() {
        got += b.len();
    }
    assert!(
        got < 4_000_004,
        "the slow client was not dropped ({got} bytes)"
    );
}
