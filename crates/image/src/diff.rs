//! Layer diffs: an overlay upper directory (or any plain tree) written back as a layer tar.
//!
//! The walk is sorted by name, so the same tree always gives the same bytes and DiffID.
//! Overlay whiteouts (0/0 character devices) become OCI `.wh.NAME` entries and opaque
//! directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry; overlay's own
//! `trusted.overlay.*` attributes are never written. Hard links inside the tree become link
//! entries to the first path seen; other xattrs travel as PAX `SCHILY.xattr.*` records; owners,
//! modes and mtimes (seconds) are kept.
//!
//! Overlay features that record renames or metadata-only copies in xattrs (redirect_dir,
//! metacopy) must be off for the upper dirs diffed here; they are off in the mounts
//! [`crate::snapshot`] describes unless the kernel's defaults turn them on.

use crate::digest::{Digest, Hasher};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name/value pairs of extended attributes.
type Xattrs = Vec<(OsString, Vec<u8>)>;

/// Why a diff could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("diff {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("diff {path}: file changed size while being read")]
    Changed { path: PathBuf },
    #[error("write layer tar: {0}")]
    Write(#[source] io::Error),
}

/// Writes an uncompressed layer tar of `upper` (an overlay upper dir) with OCI whiteouts for
/// overlay whiteouts/opaque dirs; returns its DiffID.
pub fn diff_upper(upper: &Path, w: impl Write) -> Result<Digest, DiffError> {
    write_tree(upper, w, true)
}

/// Tar of a whole directory (for import/commit of a plain tree).
pub fn tar_dir(dir: &Path, w: impl Write) -> Result<Digest, DiffError> {
    write_tree(dir, w, false)
}

/// Hashes everything written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Walker<W: Write> {
    root: PathBuf,
    overlay: bool,
    builder: tar::Builder<HashingWriter<W>>,
    /// (dev, ino) of multiply-linked files → the first path written.
    links: HashMap<(u64, u64), PathBuf>,
}

fn write_tree(root: &Path, w: impl Write, overlay: bool) -> Result<Digest, DiffError> {
    let mut walker = Walker {
        root: root.to_path_buf(),
        overlay,
        builder: tar::Builder::new(HashingWriter {
            inner: w,
            hasher: Hasher::new(),
        }),
        links: HashMap::new(),
    };
    walker.builder.mode(tar::HeaderMode::Complete);
    walker.visit_dir(Path::new(""))?;
    let mut hw = walker.builder.into_inner().map_err(DiffError::Write)?;
    hw.flush().map_err(DiffError::Write)?;
    Ok(hw.hasher.finish())
}

/// One PAX record: "<len> <key>=<value>\n", where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len += 1;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

