//! Address management: choosing subnets and leasing addresses within them. Plain data,
//! serialisable, so the daemon persists it with the network record.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::{NetError, Result};

/// Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 …
/// 192.168.240.0/20.
pub fn default_pools() -> Vec<Ipv4Net> {
    let mut pools = Vec::with_capacity(31);
    for b in 17u8..=31 {
        pools.extend(Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    }
    for c in (0u8..=240).step_by(16) {
        pools.extend(Ipv4Net::new(Ipv4Addr::new(192, 168, c, 0), 20).ok());
    }
    pools
}

/// The subnets of one `default-address-pools` entry (dockerd's `base` split into subnets of
/// prefix `size`), in order; at most 65536 of them.
pub fn split_pool(base: Ipv4Net, size: u8) -> Result<Vec<Ipv4Net>> {
    if size < base.prefix_len() || size > 30 {
        return Err(NetError::Invalid(format!(
            "invalid address pool {base} with size {size}: the size must be between the base's prefix length ({}) and 30",
            base.prefix_len()
        )));
    }
    let count = 1u64 << u32::from(size - base.prefix_len());
    if count > 1 << 16 {
        return Err(NetError::Invalid(format!(
            "address pool {base} with size {size} makes {count} subnets: at most 65536"
        )));
    }
    base.trunc()
        .subnets(size)
        .map(|it| it.collect())
        .map_err(|e| NetError::Invalid(format!("address pool {base}/{size}: {e}")))
}

/// The IPv4 routes of the current network namespace (through netlink), as subnets.
pub fn routed_subnets() -> Result<Vec<Ipv4Net>> {
    crate::link::sys::Netlink::open()?
        .routed_v4()
        .map_err(|e| NetError::Netlink(format!("list routes: {e}")))
}

/// Whether two subnets share an address (one contains the other's network address).
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet from `pools` overlapping none of `taken` (routed on the host or used by
/// another network).
pub fn pick_subnet(pools: &[Ipv4Net], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools
        .iter()
        .find(|p| !taken.iter().any(|t| overlaps(p, t)))
        .copied()
}

/// A user-given subnet against the other networks' subnets: Docker's Conflict when they
/// overlap.
pub fn check_overlap(subnet: &Ipv4Net, others: &[Ipv4Net]) -> Result<()> {
    match others.iter().find(|o| overlaps(subnet, o)) {
        Some(o) => Err(NetError::Conflict(format!(
            "invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {o})"
        ))),
        None => Ok(()),
    }
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
    /// Auxiliary addresses (`--aux-address name=ip`): never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reserved: BTreeMap<String, Ipv4Addr>,
}

impl Pool {
    /// Validates subnet/gateway/range (gateway and range inside the subnet); gateway defaults to
    /// the first host address.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, range: Option<Ipv4Net>) -> Result<Pool> {
        if subnet.trunc() != subnet {
            return Err(NetError::Invalid(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.trunc()
            )));
        }
        if subnet.prefix_len() > 30 {
            return Err(NetError::Invalid(format!(
                "invalid subnet {subnet}: too small, the prefix must be at most /30"
            )));
        }
        let gateway = match gateway {
            Some(g) => {
                if !subnet.contains(&g) {
                    return Err(NetError::Invalid(format!(
                        "no matching subnet for gateway {g}: it is outside {subnet}"
                    )));
                }
                if g == subnet.network() || g == subnet.broadcast() {
                    return Err(NetError::Invalid(format!(
                        "invalid gateway {g}: it is the network or broadcast address of {subnet}"
                    )));
                }
                g
            }
            None => Ipv4Addr::from(u32::from(subnet.network()) + 1),
        };
        if let Some(r) = range {
            if r.trunc() != r {
                return Err(NetError::Invalid(format!(
                    "invalid ip range {r}: it should be {}",
                    r.trunc()
                )));
            }
            if !subnet.contains(&r) {
                return Err(NetError::Invalid(format!(
                    "invalid ip range {r}: it is not inside the subnet {subnet}"
                )));
            }
        }
        Ok(Pool {
            subnet,
            gateway,
            range,
            leases: BTreeMap::new(),
            reserved: BTreeMap::new(),
        })
    }

    /// Sets aside an auxiliary address, which must lie in the subnet (dockerd's words).
    pub fn reserve(&mut self, name: &str, ip: Ipv4Addr) -> Result<()> {
        if !self.subnet.contains(&ip) {
            return Err(NetError::Invalid(format!(
                "auxiliary address: ({name}:{ip}) must belong to the master pool: {}",
                self.subnet
            )));
        }
        self.reserved.insert(name.to_string(), ip);
        Ok(())
    }

    fn is_reserved(&self, ip: Ipv4Addr) -> bool {
        self.reserved.values().any(|r| *r == ip)
    }

    /// Leases `want` (must be free, inside the subnet, not network/broadcast/gateway) or the next
    /// free address of the range.
    pub fn allocate(&mut self, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(ip) = want {
            if !self.subnet.contains(&ip) {
                return Err(NetError::Invalid(format!(
                    "invalid address {ip}: it does not belong to the subnet {}",
                    self.subnet
                )));
            }
            if ip == self.subnet.network() || ip == self.subnet.broadcast() {
                return Err(NetError::Invalid(format!(
                    "invalid address {ip}: it is the network or broadcast address of {}",
                    self.subnet
                )));
            }
            if ip == self.gateway || self.leases.contains_key(&ip) || self.is_reserved(ip) {
                return Err(NetError::Conflict(format!("Address already in use: {ip}")));
            }
            self.leases.insert(ip, owner.to_string());
            return Ok(ip);
        }
        let space = self.range.unwrap_or(self.subnet);
        let (first, last) = (u32::from(space.network()), u32::from(space.broadcast()));
        let (net, bcast) = (
            u32::from(self.subnet.network()),
            u32::from(self.subnet.broadcast()),
        );
        for n in first..=last {
            let ip = Ipv4Addr::from(n);
            if n == net
                || n == bcast
                || ip == self.gateway
                || self.leases.contains_key(&ip)
                || self.is_reserved(ip)
            {
                continue;
            }
            self.leases.insert(ip, owner.to_string());
            return Ok(ip);
        }
        Err(NetError::Conflict(format!(
            "no available IPv4 addresses on this network's address pools ({})",
            space
        )))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.leases.remove(&ip);
    }

    /// Releases every lease of `owner` (an endpoint going away).
    pub fn release_owner(&mut self, owner: &str) {
        self.leases.retain(|_, o| o != owner);
    }

    /// The gateway with the subnet's prefix, as the bridge's address.
    pub fn gateway_net(&self) -> Ipv4Net {
        Ipv4Net::new(self.gateway, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    /// An address with the subnet's prefix, as a container's interface address.
    pub fn with_prefix(&self, ip: Ipv4Addr) -> Ipv4Net {
        Ipv4Net::new(ip, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }
}

/// The longest IPv6 prefix a network may have: a /126 holds the subnet-router address, the
/// gateway and two hosts (dockerd refuses longer ones too).
pub const MAX_V6_PREFIX: u8 = 126;

/// The ULA /48 (`fdXX:XXXX:XXXX::/48`, RFC 4193) that networks with IPv6 but no IPv6 subnet take
/// /64s from, made of the 40-bit global ID `global_id` (its low 40 bits), as Docker 27+ derives
/// its default IPv6 pool.
pub fn ula_base(global_id: u64) -> Ipv6Net {
    let g = global_id & 0xff_ffff_ffff;
    let hi = (0xfdu128 << 120) | (u128::from(g) << 80);
    Ipv6Net::new(Ipv6Addr::from(hi), 48).unwrap_or_else(|_| Ipv6Net::default())
}

/// Whether two IPv6 subnets share an address.
pub fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first /64 of `base` (in order) overlapping none of `taken`.
pub fn pick_subnet6(base: Ipv6Net, taken: &[Ipv6Net]) -> Option<Ipv6Net> {
    if base.prefix_len() > 64 {
        return None;
    }
    base.trunc()
        .subnets(64)
        .ok()?
        .find(|s| !taken.iter().any(|t| overlaps6(s, t)))
}

/// A user-given IPv6 subnet against the other networks' IPv6 subnets: Docker's Conflict.
pub fn check_overlap6(subnet: &Ipv6Net, others: &[Ipv6Net]) -> Result<()> {
    match others.iter().find(|o| overlaps6(subnet, o)) {
        Some(o) => Err(NetError::Conflict(format!(
            "invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {o})"
        ))),
        None => Ok(()),
    }
}

/// One network's IPv6 address space and its leases. A /64 has 2^64 addresses: nothing is
/// materialised per address; leases are a set, and dynamic allocation scans from a cursor
/// (the address after the last one handed out), so the cost is bounded by the number of leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool6 {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    /// `--ip-range` for IPv6: dynamic addresses come only from here.
    pub range: Option<Ipv6Net>,
    /// Leased address → owner (endpoint id).
    pub leases: BTreeMap<Ipv6Addr, String>,
    /// Where the next dynamic scan starts (absent: at the start of the range).
    #[serde(default)]
    pub cursor: Option<Ipv6Addr>,
    /// Auxiliary addresses: never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reserved: BTreeMap<String, Ipv6Addr>,
}

impl Pool6 {
    /// Validates subnet/gateway/range (the caller truncated host bits off the subnet when it
    /// accepts them); the gateway defaults to the subnet's first address after the
    /// subnet-router anycast address.
    pub fn new(
        subnet: Ipv6Net,
        gateway: Option<Ipv6Addr>,
        range: Option<Ipv6Net>,
    ) -> Result<Pool6> {
        if subnet.trunc() != subnet {
            return Err(NetError::Invalid(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.trunc()
            )));
        }
        if subnet.prefix_len() > MAX_V6_PREFIX {
            return Err(NetError::Invalid(format!(
                "invalid subnet {subnet}: the prefix must be at most /{MAX_V6_PREFIX} to hold a gateway and a host"
            )));
        }
        let gateway = match gateway {
            Some(g) => {
                if !subnet.contains(&g) {
                    return Err(NetError::Invalid(format!(
                        "no matching subnet for gateway {g}: it is outside {subnet}"
                    )));
                }
                if g == subnet.network() {
                    return Err(NetError::Invalid(format!(
                        "invalid gateway {g}: it is the subnet-router address of {subnet}"
                    )));
                }
                g
            }
            None => Ipv6Addr::from(u128::from(subnet.network()) + 1),
        };
        if let Some(r) = range {
            if r.trunc() != r {
                return Err(NetError::Invalid(format!(
                    "invalid ip range {r}: it should be {}",
                    r.trunc()
                )));
            }
            if !subnet.contains(&r) {
                return Err(NetError::Invalid(format!(
                    "invalid ip range {r}: it is not inside the subnet {subnet}"
                )));
            }
        }
        Ok(Pool6 {
            subnet,
            gateway,
            range,
            leases: BTreeMap::new(),
            cursor: None,
            reserved: BTreeMap::new(),
        })
    }

    /// Sets aside an auxiliary address, which must lie in the subnet.
    pub fn reserve(&mut self, name: &str, ip: Ipv6Addr) -> Result<()> {
        if !self.subnet.contains(&ip) {
            return Err(NetError::Invalid(format!(
                "auxiliary address: ({name}:{ip}) must belong to the master pool: {}",
                self.subnet
            )));
        }
        self.reserved.insert(name.to_string(), ip);
        Ok(())
    }

    fn usable(&self, ip: Ipv6Addr) -> bool {
        ip != self.subnet.network()
            && ip != self.gateway
            && !self.leases.contains_key(&ip)
            && !self.reserved.values().any(|r| *r == ip)
    }

    /// Leases `want` (inside the subnet, not the subnet-router address, the gateway or taken)
    /// or the next free address of the range from the cursor, wrapping once.
    pub fn allocate(&mut self, owner: &str, want: Option<Ipv6Addr>) -> Result<Ipv6Addr> {
        if let Some(ip) = want {
            if !self.subnet.contains(&ip) {
                return Err(NetError::Invalid(format!(
                    "invalid address {ip}: it does not belong to the subnet {}",
                    self.subnet
                )));
            }
            if ip == self.subnet.network() {
                return Err(NetError::Invalid(format!(
                    "invalid address {ip}: it is the subnet-router address of {}",
                    self.subnet
                )));
            }
            if !self.usable(ip) {
                return Err(NetError::Conflict(format!("Address already in use: {ip}")));
            }
            self.leases.insert(ip, owner.to_string());
            return Ok(ip);
        }
        let space = self.range.unwrap_or(self.subnet);
        let (first, last) = (u128::from(space.network()), u128::from(space.broadcast()));
        let start = self
            .cursor
            .map(u128::from)
            .filter(|c| (first..=last).contains(c))
            .unwrap_or(first);
        // Every address that is not free is a lease, the gateway or the subnet-router address:
        // a free one turns up within that many steps of any start, whatever the pool's size.
        let budget = (self.leases.len() as u128)
            .saturating_add(self.reserved.len() as u128)
            .saturating_add(3);
        let size = last - first + 1;
        let mut n = start;
        for _ in 0..budget.min(size) {
            let ip = Ipv6Addr::from(n);
            if self.usable(ip) {
                self.leases.insert(ip, owner.to_string());
                self.cursor = Some(Ipv6Addr::from(if n == last { first } else { n + 1 }));
                return Ok(ip);
            }
            n = if n == last { first } else { n + 1 };
        }
        Err(NetError::Conflict(format!(
            "no available IPv6 addresses on this network's address pools ({space})"
        )))
    }

    pub fn release(&mut self, ip: Ipv6Addr) {
        self.leases.remove(&ip);
    }

    /// Releases every lease of `owner`.
    pub fn release_owner(&mut self, owner: &str) {
        self.leases.retain(|_, o| o != owner);
    }

    /// The gateway with the subnet's prefix, as the bridge's address.
    pub fn gateway_net(&self) -> Ipv6Net {
        Ipv6Net::new(self.gateway, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    /// An address with the subnet's prefix, as a container's interface address.
    pub fn with_prefix(&self, ip: Ipv6Addr) -> Ipv6Net {
        Ipv6Net::new(ip, self.subnet.prefix_len()).unwrap_or(self.subnet)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn pools_split_as_dockerd_does() {
        let base: Ipv4Net = "10.10.0.0/16".parse().unwrap();
        let v = split_pool(base, 24).unwrap();
        assert_eq!(v.len(), 256);
        assert_eq!(v[0].to_string(), "10.10.0.0/24");
        assert_eq!(v[255].to_string(), "10.10.255.0/24");
        assert_eq!(split_pool(base, 16).unwrap().len(), 1);
        // Host bits in the base are dropped, as dockerd does.
        let loose: Ipv4Net = "10.10.3.7/16".parse().unwrap();
        assert_eq!(
            split_pool(loose, 17).unwrap()[1].to_string(),
            "10.10.128.0/17"
        );
        assert!(split_pool(base, 8)
            .unwrap_err()
            .to_string()
            .contains("between"));
        assert!(split_pool(base, 31).is_err());
        let big: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        assert!(split_pool(big, 30)
            .unwrap_err()
            .to_string()
            .contains("at most"));
    }
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn default_pools_are_dockers() {
        let p = default_pools();
        assert_eq!(p.len(), 15 + 16);
        assert_eq!(p[0], net("172.17.0.0/16"));
        assert_eq!(p[14], net("172.31.0.0/16"));
        assert_eq!(p[15], net("192.168.0.0/20"));
        assert_eq!(p[16], net("192.168.16.0/20"));
        assert_eq!(p[30], net("192.168.240.0/20"));
    }

    #[test]
    fn pick_skips_routed_and_used_subnets() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[]), Some(net("172.17.0.0/16")));
        // Docker's own bridge beside us, and a narrower route inside 172.18.
        let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("172.19.0.0/16")));
        // A wide route (172.16.0.0/12) covers all the 172 pools.
        assert_eq!(
            pick_subnet(&pools, &[net("172.16.0.0/12"), net("192.168.0.0/20")]),
            Some(net("192.168.16.0/20"))
        );
        assert_eq!(
            pick_subnet(&pools, &[net("0.0.0.0/1"), net("128.0.0.0/1")]),
            None
        );
    }

    #[test]
    fn overlap_is_reported_as_conflict() {
        let err = check_overlap(&net("10.1.0.0/16"), &[net("10.0.0.0/8")]).unwrap_err();
        assert!(matches!(err, NetError::Conflict(_)), "{err}");
        assert!(err.to_string().contains("overlaps"), "{err}");
        check_overlap(&net("10.1.0.0/16"), &[net("10.2.0.0/16")]).unwrap();
    }

    #[test]
    fn pool_validation_errors_are_clear() {
        let p = Pool::new(net("172.20.0.0/16"), None, None).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(172, 20, 0, 1));
        assert_eq!(p.gateway_net(), net("172.20.0.1/16"));
        let e =
            Pool::new(net("172.20.0.0/16"), Some(Ipv4Addr::new(10, 0, 0, 1)), None).unwrap_err();
        assert!(e.to_string().contains("outside 172.20.0.0/16"), "{e}");
        let e = Pool::new(
            net("172.20.0.0/16"),
            Some(Ipv4Addr::new(172, 20, 255, 255)),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");
        let e = Pool::new(net("172.20.0.0/16"), None, Some(net("172.21.0.0/24"))).unwrap_err();
        assert!(e.to_string().contains("not inside the subnet"), "{e}");
        let e = Pool::new(net("172.20.0.5/16"), None, None).unwrap_err();
        assert!(e.to_string().contains("it should be 172.20.0.0/16"), "{e}");
        let e = Pool::new(net("172.20.0.0/31"), None, None).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
    }

    #[test]
    fn allocate_sequentially_skipping_gateway_and_reusing_released() {
        let mut p = Pool::new(net("10.9.0.0/29"), None, None).unwrap();
        // .0 network, .1 gateway, .7 broadcast: .2 to .6 are leasable.
        let got: Vec<_> = (0..5)
            .map(|i| p.allocate(&format!("e{i}"), None).unwrap())
            .collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 9, 0, 6));
        let e = p.allocate("e5", None).unwrap_err();
        assert!(
            matches!(e, NetError::Conflict(_)) && e.to_string().contains("no available"),
            "{e}"
        );
        p.release(Ipv4Addr::new(10, 9, 0, 4));
        assert_eq!(p.allocate("e6", None).unwrap(), Ipv4Addr::new(10, 9, 0, 4));
        p.release_owner("e6");
        assert!(!p.leases.contains_key(&Ipv4Addr::new(10, 9, 0, 4)));
    }

    #[test]
    fn requested_addresses_are_checked() {
        let mut p = Pool::new(net("10.9.0.0/24"), None, Some(net("10.9.0.128/25"))).unwrap();
        // Dynamic addresses come from the range only.
        assert_eq!(p.allocate("a", None).unwrap(), Ipv4Addr::new(10, 9, 0, 128));
        // A static one may be anywhere in the subnet.
        assert_eq!(
            p.allocate("b", Some(Ipv4Addr::new(10, 9, 0, 5))).unwrap(),
            Ipv4Addr::new(10, 9, 0, 5)
        );
        let e = p
            .allocate("c", Some(Ipv4Addr::new(10, 9, 0, 5)))
            .unwrap_err();
        assert!(matches!(e, NetError::Conflict(_)), "{e}");
        assert!(e.to_string().contains("Address already in use"), "{e}");
        let e = p
            .allocate("c", Some(Ipv4Addr::new(10, 9, 0, 1)))
            .unwrap_err();
        assert!(e.to_string().contains("Address already in use"), "{e}");
        let e = p
            .allocate("c", Some(Ipv4Addr::new(10, 8, 0, 5)))
            .unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        let e = p
            .allocate("c", Some(Ipv4Addr::new(10, 9, 0, 255)))
            .unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");
    }

    #[test]
    fn pool_round_trips_through_json() {
        let mut p = Pool::new(net("10.9.0.0/24"), None, None).unwrap();
        p.allocate("abc", None).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        let back: Pool = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
    }

    fn net6(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn v6_pool_allocates_in_order_from_the_gateway_on() {
        let mut p = Pool6::new(net6("fd00:b0::/64"), None, None).unwrap();
        assert_eq!(p.gateway, ip6("fd00:b0::1"));
        assert_eq!(p.gateway_net(), net6("fd00:b0::1/64"));
        assert_eq!(p.allocate("a", None).unwrap(), ip6("fd00:b0::2"));
        assert_eq!(p.allocate("b", None).unwrap(), ip6("fd00:b0::3"));
        assert_eq!(
            p.with_prefix(ip6("fd00:b0::3")).to_string(),
            "fd00:b0::3/64"
        );
        // A released address is not handed out again at once: the cursor moves on (as
        // dockerd's allocator does), and the set stays as small as the leases.
        p.release_owner("a");
        assert_eq!(p.allocate("c", None).unwrap(), ip6("fd00:b0::4"));
        assert_eq!(p.leases.len(), 2);
        p.release(ip6("fd00:b0::4"));
        assert!(!p.leases.contains_key(&ip6("fd00:b0::4")));
    }

    #[test]
    fn v6_pool_static_addresses_are_checked() {
        let mut p =
            Pool6::new(net6("2001:db8:1::/64"), Some(ip6("2001:db8:1::ffff")), None).unwrap();
        assert_eq!(
            p.allocate("a", Some(ip6("2001:db8:1::1"))).unwrap(),
            ip6("2001:db8:1::1")
        );
        let e = p.allocate("b", Some(ip6("2001:db8:1::1"))).unwrap_err();
        assert!(
            matches!(e, NetError::Conflict(_)) && e.to_string().contains("Address already in use"),
            "{e}"
        );
        let e = p.allocate("b", Some(ip6("2001:db8:1::ffff"))).unwrap_err();
        assert!(e.to_string().contains("Address already in use"), "{e}");
        let e = p.allocate("b", Some(ip6("2001:db8:2::5"))).unwrap_err();
        assert!(
            matches!(e, NetError::Invalid(_)) && e.to_string().contains("does not belong"),
            "{e}"
        );
        let e = p.allocate("b", Some(ip6("2001:db8:1::"))).unwrap_err();
        assert!(e.to_string().contains("subnet-router"), "{e}");
        // The dynamic scan steps over the static lease.
        assert_eq!(p.allocate("c", None).unwrap(), ip6("2001:db8:1::2"));
    }

    #[test]
    fn v6_pool_exhaustion_on_a_126_and_cursor_wrap() {
        let mut p = Pool6::new(net6("fd00:1::/126"), None, None).unwrap();
        // ::0 subnet-router, ::1 gateway: ::2 and ::3 are leasable.
        assert_eq!(p.allocate("a", None).unwrap(), ip6("fd00:1::2"));
        assert_eq!(p.allocate("b", None).unwrap(), ip6("fd00:1::3"));
        let e = p.allocate("c", None).unwrap_err();
        assert!(
            matches!(e, NetError::Conflict(_)) && e.to_string().contains("no available IPv6"),
            "{e}"
        );
        // The cursor sits past the end: the scan wraps to the start and finds ::2 again.
        p.release_owner("a");
        assert_eq!(p.allocate("d", None).unwrap(), ip6("fd00:1::2"));
        let e = Pool6::new(net6("fd00:1::/127"), None, None).unwrap_err();
        assert!(e.to_string().contains("at most /126"), "{e}");
    }

    #[test]
    fn v6_pool_in_a_huge_range_stays_small_and_fast() {
        let mut p = Pool6::new(net6("fd00:2::/48"), None, Some(net6("fd00:2:0:1::/64"))).unwrap();
        for i in 0..1000u32 {
            let ip = p.allocate(&format!("e{i}"), None).unwrap();
            assert!(net6("fd00:2:0:1::/64").contains(&ip));
        }
        assert_eq!(p.leases.len(), 1000);
        // A range starting at the cursor's far end wraps within the range.
        p.cursor = Some(ip6("fd00:2:0:1:ffff:ffff:ffff:ffff"));
        assert_eq!(
            p.allocate("last", None).unwrap(),
            ip6("fd00:2:0:1:ffff:ffff:ffff:ffff")
        );
        assert_eq!(p.cursor, Some(ip6("fd00:2:0:1::")));
        // The range's start was the first lease (it is not the subnet-router address of the
        // /48): the wrapped scan steps over the 1000 leases.
        assert_eq!(p.allocate("wrapped", None).unwrap(), ip6("fd00:2:0:1::3e8"));
    }

    #[test]
    fn v6_pool_validation_errors() {
        let e = Pool6::new(net6("fd00::/64"), Some(ip6("fd01::1")), None).unwrap_err();
        assert!(e.to_string().contains("outside fd00::/64"), "{e}");
        let e = Pool6::new(net6("fd00::/64"), None, Some(net6("fd01::/80"))).unwrap_err();
        assert!(e.to_string().contains("not inside the subnet"), "{e}");
        let e = Pool6::new(net6("fd00::1/64"), None, None).unwrap_err();
        assert!(e.to_string().contains("it should be fd00::/64"), "{e}");
        let e = Pool6::new(net6("fd00::/64"), Some(ip6("fd00::")), None).unwrap_err();
        assert!(e.to_string().contains("subnet-router"), "{e}");
    }

    #[test]
    fn ula_pool_gives_distinct_64s_in_order() {
        let base = ula_base(0x12_3456_789a);
        assert_eq!(base.to_string(), "fd12:3456:789a::/48");
        // Only the low 40 bits count.
        assert_eq!(ula_base(0xffff_ff12_3456_789a), base);
        let a = pick_subnet6(base, &[]).unwrap();
        assert_eq!(a.to_string(), "fd12:3456:789a::/64");
        let b = pick_subnet6(base, &[a]).unwrap();
        assert_eq!(b.to_string(), "fd12:3456:789a:1::/64");
        // A wider user subnet inside the base takes all its /64s.
        let c = pick_subnet6(base, &[a, net6("fd12:3456:789a:0::/62")]).unwrap();
        assert_eq!(c.to_string(), "fd12:3456:789a:4::/64");
        assert_eq!(pick_subnet6(base, &[base]), None);
        let e = check_overlap6(&net6("fd00:b0::/64"), &[net6("fd00::/16")]).unwrap_err();
        assert!(
            matches!(e, NetError::Conflict(_)) && e.to_string().contains("overlaps"),
            "{e}"
        );
        check_overlap6(&net6("fd00:b0::/64"), &[net6("fd00:b1::/64")]).unwrap();
    }

    #[test]
    fn v6_pool_round_trips_and_loads_without_a_cursor() {
        let mut p = Pool6::new(net6("fd00:b0::/64"), None, None).unwrap();
        p.allocate("abc", None).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        let back: Pool6 = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        let old = r#"{"subnet":"fd00:b0::/64","gateway":"fd00:b0::1","range":null,"leases":{}}"#;
        let p: Pool6 = serde_json::from_str(old).unwrap();
        assert_eq!(p.cursor, None);
    }

    #[test]
    fn auxiliary_addresses_are_never_handed_out() {
        let mut p = Pool::new("10.9.0.0/29".parse().unwrap(), None, None).unwrap();
        p.reserve("a", "10.9.0.2".parse().unwrap()).unwrap();
        p.reserve("b", "10.9.0.4".parse().unwrap()).unwrap();
        let got: Vec<Ipv4Addr> = (0..3)
            .map(|i| p.allocate(&format!("c{i}"), None).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.9.0.3", "10.9.0.5", "10.9.0.6"]
                .map(|s| s.parse::<Ipv4Addr>().unwrap())
                .to_vec()
        );
        assert!(p.allocate("x", None).is_err());
        let e = p
            .allocate("y", Some("10.9.0.2".parse().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("Address already in use"), "{e}");
        let e = p.reserve("far", "10.10.0.1".parse().unwrap()).unwrap_err();
        assert!(
            e.to_string().contains(
                "auxiliary address: (far:10.10.0.1) must belong to the master pool: 10.9.0.0/29"
            ),
            "{e}"
        );

        let mut p6 = Pool6::new("fd00:9::/126".parse().unwrap(), None, None).unwrap();
        p6.reserve("a", "fd00:9::2".parse().unwrap()).unwrap();
        assert_eq!(
            p6.allocate("c", None).unwrap(),
            "fd00:9::3".parse::<Ipv6Addr>().unwrap()
        );
        assert!(p6.allocate("d", None).is_err());
        assert!(p6.reserve("far", "fd00:a::1".parse().unwrap()).is_err());
        // Records written before auxiliary addresses existed still load.
        let old = r#"{"subnet":"10.9.0.0/29","gateway":"10.9.0.1","range":null,"leases":{}}"#;
        let p: Pool = serde_json::from_str(old).unwrap();
        assert!(p.reserved.is_empty());
    }
}
