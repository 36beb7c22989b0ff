//! berth-init (INIT_BINARY) as pid 1 of a container, the way `docker run --init` uses it.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Opts, Shim};
use serde_json::json;

fn with_init(args: &[&str]) -> Shim {
    berth_testutil::require_root().unwrap();
    assert!(
        !berth_shim::INIT_BINARY.is_empty(),
        "berth-init was not built: a C compiler (gcc) is needed"
    );
    let id = berth_testutil::unique_id("shim-init");
    let mut full = vec!["/sbin/docker-init", "--"];
    full.extend_from_slice(args);
    let b = common::bundle(&id, &full, false);
    let path = b.rootfs().join("sbin/docker-init");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, berth_shim::INIT_BINARY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Shim::start_bundle(id, b, Opts::default())
}

#[test]
fn init_passes_the_exit_status_through_and_reaps_orphans() {
    // The orphaned `sleep` is reparented to berth-init, which must reap it (no zombie left).
    let shim = with_init(&[
        "sh",
        "-c",
        "sleep 0.1 & exec sh -c 'sleep 0.3; ps -o stat,comm; exit 7'",
    ]);
    let mut a = shim.connect();
    a.send(&json!({"op": "attach"}));
    assert!(a.response().ok);
    shim.ok(json!({"op": "start"}));
    let f = a.frames();
    assert!(
        f.out().contains("STAT"),
        "ps output: {:?} {:?}",
        f.out(),
        f.err()
    );
    assert!(!f.out().contains("\nZ"), "zombie left: {}", f.out());
    assert_eq!(shim.wait().exit.unwrap().code, 7);
}

#[test]
fn init_forwards_signals() {
    let shim = with_init(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 9' TERM; while :; do sleep 0.05; done",
    ]);
    let mut a = shim.connect();
    a.send(&json!({"op": "attach"}));
    assert!(a.response().ok);
    shim.ok(json!({"op": "start"}));
    std::thread::sleep(std::time::Duration::from_millis(200));
    shim.ok(json!({"op": "kill", "signal": 15}));
    assert_eq!(a.frames().out(), "got-term\n");
    assert_eq!(shim.wait().exit.unwrap().code, 9);
}

#[test]
fn init_reports_a_missing_program() {
    let shim = with_init(&["no-such-program"]);
    let mut a = shim.connect();
    a.send(&json!({"op": "attach"}));
    assert!(a.response().ok);
    shim.ok(json!({"op": "start"}));
    let f = a.frames();
    assert_eq!(
        f.err(),
        "berth-init: exec no-such-program: No such file or directory\n"
    );
    assert_eq!(shim.wait().exit.unwrap().code, 127);
}
