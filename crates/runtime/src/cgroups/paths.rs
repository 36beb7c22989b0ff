//! Where a container's cgroup lives: parsing `/proc/self/mountinfo` and `/proc/self/cgroup`,
//! telling the layout apart, and computing one directory per hierarchy. Everything here is pure:
//! it takes the text of those files and returns paths, so every layout is unit-tested with fake
//! input.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupPaths, Layout};

/// The file the mount table comes from (named in errors).
pub(crate) const MOUNTINFO: &str = "/proc/self/mountinfo";
/// The file the caller's own cgroups come from (named in errors).
pub(crate) const PROC_CGROUP: &str = "/proc/self/cgroup";

/// One cgroup filesystem mount, as read from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// The directory of the hierarchy that is mounted (field 4, "/" unless a subtree is mounted).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// `None` for cgroup2, else the controllers of the v1 hierarchy (`name=systemd` included).
    pub controllers: Option<Vec<String>>,
}

impl CgroupMount {
    fn is_v2(&self) -> bool {
        self.controllers.is_none()
    }
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// 0 for the unified hierarchy.
    pub hierarchy: u32,
    /// Empty for the unified hierarchy.
    pub controllers: Vec<String>,
    /// The cgroup, relative to the root of the hierarchy (or of the cgroup namespace).
    pub path: PathBuf,
}

/// Mount options of a v1 cgroup mount that are not controller names.
const V1_OPTIONS_NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "nosuid",
    "nodev",
    "noexec",
    "relatime",
    "noatime",
    "nodiratime",
    "strictatime",
    "lazytime",
    "sync",
    "dirsync",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "none",
    "all",
];

/// Undo the octal escapes (`\040` for a space) the kernel puts in mountinfo paths.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup and cgroup2 mounts in a mountinfo text, in table order.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, CgroupError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &'static str| CgroupError::Parse {
            path: PathBuf::from(MOUNTINFO),
            line: index + 1,
            reason,
        };
        // id parent major:minor root mount-point mount-options [optional...] - fstype source super-options
        let (head, tail) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no \" - \" separator"))?;
        let head: Vec<&str> = head.split(' ').collect();
        let tail: Vec<&str> = tail.split(' ').collect();
        if head.len() < 6 || tail.is_empty() {
            return Err(bad("too few fields"));
        }
        let fstype = tail[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let root = PathBuf::from(unescape_mountinfo(head[3]));
        let mount_point = PathBuf::from(unescape_mountinfo(head[4]));
        let controllers = if fstype == "cgroup2" {
            None
        } else {
            let mut list: Vec<String> = Vec::new();
            let options = head[5]
                .split(',')
                .chain(tail.get(2).copied().unwrap_or("").split(','));
            for option in options {
                let is_controller = !option.is_empty()
                    && !V1_OPTIONS_NOT_CONTROLLERS.contains(&option)
                    && (option.starts_with("name=") || !option.contains('='));
                if is_controller && !list.iter().any(|c| c == option) {
                    list.push(option.to_string());
                }
            }
            Some(list)
        };
        mounts.push(CgroupMount {
            root,
            mount_point,
            controllers,
        });
    }
    Ok(mounts)
}

/// The lines of a `/proc/<pid>/cgroup` text.
pub(crate) fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, CgroupError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &'static str| CgroupError::Parse {
            path: PathBuf::from(PROC_CGROUP),
            line: index + 1,
            reason,
        };
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected hierarchy-id:controllers:path"));
        };
        let hierarchy = id
            .parse::<u32>()
            .map_err(|_| bad("hierarchy id is not a number"))?;
        let controllers = controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        entries.push(ProcCgroup {
            hierarchy,
            controllers,
            path: PathBuf::from(path),
        });
    }
    Ok(entries)
}

/// Which layout the mounts make: only v1 hierarchies, only the unified one, or both.
pub(crate) fn layout_of(mounts: &[CgroupMount]) -> Result<Layout, CgroupError> {
    let has_v2 = mounts.iter().any(CgroupMount::is_v2);
    let has_v1 = mounts.iter().any(|m| !m.is_v2());
    match (has_v1, has_v2) {
        (true, true) => Ok(Layout::Hybrid),
        (true, false) => Ok(Layout::V1),
        (false, true) => Ok(Layout::V2),
        (false, false) => Err(CgroupError::NoHierarchy {
            path: PathBuf::from(MOUNTINFO),
        }),
    }
}

