//! Dual-stack (IPv6) bridge networks end to end, with the docker CLI and raw API requests
//! shaped as docker-py sends them. Each test runs its own berthd in a private network
//! namespace (TestDaemon::start_in_netns).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

/// Runs a throwaway container on `net` and returns its output (retried while a server on the
/// network comes up).
fn run_on(d: &TestDaemon, net: &str, cmd: &[&str]) -> String {
    wait_until(&format!("{cmd:?} on {net}"), T, || {
        let mut args = vec!["run", "--rm", "--network", net, "busybox"];
        args.extend_from_slice(cmd);
        let o = d.docker(&args);
        o.status.success().then(|| out_str(&o))
    })
}

fn host_get(d: &TestDaemon, url: &str) -> String {
    wait_until(&format!("{url} to answer"), T, || {
        let o = d.host(&[busybox(), "timeout", "5", busybox(), "wget", "-qO-", url]);
        o.status.success().then(|| out_str(&o))
    })
}

fn fmt(d: &TestDaemon, f: &str, what: &str) -> String {
    d.ok(&["inspect", "-f", f, what]).trim().to_string()
}

/// The network's record as berthd keeps it on disk.
fn record(d: &TestDaemon, name: &str) -> serde_json::Value {
    let id = d.ok(&["network", "inspect", "-f", "{{.Id}}", name]);
    let p = d
        .data_root
        .join("network")
        .join(format!("{}.json", id.trim()));
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

#[test]
fn dual_stack_network_addresses_routes_inspect_and_cleanup() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b0::/64",
        "n6",
    ]);
    let net = d.inspect("n6");
    assert_eq!(net["EnableIPv6"], true, "{net}");
    let cfg = net["IPAM"]["Config"].as_array().unwrap().clone();
    assert_eq!(cfg.len(), 2, "{net}");
    assert!(
        !cfg[0]["Subnet"].as_str().unwrap().contains(':'),
        "v4 first: {net}"
    );
    assert_eq!(cfg[1]["Subnet"], "fd00:b0::/64");
    assert_eq!(cfg[1]["Gateway"], "fd00:b0::1");

    d.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "n6",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let a6 = fmt(
        &d,
        "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}}",
        "a",
    );
    assert!(a6.starts_with("fd00:b0::"), "{a6}");
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.n6.GlobalIPv6PrefixLen}}",
            "a"
        ),
        "64"
    );
    assert_eq!(
        fmt(&d, "{{.NetworkSettings.Networks.n6.IPv6Gateway}}", "a"),
        "fd00:b0::1"
    );
    // The MAC stays derived from the IPv4 address.
    let ip4 = fmt(&d, "{{.NetworkSettings.Networks.n6.IPAddress}}", "a");
    let mac = fmt(&d, "{{.NetworkSettings.Networks.n6.MacAddress}}", "a");
    let last = ip4.rsplit('.').next().unwrap().parse::<u8>().unwrap();
    assert!(mac.ends_with(&format!("{last:02x}")), "{mac} {ip4}");

    // Inside a container: the address on eth0 (usable at once), a default IPv6 route.
    let addr = run_on(&d, "n6", &["ip", "-6", "addr", "show", "eth0"]);
    assert!(
        addr.contains("inet6 fd00:b0::") && addr.contains("/64"),
        "{addr}"
    );
    let route = run_on(&d, "n6", &["ip", "-6", "route", "show", "default"]);
    assert!(route.contains("default via fd00:b0::1 dev eth0"), "{route}");
    // Container to container over IPv6.
    let url = format!("http://[{a6}]/");
    let body = run_on(&d, "n6", &["timeout", "5", "wget", "-qO-", &url]);
    assert!(body.starts_with("hello-from-"), "{body}");
    // The host side (berthd's namespace) reaches it through the bridge's gateway address.
    assert!(host_get(&d, &url).starts_with("hello-from-"));
    // The embedded DNS answers AAAA with it (busybox nslookup asks for the type given).
    let ns = run_on(&d, "n6", &["nslookup", "-type=AAAA", "a", "127.0.0.11"]);
    assert!(ns.contains(&a6), "{ns}");
    // ... and PTR for it (ip6.arpa) with name.network.
    let ptr = run_on(&d, "n6", &["nslookup", &a6, "127.0.0.11"]);
    assert!(ptr.contains("a.n6"), "{ptr}");
    // /etc/hosts names the container's IPv6 address too.
    let hosts = d.ok(&["exec", "a", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&a6), "{hosts}");

    // A static address with --ip6.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "s",
        "--network",
        "n6",
        "--ip6",
        "fd00:b0::99",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}}",
            "s"
        ),
        "fd00:b0::99"
    );
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.n6.IPAMConfig.IPv6Address}}",
            "s"
        ),
        "fd00:b0::99"
    );
    let members = d.ok(&["network", "inspect", "-f", "{{json .Containers}}", "n6"]);
    assert!(
        members.contains("\"IPv6Address\":\"fd00:b0::99/64\""),
        "{members}"
    );
    // Taken, outside the subnet: Docker's errors, and nothing is left of the attempt.
    let o = d.fails(&[
        "run",
        "--name",
        "dup",
        "--network",
        "n6",
        "--ip6",
        "fd00:b0::99",
        "busybox",
        "true",
    ]);
    assert!(
        err_str(&o).contains("Address already in use"),
        "{}",
        err_str(&o)
    );
    let o = d.fails(&[
        "create",
        "--network",
        "n6",
        "--ip6",
        "fd00:b1::5",
        "busybox",
        "true",
    ]);
    assert!(
        err_str(&o).contains(
            "Invalid address fd00:b1::5: It does not belong to any of this network's subnets"
        ),
        "{}",
        err_str(&o)
    );

    // A published port: DNAT in the ip6 table for the host's IPv6 addresses (the bridge's
    // here), the userland proxy for [::1].
    d.ok(&[
        "run",
        "-d",
        "--name",
        "p",
        "--network",
        "n6",
        "-p",
        "8086:80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let p6 = fmt(
        &d,
        "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}}",
        "p",
    );
    let nft = out_str(&d.host(&["nft", "list", "table", "ip6", "berth"]));
    assert!(
        nft.contains(&format!("tcp dport 8086 dnat to [{p6}]:80")),
        "{nft}"
    );
    assert!(nft.contains("ip6 saddr fd00:b0::/64 masquerade"), "{nft}");
    assert!(host_get(&d, "http://[fd00:b0::1]:8086/").starts_with("hello-from-"));
    assert!(host_get(&d, "http://[::1]:8086/").starts_with("hello-from-"));

    // After rm: no address, lease, link, route or DNAT rule left.
    d.ok(&["rm", "-f", "a", "s", "dup", "p"]);
    let nft = out_str(&d.host(&["nft", "list", "table", "ip6", "berth"]));
    assert!(!nft.contains("8086"), "{nft}");
    let rec = record(&d, "n6");
    assert_eq!(rec["pool6"]["leases"], serde_json::json!({}), "{rec}");
    assert_eq!(rec["endpoints"], serde_json::json!({}), "{rec}");
    let links = out_str(&d.host(&["ip", "-o", "link", "show"]));
    assert!(!links.contains(" vb"), "{links}");
    let br = rec["bridge"].as_str().unwrap().to_string();
    let r6 = out_str(&d.host(&["ip", "-6", "route", "show"]));
    assert!(
        r6.lines()
            .all(|l| !l.contains("fd00:b0::") || l.contains(&br)),
        "{r6}"
    );
    // The network goes with its bridge.
    d.ok(&["network", "rm", "n6"]);
    let links = out_str(&d.host(&["ip", "-o", "link", "show"]));
    assert!(!links.contains(&br), "{links}");
    // Without IPv6 networks the ip6 table is gone.
    let o = d.host(&["nft", "list", "table", "ip6", "berth"]);
    assert!(!o.status.success(), "{}", out_str(&o));
}

