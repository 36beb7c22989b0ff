//! Driving an OCI runtime binary from tests, with deadlines and cleanup.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long one runtime invocation may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors while running a runtime binary.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime binary was not found.
    #[error("runtime binary {name:?} not found (looked in PATH): install it or set BERTH_TEST_RUNTIME to its path")]
    NotFound {
        /// The name or path that was looked up.
        name: String,
    },
    /// A file or directory for the invocation could not be made or read.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not be started.
    #[error("spawn `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed\nstdout: {stdout}\nstderr: {stderr}")]
    Timeout {
        /// The command line.
        command: String,
        /// The deadline that passed.
        timeout: Duration,
        /// Output so far.
        stdout: String,
        /// Error output so far.
        stderr: String,
    },
    /// The runtime exited unsuccessfully where success was required.
    #[error("{output}")]
    Failed {
        /// What the runtime printed and how it exited.
        output: Box<CmdOutput>,
    },
    /// The runtime printed something that is not the expected JSON.
    #[error("parse output of `{command}` as json: {source}\noutput: {stdout}")]
    BadJson {
        /// The command line.
        command: String,
        /// What it printed.
        stdout: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The runtime exited before printing what was awaited.
    #[error("`{command}` exited before printing {needle:?}\nstdout: {stdout}\nstderr: {stderr}")]
    ExitedEarly {
        /// The command line.
        command: String,
        /// What was awaited on stdout.
        needle: String,
        /// Its output.
        stdout: String,
        /// Its error output.
        stderr: String,
    },
    /// A condition was not reached in time.
    #[error("waited {timeout:?} for {what}; last seen: {last}")]
    WaitTimeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
        /// The last observation.
        last: String,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io { op, path, source }
}

/// What one finished runtime invocation did.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Standard output (lossily decoded).
    pub stdout: String,
    /// Standard error (lossily decoded).
    pub stderr: String,
}

impl CmdOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, with death by signal N reported as 128+N like a shell does.
    pub fn exit_code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => -1,
        }
    }

    /// Returns self if it succeeded, else an error carrying the whole output.
    pub fn check(self) -> Result<CmdOutput, RuntimeError> {
        if self.success() {
            Ok(self)
        } else {
            Err(RuntimeError::Failed {
                output: Box::new(self),
            })
        }
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {} (code {})\nstdout: {}\nstderr: {}",
            self.command,
            self.status,
            self.exit_code(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// What an invocation gets beyond its arguments, for the few tests that need more than the
/// defaults (standard input from /dev/null, nothing open above stdio).
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// Bytes fed to the runtime's standard input (e.g. `update --resources -`).
    pub stdin: Option<Vec<u8>>,
    /// Descriptors the runtime starts with, beyond stdio: each number is opened read-only on
    /// the file, without close-on-exec (to check that the runtime does not pass them on).
    pub inherited_fds: Vec<(u32, PathBuf)>,
}

/// An OCI runtime binary with its own state root.
///
/// Cloning shares the temporary root (if any); it is removed when the last clone is dropped,
/// so a [`ContainerGuard`] keeps it alive until its `delete` has run.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The runtime executable.
    pub bin: PathBuf,
    /// The directory passed as `--root`.
    pub root: PathBuf,
    /// Deadline for each invocation.
    pub timeout: Duration,
    _root_dir: Option<Arc<TempDir>>,
}

