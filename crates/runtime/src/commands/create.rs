use std::path::PathBuf;

use anyhow::Context;
use berth_runtime::container::CreateOptions;

use crate::Globals;

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// Container id
    pub id: String,
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to send the pty master to (needs process.terminal)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one per container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

impl Args {
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            no_new_keyring: self.no_new_keyring,
            stdio: None,
        }
    }
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    super::runtime(g)
        .create(&a.options())
        .with_context(|| format!("create container {}", a.id))?;
    Ok(0)
}
