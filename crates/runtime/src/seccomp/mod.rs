//! Seccomp filters from the runtime-spec config, and Docker's default profile.
//!
//! The work is split the way the init's life is. [`compile`] runs in the runtime before the
//! fork: it checks the config, lets libseccomp turn the rules into a classic BPF program for
//! every configured architecture, and keeps that program as plain data. [`SeccompFilter::load`]
//! runs in the container's init, usually as the last step before `execve`: it is one
//! `seccomp(2)` call with no allocation, safe between fork and exec.
//!
//! Semantics follow runc, since that is what configs are written against:
//! - syscall names libseccomp does not know are skipped (a profile may name newer syscalls),
//!   while every other mistake is an error;
//! - rules whose action equals the default action are skipped (libseccomp rejects them);
//! - a rule's argument conditions are ANDed, except that when two conditions test the same
//!   argument each becomes its own rule (ORed), which is how runtime-spec configs express
//!   "any of these values";
//! - `errnoRet` defaults to `EPERM`; for `SCMP_CMP_MASKED_EQ`, `value` is the mask and
//!   `valueTwo` the expected result;
//! - unless the default action allows, syscall numbers above the highest one the profile names
//!   (per architecture) return `ENOSYS`, so libc falls back from syscalls newer than the
//!   profile instead of failing with `EPERM` (see the `bpf` submodule).
//!
//! Loading needs either `no_new_privs` or `CAP_SYS_ADMIN` in the container's user namespace; the
//! caller arranges one of them (runtime-spec's `noNewPrivileges` decides which).

mod bpf;
mod default_profile;
mod kernel;

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use libc::sock_filter;
use libseccomp::error::SeccompErrno;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::error::ErrorKind;

pub use default_profile::{default_profile, DOCKER_DEFAULT_CAPS};

/// Largest errno the kernel passes through (MAX_ERRNO); larger values are clamped by it.
const MAX_ERRNO: u32 = 4095;
/// Syscalls take at most six arguments.
const MAX_ARG_INDEX: usize = 5;
const EPERM: u32 = 1;

/// Errors from building or loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp default action {action}: {source}")]
    DefaultAction {
        action: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp architecture {arch} is not supported by the installed libseccomp: {source}")]
    UnsupportedArch {
        arch: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp rule {rule} names no syscalls")]
    NoSyscallNames { rule: usize },
    #[error("seccomp rule for {syscalls}: argument index {index} is out of range (0 to 5)")]
    InvalidArgIndex { syscalls: String, index: usize },
    #[error("seccomp {what}: errno {errno} is out of range (0 to {max})")]
    ErrnoOutOfRange { what: String, errno: u32, max: u32 },
    #[error("add seccomp rule for syscall {syscall} with action {action}: {source}")]
    AddRule {
        syscall: String,
        action: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp flag {flag} is not supported by this kernel")]
    UnsupportedFlag { flag: &'static str },
    #[error("{what}: {source}")]
    Libseccomp {
        what: &'static str,
        source: libseccomp::error::SeccompError,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("libseccomp exported a malformed filter ({len} bytes)")]
    MalformedExport { len: usize },
    #[error("invalid serialized seccomp filter: {reason}")]
    InvalidSerialized { reason: &'static str },
    #[error("seccomp filter has {len} instructions, more than the kernel's limit of 4096")]
    TooLarge { len: usize },
    #[error(
        "load seccomp filter: permission denied (the process needs no_new_privs or CAP_SYS_ADMIN)"
    )]
    LoadPermissionDenied,
    #[error("load seccomp filter: thread {tid} could not be synchronized (TSYNC)")]
    TsyncFailed { tid: i64 },
    #[error("load seccomp filter with flags {flags:#x}: {source}")]
    Load { flags: u32, source: Errno },
}

impl SeccompError {
    /// Bad configs are invalid input; failures to build or load a valid one are not.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::DefaultAction { .. }
            | Self::UnsupportedArch { .. }
            | Self::NoSyscallNames { .. }
            | Self::InvalidArgIndex { .. }
            | Self::ErrnoOutOfRange { .. }
            | Self::AddRule { .. }
            | Self::UnsupportedFlag { .. }
            | Self::TooLarge { .. } => ErrorKind::InvalidInput,
            Self::Libseccomp { .. }
            | Self::Io { .. }
            | Self::MalformedExport { .. }
            | Self::InvalidSerialized { .. }
            | Self::LoadPermissionDenied
            | Self::TsyncFailed { .. }
            | Self::Load { .. } => ErrorKind::Internal,
        }
    }
}

