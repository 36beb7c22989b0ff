//! netns + link + ipam against the kernel, inside private network namespaces (root only).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use berth_network::ipam::{self, Pool};
use berth_network::link::{self, BridgeConfig, EndpointConfig};
use berth_network::netns;
use common::{in_private_netns, is_root, run, run_in_ns, Ns};
use ipnet::Ipv4Net;

fn endpoint(ns: &Ns, host: &str, ip: &str, gw: Option<&str>) -> EndpointConfig {
    let address: Ipv4Net = ip.parse().unwrap();
    EndpointConfig {
        bridge: "br-test".into(),
        host_ifname: host.into(),
        container_ifname: "eth0".into(),
        netns: ns.path.clone(),
        address,
        gateway: gw.map(|g| g.parse().unwrap()),
        address6: None,
        gateway6: None,
        link_local: Vec::new(),
        mac: link::mac_for(address.addr()),
        mtu: 1400,
    }
}

fn bridge() -> BridgeConfig {
    BridgeConfig {
        name: "br-test".into(),
        address: "10.77.0.1/24".parse().unwrap(),
        address6: None,
        mtu: 1400,
    }
}

#[test]
fn netns_create_has_lo_up_and_remove_is_idempotent() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = Ns::new();
    let out = run_in_ns(&ns.path, &["ip", "-o", "link", "show", "lo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("UP"), "lo not up: {text}");
    // A namespace file that exists already is refused, not mounted over.
    let err = netns::create(&ns.path).unwrap_err();
    assert!(
        err.to_string().contains(&ns.path.display().to_string()),
        "{err}"
    );
    netns::remove(&ns.path).unwrap();
    assert!(!ns.path.exists());
    netns::remove(&ns.path).unwrap();
    // run_in really enters: the new namespace has only lo.
    let ns2 = Ns::new();
    let links = netns::run_in(&ns2.path, || link::list_links_with_prefix(""))
        .unwrap()
        .unwrap();
    assert_eq!(links, vec!["lo".to_string()]);
}

#[test]
fn bridge_and_veth_give_the_container_an_address_and_a_default_route() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            link::ensure_bridge(&bridge()).await.unwrap();
            // Again: idempotent.
            link::ensure_bridge(&bridge()).await.unwrap();
            // A new subnet replaces the old address instead of adding to it.
            let moved = BridgeConfig {
                address: "10.78.0.1/16".parse().unwrap(),
                address6: None,
                ..bridge()
            };
            link::ensure_bridge(&moved).await.unwrap();
            let br = run(&["ip", "-o", "-4", "addr", "show", "br-test"]);
            assert!(
                br.contains("10.78.0.1/16") && !br.contains("10.77.0.1"),
                "{br}"
            );
            link::ensure_bridge(&bridge()).await.unwrap();
            let br = run(&["ip", "-o", "-4", "addr", "show", "br-test"]);
            assert_eq!(br.lines().count(), 1, "{br}");
            assert!(link::exists("br-test").await.unwrap());
            assert!(!link::exists("br-nothere").await.unwrap());
            let br = run(&["ip", "-o", "addr", "show", "br-test"]);
            assert!(br.contains("10.77.0.1/24"), "{br}");
            let brlink = run(&["ip", "-o", "link", "show", "br-test"]);
            assert!(brlink.contains("mtu 1400"), "{brlink}");
            // A fixed MAC from the gateway address, kept as ports come and go.
            assert!(brlink.contains("02:42:0a:4d:00:01"), "{brlink}");

            let ns = Ns::new();
            let ep = endpoint(&ns, "vbtest1", "10.77.0.2/24", Some("10.77.0.1"));
            link::attach(&ep).await.unwrap();

            // Host end: enslaved to the bridge and up.
            let host = run(&["ip", "-o", "link", "show", "vbtest1"]);
            assert!(host.contains("master br-test"), "{host}");
            assert!(host.contains("mtu 1400"), "{host}");
            let detail = run(&["ip", "-d", "link", "show", "vbtest1"]);
            assert!(detail.contains("hairpin on"), "{detail}");
            assert_eq!(link::list_links_with_prefix("vb").unwrap(), vec!["vbtest1"]);

            // Inside: eth0 with MAC, MTU, address, default route.
            let inside = run_in_ns(&ns.path, &["ip", "-o", "addr", "show", "eth0"]);
            let inside = String::from_utf8_lossy(&inside.stdout);
            assert!(inside.contains("10.77.0.2/24"), "{inside}");
            let l = run_in_ns(&ns.path, &["ip", "-o", "link", "show", "eth0"]);
            let l = String::from_utf8_lossy(&l.stdout);
            assert!(l.contains("02:42:0a:4d:00:02"), "{l}");
            assert!(l.contains("mtu 1400") && l.contains("UP"), "{l}");
            let r = run_in_ns(&ns.path, &["ip", "-4", "route", "show", "default"]);
            let r = String::from_utf8_lossy(&r.stdout);
            assert!(r.contains("default via 10.77.0.1 dev eth0"), "{r}");
            // IPv4-only networks: no IPv6 on eth0 nor on the host end (as dockerd), lo keeps ::1.
            let v6 = run_in_ns(&ns.path, &["ip", "-6", "-o", "addr", "show"]);
            let v6 = String::from_utf8_lossy(&v6.stdout);
            assert!(!v6.contains("eth0"), "{v6}");
            assert!(v6.contains("::1"), "{v6}");
            let host6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/vbtest1/disable_ipv6");
            assert_eq!(host6.unwrap().trim(), "1");

            // Real traffic host → container through the bridge.
            let listener = netns::run_in(&ns.path, || TcpListener::bind("10.77.0.2:0"))
                .unwrap()
                .unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 5];
                s.read_exact(&mut b).unwrap();
                s.write_all(&b).unwrap();
            });
            let mut c = TcpStream::connect_timeout(
                &(Ipv4Addr::new(10, 77, 0, 2), port).into(),
                Duration::from_secs(5),
            )
            .unwrap();
            c.write_all(b"hello").unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hello");
            server.join().unwrap();

            let stats = link::link_stats("vbtest1").unwrap();
            assert!(stats.rx_packets > 0 && stats.tx_packets > 0, "{stats:?}");
            let inner = link::link_stats_in(&ns.path, "eth0").unwrap();
            assert!(inner.rx_bytes > 0, "{inner:?}");

            // The same host name again: a clear conflict, and nothing else changed.
            let ns2 = Ns::new();
            let err = link::attach(&endpoint(&ns2, "vbtest1", "10.77.0.3/24", None))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("already exists"), "{err}");
            assert_eq!(
                netns::run_in(&ns2.path, || link::list_links_with_prefix(""))
                    .unwrap()
                    .unwrap(),
                vec!["lo"]
            );

            link::detach("vbtest1").await.unwrap();
            assert!(!link::exists("vbtest1").await.unwrap());
            link::detach("vbtest1").await.unwrap();
            let gone = run_in_ns(&ns.path, &["ip", "-o", "link", "show"]);
            assert!(!String::from_utf8_lossy(&gone.stdout).contains("eth0"));
            let brlink = run(&["ip", "-o", "link", "show", "br-test"]);
            assert!(brlink.contains("02:42:0a:4d:00:01"), "{brlink}");
            // A link of the bridge's name that is not a bridge is not taken over.
            run(&[
                "ip",
                "link",
                "add",
                "br-dummy",
                "type",
                "veth",
                "peer",
                "name",
                "br-dummy-p",
            ]);
            let err = link::ensure_bridge(&BridgeConfig {
                name: "br-dummy".into(),
                ..bridge()
            })
            .await
            .unwrap_err();
            assert!(err.to_string().contains("not a bridge"), "{err}");
            link::delete_link("br-test").await.unwrap();
            assert!(!link::exists("br-test").await.unwrap());
        });
    });
}

