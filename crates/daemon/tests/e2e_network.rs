//! Networking end to end: each test runs its own berthd inside a private network namespace
//! (TestDaemon::start_in_netns), so bridges, veths and nftables rules never touch the host;
//! host-side checks run in that namespace (`d.host`). Debian's static busybox wget crashes
//! with `-T`, so every fetch runs under `timeout` instead.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

/// One fetch of a URL from berthd's namespace (the "host" side), 5 s at most.
fn host_try(d: &TestDaemon, url: &str) -> Output {
    d.host(&[busybox(), "timeout", "5", busybox(), "wget", "-qO-", url])
}

/// Fetches a URL from berthd's namespace, retrying while the server starts.
fn host_get(d: &TestDaemon, url: &str) -> String {
    wait_until(&format!("{url} to answer"), T, || {
        let o = host_try(d, url);
        o.status.success().then(|| out_str(&o))
    })
}

fn httpd(d: &TestDaemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", HTTPD]);
    d.ok(&args)
}

/// `wget` from a fresh container on `net`, retried while A's server comes up.
fn fetch_from(d: &TestDaemon, net: &str, url: &str) -> String {
    wait_until(&format!("{url} from {net}"), T, || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            url,
        ]);
        o.status.success().then(|| out_str(&o))
    })
}

fn gateway(d: &TestDaemon, net: &str) -> String {
    d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        net,
    ])
    .trim()
    .to_string()
}

#[test]
fn user_network_resolves_names_and_aliases() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--subnet", "10.77.0.0/24", "appnet"]);
    httpd(&d, "a", &["--network", "appnet", "--network-alias", "web"]);
    assert!(fetch_from(&d, "appnet", "http://a/").starts_with("hello-from-"));
    assert!(fetch_from(&d, "appnet", "http://web/").starts_with("hello-from-"));
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "a",
    ]);
    assert!(ip.trim().starts_with("10.77.0."), "{ip}");
    let members = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "appnet"]);
    assert_eq!(members.trim(), "1");
}

#[test]
fn published_port_answers_on_loopback_and_bridge_address() {
    let d = TestDaemon::start_in_netns();
    httpd(&d, "pub", &["-p", "8080:80"]);
    assert!(host_get(&d, "http://127.0.0.1:8080/").starts_with("hello-from-"));
    let gw = gateway(&d, "bridge");
    assert!(host_get(&d, &format!("http://{gw}:8080/")).starts_with("hello-from-"));
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "pub"]);
    let prefix = gw.rsplit_once('.').unwrap().0;
    assert!(ip.trim().starts_with(prefix), "{ip} not on the bridge {gw}");
    let ps = d.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    let ports = d.ok(&["port", "pub"]);
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080"), "{ports}");
    // IPv6 clients on the host ([::1], or `localhost` resolving to it) get there too, through
    // the userland proxy, as with dockerd.
    assert!(host_get(&d, "http://[::1]:8080/").starts_with("hello-from-"));
    // A port published on one IPv4 address only has no IPv6 side.
    httpd(&d, "pub4", &["-p", "127.0.0.1:8081:80"]);
    assert!(host_get(&d, "http://127.0.0.1:8081/").starts_with("hello-from-"));
    let o = host_try(&d, "http://[::1]:8081/");
    assert!(!o.status.success(), "{}", out_str(&o));
    // After rm, the IPv6 side is closed too.
    d.ok(&["rm", "-f", "pub"]);
    let o = host_try(&d, "http://[::1]:8080/");
    assert!(!o.status.success(), "still served: {}", out_str(&o));
}

#[test]
fn publish_all_allocates_and_port_reports() {
    let d = TestDaemon::start_in_netns();
    httpd(&d, "p", &["--expose", "80", "-P"]);
    let line = d.ok(&["port", "p", "80"]);
    let port: u16 = line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("docker port: {line}"));
    assert!(port > 0);
    assert!(host_get(&d, &format!("http://127.0.0.1:{port}/")).starts_with("hello-from-"));
}

