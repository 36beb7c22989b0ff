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

/// Where the last build's context stays for the next one (the unpacked tree).
pub const KEPT: &str = "context-kept";

/// The context a build unpacked, kept for the next build: a file of the new context whose
/// bytes and attributes equal the kept file's at the same path is hard-linked from it instead
/// of written, so a rebuild of a large unchanged context writes no file data (reading the
/// kept file from the page cache and comparing costs a fraction of writing it).
///
/// Bytes are compared, not tar headers: two different contexts commonly have files of the
/// same path, size, mode and one-second mtime (one checkout, generated files).
#[derive(Debug)]
pub struct Reuse {
    /// The taken directory, removed once the new context is unpacked.
    tree: std::path::PathBuf,
}

impl Reuse {
    /// Takes the kept context of `build_root` (a rename, so concurrent builds never share one)
    /// into `<dest>.prev`; None when there is none.
    pub fn take(build_root: &Path, dest: &Path) -> Option<Reuse> {
        let tree = dest.with_extension("prev");
        std::fs::rename(build_root.join(KEPT), &tree).ok()?;
        Some(Reuse { tree })
    }

    /// Unpacks the file entry `e` at `rel` under `dest` by linking the kept file when it is the
    /// same; Ok(false) when the kept tree has no such file or a symlink is on the way (the
    /// caller unpacks as usual, nothing of the entry read).
    fn unpack_file(
        &self,
        dest: &Path,
        rel: &Path,
        e: &mut tar::Entry<'_, impl Read>,
    ) -> Result<bool, BuildError> {
        use std::os::unix::fs::MetadataExt;
        let Some(rel_s) = rel.to_str() else {
            return Ok(false);
        };
        let src = self.tree.join(rel);
        let dst = dest.join(rel);
        // No symlink may be crossed on either side: a kept tree's link to outside must not
        // lend a host file to the new context, nor may the new file land outside `dest`.
        let plain = |root: &Path, p: &Path| {
            super::fsutil::secure_join(root, rel_s, false).is_ok_and(|r| r == p)
        };
        if !plain(&self.tree, &src) || !plain(dest, &dst) {
            return Ok(false);
        }
        let h = e.header();
        let (Ok(size), Ok(mode), Ok(mtime)) = (h.size(), h.mode(), h.mtime()) else {
            return Ok(false);
        };
        // What unpack_in gives a file: the header's mode, its mtime in whole seconds (0 as 1).
        let mode = mode & 0o7777;
        let mtime = i64::try_from(mtime.max(1)).unwrap_or(i64::MAX);
        let Ok(md) = std::fs::symlink_metadata(&src) else {
            return Ok(false);
        };
        if !md.is_file() || md.len() != size {
            return Ok(false);
        }
        let Some(parent) = dst.parent() else {
            return Ok(false);
        };
        // Missing parents are made as unpack_in makes them (no symlink is on the way: checked).
        if !parent.is_dir() && std::fs::create_dir_all(parent).is_err() {
            return Ok(false);
        }
        let Ok(mut kept) = File::open(&src) else {
            return Ok(false);
        };
        match std::fs::symlink_metadata(&dst) {
            Ok(m) if m.is_dir() => return Ok(false),
            Ok(_) => std::fs::remove_file(&dst).map_err(|e| BuildError::io("remove", &dst, e))?,
            Err(_) => {}
        }
        let name = rel.display().to_string();
        let rd = |e: io::Error| BuildError::Invalid(format!("read context tar: {name}: {e}"));
        // Compare chunk by chunk; at the first difference the file is written: the equal
        // prefix from the kept file, then the rest from the stream.
        let mut a = vec![0u8; 1 << 16];
        let mut b = vec![0u8; 1 << 16];
        let mut same_upto: u64 = 0;
        let mut differ: Option<usize> = None;
        loop {
            let n = e.read(&mut a).map_err(rd)?;
            if n == 0 {
                break;
            }
            if kept.read_exact(&mut b[..n]).is_err() || a[..n] != b[..n] {
                differ = Some(n);
                break;
            }
            same_upto += n as u64;
        }
        let same_meta = md.mode() & 0o7777 == mode && md.mtime() == mtime && md.mtime_nsec() == 0;
        if differ.is_none() && same_upto == size && same_meta {
            std::fs::hard_link(&src, &dst).map_err(|e| BuildError::io("link", &dst, e))?;
            return Ok(true);
        }
        let mut f = File::create(&dst).map_err(|e| BuildError::io("create", &dst, e))?;
        let w = |e: io::Error| BuildError::io("write", &dst, e);
        let mut kept = File::open(&src).map_err(|e| BuildError::io("open", &src, e))?;
        io::copy(&mut (&mut kept).take(same_upto), &mut f).map_err(w)?;
        if let Some(n) = differ {
            f.write_all(&a[..n]).map_err(w)?;
        }
        io::copy(e, &mut f).map_err(rd)?;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| BuildError::io("chmod", &dst, e))?;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.unsigned_abs());
        f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(|e| BuildError::io("set mtime", &dst, e))?;
        Ok(true)
    }

    fn finish(self) {
        let _ = std::fs::remove_dir_all(&self.tree);
    }
}

