//! The last steps before the container's program runs, shared by the init and by exec:
//! rlimits, user and groups, capabilities, no_new_privs, seccomp, cwd, descriptors, execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::{Result, RuntimeError};
use crate::seccomp::SeccompFilter;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The error runc prints for a missing program; engines match on its words to pick exit 127.
pub fn not_found(arg0: &str) -> RuntimeError {
    RuntimeError::Init(format!(
        "exec: \"{arg0}\": executable file not found in $PATH"
    ))
}

fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds the program in the (container's) filesystem as execvp would, so a missing program is
/// reported before the container counts as created.
pub fn lookup(process: &Process) -> Result<PathBuf> {
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| RuntimeError::InvalidArgument("process.args is empty".into()))?;
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            process.cwd().join(arg0)
        };
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(RuntimeError::Init(format!(
                "exec: \"{arg0}\": is a directory"
            ))),
            Ok(_) if !is_executable(&p) => Err(RuntimeError::Init(format!(
                "exec: \"{arg0}\": permission denied"
            ))),
            Ok(_) => Ok(p),
            Err(_) => Err(RuntimeError::Init(format!(
                "exec: \"{arg0}\": stat {arg0}: no such file or directory"
            ))),
        };
    }
    let env = process.env().as_deref().unwrap_or_default();
    let path = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if is_executable(&cand) {
            return Ok(if cand.is_absolute() {
                cand
            } else {
                process.cwd().join(cand)
            });
        }
    }
    Err(not_found(arg0))
}

/// The user's home from the container's /etc/passwd, for a process env without HOME.
fn home_of(uid: u32) -> String {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return "/".into();
    };
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) {
            return f[5].to_string();
        }
    }
    "/".into()
}

/// What [`finalize_and_exec`] needs besides the process.
#[derive(Debug)]
pub struct ExecContext<'a> {
    pub program: &'a Path,
    pub seccomp: Option<&'a SeccompFilter>,
    /// Descriptors 3..3+N are passed on (`--preserve-fds`).
    pub preserve_fds: i32,
    /// Whether setgroups(2) is allowed (not in a user namespace whose setgroups is denied).
    pub can_setgroups: bool,
    /// The sealed exec trampoline ([`crate::dmz`]), when this build has one.
    pub dmz: Option<RawFd>,
    /// An inheritable `O_PATH` descriptor of exec.fifo for the trampoline to wait on.
    pub fifo: Option<RawFd>,
    /// Descriptors that must stay open until exec (all close-on-exec but the fifo).
    pub keep: Vec<RawFd>,
}

/// The argv and environment, ready for execve, once [`prepare`] has done the rest.
#[derive(Debug)]
pub struct Prepared {
    args: Vec<CString>,
    env: Vec<CString>,
    prog: CString,
}

/// Everything up to exec, so that a failure can still be reported to the runtime.
pub fn prepare(process: &Process, ctx: &ExecContext<'_>) -> Result<Prepared> {
    let user = process.user();
    let args: Vec<CString> = process
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| RuntimeError::InvalidArgument(format!("argument {a:?} contains NUL")))
        })
        .collect::<Result<_>>()?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if env_value(&env, "HOME").is_none() {
        env.push(format!("HOME={}", home_of(user.uid())));
    }
    let env: Vec<CString> = env
        .into_iter()
        .filter_map(|e| CString::new(e).ok())
        .collect();
    let prog = CString::new(ctx.program.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::InvalidArgument("program path contains NUL".into()))?;

    crate::rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    crate::sys::reset_signals().map_err(|e| RuntimeError::sys("reset signal handlers", e))?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which is about to go.
    if !nnp {
        if let Some(f) = ctx.seccomp {
            f.load()?;
        }
    }
    let caps = crate::capabilities::plan(process.capabilities().as_ref());
    crate::capabilities::drop_bounding(&caps)?;

    // No descriptor of the runtime may reach the container, nor be usable as a cwd escape
    // (CVE-2024-21626): close them before chdir, keeping only stdio and the preserved ones.
    let mut keep = ctx.keep.clone();
    keep.extend(ctx.dmz);
    keep.extend(ctx.fifo);
    crate::sys::close_all_except(3 + ctx.preserve_fds.max(0), &keep)
        .map_err(|e| RuntimeError::Init(format!("close descriptors: {e}")))?;
    // Enter the cwd while still root, as runc does, so a directory only root may search works
    // for any user; retry as the user below if root could not.
    let cwd = process.cwd();
    let as_root = nix::unistd::chdir(cwd);

    crate::sys::set_keep_caps(true).map_err(|e| RuntimeError::sys("keep capabilities", e))?;
    if ctx.can_setgroups {
        let gids = user.additional_gids().clone().unwrap_or_default();
        crate::sys::setgroups(&gids)
            .map_err(|e| RuntimeError::sys(format!("setgroups {gids:?}"), e))?;
    }
    crate::sys::setresgid(user.gid())
        .map_err(|e| RuntimeError::sys(format!("setgid {}", user.gid()), e))?;
    crate::sys::setresuid(user.uid())
        .map_err(|e| RuntimeError::sys(format!("setuid {}", user.uid()), e))?;
    crate::sys::set_keep_caps(false)
        .map_err(|e| RuntimeError::sys("reset keep capabilities", e))?;
    crate::capabilities::apply(&caps)?;
    crate::sys::umask(user.umask().unwrap_or(0o022));

    if as_root.is_err() {
        nix::unistd::chdir(cwd).map_err(|e| {
            RuntimeError::sys(
                format!(
                    "chdir to cwd {:?} set in config.json",
                    cwd.display().to_string()
                ),
                e,
            )
        })?;
    }
    match nix::unistd::getcwd() {
        Ok(c) if c.is_absolute() => {}
        _ => {
            return Err(RuntimeError::Init(format!(
                "cwd {} is outside the container's root",
                cwd.display()
            )))
        }
    }

    if nnp {
        crate::sys::set_no_new_privs().map_err(|e| RuntimeError::sys("set no_new_privs", e))?;
        if let Some(f) = ctx.seccomp {
            f.load()?;
        }
    }
    Ok(Prepared { args, env, prog })
}

/// The exec itself (through the trampoline when there is one); returns only on failure.
pub fn exec_prepared(ctx: &ExecContext<'_>, p: &Prepared) -> RuntimeError {
    let e = match ctx.dmz {
        // SAFETY: the descriptor is the trampoline memfd, open for the whole call.
        Some(fd) => crate::dmz::exec(
            unsafe { BorrowedFd::borrow_raw(fd) },
            ctx.fifo,
            ctx.program,
            &p.args,
            &p.env,
        ),
        None => match nix::unistd::execve(&p.prog, &p.args, &p.env) {
            Err(e) => e,
            Ok(never) => match never {},
        },
    };
    RuntimeError::sys(format!("exec {}", ctx.program.display()), e)
}

pub fn finalize_and_exec(process: &Process, ctx: &ExecContext<'_>) -> Result<Infallible> {
    let p = prepare(process, ctx)?;
    Err(exec_prepared(ctx, &p))
}