#[test]
fn failed_attach_leaves_nothing_behind() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        link::ensure_bridge_sync(&bridge()).unwrap();
        let ns = Ns::new();
        // The gateway is not on the interface's subnet: the route fails after the veth exists.
        let ep = endpoint(&ns, "vbtest2", "10.77.0.2/24", Some("192.0.2.1"));
        let err = link::attach_sync(&ep).unwrap_err();
        assert!(err.to_string().contains("default route"), "{err}");
        assert!(!link::exists_sync("vbtest2").unwrap());
        assert_eq!(
            netns::run_in(&ns.path, || link::list_links_with_prefix(""))
                .unwrap()
                .unwrap(),
            vec!["lo"]
        );
        // A missing bridge and bad names are clear errors.
        let mut ep = endpoint(&ns, "vbtest3", "10.77.0.2/24", None);
        ep.bridge = "br-missing".into();
        let err = link::attach_sync(&ep).unwrap_err();
        assert!(err.to_string().contains("br-missing"), "{err}");
        let mut ep = endpoint(&ns, "this-name-is-far-too-long", "10.77.0.2/24", None);
        ep.bridge = "br-test".into();
        let err = link::attach_sync(&ep).unwrap_err();
        assert!(err.to_string().contains("invalid interface name"), "{err}");
    });
}

