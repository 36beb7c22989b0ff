//! Image references, parsed and normalised as Docker does.
//!
//! The grammar is the one of distribution's reference package:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]          host: dns labels, or [ipv6]
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation: the first `/`-separated component is a domain when it contains `.` or `:`,
//! is `localhost`, or has an uppercase letter; otherwise the domain is `docker.io`. A
//! single-component Docker Hub name gets `library/`; `index.docker.io` becomes `docker.io`; the
//! tag `latest` is added only when there is neither tag nor digest.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain in references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DOCKER_HUB_DOMAIN`].
pub const LEGACY_DOCKER_HUB_DOMAIN: &str = "index.docker.io";
/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_REGISTRY_HOST: &str = "registry-1.docker.io";
/// The tag given to a reference with neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest name (domain and path) accepted.
pub const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Errors from [`Reference::parse`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidFormat {
        reference: String,
        reason: &'static str,
    },
    /// The repository path has uppercase letters.
    #[error("invalid reference format {reference:?}: repository name must be lowercase")]
    Uppercase { reference: String },
    /// The tag does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid reference {reference:?}: invalid tag {tag:?} (a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')")]
    InvalidTag { reference: String, tag: String },
    /// The digest after `@` is not valid.
    #[error("invalid reference {reference:?}: {source}")]
    InvalidDigest {
        reference: String,
        source: DigestError,
    },
    /// Domain and path together are longer than [`NAME_MAX`].
    #[error("invalid reference {reference:?}: repository name is {len} characters, longer than {NAME_MAX}")]
    NameTooLong { reference: String, len: usize },
    /// A bare 64-hex-digit name, which Docker reserves for image IDs.
    #[error("invalid repository name {reference:?}: cannot specify 64-byte hexadecimal strings")]
    HexName { reference: String },
}

/// A normalised image reference: domain, repository path, and tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `s`: `busybox` → `docker.io/library/busybox:latest`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let invalid = |reason| ReferenceError::InvalidFormat {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::InvalidDigest {
                    reference: s.to_string(),
                    source,
                })?;
                (n, Some(digest))
            }
            None => (s, None),
        };
        let (name, tag) = split_tag(name_tag);
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::InvalidTag {
                    reference: s.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        if name.is_empty() {
            return Err(invalid("empty repository name"));
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                reference: s.to_string(),
            });
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(domain) {
            return Err(invalid("invalid registry host"));
        }
        let path = if domain == DOCKER_HUB_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                reference: s.to_string(),
            });
        }
        if let Some(reason) = path_problem(&path) {
            return Err(invalid(reason));
        }
        let len = domain.len() + 1 + path.len();
        if len > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                reference: s.to_string(),
                len,
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag,
            digest,
        })
    }

    /// The registry domain as written in the reference (`docker.io`, `host:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any (`latest` when the reference had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pinned one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Domain and path: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The host (and port) to talk to: `registry-1.docker.io` for Docker Hub.
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// The short form Docker prints: `busybox:latest`, `user/app:1`, `host:5000/a/b:tag`.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DOCKER_HUB_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d.as_str());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Splits `name[:tag]`: the tag is after the last ':' that follows the last '/' (so the port of
/// `host:5000/x` is not taken for a tag).
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// Splits off the domain as Docker does; without one the domain is docker.io.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            if first == LEGACY_DOCKER_HUB_DOMAIN {
                (DOCKER_HUB_DOMAIN, rest)
            } else {
                (first, rest)
            }
        }
        _ => (DOCKER_HUB_DOMAIN, name),
    }
}

fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = t.as_bytes();
    match bytes.split_first() {
        Some((&first, rest)) => {
            word(first)
                && bytes.len() <= TAG_MAX
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

/// `host[:port]` where host is dns labels (letters, digits, inner '-') joined by '.', or a
/// bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(p) => ("[v6]", Some(p)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host == "[v6]" {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Why a (lowercase) repository path breaks the grammar, or None when it is fine.
fn path_problem(path: &str) -> Option<&'static str> {
    for component in path.split('/') {
        if component.is_empty() {
            return Some("empty path component");
        }
        if !valid_component(component) {
            return Some("path components are [a-z0-9] joined by '.', '_', '__' or '-'");
        }
    }
    None
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // A run of alphanumerics.
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// (input, domain, path, tag, has a digest, Display, familiar)
    type Case = (
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
        String,
        String,
    );

    #[test]
    fn normalises_valid_references() {
        let dg = format!("sha256:{HEX}");
        let cases: Vec<Case> = vec![
            (
                "busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                false,
                "docker.io/library/busybox:1.36".into(),
                "busybox:1.36".into(),
            ),
            (
                "user/app".into(),
                "docker.io",
                "user/app",
                Some("latest"),
                false,
                "docker.io/user/app:latest".into(),
                "user/app:latest".into(),
            ),
            (
                "docker.io/library/alpine:3".into(),
                "docker.io",
                "library/alpine",
                Some("3"),
                false,
                "docker.io/library/alpine:3".into(),
                "alpine:3".into(),
            ),
            (
                "index.docker.io/library/alpine".into(),
                "docker.io",
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
                "alpine:latest".into(),
            ),
            (
                "docker.io/alpine".into(),
                "docker.io",
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
                "alpine:latest".into(),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io",
                "library/a/b",
                Some("latest"),
                false,
                "docker.io/library/a/b:latest".into(),
                "library/a/b:latest".into(),
            ),
            (
                "host:5000/a/b:tag".into(),
                "host:5000",
                "a/b",
                Some("tag"),
                false,
                "host:5000/a/b:tag".into(),
                "host:5000/a/b:tag".into(),
            ),
            (
                "localhost/x".into(),
                "localhost",
                "x",
                Some("latest"),
                false,
                "localhost/x:latest".into(),
                "localhost/x:latest".into(),
            ),
            (
                "localhost:5000/x".into(),
                "localhost:5000",
                "x",
                Some("latest"),
                false,
                "localhost:5000/x:latest".into(),
                "localhost:5000/x:latest".into(),
            ),
            (
                "127.0.0.1:5000/x:v1".into(),
                "127.0.0.1:5000",
                "x",
                Some("v1"),
                false,
                "127.0.0.1:5000/x:v1".into(),
                "127.0.0.1:5000/x:v1".into(),
            ),
            (
                "[::1]:5000/x".into(),
                "[::1]:5000",
                "x",
                Some("latest"),
                false,
                "[::1]:5000/x:latest".into(),
                "[::1]:5000/x:latest".into(),
            ),
            (
                "quay.io/org/sub/repo".into(),
                "quay.io",
                "org/sub/repo",
                Some("latest"),
                false,
                "quay.io/org/sub/repo:latest".into(),
                "quay.io/org/sub/repo:latest".into(),
            ),
            (
                format!("busybox@{dg}"),
                "docker.io",
                "library/busybox",
                None,
                true,
                format!("docker.io/library/busybox@{dg}"),
                format!("busybox@{dg}"),
            ),
            (
                format!("busybox:1.36@{dg}"),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                true,
                format!("docker.io/library/busybox:1.36@{dg}"),
                format!("busybox:1.36@{dg}"),
            ),
            (
                format!("localhost:5000/a@{dg}"),
                "localhost:5000",
                "a",
                None,
                true,
                format!("localhost:5000/a@{dg}"),
                format!("localhost:5000/a@{dg}"),
            ),
            (
                "my-reg.example.com/a.b_c__d-e---f:Tag_1.0-x".into(),
                "my-reg.example.com",
                "a.b_c__d-e---f",
                Some("Tag_1.0-x"),
                false,
                "my-reg.example.com/a.b_c__d-e---f:Tag_1.0-x".into(),
                "my-reg.example.com/a.b_c__d-e---f:Tag_1.0-x".into(),
            ),
            (
                "my_org/my__app-x---y.z".into(),
                "docker.io",
                "my_org/my__app-x---y.z",
                Some("latest"),
                false,
                "docker.io/my_org/my__app-x---y.z:latest".into(),
                "my_org/my__app-x---y.z:latest".into(),
            ),
            (
                "Registry/app".into(),
                "Registry",
                "app",
                Some("latest"),
                false,
                "Registry/app:latest".into(),
                "Registry/app:latest".into(),
            ),
        ];
        for (input, domain, path, tag, has_digest, display, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.domain(), domain, "{input}");
            assert_eq!(r.path(), path, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            if has_digest {
                assert_eq!(r.digest().map(Digest::as_str), Some(dg.as_str()));
            }
            assert_eq!(r.to_string(), display, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.repository(), format!("{domain}/{path}"));
            // The normalised form parses back to the same reference.
            assert_eq!(Reference::parse(&display).as_ref(), Ok(&r), "{display}");
            assert_eq!(display.parse::<Reference>(), Ok(r));
        }
    }

    /// More of distribution's own reference test inputs: (input, normalised form).
    #[test]
    fn distribution_corpus() {
        let cases = [
            ("test_com", "docker.io/library/test_com:latest"),
            ("test.com:tag", "docker.io/library/test.com:tag"),
            ("test.com:5000", "docker.io/library/test.com:5000"),
            ("test.com/repo:tag", "test.com/repo:tag"),
            ("test:5000/repo", "test:5000/repo:latest"),
            ("test:5000/repo:tag", "test:5000/repo:tag"),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com/bar/baz/quux:latest",
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io/test.example.com/my-app:test.example.com",
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com/myimage:xn--n3h.com",
            ),
            ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),
            ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080"),
            ("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest"),
            ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo:latest"),
            (
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d/x",
                "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d/x:latest",
            ),
        ];
        for (input, want) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), want, "{input}");
        }
        let bad = [
            "aa/asdf$$^/aa",
            "[fe80::1%eth0]:5000/repo",
            "[2001:db8::1]:/repo",
            "validname@invaliddigest:ecbd",
            "Uppercase:tag",
            "test:5000/Uppercase/lowercase:tag",
            "a:b:c/d",
            "repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for input in bad {
            assert!(
                Reference::parse(input).is_err(),
                "{input} should be refused"
            );
        }
    }

    #[test]
    fn serde_as_normalised_string() {
        let r = Reference::parse("busybox").expect("parse");
        let json = serde_json::to_string(&r).expect("ser");
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).expect("de"), r);
        let err = serde_json::from_str::<Reference>("\"Bad\"").expect_err("bad");
        assert!(err.to_string().contains("must be lowercase"), "{err}");
    }

    #[test]
    fn registry_host() {
        let host = |s: &str| Reference::parse(s).expect(s).registry_host().to_string();
        assert_eq!(host("busybox"), "registry-1.docker.io");
        assert_eq!(host("index.docker.io/x/y"), "registry-1.docker.io");
        assert_eq!(host("docker.io/x/y"), "registry-1.docker.io");
        assert_eq!(host("localhost:5000/x"), "localhost:5000");
        assert_eq!(host("ghcr.io/o/r"), "ghcr.io");
    }

    #[test]
    fn rejects_invalid_references() {
        let long_name = format!("{}/x", "a".repeat(300));
        let long_path = format!("host.io/{}", ["abc"; 70].join("/"));
        let long_tag = format!("busybox:{}", "t".repeat(129));
        let ok_tag = format!("busybox:{}", "t".repeat(128));
        assert!(Reference::parse(&ok_tag).is_ok());
        // (input, fragment the message must contain)
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "invalid reference format \"\": empty reference"),
            (":tag".into(), "empty repository name"),
            ("@sha256:abc".into(), "needs 64 hex digits"),
            ("a//b".into(), "empty path component"),
            ("a/".into(), "empty path component"),
            ("/a".into(), "empty path component"),
            ("localhost/".into(), "empty path component"),
            ("Busybox".into(), "repository name must be lowercase"),
            (
                "docker.io/Library/x".into(),
                "repository name must be lowercase",
            ),
            ("host:5000/A/b".into(), "repository name must be lowercase"),
            ("busybox:".into(), "invalid tag \"\""),
            ("busybox:-x".into(), "invalid tag \"-x\""),
            ("busybox:.x".into(), "invalid tag"),
            ("busybox:a+b".into(), "invalid tag"),
            ("busybox:a:b".into(), "path components"),
            (long_tag, "invalid tag"),
            ("busybox@sha256:xyz".into(), "invalid digest \"sha256:xyz\""),
            ("busybox@md5:abcd".into(), "unsupported algorithm"),
            ("busybox@".into(), "missing ':'"),
            ("busy box".into(), "path components"),
            ("a..b".into(), "path components"),
            ("a_-b".into(), "path components"),
            ("a___b".into(), "path components"),
            ("-a".into(), "path components"),
            ("a-".into(), "path components"),
            ("a/b@sha256:x@y".into(), "invalid digest"),
            ("host:port/x".into(), "invalid registry host"),
            ("-host.io/x".into(), "invalid registry host"),
            ("host..io/x".into(), "invalid registry host"),
            ("[::1/x".into(), "invalid registry host"),
            ("[zz]:5000/x".into(), "invalid registry host"),
            (HEX.into(), "cannot specify 64-byte hexadecimal strings"),
            (long_name, "longer than 255"),
            (long_path, "longer than 255"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(&input).expect_err(&input).to_string();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
        }
    }

    #[test]
    fn error_variants() {
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(matches!(
            Reference::parse("x@sha256:1"),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("x:!"),
            Err(ReferenceError::InvalidTag { .. })
        ));
    }

    #[test]
    fn localhost_alone_is_a_hub_name_with_a_tag() {
        // As Docker: without a '/', "localhost:5000" is repository "localhost", tag "5000".
        let r = Reference::parse("localhost:5000").expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/localhost:5000");
    }
}
