//! berth's nftables table (`inet berth` / `ip berth`), rendered whole from the daemon's state and
//! applied in one transaction: adding or removing a container's ports re-renders the table, and
//! applying at daemon start sweeps whatever a crash left.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use crate::Result;

/// One network's NAT and filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
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
    pub container_port: u16,
    pub bridge: String,
}

/// The whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
}

/// The `nft -f` script that replaces the table `table` with `rules`.
pub fn render(table: &str, rules: &Ruleset) -> String {
    let _ = (table, rules);
    String::new()
}

/// Applies the script (one `nft -f -` run; atomic in the kernel). Also sets the sysctls the
/// rules need (ip_forward, route_localnet on the bridges for 127.0.0.1 publishing).
pub fn apply(table: &str, rules: &Ruleset) -> Result<()> {
    let _ = (table, rules);
    Err(crate::NetError::Nft("not written yet".into()))
}

/// Deletes the table (when the daemon is told to stop managing the firewall).
pub fn remove(table: &str) -> Result<()> {
    let _ = table;
    Err(crate::NetError::Nft("not written yet".into()))
}
