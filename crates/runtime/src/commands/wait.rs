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

/// Like [`forward_and_wait`], but also relays between our stdio and the container's pty master:
/// what `runc run` does for a terminal container when no console socket is given.
pub fn relay_and_wait(pid: i32, master: std::os::fd::OwnedFd) -> anyhow::Result<i32> {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::termios;

    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        copy_winsize(stdin.as_fd(), master.as_fd());
    }
    let restore = |saved: &Option<termios::Termios>| {
        if let Some(t) = saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    };

    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
    let child = Pid::from_raw(pid);
    let mut m = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 32 * 1024];
    let mut stdin_open = true;
    let mut exit: Option<i32> = code(waitpid(child, Some(WaitPidFlag::WNOHANG))?);
    while exit.is_none() {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(m.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                restore(&saved);
                return Err(e.into());
            }
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match m.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
                _ => {}
            }
        }
        if stdin_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = m.write_all(&buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
        if sig_ready.contains(PollFlags::POLLIN) {
            if let Some(info) = sfd.read_signal()? {
                let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
                if signo == Signal::SIGCHLD as i32 {
                    exit = code(waitpid(child, Some(WaitPidFlag::WNOHANG))?);
                } else if signo == Signal::SIGWINCH as i32 {
                    copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = nix::sys::signal::kill(child, sig);
                }
            }
        }
    }
    // What the program wrote just before it exited is still in the pty.
    let _ = nix::fcntl::fcntl(
        &m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]);
    }
    let _ = out.flush();
    restore(&saved);
    Ok(exit.unwrap_or(0))
}

fn copy_winsize(from: std::os::fd::BorrowedFd<'_>, to: std::os::fd::BorrowedFd<'_>) {
    if let Some((rows, cols)) = berth_runtime::sys::get_winsize(from) {
        let _ = berth_runtime::sys::set_winsize(to, rows, cols);
    }
}
