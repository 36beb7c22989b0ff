//! `berth-fixture`: writes the test fixtures of `berth_testutil` to disk for shell scripts and
//! benchmarks.
//!
//! ```text
//! berth-fixture bundle DIR [--] [ARGS...]   busybox bundle in DIR running ARGS (default: sh)
//! berth-fixture rootfs-tar FILE             tar of the busybox rootfs (for `docker import`)
//! ```

use anyhow::{bail, Context, Result};
use berth_testutil::Bundle;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  berth-fixture bundle DIR [--] [ARGS...]   write a busybox OCI bundle to DIR (default args: sh)
  berth-fixture rootfs-tar FILE             write a tar of the busybox rootfs to FILE";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-fixture: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bundle") => {
            let Some(dir) = args.get(1) else {
                bail!("bundle: missing DIR\n{USAGE}");
            };
            let mut rest: &[String] = args.get(2..).unwrap_or_default();
            if rest.first().map(String::as_str) == Some("--") {
                rest = &rest[1..];
            }
            let mut process: Vec<&str> = rest.iter().map(String::as_str).collect();
            if process.is_empty() {
                process.push("sh");
            }
            let dir = PathBuf::from(dir);
            if dir.join("rootfs").exists() {
                bail!(
                    "{}: already holds a rootfs; choose an empty or new directory",
                    dir.display()
                );
            }
            Bundle::busybox_at(&dir, &process)
                .with_context(|| format!("write bundle to {}", dir.display()))?;
            println!("{}", dir.display());
            Ok(())
        }
        Some("rootfs-tar") => {
            let Some(file) = args.get(1) else {
                bail!("rootfs-tar: missing FILE\n{USAGE}");
            };
            let file = std::path::absolute(file).with_context(|| format!("resolve {file}"))?;
            let bundle = Bundle::busybox(&["sh"]).context("build busybox rootfs")?;
            bundle
                .write_rootfs_tar(&file)
                .with_context(|| format!("write rootfs tar {}", file.display()))?;
            println!("{}", file.display());
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
        None => bail!("{USAGE}"),
    }
}
