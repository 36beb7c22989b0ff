//! A berth-shim under test: its own runtime root, socket directory and bundle; a client for
//! the protocol; and a guard that deletes the container and ends the shim however the test
//! ends.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared by several test binaries; tests fail loudly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_shim::protocol::{parse_frame_header, Ready, Response, STREAM_SYSTEM};
use berth_testutil::{require_root, unique_id, Bundle};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log: bool,
    pub log_max_size: Option<u64>,
    pub log_max_file: Option<u32>,
}

#[derive(Debug)]
pub struct Shim {
    pub id: String,
    pub bundle: Bundle,
    pub root: TempDir,
    pub sockdir: TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub ready: Ready,
}

/// Builds a busybox bundle running `args`, with its own cgroup.
pub fn bundle(id: &str, args: &[&str], tty: bool) -> Bundle {
    let mut b = Bundle::busybox(args).unwrap();
    b.set_cgroups_path(&format!("berth-test-{id}"));
    b.config_mut()["process"]["terminal"] = Value::from(tty);
    b.save().unwrap();
    b
}

/// Runs the foreground `berth-shim`; returns its parsed Ready line and exit status.
pub fn launch(
    id: &str,
    b: &Bundle,
    root: &Path,
    socket: &Path,
    log: &Path,
    o: &Opts,
) -> (Ready, i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-shim"));
    cmd.args(["--id", id, "--bundle"])
        .arg(b.path())
        .arg("--runtime-root")
        .arg(root)
        .arg("--socket")
        .arg(socket);
    if o.log {
        cmd.arg("--log-path").arg(log);
    }
    if let Some(n) = o.log_max_size {
        cmd.arg("--log-max-size").arg(n.to_string());
    }
    if let Some(n) = o.log_max_file {
        cmd.arg("--log-max-file").arg(n.to_string());
    }
    for (on, flag) in [
        (o.tty, "--tty"),
        (o.stdin, "--stdin"),
        (o.stdin_once, "--stdin-once"),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line on stdout: {stdout:?}"
    );
    let ready: Ready = serde_json::from_str(stdout.trim()).unwrap();
    (ready, out.status.code().unwrap_or(-1), stdout)
}

impl Shim {
    pub fn start(args: &[&str], o: Opts) -> Shim {
        require_root().unwrap();
        let id = unique_id("shim");
        let b = bundle(&id, args, o.tty);
        Self::start_bundle(id, b, o)
    }

    pub fn start_bundle(id: String, bundle: Bundle, o: Opts) -> Shim {
        let root = tempfile::Builder::new()
            .prefix("berth-shim-rt-")
            .tempdir_in("/run")
            .unwrap();
        let sockdir = tempfile::Builder::new()
            .prefix("bs-")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = sockdir.path().join("s");
        let log = sockdir.path().join("c.log");
        let (ready, code, line) = launch(&id, &bundle, root.path(), &socket, &log, &o);
        let shim = Shim {
            id,
            bundle,
            root,
            sockdir,
            socket,
            log,
            ready,
        };
        assert!(shim.ready.ok && code == 0, "shim did not start: {line}");
        shim
    }

    pub fn connect(&self) -> Client {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// One request, one answer.
    pub fn call(&self, req: Value) -> Response {
        let mut c = self.connect();
        c.send(&req);
        c.response()
    }

    pub fn ok(&self, req: Value) -> Response {
        let r = self.call(req.clone());
        assert!(r.ok, "{req} failed: {r:?}");
        r
    }

    pub fn state(&self) -> berth_shim::protocol::ShimState {
        self.ok(json!({"op": "state"})).state.unwrap()
    }

    pub fn wait(&self) -> berth_shim::protocol::ShimState {
        self.ok(json!({"op": "wait"})).state.unwrap()
    }

    pub fn shim_pid(&self) -> i32 {
        self.ready.shim_pid
    }

    pub fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    /// The process spec of the container's config, with other args: what berthd sends in Exec.
    pub fn process(&self, args: &[&str], tty: bool) -> Value {
        let mut p = self.bundle.config()["process"].clone();
        p["args"] = json!(args);
        p["terminal"] = Value::from(tty);
        p
    }

    pub fn wait_gone(pid: i32) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if !Self::alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if self.socket.exists() {
            if let Ok(mut s) = UnixStream::connect(&self.socket) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
                let _ = s.write_all(b"{\"op\":\"delete\",\"force\":true}\n");
                let mut line = String::new();
                let _ = BufReader::new(s).read_line(&mut line);
            }
        }
        let pid = self.ready.shim_pid;
        if pid > 0 && Self::alive(pid) && !Self::wait_gone(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Whatever the shim could not do: the runtime removes the container and its cgroup.
        let _ = berth_runtime::container::Runtime::new(self.root.path()).delete(&self.id, true);
    }
}

#[derive(Debug)]
pub struct Client {
    pub r: BufReader<UnixStream>,
    pub w: UnixStream,
}

/// What an attach or exec stream carried.
#[derive(Debug, Default)]
pub struct Frames {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub system: Vec<Vec<u8>>,
    pub streams: Vec<u8>,
}

impl Frames {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Client {
    pub fn send(&mut self, req: &Value) {
        let mut line = serde_json::to_vec(req).unwrap();
        line.push(b'\n');
        self.w.write_all(&line).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    pub fn response(&mut self) -> Response {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
    }

    /// Half-closes: the stream's stdin ends.
    pub fn close_stdin(&mut self) {
        self.w.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// One frame: (stream, payload); None at end of stream.
    pub fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 8];
        match self.r.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("read frame header: {e}"),
        }
        let (stream, len) = parse_frame_header(&h);
        let mut buf = vec![0u8; len];
        match self.r.read_exact(&mut buf) {
            Ok(()) => Some((stream, buf)),
            // A dropped client's stream can end mid-frame.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => panic!("read frame payload: {e}"),
        }
    }

    /// Frames until the shim closes the stream.
    pub fn frames(&mut self) -> Frames {
        let mut f = Frames::default();
        while let Some((s, b)) = self.frame() {
            f.streams.push(s);
            match s {
                1 => f.stdout.extend(b),
                2 => f.stderr.extend(b),
                STREAM_SYSTEM => f.system.push(b),
                _ => panic!("unexpected stream {s}"),
            }
        }
        f
    }

    /// Stdout frames until their text contains `needle`.
    pub fn read_until(&mut self, needle: &str) -> String {
        let mut got = Vec::new();
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if text.contains(needle) {
                return text;
            }
            match self.frame() {
                Some((_, b)) => got.extend(b),
                None => panic!("stream ended before {needle:?}; got {text:?}"),
            }
        }
    }
}

/// Kilobytes of a `/proc/<pid>/status` field (VmRSS, RssAnon, RssFile).
pub fn status_kib(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
