//! Platforms (`os/architecture[/variant]`) and choosing an index entry for one.
//!
//! Names are Go's GOOS/GOARCH, as images use them. Aliases are normalised (`x86_64` →
//! `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`); `arm64` without a variant means `v8`
//! and `arm` without one means `v7`. Selection follows Docker: the OS and architecture must
//! be equal, the variant equal or one the wanted variant can run (an `arm/v7` host runs
//! `v6` and `v5` images, preferring the highest).

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};
use serde::{Deserialize, Serialize};

use crate::manifest::ManifestError;

/// Errors parsing a platform.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The string is empty.
    #[error("invalid platform \"\": empty")]
    Empty,
    /// More than three components.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    TooManyComponents(String),
    /// An empty component or one with characters outside `[a-z0-9._-]`.
    #[error("invalid platform {input:?}: bad component {component:?}")]
    BadComponent {
        /// The whole platform string.
        input: String,
        /// The offending part.
        component: String,
    },
    /// A single component that is neither a known OS nor a known architecture.
    #[error("invalid platform {0:?}: unknown operating system or architecture")]
    Unknown(String),
}

/// An image platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// GOOS, e.g. `linux`.
    pub os: String,
    /// GOARCH, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "dragonfly",
    "plan9",
    "js",
    "wasip1",
    "ios",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "ppc64", "ppc64le", "s390x", "riscv64", "mips", "mipsle",
    "mips64", "mips64le", "loong64", "wasm",
];

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `(architecture, variant)` normalised as Docker/containerd do.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant
        .map(str::to_ascii_lowercase)
        .filter(|v| !v.is_empty());
    let v = variant.as_deref();
    match arch.as_str() {
        "i386" | "i486" | "i586" | "i686" | "x86" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => {
            let v = match v {
                None | Some("v1") | Some("1") => None,
                Some(v) if !v.starts_with('v') => Some(format!("v{v}")),
                Some(v) => Some(v.to_string()),
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match v {
                None | Some("8") | Some("v8") | Some("v8.0") => "v8".to_string(),
                Some("9") | Some("9.0") | Some("v9.0") => "v9".to_string(),
                Some(v) if !v.starts_with('v') => format!("v{v}"),
                Some(v) => v.to_string(),
            };
            ("arm64".into(), Some(v))
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "armv5l" | "armv5" => ("arm".into(), Some("v5".into())),
        "armv6l" | "armv6" => ("arm".into(), Some("v6".into())),
        "armv7l" | "armv7" => ("arm".into(), Some("v7".into())),
        "arm" => {
            let v = match v {
                None | Some("7") => "v7".to_string(),
                Some(v) if !v.starts_with('v') => format!("v{v}"),
                Some(v) => v.to_string(),
            };
            ("arm".into(), Some(v))
        }
        _ => (arch, variant),
    }
}

fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".into(),
        o => o.to_string(),
    }
}

