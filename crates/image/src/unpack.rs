//! Layer unpacking: a (compressed) layer tar streamed into a snapshot directory.
//!
//! The stream is decompressed, hashed as it is read (the hash of the uncompressed tar is the
//! layer's DiffID) and applied entry by entry. The tar crate only parses; every filesystem
//! write is ours, made relative to a directory descriptor opened with `openat2(2)` and
//! `RESOLVE_IN_ROOT`, so a symlink planted by an earlier entry (absolute or relative) resolves
//! inside the layer root and can never redirect a write outside it. The last component of each
//! entry is created with the `*at` calls that do not follow it (`O_NOFOLLOW|O_EXCL`, `mkdirat`,
//! `symlinkat`, `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! OCI whiteouts become overlayfs ones: `.wh.NAME` a 0/0 character device `NAME`, and
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory. Ownership, modes,
//! mtimes (directories last, since their content changes them), PAX `SCHILY.xattr.*`
//! attributes, device nodes and fifos are preserved.

use crate::digest::{Digest, Hasher};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Guesses the compression from the first bytes of a blob (gzip and zstd magic numbers;
    /// anything else is taken as a plain tar).
    pub fn detect(first_bytes: &[u8]) -> Compression {
        if first_bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression an OCI or Docker layer media type names; None for a media type that is
    /// not a layer tar.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        let mt = mt.split(';').next().unwrap_or("").trim();
        if mt.ends_with("tar+gzip") || mt.ends_with("tar.gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("tar+zstd") || mt.ends_with("tar.zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt == "application/x-tar" {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// What unpacking a layer produced.
#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of uncompressed tar read.
    pub uncompressed_size: u64,
    /// Tar entries applied (including whiteouts).
    pub entries: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("open layer root {path}: {source}")]
    Root { path: PathBuf, source: io::Error },
    #[error("read layer stream: {0}")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("layer entry {path:?}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
}

/// Counts and hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Unpacks a layer (compressed per `c`, or auto-detected when None) into `dest` (an empty
/// snapshot dir), turning OCI whiteouts into overlayfs ones; returns the layer's DiffID (digest
/// of the uncompressed tar) and the number of bytes unpacked.
pub fn unpack_layer(
    mut r: impl Read,
    c: Option<Compression>,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Root {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;

    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(UnpackError::Read(e)),
        }
    }
    let c = c.unwrap_or_else(|| Compression::detect(&head[..got]));
    let stream = io::Cursor::new(head[..got].to_vec()).chain(r);
    let decompressed: Box<dyn Read> = match c {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(stream).map_err(UnpackError::Read)?)
        }
    };
    // Decompressors work best on large buffers; the tar parser reads in small pieces.
    let hashing = HashingReader {
        inner: io::BufReader::with_capacity(1 << 20, decompressed),
        hasher: Hasher::new(),
        n: 0,
    };
    let mut archive = tar::Archive::new(hashing);
    let mut unpacker = Unpacker {
        root,
        dir_times: Vec::new(),
    };
    let mut entries = 0u64;
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let entry = entry.map_err(UnpackError::Read)?;
        if unpacker.apply(entry)? {
            entries += 1;
        }
    }
    unpacker.finish_dir_times()?;
    let mut hashing = archive.into_inner();
    // The end-of-archive blocks and any padding after them are part of the DiffID.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(UnpackStats {
        diff_id: hashing.hasher.finish(),
        uncompressed_size: hashing.n,
        entries,
    })
}

/// Splits a tar path into clean components: leading "/" and "./" dropped, "." skipped, ".."
/// allowed only while it stays inside the root.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<OsString>, &'static str> {
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path escapes the layer root");
                }
            }
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

fn rel_path(comps: &[OsString]) -> PathBuf {
    if comps.is_empty() {
        PathBuf::from(".")
    } else {
        comps.iter().collect()
    }
}

