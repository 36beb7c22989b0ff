//! Per-container network setup time: netns::create + link::attach (and the teardown), over 200
//! iterations, p50/p90. Run inside a private namespace (`unshare -n`): it makes a bridge.
//!
//! `unshare -n cargo run --release -p berth-network --example netsetup`

#![allow(clippy::cast_possible_truncation, reason = "small bench figures")]

use std::time::{Duration, Instant};

use berth_network::link::{self, BridgeConfig, EndpointConfig};
use berth_network::netns;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    link::set_up("lo")?;
    link::ensure_bridge_sync(&BridgeConfig {
        name: "br-bench".into(),
        address: "10.88.0.1/16".parse()?,
        address6: None,
        mtu: 1500,
    })?;
    let dir = tempfile::tempdir()?;
    let (mut setup, mut ns_only, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let path = dir.path().join(format!("ns{i}"));
        let ip = std::net::Ipv4Addr::new(10, 88, (2 + i / 250) as u8, (2 + i % 250) as u8);
        let t0 = Instant::now();
        netns::create(&path)?;
        let t1 = Instant::now();
        link::attach_sync(&EndpointConfig {
            bridge: "br-bench".into(),
            host_ifname: format!("vbbench{i}"),
            container_ifname: "eth0".into(),
            netns: path.clone(),
            address: ipnet::Ipv4Net::new(ip, 16)?,
            gateway: Some("10.88.0.1".parse()?),
            address6: None,
            gateway6: None,
            link_local: Vec::new(),
            mac: link::mac_for(ip),
            mtu: 1500,
        })?;
        let t2 = Instant::now();
        setup.push(t2 - t0);
        ns_only.push(t1 - t0);
        let t3 = Instant::now();
        link::delete_link_sync(&format!("vbbench{i}"))?;
        netns::remove(&path)?;
        teardown.push(t3.elapsed());
    }
    link::delete_link_sync("br-bench")?;
    println!(
        "netsetup n={n}: create+attach p50 {:.2} ms p90 {:.2} ms (netns::create alone p50 {:.2} ms); teardown p50 {:.2} ms; target <= 5 ms",
        pct(&mut setup, 0.5),
        pct(&mut setup, 0.9),
        pct(&mut ns_only, 0.5),
        pct(&mut teardown, 0.5)
    );
    Ok(())
}
