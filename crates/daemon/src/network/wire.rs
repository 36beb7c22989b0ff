//! A container's networking through its lifecycle: planned at create ([`plan_attachments`]),
//! wired before the process starts ([`setup`]: netns, one veth per network, host ports, the
//! firewall when ports are published, the embedded DNS on user networks, /etc/hosts and
//! resolv.conf), unwound in reverse at exit ([`teardown`]), and re-adopted or swept when the
//! daemon starts ([`restore`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::models::{HostConfig, NetworkingConfig};
use berth_network::dns::{self, DnsServer, Resolve};
use berth_network::firewall::{self, PortRule, Ruleset};
use berth_network::ports::Reservation;
use berth_network::{etc, link, netns, NetError};
use ipnet::Ipv4Net;

use super::ports::{self as pports, Published};
use super::{mac_string, Endpoint, NetworkRecord};
use crate::container::{Attachment, ContainerRecord};
use crate::error::{ApiError, ApiResult};
use crate::state::{Container, Daemon};

/// berth's nftables table.
pub const TABLE: &str = "berth";

/// What a running container holds: its host ports and its DNS server.
#[derive(Debug, Default)]
pub struct Live {
    pub reservations: Vec<Reservation>,
    pub dns: Option<DnsServer>,
    /// Userland proxies for IPv6 clients of published TCP ports (`[::]:port`).
    pub v6_proxies: Vec<berth_network::ports::V6Proxy>,
}

/// For a TCP port published on all addresses, IPv6 clients (`[::1]:port`, `localhost` where it
/// resolves to ::1) reach the container through a userland proxy, as with dockerd's
/// docker-proxy; best effort: a host without IPv6, or `[::]:port` held by someone else, only
/// costs the IPv6 side (said in the log).
fn proxy_v6(live: &mut Live, p: &Published, cid: &str) {
    if p.proto != "tcp" || p.host_ip.is_some_and(|ip| !ip.is_unspecified()) {
        return;
    }
    let to = std::net::SocketAddrV4::new(p.container_ip, p.container_port);
    match berth_network::ports::proxy_v6_tcp(p.host_port, to) {
        Ok(px) => live.v6_proxies.push(px),
        Err(e) => tracing::warn!(
            "IPv6 side of port {} of {}: {e}",
            p.host_port,
            crate::util::short(cid)
        ),
    }
}

fn net_err(what: &str, e: NetError) -> ApiError {
    match e {
        NetError::Invalid(m) => ApiError::invalid(format!("{what}: {m}")),
        NetError::Conflict(m) => ApiError::forbidden(format!("{what}: {m}")),
        other => ApiError::internal(format!("{what}: {other}")),
    }
}

fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("network task: {e}"))
}

pub fn netns_path(d: &Daemon, id: &str) -> PathBuf {
    d.config
        .exec_root
        .join("netns")
        .join(crate::util::short(id))
}

/// The networks a new container joins, validated: `NetworkMode` first, then the other entries
/// of `EndpointsConfig`. Empty for none, host and container: modes (and the default mode when
/// the default bridge is off).
pub fn plan_attachments(
    d: &Daemon,
    hc: &HostConfig,
    nc: Option<&NetworkingConfig>,
) -> ApiResult<Vec<Attachment>> {
    let mode = hc.network_mode.as_deref().unwrap_or("default");
    let primary = match mode {
        "none" | "host" => return Ok(Vec::new()),
        m if m.starts_with("container:") => return Ok(Vec::new()),
        "" | "default" | "bridge" => {
            if !d.config.bridge {
                return Ok(Vec::new());
            }
            d.networks.get("bridge")?
        }
        name => {
            let n = d.networks.get(name)?;
            if n.driver != "bridge" {
                return Ok(Vec::new());
            }
            n
        }
    };
    let eps = nc
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    let mut out = vec![Attachment {
        network_id: primary.id.clone(),
        ..Default::default()
    }];
    let mut keys: Vec<&String> = eps.keys().collect();
    keys.sort();
    for k in keys {
        // The CLI keys the primary network's settings by the mode as given ("default").
        let n = if k == "default" {
            primary.clone()
        } else {
            d.networks.get(k)?
        };
        if n.driver != "bridge" {
            return Err(ApiError::invalid(format!(
                "container cannot be connected to network {} and to the {} network at once",
                primary.name, n.name
            )));
        }
        let s = &eps[k];
        let att = attachment_for(&n, s)?;
        match out.iter_mut().find(|a| a.network_id == n.id) {
            Some(a) => *a = att,
            None => out.push(att),
        }
    }
    Ok(out)
}