/// Keeps the unpacked context `tree` for the next build; a context kept meanwhile by a
/// concurrent build wins and `tree` is removed.
pub fn keep(build_root: &Path, tree: &Path) {
    if std::fs::rename(tree, build_root.join(KEPT)).is_err() {
        let _ = std::fs::remove_dir_all(tree);
    }
}

/// [`extract`] with the kept context of `build_root` reused where it can be; [`keep`] the
/// result once the build is over.
pub fn extract_reusing(
    r: impl Read,
    dest: &Path,
    dockerfile: &str,
    build_root: &Path,
) -> Result<(), BuildError> {
    let reuse = Reuse::take(build_root, dest);
    let res = extract_with(r, dest, dockerfile, reuse.as_ref());
    if let Some(r) = reuse {
        r.finish();
    }
    res
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
            if kind.is_file() && r.unpack_file(dest, &path, &mut entry)? {
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
        let fresh = |n: &str| {
            let d = br.join(n);
            std::fs::create_dir(&d).unwrap();
            d
        };

        // First build: nothing kept, everything written; then kept.
        let d1 = fresh("ctx1");
        extract_reusing(&t[..], &d1, "Dockerfile", br).unwrap();
        let first = ino(&d1.join("a/big"));
        keep(br, &d1);
        assert!(!d1.exists() && br.join(KEPT).join("a/big").is_file());

        // Same context again: the file is the kept inode, and the kept tree is gone.
        let d2 = fresh("ctx2");
        extract_reusing(&t[..], &d2, "Dockerfile", br).unwrap();
        assert_eq!(ino(&d2.join("a/big")), first);
        assert!(!br.join(KEPT).exists() && !br.join("ctx2.prev").exists());
        keep(br, &d2);

        // Another context whose file has the same path, size, mode and mtime but other bytes
        // (the common case of two checkouts): written from the stream, with the header's
        // attributes. The difference in the middle and at the start both count.
        for other in [&b"content-2"[..], b"Xontent-1"] {
            let t2 = tar_with(&[("Dockerfile", b"FROM scratch\n"), ("a/big", other)]);
            let d = fresh("ctx3");
            extract_reusing(&t2[..], &d, "Dockerfile", br).unwrap();
            assert_eq!(std::fs::read(d.join("a/big")).unwrap(), other);
            let md = std::fs::metadata(d.join("a/big")).unwrap();
            assert_eq!((md.mode() & 0o7777, md.mtime()), (0o644, 1));
            keep(br, &d);
        }
        // A kept file with other attributes but the same bytes: written, attributes from the
        // header.
        std::fs::set_permissions(
            br.join(KEPT).join("a/big"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let t3 = tar_with(&[("a/big", b"Xontent-1")]);
        let d = fresh("ctx4");
        extract_reusing(&t3[..], &d, "Dockerfile", br).unwrap();
        let md = std::fs::metadata(d.join("a/big")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o644);
        assert_eq!(std::fs::read(d.join("a/big")).unwrap(), b"Xontent-1");
        std::fs::remove_dir_all(&d).unwrap();

        // A kept tree whose directory is a symlink to outside lends nothing from there.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), b"content-1").unwrap();
        std::fs::create_dir_all(br.join(KEPT)).unwrap();
        std::os::unix::fs::symlink(outside.path(), br.join(KEPT).join("a")).unwrap();
        let d5 = fresh("ctx5");
        extract_reusing(&t[..], &d5, "Dockerfile", br).unwrap();
        assert_eq!(std::fs::read(d5.join("a/big")).unwrap(), b"content-1");
        assert_ne!(ino(&d5.join("a/big")), ino(&outside.path().join("big")));
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
