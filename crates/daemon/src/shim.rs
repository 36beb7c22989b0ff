//! Talking to a container's berth-shim: spawning it, one-line requests, and streams.

use std::path::{Path, PathBuf};

use berth_shim::protocol::{Ready, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{ApiError, ApiResult};

/// The berth-shim binary: `BERTH_SHIM`, else next to berthd.
pub fn shim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-shim")))
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

#[derive(Debug, Clone)]
pub struct SpawnArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub socket: PathBuf,
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_file: u32,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
}

/// Starts a shim, which creates the container (not yet started) and stays in the background.
pub async fn spawn(a: &SpawnArgs) -> ApiResult<Ready> {
    let mut cmd = tokio::process::Command::new(shim_binary());
    cmd.arg("--id")
        .arg(&a.id)
        .arg("--bundle")
        .arg(&a.bundle)
        .arg("--runtime-root")
        .arg(&a.runtime_root)
        .arg("--socket")
        .arg(&a.socket);
    if let Some(l) = &a.log_path {
        cmd.arg("--log-path").arg(l);
        if a.log_max_size > 0 {
            cmd.arg("--log-max-size").arg(a.log_max_size.to_string());
        }
        cmd.arg("--log-max-file").arg(a.log_max_file.to_string());
    }
    if a.tty {
        cmd.arg("--tty");
    }
    if a.stdin {
        cmd.arg("--stdin");
    }
    if a.stdin_once {
        cmd.arg("--stdin-once");
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = cmd
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("run {}: {e}", shim_binary().display())))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let ready: Ready = serde_json::from_str(line.trim()).map_err(|e| {
        ApiError::internal(format!(
            "berth-shim for {} said {:?} (stderr {:?}): {e}",
            a.id,
            line.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    if !ready.ok {
        return Err(start_error(ready.error.unwrap_or_default()));
    }
    Ok(ready)
}

/// A runtime error as Docker classifies it: a missing or non-executable program is the
/// caller's mistake (400, and `docker run` exits 127/126); the rest is internal.
pub fn start_error(msg: String) -> ApiError {
    let lower = msg.to_ascii_lowercase();
    let user = lower.contains("no such file")
        || lower.contains("not found")
        || lower.contains("permission denied")
        || lower.contains("not a directory")
        || lower.contains("is a directory");
    let m = format!("failed to create task for container: {msg}");
    if user {
        ApiError::invalid(m)
    } else {
        ApiError::internal(m)
    }
}

/// Reads one `\n`-ended line without reading past it (what follows may be stream frames).
async fn read_line(s: &mut UnixStream) -> std::io::Result<String> {
    let mut out = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    loop {
        let n = s.read(&mut b).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "shim closed the connection",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
        if out.len() > 1 << 20 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "shim reply too long",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn exchange(sock: &Path, req: &Request) -> ApiResult<(UnixStream, Response)> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(|e| ApiError::internal(format!("connect to shim {}: {e}", sock.display())))?;
    let mut line = serde_json::to_vec(req)
        .map_err(|e| ApiError::internal(format!("encode shim request: {e}")))?;
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|e| ApiError::internal(format!("write to shim {}: {e}", sock.display())))?;
    let reply = read_line(&mut s)
        .await
        .map_err(|e| ApiError::internal(format!("read from shim {}: {e}", sock.display())))?;
    let r: Response = serde_json::from_str(&reply)
        .map_err(|e| ApiError::internal(format!("shim reply {reply:?}: {e}")))?;
    Ok((s, r))
}

fn check(r: Response) -> ApiResult<Response> {
    if r.ok {
        Ok(r)
    } else {
        Err(ApiError::internal(
            r.error.unwrap_or_else(|| "shim refused".into()),
        ))
    }
}

/// One request, one answer.
pub async fn request(sock: &Path, req: &Request) -> ApiResult<Response> {
    let (_s, r) = exchange(sock, req).await?;
    check(r)
}

/// A request whose answer is followed by a stream (attach, exec).
pub async fn open_stream(sock: &Path, req: &Request) -> ApiResult<(UnixStream, Response)> {
    let (s, r) = exchange(sock, req).await?;
    Ok((s, check(r)?))
}
