//! The embedded DNS server: a UDP and TCP listener on 127.0.0.11:53 inside each container's
//! namespace (opened there, served by the daemon), answering the names of the container's
//! networks and forwarding the rest to the host's resolvers.
//!
//! The wire format is parsed by hand ([`wire`]): only the header and the one question are
//! read, every read is bounds-checked, and anything malformed gets FORMERR (or is dropped when
//! not even the id can be read) — it must never panic on what a container sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{NetError, Result};

/// What a container can resolve; the daemon implements it over its endpoint table.
pub trait Resolve: Send + Sync + 'static {
    /// A/AAAA lookup of a container name, alias or id prefix on the container's networks
    /// (case-insensitive, without the trailing dot). None = not ours: forward upstream.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// The IPv6 addresses of a name [`Resolve::lookup`] knows (AAAA); empty when it has only
    /// IPv4 ones, which makes an empty NOERROR answer, not NXDOMAIN.
    fn lookup6(&self, _name: &str) -> Vec<Ipv6Addr> {
        Vec::new()
    }
    /// PTR lookup of an IPv6 address on the container's networks.
    fn reverse6(&self, _ip: Ipv6Addr) -> Option<String> {
        None
    }
    /// PTR lookup of an address on the container's networks.
    fn reverse(&self, ip: Ipv4Addr) -> Option<String>;
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Docker's TTL for container records.
const TTL: u32 = 600;
/// How long one upstream gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Opens the listeners inside the namespace at `netns` and serves them on the current tokio
/// runtime; names not answered by `resolver` go to `upstreams` (from the host's resolv.conf).
pub fn serve(
    netns: &Path,
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
) -> Result<DnsServer> {
    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 11), 53));
    serve_at(netns, addr, resolver, upstreams)
}

/// [`serve`] on another address (tests, or a daemon that must not take port 53).
pub fn serve_at(
    netns: &Path,
    addr: SocketAddr,
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
) -> Result<DnsServer> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| NetError::Invalid("dns::serve needs a tokio runtime".into()))?;
    let (udp, tcp) = crate::netns::try_run_in(netns, move || {
        let io = |what: &str, e: std::io::Error| NetError::Io {
            what: format!("{what} {addr} for the embedded DNS"),
            source: e,
        };
        let udp = std::net::UdpSocket::bind(addr).map_err(|e| io("bind udp", e))?;
        let tcp = std::net::TcpListener::bind(addr).map_err(|e| io("listen tcp", e))?;
        udp.set_nonblocking(true)
            .map_err(|e| io("set nonblocking udp", e))?;
        tcp.set_nonblocking(true)
            .map_err(|e| io("set nonblocking tcp", e))?;
        Ok((udp, tcp))
    })?;
    let _guard = rt.enter();
    let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| NetError::Io {
        what: "register the DNS udp socket".into(),
        source: e,
    })?;
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| NetError::Io {
        what: "register the DNS tcp listener".into(),
        source: e,
    })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shared = Arc::new(Shared {
        resolver,
        upstreams,
    });
    rt.spawn(run(Arc::new(udp), tcp, shared, stop_rx));
    Ok(DnsServer { _stop: stop_tx })
}

struct Shared {
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
}

