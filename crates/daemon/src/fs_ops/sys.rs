//! The one system call of fs_ops that nix does not wrap.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `fgetxattr(2)`: the length of attribute `name` of `fd` copied into `buf`, None when it is
/// absent, too long for `buf`, or unreadable.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: `fd` is an open descriptor borrowed for the call, `name` is NUL-terminated, and
    // the kernel writes at most `buf.len()` bytes into `buf`, which is valid and exclusively
    // borrowed for the duration of the call.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
        )
    };
    usize::try_from(n).ok()
}
