//! Address management: choosing subnets and leasing addresses within them. Plain data,
//! serialisable, so the daemon persists it with the network record.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 …
/// 192.168.240.0/20.
pub fn default_pools() -> Vec<Ipv4Net> {
    Vec::new()
}

/// The IPv4 routes of the current network namespace (through netlink), as subnets.
pub fn routed_subnets() -> Result<Vec<Ipv4Net>> {
    Ok(Vec::new())
}

/// The first subnet from `pools` overlapping none of `taken` (routed on the host or used by
/// another network).
pub fn pick_subnet(pools: &[Ipv4Net], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    let _ = (pools, taken);
    None
}

/// One network's address space and its leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `--ip-range`: dynamic addresses come only from here (a sub-range of `subnet`).
    pub range: Option<Ipv4Net>,
    /// Leased address → owner (endpoint id).
    pub leases: BTreeMap<Ipv4Addr, String>,
}

impl Pool {
    /// Validates subnet/gateway/range (gateway and range inside the subnet); gateway defaults to
    /// the first host address.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, range: Option<Ipv4Net>) -> Result<Pool> {
        let _ = (subnet, gateway, range);
        Err(crate::NetError::Invalid("ipam not written yet".into()))
    }

    /// Leases `want` (must be free, inside the subnet, not network/broadcast/gateway) or the next
    /// free address of the range.
    pub fn allocate(&mut self, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let _ = (owner, want);
        Err(crate::NetError::Invalid("ipam not written yet".into()))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.leases.remove(&ip);
    }
}
