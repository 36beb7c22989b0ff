use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let st = super::runtime(g).state(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(0)
}