/// A compiled filter, ready to be loaded into the container's init.
#[derive(Clone)]
pub struct SeccompFilter {
    program: Vec<sock_filter>,
    /// SECCOMP_FILTER_FLAG_* to load with (without NEW_LISTENER, added by `load`).
    flags: u32,
    uses_notify: bool,
}

impl fmt::Debug for SeccompFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompFilter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("uses_notify", &self.uses_notify)
            .finish()
    }
}

impl SeccompFilter {
    /// Loads the filter into the calling process (called in the container's init after fork,
    /// just before exec, or earlier when `noNewPrivileges` is false and the init still has
    /// `CAP_SYS_ADMIN`). Returns the user-notification fd (close-on-exec) when any rule uses
    /// `SCMP_ACT_NOTIFY`. One syscall, no allocation on success.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let mut flags = self.flags;
        if self.uses_notify {
            flags |= kernel::FLAG_NEW_LISTENER;
            // TSYNC reports failure as a thread id, NEW_LISTENER success as an fd; TSYNC_ESRCH
            // makes a TSYNC failure an ESRCH error so the two can be told apart.
            if flags & kernel::FLAG_TSYNC != 0 {
                flags |= kernel::FLAG_TSYNC_ESRCH;
            }
        }
        match kernel::set_mode_filter(&self.program, flags) {
            Ok(kernel::Installed::Done) => Ok(None),
            Ok(kernel::Installed::Listener(fd)) => Ok(Some(fd)),
            Ok(kernel::Installed::TsyncFailed(tid)) => Err(SeccompError::TsyncFailed { tid }),
            Err(Errno::EACCES) => Err(SeccompError::LoadPermissionDenied),
            Err(source) => Err(SeccompError::Load { flags, source }),
        }
    }

    /// Whether loading returns a user-notification fd (some rule uses `SCMP_ACT_NOTIFY`).
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// Length of the BPF program, in instructions.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// The compiled filter as bytes, for a cache: compiling Docker's profile for three
    /// architectures takes libseccomp ~10 ms, loading a cached copy nothing. The format is
    /// host-specific (native byte order); key the cache on the config and the libseccomp version.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SERIAL_HEADER + 8 * self.program.len());
        out.extend_from_slice(SERIAL_MAGIC);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&u32::from(self.uses_notify).to_ne_bytes());
        for insn in &self.program {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.extend_from_slice(&[insn.jt, insn.jf]);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// Reads what [`SeccompFilter::to_bytes`] wrote. The kernel still verifies the program when
    /// it is loaded, but the bytes decide what the container may do: read them only from a
    /// place as trusted as the runtime itself (a root-owned cache).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let invalid = |reason| SeccompError::InvalidSerialized { reason };
        let (magic, rest) = bytes
            .split_at_checked(SERIAL_MAGIC.len())
            .ok_or(invalid("too short"))?;
        if magic != SERIAL_MAGIC {
            return Err(invalid("bad magic or version"));
        }
        let word = |at: usize| -> Result<u32, SeccompError> {
            let b = rest.get(at..at + 4).ok_or(invalid("too short"))?;
            Ok(u32::from_ne_bytes(
                b.try_into().map_err(|_| invalid("too short"))?,
            ))
        };
        let flags = word(0)?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(invalid("unknown flags"));
        }
        let uses_notify = match word(4)? {
            0 => false,
            1 => true,
            _ => return Err(invalid("bad notify marker")),
        };
        let insns = rest.get(8..).ok_or(invalid("too short"))?;
        let program = bpf::decode(insns).ok_or(invalid("truncated instruction"))?;
        if program.is_empty() || program.len() > bpf::MAX_INSNS {
            return Err(invalid("program length out of range"));
        }
        Ok(Self {
            program,
            flags,
            uses_notify,
        })
    }
}

