//! Tar streams out of and into a container's filesystem, descriptor by descriptor.
//!
//! Out ([`TarWriter`]): a walk of directory descriptors (`openat` with `O_NOFOLLOW`), so a
//! process in a running container that swaps a directory for a symlink mid-copy cannot make
//! the daemon read a host file (the `docker cp` race of CVE-2018-15664). Hard links inside the
//! tree become link entries; sockets are skipped, as Docker does.
//!
//! In ([`extract`]): each entry's name is checked first (relative, no `..`), its parent
//! directories are walked inside the container (symlinks resolve in the container's root,
//! missing directories are created), and the last component is created with the `*at` calls
//! that never follow it. Symlinks and hard links whose targets would leave the extraction
//! directory are refused, as Docker's untar does; device nodes are refused outright.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstat, fstatat, futimens, mkdirat, utimensat, FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};

use super::resolve::{is_dir, ContainerFs, Pos, Walk};
use super::FsError;

fn file_type(st: &FileStat) -> u32 {
    st.st_mode & SFlag::S_IFMT.bits()
}

/// Writes a tar of container objects, following nothing.
pub struct TarWriter<'a, W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files → the first name written.
    links: HashMap<(u64, u64), String>,
    /// Cross into the container's volume and bind mounts (`docker cp`); export does not.
    fs: Option<&'a ContainerFs>,
}

impl<W: Write> std::fmt::Debug for TarWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarWriter").finish_non_exhaustive()
    }
}

