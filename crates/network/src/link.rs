//! Bridges and veth pairs through rtnetlink.
//!
//! The kernel work is synchronous netlink request/ack on a socket opened in the namespace it
//! acts on ([`sys::Netlink`]): each call takes microseconds, so the async functions below do it
//! inline rather than paying a thread hop, and a socket opened inside a container's namespace
//! (on a [`crate::netns::run_in`] thread) needs no runtime of its own.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::{NetError, Result};
use sys::{is_errno, Netlink};

/// A bridge for a network: created if missing, the gateway address set, up.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub name: String,
    /// Gateway address with the subnet's prefix, e.g. 172.18.0.1/16.
    pub address: Ipv4Net,
    /// The IPv6 gateway address with its prefix, on IPv6 networks.
    pub address6: Option<Ipv6Net>,
    pub mtu: u32,
}

/// One container's interface on one network.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub bridge: String,
    /// The host end's name (e.g. `vb` + 12 hex of the endpoint id; ≤ 15 bytes).
    pub host_ifname: String,
    /// The name inside the container: eth0, eth1, ...
    pub container_ifname: String,
    /// The namespace file made by [`crate::netns::create`].
    pub netns: PathBuf,
    pub address: Ipv4Net,
    /// Default route via this gateway; None for internal networks or secondary networks.
    pub gateway: Option<Ipv4Addr>,
    /// On IPv6 networks: the interface's IPv6 address (IPv6 stays off on the others).
    pub address6: Option<Ipv6Net>,
    /// Default IPv6 route via this gateway (same rule as `gateway`).
    pub gateway6: Option<Ipv6Addr>,
    /// `--link-local-ip`: further addresses (169.254.0.0/16 as /16, fe80::/10 as /64).
    pub link_local: Vec<std::net::IpAddr>,
    pub mac: [u8; 6],
    pub mtu: u32,
}

/// Interface counters (as `docker stats` shows them), from IFLA_STATS64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Linux interface names: 1..=15 bytes, no '/', no whitespace, not "." or "..".
fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!(
            "invalid interface name {name:?}: 1 to 15 bytes without '/', ':' or spaces"
        )))
    }
}

fn nl_err(what: String, e: std::io::Error) -> NetError {
    NetError::Netlink(format!("{what}: {e}"))
}

/// Creates the bridge if it does not exist, sets its address and MTU, brings it up.
pub async fn ensure_bridge(cfg: &BridgeConfig) -> Result<()> {
    ensure_bridge_sync(cfg)
}

/// [`ensure_bridge`] without the async wrapper (for threads inside a namespace).
pub fn ensure_bridge_sync(cfg: &BridgeConfig) -> Result<()> {
    check_ifname(&cfg.name)?;
    let mut nl = Netlink::open()?;
    let index = match nl.bridge_index(&cfg.name) {
        Ok(Some(i)) => i,
        Ok(None) => {
            return Err(NetError::Conflict(format!(
                "{} exists and is not a bridge",
                cfg.name
            )))
        }
        Err(e) if is_errno(&e, libc::ENODEV) => {
            // A fixed MAC (Docker's scheme, from the gateway address): otherwise the bridge
            // takes the lowest MAC of its ports and changes it as containers come and go,
            // leaving stale gateway entries in the containers' neighbour caches.
            match nl.add_bridge(&cfg.name, cfg.mtu, mac_for(cfg.address.addr())) {
                Ok(()) => {}
                // Another caller made it between our look-up and the add: fine, it is a bridge.
                Err(e) if is_errno(&e, libc::EEXIST) => {}
                Err(e) => return Err(nl_err(format!("create bridge {}", cfg.name), e)),
            }
            nl.index_of(&cfg.name)
                .map_err(|e| nl_err(format!("look up bridge {}", cfg.name), e))?
        }
        Err(e) => return Err(nl_err(format!("look up bridge {}", cfg.name), e)),
    };
    nl.set_link(index, Some(cfg.mtu), None, true)
        .map_err(|e| nl_err(format!("set mtu {} and up on {}", cfg.mtu, cfg.name), e))?;
    // The bridge carries exactly the gateway address: one left from an earlier subnet would
    // keep routing that subnet here.
    let current = nl
        .addresses_v4(index)
        .map_err(|e| nl_err(format!("list addresses of {}", cfg.name), e))?;
    for old in current.iter().filter(|a| **a != cfg.address) {
        nl.del_address(index, *old)
            .map_err(|e| nl_err(format!("remove stale address {old} from {}", cfg.name), e))?;
    }
    if !current.contains(&cfg.address) {
        match nl.add_address(index, cfg.address) {
            Ok(()) => {}
            Err(e) if is_errno(&e, libc::EEXIST) => {}
            Err(e) => {
                return Err(nl_err(
                    format!("add address {} to {}", cfg.address, cfg.name),
                    e,
                ))
            }
        }
    }
    ensure_bridge_v6(&mut nl, index, cfg)
}

