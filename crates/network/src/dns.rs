//! The embedded DNS server: a UDP and TCP listener on 127.0.0.11:53 inside each container's
//! namespace (opened there, served by the daemon), answering the names of the container's
//! networks and forwarding the rest to the host's resolvers.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use crate::Result;

/// What a container can resolve; the daemon implements it over its endpoint table.
pub trait Resolve: Send + Sync + 'static {
    /// A/AAAA lookup of a container name, alias or id prefix on the container's networks
    /// (case-insensitive, without the trailing dot). None = not ours: forward upstream.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// PTR lookup of an address on the container's networks.
    fn reverse(&self, ip: Ipv4Addr) -> Option<String>;
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Opens the listeners inside the namespace at `netns` and serves them on the current tokio
/// runtime; names not answered by `resolver` go to `upstreams` (from the host's resolv.conf).
pub fn serve(
    netns: &Path,
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
) -> Result<DnsServer> {
    let _ = (netns, resolver, upstreams);
    Err(crate::NetError::Invalid("dns not written yet".into()))
}

/// The nameservers of a resolv.conf text, as socket addresses (port 53).
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let _ = text;
    Vec::new()
}
