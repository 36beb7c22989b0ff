//! Test fixtures shared by berth's root integration tests, benchmarks and shell scripts.
//!
//! The pieces are deliberately small and independent:
//!
//! - [`Bundle`] builds an OCI bundle whose root filesystem is the host's statically linked
//!   `/bin/busybox` (Debian's `busybox-static`) plus one link per applet, and whose
//!   `config.json` is equivalent to the default that `runc spec` writes, except that it has no
//!   terminal, runs the given arguments and is named `berth-test`. The config is kept as a
//!   [`serde_json::Value`] so a test can change any field, including ones a typed spec model
//!   would reject, which is what the bad-input tests need.
//! - [`Runtime`] runs an OCI runtime binary (`berth-runtime`, `runc`, ...) with its own `--root`.
//!   Every invocation has a deadline: a runtime that hangs is killed and the test fails with the
//!   command line in the message instead of blocking CI. Output goes to files, not pipes, so a
//!   container that inherits the runtime's stdout cannot keep a read blocked.
//! - [`ContainerGuard`] deletes a container (`delete --force`) when dropped, so a failing test
//!   leaves no process, mount or cgroup behind.
//! - [`ConsoleSocket`] is the caller's end of `--console-socket`: it receives the pty master
//!   and reads the container's terminal with a deadline.
//! - [`cgroup`] finds where a relative `linux.cgroupsPath` lands for the calling process, on
//!   cgroup v1, v2 and hybrid hosts, so tests can read counters and check cleanup.
//!
//! The fixtures only compute paths and call the runtime; they never touch cgroups, mounts or
//! processes they did not create.

pub mod bundle;
pub mod cgroup;
pub mod console;
pub mod harness;
pub mod runtime;

pub use bundle::{default_config, Bundle, BundleError, BUSYBOX_PATH, DEFAULT_PATH_ENV, HOSTNAME};
pub use console::{ConsoleError, ConsoleSocket};
pub use runtime::{CmdOutput, ContainerGuard, Extras, Running, Runtime, RuntimeError};

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Errors about the environment the tests run in.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The tests create namespaces, cgroups and mounts, which needs root.
    #[error(
        "this test needs root (running as uid {euid}): run the suite as root, e.g. `sudo -E cargo test`"
    )]
    NotRoot {
        /// The effective uid the test runs as.
        euid: u32,
    },
}

/// Fails unless the process runs as root.
pub fn require_root() -> Result<(), EnvError> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid == 0 {
        Ok(())
    } else {
        Err(EnvError::NotRoot { euid })
    }
}

/// Returns an id that no other test in any concurrently running process uses:
/// `<prefix>-<pid>-<counter>-<time>`, short enough for hostnames and cgroup names.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}-{n}-{:04x}",
        std::process::id(),
        nanos & 0xffff
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_differ() {
        let a = unique_id("t");
        let b = unique_id("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t-"));
        assert!(a.len() < 40);
    }
}