#[test]
fn ipv6_leases_survive_a_daemon_restart() {
    let mut d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:d0::/64",
        "r6",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "--network",
        "r6",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "gone",
        "--network",
        "r6",
        "busybox",
        "sleep",
        "300",
    ]);
    let keep6 = fmt(
        &d,
        "{{.NetworkSettings.Networks.r6.GlobalIPv6Address}}",
        "keep",
    );
    d.terminate();
    d.spawn();
    d.ok(&["rm", "-f", "gone"]);
    // keep's address is still leased: a new container gets another one.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "new",
        "--network",
        "r6",
        "busybox",
        "sleep",
        "300",
    ]);
    let new6 = fmt(
        &d,
        "{{.NetworkSettings.Networks.r6.GlobalIPv6Address}}",
        "new",
    );
    assert_ne!(new6, keep6);
    let rec = record(&d, "r6");
    let leases = rec["pool6"]["leases"].as_object().unwrap().clone();
    assert_eq!(leases.len(), 2, "{rec}");
    assert!(leases.contains_key(&keep6), "{rec}");
    let addr = d.ok(&["exec", "keep", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&keep6), "{addr}");
}

#[test]
fn ipv6_without_subnet_takes_distinct_ula_64s() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--ipv6", "u1"]);
    d.ok(&["network", "create", "--ipv6", "u2"]);
    let sub = |d: &TestDaemon, n: &str| {
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 1).Subnet}}",
            n,
        ])
        .trim()
        .to_string()
    };
    let (s1, s2) = (sub(&d, "u1"), sub(&d, "u2"));
    assert!(s1.starts_with("fd") && s1.ends_with("::/64"), "{s1}");
    assert!(s2.starts_with("fd") && s2.ends_with("/64"), "{s2}");
    assert_ne!(s1, s2);
    // Same /48 (the daemon's), consecutive /64s.
    let segs = |s: &str| {
        s.split('/')
            .next()
            .unwrap()
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .segments()
    };
    let base = |s: &str| segs(s)[..3].to_vec();
    assert_eq!(base(&s1), base(&s2));
    assert_eq!(segs(&s2)[3], segs(&s1)[3] + 1, "{s1} {s2}");
    // A container there gets an address of that /64.
    let addr = run_on(&d, "u2", &["ip", "-6", "addr", "show", "eth0"]);
    assert!(
        addr.contains(&format!("inet6 {}", s2.trim_end_matches(":/64"))),
        "{addr} {s2}"
    );
    // The /48 stays across a restart: a third network continues in it.
    let mut d = d;
    d.terminate();
    d.spawn();
    d.ok(&["network", "create", "--ipv6", "u3"]);
    let s3 = sub(&d, "u3");
    assert_eq!(base(&s3), base(&s1));
    assert!(s3 != s1 && s3 != s2, "{s3}");
}

