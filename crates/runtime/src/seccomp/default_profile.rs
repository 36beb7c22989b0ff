//! Docker's default seccomp profile, as runtime-spec data.
//!
//! The profile is an allow-list: anything not named here fails with `EPERM`. The syscalls every
//! ordinary program needs are allowed unconditionally; the ones that only make sense with a
//! capability (mount, reboot, ptrace...) are allowed when the container holds that capability,
//! so `--cap-add SYS_ADMIN` also opens the syscalls behind it, as Docker does. Without
//! `CAP_SYS_ADMIN`, `clone` is allowed only without namespace flags and `clone3` fails with
//! `ENOSYS` (its flags sit in a struct that seccomp cannot read, and `ENOSYS` makes glibc fall
//! back to `clone`).
//!
//! The table is grouped by subsystem so a reviewer can see what a group opens. Names that the
//! host's libseccomp does not know, or that do not exist on the host's architecture, are kept:
//! [`super::compile`] skips them, so one profile serves every architecture and library version.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompOperator,
    LinuxSyscall,
};

/// The host architectures that some rules depend on (the profile is built for the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostArch {
    X86_64,
    X86,
    Aarch64,
    Arm,
    Ppc64le,
    S390x,
    Riscv64,
    Loongarch64,
    Mips64,
    Mipsel64,
    Other,
}

impl HostArch {
    /// The architecture this binary was built for, which is the one its containers run on.
    pub(crate) fn current() -> Self {
        if cfg!(target_arch = "x86_64") {
            Self::X86_64
        } else if cfg!(target_arch = "x86") {
            Self::X86
        } else if cfg!(target_arch = "aarch64") {
            Self::Aarch64
        } else if cfg!(target_arch = "arm") {
            Self::Arm
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Self::Ppc64le
        } else if cfg!(target_arch = "s390x") {
            Self::S390x
        } else if cfg!(target_arch = "riscv64") {
            Self::Riscv64
        } else if cfg!(target_arch = "loongarch64") {
            Self::Loongarch64
        } else if cfg!(all(target_arch = "mips64", target_endian = "big")) {
            Self::Mips64
        } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
            Self::Mipsel64
        } else {
            Self::Other
        }
    }

    /// The seccomp architectures a container on this host may use: the native one plus the
    /// compat ABIs the kernel also accepts (32-bit x86 and x32 on x86_64, and so on). Binaries
    /// of those ABIs get the same rules instead of being killed as a foreign architecture.
    pub(crate) fn seccomp_archs(self) -> Vec<Arch> {
        match self {
            Self::X86_64 => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
            Self::Aarch64 => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
            Self::S390x => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
            Self::Riscv64 => vec![Arch::ScmpArchRiscv64],
            Self::Loongarch64 => vec![Arch::ScmpArchLoongarch64],
            Self::Mips64 => vec![
                Arch::ScmpArchMips64,
                Arch::ScmpArchMips,
                Arch::ScmpArchMips64n32,
            ],
            Self::Mipsel64 => {
                vec![
                    Arch::ScmpArchMipsel64,
                    Arch::ScmpArchMipsel,
                    Arch::ScmpArchMipsel64n32,
                ]
            }
            // Only the native architecture (added by the filter compiler).
            Self::X86 | Self::Arm | Self::Ppc64le | Self::Other => Vec::new(),
        }
    }
}

/// The namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and
/// NEWNET. Without CAP_SYS_ADMIN a container may clone only when none of them is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

/// personality(2) values that only select the Linux ABI flavour, never a foreign one.
const PER_LINUX: u64 = 0x0000;
const PER_LINUX32: u64 = 0x0008;
const UNAME26: u64 = 0x0002_0000;
/// personality(0xffffffff) only queries the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// Socket families denied even though `socket` is allowed: AF_ALG (38, the kernel crypto API)
/// and AF_VSOCK (40, host-guest sockets). Everything below 38, 39 (AF_NFC) and above 40 is
/// allowed; three rules express that because one rule ANDs its conditions.
const AF_ALG: u64 = 38;
const AF_NFC: u64 = 39;
const AF_VSOCK: u64 = 40;

const ENOSYS: u32 = 38;

/// One comparison on a syscall argument.
#[derive(Debug, Clone, Copy)]
struct Cmp {
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
}

const fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> Cmp {
    Cmp { index, op, value }
}

/// How a group constrains arguments.
#[derive(Debug, Clone, Copy)]
enum Args {
    /// No constraint.
    None,
    /// All comparisons must hold (one rule).
    All(&'static [Cmp]),
    /// Any one of them (one rule each).
    Any(&'static [Cmp]),
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Allow,
    Errno(u32),
}

/// A group of syscalls sharing an action, argument constraints and a condition.
#[derive(Debug, Clone, Copy)]
struct Group {
    names: &'static [&'static str],
    action: Act,
    args: Args,
    /// Included only when the container holds this capability.
    with_cap: Option<&'static str>,
    /// Included only when the container lacks this capability.
    without_cap: Option<&'static str>,
    /// Included only on these host architectures (empty: all).
    on_arch: &'static [HostArch],
    /// Excluded on these host architectures.
    not_on_arch: &'static [HostArch],
    /// Included only on kernels at least this new (major, minor).
    min_kernel: Option<(u32, u32)>,
}

const ALLOW: Group = Group {
    names: &[],
    action: Act::Allow,
    args: Args::None,
    with_cap: None,
    without_cap: None,
    on_arch: &[],
    not_on_arch: &[],
    min_kernel: None,
};

const fn allow(names: &'static [&'static str]) -> Group {
    Group { names, ..ALLOW }
}

const fn allow_with_cap(cap: &'static str, names: &'static [&'static str]) -> Group {
    Group {
        names,
        with_cap: Some(cap),
        ..ALLOW
    }
}

const fn allow_on(arches: &'static [HostArch], names: &'static [&'static str]) -> Group {
    Group {
        names,
        on_arch: arches,
        ..ALLOW
    }
}

use HostArch as H;
use LinuxSeccompOperator as Op;

/// Files, directories, mount information and plain I/O on descriptors.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "access", "cachestat", "chdir", "chmod", "chown", "chown32", "close", "close_range",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "flock", "fstat", "fstat64", "fstatat64",
    "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "ioctl", "lchown", "lchown32", "link", "linkat", "listmount", "_llseek", "lseek",
    "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat",
    "open", "openat", "openat2", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "rename",
    "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "splice", "stat", "stat64",
    "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vmsplice", "write", "writev",
];

/// Extended attributes.
#[rustfmt::skip]
const XATTRS: &[&str] = &[
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat", "lgetxattr",
    "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr", "removexattr",
    "removexattrat", "setxattr", "setxattrat",
];

/// Waiting for events: poll/select/epoll, eventfd, inotify, signalfd, timerfd, async I/O.
#[rustfmt::skip]
const EVENTS: &[&str] = &[
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioprio_get", "ioprio_set",
    "_newselect", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
    "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64",
];

/// Memory management.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync",
    "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "process_mrelease", "remap_file_pages",
];

/// Process and thread life cycle, limits, futexes and self-inspection.
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open", "pidfd_send_signal",
    "prctl", "prlimit64", "restart_syscall", "riscv_hwprobe", "rseq", "seccomp", "set_robust_list",
    "set_thread_area", "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid",
    "sysinfo", "times", "ugetrlimit", "uname", "uretprobe", "vfork", "wait4", "waitid", "waitpid",
];

/// Scheduler policy and CPU affinity.
#[rustfmt::skip]
const SCHEDULING: &[&str] = &[
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield",
];

/// User and group ids (the capabilities still decide what a change may do).
#[rustfmt::skip]
const CREDENTIALS: &[&str] = &[
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
];

/// Signals.
#[rustfmt::skip]
const SIGNALS: &[&str] = &[
    "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn", "tgkill", "tkill",
];

/// Clocks, timers and sleeping (setting the clock needs CAP_SYS_TIME, below).
#[rustfmt::skip]
const TIME: &[&str] = &[
    "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
    "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
];

/// Sockets, except `socket` itself, whose address family is checked below.
#[rustfmt::skip]
const NETWORK: &[&str] = &[
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg",
    "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
];

/// System V and POSIX IPC (isolated by the IPC namespace).
#[rustfmt::skip]
const IPC: &[&str] = &[
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    "shmget",
];