async fn run(
    udp: Arc<tokio::net::UdpSocket>,
    tcp: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    // Connection and forwarding tasks end with the server: they are aborted on the way out.
    let mut tasks = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            _ = &mut stop => break,
            r = udp.recv_from(&mut buf) => {
                let Ok((n, peer)) = r else { continue };
                let query = buf[..n].to_vec();
                let (udp, shared) = (udp.clone(), shared.clone());
                tasks.spawn(async move {
                    if let Some(reply) = respond(&shared, &query, true).await {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                });
            }
            r = tcp.accept() => {
                let Ok((stream, _)) = r else { continue };
                tasks.spawn(serve_tcp(stream, shared.clone()));
            }
            // Reap finished tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
}

async fn serve_tcp(mut s: tokio::net::TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = respond(&shared, &query, false).await else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The reply to one query, or None to stay silent (not even an id to answer to).
async fn respond(shared: &Shared, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    match wire::local_answer(query, shared.resolver.as_ref(), udp) {
        wire::Action::Reply(r) => Some(r),
        wire::Action::Drop => None,
        wire::Action::Forward => {
            if shared.upstreams.is_empty() {
                return wire::error_reply(query, wire::RCODE_NXDOMAIN);
            }
            // Over the transport the client chose: a truncated UDP answer is relayed as it is,
            // and the client's retry over TCP is forwarded over TCP.
            for up in &shared.upstreams {
                let answer = if udp {
                    forward(query, *up).await
                } else {
                    forward_tcp(query, *up).await
                };
                if let Some(r) = answer {
                    return Some(r);
                }
            }
            wire::error_reply(query, wire::RCODE_SERVFAIL)
        }
    }
}

/// One query to one upstream over UDP, from the daemon's namespace; the reply must carry the
/// query's id.
async fn forward(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = match upstream.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = tokio::net::UdpSocket::bind(local).await.ok()?;
    sock.connect(upstream).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

/// One query to one upstream over TCP (length-prefixed), within the same deadline.
async fn forward_tcp(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(upstream).await.ok()?;
        let len = u16::try_from(query.len()).ok()?;
        let mut out = Vec::with_capacity(query.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(query);
        s.write_all(&out).await.ok()?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.ok()?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(l))];
        s.read_exact(&mut answer).await.ok()?;
        (answer.len() >= 2 && query.len() >= 2 && answer[..2] == query[..2]).then_some(answer)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .ok()?
}

/// The nameservers of a resolv.conf text, as socket addresses (port 53).
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            // A zone index (fe80::1%eth0) is not parseable here: such a server is skipped.
            words.next()?.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// DNS messages: just enough of RFC 1035 to read one question and write answers to it.
pub mod wire {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::{Resolve, TTL};

    pub const RCODE_FORMERR: u8 = 1;
    pub const RCODE_SERVFAIL: u8 = 2;
    pub const RCODE_NXDOMAIN: u8 = 3;
    pub const RCODE_NOTIMP: u8 = 4;

    pub const TYPE_A: u16 = 1;
    pub const TYPE_PTR: u16 = 12;
    pub const TYPE_AAAA: u16 = 28;
    const CLASS_IN: u16 = 1;
    const HEADER: usize = 12;
    /// Without EDNS a UDP answer stays within 512 bytes.
    const UDP_MAX: usize = 512;

    /// What to do with a query.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Action {
        Reply(Vec<u8>),
        Forward,
        Drop,
    }

    /// The one question of a query.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Question {
        /// Lowercase, dot-separated, without the trailing dot.
        pub name: String,
        pub qtype: u16,
        pub qclass: u16,
        /// End of the question section in the message.
        pub end: usize,
    }

    fn u16_at(b: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
    }

    /// Reads the name at `start`: returns it and the offset after it (after the first pointer
    /// when compressed). Loops and over-long names are errors.
    pub fn read_name(msg: &[u8], start: usize) -> Option<(String, usize)> {
        let mut name = String::new();
        let mut pos = start;
        let mut end = None;
        let mut jumps = 0;
        loop {
            let len = *msg.get(pos)?;
            match len & 0xC0 {
                0x00 => {
                    if len == 0 {
                        return Some((name, end.unwrap_or(pos + 1)));
                    }
                    let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                    if !name.is_empty() {
                        name.push('.');
                    }
                    for &c in label {
                        // Names are compared lowercase; bytes outside printable ASCII are
                        // escaped so they cannot match, or break, anything.
                        if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                            name.push(char::from(c.to_ascii_lowercase()));
                        } else {
                            name.push_str(&format!("\\{c:03}"));
                        }
                    }
                    if name.len() > 1024 {
                        return None;
                    }
                    pos += 1 + usize::from(len);
                }
                0xC0 => {
                    let target = usize::from(u16_at(msg, pos)? & 0x3FFF);
                    end.get_or_insert(pos + 2);
                    jumps += 1;
                    if jumps > 16 || target >= msg.len() {
                        return None;
                    }
                    pos = target;
                }
                _ => return None,
            }
        }
    }

    pub fn question(msg: &[u8]) -> Option<Question> {
        let (name, after) = read_name(msg, HEADER)?;
        let qtype = u16_at(msg, after)?;
        let qclass = u16_at(msg, after + 2)?;
        Some(Question {
            name,
            qtype,
            qclass,
            end: after + 4,
        })
    }

    /// A reply header for `query` (id, opcode and RD copied), with `rcode` and counts.
    fn header(query: &[u8], rcode: u8, qd: u16, an: u16, truncated: bool) -> Option<Vec<u8>> {
        let id = query.get(0..2)?;
        let flags_in = *query.get(2)?;
        let mut out = Vec::with_capacity(UDP_MAX);
        out.extend_from_slice(id);
        // QR=1, opcode copied, AA=0, TC, RD copied.
        let mut f1 = 0x80 | (flags_in & 0x78) | (flags_in & 0x01);
        if truncated {
            f1 |= 0x02;
        }
        out.push(f1);
        // RA=1, rcode.
        out.push(0x80 | (rcode & 0x0F));
        out.extend_from_slice(&qd.to_be_bytes());
        out.extend_from_slice(&an.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        Some(out)
    }

    /// An answer with no records and `rcode`, echoing the question when it can be read.
    pub fn error_reply(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
        match question(query) {
            Some(q) => {
                let mut out = header(query, rcode, 1, 0, false)?;
                out.extend_from_slice(query.get(HEADER..q.end)?);
                Some(out)
            }
            None => header(query, rcode, 0, 0, false),
        }
    }

    fn encode_name(name: &str, out: &mut Vec<u8>) -> Option<()> {
        for label in name.trim_end_matches('.').split('.') {
            if label.is_empty() {
                continue;
            }
            let len = u8::try_from(label.len()).ok().filter(|l| *l <= 63)?;
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        Some(())
    }

    /// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
    pub fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
        let rest = name.strip_suffix(".in-addr.arpa")?;
        let parts: Vec<u8> = rest
            .split('.')
            .map(|p| p.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [d, c, b, a] => Some(Ipv4Addr::new(a, b, c, d)),
            _ => None,
        }
    }

    /// `b.a.9.8.….ip6.arpa` (32 nibbles, the last first) → the address.
    pub fn reverse_v6(name: &str) -> Option<Ipv6Addr> {
        let lower = name.to_ascii_lowercase();
        let rest = lower.strip_suffix(".ip6.arpa")?;
        let mut bits: u128 = 0;
        let mut count = 0;
        for nibble in rest.split('.').rev() {
            let &[c] = nibble.as_bytes() else {
                return None;
            };
            let d = char::from(c).to_digit(16)?;
            bits = (bits << 4) | u128::from(d);
            count += 1;
        }
        (count == 32).then(|| Ipv6Addr::from(bits))
    }

    /// Answers from the container's networks, or says to forward (or to drop).
    pub fn local_answer(query: &[u8], resolver: &dyn Resolve, udp: bool) -> Action {
        let Some(flags) = query.get(2..4) else {
            return Action::Drop;
        };
        if query.len() < HEADER || flags[0] & 0x80 != 0 {
            // Too short to answer, or a response: never answer those (no reflection loops).
            return Action::Drop;
        }
        let reply = |r: Option<Vec<u8>>| r.map_or(Action::Drop, Action::Reply);
        let opcode = (flags[0] >> 3) & 0x0F;
        if opcode != 0 {
            return reply(header(query, RCODE_NOTIMP, 0, 0, false));
        }
        if u16_at(query, 4) != Some(1) {
            return reply(header(query, RCODE_FORMERR, 0, 0, false));
        }
        let Some(q) = question(query) else {
            return reply(header(query, RCODE_FORMERR, 0, 0, false));
        };
        if q.qclass != CLASS_IN {
            return Action::Forward;
        }
        let Some(qsection) = query.get(HEADER..q.end) else {
            return Action::Drop;
        };
        match q.qtype {
            TYPE_PTR => {
                let target = match (reverse_v4(&q.name), reverse_v6(&q.name)) {
                    (Some(ip), _) => resolver.reverse(ip),
                    (None, Some(ip)) => resolver.reverse6(ip),
                    (None, None) => None,
                };
                let Some(target) = target else {
                    return Action::Forward;
                };
                let mut rdata = Vec::new();
                if encode_name(&target, &mut rdata).is_none() {
                    return Action::Forward;
                }
                let Some(mut out) = header(query, 0, 1, 1, false) else {
                    return Action::Drop;
                };
                out.extend_from_slice(qsection);
                push_record(&mut out, TYPE_PTR, &rdata);
                Action::Reply(out)
            }
            qtype => {
                let Some(ips) = resolver.lookup(&q.name) else {
                    return Action::Forward;
                };
                // A known name: A records for A, AAAA records for AAAA (its IPv6 addresses
                // on IPv6 networks, none otherwise), and an empty NOERROR for anything else.
                let (rtype, rdatas): (u16, Vec<Vec<u8>>) = match qtype {
                    TYPE_A => (TYPE_A, ips.iter().map(|ip| ip.octets().to_vec()).collect()),
                    TYPE_AAAA => (
                        TYPE_AAAA,
                        resolver
                            .lookup6(&q.name)
                            .iter()
                            .map(|ip| ip.octets().to_vec())
                            .collect(),
                    ),
                    _ => (qtype, Vec::new()),
                };
                let per_record = 12 + if rtype == TYPE_AAAA { 16 } else { 4 };
                let room = if udp { UDP_MAX } else { 65535 };
                let fit = room.saturating_sub(HEADER + qsection.len()) / per_record;
                let truncated = rdatas.len() > fit;
                let rdatas = &rdatas[..rdatas.len().min(fit)];
                let Ok(an) = u16::try_from(rdatas.len()) else {
                    return Action::Drop;
                };
                let Some(mut out) = header(query, 0, 1, an, truncated) else {
                    return Action::Drop;
                };
                out.extend_from_slice(qsection);
                for rdata in rdatas {
                    push_record(&mut out, rtype, rdata);
                }
                Action::Reply(out)
            }
        }
    }

    /// A record named by a pointer to the question's name (offset 12), class IN, Docker's TTL.
    fn push_record(out: &mut Vec<u8>, rtype: u16, rdata: &[u8]) {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        // rdata is at most a 255-byte name or 4 address bytes.
        let len = u16::try_from(rdata.len()).unwrap_or(0);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(rdata);
    }
}

