//! `berth-runtime`: runc's command line over the berth_runtime library.

mod commands;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Where runc-compatible callers that pass no --root find our state.
const DEFAULT_ROOT: &str = "/run/berth-runtime";
/// Set for the copy of ourselves re-executed from a sealed memfd.
const SEALED_MARKER: &str = "_BERTH_RUNTIME_SEALED";

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"),
    about = "An OCI runtime with runc's command line",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs is best)
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors (and debug output) to this file instead of only stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Verbose logging
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility ("true", "false", "auto")
    #[arg(long)]
    rootless: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(commands::create::Args),
    /// Start a created container
    Start(commands::start::Args),
    /// Create and start a container
    Run(commands::run::Args),
    /// Print a container's state as JSON
    State(commands::state::Args),
    /// Send a signal to a container's init (or all its processes)
    Kill(commands::kill::Args),
    /// Delete a container and everything it holds
    Delete(commands::delete::Args),
    /// Run a new process in a container
    Exec(commands::exec::Args),
    /// List a container's processes
    Ps(commands::ps::Args),
    /// List containers
    List(commands::list::Args),
    /// Freeze every process of a container
    Pause(commands::pause::Args),
    /// Thaw a paused container
    Resume(commands::resume::Args),
    /// Change a container's resource limits
    Update(commands::update::Args),
    /// Print container events and resource statistics
    Events(commands::events::Args),
    /// Write a default config.json
    Spec(commands::spec::Args),
    /// Print the features this runtime supports, as JSON
    Features,
}

/// Global options every command sees.
#[derive(Debug)]
pub struct Globals {
    pub root: PathBuf,
    pub debug: bool,
}

fn log_error(cli: &Cli, msg: &str) {
    if let Some(path) = &cli.log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let time = berth_runtime::state::now_rfc3339();
            let line = if cli.log_format == "json" {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            } else {
                format!("time=\"{time}\" level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
    eprintln!("berth-runtime: {msg}");
}

fn main() {
    let cli = Cli::parse();
    if cli.version {
        println!(
            "berth-runtime version {}\nspec: 1.2.0",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let Some(command) = &cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        std::process::exit(1);
    };
    if cli.systemd_cgroup {
        log_error(
            &cli,
            "--systemd-cgroup is not supported: berth-runtime manages cgroups through cgroupfs",
        );
        std::process::exit(1);
    }
    if !berth_runtime::dmz::available()
        && matches!(
            command,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    {
        // Without the exec trampoline, container processes exec straight from a fork of us:
        // make sure what they could reach as /proc/self/exe is a sealed copy, not the binary
        // on the host (CVE-2019-5736).
        if let Err(e) = berth_runtime::sys::ensure_sealed_exe(SEALED_MARKER) {
            log_error(&cli, &format!("re-exec from sealed copy: {e}"));
            std::process::exit(1);
        }
    }
    let g = Globals {
        root: cli.root.clone(),
        debug: cli.debug,
    };
    let result = match command {
        Command::Create(a) => commands::create::run(&g, a),
        Command::Start(a) => commands::start::run(&g, a),
        Command::Run(a) => commands::run::run(&g, a),
        Command::State(a) => commands::state::run(&g, a),
        Command::Kill(a) => commands::kill::run(&g, a),
        Command::Delete(a) => commands::delete::run(&g, a),
        Command::Exec(a) => commands::exec::run(&g, a),
        Command::Ps(a) => commands::ps::run(&g, a),
        Command::List(a) => commands::list::run(&g, a),
        Command::Pause(a) => commands::pause::run(&g, a),
        Command::Resume(a) => commands::resume::run(&g, a),
        Command::Update(a) => commands::update::run(&g, a),
        Command::Events(a) => commands::events::run(&g, a),
        Command::Spec(a) => commands::spec::run(&g, a),
        Command::Features => commands::features::run(),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log_error(&cli, &format!("{e:#}"));
            std::process::exit(1);
        }
    }
}
