//! The container lifecycle as a library: create, start, state, kill, delete, exec, pause,
//! resume, update, ps, list. The CLI and the shim both call these.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};

use crate::cgroups::Cgroup;
use crate::channel::{self, Channel, ToChild, ToParent};
use crate::config;
use crate::error::{Result, RuntimeError};
use crate::namespaces::{self, NamespacePlan};
use crate::process::{finalize_and_exec, ExecContext};
use crate::rootfs::{self, RootfsContext};
use crate::seccomp::{self, SeccompFilter};
use crate::state::{proc_stat, ContainerState, OciState, Status, EXEC_FIFO};
use crate::sys;

/// The runtime's state directory (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// Keep the caller's session keyring instead of joining a new one (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Descriptors (of the caller) to become the container's stdin, stdout and stderr; the
    /// caller's own stdio when `None`, as the CLI wants. An in-process shim passes its pipes.
    pub stdio: Option<[RawFd; 3]>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    /// As [`CreateOptions::stdio`].
    pub stdio: Option<[RawFd; 3]>,
}

/// Undoes a half-made container when create fails at any step.
struct CreateGuard<'a> {
    dir: &'a Path,
    cgroup: Option<crate::cgroups::CgroupPaths>,
    init: Option<i32>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = Cgroup::from_paths(cg).destroy();
        }
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("tmp-berth");
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| RuntimeError::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("write pid file", path, e))
}

fn ns_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, data) in [
        ("uid_map", fmt(linux.uid_mappings())),
        ("gid_map", fmt(linux.gid_mappings())),
    ] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, data.as_bytes())
            .map_err(|e| RuntimeError::io("write id map", &path, e))?;
    }
    Ok(())
}

