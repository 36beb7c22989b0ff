//! Persistent network namespaces: a new namespace bind-mounted on a file, so it lives without a
//! process in it and the runtime can join it by path (`{"type":"network","path":...}`).

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::{NetError, Result};

fn io(what: impl Into<String>, source: std::io::Error) -> NetError {
    NetError::Io {
        what: what.into(),
        source,
    }
}

fn errno(what: impl Into<String>, e: nix::errno::Errno) -> NetError {
    io(what, std::io::Error::from(e))
}

/// Runs `f` on a fresh thread and waits for it: namespace changes (unshare, setns) are per
/// thread, so they must never happen on a caller's (e.g. tokio worker) thread.
fn on_thread<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|e| io(format!("{what}: spawn thread"), e))?;
    match handle.join() {
        Ok(r) => r,
        Err(_) => Err(NetError::Invalid(format!(
            "{what}: the namespace thread panicked"
        ))),
    }
}

/// Creates a new network namespace mounted at `path` (the file is created), with `lo` up.
/// Runs on a short-lived thread: unshare(CLONE_NEWNET) changes only the calling thread.
pub fn create(path: &Path) -> Result<()> {
    let path: PathBuf = path.to_path_buf();
    on_thread("create network namespace", move || {
        // O_EXCL: an existing file may already carry a namespace (a stale one is the caller's to
        // remove); mounting over it would hide and leak that one.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(format!("create {}", path.display()), e))?;
        let made = (|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| errno("unshare network namespace", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                errno(
                    format!("bind-mount network namespace on {}", path.display()),
                    e,
                )
            })?;
            // Interfaces made here later (eth0, ...) get no IPv6: berth's networks are IPv4
            // only, and as dockerd does for such networks no link-local address, duplicate
            // address detection or MLD traffic is started for them. lo keeps ::1.
            disable_ipv6("default");
            crate::link::sys::Netlink::open()?.set_up_by_name("lo")
        })();
        if made.is_err() {
            let _ = umount2(&path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
        made
    })
}

/// Turns IPv6 off on interface `ifname` (or `default`: interfaces made from now on) of the
/// calling thread's network namespace. Best effort: a kernel without IPv6 has no such setting.
pub(crate) fn disable_ipv6(ifname: &str) {
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        b"1",
    );
}

/// Unmounts and removes a namespace file; Ok when it is already gone. The kernel destroys the
/// namespace (and the veth ends inside it) once nothing else holds it.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (already unmounted, or a leftover plain file).
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(errno(format!("unmount {}", path.display()), e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("remove {}", path.display()), e)),
    }
}

/// Runs `f` on a thread that has joined the namespace at `path` (e.g. to open a socket there:
/// a socket stays in the namespace it was created in).
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let ns = File::open(path).map_err(|e| io(format!("open {}", path.display()), e))?;
    let shown = path.display().to_string();
    on_thread("enter network namespace", move || {
        setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| errno(format!("join network namespace {shown}"), e))?;
        drop(ns);
        Ok(f())
    })
}

/// Like [`run_in`] for a fallible `f`, flattening the two results.
pub fn try_run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    run_in(path, f)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_in_a_missing_namespace_names_the_path() {
        let err = run_in(Path::new("/nonexistent/berth-ns"), || ()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/berth-ns"), "{err}");
    }

    #[test]
    fn remove_of_a_missing_file_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("gone")).unwrap();
        // A plain file (not a mount) is removed too.
        let f = dir.path().join("plain");
        std::fs::write(&f, b"").unwrap();
        remove(&f).unwrap();
        assert!(!f.exists());
    }
}
