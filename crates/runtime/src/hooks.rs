//! OCI hooks: each is run with the container's state JSON on stdin, its own args and env, and an
//! optional timeout after which it is killed and counted as failed.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::error::{Result, RuntimeError};
use crate::state::OciState;

pub fn run_all(hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    for h in hooks.map(Vec::as_slice).unwrap_or_default() {
        run(h, state)?;
    }
    Ok(())
}

pub fn run(hook: &Hook, state: &OciState) -> Result<()> {
    let fail = |reason: String| RuntimeError::Hook {
        path: hook.path().clone(),
        reason,
    };
    let input = serde_json::to_vec(state).map_err(|e| fail(format!("encode state: {e}")))?;
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(&input);
    }
    let timeout = hook
        .timeout()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0);
    if let Some(t) = timeout {
        // Wait on a pidfd with the deadline: no polling loop, no reaping race.
        let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        let pidfd = crate::sys::pidfd_open(pid).map_err(|e| fail(format!("pidfd_open: {e}")))?;
        let ms = i32::try_from(t.saturating_mul(1000)).unwrap_or(i32::MAX);
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = loop {
            match nix::poll::poll(
                &mut fds,
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(fail(format!("wait: {e}"))),
                Ok(n) => break n > 0,
            }
        };
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {t}s")));
        }
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        return Err(fail(format!("{status}: {}", err.trim())));
    }
    Ok(())
}
