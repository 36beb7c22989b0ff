//! `berth-shim`: parses its command line, starts the background shim and prints its one
//! readiness line (see [`berth_shim::launch`]).

use std::path::PathBuf;

use anyhow::Context;
use berth_shim::logfile::LogConfig;
use berth_shim::protocol::Ready;
use berth_shim::Config;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berth-shim",
    version,
    about = "Per-container monitor: creates the container, serves attach/exec/wait on a unix \
             socket, writes its json-file log"
)]
struct Args {
    /// Container id.
    #[arg(long)]
    id: String,
    /// OCI bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// The runtime's state root (`--root` of berth-runtime).
    #[arg(long)]
    runtime_root: PathBuf,
    /// Unix socket to serve the protocol on (created with mode 0600).
    #[arg(long)]
    socket: PathBuf,
    /// json-file log to write the container's output to.
    #[arg(long)]
    log_path: Option<PathBuf>,
    /// Rotate the log before it grows past this many bytes (0: never).
    #[arg(long, default_value_t = 0)]
    log_max_size: u64,
    /// Log files kept in all, the live one included.
    #[arg(long, default_value_t = 1)]
    log_max_file: u32,
    /// The container's process has a terminal (process.terminal in config.json).
    #[arg(long)]
    tty: bool,
    /// Keep the container's stdin open for attach clients.
    #[arg(long)]
    stdin: bool,
    /// Close the container's stdin when the attached client's stdin ends.
    #[arg(long)]
    stdin_once: bool,
}

fn config(a: Args) -> anyhow::Result<Config> {
    Config {
        id: a.id,
        bundle: a.bundle,
        runtime_root: a.runtime_root,
        socket: a.socket,
        log: a.log_path.map(|path| LogConfig {
            path,
            max_size: a.log_max_size,
            max_file: a.log_max_file,
        }),
        tty: a.tty,
        stdin: a.stdin,
        stdin_once: a.stdin_once,
    }
    .validate()
    .context("berth-shim")
}

fn main() {
    let ready = match config(Args::parse()) {
        Ok(cfg) => berth_shim::launch::launch(cfg),
        Err(e) => Ready {
            ok: false,
            error: Some(format!("{e:#}")),
            pid: 0,
            shim_pid: 0,
        },
    };
    println!(
        "{}",
        serde_json::to_string(&ready).unwrap_or_else(|_| r#"{"ok":false}"#.into())
    );
    std::process::exit(if ready.ok { 0 } else { 1 });
}