#[test]
fn container_mode_shares_loopback() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo lo-ok > /www/index.html && exec httpd -f -p 127.0.0.1:81 -h /www",
    ]);
    let got = wait_until("loopback of a from b", T, || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "container:a",
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://127.0.0.1:81/",
        ]);
        o.status.success().then(|| out_str(&o))
    });
    assert_eq!(got, "lo-ok");
}

#[test]
fn internal_network_has_no_way_out() {
    let d = TestDaemon::start_in_netns();
    httpd(&d, "out", &["-p", "8081:80"]);
    host_get(&d, "http://127.0.0.1:8081/");
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.78.0.0/24",
        "closed",
    ]);
    let routes = d.ok(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "ip",
        "route",
    ]);
    assert!(!routes.contains("default"), "{routes}");
    let gw = gateway(&d, "bridge");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "timeout",
        "5",
        "wget",
        "-qO-",
        &format!("http://{gw}:8081/"),
    ]);
    assert!(
        !o.status.success(),
        "internal network reached out: {}",
        out_str(&o)
    );
}

#[test]
fn disconnect_removes_reachability() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "n1"]);
    httpd(&d, "srv", &["--network", "n1"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "n1",
        "busybox",
        "sleep",
        "600",
    ]);
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.n1.IPAddress}}",
        "srv",
    ]);
    let url = format!("http://{}/", ip.trim());
    wait_until("srv from cli", T, || {
        d.docker(&["exec", "cli", "timeout", "5", "wget", "-qO-", &url])
            .status
            .success()
            .then_some(())
    });
    d.ok(&["network", "disconnect", "n1", "srv"]);
    let o = d.docker(&["exec", "cli", "timeout", "5", "wget", "-qO-", &url]);
    assert!(!o.status.success(), "still reachable after disconnect");
    let links = d.ok(&["exec", "srv", "ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "{links}");
    d.ok(&["network", "connect", "--alias", "again", "n1", "srv"]);
    // A container of the default bridge joining a user network while it runs switches to the
    // embedded DNS server and then resolves the network's names.
    d.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "600"]);
    let before = d.ok(&["exec", "late", "cat", "/etc/resolv.conf"]);
    assert!(!before.contains("127.0.0.11"), "{before}");
    d.ok(&["network", "connect", "n1", "late"]);
    let after = d.ok(&["exec", "late", "cat", "/etc/resolv.conf"]);
    assert!(after.contains("nameserver 127.0.0.11"), "{after}");
    wait_until("srv by name from late", T, || {
        d.docker(&[
            "exec",
            "late",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://srv/",
        ])
        .status
        .success()
        .then_some(())
    });
    wait_until("srv reconnected", T, || {
        d.docker(&[
            "exec",
            "cli",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://again/",
        ])
        .status
        .success()
        .then_some(())
    });
}

#[test]
fn sigkill_restart_keeps_networking() {
    let mut d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "keep"]);
    httpd(&d, "k", &["--network", "keep", "-p", "8082:80"]);
    host_get(&d, "http://127.0.0.1:8082/");
    d.kill9();
    d.spawn();
    assert!(host_get(&d, "http://127.0.0.1:8082/").starts_with("hello-from-"));
    assert!(fetch_from(&d, "keep", "http://k/").starts_with("hello-from-"));
    // The port is held again: a second container cannot take it.
    let o = d.docker(&["run", "-d", "-p", "8082:80", "busybox", "sleep", "60"]);
    assert!(!o.status.success());
}