impl<'a, W: Write> TarWriter<'a, W> {
    pub fn new(w: W, fs: Option<&'a ContainerFs>) -> Self {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        TarWriter {
            b,
            links: HashMap::new(),
            fs,
        }
    }

    /// Writes the end of the archive and returns the writer.
    pub fn finish(self) -> Result<W, FsError> {
        self.b.into_inner().map_err(FsError::Write)
    }

    /// Adds `name` in `dir` (`.` for `dir` itself) as `tar_name`, and everything under it when
    /// it is a directory. `cpath` is its path in the container (for mounts and messages).
    pub fn add(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        tar_name: &str,
        cpath: &[OsString],
    ) -> Result<(), FsError> {
        let shown = || super::resolve::join_path(cpath);
        let mut h = tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        let ft = file_type(st);
        if ft == SFlag::S_IFDIR.bits() {
            h.set_entry_type(tar::EntryType::Directory);
            if !tar_name.is_empty() {
                self.b
                    .append_data(&mut h, tar_name, io::empty())
                    .map_err(FsError::Write)?;
            }
            return self.add_children(dir, name, tar_name, cpath);
        }
        if ft == SFlag::S_IFREG.bits() {
            if st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    let first = first.clone();
                    return self
                        .b
                        .append_link(&mut h, tar_name, first)
                        .map_err(FsError::Write);
                }
                self.links.insert(key, tar_name.to_string());
            }
            // O_NONBLOCK: if the file became a fifo since the stat, the open must not hang.
            let fd = match openat(
                dir,
                name,
                OFlag::O_RDONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_NONBLOCK
                    | OFlag::O_CLOEXEC
                    | OFlag::O_NOCTTY,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Gone or replaced since the directory was read: as if it had not been there.
                Err(Errno::ENOENT | Errno::ELOOP) => return Ok(()),
                Err(e) => return Err(FsError::io("open", shown(), e)),
            };
            let st = fstat(&fd).map_err(|e| FsError::io("stat", shown(), e))?;
            if file_type(&st) != SFlag::S_IFREG.bits() {
                return Ok(());
            }
            let size = u64::try_from(st.st_size).unwrap_or(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(size);
            // Exactly `size` bytes whatever happens to the file meanwhile, or the archive
            // would be corrupt: cut a grown file, pad a shrunk one.
            let data = std::fs::File::from(fd)
                .take(size)
                .chain(io::repeat(0))
                .take(size);
            return self
                .b
                .append_data(&mut h, tar_name, data)
                .map_err(FsError::Write);
        }
        if ft == SFlag::S_IFLNK.bits() {
            let target = match readlinkat(dir, name) {
                Ok(t) => t,
                Err(Errno::ENOENT | Errno::EINVAL) => return Ok(()),
                Err(e) => return Err(FsError::io("readlink", shown(), e)),
            };
            h.set_entry_type(tar::EntryType::Symlink);
            return self
                .b
                .append_link(&mut h, tar_name, target)
                .map_err(FsError::Write);
        }
        let kind = if ft == SFlag::S_IFIFO.bits() {
            tar::EntryType::Fifo
        } else if ft == SFlag::S_IFCHR.bits() {
            tar::EntryType::Char
        } else if ft == SFlag::S_IFBLK.bits() {
            tar::EntryType::Block
        } else {
            // Sockets have no tar form.
            return Ok(());
        };
        h.set_entry_type(kind);
        if kind != tar::EntryType::Fifo {
            let (major, minor) = (
                nix::sys::stat::major(st.st_rdev),
                nix::sys::stat::minor(st.st_rdev),
            );
            h.set_device_major(u32::try_from(major).unwrap_or(0))
                .map_err(FsError::Write)?;
            h.set_device_minor(u32::try_from(minor).unwrap_or(0))
                .map_err(FsError::Write)?;
        }
        self.b
            .append_data(&mut h, tar_name, io::empty())
            .map_err(FsError::Write)
    }

    fn add_children(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        tar_name: &str,
        cpath: &[OsString],
    ) -> Result<(), FsError> {
        let shown = || super::resolve::join_path(cpath);
        let fd = match openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(FsError::io("open directory", shown(), e)),
        };
        let mut d =
            nix::dir::Dir::from_fd(fd).map_err(|e| FsError::io("read directory", shown(), e))?;
        let mut names: Vec<OsString> = Vec::new();
        for ent in d.iter() {
            let ent = ent.map_err(|e| FsError::io("read directory", shown(), e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for child in names {
            let mut cp = cpath.to_vec();
            cp.push(child.clone());
            let child_tar = if tar_name.is_empty() {
                child.to_string_lossy().into_owned()
            } else {
                format!("{tar_name}/{}", child.to_string_lossy())
            };
            if let Some(m) = self.fs.and_then(|fs| fs.mount_at(cpath, &child)) {
                let mfd = m.fd.clone();
                let st = fstat(&mfd).map_err(|e| FsError::io("stat", m.source.display(), e))?;
                self.add(mfd.as_fd(), OsStr::new("."), &st, &child_tar, &cp)?;
                continue;
            }
            let st = match fstatat(&d, child.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(FsError::io("stat", super::resolve::join_path(&cp), e)),
            };
            self.add(d.as_fd(), &child, &st, &child_tar, &cp)?;
        }
        Ok(())
    }
}

/// How an archive is extracted (`PUT /containers/{id}/archive`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner of everything extracted (`copyUIDGID` with a container user); else the owners
    /// the archive records.
    pub chown: Option<(u32, u32)>,
}

/// An entry name as components below the extraction directory; refuses absolute names and
/// `..`. Empty for the extraction directory itself (`./`).
pub fn entry_components(raw: &[u8]) -> Result<Vec<OsString>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains \"..\""),
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Whether a relative symlink target, taken from the entry's directory (`depth` components
/// below the extraction directory), stays inside it (Docker's breakout check).
pub fn link_stays_inside(depth: usize, target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        // Absolute targets resolve in the container's root, where the walk keeps them.
        return true;
    }
    let mut d = depth;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => match d.checked_sub(1) {
                Some(n) => d = n,
                None => return false,
            },
            _ => d += 1,
        }
    }
    true
}

/// Removes `name` in `dir` whatever it is, directories with their content; descriptors only.
fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    for n in names {
        remove_all_at(d.as_fd(), &n)?;
    }
    drop(d);
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Owner, mode and times an entry carries.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
}

/// A numeric header field, read as Go's archive/tar does: blank (all NUL or spaces) is 0.
fn lenient(v: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match v {
        Ok(n) => Ok(n),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(e),
    }
}

