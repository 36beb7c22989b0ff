//! `berth`: docker's command line for berthd. Parses flags (clap), talks to the daemon's
//! Engine API only, and prints what docker prints, with docker's exit codes.

mod cli;
mod client;
mod commands;
mod context;
mod format;
mod opts;
mod stream;

use std::io::Write;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::client::{Client, ClientError, DEFAULT_HOST};

/// A command's exit status, with what to print on stderr first.
#[derive(Debug, thiserror::Error)]
#[error("{}", message.as_deref().unwrap_or(""))]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

impl Exit {
    pub fn code(code: u8) -> Exit {
        Exit {
            code,
            message: None,
        }
    }
    pub fn msg(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: Some(message.into()),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // `berth --version` answers before anything else is set up (no runtime, no daemon).
    if args.len() == 2 && (args[1] == "--version" || args[1] == "-v") {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        );
        return ExitCode::SUCCESS;
    }
    let cmd = Cli::command();
    let matches = match cmd.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_error(e),
    };
    if cli.version {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        );
        return ExitCode::SUCCESS;
    }
    let Some(cmd) = cli.cmd else {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    if let Some(dir) = &cli.config {
        std::env::set_var("DOCKER_CONFIG", dir);
    }
    let host = cli
        .host
        .clone()
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let client = match Client::new(&host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(commands::dispatch(client, cmd));
    let _ = std::io::stdout().flush();
    let code = match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    };
    // Threads blocked on stdin must not keep the process alive.
    std::process::exit(i32::from(code));
}

/// Prints an error as docker does and returns the exit code.
fn report(e: &anyhow::Error) -> u8 {
    if let Some(x) = e.downcast_ref::<Exit>() {
        if let Some(m) = &x.message {
            if !m.is_empty() {
                eprintln!("{m}");
            }
        }
        return x.code;
    }
    if let Some(c) = e.downcast_ref::<ClientError>() {
        eprintln!("{c}");
        return 1;
    }
    eprintln!("Error: {e:#}");
    1
}

/// The subcommand path clap was parsing ("berth run"), from its usage line.
fn command_path(e: &clap::Error) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = vec!["berth".to_string()];
    let mut cmd = Cli::command();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-H" || a == "--host" || a == "--config" || a == "-l" || a == "--log-level" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                let next = sub.clone();
                cmd = next;
                i += 1;
            }
            None => break,
        }
    }
    let _ = e;
    path.join(" ")
}

fn usage_of(path: &str) -> String {
    let mut cmd = Cli::command();
    for p in path.split(' ').skip(1) {
        match cmd.find_subcommand(p) {
            Some(s) => cmd = s.clone(),
            None => break,
        }
    }
    let mut s = String::from("[OPTIONS]");
    let pos: Vec<String> = cmd
        .get_positionals()
        .map(|a| {
            let n = a
                .get_value_names()
                .and_then(|v| v.first().map(|s| s.to_string()))
                .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
            if a.is_required_set() {
                n
            } else {
                format!("[{n}]")
            }
        })
        .collect();
    if cmd.has_subcommands() {
        s = "COMMAND".into();
    }
    for p in pos {
        s.push(' ');
        s.push_str(&p);
    }
    format!("Usage:  {path} {s}")
}

/// clap's errors in docker's words and exit codes: unknown flags and bad values exit 125,
/// unknown commands and missing arguments 1.
fn clap_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let path = command_path(&e);
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let sub = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            eprintln!(
                "berth: unknown command: {path} {sub}\n\nRun '{path} --help' for more information"
            );
            ExitCode::from(1)
        }
        ErrorKind::UnknownArgument => {
            let flag = invalid.split_whitespace().next().unwrap_or("").to_string();
            let flag = if flag.starts_with("--") {
                format!("unknown flag: {flag}")
            } else {
                format!(
                    "unknown shorthand flag: '{}' in {flag}",
                    flag.trim_start_matches('-').chars().next().unwrap_or('?')
                )
            };
            eprintln!(
                "{flag}\n\n{}\n\nRun '{path} --help' for more information",
                usage_of(&path)
            );
            ExitCode::from(125)
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let reason = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| {
                    let valid = match e.get(ContextKind::ValidValue) {
                        Some(ContextValue::Strings(v)) => v.join(", "),
                        _ => String::new(),
                    };
                    format!("valid values are: {valid}")
                });
            let long = invalid
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_start_matches('-')
                .split('=')
                .next()
                .unwrap_or("")
                .to_string();
            let mut flagname = format!("--{long}");
            let mut cmd = Cli::command();
            for p in path.split(' ').skip(1) {
                match cmd.find_subcommand(p) {
                    Some(s) => cmd = s.clone(),
                    None => break,
                }
            }
            if let Some(arg) = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))
            {
                if let Some(s) = arg.get_short() {
                    flagname = format!("-{s}, --{long}");
                }
            }
            eprintln!(
                "invalid argument \"{value}\" for \"{flagname}\" flag: {reason}\n\n{}\n\nRun '{path} --help' for more information",
                usage_of(&path)
            );
            ExitCode::from(125)
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues => {
            let mut cmd = Cli::command();
            for p in path.split(' ').skip(1) {
                match cmd.find_subcommand(p) {
                    Some(s) => cmd = s.clone(),
                    None => break,
                }
            }
            let n: usize = cmd
                .get_positionals()
                .filter(|a| a.is_required_set())
                .map(|a| a.get_num_args().map(|r| r.min_values()).unwrap_or(1).max(1))
                .sum();
            // build takes exactly one argument, and docker words that error differently.
            if path.ends_with(" build") {
                eprintln!(
                    "berth: '{path}' requires 1 argument\n\n{}\n\nRun '{path} --help' for more information",
                    usage_of(&path)
                );
                return ExitCode::from(1);
            }
            let what = if n == 1 {
                "at least 1 argument".to_string()
            } else {
                format!("at least {n} arguments")
            };
            eprintln!(
                "berth: '{path}' requires {what}\n\n{}\n\nSee '{path} --help' for more information",
                usage_of(&path)
            );
            ExitCode::from(1)
        }
        ErrorKind::MissingSubcommand => {
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
        _ => {
            let msg = e.render().to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            eprintln!(
                "{first}\n\n{}\n\nRun '{path} --help' for more information",
                usage_of(&path)
            );
            ExitCode::from(125)
        }
    }
}
