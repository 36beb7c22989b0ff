//! End-to-end harness: a real berthd on a short temp root, driven by the real docker CLI, raw
//! HTTP over its unix socket, and a pty for `-it`.
//!
//! Every test starts its own [`TestDaemon`], so tests run in parallel. Nothing here waits with a
//! fixed sleep where a condition can be polled with a deadline ([`wait_until`]), and every child
//! process has a deadline: a hung `docker` is killed and the test fails with its command line.

#![allow(
    dead_code,
    reason = "each e2e test binary uses a different part of the harness"
)]
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

pub mod seed;

pub use berth_testutil::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The docker CLI the tests drive.
pub const DOCKER: &str = "/usr/local/bin/docker";
/// How long one docker command may take before it is killed.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// A tar of the busybox rootfs, kept in cargo's target tmp dir and shared by every test run.
fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| busybox_rootfs_tar(Path::new(env!("CARGO_TARGET_TMPDIR"))))
}

/// Where the berth-shim binary is: next to berthd, which cargo builds for this test.
fn shim_path() -> PathBuf {
    let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
    let shim = berthd
        .parent()
        .map(|d| d.join("berth-shim"))
        .unwrap_or_else(|| PathBuf::from("berth-shim"));
    assert!(
        shim.is_file(),
        "{} is missing: build berth-shim first: cargo build -p berth-shim",
        shim.display()
    );
    shim
}

/// A berthd on its own roots and socket, killed and cleaned up on drop.
#[derive(Debug)]
pub struct TestDaemon {
    /// The short temp dir everything lives in (/tmp/bdXXXXXX).
    pub root: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// DOCKER_CONFIG for the CLI, so the user's ~/.docker (contexts, auth) plays no part.
    pub docker_config: PathBuf,
    /// berthd's stderr, appended across restarts.
    pub log: PathBuf,
    child: Option<Child>,
    /// The private network namespace (a bind-mounted file under `root`) berthd runs in, for
    /// tests that create bridges, veths and nftables rules; None = the host's namespace, with
    /// the default bridge and the firewall turned off.
    pub netns: Option<PathBuf>,
    /// Kept so the dir outlives the daemon; removed last in drop.
    _tmp: Option<tempfile::TempDir>,
}

impl TestDaemon {
    /// Seeds `busybox:latest` (CMD ["sh"]) into a fresh data root and starts berthd on it.
    pub fn start() -> TestDaemon {
        Self::start_opts(false)
    }

    /// As [`TestDaemon::start`], berthd in a network namespace of its own with bridge
    /// networking and the firewall on. The namespace outlives berthd (for restarts) and is
    /// unmounted on drop.
    pub fn start_in_netns() -> TestDaemon {
        Self::start_opts(true)
    }