/// The bridge's IPv6 side: on IPv6 networks, IPv6 on and exactly the gateway as its global
/// address (link-local ones stay); on the others, global addresses a former IPv6 life of the
/// bridge left are removed.
fn ensure_bridge_v6(nl: &mut Netlink, index: u32, cfg: &BridgeConfig) -> Result<()> {
    if cfg.address6.is_some() {
        // The daemon's namespace may have IPv6 off by default for new links; the bridge needs
        // it to carry the gateway.
        let path = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", cfg.name);
        std::fs::write(&path, b"0").map_err(|e| NetError::Io {
            what: format!("enable IPv6 on {} ({path})", cfg.name),
            source: e,
        })?;
    }
    let current = match nl.addresses_v6(index) {
        Ok(c) => c,
        // No IPv6 in this kernel: nothing to remove, and nothing was asked.
        Err(e) if cfg.address6.is_none() && is_errno(&e, libc::EAFNOSUPPORT) => return Ok(()),
        Err(e) => return Err(nl_err(format!("list IPv6 addresses of {}", cfg.name), e)),
    };
    for old in current
        .iter()
        .filter(|a| Some(**a) != cfg.address6 && !is_link_local(a.addr()))
    {
        nl.del_address6(index, *old)
            .map_err(|e| nl_err(format!("remove stale address {old} from {}", cfg.name), e))?;
    }
    let Some(want) = cfg.address6 else {
        return Ok(());
    };
    if current.contains(&want) {
        return Ok(());
    }
    match nl.add_address6(index, want) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
        Err(e) => Err(nl_err(format!("add address {want} to {}", cfg.name), e)),
    }
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Turns IPv6 forwarding on in the calling thread's namespace (`net.ipv6.conf.all.forwarding`),
/// as dockerd does once an IPv6 network exists: containers' IPv6 traffic is routed through the
/// bridge. As with any router, the host's interfaces then ignore router advertisements unless
/// their `accept_ra` is 2.
pub fn enable_ipv6_forwarding() -> Result<()> {
    let path = "/proc/sys/net/ipv6/conf/all/forwarding";
    if std::fs::read(path).is_ok_and(|v| v.starts_with(b"1")) {
        return Ok(());
    }
    std::fs::write(path, b"1").map_err(|e| NetError::Io {
        what: format!("write 1 to {path}"),
        source: e,
    })
}

/// Deletes a link by name; Ok when it does not exist.
pub async fn delete_link(name: &str) -> Result<()> {
    delete_link_sync(name)
}

/// [`delete_link`] without the async wrapper.
pub fn delete_link_sync(name: &str) -> Result<()> {
    check_ifname(name)?;
    let mut nl = Netlink::open()?;
    match nl.del_link_by_name(name) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
        Err(e) => Err(nl_err(format!("delete link {name}"), e)),
    }
}

/// Removes a container's interface by deleting its host end (the peer inside the namespace goes
/// with it); Ok when it is already gone.
pub async fn detach(host_ifname: &str) -> Result<()> {
    delete_link_sync(host_ifname)
}

/// Creates the veth pair, attaches the host end to the bridge, moves the other end into the
/// namespace, renames it, sets MAC/MTU/address, brings it up and adds the default route. On
/// error nothing is left behind.
pub async fn attach(cfg: &EndpointConfig) -> Result<()> {
    attach_sync(cfg)
}