#[test]
fn docker_py_shaped_requests() {
    let d = TestDaemon::start_in_netns();
    // docker-py's test_create_network_ipv6_enabled: an IPv6 config only, host bits in it.
    let body = r#"{"Name":"py6","Driver":"bridge","EnableIPv6":true,
        "IPAM":{"Driver":"default","Config":[{"Subnet":"2001:389::1/64",
        "IPRange":"2001:389::0/96","Gateway":"2001:389::ffff"}]}}"#;
    let r = d.http("POST", "/v1.41/networks/create", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    let net = d.inspect("py6");
    assert_eq!(net["EnableIPv6"], true);
    let cfg = net["IPAM"]["Config"].as_array().unwrap().clone();
    assert_eq!(cfg.len(), 2, "{net}");
    assert_eq!(cfg[1]["Subnet"], "2001:389::/64");
    assert_eq!(cfg[1]["Gateway"], "2001:389::ffff");
    assert_eq!(cfg[1]["IPRange"], "2001:389::/96");

    // docker-py's test_create_with_ipv6_address: IPv6 config without EnableIPv6; the
    // container's requested address is echoed, but the network stays IPv4-only.
    let body = r#"{"Name":"py4","Driver":"bridge",
        "IPAM":{"Driver":"default","Config":[{"Subnet":"2001:389::/64"}]}}"#;
    let r = d.http("POST", "/v1.41/networks/create", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    let net = d.inspect("py4");
    assert_eq!(net["EnableIPv6"], false);
    let cfg = net["IPAM"]["Config"].as_array().unwrap().clone();
    assert!(cfg.iter().any(|c| c["Subnet"] == "2001:389::/64"), "{net}");
    let body = r#"{"Image":"busybox","Cmd":["sleep","300"],"HostConfig":{"NetworkMode":"py4"},
        "NetworkingConfig":{"EndpointsConfig":{"py4":{"IPAMConfig":{"IPv6Address":"2001:389::f00"}}}}}"#;
    let r = d.http("POST", "/v1.41/containers/create?name=c6", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    d.ok(&["start", "c6"]);
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.py4.IPAMConfig.IPv6Address}}",
            "c6"
        ),
        "2001:389::f00"
    );
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.py4.GlobalIPv6Address}}",
            "c6"
        ),
        ""
    );
    let addr = d.ok(&["exec", "c6", "ip", "-6", "addr", "show", "eth0"]);
    assert!(!addr.contains("2001:389"), "{addr}");
    // connect with an IPv6 address on an IPv6 network.
    let body =
        r#"{"Container":"c6","EndpointConfig":{"IPAMConfig":{"IPv6Address":"2001:389::77"}}}"#;
    let r = d.http("POST", "/v1.41/networks/py6/connect", Some(body));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.py6.GlobalIPv6Address}}",
            "c6"
        ),
        "2001:389::77"
    );
    let addr = d.ok(&["exec", "c6", "ip", "-6", "addr", "show", "eth1"]);
    assert!(addr.contains("2001:389::77/64"), "{addr}");
    // A dynamic address comes from the IPRange (the gateway is outside it).
    d.ok(&[
        "run",
        "-d",
        "--name",
        "dyn",
        "--network",
        "py6",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        fmt(
            &d,
            "{{.NetworkSettings.Networks.py6.GlobalIPv6Address}}",
            "dyn"
        ),
        "2001:389::1"
    );
    assert_eq!(
        fmt(&d, "{{.NetworkSettings.Networks.py6.IPv6Gateway}}", "dyn"),
        "2001:389::ffff"
    );
    d.ok(&["rm", "-f", "dyn"]);
    // disconnect releases it.
    d.ok(&["network", "disconnect", "py6", "c6"]);
    let rec = record(&d, "py6");
    assert_eq!(rec["pool6"]["leases"], serde_json::json!({}), "{rec}");
}

