//! Seccomp filters from the runtime-spec config, and Docker's default profile.

/// Errors from building or loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unknown syscall {0:?}")]
    UnknownSyscall(String),
}