/// Everything the container's init needs, computed before the fork.
struct InitPlan<'a> {
    spec: &'a Spec,
    bundle: &'a Path,
    rootfs: &'a Path,
    state_dir: &'a Path,
    cgroup: &'a Cgroup,
    ns: NamespacePlan,
    new_userns: bool,
    seccomp: Option<&'a SeccompFilter>,
    console: Option<RawFd>,
    no_pivot: bool,
    preserve_fds: i32,
    root_uid: u32,
    root_gid: u32,
    runtime_hooks: bool,
    id: &'a str,
    dmz: Option<RawFd>,
    no_new_keyring: bool,
    stdio: Option<[RawFd; 3]>,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        ContainerState::load(&self.root, id)
    }

    pub fn state(&self, id: &str) -> Result<OciState> {
        Ok(self.load(id)?.oci_state(&self.root))
    }

    /// Creates the container: on return its init is blocked until [`Runtime::start`].
    pub fn create(&self, o: &CreateOptions) -> Result<ContainerState> {
        config::validate_id(&o.id)?;
        let bundle = std::fs::canonicalize(&o.bundle)
            .map_err(|e| RuntimeError::io("open bundle", &o.bundle, e))?;
        let spec = config::load(&bundle)?;
        config::validate(&spec, &bundle)?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidArgument("process is missing".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() {
            return Err(RuntimeError::InvalidArgument(
                "cannot allocate tty if runtime is not passed a console socket (--console-socket)"
                    .into(),
            ));
        }
        if !terminal && o.console_socket.is_some() {
            return Err(RuntimeError::InvalidArgument(
                "--console-socket given but process.terminal is false".into(),
            ));
        }
        let rootfs = std::fs::canonicalize(config::rootfs(&spec, &bundle))
            .map_err(|e| RuntimeError::io("open rootfs", config::rootfs(&spec, &bundle), e))?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidArgument("linux is missing".into()))?;
        let ns = namespaces::plan(linux.namespaces().as_deref().unwrap_or_default());
        let new_userns = ns.new.contains(CloneFlags::CLONE_NEWUSER);
        let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
        let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
        let root_uid = if new_userns {
            config::map_to_host(&uid_maps, 0).unwrap_or(0)
        } else {
            0
        };
        let root_gid = if new_userns {
            config::map_to_host(&gid_maps, 0).unwrap_or(0)
        } else {
            0
        };
        let seccomp = linux
            .seccomp()
            .as_ref()
            .map(|s| compile_seccomp_cached(&self.root, s))
            .transpose()?;

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| RuntimeError::io("create state root", &self.root, e))?;
        let dir = ContainerState::dir(&self.root, &o.id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists { id: o.id.clone() })
            }
            Err(e) => return Err(RuntimeError::io("create state dir", &dir, e)),
        }
        let mut guard = CreateGuard {
            dir: &dir,
            cgroup: None,
            init: None,
            armed: true,
        };

        let cgroup = Cgroup::resolve(linux.cgroups_path().as_deref(), &o.id)?;
        cgroup.create()?;
        guard.cgroup = Some(cgroup.paths().clone());
        if let Some(r) = linux.resources() {
            cgroup.apply(&with_default_devices(
                r,
                linux.devices().as_deref().unwrap_or_default(),
            ))?;
        }

        let fifo = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
            .map_err(|e| RuntimeError::sys(format!("mkfifo {}", fifo.display()), e))?;
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622))
            .map_err(|e| RuntimeError::io("chmod", &fifo, e))?;
        if root_uid != 0 || root_gid != 0 {
            nix::unistd::chown(&fifo, Some(root_uid.into()), Some(root_gid.into()))
                .map_err(|e| RuntimeError::sys(format!("chown {}", fifo.display()), e))?;
        }
        let console = o
            .console_socket
            .as_deref()
            .map(crate::console::connect)
            .transpose()?;

        let hooks = spec.hooks().as_ref();
        let runtime_hooks = hooks.is_some_and(|h| {
            h.prestart().as_ref().is_some_and(|v| !v.is_empty())
                || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
        });
        let dmz = crate::dmz::memfd_if_available()
            .map_err(|e| RuntimeError::io("create exec trampoline", "memfd", e))?;
        let plan = InitPlan {
            spec: &spec,
            bundle: &bundle,
            rootfs: &rootfs,
            state_dir: &dir,
            cgroup: &cgroup,
            ns,
            new_userns,
            seccomp: seccomp.as_ref(),
            console: console.as_ref().map(|c| c.as_raw_fd()),
            no_pivot: o.no_pivot,
            preserve_fds: o.preserve_fds,
            root_uid,
            root_gid,
            runtime_hooks,
            id: &o.id,
            dmz: dmz.as_ref().map(|d| d.as_raw_fd()),
            no_new_keyring: o.no_new_keyring,
            stdio: o.stdio,
        };

        // The cgroup namespace is made by the init itself (see `init`): clone would root it at
        // stage 1's cgroup, which on the unified hierarchy is still the runtime's, not the
        // container's that CLONE_INTO_CGROUP puts the init in.
        let flags = libc::CLONE_PARENT | (plan.ns.new - CloneFlags::CLONE_NEWCGROUP).bits();
        let (parent, init_pid) = via_stage1(&cgroup, &plan.ns.join, flags, |ch| init(ch, &plan))?;
        guard.init = Some(init_pid);
        if new_userns {
            write_id_maps(init_pid, &spec)?;
        }
        if let Some(adj) = process.oom_score_adj() {
            let path = PathBuf::from(format!("/proc/{init_pid}/oom_score_adj"));
            std::fs::write(&path, adj.to_string())
                .map_err(|e| RuntimeError::io("write oom_score_adj", &path, e))?;
        }
        parent
            .send(&ToChild::Go { pid: init_pid })
            .map_err(|e| RuntimeError::Init(e.to_string()))?;
        let created = crate::state::now_rfc3339();
        let mut st = ContainerState {
            id: o.id.clone(),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            pid: init_pid,
            pid_start_time: 0,
            created,
            owner: String::new(),
            cgroup: cgroup.paths().clone(),
            config: spec.clone(),
        };
        loop {
            match parent
                .recv::<ToParent>()
                .map_err(|e| RuntimeError::Init(e.to_string()))?
            {
                Some(ToParent::Mounted) => {
                    let mut s = st.oci_state(&self.root);
                    s.status = Status::Creating;
                    s.pid = init_pid;
                    if let Some(h) = hooks {
                        crate::hooks::run_all(h.prestart().as_ref(), &s)?;
                        crate::hooks::run_all(h.create_runtime().as_ref(), &s)?;
                    }
                    parent
                        .send(&ToChild::HooksDone)
                        .map_err(|e| RuntimeError::Init(e.to_string()))?;
                }
                Some(ToParent::Ready) => break,
                Some(ToParent::Error(e)) => return Err(RuntimeError::Init(e)),
                Some(other) => {
                    return Err(RuntimeError::Init(format!("unexpected message {other:?}")))
                }
                None => {
                    return Err(RuntimeError::Init(
                        "container init exited during setup".into(),
                    ))
                }
            }
        }
        st.pid_start_time = proc_stat(init_pid).map(|s| s.1).unwrap_or(0);
        st.save(&self.root)?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, init_pid)?;
        }
        guard.armed = false;
        Ok(st)
    }

    /// Releases a created container's init to exec the user's program.
    pub fn start(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !status.can_start() {
            return Err(wrong(id, "start", status));
        }
        // The pidfd first: once the fifo is open for reading the init runs the program, which may
        // exit, and be reaped by its parent, before we would get to it.
        let pidfd = sys::pidfd_open(st.pid).map_err(|_| {
            RuntimeError::Init(format!("container {id} init exited before it could start"))
        })?;
        if !st.init_alive() {
            return Err(RuntimeError::Init(format!(
                "container {id} init exited before it could start"
            )));
        }
        let fifo = ContainerState::dir(&self.root, id).join(EXEC_FIFO);
        let f: OwnedFd = nix::fcntl::open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RuntimeError::sys(format!("open {}", fifo.display()), e))?;
        let mut fds = [
            PollFd::new(f.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(RuntimeError::sys("poll exec.fifo", e)),
                Ok(_) => break,
            }
        }
        let mut file = std::fs::File::from(f);
        let mut b = [0u8; 1];
        let n = file.read(&mut b).unwrap_or(0);
        if n != 1 {
            return Err(RuntimeError::Init(format!(
                "container {id} init exited before it could start"
            )));
        }
        let _ = std::fs::remove_file(&fifo);
        if let Some(h) = st.config.hooks().as_ref() {
            let s = st.oci_state(&self.root);
            for hook in h.poststart().as_deref().unwrap_or_default() {
                if let Err(e) = crate::hooks::run(hook, &s) {
                    eprintln!("warning: poststart {e}");
                }
            }
        }
        Ok(())
    }

    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !(status.can_kill() || all && status == Status::Stopped) {
            return Err(wrong(id, "kill", status));
        }
        if all {
            let cg = st.cgroup();
            for pid in cg.pids()? {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
            if status == Status::Paused && sig == Signal::SIGKILL {
                let _ = cg.thaw();
            }
            return Ok(());
        }
        signal_init(&st, sig)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let st = match self.load(id) {
            Err(RuntimeError::NotFound { .. }) if force => {
                // A create killed half-way leaves a directory without state.json: with --force,
                // clear it so the id can be used again.
                let dir = ContainerState::dir(&self.root, id);
                if dir.is_dir() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| RuntimeError::io("remove state", &dir, e))?;
                }
                return Err(RuntimeError::NotFound { id: id.to_string() });
            }
            r => r?,
        };
        let status = st.status(&self.root);
        if !status.can_delete() && !force {
            return Err(wrong(id, "delete", status));
        }
        let cg = st.cgroup();
        if status != Status::Stopped {
            let _ = signal_init(&st, Signal::SIGKILL);
            if let Ok(pids) = cg.pids() {
                for pid in pids {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            if status == Status::Paused {
                let _ = cg.thaw();
            }
            wait_gone(&st, Duration::from_secs(10));
        }
        // Stragglers (exec'd processes outside the pid namespace's reach) die with the cgroup.
        if let Ok(pids) = cg.pids() {
            for pid in pids {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = cg.thaw();
        cg.destroy()?;
        if let Some(h) = st.config.hooks().as_ref() {
            let mut s = st.oci_state(&self.root);
            s.status = Status::Stopped;
            for hook in h.poststop().as_deref().unwrap_or_default() {
                if let Err(e) = crate::hooks::run(hook, &s) {
                    eprintln!("warning: poststop {e}");
                }
            }
        }
        let dir = ContainerState::dir(&self.root, id);
        std::fs::remove_dir_all(&dir).map_err(|e| RuntimeError::io("remove state", &dir, e))
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !status.can_pause() {
            return Err(wrong(id, "pause", status));
        }
        Ok(st.cgroup().freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !status.can_resume() {
            return Err(wrong(id, "resume", status));
        }
        Ok(st.cgroup().thaw()?)
    }

    /// Host pids of every process in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let st = self.load(id)?;
        Ok(st.cgroup().pids()?)
    }

    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RuntimeError::io("read", &self.root, e)),
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if let Ok(st) = self.load(&name) {
                out.push(st.oci_state(&self.root));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let mut st = self.load(id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            return Err(wrong(id, "update", status));
        }
        st.cgroup().apply(&with_default_devices(
            resources,
            st.config
                .linux()
                .as_ref()
                .and_then(|l| l.devices().as_deref())
                .unwrap_or_default(),
        ))?;
        let merged = merge_resources(
            st.config
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone()),
            resources,
        );
        if let Some(l) = st.config.linux_mut().as_mut() {
            l.set_resources(Some(merged));
        }
        st.save(&self.root)
    }

    pub fn stats(&self, id: &str) -> Result<crate::cgroups::Stats> {
        let st = self.load(id)?;
        Ok(st.cgroup().stats()?)
    }

    /// Runs a new process in the container; returns its pid (a child of the caller).
    pub fn exec(&self, id: &str, o: &ExecOptions) -> Result<i32> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !status.can_exec() {
            return Err(wrong(id, "exec in", status));
        }
        let p = &o.process;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(RuntimeError::InvalidArgument(
                "exec: process args must not be empty".into(),
            ));
        }
        if !p.cwd().is_absolute() {
            return Err(RuntimeError::InvalidArgument(format!(
                "exec: cwd {} must be absolute",
                p.cwd().display()
            )));
        }
        for r in p.rlimits().as_deref().unwrap_or_default() {
            let (_, hard) =
                sys::getrlimit(config::rlimit_resource(r.typ())).unwrap_or((u64::MAX, u64::MAX));
            if r.hard() > hard || r.soft() > r.hard() {
                return Err(RuntimeError::InvalidArgument(format!(
                    "rlimit {} {}:{} is above the hard limit {hard}",
                    config::rlimit_name(r.typ()),
                    r.soft(),
                    r.hard()
                )));
            }
        }
        let terminal = p.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() {
            return Err(RuntimeError::InvalidArgument(
                "exec: a tty needs --console-socket".into(),
            ));
        }
        let linux = st.config.linux().as_ref();
        let seccomp = linux
            .and_then(|l| l.seccomp().as_ref())
            .map(|s| compile_seccomp_cached(&self.root, s))
            .transpose()?;
        let types = ns_types(&st.config);
        let plan = namespaces::plan_join_process(st.pid, &types);
        let userns = plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User);
        let console = o
            .console_socket
            .as_deref()
            .map(crate::console::connect)
            .transpose()?;
        let cg = st.cgroup();
        let dmz = crate::dmz::memfd_if_available()
            .map_err(|e| RuntimeError::io("create exec trampoline", "memfd", e))?;

        let (parent, pid) = via_stage1(&cg, &plan.join, libc::CLONE_PARENT, |ch| {
            exec_child(
                ch,
                &ExecPlan {
                    process: p,
                    seccomp: seccomp.as_ref(),
                    console: console.as_ref().map(|c| c.as_raw_fd()),
                    userns,
                    preserve_fds: o.preserve_fds,
                    dmz: dmz.as_ref().map(|d| d.as_raw_fd()),
                    stdio: o.stdio,
                },
            )
        })?;
        let fail = |e: RuntimeError| {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            e
        };
        parent
            .send(&ToChild::Go { pid })
            .map_err(|e| fail(RuntimeError::Init(e.to_string())))?;
        // The process's end of the channel is close-on-exec: end-of-file means it exec'd.
        match parent.recv::<ToParent>() {
            Ok(None) => {}
            Ok(Some(ToParent::Error(e))) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(RuntimeError::Init(e));
            }
            Ok(Some(other)) => {
                return Err(fail(RuntimeError::Init(format!(
                    "unexpected message {other:?}"
                ))))
            }
            Err(e) => return Err(fail(RuntimeError::Init(e.to_string()))),
        }
        if let Some(pf) = &o.pid_file {
            write_pid_file(pf, pid)?;
        }
        Ok(pid)
    }
}