/// Header of [`SeccompFilter::to_bytes`]: magic and format version, flags, notify marker.
const SERIAL_MAGIC: &[u8; 8] = b"BSECCMP1";
const SERIAL_HEADER: usize = 16;
const KNOWN_FLAGS: u32 = kernel::FLAG_TSYNC
    | kernel::FLAG_LOG
    | kernel::FLAG_SPEC_ALLOW
    | kernel::FLAG_WAIT_KILLABLE_RECV;

/// The runtime-spec name, libseccomp token and kernel AUDIT_ARCH value of each architecture.
const ARCHES: &[(Arch, ScmpArch, &str)] = &[
    (Arch::ScmpArchX86, ScmpArch::X86, "SCMP_ARCH_X86"),
    (Arch::ScmpArchX86_64, ScmpArch::X8664, "SCMP_ARCH_X86_64"),
    (Arch::ScmpArchX32, ScmpArch::X32, "SCMP_ARCH_X32"),
    (Arch::ScmpArchArm, ScmpArch::Arm, "SCMP_ARCH_ARM"),
    (
        Arch::ScmpArchAarch64,
        ScmpArch::Aarch64,
        "SCMP_ARCH_AARCH64",
    ),
    (Arch::ScmpArchMips, ScmpArch::Mips, "SCMP_ARCH_MIPS"),
    (Arch::ScmpArchMips64, ScmpArch::Mips64, "SCMP_ARCH_MIPS64"),
    (
        Arch::ScmpArchMips64n32,
        ScmpArch::Mips64N32,
        "SCMP_ARCH_MIPS64N32",
    ),
    (Arch::ScmpArchMipsel, ScmpArch::Mipsel, "SCMP_ARCH_MIPSEL"),
    (
        Arch::ScmpArchMipsel64,
        ScmpArch::Mipsel64,
        "SCMP_ARCH_MIPSEL64",
    ),
    (
        Arch::ScmpArchMipsel64n32,
        ScmpArch::Mipsel64N32,
        "SCMP_ARCH_MIPSEL64N32",
    ),
    (Arch::ScmpArchPpc, ScmpArch::Ppc, "SCMP_ARCH_PPC"),
    (Arch::ScmpArchPpc64, ScmpArch::Ppc64, "SCMP_ARCH_PPC64"),
    (
        Arch::ScmpArchPpc64le,
        ScmpArch::Ppc64Le,
        "SCMP_ARCH_PPC64LE",
    ),
    (Arch::ScmpArchS390, ScmpArch::S390, "SCMP_ARCH_S390"),
    (Arch::ScmpArchS390x, ScmpArch::S390X, "SCMP_ARCH_S390X"),
    (Arch::ScmpArchParisc, ScmpArch::Parisc, "SCMP_ARCH_PARISC"),
    (
        Arch::ScmpArchParisc64,
        ScmpArch::Parisc64,
        "SCMP_ARCH_PARISC64",
    ),
    (
        Arch::ScmpArchRiscv64,
        ScmpArch::Riscv64,
        "SCMP_ARCH_RISCV64",
    ),
    (
        Arch::ScmpArchLoongarch64,
        ScmpArch::Loongarch64,
        "SCMP_ARCH_LOONGARCH64",
    ),
    (Arch::ScmpArchM68k, ScmpArch::M68k, "SCMP_ARCH_M68K"),
    (Arch::ScmpArchSh, ScmpArch::Sh, "SCMP_ARCH_SH"),
    (Arch::ScmpArchSheb, ScmpArch::Sheb, "SCMP_ARCH_SHEB"),
];

