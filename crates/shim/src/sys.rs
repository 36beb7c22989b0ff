//! The few syscalls the shim makes that need `unsafe`, and thin wrappers over the rest.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;

/// What `fork` returned, on each side.
#[derive(Debug)]
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2).
pub fn fork() -> nix::Result<Forked> {
    // SAFETY: the shim is single-threaded when it forks (main has started no thread and clap
    // starts none), so the child cannot inherit a lock held by another thread; the child goes on
    // running ordinary Rust code, which is sound in a single-threaded fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Turns the forked child into the long-lived background shim: its own session (a terminal
/// hangup or the daemon's process group being signalled does not reach it), subreaper of the
/// container's orphans, deaf to the signals that end processes by default when their peer or
/// terminal goes away, stdio on /dev/null and cwd at `/` (it must not pin a mount).
pub fn detach() -> nix::Result<()> {
    nix::unistd::setsid()?;
    nix::sys::prctl::set_child_subreaper(true)?;
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        // SAFETY: SIG_IGN runs no handler code, so there is no async-signal-safety concern.
        unsafe { nix::sys::signal::signal(sig, SigHandler::SigIgn) }?;
    }
    let null = open_null(OFlag::O_RDWR)?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Blocks SIGCHLD and returns a non-blocking signalfd that reads it: child exits become an
/// event of the poll loop. The runtime resets the signal mask before it execs the container's
/// programs, so the container does not inherit the block.
pub fn sigchld_fd() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

pub fn open_null(flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        Path::new("/dev/null"),
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// TIOCSWINSZ on a pty master.
pub fn set_winsize(fd: &impl AsFd, rows: u16, cols: u16) -> nix::Result<()> {
    berth_runtime::sys::set_winsize(fd.as_fd(), rows, cols)
}

/// Receives the pty master that the runtime sends over a console socket connection.
pub fn recv_pty(conn: &impl AsRawFd) -> nix::Result<OwnedFd> {
    match berth_runtime::channel::recv_raw(conn.as_raw_fd())? {
        (_, Some(fd)) => Ok(fd),
        _ => Err(nix::Error::ENOMSG),
    }
}

/// read(2) into `buf`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(nix::Error::EINTR) => continue,
            r => return r,
        }
    }
}

/// write(2) from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> nix::Result<usize> {
    loop {
        match nix::unistd::write(fd, buf) {
            Err(nix::Error::EINTR) => continue,
            r => return r,
        }
    }
}
