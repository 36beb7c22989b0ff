use anyhow::Context;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Kill a running container first
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let rt = super::runtime(g);
    match rt.delete(&a.id, a.force) {
        // `delete --force` of something already gone is what callers retry with: not an error.
        Err(berth_runtime::RuntimeError::NotFound { .. }) if a.force => Ok(0),
        r => {
            r.with_context(|| format!("delete container {}", a.id))?;
            Ok(0)
        }
    }
}
