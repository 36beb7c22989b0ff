//! berth's nftables table (`inet berth` / `ip berth`), rendered whole from the daemon's state and
//! applied in one transaction: adding or removing a container's ports re-renders the table, and
//! applying at daemon start sweeps whatever a crash left.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::{NetError, Result};

/// One network's NAT and filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The IPv6 subnet, on IPv6 networks.
    pub subnet6: Option<Ipv6Net>,
    /// No traffic in or out of the subnet except among its members.
    pub internal: bool,
    /// Masquerade traffic leaving the subnet (Docker's `enable_ip_masquerade`, default true).
    pub masquerade: bool,
    /// Inter-container communication on this bridge (default true).
    pub icc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    /// None = all host addresses.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    /// The container's IPv6 address, on IPv6 networks: IPv6 clients are DNATed to it.
    pub container_ip6: Option<Ipv6Addr>,
    pub container_port: u16,
    pub bridge: String,
}

/// The whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
}

impl Proto {
    /// The nftables / Docker spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Proto {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(NetError::Invalid(format!("invalid proto: {s}"))),
        }
    }
}

/// Names go into the script quoted; anything that could close the quote or start a new
/// statement is refused (names come from the daemon, but a table is no place to find out).
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!(
            "invalid {what} name {name:?} for nftables: letters, digits, '-', '_' and '.' only"
        )))
    }
}

fn validate(table: &str, rules: &Ruleset) -> Result<()> {
    check_name("table", table)?;
    for n in &rules.networks {
        check_name("bridge", &n.bridge)?;
    }
    for p in &rules.ports {
        check_name("bridge", &p.bridge)?;
    }
    Ok(())
}