#[test]
fn bad_ipv6_input_is_refused_and_leaves_nothing() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c0::/64",
        "first",
    ]);
    let before = std::fs::read_dir(d.data_root.join("network"))
        .unwrap()
        .count();
    let o = d.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c0::/80",
        "over",
    ]);
    assert!(err_str(&o).contains("Pool overlaps"), "{}", err_str(&o));
    let o = d.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c1::/64",
        "--gateway",
        "fd00:c2::1",
        "gw",
    ]);
    assert!(err_str(&o).contains("fd00:c2::1"), "{}", err_str(&o));
    let body = r#"{"Name":"bad","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:zz::/64"}]}}"#;
    let r = d.http("POST", "/networks/create", Some(body));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("Invalid subnet fd00:zz::/64 : invalid CIDR address"),
        "{}",
        r.text()
    );
    let body = r#"{"Name":"bad","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:c3::/127"}]}}"#;
    let r = d.http("POST", "/networks/create", Some(body));
    assert_eq!(r.status, 400, "{}", r.text());
    let body = r#"{"Name":"bad","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:c3::/64","IPRange":"fd00:c4::/80"}]}}"#;
    let r = d.http("POST", "/networks/create", Some(body));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("doesn't contain ip-range"),
        "{}",
        r.text()
    );
    // Nothing half-created: no records, no bridges.
    assert_eq!(
        std::fs::read_dir(d.data_root.join("network"))
            .unwrap()
            .count(),
        before
    );
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !nets.contains("over") && !nets.contains("gw") && !nets.contains("bad"),
        "{nets}"
    );
    // --ip6 on an IPv4-only network.
    d.ok(&["network", "create", "--subnet", "10.66.0.0/24", "v4only"]);
    let o = d.fails(&[
        "create",
        "--network",
        "v4only",
        "--ip6",
        "fd00::5",
        "busybox",
        "true",
    ]);
    assert!(
        err_str(&o).contains("user specified IP address is supported only when connecting to networks with user configured subnets"),
        "{}",
        err_str(&o)
    );
    let links = out_str(&d.host(&["ip", "-o", "link", "show"]));
    assert!(
        !links.contains("br-"),
        "no bridge before a container needs one: {links}"
    );
}

