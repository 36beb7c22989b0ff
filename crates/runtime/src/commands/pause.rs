use anyhow::Context;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    super::runtime(g)
        .pause(&a.id)
        .with_context(|| format!("pause container {}", a.id))?;
    Ok(0)
}
