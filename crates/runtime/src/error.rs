//! The runtime's error type. Every variant names what it is about (an id, a path, a pid) so a
//! message alone tells the user what went wrong.

use std::path::PathBuf;

/// How a caller should treat an error: the CLI maps these to exit codes, the daemon to statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidInput,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container with id {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// Worded as runc words it: engines match on some of these ("container not running").
    #[error("{message}")]
    WrongState { id: String, message: String },
    #[error("invalid config {path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what}: {error}")]
    Sys { what: String, error: nix::Error },
    #[error("{0}")]
    Init(String),
    #[error("hook {path} failed: {reason}")]
    Hook { path: PathBuf, reason: String },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
}

impl RuntimeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::WrongState { .. } => ErrorKind::Conflict,
            Self::InvalidId { .. } | Self::InvalidConfig { .. } | Self::InvalidArgument(_) => {
                ErrorKind::InvalidInput
            }
            Self::Seccomp(_) => ErrorKind::InvalidInput,
            Self::Cgroup(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            what: what.into(),
            error: source,
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