fn entry_meta<R: Read>(e: &mut tar::Entry<'_, R>, chown: Option<(u32, u32)>) -> io::Result<Meta> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let h = e.header();
    let old = h.as_old();
    let mut uid = lenient(h.uid(), &old.uid)?;
    let mut gid = lenient(h.gid(), &old.gid)?;
    let mode = u32::try_from(lenient(h.mode().map(u64::from), &old.mode)? & 0o7777)
        .map_err(|_| bad("mode out of range"))?;
    let mut mtime = lenient(h.mtime(), &old.mtime)?;
    // PAX records override the header (large ids, times the octal fields cannot hold).
    if let Some(pax) = e.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                continue;
            };
            let num = |v: &str| -> io::Result<u64> {
                let int = v.split('.').next().unwrap_or(v);
                int.parse().map_err(|_| bad("bad number in a pax record"))
            };
            match k {
                "uid" => uid = num(v)?,
                "gid" => gid = num(v)?,
                "mtime" => mtime = num(v)?,
                _ => {}
            }
        }
    }
    let (uid, gid) = match chown {
        Some(o) => o,
        None => (
            u32::try_from(uid).map_err(|_| bad("uid out of range"))?,
            u32::try_from(gid).map_err(|_| bad("gid out of range"))?,
        ),
    };
    Ok(Meta {
        uid,
        gid,
        mode,
        mtime: TimeSpec::new(
            i64::try_from(mtime).map_err(|_| bad("mtime out of range"))?,
            0,
        ),
    })
}

