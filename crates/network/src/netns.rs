//! Persistent network namespaces: a new namespace bind-mounted on a file, so it lives without a
//! process in it and the runtime can join it by path (`{"type":"network","path":...}`).

use std::path::Path;

use crate::Result;

/// Creates a new network namespace mounted at `path` (the file is created), with `lo` up.
/// Runs on a short-lived thread: unshare(CLONE_NEWNET) changes only the calling thread.
pub fn create(path: &Path) -> Result<()> {
    let _ = path;
    Err(crate::NetError::Invalid(
        "netns::create not written yet".into(),
    ))
}

/// Unmounts and removes a namespace file; Ok when it is already gone. The kernel destroys the
/// namespace (and the veth ends inside it) once nothing else holds it.
pub fn remove(path: &Path) -> Result<()> {
    let _ = path;
    Err(crate::NetError::Invalid(
        "netns::remove not written yet".into(),
    ))
}

/// Runs `f` on a thread that has joined the namespace at `path` (e.g. to open a socket there:
/// a socket stays in the namespace it was created in).
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _ = (path, f);
    Err(crate::NetError::Invalid(
        "netns::run_in not written yet".into(),
    ))
}