/// [`attach`] without the async wrapper.
pub fn attach_sync(cfg: &EndpointConfig) -> Result<()> {
    check_ifname(&cfg.host_ifname)?;
    check_ifname(&cfg.container_ifname)?;
    let ns = std::fs::File::open(&cfg.netns).map_err(|e| NetError::Io {
        what: format!("open network namespace {}", cfg.netns.display()),
        source: e,
    })?;
    let mut nl = Netlink::open()?;
    let bridge = nl
        .index_of(&cfg.bridge)
        .map_err(|e| nl_err(format!("look up bridge {}", cfg.bridge), e))?;
    // The peer is born inside the container's namespace (IFLA_NET_NS_FD in its own message),
    // already named and with its MAC: one request instead of create, move, rename.
    nl.add_veth(
        &cfg.host_ifname,
        bridge,
        cfg.mtu,
        &cfg.container_ifname,
        ns.as_raw_fd(),
        cfg.mac,
    )
    .map_err(|e| {
        if is_errno(&e, libc::EEXIST) {
            NetError::Conflict(format!(
                "create veth {}: an interface of that name already exists (here or as {} in {})",
                cfg.host_ifname,
                cfg.container_ifname,
                cfg.netns.display()
            ))
        } else {
            nl_err(
                format!(
                    "create veth {} (peer {})",
                    cfg.host_ifname, cfg.container_ifname
                ),
                e,
            )
        }
    })?;
    drop(ns);
    // A bridge port needs no IPv6 address of its own; turned off before the link goes up so
    // none is configured (dockerd leaves IPv6 on for these: it costs each start some work).
    crate::netns::disable_ipv6(&cfg.host_ifname);
    // Hairpin: with br_netfilter (bridge-nf-call-iptables), a container's packet to its own
    // published port is DNATed while being bridged and must leave by the port it came in on.
    // The same message brings the host end up.
    let hairpin = nl.set_bridge_port_up(
        &cfg.host_ifname,
        vec![sys::InfoBridgePort::HairpinMode(true)],
    );
    if let Err(e) = hairpin {
        let _ = nl.del_link_by_name(&cfg.host_ifname);
        return Err(nl_err(
            format!("set hairpin mode on {}", cfg.host_ifname),
            e,
        ));
    }
    let inside = {
        let ifname = cfg.container_ifname.clone();
        let address = cfg.address;
        let gateway = cfg.gateway;
        let (address6, gateway6) = (cfg.address6, cfg.gateway6);
        let link_local = cfg.link_local.clone();
        crate::netns::try_run_in(&cfg.netns, move || {
            let mut nl = Netlink::open()?;
            let index = nl
                .index_of(&ifname)
                .map_err(|e| nl_err(format!("look up {ifname} in the container"), e))?;
            nl.add_address(index, address)
                .map_err(|e| nl_err(format!("add address {address} to {ifname}"), e))?;
            let ll6 = link_local.iter().any(std::net::IpAddr::is_ipv6);
            if address6.is_some() || ll6 {
                // The namespace's default keeps IPv6 off (see netns::create); an IPv6 network
                // (or an IPv6 link-local address) turns it on for this interface only, before
                // it goes up.
                let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
                std::fs::write(&path, b"0").map_err(|e| NetError::Io {
                    what: format!("enable IPv6 on {ifname} ({path})"),
                    source: e,
                })?;
            }
            if let Some(a6) = address6 {
                nl.add_address6(index, a6)
                    .map_err(|e| nl_err(format!("add address {a6} to {ifname}"), e))?;
            }
            for ip in &link_local {
                let r = match *ip {
                    std::net::IpAddr::V4(v4) => Ipv4Net::new(v4, 16)
                        .map_err(std::io::Error::other)
                        .and_then(|n| nl.add_address(index, n)),
                    std::net::IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
                        .map_err(std::io::Error::other)
                        .and_then(|n| nl.add_address6(index, n)),
                };
                r.map_err(|e| nl_err(format!("add link-local address {ip} to {ifname}"), e))?;
            }
            nl.set_link(index, None, None, true)
                .map_err(|e| nl_err(format!("set {ifname} up"), e))?;
            if let Some(gw) = gateway {
                nl.add_default_route(index, gw)
                    .map_err(|e| nl_err(format!("add default route via {gw} on {ifname}"), e))?;
            }
            if let (Some(gw), Some(_)) = (gateway6, address6) {
                nl.add_default_route6(index, gw)
                    .map_err(|e| nl_err(format!("add default route via {gw} on {ifname}"), e))?;
            }
            Ok(())
        })
    };
    if let Err(e) = inside {
        let _ = nl.del_link_by_name(&cfg.host_ifname);
        return Err(e);
    }
    Ok(())
}