/// Compiling Docker's default profile with libseccomp takes 10-30 ms, more than the rest of a
/// container start; the compiled program depends only on the profile, libseccomp and the kernel,
/// so it is kept under the (root-only) state root, named by a SHA-256 of all three.
fn compile_seccomp_cached(
    root: &Path,
    cfg: &oci_spec::runtime::LinuxSeccomp,
) -> Result<SeccompFilter> {
    use sha2::{Digest, Sha256};
    let Ok(json) = serde_json::to_vec(cfg) else {
        return Ok(seccomp::compile(cfg)?);
    };
    let mut h = Sha256::new();
    h.update(b"berth-seccomp-cache-v1\0");
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        h.update(format!("{}.{}.{}\0", v.major, v.minor, v.micro).as_bytes());
    }
    let uts = nix::sys::utsname::uname().ok();
    if let Some(u) = &uts {
        h.update(u.release().as_encoded_bytes());
        h.update(u.machine().as_encoded_bytes());
    }
    h.update(&json);
    let name: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    // '~' cannot appear in a container id, so this never collides with a container's dir.
    let dir = root.join("seccomp~cache");
    let path = dir.join(&name);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(f) = SeccompFilter::from_bytes(&bytes) {
            return Ok(f);
        }
    }
    let f = seccomp::compile(cfg)?;
    // A cache that cannot be written only costs the next container the compile time.
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .is_ok()
    {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        if std::fs::write(&tmp, f.to_bytes()).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(f)
}