/// Opens directory `comps` (resolved inside `root`, symlinks included) for `*at` calls.
pub(crate) fn open_dir_in_root(root: BorrowedFd<'_>, comps: &[OsString]) -> nix::Result<OwnedFd> {
    openat2(
        root,
        &rel_path(comps),
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// Opens directory `comps` inside `root`, creating missing directories (mode 0755) as tar
/// does for entries whose parents are not in the archive. A dangling symlink on the way (say
/// `evil -> /etc` in an empty layer) has its target created inside the root, where
/// `RESOLVE_IN_ROOT` resolves it.
fn ensure_dir(root: BorrowedFd<'_>, comps: &[OsString]) -> nix::Result<OwnedFd> {
    ensure_dir_depth(root, comps, 0)
}

/// Symlinks followed while creating one parent, as the kernel's limit (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

fn ensure_dir_depth(
    root: BorrowedFd<'_>,
    comps: &[OsString],
    depth: usize,
) -> nix::Result<OwnedFd> {
    match open_dir_in_root(root, comps) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    if depth > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    let mut fd = open_dir_in_root(root, &[])?;
    for i in 0..comps.len() {
        fd = match open_dir_in_root(root, &comps[..=i]) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                let name = comps[i].as_os_str();
                match nix::sys::stat::mkdirat(&fd, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        // A dangling symlink (readlinkat fails with EINVAL for anything else).
                        let target = nix::fcntl::readlinkat(&fd, name)?;
                        let target = target.as_bytes();
                        let mut resolved: Vec<OsString> = if target.starts_with(b"/") {
                            Vec::new()
                        } else {
                            comps[..i].to_vec()
                        };
                        for c in target.split(|b| *b == b'/') {
                            match c {
                                b"" | b"." => {}
                                // ".." at the root stays at the root, as RESOLVE_IN_ROOT does.
                                b".." => {
                                    resolved.pop();
                                }
                                c => resolved.push(OsString::from_vec(c.to_vec())),
                            }
                        }
                        ensure_dir_depth(root, &resolved, depth + 1)?;
                    }
                    Err(e) => return Err(e),
                }
                open_dir_in_root(root, &comps[..=i])?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(fd)
}

/// "/proc/self/fd/<dir>/<name>": a path for the calls that have no `*at` form (the l*xattr
/// family); the final component is not followed by them.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// Removes whatever is at `name` in `dir` (a directory recursively), if anything.
fn remove_existing(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            std::fs::remove_dir_all(proc_path(dir, name))
        }
        Ok(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(Into::into),
    }
}

fn is_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    matches!(fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Ownership, mode, time and xattrs of one entry (PAX records override the ustar header).
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    /// Directory mtimes, applied after everything else (writing into a directory changes it).
    dir_times: Vec<(Vec<OsString>, TimeSpec)>,
}

/// A numeric header field; one left empty (all NULs or spaces, as some writers do) reads as
/// zero, as GNU tar and Go's archive/tar take it.
fn lenient(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

fn parse_mtime(s: &str) -> Option<TimeSpec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    let mut scale = 100_000_000;
    for b in frac.bytes().take(9) {
        if !b.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(TimeSpec::new(secs, nanos))
}

impl Unpacker {
    /// Applies one entry; false when it was skipped (metadata-only entries).
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<bool, UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(false);
        }
        let invalid = |reason: &str| UnpackError::Invalid {
            path: shown.clone(),
            reason: reason.to_string(),
        };
        let io_err = |op: &'static str, source: io::Error| UnpackError::Io {
            path: shown.clone(),
            op,
            source,
        };
        let mut comps = normalize(&raw).map_err(invalid)?;
        let meta = self
            .meta(&mut entry)
            .map_err(|e| io_err("read header", e))?;

        let Some(name) = comps.pop() else {
            // The layer root itself ("./"): only its metadata can be applied.
            if kind != tar::EntryType::Directory {
                return Err(invalid("entry for the layer root is not a directory"));
            }
            let root = self.root.as_fd();
            self.set_meta(root, OsStr::new("."), &meta, false)
                .map_err(|e| io_err("set metadata", e))?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(true);
        };
        let parent_comps = comps;
        let parent = ensure_dir(self.root.as_fd(), &parent_comps)
            .map_err(|e| io_err("open parent directory", e.into()))?;
        let parent = parent.as_fd();
        let name_bytes = name.as_bytes();

        // Whiteouts.
        if name_bytes == b".wh..wh..opq" {
            let dir = std::fs::File::from(
                parent
                    .try_clone_to_owned()
                    .map_err(|e| io_err("open opaque directory", e))?,
            );
            xattr::FileExt::set_xattr(&dir, "trusted.overlay.opaque", b"y")
                .map_err(|e| io_err("set trusted.overlay.opaque", e))?;
            return Ok(true);
        }
        if name_bytes.starts_with(b".wh..wh.") {
            // aufs metadata (hard link directories and the like): nothing to apply.
            return Ok(false);
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(invalid("whiteout names no file"));
            }
            let hidden = OsStr::from_bytes(hidden);
            remove_existing(parent, hidden).map_err(|e| io_err("remove whited-out entry", e))?;
            mknodat(parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| io_err("create whiteout device", e.into()))?;
            return Ok(true);
        }

        match kind {
            tar::EntryType::Directory => {
                if !is_dir_at(parent, &name) {
                    remove_existing(parent, &name).map_err(|e| io_err("replace entry", e))?;
                    nix::sys::stat::mkdirat(
                        parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| io_err("create directory", e.into()))?;
                }
                self.set_meta(parent, &name, &meta, false)
                    .map_err(|e| io_err("set metadata", e))?;
                let mut full = parent_comps;
                full.push(name);
                self.dir_times.push((full, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let flags = OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let mode = Mode::from_bits_truncate(0o600);
                let fd = match openat(parent, name.as_os_str(), flags, mode) {
                    Err(Errno::EEXIST) => {
                        remove_existing(parent, &name).map_err(|e| io_err("replace entry", e))?;
                        openat(parent, name.as_os_str(), flags, mode)
                    }
                    other => other,
                }
                .map_err(|e| io_err("create file", e.into()))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file).map_err(|e| io_err("copy file data", e))?;
                fchown(
                    &file,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                )
                .map_err(|e| io_err("chown", e.into()))?;
                fchmod(&file, Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| io_err("chmod", e.into()))?;
                for (k, v) in &meta.xattrs {
                    xattr::FileExt::set_xattr(&file, k, v).map_err(|e| io_err("set xattr", e))?;
                }
                futimens(&file, &meta.mtime, &meta.mtime)
                    .map_err(|e| io_err("set mtime", e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid("symlink without a target"))?
                    .into_owned();
                remove_existing(parent, &name).map_err(|e| io_err("replace entry", e))?;
                symlinkat(OsStr::from_bytes(&target), parent, name.as_os_str())
                    .map_err(|e| io_err("create symlink", e.into()))?;
                self.set_meta(parent, &name, &meta, true)
                    .map_err(|e| io_err("set metadata", e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid("hard link without a target"))?
                    .into_owned();
                let mut tcomps = normalize(&target).map_err(|_| {
                    invalid(&format!(
                        "hard link target {:?} escapes the layer root",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                let Some(tname) = tcomps.pop() else {
                    return Err(invalid("hard link to the layer root"));
                };
                let missing = || {
                    invalid(&format!(
                        "hard link target {:?} is not in this layer (links into lower layers are not supported)",
                        String::from_utf8_lossy(&target)
                    ))
                };
                let tdir = match open_dir_in_root(self.root.as_fd(), &tcomps) {
                    Err(Errno::ENOENT) => return Err(missing()),
                    other => {
                        other.map_err(|e| io_err("open hard link target directory", e.into()))?
                    }
                };
                if let Err(Errno::ENOENT) =
                    fstatat(&tdir, tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                {
                    return Err(missing());
                }
                remove_existing(parent, &name).map_err(|e| io_err("replace entry", e))?;
                linkat(
                    &tdir,
                    tname.as_os_str(),
                    parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("create hard link", e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                remove_existing(parent, &name).map_err(|e| io_err("replace entry", e))?;
                if kind == tar::EntryType::Fifo {
                    mkfifoat(parent, name.as_os_str(), Mode::from_bits_truncate(0o600))
                        .map_err(|e| io_err("create fifo", e.into()))?;
                } else {
                    let major = entry
                        .header()
                        .device_major()
                        .map_err(|e| io_err("read device number", e))?
                        .unwrap_or(0);
                    let minor = entry
                        .header()
                        .device_minor()
                        .map_err(|e| io_err("read device number", e))?
                        .unwrap_or(0);
                    let sflag = if kind == tar::EntryType::Char {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    let dev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                    mknodat(
                        parent,
                        name.as_os_str(),
                        sflag,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )
                    .map_err(|e| io_err("create device node", e.into()))?;
                }
                self.set_meta(parent, &name, &meta, false)
                    .map_err(|e| io_err("set metadata", e))?;
            }
            other => {
                return Err(invalid(&format!("unsupported entry type {other:?}")));
            }
        }
        Ok(true)
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
        let h = entry.header();
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let old = h.as_old();
        let mut uid =
            u32::try_from(lenient(h.uid(), &old.uid)?).map_err(|_| bad("uid out of range"))?;
        let mut gid =
            u32::try_from(lenient(h.gid(), &old.gid)?).map_err(|_| bad("gid out of range"))?;
        let mode = u32::try_from(lenient(h.mode().map(u64::from), &old.mode)? & 0o7777)
            .map_err(|_| bad("mode out of range"))?;
        let secs = i64::try_from(lenient(h.mtime(), &old.mtime)?)
            .map_err(|_| bad("mtime out of range"))?;
        let mut mtime = TimeSpec::new(secs, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((OsString::from(name), ext.value_bytes().to_vec()));
                    continue;
                }
                let Ok(value) = ext.value() else { continue };
                match key {
                    "uid" => uid = value.parse().map_err(|_| bad("bad pax uid"))?,
                    "gid" => gid = value.parse().map_err(|_| bad("bad pax gid"))?,
                    "mtime" => mtime = parse_mtime(value).ok_or_else(|| bad("bad pax mtime"))?,
                    _ => {}
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    /// Owner, mode, xattrs and (except for directories, done at the end) mtime of `name` in
    /// `dir`, without following it.
    fn set_meta(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        symlink: bool,
    ) -> io::Result<()> {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if !symlink {
            // The entry was just created by us as a non-symlink, so following is moot.
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )?;
        }
        if !meta.xattrs.is_empty() {
            let path = if name == "." {
                PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            } else {
                proc_path(dir, name)
            };
            for (k, v) in &meta.xattrs {
                xattr::set(&path, k, v)?;
            }
        }
        utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<(), UnpackError> {
        for (comps, t) in self.dir_times.drain(..).rev() {
            let shown = rel_path(&comps).display().to_string();
            let io_err = |source: io::Error| UnpackError::Io {
                path: shown.clone(),
                op: "set directory mtime",
                source,
            };
            let (dir, name) = match comps.split_last() {
                None => (
                    open_dir_in_root(self.root.as_fd(), &[]).map_err(|e| io_err(e.into()))?,
                    OsString::from("."),
                ),
                Some((name, parent)) => (
                    open_dir_in_root(self.root.as_fd(), parent).map_err(|e| io_err(e.into()))?,
                    name.clone(),
                ),
            };
            utimensat(
                &dir,
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| io_err(e.into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
    }

    #[test]
    fn compression_from_media_types() {
        for (mt, c) in [
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.config.v1+json", None),
        ] {
            assert_eq!(Compression::from_media_type(mt), c, "{mt}");
        }
    }

    #[test]
    fn normalizes_paths() {
        let n = |s: &str| {
            normalize(s.as_bytes()).map(|v| {
                v.iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
        };
        assert_eq!(n("./etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(n("/abs/x"), Ok("abs/x".into()));
        assert_eq!(n("a/./b//c/"), Ok("a/b/c".into()));
        assert_eq!(n("a/../b"), Ok("b".into()));
        assert_eq!(n("./"), Ok(String::new()));
        assert!(n("../x").is_err());
        assert!(n("a/../../x").is_err());
        assert!(n("/..").is_err());
    }

    #[test]
    fn parses_pax_mtime() {
        assert_eq!(parse_mtime("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(parse_mtime("7"), Some(TimeSpec::new(7, 0)));
        assert_eq!(parse_mtime("x"), None);
    }
}
