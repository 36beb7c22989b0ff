//! berth's OCI runtime: the runtime-spec `config.json` in, an isolated process out.
//!
//! The design follows the kernel's order of operations. The caller (the `berth-runtime` CLI or
//! the shim, in-process) validates the config, creates the container's cgroups and forks a
//! short-lived *stage-1* child. Stage 1 joins any namespaces given by path, joins the cgroup,
//! then `clone(2)`s the container's init with `CLONE_PARENT` and the new namespace flags, so the
//! init is pid 1 of a fresh pid namespace and still the caller's child. The caller and the init
//! talk over a `SOCK_SEQPACKET` socketpair (see [`channel`]): the caller writes uid/gid maps,
//! runs the runtime hooks and records state; the init builds the root filesystem, pivots into it,
//! drops privileges and blocks on the `exec.fifo` until `start` opens it, exactly as runc does,
//! so the CLI of runc (and everything that drives it) works unchanged.
//!
//! There is no re-exec of the runtime binary on the hot path: the init is a fork of the caller.
//! To keep the container away from the runtime binary (the CVE-2019-5736 class) the container's
//! program is exec'd through a tiny trampoline held in a sealed memfd ([`dmz`]), so
//! `/proc/self/exe` inside the container never names a writable host file; builds without the
//! trampoline re-execute the whole runtime from a sealed copy instead
//! ([`sys::ensure_sealed_exe`]).
//!
//! Code that only computes (mount plans, cgroup paths, seccomp rules, capability sets) is kept
//! apart from code that calls the kernel so it can be unit-tested without root.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod config;
pub mod console;
pub mod container;
pub mod dmz;
pub mod error;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;

pub use error::RuntimeError;
