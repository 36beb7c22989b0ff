//! berthd's configuration: flags named as dockerd's, merged over a JSON config file with
//! dockerd's keys (`daemon.json`), validated once into [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One `--default-ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// Parses `nofile=1024:2048` (hard defaults to soft), as `docker run --ulimit` does.
    pub fn parse(s: &str) -> Result<Ulimit, String> {
        let (name, vals) = s
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
        if !RLIMIT_NAMES.contains(&name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let (soft, hard) = match vals.split_once(':') {
            Some((a, b)) => (a, b),
            None => (vals, vals),
        };
        let num = |v: &str| -> Result<i64, String> {
            v.parse::<i64>()
                .map_err(|_| format!("invalid ulimit argument: {s}: {v:?} is not a number"))
        };
        let (soft, hard) = (num(soft)?, num(hard)?);
        if soft > hard && hard >= 0 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

pub const RLIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];

/// The listener addresses of `-H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET)));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            let addr = if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:2375")
            };
            return Ok(Host::Tcp(addr));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(format!(
            "invalid host {s:?}: use unix:///path or tcp://host:port"
        ))
    }
}

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// The keys of dockerd's daemon.json that berthd reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    pub hosts: Option<Vec<String>>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub log_level: Option<String>,
    pub default_ulimits: Option<BTreeMap<String, FileUlimit>>,
    pub insecure_registries: Option<Vec<String>>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub debug: Option<bool>,
    pub live_restore: Option<bool>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub storage_driver: Option<String>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub default_address_pools: Option<Vec<FilePool>>,
    pub mtu: Option<u32>,
    pub iptables: Option<bool>,
    pub ipv6: Option<bool>,
    pub fixed_cidr_v6: Option<String>,
}

/// One entry of daemon.json's `default-address-pools`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePool {
    pub base: String,
    pub size: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileUlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("read config file {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<Host>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub default_ulimits: Vec<Ulimit>,
    pub insecure_registries: Vec<String>,
    pub tls: Option<TlsConfig>,
    /// Allow plain TCP (loopback only) without TLS.
    pub insecure_tcp: bool,
    pub log_opts: BTreeMap<String, String>,
    /// Containers without `--network` join the default bridge (`--bridge=none` turns it off:
    /// they get a namespace with loopback only, as with `--network none`).
    pub bridge: bool,
    /// berthd manages its nftables table (`--iptables=false` leaves the firewall alone).
    pub iptables: bool,
    pub net: NetConfig,
}

/// Address settings of berth's networks: dockerd's `--bip`, `--fixed-cidr`,
/// `--default-address-pool` and `--mtu` (and their daemon.json keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The subnets a network without `--subnet` (and the default bridge without `--bip`) takes,
    /// first free first.
    pub pools: Vec<ipnet::Ipv4Net>,
    /// The default bridge's gateway address with its subnet's prefix.
    pub bip: Option<ipnet::Ipv4Net>,
    /// The part of the default bridge's subnet containers get addresses from.
    pub fixed_cidr: Option<ipnet::Ipv4Net>,
    pub mtu: u32,
    /// `--fixed-cidr-v6` given with `--ipv6`: the default bridge's IPv6 subnet.
    pub fixed_cidr_v6: Option<ipnet::Ipv6Net>,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            pools: berth_network::ipam::default_pools(),
            bip: None,
            fixed_cidr: None,
            mtu: 1500,
            fixed_cidr_v6: None,
        }
    }
}

impl NetConfig {
    /// From the flags' (or daemon.json's) text; errors name the option.
    pub fn parse(
        bip: Option<&str>,
        fixed_cidr: Option<&str>,
        pools: &[(String, u8)],
        mtu: Option<u32>,
    ) -> Result<NetConfig, String> {
        let cidr = |flag: &str, v: &str| -> Result<ipnet::Ipv4Net, String> {
            v.parse::<ipnet::Ipv4Net>().map_err(|_| {
                format!(
                    "invalid {flag} {v:?}: an IPv4 address with a prefix length, like 172.20.0.1/16"
                )
            })
        };
        let bip = bip.map(|v| cidr("--bip", v)).transpose()?;
        if let Some(b) = bip {
            if b.prefix_len() > 30 || b.addr() == b.network() || b.addr() == b.broadcast() {
                let first = std::net::Ipv4Addr::from(u32::from(b.network()).wrapping_add(1));
                return Err(format!(
                    "invalid --bip {b}: it is the bridge's gateway, a host address of a subnet of /30 or larger, like {first}/{}",
                    b.prefix_len()
                ));
            }
        }
        let fixed_cidr = fixed_cidr.map(|v| cidr("--fixed-cidr", v)).transpose()?;
        if let (Some(f), Some(b)) = (fixed_cidr, bip) {
            if !b.trunc().contains(&f.trunc()) {
                return Err(format!(
                    "invalid --fixed-cidr {f}: it is not inside the bridge's subnet {} (--bip {b})",
                    b.trunc()
                ));
            }
        }
        let mut all = Vec::new();
        for (base, size) in pools {
            let b = base.parse::<ipnet::Ipv4Net>().map_err(|_| {
                format!(
                    "invalid default address pool base {base:?}: an IPv4 subnet like 10.10.0.0/16"
                )
            })?;
            all.extend(berth_network::ipam::split_pool(b, *size).map_err(|e| e.to_string())?);
        }
        let mtu = mtu.unwrap_or(1500);
        if !(68..=65535).contains(&mtu) {
            return Err(format!("invalid --mtu {mtu}: between 68 and 65535"));
        }
        Ok(NetConfig {
            pools: if all.is_empty() {
                berth_network::ipam::default_pools()
            } else {
                all
            },
            bip,
            fixed_cidr,
            mtu,
            fixed_cidr_v6: None,
        })
    }