impl Platform {
    /// A platform from parts, normalised.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalize_arch(architecture, variant);
        Platform {
            os: normalize_os(os),
            architecture,
            variant,
        }
    }

    /// The platform this program runs on, in Go's names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" if cfg!(target_feature = "v7") => "armv7",
            "arm" => "armv6",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        Platform::new(os, arch, None)
    }

    /// Parses `os[/arch[/variant]]` or a lone architecture (which takes the host's OS).
    /// A lone OS takes the host's architecture.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        if s.is_empty() {
            return Err(PlatformError::Empty);
        }
        let parts: Vec<&str> = s.split('/').collect();
        for p in &parts {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(PlatformError::BadComponent {
                    input: s.to_string(),
                    component: (*p).to_string(),
                });
            }
        }
        match parts.as_slice() {
            [one] => {
                let lower = one.to_ascii_lowercase();
                let host = Platform::host();
                if KNOWN_OS.contains(&lower.as_str()) || lower == "macos" {
                    let mut p = host;
                    p.os = normalize_os(&lower);
                    return Ok(p);
                }
                let (arch, variant) = normalize_arch(&lower, None);
                if KNOWN_ARCH.contains(&arch.as_str()) {
                    return Ok(Platform {
                        os: host.os,
                        architecture: arch,
                        variant,
                    });
                }
                Err(PlatformError::Unknown(s.to_string()))
            }
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(PlatformError::TooManyComponents(s.to_string())),
        }
    }

    /// The platform of an index entry, normalised; None when the entry has none.
    pub fn of_descriptor(desc: &Descriptor) -> Option<Platform> {
        desc.platform().as_ref().map(|p| {
            Platform::new(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    }

    /// The variants an image may have to run here, best first (Docker's compatibility
    /// rules: older ARM and x86-64 levels run on newer CPUs).
    fn acceptable_variants(&self) -> Vec<Option<String>> {
        let level = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse::<u32>().ok())
        };
        match self.architecture.as_str() {
            "arm" => match level(&self.variant) {
                Some(n) => (5..=n).rev().map(|i| Some(format!("v{i}"))).collect(),
                None => vec![self.variant.clone()],
            },
            "arm64" => match level(&self.variant) {
                Some(n) if n >= 8 => (8..=n).rev().map(|i| Some(format!("v{i}"))).collect(),
                _ => vec![self.variant.clone()],
            },
            "amd64" => match level(&self.variant) {
                Some(n) => (2..=n)
                    .rev()
                    .map(|i| Some(format!("v{i}")))
                    .chain(std::iter::once(None))
                    .collect(),
                None => vec![self.variant.clone()],
            },
            _ => vec![self.variant.clone()],
        }
    }

    /// Whether an image of platform `image` runs on this one.
    pub fn matches(&self, image: &Platform) -> bool {
        let want = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        let img = Platform::new(&image.os, &image.architecture, image.variant.as_deref());
        want.os == img.os
            && want.architecture == img.architecture
            && want.acceptable_variants().contains(&img.variant)
    }
}

