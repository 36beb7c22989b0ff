//! Classic BPF programs: decoding libseccomp's export, and the `ENOSYS` prologue.
//!
//! A profile written today cannot name the syscalls of next year's kernel, and a libseccomp
//! older than the profile cannot resolve its newest names (they are skipped). Without help,
//! such syscalls get the profile's default action, usually `EPERM`, and libc wrappers that try a
//! new syscall first and fall back on `ENOSYS` (clone3, fchmodat2, faccessat2...) fail instead of
//! falling back. So, like runc, we put a short prologue in front of libseccomp's program: for
//! each architecture of the filter, a syscall number above the highest one the profile names for
//! that architecture returns `ENOSYS`. Everything else goes on to libseccomp's program, which
//! also handles foreign architectures.

use libc::sock_filter;

/// Kernel limit on a filter's length (BPF_MAXINSNS).
pub(crate) const MAX_INSNS: usize = 4096;

// Opcodes from linux/filter.h and linux/bpf_common.h.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit set in their number.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Decodes the output of `seccomp_export_bpf`: `struct sock_filter` records in native byte order.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<sock_filter>> {
    if bytes.len() % 8 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// What the prologue checks for one audit architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArchLimit {
    /// The AUDIT_ARCH_* value the kernel reports in `seccomp_data.arch`.
    pub audit_arch: u32,
    /// Highest syscall number the profile names for the architecture's main ABI.
    pub max: Option<u32>,
    /// On AUDIT_ARCH_X86_64 only: highest x32 number (with [`X32_SYSCALL_BIT`]), when the
    /// filter includes x32.
    pub x32_max: Option<u32>,
}

/// A jump target inside the prologue being assembled.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The instruction right after this one.
    Next,
    /// The `ret ENOSYS` instruction.
    Enosys,
    /// The first instruction of the main program.
    Main,
    /// The first instruction of the block for limit number `i`.
    Block(usize),
    /// The x32 half of the block for limit number `i`.
    X32(usize),
}

#[derive(Debug, Clone, Copy)]
enum Insn {
    Load(u32),
    Ja(Target),
    Jeq(u32, Target, Target),
    Jgt(u32, Target, Target),
    Jset(u32, Target, Target),
    Ret(u32),
}