/// The whole profile, in the order its rules are emitted.
const PROFILE: &[Group] = &[
    allow(FILES),
    allow(XATTRS),
    allow(EVENTS),
    allow(MEMORY),
    allow(PROCESSES),
    allow(SCHEDULING),
    allow(CREDENTIALS),
    allow(SIGNALS),
    allow(TIME),
    allow(NETWORK),
    allow(IPC),
    // Before 4.8 seccomp could be bypassed with ptrace, so it needed CAP_SYS_PTRACE there.
    Group {
        names: &["process_vm_readv", "process_vm_writev", "ptrace"],
        min_kernel: Some((4, 8)),
        ..ALLOW
    },
    Group {
        names: &["socket"],
        args: Args::Any(&[
            arg(0, Op::ScmpCmpLt, AF_ALG),
            arg(0, Op::ScmpCmpEq, AF_NFC),
            arg(0, Op::ScmpCmpGt, AF_VSOCK),
        ]),
        ..ALLOW
    },
    Group {
        names: &["personality"],
        args: Args::Any(&[
            arg(0, Op::ScmpCmpEq, PER_LINUX),
            arg(0, Op::ScmpCmpEq, PER_LINUX32),
            arg(0, Op::ScmpCmpEq, UNAME26),
            arg(0, Op::ScmpCmpEq, UNAME26 | PER_LINUX32),
            arg(0, Op::ScmpCmpEq, PERSONALITY_QUERY),
        ]),
        ..ALLOW
    },
    // Architecture-specific calls.
    allow_on(&[H::Ppc64le], &["swapcontext", "sync_file_range2"]),
    allow_on(
        &[H::Arm, H::Aarch64],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "sync_file_range2",
        ],
    ),
    allow_on(&[H::X86_64], &["arch_prctl"]),
    allow_on(&[H::X86_64, H::X86], &["modify_ldt"]),
    allow_on(
        &[H::S390x],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    allow_on(&[H::Riscv64], &["riscv_flush_icache"]),
    // Calls that are only useful with a capability.
    allow_with_cap("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    allow_with_cap(
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    // Without CAP_SYS_ADMIN: clone without namespace flags (s390 swaps the first two
    // arguments of clone), and clone3 reports ENOSYS so libc falls back to clone.
    Group {
        names: &["clone"],
        args: Args::All(&[arg(0, Op::ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS)]),
        without_cap: Some("CAP_SYS_ADMIN"),
        not_on_arch: &[H::S390x],
        ..ALLOW
    },
    Group {
        names: &["clone"],
        args: Args::All(&[arg(1, Op::ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS)]),
        without_cap: Some("CAP_SYS_ADMIN"),
        on_arch: &[H::S390x],
        ..ALLOW
    },
    Group {
        names: &["clone3"],
        action: Act::Errno(ENOSYS),
        without_cap: Some("CAP_SYS_ADMIN"),
        ..ALLOW
    },
    allow_with_cap("CAP_SYS_BOOT", &["reboot"]),
    allow_with_cap("CAP_SYS_CHROOT", &["chroot"]),
    allow_with_cap(
        "CAP_SYS_MODULE",
        &["delete_module", "finit_module", "init_module"],
    ),
    allow_with_cap("CAP_SYS_PACCT", &["acct"]),
    allow_with_cap(
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    allow_with_cap("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    allow_with_cap(
        "CAP_SYS_TIME",
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
    ),
    allow_with_cap("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    allow_with_cap(
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    allow_with_cap("CAP_SYSLOG", &["syslog"]),
    allow_with_cap("CAP_BPF", &["bpf"]),
    allow_with_cap("CAP_PERFMON", &["perf_event_open"]),
];

/// The capabilities Docker gives a container by default (and so the set its default seccomp
/// profile is usually computed for).
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default seccomp profile for a container holding `capabilities` (names such as
/// `CAP_SYS_ADMIN`; the `CAP_` prefix and case are optional), for the host's architecture and
/// kernel. Default action: `ERRNO(EPERM)`.
pub fn default_profile(capabilities: &[&str]) -> LinuxSeccomp {
    let caps: Vec<String> = capabilities.iter().map(|c| normalize_cap(c)).collect();
    build(&caps, HostArch::current(), kernel_version())
}

/// The profile for explicit host facts, so tests can build other architectures' variants.
pub(crate) fn build(caps: &[String], arch: HostArch, kernel: Option<(u32, u32)>) -> LinuxSeccomp {
    let has_cap = |cap: &str| caps.iter().any(|c| c == cap);
    let mut syscalls = Vec::new();
    for group in PROFILE {
        if group.with_cap.is_some_and(|cap| !has_cap(cap))
            || group.without_cap.is_some_and(has_cap)
            || (!group.on_arch.is_empty() && !group.on_arch.contains(&arch))
            || group.not_on_arch.contains(&arch)
        {
            continue;
        }
        // An unknown kernel version counts as new enough: berth needs a far newer one anyway.
        if let (Some(min), Some(running)) = (group.min_kernel, kernel) {
            if running < min {
                continue;
            }
        }
        let names: Vec<String> = group.names.iter().map(|n| (*n).to_owned()).collect();
        match group.args {
            Args::None => syscalls.extend(syscall(names, group.action, &[])),
            Args::All(cmps) => syscalls.extend(syscall(names, group.action, cmps)),
            Args::Any(cmps) => {
                for cmp in cmps {
                    let one = std::slice::from_ref(cmp);
                    syscalls.extend(syscall(names.clone(), group.action, one));
                }
            }
        }
    }

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM.unsigned_abs()));
    profile.set_architectures(Some(arch.seccomp_archs()));
    profile.set_syscalls(Some(syscalls));
    profile
}

/// One runtime-spec rule. `None` if the builder refuses the arguments (it cannot with these
/// constants); the caller then leaves the rule out, which denies the syscall: failing closed.
fn syscall(names: Vec<String>, action: Act, cmps: &[Cmp]) -> Option<LinuxSyscall> {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names);
    match action {
        Act::Allow => {
            rule.set_action(LinuxSeccompAction::ScmpActAllow);
        }
        Act::Errno(errno) => {
            rule.set_action(LinuxSeccompAction::ScmpActErrno);
            rule.set_errno_ret(Some(errno));
        }
    }
    if !cmps.is_empty() {
        let args = cmps
            .iter()
            .map(|c| {
                let arg = LinuxSeccompArgBuilder::default()
                    .index(c.index)
                    .value(c.value)
                    .op(c.op);
                // For MASKED_EQ, value is the mask and valueTwo the expected masked value.
                let arg = if c.op == Op::ScmpCmpMaskedEq {
                    arg.value_two(0u64)
                } else {
                    arg
                };
                arg.build().ok()
            })
            .collect::<Option<Vec<_>>>()?;
        rule.set_args(Some(args));
    }
    Some(rule)
}

/// `sys_admin`, `SYS_ADMIN` and `CAP_SYS_ADMIN` all name the same capability.
fn normalize_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The running kernel's (major, minor), if uname(2) gives a parsable release.
fn kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_kernel_release(uts.release().to_str()?)
}

fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const DOCKER_CAPS: &[&str] = DOCKER_DEFAULT_CAPS;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| normalize_cap(c)).collect()
    }

    /// Every (name, action, args) the profile allows, flattened.
    fn rules_for(profile: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    fn allowed_unconditionally(profile: &LinuxSeccomp, name: &str) -> bool {
        rules_for(profile, name)
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
    }

    #[test]
    fn unconditional_groups_have_no_duplicates() {
        let mut seen = HashSet::new();
        for group in [
            FILES,
            XATTRS,
            EVENTS,
            MEMORY,
            PROCESSES,
            SCHEDULING,
            CREDENTIALS,
            SIGNALS,
            TIME,
            NETWORK,
            IPC,
        ] {
            for name in group {
                assert!(seen.insert(*name), "{name} listed twice");
            }
        }
        assert_eq!(seen.len(), 361);
    }

    #[test]
    fn docker_default_caps_on_x86_64() {
        let p = build(&caps(DOCKER_CAPS), HostArch::X86_64, Some((6, 1)));
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        for name in [
            "read",
            "getpid",
            "execve",
            "arch_prctl",
            "modify_ldt",
            "chroot",
            "ptrace",
        ] {
            assert!(
                allowed_unconditionally(&p, name),
                "{name} should be allowed"
            );
        }
        for name in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "acct",
            "kexec_load",
            "bpf",
            "syslog",
        ] {
            assert!(
                rules_for(&p, name).is_empty(),
                "{name} should not be allowed"
            );
        }
        for name in ["set_tls", "riscv_flush_icache", "s390_runtime_instr"] {
            assert!(
                rules_for(&p, name).is_empty(),
                "{name} is for another architecture"
            );
        }
        // clone: only without namespace flags, in argument 0.
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let args = clone[0].args().clone().unwrap_or_default();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), Op::ScmpCmpMaskedEq);
        assert_eq!(args[0].value(), 0x7e02_0000);
        assert_eq!(args[0].value_two(), Some(0));
        // clone3: ENOSYS.
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // personality: five separate rules on argument 0.
        let personality = rules_for(&p, "personality");
        let values: Vec<u64> = personality
            .iter()
            .flat_map(|r| r.args().clone().unwrap_or_default())
            .map(|a| a.value())
            .collect();
        assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
        // socket: three rules, none of which matches AF_ALG or AF_VSOCK.
        let socket = rules_for(&p, "socket");
        assert_eq!(socket.len(), 3);
        let matches = |family: u64| {
            socket.iter().any(|r| {
                let a = r.args().clone().unwrap_or_default()[0];
                match a.op() {
                    Op::ScmpCmpLt => family < a.value(),
                    Op::ScmpCmpEq => family == a.value(),
                    Op::ScmpCmpGt => family > a.value(),
                    _ => false,
                }
            })
        };
        for family in [1, 2, 10, 16, 17, 37, 39, 41, 45] {
            assert!(matches(family), "family {family} should be allowed");
        }
        assert!(!matches(38), "AF_ALG should be denied");
        assert!(!matches(40), "AF_VSOCK should be denied");
    }

    #[test]
    fn sys_admin_opens_namespaces_and_mounts() {
        let mut list = DOCKER_CAPS.to_vec();
        list.push("sys_admin");
        let p = build(&caps(&list), HostArch::X86_64, Some((6, 1)));
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
        ] {
            assert!(
                allowed_unconditionally(&p, name),
                "{name} should be allowed"
            );
        }
        // No leftover restricted clone or clone3 ENOSYS rule.
        assert_eq!(rules_for(&p, "clone").len(), 1);
        assert_eq!(rules_for(&p, "clone3").len(), 1);
    }

    #[test]
    fn capability_rules() {
        let p = build(
            &caps(&[
                "CAP_SYS_PTRACE",
                "CAP_SYS_BOOT",
                "CAP_SYS_TIME",
                "SYS_NICE",
                "CAP_BPF",
            ]),
            HostArch::Aarch64,
            Some((6, 1)),
        );
        for name in [
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "reboot",
            "clock_settime",
            "mbind",
            "bpf",
            "set_tls",
            "cacheflush",
        ] {
            assert!(
                allowed_unconditionally(&p, name),
                "{name} should be allowed"
            );
        }
        for name in ["arch_prctl", "modify_ldt", "chroot", "perf_event_open"] {
            assert!(
                rules_for(&p, name).is_empty(),
                "{name} should not be allowed"
            );
        }
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
    }

    #[test]
    fn s390_clone_checks_second_argument() {
        let p = build(&[], HostArch::S390x, Some((6, 1)));
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args().clone().unwrap_or_default()[0].index(), 1);
    }

    #[test]
    fn old_kernel_needs_ptrace_capability() {
        let p = build(&[], HostArch::X86_64, Some((4, 4)));
        assert!(rules_for(&p, "ptrace").is_empty());
        let p = build(&[], HostArch::X86_64, Some((4, 8)));
        assert!(allowed_unconditionally(&p, "ptrace"));
    }

    #[test]
    fn kernel_release_parsing() {
        assert_eq!(parse_kernel_release("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel_release("4.19.112+"), Some((4, 19)));
        assert_eq!(parse_kernel_release("5.10"), Some((5, 10)));
        assert_eq!(parse_kernel_release("garbage"), None);
    }

    #[test]
    fn profile_round_trips_through_json() {
        let p = default_profile(DOCKER_CAPS);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"defaultAction\":\"SCMP_ACT_ERRNO\""));
        assert!(json.contains("\"op\":\"SCMP_CMP_MASKED_EQ\""));
        let back: LinuxSeccomp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
