//! Tests: compiling is checked by evaluating the BPF program with a small interpreter; loading
//! is checked in forked children, which load a filter, make syscalls and report by exit code.

use super::*;
use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSyscall};
use std::ffi::CString;
use std::os::fd::AsRawFd;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_THREAD: u32 = 0;

const fn ret_errno(errno: u32) -> u32 {
    0x0005_0000 | errno
}

const DOCKER_CAPS: &[&str] = super::DOCKER_DEFAULT_CAPS;

fn rule(names: &[&str], action: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| (*n).to_owned()).collect());
    r.set_action(action);
    r.set_errno_ret(errno);
    r
}

fn with_args(
    mut r: LinuxSyscall,
    args: &[(usize, LinuxSeccompOperator, u64, Option<u64>)],
) -> LinuxSyscall {
    let args = args
        .iter()
        .map(|&(index, op, value, value_two)| {
            let a = LinuxSeccompArgBuilder::default()
                .index(index)
                .op(op)
                .value(value);
            match value_two {
                Some(v) => a.value_two(v),
                None => a,
            }
            .build()
            .unwrap()
        })
        .collect();
    r.set_args(Some(args));
    r
}

fn profile(default: LinuxSeccompAction, rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut p = LinuxSeccomp::default();
    p.set_default_action(default);
    p.set_syscalls(Some(rules));
    p
}

fn native_audit_arch() -> u32 {
    native_arch()
        .and_then(audit_arch)
        .expect("tests need a known native architecture")
}

/// What the filter returns for syscall `nr` with `args` on the native architecture.
fn eval(filter: &SeccompFilter, nr: libc::c_long, args: [u64; 6]) -> u32 {
    eval_arch(
        filter,
        u32::try_from(nr).unwrap(),
        native_audit_arch(),
        args,
    )
}

fn eval_arch(filter: &SeccompFilter, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    bpf::run(&filter.program, nr, arch, args).expect("the interpreter handles the program")
}

fn args1(a: u64) -> [u64; 6] {
    [a, 0, 0, 0, 0, 0]
}

// ---- compiling -------------------------------------------------------------------------------

#[test]
fn empty_allow_all_profile() {
    let f = compile(&profile(LinuxSeccompAction::ScmpActAllow, vec![])).unwrap();
    assert!(!f.uses_notify());
    assert!(f.instructions() > 0);
    assert_eq!(eval(&f, libc::SYS_mkdirat, [0; 6]), RET_ALLOW);
    assert_eq!(
        eval(&f, 1000, [0; 6]),
        RET_ALLOW,
        "no ENOSYS prologue for an allowing default"
    );
    // No syscalls list at all is fine too.
    let mut bare = LinuxSeccomp::default();
    bare.set_default_action(LinuxSeccompAction::ScmpActAllow);
    compile(&bare).unwrap();
}

