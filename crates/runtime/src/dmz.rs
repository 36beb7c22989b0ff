//! The exec trampoline (`dmz/dmz.c`, built by build.rs): a static program of a few KiB that the
//! container's process execs from a sealed memfd, and that in turn execs the user's program.
//!
//! Why: the kernel resolves a `#!/proc/self/exe` interpreter through the exec'ing process's own
//! executable. Were that the runtime binary on the host, a malicious image could run it inside the
//! container and later open it for writing (CVE-2019-5736). runc answers by re-executing all of
//! itself from a sealed copy, a multi-megabyte copy per container; going through this trampoline
//! costs one tiny extra exec instead. It also waits on `exec.fifo`, so the container's pid 1 is
//! the sealed trampoline, not the runtime, for as long as the container sits created.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[cfg(berth_dmz)]
const TRAMPOLINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dmz"));
#[cfg(not(berth_dmz))]
const TRAMPOLINE: &[u8] = &[];

/// Whether this build carries the trampoline.
pub fn available() -> bool {
    !TRAMPOLINE.is_empty()
}

/// A sealed, close-on-exec memfd holding the trampoline.
pub fn memfd() -> std::io::Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(
        "berth-exec",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(TRAMPOLINE)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
    )
    .map_err(std::io::Error::from)?;
    Ok(OwnedFd::from(f))
}

/// [`memfd`] when this build has the trampoline.
pub fn memfd_if_available() -> std::io::Result<Option<OwnedFd>> {
    if available() {
        memfd().map(Some)
    } else {
        Ok(None)
    }
}

/// Execs `program` with `args` (args[0] is its argv[0]) through the trampoline. With `fifo` (an
/// inheritable `O_PATH` descriptor of exec.fifo) the trampoline first blocks until `start`.
/// Returns only on failure.
pub fn exec(
    dmz: BorrowedFd<'_>,
    fifo: Option<RawFd>,
    program: &Path,
    args: &[CString],
    env: &[CString],
) -> nix::Error {
    let first = match fifo {
        Some(fd) => fd.to_string(),
        None => "-".to_string(),
    };
    let mut argv: Vec<CString> = Vec::with_capacity(args.len() + 2);
    argv.push(CString::new(first).unwrap_or_default());
    argv.push(CString::new(program.as_os_str().as_bytes()).unwrap_or_default());
    argv.extend(args.iter().cloned());
    match nix::unistd::fexecve(dmz, &argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Makes the descriptor survive exec (for the fifo handed to the trampoline).
pub fn inheritable(fd: &OwnedFd) -> nix::Result<RawFd> {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )?;
    Ok(fd.as_raw_fd())
}
