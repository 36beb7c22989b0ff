//! A small Engine API client: one HTTP/1.1 connection per request over the daemon's unix socket
//! (or TCP), JSON in and out, JSON-lines streams, and hijacked connections for attach and exec.
//!
//! Written on hyper rather than bollard because the CLI needs exact control of what docker's
//! CLI does on the wire: the hijacked stream's half-close (stdin EOF) and detach, raw or
//! multiplexed output chosen from the container's `Tty`, `X-Registry-Auth` on every pull, and
//! no version round trip on the hot path (bare paths are served at the daemon's newest version).

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::AsyncRead;

/// The socket berthd listens on when nothing else is configured.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

pub type Body = BoxBody<Bytes, std::io::Error>;

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "Cannot connect to the berth daemon at {host}: is berthd running? Start it with: berthd &"
    )]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("invalid daemon host {host:?}: {reason}")]
    BadHost { host: String, reason: &'static str },
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("request {method} {path}: {source}")]
    Http {
        method: String,
        path: String,
        source: hyper::Error,
    },
    #[error("decode the daemon's answer to {path}: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: the daemon did not upgrade the connection (status {status})")]
    NoUpgrade { path: String, status: u16 },
    #[error("build request {path}: {source}")]
    Request {
        path: String,
        source: hyper::http::Error,
    },
}

impl ClientError {
    /// HTTP status of a daemon error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Transport {
    Unix(PathBuf),
    Tcp(String),
}

/// Connection settings for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Transport,
    /// The host as the user gave it, for messages.
    pub host: String,
    /// `/v1.xx` when DOCKER_API_VERSION or BERTH_API_VERSION pins one; empty otherwise.
    prefix: String,
}

/// A duplex byte stream after a 101 upgrade.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

impl Client {
    /// Parses `unix:///path`, `tcp://host:port` or `host:port`.
    pub fn new(host: &str) -> Result<Client, ClientError> {
        let transport = if let Some(p) = host.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(ClientError::BadHost {
                    host: host.into(),
                    reason: "empty socket path",
                });
            }
            Transport::Unix(PathBuf::from(p))
        } else if let Some(a) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                return Err(ClientError::BadHost {
                    host: host.into(),
                    reason: "empty address",
                });
            }
            Transport::Tcp(if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:2375")
            })
        } else if host.starts_with('/') {
            Transport::Unix(PathBuf::from(host))
        } else if host.contains("://") {
            return Err(ClientError::BadHost {
                host: host.into(),
                reason: "unsupported protocol (use unix:// or tcp://)",
            });
        } else {
            Transport::Tcp(host.to_string())
        };
        let prefix = std::env::var("BERTH_API_VERSION")
            .or_else(|_| std::env::var("DOCKER_API_VERSION"))
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| format!("/v{}", v.trim_start_matches('v')))
            .unwrap_or_default();
        Ok(Client {
            transport,
            host: host.to_string(),
            prefix,
        })
    }

    async fn connect(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Body>,
            tokio::task::JoinHandle<()>,
        ),
        ClientError,
    > {
        let err = |source| ClientError::Connect {
            host: self.host.clone(),
            source,
        };
        macro_rules! handshake {
            ($io:expr) => {{
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new($io))
                    .await
                    .map_err(|e| ClientError::Http {
                        method: "CONNECT".into(),
                        path: self.host.clone(),
                        source: e,
                    })?;
                let task = tokio::spawn(async move {
                    let _ = conn.with_upgrades().await;
                });
                (send, task)
            }};
        }
        Ok(match &self.transport {
            Transport::Unix(p) => {
                handshake!(tokio::net::UnixStream::connect(p).await.map_err(err)?)
            }
            Transport::Tcp(a) => {
                handshake!(tokio::net::TcpStream::connect(a).await.map_err(err)?)
            }
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Request<Body>, ClientError> {
        let uri = format!("{}{}", self.prefix, path);
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "docker")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        b.body(body).map_err(|source| ClientError::Request {
            path: path.into(),
            source,
        })
    }

    /// Sends a request; a status of 400 or more becomes [`ClientError::Daemon`] with the
    /// daemon's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        let (mut send, _task) = self.connect().await?;
        let req = self.build(method.clone(), path, headers, body)?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|source| ClientError::Http {
                method: method.to_string(),
                path: path.into(),
                source,
            })?;
        if resp.status().as_u16() >= 400 {
            let status = resp.status().as_u16();
            let bytes = read_body(resp, path).await.unwrap_or_default();
            let message = serde_json::from_slice::<berth_api::ErrorBody>(&bytes)
                .map(|b| b.message)
                .unwrap_or_else(|_| {
                    let t = String::from_utf8_lossy(&bytes).trim().to_string();
                    if t.is_empty() {
                        StatusCode::from_u16(status)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("error")
                            .to_string()
                    } else {
                        t
                    }
                });
            return Err(ClientError::Daemon { status, message });
        }
        Ok(resp)
    }

    pub async fn get(&self, path: &str) -> Result<Response<Incoming>, ClientError> {
        self.send(Method::GET, path, &[], empty()).await
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.get(path).await?;
        decode(resp, path).await
    }

    /// A request with a JSON body (or none), decoding a JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let resp = self.send_json(method, path, body).await?;
        decode(resp, path).await
    }

    /// A request with a JSON body (or none); the answer's body is read and dropped.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, ClientError> {
        let resp = self.send_json(method, path, body).await?;
        read_body(resp, path).await
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response<Incoming>, ClientError> {
        match body {
            Some(v) => {
                let bytes = serde_json::to_vec(v).map_err(|source| ClientError::Decode {
                    path: path.into(),
                    source,
                })?;
                self.send(
                    method,
                    path,
                    &[("Content-Type", "application/json".to_string())],
                    full(bytes),
                )
                .await
            }
            None => self.send(method, path, &[], empty()).await,
        }
    }

    /// Sends a request with `Upgrade: tcp` and returns the raw duplex stream after the 101.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, ClientError> {
        let (mut send, _task) = self.connect().await?;
        let mut headers = vec![
            ("Connection", "Upgrade".to_string()),
            ("Upgrade", "tcp".to_string()),
        ];
        let b = match body {
            Some(v) => {
                headers.push(("Content-Type", "application/json".to_string()));
                full(serde_json::to_vec(v).map_err(|source| ClientError::Decode {
                    path: path.into(),
                    source,
                })?)
            }
            None => empty(),
        };
        let req = self.build(Method::POST, path, &headers, b)?;
        let http_err = |source| ClientError::Http {
            method: "POST".into(),
            path: path.into(),
            source,
        };
        let resp = send.send_request(req).await.map_err(http_err)?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let bytes = read_body(resp, path).await.unwrap_or_default();
            let message = serde_json::from_slice::<berth_api::ErrorBody>(&bytes)
                .map(|b| b.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Daemon { status, message });
        }
        if status != 101 {
            return Err(ClientError::NoUpgrade {
                path: path.into(),
                status,
            });
        }
        let up = hyper::upgrade::on(resp).await.map_err(http_err)?;
        Ok(TokioIo::new(up))
    }
}

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A streaming request body read from `r` (tar uploads).
pub fn reader_body<R: AsyncRead + Send + Sync + 'static>(r: R) -> Body {
    use futures_util::TryStreamExt;
    let s = tokio_util::io::ReaderStream::new(r).map_ok(hyper::body::Frame::data);
    http_body_util::StreamBody::new(s).boxed()
}

