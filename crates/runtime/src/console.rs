//! The container's terminal: a pty created inside the container (on its devpts) whose master is
//! handed to the caller over `--console-socket` with `SCM_RIGHTS`, as runc does.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

use crate::error::{Result, RuntimeError};

/// Connects to the caller's console socket (in the runtime's own mount namespace).
pub fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| RuntimeError::io("connect console socket", path, e))
}

/// Makes a pty, sends its master through `socket`, and makes the slave our controlling terminal
/// and stdio. Must run after setsid() and with the container's /dev/pts mounted.
pub fn setup(socket: RawFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("open /dev/ptmx", e))?;
    grantpt(&master).map_err(|e| RuntimeError::sys("grantpt", e))?;
    unlockpt(&master).map_err(|e| RuntimeError::sys("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| RuntimeError::sys("ptsname", e))?;
    let slave: OwnedFd = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys(format!("open {name}"), e))?;
    if let Some((rows, cols)) = size {
        crate::sys::set_winsize(slave.as_fd(), rows, cols)
            .map_err(|e| RuntimeError::sys("set the terminal size", e))?;
    }
    crate::channel::send_raw(socket, name.as_bytes(), Some(master.as_raw_fd()))
        .map_err(|e| RuntimeError::sys("send pty master over console socket", e))?;
    drop(master);
    crate::sys::set_controlling_terminal(slave.as_fd())
        .map_err(|e| RuntimeError::sys("make pty the controlling terminal", e))?;
    nix::unistd::dup2_stdin(&slave).map_err(|e| RuntimeError::sys("dup pty to stdin", e))?;
    nix::unistd::dup2_stdout(&slave).map_err(|e| RuntimeError::sys("dup pty to stdout", e))?;
    nix::unistd::dup2_stderr(&slave).map_err(|e| RuntimeError::sys("dup pty to stderr", e))?;
    Ok(())
}
