//! The network of `docker build`'s RUN steps (the classic builder) against berthd: on the
//! default bridge as dockerd runs them (own namespace, eth0 with an address of the bridge's
//! pool, default route, a `docker run` container's resolv.conf), loopback only without a
//! default bridge or with `--network none`, the daemon's namespace with `--network host`; and
//! nothing of a step's wiring left once it is done, failed or its daemon was killed.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// berth-runtime runs the RUN steps; cargo builds it only when asked.
fn require_runtime() {
    let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
    let rt = berthd.parent().unwrap().join("berth-runtime");
    assert!(
        rt.is_file(),
        "{} is missing: build it first: cargo build -p berth-runtime",
        rt.display()
    );
}

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let p = d.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    d
}

fn build(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let mut cmd = d.docker_cmd(&args);
    cmd.env("DOCKER_BUILDKIT", "0");
    run_with_timeout(cmd, Duration::from_secs(120), None)
}

#[track_caller]
fn build_ok(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> String {
    let o = build(d, ctx, extra);
    assert!(
        o.status.success(),
        "docker build failed ({}):\nstdout: {}\nstderr: {}\n{}",
        o.status,
        o.out(),
        o.err(),
        d.log_tail()
    );
    o.out()
}

/// A file of the built image.
fn cat(d: &TestDaemon, image: &str, file: &str) -> String {
    d.ok(&["run", "--rm", "-u", "0", image, "cat", file])
}

/// Interface names of an `ip -o link` listing, sorted, one per line.
const LINKS: &str = "ip -o link | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | sort";

fn bridge_subnet(d: &TestDaemon) -> (ipnet_lite::Net, Ipv4Addr) {
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    let cfg = &v[0]["IPAM"]["Config"][0];
    let subnet = ipnet_lite::Net::parse(cfg["Subnet"].as_str().unwrap());
    let gw: Ipv4Addr = cfg["Gateway"].as_str().unwrap().parse().unwrap();
    (subnet, gw)
}

/// A tiny IPv4 prefix, enough to ask whether an address is inside the bridge's subnet.
mod ipnet_lite {
    use std::net::Ipv4Addr;

    #[derive(Debug, Clone, Copy)]
    pub struct Net {
        pub addr: Ipv4Addr,
        pub len: u32,
    }

    impl Net {
        pub fn parse(s: &str) -> Net {
            let (a, l) = s.split_once('/').unwrap();
            Net {
                addr: a.parse().unwrap(),
                len: l.parse().unwrap(),
            }
        }

        pub fn contains(&self, ip: Ipv4Addr) -> bool {
            let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
            u32::from(ip) & mask == u32::from(self.addr) & mask
        }
    }
}

/// `vb*` host ends of veths in the daemon's namespace.
fn veths(d: &TestDaemon) -> Vec<String> {
    let o = d.host(&["ip", "-o", "link"]);
    assert!(o.status.success(), "ip link: {}", o.err());
    o.out()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with("vb"))
        .collect()
}

/// The bridge network's record as berthd stored it.
fn bridge_record(d: &TestDaemon) -> serde_json::Value {
    let dir = d.data_root.join("network");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap_or_default();
        if v["name"] == "bridge" {
            return v;
        }
    }
    panic!("no bridge network record under {}", dir.display());
}

fn is_empty_map(v: &serde_json::Value) -> bool {
    v.is_null() || v.as_object().is_some_and(|m| m.is_empty())
}

/// Nothing of a build step's wiring is left: no veth, no lease or endpoint (in the API and on
/// disk), no namespace file under the exec root.
#[track_caller]
fn assert_network_clean(d: &TestDaemon) {
    // The kernel takes a veth with its namespace a little after the namespace's last user.
    let left = std::cell::RefCell::new(Vec::new());
    let gone = (0..100).any(|_| {
        *left.borrow_mut() = veths(d);
        let ok = left.borrow().is_empty();
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(gone, "veths left: {:?}", left.borrow());
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert!(
        is_empty_map(&v[0]["Containers"]),
        "endpoints left on bridge: {}",
        v[0]["Containers"]
    );
    let rec = bridge_record(d);
    assert!(
        is_empty_map(&rec["pool"]["leases"]),
        "leases left: {}",
        rec["pool"]
    );
    assert!(
        is_empty_map(&rec["endpoints"]),
        "endpoints left: {}",
        rec["endpoints"]
    );
    let ns: Vec<_> = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
}

/// Every path in the layers of a saved image.
fn saved_paths(d: &TestDaemon, image: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), image]);
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let mut c = Command::new("tar");
    c.arg("-xf").arg(&tar).arg("-C").arg(&x);
    let o = run_with_timeout(c, Duration::from_secs(30), None);
    assert!(o.status.success(), "untar: {}", o.err());
    let mut out = Vec::new();
    let mut todo = vec![x];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
            continue;
        }
        let mut c = Command::new("tar");
        c.arg("-tf").arg(&p);
        let o = run_with_timeout(c, Duration::from_secs(30), None);
        if o.status.success() {
            out.extend(o.out().lines().map(str::to_string));
        }
    }
    out
}

