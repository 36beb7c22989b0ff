//! berthd on TCP: TLS with client certificates (`--tlsverify`) as dockerd, the docker CLI
//! connecting with and without a certificate, and plain TCP refused unless asked for on
//! loopback. Needs root-free tools only: openssl and the docker CLI.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DOCKER: &str = "/usr/local/bin/docker";

fn need(tool: &str, hint: &str) {
    assert!(
        Path::new(tool).exists()
            || Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
        "{tool} is missing: {hint}"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run command")
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = run(Command::new("openssl").current_dir(dir).args(args));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker` expects them.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-ca",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "client")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn berthd(root: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berthd"));
    c.arg("--data-root")
        .arg(root.join("d"))
        // No bridge or nftables table in the host namespace from a test daemon.
        .args(["--bridge=none", "--iptables=false"])
        .arg("--exec-root")
        .arg(root.join("x"))
        .arg("--pidfile")
        .arg(root.join("pid"))
        .arg("-H")
        .arg(format!("unix://{}", root.join("s.sock").display()))
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    c
}

#[test]
fn tls_with_client_certificates() {
    need("openssl", "apt-get install openssl");
    need(DOCKER, "install the docker CLI at /usr/local/bin/docker");
    let t = tempfile::Builder::new()
        .prefix("bdtls")
        .tempdir_in("/tmp")
        .unwrap();
    let certs = t.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let c = |f: &str| certs.join(f).to_string_lossy().into_owned();
    let _d = Daemon(
        berthd(
            t.path(),
            &[
                "-H",
                &host,
                "--tlsverify",
                "--tlscacert",
                &c("ca.pem"),
                "--tlscert",
                &c("server.pem"),
                "--tlskey",
                &c("server-key.pem"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let docker = |args: &[&str]| {
        let mut cmd = Command::new(DOCKER);
        cmd.env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", t.path())
            .args(["-H", &host])
            .args(args);
        run(&mut cmd)
    };
    let with_cert = [
        "--tlsverify",
        "--tlscacert",
        &c("ca.pem"),
        "--tlscert",
        &c("client.pem"),
        "--tlskey",
        &c("client-key.pem"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let mut a: Vec<&str> = with_cert.to_vec();
        a.extend(["version", "--format", "{{.Server.Version}}"]);
        let o = docker(&a);
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        out.status.success(),
        "docker over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );

    // Without a client certificate the handshake is refused.
    let o = docker(&["--tlsverify", "--tlscacert", &c("ca.pem"), "version"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("certificate required"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Plain HTTP on the TLS port gets nothing useful.
    let o = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!o.status.success() || String::from_utf8_lossy(&o.stdout).trim().is_empty());
}

#[test]
fn plain_tcp_is_refused_unless_loopback_and_asked_for() {
    let t = tempfile::Builder::new()
        .prefix("bdtcp")
        .tempdir_in("/tmp")
        .unwrap();
    let port = free_port();
    let o = run(&mut berthd(
        t.path(),
        &["-H", &format!("tcp://127.0.0.1:{port}")],
    ));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without TLS"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&mut berthd(
        t.path(),
        &["--insecure-tcp", "-H", "tcp://0.0.0.0:1"],
    ));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&mut berthd(
        t.path(),
        &[
            "--tlscert",
            "/nonexistent.pem",
            "--tlskey",
            "/nonexistent-key.pem",
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
        ],
    ));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent.pem"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
