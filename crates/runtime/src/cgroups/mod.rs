//! Control groups: v1, v2 and the hybrid layout.

/// Errors from cgroup setup and control.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}