#[test]
fn default_profile_with_docker_caps() {
    let f = compile(&default_profile(DOCKER_CAPS)).unwrap();
    assert!(!f.uses_notify());
    let eperm = ret_errno(1);
    let enosys = ret_errno(38);
    for nr in [
        libc::SYS_getpid,
        libc::SYS_read,
        libc::SYS_execve,
        libc::SYS_chroot,
    ] {
        assert_eq!(eval(&f, nr, [0; 6]), RET_ALLOW, "syscall {nr}");
    }
    for nr in [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_acct,
        libc::SYS_kexec_load,
        libc::SYS_reboot,
        libc::SYS_bpf,
    ] {
        assert_eq!(eval(&f, nr, [0; 6]), eperm, "syscall {nr}");
    }
    // clone without namespace flags only; clone3 reports ENOSYS so libc falls back to clone.
    let thread_flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(eval(&f, libc::SYS_clone, args1(thread_flags)), RET_ALLOW);
    assert_eq!(
        eval(&f, libc::SYS_clone, args1(libc::SIGCHLD as u64)),
        RET_ALLOW
    );
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ] {
        let flags = (ns | libc::SIGCHLD) as u64;
        assert_eq!(
            eval(&f, libc::SYS_clone, args1(flags)),
            eperm,
            "clone flags {flags:#x}"
        );
    }
    assert_eq!(eval(&f, libc::SYS_clone3, [0; 6]), enosys);
    // socket: everything but AF_ALG and AF_VSOCK.
    for family in [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        libc::AF_PACKET,
    ] {
        assert_eq!(
            eval(&f, libc::SYS_socket, args1(family as u64)),
            RET_ALLOW,
            "family {family}"
        );
    }
    for family in [libc::AF_ALG, libc::AF_VSOCK] {
        assert_eq!(
            eval(&f, libc::SYS_socket, args1(family as u64)),
            eperm,
            "family {family}"
        );
    }
    // personality: only Linux personas and the query.
    for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(eval(&f, libc::SYS_personality, args1(persona)), RET_ALLOW);
    }
    assert_eq!(eval(&f, libc::SYS_personality, args1(0x0040_0000)), eperm); // READ_IMPLIES_EXEC
                                                                            // Syscalls newer than the profile: ENOSYS, not EPERM.
    assert_eq!(eval(&f, 1000, [0; 6]), enosys);
    assert_eq!(eval(&f, 4000, [0; 6]), enosys);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn default_profile_covers_compat_abis_on_x86_64() {
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    let f = compile(&default_profile(DOCKER_CAPS)).unwrap();
    // i386: getpid is 20, mount 21.
    assert_eq!(eval_arch(&f, 20, AUDIT_ARCH_I386, [0; 6]), RET_ALLOW);
    assert_eq!(eval_arch(&f, 21, AUDIT_ARCH_I386, [0; 6]), ret_errno(1));
    // x32: read is 0 with the x32 bit.
    let x32_read = bpf::X32_SYSCALL_BIT;
    assert_eq!(
        eval_arch(&f, x32_read, bpf::AUDIT_ARCH_X86_64, [0; 6]),
        RET_ALLOW
    );
    // A foreign architecture is killed.
    assert_eq!(eval_arch(&f, 20, 0xc000_00b7, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn default_profile_with_sys_admin() {
    let mut caps = DOCKER_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let f = compile(&default_profile(&caps)).unwrap();
    for nr in [
        libc::SYS_mount,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_clone3,
    ] {
        assert_eq!(eval(&f, nr, [0; 6]), RET_ALLOW, "syscall {nr}");
    }
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
    assert_eq!(eval(&f, libc::SYS_clone, args1(flags)), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_acct, [0; 6]), ret_errno(1));
}

#[test]
fn args_and_masked_eq() {
    use LinuxSeccompOperator as Op;
    let errno = LinuxSeccompAction::ScmpActErrno;
    let f = compile(&profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![
            // umask(m) fails when all of 0o700 is set in m.
            with_args(
                rule(&["umask"], errno, Some(78)),
                &[(0, Op::ScmpCmpMaskedEq, 0o700, Some(0o700))],
            ),
            // getpgid(424242) fails.
            with_args(
                rule(&["getpgid"], errno, Some(77)),
                &[(0, Op::ScmpCmpEq, 424_242, None)],
            ),
            // kill(_, 0) or kill(_, 9): same index twice, so either matches.
            with_args(
                rule(&["kill"], errno, Some(79)),
                &[(1, Op::ScmpCmpEq, 0, None), (1, Op::ScmpCmpEq, 9, None)],
            ),
            // tgkill(1, _, 9): different indexes, so both must match.
            with_args(
                rule(&["tgkill"], errno, Some(80)),
                &[(0, Op::ScmpCmpEq, 1, None), (2, Op::ScmpCmpEq, 9, None)],
            ),
            // setpriority(_, _, n) with n > 10 or n < -5 (as u64, so the negative side is big).
            with_args(
                rule(&["setpriority"], errno, Some(81)),
                &[(2, Op::ScmpCmpGt, 10, None)],
            ),
            with_args(
                rule(&["nice"], errno, Some(82)),
                &[(0, Op::ScmpCmpNe, 0, None)],
            ),
            with_args(
                rule(&["getpriority"], errno, Some(83)),
                &[(0, Op::ScmpCmpLe, 1, None)],
            ),
        ],
    ))
    .unwrap();
    assert_eq!(eval(&f, libc::SYS_umask, args1(0o777)), ret_errno(78));
    assert_eq!(eval(&f, libc::SYS_umask, args1(0o700)), ret_errno(78));
    assert_eq!(eval(&f, libc::SYS_umask, args1(0o022)), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_umask, args1(0o600)), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_getpgid, args1(424_242)), ret_errno(77));
    assert_eq!(eval(&f, libc::SYS_getpgid, args1(0)), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_kill, [1, 0, 0, 0, 0, 0]), ret_errno(79));
    assert_eq!(eval(&f, libc::SYS_kill, [1, 9, 0, 0, 0, 0]), ret_errno(79));
    assert_eq!(eval(&f, libc::SYS_kill, [1, 15, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        eval(&f, libc::SYS_tgkill, [1, 5, 9, 0, 0, 0]),
        ret_errno(80)
    );
    assert_eq!(eval(&f, libc::SYS_tgkill, [1, 5, 15, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_tgkill, [2, 5, 9, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        eval(&f, libc::SYS_setpriority, [0, 0, 11, 0, 0, 0]),
        ret_errno(81)
    );
    assert_eq!(
        eval(&f, libc::SYS_setpriority, [0, 0, 10, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(eval(&f, libc::SYS_getpriority, args1(1)), ret_errno(83));
    assert_eq!(eval(&f, libc::SYS_getpriority, args1(2)), RET_ALLOW);
}

#[test]
fn masked_eq_without_value_two_compares_with_zero() {
    let f = compile(&profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![with_args(
            rule(&["clone"], LinuxSeccompAction::ScmpActAllow, None),
            &[(0, LinuxSeccompOperator::ScmpCmpMaskedEq, 0xff00, None)],
        )],
    ))
    .unwrap();
    assert_eq!(eval(&f, libc::SYS_clone, args1(0x11)), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_clone, args1(0x0111)), ret_errno(1));
}

#[test]
fn bad_input_is_rejected() {
    use LinuxSeccompOperator as Op;
    let allow = LinuxSeccompAction::ScmpActAllow;
    let errno = LinuxSeccompAction::ScmpActErrno;

    let p = profile(
        errno,
        vec![with_args(
            rule(&["read", "write"], allow, None),
            &[(6, Op::ScmpCmpEq, 1, None)],
        )],
    );
    let err = compile(&p).unwrap_err();
    assert!(
        matches!(err, SeccompError::InvalidArgIndex { index: 6, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "seccomp rule for read, write: argument index 6 is out of range (0 to 5)"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let err = compile(&profile(allow, vec![rule(&["mkdir"], errno, Some(4096))])).unwrap_err();
    assert!(
        matches!(
            err,
            SeccompError::ErrnoOutOfRange {
                errno: 4096,
                max: 4095,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "seccomp rule for mkdir: errno 4096 is out of range (0 to 4095)"
    );

    let mut p = profile(errno, vec![]);
    p.set_default_errno_ret(Some(100_000));
    let err = compile(&p).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("seccomp defaultErrnoRet: errno 100000"),
        "{err}"
    );

    let trace = LinuxSeccompAction::ScmpActTrace;
    let err = compile(&profile(allow, vec![rule(&["mkdir"], trace, Some(70_000))])).unwrap_err();
    assert!(
        matches!(err, SeccompError::ErrnoOutOfRange { max: 65535, .. }),
        "{err:?}"
    );

    let err = compile(&profile(errno, vec![rule(&[], allow, None)])).unwrap_err();
    assert_eq!(err.to_string(), "seccomp rule 0 names no syscalls");

    // Unknown architectures cannot be written in a runtime-spec config at all.
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#;
    assert!(serde_json::from_str::<LinuxSeccomp>(json).is_err());
    let json = r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#;
    assert!(serde_json::from_str::<LinuxSeccomp>(json).is_err());
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let errno = LinuxSeccompAction::ScmpActErrno;
    let allow = LinuxSeccompAction::ScmpActAllow;
    compile(&profile(
        errno,
        vec![rule(&["no_such_syscall", "nor_this_one"], allow, None)],
    ))
    .unwrap();
    let f = compile(&profile(
        allow,
        vec![rule(&["no_such_syscall", "mkdirat"], errno, Some(5))],
    ))
    .unwrap();
    assert_eq!(eval(&f, libc::SYS_mkdirat, [0; 6]), ret_errno(5));
}

#[test]
fn rules_equal_to_the_default_are_skipped() {
    let errno = LinuxSeccompAction::ScmpActErrno;
    let allow = LinuxSeccompAction::ScmpActAllow;
    // Default ERRNO(EPERM); a rule with ERRNO and no errnoRet is the same action. The skipped
    // rule still counts for the ENOSYS prologue: mkdirat gets EPERM, not ENOSYS.
    let mut p = profile(
        errno,
        vec![
            rule(&["mkdirat"], errno, None),
            rule(&["getpid"], allow, None),
        ],
    );
    p.set_default_errno_ret(Some(1));
    let f = compile(&p).unwrap();
    assert_eq!(eval(&f, libc::SYS_getpid, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_mkdirat, [0; 6]), ret_errno(1));
    // A different errno is a different action.
    let f = compile(&profile(errno, vec![rule(&["mkdirat"], errno, Some(13))])).unwrap();
    assert_eq!(eval(&f, libc::SYS_mkdirat, [0; 6]), ret_errno(13));
    compile(&profile(allow, vec![rule(&["read"], allow, None)])).unwrap();
}

#[test]
fn every_action_compiles() {
    use LinuxSeccompAction as A;
    let f = compile(&profile(
        A::ScmpActAllow,
        vec![
            rule(&["acct"], A::ScmpActKill, None),
            rule(&["kexec_load"], A::ScmpActKillThread, None),
            rule(&["reboot"], A::ScmpActKillProcess, None),
            rule(&["swapon"], A::ScmpActTrap, None),
            rule(&["swapoff"], A::ScmpActErrno, Some(0)),
            rule(&["sethostname"], A::ScmpActTrace, Some(7)),
            rule(&["setdomainname"], A::ScmpActLog, None),
            rule(&["getppid"], A::ScmpActNotify, None),
        ],
    ))
    .unwrap();
    assert!(f.uses_notify());
    assert_eq!(eval(&f, libc::SYS_acct, [0; 6]), 0x0000_0000);
    assert_eq!(eval(&f, libc::SYS_kexec_load, [0; 6]), 0x0000_0000);
    assert_eq!(eval(&f, libc::SYS_reboot, [0; 6]), 0x8000_0000);
    assert_eq!(eval(&f, libc::SYS_swapon, [0; 6]), 0x0003_0000);
    assert_eq!(eval(&f, libc::SYS_swapoff, [0; 6]), ret_errno(0));
    assert_eq!(eval(&f, libc::SYS_sethostname, [0; 6]), 0x7ff0_0007);
    assert_eq!(eval(&f, libc::SYS_setdomainname, [0; 6]), 0x7ffc_0000);
    assert_eq!(eval(&f, libc::SYS_getppid, [0; 6]), 0x7fc0_0000);

    // KILL_PROCESS as the default: everything unlisted dies, newer syscalls get ENOSYS.
    let f = compile(&profile(
        A::ScmpActKillProcess,
        vec![rule(&["getpid"], A::ScmpActAllow, None)],
    ))
    .unwrap();
    assert_eq!(eval(&f, libc::SYS_getpid, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&f, libc::SYS_read, [0; 6]), 0x8000_0000);
}

#[test]
fn flags_and_architectures() {
    use LinuxSeccompFilterFlag as F;
    let mut p = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno, None)],
    );
    p.set_flags(Some(vec![
        F::SeccompFilterFlagTsync,
        F::SeccompFilterFlagLog,
        F::SeccompFilterFlagWaitKillableRecv,
    ]));
    p.set_architectures(Some(vec![
        Arch::ScmpArchNative,
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
    ]));
    let f = compile(&p).unwrap();
    // WAIT_KILLABLE_RECV is dropped without a NOTIFY rule.
    assert_eq!(f.flags, kernel::FLAG_TSYNC | kernel::FLAG_LOG);
    assert!(!f.uses_notify());

    p.set_syscalls(Some(vec![rule(
        &["getppid"],
        LinuxSeccompAction::ScmpActNotify,
        None,
    )]));
    p.set_flags(Some(vec![F::SeccompFilterFlagSpecAllow]));
    let f = compile(&p).unwrap();
    assert!(f.uses_notify());
    assert_eq!(f.flags, kernel::FLAG_SPEC_ALLOW);
    assert!(format!("{f:?}").contains("uses_notify: true"));
}

#[test]
fn foreign_and_unknown_architectures() {
    // The other byte order cannot run here: left out of the filter, not an error.
    let other_endian = if cfg!(target_endian = "little") {
        Arch::ScmpArchS390x
    } else {
        Arch::ScmpArchX86_64
    };
    let mut p = profile(LinuxSeccompAction::ScmpActAllow, vec![]);
    p.set_architectures(Some(vec![other_endian]));
    compile(&p).unwrap();
    // An architecture this libseccomp does not know is an error naming it.
    let known = supported_archs();
    if let Some((arch, _, name)) = ARCHES.iter().find(|(_, _, n)| !known.contains(n)) {
        p.set_architectures(Some(vec![*arch]));
        let err = compile(&p).unwrap_err();
        assert!(
            matches!(err, SeccompError::UnsupportedArch { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn serialized_filter_round_trips() {
    let mut p = default_profile(DOCKER_CAPS);
    p.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
    let f = compile(&p).unwrap();
    let bytes = f.to_bytes();
    let back = SeccompFilter::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.flags, kernel::FLAG_LOG);
    assert_eq!(eval(&back, libc::SYS_mount, [0; 6]), ret_errno(1));

    let notify = compile(&profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["getppid"], LinuxSeccompAction::ScmpActNotify, None)],
    ))
    .unwrap();
    assert!(SeccompFilter::from_bytes(&notify.to_bytes())
        .unwrap()
        .uses_notify());

    for bad in [
        &bytes[..4],
        &bytes[..20],
        &bytes[..bytes.len() - 1],
        &bytes[..16],
        b"NOTMAGIC\0\0\0\0\0\0\0\0",
    ] {
        let err = SeccompFilter::from_bytes(bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid serialized seccomp filter"),
            "{err}"
        );
    }
    let mut unknown_flag = bytes.clone();
    unknown_flag[8..12].copy_from_slice(&(1u32 << 20).to_ne_bytes());
    assert!(SeccompFilter::from_bytes(&unknown_flag).is_err());
}

#[test]
fn feature_lists_are_runtime_spec_strings() {
    let quoted = |s: &str| format!("\"{s}\"");
    for a in supported_actions() {
        serde_json::from_str::<LinuxSeccompAction>(&quoted(a)).unwrap();
    }
    for o in supported_operators() {
        serde_json::from_str::<LinuxSeccompOperator>(&quoted(o)).unwrap();
    }
    for (arch, _, name) in ARCHES {
        assert_eq!(serde_json::from_str::<Arch>(&quoted(name)).unwrap(), *arch);
    }
    let archs = supported_archs();
    for must in [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ] {
        assert!(archs.contains(&must), "{must} missing from {archs:?}");
    }
    for f in known_flags() {
        serde_json::from_str::<LinuxSeccompFilterFlag>(&quoted(f)).unwrap();
    }
    let supported = supported_flags();
    for must in [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ] {
        assert!(
            supported.contains(&must),
            "{must} missing from {supported:?} (kernel 4.17+)"
        );
    }
    assert!(supported.iter().all(|f| known_flags().contains(f)));
}

// ---- loading, in forked children -------------------------------------------------------------

/// Runs `f` in a forked child and returns its exit code (128 + signal if it was killed). The
/// child has 10 seconds; it must only make syscalls and use memory allocated before the fork.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` (syscalls on data prepared before the fork) and then
    // _exit()s, never returning into the test harness; a panic is caught and turned into an exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm only arms a timer for this (child) process.
        unsafe { libc::alarm(10) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn set_no_new_privs() -> bool {
    // SAFETY: PR_SET_NO_NEW_PRIVS only sets a flag on the calling process.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `-1` with `errno` == `want`.
fn fails_with(ret: libc::c_long, want: i32) -> bool {
    ret == -1 && errno() == want
}

#[test]
fn loaded_filter_denies_mkdir_and_allows_getpid() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("denied");
    let path = CString::new(target.to_str().unwrap()).unwrap();
    let errno_action = LinuxSeccompAction::ScmpActErrno;
    let filter = compile(&profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["mkdir", "mkdirat"], errno_action, None)],
    ))
    .unwrap();

    let code = in_child(|| {
        if !set_no_new_privs() {
            return 2;
        }
        match filter.load() {
            Ok(None) => {}
            _ => return 3,
        }
        // SAFETY: mkdirat/mkdir with a valid NUL-terminated path; getpid has no arguments.
        let (at, plain, pid) = unsafe {
            let at = libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o755);
            let at = fails_with(at.into(), libc::EPERM);
            let plain = libc::mkdir(path.as_ptr(), 0o755);
            (at, fails_with(plain.into(), libc::EPERM), libc::getpid())
        };
        match (at, plain, pid > 0) {
            (false, _, _) => 4,
            (_, false, _) => 5,
            (_, _, false) => 6,
            _ => 0,
        }
    });
    assert_eq!(
        code, 0,
        "child failed at step {code} (2 prctl, 3 load, 4 mkdirat, 5 mkdir, 6 getpid)"
    );
    assert!(!target.exists(), "mkdir got through the filter");
}

#[test]
fn default_profile_denies_privileged_syscalls() {
    let filter = compile(&default_profile(DOCKER_CAPS)).unwrap();
    let code = in_child(|| {
        if !set_no_new_privs() {
            return 2;
        }
        if filter.load().is_err() {
            return 3;
        }
        // Each call is one the kernel would let root do (or fail differently, e.g. EFAULT for
        // the bad pointers), so only the filter answers EPERM or ENOSYS.
        // SAFETY: raw syscalls with invalid pointers (1) the kernel rejects without touching
        // memory, or with no pointers at all; in a child that exits right after.
        unsafe {
            if libc::getpid() <= 0 {
                return 4;
            }
            if !fails_with(libc::syscall(libc::SYS_acct, 1usize), libc::EPERM) {
                return 5;
            }
            if !fails_with(
                libc::syscall(libc::SYS_mount, 1usize, 1usize, 1usize, 0, 0),
                libc::EPERM,
            ) {
                return 6;
            }
            if !fails_with(
                libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
                libc::EPERM,
            ) {
                return 7;
            }
            if !fails_with(
                libc::syscall(libc::SYS_clone3, 0usize, 0usize),
                libc::ENOSYS,
            ) {
                return 8;
            }
            if !fails_with(
                libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0xffff_ffffu32),
                libc::EPERM,
            ) {
                return 9;
            }
            let vsock = libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0);
            if !fails_with(vsock.into(), libc::EPERM) {
                return 10;
            }
            if !fails_with(libc::syscall(1000), libc::ENOSYS) {
                return 11;
            }
            let unix = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if unix < 0 {
                return 12;
            }
            libc::close(unix);
        }
        0
    });
    assert_eq!(
        code, 0,
        "child failed at step {code} (2 prctl, 3 load, 4 getpid, 5 acct, 6 mount, 7 unshare, \
         8 clone3, 9 kexec_load, 10 vsock, 11 syscall 1000, 12 unix socket)"
    );
}

#[test]
fn args_filter_in_a_loaded_filter() {
    use LinuxSeccompOperator as Op;
    let errno = LinuxSeccompAction::ScmpActErrno;
    let mut p = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![
            with_args(
                rule(&["getpgid"], errno, Some(77)),
                &[(0, Op::ScmpCmpEq, 424_242, None)],
            ),
            with_args(
                rule(&["umask"], errno, Some(78)),
                &[(0, Op::ScmpCmpMaskedEq, 0o700, Some(0o700))],
            ),
        ],
    );
    // TSYNC, LOG and SPEC_ALLOW change how the filter is installed, not what it decides.
    p.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    ]));
    let filter = compile(&p).unwrap();
    let code = in_child(|| {
        if !set_no_new_privs() || filter.load().is_err() {
            return 2;
        }
        // SAFETY: getpgid and umask take plain integers.
        unsafe {
            if !fails_with(libc::getpgid(424_242).into(), 77) {
                return 3;
            }
            if libc::getpgid(0) <= 0 {
                return 4;
            }
            if !fails_with(libc::syscall(libc::SYS_umask, 0o777), 78) {
                return 5;
            }
            if libc::syscall(libc::SYS_umask, 0o022) < 0 {
                return 6;
            }
        }
        0
    });
    assert_eq!(code, 0, "child failed at step {code}");
}