/// The refusal of `action` in `status`, in runc's words.
fn wrong(id: &str, action: &'static str, status: Status) -> RuntimeError {
    let message = match (action, status) {
        ("start", Status::Stopped) => "cannot start a container that has stopped".to_string(),
        ("start", Status::Running | Status::Paused) => {
            "cannot start an already running container".to_string()
        }
        ("delete", s) => {
            format!("cannot delete container {id} that is not stopped: {s} (use --force)")
        }
        ("exec in", s) => format!("cannot exec in a {s} container"),
        ("resume", _) => "container not paused".to_string(),
        ("kill" | "pause" | "update", _) => "container not running".to_string(),
        (a, s) => format!("cannot {a} a container that is {s}"),
    };
    RuntimeError::WrongState {
        id: id.into(),
        message,
    }
}

/// Exit status for a process that failed before its program ran, as shells use them.
pub fn exit_code_for(e: &RuntimeError) -> i32 {
    let m = e.to_string();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        1
    }
}

/// Signals the init through a pidfd, after checking it is still the process we created.
fn signal_init(st: &ContainerState, sig: Signal) -> Result<()> {
    let gone = || wrong(&st.id, "kill", Status::Stopped);
    let pidfd = sys::pidfd_open(st.pid).map_err(|_| gone())?;
    // Checked after opening the pidfd: from here on it names this very process or none.
    if !st.init_alive() {
        return Err(gone());
    }
    sys::pidfd_send_signal(pidfd.as_fd(), sig as libc::c_int)
        .map_err(|e| RuntimeError::sys(format!("signal {sig} to pid {}", st.pid), e))
}