/// Picks the index entry for `p`: exact OS and architecture, the best variant `p` can run;
/// the first such entry when several are equal.
pub fn select(index: &ImageIndex, p: &Platform) -> Result<Descriptor, ManifestError> {
    let want = Platform::new(&p.os, &p.architecture, p.variant.as_deref());
    let entries: Vec<(Option<Platform>, &Descriptor)> = index
        .manifests()
        .iter()
        .map(|d| (Platform::of_descriptor(d), d))
        .collect();
    for variant in want.acceptable_variants() {
        let found = entries.iter().find(|(ep, _)| {
            ep.as_ref().is_some_and(|ep| {
                ep.os == want.os && ep.architecture == want.architecture && ep.variant == variant
            })
        });
        if let Some((_, d)) = found {
            return Ok((*d).clone());
        }
    }
    let mut available: Vec<String> = Vec::new();
    for (ep, _) in &entries {
        if let Some(ep) = ep {
            let s = ep.to_string();
            if ep.os != "unknown" && !available.contains(&s) {
                available.push(s);
            }
        }
    }
    Err(ManifestError::NoMatchingPlatform {
        wanted: want.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let manifests: Vec<String> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, v))| {
                let variant = v.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:{:064x}","platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#,
                    i + 1
                )
            })
            .collect();
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            manifests.join(",")
        );
        serde_json::from_str(&doc).unwrap()
    }

    fn digest_no(d: &Descriptor) -> u64 {
        u64::from_str_radix(&d.digest().digest()[48..], 16).unwrap()
    }

    #[test]
    fn parse_and_normalise() {
        let p = Platform::parse("linux/amd64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap(), p);
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/aarch64/8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm/6").unwrap().to_string(),
            "linux/arm/v6"
        );
        assert_eq!(
            Platform::parse("Linux/AMD64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/i386").unwrap().to_string(),
            "linux/386"
        );
        assert_eq!(Platform::parse("arm64").unwrap().architecture, "arm64");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(Platform::parse(""), Err(PlatformError::Empty)));
        let e = Platform::parse("linux/amd64/v1/x").unwrap_err();
        assert!(e.to_string().contains("expected os/arch[/variant]"), "{e}");
        let e = Platform::parse("linux//v7").unwrap_err();
        assert!(matches!(e, PlatformError::BadComponent { .. }), "{e}");
        let e = Platform::parse("linux/am d64").unwrap_err();
        assert!(e.to_string().contains("am d64"), "{e}");
        let e = Platform::parse("toaster").unwrap_err();
        assert!(e.to_string().contains("toaster"), "{e}");
    }

    #[test]
    fn host_is_go_named() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(KNOWN_ARCH.contains(&h.architecture.as_str()), "{h}");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(h.to_string(), "linux/arm64/v8");
        }
    }

    #[test]
    fn select_exact() {
        let idx = index(&[
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", None),
            ("unknown", "unknown", None),
        ]);
        let d = select(&idx, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(digest_no(&d), 2);
        let d = select(&idx, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(digest_no(&d), 1);
    }

    #[test]
    fn arm64_without_variant_matches_v8() {
        let idx = index(&[("linux", "arm64", None)]);
        let d = select(&idx, &Platform::parse("linux/arm64/v8").unwrap()).unwrap();
        assert_eq!(digest_no(&d), 1);
    }

    #[test]
    fn arm_v7_prefers_highest_lower_variant() {
        let idx = index(&[
            ("linux", "arm", Some("v5")),
            ("linux", "arm", Some("v6")),
            ("linux", "arm64", Some("v8")),
        ]);
        let d = select(&idx, &Platform::parse("linux/arm/v7").unwrap()).unwrap();
        assert_eq!(digest_no(&d), 2);
        let e = select(&idx, &Platform::parse("linux/arm/v5").unwrap()).unwrap();
        assert_eq!(digest_no(&e), 1);
        // v8 images never run on a v7 host
        let idx = index(&[("linux", "arm", Some("v8"))]);
        assert!(select(&idx, &Platform::parse("linux/arm/v7").unwrap()).is_err());
        // an entry without variant is v7
        let idx = index(&[("linux", "arm", None)]);
        assert!(select(&idx, &Platform::parse("linux/arm/v7").unwrap()).is_ok());
    }

    #[test]
    fn no_match_lists_available() {
        let idx = index(&[
            ("linux", "arm64", Some("v8")),
            ("linux", "s390x", None),
            ("unknown", "unknown", None),
        ]);
        let e = select(&idx, &Platform::parse("linux/amd64").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/amd64 in the manifest list entries \
             (available: linux/arm64/v8, linux/s390x)"
        );
    }

    #[test]
    fn matches_rules() {
        let host = Platform::parse("linux/arm/v7").unwrap();
        assert!(host.matches(&Platform::parse("linux/arm/v6").unwrap()));
        assert!(!host.matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!host.matches(&Platform::parse("windows/arm/v7").unwrap()));
        let amd = Platform::parse("linux/amd64/v3").unwrap();
        assert!(amd.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(amd.matches(&Platform::parse("linux/amd64/v2").unwrap()));
        assert!(!Platform::parse("linux/amd64")
            .unwrap()
            .matches(&Platform::parse("linux/amd64/v3").unwrap()));
    }

    #[test]
    fn docker_hub_style_list() {
        // The shape of busybox's manifest list on Docker Hub.
        let entries = [
            ("amd64", None),
            ("arm", Some("v5")),
            ("arm", Some("v6")),
            ("arm", Some("v7")),
            ("arm64", Some("v8")),
            ("386", None),
            ("mips64le", None),
            ("ppc64le", None),
            ("riscv64", None),
            ("s390x", None),
        ];
        let manifests: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (arch, v))| {
                let variant = v.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
                format!(
                    r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":527,"digest":"sha256:{:064x}","platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#,
                    i + 1
                )
            })
            .collect();
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{}]}}"#,
            manifests.join(",")
        );
        let crate::manifest::ManifestKind::Index(idx) =
            crate::manifest::parse_manifest(None, doc.as_bytes()).unwrap()
        else {
            panic!("not an index")
        };
        for (want, n) in [
            ("linux/amd64", 1),
            ("linux/x86_64", 1),
            ("linux/arm/v5", 2),
            ("linux/arm/v6", 3),
            ("linux/arm/v7", 4),
            ("linux/armhf", 4),
            ("linux/arm64", 5),
            ("linux/aarch64", 5),
            ("linux/386", 6),
            ("linux/s390x", 10),
        ] {
            let d = select(&idx, &Platform::parse(want).unwrap()).unwrap();
            assert_eq!(digest_no(&d), n, "{want}");
            assert_eq!(
                d.media_type().to_string(),
                "application/vnd.docker.distribution.manifest.v2+json"
            );
        }
        assert!(select(&idx, &Platform::parse("windows/amd64").unwrap()).is_err());
    }
}