fn quoted_set(names: &[&str]) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The `nft -f` script that replaces the table `table` with `rules`.
///
/// One `ip` table: NAT for published ports and outbound traffic, and the filtering of routed
/// traffic between networks. It starts with an empty declaration so that the delete after it
/// is valid when the table does not exist yet; the whole script is one transaction. icc=false
/// drops bridge → same bridge here, which sees bridged traffic only with br_netfilter; without
/// it the daemon also isolates the ports ([`crate::link::set_isolated`]).
pub fn render(table: &str, rules: &Ruleset) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "table ip {table} {{}}");
    let _ = writeln!(s, "delete table ip {table}");
    let _ = writeln!(s, "table ip {table} {{");

    // Published ports, shared by traffic arriving from outside (prerouting) and traffic made
    // on the host itself, 127.0.0.1 included (output).
    let _ = writeln!(s, "\tchain publish {{");
    for p in &rules.ports {
        let daddr = match p.host_ip {
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            // An IPv6 host address has no place in an ip table.
            Some(IpAddr::V6(ip)) if !ip.is_unspecified() => continue,
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "\t\t{daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.proto,
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    let _ = writeln!(s, "\t}}");
    nat_hooks(&mut s, "");
    for n in &rules.networks {
        let (br, net) = (&n.bridge, n.subnet.trunc());
        // 127.0.0.1:hostPort sent out a bridge (route_localnet lets it route): the container
        // cannot answer 127.0.0.1, so it gets the bridge's address.
        let _ = writeln!(s, "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        // A container reaching a published port of its own network (its own included): without
        // this the answer would go straight back over the bridge from the wrong address.
        let _ = writeln!(
            s,
            "\t\toifname \"{br}\" ip saddr {net} ct status dnat masquerade"
        );
        if n.masquerade && !n.internal {
            let _ = writeln!(s, "\t\toifname != \"{br}\" ip saddr {net} masquerade");
        }
    }
    let _ = writeln!(s, "\t}}");

    forward_chain(&mut s, &rules.networks);
    let _ = writeln!(s, "}}");

    s
}

/// The `nft -f` script that replaces the table `ip6 {table}`: the IPv6 side of the networks
/// with an IPv6 subnet, the same policy as the `ip` table (masquerade out, internal networks
/// cut off, no routing between networks, icc) and published ports DNATed to containers'
/// IPv6 addresses. Always deleted first, so a daemon whose IPv6 networks are gone sweeps it;
/// declared again only when an IPv6 network exists.
///
/// `::1` is left to the userland proxy on `[::]:port`: the kernel never routes a loopback
/// source out of a bridge (IPv6 has no route_localnet), so a DNAT of it would blackhole.
pub fn render6(table: &str, rules: &Ruleset) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "table ip6 {table} {{}}");
    let _ = writeln!(s, "delete table ip6 {table}");
    let v6: Vec<(&NetworkRules, Ipv6Net)> = rules
        .networks
        .iter()
        .filter_map(|n| n.subnet6.map(|s6| (n, s6.trunc())))
        .collect();
    if v6.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip6 {table} {{");
    let _ = writeln!(s, "\tchain publish {{");
    for p in &rules.ports {
        let Some(cip6) = p.container_ip6 else {
            continue;
        };
        let daddr = match p.host_ip {
            Some(IpAddr::V6(ip)) if !ip.is_unspecified() => format!("ip6 daddr {ip} "),
            // An IPv4 host address has no place in an ip6 table.
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => continue,
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "\t\t{daddr}{proto} dport {hp} dnat to [{cip6}]:{cp}",
            proto = p.proto,
            hp = p.host_port,
            cp = p.container_port
        );
    }
    let _ = writeln!(s, "\t}}");
    nat_hooks(&mut s, "ip6 daddr != ::1 ");
    for (n, net) in &v6 {
        let br = &n.bridge;
        let _ = writeln!(
            s,
            "\t\toifname \"{br}\" ip6 saddr {net} ct status dnat masquerade"
        );
        if n.masquerade && !n.internal {
            let _ = writeln!(s, "\t\toifname != \"{br}\" ip6 saddr {net} masquerade");
        }
    }
    let _ = writeln!(s, "\t}}");

    forward_chain(&mut s, &rules.networks);
    let _ = writeln!(s, "}}");
    s
}

/// The NAT hook chains both tables share: published ports for traffic arriving (prerouting)
/// and made on the host (output, where `output_match` narrows which), and the head of the
/// postrouting chain the caller fills and closes.
fn nat_hooks(s: &mut String, output_match: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "\tchain prerouting {{");
    let _ = writeln!(
        s,
        "\t\ttype nat hook prerouting priority dstnat; policy accept;"
    );
    let _ = writeln!(s, "\t\tfib daddr type local jump publish");
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(s, "\tchain output {{");
    let _ = writeln!(s, "\t\ttype nat hook output priority -100; policy accept;");
    let _ = writeln!(s, "\t\t{output_match}fib daddr type local jump publish");
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(s, "\tchain postrouting {{");
    let _ = writeln!(
        s,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
}

/// The forward chain, the same policy in both tables (its rules match interfaces only).
fn forward_chain(s: &mut String, networks: &[NetworkRules]) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "\tchain forward {{");
    let _ = writeln!(
        s,
        "\t\ttype filter hook forward priority filter; policy accept;"
    );
    let _ = writeln!(s, "\t\tct state established,related accept");
    let bridges: Vec<&str> = networks.iter().map(|n| n.bridge.as_str()).collect();
    for n in networks.iter().filter(|n| n.internal) {
        let br = n.bridge.as_str();
        let _ = writeln!(s, "\t\tiifname \"{br}\" oifname != \"{br}\" drop");
        let _ = writeln!(s, "\t\toifname \"{br}\" iifname != \"{br}\" drop");
    }
    // A published port is for everyone but internal networks: a container of another network
    // (or of an icc=false one) reaches it through a host address, as with Docker.
    let _ = writeln!(s, "\t\tct status dnat accept");
    for n in networks {
        let br = n.bridge.as_str();
        // Docker's isolation: berth's networks do not route to one another.
        let others: Vec<&str> = bridges.iter().copied().filter(|b| *b != br).collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "\t\tiifname \"{br}\" oifname {} drop",
                quoted_set(&others)
            );
        }
        if !n.icc {
            let _ = writeln!(s, "\t\tiifname \"{br}\" oifname \"{br}\" drop");
        }
    }
    let _ = writeln!(s, "\t}}");
}

