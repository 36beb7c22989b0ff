//! From the command line to a serving shim: the foreground process forks, the child detaches,
//! creates the container in-process (so its init is the shim's child), binds the socket and
//! reports readiness through a pipe; the foreground relays that as one [`Ready`] line and exits.

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use berth_runtime::container::{CreateOptions, Runtime};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::logfile::JsonLog;
use crate::protocol::Ready;
use crate::server::{Io, Shim};
use crate::sys::{self, Forked};
use crate::{Config, ShimError};

/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

impl Config {
    /// Makes every path absolute (the background shim works from `/`) and checks what can be
    /// checked before anything is created.
    pub fn validate(mut self) -> Result<Config, ShimError> {
        if self.id.is_empty() {
            return Err(ShimError::InvalidArgument("--id must not be empty".into()));
        }
        let abs = |p: &Path| std::path::absolute(p).map_err(ShimError::io("resolve", p));
        self.bundle = abs(&self.bundle)?;
        self.runtime_root = abs(&self.runtime_root)?;
        self.socket = abs(&self.socket)?;
        if let Some(log) = &mut self.log {
            log.path = abs(&log.path)?;
            log.max_file = log.max_file.max(1);
        }
        // The console socket is the longest name the shim binds next to --socket.
        let longest = console_path(&self.socket, "console");
        if longest.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ShimError::InvalidArgument(format!(
                "--socket {} is too long for a unix socket (at most {} bytes with the \
                 \".console\" suffix)",
                self.socket.display(),
                MAX_SOCKET_PATH
            )));
        }
        if self.stdin_once && !self.stdin {
            return Err(ShimError::InvalidArgument(
                "--stdin-once needs --stdin".into(),
            ));
        }
        Ok(self)
    }
}

