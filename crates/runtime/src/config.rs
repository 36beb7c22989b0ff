//! Loading `config.json` and validating it once, before anything is created, so that bad input
//! is refused with a clear message and nothing is left behind.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, PosixRlimitType, Spec};

use crate::error::{Result, RuntimeError};

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    parse(&data, &path)
}

pub fn parse(data: &[u8], path: &Path) -> Result<Spec> {
    serde_json::from_slice(data).map_err(|e| invalid(path, format!("malformed JSON: {e}")))
}

fn invalid(path: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidConfig {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The bundle's root filesystem as an absolute path.
pub fn rootfs(spec: &Spec, bundle: &Path) -> PathBuf {
    let p = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| "rootfs".into());
    if p.is_absolute() {
        p
    } else {
        bundle.join(p)
    }
}

/// A container id as runc accepts them: non-empty, no path separators, no `.`/`..`.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(RuntimeError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("too long");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// Rejects a path with `..` components: mount destinations and similar must name a place inside
/// the rootfs without climbing.
pub fn check_no_dotdot(path: &Path) -> bool {
    !path.components().any(|c| matches!(c, Component::ParentDir))
}

/// Every check that can be made before forking.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let cfg = bundle.join("config.json");
    let cfg = cfg.as_path();
    let root = rootfs(spec, bundle);
    match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                cfg,
                format!("rootfs {} is not a directory", root.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(cfg, format!("rootfs {}: {e}", root.display())));
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid(cfg, "process is missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid(cfg, "process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            cfg,
            format!("process.cwd {} must be absolute", process.cwd().display()),
        ));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid(cfg, "linux section is missing"))?;

    // Namespaces: each type once; paths must exist; user-namespace mappings consistent.
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for ns in &namespaces {
        if !seen.insert(ns.typ()) {
            return Err(invalid(cfg, format!("namespace {} listed twice", ns.typ())));
        }
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(invalid(cfg, "time namespace is not supported"));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(invalid(
                    cfg,
                    format!("namespace path {} does not exist", p.display()),
                ));
            }
        }
    }
    let has = |t| namespaces.iter().any(|n| n.typ() == t);
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if !has(LinuxNamespaceType::Mount) {
        return Err(invalid(cfg, "a mount namespace is required"));
    }
    let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
    let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
    if new_user {
        if uid_maps.is_empty() || gid_maps.is_empty() {
            return Err(invalid(
                cfg,
                "user namespace needs uidMappings and gidMappings",
            ));
        }
        check_mappings("uidMappings", &uid_maps).map_err(|r| invalid(cfg, r))?;
        check_mappings("gidMappings", &gid_maps).map_err(|r| invalid(cfg, r))?;
    } else if (!uid_maps.is_empty() || !gid_maps.is_empty()) && !has(LinuxNamespaceType::User) {
        {
            return Err(invalid(
                cfg,
                "uidMappings/gidMappings given without a user namespace",
            ));
        }
    }

    // Mounts.
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let d = m.destination();
        if !check_no_dotdot(d) {
            return Err(invalid(
                cfg,
                format!("mount destination {} contains '..'", d.display()),
            ));
        }
        if d.as_os_str().is_empty() {
            return Err(invalid(cfg, "mount destination is empty"));
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(invalid(
                cfg,
                format!(
                    "mount on {}: idmapped mounts are not supported",
                    d.display()
                ),
            ));
        }
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind"
            || m.options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
        if is_bind {
            let src = m.source().as_ref().ok_or_else(|| {
                invalid(cfg, format!("bind mount on {} has no source", d.display()))
            })?;
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(invalid(
                    cfg,
                    format!(
                        "bind mount source {} for {} does not exist",
                        src.display(),
                        d.display()
                    ),
                ));
            }
        }
    }

    // Sysctls that need a namespace the config does not have.
    if let Some(sysctls) = linux.sysctl() {
        for key in sysctls.keys() {
            let need = if key.starts_with("net.") {
                Some(LinuxNamespaceType::Network)
            } else if key.starts_with("kernel.msg")
                || key.starts_with("kernel.sem")
                || key.starts_with("kernel.shm")
                || key.starts_with("fs.mqueue.")
            {
                Some(LinuxNamespaceType::Ipc)
            } else if key == "kernel.hostname" || key == "kernel.domainname" {
                Some(LinuxNamespaceType::Uts)
            } else {
                return Err(invalid(
                    cfg,
                    format!("sysctl {key:?} is not namespaced and cannot be set"),
                ));
            };
            if let Some(t) = need {
                if !namespaces
                    .iter()
                    .any(|n| n.typ() == t && n.path().is_none())
                {
                    return Err(invalid(
                        cfg,
                        format!("sysctl {key:?} needs a new {t} namespace"),
                    ));
                }
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            cfg,
            "hostname is set but there is no uts namespace",
        ));
    }

    // Rlimits: never above the hard limit we hold, unless we could raise it.
    for r in process.rlimits().as_deref().unwrap_or_default() {
        if r.soft() > r.hard() {
            return Err(invalid(
                cfg,
                format!(
                    "rlimit {}: soft limit {} is above hard limit {}",
                    rlimit_name(r.typ()),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        let res = rlimit_resource(r.typ());
        let (_, cur_hard) = crate::sys::getrlimit(res)
            .map_err(|e| RuntimeError::sys(format!("getrlimit {}", rlimit_name(r.typ())), e))?;
        if r.hard() > cur_hard && !has_cap_sys_resource() {
            return Err(invalid(
                cfg,
                format!(
                    "rlimit {}: hard limit {} is above the current hard limit {} and cannot be raised without CAP_SYS_RESOURCE",
                    rlimit_name(r.typ()),
                    r.hard(),
                    cur_hard
                ),
            ));
        }
    }

    if process.terminal().unwrap_or(false) {
        // Checked by the caller against --console-socket; nothing to do here.
    }
    Ok(())
}

fn has_cap_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

/// Ranges must be non-empty and must not overlap on either side.
pub fn check_mappings(what: &str, maps: &[LinuxIdMapping]) -> std::result::Result<(), String> {
    for (i, a) in maps.iter().enumerate() {
        if a.size() == 0 {
            return Err(format!("{what}: mapping {i} has size 0"));
        }
        for b in &maps[i + 1..] {
            let overlap = |x: u32, y: u32| {
                let (x, y, n, m) = (
                    u64::from(x),
                    u64::from(y),
                    u64::from(a.size()),
                    u64::from(b.size()),
                );
                x < y + m && y < x + n
            };
            if overlap(a.container_id(), b.container_id()) {
                return Err(format!(
                    "{what}: container ranges {}+{} and {}+{} overlap",
                    a.container_id(),
                    a.size(),
                    b.container_id(),
                    b.size()
                ));
            }
            if overlap(a.host_id(), b.host_id()) {
                return Err(format!(
                    "{what}: host ranges {}+{} and {}+{} overlap",
                    a.host_id(),
                    a.size(),
                    b.host_id(),
                    b.size()
                ));
            }
        }
    }
    Ok(())
}

/// Maps a container id (uid or gid) to the host through the given mappings.
pub fn map_to_host(maps: &[LinuxIdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id())?;
        (off < m.size()).then(|| m.host_id() + off)
    })
}

pub fn rlimit_name(t: PosixRlimitType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{t:?}"))
}

#[allow(clippy::cast_possible_wrap)] // the RLIMIT_* constants are small
pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", "..", ".", "a/b", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mappings_overlap() {
        assert!(check_mappings("uid", &[m(0, 100000, 1000), m(1000, 200000, 10)]).is_ok());
        let e = check_mappings("uid", &[m(0, 100000, 1000), m(500, 300000, 10)]).unwrap_err();
        assert!(e.contains("container ranges"), "{e}");
        let e = check_mappings("uid", &[m(0, 100000, 1000), m(2000, 100500, 10)]).unwrap_err();
        assert!(e.contains("host ranges"), "{e}");
        assert!(check_mappings("uid", &[m(0, 1, 0)]).is_err());
        assert_eq!(map_to_host(&[m(0, 100000, 10)], 3), Some(100003));
        assert_eq!(map_to_host(&[m(0, 100000, 10)], 10), None);
    }

    #[test]
    fn dotdot() {
        assert!(check_no_dotdot(Path::new("/a/b")));
        assert!(!check_no_dotdot(Path::new("/a/../../etc")));
    }

    #[test]
    fn malformed_json_is_invalid_config() {
        let e = parse(b"{not json", Path::new("/b/config.json")).unwrap_err();
        assert!(e.to_string().contains("malformed JSON"), "{e}");
        let e = parse(
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}"#,
            Path::new("/c"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
