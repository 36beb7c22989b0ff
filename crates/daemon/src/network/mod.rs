//! berthd's networks: the records (predefined `bridge`, `host`, `none` and user bridge networks,
//! each with its address pool and the endpoints of its running containers), persisted one JSON
//! file per network under `<data-root>/network/`, and the operations the API and the container
//! lifecycle call. The kernel work is berth-network's; this module decides what to ask of it.
//!
//! - [`links`]: legacy links on the default bridge (hosts entries, `ALIAS_*` variables).
//! - [`ports`]: published-port specs (`-p`, `-P`) parsed and validated into a plan.
//! - [`wire`]: a container's start/stop path (netns, veths, reservations, firewall, DNS, etc
//!   files) and the sweep/restore at daemon start.

pub mod links;
pub mod ports;
pub mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_network::ipam::{self, Pool, Pool6};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQ: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_IP: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";

/// The file in the network directory holding this daemon's ULA /48.
const ULA_FILE: &str = "ula-prefix";

/// The default bridge's interface name.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// One container's interface on one network, while the container runs (and the static address
/// it asked for, kept between runs in its record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    /// The container's name, without `/`.
    pub name: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    /// On IPv6 networks.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    pub mac: String,
    pub aliases: Vec<String>,
    /// The host end of the veth pair.
    pub host_ifname: String,
    /// The interface inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// The container's links on this network (`container:alias`), resolved for it alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// "bridge", "host" or "null".
    pub driver: String,
    pub created: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
    /// The subnet was given by the user (a static `--ip` is allowed only then).
    pub user_subnet: bool,
    /// None for `host` and `none`.
    pub pool: Option<Pool>,
    pub bridge: String,
    pub mtu: u32,
    pub icc: bool,
    pub masquerade: bool,
    pub host_binding: Option<IpAddr>,
    /// Container id → endpoint, for running containers.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// `EnableIPv6`: containers get an IPv6 address from `pool6` too.
    #[serde(default)]
    pub enable_ipv6: bool,
    /// The IPv6 IPAM configuration as the user gave it (subnet truncated to its prefix), also
    /// without `EnableIPv6` (then kept for inspect only, as dockerd 20.10 does).
    #[serde(default)]
    pub ipam6: Option<Ipam6>,
    /// The IPv6 address space, on IPv6 networks only.
    #[serde(default)]
    pub pool6: Option<Pool6>,
}

/// A user's IPv6 IPAM configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam6 {
    pub subnet: Ipv6Net,
    pub gateway: Option<Ipv6Addr>,
    pub range: Option<Ipv6Net>,
    /// `--aux-address` names → addresses set aside in this subnet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux: BTreeMap<String, Ipv6Addr>,
}

/// The IPAM part of a create request, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamRequest {
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address` of the IPv4 configuration.
    pub aux: BTreeMap<String, Ipv4Addr>,
    pub v6: Option<Ipam6>,
}

impl NetworkRecord {
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    pub fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }

    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.pool.as_ref().map(|p| p.subnet)
    }

    /// The IPv6 subnet in use (IPv6 networks only).
    pub fn subnet6(&self) -> Option<Ipv6Net> {
        self.pool6
            .as_ref()
            .filter(|_| self.enable_ipv6)
            .map(|p| p.subnet)
    }

    /// Whether `owner` holds an address (IPv4 or IPv6) here.
    pub fn owns_lease(&self, owner: &str) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|p| p.leases.values().any(|o| o == owner))
            || self
                .pool6
                .as_ref()
                .is_some_and(|p| p.leases.values().any(|o| o == owner))
    }

    /// Drops the leases whose owner fails `keep`, in both pools.
    pub fn retain_leases(&mut self, keep: impl Fn(&str) -> bool) {
        if let Some(p) = self.pool.as_mut() {
            p.leases.retain(|_, o| keep(o));
        }
        if let Some(p) = self.pool6.as_mut() {
            p.leases.retain(|_, o| keep(o));
        }
    }

    pub fn firewall_rules(&self) -> Option<berth_network::firewall::NetworkRules> {
        let p = self.pool.as_ref()?;
        Some(berth_network::firewall::NetworkRules {
            bridge: self.bridge.clone(),
            subnet: p.subnet,
            subnet6: self.subnet6(),
            internal: self.internal,
            masquerade: self.masquerade,
            icc: self.icc,
        })
    }

    pub fn bridge_config(&self) -> Option<berth_network::link::BridgeConfig> {
        let p = self.pool.as_ref()?;
        let address = Ipv4Net::new(p.gateway, p.subnet.prefix_len()).ok()?;
        Some(berth_network::link::BridgeConfig {
            name: self.bridge.clone(),
            address,
            address6: self
                .pool6
                .as_ref()
                .filter(|_| self.enable_ipv6)
                .map(Pool6::gateway_net),
            mtu: self.mtu,
        })
    }
}

/// A validated `POST /networks/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub aux: BTreeMap<String, Ipv4Addr>,
    pub enable_ipv6: bool,
    pub v6: Option<Ipam6>,
}