/// Isolates (or not) a container's host end on its bridge: isolated ports cannot reach one
/// another, only the bridge itself (the host, and through it the outside and published ports).
/// This is `icc=false` for networks where bridged traffic bypasses the ip hooks (no
/// br_netfilter); the firewall's forward rule covers it when it does not.
pub fn set_isolated(host_ifname: &str, isolated: bool) -> Result<()> {
    check_ifname(host_ifname)?;
    let mut nl = Netlink::open()?;
    nl.set_bridge_port(host_ifname, vec![sys::InfoBridgePort::Isolated(isolated)])
        .map_err(|e| nl_err(format!("set isolated={isolated} on {host_ifname}"), e))
}

/// Whether a link of that name exists (in the current namespace).
pub async fn exists(name: &str) -> Result<bool> {
    exists_sync(name)
}

/// [`exists`] without the async wrapper.
pub fn exists_sync(name: &str) -> Result<bool> {
    check_ifname(name)?;
    let mut nl = Netlink::open()?;
    match nl.index_of(name) {
        Ok(_) => Ok(true),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
        Err(e) => Err(nl_err(format!("look up link {name}"), e)),
    }
}

/// Brings a link of the current namespace up (e.g. `lo` of a namespace made by `unshare`).
pub fn set_up(name: &str) -> Result<()> {
    check_ifname(name)?;
    Netlink::open()?.set_up_by_name(name)
}

/// Names of the links in the current namespace starting with `prefix` (e.g. `vb` to sweep the
/// host ends a crash left behind).
pub fn list_links_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let mut nl = Netlink::open()?;
    let all = nl
        .links()
        .map_err(|e| nl_err("list links".to_string(), e))?;
    Ok(all
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.starts_with(prefix))
        .collect())
}

/// Counters of a link in the current namespace. For a host veth end, rx/tx are the container's
/// tx/rx.
pub fn link_stats(name: &str) -> Result<LinkStats> {
    check_ifname(name)?;
    let mut nl = Netlink::open()?;
    nl.stats_of(name)
        .map_err(|e| nl_err(format!("read counters of {name}"), e))
}

/// Counters of a link inside the namespace at `netns` (a container's eth0, as the container
/// sees them).
pub fn link_stats_in(netns: &Path, name: &str) -> Result<LinkStats> {
    check_ifname(name)?;
    let name = name.to_string();
    crate::netns::try_run_in(netns, move || {
        let mut nl = Netlink::open()?;
        nl.stats_of(&name)
            .map_err(|e| nl_err(format!("read counters of {name}"), e))
    })
}

/// Netlink plumbing: one blocking NETLINK_ROUTE socket, request/ack and dumps.
pub(crate) mod sys {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::RawFd;

