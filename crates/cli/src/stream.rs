//! The attached side of `run`, `start -a`, `attach` and `exec`: the hijacked connection's
//! output to stdout/stderr (demultiplexed without a TTY), stdin to the connection (half-closed
//! at EOF, as docker's CLI does), raw mode for `-t`, resize on SIGWINCH, detach keys and signal
//! proxying.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use berth_api::stream::Demuxer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{Client, Hijacked, Query};

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The output stream ended (the process exited or closed its output).
    Eof,
    /// The user typed the detach keys.
    Detached,
}

/// Raw mode on stdin while it lives; the saved settings come back on drop.
#[derive(Debug)]
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    /// Raw mode when stdin is a terminal; a no-op otherwise.
    pub fn enable() -> RawMode {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let fd = stdin.as_fd();
        let Ok(saved) = termios::tcgetattr(fd) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output processing so our own messages still start at column 0.
        raw.output_flags |= termios::OutputFlags::OPOST | termios::OutputFlags::ONLCR;
        if termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                s,
            );
        }
    }
}

/// The terminal's size (rows, columns), from stdout or stdin.
pub fn term_size() -> Option<(u16, u16)> {
    nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct we own; fd is one of the standard
        // descriptors, and a non-terminal just makes the ioctl fail.
        if unsafe { tiocgwinsz(fd, &mut ws) }.is_ok() && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Resizes the container's (or exec's) TTY now and on every SIGWINCH.
pub fn spawn_resizer(client: Client, resize_path: String) {
    tokio::spawn(async move {
        let resize = |c: &Client, p: &str| {
            let c = c.clone();
            let p = p.to_string();
            async move {
                if let Some((h, w)) = term_size() {
                    let path = Query::new().add("h", h).add("w", w).path(&p);
                    let _ = c.call(hyper::Method::POST, &path, None).await;
                }
            }
        };
        resize(&client, &resize_path).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(&client, &resize_path).await;
        }
    });
}

/// Forwards the signals a user sends the CLI to the container (`--sig-proxy`).
pub fn spawn_sig_proxy(client: Client, container: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let sigs = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    for (kind, name) in sigs {
        let Ok(mut s) = signal(kind) else { continue };
        let client = client.clone();
        let path = Query::new().add("signal", name).path(&format!(
            "/containers/{}/kill",
            crate::client::enc(&container)
        ));
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = client.call(hyper::Method::POST, &path, None).await;
            }
        });
    }
}

/// Copies the session both ways until the output ends or the user detaches.
pub async fn pump(conn: Hijacked, tty: bool, stdin: bool, detach_keys: Vec<u8>) -> End {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (det_tx, mut det_rx) = tokio::sync::oneshot::channel::<()>();
    // Set before the detach keys are sent: berthd closes the stream as soon as it reads them, so
    // the end of the output can be seen before `det_rx` fires, and must not be taken for the
    // container's end (the CLI would then wait for an exit that never comes).
    let saw_keys = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw_keys_in = saw_keys.clone();
    let input = tokio::spawn(async move {
        if stdin {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
            // Blocking reads of stdin on their own thread: the process exits without joining it.
            std::thread::spawn(move || {
                let mut s = std::io::stdin();
                let mut buf = [0u8; 8192];
                loop {
                    match s.read(&mut buf) {
                        // A signal (SIGWINCH on a resize) landing on this thread is no EOF.
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let mut matched = 0usize;
            let mut det_tx = Some(det_tx);
            while let Some(chunk) = rx.recv().await {
                // The daemon acts on the detach keys; we only notice them to end quietly.
                let mut seen = false;
                if !detach_keys.is_empty() {
                    for b in &chunk {
                        if *b == detach_keys[matched] {
                            matched += 1;
                            if matched == detach_keys.len() {
                                seen = true;
                                matched = 0;
                            }
                        } else {
                            matched = usize::from(*b == detach_keys[0]);
                        }
                    }
                }
                if seen {
                    saw_keys_in.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
                let _ = wr.flush().await;
                if seen {
                    if let Some(t) = det_tx.take() {
                        let _ = t.send(());
                    }
                    // Keep the connection open: the daemon closes it once it has detached.
                    std::future::pending::<()>().await;
                }
            }
        }
        // stdin's EOF (or none attached): half-close so the container's stdin sees EOF.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await;
    });
    let output = async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut demux = Demuxer::default();
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tty {
                let mut o = stdout.lock();
                let _ = o.write_all(&buf[..n]);
                let _ = o.flush();
                continue;
            }
            demux.push(&buf[..n]);
            while let Ok(Some((stream, data))) = demux.next_frame() {
                if stream == berth_api::stream::STDERR {
                    let mut e = stderr.lock();
                    let _ = e.write_all(&data);
                    let _ = e.flush();
                } else {
                    let mut o = stdout.lock();
                    let _ = o.write_all(&data);
                    let _ = o.flush();
                }
            }
        }
    };
    let end = tokio::select! {
        _ = output => End::Eof,
        Ok(()) = &mut det_rx => End::Detached,
    };
    input.abort();
    if end == End::Eof && saw_keys.load(std::sync::atomic::Ordering::SeqCst) {
        return End::Detached;
    }
    end
}