/// The network table and the live per-container network state.
#[derive(Debug)]
pub struct Networks {
    dir: PathBuf,
    /// Shared with the DNS resolvers of running containers.
    table: Arc<Mutex<BTreeMap<String, NetworkRecord>>>,
    /// Held host ports and DNS servers of running containers.
    pub live: Mutex<HashMap<String, wire::Live>>,
    /// Bridges known to exist (created or checked since the daemon started).
    pub bridges_up: Mutex<HashSet<String>>,
    /// The firewall as last applied, so a start that changes nothing skips `nft`.
    pub applied: tokio::sync::Mutex<Option<berth_network::firewall::Ruleset>>,
    /// Serialises create/remove/connect so names and subnets stay unique.
    pub admin: tokio::sync::Mutex<()>,
    /// --bip, --fixed-cidr, --default-address-pool, --mtu.
    cfg: crate::config::NetConfig,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_network_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse_bool_opt(opts: &HashMap<String, String>, k: &str, default: bool) -> ApiResult<bool> {
    match opts.get(k).map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some("true" | "1" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "failed to parse option {k}: invalid boolean {v:?}"
        ))),
    }
}

impl Networks {
    /// Loads the records under `dir`, creating the predefined networks when missing.
    pub fn open(dir: &Path, cfg: &crate::config::NetConfig) -> ApiResult<Networks> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
        let mut table = BTreeMap::new();
        for e in std::fs::read_dir(dir)
            .map_err(|e| ApiError::internal(format!("read {}: {e}", dir.display())))?
            .flatten()
        {
            let p = e.path();
            if p.file_name().and_then(|x| x.to_str()) == Some(ULA_FILE) {
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                let _ = std::fs::remove_file(&p);
                continue;
            }
            let loaded = std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<NetworkRecord>(&b).map_err(|e| e.to_string())
            });
            match loaded {
                Ok(n) if is_network_id(&n.id) && p.file_stem() == Some(n.id.as_ref()) => {
                    table.insert(n.id.clone(), n);
                }
                Ok(_) => tracing::error!("skip network record {}: id mismatch", p.display()),
                Err(e) => tracing::error!("skip network record {}: {e}", p.display()),
            }
        }
        let n = Networks {
            dir: dir.to_path_buf(),
            table: Arc::new(Mutex::new(table)),
            live: Mutex::new(HashMap::new()),
            bridges_up: Mutex::new(HashSet::new()),
            applied: tokio::sync::Mutex::new(None),
            admin: tokio::sync::Mutex::new(()),
            cfg: cfg.clone(),
        };
        n.ensure_predefined()?;
        n.reconcile_default_bridge()?;
        Ok(n)
    }

    fn ensure_predefined(&self) -> ApiResult<()> {
        for (name, driver) in [("host", "host"), ("none", "null"), ("bridge", "bridge")] {
            if self.get(name).is_ok() {
                continue;
            }
            let mut rec = NetworkRecord {
                id: crate::util::new_id(),
                name: name.into(),
                driver: driver.into(),
                created: crate::util::now_rfc3339(),
                internal: false,
                attachable: false,
                labels: HashMap::new(),
                options: HashMap::new(),
                user_subnet: false,
                pool: None,
                bridge: String::new(),
                mtu: 1500,
                icc: true,
                masquerade: true,
                host_binding: None,
                endpoints: BTreeMap::new(),
                enable_ipv6: false,
                ipam6: None,
                pool6: None,
            };
            if name == "bridge" {
                rec.pool = Some(self.default_bridge_pool()?);
                rec.pool6 = self.default_bridge_pool6()?;
                rec.enable_ipv6 = rec.pool6.is_some();
                rec.user_subnet = self.cfg.bip.is_some();
                rec.mtu = self.cfg.mtu;
                rec.bridge = DEFAULT_BRIDGE.into();
                rec.options = HashMap::from([
                    (OPT_DEFAULT_BRIDGE.to_string(), "true".to_string()),
                    (OPT_ICC.to_string(), "true".to_string()),
                    (OPT_MASQ.to_string(), "true".to_string()),
                    (OPT_HOST_IP.to_string(), "0.0.0.0".to_string()),
                    (OPT_BRIDGE_NAME.to_string(), DEFAULT_BRIDGE.to_string()),
                    (OPT_MTU.to_string(), self.cfg.mtu.to_string()),
                ]);
            }
            self.save(&rec, true)?;
            lock(&self.table).insert(rec.id.clone(), rec);
        }
        Ok(())
    }

    /// The default bridge's pool: from --bip (and --fixed-cidr), else a free pool subnet.
    fn default_bridge_pool(&self) -> ApiResult<Pool> {
        let (subnet, gateway) = match self.cfg.bip {
            Some(b) => (b.trunc(), Some(b.addr())),
            None => (self.pick_subnet()?, None),
        };
        Pool::new(subnet, gateway, self.cfg.fixed_cidr)
            .map_err(|e| ApiError::invalid(format!("default bridge: {e}")))
    }

    /// The default bridge's IPv6 pool: `--fixed-cidr-v6`, the gateway its first address.
    fn default_bridge_pool6(&self) -> ApiResult<Option<Pool6>> {
        self.cfg
            .fixed_cidr_v6
            .map(|s| {
                Pool6::new(s, None, None)
                    .map_err(|e| ApiError::invalid(format!("default bridge: {e}")))
            })
            .transpose()
    }

    /// A default bridge made by an earlier start with other --bip/--fixed-cidr/--mtu takes the
    /// new ones when no container is on it (as dockerd reconfigures its bridge at start);
    /// otherwise it keeps its addresses, and says so.
    fn reconcile_default_bridge(&self) -> ApiResult<()> {
        let Ok(cur) = self.get("bridge") else {
            return Ok(());
        };
        let Some(pool) = cur.pool.as_ref() else {
            return Ok(());
        };
        let want_bip = self.cfg.bip.map(|b| (b.trunc(), b.addr()));
        let bip_differs = want_bip.is_some_and(|w| w != (pool.subnet, pool.gateway))
            || (want_bip.is_none() && cur.user_subnet);
        let v6_differs = cur.pool6.as_ref().map(|p| p.subnet) != self.cfg.fixed_cidr_v6;
        let differs = bip_differs
            || v6_differs
            || pool.range != self.cfg.fixed_cidr
            || cur.mtu != self.cfg.mtu;
        if !differs {
            return Ok(());
        }
        if !cur.endpoints.is_empty() {
            tracing::warn!(
                "the default bridge keeps {} (mtu {}): containers are on it; --bip/--fixed-cidr/--fixed-cidr-v6/--mtu apply once they are gone",
                pool.subnet,
                cur.mtu
            );
            return Ok(());
        }
        let new_pool = if bip_differs {
            // Its own subnet must not count as taken when picking a new one.
            lock(&self.table)
                .entry(cur.id.clone())
                .and_modify(|n| n.pool = None);
            match self.default_bridge_pool() {
                Ok(p) => p,
                Err(e) => {
                    lock(&self.table).insert(cur.id.clone(), cur.clone());
                    return Err(e);
                }
            }
        } else {
            Pool::new(pool.subnet, Some(pool.gateway), self.cfg.fixed_cidr)
                .map_err(|e| ApiError::invalid(format!("default bridge: {e}")))?
        };
        let mut rec = cur.clone();
        rec.pool = Some(new_pool);
        if v6_differs {
            rec.pool6 = self.default_bridge_pool6()?;
            rec.enable_ipv6 = rec.pool6.is_some();
        }
        rec.user_subnet = self.cfg.bip.is_some();
        rec.mtu = self.cfg.mtu;
        rec.options
            .insert(OPT_MTU.to_string(), self.cfg.mtu.to_string());
        self.save(&rec, true)?;
        lock(&self.table).insert(rec.id.clone(), rec);
        Ok(())
    }

    /// A free subnet from the address pools, skipping routed ones and other networks'.
    fn pick_subnet(&self) -> ApiResult<Ipv4Net> {
        let mut taken = ipam::routed_subnets().unwrap_or_else(|e| {
            tracing::warn!("list routes: {e}");
            Vec::new()
        });
        taken.extend(lock(&self.table).values().filter_map(|n| n.subnet()));
        ipam::pick_subnet(&self.cfg.pools, &taken).ok_or_else(|| {
            ApiError::forbidden(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
            )
        })
    }

    /// This daemon's ULA /48 for IPv6 networks without a subnet: a random global ID made once
    /// and kept in the network directory (RFC 4193's advice), so the /64s stay put across
    /// restarts.
    fn ula_base(&self) -> ApiResult<Ipv6Net> {
        let p = self.dir.join(ULA_FILE);
        if let Ok(text) = std::fs::read_to_string(&p) {
            match text.trim().parse::<Ipv6Net>() {
                Ok(n) => return Ok(n),
                Err(e) => tracing::warn!("{}: {e}; making a new one", p.display()),
            }
        }
        let id = crate::util::new_id();
        let global = u64::from_str_radix(&id[..10], 16)
            .map_err(|e| ApiError::internal(format!("ULA global id from {id}: {e}")))?;
        let base = ipam::ula_base(global);
        crate::util::write_replace(&p, format!("{base}\n").as_bytes(), true)
            .map_err(|e| ApiError::internal(format!("save {}: {e}", p.display())))?;
        Ok(base)
    }

    /// A free /64 of the ULA pool.
    fn pick_subnet6(&self) -> ApiResult<Ipv6Net> {
        let base = self.ula_base()?;
        let taken: Vec<Ipv6Net> = lock(&self.table)
            .values()
            .filter_map(|n| n.pool6.as_ref().map(|p| p.subnet))
            .collect();
        ipam::pick_subnet6(base, &taken).ok_or_else(|| {
            ApiError::forbidden(format!(
                "could not find an available, non-overlapping IPv6 address pool in {base} to assign to the network"
            ))
        })
    }

    fn save(&self, rec: &NetworkRecord, durable: bool) -> ApiResult<()> {
        let bytes = serde_json::to_vec_pretty(rec)
            .map_err(|e| ApiError::internal(format!("encode network {}: {e}", rec.name)))?;
        crate::util::write_replace(&self.dir.join(format!("{}.json", rec.id)), &bytes, durable)
            .map_err(|e| ApiError::internal(format!("save network {}: {e}", rec.name)))
    }

    pub fn table(&self) -> Arc<Mutex<BTreeMap<String, NetworkRecord>>> {
        self.table.clone()
    }

    pub fn all(&self) -> Vec<NetworkRecord> {
        lock(&self.table).values().cloned().collect()
    }

    /// By full id, exact name, or unique id prefix (Docker's order).
    pub fn get(&self, key: &str) -> ApiResult<NetworkRecord> {
        let t = lock(&self.table);
        if key.is_empty() {
            return Err(ApiError::not_found("network  not found"));
        }
        if let Some(n) = t.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = t.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let hits: Vec<_> = t.values().filter(|n| n.id.starts_with(key)).collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(ApiError::not_found(format!("network {key} not found"))),
            _ => Err(ApiError::invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    /// Changes a record in place and saves it (without fsync when `durable` is false: leases
    /// and endpoints are reconciled from the container records at daemon start).
    pub fn modify<T>(
        &self,
        id: &str,
        durable: bool,
        f: impl FnOnce(&mut NetworkRecord) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let mut t = lock(&self.table);
        let rec = t
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("network {id} not found")))?;
        let mut copy = rec.clone();
        let out = f(&mut copy)?;
        if copy != *rec {
            self.save(&copy, durable)?;
            *rec = copy;
        }
        Ok(out)
    }

    /// Validates and records a new bridge network.
    pub fn create(&self, req: CreateRequest) -> ApiResult<NetworkRecord> {
        if req.driver != "bridge" {
            return Err(ApiError::not_found(format!(
                "plugin \"{}\" not found",
                req.driver
            )));
        }
        if req.name.is_empty() {
            return Err(ApiError::invalid("network name cannot be empty"));
        }
        if self.get(&req.name).is_ok_and(|n| n.name == req.name) {
            return Err(ApiError::conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let icc = parse_bool_opt(&req.options, OPT_ICC, true)?;
        let masquerade = parse_bool_opt(&req.options, OPT_MASQ, true)?;
        let mtu = match req.options.get(OPT_MTU).filter(|s| !s.is_empty()) {
            None => 1500,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| ApiError::invalid(format!("invalid MTU {v:?}")))?,
        };
        let host_binding =
            match req.options.get(OPT_HOST_IP).filter(|s| !s.is_empty()) {
                None => None,
                Some(v) => Some(v.parse::<IpAddr>().map_err(|_| {
                    ApiError::invalid(format!("invalid host binding address {v:?}"))
                })?),
            };
        let id = crate::util::new_id();
        let bridge = match req.options.get(OPT_BRIDGE_NAME).filter(|s| !s.is_empty()) {
            Some(b) => {
                if b.len() > 15 || b.contains(['/', ' ', '\0']) {
                    return Err(ApiError::invalid(format!("invalid bridge name {b:?}")));
                }
                if lock(&self.table).values().any(|n| &n.bridge == b) {
                    return Err(ApiError::forbidden(format!(
                        "bridge name {b} is already used by another network"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let user_subnet = req.subnet.is_some();
        let subnet = match req.subnet {
            Some(s) => {
                if s != s.trunc() {
                    return Err(ApiError::invalid(format!(
                        "invalid subnet {s}: it should be {}",
                        s.trunc()
                    )));
                }
                let overlap = lock(&self.table)
                    .values()
                    .filter_map(|n| n.subnet())
                    .any(|o| o.contains(&s.network()) || s.contains(&o.network()));
                if overlap {
                    return Err(ApiError::forbidden(
                        "Pool overlaps with other one on this address space",
                    ));
                }
                s
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() || !req.aux.is_empty() {
                    return Err(ApiError::invalid(
                        "gateway, ip-range and auxiliary addresses need a subnet (--subnet)",
                    ));
                }
                self.pick_subnet()?
            }
        };
        let mut pool = Pool::new(subnet, req.gateway, req.ip_range)
            .map_err(|e| ApiError::invalid(format!("invalid pool request: {e}")))?;
        for (name, ip) in &req.aux {
            pool.reserve(name, *ip)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        let pool6 = if req.enable_ipv6 {
            let (subnet6, gateway6, range6) = match &req.v6 {
                Some(v6) => {
                    let others: Vec<Ipv6Net> = lock(&self.table)
                        .values()
                        .filter_map(NetworkRecord::subnet6)
                        .collect();
                    if others.iter().any(|o| ipam::overlaps6(o, &v6.subnet)) {
                        return Err(ApiError::forbidden(
                            "Pool overlaps with other one on this address space",
                        ));
                    }
                    (v6.subnet, v6.gateway, v6.range)
                }
                None => (self.pick_subnet6()?, None, None),
            };
            let mut p = Pool6::new(subnet6, gateway6, range6)
                .map_err(|e| ApiError::invalid(format!("invalid pool request: {e}")))?;
            for (name, ip) in req.v6.iter().flat_map(|v6| v6.aux.iter()) {
                p.reserve(name, *ip)
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
            }
            Some(p)
        } else {
            None
        };
        let rec = NetworkRecord {
            id,
            name: req.name,
            driver: req.driver,
            created: crate::util::now_rfc3339(),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels,
            options: req.options,
            user_subnet,
            pool: Some(pool),
            bridge,
            mtu,
            icc,
            masquerade,
            host_binding,
            endpoints: BTreeMap::new(),
            enable_ipv6: req.enable_ipv6,
            ipam6: req.v6,
            pool6,
        };
        self.save(&rec, true)?;
        lock(&self.table).insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// Drops a record (the caller checked it has no users).
    pub fn forget(&self, id: &str) -> ApiResult<()> {
        let p = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ApiError::internal(format!("remove {}: {e}", p.display())));
            }
        }
        if let Some(n) = lock(&self.table).remove(id) {
            lock(&self.bridges_up).remove(&n.bridge);
        }
        Ok(())
    }
}

/// Parses the IPAM part of a create request (400 on bad input): at most one IPv4 and one IPv6
/// configuration (an IPv6 one is one whose subnet has a ':').
/// dockerd's checks of a create request's network mode against its other networking options:
/// errors for what a `container:` mode cannot have, and the warning for ports published in
/// `host` mode. Checked on the request as sent, before the image's defaults are merged in.
pub fn check_mode(
    body: &berth_api::models::ContainerCreateBody,
    hc: &berth_api::models::HostConfig,
) -> ApiResult<Vec<String>> {
    let mode = hc.network_mode.as_deref().unwrap_or_default();
    let publishes = hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
        || hc.publish_all_ports.unwrap_or(false);
    if mode.starts_with("container:") {
        let conflict = |what: &str| {
            Err(ApiError::invalid(format!(
                "conflicting options: {what} and the network mode"
            )))
        };
        if body.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
            return conflict("hostname");
        }
        if hc.dns.as_ref().is_some_and(|d| !d.is_empty()) {
            return conflict("dns");
        }
        if hc.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
            return conflict("custom host-to-IP mapping");
        }
        if publishes {
            return Err(ApiError::invalid(
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        if body.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(ApiError::invalid(
                "conflicting options: port exposing and the container type network mode",
            ));
        }
    }
    let mut warnings = Vec::new();
    if mode == "host" && publishes {
        warnings.push("Published ports are discarded when using host network mode".to_string());
    }
    Ok(warnings)
}

pub fn parse_ipam(cfg: &[berth_api::models::IpamConfig]) -> ApiResult<IpamRequest> {
    let is_v6 =
        |c: &&berth_api::models::IpamConfig| c.subnet.as_deref().is_some_and(|s| s.contains(':'));
    let v6s: Vec<_> = cfg.iter().filter(is_v6).collect();
    if v6s.len() > 1 {
        return Err(ApiError::invalid(
            "bridge driver doesn't support multiple subnets",
        ));
    }
    let v6 = v6s.first().map(|c| parse_ipam6(c)).transpose()?;
    let mut v4 = cfg.iter().filter(|c| !is_v6(c));
    let Some(c) = v4.next() else {
        return Ok(IpamRequest {
            v6,
            ..Default::default()
        });
    };
    if v4.next().is_some() {
        return Err(ApiError::invalid(
            "berth supports one IPv4 IPAM configuration per network",
        ));
    }
    let subnet =
        match c.subnet.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<Ipv4Net>().map_err(|_| {
                ApiError::invalid(format!("invalid subnet {s}: invalid CIDR address"))
            })?),
        };
    let gateway = match c.gateway.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(g) => Some(
            g.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid(format!("invalid gateway address {g}")))?,
        ),
    };
    let range = match c.ip_range.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(r) => Some(r.parse::<Ipv4Net>().map_err(|_| {
            ApiError::invalid(format!("invalid ip-range {r}: invalid CIDR address"))
        })?),
    };
    if let (Some(s), Some(g)) = (subnet, gateway) {
        if !s.contains(&g) {
            return Err(ApiError::invalid(format!(
                "invalid gateway {g}: it is not in subnet {s}"
            )));
        }
    }
    if let (Some(s), Some(r)) = (subnet, range) {
        if !s.contains(&r) {
            return Err(ApiError::invalid(format!(
                "invalid ip-range {r}: it is not in subnet {s}"
            )));
        }
    }
    Ok(IpamRequest {
        subnet,
        gateway,
        ip_range: range,
        aux: parse_aux(c)?,
        v6,
    })
}

