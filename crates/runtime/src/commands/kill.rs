use anyhow::Context;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Signal name or number (default SIGTERM)
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let sig = super::parse_signal(&a.signal)?;
    super::runtime(g)
        .kill(&a.id, sig, a.all)
        .with_context(|| format!("kill container {}", a.id))?;
    Ok(0)
}
