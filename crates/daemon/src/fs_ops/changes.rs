//! `docker diff`: what a container changed, read from its overlay upper directory.
//!
//! Everything in the upper directory was written by the container. An entry is Added when no
//! lower layer has that path, Modified when one does; a whiteout (0/0 character device) is a
//! Deleted path and an opaque directory (`trusted.overlay.opaque=y`) is reported Deleted too,
//! then its content Added, as Docker's overlay driver reports them. The parent of an added or
//! deleted path is Modified. A copied-up directory with the lower one's owner and mode is
//! Modified when something below it changed, and left out otherwise.
//! Empty mount points the runtime created (`/proc`, `/etc/hosts`…) are not the user's changes
//! and are left out, as Docker's init layer hides them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};

use super::resolve::{is_dir, join_path, open_dir};
use super::FsError;

/// Docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// Paths the runtime creates as mount points; an empty one in the upper dir is not a change.
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/.dockerenv",
];

fn open_root(p: &Path) -> Result<OwnedFd, FsError> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::io("open", p.display(), e))
}

fn is_whiteout(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits() && st.st_rdev == 0
}

/// Reads `trusted.overlay.opaque` of `name` in `dir` (through /proc, as xattr calls take no
/// dirfd for a name; the component was just opened without following).
fn is_opaque(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    let Ok(fd) = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    let n = super::sys::fgetxattr(fd.as_fd(), c"trusted.overlay.opaque", &mut buf);
    matches!(n, Some(1) if buf[0] == b'y')
}

/// Where `comps` is in the lower layers (top first): its stat in the first layer that has it,
/// None when no layer does or a whiteout above hides it.
fn lower_stat(lowers: &[OwnedFd], comps: &[OsString]) -> Option<FileStat> {
    'layers: for root in lowers {
        let (last, dirs) = comps.split_last()?;
        let mut cur: Option<OwnedFd> = None;
        for c in dirs {
            let at = cur.as_ref().map_or(root.as_fd(), |f| f.as_fd());
            match fstatat(at, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_whiteout(&st) => return None,
                Ok(st) if is_dir(&st) => {}
                _ => continue 'layers,
            }
            match open_dir(at, c) {
                Ok(fd) => cur = Some(fd),
                Err(_) => continue 'layers,
            }
        }
        let at = cur.as_ref().map_or(root.as_fd(), |f| f.as_fd());
        match fstatat(at, last.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_whiteout(&st) => return None,
            Ok(st) => return Some(st),
            Err(_) => continue,
        }
    }
    None
}

struct Scan<'a> {
    lowers: &'a [OwnedFd],
    /// Container paths that are mount points besides the standard ones.
    mount_points: &'a [String],
    out: BTreeMap<String, Kind>,
}