#[test]
fn notify_fd_receives_the_syscall() {
    let filter = compile(&profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["getppid"], LinuxSeccompAction::ScmpActNotify, None)],
    ))
    .unwrap();
    assert!(filter.uses_notify());
    let getppid = ScmpSyscall::from_name("getppid").unwrap();
    let code = in_child(|| {
        if !set_no_new_privs() {
            return 2;
        }
        let Ok(Some(listener)) = filter.load() else {
            return 3;
        };
        // SAFETY: fork in a single-threaded child; the grandchild only calls getppid and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: plain syscalls, then _exit.
            unsafe {
                libc::alarm(10);
                libc::_exit(if libc::getppid() == 4242 { 0 } else { 1 });
            }
        }
        if pid < 0 {
            return 4;
        }
        let fd = listener.as_raw_fd();
        let Ok(req) = libseccomp::ScmpNotifReq::receive(fd) else {
            return 5;
        };
        if req.data.syscall != getppid || u32::try_from(pid).ok() != Some(req.pid) {
            return 6;
        }
        let resp = libseccomp::ScmpNotifResp::new_val(
            req.id,
            4242,
            libseccomp::ScmpNotifRespFlags::empty(),
        );
        if resp.respond(fd).is_err() {
            return 7;
        }
        let mut status = 0;
        // SAFETY: waits for the grandchild forked above.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return 8;
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            0
        } else {
            9
        }
    });
    assert_eq!(
        code, 0,
        "child failed at step {code} (3 load, 5 receive, 6 request, 9 reply)"
    );
}