#[cfg(test)]
mod tests {
    use super::wire::*;
    use super::*;

    struct Fake;

    impl Resolve for Fake {
        fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            match name {
                "web" => Some(vec![Ipv4Addr::new(172, 18, 0, 5)]),
                "many" => Some((0..100).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect()),
                _ => None,
            }
        }
        fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
            (ip == Ipv4Addr::new(172, 18, 0, 5)).then(|| "web.mynet".to_string())
        }
    }

    /// A resolver with a dual-stack name.
    struct Fake6;

    impl Resolve for Fake6 {
        fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            match name {
                "web6" | "many6" => Some(vec![Ipv4Addr::new(172, 18, 0, 6)]),
                _ => Fake.lookup(name),
            }
        }
        fn lookup6(&self, name: &str) -> Vec<Ipv6Addr> {
            match name {
                "web6" => vec!["fd00:b0::6".parse().unwrap()],
                "many6" => (0..100u16)
                    .map(|i| Ipv6Addr::new(0xfd00, 0xb0, 0, 0, 0, 0, 0, i))
                    .collect(),
                _ => Vec::new(),
            }
        }
        fn reverse(&self, _ip: Ipv4Addr) -> Option<String> {
            None
        }
        fn reverse6(&self, ip: Ipv6Addr) -> Option<String> {
            (ip == "fd00:b0::6".parse::<Ipv6Addr>().unwrap()).then(|| "web6.n6".to_string())
        }
    }

    #[test]
    fn ptr_of_an_ipv6_container_address_names_it() {
        let name = "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.b.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_v6(name), Some("fd00:b0::6".parse().unwrap()));
        assert_eq!(
            reverse_v6(&name.to_ascii_uppercase().replace("IP6.ARPA", "ip6.arpa")),
            reverse_v6(name)
        );
        assert_eq!(reverse_v6("6.0.ip6.arpa"), None);
        assert_eq!(reverse_v6(&name.replace("6.0.0", "g.0.0")), None);
        assert_eq!(reverse_v6(&name.replace("6.0.0", "66.0")), None);
        let r = reply(local_answer(&query(3, name, TYPE_PTR), &Fake6, true));
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        assert!(r.windows(4).any(|w| w == b"web6"), "{r:?}");
        // Not ours: forwarded.
        let other = name.replace("6.0.0", "7.0.0");
        assert_eq!(
            local_answer(&query(3, &other, TYPE_PTR), &Fake6, true),
            Action::Forward
        );
    }

    #[test]
    fn aaaa_of_a_dual_stack_name_answers_its_ipv6_address() {
        let r = reply(local_answer(&query(9, "web6", TYPE_AAAA), &Fake6, true));
        assert_eq!(r[3] & 0x0F, 0, "NOERROR");
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        let tail = &r[r.len() - 28..];
        assert_eq!(&tail[..2], &[0xC0, 0x0C]);
        assert_eq!(u16::from_be_bytes([tail[2], tail[3]]), TYPE_AAAA);
        assert_eq!(u16::from_be_bytes([tail[10], tail[11]]), 16);
        let want: Ipv6Addr = "fd00:b0::6".parse().unwrap();
        assert_eq!(&tail[12..], &want.octets());
        // Its A query still answers A.
        let r = reply(local_answer(&query(9, "web6", TYPE_A), &Fake6, true));
        assert_eq!(&r[r.len() - 4..], &[172, 18, 0, 6]);
        // A name with IPv4 only: empty NOERROR for AAAA, not NXDOMAIN.
        let r = reply(local_answer(&query(9, "web", TYPE_AAAA), &Fake6, true));
        assert_eq!(r[3] & 0x0F, 0);
        assert_eq!(&r[6..8], &[0, 0]);
        // Many AAAA records over UDP: truncated to what fits in 512 bytes.
        let r = reply(local_answer(&query(9, "many6", TYPE_AAAA), &Fake6, true));
        assert!(r.len() <= 512, "{}", r.len());
        assert_eq!(r[2] & 0x02, 0x02, "TC");
        let r = reply(local_answer(&query(9, "many6", TYPE_AAAA), &Fake6, false));
        assert_eq!(&r[6..8], &[0, 100]);
    }

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            q.push(u8::try_from(l.len()).unwrap());
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    fn reply(a: Action) -> Vec<u8> {
        match a {
            Action::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_query_for_a_container_is_answered_with_ttl_600() {
        let q = query(0xBEEF, "WEB", TYPE_A);
        let r = reply(local_answer(&q, &Fake, true));
        assert_eq!(&r[..2], &[0xBE, 0xEF]);
        assert_eq!(r[2] & 0x80, 0x80, "QR");
        assert_eq!(r[2] & 0x01, 0x01, "RD copied");
        assert_eq!(r[3] & 0x0F, 0, "NOERROR");
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        let tail = &r[r.len() - 16..];
        assert_eq!(&tail[..2], &[0xC0, 0x0C]);
        assert_eq!(
            u32::from_be_bytes([tail[6], tail[7], tail[8], tail[9]]),
            600
        );
        assert_eq!(&tail[12..], &[172, 18, 0, 5]);
    }

    #[test]
    fn aaaa_of_a_known_name_is_empty_noerror_and_unknown_names_forward() {
        let r = reply(local_answer(&query(1, "web", TYPE_AAAA), &Fake, true));
        assert_eq!(r[3] & 0x0F, 0);
        assert_eq!(&r[6..8], &[0, 0]);
        assert_eq!(
            local_answer(&query(1, "example.com", TYPE_A), &Fake, true),
            Action::Forward
        );
        assert_eq!(
            local_answer(&query(1, "example.com", 15), &Fake, true),
            Action::Forward
        );
    }

    #[test]
    fn ptr_of_a_container_address_names_it() {
        let r = reply(local_answer(
            &query(7, "5.0.18.172.in-addr.arpa", TYPE_PTR),
            &Fake,
            true,
        ));
        assert_eq!(&r[6..8], &[0, 1]);
        let (name, _) = read_name(&r, r.len() - 11).unwrap();
        assert_eq!(name, "web.mynet");
        assert_eq!(
            local_answer(&query(7, "9.0.18.172.in-addr.arpa", TYPE_PTR), &Fake, true),
            Action::Forward
        );
        assert_eq!(
            reverse_v4("1.2.3.4.in-addr.arpa"),
            Some(Ipv4Addr::new(4, 3, 2, 1))
        );
        assert_eq!(reverse_v4("1.2.3.in-addr.arpa"), None);
    }

    #[test]
    fn big_answers_are_truncated_over_udp_only() {
        let r = reply(local_answer(&query(1, "many", TYPE_A), &Fake, true));
        assert!(r.len() <= 512);
        assert_eq!(r[2] & 0x02, 0x02, "TC");
        let r = reply(local_answer(&query(1, "many", TYPE_A), &Fake, false));
        assert_eq!(&r[6..8], &[0, 100]);
        assert_eq!(r[2] & 0x02, 0);
    }

    #[test]
    fn malformed_queries_get_formerr_or_silence() {
        assert_eq!(local_answer(&[], &Fake, true), Action::Drop);
        assert_eq!(local_answer(&[1, 2, 3], &Fake, true), Action::Drop);
        // A response is never answered.
        let mut q = query(1, "web", TYPE_A);
        q[2] |= 0x80;
        assert_eq!(local_answer(&q, &Fake, true), Action::Drop);
        // Truncated question.
        let q = query(1, "web", TYPE_A);
        let r = reply(local_answer(&q[..q.len() - 3], &Fake, true));
        assert_eq!(r[3] & 0x0F, RCODE_FORMERR);
        // A compression loop.
        let mut q = query(1, "web", TYPE_A);
        q.truncate(12);
        q.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        assert_eq!(
            reply(local_answer(&q, &Fake, true))[3] & 0x0F,
            RCODE_FORMERR
        );
        // Two questions.
        let mut q = query(1, "web", TYPE_A);
        q[5] = 2;
        assert_eq!(
            reply(local_answer(&q, &Fake, true))[3] & 0x0F,
            RCODE_FORMERR
        );
        // Another opcode.
        let mut q = query(1, "web", TYPE_A);
        q[2] |= 0x10;
        assert_eq!(reply(local_answer(&q, &Fake, true))[3] & 0x0F, RCODE_NOTIMP);
        let r = error_reply(&query(9, "x.y", TYPE_A), RCODE_SERVFAIL).unwrap();
        assert_eq!(r[3] & 0x0F, RCODE_SERVFAIL);
        assert_eq!(&r[4..6], &[0, 1]);
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic, no dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = query(1, "web.example", TYPE_A);
        for i in 0..200_000 {
            let len = usize::try_from(next() % 80).unwrap();
            let m: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| next().to_le_bytes()[0]).collect()
            } else {
                // Mutations of a valid query reach deeper than pure noise.
                let mut m = base.clone();
                for _ in 0..(next() % 4 + 1) {
                    let at = usize::try_from(next() % m.len() as u64).unwrap();
                    m[at] = next().to_le_bytes()[0];
                }
                m.truncate(usize::try_from(next() % (m.len() as u64 + 1)).unwrap());
                m
            };
            let _ = local_answer(&m, &Fake, i % 3 == 0);
            let _ = error_reply(&m, RCODE_SERVFAIL);
        }
    }

    #[test]
    fn upstreams_are_the_nameserver_lines() {
        let u = upstreams_from_resolv_conf(
            "# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # x\nnameserver fe80::1%eth0\nnameserver ::1\nsearch a\n",
        );
        assert_eq!(
            u,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
