//! The bpf(2) calls that install the cgroup v2 device filter: load the program assembled by
//! `devices::program`, attach it to the container's cgroup, and detach the filters it replaces
//! (so `update` can widen the allowlist: with `BPF_F_ALLOW_MULTI` every attached program must
//! allow an access, so an old, narrower filter left in place would still refuse).
//!
//! `union bpf_attr` is passed as a zeroed 256-byte buffer with the fields written at their
//! offsets from linux/bpf.h. The buffer is larger than every layout the kernel reads or writes
//! for the commands used here (it writes results back into it for `BPF_PROG_QUERY`), and the
//! kernel accepts a larger size as long as the tail is zero.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::devices::Insn;
use super::CgroupError;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Programs attached to one cgroup that a query returns at most; a container's cgroup has one.
const MAX_QUERY: usize = 64;

#[repr(C, align(8))]
struct Attr([u8; 256]);

impl Attr {
    fn new() -> Self {
        Attr([0; 256])
    }

    fn set_u32(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }

    fn set_u64(&mut self, offset: usize, value: u64) {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
    }

    fn get_u32(&self, offset: usize) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_ne_bytes(bytes)
    }
}

fn ptr_u64<T>(ptr: *const T) -> u64 {
    ptr as usize as u64
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    fd.as_raw_fd().unsigned_abs()
}

/// Call bpf(2).
///
/// # Safety
///
/// Every pointer stored in `attr` must point to memory that is valid for the access the
/// command makes (read or write) and for the length given next to it, for the whole call.
unsafe fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is an exclusively borrowed 256-byte buffer, so the kernel may read and
    // write all of it; the pointers inside it are valid per this function's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Load the program; on failure, load it again with the verifier log and return that too.
fn load(insns: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    const NAME: &[u8] = b"berth_devices";
    let insn_cnt = u32::try_from(insns.len())
        .map_err(|_| (io::Error::from_raw_os_error(libc::E2BIG), String::new()))?;
    let attempt = |log: Option<&mut [u8]>| {
        let mut attr = Attr::new();
        attr.set_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE);
        attr.set_u32(4, insn_cnt);
        attr.set_u64(8, ptr_u64(insns.as_ptr()));
        attr.set_u64(16, ptr_u64(LICENSE.as_ptr()));
        if let Some(log) = log {
            attr.set_u32(24, 1); // log_level
            attr.set_u32(28, u32::try_from(log.len()).unwrap_or(u32::MAX)); // log_size
            attr.set_u64(32, ptr_u64(log.as_mut_ptr())); // log_buf
        }
        attr.0[48..48 + NAME.len()].copy_from_slice(NAME); // prog_name, NUL-padded
                                                           // SAFETY: `insns` (insn_cnt * 8 bytes, `Insn` is `struct bpf_insn`), the NUL-terminated
                                                           // license and the log buffer (log_size bytes, writable) all outlive the call.
        unsafe { bpf(BPF_PROG_LOAD, &mut attr) }.and_then(owned_fd)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            let _ = attempt(Some(&mut log));
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err((first, tail.join("; ")))
        }
    }
}

/// Ids of the device programs attached to the cgroup.
fn query(cgroup: &File) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_QUERY];
    let mut attr = Attr::new();
    attr.set_u32(0, fd_u32(cgroup)); // target_fd
    attr.set_u32(4, BPF_CGROUP_DEVICE); // attach_type
    attr.set_u64(16, ptr_u64(ids.as_mut_ptr())); // prog_ids
    attr.set_u32(24, u32::try_from(MAX_QUERY).unwrap_or(0)); // prog_cnt
                                                             // SAFETY: `ids` has room for the MAX_QUERY ids announced in prog_cnt and outlives the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    let count = usize::try_from(attr.get_u32(24))
        .unwrap_or(0)
        .min(MAX_QUERY);
    Ok(ids[..count].to_vec())
}

fn attach_or_detach(cmd: libc::c_int, cgroup: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.set_u32(0, fd_u32(cgroup)); // target_fd
    attr.set_u32(4, fd_u32(prog)); // attach_bpf_fd
    attr.set_u32(8, BPF_CGROUP_DEVICE); // attach_type
    if cmd == BPF_PROG_ATTACH {
        attr.set_u32(12, BPF_F_ALLOW_MULTI); // attach_flags
    }
    // SAFETY: the attributes hold file descriptors and flags only, no pointers.
    unsafe { bpf(cmd, &mut attr) }.map(drop)
}

fn prog_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new();
    attr.set_u32(0, id); // prog_id
                         // SAFETY: the attributes hold a program id only, no pointers.
    unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.and_then(owned_fd)
}

/// Replace the device filter of the cgroup at `dir` with `insns`.
pub(crate) fn install_device_filter(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let err = |op: &'static str, source: io::Error, log: String| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
        log,
    };
    let prog = load(insns).map_err(|(source, log)| err("load device filter for", source, log))?;
    let cgroup = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| err("open", source, String::new()))?;
    let old = query(&cgroup).map_err(|e| err("query device filters of", e, String::new()))?;
    attach_or_detach(BPF_PROG_ATTACH, &cgroup, &prog)
        .map_err(|e| err("attach device filter to", e, String::new()))?;
    for id in old {
        let old_prog = match prog_by_id(id) {
            Ok(fd) => fd,
            // Detached and freed meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err("open old device filter of", e, String::new())),
        };
        match attach_or_detach(BPF_PROG_DETACH, &cgroup, &old_prog) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err("detach old device filter from", e, String::new())),
        }
    }
    Ok(())
}
