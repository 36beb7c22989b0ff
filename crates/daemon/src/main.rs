//! berthd: parse flags (dockerd's names), open the stores, re-adopt running containers, serve.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_daemon::config::{Config, FileConfig, Host, TlsConfig, Ulimit, DEFAULT_SOCKET};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: a Docker Engine API server"
)]
struct Args {
    /// Daemon socket(s) to connect to: unix:///path or tcp://host:port (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root directory of persistent state.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root directory for execution state files.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Path to use for the daemon PID file.
    #[arg(short = 'p', long, default_value = "/run/berthd.pid")]
    pidfile: PathBuf,
    /// Daemon configuration file (dockerd's daemon.json keys).
    #[arg(long, default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Parent cgroup for all containers.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Logging level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Default ulimits for containers (name=soft[:hard]); never above the daemon's hard limit.
    #[arg(long = "default-ulimit")]
    default_ulimits: Vec<String>,
    /// Registries spoken to over plain HTTP (host:port).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Use TLS (implied by --tlsverify).
    #[arg(long)]
    tls: bool,
    /// Use TLS and verify the remote client's certificate.
    #[arg(long)]
    tlsverify: bool,
    /// Trust certs signed only by this CA.
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file.
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file.
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Allow plain TCP on a loopback address without TLS.
    #[arg(long)]
    insecure_tcp: bool,
    /// Enable debug mode (as --log-level debug).
    #[arg(short = 'D', long)]
    debug: bool,
    /// The default bridge; `none` turns it off (containers without --network get loopback only).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// Manage berth's nftables table (published ports, NAT, isolation).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    iptables: Option<bool>,
    /// The default bridge's address and subnet, e.g. 172.20.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// The part of the default bridge's subnet containers get addresses from.
    #[arg(long)]
    fixed_cidr: Option<String>,
    /// Subnets for networks without --subnet: base=10.10.0.0/16,size=24 (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pools: Vec<String>,
    /// MTU of the default bridge and its containers' interfaces.
    #[arg(long)]
    mtu: Option<u32>,
    /// Give the default bridge an IPv6 subnet (--fixed-cidr-v6).
    #[arg(long)]
    ipv6: bool,
    /// The default bridge's IPv6 subnet, e.g. fd00:1::/64 (with --ipv6).
    #[arg(long)]
    fixed_cidr_v6: Option<String>,
}

