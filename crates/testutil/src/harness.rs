//! Helpers for end-to-end tests that drive real binaries: deadlines on child processes,
//! polling with a deadline instead of sleeping, raw HTTP over a unix socket, mount listings,
//! and a pty driver for interactive commands. The daemon's and the CLI's e2e harnesses both
//! build on these.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a failure should stop the test loudly"
)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Polls `cond` every few milliseconds until it returns `Some`, or panics after `timeout` naming
/// `what` (the poll interval is small: this replaces sleeps, it does not add one).
pub fn wait_until<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Output of a command, with helpers for assertions.
pub trait OutputExt {
    fn out(&self) -> String;
    fn err(&self) -> String;
    fn code(&self) -> i32;
}

impl OutputExt for Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// SIGTERMs `child` (a daemon the test started) and reaps it, SIGKILLing it when it has not
/// exited within `grace`, so a daemon's shutdown path runs but a hung one cannot hang the test.
pub fn terminate_child(child: &mut Child, grace: Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + grace;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to completion with a deadline; a command still running then is killed (SIGKILL,
/// by its pid) and the test fails naming it.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration, input: Option<&[u8]>) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let feeder = input.map(|i| {
        let mut stdin = child.stdin.take().unwrap();
        let data = i.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} still running after {timeout:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A response read over the daemon's socket.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response ({}) is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end. Chunked
/// bodies are decoded. Returns an error string instead of panicking so the fuzzer can report
/// which body broke the connection.
pub fn http_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {socket:?}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {method} {path}: {e} (got {} bytes)", raw.len()))?;
    parse_response(&raw).ok_or_else(|| {
        format!(
            "{method} {path}: unparsable response {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Mount points at or below `root`, deepest first.
pub fn mounts_under(root: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = root.to_string_lossy().into_owned();
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v.dedup();
    v
}

/// A process on the slave side of a pty (its controlling terminal), e.g. `docker run -it`.
#[derive(Debug)]
pub struct PtyProcess {
    master: OwnedFd,
    child: Child,
    /// Everything read from the terminal so far.
    pub seen: Vec<u8>,
    /// Where the next `expect` starts looking.
    cursor: usize,
}

impl PtyProcess {
    pub fn spawn(mut cmd: Command) -> PtyProcess {
        let ws = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .env("TERM", "xterm");
        let master_raw = pty.master.as_raw_fd();
        // SAFETY: between fork and exec the closure only calls async-signal-safe syscalls
        // (close, setsid, ioctl) on descriptors that exist in the child.
        unsafe {
            cmd.pre_exec(move || {
                libc::close(master_raw);
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // stdin (fd 0) is the slave now; make it the controlling terminal.
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn under a pty");
        drop(slave);
        PtyProcess {
            master: pty.master,
            child,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// Reads what is available within `timeout`; false when the terminal closed.
    fn read_some(&mut self, timeout: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => true,
            Ok(_) => {
                let mut buf = [0u8; 4096];
                match nix::unistd::read(&self.master, &mut buf) {
                    Ok(0) | Err(_) => false, // EIO: the slave side is closed
                    Ok(n) => {
                        self.seen.extend_from_slice(&buf[..n]);
                        true
                    }
                }
            }
            Err(nix::errno::Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Waits until `needle` appears after the previous match; returns the text up to and
    /// including it.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let hay = &self.seen[self.cursor..];
            if let Some(p) = hay
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                let end = self.cursor + p + needle.len();
                let s = String::from_utf8_lossy(&self.seen[self.cursor..end]).into_owned();
                self.cursor = end;
                return s;
            }
            let now = Instant::now();
            if now > deadline {
                panic!(
                    "waited {timeout:?} for {needle:?} on the terminal; got {:?}",
                    String::from_utf8_lossy(&self.seen[self.cursor..])
                );
            }
            if !self.read_some((deadline - now).min(Duration::from_millis(200))) {
                // Closed: one last look happens at the top of the loop, then fail.
                let hay = &self.seen[self.cursor..];
                if !hay.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    panic!(
                        "terminal closed before {needle:?} appeared; got {:?}",
                        String::from_utf8_lossy(hay)
                    );
                }
            }
        }
    }

    /// Changes the terminal's size; the kernel sends SIGWINCH to the process on it.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass; the master fd is ours
        // and open for the life of self.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Types `s` on the terminal.
    pub fn send(&mut self, s: &[u8]) {
        nix::unistd::write(&self.master, s).expect("write to the pty");
    }

    /// Waits for the process to exit (reading the terminal meanwhile so it never blocks on a
    /// full pty buffer); kills it after `timeout`.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while self.read_some(Duration::from_millis(50)) {
                    if self.seen.len() > 1 << 20 {
                        break;
                    }
                    if let Ok(0) = nix::poll::poll(
                        &mut [nix::poll::PollFd::new(
                            self.master.as_fd(),
                            nix::poll::PollFlags::POLLIN,
                        )],
                        nix::poll::PollTimeout::ZERO,
                    ) {
                        break;
                    }
                }
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "process on the pty still running after {timeout:?}; terminal: {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            self.read_some(Duration::from_millis(20));
        }
    }

    /// Reads for up to `timeout`; true when `needle` has appeared anywhere so far.
    pub fn seen_within(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .seen
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                return true;
            }
            let now = Instant::now();
            if now > deadline {
                return false;
            }
            self.read_some((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// The whole terminal transcript.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

impl Drop for PtyProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A tar of the host busybox's root filesystem at `dir/berth-busybox-rootfs.tar`, written once
/// (by whichever test process gets there first: temp file + rename) and kept for later runs.
/// Integration tests pass `env!("CARGO_TARGET_TMPDIR")`, so nothing is left in /tmp.
pub fn busybox_rootfs_tar(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("berth-busybox-rootfs.tar");
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(dir).expect("create the tar's directory");
    let tmp = dir.join(format!("berth-busybox-rootfs.tar.{}", std::process::id()));
    let bundle = crate::Bundle::busybox(&["sh"]).expect("busybox rootfs");
    bundle.write_rootfs_tar(&tmp).expect("write rootfs tar");
    std::fs::rename(&tmp, &path).expect("move the rootfs tar into place");
    path
}
