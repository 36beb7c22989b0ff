//! The build context: a tar stream (plain, gzip, bzip2 or xz; sniffed) unpacked safely into a
//! directory, `.dockerignore` applied; and ADD's local archives.
//!
//! Entries are refused when they would land outside the directory (`..`, absolute names, hard
//! links to outside) or are device nodes; symlinks are kept as they are, whatever they point
//! at, because everything that later reads the context resolves paths inside its root.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Component, Path};

use super::BuildError;
use crate::ignore::DockerIgnore;

/// How a stream is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
}

impl Compression {
    pub fn sniff(b: &[u8]) -> Compression {
        if b.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if b.starts_with(b"BZh") {
            Compression::Bzip2
        } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// A reader of the decompressed stream. xz is decoded into `spool` first (the decoder has no
/// streaming reader), so give a path on a disk with room.
pub fn decompress<'a>(r: impl Read + 'a, spool: &Path) -> Result<Box<dyn Read + 'a>, BuildError> {
    let mut br = BufReader::with_capacity(1 << 16, r);
    let head = br
        .fill_buf()
        .map_err(|e| BuildError::Invalid(format!("read context: {e}")))?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(br)),
        Compression::Xz => {
            let mut f = tempfile_at(spool)?;
            lzma_rs::xz_decompress(&mut br, &mut f)
                .map_err(|e| BuildError::Invalid(format!("decompress xz: {e}")))?;
            f.flush().map_err(|e| BuildError::io("write", spool, e))?;
            f.seek(io::SeekFrom::Start(0))
                .map_err(|e| BuildError::io("seek", spool, e))?;
            Box::new(BufReader::new(f))
        }
    })
}

/// An anonymous file next to `spool` (unlinked at once, so nothing stays behind).
fn tempfile_at(spool: &Path) -> Result<File, BuildError> {
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(spool)
        .map_err(|e| BuildError::io("create", spool, e))?;
    let _ = std::fs::remove_file(spool);
    Ok(f)
}

/// Unpacks a (possibly compressed) context tar into `dest` (an empty directory), then removes
/// what `.dockerignore` excludes (the Dockerfile and .dockerignore themselves stay, as Docker
/// keeps them).
pub fn extract(r: impl Read, dest: &Path, dockerfile: &str) -> Result<(), BuildError> {
    extract_with(r, dest, dockerfile, None)
}

fn extract_with(
    r: impl Read,
    dest: &Path,
    dockerfile: &str,
    reuse: Option<&Reuse>,
) -> Result<(), BuildError> {
    let spool = dest.with_extension("xz-spool");
    let r = decompress(r, &spool)?;
    unpack_with(r, dest, true, false, reuse)?;
    let ignore_path = dest.join(".dockerignore");
    if let Ok(md) = std::fs::symlink_metadata(&ignore_path) {
        if md.is_file() {
            let text = std::fs::read_to_string(&ignore_path)
                .map_err(|e| BuildError::io("read", &ignore_path, e))?;
            let ig = DockerIgnore::parse(&text);
            let keep = [
                super::fsutil::clean_rel(dockerfile),
                ".dockerignore".to_string(),
            ];
            prune(dest, "", &ig, &keep)?;
        }
    }
    Ok(())
}