/// Where the container's cgroup goes, relative to something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Below the caller's own cgroup in each hierarchy.
    Relative(PathBuf),
    /// Below the root of each mounted hierarchy.
    Absolute(PathBuf),
}

/// Check a `linux.cgroupsPath` (or the default `berth/<id>`) and say how it is placed.
pub(crate) fn placement(cgroups_path: Option<&Path>, id: &str) -> Result<Placement, CgroupError> {
    let path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new("berth").join(id),
    };
    let text = path.to_string_lossy();
    // The systemd driver's form, `slice:prefix:name`, has exactly two colons and no slash.
    if !path.is_absolute() && !text.contains('/') && text.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath(text.into_owned()));
    }
    let invalid = |reason: &'static str| CgroupError::InvalidPath {
        path: path.clone(),
        reason,
    };
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => return Err(invalid("\"..\" is not allowed")),
            Component::Prefix(_) => return Err(invalid("not a unix path")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(invalid("names the root cgroup"));
    }
    if path.is_absolute() {
        Ok(Placement::Absolute(clean))
    } else {
        Ok(Placement::Relative(clean))
    }
}

/// `path` relative to the mount's root, as a path that can be pushed onto the mount point.
fn below_root(mount: &CgroupMount, own: &Path) -> Result<PathBuf, CgroupError> {
    let relative = own
        .strip_prefix(&mount.root)
        .map_err(|_| CgroupError::NotBelowMount {
            cgroup: own.to_path_buf(),
            root: mount.root.clone(),
            mount_point: mount.mount_point.clone(),
        })?;
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::NotBelowMount {
                    cgroup: own.to_path_buf(),
                    root: mount.root.clone(),
                    mount_point: mount.mount_point.clone(),
                })
            }
        }
    }
    Ok(clean)
}

/// The directory of the container's cgroup in one hierarchy.
fn dir_in(mount: &CgroupMount, own: &Path, placement: &Placement) -> Result<PathBuf, CgroupError> {
    match placement {
        Placement::Absolute(path) => Ok(mount.mount_point.join(path)),
        Placement::Relative(path) => Ok(mount.mount_point.join(below_root(mount, own)?).join(path)),
    }
}

