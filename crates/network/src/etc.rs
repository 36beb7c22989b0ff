//! /etc/hosts and /etc/resolv.conf for a container.

use std::net::IpAddr;

/// Docker's fixed head of /etc/hosts.
const HOSTS_HEAD: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// /etc/hosts: localhost lines, the container's own addresses with its hostname (and aliases),
/// then `extra` (`--add-host name:ip`).
pub fn hosts(own: &[(IpAddr, Vec<String>)], extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from(HOSTS_HEAD);
    for (ip, names) in own {
        let names: Vec<&str> = names
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        if !names.is_empty() {
            s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    for (name, ip) in extra {
        let name = name.trim();
        if !name.is_empty() {
            s.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    s
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

/// The parts of a resolv.conf that matter to a container.
#[derive(Debug, Default)]
struct Parsed {
    nameservers: Vec<String>,
    search: Vec<String>,
    options: Vec<String>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => p.nameservers.extend(words.next().map(str::to_string)),
            // The last of search/domain wins, as in the resolver.
            Some("search") | Some("domain") => p.search = words.map(str::to_string).collect(),
            Some("options") => p.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    p
}

/// Whether a nameserver can only be reached from the host's own namespace.
fn is_local(server: &str) -> bool {
    match server.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn is_ipv6(server: &str) -> bool {
    matches!(server.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
}

const FALLBACK: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The servers the embedded DNS forwards to: `--dns`, else the host's (loopback ones included:
/// the daemon forwards from its own namespace), else Docker's fallback.
pub fn upstream_servers(host: &str, o: &ResolvOptions) -> Vec<String> {
    if !o.servers.is_empty() {
        return o.servers.clone();
    }
    let p = parse(host);
    if p.nameservers.is_empty() {
        FALLBACK.iter().map(|s| s.to_string()).collect()
    } else {
        p.nameservers
    }
}

/// The container's resolv.conf derived from the host's: localhost nameservers (unreachable from
/// a container namespace) dropped, Docker's fallback (8.8.8.8, 8.8.4.4) when none remain.
pub fn resolv_conf(host: &str, o: &ResolvOptions) -> String {
    let p = parse(host);
    // `--dns-search .` means no search domains at all.
    let search: Vec<String> = if o.search.is_empty() {
        p.search.clone()
    } else {
        o.search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect()
    };
    let mut options: Vec<String> = if o.options.is_empty() {
        p.options.clone()
    } else {
        o.options.clone()
    };
    let mut out = String::new();
    if o.embedded {
        out.push_str("nameserver 127.0.0.11\n");
        // Names are first tried as they are, so "web" goes to the embedded server at once
        // instead of through every search domain (Docker's ndots:0).
        if !options.iter().any(|x| x.starts_with("ndots:")) {
            options.push("ndots:0".to_string());
        }
    } else {
        let servers: Vec<String> = if o.servers.is_empty() {
            let kept: Vec<String> = p
                .nameservers
                .iter()
                .filter(|s| !is_local(s) && !is_ipv6(s))
                .cloned()
                .collect();
            if kept.is_empty() {
                FALLBACK.iter().map(|s| s.to_string()).collect()
            } else {
                kept
            }
        } else {
            o.servers.clone()
        };
        for s in &servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    if o.embedded {
        out.push_str(&format!(
            "\n# ExtServers: [{}]\n",
            upstream_servers(host, o).join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# managed by systemd-resolved\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # office\nnameserver ::1\nnameserver 2001:db8::1\nsearch corp.example lab.example\noptions edns0 trust-ad\n";

    #[test]
    fn hosts_has_dockers_head_own_names_and_extra() {
        let own = vec![(
            "172.18.0.2".parse().unwrap(),
            vec!["abc123".to_string(), "web".to_string()],
        )];
        let extra = vec![("db.local".to_string(), "10.1.2.3".parse().unwrap())];
        let h = hosts(&own, &extra);
        assert_eq!(
            h,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n172.18.0.2\tabc123 web\n10.1.2.3\tdb.local\n"
        );
        // No address (network none): just the head.
        assert_eq!(hosts(&[], &[]), HOSTS_HEAD);
    }

    #[test]
    fn resolv_conf_drops_local_and_ipv6_servers_and_keeps_search_and_options() {
        let r = resolv_conf(HOST, &ResolvOptions::default());
        assert_eq!(
            r,
            "nameserver 10.0.0.2\nsearch corp.example lab.example\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn resolv_conf_falls_back_to_google_when_only_local_servers() {
        let r = resolv_conf(
            "nameserver 127.0.0.53\noptions edns0\n",
            &ResolvOptions::default(),
        );
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n");
        let r = resolv_conf("", &ResolvOptions::default());
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn user_flags_replace_the_hosts_values() {
        let o = ResolvOptions {
            servers: vec!["1.1.1.1".into()],
            search: vec!["example.com".into()],
            options: vec!["ndots:2".into()],
            embedded: false,
        };
        assert_eq!(
            resolv_conf(HOST, &o),
            "nameserver 1.1.1.1\nsearch example.com\noptions ndots:2\n"
        );
        let o = ResolvOptions {
            search: vec![".".into()],
            ..Default::default()
        };
        assert!(!resolv_conf(HOST, &o).contains("search"));
    }

    #[test]
    fn embedded_points_at_127_0_0_11_and_lists_the_upstreams() {
        let o = ResolvOptions {
            embedded: true,
            ..Default::default()
        };
        let r = resolv_conf(HOST, &o);
        assert_eq!(
            r,
            "nameserver 127.0.0.11\nsearch corp.example lab.example\noptions edns0 trust-ad ndots:0\n\n# ExtServers: [127.0.0.53 10.0.0.2 ::1 2001:db8::1]\n"
        );
        let o = ResolvOptions {
            embedded: true,
            servers: vec!["9.9.9.9".into()],
            options: vec!["ndots:3".into()],
            ..Default::default()
        };
        let r = resolv_conf(HOST, &o);
        assert!(
            r.contains("options ndots:3\n") && !r.contains("ndots:0"),
            "{r}"
        );
        assert!(r.ends_with("# ExtServers: [9.9.9.9]\n"), "{r}");
        assert_eq!(
            upstream_servers("", &ResolvOptions::default()),
            ["8.8.8.8", "8.8.4.4"]
        );
    }
}
