//! Thin, safe wrappers over the syscalls the runtime needs and that `nix` does not cover.
//! Every `unsafe` block in the crate outside the seccomp and cgroup BPF code lives here.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `clone(2)` used like `fork(2)`: no new stack, the child continues from the call site.
/// Returns 0 in the child and the child's pid in the parent.
///
/// `flags` may carry `CLONE_NEW*` and `CLONE_PARENT`; `SIGCHLD` is added so the parent (or, with
/// `CLONE_PARENT`, the grandparent) can `waitpid` the child like any other.
pub fn clone_fork(flags: libc::c_int) -> nix::Result<libc::pid_t> {
    // SAFETY: with a NULL stack the raw clone syscall behaves like fork(): the child runs on a
    // copy-on-write copy of the caller's stack. The callers are single-threaded at this point
    // (the CLI, the shim before it starts threads, or our own stage-1 child), so no lock held by
    // another thread can be copied into the child in a locked state.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_ulong::try_from(flags | libc::SIGCHLD).unwrap_or(0),
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    Errno::result(ret).map(|pid| libc::pid_t::try_from(pid).unwrap_or(-1))
}

/// `struct open_how` of openat2(2), version 0 (24 bytes).
#[repr(C)]
#[derive(Debug)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` beneath `root` with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks
/// and `..` are resolved as if `root` were `/`, so nothing outside it can be reached.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = cstr(rel)?;
    let how = OpenHow {
        flags: u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0),
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; `how` is a correctly sized
    // open_how; the returned fd, if any, is owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::cast_possible_truncation)] // fds fit in an int by definition
    // SAFETY: the syscall returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Opens a directory (or anything) with `O_PATH`, for use as a root of [`open_in_root`].
pub fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_path()
        .open(path)?;
    Ok(OwnedFd::from(f))
}

trait PathOpen {
    fn custom_flags_path(&mut self) -> &mut Self;
}
impl PathOpen for std::fs::OpenOptions {
    fn custom_flags_path(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_PATH | libc::O_CLOEXEC)
    }
}

/// The `/proc/self/fd/N` name of a descriptor: mounting onto it mounts onto exactly the inode we
/// resolved, which closes the symlink-swap race of CVE-2021-30465.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Marks every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is involved.
    let r = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor from `first` up except those in `keep`.
pub fn close_all_except(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut start = first;
    for k in keep.into_iter().chain(std::iter::once(RawFd::MAX)) {
        if k > start {
            let last = if k == RawFd::MAX {
                u32::MAX
            } else {
                u32::try_from(k - 1).unwrap_or(0)
            };
            // SAFETY: closing descriptors we do not reference anywhere else in this process
            // (the caller lists every descriptor it still needs in `keep`).
            let r = unsafe { libc::close_range(u32::try_from(start).unwrap_or(0), last, 0) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        start = k.saturating_add(1);
    }
    Ok(())
}

pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: the prctl options used by the runtime take integer arguments only.
    let r = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

pub fn set_no_new_privs() -> nix::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
}

pub fn set_keep_caps(on: bool) -> nix::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on))
}

pub fn set_dumpable(on: bool) -> nix::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on))
}

pub fn set_parent_death_signal(sig: libc::c_int) -> nix::Result<()> {
    prctl(
        libc::PR_SET_PDEATHSIG,
        libc::c_ulong::try_from(sig).unwrap_or(0),
    )
}

pub fn set_child_subreaper() -> nix::Result<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
}

pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// Sets one rlimit on the calling process.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit; passing a null old-limit pointer is allowed.
    let r = unsafe {
        libc::prlimit(
            0,
            resource as libc::__rlimit_resource_t,
            &lim,
            std::ptr::null_mut(),
        )
    };
    Errno::result(r).map(drop)
}

pub fn getrlimit(resource: libc::c_int) -> nix::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer for the duration of the call.
    let r = unsafe {
        libc::prlimit(
            0,
            resource as libc::__rlimit_resource_t,
            std::ptr::null(),
            &mut lim,
        )
    };
    Errno::result(r).map(|_| (lim.rlim_cur, lim.rlim_max))
}

/// Sets the supplementary groups (nix's wrapper refuses an empty list on some targets).
pub fn setgroups(gids: &[u32]) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `gids`, which outlives the call.
    let r = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    Errno::result(r).map(drop)
}

/// `setresuid`/`setresgid` through the raw syscall so the change applies to this thread only;
/// the callers are single-threaded, and glibc's all-threads broadcast is not needed.
pub fn setresuid(uid: u32) -> nix::Result<()> {
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    Errno::result(r).map(drop)
}

pub fn setresgid(gid: u32) -> nix::Result<()> {
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    Errno::result(r).map(drop)
}

pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe { libc::umask(mask) };
}

/// `pidfd_open(2)`: a descriptor that stays bound to this very process, never to a reused pid.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer-only syscall returning a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::cast_possible_truncation)] // fds fit in an int by definition
    // SAFETY: the descriptor is new and owned by us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> nix::Result<()> {
    // SAFETY: integer-only syscall; a null siginfo means "as kill(2) would".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Re-executes the running binary from a sealed, read-only memfd copy unless it already runs
/// from one. From then on `/proc/self/exe` of this process and of every container process forked
/// from it names that memfd, never a host file a container could open for writing
/// (CVE-2019-5736). `marker` is an environment variable set for the re-executed copy.
pub fn ensure_sealed_exe(marker: &str) -> io::Result<()> {
    if std::env::var_os(marker).is_some() && exe_is_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe")?;
    let memfd = nix::sys::memfd::memfd_create(
        "berth-runtime",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(io::Error::from)?;
    let mut out = File::from(memfd);
    // std's copy uses copy_file_range or sendfile where it can: no userspace buffer.
    io::copy(&mut exe, &mut out)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own, integer argument.
    if unsafe { libc::fcntl(out.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setting an environment variable before exec; the process is single-threaded here
    // (this runs first thing in main).
    unsafe { std::env::set_var(marker, "1") };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    nix::unistd::fexecve(&out, &args, &env).map_err(io::Error::from)?;
    Ok(())
}

fn exe_is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: fcntl on a descriptor we own, no pointer argument.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Restores every signal to its default action and unblocks all of them: the container must not
/// inherit the runtime's dispositions (Rust ignores SIGPIPE) or its signal mask.
pub fn reset_signals() -> nix::Result<()> {
    for signo in 1..libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code; errors for signals the libc
        // reserves (EINVAL) are ignored on purpose.
        unsafe { libc::signal(signo, libc::SIG_DFL) };
    }
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
}

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(2)` used like fork (no new stack), optionally straight into a cgroup v2 directory
/// (`CLONE_INTO_CGROUP`). Joining a cgroup at birth avoids writing to `cgroup.procs`, which on
/// many kernels waits for an RCU grace period (often 10-20 ms) to take a global lock.
pub fn clone3_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<libc::pid_t> {
    let mut args = CloneArgs {
        flags,
        ..CloneArgs::default()
    };
    // clone3 rejects an exit signal with CLONE_PARENT; the child then inherits ours.
    if flags & libc::CLONE_PARENT as u64 == 0 {
        args.exit_signal = libc::SIGCHLD as u64;
    }
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd.as_raw_fd()).unwrap_or(0);
    }
    // SAFETY: as with clone_fork: a NULL stack makes the child continue on a copy of ours, and
    // the caller is single-threaded. `args` is a correctly sized, initialised clone_args.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(ret).map(|pid| libc::pid_t::try_from(pid).unwrap_or(-1))
}

/// `CLONE_INTO_CGROUP` from linux/sched.h (not in every libc).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Joins a new, named session keyring, so the container does not share the caller's keys.
/// Kernels without keyrings (ENOSYS) and hosts that forbid it (EPERM, EACCES) are not errors.
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    let Ok(c) = CString::new(name) else {
        return Ok(());
    };
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads one NUL-terminated name that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            c.as_ptr(),
        )
    };
    match Errno::result(r) {
        Ok(_) | Err(Errno::ENOSYS | Errno::EPERM | Errno::EACCES | Errno::EDQUOT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the execution domain (`linux.personality`).
pub fn personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::personality(persona) };
    Errno::result(r).map(drop)
}

/// A terminal's window size as (rows, cols), if `fd` is a terminal.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets a terminal's window size.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(r).map(drop)
}

/// Makes the terminal `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(r).map(drop)
}

/// `dup2(from, to)`: the caller's stdio for the container, given as descriptors of the caller.
pub fn dup_onto(from: RawFd, to: RawFd) -> nix::Result<()> {
    if from == to {
        // dup2 would keep close-on-exec set; clear it instead.
        // SAFETY: fcntl with an integer argument on a descriptor number we were given.
        let r = unsafe { libc::fcntl(from, libc::F_SETFD, 0) };
        return Errno::result(r).map(drop);
    }
    // SAFETY: dup2 on descriptor numbers; it only changes our descriptor table.
    let r = unsafe { libc::dup2(from, to) };
    Errno::result(r).map(drop)
}

/// Makes the given descriptors the process's stdin, stdout and stderr.
pub fn set_stdio(fds: [RawFd; 3]) -> nix::Result<()> {
    for (to, from) in (0..).zip(fds) {
        dup_onto(from, to)?;
    }
    Ok(())
}
