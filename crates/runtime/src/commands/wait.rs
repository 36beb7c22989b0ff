//! Waiting for a process we started while passing the signals we get on to it, as `runc run`
//! and `runc exec` do when attached.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

fn code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Returns the exit code as a shell reports it (128+N for a signal).
pub fn forward_and_wait(pid: i32) -> anyhow::Result<i32> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
    let child = Pid::from_raw(pid);
    // It may have exited before SIGCHLD was blocked.
    if let Some(c) = code(waitpid(child, Some(WaitPidFlag::WNOHANG))?) {
        return Ok(c);
    }
    loop {
        let Some(info) = sfd.read_signal()? else {
            continue;
        };
        let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
        if signo == Signal::SIGCHLD as i32 {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(ws) => {
                        if ws.pid() == Some(child) {
                            if let Some(c) = code(ws) {
                                return Ok(c);
                            }
                        }
                    }
                }
            }
        } else if let Ok(sig) = Signal::try_from(signo) {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}