/// One IPv6 IPAM configuration, in dockerd 20.10's words where it has them (subnet, gateway),
/// else in those of dockerd 25+'s `ValidateIPAM` (ranges; 20.10 accepts any). Host bits in the
/// subnet are dropped (docker-py's tests send `2001:389::1/64`, which dockerd accepts).
fn parse_ipam6(c: &berth_api::models::IpamConfig) -> ApiResult<Ipam6> {
    let bad = |m: String| ApiError::invalid(m);
    let s = c.subnet.as_deref().unwrap_or_default();
    let subnet = s
        .parse::<Ipv6Net>()
        .map_err(|_| bad(format!("Invalid subnet {s} : invalid CIDR address: {s}")))?
        .trunc();
    let gateway = match c.gateway.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => {
            let ip = match g.parse::<IpAddr>() {
                Ok(IpAddr::V6(ip)) => ip,
                Ok(IpAddr::V4(_)) => {
                    return Err(bad(format!(
                        "invalid gateway {g}: parent subnet is an IPv6 block"
                    )))
                }
                Err(_) => {
                    return Err(bad(format!(
                        "invalid gateway address {g} in Ipam configuration"
                    )))
                }
            };
            if !subnet.contains(&ip) {
                return Err(bad(format!(
                    "failed to allocate gateway ({g}): Requested address is out of range"
                )));
            }
            Some(ip)
        }
    };
    let range = match c.ip_range.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let net = r
                .parse::<Ipv6Net>()
                .map_err(|_| bad(format!("invalid ip-range {r}: invalid CIDR block notation")))?;
            if net.prefix_len() < subnet.prefix_len() {
                return Err(bad(format!(
                    "invalid ip-range {r}: CIDR block is bigger than its parent subnet {subnet}"
                )));
            }
            if net != net.trunc() {
                return Err(bad(format!(
                    "invalid ip-range {r}: it should be {}",
                    net.trunc()
                )));
            }
            if !subnet.contains(&net) {
                return Err(bad(format!(
                    "invalid ip-range {r}: parent subnet {subnet} doesn't contain ip-range"
                )));
            }
            Some(net)
        }
    };
    if subnet.prefix_len() > ipam::MAX_V6_PREFIX {
        return Err(bad(format!(
            "invalid subnet {subnet}: the prefix must be at most /{} to hold a gateway and a host",
            ipam::MAX_V6_PREFIX
        )));
    }
    Ok(Ipam6 {
        subnet,
        gateway,
        range,
        aux: parse_aux(c)?,
    })
}

