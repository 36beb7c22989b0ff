use std::path::PathBuf;

use anyhow::Context;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write config.json into
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a rootless container (user namespace, no network namespace)
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(_g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("file {} exists: remove it first", path.display());
    }
    let spec = berth_runtime::spec::default_spec(a.rootless)?;
    let data = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(&path, data).with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