impl Runtime {
    /// A runtime with the given binary and root directory.
    pub fn new(bin: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            bin: bin.into(),
            root: root.into(),
            timeout: DEFAULT_TIMEOUT,
            _root_dir: None,
        }
    }

    /// A runtime whose root is a new temporary directory, removed when the last clone drops.
    pub fn with_temp_root(bin: impl Into<PathBuf>) -> Result<Runtime, RuntimeError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-root-")
            .tempdir()
            .map_err(io_err("create temp dir in", &std::env::temp_dir()))?;
        Ok(Runtime {
            bin: bin.into(),
            root: dir.path().to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
            _root_dir: Some(Arc::new(dir)),
        })
    }

    /// The runtime named by environment variable `var` (a name looked up in `PATH`, or a
    /// path), or `default_bin` when it is unset or empty, with a temporary root.
    pub fn from_env(var: &str, default_bin: &str) -> Result<Runtime, RuntimeError> {
        let name = std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default_bin.to_owned());
        Runtime::with_temp_root(resolve_bin(&name)?)
    }

    /// The executable's file name (`runc`, `berth-runtime`, ...).
    pub fn name(&self) -> String {
        self.bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether this is berth's runtime (for assertions only berth promises).
    pub fn is_berth(&self) -> bool {
        self.name().starts_with("berth")
    }

    fn command_line(&self, args: &[OsString]) -> String {
        let mut line = format!("{} --root {}", self.bin.display(), self.root.display());
        for a in args {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        line
    }

    fn start<I, S>(
        &self,
        args: I,
        extras: &Extras,
    ) -> Result<(Child, String, TempDir), RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let command = self.command_line(&args);
        // Output goes to files: a container started by `create` inherits the runtime's stdio and
        // would hold a pipe open long after the runtime exits.
        let out_dir = tempfile::Builder::new()
            .prefix("berth-out-")
            .tempdir()
            .map_err(io_err("create temp dir in", &std::env::temp_dir()))?;
        let stdout_path = out_dir.path().join("stdout");
        let stderr_path = out_dir.path().join("stderr");
        let stdout = File::create(&stdout_path).map_err(io_err("create", &stdout_path))?;
        let stderr = File::create(&stderr_path).map_err(io_err("create", &stderr_path))?;
        let stdin = match &extras.stdin {
            Some(bytes) => {
                let path = out_dir.path().join("stdin");
                fs::write(&path, bytes).map_err(io_err("write", &path))?;
                Stdio::from(File::open(&path).map_err(io_err("open", &path))?)
            }
            None => Stdio::null(),
        };
        let mut cmd = if extras.inherited_fds.is_empty() {
            Command::new(&self.bin)
        } else {
            // A shell opens the files on the wanted numbers (without close-on-exec) and then
            // becomes the runtime, so the runtime starts with them open, as when a careless
            // caller leaks descriptors.
            let mut script = String::from("exec");
            for (i, (fd, _)) in extras.inherited_fds.iter().enumerate() {
                script.push_str(&format!(" {fd}<\"${}\"", i + 1));
            }
            script.push_str(&format!(
                "; shift {}; exec \"$@\"",
                extras.inherited_fds.len()
            ));
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c").arg(script).arg("sh");
            sh.args(extras.inherited_fds.iter().map(|(_, path)| path));
            sh.arg(&self.bin);
            sh
        };
        cmd.arg("--root")
            .arg(&self.root)
            .args(&args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            // Own process group, so a timeout can kill the runtime and its helpers together.
            .process_group(0);
        let mut attempts = 0;
        loop {
            match cmd.spawn() {
                Ok(child) => return Ok((child, command, out_dir)),
                // A freshly written executable can still be open for writing in a child that
                // another test thread forked and has not exec'd yet.
                Err(e) if e.raw_os_error() == Some(libc_etxtbsy()) && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => return Err(RuntimeError::Spawn { command, source }),
            }
        }
    }

    /// Runs `<bin> --root <root> <args>` and waits for it (at most [`Runtime::timeout`]).
    pub fn invoke<I, S>(&self, args: I) -> Result<CmdOutput, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.invoke_with_timeout(args, self.timeout)
    }

    /// Like [`Runtime::invoke`] with an explicit deadline.
    pub fn invoke_with_timeout<I, S>(
        &self,
        args: I,
        timeout: Duration,
    ) -> Result<CmdOutput, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut running = self.spawn(args)?;
        running.wait_timeout(timeout)
    }

    /// Starts `<bin> --root <root> <args>` without waiting (e.g. a foreground `run`).
    pub fn spawn<I, S>(&self, args: I) -> Result<Running, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_with(args, &Extras::default())
    }

    /// Like [`Runtime::spawn`], with standard input or inherited descriptors from `extras`.
    pub fn spawn_with<I, S>(&self, args: I, extras: &Extras) -> Result<Running, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (child, command, out_dir) = self.start(args, extras)?;
        Ok(Running {
            child: Some(child),
            command,
            out_dir,
            timeout: self.timeout,
        })
    }

    /// Like [`Runtime::invoke`], with standard input or inherited descriptors from `extras`.
    pub fn invoke_with<I, S>(&self, args: I, extras: &Extras) -> Result<CmdOutput, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_with(args, extras)?.wait()
    }

    /// `create --bundle <bundle> <id>`.
    pub fn create(&self, id: &str, bundle: &Path) -> Result<CmdOutput, RuntimeError> {
        self.invoke([
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new(id),
        ])
    }

    /// `start <id>`.
    pub fn start_container(&self, id: &str) -> Result<CmdOutput, RuntimeError> {
        self.invoke(["start", id])
    }

    /// `run --bundle <bundle> <id>` in the foreground, waiting for the container to exit.
    pub fn run(&self, id: &str, bundle: &Path) -> Result<CmdOutput, RuntimeError> {
        self.invoke([
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new(id),
        ])
    }

    /// `exec <id> <args...>`.
    pub fn exec(&self, id: &str, args: &[&str]) -> Result<CmdOutput, RuntimeError> {
        let mut all = vec!["exec", id];
        all.extend_from_slice(args);
        self.invoke(all)
    }

    /// `kill <id> <signal>`.
    pub fn kill(&self, id: &str, signal: &str) -> Result<CmdOutput, RuntimeError> {
        self.invoke(["kill", id, signal])
    }

    /// `delete <id>`.
    pub fn delete(&self, id: &str) -> Result<CmdOutput, RuntimeError> {
        self.invoke(["delete", id])
    }

    /// `state <id>`, which must succeed and print JSON.
    pub fn state(&self, id: &str) -> Result<Value, RuntimeError> {
        let out = self.invoke(["state", id])?.check()?;
        serde_json::from_str(&out.stdout).map_err(|source| RuntimeError::BadJson {
            command: out.command.clone(),
            stdout: out.stdout.clone(),
            source,
        })
    }

    /// The container's init pid from `state`.
    pub fn pid(&self, id: &str) -> Result<i32, RuntimeError> {
        let state = self.state(id)?;
        state["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| RuntimeError::WaitTimeout {
                what: format!("a pid in the state of {id}"),
                timeout: Duration::ZERO,
                last: state.to_string(),
            })
    }

    /// Polls `state` until its status is `status` (at most `timeout`).
    pub fn wait_for_status(
        &self,
        id: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Value, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match self.state(id) {
                Ok(state) if state["status"] == status => return Ok(state),
                Ok(state) => last = state.to_string(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::WaitTimeout {
                    what: format!("container {id} to be {status}"),
                    timeout,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A guard that force-deletes container `id` when dropped.
    pub fn guard(&self, id: &str) -> ContainerGuard {
        ContainerGuard {
            runtime: self.clone(),
            id: id.to_owned(),
        }
    }

    /// Names of all entries under the root whose name contains `id` (state left behind).
    pub fn leftovers(&self, id: &str) -> Result<Vec<PathBuf>, RuntimeError> {
        let mut found = Vec::new();
        walk(&self.root, &mut |p| {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(id))
            {
                found.push(p.to_path_buf());
            }
        })?;
        Ok(found)
    }
}

fn libc_etxtbsy() -> i32 {
    nix::errno::Errno::ETXTBSY as i32
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<(), RuntimeError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read dir", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read dir", dir))?;
        let path = entry.path();
        f(&path);
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            walk(&path, f)?;
        }
    }
    Ok(())
}

