//! Host port reservations: one bound socket per published port, held while the container runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{
    bind, getsockname, listen, socket, AddressFamily, Backlog, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};

use crate::firewall::Proto;
use crate::{NetError, Result};

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
    let ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let shown = SocketAddr::new(ip, port);
    let fail = |e: nix::errno::Errno| -> NetError {
        if e == nix::errno::Errno::EADDRINUSE {
            NetError::Conflict(format!(
                "Bind for {shown} failed: port is already allocated"
            ))
        } else {
            NetError::Io {
                what: format!("Bind for {shown}/{proto} failed"),
                source: std::io::Error::from(e),
            }
        }
    };
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let (ty, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, Some(SockProtocol::Tcp)),
        Proto::Udp => (SockType::Datagram, Some(SockProtocol::Udp)),
        Proto::Sctp => (SockType::Stream, Some(SockProtocol::Sctp)),
    };
    // No SO_REUSEADDR (which std's TcpListener sets): a port held by anyone, in any state, is
    // taken.
    let fd: OwnedFd = socket(family, ty, SockFlag::SOCK_CLOEXEC, protocol).map_err(fail)?;
    match SocketAddr::new(ip, port) {
        SocketAddr::V4(a) => bind(fd.as_fd().as_raw_fd_compat(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => bind(fd.as_fd().as_raw_fd_compat(), &SockaddrIn6::from(a)),
    }
    .map_err(fail)?;
    if ty == SockType::Stream {
        // Listening marks the port as in use for everyone (a bound-only TCP socket does not stop
        // another bind with SO_REUSEADDR). Connections are DNATed before they could land here.
        listen(&fd, Backlog::new(1).map_err(fail)?).map_err(fail)?;
    }
    let bound: SockaddrStorage = getsockname(fd.as_fd().as_raw_fd_compat()).map_err(fail)?;
    let actual = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(port);
    Ok(Reservation {
        proto,
        host_ip,
        port: actual,
        _socket: fd,
    })
}

trait RawFdCompat {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd;
}

impl RawFdCompat for std::os::fd::BorrowedFd<'_> {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
}