    /// `--ipv6` and `--fixed-cidr-v6` (daemon.json `ipv6`, `fixed-cidr-v6`): the default
    /// bridge's IPv6 subnet. `--ipv6` needs the subnet, as dockerd 20.10 says at start;
    /// `--fixed-cidr-v6` alone is ignored, as dockerd does.
    pub fn with_ipv6(
        mut self,
        ipv6: bool,
        fixed_cidr_v6: Option<&str>,
    ) -> Result<NetConfig, String> {
        if !ipv6 {
            return Ok(self);
        }
        let Some(v) = fixed_cidr_v6 else {
            return Err(
                "IPv6 is enabled for the default bridge, but no subnet is configured. Specify an IPv6 subnet using --fixed-cidr-v6"
                    .to_string(),
            );
        };
        let net = v.parse::<ipnet::Ipv6Net>().map_err(|_| {
            format!("invalid --fixed-cidr-v6 {v:?}: an IPv6 subnet like fd00:1::/64")
        })?;
        if net.prefix_len() > berth_network::ipam::MAX_V6_PREFIX {
            return Err(format!(
                "invalid --fixed-cidr-v6 {v}: the prefix must be at most /{}",
                berth_network::ipam::MAX_V6_PREFIX
            ));
        }
        self.fixed_cidr_v6 = Some(net.trunc());
        Ok(self)
    }
}

/// One `--default-address-pool` flag: `base=10.10.0.0/16,size=24`.
pub fn parse_pool_flag(s: &str) -> Result<(String, u8), String> {
    let (mut base, mut size) = (None, None);
    for kv in s.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => base = Some(v.trim().to_string()),
            Some(("size", v)) => {
                size = Some(v.trim().parse::<u8>().map_err(|_| {
                    format!(
                        "invalid --default-address-pool {s:?}: size {v:?} is not a prefix length"
                    )
                })?)
            }
            _ => {
                return Err(format!(
                    "invalid --default-address-pool {s:?}: use base=<subnet>,size=<prefix length>"
                ))
            }
        }
    }
    match (base, size) {
        (Some(b), Some(z)) => Ok((b, z)),
        _ => Err(format!(
            "invalid --default-address-pool {s:?}: both base and size are needed"
        )),
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by this CA (`--tlsverify`).
    pub client_ca: Option<PathBuf>,
}

impl Config {
    /// A config for tests and embedders: one unix socket, the given roots.
    pub fn with_roots(data_root: PathBuf, exec_root: PathBuf, socket: PathBuf) -> Config {
        Config {
            hosts: vec![Host::Unix(socket)],
            data_root,
            exec_root,
            pidfile: None,
            cgroup_parent: None,
            default_ulimits: Vec::new(),
            insecure_registries: Vec::new(),
            tls: None,
            insecure_tcp: false,
            log_opts: BTreeMap::new(),
            bridge: true,
            iptables: true,
            net: NetConfig::default(),
        }
    }

    /// Refuses what cannot work before anything is touched: TCP without TLS unless it is
    /// loopback and explicitly allowed.
    pub fn validate(&self) -> Result<(), String> {
        for h in &self.hosts {
            if let Host::Tcp(addr) = h {
                if self.tls.is_some() {
                    continue;
                }
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !self.insecure_tcp {
                    return Err(format!(
                        "refusing to listen on tcp://{addr} without TLS: give --tlscert and --tlskey, or --insecure-tcp for a loopback address"
                    ));
                }
                if !loopback {
                    return Err(format!(
                        "--insecure-tcp is allowed only on a loopback address, not tcp://{addr}"
                    ));
                }
            }
        }
        for u in &self.default_ulimits {
            let (_, hard) = host_rlimit(&u.name);
            if hard != u64::MAX && (u.hard < 0 || u.hard as u64 > hard) {
                return Err(format!(
                    "--default-ulimit {}={}:{}: above the hard limit {hard} this daemon runs with (raising it needs CAP_SYS_RESOURCE)",
                    u.name, u.soft, u.hard
                ));
            }
        }
        Ok(())
    }
}