    fn start_opts(own_netns: bool) -> TestDaemon {
        let nuid = nix::unistd::geteuid();
        assert!(
            nuid.is_root(),
            "the e2e tests start containers and need root: run them as root (sudo -E cargo test)"
        );
        assert!(
            Path::new(DOCKER).exists(),
            "{DOCKER} not found: install the docker CLI (version 28)"
        );
        let shim = shim_path();
        // Short: unix socket paths (exec-root/s/<12hex>) must stay under 108 bytes.
        let tmp = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .expect("temp root");
        let root = tmp.path().to_path_buf();
        let d = TestDaemon {
            data_root: root.join("d"),
            exec_root: root.join("x"),
            socket: root.join("s.sock"),
            pidfile: root.join("pid"),
            docker_config: root.join("cfg"),
            log: root.join("berthd.log"),
            root,
            child: None,
            netns: None,
            _tmp: Some(tmp),
        };
        std::fs::create_dir_all(&d.data_root).unwrap();
        std::fs::create_dir_all(&d.docker_config).unwrap();
        std::fs::write(d.docker_config.join("config.json"), "{}").unwrap();
        seed::seed_image(
            &d.data_root,
            rootfs_tar(),
            "busybox:latest",
            &[r#"CMD ["sh"]"#.to_string()],
        );
        let mut d = d;
        if own_netns {
            let ns = d.root.join("net");
            std::fs::write(&ns, b"").unwrap();
            let mut c = Command::new("unshare");
            c.arg(format!("--net={}", ns.display())).arg("true");
            let out = run_with_timeout(c, Duration::from_secs(10), None);
            assert!(
                out.status.success(),
                "unshare --net: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            d.netns = Some(ns);
            let out = d.host(&["ip", "link", "set", "lo", "up"]);
            assert!(
                out.status.success(),
                "lo up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        d.spawn_with_shim(&shim);
        d
    }

    /// Runs a command in berthd's network namespace (the host's when it has none).
    pub fn host(&self, args: &[&str]) -> Output {
        let cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("--");
                c.args(args);
                c
            }
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        run_with_timeout(cmd, Duration::from_secs(30), None)
    }

    /// Starts berthd (again) on the same roots and waits until `/_ping` answers.
    pub fn spawn(&mut self) {
        let shim = shim_path();
        self.spawn_with_shim(&shim);
    }

    fn spawn_with_shim(&mut self, shim: &Path) {
        assert!(self.child.is_none(), "berthd already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_berthd"));
                c
            }
            None => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_berthd"));
                c.arg("--bridge=none").arg("--iptables=false");
                c
            }
        };
        let child = cmd
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("--config-file")
            .arg(self.root.join("no-daemon.json"))
            .arg("--log-level")
            .arg("debug")
            .env("BERTH_SHIM", shim)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let sock = self.socket.clone();
        let logp = self.log.clone();
        let child = self.child.as_mut().unwrap();
        wait_until("berthd to answer /_ping", Duration::from_secs(30), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "berthd exited during start ({st}):\n{}",
                    std::fs::read_to_string(&logp).unwrap_or_default()
                );
            }
            match http_request(&sock, "GET", "/_ping", None, Duration::from_secs(5)) {
                Ok(r) if r.status == 200 => Some(()),
                _ => None,
            }
        });
    }

    /// berthd's pid.
    pub fn pid(&self) -> i32 {
        let c = self.child.as_ref().expect("berthd not running");
        i32::try_from(c.id()).unwrap()
    }

    /// SIGKILLs berthd (by its pid) and reaps it; the shims and containers live on.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs berthd and waits for it to exit (SIGKILL after 20 s).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(20));
        }
    }

    /// `docker` with DOCKER_HOST pointing at this daemon.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env("DOCKER_CLI_HINTS", "false");
        cmd
    }

    /// Runs `docker ARGS` to completion (killed after [`DOCKER_TIMEOUT`]).
    pub fn docker(&self, args: &[&str]) -> Output {
        run_with_timeout(self.docker_cmd(args), DOCKER_TIMEOUT, None)
    }

    /// Runs `docker ARGS` with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_timeout(self.docker_cmd(args), DOCKER_TIMEOUT, Some(input))
    }

    /// Runs `docker ARGS`, asserts it succeeded, returns its stdout trimmed.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
            o.status,
            o.out(),
            o.err(),
            self.log_tail()
        );
        o.out().trim().to_string()
    }

    /// Runs `docker ARGS`, asserts it failed, returns the output.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> Output {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should have failed but succeeded:\nstdout: {}\nstderr: {}",
            o.out(),
            o.err()
        );
        o
    }

    /// Raw HTTP over the daemon's socket.
    #[track_caller]
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        http_request(
            &self.socket,
            method,
            path,
            body.map(str::as_bytes),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()))
    }

    /// `docker inspect` of one object, as JSON.
    #[track_caller]
    pub fn inspect(&self, what: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", what]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// The container's `State.Status`, or None when it no longer exists.
    pub fn status(&self, what: &str) -> Option<String> {
        let r = self.http("GET", &format!("/containers/{what}/json"), None);
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "inspect {what}: {}", r.text());
        Some(r.json()["State"]["Status"].as_str()?.to_string())
    }

    /// Waits until the container's status is `want`.
    #[track_caller]
    pub fn wait_status(&self, what: &str, want: &str, timeout: Duration) {
        wait_until(&format!("{what} to be {want}"), timeout, || {
            (self.status(what).as_deref() == Some(want)).then_some(())
        });
    }

    /// The last part of berthd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = s.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- berthd log (tail) ---\n{}", tail.join("\n"))
    }

    /// Mount points under this daemon's roots (what a removed container must not leave).
    pub fn mounts_under_root(&self) -> Vec<String> {
        mounts_under(&self.root)
    }

    /// A pty running `docker ARGS` against this daemon.
    pub fn pty(&self, args: &[&str]) -> PtyProcess {
        PtyProcess::spawn(self.docker_cmd(args))
    }

    /// Ids of berth-shim processes serving this daemon (found by our exec root on their command
    /// line, so only processes this test created are ever matched).
    pub fn shim_pids(&self) -> Vec<i32> {
        let needle = self.exec_root.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("berth-shim") && cmdline.contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]).out();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                let _ = self.docker(&args);
            }
        }
        self.terminate();
        // Shims that outlived berthd (a failed test, or rm that did not finish) are ours: their
        // command line names our exec root. Kill them by pid; they take their containers along.
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for m in mounts_under(&self.root) {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(t) = self._tmp.take() {
            if !mounts_under(&self.root).is_empty() {
                // Never remove a tree that still has something mounted in it.
                let _ = t.keep();
            }
        }
    }
}

/// A busybox `httpd` serving `hello-from-<hostname>` on port 80 (networking tests).
pub const HTTPD: &str =
    "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

/// The host's static busybox (networking tests run its wget/timeout in berthd's namespace).
pub fn busybox() -> &'static str {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!("busybox not found on the host: install busybox-static");
}

/// A command's stdout, trimmed.
pub fn out_str(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A command's stderr, trimmed.
pub fn err_str(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}
