//! The embedded DNS server in a test namespace, asked by busybox nslookup and by raw sockets
//! (root only).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_network::dns::{self, wire, Resolve};
use berth_network::netns;
use common::{in_private_netns, is_root, run_in_ns, Ns};

struct Fake;

impl Resolve for Fake {
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        (name == "web" || name == "web-alias").then(|| vec![Ipv4Addr::new(172, 18, 0, 5)])
    }
    fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
        (ip == Ipv4Addr::new(172, 18, 0, 5)).then(|| "web.testnet".to_string())
    }
}

/// The fake upstream's answer: `external.test` A 1.2.3.4 over UDP (5.6.7.8 over TCP, to tell
/// the transports apart), NXDOMAIN for anything else.
fn upstream_answer(q: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let question = wire::question(q)?;
    let mut r = q[..question.end].to_vec();
    r[2] |= 0x80;
    r[3] = 0x80;
    r[8..12].fill(0);
    if question.name == "external.test" {
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(if tcp { &[5, 6, 7, 8] } else { &[1, 2, 3, 4] });
    } else {
        r[6..8].fill(0);
        r[3] |= 3;
    }
    Some(r)
}

/// A fake upstream on 127.0.0.1 of the calling namespace, UDP and TCP on one port.
fn fake_upstream() -> SocketAddr {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let sock = UdpSocket::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if let Some(r) = upstream_answer(&buf[..n], false) {
                let _ = sock.send_to(&r, peer);
            }
        }
    });
    std::thread::spawn(move || {
        for s in tcp.incoming() {
            let Ok(mut s) = s else { return };
            let mut l = [0u8; 2];
            if s.read_exact(&mut l).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(l))];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(r) = upstream_answer(&q, true) {
                let _ = s.write_all(&u16::try_from(r.len()).unwrap().to_be_bytes());
                let _ = s.write_all(&r);
            }
        }
    });
    addr
}

/// One query over TCP to 127.0.0.11:53 from the namespace at `ns`.
fn tcp_query(ns: &Path, q: Vec<u8>) -> Vec<u8> {
    netns::run_in(ns, move || {
        let mut t = TcpStream::connect("127.0.0.11:53").unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        t.write_all(&u16::try_from(q.len()).unwrap().to_be_bytes())
            .unwrap();
        t.write_all(&q).unwrap();
        let mut l = [0u8; 2];
        t.read_exact(&mut l).unwrap();
        let mut r = vec![0u8; usize::from(u16::from_be_bytes(l))];
        t.read_exact(&mut r).unwrap();
        r
    })
    .unwrap()
}

fn nslookup(ns: &Path, name: &str) -> String {
    let out = run_in_ns(ns, &["busybox", "nslookup", name, "127.0.0.11"]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn nslookup_resolves_containers_and_forwards_the_rest() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let rt = runtime();
        let ns = Ns::new();
        let upstream = fake_upstream();
        let server = {
            let _g = rt.enter();
            dns::serve(&ns.path, Arc::new(Fake), vec![upstream]).unwrap()
        };
        let path = ns.path.clone();
        let out = nslookup(&path, "web");
        assert!(out.contains("172.18.0.5"), "{out}");
        let out = nslookup(&path, "WEB-ALIAS");
        assert!(out.contains("172.18.0.5"), "{out}");
        let out = nslookup(&path, "172.18.0.5");
        assert!(out.contains("web.testnet"), "{out}");
        // Not ours: forwarded (from this namespace, where the upstream is) and relayed.
        let out = nslookup(&path, "external.test");
        assert!(out.contains("1.2.3.4"), "{out}");
        let out = nslookup(&path, "missing.test");
        assert!(out.contains("NXDOMAIN"), "{out}");
        // A query over TCP is forwarded over TCP.
        let mut q = vec![0x77, 0x01, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 8];
        q.extend_from_slice(b"external");
        q.push(4);
        q.extend_from_slice(b"test");
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let r = tcp_query(&path, q);
        assert_eq!(&r[..2], &[0x77, 0x01]);
        assert_eq!(&r[r.len() - 4..], &[5, 6, 7, 8]);

        // Dropping the server closes its sockets.
        drop(server);
        std::thread::sleep(Duration::from_millis(200));
        let out = nslookup(&path, "web");
        assert!(!out.contains("172.18.0.5"), "{out}");
        drop(rt);
    });
}

#[test]
fn dead_upstreams_give_servfail_and_odd_packets_do_not_stop_the_server() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let rt = runtime();
        let ns = Ns::new();
        // Nothing listens there: the upstream answers with ICMP port unreachable.
        let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let _server = {
            let _g = rt.enter();
            dns::serve(&ns.path, Arc::new(Fake), vec![dead]).unwrap()
        };
        let out = nslookup(&ns.path, "external.test");
        assert!(out.contains("SERVFAIL"), "{out}");

        // A second server on the same address is refused clearly.
        let err = {
            let _g = rt.enter();
            dns::serve(&ns.path, Arc::new(Fake), vec![]).unwrap_err()
        };
        assert!(err.to_string().contains("127.0.0.11:53"), "{err}");

        let answers = netns::run_in(&ns.path, || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.connect("127.0.0.11:53").unwrap();
            for junk in [
                &b""[..],
                &[0xff; 3][..],
                &[0u8; 12][..],
                &[
                    0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1,
                ][..],
                &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 63, b'a'][..],
            ] {
                s.send(junk).unwrap();
            }
            // Then a real query: still answered.
            let mut q = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3];
            q.extend_from_slice(b"web");
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            s.send(&q).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while let Ok(n) = s.recv(&mut buf) {
                got.push(buf[..n].to_vec());
                if buf[..2] == [0xAB, 0xCD] {
                    break;
                }
            }
            // The same over TCP, length-prefixed, twice on one connection.
            let mut t = TcpStream::connect("127.0.0.11:53").unwrap();
            t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut tcp_answers = Vec::new();
            for _ in 0..2 {
                let len = u16::try_from(q.len()).unwrap().to_be_bytes();
                t.write_all(&len).unwrap();
                t.write_all(&q).unwrap();
                let mut l = [0u8; 2];
                t.read_exact(&mut l).unwrap();
                let mut r = vec![0u8; usize::from(u16::from_be_bytes(l))];
                t.read_exact(&mut r).unwrap();
                tcp_answers.push(r);
            }
            (got, tcp_answers)
        })
        .unwrap();
        let (udp, tcp) = answers;
        let last = udp.last().unwrap();
        assert_eq!(&last[..2], &[0xAB, 0xCD]);
        assert_eq!(&last[last.len() - 4..], &[172, 18, 0, 5]);
        // The malformed ones with a readable id got FORMERR; the rest silence.
        assert!(
            udp[..udp.len() - 1]
                .iter()
                .all(|r| r[3] & 0x0F == wire::RCODE_FORMERR),
            "{udp:?}"
        );
        for r in tcp {
            assert_eq!(&r[r.len() - 4..], &[172, 18, 0, 5]);
        }
        drop(rt);
    });
}
