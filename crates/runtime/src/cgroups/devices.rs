//! The device allowlist: runtime-spec device rules as cgroup v1 `devices.allow`/`devices.deny`
//! lines, or as a hand-assembled eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` for cgroup v2,
//! which has no devices controller. Pure: the program is returned as instructions; `bpf.rs` loads
//! and attaches it.
//!
//! Rule semantics (both versions): the device list is evaluated as a whole, the last rule that
//! matches a request decides, and a request no rule matches is denied. An allow rule matches when
//! it grants every access bit requested (`rw` covers a read-only open); a deny rule matches when
//! it names any of the requested bits (denying `w` refuses a read-write open). Rules of type `p`
//! (FIFOs) are dropped: the kernel does not check FIFOs against the device cgroup.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE` from the kernel's uapi, the access bits of a request.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Which devices a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    All,
    Char,
    Block,
}

/// One device rule, checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` is the wildcard `*`; a number is never negative (BPF immediates are `i32`).
    pub major: Option<i32>,
    pub minor: Option<i32>,
    /// `ACC_*` bits.
    pub access: u8,
}

fn device_number(
    rule: &LinuxDeviceCgroup,
    which: &'static str,
    value: Option<i64>,
) -> Result<Option<i32>, CgroupError> {
    match value {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        // BPF immediates are signed 32-bit, and real device numbers are 12 (major) and 20 (minor) bits.
        Some(n) => match i32::try_from(n) {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(CgroupError::InvalidDeviceRule {
                rule: rule.to_string(),
                reason: format!("{which} number {n} is out of range"),
            }),
        },
    }
}

fn parse_access(rule: &LinuxDeviceCgroup) -> Result<u8, CgroupError> {
    let text = rule.access().as_deref().unwrap_or("");
    if text.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(CgroupError::InvalidDeviceRule {
                    rule: rule.to_string(),
                    reason: format!("access {text:?} may only hold the letters r, w and m"),
                })
            }
        };
    }
    Ok(bits)
}

/// Check the runtime-spec rules and normalise them (`u` is a char device; `p` is dropped).
pub(crate) fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue,
        };
        out.push(DeviceRule {
            allow: rule.allow(),
            kind,
            major: device_number(rule, "major", rule.major())?,
            minor: device_number(rule, "minor", rule.minor())?,
            access: parse_access(rule)?,
        });
    }
    Ok(out)
}