#[test]
fn rm_leaves_nothing_behind() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--subnet", "10.79.0.0/24", "tmpnet"]);
    httpd(&d, "gone", &["--network", "tmpnet", "-p", "8083:80"]);
    host_get(&d, "http://127.0.0.1:8083/");
    let links = out_str(&d.host(&["ip", "-o", "link"]));
    assert!(links.contains(": vb"), "{links}");
    d.ok(&["rm", "-f", "gone"]);
    // The kernel destroys the veth with the namespace, after rm has answered.
    wait_until("the veth to go", Duration::from_secs(5), || {
        let links = out_str(&d.host(&["ip", "-o", "link"]));
        (!links.contains(": vb")).then_some(())
    });
    let addrs = out_str(&d.host(&["ip", "-o", "addr"]));
    assert!(!addrs.contains("10.79.0.2/"), "{addrs}");
    let rules = out_str(&d.host(&["nft", "list", "ruleset"]));
    assert!(!rules.contains("8083"), "rule left: {rules}");
    let members = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "tmpnet"]);
    assert_eq!(members.trim(), "0");
    let id = d.ok(&["network", "inspect", "-f", "{{.ID}}", "tmpnet"]);
    let rec = std::fs::read_to_string(
        d.data_root
            .join("network")
            .join(format!("{}.json", id.trim())),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&rec).unwrap();
    assert_eq!(v["pool"]["leases"], serde_json::json!({}), "{rec}");
    assert!(std::fs::read_dir(d.exec_root.join("netns"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn bad_input_is_refused_cleanly() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--subnet", "10.80.0.0/16", "big"]);
    let o = d.fails(&["network", "create", "--subnet", "10.80.5.0/24", "small"]);
    assert!(
        o.err()
            .contains("Pool overlaps with other one on this address space"),
        "{}",
        o.err()
    );
    let o = d.fails(&["network", "create", "big"]);
    assert!(
        o.err().contains("network with name big already exists"),
        "{}",
        o.err()
    );
    let o = d.fails(&[
        "network",
        "create",
        "--subnet",
        "10.81.0.0/24",
        "--gateway",
        "10.82.0.1",
        "badgw",
    ]);
    assert!(!o.err().is_empty());
    let o = d.fails(&["network", "create", "-d", "overlay", "ov"]);
    assert!(
        o.err().contains("plugin \"overlay\" not found"),
        "{}",
        o.err()
    );

    d.ok(&[
        "run", "-d", "--name", "holder", "-p", "8090:80", "busybox", "sleep", "600",
    ]);
    let o = d.fails(&[
        "run", "-d", "--name", "second", "-p", "8090:80", "busybox", "sleep", "600",
    ]);
    assert!(
        o.err()
            .contains("Bind for 0.0.0.0:8090 failed: port is already allocated"),
        "{}",
        o.err()
    );
    assert!(
        o.err()
            .contains("driver failed programming external connectivity"),
        "{}",
        o.err()
    );
    // Not half-wired: one veth (holder's), no endpoint for `second`.
    let links = out_str(&d.host(&["ip", "-o", "link"]));
    assert_eq!(links.matches(": vb").count(), 1, "{links}");
    assert_eq!(
        d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "bridge"])
            .trim(),
        "1"
    );

    let r = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"PortBindings":{"abc/tcp":[{"HostPort":"1"}]}}}"#),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let o = d.fails(&["run", "-p", "80:99999", "busybox", "true"]);
    assert!(!o.err().is_empty());

    d.ok(&[
        "run",
        "-d",
        "--name",
        "member",
        "--network",
        "big",
        "busybox",
        "sleep",
        "600",
    ]);
    let o = d.fails(&["network", "rm", "big"]);
    assert!(o.err().contains("has active endpoints"), "{}", o.err());
    let o = d.fails(&["network", "rm", "bridge"]);
    assert!(
        o.err()
            .contains("pre-defined network and cannot be removed"),
        "{}",
        o.err()
    );
    let o = d.fails(&["network", "connect", "nosuchnet", "member"]);
    assert!(
        o.err().contains("network nosuchnet not found"),
        "{}",
        o.err()
    );
    // Through the API: on any 404 from create the docker CLI tries to pull the image, which
    // needs a registry these tests do not have.
    let r = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"NetworkMode":"nosuchnet"}}"#),
    );
    assert_eq!(r.status, 404);
    assert!(
        String::from_utf8_lossy(&r.body).contains("network nosuchnet not found"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let o = d.fails(&["run", "--ip", "172.30.0.9", "busybox", "true"]);
    assert!(
        o.err().contains("user defined networks only")
            || o.err().contains("user configured subnets"),
        "{}",
        o.err()
    );
}

#[test]
fn network_ls_filters_and_prune() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--label", "k=v", "lab"]);
    d.ok(&["network", "create", "plain"]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["bridge", "host", "none", "lab", "plain"] {
        assert!(ls.lines().any(|l| l == n), "{ls}");
    }
    let f = d.ok(&["network", "ls", "-q", "--filter", "label=k=v"]);
    assert_eq!(f.lines().count(), 1);
    let f = d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "type=custom",
    ]);
    assert_eq!(f.lines().count(), 2, "{f}");
    let p = d.ok(&["network", "prune", "-f", "--filter", "label=k=v"]);
    assert!(p.contains("lab"), "{p}");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("lab") && ls.contains("plain"), "{ls}");
}