fn build_config(a: Args) -> Result<(Config, String)> {
    let file = if a.config_file.exists() {
        FileConfig::load(&a.config_file).map_err(anyhow::Error::msg)?
    } else {
        FileConfig::default()
    };
    let hosts_raw: Vec<String> = if !a.hosts.is_empty() {
        a.hosts
    } else {
        file.hosts
            .clone()
            .unwrap_or_else(|| vec![format!("unix://{DEFAULT_SOCKET}")])
    };
    let hosts = hosts_raw
        .iter()
        .map(|h| Host::parse(h).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let mut ulimits = Vec::new();
    for (name, u) in file.default_ulimits.clone().unwrap_or_default() {
        ulimits.push(Ulimit {
            name: if u.name.is_empty() { name } else { u.name },
            soft: u.soft,
            hard: u.hard,
        });
    }
    for u in &a.default_ulimits {
        let p = Ulimit::parse(u).map_err(anyhow::Error::msg)?;
        ulimits.retain(|x| x.name != p.name);
        ulimits.push(p);
    }
    let tls_on =
        a.tls || a.tlsverify || file.tls.unwrap_or(false) || file.tlsverify.unwrap_or(false);
    let tls = if tls_on || a.tlscert.is_some() {
        let cert = a
            .tlscert
            .or(file.tlscert)
            .context("--tls needs --tlscert")?;
        let key = a.tlskey.or(file.tlskey).context("--tls needs --tlskey")?;
        Some(TlsConfig {
            cert,
            key,
            client_ca: if a.tlsverify || file.tlsverify.unwrap_or(false) {
                Some(
                    a.tlscacert
                        .or(file.tlscacert)
                        .context("--tlsverify needs --tlscacert")?,
                )
            } else {
                None
            },
        })
    } else {
        None
    };
    let mut insecure = file.insecure_registries.clone().unwrap_or_default();
    insecure.extend(a.insecure_registries);
    let level = if a.debug || file.debug.unwrap_or(false) {
        "debug".to_string()
    } else {
        file.log_level.clone().unwrap_or(a.log_level)
    };
    let pools: Vec<(String, u8)> = if a.default_address_pools.is_empty() {
        file.default_address_pools
            .iter()
            .flatten()
            .map(|p| (p.base.clone(), p.size))
            .collect()
    } else {
        a.default_address_pools
            .iter()
            .map(|s| berth_daemon::config::parse_pool_flag(s))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?
    };
    let net = berth_daemon::config::NetConfig::parse(
        a.bip.as_deref().or(file.bip.as_deref()),
        a.fixed_cidr.as_deref().or(file.fixed_cidr.as_deref()),
        &pools,
        a.mtu.or(file.mtu),
    )
    .and_then(|n| {
        n.with_ipv6(
            a.ipv6 || file.ipv6.unwrap_or(false),
            a.fixed_cidr_v6.as_deref().or(file.fixed_cidr_v6.as_deref()),
        )
    })
    .map_err(anyhow::Error::msg)?;
    let cfg = Config {
        hosts,
        data_root: file.data_root.clone().unwrap_or(a.data_root),
        exec_root: file.exec_root.clone().unwrap_or(a.exec_root),
        pidfile: Some(file.pidfile.clone().unwrap_or(a.pidfile)),
        cgroup_parent: a.cgroup_parent.or(file.cgroup_parent.clone()),
        default_ulimits: ulimits,
        insecure_registries: insecure,
        tls,
        insecure_tcp: a.insecure_tcp,
        log_opts: file.log_opts.clone().unwrap_or_default(),
        bridge: a.bridge.or(file.bridge.clone()).is_none_or(|b| b != "none"),
        iptables: a.iptables.or(file.iptables).unwrap_or(true),
        net,
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok((cfg, level))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (cfg, level) = build_config(args)?;
    let filter = match level.as_str() {
        "debug" | "info" | "warn" | "error" => level.clone(),
        "fatal" => "error".into(),
        other => bail!("invalid log level {other:?}: use debug, info, warn, error or fatal"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "berth_daemon={filter},berthd={filter}"
        )))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(run(cfg))
}

async fn run(cfg: Config) -> Result<()> {
    let pidfile = cfg.pidfile.clone();
    if let Some(p) = &pidfile {
        if let Ok(old) = std::fs::read_to_string(p) {
            if let Ok(pid) = old.trim().parse::<i32>() {
                if pid != std::process::id() as i32
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                    && std::fs::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|e| e.to_string_lossy().contains("berthd"))
                {
                    bail!("pid file {} names a running berthd (pid {pid}); is another daemon using it?", p.display());
                }
            }
        }
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("write pid file {}", p.display()))?;
    }
    let d = Arc::new(berth_daemon::state::Daemon::open(cfg).map_err(|e| anyhow::anyhow!("{e}"))?);
    install_init(&d)?;
    berth_daemon::lifecycle::restore(&d)
        .await
        .map_err(|e| anyhow::anyhow!("restore containers: {e}"))?;
    tracing::info!("berthd {} listening", env!("CARGO_PKG_VERSION"));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    };
    let r = berth_daemon::server::serve(d.clone(), shutdown).await;
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    r.map_err(anyhow::Error::msg)
}

/// Writes the static init for `--init` where containers can bind-mount it.
fn install_init(d: &berth_daemon::state::Daemon) -> Result<()> {
    let bytes = berth_shim::INIT_BINARY;
    if bytes.is_empty() {
        return Ok(());
    }
    let dir = d.config.data_root.join("bin");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("berth-init");
    if std::fs::read(&path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    let tmp = dir.join("berth-init.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("install {}", path.display()))?;
    Ok(())
}