/// Builds the prologue for `limits` (returns an empty program when no limit is known).
///
/// ```text
///         ld  [arch]
///         jeq #ARCH_0, block_0          ; one per architecture
///         ...
///         ja  main                      ; unknown arch: libseccomp decides
/// block_i: ld [nr]
///         jset #X32_BIT, x32_i          ; AUDIT_ARCH_X86_64 only
///         jgt #MAX_i, enosys, main
/// x32_i:  jgt #X32_MAX_i, enosys, main
/// enosys: ret #ERRNO(ENOSYS)
/// main:   (libseccomp's program)
/// ```
pub(crate) fn enosys_prologue(limits: &[ArchLimit]) -> Option<Vec<sock_filter>> {
    let limits: Vec<ArchLimit> = limits
        .iter()
        .copied()
        .filter(|l| l.max.is_some() || l.x32_max.is_some())
        .collect();
    if limits.is_empty() {
        return Some(Vec::new());
    }

    // Lay out the program with symbolic targets, remembering where each label lands.
    let mut insns = vec![Insn::Load(DATA_ARCH)];
    for (i, l) in limits.iter().enumerate() {
        insns.push(Insn::Jeq(l.audit_arch, Target::Block(i), Target::Next));
    }
    insns.push(Insn::Ja(Target::Main));
    let mut block_at = Vec::with_capacity(limits.len());
    let mut x32_at = vec![None; limits.len()];
    for (i, l) in limits.iter().enumerate() {
        block_at.push(insns.len());
        insns.push(Insn::Load(DATA_NR));
        let has_x32_half = l.audit_arch == AUDIT_ARCH_X86_64;
        if has_x32_half {
            insns.push(Insn::Jset(X32_SYSCALL_BIT, Target::X32(i), Target::Next));
        }
        match l.max {
            Some(max) => insns.push(Insn::Jgt(max, Target::Enosys, Target::Main)),
            None => insns.push(Insn::Ja(Target::Main)),
        }
        if has_x32_half {
            x32_at[i] = Some(insns.len());
            match l.x32_max {
                Some(max) => insns.push(Insn::Jgt(max, Target::Enosys, Target::Main)),
                None => insns.push(Insn::Ja(Target::Main)),
            }
        }
    }
    let enosys_at = insns.len();
    insns.push(Insn::Ret(SECCOMP_RET_ERRNO | ENOSYS));
    let main_at = insns.len();

    let resolve = |from: usize, target: Target| -> Option<usize> {
        let to = match target {
            Target::Next => from + 1,
            Target::Enosys => enosys_at,
            Target::Main => main_at,
            Target::Block(i) => *block_at.get(i)?,
            Target::X32(i) => (*x32_at.get(i)?)?,
        };
        // Jumps are relative to the next instruction and only go forward.
        to.checked_sub(from + 1)
    };
    let short =
        |from: usize, target: Target| -> Option<u8> { u8::try_from(resolve(from, target)?).ok() };
    let jump = |code: u16, k: u32, from: usize, jt: Target, jf: Target| -> Option<sock_filter> {
        Some(sock_filter {
            code,
            jt: short(from, jt)?,
            jf: short(from, jf)?,
            k,
        })
    };

    insns
        .iter()
        .enumerate()
        .map(|(at, insn)| match *insn {
            Insn::Load(offset) => Some(sock_filter {
                code: BPF_LD_W_ABS,
                jt: 0,
                jf: 0,
                k: offset,
            }),
            Insn::Ja(t) => Some(sock_filter {
                code: BPF_JMP_JA,
                jt: 0,
                jf: 0,
                k: u32::try_from(resolve(at, t)?).ok()?,
            }),
            Insn::Jeq(k, jt, jf) => jump(BPF_JMP_JEQ_K, k, at, jt, jf),
            Insn::Jgt(k, jt, jf) => jump(BPF_JMP_JGT_K, k, at, jt, jf),
            Insn::Jset(k, jt, jf) => jump(BPF_JMP_JSET_K, k, at, jt, jf),
            Insn::Ret(k) => Some(sock_filter {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k,
            }),
        })
        .collect()
}

pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const ENOSYS: u32 = 38;