#[test]
fn compose_v1_two_services_by_name() {
    let d = TestDaemon::start_in_netns();
    let dir = d.root.join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        "version: '2.4'\nservices:\n  web:\n    image: busybox\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo compose-ok > /www/index.html && exec httpd -f -p 80 -h /www\"]\n  client:\n    image: busybox\n    command: [\"sh\", \"-c\", \"for i in 1 2 3 4 5 6 7 8 9 10; do timeout 5 wget -qO- http://web/ && exit 0; sleep 1; done; exit 1\"]\n    depends_on: [web]\n",
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let mut c = std::process::Command::new("docker-compose");
        c.args(["-p", "proj", "-f"])
            .arg(dir.join("docker-compose.yml"))
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", &d.docker_config);
        run_with_timeout(c, Duration::from_secs(120), None)
    };
    let o = compose(&["up", "-d", "web"]);
    assert!(
        o.status.success(),
        "up: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log_tail()
    );
    let o = compose(&["run", "--rm", "client"]);
    assert!(
        o.status.success(),
        "client: {}{}",
        out_str(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out_str(&o).contains("compose-ok"), "{}", out_str(&o));
    let o = compose(&["down"]);
    assert!(
        o.status.success(),
        "down: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("proj_default"), "{ls}");
}

/// `enable_icc=false`: containers of the network cannot reach one another (their bridge ports
/// are isolated, which holds without br_netfilter too), the host still reaches them.
#[test]
fn icc_false_keeps_containers_apart_but_not_from_the_host() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "noicc",
    ]);
    httpd(&d, "lone", &["--network", "noicc"]);
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.noicc.IPAddress}}",
        "lone",
    ]);
    let url = format!("http://{}/", ip.trim());
    assert!(host_get(&d, &url).starts_with("hello-from-"));
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "noicc",
        "busybox",
        "timeout",
        "5",
        "wget",
        "-qO-",
        &url,
    ]);
    assert!(!o.status.success(), "reached a neighbour: {}", out_str(&o));
    let links = out_str(&d.host(&["ip", "-d", "-o", "link", "show", "type", "veth"]));
    assert!(
        links.lines().any(|l| l.contains("isolated on")),
        "no isolated bridge port: {links}"
    );
}