/// One network's endpoint settings validated into an [`Attachment`].
pub fn attachment_for(
    n: &NetworkRecord,
    s: &berth_api::models::EndpointSettings,
) -> ApiResult<Attachment> {
    let aliases: Vec<String> = s
        .aliases
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let ipam = s.ipam_config.as_ref();
    let ipv4 = requested_ip::<Ipv4Addr>(ipam.and_then(|c| c.ipv4_address.as_deref()), "IPv4")?;
    let ipv6 = requested_ip::<Ipv6Addr>(ipam.and_then(|c| c.ipv6_address.as_deref()), "IPv6")?;
    if n.is_default_bridge() {
        if ipv4.is_some() || ipv6.is_some() {
            return Err(ApiError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !aliases.is_empty() {
            return Err(ApiError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
    }
    if let Some(ip) = ipv4 {
        if !n.user_subnet {
            return Err(ApiError::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        if n.subnet().is_some_and(|s| !s.contains(&ip)) {
            return Err(ApiError::invalid(format!(
                "invalid IPv4 address {ip}: it is not in the subnet of network {}",
                n.name
            )));
        }
    }
    let mac = match s.mac_address.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(mac_string(parse_mac(m)?)),
    };
    let mut link_local = Vec::new();
    for ip in s
        .ipam_config
        .iter()
        .flat_map(|c| c.link_local_ips.iter().flatten())
    {
        link_local.push(
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::invalid(format!("invalid link-local IP address: {ip}")))?,
        );
    }
    let mut links = Vec::new();
    for l in s.links.iter().flatten() {
        let (target, alias) = l.split_once(':').unwrap_or((l, l));
        let target = target.trim_start_matches('/');
        if target.is_empty() || alias.is_empty() || alias.contains(':') {
            return Err(ApiError::invalid(format!(
                "invalid link {l:?}: expected container[:alias]"
            )));
        }
        links.push(format!("{target}:{alias}"));
    }
    if let Some(ip) = ipv6 {
        // dockerd: a static address needs a configured subnet of its family; with an IPv6
        // configuration but without EnableIPv6 it is kept (and shown) but not assigned.
        let Some(v6) = n.ipam6.as_ref() else {
            return Err(ApiError::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        };
        if !v6.subnet.contains(&ip) {
            // dockerd 20.10's words (it says so at start; dockerd 25+ and berth at create).
            return Err(ApiError::invalid(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
    }
    Ok(Attachment {
        network_id: n.id.clone(),
        aliases,
        ipv4,
        links,
        mac,
        link_local,
        driver_opts: s
            .driver_opts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        ipv6,
    })
}

/// A static address asked for (`--ip`, `--ip6`), empty meaning none.
fn requested_ip<T: std::str::FromStr>(ip: Option<&str>, family: &str) -> ApiResult<Option<T>> {
    match ip.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(ip) => ip
            .parse::<T>()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("invalid {family} address: {ip}"))),
    }
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`), as Go's `net.ParseMAC` takes a 48-bit address; a
/// multicast address cannot be an interface's.
pub fn parse_mac(m: &str) -> ApiResult<[u8; 6]> {
    let bad = || ApiError::invalid(format!("invalid MAC address {m:?}"));
    let sep = if m.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut parts = m.split(sep);
    for b in &mut out {
        let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if out[0] & 1 == 1 {
        return Err(ApiError::invalid(format!(
            "invalid MAC address {m:?}: a multicast address cannot be an interface's"
        )));
    }
    Ok(out)
}

async fn ensure_bridge(d: &Daemon, n: &NetworkRecord) -> ApiResult<()> {
    let up = d
        .networks
        .bridges_up
        .lock()
        .map(|b| b.contains(&n.bridge))
        .unwrap_or(false);
    if up {
        return Ok(());
    }
    let cfg = n
        .bridge_config()
        .ok_or_else(|| ApiError::internal(format!("network {} has no address pool", n.name)))?;
    link::ensure_bridge(&cfg)
        .await
        .map_err(|e| net_err(&format!("create bridge {}", n.bridge), e))?;
    if cfg.address6.is_some() {
        link::enable_ipv6_forwarding().map_err(|e| net_err(&format!("network {}", n.name), e))?;
    }
    if let Ok(mut b) = d.networks.bridges_up.lock() {
        b.insert(n.bridge.clone());
    }
    Ok(())
}

/// Leases an address on `att`'s network for `owner` (a container, or a build's RUN step),
/// records the endpoint under `name`, creates the veth into `ns`.
pub(crate) async fn attach_one(
    d: &Daemon,
    owner: &str,
    name: &str,
    att: &Attachment,
    index: usize,
    ns: &std::path::Path,
    want_gateway: bool,
) -> ApiResult<(NetworkRecord, Endpoint)> {
    let n = d.networks.get(&att.network_id)?;
    ensure_bridge(d, &n).await?;
    let endpoint_id = crate::util::new_id();
    let host_ifname = format!("vb{}", &endpoint_id[..12]);
    let ep = d.networks.modify(&n.id, false, |n| {
        let pool = n
            .pool
            .as_mut()
            .ok_or_else(|| ApiError::internal(format!("network {} has no pool", n.name)))?;
        let ip = pool
            .allocate(owner, att.ipv4)
            .map_err(|e| net_err(&format!("allocate address on network {}", n.name), e))?;
        let ip6 = match n.pool6.as_mut().filter(|_| n.enable_ipv6) {
            Some(p6) => Some(p6.allocate(owner, att.ipv6).map_err(|e| {
                net_err(&format!("allocate IPv6 address on network {}", n.name), e)
            })?),
            None => None,
        };
        let ep = Endpoint {
            container_id: owner.to_string(),
            name: name.to_string(),
            endpoint_id: endpoint_id.clone(),
            ip,
            ip6,
            mac: att
                .mac
                .clone()
                .unwrap_or_else(|| mac_string(link::mac_for(ip))),
            aliases: att.aliases.clone(),
            host_ifname: host_ifname.clone(),
            ifname: format!("eth{index}"),
            links: att.links.clone(),
        };
        n.endpoints.insert(owner.to_string(), ep.clone());
        Ok(ep)
    })?;
    let pool = n
        .pool
        .as_ref()
        .ok_or_else(|| ApiError::internal(format!("network {} has no pool", n.name)))?;
    let cfg = link::EndpointConfig {
        bridge: n.bridge.clone(),
        host_ifname: host_ifname.clone(),
        container_ifname: ep.ifname.clone(),
        netns: ns.to_path_buf(),
        address: Ipv4Net::new(ep.ip, pool.subnet.prefix_len())
            .map_err(|e| ApiError::internal(format!("address {}: {e}", ep.ip)))?,
        gateway: (want_gateway && !n.internal).then_some(pool.gateway),
        address6: ep
            .ip6
            .and_then(|ip| n.pool6.as_ref().map(|p| p.with_prefix(ip))),
        gateway6: n
            .pool6
            .as_ref()
            .filter(|_| want_gateway && !n.internal && ep.ip6.is_some())
            .map(|p| p.gateway),
        link_local: att.link_local.clone(),
        mac: parse_mac(&ep.mac)?,
        mtu: n.mtu,
    };
    link::attach(&cfg)
        .await
        .map_err(|e| net_err(&format!("attach {name} to network {}", n.name), e))?;
    if !n.icc {
        // icc=false: the firewall's forward rule sees bridged traffic only with br_netfilter;
        // an isolated bridge port keeps containers apart without it.
        if let Err(e) = link::set_isolated(&host_ifname, true) {
            let _ = link::delete_link(&host_ifname).await;
            return Err(net_err(&format!("isolate {name} on network {}", n.name), e));
        }
    }
    Ok((n, ep))
}

/// Binds one host port for `req` (trying each port of a range in turn).
fn reserve(req: &pports::PortRequest, host_ip: Option<IpAddr>) -> Result<Reservation, NetError> {
    let (lo, hi) = req.host_ports;
    let mut last = None;
    for p in lo..=hi {
        match berth_network::ports::reserve(req.proto, host_ip, p) {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| NetError::Invalid("empty port range".into())))
}

fn on_user_network(d: &Daemon, rec: &ContainerRecord) -> bool {
    rec.networks.iter().any(|a| {
        d.networks
            .get(&a.network_id)
            .is_ok_and(|n| !n.is_default_bridge())
    })
}

/// Starts the embedded DNS server for a container on a user network.
pub(crate) fn serve_dns(d: &Daemon, id: &str, ns: &std::path::Path) -> ApiResult<DnsServer> {
    let resolver = Arc::new(Resolver {
        table: d.networks.table(),
        cid: id.to_string(),
    });
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let ups: Vec<SocketAddr> = dns::upstreams_from_resolv_conf(&host);
    dns::serve(ns, resolver, ups).map_err(|e| net_err("start embedded DNS", e))
}

/// Creates a network namespace file at `ns` (and its directory).
pub(crate) async fn create_netns(ns: PathBuf) -> ApiResult<()> {
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        if let Some(dir) = ns.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
        }
        netns::create(&ns).map_err(|e| net_err("create network namespace", e))
    })
    .await
    .map_err(join_err)
    .and_then(|r| r)
}

/// Wires a bridge-mode container before its process starts: its namespace (joined by path by
/// the runtime), veths, ports, DNS, etc files. On error nothing is left.
pub async fn setup(d: &Arc<Daemon>, c: &Arc<Container>) -> ApiResult<()> {
    let rec = c.snapshot();
    if rec.networks.is_empty() {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let r = setup_inner(d, c, &rec).await;
    if let Err(e) = r {
        teardown(d, c).await;
        return Err(e);
    }
    tracing::debug!("network setup {}: {:?}", c.short_id(), t0.elapsed());
    Ok(())
}

async fn setup_inner(d: &Arc<Daemon>, c: &Arc<Container>, rec: &ContainerRecord) -> ApiResult<()> {
    let ns = netns_path(d, &rec.id);
    create_netns(ns.clone()).await?;
    let mut eps: Vec<(NetworkRecord, Endpoint)> = Vec::new();
    let mut gateway_set = false;
    for (i, att) in rec.networks.iter().enumerate() {
        let (n, ep) = attach_one(d, &rec.id, &rec.name, att, i, &ns, !gateway_set).await?;
        gateway_set |= !n.internal;
        eps.push((n, ep));
    }
    let mut live = Live::default();
    let mut published = Vec::new();
    let exposed = rec.config.exposed_ports.clone().unwrap_or_default();
    let plan = pports::plan(&rec.host_config, &exposed)?;
    if let Some((n, ep)) = eps.first().filter(|_| !plan.is_empty()) {
        for req in &plan {
            let host_ip = req
                .host_ip
                .or(n.host_binding.filter(|ip| !ip.is_unspecified()));
            let r = reserve(req, host_ip).map_err(|e| {
                ApiError::internal(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    rec.name, ep.endpoint_id
                ))
            })?;
            let p = Published {
                proto: pports::proto_name(req.proto).into(),
                host_ip,
                host_port: r.port,
                container_port: req.container_port,
                container_ip: ep.ip,
                container_ip6: ep.ip6,
                bridge: n.bridge.clone(),
            };
            proxy_v6(&mut live, &p, &rec.id);
            published.push(p);
            live.reservations.push(r);
        }
    }
    if on_user_network(d, rec) {
        live.dns = Some(serve_dns(d, &rec.id, &ns)?);
    }
    write_etc(d, rec, &eps)?;
    let has_ports = !published.is_empty();
    // One save for both: the start path's budget is milliseconds.
    c.update(|r| {
        r.netns = Some(ns.clone());
        r.published = published;
    })?;
    if let Ok(mut l) = d.networks.live.lock() {
        l.insert(rec.id.clone(), live);
    }
    if has_ports {
        sync_firewall(d).await?;
    }
    for (n, _) in &eps {
        emit(d, n, &rec.id, "connect");
    }
    Ok(())
}

/// A network event about one container, as dockerd emits them at start, stop, connect and
/// disconnect.
pub fn emit(d: &Daemon, n: &NetworkRecord, cid: &str, action: &str) {
    d.events.emit(
        "network",
        action,
        &n.id,
        HashMap::from([
            ("container".to_string(), cid.to_string()),
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]),
    );
}

/// /etc/hosts and /etc/resolv.conf of a bridge-mode container, with its addresses.
fn write_etc(
    d: &Daemon,
    rec: &ContainerRecord,
    eps: &[(NetworkRecord, Endpoint)],
) -> ApiResult<()> {
    let hostname = rec
        .config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| crate::util::short(&rec.id).to_string());
    // As dockerd: the hostname (after its FQDN with --domainname) for the first network's
    // addresses, IPv6 too.
    let mut names = Vec::new();
    if let Some(dn) = rec.config.domainname.as_deref().filter(|d| !d.is_empty()) {
        names.push(format!("{hostname}.{dn}"));
    }
    names.push(hostname);
    let own: Vec<(IpAddr, Vec<String>)> = eps
        .iter()
        .take(1)
        .flat_map(|(_, ep)| std::iter::once(IpAddr::V4(ep.ip)).chain(ep.ip6.map(IpAddr::V6)))
        .map(|ip| (ip, names.clone()))
        .collect();
    let gateway = eps
        .first()
        .and_then(|(n, _)| n.pool.as_ref().map(|p| p.gateway));
    let mut extra = Vec::new();
    for e in rec.host_config.extra_hosts.iter().flatten() {
        let Some((name, ip)) = e.split_once(':').or_else(|| e.split_once('=')) else {
            continue;
        };
        let ip = if ip == "host-gateway" {
            gateway.map(IpAddr::V4)
        } else {
            ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        };
        if let Some(ip) = ip {
            extra.push((name.to_string(), ip));
        }
    }
    extra.extend(super::links::hosts(&super::links::resolve(d, rec)?));
    let hosts = etc::hosts(&own, &extra);
    let dir = d.container_dir(&rec.id);
    for (f, body) in [("hosts", hosts), ("resolv.conf", resolv_conf(d, rec))] {
        write_in_place(&dir.join(f), body.as_bytes())
            .map_err(|e| ApiError::internal(format!("write {f} for {}: {e}", rec.id)))?;
    }
    Ok(())
}

/// A bridge-mode container's resolv.conf: the embedded DNS server's address once it is on a
/// user network, else the host's servers (either way its --dns, --dns-search, --dns-option).
fn resolv_conf(d: &Daemon, rec: &ContainerRecord) -> String {
    let opts = etc::ResolvOptions {
        servers: rec.host_config.dns.clone().unwrap_or_default(),
        search: rec.host_config.dns_search.clone().unwrap_or_default(),
        options: rec.host_config.dns_options.clone().unwrap_or_default(),
        embedded: on_user_network(d, rec),
    };
    resolv_conf_with(&opts)
}

/// A container's resolv.conf: the host's, with `opts` applied.
pub(crate) fn resolv_conf_with(opts: &etc::ResolvOptions) -> String {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    etc::resolv_conf(&host_resolv, opts)
}

/// Rewrites a file keeping its inode: the file may already be bind-mounted into a container.
fn write_in_place(p: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(p)?;
    f.write_all(data)
}

/// Unwinds a container's networking, in reverse: DNS and host ports, the firewall, veths,
/// the namespace, the leases. Idempotent; errors are logged (nothing to return them to at exit).
pub async fn teardown(d: &Arc<Daemon>, c: &Container) {
    let id = c.id.clone();
    let live = d.networks.live.lock().ok().and_then(|mut l| l.remove(&id));
    drop(live);
    let had_ports = !c.lock().published.is_empty();
    if had_ports {
        let _ = c.update(|r| r.published.clear());
        if let Err(e) = sync_firewall(d).await {
            tracing::warn!("firewall after {} stopped: {e}", c.short_id());
        }
    }
    release(d, &id).await;
    if c.lock().netns.is_some() {
        let _ = c.update(|r| r.netns = None);
    }
}

/// Frees what `id` (a container, or a build's RUN step) holds on the networks: endpoints and
/// leases, its namespace under the exec root, its veths (in the background). Idempotent.
pub(crate) async fn release(d: &Daemon, id: &str) {
    let id = id.to_string();
    let mut links = Vec::new();
    for n in d.networks.all() {
        let owns_lease = n.owns_lease(&id);
        if !n.endpoints.contains_key(&id) && !owns_lease {
            continue;
        }
        if let Some(ep) = n.endpoints.get(&id) {
            links.push(ep.host_ifname.clone());
            emit(d, &n, &id, "disconnect");
        }
        let r = d.networks.modify(&n.id, false, |n| {
            n.endpoints.remove(&id);
            n.retain_leases(|o| o != id);
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(
                "release {} on network {}: {e}",
                crate::util::short(&id),
                n.name
            );
        }
    }
    let ns = netns_path(d, &id);
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = netns::remove(&ns) {
            tracing::warn!("remove {}: {e}", ns.display());
        }
    })
    .await;
    // Deleting a veth waits for the kernel's RCU grace periods (20-40 ms here), and the exit
    // path of `run --rm` would wait for it. The names are unique per start (from the endpoint
    // id), so nothing can reuse them meanwhile: delete in the background. Usually the kernel
    // has already taken both ends with the namespace, and the delete finds nothing.
    if !links.is_empty() {
        tokio::spawn(async move {
            for l in links {
                if let Err(e) = link::delete_link(&l).await {
                    tracing::warn!("delete {l}: {e}");
                }
            }
        });
    }
}

/// Connects a container to a network; live when it runs.
pub async fn connect(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    n: &NetworkRecord,
    settings: &berth_api::models::EndpointSettings,
) -> ApiResult<()> {
    let rec = c.snapshot();
    if n.driver != "bridge" {
        return Err(ApiError::forbidden(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let mode = rec.host_config.network_mode.as_deref().unwrap_or("default");
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Err(ApiError::forbidden(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ));
    }
    if rec.networks.iter().any(|a| a.network_id == n.id) {
        return Err(ApiError::forbidden(format!(
            "endpoint with name {} already exists in network {}",
            rec.name, n.name
        )));
    }
    let att = attachment_for(n, settings)?;
    c.update(|r| r.networks.push(att.clone()))?;
    let running = rec.state.status.is_running();
    if let (true, Some(ns)) = (running, rec.netns.clone()) {
        let index = (0..)
            .find(|i| {
                let name = format!("eth{i}");
                !d.networks
                    .all()
                    .iter()
                    .any(|n| n.endpoints.get(&rec.id).is_some_and(|e| e.ifname == name))
            })
            .unwrap_or(0);
        let r = attach_one(d, &rec.id, &rec.name, &att, index, &ns, false).await;
        if let Err(e) = r {
            detach_live(d, &rec.id, &n.id).await;
            let _ = c.update(|r| r.networks.retain(|a| a.network_id != n.id));
            return Err(e);
        }
        let needs_dns = !n.is_default_bridge()
            && d.networks
                .live
                .lock()
                .is_ok_and(|l| l.get(&rec.id).is_some_and(|l| l.dns.is_none()));
        if needs_dns {
            let srv = serve_dns(d, &rec.id, &ns)?;
            if let Ok(mut l) = d.networks.live.lock() {
                if let Some(l) = l.get_mut(&rec.id) {
                    l.dns = Some(srv);
                }
            }
            // As dockerd: a container that joins its first user network while it runs asks
            // the embedded server from now on (the file is bind-mounted: rewritten in place).
            let now = c.snapshot();
            let path = d.container_dir(&now.id).join("resolv.conf");
            write_in_place(&path, resolv_conf(d, &now).as_bytes()).map_err(|e| {
                ApiError::internal(format!("write resolv.conf for {}: {e}", now.id))
            })?;
        }
    }
    Ok(())
}

/// Removes a running container's endpoint on one network (veth and lease).
async fn detach_live(d: &Daemon, cid: &str, net_id: &str) {
    let mut link_name = None;
    let _ = d.networks.modify(net_id, false, |n| {
        if let Some(ep) = n.endpoints.remove(cid) {
            link_name = Some(ep.host_ifname);
        }
        n.retain_leases(|o| o != cid);
        Ok(())
    });
    if let Some(l) = link_name {
        if let Err(e) = link::delete_link(&l).await {
            tracing::warn!("delete {l}: {e}");
        }
    }
}

pub async fn disconnect(d: &Arc<Daemon>, c: &Arc<Container>, n: &NetworkRecord) -> ApiResult<()> {
    let rec = c.snapshot();
    if !rec.networks.iter().any(|a| a.network_id == n.id) {
        return Err(ApiError::forbidden(format!(
            "container {} is not connected to network {}",
            rec.id, n.name
        )));
    }
    detach_live(d, &rec.id, &n.id).await;
    c.update(|r| r.networks.retain(|a| a.network_id != n.id))?;
    Ok(())
}

/// The whole firewall from the state: every bridge network, every published port.
pub fn ruleset(d: &Daemon) -> Ruleset {
    let mut networks: Vec<_> = d
        .networks
        .all()
        .iter()
        .filter_map(NetworkRecord::firewall_rules)
        .collect();
    networks.sort_by(|a, b| a.bridge.cmp(&b.bridge));
    let mut ports: Vec<PortRule> = Vec::new();
    for c in d.all_containers() {
        for p in &c.lock().published {
            ports.push(PortRule {
                proto: pports::parse_proto(&p.proto).unwrap_or(firewall::Proto::Tcp),
                host_ip: p.host_ip,
                host_port: p.host_port,
                container_ip: p.container_ip,
                container_ip6: p.container_ip6,
                container_port: p.container_port,
                bridge: p.bridge.clone(),
            });
        }
    }
    ports.sort_by_key(|p| (p.host_port, p.proto, p.container_ip));
    Ruleset { networks, ports }
}

/// Applies the firewall when it differs from what was last applied.
pub async fn sync_firewall(d: &Arc<Daemon>) -> ApiResult<()> {
    if !d.config.iptables {
        return Ok(());
    }
    let mut applied = d.networks.applied.lock().await;
    let rs = ruleset(d);
    if applied.as_ref() == Some(&rs) {
        return Ok(());
    }
    let rs2 = rs.clone();
    tokio::task::spawn_blocking(move || firewall::apply(TABLE, &rs2))
        .await
        .map_err(join_err)?
        .map_err(|e| net_err("apply firewall", e))?;
    *applied = Some(rs);
    Ok(())
}

/// At daemon start, after the containers were re-adopted: drop what belongs to containers
/// that no longer run (endpoints, leases, namespaces, `vb*` links), hold the host ports and
/// serve DNS again for those that do, and re-apply the firewall (sweeping stale rules).
pub async fn restore(d: &Arc<Daemon>) {
    let running: HashMap<String, Arc<Container>> = d
        .all_containers()
        .into_iter()
        .filter(|c| c.status().is_running())
        .map(|c| (c.id.clone(), c))
        .collect();
    for n in d.networks.all() {
        let stale_ep = n.endpoints.keys().any(|k| !running.contains_key(k));
        let stale_lease = n
            .pool
            .as_ref()
            .is_some_and(|p| p.leases.values().any(|o| !running.contains_key(o)))
            || n.pool6
                .as_ref()
                .is_some_and(|p| p.leases.values().any(|o| !running.contains_key(o)));
        if stale_ep || stale_lease {
            let _ = d.networks.modify(&n.id, true, |n| {
                n.endpoints.retain(|k, _| running.contains_key(k));
                n.retain_leases(|o| running.contains_key(o));
                Ok(())
            });
        }
    }
    let keep_ns: HashSet<PathBuf> = running
        .values()
        .filter_map(|c| c.lock().netns.clone())
        .collect();
    let dir = d.config.exec_root.join("netns");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if !keep_ns.contains(&p) {
                if let Err(err) = netns::remove(&p) {
                    tracing::warn!("sweep {}: {err}", p.display());
                }
            }
        }
    }
    let keep_links: HashSet<String> = d
        .networks
        .all()
        .iter()
        .flat_map(|n| n.endpoints.values().map(|e| e.host_ifname.clone()))
        .collect();
    let vb = tokio::task::spawn_blocking(|| link::list_links_with_prefix("vb"))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    for l in vb {
        if !keep_links.contains(&l) {
            if let Err(e) = link::delete_link(&l).await {
                tracing::warn!("sweep link {l}: {e}");
            }
        }
    }
    for c in running.values() {
        let rec = c.snapshot();
        let Some(ns) = rec.netns.clone() else {
            continue;
        };
        let mut live = Live::default();
        for p in &rec.published {
            let proto = pports::parse_proto(&p.proto).unwrap_or(firewall::Proto::Tcp);
            match berth_network::ports::reserve(proto, p.host_ip, p.host_port) {
                Ok(r) => {
                    live.reservations.push(r);
                    proxy_v6(&mut live, p, &rec.id);
                }
                Err(e) => {
                    tracing::warn!("re-reserve port {} of {}: {e}", p.host_port, c.short_id())
                }
            }
        }
        if on_user_network(d, &rec) {
            match serve_dns(d, &rec.id, &ns) {
                Ok(s) => live.dns = Some(s),
                Err(e) => tracing::warn!("DNS for {}: {e}", c.short_id()),
            }
        }
        if let Ok(mut l) = d.networks.live.lock() {
            l.insert(rec.id.clone(), live);
        }
    }
    // Bridges of networks in use still exist; mark them so starts skip the netlink round trip.
    for n in d.networks.all().iter().filter(|n| !n.endpoints.is_empty()) {
        if let Err(e) = ensure_bridge(d, n).await {
            tracing::warn!("bridge of network {}: {e}", n.name);
        }
    }
    if let Err(e) = sync_firewall(d).await {
        tracing::error!("{e}");
    }
}

/// Names on the container's user networks: container names, aliases, short ids, and
/// `name.network`. The default bridge has no name resolution, as in Docker.
#[derive(Debug)]
struct Resolver {
    table: Arc<Mutex<BTreeMap<String, NetworkRecord>>>,
    cid: String,
}

impl Resolver {
    /// The endpoints `name` stands for on the container's user networks.
    fn matches<T>(&self, name: &str, mut pick: impl FnMut(&Endpoint) -> Option<T>) -> Vec<T> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for n in t
            .values()
            .filter(|n| !n.is_default_bridge() && n.endpoints.contains_key(&self.cid))
        {
            let hit = |k: &str| {
                let k = k.to_ascii_lowercase();
                k == name || format!("{k}.{}", n.name.to_ascii_lowercase()) == name
            };
            for ep in n.endpoints.values() {
                if hit(&ep.name)
                    || ep.aliases.iter().any(|a| hit(a))
                    || hit(crate::util::short(&ep.container_id))
                {
                    out.extend(pick(ep));
                }
            }
            // This container's links on the network: the alias names the linked container
            // for it alone.
            let links = n.endpoints.get(&self.cid).map(|e| e.links.as_slice());
            for (target, alias) in links
                .unwrap_or_default()
                .iter()
                .filter_map(|l| l.split_once(':'))
            {
                if !hit(alias) {
                    continue;
                }
                let linked = n.endpoints.values().find(|ep| {
                    ep.name == target || (target.len() >= 12 && ep.container_id.starts_with(target))
                });
                out.extend(linked.and_then(&mut pick));
            }
        }
        out
    }
}

impl Resolve for Resolver {
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let mut out = self.matches(name, |ep| Some(ep.ip));
        out.dedup();
        (!out.is_empty()).then_some(out)
    }

    fn lookup6(&self, name: &str) -> Vec<Ipv6Addr> {
        let mut out = self.matches(name, |ep| ep.ip6);
        out.dedup();
        out
    }

    fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.values()
            .filter(|n| !n.is_default_bridge() && n.endpoints.contains_key(&self.cid))
            .find_map(|n| {
                n.endpoints
                    .values()
                    .find(|e| e.ip == ip)
                    .map(|e| format!("{}.{}", e.name, n.name))
            })
    }

    fn reverse6(&self, ip: Ipv6Addr) -> Option<String> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.values()
            .filter(|n| !n.is_default_bridge() && n.endpoints.contains_key(&self.cid))
            .find_map(|n| {
                n.endpoints
                    .values()
                    .find(|e| e.ip6 == Some(ip))
                    .map(|e| format!("{}.{}", e.name, n.name))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, eps: &[(&str, &str, [u8; 4], &[&str])]) -> NetworkRecord {
        NetworkRecord {
            id: format!("{name:0>64}"),
            name: name.into(),
            driver: "bridge".into(),
            created: String::new(),
            internal: false,
            attachable: false,
            labels: HashMap::new(),
            options: HashMap::new(),
            user_subnet: false,
            pool: None,
            bridge: format!("br-{name}"),
            mtu: 1500,
            icc: true,
            masquerade: true,
            host_binding: None,
            enable_ipv6: false,
            ipam6: None,
            pool6: None,
            endpoints: eps
                .iter()
                .map(|(cid, cname, ip, aliases)| {
                    (
                        cid.to_string(),
                        Endpoint {
                            container_id: cid.to_string(),
                            name: cname.to_string(),
                            endpoint_id: String::new(),
                            ip: Ipv4Addr::from(*ip),
                            ip6: None,
                            mac: String::new(),
                            aliases: aliases.iter().map(|s| s.to_string()).collect(),
                            host_ifname: String::new(),
                            ifname: "eth0".into(),
                            links: Vec::new(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn resolver_answers_names_aliases_and_short_ids_on_shared_user_networks() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = "c".repeat(64);
        let mut t = BTreeMap::new();
        for n in [
            net(
                "app",
                &[
                    (&a, "web", [10, 0, 0, 2], &["www"]),
                    (&b, "client", [10, 0, 0, 3], &[]),
                ],
            ),
            net("other", &[(&c, "db", [10, 1, 0, 2], &[])]),
            net(
                "bridge",
                &[
                    (&b, "client", [172, 17, 0, 2], &[]),
                    (&c, "db", [172, 17, 0, 3], &[]),
                ],
            ),
        ] {
            t.insert(n.id.clone(), n);
        }
        let r = Resolver {
            table: Arc::new(Mutex::new(t)),
            cid: b.clone(),
        };
        let ip = |s: &str| Some(vec![s.parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(r.lookup("web"), ip("10.0.0.2"));
        assert_eq!(r.lookup("WWW."), ip("10.0.0.2"));
        assert_eq!(r.lookup("web.app"), ip("10.0.0.2"));
        assert_eq!(r.lookup(&a[..12]), ip("10.0.0.2"));
        // db shares only the default bridge (no name resolution there) and another network.
        assert_eq!(r.lookup("db"), None);
        assert_eq!(r.lookup("example.com"), None);
        assert_eq!(r.lookup6("web"), Vec::<Ipv6Addr>::new());
        assert_eq!(
            r.reverse("10.0.0.2".parse().unwrap()).as_deref(),
            Some("web.app")
        );
        assert_eq!(r.reverse("10.1.0.2".parse().unwrap()), None);
    }

    #[test]
    fn links_resolve_for_the_linking_container_only() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mut n = net(
            "app",
            &[
                (&a, "upstream", [10, 0, 0, 2], &[]),
                (&b, "client", [10, 0, 0, 3], &[]),
            ],
        );
        if let Some(ep) = n.endpoints.get_mut(&b) {
            ep.links = vec!["upstream:bar".into(), "gone:nowhere".into()];
        }
        let table = Arc::new(Mutex::new(BTreeMap::from([(n.id.clone(), n)])));
        let client = Resolver {
            table: table.clone(),
            cid: b.clone(),
        };
        let ip = |s: &str| Some(vec![s.parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(client.lookup("bar"), ip("10.0.0.2"));
        assert_eq!(client.lookup("bar.app"), ip("10.0.0.2"));
        // A link to a container not on the network answers nothing.
        assert_eq!(client.lookup("nowhere"), None);
        // The alias is the linking container's alone.
        let upstream = Resolver { table, cid: a };
        assert_eq!(upstream.lookup("bar"), None);
    }

    #[test]
    fn mac_addresses_parse_as_go_does() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:0a").unwrap(),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x0a]
        );
        assert_eq!(
            parse_mac("02-42-AC-11-00-0B").unwrap(),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x0b]
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0a:01",
            "zz:42:ac:11:00:0a",
            "2:42:ac:11:00:0a",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert!(e.message.contains("invalid MAC address"), "{bad}: {e}");
        }
        assert!(parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .message
            .contains("multicast"));
    }

    #[test]
    fn resolver_answers_aaaa_with_ipv6_addresses_on_shared_networks() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mut n = net(
            "six",
            &[
                (&a, "web", [10, 0, 0, 2], &["www"]),
                (&b, "client", [10, 0, 0, 3], &[]),
            ],
        );
        let six: Ipv6Addr = "fd00:b0::2".parse().unwrap();
        if let Some(ep) = n.endpoints.get_mut(&a) {
            ep.ip6 = Some(six);
        }
        let t = BTreeMap::from([(n.id.clone(), n)]);
        let r = Resolver {
            table: Arc::new(Mutex::new(t)),
            cid: b.clone(),
        };
        assert_eq!(r.lookup6("web"), vec![six]);
        assert_eq!(r.lookup6("WWW.six."), vec![six]);
        // client has IPv4 only: known (A), no AAAA.
        assert!(r.lookup("client").is_some());
        assert!(r.lookup6("client").is_empty());
        assert!(r.lookup6("nothere").is_empty());
        assert_eq!(r.reverse6(six).as_deref(), Some("web.six"));
        assert_eq!(r.reverse6("fd00:b0::9".parse().unwrap()), None);
    }
}