/// Runs `nft -f -` with `script` on stdin.
fn nft(script: &str) -> Result<()> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Nft(format!("run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::Nft(format!("write the ruleset to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Nft(format!("wait for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Nft(format!(
            "nft -f failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| NetError::Io {
        what: format!("write {value} to {path}"),
        source: e,
    })
}

/// Applies the script (one `nft -f -` run; atomic in the kernel). Also sets the sysctls the
/// rules need (ip_forward, route_localnet on the bridges for 127.0.0.1 publishing).
pub fn apply(table: &str, rules: &Ruleset) -> Result<()> {
    validate(table, rules)?;
    // Both families in one script: one transaction.
    let mut script = render(table, rules);
    if ipv6_available() {
        script.push_str(&render6(table, rules));
    }
    nft(&script)?;
    if !rules.networks.is_empty() {
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    for n in &rules.networks {
        // route_localnet: 127.0.0.1:hostPort DNATed to a container may leave through the
        // bridge. arp_announce=2: such a packet's ARP request must not carry 127.0.0.1 as its
        // sender (the container drops it, and the first connection hangs until something else
        // fills the neighbour cache), so the bridge's own address is used.
        for (key, value) in [("route_localnet", "1"), ("arp_announce", "2")] {
            let path = format!("/proc/sys/net/ipv4/conf/{}/{key}", n.bridge);
            match write_sysctl(&path, value) {
                Ok(()) => {}
                // The bridge is made later (or was removed): its setting comes with the next
                // apply.
                Err(NetError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Deletes the table (when the daemon is told to stop managing the firewall).
pub fn remove(table: &str) -> Result<()> {
    check_name("table", table)?;
    let mut script = format!("table ip {table} {{}}\ndelete table ip {table}\n");
    if ipv6_available() {
        script.push_str(&format!(
            "table ip6 {table} {{}}\ndelete table ip6 {table}\n"
        ));
    }
    nft(&script)
}

/// Whether the kernel has IPv6 (an ip6 table cannot be declared without it).
fn ipv6_available() -> bool {
    std::path::Path::new("/proc/net/if_inet6").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: &str) -> NetworkRules {
        NetworkRules {
            bridge: bridge.into(),
            subnet: subnet.parse().unwrap(),
            subnet6: None,
            internal: false,
            masquerade: true,
            icc: true,
        }
    }

    fn port(host_ip: Option<&str>, hp: u16, cip: &str, cp: u16) -> PortRule {
        PortRule {
            proto: Proto::Tcp,
            host_ip: host_ip.map(|h| h.parse().unwrap()),
            host_port: hp,
            container_ip: cip.parse().unwrap(),
            container_ip6: None,
            container_port: cp,
            bridge: "berth0".into(),
        }
    }

    #[test]
    fn empty_ruleset_still_replaces_the_table() {
        let s = render("berth", &Ruleset::default());
        assert!(
            s.starts_with("table ip berth {}\ndelete table ip berth\n"),
            "{s}"
        );
        assert!(s.contains("chain publish {\n\t}"), "{s}");
        assert!(!s.contains("masquerade"), "{s}");
    }

    #[test]
    fn ports_and_networks_render_dnat_masquerade_and_isolation() {
        let mut internal = net("br-int", "172.19.0.0/16");
        internal.internal = true;
        let rules = Ruleset {
            networks: vec![
                net("berth0", "172.17.0.0/16"),
                net("br-a", "172.18.0.0/16"),
                internal,
            ],
            ports: vec![
                port(None, 8080, "172.17.0.2", 80),
                port(Some("127.0.0.1"), 9090, "172.17.0.3", 90),
                PortRule {
                    proto: Proto::Udp,
                    ..port(Some("0.0.0.0"), 5353, "172.17.0.3", 53)
                },
                port(Some("::1"), 7070, "172.17.0.3", 70),
            ],
        };
        let s = render("berth", &rules);
        assert!(
            s.contains("\t\ttcp dport 8080 dnat to 172.17.0.2:80\n"),
            "{s}"
        );
        assert!(
            s.contains("ip daddr 127.0.0.1 tcp dport 9090 dnat to 172.17.0.3:90"),
            "{s}"
        );
        assert!(
            s.contains("\t\tudp dport 5353 dnat to 172.17.0.3:53\n"),
            "{s}"
        );
        assert!(
            !s.contains("7070"),
            "an IPv6 host address has no rule in the ip table: {s}"
        );
        assert!(
            s.contains("type nat hook prerouting priority dstnat"),
            "{s}"
        );
        assert!(s.contains("type nat hook output priority -100"), "{s}");
        assert_eq!(
            s.matches("fib daddr type local jump publish").count(),
            2,
            "{s}"
        );
        assert!(
            s.contains("oifname != \"berth0\" ip saddr 172.17.0.0/16 masquerade"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"berth0\" ip saddr 127.0.0.0/8 masquerade"),
            "{s}"
        );
        assert!(s.contains("oifname \"berth0\" ip saddr 172.17.0.0/16 ct status dnat masquerade"));
        // The internal network neither masquerades nor forwards outside its bridge.
        assert!(!s.contains("oifname != \"br-int\" ip saddr"), "{s}");
        assert!(
            s.contains("iifname \"br-int\" oifname != \"br-int\" drop"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"br-int\" iifname != \"br-int\" drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"berth0\" oifname { \"br-a\", \"br-int\" } drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"br-a\" oifname { \"berth0\", \"br-int\" } drop"),
            "{s}"
        );
        // Order: established, internal drops, published ports, then isolation.
        let est = s.find("ct state established,related accept").unwrap();
        let internal = s
            .find("iifname \"br-int\" oifname != \"br-int\" drop")
            .unwrap();
        let published = s.find("ct status dnat accept").unwrap();
        let isolation = s.find("iifname \"berth0\" oifname {").unwrap();
        assert!(
            est < internal && internal < published && published < isolation,
            "{s}"
        );
    }

    #[test]
    fn icc_false_drops_within_the_bridge() {
        let mut n = net("br-q", "10.5.0.0/24");
        n.icc = false;
        let s = render(
            "berth",
            &Ruleset {
                networks: vec![n],
                ports: vec![],
            },
        );
        assert!(s.contains("iifname \"br-q\" oifname \"br-q\" drop"), "{s}");
    }

    #[test]
    fn names_that_could_break_the_script_are_refused() {
        let rules = Ruleset {
            networks: vec![net("br\" ; flush ruleset", "10.0.0.0/24")],
            ports: vec![],
        };
        let e = apply("berth", &rules).unwrap_err();
        assert!(e.to_string().contains("invalid bridge name"), "{e}");
        let e = apply("a b", &Ruleset::default()).unwrap_err();
        assert!(e.to_string().contains("invalid table name"), "{e}");
        assert!("TCP".parse::<Proto>().unwrap() == Proto::Tcp);
        assert!("icmp"
            .parse::<Proto>()
            .unwrap_err()
            .to_string()
            .contains("invalid proto"));
    }

    #[test]
    fn ip6_table_is_swept_and_only_declared_for_ipv6_networks() {
        let s = render6("berth", &Ruleset::default());
        assert_eq!(s, "table ip6 berth {}\ndelete table ip6 berth\n");
        // IPv4-only networks: the ip6 table stays away.
        let s = render6(
            "berth",
            &Ruleset {
                networks: vec![net("berth0", "172.17.0.0/16")],
                ports: vec![port(None, 8080, "172.17.0.2", 80)],
            },
        );
        assert_eq!(s, "table ip6 berth {}\ndelete table ip6 berth\n");
        // And the ip table is what it always was.
        assert!(render("berth", &Ruleset::default()).starts_with("table ip berth {}\n"));
    }

    #[test]
    fn ip6_table_renders_dnat_masquerade_and_isolation() {
        let mut n6 = net("br-6", "172.20.0.0/16");
        n6.subnet6 = Some("fd00:b0::/64".parse().unwrap());
        let mut int6 = net("br-i6", "172.21.0.0/16");
        int6.subnet6 = Some("fd00:b1::/64".parse().unwrap());
        int6.internal = true;
        int6.icc = false;
        let with6 = |host: Option<&str>, hp: u16, cip6: Option<&str>| PortRule {
            container_ip6: cip6.map(|c| c.parse().unwrap()),
            bridge: "br-6".into(),
            ..port(host, hp, "172.20.0.2", 80)
        };
        let rules = Ruleset {
            networks: vec![net("berth0", "172.17.0.0/16"), n6, int6],
            ports: vec![
                with6(None, 8080, Some("fd00:b0::2")),
                with6(Some("fd00:b0::1"), 8081, Some("fd00:b0::2")),
                with6(Some("127.0.0.1"), 8082, Some("fd00:b0::2")),
                // A container without IPv6: the userland proxy's business.
                with6(None, 8083, None),
            ],
        };
        let s = render6("berth", &rules);
        assert!(
            s.starts_with("table ip6 berth {}\ndelete table ip6 berth\ntable ip6 berth {\n"),
            "{s}"
        );
        assert!(
            s.contains("\t\ttcp dport 8080 dnat to [fd00:b0::2]:80\n"),
            "{s}"
        );
        assert!(
            s.contains("ip6 daddr fd00:b0::1 tcp dport 8081 dnat to [fd00:b0::2]:80"),
            "{s}"
        );
        assert!(!s.contains("8082") && !s.contains("8083"), "{s}");
        assert!(
            s.contains("ip6 daddr != ::1 fib daddr type local jump publish"),
            "{s}"
        );
        assert!(
            s.contains("oifname != \"br-6\" ip6 saddr fd00:b0::/64 masquerade"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"br-6\" ip6 saddr fd00:b0::/64 ct status dnat masquerade"),
            "{s}"
        );
        assert!(
            !s.contains("oifname != \"br-i6\" ip6 saddr"),
            "internal: no masquerade: {s}"
        );
        assert!(
            s.contains("iifname \"br-i6\" oifname != \"br-i6\" drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"br-i6\" oifname \"br-i6\" drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"br-6\" oifname { \"berth0\", \"br-i6\" } drop"),
            "{s}"
        );
        let est = s.find("ct state established,related accept").unwrap();
        let dnat = s.find("ct status dnat accept").unwrap();
        let iso = s.find("iifname \"br-6\" oifname {").unwrap();
        assert!(est < dnat && dnat < iso, "{s}");
        // No IPv4 in the ip6 table.
        assert!(!s.contains("172."), "{s}");
    }
}