fn access_text(access: u8) -> String {
    let mut s = String::with_capacity(3);
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if access & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn number_text(n: Option<i32>) -> String {
    n.map_or_else(|| "*".to_string(), |n| n.to_string())
}

/// The line written to `devices.allow`/`devices.deny` for one rule, in the kernel's format
/// `c 1:3 rwm` (`*` for a wildcard number).
///
/// The v1 kernel reads a line starting with `a` as "every device, every access" and ignores the
/// rest of it, so a rule of type `a` that is narrower than that is written as a `c` and a `b`
/// line instead.
pub(crate) fn v1_lines(rule: &DeviceRule) -> Vec<String> {
    let numbers = format!("{}:{}", number_text(rule.major), number_text(rule.minor));
    let access = access_text(rule.access);
    match rule.kind {
        DeviceKind::All
            if rule.major.is_none() && rule.minor.is_none() && rule.access == ACC_ALL =>
        {
            vec!["a".to_string()]
        }
        DeviceKind::All => vec![
            format!("c {numbers} {access}"),
            format!("b {numbers} {access}"),
        ],
        DeviceKind::Char => vec![format!("c {numbers} {access}")],
        DeviceKind::Block => vec![format!("b {numbers} {access}")],
    }
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    pub code: u8,
    /// `dst_reg:4, src_reg:4` bitfield.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes: class | operation | source, from linux/bpf_common.h and linux/bpf.h.
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
const ALU_MOV_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X: w_dst = w_src
const ALU_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K: w_dst &= imm
const ALU_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K: w_dst >>= imm
const ALU64_MOV_K: u8 = 0x07 | 0xb0; // BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
const JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA: goto +off
const JMP_JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K: if dst != imm goto +off
const JMP_JSET_K: u8 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K: if dst & imm goto +off
const JMP_EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT: return r0

// Registers: r1 holds the context on entry, r0 the return value; the rest is scratch.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    // The bitfield order follows the byte order: dst_reg is the low nibble on little-endian.
    #[cfg(target_endian = "little")]
    let regs = (dst & 0x0f) | (src << 4);
    #[cfg(target_endian = "big")]
    let regs = (src & 0x0f) | (dst << 4);
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// A jump whose target is patched once the block's length is known.
struct Block {
    insns: Vec<Insn>,
    /// Indexes of jumps that go to the end of the block (to the next rule).
    to_next: Vec<usize>,
}

impl Block {
    fn jump_to_next(&mut self, code: u8, dst: u8, imm: i32) {
        self.to_next.push(self.insns.len());
        self.insns.push(insn(code, dst, 0, 0, imm));
    }

    fn finish(mut self) -> Result<Vec<Insn>, CgroupError> {
        let len = self.insns.len();
        for index in self.to_next {
            // Offsets count from the instruction after the jump.
            let off = i16::try_from(len - index - 1).map_err(|_| CgroupError::DeviceProgram {
                reason: "a rule's block is too long for a jump".to_string(),
            })?;
            self.insns[index].off = off;
        }
        Ok(self.insns)
    }
}

/// Assemble the cgroup v2 device filter for `rules`.
///
/// The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` with
/// `access_type = access << 16 | type`. The program loads the four values into r2..r5, then
/// checks the rules from the last to the first; the first match returns 1 (allow) or 0 (deny).
/// When nothing matches it returns 0. A rule that matches everything ends the program, since
/// the verifier refuses code that cannot be reached.
pub(crate) fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let mut out = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),     // r2 = access_type
        insn(ALU_MOV_X, R3, R2, 0, 0),     // r3 = access_type
        insn(ALU_AND_K, R2, 0, 0, 0xffff), // r2 = device type
        insn(ALU_RSH_K, R3, 0, 0, 16),     // r3 = requested access bits
        insn(LDX_MEM_W, R4, R1, 4, 0),     // r4 = major
        insn(LDX_MEM_W, R5, R1, 8, 0),     // r5 = minor
    ];
    for rule in rules.iter().rev() {
        let mut block = Block {
            insns: Vec::new(),
            to_next: Vec::new(),
        };
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Char => block.jump_to_next(JMP_JNE_K, R2, DEV_CHAR),
            DeviceKind::Block => block.jump_to_next(JMP_JNE_K, R2, DEV_BLOCK),
        }
        if let Some(major) = rule.major {
            block.jump_to_next(JMP_JNE_K, R4, major);
        }
        if let Some(minor) = rule.minor {
            block.jump_to_next(JMP_JNE_K, R5, minor);
        }
        if rule.access != ACC_ALL {
            if rule.allow {
                // Any requested bit outside the rule's access: not this rule.
                block.jump_to_next(JMP_JSET_K, R3, i32::from(ACC_ALL & !rule.access));
            } else {
                // Any requested bit inside the rule's access: this rule (skip the `goto next`).
                block
                    .insns
                    .push(insn(JMP_JSET_K, R3, 0, 1, i32::from(rule.access)));
                block.jump_to_next(JMP_JA, 0, 0);
            }
        }
        let matches_everything = block.to_next.is_empty();
        block
            .insns
            .push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(rule.allow)));
        block.insns.push(insn(JMP_EXIT, 0, 0, 0, 0));
        out.extend(block.finish()?);
        if matches_everything {
            return Ok(out);
        }
    }
    out.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(out)
}