fn wait_gone(st: &ContainerState, limit: Duration) {
    let Ok(pidfd) = sys::pidfd_open(st.pid) else {
        return;
    };
    let deadline = Instant::now() + limit;
    while st.init_alive() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// When the config denies devices, the devices every container gets (and those it lists in
/// `linux.devices`) are allowed after its own rules, as runc does: a container without
/// /dev/null is of no use to anyone.
fn with_default_devices(
    r: &LinuxResources,
    extra: &[oci_spec::runtime::LinuxDevice],
) -> LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};
    let rules = r.devices().clone().unwrap_or_default();
    if !rules.iter().any(|d| !d.allow()) {
        // Only allow rules (or none): the cgroup keeps what it inherits, which allows them.
        let mut r = r.clone();
        r.set_devices(None);
        return r;
    }
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access.to_string());
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().ok()
    };
    let mut out = rules;
    let defaults = [
        (LinuxDeviceType::C, None, None, "m"),
        (LinuxDeviceType::B, None, None, "m"),
        (LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        (LinuxDeviceType::C, Some(1), Some(5), "rwm"),
        (LinuxDeviceType::C, Some(1), Some(7), "rwm"),
        (LinuxDeviceType::C, Some(1), Some(8), "rwm"),
        (LinuxDeviceType::C, Some(1), Some(9), "rwm"),
        (LinuxDeviceType::C, Some(5), Some(0), "rwm"),
        (LinuxDeviceType::C, Some(5), Some(2), "rwm"),
        (LinuxDeviceType::C, Some(136), None, "rwm"),
    ];
    out.extend(
        defaults
            .into_iter()
            .filter_map(|(t, ma, mi, a)| rule(t, ma, mi, a)),
    );
    out.extend(
        extra
            .iter()
            .filter_map(|d| rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm")),
    );
    let mut r = r.clone();
    r.set_devices(Some(out));
    r
}

fn merge_resources(old: Option<LinuxResources>, new: &LinuxResources) -> LinuxResources {
    let mut r = old.unwrap_or_default();
    if new.memory().is_some() {
        r.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        r.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        r.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        r.set_block_io(new.block_io().clone());
    }
    if new.hugepage_limits().is_some() {
        r.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.unified().is_some() {
        r.set_unified(new.unified().clone());
    }
    r
}

/// Forks stage 1, which joins the container's cgroups and the namespaces in `join`, then clones
/// the final process (with `flags`, and `CLONE_PARENT` so it is our child) to run `child`, and
/// reports its pid. Returns our end of the channel to that process and its pid.
fn via_stage1(
    cgroup: &Cgroup,
    join: &[(LinuxNamespaceType, PathBuf)],
    flags: libc::c_int,
    child: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<(Channel, i32)> {
    let (parent, ch) = channel::pair().map_err(|e| RuntimeError::Init(e.to_string()))?;
    let stage1 = sys::clone_fork(0).map_err(|e| RuntimeError::sys("fork", e))?;
    if stage1 == 0 {
        drop(parent);
        let r = (|| -> Result<()> {
            // Join the cgroups before any namespace: the process inherits them, so it is limited
            // from its first instruction.
            let cgroup_fd = join_cgroup_fast(cgroup.paths())?;
            namespaces::join_all(join)?;
            let pid = spawn_into(flags, cgroup_fd.as_ref(), cgroup)
                .map_err(|e| RuntimeError::sys(format!("clone with flags {flags:#x}"), e))?;
            if pid == 0 {
                let Err(e) = child(&ch);
                if ch.send(&ToParent::Error(e.to_string())).is_err() {
                    // The runtime is gone (the container was started): the container's stderr
                    // is the only place left to say why it did not run.
                    eprintln!("berth-runtime: {e}");
                }
                // SAFETY: leaving the forked process without running the parent's destructors.
                unsafe { libc::_exit(exit_code_for(&e)) };
            }
            ch.send(&ToParent::Pid(pid))
                .map_err(|e| RuntimeError::Init(e.to_string()))
        })();
        let code = match r {
            Ok(()) => 0,
            Err(e) => {
                let _ = ch.send(&ToParent::Error(e.to_string()));
                1
            }
        };
        // SAFETY: _exit skips atexit handlers and destructors that belong to the parent's copy
        // of the process state.
        unsafe { libc::_exit(code) };
    }
    drop(ch);
    let first = parent.recv::<ToParent>();
    let _ = waitpid(Pid::from_raw(stage1), None);
    match first.map_err(|e| RuntimeError::Init(e.to_string()))? {
        Some(ToParent::Pid(p)) => Ok((parent, p)),
        Some(ToParent::Error(e)) => Err(RuntimeError::Init(e)),
        Some(other) => Err(RuntimeError::Init(format!("unexpected message {other:?}"))),
        None => Err(RuntimeError::Init(
            "stage-1 process exited without a message".into(),
        )),
    }
}

/// Moves the calling (single-threaded) process into the container's v1 hierarchies by writing
/// "0" to their `tasks` files: migrating only the caller lets the kernel skip the global
/// threadgroup lock that a `cgroup.procs` write takes (and its RCU grace period, tens of
/// milliseconds here). The unified (v2) directory is returned open, for `CLONE_INTO_CGROUP`.
fn join_cgroup_fast(paths: &crate::cgroups::CgroupPaths) -> Result<Option<OwnedFd>> {
    let mut seen = std::collections::BTreeSet::new();
    for dir in paths.v1.values() {
        if !seen.insert(dir) {
            continue;
        }
        let tasks = dir.join("tasks");
        std::fs::write(&tasks, b"0").map_err(|e| RuntimeError::io("join cgroup", &tasks, e))?;
    }
    match &paths.unified {
        Some(u) => Ok(Some(
            sys::open_path(u).map_err(|e| RuntimeError::io("open cgroup", u, e))?,
        )),
        None => Ok(None),
    }
}

/// clone3 into the unified cgroup when there is one; clone plus a `cgroup.procs` write where
/// the kernel lacks clone3 or `CLONE_INTO_CGROUP`.
fn spawn_into(
    flags: libc::c_int,
    cgroup_fd: Option<&OwnedFd>,
    cgroup: &Cgroup,
) -> nix::Result<i32> {
    let flags64 = u64::try_from(flags).unwrap_or(0);
    match cgroup_fd {
        None => sys::clone3_fork(flags64, None).or_else(|_| sys::clone_fork(flags)),
        Some(fd) => match sys::clone3_fork(flags64, Some(fd.as_fd())) {
            Err(
                nix::Error::ENOSYS
                | nix::Error::EINVAL
                | nix::Error::E2BIG
                | nix::Error::EOPNOTSUPP,
            ) => {
                let me = i32::try_from(std::process::id()).unwrap_or(0);
                cgroup.add_task(me).map_err(|_| nix::Error::EIO)?;
                sys::clone_fork(flags)
            }
            r => r,
        },
    }
}

/// The container's init, from its first instruction in the new namespaces to execve.
fn init(ch: &Channel, plan: &InitPlan<'_>) -> Result<Infallible> {
    // Nothing in the container may open our /proc entries while we still run the runtime's code.
    sys::set_dumpable(false).map_err(|e| RuntimeError::sys("prctl dumpable", e))?;
    if let Some(fds) = plan.stdio {
        sys::set_stdio(fds).map_err(|e| RuntimeError::sys("set up stdio", e))?;
    }
    let ToChild::Go { pid } = ch
        .expect::<ToChild>()
        .map_err(|e| RuntimeError::Init(e.to_string()))?
    else {
        return Err(RuntimeError::Init(
            "expected the go-ahead from the runtime".into(),
        ));
    };
    let spec = plan.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidArgument("process is missing".into()))?;
    if plan.new_userns {
        // The maps are written: become the namespace's root so the setup below is privileged
        // there (and only there).
        sys::setresgid(0).map_err(|e| RuntimeError::sys("setgid 0 in user namespace", e))?;
        sys::setresuid(0).map_err(|e| RuntimeError::sys("setuid 0 in user namespace", e))?;
    }
    if plan.ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        // Now that we are in the container's cgroups, they become the namespace's root.
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| RuntimeError::sys("unshare cgroup namespace", e))?;
    }
    nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    if !plan.no_new_keyring {
        sys::join_session_keyring(&format!("_ses.{}", plan.id))
            .map_err(|e| RuntimeError::sys("join a new session keyring", e))?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        let persona = match p.domain() {
            // PER_LINUX32 and PER_LINUX from linux/personality.h.
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        };
        sys::personality(persona).map_err(|e| RuntimeError::sys("set personality", e))?;
    }
    if plan.ns.new.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h)
                .map_err(|e| RuntimeError::sys(format!("sethostname {h}"), e))?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            sys::setdomainname(d)
                .map_err(|e| RuntimeError::sys(format!("setdomainname {d}"), e))?;
        }
    }
    let rctx = RootfsContext {
        spec,
        rootfs: plan.rootfs,
        bundle: plan.bundle,
        cgroup_dirs: plan.cgroup.paths().mount_dirs(),
        cgroupns: plan.ns.new.contains(CloneFlags::CLONE_NEWCGROUP),
        userns: plan.new_userns
            || plan
                .ns
                .join
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User),
        root_uid: plan.root_uid,
        root_gid: plan.root_gid,
    };
    rootfs::prepare(&rctx)?;
    let mut state = OciState {
        oci_version: spec.version().clone(),
        id: plan.id.to_string(),
        pid,
        status: Status::Creating,
        bundle: plan.bundle.to_path_buf(),
        rootfs: plan.rootfs.to_path_buf(),
        created: String::new(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    if plan.runtime_hooks {
        ch.send(&ToParent::Mounted)
            .map_err(|e| RuntimeError::Init(e.to_string()))?;
        match ch
            .expect::<ToChild>()
            .map_err(|e| RuntimeError::Init(e.to_string()))?
        {
            ToChild::HooksDone => {}
            ToChild::Go { .. } => {
                return Err(RuntimeError::Init("unexpected message from runtime".into()))
            }
        }
    }
    if let Some(h) = spec.hooks().as_ref() {
        crate::hooks::run_all(h.create_container().as_ref(), &state)?;
    }
    // Reached again after pivot_root through /proc/self/fd, where the state dir is out of sight.
    let fifo_path = plan.state_dir.join(EXEC_FIFO);
    let fifo = sys::open_path(&fifo_path).map_err(|e| RuntimeError::io("open", &fifo_path, e))?;
    let host_proc =
        sys::open_path(Path::new("/proc")).map_err(|e| RuntimeError::io("open", "/proc", e))?;
    rootfs::pivot(plan.rootfs, plan.no_pivot)?;
    rootfs::finish(spec)?;
    if let Some(sock) = plan.console {
        let size = process.console_size().map(|b| {
            (
                u16::try_from(b.height()).unwrap_or(u16::MAX),
                u16::try_from(b.width()).unwrap_or(u16::MAX),
            )
        });
        crate::console::setup(sock, size)?;
    }
    let program = crate::process::lookup(process)?;
    let start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .is_some_and(|v| !v.is_empty());
    let mut keep = vec![ch.raw_fd()];
    keep.extend(plan.console);
    if plan.dmz.is_some() && !start_hooks && Path::new("/proc/self/fd").is_dir() {
        // The trampoline does the wait on exec.fifo: everything else is done now, so from
        // `create` on, pid 1 is the sealed trampoline and not the runtime.
        let fifo = crate::dmz::inheritable(&fifo)
            .map_err(|e| RuntimeError::sys("unset close-on-exec on exec.fifo", e))?;
        drop(host_proc);
        let ctx = ExecContext {
            program: &program,
            seccomp: plan.seccomp,
            preserve_fds: plan.preserve_fds,
            can_setgroups: true,
            dmz: plan.dmz,
            fifo: Some(fifo),
            keep,
        };
        // Everything that can fail is done while `create` still listens; then Ready, and the
        // trampoline waits for `start`.
        let prepared = crate::process::prepare(process, &ctx)?;
        ch.send(&ToParent::Ready)
            .map_err(|e| RuntimeError::Init(e.to_string()))?;
        return Err(crate::process::exec_prepared(&ctx, &prepared));
    }
    ch.send(&ToParent::Ready)
        .map_err(|e| RuntimeError::Init(e.to_string()))?;

    // Blocks until `start` opens the fifo for reading.
    let rel = format!("self/fd/{}", fifo.as_raw_fd());
    let w = nix::fcntl::openat(
        host_proc.as_fd(),
        rel.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys("open exec fifo", e))?;
    let mut w = std::fs::File::from(w);
    w.write_all(b"0")
        .map_err(|e| RuntimeError::io("write", "exec.fifo", e))?;
    drop(w);
    drop(fifo);
    drop(host_proc);
    state.status = Status::Running;
    if let Some(h) = spec.hooks().as_ref() {
        crate::hooks::run_all(h.start_container().as_ref(), &state)?;
    }
    let ctx = ExecContext {
        program: &program,
        seccomp: plan.seccomp,
        preserve_fds: plan.preserve_fds,
        can_setgroups: true,
        dmz: plan.dmz,
        fifo: None,
        keep,
    };
    finalize_and_exec(process, &ctx)
}

/// The exec'd process, after stage 1 joined the container's namespaces and cgroup.
/// What the exec'd process needs, computed before the fork.
#[derive(Debug)]
struct ExecPlan<'a> {
    process: &'a Process,
    seccomp: Option<&'a SeccompFilter>,
    console: Option<RawFd>,
    userns: bool,
    preserve_fds: i32,
    dmz: Option<RawFd>,
    stdio: Option<[RawFd; 3]>,
}