/// `<socket>.<suffix>`: where the shim listens for a pty master from the runtime.
pub fn console_path(socket: &Path, suffix: &str) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Forks the background shim and returns what it reported (the foreground's whole job). In
/// the background child this never returns: it serves until a Delete request, then exits.
pub fn launch(cfg: Config) -> Ready {
    let failed = |e: String| Ready {
        ok: false,
        error: Some(e),
        pid: 0,
        shim_pid: 0,
    };
    let (r, w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return failed(format!("create readiness pipe: {e}")),
    };
    match sys::fork() {
        Err(e) => failed(format!("fork the shim: {e}")),
        Ok(Forked::Parent(child)) => {
            drop(w);
            // One line, not end-of-file: a container init that has not exec'd yet (a build
            // without the runtime's trampoline waits for `start` in runtime code) still holds
            // a copy of the write end.
            let mut line = String::new();
            let _ = std::io::BufReader::new(std::fs::File::from(r)).read_line(&mut line);
            match serde_json::from_str::<Ready>(line.trim()) {
                Ok(ready) => {
                    if !ready.ok {
                        // It exits right after saying so; do not leave a zombie behind.
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                    }
                    ready
                }
                Err(_) => {
                    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                    failed(format!("the shim exited during setup ({status:?})"))
                }
            }
        }
        Ok(Forked::Child) => {
            drop(r);
            background(cfg, w)
        }
    }
}

fn background(cfg: Config, ready: OwnedFd) -> ! {
    let mut ready = std::fs::File::from(ready);
    let shim_pid = i32::try_from(std::process::id()).unwrap_or(0);
    match setup(cfg) {
        Ok(shim) => {
            let line = Ready {
                ok: true,
                error: None,
                pid: shim.init_pid(),
                shim_pid,
            };
            let _ = writeln!(
                ready,
                "{}",
                serde_json::to_string(&line).unwrap_or_default()
            );
            drop(ready);
            shim.run()
        }
        Err(e) => {
            let line = Ready {
                ok: false,
                error: Some(e.to_string()),
                pid: 0,
                shim_pid,
            };
            let _ = writeln!(
                ready,
                "{}",
                serde_json::to_string(&line).unwrap_or_default()
            );
            std::process::exit(1)
        }
    }
}

/// Everything before the loop; the container is created before any thread or client exists.
fn setup(cfg: Config) -> Result<Shim, ShimError> {
    sys::detach().map_err(ShimError::sys("detach from the caller"))?;
    let sigfd = sys::sigchld_fd().map_err(ShimError::sys("signalfd for SIGCHLD"))?;
    let rt = Runtime::new(&cfg.runtime_root);

    // The container's side of its stdio; ours stays in `io`.
    let mut io = Io::default();
    let mut theirs: Vec<OwnedFd> = Vec::new();
    let mut console = None;
    let stdio = if cfg.tty {
        let path = console_path(&cfg.socket, "console");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).map_err(ShimError::io("bind console socket", &path))?;
        console = Some((l, path));
        None
    } else {
        let stdin = if cfg.stdin {
            let (r, w) = sys::pipe().map_err(ShimError::sys("create stdin pipe"))?;
            io.set_stdin(w)
                .map_err(ShimError::sys("set up stdin pipe"))?;
            r
        } else {
            sys::open_null(OFlag::O_RDONLY).map_err(ShimError::sys("open /dev/null"))?
        };
        let (out_r, out_w) = sys::pipe().map_err(ShimError::sys("create stdout pipe"))?;
        let (err_r, err_w) = sys::pipe().map_err(ShimError::sys("create stderr pipe"))?;
        io.add_output(out_r, crate::protocol::STREAM_STDOUT)
            .map_err(ShimError::sys("set up stdout pipe"))?;
        io.add_output(err_r, crate::protocol::STREAM_STDERR)
            .map_err(ShimError::sys("set up stderr pipe"))?;
        theirs.extend([stdin, out_w, err_w]);
        Some([
            theirs[0].as_raw_fd(),
            theirs[1].as_raw_fd(),
            theirs[2].as_raw_fd(),
        ])
    };
    let created = rt.create(&CreateOptions {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        console_socket: console.as_ref().map(|(_, p)| p.clone()),
        stdio,
        ..CreateOptions::default()
    });
    // Our copies of the container's ends must go, or its output never reaches end-of-file.
    drop(theirs);
    let ct = match created {
        Ok(ct) => ct,
        Err(error) => {
            if let Some((_, path)) = &console {
                let _ = std::fs::remove_file(path);
            }
            return Err(ShimError::Create {
                id: cfg.id.clone(),
                error,
            });
        }
    };
    let undo = |e: ShimError| {
        let _ = rt.delete(&cfg.id, true);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ct.pid), None);
        e
    };
    if let Some((listener, path)) = console {
        let master = receive_pty(&listener).map_err(|error| {
            let _ = std::fs::remove_file(&path);
            undo(ShimError::Console {
                id: cfg.id.clone(),
                path: path.clone(),
                error,
            })
        })?;
        let _ = std::fs::remove_file(&path);
        io.set_pty(master, cfg.stdin)
            .map_err(|e| undo(ShimError::sys("set up the pty master")(e)))?;
    }
    let log = match &cfg.log {
        Some(l) => Some(JsonLog::open(l.clone()).map_err(|e| undo(e.into()))?),
        None => None,
    };
    let listener = bind_socket(&cfg.socket).map_err(undo)?;
    Ok(Shim::new(cfg, rt, ct, sigfd, listener, io, log))
}

/// Accepts the runtime's connection (made, and the master sent, before `create` returned: it
/// waits in the backlog) and takes the pty master from it.
pub(crate) fn receive_pty(listener: &UnixListener) -> std::io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let (conn, _) = listener.accept()?;
    let master = sys::recv_pty(&conn).map_err(std::io::Error::from)?;
    sys::set_nonblocking(master.as_fd()).map_err(std::io::Error::from)?;
    Ok(master)
}

/// Binds `path` with mode 0600 (through the umask, so it is never reachable with a wider
/// mode), replacing a stale socket but never one a live shim answers on.
fn bind_socket(path: &Path) -> Result<UnixListener, ShimError> {
    if std::fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).is_ok() {
            return Err(ShimError::SocketInUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(ShimError::io("remove stale socket", path))?;
    }
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = l.map_err(ShimError::io("bind", path))?;
    l.set_nonblocking(true)
        .map_err(ShimError::io("set non-blocking", path))?;
    Ok(l)
}