#[test]
fn routed_subnets_are_skipped_when_picking() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let br = BridgeConfig {
            name: "br-docker".into(),
            address: "172.17.0.1/16".parse().unwrap(),
            address6: None,
            mtu: 1500,
        };
        link::ensure_bridge_sync(&br).unwrap();
        let routed = ipam::routed_subnets().unwrap();
        assert!(
            routed.contains(&"172.17.0.0/16".parse().unwrap()),
            "{routed:?}"
        );
        let picked = ipam::pick_subnet(&ipam::default_pools(), &routed).unwrap();
        assert_eq!(picked, "172.18.0.0/16".parse::<Ipv4Net>().unwrap());
        let pool = Pool::new(picked, None, None).unwrap();
        assert_eq!(
            pool.gateway_net(),
            "172.18.0.1/16".parse::<Ipv4Net>().unwrap()
        );
    });
}

/// The per-container lifecycle as the daemon runs it, on two networks, then torn down: nothing
/// of it is left (no veth, no namespace file, no rule, no lease).
#[test]
fn a_container_on_two_networks_leaves_nothing_behind() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        use berth_network::firewall::{self, NetworkRules, PortRule, Proto, Ruleset};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let nets = [("br-one", "10.60.0.0/24"), ("br-two", "10.61.0.0/24")];
        let mut pools: Vec<Pool> = nets
            .iter()
            .map(|(_, s)| Pool::new(s.parse().unwrap(), None, None).unwrap())
            .collect();
        for ((br, _), pool) in nets.iter().zip(&pools) {
            link::ensure_bridge_sync(&BridgeConfig {
                name: br.to_string(),
                address: pool.gateway_net(),
                address6: None,
                mtu: 1500,
            })
            .unwrap();
        }
        let ns = Ns::new();
        let mut ips = Vec::new();
        for (i, ((br, _), pool)) in nets.iter().zip(pools.iter_mut()).enumerate() {
            let ip = pool.allocate("ep1", None).unwrap();
            ips.push(ip);
            link::attach_sync(&EndpointConfig {
                bridge: br.to_string(),
                host_ifname: format!("vblife{i}"),
                container_ifname: format!("eth{i}"),
                netns: ns.path.clone(),
                address: pool.with_prefix(ip),
                // Only the first network gives the default route.
                gateway: (i == 0).then_some(pool.gateway),
                address6: None,
                gateway6: None,
                link_local: Vec::new(),
                mac: link::mac_for(ip),
                mtu: 1500,
            })
            .unwrap();
        }
        let rules = Ruleset {
            networks: nets
                .iter()
                .zip(&pools)
                .map(|((br, _), p)| NetworkRules {
                    bridge: br.to_string(),
                    subnet: p.subnet,
                    subnet6: None,
                    internal: false,
                    masquerade: true,
                    icc: true,
                })
                .collect(),
            ports: vec![PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 18081,
                container_ip: ips[0],
                container_ip6: None,
                container_port: 80,
                bridge: "br-one".into(),
            }],
        };
        let held = berth_network::ports::reserve(Proto::Tcp, None, 18081).unwrap();
        firewall::apply("berth", &rules).unwrap();
        let inside = run_in_ns(&ns.path, &["ip", "-o", "-4", "addr"]);
        let inside = String::from_utf8_lossy(&inside.stdout).into_owned();
        assert!(
            inside.contains("eth0") && inside.contains("10.60.0.2/24"),
            "{inside}"
        );
        assert!(
            inside.contains("eth1") && inside.contains("10.61.0.2/24"),
            "{inside}"
        );
        let routes = run_in_ns(&ns.path, &["ip", "-4", "route"]);
        let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
        assert_eq!(routes.matches("default").count(), 1, "{routes}");

        // Teardown, in the daemon's order.
        firewall::apply(
            "berth",
            &Ruleset {
                networks: rules.networks.clone(),
                ports: vec![],
            },
        )
        .unwrap();
        drop(held);
        rt.block_on(async {
            link::detach("vblife0").await.unwrap();
            link::detach("vblife1").await.unwrap();
        });
        netns::remove(&ns.path).unwrap();
        for pool in &mut pools {
            pool.release_owner("ep1");
            assert!(pool.leases.is_empty());
        }
        assert!(link::list_links_with_prefix("vb").unwrap().is_empty());
        assert!(!ns.path.exists());
        let table = run(&["nft", "list", "table", "ip", "berth"]);
        assert!(!table.contains("18081"), "{table}");
        // The port is free again.
        drop(berth_network::ports::reserve(Proto::Tcp, None, 18081).unwrap());
    });
}