pub async fn read_body(resp: Response<Incoming>, path: &str) -> Result<Vec<u8>, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .map_err(|source| ClientError::Http {
            method: "read".into(),
            path: path.into(),
            source,
        })
}

pub async fn decode<T: DeserializeOwned>(
    resp: Response<Incoming>,
    path: &str,
) -> Result<T, ClientError> {
    let bytes = read_body(resp, path).await?;
    serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
        path: path.into(),
        source,
    })
}

/// Reads a response body chunk by chunk.
#[derive(Debug)]
pub struct BodyReader {
    body: Incoming,
    path: String,
}

impl BodyReader {
    pub fn new(resp: Response<Incoming>, path: &str) -> BodyReader {
        BodyReader {
            body: resp.into_body(),
            path: path.to_string(),
        }
    }

    /// The next data chunk, or None at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Http {
                        method: "read".into(),
                        path: self.path.clone(),
                        source,
                    })
                }
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }
}

/// Splits a JSON-lines response into values.
#[derive(Debug)]
pub struct JsonLines {
    reader: BodyReader,
    buf: Vec<u8>,
    done: bool,
}

impl JsonLines {
    pub fn new(resp: Response<Incoming>, path: &str) -> JsonLines {
        JsonLines {
            reader: BodyReader::new(resp, path),
            buf: Vec::new(),
            done: false,
        }
    }

    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ClientError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line).map(Some).map_err(|source| {
                    ClientError::Decode {
                        path: self.reader.path.clone(),
                        source,
                    }
                });
            }
            if self.done {
                let rest = std::mem::take(&mut self.buf);
                let rest = rest.trim_ascii();
                if rest.is_empty() {
                    return Ok(None);
                }
                return serde_json::from_slice(rest).map(Some).map_err(|source| {
                    ClientError::Decode {
                        path: self.reader.path.clone(),
                        source,
                    }
                });
            }
            match self.reader.chunk().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None => self.done = true,
            }
        }
    }
}

/// Query string builder that percent-encodes values.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Query {
        Query::default()
    }
    pub fn add(mut self, k: &str, v: impl ToString) -> Query {
        self.0.push((k.to_string(), v.to_string()));
        self
    }
    pub fn flag(self, k: &str, on: bool) -> Query {
        if on {
            self.add(k, "1")
        } else {
            self
        }
    }
    pub fn opt(self, k: &str, v: Option<impl ToString>) -> Query {
        match v {
            Some(v) => self.add(k, v),
            None => self,
        }
    }
    /// `path?k=v&...`, or `path` when empty.
    pub fn path(&self, path: &str) -> String {
        if self.0.is_empty() {
            return path.to_string();
        }
        let q: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        format!("{path}?{}", q.join("&"))
    }
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment that may contain `/` (image names): only the other reserved bytes are encoded.
pub fn enc_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':' | b'@')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(matches!(
            Client::new("unix:///run/x.sock").map(|c| c.transport),
            Ok(Transport::Unix(_))
        ));
        assert!(matches!(
            Client::new("tcp://127.0.0.1").map(|c| c.transport),
            Ok(Transport::Tcp(a)) if a == "127.0.0.1:2375"
        ));
        assert!(Client::new("ssh://x").is_err());
        assert!(Client::new("unix://").is_err());
    }

    #[test]
    fn query_encoding() {
        let q = Query::new().add("filters", "{\"a\":1}").flag("all", true);
        assert_eq!(
            q.path("/containers/json"),
            "/containers/json?filters=%7B%22a%22%3A1%7D&all=1"
        );
        assert_eq!(enc_name("localhost:5000/a b"), "localhost:5000/a%20b");
    }
}
