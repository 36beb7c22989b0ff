use anyhow::Context;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return once the container started instead of waiting for it
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

/// Whether the bundle asks for a terminal (a missing or bad config is create's to report).
/// Only `process.terminal` is decoded: create parses the whole config once, right after.
fn wants_terminal(bundle: &std::path::Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Config {
        process: Option<Process>,
    }
    #[derive(serde::Deserialize)]
    struct Process {
        terminal: Option<bool>,
    }
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<Config>(&d).ok())
        .and_then(|c| c.process.and_then(|p| p.terminal))
        .unwrap_or(false)
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let rt = super::runtime(g);
    let id = &a.create.id;
    let mut opts = a.create.options();
    // Attached with a terminal and no console socket: be our own console, as runc is. The
    // runtime's connection waits in the listener's backlog until create has returned.
    let own_console = !a.detach && opts.console_socket.is_none() && wants_terminal(&opts.bundle);
    let console = if own_console {
        let path = g
            .root
            .join(format!(".console-{id}-{}.sock", std::process::id()));
        std::fs::create_dir_all(&g.root).with_context(|| format!("create {}", g.root.display()))?;
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path)
            .with_context(|| format!("bind {}", path.display()))?;
        opts.console_socket = Some(path.clone());
        Some((l, path))
    } else {
        None
    };
    let created = rt.create(&opts);
    let master = match &console {
        Some((l, path)) => {
            let _ = std::fs::remove_file(path);
            match &created {
                Ok(_) => {
                    let (conn, _) = l.accept().context("accept console connection")?;
                    let raw = std::os::fd::AsRawFd::as_raw_fd(&conn);
                    let (_, fd) =
                        berth_runtime::channel::recv_raw(raw).context("receive pty master")?;
                    Some(fd.context("the container sent no pty master")?)
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    let st = created.with_context(|| format!("create container {id}"))?;
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        return Err(e).with_context(|| format!("start container {id}"));
    }
    if a.detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => super::wait::relay_and_wait(st.pid, m)?,
        None => super::wait::forward_and_wait(st.pid)?,
    };
    if !a.keep {
        rt.delete(id, true)
            .with_context(|| format!("delete container {id}"))?;
    }
    Ok(code)
}
