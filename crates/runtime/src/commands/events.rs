use std::time::Duration;

use berth_runtime::state::Status;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Print statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics, e.g. 5s, 500ms
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow::anyhow!("invalid --interval {s:?}: use e.g. 5s or 500ms");
    let d = if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else if let Some(sec) = s.strip_suffix('s') {
        Duration::from_secs_f64(sec.parse().map_err(|_| bad())?)
    } else {
        return Err(bad());
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

pub fn run(g: &Globals, a: &Args) -> anyhow::Result<i32> {
    let rt = super::runtime(g);
    let interval = parse_interval(&a.interval)?;
    let st = rt.load(&a.id)?;
    let print_stats = || -> anyhow::Result<()> {
        let stats = rt.stats(&a.id)?;
        println!(
            "{}",
            serde_json::json!({"type": "stats", "id": a.id, "data": stats})
        );
        Ok(())
    };
    if a.stats {
        print_stats()?;
        return Ok(0);
    }
    let cg = st.cgroup();
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    loop {
        if st.status(rt.root()) == Status::Stopped {
            return Ok(0);
        }
        let n = cg.oom_kill_count().unwrap_or(ooms);
        if n > ooms {
            println!("{}", serde_json::json!({"type": "oom", "id": a.id}));
            ooms = n;
        }
        print_stats()?;
        std::thread::sleep(interval);
    }
}