#[test]
fn load_needs_no_new_privs_or_cap_sys_admin() {
    use caps::{CapSet, Capability};
    let filter = compile(&profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(
            &["getpgid"],
            LinuxSeccompAction::ScmpActErrno,
            Some(77),
        )],
    ))
    .unwrap();
    let code = in_child(|| {
        if !caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_ADMIN).unwrap_or(false) {
            return 2;
        }
        // Without no_new_privs and without CAP_SYS_ADMIN in the effective set: refused.
        if caps::drop(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).is_err() {
            return 3;
        }
        match filter.load() {
            Err(SeccompError::LoadPermissionDenied) => {}
            _ => return 4,
        }
        // With CAP_SYS_ADMIN (and still no no_new_privs): loaded.
        if caps::raise(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).is_err() {
            return 5;
        }
        if !matches!(filter.load(), Ok(None)) {
            return 6;
        }
        // SAFETY: getpgid takes a plain integer.
        if !fails_with(unsafe { libc::getpgid(0) }.into(), 77) {
            return 7;
        }
        0
    });
    assert_ne!(
        code, 2,
        "this test needs root (CAP_SYS_ADMIN in the permitted set)"
    );
    assert_eq!(
        code, 0,
        "child failed at step {code} (4 load without privileges, 6 load with them)"
    );
}