fn prune(root: &Path, rel: &str, ig: &DockerIgnore, keep: &[String]) -> Result<(), BuildError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = std::fs::read_dir(&dir).map_err(|e| BuildError::io("read directory", &dir, e))?;
    for e in rd {
        let e = e.map_err(|e| BuildError::io("read directory", &dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if keep.contains(&r) {
            continue;
        }
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if ig.is_excluded(&r) {
            if is_dir && ig.may_include_below(&r) {
                prune(root, &r, ig, keep)?;
                // Nothing re-included below: the directory goes too.
                if std::fs::read_dir(&p)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
                {
                    let _ = std::fs::remove_dir(&p);
                }
            } else if is_dir {
                std::fs::remove_dir_all(&p).map_err(|e| BuildError::io("remove", &p, e))?;
            } else {
                std::fs::remove_file(&p).map_err(|e| BuildError::io("remove", &p, e))?;
            }
        } else if is_dir {
            prune(root, &r, ig, keep)?;
        }
    }
    Ok(())
}

/// Where the last build's context stays for the next one: `tree/` (the unpacked context) and
/// `sealed` (when its unpacking ended, in nanoseconds since the epoch).
pub const KEPT: &str = "context-kept";

/// The context a build unpacked, kept for the next build of the same (or a similar) context:
/// a file whose tar header says it is unchanged (path, size, mode, mtime) is hard-linked from
/// it instead of written, so a rebuild of a large unchanged context writes no file data.
///
/// Safe against stale data by the same rules as the digest cache, plus two: the kept file must
/// not have changed since its unpacking ended (its ctime is before the seal: a RUN that wrote
/// through a bind mount is caught), and its content must have been taken at least a second after
/// its mtime (git's racy-file rule: a file changed twice in the same second keeps its size and
/// one-second tar mtime).
#[derive(Debug)]
pub struct Reuse {
    tree: std::path::PathBuf,
    sealed: i128,
    /// The taken directory, removed once the new context is unpacked.
    holder: std::path::PathBuf,
}

impl Reuse {
    /// Takes the kept context of `build_root` (a rename, so concurrent builds never share one)
    /// into `<dest>.prev`; None when there is none.
    pub fn take(build_root: &Path, dest: &Path) -> Option<Reuse> {
        let holder = dest.with_extension("prev");
        std::fs::rename(build_root.join(KEPT), &holder).ok()?;
        let sealed = std::fs::read_to_string(holder.join("sealed"))
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok());
        match sealed {
            Some(sealed) => Some(Reuse {
                tree: holder.join("tree"),
                sealed,
                holder,
            }),
            None => {
                let _ = std::fs::remove_dir_all(&holder);
                None
            }
        }
    }

    /// Links `rel` from the kept tree to `dest` when the kept file is what `h` describes.
    fn link(&self, dest: &Path, rel: &Path, h: &tar::Header) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(rel_s) = rel.to_str() else {
            return false;
        };
        let src = self.tree.join(rel);
        let dst = dest.join(rel);
        // No symlink may be crossed on either side: a kept tree's link to outside must not
        // lend a host file to the new context.
        let plain = |root: &Path, p: &Path| {
            super::fsutil::secure_join(root, rel_s, false).is_ok_and(|r| r == p)
        };
        if !plain(&self.tree, &src) || !plain(dest, &dst) {
            return false;
        }
        let (Ok(size), Ok(mode), Ok(mtime)) = (h.size(), h.mode(), h.mtime()) else {
            return false;
        };
        // What unpack_in would give the file (it maps mtime 0 to 1, seconds only).
        let mtime = i64::try_from(mtime.max(1)).unwrap_or(i64::MAX);
        let Ok(md) = std::fs::symlink_metadata(&src) else {
            return false;
        };
        let ctime = i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec());
        let same = md.is_file()
            && md.len() == size
            && md.mode() & 0o7777 == mode & 0o7777
            && md.mtime() == mtime
            && md.mtime_nsec() == 0
            // Strictly before: a change in the seal's clock tick could carry the same stamp.
            && ctime < self.sealed
            && md.ctime() > mtime.saturating_add(1);
        if !same {
            return false;
        }
        // Missing parents are made as unpack_in makes them (no symlink is on the way: checked).
        if dst
            .parent()
            .is_none_or(|p| !p.is_dir() && std::fs::create_dir_all(p).is_err())
        {
            return false;
        }
        match std::fs::symlink_metadata(&dst) {
            Ok(m) if m.is_dir() => return false,
            Ok(_) => {
                if std::fs::remove_file(&dst).is_err() {
                    return false;
                }
            }
            Err(_) => {}
        }
        std::fs::hard_link(&src, &dst).is_ok()
    }

    fn finish(self) {
        let _ = std::fs::remove_dir_all(&self.holder);
    }
}

/// Keeps the unpacked context `tree` (sealed at `sealed`) for the next build; a context kept
/// meanwhile by a concurrent build wins and `tree` is removed.
pub fn keep(build_root: &Path, tree: &Path, sealed: Option<i128>) {
    let holder = tree.with_extension("keep");
    let done = sealed.is_some_and(|sealed| {
        std::fs::create_dir(&holder).is_ok()
            && std::fs::write(holder.join("sealed"), sealed.to_string()).is_ok()
            && std::fs::rename(tree, holder.join("tree")).is_ok()
            && std::fs::rename(&holder, build_root.join(KEPT)).is_ok()
    });
    if !done {
        let _ = std::fs::remove_dir_all(&holder);
        let _ = std::fs::remove_dir_all(tree);
    }
}

/// Now, in nanoseconds since the epoch, on the clock the file system stamps ctimes with (a
/// coarse one: SystemTime can be ahead of a ctime set after it), read from a file made in
/// `dir`'s parent. None when that fails (nothing is then kept).
pub fn fs_now(dir: &Path) -> Option<i128> {
    use std::os::unix::fs::MetadataExt;
    let marker = dir.with_extension("seal");
    std::fs::write(&marker, b"").ok()?;
    let md = std::fs::metadata(&marker);
    let _ = std::fs::remove_file(&marker);
    let md = md.ok()?;
    Some(i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()))
}

