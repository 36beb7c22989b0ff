//! The two seccomp(2) calls this module makes; the only code here that talks to the kernel.
//!
//! The filter is installed with the raw syscall rather than `seccomp_load(3)` because the init
//! calls it between fork and exec, where only async-signal-safe work is allowed: libseccomp
//! generates the program (allocating) at load time, while we generated it in the parent.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use libc::{c_long, c_uint, sock_filter, sock_fprog};
use nix::errno::Errno;

// Filter flags from linux/seccomp.h.
pub(super) const FLAG_TSYNC: u32 = 1 << 0;
pub(super) const FLAG_LOG: u32 = 1 << 1;
pub(super) const FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub(super) const FLAG_NEW_LISTENER: u32 = 1 << 3;
pub(super) const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub(super) const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

const SECCOMP_SET_MODE_FILTER: c_uint = 1;

/// What a successful seccomp(SECCOMP_SET_MODE_FILTER) returned.
#[derive(Debug)]
pub(super) enum Installed {
    /// The filter is in place.
    Done,
    /// The filter is in place; this is its user-notification fd (close-on-exec).
    Listener(OwnedFd),
    /// TSYNC could not move this thread of the process onto the new filter; nothing was
    /// installed.
    TsyncFailed(c_long),
}

/// Installs `program` on the calling thread (or process, with TSYNC). Async-signal-safe: no
/// allocation, one syscall.
pub(super) fn set_mode_filter(program: &[sock_filter], flags: u32) -> Result<Installed, Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, `len` instructions long, which outlives the call; the
    // kernel copies the program and never writes through the pointer. No Rust state changes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::from_ref(&prog),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        let fd = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
        // SAFETY: with NEW_LISTENER the kernel returns a fresh listener fd that nothing else in
        // this process owns, so taking ownership of it is sound.
        return Ok(Installed::Listener(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if ret > 0 {
        // Without TSYNC_ESRCH, a TSYNC failure returns the id of the thread that blocked it.
        return Ok(Installed::TsyncFailed(ret));
    }
    Ok(Installed::Done)
}

/// Whether the running kernel knows the filter flag(s) `flags`. Installs nothing: the kernel
/// checks the flags before it reads the (here NULL) program, answering EINVAL for unknown flags
/// and EFAULT for known ones. `None` when the answer is neither (e.g. seccomp itself is denied).
pub(super) fn flags_supported(flags: u32) -> Option<bool> {
    // SAFETY: a NULL program pointer makes the kernel fail with EFAULT at the latest; nothing is
    // installed and no memory is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<sock_fprog>(),
        )
    };
    if ret >= 0 {
        return None;
    }
    match Errno::last() {
        Errno::EFAULT => Some(true),
        Errno::EINVAL => Some(false),
        _ => None,
    }
}