/// The daemon's own (soft, hard) limit for an rlimit name; unlimited when unknown.
pub fn host_rlimit(name: &str) -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    let r = match name {
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        "as" => Resource::RLIMIT_AS,
        _ => return (u64::MAX, u64::MAX),
    };
    getrlimit(r).unwrap_or((u64::MAX, u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        assert_eq!(
            Ulimit::parse("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(Ulimit::parse("nproc=10").unwrap().hard, 10);
        assert!(Ulimit::parse("bogus=1").is_err());
        assert!(Ulimit::parse("nofile=x").is_err());
        assert!(Ulimit::parse("nofile=10:5").is_err());
        assert!(Ulimit::parse("nofile").is_err());
    }

    #[test]
    fn network_address_options() {
        let n = NetConfig::parse(
            Some("10.99.0.1/24"),
            Some("10.99.0.128/25"),
            &[("10.10.0.0/16".into(), 24)],
            Some(1400),
        )
        .unwrap();
        assert_eq!(n.bip.unwrap().to_string(), "10.99.0.1/24");
        assert_eq!(n.pools.len(), 256);
        assert_eq!(n.mtu, 1400);
        assert_eq!(
            NetConfig::parse(None, None, &[], None).unwrap(),
            NetConfig::default()
        );
        let e = NetConfig::parse(Some("10.99.0.0/24"), None, &[], None).unwrap_err();
        assert!(e.contains("10.99.0.1/24"), "{e}");
        assert!(NetConfig::parse(Some("nonsense"), None, &[], None).is_err());
        let e =
            NetConfig::parse(Some("10.99.0.1/24"), Some("10.98.0.0/25"), &[], None).unwrap_err();
        assert!(e.contains("not inside"), "{e}");
        assert!(NetConfig::parse(None, None, &[("10.0.0.0/16".into(), 8)], None).is_err());
        assert!(NetConfig::parse(None, None, &[], Some(10)).is_err());
        assert_eq!(
            parse_pool_flag("base=10.10.0.0/16,size=24").unwrap(),
            ("10.10.0.0/16".to_string(), 24)
        );
        assert!(parse_pool_flag("base=10.10.0.0/16").is_err());
        assert!(parse_pool_flag("size=x,base=1.0.0.0/8").is_err());
        assert!(parse_pool_flag("bogus").is_err());
    }

    #[test]
    fn ipv6_default_bridge_options() {
        let n = NetConfig::default();
        assert_eq!(n.clone().with_ipv6(false, Some("fd00:1::/64")).unwrap(), n);
        let e = n.clone().with_ipv6(true, None).unwrap_err();
        assert!(e.contains("--fixed-cidr-v6"), "{e}");
        let v6 = n.clone().with_ipv6(true, Some("fd00:1::5/64")).unwrap();
        assert_eq!(v6.fixed_cidr_v6.unwrap().to_string(), "fd00:1::/64");
        assert!(n.clone().with_ipv6(true, Some("10.0.0.0/8")).is_err());
        assert!(n.with_ipv6(true, Some("fd00::/127")).is_err());
        let f: FileConfig =
            serde_json::from_str(r#"{"ipv6": true, "fixed-cidr-v6": "fd00:2::/64"}"#).unwrap();
        assert_eq!(f.ipv6, Some(true));
        assert_eq!(f.fixed_cidr_v6.as_deref(), Some("fd00:2::/64"));
    }

    #[test]
    fn hosts_and_tcp_rules() {
        assert_eq!(
            Host::parse("unix:///tmp/b.sock").unwrap(),
            Host::Unix("/tmp/b.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert!(Host::parse("http://x").is_err());
        let mut c = Config::with_roots("/a".into(), "/b".into(), "/c".into());
        c.hosts.push(Host::Tcp("127.0.0.1:2375".into()));
        assert!(c.validate().unwrap_err().contains("without TLS"));
        c.insecure_tcp = true;
        assert!(c.validate().is_ok());
        c.hosts.push(Host::Tcp("0.0.0.0:2375".into()));
        assert!(c.validate().unwrap_err().contains("loopback"));
    }
}
