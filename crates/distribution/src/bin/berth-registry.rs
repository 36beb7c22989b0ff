//! berth-registry: serve an OCI distribution registry, or collect its garbage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_distribution::server::config::{FileConfig, Overrides};
use berth_distribution::server::{self, Config, Registry};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth-registry", version, about = "OCI distribution registry")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the registry.
    Serve(ServeArgs),
    /// Delete blobs no manifest of any repository reaches (through a running server when one
    /// serves this root).
    Gc(GcArgs),
}

#[derive(Debug, clap::Args)]
struct GcArgs {
    /// Config file (TOML), for its root and gc_grace_secs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Storage root (default /var/lib/berth-registry).
    #[arg(long)]
    root: Option<PathBuf>,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs written or linked within this many seconds (default 3600).
    #[arg(long)]
    grace: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Config file (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address, HOST:PORT (default 127.0.0.1:5000).
    #[arg(long)]
    addr: Option<String>,
    /// Storage root (default /var/lib/berth-registry).
    #[arg(long)]
    root: Option<PathBuf>,
    /// htpasswd file (bcrypt entries): turns on authentication.
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Bearer tokens from the built-in /token endpoint instead of basic auth per request.
    #[arg(long)]
    token_auth: bool,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Refuse every write (405 UNSUPPORTED).
    #[arg(long)]
    read_only: bool,
    /// Remove uploads untouched for this many seconds (default 3600).
    #[arg(long)]
    upload_max_age: Option<u64>,
    /// Look for abandoned uploads every this many seconds (default 300).
    #[arg(long)]
    upload_purge_interval: Option<u64>,
}

fn load_config(path: Option<&PathBuf>, o: Overrides) -> anyhow::Result<Config> {
    let file = match path {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    Ok(Config::build(file, o)?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(a) => {
            let o = Overrides {
                addr: a.addr,
                root: a.root,
                htpasswd: a.htpasswd,
                token: a.token_auth,
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                read_only: a.read_only,
                upload_max_age_secs: a.upload_max_age,
                upload_purge_interval_secs: a.upload_purge_interval,
            };
            let config = load_config(a.config.as_ref(), o)?;
            let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
            rt.block_on(serve(config))
        }
        Cmd::Gc(a) => {
            let o = Overrides {
                root: a.root,
                ..Overrides::default()
            };
            let config = load_config(a.config.as_ref(), o)?;
            let grace = a.grace.map_or(config.gc_grace, Duration::from_secs);
            let report = gc(config, grace, a.dry_run)?;
            println!("{report}");
            Ok(())
        }
    }
}

/// Collects through the admin socket of a server on this root, or in this process.
fn gc(config: Config, grace: Duration, dry_run: bool) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let sock = server::admin_socket(&config.root);
    if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
        let req = format!(
            "POST /gc?dry_run={dry_run}&grace={} HTTP/1.0\r\nHost: admin\r\nContent-Length: 0\r\n\r\n",
            grace.as_secs()
        );
        s.write_all(req.as_bytes())
            .with_context(|| format!("ask the server on {} to collect", sock.display()))?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .with_context(|| format!("read the answer on {}", sock.display()))?;
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp.as_str(), ""));
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            anyhow::bail!("garbage collection by the running server failed: {body}");
        }
        return Ok(body.to_string());
    }
    let root = config.root.clone();
    let storage = server::Storage::open(&root)
        .with_context(|| format!("open registry storage {}", root.display()))?;
    let report = server::gc::collect(&storage, grace, dry_run)
        .with_context(|| format!("collect garbage in {}", root.display()))?;
    Ok(serde_json::to_string(&report)?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let tls = match &config.tls {
        Some(t) => Some(server::tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let addr = config.addr;
    let root = config.root.clone();
    let reg = Registry::open(config)
        .with_context(|| format!("open registry storage {}", root.display()))?;
    let reg = Arc::new(reg);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen on {addr}"))?;
    let local = listener.local_addr().context("listener address")?;
    eprintln!(
        "{}",
        serde_json::json!({"msg": "listening", "addr": local.to_string(), "root": root.display().to_string(), "tls": tls.is_some()})
    );
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!(
            "{}",
            serde_json::json!({"msg": "shutting down: finishing requests in flight"})
        );
    };
    server::serve(reg, listener, tls, shutdown, Duration::from_secs(300)).await;
    Ok(())
}