    use ipnet::{Ipv4Net, Ipv6Net};
    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
        NLM_F_EXCL, NLM_F_REQUEST,
    };
    use netlink_packet_route::address::{
        AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
    };
    use netlink_packet_route::link::{
        InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags,
        LinkInfo, LinkMessage,
    };
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

    pub(crate) use netlink_packet_route::link::InfoBridgePort;

    use super::LinkStats;
    use crate::{NetError, Result};

    pub(crate) fn is_errno(e: &io::Error, code: i32) -> bool {
        e.raw_os_error() == Some(code)
    }

    fn bad(msg: impl Into<String>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, msg.into())
    }

    #[derive(Debug)]
    pub(crate) struct Netlink {
        sock: Socket,
        seq: u32,
        buf: Vec<u8>,
    }

    impl Netlink {
        /// A socket in the calling thread's network namespace.
        pub(crate) fn open() -> Result<Netlink> {
            let wrap = |what: &str, e: io::Error| NetError::Netlink(format!("{what}: {e}"));
            let mut sock =
                Socket::new(NETLINK_ROUTE).map_err(|e| wrap("open netlink socket", e))?;
            sock.bind_auto()
                .map_err(|e| wrap("bind netlink socket", e))?;
            sock.connect(&SocketAddr::new(0, 0))
                .map_err(|e| wrap("connect netlink socket", e))?;
            Ok(Netlink {
                sock,
                seq: 0,
                buf: Vec::with_capacity(64 * 1024),
            })
        }

        fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
            self.seq = self.seq.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | flags;
            header.sequence_number = self.seq;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
            packet.finalize();
            let mut out = vec![0u8; packet.buffer_len()];
            packet.serialize(&mut out);
            self.sock.send(&out, 0)?;
            Ok(self.seq)
        }

        /// Receives until the answer to `seq` is complete: the ack (or error) for a request,
        /// NLMSG_DONE for a dump (a request with NLM_F_ACK ends with the ack after its
        /// answer). Returns the inner messages.
        fn receive(&mut self, seq: u32) -> io::Result<Vec<RouteNetlinkMessage>> {
            let mut got = Vec::new();
            loop {
                self.buf.clear();
                let n = self.sock.recv(&mut self.buf, 0)?;
                if n > self.buf.len() {
                    return Err(bad("netlink answer truncated"));
                }
                let mut off = 0usize;
                while off < n {
                    let msg: NetlinkMessage<RouteNetlinkMessage> =
                        NetlinkMessage::deserialize(&self.buf[off..n])
                            .map_err(|e| bad(format!("parse netlink answer: {e}")))?;
                    let len = msg.header.length as usize;
                    if len == 0 {
                        return Err(bad("netlink answer with length 0"));
                    }
                    off += (len + 3) & !3;
                    if msg.header.sequence_number != seq {
                        continue;
                    }
                    match msg.payload {
                        NetlinkPayload::Error(err) => {
                            return match err.code {
                                None => Ok(got),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(got),
                        NetlinkPayload::InnerMessage(inner) => got.push(inner),
                        _ => {}
                    }
                }
            }
        }

        pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
            let seq = self.send(msg, flags | NLM_F_ACK)?;
            self.receive(seq).map(|_| ())
        }

        fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
            let seq = self.send(msg, NLM_F_ACK)?;
            self.receive(seq)
        }

        fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
            let seq = self.send(msg, NLM_F_DUMP)?;
            self.receive(seq)
        }

        fn get_link(&mut self, name: &str) -> io::Result<LinkMessage> {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            for reply in self.get(RouteNetlinkMessage::GetLink(m))? {
                if let RouteNetlinkMessage::NewLink(l) = reply {
                    return Ok(l);
                }
            }
            Err(io::Error::from_raw_os_error(libc::ENODEV))
        }

        /// The index of the link `name` when it is a bridge, None when it is something else.
        pub(crate) fn bridge_index(&mut self, name: &str) -> io::Result<Option<u32>> {
            let link = self.get_link(name)?;
            let is_bridge = link.attributes.iter().any(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
                _ => false,
            });
            Ok(is_bridge.then_some(link.header.index))
        }

        pub(crate) fn index_of(&mut self, name: &str) -> io::Result<u32> {
            self.get_link(name).map(|l| l.header.index)
        }

        pub(crate) fn stats_of(&mut self, name: &str) -> io::Result<LinkStats> {
            let link = self.get_link(name)?;
            for a in link.attributes {
                if let LinkAttribute::Stats64(s) = a {
                    return Ok(LinkStats {
                        rx_bytes: s.rx_bytes,
                        rx_packets: s.rx_packets,
                        rx_errors: s.rx_errors,
                        rx_dropped: s.rx_dropped,
                        tx_bytes: s.tx_bytes,
                        tx_packets: s.tx_packets,
                        tx_errors: s.tx_errors,
                        tx_dropped: s.tx_dropped,
                    });
                }
            }
            Err(bad(format!("no counters reported for {name}")))
        }

        /// (name, index) of every link.
        pub(crate) fn links(&mut self) -> io::Result<Vec<(String, u32)>> {
            let mut out = Vec::new();
            for reply in self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
                if let RouteNetlinkMessage::NewLink(l) = reply {
                    for a in &l.attributes {
                        if let LinkAttribute::IfName(n) = a {
                            out.push((n.clone(), l.header.index));
                        }
                    }
                }
            }
            Ok(out)
        }

        pub(crate) fn set_up_by_name(&mut self, name: &str) -> Result<()> {
            let index = self
                .index_of(name)
                .map_err(|e| NetError::Netlink(format!("look up {name}: {e}")))?;
            self.set_link(index, None, None, true)
                .map_err(|e| NetError::Netlink(format!("set {name} up: {e}")))
        }

        pub(crate) fn set_link(
            &mut self,
            index: u32,
            mtu: Option<u32>,
            master: Option<u32>,
            up: bool,
        ) -> io::Result<()> {
            let mut m = LinkMessage::default();
            m.header.index = index;
            if up {
                m.header.flags = LinkFlags::Up;
                m.header.change_mask = LinkFlags::Up;
            }
            if let Some(mtu) = mtu {
                m.attributes.push(LinkAttribute::Mtu(mtu));
            }
            if let Some(master) = master {
                m.attributes.push(LinkAttribute::Controller(master));
            }
            self.request(RouteNetlinkMessage::SetLink(m), 0)
        }

        pub(crate) fn add_bridge(&mut self, name: &str, mtu: u32, mac: [u8; 6]) -> io::Result<()> {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            m.attributes.push(LinkAttribute::Mtu(mtu));
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
            m.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge,
                )]));
            self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        }

        /// One request: host end `host` (enslaved to `master`, up) and its peer `peer` created
        /// in the namespace `ns_fd` with `mac` (down: the caller brings it up in there).
        pub(crate) fn add_veth(
            &mut self,
            host: &str,
            master: u32,
            mtu: u32,
            peer: &str,
            ns_fd: RawFd,
            mac: [u8; 6],
        ) -> io::Result<()> {
            // Neither end up yet: the kernel configures the peer before pairing it (opening an
            // unpaired veth fails with ENOTCONN), and the host end gets its IPv6 off first.
            let mut p = LinkMessage::default();
            p.attributes.push(LinkAttribute::IfName(peer.to_string()));
            p.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Address(mac.to_vec()));
            p.attributes.push(LinkAttribute::NetNsFd(ns_fd));

            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(host.to_string()));
            m.attributes.push(LinkAttribute::Mtu(mtu));
            m.attributes.push(LinkAttribute::Controller(master));
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
            ]));
            self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        }

        /// Bridge port flags of an enslaved link (`ip link set X type bridge_slave ...`).
        /// Bridge port flags, the link named directly (the kernel looks a name up when the
        /// index is 0), which saves a look-up round trip.
        pub(crate) fn set_bridge_port(
            &mut self,
            name: &str,
            flags: Vec<InfoBridgePort>,
        ) -> io::Result<()> {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(flags)),
            ]));
            self.request(RouteNetlinkMessage::NewLink(m), 0)
        }

        /// [`Self::set_bridge_port`] that also brings the link up, in one message.
        pub(crate) fn set_bridge_port_up(
            &mut self,
            name: &str,
            flags: Vec<InfoBridgePort>,
        ) -> io::Result<()> {
            let mut m = LinkMessage::default();
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(flags)),
            ]));
            self.request(RouteNetlinkMessage::NewLink(m), 0)
        }

        pub(crate) fn del_link_by_name(&mut self, name: &str) -> io::Result<()> {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            self.request(RouteNetlinkMessage::DelLink(m), 0)
        }

        /// The IPv4 addresses (with prefix) of the link `index`.
        pub(crate) fn addresses_v4(&mut self, index: u32) -> io::Result<Vec<Ipv4Net>> {
            let mut q = AddressMessage::default();
            q.header.family = AddressFamily::Inet;
            let mut out = Vec::new();
            for reply in self.dump(RouteNetlinkMessage::GetAddress(q))? {
                let RouteNetlinkMessage::NewAddress(a) = reply else {
                    continue;
                };
                if a.header.index != index || a.header.family != AddressFamily::Inet {
                    continue;
                }
                for attr in &a.attributes {
                    if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                        if let Ok(net) = Ipv4Net::new(*ip, a.header.prefix_len) {
                            out.push(net);
                        }
                    }
                }
            }
            Ok(out)
        }

        pub(crate) fn del_address(&mut self, index: u32, net: Ipv4Net) -> io::Result<()> {
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = net.prefix_len();
            m.header.index = index;
            m.attributes
                .push(AddressAttribute::Local(IpAddr::V4(net.addr())));
            self.request(RouteNetlinkMessage::DelAddress(m), 0)
        }

        pub(crate) fn add_address(&mut self, index: u32, net: Ipv4Net) -> io::Result<()> {
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = net.prefix_len();
            m.header.scope = AddressScope::Universe;
            m.header.index = index;
            let ip = IpAddr::V4(net.addr());
            m.attributes.push(AddressAttribute::Local(ip));
            m.attributes.push(AddressAttribute::Address(ip));
            if net.prefix_len() < 31 {
                m.attributes
                    .push(AddressAttribute::Broadcast(net.broadcast()));
            }
            self.request(
                RouteNetlinkMessage::NewAddress(m),
                NLM_F_CREATE | NLM_F_EXCL,
            )
        }

        /// The global and link-local IPv6 addresses (with prefix) of the link `index`.
        pub(crate) fn addresses_v6(&mut self, index: u32) -> io::Result<Vec<Ipv6Net>> {
            let mut q = AddressMessage::default();
            q.header.family = AddressFamily::Inet6;
            let mut out = Vec::new();
            for reply in self.dump(RouteNetlinkMessage::GetAddress(q))? {
                let RouteNetlinkMessage::NewAddress(a) = reply else {
                    continue;
                };
                if a.header.index != index || a.header.family != AddressFamily::Inet6 {
                    continue;
                }
                for attr in &a.attributes {
                    if let AddressAttribute::Address(IpAddr::V6(ip)) = attr {
                        if let Ok(net) = Ipv6Net::new(*ip, a.header.prefix_len) {
                            out.push(net);
                        }
                    }
                }
            }
            Ok(out)
        }

        pub(crate) fn del_address6(&mut self, index: u32, net: Ipv6Net) -> io::Result<()> {
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet6;
            m.header.prefix_len = net.prefix_len();
            m.header.index = index;
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V6(net.addr())));
            self.request(RouteNetlinkMessage::DelAddress(m), 0)
        }

        /// An IPv6 address with IFA_F_NODAD: usable at once (no duplicate address detection
        /// delaying the first packets), as dockerd adds them; the addresses come from berth's
        /// own allocator, so a duplicate is not expected on the bridge.
        pub(crate) fn add_address6(&mut self, index: u32, net: Ipv6Net) -> io::Result<()> {
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet6;
            m.header.prefix_len = net.prefix_len();
            m.header.scope = AddressScope::Universe;
            m.header.flags = AddressHeaderFlags::Nodad;
            m.header.index = index;
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V6(net.addr())));
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            self.request(
                RouteNetlinkMessage::NewAddress(m),
                NLM_F_CREATE | NLM_F_EXCL,
            )
        }

        pub(crate) fn add_default_route6(&mut self, index: u32, gw: Ipv6Addr) -> io::Result<()> {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet6;
            m.header.table = RouteHeader::RT_TABLE_MAIN;
            m.header.protocol = RouteProtocol::Boot;
            m.header.scope = RouteScope::Universe;
            m.header.kind = RouteType::Unicast;
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
            m.attributes.push(RouteAttribute::Oif(index));
            self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
        }

        pub(crate) fn add_default_route(&mut self, index: u32, gw: Ipv4Addr) -> io::Result<()> {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet;
            m.header.table = RouteHeader::RT_TABLE_MAIN;
            m.header.protocol = RouteProtocol::Boot;
            m.header.scope = RouteScope::Universe;
            m.header.kind = RouteType::Unicast;
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
            m.attributes.push(RouteAttribute::Oif(index));
            self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
        }

        /// Destinations of the IPv4 routes in the main table (default routes excluded: they
        /// claim no subnet).
        pub(crate) fn routed_v4(&mut self) -> io::Result<Vec<Ipv4Net>> {
            let mut q = RouteMessage::default();
            q.header.address_family = AddressFamily::Inet;
            let mut out = Vec::new();
            for reply in self.dump(RouteNetlinkMessage::GetRoute(q))? {
                let RouteNetlinkMessage::NewRoute(r) = reply else {
                    continue;
                };
                if r.header.address_family != AddressFamily::Inet
                    || r.header.destination_prefix_length == 0
                    || r.header.kind != RouteType::Unicast
                {
                    continue;
                }
                for a in &r.attributes {
                    if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a {
                        if let Ok(net) = Ipv4Net::new(*ip, r.header.destination_prefix_length) {
                            out.push(net.trunc());
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}
