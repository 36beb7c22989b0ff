//! Host port reservations: one bound socket per published port, held while the container runs.

use std::net::IpAddr;

use crate::firewall::Proto;
use crate::Result;

/// A held host port; dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    /// The port actually bound (the ephemeral one when 0 was asked for).
    pub port: u16,
    _socket: std::os::fd::OwnedFd,
}

/// Binds `proto` on `host_ip:port` (all addresses when None; port 0 = an ephemeral port).
/// A taken port is `NetError::Conflict` naming it, as Docker: "Bind for 0.0.0.0:8080 failed:
/// port is already allocated".
pub fn reserve(proto: Proto, host_ip: Option<IpAddr>, port: u16) -> Result<Reservation> {
    let _ = (proto, host_ip, port);
    Err(crate::NetError::Invalid("not written yet".into()))
}
