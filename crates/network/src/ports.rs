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

/// Docker's words for a failed bind of `shown` (an address:port): a taken port is a Conflict.
fn bind_error(shown: &str, proto: Proto) -> impl Fn(nix::errno::Errno) -> NetError + Copy + '_ {
    move |e| {
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
    }
}

/// Binds `proto` on `host_ip:port` (all addresses when None; port 0 = an ephemeral port).
/// A taken port is `NetError::Conflict` naming it, as Docker: "Bind for 0.0.0.0:8080 failed:
/// port is already allocated".
pub fn reserve(proto: Proto, host_ip: Option<IpAddr>, port: u16) -> Result<Reservation> {
    let ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let shown = SocketAddr::new(ip, port).to_string();
    let fail = bind_error(&shown, proto);
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

/// A userland proxy that serves IPv6 clients of a published TCP port: it listens on `[::]:port`
/// (IPv6 only, beside the IPv4 reservation of the same port) and copies each connection to the
/// container's IPv4 address, as Docker's docker-proxy does for `::`. Stops when dropped.
#[derive(Debug)]
pub struct V6Proxy {
    pub port: u16,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts a [`V6Proxy`] for host port `port` to `to`, on the current tokio runtime. Fails when
/// the host has no IPv6 or `[::]:port` is taken.
pub fn proxy_v6_tcp(port: u16, to: std::net::SocketAddrV4) -> Result<V6Proxy> {
    let shown = format!("[::]:{port}");
    let fail = bind_error(&shown, Proto::Tcp);
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| NetError::Invalid("proxy_v6_tcp needs a tokio runtime".into()))?;
    let fd: OwnedFd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        Some(SockProtocol::Tcp),
    )
    .map_err(fail)?;
    // IPv6 only: the IPv4 side of the port is the reservation's (and DNATed in the kernel).
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6V6Only, &true)
        .map_err(fail)?;
    let addr = std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0);
    bind(fd.as_fd().as_raw_fd_compat(), &SockaddrIn6::from(addr)).map_err(fail)?;
    listen(&fd, Backlog::new(128).map_err(fail)?).map_err(fail)?;
    let std_listener = std::net::TcpListener::from(fd);
    let listener = {
        let _g = rt.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(|e| NetError::Io {
            what: format!("listen on {shown}"),
            source: e,
        })?
    };
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => return,
                acc = listener.accept() => {
                    let Ok((mut client, _)) = acc else {
                        // Out of descriptors, say: wait instead of spinning on accept.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Ok(mut up) = tokio::net::TcpStream::connect(to).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                        }
                    });
                }
            }
        }
    });
    Ok(V6Proxy { port, _stop: tx })
}