/// A tiny classic-BPF interpreter for the instructions the prologue and libseccomp use, so tests
/// can check what a program returns for a syscall without loading it.
#[cfg(test)]
pub(crate) fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> Option<u32> {
    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let word = |off: u32| -> Option<u32> {
        let off = usize::try_from(off).ok()?;
        Some(u32::from_ne_bytes(data.get(off..off + 4)?.try_into().ok()?))
    };
    let (mut acc, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = prog.get(pc)?;
        pc += 1;
        let k = i.k;
        let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
        match i.code {
            0x20 => acc = word(k)?,                                // ld [k]
            0x00 => acc = k,                                       // ld #k
            0x01 => x = k,                                         // ldx #k
            0x02 => *mem.get_mut(usize::try_from(k).ok()?)? = acc, // st M[k]
            0x03 => *mem.get_mut(usize::try_from(k).ok()?)? = x,   // stx M[k]
            0x60 => acc = *mem.get(usize::try_from(k).ok()?)?,     // ld M[k]
            0x61 => x = *mem.get(usize::try_from(k).ok()?)?,       // ldx M[k]
            0x54 => acc &= k,                                      // and #k
            0x44 => acc |= k,                                      // or #k
            0x07 => x = acc,                                       // tax
            0x87 => acc = x,                                       // txa
            0x05 => pc += usize::try_from(k).ok()?,                // ja
            0x15 => pc += jump(acc == k),                          // jeq #k
            0x25 => pc += jump(acc > k),                           // jgt #k
            0x35 => pc += jump(acc >= k),                          // jge #k
            0x45 => pc += jump(acc & k != 0),                      // jset #k
            0x1d => pc += jump(acc == x),                          // jeq x
            0x2d => pc += jump(acc > x),                           // jgt x
            0x3d => pc += jump(acc >= x),                          // jge x
            0x4d => pc += jump(acc & x != 0),                      // jset x
            0x06 => return Some(k),                                // ret #k
            0x16 => return Some(acc),                              // ret a
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = SECCOMP_RET_ERRNO | 1;

    /// The prologue followed by a stand-in main program that returns EPERM.
    fn with_main(limits: &[ArchLimit]) -> Vec<sock_filter> {
        let mut prog = enosys_prologue(limits).unwrap();
        prog.push(sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: EPERM,
        });
        prog
    }

    #[test]
    fn decode_rejects_partial_records() {
        assert!(decode(&[0; 7]).is_none());
        let insn = decode(&[6, 0, 1, 2, 0, 0, 0xff, 0x7f]).unwrap();
        assert_eq!(insn.len(), 1);
        assert_eq!((insn[0].code, insn[0].jt, insn[0].jf), (6, 1, 2));
        assert_eq!(insn[0].k, u32::from_ne_bytes([0, 0, 0xff, 0x7f]));
    }

    #[test]
    fn no_limits_no_prologue() {
        assert!(enosys_prologue(&[]).unwrap().is_empty());
        let none = ArchLimit {
            audit_arch: AUDIT_ARCH_I386,
            max: None,
            x32_max: None,
        };
        assert!(enosys_prologue(&[none]).unwrap().is_empty());
    }

    #[test]
    fn numbers_above_the_profile_get_enosys() {
        let prog = with_main(&[
            ArchLimit {
                audit_arch: AUDIT_ARCH_X86_64,
                max: Some(450),
                x32_max: None,
            },
            ArchLimit {
                audit_arch: AUDIT_ARCH_I386,
                max: Some(300),
                x32_max: None,
            },
        ]);
        let enosys = SECCOMP_RET_ERRNO | ENOSYS;
        assert_eq!(run(&prog, 39, AUDIT_ARCH_X86_64, [0; 6]), Some(EPERM));
        assert_eq!(run(&prog, 450, AUDIT_ARCH_X86_64, [0; 6]), Some(EPERM));
        assert_eq!(run(&prog, 451, AUDIT_ARCH_X86_64, [0; 6]), Some(enosys));
        assert_eq!(run(&prog, 301, AUDIT_ARCH_I386, [0; 6]), Some(enosys));
        assert_eq!(run(&prog, 300, AUDIT_ARCH_I386, [0; 6]), Some(EPERM));
        // Unknown architecture and x32 calls without an x32 limit go to the main program.
        assert_eq!(run(&prog, 9999, 0xdead, [0; 6]), Some(EPERM));
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 9999, AUDIT_ARCH_X86_64, [0; 6]),
            Some(EPERM)
        );
    }

    #[test]
    fn x32_has_its_own_limit() {
        let prog = with_main(&[ArchLimit {
            audit_arch: AUDIT_ARCH_X86_64,
            max: Some(450),
            x32_max: Some(X32_SYSCALL_BIT | 547),
        }]);
        let enosys = SECCOMP_RET_ERRNO | ENOSYS;
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 547, AUDIT_ARCH_X86_64, [0; 6]),
            Some(EPERM)
        );
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 548, AUDIT_ARCH_X86_64, [0; 6]),
            Some(enosys)
        );
        assert_eq!(run(&prog, 451, AUDIT_ARCH_X86_64, [0; 6]), Some(enosys));
        assert_ne!(run(&prog, 1, AUDIT_ARCH_X86_64, [0; 6]), Some(ALLOW));
    }
}