/// The value the kernel reports in `seccomp_data.arch` for a libseccomp architecture. The
/// runtime-spec tokens are the AUDIT_ARCH values, except x32, which runs as x86_64.
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    if arch == ScmpArch::X32 {
        return Some(bpf::AUDIT_ARCH_X86_64);
    }
    ARCHES
        .iter()
        .find(|(_, s, _)| *s == arch)
        .map(|(a, _, _)| *a as u32)
}

/// The libseccomp architecture of this binary (the native one of every filter).
fn native_arch() -> Option<ScmpArch> {
    let arch = if cfg!(target_arch = "x86_64") {
        ScmpArch::X8664
    } else if cfg!(target_arch = "x86") {
        ScmpArch::X86
    } else if cfg!(target_arch = "aarch64") {
        ScmpArch::Aarch64
    } else if cfg!(target_arch = "arm") {
        ScmpArch::Arm
    } else if cfg!(target_arch = "riscv64") {
        ScmpArch::Riscv64
    } else if cfg!(target_arch = "s390x") {
        ScmpArch::S390X
    } else if cfg!(target_arch = "loongarch64") {
        ScmpArch::Loongarch64
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        ScmpArch::Ppc64Le
    } else if cfg!(target_arch = "powerpc64") {
        ScmpArch::Ppc64
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        ScmpArch::Mipsel64
    } else if cfg!(target_arch = "mips64") {
        ScmpArch::Mips64
    } else {
        return None;
    };
    Some(arch)
}

fn action_name(action: LinuxSeccompAction) -> &'static str {
    match action {
        LinuxSeccompAction::ScmpActKill => "SCMP_ACT_KILL",
        LinuxSeccompAction::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        LinuxSeccompAction::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        LinuxSeccompAction::ScmpActTrap => "SCMP_ACT_TRAP",
        LinuxSeccompAction::ScmpActErrno => "SCMP_ACT_ERRNO",
        LinuxSeccompAction::ScmpActNotify => "SCMP_ACT_NOTIFY",
        LinuxSeccompAction::ScmpActTrace => "SCMP_ACT_TRACE",
        LinuxSeccompAction::ScmpActLog => "SCMP_ACT_LOG",
        LinuxSeccompAction::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The libseccomp action for a runtime-spec action; `what` names the rule in errors.
fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: impl FnOnce() -> String,
) -> Result<ScmpAction, SeccompError> {
    let data = |max: u32| {
        let errno = errno_ret.unwrap_or(EPERM);
        if errno > max {
            return Err(SeccompError::ErrnoOutOfRange {
                what: what(),
                errno,
                max,
            });
        }
        Ok(errno)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            let errno = data(MAX_ERRNO)?;
            ScmpAction::Errno(i32::try_from(errno).unwrap_or(i32::MAX))
        }
        LinuxSeccompAction::ScmpActTrace => {
            let value = data(u32::from(u16::MAX))?;
            ScmpAction::Trace(u16::try_from(value).unwrap_or(u16::MAX))
        }
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn compare_op(op: LinuxSeccompOperator, mask: u64) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(mask),
    }
}

