//! Where a relative `linux.cgroupsPath` lands for the calling process.
//!
//! A runtime given a relative cgroups path creates the cgroup under the cgroup of the process
//! that runs it, in every hierarchy (runc does this for cgroupfs, and berth follows it). The
//! runtime is a child of the test, so "its own cgroup" is the test's: this module joins
//! `/proc/self/cgroup` with `/proc/self/mountinfo` to find those directories.

use std::fs;
use std::path::{Path, PathBuf};

/// Errors while reading cgroup information.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A proc file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One cgroup hierarchy this process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers (and `name=` options) of the hierarchy; empty for cgroup v2.
    pub controllers: Vec<String>,
    /// Whether this is the cgroup v2 (unified) hierarchy.
    pub unified: bool,
    /// Where the hierarchy is mounted.
    pub mountpoint: PathBuf,
    /// The directory of this process's own cgroup in the hierarchy.
    pub own_dir: PathBuf,
}

impl Hierarchy {
    /// Whether the hierarchy carries `controller` (`memory`, `pids`, `name=systemd`, ...).
    /// On cgroup v2 this reads `cgroup.controllers` at the mount point.
    pub fn has(&self, controller: &str) -> bool {
        if self.unified {
            fs::read_to_string(self.mountpoint.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == controller)
        } else {
            self.controllers.iter().any(|c| c == controller)
        }
    }

    /// The directory a relative cgroups path lands in.
    pub fn dir_for(&self, relative: &str) -> PathBuf {
        self.own_dir.join(relative.trim_start_matches('/'))
    }
}

fn read(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: PathBuf::from(path),
        source,
    })
}

/// A cgroup mount from mountinfo: mount root within the hierarchy, mount point, super options.
struct CgroupMount {
    root: String,
    mountpoint: PathBuf,
    unified: bool,
    options: Vec<String>,
}

fn unescape_mountinfo(field: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let octal = bytes
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok());
            if let Some(v) = octal {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mountpoint), Some(fstype)) =
            (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let unified = *fstype == "cgroup2";
        if !unified && *fstype != "cgroup" {
            continue;
        }
        let options = right
            .get(2)
            .map(|o| o.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        mounts.push(CgroupMount {
            root: unescape_mountinfo(root),
            mountpoint: PathBuf::from(unescape_mountinfo(mountpoint)),
            unified,
            options,
        });
    }
    mounts
}

fn join_hierarchies(proc_cgroup: &str, mountinfo: &str) -> Vec<Hierarchy> {
    let mounts = cgroup_mounts(mountinfo);
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let unified = controllers.is_empty();
        let mount = mounts.iter().find(|m| {
            if unified {
                m.unified
            } else {
                !m.unified && controllers.iter().all(|c| m.options.contains(c))
            }
        });
        let Some(mount) = mount else { continue };
        // The mount may show only a subtree of the hierarchy (inside a cgroup namespace).
        let rel = Path::new(path)
            .strip_prefix(&mount.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| PathBuf::from(path.trim_start_matches('/')));
        out.push(Hierarchy {
            controllers,
            unified,
            mountpoint: mount.mountpoint.clone(),
            own_dir: mount.mountpoint.join(rel),
        });
    }
    out
}

/// Every cgroup hierarchy this process is in, with its own cgroup directory.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let proc_cgroup = read("/proc/self/cgroup")?;
    let mountinfo = read("/proc/self/mountinfo")?;
    Ok(join_hierarchies(&proc_cgroup, &mountinfo))
}

/// The directory a relative cgroups path lands in for `controller`: the v1 hierarchy that
/// carries it or, failing that, the v2 hierarchy if the controller is available there.
pub fn dir_for(controller: &str, relative: &str) -> Result<Option<PathBuf>, CgroupError> {
    let all = hierarchies()?;
    let found = all
        .iter()
        .find(|h| !h.unified && h.has(controller))
        .or_else(|| all.iter().find(|h| h.unified && h.has(controller)));
    Ok(found.map(|h| h.dir_for(relative)))
}

/// The directories a relative cgroups path lands in, one per hierarchy (for cleanup checks).
pub fn all_dirs_for(relative: &str) -> Result<Vec<PathBuf>, CgroupError> {
    Ok(hierarchies()?.iter().map(|h| h.dir_for(relative)).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
1:cpu:/
0::/
";

    #[test]
    fn hybrid_hierarchies() {
        let h = join_hierarchies(CGROUP, MOUNTINFO);
        assert_eq!(h.len(), 4);
        let mem = h.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(
            mem.dir_for("berth-test/x"),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/berth-test/x")
        );
        let sysd = h.iter().find(|h| h.has("name=systemd")).unwrap();
        assert_eq!(sysd.own_dir, Path::new("/sys/fs/cgroup/systemd"));
        let uni = h.iter().find(|h| h.unified).unwrap();
        assert_eq!(uni.own_dir, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn namespaced_mount_root_is_stripped() {
        let mi = "50 1 0:40 /kubepods/pod1 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let cg = "4:memory:/kubepods/pod1/c2\n";
        let h = join_hierarchies(cg, mi);
        assert_eq!(h[0].own_dir, Path::new("/sys/fs/cgroup/memory/c2"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("a\\040b"), "a b");
        assert_eq!(unescape_mountinfo("plain"), "plain");
    }
}
