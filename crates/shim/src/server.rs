//! The background shim's one `poll(2)` loop.
//!
//! Sources: the listener, every client connection, the container's stdout/stderr pipes (or its
//! pty master), the stdin it is fed through, the same for each exec, and a signalfd for SIGCHLD.
//! Everything is non-blocking; each event does one bounded piece of work. Output is read as
//! soon as it is ready whether or not anyone is attached (the log gets it, and the container
//! never blocks on a slow client): a client more than [`MAX_BACKLOG`] behind is dropped.
//!
//! When the init exits, its output is read to its end (end-of-file on the pipes, EIO on the
//! pty); only then are attach streams closed and Wait answered, so the log and every client
//! have all of it. Processes that outlive the init while holding its stdio (possible only when
//! the container shares the host's pid namespace) get [`DRAIN`] before the shim stops reading.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_runtime::container::{ExecOptions, Runtime};
use berth_runtime::state::{now_rfc3339, ContainerState, Status as RtStatus};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::launch::{console_path, receive_pty};
use crate::logfile::{JsonLog, Stream};
use crate::protocol::{
    frame_header, ExecState, ExitInfo, Request, Response, ShimState, Status, MAX_FRAME,
    STREAM_STDERR, STREAM_STDOUT, STREAM_SYSTEM,
};
use crate::sys;
use crate::Config;

/// Bytes a client may fall behind (or stdin may queue) before it is dropped (or stops being
/// read).
pub const MAX_BACKLOG: usize = 1 << 20;
/// Longest request line.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long output is still read after its process exited, for stray holders of its stdio.
pub const DRAIN: Duration = Duration::from_secs(1);
/// One read from any source.
const CHUNK: usize = 32 * 1024;

#[derive(Debug)]
struct Output {
    fd: OwnedFd,
    stream: u8,
    closed: bool,
}

#[derive(Debug)]
struct Input {
    fd: OwnedFd,
    buf: Vec<u8>,
    close_when_empty: bool,
}

/// One process's stdio as the shim holds it: what it reads, and what it writes to its stdin.
#[derive(Debug, Default)]
pub struct Io {
    outs: Vec<Output>,
    stdin: Option<Input>,
    pty: bool,
}

impl Io {
    pub fn set_stdin(&mut self, w: OwnedFd) -> nix::Result<()> {
        sys::set_nonblocking(w.as_fd())?;
        self.stdin = Some(Input {
            fd: w,
            buf: Vec::new(),
            close_when_empty: false,
        });
        Ok(())
    }

    pub fn add_output(&mut self, r: OwnedFd, stream: u8) -> nix::Result<()> {
        sys::set_nonblocking(r.as_fd())?;
        self.outs.push(Output {
            fd: r,
            stream,
            closed: false,
        });
        Ok(())
    }

    /// The pty master is the output (all of it stream 1) and, through a duplicate that can be
    /// closed on its own, the input.
    pub fn set_pty(&mut self, master: OwnedFd, stdin: bool) -> nix::Result<()> {
        if stdin {
            let dup = master.try_clone().map_err(|_| nix::Error::EMFILE)?;
            self.set_stdin(dup)?;
        }
        self.pty = true;
        self.add_output(master, STREAM_STDOUT)
    }

