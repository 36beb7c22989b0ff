//! berth-registry started for a test: a free loopback port, a temp root, its own htpasswd and
//! config; killed (by its pid) on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$BERTH_REGISTRY_BIN` (to test another build, e.g. a release one), else the binary Cargo
/// built next to this test.
pub fn berth_registry_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_REGISTRY_BIN") {
        return PathBuf::from(p);
    }
    let bin = option_env!("CARGO_BIN_EXE_berth-registry").unwrap_or_else(|| {
        panic!("berth-registry is not a binary of this package: build crates/distribution with its server")
    });
    PathBuf::from(bin)
}

#[derive(Debug, Default, Clone)]
pub struct BerthOptions {
    /// htpasswd users (bcrypt, written with `htpasswd -B`); empty: no auth.
    pub users: Vec<(String, String)>,
    /// Bearer tokens from the built-in /token endpoint instead of basic auth.
    pub token: bool,
    /// Access rules: (user or `*`, repository glob, actions).
    pub access: Vec<(String, String, Vec<String>)>,
    pub extra_args: Vec<String>,
}

#[derive(Debug)]
pub struct BerthRegistry {
    child: Child,
    pub host: String,
    pub port: u16,
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn write_htpasswd(dir: &Path, users: &[(String, String)]) -> PathBuf {
    let mut text = Vec::new();
    for (u, p) in users {
        let out = berth_testutil::harness::run_with_timeout(
            {
                let mut c = Command::new("htpasswd");
                c.args(["-Bbn", u, p]);
                c
            },
            Duration::from_secs(30),
            None,
        );
        assert!(
            out.status.success(),
            "htpasswd failed (apt-get install apache2-utils): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.extend_from_slice(String::from_utf8_lossy(&out.stdout).trim_end().as_bytes());
        text.push(b'\n');
    }
    let f = dir.join("htpasswd");
    std::fs::write(&f, text).unwrap();
    f
}

impl BerthRegistry {
    pub fn start(opts: BerthOptions) -> BerthRegistry {
        let bin = berth_registry_bin();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut cfg = String::new();
        if !opts.users.is_empty() {
            let h = write_htpasswd(dir.path(), &opts.users);
            cfg.push_str(&format!(
                "[auth]\nhtpasswd = {:?}\ntoken = {}\n",
                h.display().to_string(),
                opts.token
            ));
        }
        for (user, repo, actions) in &opts.access {
            cfg.push_str(&format!(
                "[[access]]\nuser = {user:?}\nrepository = {repo:?}\nactions = {actions:?}\n"
            ));
        }
        let cfg_path = dir.path().join("config.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg("--config")
                .arg(&cfg_path)
                .arg("--addr")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--root")
                .arg(&root)
                .args(&opts.extra_args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
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
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return BerthRegistry {
                    child,
                    host: format!("127.0.0.1:{port}"),
                    port,
                    root,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("berth-registry did not start: {log}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for BerthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
