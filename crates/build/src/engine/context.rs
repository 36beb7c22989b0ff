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
    let head = br.fill_buf().map_err(|e| BuildError::Invalid(format!("read context: {e}")))?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(br)),
        Compression::Xz => {
            let mut f = tempfile_at(spool)?;
            lzma_rs::xz_decompress(&mut br, &mut f)
                .map_err(|e| BuildError::Invalid(format!("decompress xz: {e}")))?;
            f.flush().map_err(|e| BuildError::io("write", spool, e))?;
            f.seek(io::SeekFrom::Start(0)).map_err(|e| BuildError::io("seek", spool, e))?;
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
    let spool = dest.with_extension("xz-spool");
    let r = decompress(r, &spool)?;
    unpack(r, dest, true, false)?;
    let ignore_path = dest.join(".dockerignore");
    if let Ok(md) = std::fs::symlink_metadata(&ignore_path) {
        if md.is_file() {
            let text = std::fs::read_to_string(&ignore_path)
                .map_err(|e| BuildError::io("read", &ignore_path, e))?;
            let ig = DockerIgnore::parse(&text);
            let keep = [super::fsutil::clean_rel(dockerfile), ".dockerignore".to_string()];
            prune(dest, "", &ig, &keep)?;
        }
    }
    Ok(())
}

fn prune(root: &Path, rel: &str, ig: &DockerIgnore, keep: &[String]) -> Result<(), BuildError> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let rd = std::fs::read_dir(&dir).map_err(|e| BuildError::io("read directory", &dir, e))?;
    for e in rd {
        let e = e.map_err(|e| BuildError::io("read directory", &dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if keep.contains(&r) {
            continue;
        }
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if ig.is_excluded(&r) {
            if is_dir && ig.may_include_below(&r) {
                prune(root, &r, ig, keep)?;
                // Nothing re-included below: the directory goes too.
                if std::fs::read_dir(&p).map(|mut d| d.next().is_none()).unwrap_or(false) {
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

/// Unpacks a tar stream into `dest`, each entry checked; `strict` refuses device nodes.
/// `owners` keeps the archive's uid/gid (ADD), else files belong to the daemon's user.
pub fn unpack(r: impl Read, dest: &Path, strict: bool, owners: bool) -> Result<(), BuildError> {
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
        // unpack_in refuses names that would resolve through a symlink to outside `dest`.
        let ok = entry
            .unpack_in(dest)
            .map_err(|e| {
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
    let Ok(f) = File::open(path) else { return false };
    let mut br = BufReader::new(f);
    let Ok(head) = br.fill_buf() else { return false };
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
        .map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) })
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
        let e = unpack(&t[..], d.path(), true, false).unwrap_err().to_string();
        assert!(e.contains("leaves the archive's root"), "{e}");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "null", &[][..]).unwrap();
        let t = b.into_inner().unwrap();
        let e = unpack(&t[..], d.path(), true, false).unwrap_err().to_string();
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