/// daemon.json's `ipv6` and `fixed-cidr-v6` (the `--ipv6 --fixed-cidr-v6` flags): the default
/// bridge is dual-stack, its containers show their IPv6 address at the top of
/// NetworkSettings (API < 1.52) as dockerd does; `--ipv6` alone stops berthd naming the
/// missing option.
#[test]
fn default_bridge_ipv6_from_daemon_config() {
    let mut d = TestDaemon::start_in_netns();
    d.terminate();
    let cfg = d.root.join("no-daemon.json");
    std::fs::write(&cfg, r#"{"ipv6": true, "fixed-cidr-v6": "fd00:e0::/64"}"#).unwrap();
    d.spawn();
    let net = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{json .IPAM.Config}}",
        "bridge",
    ]);
    assert!(net.starts_with("true "), "{net}");
    let nft = out_str(&d.host(&["nft", "list", "table", "ip6", "berth"]));
    assert!(nft.contains("ip6 saddr fd00:e0::/64 masquerade"), "{nft}");
    assert!(
        net.contains(r#""Subnet":"fd00:e0::/64","Gateway":"fd00:e0::1""#),
        "{net}"
    );
    d.ok(&["run", "-d", "--name", "b6", "busybox", "sleep", "300"]);
    let r = d.http("GET", "/v1.43/containers/b6/json", None);
    assert_eq!(r.status, 200);
    let v = r.json();
    let ns = &v["NetworkSettings"];
    let g6 = ns["GlobalIPv6Address"].as_str().unwrap().to_string();
    assert!(g6.starts_with("fd00:e0::"), "{ns}");
    assert_eq!(ns["GlobalIPv6PrefixLen"], 64, "{ns}");
    assert_eq!(ns["IPv6Gateway"], "fd00:e0::1", "{ns}");
    let addr = d.ok(&["exec", "b6", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{g6}/64")), "{addr}");
    let fwd = out_str(&d.host(&["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]));
    assert_eq!(fwd, "1");
    d.ok(&["rm", "-f", "b6"]);
    // Without the options at the next start the idle bridge is IPv4-only again.
    d.terminate();
    std::fs::write(&cfg, "{}").unwrap();
    d.spawn();
    let net = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{len .IPAM.Config}}",
        "bridge",
    ]);
    assert_eq!(net.trim(), "false 1");
    // ... and the sweep at start took the ip6 table away.
    let o = d.host(&["nft", "list", "table", "ip6", "berth"]);
    assert!(!o.status.success(), "{}", out_str(&o));
    let o = d.docker(&["run", "--rm", "busybox", "ip", "-6", "addr", "show", "eth0"]);
    assert!(!out_str(&o).contains("inet6"), "{}", out_str(&o));

    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"));
    c.args([
        "--ipv6",
        "--config-file",
        "/nonexistent.json",
        "--data-root",
    ])
    .arg(d.root.join("bad-d"))
    .arg("--exec-root")
    .arg(d.root.join("bad-x"))
    .arg("-H")
    .arg(format!("unix://{}", d.root.join("bad.sock").display()));
    let o = berth_testutil::harness::run_with_timeout(c, T, None);
    assert!(!o.status.success(), "--ipv6 alone accepted");
    assert!(err_str(&o).contains("--fixed-cidr-v6"), "{}", err_str(&o));
}

/// The ip6 table's policy with real traffic: networks do not route to one another over IPv6,
/// and an internal network's containers have no IPv6 way out (no default route).
#[test]
fn ipv6_networks_are_isolated_and_internal_ones_have_no_way_out() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:f1::/64",
        "i1",
    ]);
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:f2::/64",
        "i2",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "i1",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let w6 = fmt(
        &d,
        "{{.NetworkSettings.Networks.i1.GlobalIPv6Address}}",
        "web",
    );
    let url = format!("http://[{w6}]/");
    // Reachable from its own network (and so serving) ...
    assert!(run_on(&d, "i1", &["timeout", "5", "wget", "-qO-", &url]).starts_with("hello-from-"));
    // ... but not from the other one, although the host routes IPv6 between the bridges. The
    // SYN is dropped: `timeout` must not be pid 1 (which ignores its SIGTERM), so sh stays
    // (a second command keeps it from exec'ing the first).
    let cmd = format!("timeout 3 wget -qO- {url}; exit $?");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "i2",
        "busybox",
        "sh",
        "-c",
        &cmd,
    ]);
    // Killed by the timeout (143): the packets were dropped on the way, not refused.
    assert_eq!(
        o.status.code(),
        Some(143),
        "from i2 to {url}: {} {}",
        out_str(&o),
        err_str(&o)
    );
    let nft = out_str(&d.host(&["nft", "list", "table", "ip6", "berth"]));
    assert!(nft.contains("iifname \"br-"), "{nft}");

    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--internal",
        "--subnet",
        "fd00:f3::/64",
        "in6",
    ]);
    let route = run_on(&d, "in6", &["ip", "-6", "route", "show"]);
    assert!(
        route.contains("fd00:f3::/64") && !route.contains("default"),
        "{route}"
    );
    let nft = out_str(&d.host(&["nft", "list", "table", "ip6", "berth"]));
    assert!(
        !nft.lines()
            .any(|l| l.contains("oifname !=") && l.contains("fd00:f3::/64")),
        "an internal network masquerades: {nft}"
    );
    let br = record(&d, "in6")["bridge"].as_str().unwrap().to_string();
    assert!(
        nft.contains(&format!("iifname \"{br}\" oifname != \"{br}\" drop")),
        "{nft}"
    );
}
