//! /etc/hosts and /etc/resolv.conf for a container.

use std::net::IpAddr;

/// /etc/hosts: localhost lines, the container's own addresses with its hostname (and aliases),
/// then `extra` (`--add-host name:ip`).
pub fn hosts(own: &[(IpAddr, Vec<String>)], extra: &[(String, IpAddr)]) -> String {
    let _ = (own, extra);
    String::new()
}

/// Options for [`resolv_conf`].
#[derive(Debug, Clone, Default)]
pub struct ResolvOptions {
    /// `--dns`: replaces the nameservers.
    pub servers: Vec<String>,
    /// `--dns-search`.
    pub search: Vec<String>,
    /// `--dns-option`.
    pub options: Vec<String>,
    /// User networks: `nameserver 127.0.0.11` (the embedded DNS, which forwards upstream).
    pub embedded: bool,
}

/// The container's resolv.conf derived from the host's: localhost nameservers (unreachable from
/// a container namespace) dropped, Docker's fallback (8.8.8.8, 8.8.4.4) when none remain.
pub fn resolv_conf(host: &str, o: &ResolvOptions) -> String {
    let _ = (host, o);
    String::new()
}
