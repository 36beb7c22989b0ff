//! Bridges and veth pairs through rtnetlink.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::Result;

/// A bridge for a network: created if missing, the gateway address set, up.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub name: String,
    /// Gateway address with the subnet's prefix, e.g. 172.18.0.1/16.
    pub address: Ipv4Net,
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
    pub mac: [u8; 6],
    pub mtu: u32,
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Creates the bridge if it does not exist, sets its address and MTU, brings it up.
pub async fn ensure_bridge(cfg: &BridgeConfig) -> Result<()> {
    let _ = cfg;
    Err(crate::NetError::Netlink("not written yet".into()))
}

/// Deletes a link by name; Ok when it does not exist.
pub async fn delete_link(name: &str) -> Result<()> {
    let _ = name;
    Err(crate::NetError::Netlink("not written yet".into()))
}

/// Creates the veth pair, attaches the host end to the bridge, moves the other end into the
/// namespace, renames it, sets MAC/MTU/address, brings it up and adds the default route. On
/// error nothing is left behind.
pub async fn attach(cfg: &EndpointConfig) -> Result<()> {
    let _ = cfg;
    Err(crate::NetError::Netlink("not written yet".into()))
}

/// Whether a link of that name exists (in the current namespace).
pub async fn exists(name: &str) -> Result<bool> {
    let _ = name;
    Err(crate::NetError::Netlink("not written yet".into()))
}
