//! Container networking for berthd.
//!
//! The daemon owns the state (networks, endpoints, leases) and persists it; this crate does the
//! work against the kernel and holds no global state of its own:
//! - [`netns`]: persistent network namespaces (bind-mounted files) created before the container,
//!   which the runtime then joins by path — so the network is ready before the process runs.
//! - [`link`]: bridges and veth pairs through rtnetlink (no `ip` subprocesses): synchronous
//!   request/ack on a NETLINK_ROUTE socket opened in the namespace it acts on (`link::sys`), so
//!   the work inside a container's namespace happens on one short [`netns::run_in`] thread.
//! - [`ipam`]: subnet pools that skip routed host subnets, address leases.
//! - [`firewall`]: berth's own nftables table, rendered whole from the daemon's state and applied
//!   atomically (`nft -f`), so a restart sweeps stale rules by re-applying.
//! - [`ports`]: host port reservations (a bound socket per published port, so a taken port is an
//!   error at start and nothing else takes it while the container runs).
//! - [`dns`]: the embedded DNS server at 127.0.0.11 inside each container's namespace.
//! - [`etc`]: /etc/hosts and /etc/resolv.conf contents.

pub mod dns;
pub mod etc;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;

/// Errors of this crate; each names the object it was about.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Nft(String),
}

pub type Result<T> = std::result::Result<T, NetError>;