/// daemon.json's `bip`, `fixed-cidr`, `mtu` and `default-address-pools` (dockerd's keys): the
/// default bridge's subnet, gateway, address range and MTU, and the subnets user networks get;
/// a restart with another `bip` moves the idle bridge; a bad `--bip` stops berthd with a clear
/// error.
#[test]
fn bip_fixed_cidr_mtu_and_address_pools() {
    let mut d = TestDaemon::start_in_netns();
    d.terminate();
    let cfg = d.root.join("no-daemon.json");
    std::fs::write(
        &cfg,
        r#"{"bip": "10.123.0.1/24", "fixed-cidr": "10.123.0.128/25", "mtu": 1400,
            "default-address-pools": [{"base": "10.124.0.0/16", "size": 24}]}"#,
    )
    .unwrap();
    d.spawn();
    let ipam = |d: &TestDaemon, n: &str| {
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
            n,
        ])
        .trim()
        .to_string()
    };
    assert_eq!(ipam(&d, "bridge"), "10.123.0.0/24 10.123.0.1");
    let out = d.ok(&[
        "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    let ip: std::net::Ipv4Addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {out}"));
    assert!(
        ip.octets()[..3] == [10, 123, 0] && ip.octets()[3] >= 128,
        "{ip}"
    );
    let link = d.ok(&["run", "--rm", "busybox", "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains("mtu 1400"), "{link}");
    d.ok(&["network", "create", "pooled"]);
    assert_eq!(ipam(&d, "pooled"), "10.124.0.0/24 10.124.0.1");
    // Another bip at the next start: nobody is on the bridge, so it moves.
    d.terminate();
    std::fs::write(&cfg, r#"{"bip": "10.125.7.1/24"}"#).unwrap();
    d.spawn();
    assert_eq!(ipam(&d, "bridge"), "10.125.7.0/24 10.125.7.1");
    d.ok(&["run", "--rm", "busybox", "true"]);
    let addrs = out_str(&d.host(&["ip", "-o", "-4", "addr", "show", "berth0"]));
    assert!(
        addrs.contains("10.125.7.1/24") && !addrs.contains("10.123.0.1"),
        "{addrs}"
    );
    // Bad input: berthd refuses to start and names the option.
    for (flag, want) in [
        ("--bip=10.9.0.0/24", "10.9.0.1/24"),
        ("--bip=nonsense", "invalid --bip"),
        ("--default-address-pool=base=10.0.0.0/16,size=8", "between"),
    ] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"));
        c.args([flag, "--config-file", "/nonexistent.json", "--data-root"])
            .arg(d.root.join("bad-d"))
            .arg("--exec-root")
            .arg(d.root.join("bad-x"))
            .arg("-H")
            .arg(format!("unix://{}", d.root.join("bad.sock").display()));
        let o = berth_testutil::harness::run_with_timeout(c, T, None);
        assert!(!o.status.success(), "{flag} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{flag}: {err}");
    }
}

/// Endpoint settings beyond addresses, as dockerd keeps them: `--link` on a user network
/// (the alias resolves for the linking container only), a MAC address per network (the CLI's
/// `--mac-address`, the API's endpoint `MacAddress`, and the container-wide `MacAddress` of
/// older API versions and docker-py), driver options echoed; bad ones refused.
#[test]
fn endpoint_links_mac_addresses_and_driver_options() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["network", "create", "--subnet", "10.78.0.0/24", "linknet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "linknet",
        "--link",
        "upstream:bar",
        "--mac-address",
        "02:42:0a:4e:00:99",
        "busybox",
        "sleep",
        "300",
    ]);
    // The linked container may come later, as with dockerd.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "upstream",
        "--network",
        "linknet",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "bystander",
        "--network",
        "linknet",
        "busybox",
        "sleep",
        "300",
    ]);
    let up_ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.linknet.IPAddress}}",
        "upstream",
    ]);
    let o = d.docker(&["exec", "client", "nslookup", "bar"]);
    assert!(out_str(&o).contains(up_ip.trim()), "{}", out_str(&o));
    let o = d.docker(&["exec", "bystander", "nslookup", "bar"]);
    assert!(!out_str(&o).contains(up_ip.trim()), "{}", out_str(&o));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.linknet.Links}}",
            "client"
        ])
        .trim(),
        r#"["upstream:bar"]"#
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.linknet.MacAddress}}",
            "client"
        ])
        .trim(),
        "02:42:0a:4e:00:99"
    );
    assert_eq!(
        d.ok(&["exec", "client", "cat", "/sys/class/net/eth0/address"])
            .trim(),
        "02:42:0a:4e:00:99"
    );

    // docker-py's shape: the MAC address in the config, driver options on the default bridge.
    let r = d.http(
        "POST",
        "/v1.43/containers/create?name=pyish",
        Some(r#"{"Image":"busybox","Cmd":["sleep","300"],"MacAddress":"02:42:ac:11:00:0a",
            "HostConfig":{"NetworkMode":"bridge"},
            "NetworkingConfig":{"EndpointsConfig":{"bridge":{"DriverOpts":{"com.docker-py.setting":"on"}}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.ok(&["start", "pyish"]);
    let v = d.http("GET", "/v1.43/containers/pyish/json", None).json();
    assert_eq!(v["NetworkSettings"]["MacAddress"], "02:42:ac:11:00:0a");
    let br = &v["NetworkSettings"]["Networks"]["bridge"];
    assert_eq!(br["MacAddress"], "02:42:ac:11:00:0a");
    assert_eq!(br["DriverOpts"]["com.docker-py.setting"], "on");
    assert_eq!(
        d.ok(&["exec", "pyish", "cat", "/sys/class/net/eth0/address"])
            .trim(),
        "02:42:ac:11:00:0a"
    );

    // Unset endpoint fields are there as null, as dockerd writes them.
    let v = d.http("GET", "/containers/client/json", None).json();
    let ep = v["NetworkSettings"]["Networks"]["linknet"]
        .as_object()
        .unwrap()
        .clone();
    for k in ["IPAMConfig", "Aliases", "DriverOpts"] {
        assert_eq!(ep.get(k), Some(&serde_json::Value::Null), "{k}: {ep:?}");
    }

    // A connect to a created container keeps its MAC address until it runs.
    d.ok(&["create", "--name", "later", "busybox", "sleep", "300"]);
    let r = d.http(
        "POST",
        "/networks/linknet/connect",
        Some(r#"{"Container":"later","EndpointConfig":{"MacAddress":"02:42:0a:4e:00:aa"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.linknet.MacAddress}}",
            "later"
        ])
        .trim(),
        "02:42:0a:4e:00:aa"
    );

    // Bad input: nothing is created.
    for (body, what) in [
        (r#""MacAddress":"02:42:zz:11:00:0a""#, "invalid MAC address"),
        (r#""MacAddress":"01:00:5e:00:00:01""#, "multicast"),
        (
            r#""NetworkingConfig":{"EndpointsConfig":{"linknet":{"Links":["a:b:c"]}}},"HostConfig":{"NetworkMode":"linknet"}"#,
            "invalid link",
        ),
    ] {
        let r = d.http(
            "POST",
            "/containers/create?name=bad",
            Some(&format!(r#"{{"Image":"busybox",{body}}}"#)),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(what), "{body}: {}", r.text());
    }
    assert_eq!(d.docker(&["inspect", "bad"]).status.code(), Some(1));
    d.ok(&["create", "--name", "loner", "busybox"]);
    let r = d.http(
        "POST",
        "/networks/linknet/connect",
        Some(r#"{"Container":"loner","EndpointConfig":{"MacAddress":"nope"}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid MAC address"), "{}", r.text());
    let members = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .Containers}}",
        "linknet",
    ]);
    assert!(!members.contains("loner"), "{members}");
}

/// Legacy links on the default bridge (`--link child:alias`), as dockerd: hosts entries and
/// `ALIAS_*` variables for a running child, `/child:/parent/alias` in inspect, `rm --link`;
/// a missing or stopped child and host mode refused.
#[test]
fn legacy_links_on_the_default_bridge() {
    let d = TestDaemon::start_in_netns();
    httpd(&d, "db", &["-e", "FOO=1", "--expose", "80"]);
    let db_ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "db",
    ]);
    let db_ip = db_ip.trim();
    d.ok(&[
        "run", "-d", "--name", "web", "--link", "db:store", "busybox", "sleep", "300",
    ]);
    let env = d.ok(&["exec", "web", "env"]);
    for want in [
        "STORE_NAME=/web/store".to_string(),
        "STORE_ENV_FOO=1".to_string(),
        format!("STORE_PORT=tcp://{db_ip}:80"),
        format!("STORE_PORT_80_TCP_ADDR={db_ip}"),
        "STORE_PORT_80_TCP_PORT=80".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} in {env}");
    }
    assert!(!env.contains("STORE_ENV_PATH"), "{env}");
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(db_ip) && l.split_whitespace().any(|w| w == "store")),
        "{hosts}"
    );
    let o = d.docker(&[
        "exec",
        "web",
        "timeout",
        "5",
        "wget",
        "-qO-",
        "http://store/",
    ]);
    assert!(
        out_str(&o).starts_with("hello-from-"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        r#"["/db:/web/store"]"#
    );
    let names_of_db = |d: &TestDaemon| {
        let list = d.http("GET", "/containers/json", None).json();
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["Names"][0] == "/db")
            .map(|c| c["Names"].clone())
            .unwrap()
    };
    assert_eq!(names_of_db(&d), serde_json::json!(["/db", "/web/store"]));
    // rm --link: the parent forgets it, both containers stay.
    d.ok(&["rm", "--link", "web/store"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        "null"
    );
    assert_eq!(d.ok(&["ps", "-q"]).lines().count(), 2);
    assert_eq!(names_of_db(&d), serde_json::json!(["/db"]));
    let o = d.docker(&["rm", "--link", "web"]);
    assert!(
        err_str(&o).contains("cannot remove the default link name"),
        "{}",
        err_str(&o)
    );

    // Bad input.
    let o = d.docker(&["create", "--link", "nosuch:x", "busybox"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err_str(&o).contains("could not get container for nosuch"),
        "{}",
        err_str(&o)
    );
    let o = d.docker(&["create", "--network", "host", "--link", "db:x", "busybox"]);
    assert!(
        err_str(&o).contains("conflicting options"),
        "{}",
        err_str(&o)
    );
    d.ok(&["create", "--name", "sleeper", "busybox", "sleep", "300"]);
    d.ok(&[
        "create",
        "--name",
        "needy",
        "--link",
        "sleeper:s",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["start", "needy"]);
    assert!(
        err_str(&o).contains("Cannot link to a non running container: /sleeper AS /needy/s"),
        "{}",
        err_str(&o)
    );
    // The refused start left nothing wired.
    let members = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "bridge"]);
    assert_eq!(members.trim(), "2");
}

/// With `--domainname`, /etc/hosts names the container by its FQDN first, as dockerd writes it.
#[test]
fn hosts_file_names_the_fqdn_with_a_domainname() {
    let d = TestDaemon::start_in_netns();
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "hh",
        "--domainname",
        "example.com",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let line = hosts.lines().find(|l| l.contains("hh")).unwrap_or_default();
    assert_eq!(
        line.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["hh.example.com", "hh"],
        "{hosts}"
    );
}

/// dockerd's conflicts between a `container:` network mode and the options it cannot have, and
/// its warning for ports published in host mode; nothing is created for a refused request.
#[test]
fn network_mode_conflicts_and_the_host_mode_warning() {
    let d = TestDaemon::start_in_netns();
    d.ok(&["create", "--name", "base", "busybox", "sleep", "300"]);
    for (args, what) in [
        (
            vec!["-p", "80:80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["-P"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--expose", "80"],
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            vec!["--hostname", "x"],
            "conflicting options: hostname and the network mode",
        ),
        (
            vec!["--dns", "1.1.1.1"],
            "conflicting options: dns and the network mode",
        ),
        (
            vec!["--add-host", "a:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ] {
        let mut a = vec!["create", "--network", "container:base"];
        a.extend(args);
        a.push("busybox");
        let o = d.docker(&a);
        assert_ne!(o.status.code(), Some(0), "{a:?}");
        assert!(err_str(&o).contains(what), "{a:?}: {}", err_str(&o));
    }
    // The docker CLI checks some of these itself: the API answers for other clients.
    for (extra, what) in [
        (r#""Hostname":"x""#, "hostname and the network mode"),
        (
            r#""ExposedPorts":{"80/tcp":{}}"#,
            "port exposing and the container type network mode",
        ),
        (
            r#""HostConfig":{"NetworkMode":"container:base","Dns":["1.1.1.1"]}"#,
            "dns and the network mode",
        ),
        (
            r#""HostConfig":{"NetworkMode":"container:base","ExtraHosts":["a:1.2.3.4"]}"#,
            "custom host-to-IP mapping",
        ),
        (
            r#""HostConfig":{"NetworkMode":"container:base","PortBindings":{"80/tcp":[{"HostPort":"80"}]}}"#,
            "port publishing and the container type network mode",
        ),
    ] {
        let hc = if extra.contains("HostConfig") {
            String::new()
        } else {
            r#","HostConfig":{"NetworkMode":"container:base"}"#.to_string()
        };
        let r = d.http(
            "POST",
            "/containers/create",
            Some(&format!(r#"{{"Image":"busybox",{extra}{hc}}}"#)),
        );
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
        assert!(r.text().contains(what), "{extra}: {}", r.text());
    }
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Image":"busybox","MacAddress":"02:42:ac:11:00:0a","HostConfig":{"NetworkMode":"host"}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("conflicting options: mac-address and the network mode"),
        "{}",
        r.text()
    );
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
    let o = d.docker(&["create", "--network", "host", "-p", "80:80", "busybox"]);
    assert_eq!(o.status.code(), Some(0), "{}", err_str(&o));
    assert!(
        err_str(&o).contains("Published ports are discarded when using host network mode"),
        "{}",
        err_str(&o)
    );
}

/// `--aux-address` sets addresses aside (never handed out, refused as a static address, in
/// inspect); `--link-local-ip` puts further addresses on the interface (in inspect too); bad
/// ones are refused and nothing is created.
#[test]
fn auxiliary_addresses_and_link_local_ips() {
    let d = TestDaemon::start_in_netns();
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.79.0.0/24",
        "--aux-address",
        "a=10.79.0.2",
        "--aux-address",
        "b=10.79.0.3",
        "auxnet",
    ]);
    let ipam = d.ok(&["network", "inspect", "-f", "{{json .IPAM}}", "auxnet"]);
    let v: serde_json::Value = serde_json::from_str(ipam.trim()).unwrap();
    assert_eq!(v["Options"], serde_json::Value::Null, "{v}");
    assert_eq!(
        v["Config"][0]["AuxiliaryAddresses"]["a"], "10.79.0.2",
        "{v}"
    );
    assert_eq!(
        v["Config"][0]["AuxiliaryAddresses"]["b"], "10.79.0.3",
        "{v}"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "auxnet",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.auxnet.IPAddress}}",
        "c1",
    ]);
    assert_eq!(ip.trim(), "10.79.0.4");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "auxnet",
        "--ip",
        "10.79.0.2",
        "busybox",
        "true",
    ]);
    assert!(
        err_str(&o).contains("Address already in use"),
        "{}",
        err_str(&o)
    );
    // The failed `run --rm` returned (dockerd removes such a container) and left nothing.
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
    // The docker CLI checks the subnet itself; the API answers for other clients.
    let o = d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.80.9.0/24",
        "--aux-address",
        "x=10.81.0.1",
        "badaux",
    ]);
    assert!(
        err_str(&o).contains("no matching subnet for aux-address"),
        "{}",
        err_str(&o)
    );
    for (ipam, what) in [
        (
            r#"{"Subnet":"10.80.9.0/24","AuxiliaryAddresses":{"x":"10.81.0.1"}}"#,
            "auxiliary address: (x:10.81.0.1) must belong to the master pool: 10.80.9.0/24",
        ),
        (
            r#"{"AuxiliaryAddresses":{"x":"10.81.0.1"}}"#,
            "need a subnet",
        ),
    ] {
        let r = d.http(
            "POST",
            "/networks/create",
            Some(&format!(
                r#"{{"Name":"badaux","IPAM":{{"Config":[{ipam}]}}}}"#
            )),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(what), "{ipam}: {}", r.text());
    }
    let r = d.http(
        "POST",
        "/networks/create",
        Some(r#"{"Name":"badaux","IPAM":{"Config":[{"Subnet":"10.80.9.0/24","AuxiliaryAddresses":{"x":"nope"}}]}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("failed to parse secondary address x"),
        "{}",
        r.text()
    );
    assert_ne!(
        d.docker(&["network", "inspect", "badaux"]).status.code(),
        Some(0)
    );

    d.ok(&[
        "run",
        "-d",
        "--name",
        "ll",
        "--link-local-ip",
        "169.254.8.8",
        "busybox",
        "sleep",
        "300",
    ]);
    let addrs = d.ok(&["exec", "ll", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addrs.contains("169.254.8.8/16"), "{addrs}");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.bridge.IPAMConfig.LinkLocalIPs}}",
            "ll"
        ])
        .trim(),
        r#"["169.254.8.8"]"#
    );
    let r = d.http(
        "POST",
        "/containers/create?name=badll",
        Some(r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"LinkLocalIPs":["nope"]}}}}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("invalid link-local IP address: nope"),
        "{}",
        r.text()
    );
    assert_ne!(d.docker(&["inspect", "badll"]).status.code(), Some(0));
}
