//! ports + firewall with real traffic, inside private network namespaces (root only).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use berth_network::firewall::{self, NetworkRules, PortRule, Proto, Ruleset};
use berth_network::link::{self, BridgeConfig, EndpointConfig};
use berth_network::{netns, ports, NetError};
use common::{in_private_netns, is_root, run, Ns};

fn bridge(name: &str, gw: &str) {
    link::ensure_bridge_sync(&BridgeConfig {
        name: name.into(),
        address: gw.parse().unwrap(),
        address6: None,
        mtu: 1500,
    })
    .unwrap();
}

/// A namespace on `bridge` with `ip`/24 and a default route via `gw`.
fn container(bridge: &str, host_if: &str, ip: &str, gw: &str) -> Ns {
    let ns = Ns::new();
    let address: ipnet::Ipv4Net = format!("{ip}/24").parse().unwrap();
    link::attach_sync(&EndpointConfig {
        bridge: bridge.into(),
        host_ifname: host_if.into(),
        container_ifname: "eth0".into(),
        netns: ns.path.clone(),
        address,
        gateway: Some(gw.parse().unwrap()),
        address6: None,
        gateway6: None,
        link_local: Vec::new(),
        mac: link::mac_for(address.addr()),
        mtu: 1500,
    })
    .unwrap();
    ns
}

/// A TCP server inside `ns` that answers each connection with the peer address it saw.
fn serve_peer_address(ns: &Path, addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = netns::run_in(ns, move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let peer = s
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = std::io::Write::write_all(&mut s, peer.as_bytes());
        }
    });
}

/// Connects (from the calling thread's namespace) and returns what the server said, or the
/// error.
fn fetch(to: SocketAddr) -> std::io::Result<String> {
    fetch_within(to, Duration::from_secs(5))
}

/// For the connections that must fail: a dropped SYN shows as a timeout, so keep it short.
fn fetch_within(to: SocketAddr, connect: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, connect)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn fetch_from(ns: &Path, to: &str) -> std::io::Result<String> {
    let to: SocketAddr = to.parse().unwrap();
    netns::run_in(ns, move || fetch(to)).unwrap()
}

fn blocked_from(ns: &Path, to: &str) -> bool {
    let to: SocketAddr = to.parse().unwrap();
    netns::run_in(ns, move || fetch_within(to, Duration::from_secs(1)))
        .unwrap()
        .is_err()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn reserve_holds_ports_without_reuse_and_names_the_conflict() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let r = ports::reserve(Proto::Tcp, None, 0).unwrap();
        assert!(r.port > 0);
        let err = ports::reserve(Proto::Tcp, None, r.port).unwrap_err();
        assert!(matches!(err, NetError::Conflict(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 0.0.0.0:{} failed: port is already allocated",
                r.port
            )
        );
        // The same port on a specific address is taken too (0.0.0.0 covers it).
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(matches!(
            ports::reserve(Proto::Tcp, lo, r.port),
            Err(NetError::Conflict(_))
        ));
        // UDP is another space.
        let u = ports::reserve(Proto::Udp, None, r.port).unwrap();
        assert_eq!(u.port, r.port);
        let err = ports::reserve(Proto::Udp, lo, r.port).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        // Nothing else can take it while held, even with SO_REUSEADDR (std sets it).
        assert!(TcpListener::bind(("0.0.0.0", r.port)).is_err());
        let port = r.port;
        drop(r);
        let again = ports::reserve(Proto::Tcp, None, port).unwrap();
        assert_eq!(again.port, port);
        // An address that is not the host's.
        let err = ports::reserve(Proto::Tcp, Some("192.0.2.7".parse().unwrap()), 80).unwrap_err();
        assert!(err.to_string().contains("Bind for 192.0.2.7:80"), "{err}");
    });
}

