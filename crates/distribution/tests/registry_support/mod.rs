//! Test harness: Debian's docker-registry on a free loopback port with its own config and
//! storage, killed in Drop; a tiny HTTP server for mocks and for the token server.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, reason = "test harness: a failure should be loud")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn have_registry() -> bool {
    Path::new(REGISTRY_BIN).exists()
}

/// Fails the test, saying what to install, when docker-registry is missing: a test that cannot
/// run must not pass.
pub fn require_registry() {
    assert!(
        have_registry(),
        "{REGISTRY_BIN} is missing: apt-get install docker-registry"
    );
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub enum Auth {
    None,
    Htpasswd {
        user: String,
        password: String,
    },
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

pub struct Registry {
    child: Child,
    pub port: u16,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    f.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        // The port can be taken between probe and bind by a parallel test: retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let cfg = dir.path().join("config.yml");
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth_yaml}",
                    storage.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                return Registry {
                    child,
                    port,
                    host: format!("127.0.0.1:{port}"),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start: {log}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self, key: &str) -> Vec<String> {
        let q = self.target.split_once('?').map(|x| x.1).unwrap_or("");
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A one-connection-per-request HTTP/1.1 server on a loopback port; the handler writes the raw
/// response (so tests can send truncated bodies and bad headers). Stops on drop.
pub struct MockServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    pub fn start<F>(handler: F) -> MockServer
    where
        F: Fn(&Request, &mut TcpStream) + Send + Sync + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let h = handler.clone();
                        std::thread::spawn(move || serve_conn(s, &*h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        MockServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_conn<F: Fn(&Request, &mut TcpStream)>(mut s: TcpStream, handler: &F) {
    s.set_nonblocking(false).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    // One request per connection: every response says Connection: close.
    {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            target,
            headers,
            body,
        };
        handler(&req, &mut s);
        let _ = s.flush();
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// Writes a complete response with Connection: close.
pub fn respond(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    let _ = s.write_all(body);
}

/// Deterministic pseudo-random bytes (incompressible enough for tests).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24).to_le_bytes()[0]
        })
        .collect()
}

/// A token server of the test's own for docker-registry's `auth: token`: RS256 JWTs signed with
/// `openssl` by a throwaway self-signed certificate the registry trusts (`rootcertbundle`), the
/// certificate carried in the JWT's `x5c` header. Users in `users` get what they ask for;
/// anonymous callers get pull only on repositories under `public/`; nobody gets anything under
/// `denied/`; wrong passwords get 401.
pub struct TokenServer {
    pub server: MockServer,
    pub cert: PathBuf,
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> TokenServer {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl req failed");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success());
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let service = "berth-test-registry".to_string();
        let issuer = "berth-test-issuer".to_string();
        let want_auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (svc, iss, key2, req_count) = (
            service.clone(),
            issuer.clone(),
            key.clone(),
            requests.clone(),
        );
        let server = MockServer::start(move |req, s| {
            req_count.fetch_add(1, Ordering::SeqCst);
            let authed = match req.header("authorization") {
                None => false,
                Some(a) if a == want_auth => true,
                Some(_) => {
                    respond(
                        s,
                        "401 Unauthorized",
                        &[],
                        br#"{"details":"incorrect username or password"}"#,
                    );
                    return;
                }
            };
            let mut access = Vec::new();
            for scope in req.query("scope") {
                for one in scope.split(' ') {
                    let parts: Vec<&str> = one.split(':').collect();
                    if parts.len() != 3 {
                        continue;
                    }
                    let actions: Vec<&str> = parts[2]
                        .split(',')
                        .filter(|a| {
                            (authed && !parts[1].starts_with("denied/"))
                                || (*a == "pull" && parts[1].starts_with("public/"))
                        })
                        .collect();
                    access.push(
                        serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                    );
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": iss, "sub": if authed { "user" } else { "" }, "aud": svc,
                "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                "jti": format!("{now}-{}", req_count.load(Ordering::SeqCst)), "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let mut child = Command::new("openssl")
                .args(["dgst", "-sha256", "-binary", "-sign"])
                .arg(&key2)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(signing_input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let jwt = format!("{signing_input}.{}", b64(&out.stdout));
            // Alternate the field names to exercise both.
            let body = if req_count.load(Ordering::SeqCst) % 2 == 0 {
                serde_json::json!({"token": jwt, "expires_in": 300})
            } else {
                serde_json::json!({"access_token": jwt, "expires_in": 300})
            };
            respond(
                s,
                "200 OK",
                &[("Content-Type", "application/json".to_string())],
                body.to_string().as_bytes(),
            );
        });
        let realm = format!("http://127.0.0.1:{}/token", server.port);
        TokenServer {
            server,
            cert,
            realm,
            service,
            issuer,
            requests,
            _dir: dir,
        }
    }
}