fn exec_child(ch: &Channel, plan: &ExecPlan<'_>) -> Result<Infallible> {
    // Nothing in the container may open our /proc entries while we still run the runtime's code.
    sys::set_dumpable(false).map_err(|e| RuntimeError::sys("prctl dumpable", e))?;
    if let Some(fds) = plan.stdio {
        sys::set_stdio(fds).map_err(|e| RuntimeError::sys("set up stdio", e))?;
    }
    match ch
        .expect::<ToChild>()
        .map_err(|e| RuntimeError::Init(e.to_string()))?
    {
        ToChild::Go { .. } => {}
        ToChild::HooksDone => {
            return Err(RuntimeError::Init("unexpected message from runtime".into()))
        }
    }
    let p = plan.process;
    if plan.userns {
        sys::setresgid(0).map_err(|e| RuntimeError::sys("setgid 0 in user namespace", e))?;
        sys::setresuid(0).map_err(|e| RuntimeError::sys("setuid 0 in user namespace", e))?;
    }
    if let Some(sock) = plan.console {
        nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
        let size = p.console_size().map(|b| {
            (
                u16::try_from(b.height()).unwrap_or(u16::MAX),
                u16::try_from(b.width()).unwrap_or(u16::MAX),
            )
        });
        crate::console::setup(sock, size)?;
    }
    let program = crate::process::lookup(p)?;
    let mut keep = vec![ch.raw_fd()];
    keep.extend(plan.console);
    let ctx = ExecContext {
        program: &program,
        seccomp: plan.seccomp,
        preserve_fds: plan.preserve_fds,
        can_setgroups: true,
        dmz: plan.dmz,
        fifo: None,
        keep,
    };
    finalize_and_exec(p, &ctx)
}