/// Extracts the tar `r` into the directory at `dest`. Returns the number of entries applied.
pub fn extract(
    fs: &ContainerFs,
    dest: &Pos,
    r: impl Read,
    opts: ExtractOptions,
) -> Result<u64, FsError> {
    let mut ar = tar::Archive::new(r);
    let owner = opts.chown.unwrap_or((0, 0));
    let mut applied = 0u64;
    // Parent of the previous entry: archives list siblings together, so most entries reuse it.
    let mut last_parent: Option<(Vec<OsString>, Pos)> = None;
    // Directory mtimes are set last: creating their content changes them.
    let mut dir_times: Vec<(Arc<OwnedFd>, OsString, TimeSpec)> = Vec::new();
    for entry in ar.entries().map_err(FsError::Archive)? {
        let mut entry = entry.map_err(FsError::Archive)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let bad = |reason: String| FsError::BadEntry {
            entry: shown.clone(),
            reason,
        };
        let mut comps = entry_components(&raw).map_err(|r| bad(r.to_string()))?;
        let meta = entry_meta(&mut entry, opts.chown).map_err(FsError::Archive)?;
        let Some(name) = comps.pop() else {
            // `./`: the extraction directory itself, which exists; nothing to create.
            continue;
        };
        let parent = match &last_parent {
            Some((c, p)) if *c == comps => p.clone(),
            _ => {
                let w = Walk {
                    follow_last: true,
                    create: Some(owner),
                };
                let found = fs.walk(dest, comps.clone(), w)?;
                if !found.is_dir() {
                    return Err(bad("a parent directory is not a directory".into()));
                }
                let p = found.into_dir()?;
                last_parent = Some((comps.clone(), p.clone()));
                p
            }
        };
        let path = parent.child_path(&name);
        let dir = parent.dir();
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |e: Errno| FsError::io(op, path, e)
        };
        if fs.mount_at(parent.names(), &name).is_some() {
            if kind == tar::EntryType::Directory {
                continue;
            }
            return Err(bad(format!("cannot replace mount point {path}")));
        }
        let existing = match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(io_err("stat")(e)),
        };
        let existing_dir = existing.as_ref().is_some_and(is_dir);
        if kind == tar::EntryType::Directory {
            if existing.is_some() && !existing_dir {
                if opts.no_overwrite_dir_non_dir {
                    return Err(FsError::OverwriteNonDir { path, entry: shown });
                }
                remove_all_at(dir, &name).map_err(io_err("remove"))?;
            }
            if !existing_dir {
                mkdirat(dir, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(io_err("mkdir"))?;
            }
            fchownat(
                dir,
                name.as_os_str(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(io_err("chown"))?;
            let dfd = openat(
                dir,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("open"))?;
            fchmod(&dfd, Mode::from_bits_truncate(meta.mode)).map_err(io_err("chmod"))?;
            dir_times.push((parent.dir_arc(), name, meta.mtime));
            applied += 1;
            continue;
        }
        if existing_dir {
            if opts.no_overwrite_dir_non_dir {
                return Err(FsError::OverwriteDir { path, entry: shown });
            }
            remove_all_at(dir, &name).map_err(io_err("remove"))?;
        } else if existing.is_some() {
            match unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(io_err("remove")(e)),
            }
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = openat(
                    dir,
                    name.as_os_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(io_err("create"))?;
                let mut f = std::fs::File::from(fd);
                io::copy(&mut entry, &mut f).map_err(|e| FsError::Io {
                    op: "write",
                    path: path.clone(),
                    source: e,
                })?;
                fchown(
                    &f,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                )
                .map_err(io_err("chown"))?;
                fchmod(&f, Mode::from_bits_truncate(meta.mode)).map_err(io_err("chmod"))?;
                futimens(&f, &meta.mtime, &meta.mtime).map_err(io_err("set times"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("symlink without a target".into()))?
                    .into_owned();
                if !link_stays_inside(comps.len(), &target) {
                    return Err(bad(format!(
                        "invalid symlink {:?} -> {:?}",
                        shown,
                        String::from_utf8_lossy(&target)
                    )));
                }
                symlinkat(OsStr::from_bytes(&target), dir, name.as_os_str())
                    .map_err(io_err("symlink"))?;
                fchownat(
                    dir,
                    name.as_os_str(),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(io_err("chown"))?;
                utimensat(
                    dir,
                    name.as_os_str(),
                    &meta.mtime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(io_err("set times"))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("hard link without a target".into()))?
                    .into_owned();
                let invalid = || {
                    bad(format!(
                        "invalid hardlink {:?} -> {:?}",
                        shown,
                        String::from_utf8_lossy(&target)
                    ))
                };
                let mut tcomps = entry_components(&target).map_err(|_| invalid())?;
                let Some(tname) = tcomps.pop() else {
                    return Err(invalid());
                };
                let w = Walk {
                    follow_last: true,
                    create: None,
                };
                let tdir = fs.walk(dest, tcomps, w)?;
                if !tdir.is_dir() {
                    return Err(invalid());
                }
                let tdir = tdir.into_dir()?;
                match fstatat(tdir.dir(), tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if !is_dir(&st) => {}
                    Ok(_) => return Err(invalid()),
                    Err(Errno::ENOENT) => return Err(invalid()),
                    Err(e) => return Err(io_err("stat")(e)),
                }
                linkat(
                    tdir.dir(),
                    tname.as_os_str(),
                    dir,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(io_err("link"))?;
            }
            tar::EntryType::Fifo => {
                mkfifoat(dir, name.as_os_str(), Mode::from_bits_truncate(0o600))
                    .map_err(io_err("mkfifo"))?;
                fchownat(
                    dir,
                    name.as_os_str(),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(io_err("chown"))?;
                nix::sys::stat::fchmodat(
                    dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(meta.mode),
                    // Just created by us as a fifo: following is moot.
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(io_err("chmod"))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(bad("device nodes cannot be copied into a container".into()));
            }
            other => return Err(bad(format!("unsupported entry type {other:?}"))),
        }
        applied += 1;
    }
    for (dir, name, t) in dir_times.iter().rev() {
        // The directory may have been replaced by a later entry; that is not an error.
        let _ = utimensat(
            dir.as_fd(),
            name.as_os_str(),
            t,
            t,
            UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let s = |v: Vec<OsString>| {
            v.iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(s(entry_components(b"./a/b/").unwrap()), "a/b");
        assert_eq!(s(entry_components(b"a//./c").unwrap()), "a/c");
        assert!(entry_components(b"./").unwrap().is_empty());
        assert!(entry_components(b"../x").is_err());
        assert!(entry_components(b"a/../../x").is_err());
        assert!(entry_components(b"a/..").is_err());
        assert!(entry_components(b"/etc/passwd").is_err());
    }

    #[test]
    fn symlink_breakouts() {
        assert!(link_stays_inside(0, b"/etc/passwd"));
        assert!(link_stays_inside(0, b"a/b"));
        assert!(link_stays_inside(1, b"../x"));
        assert!(!link_stays_inside(0, b"../x"));
        assert!(!link_stays_inside(1, b"a/../../../x"));
        assert!(link_stays_inside(2, b"./../.."));
    }
}
