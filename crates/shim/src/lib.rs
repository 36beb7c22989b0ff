//! berth-shim: one small synchronous process per container.
//!
//! The shim is the parent and subreaper of the container's init (created in-process through the
//! runtime library), owns the container's stdio (pipes, or the pty master), writes the json-file
//! log, serves attach and exec streams to any number of clients over its own unix socket, and
//! records the exit status. It outlives berthd: a restarted daemon reconnects to the socket and
//! asks for the state. [`protocol`] is the wire both sides share.
//!
//! Design: after a fork that lets the foreground process report readiness and exit
//! ([`launch`]), the background shim is one thread running one `poll(2)` loop ([`server`]) over
//! its listener, its clients, the container's and the execs' output, and a signalfd for
//! SIGCHLD. One thread keeps the resident set small (no stacks, no runtime) and keeps
//! [`berth_runtime`]'s raw-clone fork for `exec` safe: no other thread can hold the allocator's
//! lock at the moment of the fork. Nothing blocks on a client: sockets are non-blocking, and a
//! client that falls more than [`server::MAX_BACKLOG`] behind is dropped rather than stalling
//! the container.

use std::path::PathBuf;

pub mod launch;
pub mod logfile;
pub mod protocol;
pub mod server;
pub mod sys;

/// `berth-init` (init/init.c), the tiny init that `docker run --init` puts in front of the
/// command; berthd writes it to a file and bind-mounts it at /sbin/docker-init. Empty where the
/// build could not make it (see build.rs).
#[cfg(berth_init)]
pub const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));
#[cfg(not(berth_init))]
pub const INIT_BINARY: &[u8] = &[];

/// What one shim serves, validated from its command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    /// The unix socket the shim listens on (mode 0600).
    pub socket: PathBuf,
    pub log: Option<logfile::LogConfig>,
    /// The container's process has a terminal (`process.terminal` in its config).
    pub tty: bool,
    /// Keep the container's stdin open for attach clients.
    pub stdin: bool,
    /// Close the container's stdin when the first attached client's stdin ends.
    pub stdin_once: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what}: {error}")]
    Sys {
        what: &'static str,
        error: nix::Error,
    },
    #[error("socket {path} is in use by a running shim")]
    SocketInUse { path: PathBuf },
    #[error("create container {id}: {error}")]
    Create {
        id: String,
        error: berth_runtime::RuntimeError,
    },
    #[error("container {id}: receive the pty master on {path}: {error}")]
    Console {
        id: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] logfile::LogError),
}

impl ShimError {
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
        move |error| ShimError::Sys { what, error }
    }
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ShimError {
        let path = path.to_path_buf();
        move |error| ShimError::Io { what, path, error }
    }
}