/// A seal for the tree just unpacked at `dest`: the first file-system time after the one
/// now, so every ctime of the tree is strictly before it and every later change is not.
fn seal(dest: &Path) -> Option<i128> {
    let t0 = fs_now(dest)?;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        let t = fs_now(dest)?;
        if t > t0 {
            return Some(t);
        }
    }
    None
}

/// [`extract`] with the kept context of `build_root` reused where it can be; returns the seal
/// to [`keep`] the result with once the build is over (None: do not keep it).
pub fn extract_reusing(
    r: impl Read,
    dest: &Path,
    dockerfile: &str,
    build_root: &Path,
) -> Result<Option<i128>, BuildError> {
    let reuse = Reuse::take(build_root, dest);
    let res = extract_with(r, dest, dockerfile, reuse.as_ref());
    // The old tree goes before the seal: unlinking changes the ctime of inodes now shared with
    // the new tree.
    if let Some(r) = reuse {
        r.finish();
    }
    res.map(|()| seal(dest))
}

/// Unpacks a tar stream into `dest`, each entry checked; `strict` refuses device nodes.
/// `owners` keeps the archive's uid/gid (ADD), else files belong to the daemon's user.
pub fn unpack(r: impl Read, dest: &Path, strict: bool, owners: bool) -> Result<(), BuildError> {
    unpack_with(r, dest, strict, owners, None)
}

fn unpack_with(
    r: impl Read,
    dest: &Path,
    strict: bool,
    owners: bool,
    reuse: Option<&Reuse>,
) -> Result<(), BuildError> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(owners);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let entries = ar
        .entries()
        .map_err(|e| BuildError::Invalid(format!("read context tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| BuildError::Invalid(format!("read context tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| BuildError::Invalid(format!("bad tar entry name: {e}")))?
            .into_owned();
        let bad = |why: &str| BuildError::Invalid(format!("tar entry {}: {why}", path.display()));
        if path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(bad("path leaves the archive's root"));
        }
        let kind = entry.header().entry_type();
        if strict && (kind.is_character_special() || kind.is_block_special()) {
            return Err(bad("device nodes are not allowed in a build context"));
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| BuildError::Invalid(format!("bad tar link name: {e}")))?
                .unwrap_or_default();
            if target.is_absolute() || target.components().any(|c| c == Component::ParentDir) {
                return Err(bad("hard link leaves the archive's root"));
            }
        }
        if let Some(r) = reuse {
            if kind.is_file() && r.link(dest, &path, entry.header()) {
                continue;
            }
        }
        // unpack_in refuses names that would resolve through a symlink to outside `dest`.
        let ok = entry.unpack_in(dest).map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            BuildError::Invalid(format!("tar entry {}: {e}{cause}", path.display()))
        })?;
        if !ok {
            return Err(bad("path leaves the archive's root"));
        }
    }
    Ok(())
}

/// Whether a file is a tar archive (plain or compressed) that ADD unpacks.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut br = BufReader::new(f);
    let Ok(head) = br.fill_buf() else {
        return false;
    };
    let c = Compression::sniff(head);
    let mut first = vec![0u8; 512];
    let n = match c {
        Compression::None => read_full(&mut br, &mut first),
        Compression::Gzip => read_full(&mut flate2::read::MultiGzDecoder::new(br), &mut first),
        Compression::Bzip2 => read_full(&mut bzip2::read::MultiBzDecoder::new(br), &mut first),
        Compression::Xz => {
            let mut out = Vec::new();
            // Only the first block is needed; a full decode of a broken stream just fails.
            if lzma_rs::xz_decompress(&mut br, &mut out).is_err() {
                return false;
            }
            let n = out.len().min(512);
            first[..n].copy_from_slice(&out[..n]);
            n
        }
    };
    n == 512 && is_tar_header(&first)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// A tar header: `ustar` magic, or an old-style header whose checksum adds up.
