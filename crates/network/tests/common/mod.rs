//! Root tests run their body on a thread that unshared its network namespace: every bridge,
//! veth, route and nftables table they make lives and dies with that private namespace, and
//! threads and processes started from it inherit it.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_testutil::harness::run_with_timeout;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `f` on a thread inside a fresh network namespace (with `lo` up); panics propagate.
pub fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        berth_network::link::set_up("lo").unwrap();
        f()
    });
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A namespace file made by netns::create, removed on drop (also when the test fails).
pub struct Ns {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ns {
    pub fn new() -> Ns {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        berth_network::netns::create(&path).unwrap();
        Ns { path, _dir: dir }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = berth_network::netns::remove(&self.path);
    }
}

/// Runs a command (from the calling thread's namespace) with a deadline; returns stdout, panics
/// with stderr on failure.
pub fn run(args: &[&str]) -> String {
    let out = try_run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn try_run(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    run_with_timeout(cmd, Duration::from_secs(20), None)
}

/// A command inside the namespace at `ns`.
pub fn run_in_ns(ns: &Path, args: &[&str]) -> std::process::Output {
    let netarg = format!("--net={}", ns.display());
    let mut all = vec!["nsenter", netarg.as_str()];
    all.extend_from_slice(args);
    try_run(&all)
}