impl Scan<'_> {
    fn record(&mut self, comps: &[OsString], kind: Kind) {
        let path = join_path(comps);
        if kind != Kind::Modified {
            if let Some((_, parent)) = comps.split_last() {
                if !parent.is_empty() {
                    self.out.entry(join_path(parent)).or_insert(Kind::Modified);
                }
            }
        }
        self.out.insert(path, kind);
    }

    fn is_mount_point(&self, path: &str) -> bool {
        RUNTIME_MOUNT_POINTS.contains(&path) || self.mount_points.iter().any(|m| m == path)
    }

    fn visit_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        comps: &[OsString],
        in_opaque: bool,
    ) -> Result<(), FsError> {
        let shown = || join_path(comps);
        let fd = openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError::io("open", shown(), e))?;
        let mut d =
            nix::dir::Dir::from_fd(fd).map_err(|e| FsError::io("read directory", shown(), e))?;
        let mut names = Vec::new();
        for ent in d.iter() {
            let ent = ent.map_err(|e| FsError::io("read directory", shown(), e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        for name in names {
            let mut cp = comps.to_vec();
            cp.push(name.clone());
            let st = match fstatat(&d, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(FsError::io("stat", join_path(&cp), e)),
            };
            if is_whiteout(&st) {
                self.record(&cp, Kind::Deleted);
                continue;
            }
            let dir_here = is_dir(&st);
            let path = join_path(&cp);
            let empty = if dir_here {
                dir_is_empty(d.as_fd(), &name)
            } else {
                st.st_size == 0
            };
            let skip = empty && self.is_mount_point(&path);
            let opaque = dir_here && is_opaque(d.as_fd(), &name);
            let mut tentative = false;
            if opaque {
                self.record(&cp, Kind::Deleted);
            } else if !skip {
                let lower = if in_opaque {
                    None
                } else {
                    lower_stat(self.lowers, &cp)
                };
                match lower {
                    None => self.record(&cp, Kind::Added),
                    Some(l) if dir_here && is_dir(&l) => {
                        let same_owner_mode = l.st_mode == st.st_mode
                            && l.st_uid == st.st_uid
                            && l.st_gid == st.st_gid;
                        if !same_owner_mode {
                            self.record(&cp, Kind::Modified);
                        } else {
                            // Copied up with the same owner and mode: a change when something
                            // below changed, not when the runtime's mount points are all it
                            // holds. (Its times are no guide: copy-up keeps the lower mtime,
                            // and second-granular times often match.)
                            tentative = true;
                        }
                    }
                    Some(_) => self.record(&cp, Kind::Modified),
                }
            }
            if dir_here {
                let sub =
                    open_dir(d.as_fd(), &name).map_err(|e| FsError::io("open", path.clone(), e))?;
                self.visit_dir(sub.as_fd(), &cp, in_opaque || opaque)?;
                let prefix = format!("{path}/");
                let below = self
                    .out
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix));
                if tentative && below {
                    self.record(&cp, Kind::Modified);
                }
            }
        }
        Ok(())
    }
}

fn dir_is_empty(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    let Ok(fd) = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let Ok(mut d) = nix::dir::Dir::from_fd(fd) else {
        return false;
    };
    let empty = d.iter().flatten().all(|e| {
        let n = e.file_name().to_bytes();
        n == b"." || n == b".."
    });
    empty
}

/// The changes in `upper` over `lowers` (top first), sorted by path. `mount_points` are the
/// container's volume and bind destinations.
pub fn changes(
    upper: &Path,
    lowers: &[&Path],
    mount_points: &[String],
) -> Result<Vec<(String, Kind)>, FsError> {
    let up = open_root(upper)?;
    let lowers = lowers
        .iter()
        .map(|p| open_root(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scan = Scan {
        lowers: &lowers,
        mount_points,
        out: BTreeMap::new(),
    };
    scan.visit_dir(up.as_fd(), &[], false)?;
    Ok(scan.out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_modified_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        let upper = tmp.path().join("upper");
        for d in ["etc", "bin", "proc"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("bin/rmme"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("bin")).unwrap();
        std::fs::create_dir_all(upper.join("new/sub")).unwrap();
        std::fs::create_dir_all(upper.join("sys")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.join("new/sub/f"), "f").unwrap();
        // A whiteout: the 0/0 character device overlay leaves for a deleted file.
        nix::sys::stat::mknod(&upper.join("bin/rmme"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        // The copied-up /etc differs from the lower one (overlay's copy-up and the new file
        // changed its mtime); /bin looks the same but holds a deletion.
        let old = nix::sys::time::TimeVal::new(1000, 0);
        nix::sys::stat::utimes(&lower.join("etc"), &old, &old).unwrap();
        let got = changes(&upper, &[lower.as_path()], &[]).unwrap();
        let got: Vec<(&str, Kind)> = got.iter().map(|(p, k)| (p.as_str(), *k)).collect();
        assert_eq!(
            got,
            vec![
                ("/bin", Kind::Modified),
                ("/bin/rmme", Kind::Deleted),
                ("/etc", Kind::Modified),
                ("/etc/passwd", Kind::Modified),
                ("/new", Kind::Added),
                ("/new/sub", Kind::Added),
                ("/new/sub/f", Kind::Added),
            ]
        );
    }
}
