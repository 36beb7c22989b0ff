//! Hijacked streams: `attach` and `exec start`. The shim sends frames; berthd passes them on
//! (raw payloads for a TTY), feeds the client's bytes to stdin, and watches for the detach
//! keys in them, as dockerd does.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::response::Response;
use berth_api::version::ApiVersion;
use berth_shim::protocol::{parse_frame_header, Request, STREAM_SYSTEM};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::container::Status;
use crate::error::{ApiError, ApiResult};
use crate::server::{hijack, Params, Upgraded};
use crate::state::{Container, Daemon, PendingAttach};

/// Parses `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) into bytes.
pub fn parse_detach_keys(s: &str) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                x if x.len() == 1 && x.as_bytes()[0].is_ascii_lowercase() => {
                    x.as_bytes()[0] - b'a' + 1
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Invalid escape keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ApiError::invalid(format!(
                "Invalid escape keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

/// Copies between a hijacked client and a shim stream until the output ends, the client
/// detaches, or the client goes away. `on_system` receives stream-3 payloads (exec exit).
pub async fn pump<F>(
    client: Upgraded,
    shim: UnixStream,
    tty: bool,
    stdin: bool,
    detach: Option<Vec<u8>>,
    mut on_system: F,
) where
    F: FnMut(Vec<u8>) + Send,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let input = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let keys = detach.unwrap_or_default();
        let mut matched = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = sw.shutdown().await;
                    // Client half-closed: keep the output flowing.
                    return false;
                }
                Ok(n) => n,
            };
            if !stdin {
                continue;
            }
            let mut out = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if !keys.is_empty() && b == keys[matched] {
                    matched += 1;
                    if matched == keys.len() {
                        let _ = sw.write_all(&out).await;
                        return true;
                    }
                    continue;
                }
                if matched > 0 {
                    out.extend_from_slice(&keys[..matched]);
                    matched = 0;
                }
                out.push(b);
            }
            if sw.write_all(&out).await.is_err() {
                return false;
            }
        }
    };
    let output = async {
        let mut hdr = [0u8; 8];
        let mut payload = Vec::new();
        loop {
            if sr.read_exact(&mut hdr).await.is_err() {
                break;
            }
            let (stream, len) = parse_frame_header(&hdr);
            payload.resize(len, 0);
            if sr.read_exact(&mut payload).await.is_err() {
                break;
            }
            if stream == STREAM_SYSTEM {
                on_system(std::mem::take(&mut payload));
                continue;
            }
            let r = if tty {
                cw.write_all(&payload).await
            } else {
                write_frame(&mut cw, &hdr, &payload).await
            };
            if r.is_err() {
                break;
            }
        }
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
    };
    tokio::pin!(input);
    tokio::pin!(output);
    let mut input_done = false;
    loop {
        tokio::select! {
            _ = &mut output => return,
            detached = &mut input, if !input_done => {
                if detached {
                    return;
                }
                input_done = true;
            }
        }
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    hdr: &[u8; 8],
    p: &[u8],
) -> std::io::Result<()> {
    let mut v = Vec::with_capacity(8 + p.len());
    v.extend_from_slice(hdr);
    v.extend_from_slice(p);
    w.write_all(&v).await
}

/// `POST /containers/{id}/attach`.
pub async fn attach(
    d: Arc<Daemon>,
    c: Arc<Container>,
    q: &Params,
    v: ApiVersion,
    parts: &mut Parts,
) -> ApiResult<Response> {
    let rec = c.snapshot();
    let tty = rec.tty();
    let stdin = q.bool("stdin");
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    let logs = q.bool("logs");
    let stream = q.bool("stream");
    let keys = match q.get("detachKeys").filter(|s| !s.is_empty()) {
        Some(k) => Some(parse_detach_keys(k)?),
        None if stdin => Some(vec![16, 17]),
        None => None,
    };
    let st = rec.state.status;
    // Created and exited containers are attachable, as with dockerd: the stream waits for the
    // next start (`docker start -a` attaches before it starts). "You cannot attach to a
    // stopped container" is the CLI's own check for `docker attach`.
    match st {
        Status::Paused if stream => {
            return Err(ApiError::conflict(
                "You cannot attach to a paused container, unpause it first",
            ))
        }
        Status::Restarting if stream => {
            return Err(ApiError::conflict(
                "You cannot attach to a restarting container, wait until it is running",
            ))
        }
        Status::Removing | Status::Dead if stream && !logs => {
            return Err(ApiError::conflict(format!(
                "container {} is marked for removal and cannot be attached to",
                c.id
            )))
        }
        _ => {}
    }
    let ct = if !tty && v.at_least(1, 42) {
        berth_api::stream::MULTIPLEXED_STREAM
    } else {
        berth_api::stream::RAW_STREAM
    };
    let open_stdin = rec.config.open_stdin.unwrap_or(false);
    let socket = d.shim_socket(&c.id);
    Ok(hijack(parts, ct, move |client| async move {
        let mut client = client;
        if logs {
            let past = crate::logs::read_all(&rec.log_path, stdout, stderr);
            for (s, line, _) in past {
                let r = if tty {
                    client.write_all(&line).await
                } else {
                    client.write_all(&berth_api::stream::frame(s, &line)).await
                };
                if r.is_err() {
                    return;
                }
            }
        }
        if !stream {
            let _ = client.shutdown().await;
            return;
        }
        let req = Request::Attach {
            stdin: stdin && open_stdin,
            stdout,
            stderr,
        };
        let shim = if c.status().is_running() {
            crate::shim::open_stream(&socket, &req)
                .await
                .ok()
                .map(|(s, _)| s)
        } else if matches!(
            c.status(),
            Status::Created | Status::Restarting | Status::Exited
        ) {
            // Wait for start to hand over a stream connected before the process runs.
            let (tx, rx) = tokio::sync::oneshot::channel();
            if let Ok(mut p) = c.pending_attach.lock() {
                p.push(PendingAttach {
                    stdin: stdin && open_stdin,
                    stdout,
                    stderr,
                    tx,
                });
            }
            rx.await.ok()
        } else {
            None
        };
        match shim {
            Some(s) => pump(client, s, tty, stdin, keys, |_| {}).await,
            None => {
                let _ = client.shutdown().await;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