/// Compute the container's directories from the mount table and the caller's cgroups.
///
/// Every mounted v1 hierarchy the caller belongs to gets a directory (named hierarchies such as
/// `name=systemd` too, so tools that track processes by them keep working); the unified hierarchy
/// gets one when it is mounted. When a hierarchy is mounted more than once the first mount whose
/// root holds the caller's cgroup wins.
pub(crate) fn compute_paths(
    mounts: &[CgroupMount],
    own: &[ProcCgroup],
    placement: &Placement,
) -> Result<CgroupPaths, CgroupError> {
    let layout = layout_of(mounts)?;
    let mut v1 = BTreeMap::new();
    let mut unified = None;
    let mut unified_mount = None;
    for entry in own {
        let candidates = mounts
            .iter()
            .filter(|m| match (&m.controllers, entry.hierarchy) {
                (None, 0) => entry.controllers.is_empty(),
                (Some(list), id) if id != 0 => {
                    !entry.controllers.is_empty()
                        && entry
                            .controllers
                            .iter()
                            .all(|c| list.iter().any(|m| m == c))
                }
                _ => false,
            });
        let candidates: Vec<&CgroupMount> = candidates.collect();
        let Some(mount) = candidates
            .iter()
            .find(|m| entry.path.starts_with(&m.root))
            .or_else(|| candidates.first())
        else {
            continue;
        };
        let dir = dir_in(mount, &entry.path, placement)?;
        if mount.is_v2() {
            if unified.is_none() {
                unified = Some(dir);
                unified_mount = Some(mount.mount_point.clone());
            }
        } else {
            for controller in &entry.controllers {
                v1.entry(controller.clone()).or_insert_with(|| dir.clone());
            }
        }
    }
    if v1.is_empty() && unified.is_none() {
        return Err(CgroupError::NoHierarchy {
            path: PathBuf::from(PROC_CGROUP),
        });
    }
    Ok(CgroupPaths {
        layout,
        v1,
        unified,
        unified_mount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/d079
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    const V1_MOUNTINFO: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
";

    const V1_CGROUP: &str = "\
5:net_cls,net_prio:/
4:memory:/system.slice/docker.service
3:cpu,cpuacct:/system.slice/docker.service
1:name=systemd:/system.slice/docker.service
";

    const V2_MOUNTINFO: &str = "\
23 1 0:21 / /proc rw - proc proc rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V2_CGROUP: &str = "0::/user.slice/x\n";

    fn paths(mountinfo: &str, cgroup: &str, path: Option<&str>, id: &str) -> CgroupPaths {
        let mounts = parse_mountinfo(mountinfo).expect("mountinfo");
        let own = parse_proc_cgroup(cgroup).expect("cgroup");
        let placement = placement(path.map(Path::new), id).expect("placement");
        compute_paths(&mounts, &own, &placement).expect("paths")
    }

    #[test]
    fn parses_mountinfo_controllers() {
        let mounts = parse_mountinfo(V1_MOUNTINFO).expect("parse");
        assert_eq!(mounts.len(), 4);
        assert_eq!(
            mounts[0].controllers,
            Some(vec!["name=systemd".to_string()])
        );
        assert_eq!(
            mounts[1].controllers,
            Some(vec!["cpu".to_string(), "cpuacct".to_string()])
        );
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        let v2 = parse_mountinfo(V2_MOUNTINFO).expect("parse");
        assert_eq!(v2.len(), 1);
        assert_eq!(v2[0].controllers, None);
    }

    #[test]
    fn mountinfo_escapes_and_errors() {
        let text = "41 31 0:38 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n";
        let mounts = parse_mountinfo(text).expect("parse");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/with space"));
        assert!(matches!(
            parse_mountinfo("garbage line\n"),
            Err(CgroupError::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn parses_proc_cgroup() {
        let entries = parse_proc_cgroup(HYBRID_CGROUP).expect("parse");
        assert_eq!(entries.len(), 10);
        assert_eq!(entries[5].controllers, vec!["memory".to_string()]);
        assert_eq!(entries[5].path, PathBuf::from("/process_api/d079"));
        assert_eq!(entries[9].hierarchy, 0);
        assert!(entries[9].controllers.is_empty());
        // A path may contain colons.
        let odd = parse_proc_cgroup("0::/a:b:c\n").expect("parse");
        assert_eq!(odd[0].path, PathBuf::from("/a:b:c"));
        assert!(parse_proc_cgroup("x:cpu:/\n").is_err());
        assert!(parse_proc_cgroup("1:cpu\n").is_err());
    }

    #[test]
    fn detects_layouts() {
        let layout = |text| layout_of(&parse_mountinfo(text).expect("parse")).expect("layout");
        assert_eq!(layout(HYBRID_MOUNTINFO), Layout::Hybrid);
        assert_eq!(layout(V1_MOUNTINFO), Layout::V1);
        assert_eq!(layout(V2_MOUNTINFO), Layout::V2);
        assert!(matches!(
            layout_of(&parse_mountinfo("22 1 8:1 / / rw - ext4 /dev/vda rw\n").expect("parse")),
            Err(CgroupError::NoHierarchy { .. })
        ));
    }

    #[test]
    fn hybrid_relative_default() {
        let p = paths(HYBRID_MOUNTINFO, HYBRID_CGROUP, None, "abc");
        assert_eq!(p.layout, Layout::Hybrid);
        assert_eq!(
            p.v1.get("memory"),
            Some(&PathBuf::from(
                "/sys/fs/cgroup/memory/process_api/d079/berth/abc"
            ))
        );
        assert_eq!(
            p.v1.get("cpu"),
            Some(&PathBuf::from("/sys/fs/cgroup/cpu/berth/abc"))
        );
        assert_eq!(
            p.v1.get("name=systemd"),
            Some(&PathBuf::from("/sys/fs/cgroup/systemd/berth/abc"))
        );
        assert_eq!(p.v1.len(), 9);
        assert_eq!(
            p.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified/berth/abc"))
        );
        assert_eq!(
            p.unified_mount,
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn hybrid_absolute() {
        let p = paths(
            HYBRID_MOUNTINFO,
            HYBRID_CGROUP,
            Some("/docker/0123"),
            "0123",
        );
        assert_eq!(
            p.v1.get("memory"),
            Some(&PathBuf::from("/sys/fs/cgroup/memory/docker/0123"))
        );
        assert_eq!(
            p.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified/docker/0123"))
        );
    }

    #[test]
    fn v1_comounted_and_relative() {
        let p = paths(V1_MOUNTINFO, V1_CGROUP, Some("parent/c1"), "c1");
        assert_eq!(p.layout, Layout::V1);
        let cpu = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/system.slice/docker.service/parent/c1");
        assert_eq!(p.v1.get("cpu"), Some(&cpu));
        assert_eq!(p.v1.get("cpuacct"), Some(&cpu));
        assert_eq!(
            p.v1.get("net_prio"),
            Some(&PathBuf::from("/sys/fs/cgroup/net_cls,net_prio/parent/c1"))
        );
        assert_eq!(p.unified, None);
    }

    #[test]
    fn v2_paths() {
        let rel = paths(V2_MOUNTINFO, V2_CGROUP, None, "c1");
        assert_eq!(rel.layout, Layout::V2);
        assert!(rel.v1.is_empty());
        assert_eq!(
            rel.unified,
            Some(PathBuf::from("/sys/fs/cgroup/user.slice/x/berth/c1"))
        );
        let abs = paths(V2_MOUNTINFO, V2_CGROUP, Some("/default/c1"), "c1");
        assert_eq!(
            abs.unified,
            Some(PathBuf::from("/sys/fs/cgroup/default/c1"))
        );
        let rel = paths(V2_MOUNTINFO, V2_CGROUP, Some("./a/b"), "c1");
        assert_eq!(
            rel.unified,
            Some(PathBuf::from("/sys/fs/cgroup/user.slice/x/a/b"))
        );
    }

    #[test]
    fn subtree_mount_root_is_stripped() {
        // A container without a cgroup namespace sees its own subtree mounted at the mount point.
        let mountinfo = "30 22 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let p = paths(mountinfo, "0::/docker/abc/inner\n", None, "c1");
        assert_eq!(
            p.unified,
            Some(PathBuf::from("/sys/fs/cgroup/inner/berth/c1"))
        );
        let mounts = parse_mountinfo(mountinfo).expect("parse");
        let own = parse_proc_cgroup("0::/elsewhere\n").expect("parse");
        let placement = placement(None, "c1").expect("placement");
        assert!(matches!(
            compute_paths(&mounts, &own, &placement),
            Err(CgroupError::NotBelowMount { .. })
        ));
    }

    #[test]
    fn rejects_parent_components_and_systemd_form() {
        assert!(matches!(
            placement(Some(Path::new("/a/../b")), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            placement(Some(Path::new("../escape")), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            placement(None, ".."),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            placement(Some(Path::new("/")), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        let err =
            placement(Some(Path::new("system.slice:docker:abc")), "abc").expect_err("systemd");
        assert!(matches!(err, CgroupError::SystemdPath(ref p) if p == "system.slice:docker:abc"));
        assert!(err
            .to_string()
            .contains("systemd cgroup driver is not supported: use cgroupfs"));
        assert_eq!(
            placement(Some(Path::new("/docker/abc")), "abc").expect("ok"),
            Placement::Absolute(PathBuf::from("docker/abc"))
        );
        assert_eq!(
            placement(None, "abc").expect("ok"),
            Placement::Relative(PathBuf::from("berth/abc"))
        );
        assert_eq!(
            placement(Some(Path::new("")), "abc").expect("ok"),
            Placement::Relative(PathBuf::from("berth/abc"))
        );
    }

    #[test]
    fn unmounted_hierarchies_are_skipped() {
        // The caller is in a hierarchy (net_cls) that is not mounted: no directory for it.
        let p = paths(
            HYBRID_MOUNTINFO,
            "10:net_cls:/\n4:memory:/\n0::/\n",
            Some("/c"),
            "c",
        );
        assert!(!p.v1.contains_key("net_cls"));
        assert_eq!(p.v1.len(), 1);
    }
}