    fn pty_master(&self) -> Option<BorrowedFd<'_>> {
        if !self.pty {
            return None;
        }
        self.outs
            .first()
            .filter(|o| !o.closed)
            .map(|o| o.fd.as_fd())
    }

    fn open_outputs(&self) -> bool {
        self.outs.iter().any(|o| !o.closed)
    }

    fn stdin_full(&self) -> bool {
        self.stdin
            .as_ref()
            .is_none_or(|i| i.buf.len() >= MAX_BACKLOG)
    }

    fn feed(&mut self, data: &[u8]) {
        if let Some(i) = &mut self.stdin {
            i.buf.extend_from_slice(data);
        }
        self.flush_stdin();
    }

    fn close_stdin(&mut self) {
        if let Some(i) = &mut self.stdin {
            i.close_when_empty = true;
        }
        self.flush_stdin();
    }

    fn flush_stdin(&mut self) {
        let Some(i) = &mut self.stdin else { return };
        while !i.buf.is_empty() {
            match sys::write(i.fd.as_fd(), &i.buf) {
                Ok(n) => {
                    i.buf.drain(..n);
                }
                Err(nix::Error::EAGAIN) => return,
                Err(_) => {
                    // The reader is gone (EPIPE): nothing more can be delivered.
                    self.stdin = None;
                    return;
                }
            }
        }
        if i.close_when_empty {
            self.stdin = None;
        }
        // A drained buffer gives its memory back: a burst of stdin must not stay resident.
        if let Some(i) = &mut self.stdin {
            i.buf = Vec::new();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Waiting for the request line.
    Request,
    Wait,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// The stdio of `execs[n]`.
    Exec(usize),
    /// Answered: closes once its output is sent.
    Done,
}

#[derive(Debug)]
struct Conn {
    sock: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    role: Role,
    read_closed: bool,
    closing: bool,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }
}

#[derive(Debug)]
struct Exec {
    id: String,
    pid: i32,
    exit_code: Option<i32>,
    io: Io,
    conn: Option<usize>,
    deadline: Option<Instant>,
    finished: bool,
}