#[test]
fn dual_stack_endpoint_gets_v6_address_route_and_traffic() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let br = BridgeConfig {
            address6: Some("fd00:77::1/64".parse().unwrap()),
            ..bridge()
        };
        link::ensure_bridge_sync(&br).unwrap();
        // Idempotent, and a stale global address from another subnet is replaced.
        let moved = BridgeConfig {
            address6: Some("fd00:78::1/64".parse().unwrap()),
            ..bridge()
        };
        link::ensure_bridge_sync(&moved).unwrap();
        link::ensure_bridge_sync(&br).unwrap();
        let b6 = run(&[
            "ip", "-6", "-o", "addr", "show", "br-test", "scope", "global",
        ]);
        assert!(
            b6.contains("fd00:77::1/64") && !b6.contains("fd00:78"),
            "{b6}"
        );
        assert!(!b6.contains("tentative"), "{b6}");
        link::enable_ipv6_forwarding().unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding")
                .unwrap()
                .trim(),
            "1"
        );

        let ns = Ns::new();
        let mut ep = endpoint(&ns, "vbtest6", "10.77.0.2/24", Some("10.77.0.1"));
        ep.address6 = Some("fd00:77::2/64".parse().unwrap());
        ep.gateway6 = Some("fd00:77::1".parse().unwrap());
        link::attach_sync(&ep).unwrap();
        let a = run_in_ns(&ns.path, &["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
        let a = String::from_utf8_lossy(&a.stdout);
        // Usable at once: no duplicate address detection pending.
        let global = a
            .lines()
            .find(|l| l.contains("fd00:77::2/64"))
            .unwrap_or_default();
        assert!(
            global.contains("nodad") && !global.contains("tentative"),
            "{a}"
        );
        let r = run_in_ns(&ns.path, &["ip", "-6", "route", "show", "default"]);
        let r = String::from_utf8_lossy(&r.stdout);
        assert!(r.contains("default via fd00:77::1 dev eth0"), "{r}");
        // The host end stays without IPv6.
        let host6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/vbtest6/disable_ipv6");
        assert_eq!(host6.unwrap().trim(), "1");

        let listener = netns::run_in(&ns.path, || TcpListener::bind("[fd00:77::2]:0"))
            .unwrap()
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, peer) = listener.accept().unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            peer
        });
        let to: std::net::SocketAddr = format!("[fd00:77::2]:{port}").parse().unwrap();
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        c.write_all(b"v6").unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"v6");
        let peer = server.join().unwrap();
        assert_eq!(peer.ip().to_string(), "fd00:77::1");

        // Back to IPv4 only: the bridge loses its global IPv6 address.
        link::delete_link_sync("vbtest6").unwrap();
        link::ensure_bridge_sync(&bridge()).unwrap();
        let b6 = run(&[
            "ip", "-6", "-o", "addr", "show", "br-test", "scope", "global",
        ]);
        assert!(b6.trim().is_empty(), "{b6}");
    });
}
