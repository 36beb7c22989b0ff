//! A raw HTTP/1.1 client for the conformance suite: one connection per request, the request
//! target sent byte for byte (no URL normalisation, so `..` and `%2e%2e` reach the server as
//! written), no redirects followed, chunked bodies decoded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Resp {
    pub method: String,
    pub target: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("{}: body is not JSON ({e}): {:?}", self.what(), self.text()))
    }

    /// The spec's error codes in the body (`{"errors":[{"code":..}]}`).
    pub fn error_codes(&self) -> Vec<String> {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn what(&self) -> String {
        format!("{} {} -> {}", self.method, self.target, self.status)
    }
}

/// Sends one request to `host` (`127.0.0.1:port`). Errors are strings so a check can report them.
pub fn request(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Resp, String> {
    request_cut(host, method, target, headers, body, None)
}

/// Like [`request`]; with `cut: Some(n)` the Content-Length still says the whole body but only
/// `n` bytes are sent before the write side is shut: a client that dies mid-upload.
pub fn request_cut(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
    cut: Option<usize>,
) -> Result<Resp, String> {
    let ctx = |e: std::io::Error| format!("{method} {target}: {e}");
    let mut s = TcpStream::connect(host).map_err(ctx)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(ctx)?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len && (!body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(ctx)?;
    // A server may answer (413, 401) before taking the whole body and close: the answer is
    // still there to read, so a failed write is only reported when no answer follows.
    let sent = match cut {
        None => s.write_all(body).and_then(|()| s.flush()),
        Some(n) => s
            .write_all(&body[..n.min(body.len())])
            .and_then(|()| s.shutdown(std::net::Shutdown::Write)),
    };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if let Err(e) = r.read_line(&mut line) {
        return Err(match sent {
            Err(w) => format!("{method} {target}: write: {w}; read: {e}"),
            Ok(()) => ctx(e),
        });
    }
    if line.is_empty() {
        if let Err(w) = sent {
            return Err(ctx(w));
        }
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {target}: bad status line {line:?}"))?;
    let mut hdrs = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).map_err(ctx)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            hdrs.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |n: &str| {
        hdrs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    if method != "HEAD" && status != 204 && status != 304 {
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut sz = String::new();
                r.read_line(&mut sz).map_err(ctx)?;
                let n = usize::from_str_radix(sz.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|e| format!("{method} {target}: bad chunk size {sz:?}: {e}"))?;
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0; n];
                r.read_exact(&mut chunk).map_err(ctx)?;
                out.extend_from_slice(&chunk);
                let mut crlf = [0; 2];
                r.read_exact(&mut crlf).map_err(ctx)?;
            }
        } else if let Some(len) = find("content-length") {
            let len: usize = len
                .parse()
                .map_err(|e| format!("{method} {target}: bad content-length {len:?}: {e}"))?;
            // A body shorter than its Content-Length (some servers' error pages) is kept as read;
            // the checks compare bodies, so a short one fails where it matters.
            (&mut r)
                .take(len as u64)
                .read_to_end(&mut out)
                .map_err(ctx)?;
        } else {
            r.read_to_end(&mut out).map_err(ctx)?;
        }
    }
    Ok(Resp {
        method: method.to_string(),
        target: target.to_string(),
        status,
        headers: hdrs,
        body: out,
    })
}