#[test]
fn published_ports_nat_isolation_and_internal_networks_with_real_traffic() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        bridge("berth0", "10.80.0.1/24");
        bridge("br-int", "10.81.0.1/24");
        bridge("br-a", "10.83.0.1/24");
        // "The world": a bridge berth does not manage, with a server behind it.
        bridge("br-out", "10.82.0.1/24");
        let web = container("berth0", "vbweb", "10.80.0.2", "10.80.0.1");
        let inner = container("br-int", "vbint", "10.81.0.2", "10.81.0.1");
        let other = container("br-a", "vbother", "10.83.0.2", "10.83.0.1");
        let world = container("br-out", "vbworld", "10.82.0.2", "10.82.0.1");
        serve_peer_address(&web.path, "10.80.0.2:80");
        serve_peer_address(&other.path, "10.83.0.2:80");
        serve_peer_address(&world.path, "10.82.0.2:80");

        let internal = NetworkRules {
            bridge: "br-int".into(),
            subnet: "10.81.0.0/24".parse().unwrap(),
            subnet6: None,
            internal: true,
            masquerade: true,
            icc: true,
        };
        let rules = Ruleset {
            networks: vec![
                NetworkRules {
                    bridge: "berth0".into(),
                    subnet: "10.80.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: false,
                    masquerade: true,
                    icc: true,
                },
                NetworkRules {
                    bridge: "br-a".into(),
                    subnet: "10.83.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: false,
                    ..internal.clone()
                },
                internal.clone(),
            ],
            ports: vec![PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 18080,
                container_ip: "10.80.0.2".parse().unwrap(),
                container_ip6: None,
                container_port: 80,
                bridge: "berth0".into(),
            }],
        };
        firewall::apply("berth", &rules).unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/berth0/route_localnet")
                .unwrap()
                .trim(),
            "1"
        );

        // Published port from the host itself: loopback (masqueraded to the bridge address)
        // and the bridge address.
        assert_eq!(fetch(sa("127.0.0.1:18080")).unwrap(), "10.80.0.1");
        assert_eq!(fetch(sa("10.80.0.1:18080")).unwrap(), "10.80.0.1");
        // Hairpin: the container reaches its own published port through the host.
        assert_eq!(
            fetch_from(&web.path, "10.80.0.1:18080").unwrap(),
            "10.80.0.1"
        );
        // Outbound traffic is masqueraded behind the host's address on the way out.
        assert_eq!(fetch_from(&web.path, "10.82.0.2:80").unwrap(), "10.82.0.1");
        // Two berth networks do not route to each other.
        assert!(blocked_from(&web.path, "10.83.0.2:80"));
        // ... but reach a published port through the host's address on their side.
        assert_eq!(
            fetch_from(&other.path, "10.83.0.1:18080").unwrap(),
            "10.80.0.1"
        );
        // The internal network has no way out, published ports included.
        assert!(blocked_from(&inner.path, "10.81.0.1:18080"));
        assert!(blocked_from(&inner.path, "10.82.0.2:80"));
        // Without the rules, the bridge network reaches the other one (so the drop above was
        // the isolation, not a missing route).
        firewall::apply("berth", &Ruleset::default()).unwrap();
        let listed = run(&["nft", "list", "table", "ip", "berth"]);
        assert!(!listed.contains("dnat to"), "{listed}");
        assert!(fetch(sa("127.0.0.1:18080")).is_err());
        assert_eq!(fetch_from(&web.path, "10.83.0.2:80").unwrap(), "10.80.0.2");

        firewall::remove("berth").unwrap();
        let tables = run(&["nft", "list", "tables"]);
        assert!(!tables.contains("berth"), "{tables}");
        // Removing twice is fine.
        firewall::remove("berth").unwrap();
        drop((web, inner, other, world));
    });
}

#[test]
fn icc_false_blocks_containers_of_one_bridge_but_not_the_host() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        bridge("br-q", "10.84.0.1/24");
        let a = container("br-q", "vbqa", "10.84.0.2", "10.84.0.1");
        let b = container("br-q", "vbqb", "10.84.0.3", "10.84.0.1");
        serve_peer_address(&b.path, "10.84.0.3:80");
        assert_eq!(fetch_from(&a.path, "10.84.0.3:80").unwrap(), "10.84.0.2");
        let rules = Ruleset {
            networks: vec![NetworkRules {
                bridge: "br-q".into(),
                subnet: "10.84.0.0/24".parse().unwrap(),
                subnet6: None,
                internal: false,
                masquerade: true,
                icc: false,
            }],
            ports: vec![],
        };
        firewall::apply("berth", &rules).unwrap();
        // Without br_netfilter the forward rule never sees bridged traffic: the daemon also
        // isolates the ports.
        link::set_isolated("vbqa", true).unwrap();
        link::set_isolated("vbqb", true).unwrap();
        assert!(blocked_from(&a.path, "10.84.0.3:80"));
        assert_eq!(fetch(sa("10.84.0.3:80")).unwrap(), "10.84.0.1");
        firewall::remove("berth").unwrap();
        link::set_isolated("vbqa", false).unwrap();
        link::set_isolated("vbqb", false).unwrap();
        assert_eq!(fetch_from(&a.path, "10.84.0.3:80").unwrap(), "10.84.0.2");
    });
}

/// berth needs no br_netfilter: a neighbour on the same bridge reaches a published port through
/// the gateway (DNAT, and masquerade so the answer comes back through the host) and the
/// container directly, with the bridge's netfilter calls on and off.
#[test]
fn same_bridge_neighbour_reaches_published_port_with_and_without_br_netfilter() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        bridge("br-h", "10.85.0.1/24");
        let web = container("br-h", "vbhweb", "10.85.0.2", "10.85.0.1");
        let client = container("br-h", "vbhcli", "10.85.0.3", "10.85.0.1");
        serve_peer_address(&web.path, "10.85.0.2:80");
        let rules = Ruleset {
            networks: vec![NetworkRules {
                bridge: "br-h".into(),
                subnet: "10.85.0.0/24".parse().unwrap(),
                subnet6: None,
                internal: false,
                masquerade: true,
                icc: true,
            }],
            ports: vec![PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 18081,
                container_ip: "10.85.0.2".parse().unwrap(),
                container_ip6: None,
                container_port: 80,
                bridge: "br-h".into(),
            }],
        };
        firewall::apply("berth", &rules).unwrap();
        let knob = Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables");
        let settings: &[&str] = if knob.exists() { &["1", "0"] } else { &["-"] };
        for setting in settings {
            if knob.exists() {
                std::fs::write(knob, setting).unwrap();
            }
            assert_eq!(
                fetch_from(&client.path, "10.85.0.1:18081").unwrap(),
                "10.85.0.1",
                "br_netfilter {setting}"
            );
            assert_eq!(
                fetch_from(&client.path, "10.85.0.2:80").unwrap(),
                "10.85.0.3",
                "br_netfilter {setting}"
            );
        }
        firewall::remove("berth").unwrap();
        drop((web, client));
    });
}