#[test]
fn run_steps_are_on_the_default_bridge_and_leave_nothing() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let (subnet, gateway) = bridge_subnet(&d);
    let dockerfile = format!(
        r#"FROM busybox
RUN ip -4 -o addr show eth0 > /addr
RUN cat /etc/resolv.conf > /resolv && cat /etc/hosts > /hosts && hostname > /hostname
RUN ip -4 route > /route
RUN {LINKS} > /links
RUN --network=none {LINKS} > /links-none
RUN --network=default {LINKS} > /links-default
RUN --network=host {LINKS} > /links-host
"#
    );
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["-t", "net:1"]);

    let addr = cat(&d, "net:1", "/addr");
    // "N: eth0    inet A.B.C.D/L brd ... scope global eth0"
    let cidr = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet address: {addr}"));
    let ip: Ipv4Addr = cidr.split('/').next().unwrap().parse().unwrap();
    assert!(
        subnet.contains(ip),
        "{ip} is not in the bridge's {subnet:?}"
    );
    assert_ne!(ip, gateway);
    assert_eq!(
        cidr.split('/').nth(1).unwrap(),
        subnet.len.to_string(),
        "{addr}"
    );
    let route = cat(&d, "net:1", "/route");
    assert!(
        route.contains(&format!("default via {gateway} dev eth0")),
        "no default route via the gateway: {route}"
    );

    // What a `docker run` container on the bridge gets.
    let run_resolv = d.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert_eq!(cat(&d, "net:1", "/resolv"), run_resolv);
    let hostname = cat(&d, "net:1", "/hostname");
    let hosts = cat(&d, "net:1", "/hosts");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [ip.to_string(), hostname.clone()]),
        "no line for {ip} {hostname} in:\n{hosts}"
    );

    // Only the step's own interfaces; the daemon's (the bridge, other veths) stay outside.
    assert_eq!(cat(&d, "net:1", "/links"), "eth0\nlo");
    assert_eq!(cat(&d, "net:1", "/links-default"), "eth0\nlo");
    assert_eq!(cat(&d, "net:1", "/links-none"), "lo");
    let host_links = cat(&d, "net:1", "/links-host");
    let host_links: Vec<&str> = host_links.lines().collect();
    assert!(
        host_links.contains(&"lo") && host_links.contains(&"berth0"),
        "--network=host sees the daemon's namespace: {host_links:?}"
    );
    assert!(!host_links.contains(&"eth0"), "{host_links:?}");

    // The files the step saw are mounts, not part of the image (busybox has neither).
    let paths = saved_paths(&d, "net:1");
    assert!(paths.iter().any(|p| p.ends_with("addr")), "{paths:?}");
    for f in ["etc/resolv.conf", "etc/hosts"] {
        assert!(
            !paths.iter().any(|p| p.trim_start_matches("./") == f),
            "{f} in the image's layers"
        );
    }

    assert_network_clean(&d);
    // The steps' addresses are free again: a container gets the first one, as a build step did.
    let run_addr = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(run_addr.contains(&format!("inet {cidr}")), "{run_addr}");
    assert_network_clean(&d);
}

#[test]
fn build_networkmode_picks_the_network_of_every_run() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let dockerfile = format!("FROM busybox\nRUN {LINKS} > /links\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["--network", "none", "-t", "n:none"]);
    assert_eq!(cat(&d, "n:none", "/links"), "lo");
    build_ok(&d, ctx.path(), &["--network", "bridge", "-t", "n:bridge"]);
    assert_eq!(cat(&d, "n:bridge", "/links"), "eth0\nlo");
    build_ok(&d, ctx.path(), &["--network", "host", "-t", "n:host"]);
    let host = cat(&d, "n:host", "/links");
    assert!(host.lines().any(|l| l == "berth0"), "{host}");
    assert_network_clean(&d);
}