fn flag_bits(flag: LinuxSeccompFilterFlag) -> (u32, &'static str) {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
            (kernel::FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC")
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
            (kernel::FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG")
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            (kernel::FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
            kernel::FLAG_WAIT_KILLABLE_RECV,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ),
    }
}

/// Compiles the config into a BPF program, in the parent (allocation is fine there). Syscall
/// names unknown to libseccomp are skipped, as runc does; everything else invalid is an error.
pub fn compile(cfg: &LinuxSeccomp) -> Result<SeccompFilter, SeccompError> {
    let default_action = scmp_action(cfg.default_action(), cfg.default_errno_ret(), || {
        "defaultErrnoRet".to_owned()
    })?;
    let mut ctx =
        ScmpFilterContext::new(default_action).map_err(|source| SeccompError::DefaultAction {
            action: action_name(cfg.default_action()).to_owned(),
            source,
        })?;

    let mut archs: Vec<ScmpArch> = native_arch().into_iter().collect();
    for &arch in cfg.architectures().iter().flatten() {
        let Some(&(_, scmp, name)) = ARCHES.iter().find(|(a, _, _)| *a == arch) else {
            continue; // SCMP_ARCH_NATIVE: always in the filter.
        };
        match ctx.add_arch(scmp) {
            Ok(_) => {
                if !archs.contains(&scmp) {
                    archs.push(scmp);
                }
            }
            // EDOM: the other byte order than the native one. No process on this host can make
            // syscalls of that architecture, so leaving it out changes nothing (configs written
            // for several hosts list them all).
            Err(e) if e.errno() == Some(SeccompErrno::EDOM) => {}
            Err(source) => {
                return Err(SeccompError::UnsupportedArch {
                    arch: name.to_owned(),
                    source,
                });
            }
        }
    }

    let mut flags = 0;
    for &flag in cfg.flags().iter().flatten() {
        let (bits, name) = flag_bits(flag);
        // WAIT_KILLABLE_RECV is only accepted together with NEW_LISTENER.
        let probe = if bits == kernel::FLAG_WAIT_KILLABLE_RECV {
            bits | kernel::FLAG_NEW_LISTENER
        } else {
            bits
        };
        if kernel::flags_supported(probe) == Some(false) {
            return Err(SeccompError::UnsupportedFlag { flag: name });
        }
        flags |= bits;
    }

    // No SCMP_FLTATR_CTL_OPTIMIZE binary tree: it makes compiling slower and the program
    // longer, and since Linux 5.11 the kernel caches, per syscall number, the decisions that
    // are ALLOW whatever the arguments, so allowed syscalls no longer walk the filter at all.

    let mut uses_notify = default_action == ScmpAction::Notify;
    for (index, rule) in cfg.syscalls().iter().flatten().enumerate() {
        if rule.names().is_empty() {
            return Err(SeccompError::NoSyscallNames { rule: index });
        }
        let label = || rule.names().join(", ");
        let action = scmp_action(rule.action(), rule.errno_ret(), || {
            format!("rule for {}", label())
        })?;

        let args = rule.args().as_deref().unwrap_or_default();
        let mut conditions = Vec::with_capacity(args.len());
        let mut per_index = [0usize; MAX_ARG_INDEX + 1];
        for arg in args {
            let count =
                per_index
                    .get_mut(arg.index())
                    .ok_or_else(|| SeccompError::InvalidArgIndex {
                        syscalls: label(),
                        index: arg.index(),
                    })?;
            *count += 1;
            let (datum, mask) = match arg.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    (arg.value_two().unwrap_or(0), arg.value())
                }
                _ => (arg.value(), 0),
            };
            let index = u32::try_from(arg.index()).unwrap_or(u32::MAX);
            conditions.push(ScmpArgCompare::new(
                index,
                compare_op(arg.op(), mask),
                datum,
            ));
        }
        // libseccomp allows one comparison per argument in a rule: conditions on a repeated
        // argument become separate rules, which ORs them.
        let split = per_index.iter().any(|&n| n > 1);

        if action == default_action {
            continue;
        }
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue; // Unknown to this libseccomp: skipped, as runc does.
            };
            let added = if split {
                conditions.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c))
                        .map(|_| ())
                })
            } else {
                ctx.add_rule_conditional(action, syscall, &conditions)
                    .map(|_| ())
            };
            added.map_err(|source| SeccompError::AddRule {
                syscall: name.clone(),
                action: action_name(rule.action()).to_owned(),
                source,
            })?;
            uses_notify |= action == ScmpAction::Notify;
        }
    }
    if !uses_notify {
        flags &= !kernel::FLAG_WAIT_KILLABLE_RECV;
    }

    let main = export(&ctx)?;
    let permissive = matches!(
        default_action,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Notify
    ) || default_action == ScmpAction::Errno(libc::ENOSYS);
    let mut program = if permissive {
        Vec::new()
    } else {
        // None only if the jumps overflowed, which would take dozens of architectures; the
        // filter is then correct, just without the ENOSYS courtesy.
        bpf::enosys_prologue(&arch_limits(cfg, &archs)).unwrap_or_default()
    };
    program.extend_from_slice(&main);
    if program.len() > bpf::MAX_INSNS {
        return Err(SeccompError::TooLarge { len: program.len() });
    }
    Ok(SeccompFilter {
        program,
        flags,
        uses_notify,
    })
}