/// Run a program built by [`program`] on one request, the way the kernel would. Only the
/// instructions `program` emits are understood; tests use it to check the assembled filter.
#[cfg(test)]
pub(crate) fn interpret(insns: &[Insn], kind: i32, major: u32, minor: u32, access: u8) -> u64 {
    let ctx = [
        (u32::from(access) << 16) | kind.unsigned_abs(),
        major,
        minor,
    ];
    let mut regs = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = insns[pc];
        let dst = usize::from(i.regs & 0x0f);
        let src = usize::from(i.regs >> 4);
        // eBPF sign-extends immediates to 64 bits.
        let imm = i64::from(i.imm) as u64;
        let mut next = pc + 1;
        let jump = |pc: usize| pc.wrapping_add_signed(isize::from(i.off)) + 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                regs[dst] = u64::from(ctx[usize::try_from(i.off / 4).expect("offset")]);
            }
            ALU_MOV_X => regs[dst] = regs[src] & 0xffff_ffff,
            ALU_AND_K => regs[dst] = (regs[dst] & imm) & 0xffff_ffff,
            ALU_RSH_K => regs[dst] = (regs[dst] & 0xffff_ffff) >> imm,
            ALU64_MOV_K => regs[dst] = imm,
            JMP_JA => next = jump(pc),
            JMP_JNE_K if regs[dst] != imm => next = jump(pc),
            JMP_JSET_K if regs[dst] & imm != 0 => next = jump(pc),
            JMP_JNE_K | JMP_JSET_K => {}
            JMP_EXIT => return regs[0],
            other => panic!("unexpected opcode {other:#x}"),
        }
        pc = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if major >= 0 {
            b = b.major(major);
        }
        if minor >= 0 {
            b = b.minor(minor);
        }
        b.build().expect("rule")
    }

    /// Docker's default: deny everything, then allow the usual character devices.
    fn docker_like() -> Vec<DeviceRule> {
        normalize(&[
            rule(false, LinuxDeviceType::A, -1, -1, "rwm"),
            rule(true, LinuxDeviceType::C, 1, 3, "rwm"), // /dev/null
            rule(true, LinuxDeviceType::C, 1, 5, "rwm"), // /dev/zero
            rule(true, LinuxDeviceType::C, 136, -1, "rwm"), // /dev/pts/*
            rule(true, LinuxDeviceType::C, -1, -1, "m"), // mknod any char device
            rule(true, LinuxDeviceType::C, 1, 9, "r"),   // /dev/urandom read-only
            rule(false, LinuxDeviceType::C, 1, 5, "w"),  // then deny writing /dev/zero
        ])
        .expect("normalize")
    }

    #[test]
    fn v1_formatting() {
        let rules = docker_like();
        let lines: Vec<String> = rules.iter().flat_map(v1_lines).collect();
        assert_eq!(
            lines,
            vec![
                "a",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 136:* rwm",
                "c *:* m",
                "c 1:9 r",
                "c 1:5 w"
            ]
        );
        let narrow_all = normalize(&[rule(true, LinuxDeviceType::A, 4, -1, "rw")]).expect("ok");
        assert_eq!(v1_lines(&narrow_all[0]), vec!["c 4:* rw", "b 4:* rw"]);
        let unbuffered = normalize(&[rule(true, LinuxDeviceType::U, 5, 1, "")]).expect("ok");
        assert_eq!(v1_lines(&unbuffered[0]), vec!["c 5:1 rwm"]);
        let fifo = normalize(&[rule(true, LinuxDeviceType::P, 5, 1, "rwm")]).expect("ok");
        assert!(fifo.is_empty());
    }

    #[test]
    fn rejects_bad_rules() {
        let bad = rule(true, LinuxDeviceType::C, 1, 3, "rwx");
        let err = normalize(&[bad]).expect_err("bad access");
        assert!(err.to_string().contains("c 1:3 rwx"), "{err}");
        let huge = rule(true, LinuxDeviceType::C, 1 << 40, 3, "r");
        assert!(normalize(&[huge]).is_err());
    }

    #[test]
    fn program_follows_the_rules() {
        let prog = program(&docker_like()).expect("program");
        let allow = |kind, major, minor, access| interpret(&prog, kind, major, minor, access) == 1;
        let rw = ACC_READ | ACC_WRITE;
        assert!(allow(DEV_CHAR, 1, 3, rw), "/dev/null rw");
        assert!(allow(DEV_CHAR, 1, 3, ACC_MKNOD));
        assert!(
            !allow(DEV_BLOCK, 1, 3, ACC_READ),
            "block 1:3 is another device"
        );
        assert!(allow(DEV_CHAR, 136, 7, rw), "pts wildcard minor");
        assert!(
            allow(DEV_CHAR, 42, 42, ACC_MKNOD),
            "mknod of any char device"
        );
        assert!(!allow(DEV_CHAR, 42, 42, ACC_READ), "but not opening it");
        assert!(allow(DEV_CHAR, 1, 9, ACC_READ));
        assert!(!allow(DEV_CHAR, 1, 9, rw), "urandom is read-only");
        assert!(allow(DEV_CHAR, 1, 5, ACC_READ), "zero readable");
        assert!(!allow(DEV_CHAR, 1, 5, ACC_WRITE), "later deny of w wins");
        assert!(!allow(DEV_CHAR, 1, 5, rw));
        assert!(!allow(DEV_BLOCK, 8, 0, ACC_READ), "default deny");
    }

    #[test]
    fn program_allow_all_stops_early() {
        let rules = normalize(&[
            rule(false, LinuxDeviceType::C, 1, 3, "rwm"),
            rule(true, LinuxDeviceType::A, -1, -1, "rwm"),
        ])
        .expect("normalize");
        let prog = program(&rules).expect("program");
        // Prologue, then the allow-all block (mov, exit) and nothing after it.
        assert_eq!(prog.len(), 8);
        assert_eq!(prog[6], insn(ALU64_MOV_K, R0, 0, 0, 1));
        assert_eq!(interpret(&prog, DEV_CHAR, 1, 3, ACC_READ), 1);
        assert_eq!(interpret(&prog, DEV_BLOCK, 8, 0, ACC_WRITE), 1);
        let empty = program(&[]).expect("program");
        assert_eq!(empty.len(), 8);
        assert_eq!(interpret(&empty, DEV_CHAR, 1, 3, ACC_READ), 0);
    }

    #[test]
    fn instruction_encoding() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let prog = program(&normalize(&[rule(true, LinuxDeviceType::C, 1, 3, "r")]).expect("ok"))
            .expect("program");
        // ldxw r2, [r1 + 0]
        assert_eq!(
            prog[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        // if r2 != 2 (char) goto next: the block is jne, jne, jne, jset, mov, exit.
        assert_eq!(
            prog[6],
            Insn {
                code: 0x55,
                regs: 0x02,
                off: 5,
                imm: 2
            }
        );
        assert_eq!(
            prog[9],
            Insn {
                code: 0x45,
                regs: 0x03,
                off: 2,
                imm: 5
            }
        );
        assert_eq!(prog.len(), 14);
    }
}