#[test]
fn without_a_default_bridge_run_has_only_loopback() {
    require_runtime();
    let d = TestDaemon::start();
    let dockerfile = format!("FROM busybox\nRUN {LINKS} > /links\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    build_ok(&d, ctx.path(), &["-t", "lo:1"]);
    assert_eq!(cat(&d, "lo:1", "/links"), "lo");
}

#[test]
fn unknown_network_mode_is_refused_before_any_step() {
    require_runtime();
    // In a namespace of its own: the user network below may get a bridge.
    let d = TestDaemon::start_in_netns();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo ran-a-step\n")]);
    let o = build(&d, ctx.path(), &["--network", "nonexistent"]);
    assert!(!o.status.success(), "{}", o.out());
    assert!(
        o.err().contains("network nonexistent not found"),
        "{}",
        o.err()
    );
    assert!(!o.out().contains("Step 1/"), "{}", o.out());
    assert!(!o.out().contains("ran-a-step"), "{}", o.out());
    let r = d.http("POST", "/build?networkmode=nonexistent", None);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 404, "{body}");
    assert!(body.contains("network nonexistent not found"), "{body}");
    let r = d.http("POST", "/build?networkmode=container:abc", None);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 400, "{body}");
    assert!(body.contains("container:abc"), "{body}");
    // A user network exists but is no place for RUN here: said so, by name.
    d.ok(&["network", "create", "--driver", "bridge", "usernet"]);
    let o = build(&d, ctx.path(), &["--network", "usernet"]);
    assert!(!o.status.success(), "{}", o.out());
    assert!(o.err().contains("usernet"), "{}", o.err());
    assert!(!o.out().contains("ran-a-step"), "{}", o.out());
}

#[test]
fn failing_run_on_the_bridge_releases_everything() {
    require_runtime();
    let d = TestDaemon::start_in_netns();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN ip -4 -o addr show eth0 && exit 3\n",
    )]);
    let o = build(&d, ctx.path(), &[]);
    assert!(!o.status.success());
    assert!(
        o.out().contains("inet "),
        "the step ran on eth0: {}",
        o.out()
    );
    assert!(
        o.err().contains("returned a non-zero code: 3"),
        "{}",
        o.err()
    );
    assert_network_clean(&d);
}

#[test]
fn a_build_killed_with_its_daemon_leaves_nothing_after_restart() {
    require_runtime();
    let mut d = TestDaemon::start_in_netns();
    // A sleep of this attempt's own, so the cleanup below kills this test's process only.
    let secs = 700
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_micros();
    let sleep = format!("sleep {secs}");
    let dockerfile = format!("FROM busybox\nRUN echo started && {sleep}\n");
    let ctx = context(&[("Dockerfile", dockerfile.as_str())]);
    let mut cmd = d.docker_cmd(&["build", ctx.path().to_str().unwrap()]);
    cmd.env("DOCKER_BUILDKIT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let started = std::time::Instant::now();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        seen.push_str(&line);
        // The step's own output, not the "Step 1/2 : RUN echo started ..." line.
        if n == 0 || line.trim() == "started" || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let wired = veths(&d);
    let leases = bridge_record(&d)["pool"]["leases"].clone();
    d.kill9();
    let _ = child.kill();
    let _ = child.wait();
    // The step's processes outlive berthd; the test's own leftovers go before any verdict.
    let ps = Command::new("pgrep").args(["-f", &sleep]).output().unwrap();
    for pid in std::str::from_utf8(&ps.stdout).unwrap().lines() {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cg.contains("berth-build") {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    assert!(seen.lines().any(|l| l.trim() == "started"), "{seen}");
    assert_eq!(wired.len(), 1, "the step's veth while it ran: {wired:?}");
    assert!(!is_empty_map(&leases), "the step's lease while it ran");
    d.spawn();
    assert_network_clean(&d);
    // And the bridge works as before: a container gets the address the step had.
    let step_ip = leases.as_object().unwrap().keys().next().unwrap().clone();
    let run_addr = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(run_addr.contains(&format!("inet {step_ip}/")), "{run_addr}");
}