/// libseccomp writes the program to an fd; a memfd keeps it off the filesystem.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<sock_filter>, SeccompError> {
    let io = |what| move |source| SeccompError::Io { what, source };
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SeccompError::Io {
                what: "create memfd for seccomp filter",
                source: e.into(),
            })?;
    ctx.export_bpf(&fd)
        .map_err(|source| SeccompError::Libseccomp {
            what: "export seccomp filter",
            source,
        })?;
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0))
        .map_err(io("read exported seccomp filter"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io("read exported seccomp filter"))?;
    bpf::decode(&bytes).ok_or(SeccompError::MalformedExport { len: bytes.len() })
}

/// For each architecture of the filter, the highest syscall number the config names there.
fn arch_limits(cfg: &LinuxSeccomp, archs: &[ScmpArch]) -> Vec<bpf::ArchLimit> {
    let names: Vec<&str> = cfg
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names())
        .map(String::as_str)
        .collect();
    let max_for = |arch: ScmpArch| {
        names
            .iter()
            .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
            .filter_map(|syscall| u32::try_from(i32::from(syscall)).ok())
            .max()
    };
    let mut limits: Vec<bpf::ArchLimit> = Vec::new();
    for &arch in archs {
        let Some(audit_arch) = audit_arch(arch) else {
            continue;
        };
        let max = max_for(arch);
        let at = match limits.iter().position(|l| l.audit_arch == audit_arch) {
            Some(at) => at,
            None => {
                limits.push(bpf::ArchLimit {
                    audit_arch,
                    max: None,
                    x32_max: None,
                });
                limits.len() - 1
            }
        };
        if arch == ScmpArch::X32 {
            limits[at].x32_max = max;
        } else {
            limits[at].max = max;
        }
    }
    limits
}

/// The runtime-spec actions this runtime implements, for `features`.
pub fn supported_actions() -> Vec<&'static str> {
    vec![
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP",
    ]
}

/// The runtime-spec argument operators, for `features`.
pub fn supported_operators() -> Vec<&'static str> {
    vec![
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_LE",
        "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
    ]
}

/// The architectures the installed libseccomp can add to a filter, for `features`.
pub fn supported_archs() -> Vec<&'static str> {
    // EDOM means libseccomp knows the architecture but it has the other byte order than the
    // native one, which only matters on hosts of that byte order; EINVAL means it is unknown.
    let known = |arch: ScmpArch| {
        ScmpFilterContext::new(ScmpAction::Allow).is_ok_and(|mut probe| {
            match probe.add_arch(arch) {
                Ok(_) => true,
                Err(e) => e.errno() == Some(SeccompErrno::EDOM),
            }
        })
    };
    ARCHES
        .iter()
        .filter(|(_, scmp, _)| known(*scmp))
        .map(|(_, _, name)| *name)
        .collect()
}

/// Every filter flag runtime-spec defines (`knownFlags` in `features`).
pub fn known_flags() -> Vec<&'static str> {
    vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
}

/// The filter flags the running kernel accepts (`supportedFlags` in `features`).
pub fn supported_flags() -> Vec<&'static str> {
    [
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]
    .into_iter()
    .map(flag_bits)
    .filter(|&(bits, _)| {
        let probe = if bits == kernel::FLAG_WAIT_KILLABLE_RECV {
            bits | kernel::FLAG_NEW_LISTENER
        } else {
            bits
        };
        kernel::flags_supported(probe) == Some(true)
    })
    .map(|(_, name)| name)
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;