fn header_from(md: &Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

impl<W: Write> Walker<W> {
    fn io(&self, rel: &Path, op: &'static str) -> impl FnOnce(io::Error) -> DiffError {
        let path = self.root.join(rel);
        move |source| DiffError::Io { path, op, source }
    }

    fn visit_dir(&mut self, rel: &Path) -> Result<(), DiffError> {
        let abs = self.root.join(rel);
        let mut names: Vec<OsString> = std::fs::read_dir(&abs)
            .map_err(self.io(rel, "read directory"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(self.io(rel, "read directory"))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = rel.join(&name);
            self.visit(&child, &name)?;
        }
        Ok(())
    }

    fn xattrs(&self, rel: &Path) -> Result<(Xattrs, bool), DiffError> {
        let abs = self.root.join(rel);
        let mut out = Vec::new();
        let mut opaque = false;
        let names = match xattr::list(&abs) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok((out, false)),
            Err(e) => return Err(self.io(rel, "list xattrs")(e)),
        };
        for name in names {
            let value = xattr::get(&abs, &name)
                .map_err(self.io(rel, "read xattr"))?
                .unwrap_or_default();
            if name.as_bytes().starts_with(b"trusted.overlay.") {
                if name == "trusted.overlay.opaque" && value == b"y" {
                    opaque = true;
                }
                continue;
            }
            out.push((name, value));
        }
        out.sort();
        Ok((out, opaque))
    }

    fn append_pax(&mut self, xattrs: &Xattrs) -> Result<(), DiffError> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (k, v) in xattrs {
            data.extend(pax_record(
                &format!("SCHILY.xattr.{}", k.to_string_lossy()),
                v,
            ));
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        // The name of a PAX header is informative only; keep it short and valid.
        let _ = h.set_path("PaxHeader");
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..]).map_err(DiffError::Write)
    }

    fn visit(&mut self, rel: &Path, name: &std::ffi::OsStr) -> Result<(), DiffError> {
        let abs = self.root.join(rel);
        let md = std::fs::symlink_metadata(&abs).map_err(self.io(rel, "stat"))?;
        let ft = md.file_type();

        if self.overlay && ft.is_char_device() && md.rdev() == 0 {
            let mut wh_name = OsString::from(".wh.");
            wh_name.push(name);
            let wh = rel.with_file_name(wh_name);
            let mut h = header_from(&md, tar::EntryType::Regular);
            h.set_mode(0o644);
            return self
                .builder
                .append_data(&mut h, &wh, io::empty())
                .map_err(DiffError::Write);
        }

        let (xattrs, opaque) = if ft.is_symlink() {
            (Vec::new(), false)
        } else {
            self.xattrs(rel)?
        };

        if ft.is_dir() {
            self.append_pax(&xattrs)?;
            let mut h = header_from(&md, tar::EntryType::Directory);
            self.builder
                .append_data(&mut h, rel, io::empty())
                .map_err(DiffError::Write)?;
            if self.overlay && opaque {
                let mut h = header_from(&md, tar::EntryType::Regular);
                h.set_mode(0o644);
                self.builder
                    .append_data(&mut h, rel.join(".wh..wh..opq"), io::empty())
                    .map_err(DiffError::Write)?;
            }
            return self.visit_dir(rel);
        }

        if ft.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(self.io(rel, "read symlink"))?;
            let mut h = header_from(&md, tar::EntryType::Symlink);
            return self
                .builder
                .append_link(&mut h, rel, &target)
                .map_err(DiffError::Write);
        }

        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    self.append_pax(&xattrs)?;
                    let mut h = header_from(&md, tar::EntryType::Link);
                    return self
                        .builder
                        .append_link(&mut h, rel, &first)
                        .map_err(DiffError::Write);
                }
                self.links.insert(key, rel.to_path_buf());
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&abs)
                .map_err(self.io(rel, "open"))?;
            let size = md.len();
            self.append_pax(&xattrs)?;
            let mut h = header_from(&md, tar::EntryType::Regular);
            h.set_size(size);
            let mut reader = ExactReader {
                inner: file.take(size),
                left: size,
            };
            self.builder
                .append_data(&mut h, rel, &mut reader)
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        DiffError::Changed { path: abs.clone() }
                    } else {
                        DiffError::Write(e)
                    }
                })?;
            return Ok(());
        }

        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets are not carried in layers.
            return Ok(());
        };
        self.append_pax(&xattrs)?;
        let mut h = header_from(&md, kind);
        if kind != tar::EntryType::Fifo {
            let rdev = md.rdev();
            h.set_device_major(libc::major(rdev))
                .map_err(DiffError::Write)?;
            h.set_device_minor(libc::minor(rdev))
                .map_err(DiffError::Write)?;
        }
        self.builder
            .append_data(&mut h, rel, io::empty())
            .map_err(DiffError::Write)
    }
}

/// Reads exactly `left` bytes, failing with UnexpectedEof if the file shrank meanwhile.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        let r = pax_record("SCHILY.xattr.user.x", b"123456");
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..2]));
    }

    #[test]
    fn tar_dir_is_deterministic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("d")).expect("mkdir");
        for n in ["b", "a", "c"] {
            std::fs::write(tmp.path().join("d").join(n), n).expect("write");
        }
        let mut one = Vec::new();
        let mut two = Vec::new();
        let d1 = tar_dir(tmp.path(), &mut one).expect("tar");
        let d2 = tar_dir(tmp.path(), &mut two).expect("tar");
        assert_eq!(one, two);
        assert_eq!(d1, d2);
        assert_eq!(d1, Digest::sha256_of(&one));
        let mut ar = tar::Archive::new(&one[..]);
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["d", "d/a", "d/b", "d/c"]);
    }
}
