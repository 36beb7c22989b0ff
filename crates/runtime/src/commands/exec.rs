use std::path::PathBuf;

use anyhow::Context;
use berth_runtime::container::ExecOptions;
use oci_spec::runtime::{Capability, Process};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Command and arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Path to a process.json (runtime-spec Process), or - for stdin
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (needs --console-socket)
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process started
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_X or X)
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Accepted for runc compatibility
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

fn build_process(g: &Globals, a: &Args) -> anyhow::Result<Process> {
    if let Some(p) = &a.process {
        let data = if p.as_os_str() == "-" {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read(p).with_context(|| format!("read process file {}", p.display()))?
        };
        return serde_json::from_slice(&data)
            .with_context(|| format!("parse process file {}", p.display()));
    }
    if a.command.is_empty() {
        anyhow::bail!("exec: no command given (pass arguments or --process)");
    }
    let st = super::runtime(g).load(&a.id)?;
    let mut p = st.config.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        if !kv.contains('=') {
            anyhow::bail!("exec: invalid --env {kv:?}: expected KEY=VALUE");
        }
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(c) = &a.cwd {
        p.set_cwd(c.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let mut user = p.user().clone();
        user.set_uid(
            uid.parse()
                .with_context(|| format!("exec: invalid --user {u:?}: want uid[:gid]"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("exec: invalid --user {u:?}: want uid[:gid]"))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = if c.to_ascii_uppercase().starts_with("CAP_") {
                c.to_ascii_uppercase()
            } else {
                format!("CAP_{}", c.to_ascii_uppercase())
            };
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| anyhow::anyhow!("exec: unknown capability {c:?}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let process = build_process(g, a)?;
    let o = ExecOptions {
        process,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        stdio: None,
    };
    let pid = super::runtime(g)
        .exec(&a.id, &o)
        .with_context(|| format!("exec in container {}", a.id))?;
    if a.detach {
        return Ok(0);
    }
    super::wait::forward_and_wait(pid)
}