/// Resolves a runtime name to an executable: a path is used as is, a bare name is looked up
/// in `PATH`.
pub fn resolve_bin(name: &str) -> Result<PathBuf, RuntimeError> {
    let not_found = || RuntimeError::NotFound {
        name: name.to_owned(),
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.is_file() { Ok(p) } else { Err(not_found()) };
    }
    let path = std::env::var_os("PATH").ok_or_else(not_found)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(not_found)
}

/// A runtime invocation still in progress. Dropping it kills the runtime's process group.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    command: String,
    out_dir: TempDir,
    timeout: Duration,
}

impl Running {
    /// The runtime process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Standard output written so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.out_dir.path().join("stdout"))
    }

    /// Standard error written so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.out_dir.path().join("stderr"))
    }

    /// Waits until standard output contains `needle` (at most `timeout`). Fails early if the
    /// runtime exits before printing it, unless it was already reaped with [`Running::wait`]
    /// (after `create`, the container keeps writing to the same file).
    pub fn wait_for_stdout(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return Ok(out);
            }
            let exited = match self.child.as_mut() {
                Some(child) => matches!(child.try_wait(), Ok(Some(_))),
                None => false,
            };
            if exited && !self.stdout().contains(needle) {
                return Err(RuntimeError::ExitedEarly {
                    command: self.command.clone(),
                    needle: needle.to_owned(),
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::WaitTimeout {
                    what: format!("{needle:?} on stdout of `{}`", self.command),
                    timeout,
                    last: format!("stdout: {}\nstderr: {}", self.stdout(), self.stderr()),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the runtime to exit (at most the runtime's timeout). The output files stay
    /// readable afterwards through [`Running::stdout`] and [`Running::stderr`].
    pub fn wait(&mut self) -> Result<CmdOutput, RuntimeError> {
        let timeout = self.timeout;
        self.wait_timeout(timeout)
    }

    /// Waits for the runtime to exit, killing its process group after `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<CmdOutput, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let Some(mut child) = self.child.take() else {
            return Err(RuntimeError::WaitTimeout {
                what: format!("`{}` to exit", self.command),
                timeout,
                last: "it was already waited for".to_owned(),
            });
        };
        let mut pause = Duration::from_millis(1);
        loop {
            let polled = child
                .try_wait()
                .map_err(io_err("wait for", Path::new(&self.command)));
            match polled {
                Ok(Some(status)) => {
                    return Ok(CmdOutput {
                        command: self.command.clone(),
                        status,
                        stdout: self.stdout(),
                        stderr: self.stderr(),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    kill_and_reap(&mut child);
                    return Err(e);
                }
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                return Err(RuntimeError::Timeout {
                    command: self.command.clone(),
                    timeout,
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                kill_and_reap(&mut child);
            }
        }
    }
}

fn kill_and_reap(child: &mut Child) {
    // The child is not reaped yet, so its pid (= its process group id) cannot be reused.
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Force-deletes a container when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct ContainerGuard {
    runtime: Runtime,
    id: String,
}

impl ContainerGuard {
    /// The guarded container's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        match self.runtime.invoke(["delete", "--force", self.id.as_str()]) {
            Ok(_) => {}
            Err(e) => eprintln!("cleanup: delete --force {}: {e}", self.id),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn resolve_missing_binary_fails_clearly() {
        let err = resolve_bin("no-such-runtime-xyz").unwrap_err();
        assert!(err.to_string().contains("BERTH_TEST_RUNTIME"));
        assert!(resolve_bin("/nonexistent/runtime").is_err());
        assert!(resolve_bin("sh").is_ok());
    }

    #[test]
    fn invoke_captures_output_and_code() {
        // `sh --root DIR -c ...` is not valid, so use a tiny script as the "runtime".
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-runtime");
        fs::write(
            &script,
            "#!/bin/sh\nshift 2\necho \"args:$*\"\necho err >&2\nexit 3\n",
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let rt = Runtime::with_temp_root(&script).unwrap();
        let out = rt.invoke(["state", "x"]).unwrap();
        assert_eq!(out.exit_code(), 3);
        assert_eq!(out.stdout.trim(), "args:state x");
        assert_eq!(out.stderr.trim(), "err");
        assert!(out.check().is_err());
    }

    #[test]
    fn extras_feed_stdin_and_inherit_fds() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-runtime");
        fs::write(
            &script,
            "#!/bin/sh\nread line; echo \"stdin:$line\"; echo \"fd5:$(cat <&5)\"; echo \"fd7:$(cat <&7)\"\n",
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let five = dir.path().join("five");
        let seven = dir.path().join("seven with space");
        fs::write(&five, "5").unwrap();
        fs::write(&seven, "7").unwrap();
        let rt = Runtime::with_temp_root(&script).unwrap();
        let extras = Extras {
            stdin: Some(b"hello\n".to_vec()),
            inherited_fds: vec![(5, five), (7, seven)],
        };
        let out = rt.invoke_with(["x"], &extras).unwrap().check().unwrap();
        assert_eq!(out.stdout, "stdin:hello\nfd5:5\nfd7:7\n");
        // Without extras, stdin is empty and nothing is open above stdio.
        let out = rt.invoke(["x"]).unwrap();
        assert!(out.stdout.starts_with("stdin:\nfd5:\n"), "{out}");
    }

    #[test]
    fn invoke_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow-runtime");
        fs::write(&script, "#!/bin/sh\nsleep 30\n").unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let rt = Runtime::with_temp_root(&script).unwrap();
        let start = Instant::now();
        let err = rt
            .invoke_with_timeout(["x"], Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
