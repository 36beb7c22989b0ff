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

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let rt = super::runtime(g);
    let id = &a.create.id;
    let st = rt
        .create(&a.create.options())
        .with_context(|| format!("create container {id}"))?;
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        return Err(e).with_context(|| format!("start container {id}"));
    }
    if a.detach {
        return Ok(0);
    }
    let code = super::wait::forward_and_wait(st.pid)?;
    if !a.keep {
        rt.delete(id, true)
            .with_context(|| format!("delete container {id}"))?;
    }
    Ok(code)
}
