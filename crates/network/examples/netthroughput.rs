//! Bulk TCP throughput through berth's networking, against a raw veth pair: host → container
//! through a published port (127.0.0.1 and the bridge address: DNAT), host → container direct,
//! container → container on one bridge, and two namespaces joined by a bare veth pair (the
//! floor). Run inside a private namespace (`unshare -n`): it makes bridges, veths and an
//! nftables table there. `bench/netthroughput.sh` runs it.

#![allow(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_network::firewall::{self, NetworkRules, PortRule, Proto, Ruleset};
use berth_network::link::{self, BridgeConfig, EndpointConfig};
use berth_network::netns;

const CHUNK: usize = 256 * 1024;

fn container(dir: &Path, name: &str, ip: &str) -> PathBuf {
    let path = dir.join(name);
    netns::create(&path).unwrap();
    let address: ipnet::Ipv4Net = format!("{ip}/24").parse().unwrap();
    link::attach_sync(&EndpointConfig {
        bridge: "berth0".into(),
        host_ifname: format!("vb{name}"),
        container_ifname: "eth0".into(),
        netns: path.clone(),
        address,
        gateway: Some("10.90.0.1".parse().unwrap()),
        address6: None,
        gateway6: None,
        link_local: Vec::new(),
        mac: link::mac_for(address.addr()),
        mtu: 1500,
    })
    .unwrap();
    path
}

/// A sink in `ns` on `addr`: each connection is read to the end; the byte count goes back
/// through the channel.
fn sink(ns: &Path, addr: &str) -> std::sync::mpsc::Receiver<u64> {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = netns::run_in(ns, move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut n = 0u64;
            while let Ok(k) = s.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            let _ = tx.send(n);
        }
    });
    rx
}

/// Sends `bytes` to `to` from `from` (a namespace, or the caller's when None); Gbit/s.
fn send(from: Option<&Path>, to: &str, bytes: u64, done: &std::sync::mpsc::Receiver<u64>) -> f64 {
    let to: SocketAddr = to.parse().unwrap();
    let go = move || {
        let buf = vec![0x5au8; CHUNK];
        let t = Instant::now();
        let mut s = TcpStream::connect(to).unwrap();
        let mut left = bytes;
        while left > 0 {
            let k = usize::try_from(left.min(CHUNK as u64)).unwrap();
            s.write_all(&buf[..k]).unwrap();
            left -= k as u64;
        }
        drop(s);
        t
    };
    let t = match from {
        Some(ns) => netns::run_in(ns, go).unwrap(),
        None => go(),
    };
    let got = done.recv().unwrap();
    assert_eq!(got, bytes);
    bytes as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?}");
}

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(1024);
    let reps = 9;
    let bytes = mib * 1024 * 1024;
    link::set_up("lo").unwrap();
    link::ensure_bridge_sync(&BridgeConfig {
        name: "berth0".into(),
        address: "10.90.0.1/24".parse().unwrap(),
        address6: None,
        mtu: 1500,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = container(dir.path(), "a", "10.90.0.2");
    let b = container(dir.path(), "b", "10.90.0.3");
    firewall::apply(
        "berth",
        &Ruleset {
            networks: vec![NetworkRules {
                bridge: "berth0".into(),
                subnet: "10.90.0.0/24".parse().unwrap(),
                subnet6: None,
                internal: false,
                masquerade: true,
                icc: true,
            }],
            ports: vec![PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 18080,
                container_ip: "10.90.0.3".parse().unwrap(),
                container_ip6: None,
                container_port: 5001,
                bridge: "berth0".into(),
            }],
        },
    )
    .unwrap();
    let done = sink(&b, "10.90.0.3:5001");

    // The floor: two namespaces and one veth pair, no bridge, no rules.
    let x = dir.path().join("x");
    let y = dir.path().join("y");
    netns::create(&x).unwrap();
    netns::create(&y).unwrap();
    let (xs, ys) = (x.display().to_string(), y.display().to_string());
    sh(&[
        "nsenter",
        &format!("--net={xs}"),
        "ip",
        "link",
        "add",
        "vx",
        "type",
        "veth",
        "peer",
        "name",
        "vy",
        "netns",
        &ys,
    ]);
    sh(&[
        "nsenter",
        &format!("--net={xs}"),
        "ip",
        "addr",
        "add",
        "10.91.0.1/24",
        "dev",
        "vx",
    ]);
    sh(&[
        "nsenter",
        &format!("--net={xs}"),
        "ip",
        "link",
        "set",
        "vx",
        "up",
    ]);
    sh(&[
        "nsenter",
        &format!("--net={ys}"),
        "ip",
        "addr",
        "add",
        "10.91.0.2/24",
        "dev",
        "vy",
    ]);
    sh(&[
        "nsenter",
        &format!("--net={ys}"),
        "ip",
        "link",
        "set",
        "vy",
        "up",
    ]);
    let raw_done = sink(&y, "10.91.0.2:5001");

    // Round by round, every path once per round: this machine's speed drifts within a run,
    // and a floor measured in one minute against a path measured in the next is no ratio. The
    // container → container figure is the median of each round's ratio to that round's floor,
    // with the floor measured before the bridge in even rounds and after it in odd ones.
    let (mut raw, mut c2c, mut direct, mut published_lo, mut published_br) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut ratios = Vec::with_capacity(reps);
    for round in 0..reps {
        let (r, c) = if round % 2 == 0 {
            let r = send(Some(&x), "10.91.0.2:5001", bytes, &raw_done);
            (r, send(Some(&a), "10.90.0.3:5001", bytes, &done))
        } else {
            let c = send(Some(&a), "10.90.0.3:5001", bytes, &done);
            (send(Some(&x), "10.91.0.2:5001", bytes, &raw_done), c)
        };
        ratios.push(c / r);
        raw = raw.max(r);
        c2c = c2c.max(c);
        direct = direct.max(send(None, "10.90.0.3:5001", bytes, &done));
        published_lo = published_lo.max(send(None, "127.0.0.1:18080", bytes, &done));
        published_br = published_br.max(send(None, "10.90.0.1:18080", bytes, &done));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[reps / 2];
    println!("bulk TCP, {mib} MiB per run, best of {reps} interleaved rounds, Gbit/s:");
    println!("  raw veth pair (floor)                {raw:7.2}");
    println!(
        "  container -> container (bridge)      {c2c:7.2}   {:.2} x raw veth (best of each)",
        c2c / raw
    );
    println!(
        "  container -> container / raw veth, per round: median {median:.2}, range {:.2}-{:.2}",
        ratios[0],
        ratios[reps - 1]
    );
    println!("  host -> container direct             {direct:7.2}");
    println!(
        "  host -> 127.0.0.1:published (DNAT)   {published_lo:7.2}   {:.2} x direct",
        published_lo / direct
    );
    println!(
        "  host -> bridge ip:published (DNAT)   {published_br:7.2}   {:.2} x direct",
        published_br / direct
    );
    firewall::remove("berth").unwrap();
    for p in [&a, &b, &x, &y] {
        netns::remove(p).unwrap();
    }
    link::delete_link_sync("berth0").unwrap();
}