fn is_tar_header(h: &[u8]) -> bool {
    if h.len() < 512 {
        return false;
    }
    if &h[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&h[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum) && h[0] != 0
}

/// ADD of a local archive: unpacks it into `dest`, keeping the archive's owners and modes.
pub fn extract_archive(path: &Path, dest: &Path) -> Result<(), BuildError> {
    let f = File::open(path).map_err(|e| BuildError::io("open", path, e))?;
    let spool = dest.with_extension("add-spool");
    let r = decompress(f, &spool)?;
    unpack(r, dest, false, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn sniffs_and_extracts_compressed_contexts() {
        let t = tar_with(&[("Dockerfile", b"FROM scratch\n"), ("a/b.txt", b"hi")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&t).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &t[..], &mut xz).unwrap();
        for body in [t.clone(), gz, bz, xz] {
            let d = tempfile::tempdir().unwrap();
            let dest = d.path().join("ctx");
            std::fs::create_dir(&dest).unwrap();
            extract(&body[..], &dest, "Dockerfile").unwrap();
            assert_eq!(std::fs::read(dest.join("a/b.txt")).unwrap(), b"hi");
        }
    }

    #[test]
    fn refuses_escapes_and_devices() {
        let d = tempfile::tempdir().unwrap();
        // `..` in a name (written raw: the tar crate's builder refuses it).
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../evil\0\0");
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend_from_slice(&[0u8; 1024]);
        let e = unpack(&t[..], d.path(), true, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaves the archive's root"), "{e}");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "null", &[][..]).unwrap();
        let t = b.into_inner().unwrap();
        let e = unpack(&t[..], d.path(), true, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("device nodes"), "{e}");

        // A symlink to outside, then a file through it: refused, nothing written outside.
        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "out", outside.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "out/pwned", &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let dest = d.path().join("c2");
        std::fs::create_dir(&dest).unwrap();
        assert!(unpack(&t[..], &dest, true, false).is_err());
        assert!(!outside.path().join("pwned").exists());
    }

    #[test]
    fn unchanged_files_are_linked_from_the_kept_context() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let br = root.path();
        let t = tar_with(&[("Dockerfile", b"FROM scratch\n"), ("a/big", b"content-1")]);
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();

        // First build: nothing kept, everything written; then kept.
        let d1 = br.join("ctx1");
        std::fs::create_dir(&d1).unwrap();
        let s1 = extract_reusing(&t[..], &d1, "Dockerfile", br).unwrap();
        let first = ino(&d1.join("a/big"));
        keep(br, &d1, s1);
        assert!(!d1.exists() && br.join(KEPT).join("tree/a/big").is_file());

        // Same context again: the file is the kept inode, and the kept tree is gone.
        let d2 = br.join("ctx2");
        std::fs::create_dir(&d2).unwrap();
        let s2 = extract_reusing(&t[..], &d2, "Dockerfile", br).unwrap();
        assert_eq!(ino(&d2.join("a/big")), first);
        assert!(!br.join(KEPT).exists());
        assert!(!br.join("ctx2.prev").exists());
        keep(br, &d2, s2);

        // Changed after the seal (a RUN writing through a bind mount, mtime put back): written
        // from the stream, not linked.
        let kept = br.join(KEPT).join("tree/a/big");
        std::fs::write(&kept, b"tampered!").unwrap();
        let one = nix::sys::time::TimeSpec::new(1, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &kept,
            &one,
            &one,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let d3 = br.join("ctx3");
        std::fs::create_dir(&d3).unwrap();
        let s3 = extract_reusing(&t[..], &d3, "Dockerfile", br).unwrap();
        assert_eq!(std::fs::read(d3.join("a/big")).unwrap(), b"content-1");
        keep(br, &d3, s3);

        // A kept tree whose directory is a symlink to outside lends nothing from there.
        std::fs::remove_dir_all(br.join(KEPT)).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), b"host-file").unwrap();
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &outside.path().join("big"),
            &one,
            &one,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        std::fs::create_dir_all(br.join(KEPT).join("tree")).unwrap();
        std::os::unix::fs::symlink(outside.path(), br.join(KEPT).join("tree/a")).unwrap();
        let seal = fs_now(&br.join("x")).unwrap();
        std::fs::write(br.join(KEPT).join("sealed"), seal.to_string()).unwrap();
        let d4 = br.join("ctx4");
        std::fs::create_dir(&d4).unwrap();
        extract_reusing(&t[..], &d4, "Dockerfile", br).unwrap();
        assert_eq!(std::fs::read(d4.join("a/big")).unwrap(), b"content-1");
        assert_ne!(ino(&d4.join("a/big")), ino(&outside.path().join("big")));
        assert!(outside.path().join("big").exists());
    }

    #[test]
    fn archives_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_with(&[("x", b"1")]);
        std::fs::write(d.path().join("a.tar"), &t).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        std::fs::write(d.path().join("a.tgz"), gz.finish().unwrap()).unwrap();
        std::fs::write(d.path().join("plain"), vec![b'x'; 2000]).unwrap();
        assert!(is_archive(&d.path().join("a.tar")));
        assert!(is_archive(&d.path().join("a.tgz")));
        assert!(!is_archive(&d.path().join("plain")));
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract_archive(&d.path().join("a.tgz"), &out).unwrap();
        assert_eq!(std::fs::read(out.join("x")).unwrap(), b"1");
    }
}
