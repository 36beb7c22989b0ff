//! Path resolution inside a container's filesystem, as the container's own processes would
//! see it, from the host.
//!
//! Every lookup is a walk of descriptors: one component at a time with `fstatat`/`openat`
//! and `O_NOFOLLOW`, never a host path string. A symlink met on the way is read and its target
//! walked in turn from the container's root (absolute) or the current directory (relative), and
//! `..` pops the walk's own stack, which stops at the root: the semantics of `openat2`'s
//! `RESOLVE_IN_ROOT`, so `/etc` in a link is the container's `/etc`, never the host's. The walk
//! differs from `RESOLVE_IN_ROOT` in one way, which is why it is ours: when it reaches the
//! destination of one of the container's volume or bind mounts it continues in the mount's
//! source directory, as the path would inside the container.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use super::FsError;

/// Symlinks followed in one walk before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The container directory of a volume or bind mount, and its source on the host.
#[derive(Debug)]
pub struct FsMount {
    /// Components of the destination inside the container.
    pub dest: Vec<OsString>,
    pub fd: Arc<OwnedFd>,
    pub rw: bool,
    pub source: PathBuf,
}

/// A container's filesystem: its root directory and the mounts laid over it.
#[derive(Debug)]
pub struct ContainerFs {
    root: Arc<OwnedFd>,
    mounts: Vec<FsMount>,
    readonly_root: bool,
}

/// Where a walk stands: the directories from the root down, each with its descriptor
/// (`O_PATH`), so `..` is a pop and never a lookup.
#[derive(Debug, Clone)]
pub struct Pos {
    names: Vec<OsString>,
    fds: Vec<Arc<OwnedFd>>,
}

impl Pos {
    /// The directory the walk is in.
    pub fn dir(&self) -> BorrowedFd<'_> {
        // `fds` always holds the root: `pop` never removes it.
        self.fds[self.fds.len() - 1].as_fd()
    }

    pub fn dir_arc(&self) -> Arc<OwnedFd> {
        self.fds[self.fds.len() - 1].clone()
    }

    fn pop(&mut self) {
        if self.fds.len() > 1 {
            self.fds.pop();
            self.names.pop();
        }
    }

    fn push(&mut self, name: OsString, fd: Arc<OwnedFd>) {
        self.names.push(name);
        self.fds.push(fd);
    }

    /// Components of the directory's path in the container.
    pub fn names(&self) -> &[OsString] {
        &self.names
    }

    /// The directory's path in the container, `/a/b`.
    pub fn path(&self) -> String {
        join_path(&self.names)
    }

    /// The path of `name` in this directory.
    pub fn child_path(&self, name: &OsStr) -> String {
        let mut v = self.names.clone();
        v.push(name.to_os_string());
        join_path(&v)
    }
}