impl Exec {
    fn state(&self) -> ExecState {
        ExecState {
            pid: self.pid,
            running: self.exit_code.is_none(),
            exit_code: self.exit_code,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Owner {
    Container,
    Exec(usize),
}

#[derive(Debug, Clone, Copy)]
enum Src {
    Signal,
    Listener,
    Out(Owner, usize),
    In(Owner),
    Conn(usize),
}

fn add_io<'a>(owner: Owner, io: &'a Io, srcs: &mut Vec<Src>, fds: &mut Vec<PollFd<'a>>) {
    for (i, o) in io.outs.iter().enumerate().filter(|(_, o)| !o.closed) {
        srcs.push(Src::Out(owner, i));
        fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
    }
    if let Some(inp) = io.stdin.as_ref().filter(|i| !i.buf.is_empty()) {
        srcs.push(Src::In(owner));
        fds.push(PollFd::new(inp.fd.as_fd(), PollFlags::POLLOUT));
    }
}

fn sys_err(what: &'static str) -> impl Fn(nix::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// The serving shim.
#[derive(Debug)]
pub struct Shim {
    cfg: Config,
    rt: Runtime,
    ct: ContainerState,
    sigfd: SignalFd,
    listener: UnixListener,
    io: Io,
    log: Option<JsonLog>,
    started_at: Option<String>,
    exit: Option<ExitInfo>,
    output_done: bool,
    deadline: Option<Instant>,
    conns: Vec<Option<Conn>>,
    execs: Vec<Exec>,
    console_seq: u32,
    scratch: Vec<u8>,
}

impl Shim {
    pub(crate) fn new(
        cfg: Config,
        rt: Runtime,
        ct: ContainerState,
        sigfd: SignalFd,
        listener: UnixListener,
        io: Io,
        log: Option<JsonLog>,
    ) -> Shim {
        Shim {
            cfg,
            rt,
            ct,
            sigfd,
            listener,
            io,
            log,
            started_at: None,
            exit: None,
            output_done: false,
            deadline: None,
            conns: Vec::new(),
            execs: Vec::new(),
            console_seq: 0,
            scratch: vec![0; CHUNK],
        }
    }

    pub fn init_pid(&self) -> i32 {
        self.ct.pid
    }

    /// Serves until a Delete request ends the process.
    pub fn run(mut self) -> ! {
        loop {
            self.step();
        }
    }

    fn step(&mut self) {
        let events = self.poll();
        let mut accept = false;
        for (src, rev) in events {
            match src {
                Src::Signal => self.on_signal(),
                // After the other events: a slot freed in this round must not be refilled
                // while an event for its old connection is still to be handled.
                Src::Listener => accept = true,
                Src::Out(owner, i) => self.on_output(owner, i),
                Src::In(owner) => self.io_mut(owner).flush_stdin(),
                Src::Conn(c) => self.on_conn(c, rev),
            }
        }
        if accept {
            self.accept();
        }
        self.progress();
    }

    /// One poll over every source; returns those with events.
    fn poll(&self) -> Vec<(Src, PollFlags)> {
        let mut srcs = Vec::with_capacity(8);
        let mut fds = Vec::with_capacity(8);
        srcs.push(Src::Signal);
        fds.push(PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN));
        srcs.push(Src::Listener);
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        add_io(Owner::Container, &self.io, &mut srcs, &mut fds);
        for (x, e) in self.execs.iter().enumerate().filter(|(_, e)| !e.finished) {
            add_io(Owner::Exec(x), &e.io, &mut srcs, &mut fds);
        }
        for (c, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else { continue };
            let mut flags = PollFlags::empty();
            if self.wants_read(conn) {
                flags |= PollFlags::POLLIN;
            }
            if conn.pending() > 0 {
                flags |= PollFlags::POLLOUT;
            }
            srcs.push(Src::Conn(c));
            fds.push(PollFd::new(conn.sock.as_fd(), flags));
        }
        let deadline = self
            .execs
            .iter()
            .filter_map(|e| e.deadline)
            .chain(self.deadline)
            .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(_) => return Vec::new(),
            Ok(_) => {}
        }
        srcs.into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect()
    }

    fn wants_read(&self, conn: &Conn) -> bool {
        if conn.read_closed || conn.closing {
            return false;
        }
        match conn.role {
            Role::Request => true,
            Role::Attach { stdin: true, .. } => !self.io.stdin_full(),
            Role::Exec(x) => self.execs.get(x).is_some_and(|e| !e.io.stdin_full()),
            _ => false,
        }
    }

    fn io_mut(&mut self, owner: Owner) -> &mut Io {
        match owner {
            Owner::Exec(x) if x < self.execs.len() => &mut self.execs[x].io,
            _ => &mut self.io,
        }
    }

    // ---- children ----

    fn on_signal(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        self.reap();
    }

    /// Reaps every exited child: the init, execs, and orphans the subreaper inherited.
    fn reap(&mut self) {
        loop {
            let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
            let (pid, code) = match waitpid(None::<Pid>, Some(flags)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            };
            self.child_exited(pid, code, None);
        }
    }

    fn child_exited(&mut self, pid: i32, code: i32, oom: Option<bool>) {
        if pid == self.ct.pid && self.exit.is_none() {
            // Read before Delete destroys the cgroup.
            let oom_killed =
                oom.unwrap_or_else(|| self.ct.cgroup().oom_kill_count().is_ok_and(|n| n > 0));
            self.exit = Some(ExitInfo {
                code,
                exited_at: now_rfc3339(),
                oom_killed,
            });
            self.deadline = Some(Instant::now() + DRAIN);
            self.io.stdin = None;
            return;
        }
        if let Some(e) = self
            .execs
            .iter_mut()
            .find(|e| e.pid == pid && e.exit_code.is_none())
        {
            e.exit_code = Some(code);
            e.deadline = Some(Instant::now() + DRAIN);
            e.io.stdin = None;
        }
    }

    // ---- output ----

    /// One read from an output; end-of-file (or EIO, a pty whose slaves are all closed) ends it.
    fn on_output(&mut self, owner: Owner, i: usize) {
        let mut buf = std::mem::take(&mut self.scratch);
        let r = {
            let io = self.io_mut(owner);
            io.outs
                .get(i)
                .filter(|o| !o.closed)
                .map(|o| (o.stream, sys::read(o.fd.as_fd(), &mut buf)))
        };
        match r {
            Some((stream, Ok(n))) if n > 0 => self.dispatch(owner, stream, &buf[..n]),
            Some((_, Err(nix::Error::EAGAIN))) | None => {}
            Some(_) => self.io_mut(owner).outs[i].closed = true,
        }
        self.scratch = buf;
    }

    /// Reads everything an output holds now, then closes it (its process is gone).
    fn drain(&mut self, owner: Owner) {
        let mut buf = std::mem::take(&mut self.scratch);
        let n = self.io_mut(owner).outs.len();
        for i in 0..n {
            // Bounded: a writer that is somehow still alive cannot keep us here.
            for _ in 0..64 {
                let io = self.io_mut(owner);
                let o = &io.outs[i];
                if o.closed {
                    break;
                }
                let stream = o.stream;
                match sys::read(o.fd.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => self.dispatch(owner, stream, &buf[..n]),
                    _ => break,
                }
            }
            self.io_mut(owner).outs[i].closed = true;
        }
        self.scratch = buf;
    }

    fn dispatch(&mut self, owner: Owner, stream: u8, data: &[u8]) {
        match owner {
            Owner::Container => {
                if let Some(log) = &mut self.log {
                    let s = if stream == STREAM_STDERR {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    log.write(s, data, &now_rfc3339());
                }
                for c in 0..self.conns.len() {
                    let wants = match self.conns[c].as_ref().map(|c| c.role) {
                        Some(Role::Attach { stdout, stderr, .. }) => {
                            if stream == STREAM_STDERR {
                                stderr
                            } else {
                                stdout
                            }
                        }
                        _ => false,
                    };
                    if wants {
                        self.push_frame(c, stream, data);
                    }
                }
            }
            Owner::Exec(x) => {
                if let Some(c) = self.execs.get(x).and_then(|e| e.conn) {
                    self.push_frame(c, stream, data);
                }
            }
        }
    }

    /// Deadlines, and the ends of outputs: attach streams closed and Wait answered once the
    /// container's output is all delivered; an exec's final frame once its output is.
    fn progress(&mut self) {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.drain(Owner::Container);
        }
        for x in 0..self.execs.len() {
            if self.execs[x].deadline.is_some_and(|d| now >= d) {
                self.execs[x].deadline = None;
                self.drain(Owner::Exec(x));
            }
        }
        if !self.output_done && self.exit.is_some() && !self.io.open_outputs() {
            self.container_output_done();
        }
        for x in 0..self.execs.len() {
            let e = &self.execs[x];
            if !e.finished && e.exit_code.is_some() && !e.io.open_outputs() {
                self.exec_done(x);
            }
        }
        self.io.outs.retain(|o| !o.closed);
    }

    fn container_output_done(&mut self) {
        self.output_done = true;
        self.deadline = None;
        self.io.outs.clear();
        self.io.stdin = None;
        if let Some(log) = &mut self.log {
            log.finish(&now_rfc3339());
        }
        let state = self.state();
        for c in 0..self.conns.len() {
            match self.conns[c].as_ref().map(|c| c.role) {
                Some(Role::Attach { .. }) => self.close_after_flush(c),
                Some(Role::Wait) => self.finish(
                    c,
                    &Response {
                        ok: true,
                        state: Some(state.clone()),
                        ..Response::default()
                    },
                ),
                _ => {}
            }
        }
    }

    fn exec_done(&mut self, x: usize) {
        let e = &mut self.execs[x];
        e.finished = true;
        e.deadline = None;
        e.io = Io::default();
        let state = e.state();
        if let Some(c) = e.conn.take() {
            let json = serde_json::to_vec(&state).unwrap_or_default();
            self.push_frame(c, STREAM_SYSTEM, &json);
            self.close_after_flush(c);
        }
    }

    // ---- connections ----

    fn accept(&mut self) {
        for _ in 0..64 {
            let Ok((sock, _)) = self.listener.accept() else {
                return;
            };
            if sock.set_nonblocking(true).is_err() {
                continue;
            }
            let conn = Conn {
                sock,
                inbuf: Vec::new(),
                out: Vec::new(),
                sent: 0,
                role: Role::Request,
                read_closed: false,
                closing: false,
            };
            match self.conns.iter().position(Option::is_none) {
                Some(i) => self.conns[i] = Some(conn),
                None => self.conns.push(Some(conn)),
            }
        }
    }

    fn on_conn(&mut self, c: usize, rev: PollFlags) {
        if rev.contains(PollFlags::POLLOUT) {
            self.flush(c);
        }
        let Some(conn) = self.conns.get(c).and_then(Option::as_ref) else {
            return;
        };
        let wants = self.wants_read(conn);
        if wants && rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            self.read_conn(c);
        } else if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            // Gone for good: a detach, never a kill.
            self.drop_conn(c);
        }
    }

    fn read_conn(&mut self, c: usize) {
        let mut buf = std::mem::take(&mut self.scratch);
        let r = match self.conns.get_mut(c).and_then(Option::as_mut) {
            Some(conn) => sys::read(conn.sock.as_fd(), &mut buf),
            None => Ok(0),
        };
        match r {
            Ok(0) => self.on_eof(c),
            Ok(n) => self.on_data(c, &buf[..n]),
            Err(nix::Error::EAGAIN) => {}
            Err(_) => self.drop_conn(c),
        }
        self.scratch = buf;
    }

    fn on_data(&mut self, c: usize, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) else {
            return;
        };
        match conn.role {
            Role::Request => {
                conn.inbuf.extend_from_slice(data);
                if let Some(pos) = conn.inbuf.iter().position(|&b| b == b'\n') {
                    let rest = conn.inbuf.split_off(pos + 1);
                    let mut line = std::mem::take(&mut conn.inbuf);
                    line.pop();
                    if line.len() > MAX_REQUEST {
                        self.invalid(c, "request line longer than 64 KiB");
                    } else {
                        self.on_request(c, &line, rest);
                    }
                } else if conn.inbuf.len() > MAX_REQUEST {
                    self.invalid(c, "request line longer than 64 KiB");
                }
            }
            Role::Attach { stdin: true, .. } => self.io.feed(data),
            Role::Exec(x) => {
                if let Some(e) = self.execs.get_mut(x) {
                    e.io.feed(data);
                }
            }
            _ => {}
        }
    }

    /// The client half-closed: its stdin ended.
    fn on_eof(&mut self, c: usize) {
        let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) else {
            return;
        };
        conn.read_closed = true;
        match conn.role {
            Role::Request if !conn.inbuf.is_empty() => {
                // A last line without its newline is still a request.
                let line = std::mem::take(&mut conn.inbuf);
                self.on_request(c, &line, Vec::new());
            }
            Role::Request => self.drop_conn(c),
            Role::Attach { stdin: true, .. } if self.cfg.stdin_once => self.io.close_stdin(),
            Role::Exec(x) => {
                if let Some(e) = self.execs.get_mut(x) {
                    e.io.close_stdin();
                }
            }
            _ => {}
        }
    }

    fn drop_conn(&mut self, c: usize) {
        let Some(conn) = self.conns.get_mut(c).and_then(Option::take) else {
            return;
        };
        match conn.role {
            Role::Exec(x) => {
                if let Some(e) = self.execs.get_mut(x) {
                    e.conn = None;
                }
            }
            Role::Attach { stdin: true, .. } if self.cfg.stdin_once && !conn.read_closed => {
                self.io.close_stdin();
            }
            _ => {}
        }
        // Whatever the client sent that we did not read: read it so the close is an orderly
        // end-of-file for the client and not a reset.
        let mut buf = [0u8; 512];
        for _ in 0..16 {
            match sys::read(conn.sock.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    fn flush(&mut self, c: usize) {
        let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) else {
            return;
        };
        while conn.pending() > 0 {
            match sys::write(conn.sock.as_fd(), &conn.out[conn.sent..]) {
                Ok(n) => conn.sent += n,
                Err(nix::Error::EAGAIN) => break,
                Err(_) => {
                    self.drop_conn(c);
                    return;
                }
            }
        }
        if conn.pending() == 0 {
            // Give the memory of a burst back.
            conn.out = Vec::new();
            conn.sent = 0;
            if conn.closing {
                self.drop_conn(c);
            }
        } else if conn.sent > CHUNK {
            conn.out.drain(..conn.sent);
            conn.sent = 0;
        }
    }

    fn queue(&mut self, c: usize, bytes: &[&[u8]]) {
        let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) else {
            return;
        };
        for b in bytes {
            conn.out.extend_from_slice(b);
        }
        if conn.pending() > MAX_BACKLOG {
            self.drop_conn(c);
            return;
        }
        self.flush(c);
    }

    fn push_frame(&mut self, c: usize, stream: u8, data: &[u8]) {
        let stream = if self.frame_is_tty(c) && stream == STREAM_STDERR {
            STREAM_STDOUT
        } else {
            stream
        };
        for chunk in data.chunks(MAX_FRAME) {
            self.queue(c, &[&frame_header(stream, chunk.len()), chunk]);
        }
    }

    fn frame_is_tty(&self, c: usize) -> bool {
        match self.conns.get(c).and_then(Option::as_ref).map(|c| c.role) {
            Some(Role::Exec(x)) => self.execs.get(x).is_some_and(|e| e.io.pty),
            _ => self.cfg.tty,
        }
    }

    fn reply(&mut self, c: usize, r: &Response) {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        self.queue(c, &[&line]);
    }

    fn close_after_flush(&mut self, c: usize) {
        if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
            conn.closing = true;
            conn.role = Role::Done;
        }
        self.flush(c);
    }

    /// Answers and closes.
    fn finish(&mut self, c: usize, r: &Response) {
        if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
            conn.role = Role::Done;
        }
        self.reply(c, r);
        self.close_after_flush(c);
    }

    fn invalid(&mut self, c: usize, why: &str) {
        self.finish(c, &Response::error(format!("invalid request: {why}")));
    }

    // ---- requests ----

    fn on_request(&mut self, c: usize, line: &[u8], rest: Vec<u8>) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return self.invalid(c, &e.to_string()),
        };
        // Whatever exited is recorded before anything is reported or acted on.
        self.reap();
        let id = self.cfg.id.clone();
        let result = |r: Result<(), berth_runtime::RuntimeError>| match r {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(e.to_string()),
        };
        match req {
            Request::Start => {
                let r = self.rt.start(&id);
                if r.is_ok() {
                    self.started_at = Some(now_rfc3339());
                }
                self.finish(c, &result(r));
            }
            Request::State => {
                let state = self.state();
                self.finish(
                    c,
                    &Response {
                        ok: true,
                        state: Some(state),
                        ..Response::default()
                    },
                );
            }
            Request::Wait => {
                if self.output_done {
                    let state = self.state();
                    self.finish(
                        c,
                        &Response {
                            ok: true,
                            state: Some(state),
                            ..Response::default()
                        },
                    );
                } else if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
                    conn.role = Role::Wait;
                }
            }
            Request::Kill { signal, all } => {
                let r = match Signal::try_from(signal) {
                    Ok(sig) => result(self.rt.kill(&id, sig, all)),
                    Err(_) => Response::error(format!("invalid signal {signal}")),
                };
                self.finish(c, &r);
            }
            Request::Resize {
                width,
                height,
                exec_id,
            } => {
                let r = self.resize(width, height, exec_id.as_deref());
                self.finish(c, &r);
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let stdin = stdin && self.io.stdin.is_some();
                self.reply(c, &Response::ok());
                if self.output_done {
                    self.close_after_flush(c);
                    return;
                }
                if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
                    conn.role = Role::Attach {
                        stdin,
                        stdout,
                        stderr,
                    };
                }
                if stdin && !rest.is_empty() {
                    self.io.feed(&rest);
                }
            }
            Request::Exec {
                exec_id,
                process,
                stdin,
                detach,
            } => self.exec(c, exec_id, *process, stdin && !detach, detach, &rest),
            Request::ExecState { exec_id } => {
                let r = match self.execs.iter().find(|e| e.id == exec_id) {
                    Some(e) => Response {
                        ok: true,
                        exec: Some(e.state()),
                        ..Response::default()
                    },
                    None => Response::error(format!("no such exec instance: {exec_id}")),
                };
                self.finish(c, &r);
            }
            Request::Update { resources } => {
                let r = result(self.rt.update(&id, &resources));
                self.finish(c, &r);
            }
            Request::Delete { force } => self.delete(c, force),
        }
    }

    fn state(&self) -> ShimState {
        let status = if self.exit.is_some() {
            Status::Stopped
        } else {
            match self.ct.status(self.rt.root()) {
                RtStatus::Created | RtStatus::Creating => Status::Created,
                RtStatus::Running => Status::Running,
                RtStatus::Paused => Status::Paused,
                RtStatus::Stopped => Status::Stopped,
            }
        };
        ShimState {
            status,
            pid: self.ct.pid,
            started_at: self.started_at.clone(),
            exit: self.exit.clone(),
        }
    }

    fn resize(&self, width: u16, height: u16, exec_id: Option<&str>) -> Response {
        let io = match exec_id {
            None => &self.io,
            Some(id) => match self.execs.iter().find(|e| e.id == id) {
                Some(e) => &e.io,
                None => return Response::error(format!("no such exec instance: {id}")),
            },
        };
        let Some(master) = io.pty_master() else {
            return Response::error(match exec_id {
                Some(id) => format!("exec {id} has no terminal"),
                None => format!("container {} has no terminal", self.cfg.id),
            });
        };
        match sys::set_winsize(&master, height, width) {
            Ok(()) => Response::ok(),
            Err(e) => Response::error(format!("resize the terminal: {e}")),
        }
    }

    fn exec(
        &mut self,
        c: usize,
        exec_id: String,
        process: Process,
        stdin: bool,
        detach: bool,
        rest: &[u8],
    ) {
        if self.execs.iter().any(|e| e.id == exec_id) {
            return self.finish(
                c,
                &Response::error(format!("exec instance {exec_id} already exists")),
            );
        }
        let (pid, io) = match self.spawn_exec(process, stdin) {
            Ok(r) => r,
            Err(e) => return self.finish(c, &Response::error(e)),
        };
        let x = self.execs.len();
        self.execs.push(Exec {
            id: exec_id,
            pid,
            exit_code: None,
            io,
            conn: None,
            deadline: None,
            finished: false,
        });
        let state = self.execs[x].state();
        self.reply(
            c,
            &Response {
                ok: true,
                exec: Some(state),
                ..Response::default()
            },
        );
        if detach {
            // Docker discards a detached exec's output; it is still read so it never blocks.
            self.close_after_flush(c);
            return;
        }
        if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
            conn.role = Role::Exec(x);
            self.execs[x].conn = Some(c);
        }
        if stdin && !rest.is_empty() {
            self.execs[x].io.feed(rest);
        }
    }

    fn spawn_exec(&mut self, process: Process, stdin: bool) -> Result<(i32, Io), String> {
        let terminal = process.terminal().unwrap_or(false);
        let mut io = Io::default();
        let mut theirs: Vec<OwnedFd> = Vec::new();
        let mut console = None;
        let stdio = if terminal {
            self.console_seq += 1;
            let path = console_path(&self.cfg.socket, &format!("x{}", self.console_seq));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .map_err(|e| format!("bind console socket {}: {e}", path.display()))?;
            console = Some((l, path));
            None
        } else {
            let r = if stdin {
                let (r, w) = sys::pipe().map_err(sys_err("create stdin pipe"))?;
                io.set_stdin(w).map_err(sys_err("set up stdin pipe"))?;
                r
            } else {
                sys::open_null(OFlag::O_RDONLY).map_err(sys_err("open /dev/null"))?
            };
            let (out_r, out_w) = sys::pipe().map_err(sys_err("create stdout pipe"))?;
            let (err_r, err_w) = sys::pipe().map_err(sys_err("create stderr pipe"))?;
            io.add_output(out_r, STREAM_STDOUT)
                .map_err(sys_err("set up stdout pipe"))?;
            io.add_output(err_r, STREAM_STDERR)
                .map_err(sys_err("set up stderr pipe"))?;
            theirs.extend([r, out_w, err_w]);
            use std::os::fd::AsRawFd;
            Some([
                theirs[0].as_raw_fd(),
                theirs[1].as_raw_fd(),
                theirs[2].as_raw_fd(),
            ])
        };
        let res = self.rt.exec(
            &self.cfg.id,
            &ExecOptions {
                process,
                console_socket: console.as_ref().map(|(_, p)| p.clone()),
                stdio,
                ..ExecOptions::default()
            },
        );
        drop(theirs);
        let pid = match res {
            Ok(pid) => pid,
            Err(e) => {
                if let Some((_, p)) = &console {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e.to_string());
            }
        };
        if let Some((l, path)) = console {
            let master = receive_pty(&l);
            let _ = std::fs::remove_file(&path);
            let set = master
                .map_err(|e| e.to_string())
                .and_then(|m| io.set_pty(m, stdin).map_err(|e| e.to_string()));
            if let Err(e) = set {
                // Reaped by the loop like any child.
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                return Err(format!("receive the exec's pty master: {e}"));
            }
        }
        Ok((pid, io))
    }

    fn delete(&mut self, c: usize, force: bool) {
        let id = self.cfg.id.clone();
        let oom = if self.exit.is_none() {
            Some(self.ct.cgroup().oom_kill_count().is_ok_and(|n| n > 0))
        } else {
            None
        };
        if let Err(e) = self.rt.delete(&id, force) {
            return self.finish(c, &Response::error(e.to_string()));
        }
        if self.exit.is_none() {
            // The runtime waited for the init to die and removed its cgroup: it is a zombie.
            let flags = WaitPidFlag::__WALL;
            match waitpid(Pid::from_raw(self.ct.pid), Some(flags)) {
                Ok(WaitStatus::Exited(_, code)) => self.child_exited(self.ct.pid, code, oom),
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    self.child_exited(self.ct.pid, 128 + sig as i32, oom)
                }
                _ => self.child_exited(self.ct.pid, 128 + libc::SIGKILL, oom),
            }
        }
        self.reap();
        self.drain(Owner::Container);
        for x in 0..self.execs.len() {
            self.drain(Owner::Exec(x));
            if self.execs[x].exit_code.is_none() {
                self.execs[x].exit_code = Some(128 + libc::SIGKILL);
            }
        }
        self.progress();
        // Last words to everyone, without waiting on anyone but the deleting client.
        for other in 0..self.conns.len() {
            if other != c {
                self.flush(other);
            }
        }
        // Gone before the answer, so a client that reads "ok" finds no socket left.
        let _ = std::fs::remove_file(&self.cfg.socket);
        if let Some(mut conn) = self.conns.get_mut(c).and_then(Option::take) {
            let mut line = serde_json::to_vec(&Response::ok()).unwrap_or_default();
            line.push(b'\n');
            let _ = conn.sock.set_nonblocking(false);
            let _ = conn.sock.set_write_timeout(Some(Duration::from_secs(1)));
            let pending = conn.out.split_off(conn.sent);
            let _ = conn.sock.write_all(&pending);
            let _ = conn.sock.write_all(&line);
        }
        std::process::exit(0);
    }
}
