//! Terminals and exec through the shim.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use berth_shim::protocol::{ExecState, Status};
use common::{Opts, Shim};
use serde_json::json;

#[test]
fn tty_container_and_resize() {
    let shim = Shim::start(
        &["sh", "-c", "tty; read x; stty size"],
        Opts {
            tty: true,
            stdin: true,
            ..Opts::default()
        },
    );
    let mut a = shim.connect();
    a.send(&json!({"op": "attach", "stdin": true}));
    assert!(a.response().ok);
    shim.ok(json!({"op": "start"}));
    let got = a.read_until("/dev/pts/");
    assert!(got.contains("/dev/pts/"), "{got:?}");
    shim.ok(json!({"op": "resize", "width": 123, "height": 45}));
    a.send_raw(b"go\n");
    let rest = a.frames();
    assert!(
        rest.streams.iter().all(|&s| s == 1),
        "tty output is all stream 1"
    );
    assert!(rest.out().contains("45 123"), "{:?}", rest.out());
    assert_eq!(shim.wait().exit.unwrap().code, 0);
}

#[test]
fn exec_reports_its_exit_code_by_frame_and_by_state() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    let mut c = shim.connect();
    c.send(&json!({
        "op": "exec",
        "exec_id": "e1",
        "process": shim.process(&["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"], false),
    }));
    let r = c.response();
    assert!(r.ok, "{r:?}");
    let st = r.exec.unwrap();
    assert!(st.running && st.pid > 0);
    let f = c.frames();
    assert_eq!(f.out(), "exec-out\n");
    assert_eq!(f.err(), "exec-err\n");
    assert_eq!(f.system.len(), 1);
    assert_eq!(*f.streams.last().unwrap(), 3, "the state frame comes last");
    let fin: ExecState = serde_json::from_slice(&f.system[0]).unwrap();
    assert_eq!(fin.exit_code, Some(5));
    assert!(!fin.running);
    let st = shim
        .ok(json!({"op": "exec_state", "exec_id": "e1"}))
        .exec
        .unwrap();
    assert_eq!(st.exit_code, Some(5));
    assert!(!st.running);
    // The container's own output never saw the exec's.
    assert_eq!(shim.state().status, Status::Running);
    let dup = shim
        .call(json!({"op": "exec", "exec_id": "e1", "process": shim.process(&["true"], false)}));
    assert!(!dup.ok, "an exec id is used once");
}

#[test]
fn exec_with_stdin_and_detached_exec() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    let mut c = shim.connect();
    c.send(&json!({
        "op": "exec", "exec_id": "cat", "stdin": true,
        "process": shim.process(&["cat"], false),
    }));
    assert!(c.response().ok);
    c.send_raw(b"through exec\n");
    c.close_stdin();
    let f = c.frames();
    assert_eq!(f.out(), "through exec\n");
    let fin: ExecState = serde_json::from_slice(&f.system[0]).unwrap();
    assert_eq!(fin.exit_code, Some(0));

    let r = shim.ok(json!({
        "op": "exec", "exec_id": "bg", "detach": true,
        "process": shim.process(&["sh", "-c", "echo discarded; exit 4"], false),
    }));
    assert!(r.exec.unwrap().running);
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let st = shim
            .ok(json!({"op": "exec_state", "exec_id": "bg"}))
            .exec
            .unwrap();
        if !st.running {
            assert_eq!(st.exit_code, Some(4));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "detached exec never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn exec_with_a_tty() {
    let shim = Shim::start(&["sleep", "100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    let mut c = shim.connect();
    c.send(&json!({
        "op": "exec", "exec_id": "t", "stdin": true,
        "process": shim.process(&["sh", "-c", "tty; read x; stty size; exit 2"], true),
    }));
    assert!(c.response().ok);
    let got = c.read_until("/dev/pts/");
    assert!(got.contains("/dev/pts/"));
    shim.ok(json!({"op": "resize", "width": 99, "height": 33, "exec_id": "t"}));
    c.send_raw(b"\n");
    let f = c.frames();
    assert!(f.out().contains("33 99"), "{:?}", f.out());
    let fin: ExecState = serde_json::from_slice(&f.system[0]).unwrap();
    assert_eq!(fin.exit_code, Some(2));
}

#[test]
fn exec_of_a_missing_binary_is_an_error_and_exec_in_a_stopped_container_too() {
    let shim = Shim::start(&["sh", "-c", "sleep 100"], Opts::default());
    shim.ok(json!({"op": "start"}));
    let r = shim.call(json!({
        "op": "exec", "exec_id": "missing",
        "process": shim.process(&["/no/such/binary"], false),
    }));
    assert!(!r.ok, "missing binary: {r:?}");
    let e = r.error.unwrap();
    println!("exec of a missing binary: {e}");
    assert!(e.contains("no such file") || e.contains("not found"), "{e}");
    let r = shim.call(json!({"op": "exec_state", "exec_id": "missing"}));
    assert!(!r.ok, "a failed exec is not recorded");

    shim.ok(json!({"op": "kill", "signal": 9}));
    assert_eq!(shim.wait().exit.unwrap().code, 137);
    let r = shim.call(json!({
        "op": "exec", "exec_id": "late",
        "process": shim.process(&["true"], false),
    }));
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("stopped"));
}