/// `/a/b` from `["a", "b"]`; `/` when empty.
pub fn join_path(names: &[OsString]) -> String {
    let mut s = String::new();
    for n in names {
        s.push('/');
        s.push_str(&n.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// What a walk found: `name` in directory `parent`, or (name None) the directory `parent`
/// itself. `stat` is None when the last component does not exist.
#[derive(Debug)]
pub struct Found {
    pub parent: Pos,
    pub name: Option<OsString>,
    pub stat: Option<FileStat>,
}

impl Found {
    /// The directory holding the object and the name to use with the `*at` calls (`.` for a
    /// directory reached as the walk's position).
    pub fn at(&self) -> (BorrowedFd<'_>, &OsStr) {
        match &self.name {
            Some(n) => (self.parent.dir(), n.as_os_str()),
            None => (self.parent.dir(), OsStr::new(".")),
        }
    }

    pub fn exists(&self) -> bool {
        self.stat.is_some()
    }

    pub fn is_dir(&self) -> bool {
        self.stat.is_some_and(|s| is_dir(&s))
    }

    /// The object's path in the container.
    pub fn path(&self) -> String {
        match &self.name {
            Some(n) => self.parent.child_path(n),
            None => self.parent.path(),
        }
    }

    /// A position inside the object, which must be a directory that exists.
    pub fn into_dir(self) -> Result<Pos, FsError> {
        match self.name {
            None => Ok(self.parent),
            Some(n) => {
                let mut pos = self.parent;
                let fd = open_dir(pos.dir(), &n)
                    .map_err(|e| FsError::io("open", pos.child_path(&n), e))?;
                pos.push(n, Arc::new(fd));
                Ok(pos)
            }
        }
    }
}

/// How a walk treats the last component and missing directories.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk {
    /// Follow a symlink in the last component (a path ending in `/` or `/.` always does).
    pub follow_last: bool,
    /// Create missing directories on the way, owned by this uid/gid (extraction).
    pub create: Option<(u32, u32)>,
}

pub fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

pub fn is_symlink(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits()
}

/// Splits a container path into its components, dropping empty ones and `.` (`..` stays: the
/// walk resolves it).
pub fn components(path: &str) -> Vec<OsString> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(OsString::from)
        .collect()
}

/// Whether a path asks for its last component to be followed (`/x/`, `/x/.`).
pub fn wants_follow(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// Opens directory `name` in `dir` as an `O_PATH` descriptor, refusing a symlink.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl ContainerFs {
    pub fn new(root: OwnedFd, mounts: Vec<FsMount>, readonly_root: bool) -> ContainerFs {
        ContainerFs {
            root: Arc::new(root),
            mounts,
            readonly_root,
        }
    }

    pub fn root(&self) -> Pos {
        Pos {
            names: Vec::new(),
            fds: vec![self.root.clone()],
        }
    }

    /// The mount whose destination is exactly `names` + `name`.
    pub fn mount_at(&self, names: &[OsString], name: &OsStr) -> Option<&FsMount> {
        self.mounts.iter().find(|m| {
            m.dest.len() == names.len() + 1
                && m.dest[..names.len()] == *names
                && m.dest[names.len()] == name
        })
    }

    /// Whether a write at container path `names` is allowed: the innermost mount holding it
    /// decides, else the root filesystem (Docker's `checkWritablePath`).
    pub fn check_writable(&self, names: &[OsString]) -> Result<(), FsError> {
        let holder = self
            .mounts
            .iter()
            .filter(|m| names.len() >= m.dest.len() && names[..m.dest.len()] == m.dest[..])
            .max_by_key(|m| m.dest.len());
        match holder {
            Some(m) if m.rw => Ok(()),
            Some(_) => Err(FsError::ReadOnlyVolume),
            None if self.readonly_root => Err(FsError::ReadOnlyRootfs),
            None => Ok(()),
        }
    }

    /// Resolves `path` (absolute in the container) from the root.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Found, FsError> {
        let w = Walk {
            follow_last: follow_last || wants_follow(path),
            create: None,
        };
        self.walk(&self.root(), components(path), w)
    }

    /// Walks `comps` from `start`. A missing last component is not an error (`stat` None);
    /// a missing directory on the way is, unless `w.create` makes it.
    pub fn walk(&self, start: &Pos, comps: Vec<OsString>, w: Walk) -> Result<Found, FsError> {
        let mut pos = start.clone();
        let mut pending: VecDeque<OsString> = comps.into();
        let mut links = 0usize;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                pos.pop();
                continue;
            }
            if c.is_empty() || c == "." {
                continue;
            }
            let last = pending.iter().all(|p| p.is_empty() || p == ".");
            if let Some(m) = self.mount_at(&pos.names, &c) {
                // A mount covers whatever the root filesystem has here.
                pos.push(c, m.fd.clone());
                continue;
            }
            let st = match fstatat(pos.dir(), c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) if last => {
                    return Ok(Found {
                        parent: pos,
                        name: Some(c),
                        stat: None,
                    })
                }
                Err(Errno::ENOENT) => match w.create {
                    Some((uid, gid)) => {
                        match mkdirat(pos.dir(), c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                            Ok(()) => {
                                fchownat(
                                    pos.dir(),
                                    c.as_os_str(),
                                    Some(Uid::from_raw(uid)),
                                    Some(Gid::from_raw(gid)),
                                    AtFlags::AT_SYMLINK_NOFOLLOW,
                                )
                                .map_err(|e| FsError::io("chown", pos.child_path(&c), e))?;
                            }
                            Err(Errno::EEXIST) => {}
                            Err(e) => return Err(FsError::io("mkdir", pos.child_path(&c), e)),
                        }
                        // Look again: whatever is there now is resolved like anything else.
                        pending.push_front(c);
                        continue;
                    }
                    None => return Err(FsError::Missing(pos.child_path(&c))),
                },
                Err(e) => return Err(FsError::io("stat", pos.child_path(&c), e)),
            };
            if is_symlink(&st) && (!last || w.follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(FsError::Loop(pos.child_path(&c)));
                }
                let target = readlinkat(pos.dir(), c.as_os_str())
                    .map_err(|e| FsError::io("readlink", pos.child_path(&c), e))?;
                let tb = target.as_bytes();
                if tb.first() == Some(&b'/') {
                    pos = self.root();
                }
                for t in tb.split(|b| *b == b'/').rev() {
                    pending.push_front(OsStr::from_bytes(t).to_os_string());
                }
                continue;
            }
            if last && !is_dir(&st) {
                return Ok(Found {
                    parent: pos,
                    name: Some(c),
                    stat: Some(st),
                });
            }
            if !is_dir(&st) {
                return Err(FsError::Missing(pos.child_path(&c)));
            }
            let fd = match open_dir(pos.dir(), &c) {
                Ok(fd) => fd,
                // Replaced by something else since the stat: resolve it again.
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    pending.push_front(c);
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(FsError::Loop(pos.path()));
                    }
                    continue;
                }
                Err(Errno::ENOENT) => return Err(FsError::Missing(pos.child_path(&c))),
                Err(e) => return Err(FsError::io("open", pos.child_path(&c), e)),
            };
            pos.push(c, Arc::new(fd));
        }
        let st = fstat(pos.dir()).map_err(|e| FsError::io("stat", pos.path(), e))?;
        Ok(Found {
            parent: pos,
            name: None,
            stat: Some(st),
        })
    }

    /// Where a symlink at `found` finally leads, as a container path: Docker's `linkTarget`,
    /// evaluated as far as possible when the link is broken.
    pub fn link_target(&self, found: &Found) -> String {
        let w = Walk {
            follow_last: true,
            create: None,
        };
        let comps = match &found.name {
            Some(n) => {
                let mut v = found.parent.names.clone();
                v.push(n.clone());
                v
            }
            None => found.parent.names.clone(),
        };
        match self.walk(&self.root(), comps, w) {
            Ok(f) => f.path(),
            Err(FsError::Missing(p)) => p,
            Err(_) => found.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn open_root(p: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside").unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("rel")).unwrap();
        symlink("/abs/passwd", root.join("chain")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let fs = ContainerFs::new(open_root(&root), Vec::new(), false);

        for p in ["/abs/passwd", "/rel/passwd", "/../../etc/passwd", "/chain"] {
            let f = fs.resolve(p, true).unwrap();
            assert_eq!(f.path(), "/etc/passwd", "{p}");
            let st = f.stat.unwrap();
            assert_eq!(st.st_size, 6, "{p}");
        }
        // Not following the last component gives the link itself.
        let f = fs.resolve("/chain", false).unwrap();
        assert!(is_symlink(&f.stat.unwrap()));
        assert_eq!(fs.link_target(&f), "/etc/passwd");
        // A trailing slash follows.
        assert!(fs.resolve("/abs/", false).unwrap().is_dir());
        assert!(matches!(
            fs.resolve("/loop/x", false),
            Err(FsError::Loop(_))
        ));
        assert!(matches!(
            fs.resolve("/nope/x", false),
            Err(FsError::Missing(_))
        ));
        let missing = fs.resolve("/etc/nope", false).unwrap();
        assert!(!missing.exists());
        assert_eq!(fs.resolve("/", false).unwrap().path(), "/");
    }

    #[test]
    fn mounts_redirect_and_decide_writability() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("f"), "vol").unwrap();
        symlink("/data/f", root.join("tovol")).unwrap();
        let m = FsMount {
            dest: components("/data"),
            fd: Arc::new(open_root(&vol)),
            rw: false,
            source: vol.clone(),
        };
        let fs = ContainerFs::new(open_root(&root), vec![m], true);
        let f = fs.resolve("/tovol", true).unwrap();
        assert_eq!(f.path(), "/data/f");
        assert_eq!(f.stat.unwrap().st_size, 3);
        assert!(matches!(
            fs.check_writable(&components("/data/x")),
            Err(FsError::ReadOnlyVolume)
        ));
        assert!(matches!(
            fs.check_writable(&components("/etc")),
            Err(FsError::ReadOnlyRootfs)
        ));
        // `..` out of a mount goes back to the container's tree, not the source's parent.
        let f = fs.resolve("/data/../tovol", false).unwrap();
        assert_eq!(f.path(), "/tovol");
    }
}
