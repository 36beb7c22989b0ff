//! The caller's end of `--console-socket`: a Unix socket on which the runtime sends the master
//! of the container's pty with `SCM_RIGHTS`, as containerd's shim and conmon receive it.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Errors while receiving or reading a console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A socket or file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },
    /// Nothing arrived in time.
    #[error("waited {timeout:?} for {what}; got so far: {got:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
        /// What was read before the deadline.
        got: String,
    },
    /// The runtime connected but sent no descriptor.
    #[error("console socket {path}: message without a descriptor ({bytes} bytes of data)")]
    NoDescriptor {
        /// The socket path.
        path: PathBuf,
        /// How much data came with the message.
        bytes: usize,
    },
    /// The terminal closed before the awaited text appeared.
    #[error("terminal closed before {needle:?} appeared; got: {got:?}")]
    Closed {
        /// What was awaited.
        needle: String,
        /// Everything read.
        got: String,
    },
}

/// A listening console socket in its own temporary directory.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
    _dir: TempDir,
}

impl ConsoleSocket {
    /// Binds a new socket (`<tmp>/berth-console-XXXX/sock`, short enough for `sun_path`).
    pub fn new() -> Result<ConsoleSocket, ConsoleError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-console-")
            .tempdir()
            .map_err(|source| ConsoleError::Io {
                op: "create temp dir in",
                path: std::env::temp_dir(),
                source,
            })?;
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).map_err(|source| ConsoleError::Io {
            op: "bind",
            path: path.clone(),
            source,
        })?;
        Ok(ConsoleSocket {
            listener,
            path,
            _dir: dir,
        })
    }

    /// The socket path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one connection (at most `timeout`) and returns the descriptor it carries: the
    /// pty master.
    pub fn receive_pty(&self, timeout: Duration) -> Result<OwnedFd, ConsoleError> {
        wait_readable(
            self.listener.as_fd(),
            timeout,
            "a connection on the console socket",
        )?;
        let (stream, _) = self.listener.accept().map_err(|source| ConsoleError::Io {
            op: "accept on",
            path: self.path.clone(),
            source,
        })?;
        wait_readable(
            stream.as_fd(),
            timeout,
            "the pty master on the console socket",
        )?;
        let mut data = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|source| ConsoleError::Sys {
            op: "recvmsg on the console socket",
            source,
        })?;
        let bytes = msg.bytes;
        let cmsgs = msg.cmsgs().map_err(|source| ConsoleError::Sys {
            op: "read control messages",
            source,
        })?;
        let mut received: Vec<OwnedFd> = Vec::new();
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel has just installed `fd` in our table for this message
                    // (SCM_RIGHTS); nothing else refers to it, so we take sole ownership.
                    received.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // Extra descriptors, if any, are closed when `received` drops.
        if received.is_empty() {
            return Err(ConsoleError::NoDescriptor {
                path: self.path.clone(),
                bytes,
            });
        }
        Ok(received.swap_remove(0))
    }
}

fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: Duration,
    what: &str,
) -> Result<(), ConsoleError> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    )
    .map_err(|source| ConsoleError::Sys { op: "poll", source })?;
    if ready == 0 {
        return Err(ConsoleError::Timeout {
            what: what.to_owned(),
            timeout,
            got: String::new(),
        });
    }
    Ok(())
}

/// Reads from a pty master until the text contains `needle` (at most `timeout`); returns all
/// that was read. A closed terminal (EIO once the last slave is closed) before that is an error.
pub fn read_until(
    master: &OwnedFd,
    needle: &str,
    timeout: Duration,
) -> Result<String, ConsoleError> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.contains(needle) {
            return Ok(text);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConsoleError::Timeout {
                what: format!("{needle:?} on the terminal"),
                timeout,
                got: text,
            });
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => {}
            Err(source) => return Err(ConsoleError::Sys { op: "poll", source }),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => {
                let text = String::from_utf8_lossy(&got).into_owned();
                if text.contains(needle) {
                    return Ok(text);
                }
                return Err(ConsoleError::Closed {
                    needle: needle.to_owned(),
                    got: text,
                });
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(source) => {
                return Err(ConsoleError::Sys {
                    op: "read the pty master",
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use nix::sys::stat::Mode;
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    #[test]
    fn receives_master_and_reads_terminal() {
        let socket = ConsoleSocket::new().unwrap();
        // Close-on-exec from the start: a process another test spawns meanwhile must not
        // inherit the slave and keep the terminal open.
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let pty_master = nix::pty::posix_openpt(flags).unwrap();
        nix::pty::grantpt(&pty_master).unwrap();
        nix::pty::unlockpt(&pty_master).unwrap();
        let name = nix::pty::ptsname_r(&pty_master).unwrap();
        let slave = nix::fcntl::open(name.as_str(), flags, Mode::empty()).unwrap();
        let stream = UnixStream::connect(socket.path()).unwrap();
        let fds = [pty_master.as_raw_fd()];
        sendmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &[IoSlice::new(b"/dev/ptmx")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(pty_master);
        let master = socket.receive_pty(Duration::from_secs(5)).unwrap();
        nix::unistd::write(&slave, b"hello\n").unwrap();
        let text = read_until(&master, "hello", Duration::from_secs(5)).unwrap();
        assert!(text.contains("hello"));
        let err = read_until(&master, "never", Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, ConsoleError::Timeout { .. }), "{err}");
        drop(slave);
        let err = read_until(&master, "never", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ConsoleError::Closed { .. }), "{err}");
    }

    #[test]
    fn receive_times_out_without_a_caller() {
        let socket = ConsoleSocket::new().unwrap();
        let err = socket.receive_pty(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, ConsoleError::Timeout { .. }), "{err}");
    }
}