/// A configuration's `AuxiliaryAddresses` (name → address of the configuration's family;
/// whether each lies in the subnet is the pool's check).
fn parse_aux<T: std::str::FromStr>(
    c: &berth_api::models::IpamConfig,
) -> ApiResult<BTreeMap<String, T>> {
    let mut out = BTreeMap::new();
    for (name, ip) in c.auxiliary_addresses.iter().flatten() {
        let addr = ip.parse::<T>().map_err(|_| {
            ApiError::invalid(format!(
                "failed to parse secondary address {name} ({ip}): invalid address"
            ))
        })?;
        out.insert(name.clone(), addr);
    }
    Ok(out)
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::IpamConfig;

    #[test]
    fn ipam_config_parsing() {
        let c = |s: &str, g: &str, r: &str| IpamConfig {
            subnet: Some(s.into()),
            gateway: Some(g.into()),
            ip_range: Some(r.into()),
            auxiliary_addresses: None,
        };
        let req = parse_ipam(&[c("10.5.0.0/16", "10.5.0.254", "10.5.1.0/24")]).unwrap();
        assert_eq!(req.subnet.unwrap().to_string(), "10.5.0.0/16");
        assert_eq!(req.gateway.unwrap().to_string(), "10.5.0.254");
        assert_eq!(req.ip_range.unwrap().to_string(), "10.5.1.0/24");
        assert_eq!(req.v6, None);
        assert!(parse_ipam(&[c("10.5.0.0/33", "", "")]).is_err());
        assert!(parse_ipam(&[c("10.5.0.0/16", "10.6.0.1", "")]).is_err());
        assert!(parse_ipam(&[c("10.5.0.0/16", "", "10.6.0.0/24")]).is_err());
        assert!(parse_ipam(&[c("10.5.0.0/16", "x", "")]).is_err());
        assert_eq!(parse_ipam(&[]).unwrap(), IpamRequest::default());
        assert_eq!(mac_string([2, 0x42, 10, 5, 0, 2]), "02:42:0a:05:00:02");
    }

    fn cfg(s: &str, g: &str, r: &str) -> IpamConfig {
        IpamConfig {
            subnet: Some(s.into()),
            gateway: Some(g.into()),
            ip_range: Some(r.into()),
            auxiliary_addresses: None,
        }
    }

    #[test]
    fn ipam_v6_config_parsing() {
        // docker-py's shape: host bits in the subnet, accepted and truncated; v4 and v6 apart.
        let req = parse_ipam(&[
            cfg("2001:389::1/64", "2001:389::1", ""),
            cfg("10.6.0.0/16", "", ""),
        ])
        .unwrap();
        assert_eq!(req.subnet.unwrap().to_string(), "10.6.0.0/16");
        let v6 = req.v6.unwrap();
        assert_eq!(v6.subnet.to_string(), "2001:389::/64");
        assert_eq!(v6.gateway.unwrap().to_string(), "2001:389::1");
        assert_eq!(v6.range, None);
        let only6 = parse_ipam(&[cfg("fd00:b0::/64", "", "fd00:b0::/80")]).unwrap();
        assert_eq!(only6.subnet, None);
        assert_eq!(only6.v6.unwrap().range.unwrap().to_string(), "fd00:b0::/80");

        let err = |c: &[IpamConfig]| parse_ipam(c).unwrap_err().to_string();
        let e = err(&[cfg("fd00:b0::/64", "fd00:b1::1", "")]);
        assert!(
            e.contains(
                "failed to allocate gateway (fd00:b1::1): Requested address is out of range"
            ),
            "{e}"
        );
        let e = err(&[cfg("fd00:b0::/64", "10.0.0.1", "")]);
        assert!(e.contains("parent subnet is an IPv6 block"), "{e}");
        let e = err(&[cfg("fd00:b0::/64", "", "fd00:b1::/80")]);
        assert!(e.contains("invalid ip-range fd00:b1::/80: parent subnet fd00:b0::/64 doesn't contain ip-range"), "{e}");
        let e = err(&[cfg("fd00:b0::/64", "", "fd00::/48")]);
        assert!(e.contains("bigger than its parent subnet"), "{e}");
        let e = err(&[cfg("fd00:zz::/64", "", "")]);
        assert!(
            e.contains("Invalid subnet fd00:zz::/64 : invalid CIDR address: fd00:zz::/64"),
            "{e}"
        );
        let e = err(&[cfg("fd00:b0::/64", "nonsense", "")]);
        assert!(
            e.contains("invalid gateway address nonsense in Ipam configuration"),
            "{e}"
        );
        let e = err(&[cfg("fd00:b0::/127", "", "")]);
        assert!(e.contains("at most /126"), "{e}");
        let e = err(&[cfg("fd00:b0::/64", "", ""), cfg("fd00:b1::/64", "", "")]);
        assert!(e.contains("doesn't support multiple subnets"), "{e}");
    }

    #[test]
    fn records_without_the_ipv6_fields_still_load() {
        // A record as written before IPv6 networks existed.
        let old = r#"{
            "id": "0000000000000000000000000000000000000000000000000000000000000001",
            "name": "n1", "driver": "bridge", "created": "2026-01-01T00:00:00Z",
            "internal": false, "attachable": false, "labels": {}, "options": {},
            "user_subnet": true,
            "pool": {"subnet": "10.5.0.0/16", "gateway": "10.5.0.1", "range": null,
                     "leases": {"10.5.0.2": "c1"}},
            "bridge": "br-000000000000", "mtu": 1500, "icc": true, "masquerade": true,
            "host_binding": null,
            "endpoints": {"c1": {"container_id": "c1", "name": "web", "endpoint_id": "e1",
                "ip": "10.5.0.2", "mac": "02:42:0a:05:00:02", "aliases": [],
                "host_ifname": "vbe1", "ifname": "eth0"}}
        }"#;
        let rec: NetworkRecord = serde_json::from_str(old).unwrap();
        assert!(!rec.enable_ipv6);
        assert_eq!(rec.pool6, None);
        assert_eq!(rec.ipam6, None);
        assert_eq!(rec.endpoints["c1"].ip6, None);
        assert_eq!(rec.subnet6(), None);
        assert!(rec.owns_lease("c1"));
        assert!(rec.bridge_config().unwrap().address6.is_none());
        let old_att = r#"{"network_id": "x", "aliases": [], "ipv4": null}"#;
        let att: crate::container::Attachment = serde_json::from_str(old_att).unwrap();
        assert_eq!(att.ipv6, None);
    }
}
