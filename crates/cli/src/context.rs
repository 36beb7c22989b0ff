//! The build context as `docker build` sends it: the directory walked with `.dockerignore`
//! applied (the Dockerfile and `.dockerignore` always kept, as docker's
//! TrimBuildFilesFromExcludes does), every file checked readable before anything is sent, then
//! written as a tar on the fly (owners 0:0, names relative, lexical order) into a bounded channel
//! that the HTTP request body drains, so the context is never held whole in memory or on disk.
//!
//! A Dockerfile from stdin or from outside the context travels inside the tar under
//! `.dockerfile.<random>`, and that name is appended to the `.dockerignore` sent, so the daemon
//! drops it from the context after reading it (docker's AddDockerfileToBuildContext).

use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_build::ignore::{DockerIgnore, IgnoreError};
use bytes::Bytes;

/// Size of the chunks handed to the request body.
const CHUNK: usize = 256 * 1024;

/// Why a context could not be prepared; the messages are docker's.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("unable to prepare context: path {0:?} not found")]
    NotFound(String),
    #[error("unable to prepare context: context must be a directory: {0}")]
    NotDir(String),
    #[error("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {path}: {reason}")]
    Dockerfile { path: String, reason: String },
    #[error("unable to prepare context: the Dockerfile ({0}) cannot be a directory")]
    DockerfileDir(String),
    #[error("error checking context: can't stat '{0}'")]
    Stat(String),
    #[error("error checking context: no permission to read from '{0}'")]
    Unreadable(String),
    #[error("error checking context: {path}: {source}")]
    Walk {
        path: String,
        source: std::io::Error,
    },
    /// A `.dockerignore` docker would refuse (the message is docker's, whole).
    #[error("{0}")]
    Ignore(String),
    #[error("read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// One thing to put in the tar.
#[derive(Debug)]
struct Entry {
    /// `/`-separated, relative to the context root.
    rel: String,
    abs: PathBuf,
    meta: Metadata,
}

/// A prepared directory context: what will be sent, checked, not yet read.
#[derive(Debug)]
pub struct DirContext {
    entries: Vec<Entry>,
    /// The `.dockerignore` text, when one is sent (rewritten if a Dockerfile is added).
    dockerignore: Option<Vec<u8>>,
    /// A Dockerfile added under a random name (stdin or outside the context).
    extra_dockerfile: Option<(String, Vec<u8>)>,
    /// The Dockerfile's name inside the tar (the `dockerfile` query parameter).
    pub dockerfile: String,
}

/// Strips trailing slashes and turns a relative path into one under the current directory.
fn absolute(p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            // "No such file (os error 2)" → Go's lowercase wording without the suffix.
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => s,
            }
        }
    }
}

/// The first ancestor of `p` (or `p` itself) that does not exist: the path Go's EvalSymlinks
/// names in its lstat error.
fn first_missing(p: &Path) -> PathBuf {
    let mut acc = PathBuf::new();
    for c in p.components() {
        acc.push(c);
        if acc.symlink_metadata().is_err() {
            return acc;
        }
    }
    p.to_path_buf()
}

/// Twenty random hex digits, for the name of an added Dockerfile.
fn random_hex() -> String {
    let mut b = [0u8; 10];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !filled {
        // Unique enough for one build's tar: the name only has to differ from context files.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&t.to_le_bytes()[..10]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl DirContext {
    /// Resolves the context directory and the Dockerfile (`-f`, relative to the current
    /// directory as docker has it; `stdin_dockerfile` when `-f -`), reads `.dockerignore`, walks
    /// the tree and checks that every file to send can be read.
    pub fn prepare(
        dir: &str,
        file: Option<&str>,
        stdin_dockerfile: Option<Vec<u8>>,
    ) -> Result<DirContext, ContextError> {
        let root = absolute(dir);
        let meta = std::fs::metadata(&root).map_err(|_| ContextError::NotFound(dir.into()))?;
        if !meta.is_dir() {
            return Err(ContextError::NotDir(root.display().to_string()));
        }
        let root = std::fs::canonicalize(&root).map_err(|_| ContextError::NotFound(dir.into()))?;

        let ignore_path = root.join(".dockerignore");
        let ignore_text = match std::fs::read(&ignore_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ContextError::Read {
                    path: ignore_path.display().to_string(),
                    source,
                })
            }
        };
        let ignore = DockerIgnore::try_parse(&String::from_utf8_lossy(
            ignore_text.as_deref().unwrap_or_default(),
        ))
        .map_err(|e| match e {
            IgnoreError::IllegalExclusion => ContextError::Ignore(e.to_string()),
            IgnoreError::BadPattern { .. } => {
                ContextError::Ignore(format!("error checking context: {e}"))
            }
        })?;

        // The Dockerfile: inside the context it is sent under its relative name; from stdin or
        // outside, under a random one.
        let (dockerfile_rel, extra) = match stdin_dockerfile {
            Some(text) => (None, Some(text)),
            None => {
                let path = match file {
                    Some(f) => absolute(f),
                    None => {
                        let d = root.join("Dockerfile");
                        let lower = root.join("dockerfile");
                        if d.symlink_metadata().is_err() && lower.symlink_metadata().is_ok() {
                            lower
                        } else {
                            d
                        }
                    }
                };
                let real = std::fs::canonicalize(&path).map_err(|e| ContextError::Dockerfile {
                    path: first_missing(&path).display().to_string(),
                    reason: io_reason(&e),
                })?;
                if real.is_dir() {
                    return Err(ContextError::DockerfileDir(path.display().to_string()));
                }
                match real.strip_prefix(&root) {
                    Ok(rel) => (Some(rel.to_string_lossy().into_owned()), None),
                    Err(_) => {
                        let text = std::fs::read(&real).map_err(|source| ContextError::Read {
                            path: real.display().to_string(),
                            source,
                        })?;
                        (None, Some(text))
                    }
                }
            }
        };

        // The Dockerfile and .dockerignore are always sent (docker's TrimBuildFilesFromExcludes):
        // the daemon reads both, then drops them if they were excluded.
        let ignore = ignore.with_build_files(dockerfile_rel.as_deref().unwrap_or(".dockerignore"));
        let mut entries = Vec::new();
        walk(&root, "", &ignore, &mut entries)?;

        let extra_dockerfile = extra.map(|t| (format!(".dockerfile.{}", random_hex()), t));
        let mut dockerignore = ignore_text;
        if let Some((name, _)) = &extra_dockerfile {
            let mut t = dockerignore.unwrap_or_default();
            t.extend_from_slice(format!("\n{name}\n").as_bytes());
            dockerignore = Some(t);
        }
        // .dockerignore goes out as a generated entry (possibly rewritten), not from the walk.
        entries.retain(|e| e.rel != ".dockerignore");
        let dockerfile = match (&extra_dockerfile, dockerfile_rel) {
            (Some((name, _)), _) => name.clone(),
            (None, Some(rel)) => rel,
            (None, None) => "Dockerfile".into(),
        };
        Ok(DirContext {
            entries,
            dockerignore,
            extra_dockerfile,
            dockerfile,
        })
    }

    /// The relative names that will be sent, in order.
    #[cfg(test)]
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.iter().map(|e| e.rel.clone()).collect();
        if self.dockerignore.is_some() {
            v.push(".dockerignore".into());
        }
        if let Some((n, _)) = &self.extra_dockerfile {
            v.push(n.clone());
        }
        v
    }

    /// Writes the tar into `out`.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W, ContextError> {
        let mut tb = tar::Builder::new(out);
        tb.follow_symlinks(false);
        let werr = |path: &str, source: std::io::Error| ContextError::Read {
            path: path.to_string(),
            source,
        };
        let mut buf = vec![0u8; 64 << 10];
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.meta.mode() & 0o7777);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(u64::try_from(e.meta.mtime()).unwrap_or(0));
            let ft = e.meta.file_type();
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tb.append_data(&mut h, format!("{}/", e.rel), std::io::empty())
                    .map_err(|s| werr(&e.rel, s))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&e.abs).map_err(|s| werr(&e.rel, s))?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tb.append_link(&mut h, &e.rel, &target)
                    .map_err(|s| werr(&e.rel, s))?;
            } else if ft.is_fifo() {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_size(0);
                tb.append_data(&mut h, &e.rel, std::io::empty())
                    .map_err(|s| werr(&e.rel, s))?;
            } else {
                let f = std::fs::File::open(&e.abs).map_err(|s| werr(&e.rel, s))?;
                // The size read now: a file that changes while it is sent is cut or padded to it
                // by `take`, so the tar stays well formed.
                let size = f.metadata().map_err(|s| werr(&e.rel, s))?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                // The header through tar (long names, checksum), the data here: tar copies
                // through an 8 KiB buffer, a read syscall per 8 KiB of a large context.
                tb.append_data(&mut h, &e.rel, std::io::empty())
                    .map_err(|s| werr(&e.rel, s))?;
                copy_padded(f, size, tb.get_mut(), &mut buf).map_err(|s| werr(&e.rel, s))?;
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut generated = |name: &str, data: &[u8], mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(now);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            tb.append_data(&mut h, name, data)
                .map_err(|s| werr(name, s))
        };
        if let Some(t) = &self.dockerignore {
            generated(".dockerignore", t, 0o644)?;
        }
        if let Some((n, t)) = &self.extra_dockerfile {
            generated(n, t, 0o600)?;
        }
        tb.into_inner().map_err(|s| werr("tar", s))
    }
}

/// Writes exactly `size` bytes of `f` (zeros when it shrank meanwhile, cut when it grew, so the
/// tar stays well formed) and the padding to the next 512-byte block.
fn copy_padded(
    mut f: std::fs::File,
    size: u64,
    out: &mut impl Write,
    buf: &mut [u8],
) -> std::io::Result<()> {
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = match f.read(&mut buf[..want]) {
            Ok(0) => {
                buf[..want].fill(0);
                want
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let pad = (512 - size % 512) % 512;
    if pad > 0 {
        out.write_all(&[0u8; 512][..usize::try_from(pad).unwrap_or(0)])?;
    }
    Ok(())
}

/// Walks `dir` (relative name `rel`) in lexical order, as Go's filepath.Walk does, with
/// berth-build's .dockerignore rules (an excluded directory is entered only when an exception
/// may re-include something below it, and is not sent itself), checking that each file to send
/// can be read. berth_build::ignore::walk lists the same paths, but the CLI needs docker's
/// error messages, the read check and a Dockerfile not named `Dockerfile` on the way.
fn walk(
    dir: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let rd = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => ContextError::Stat(dir.display().to_string()),
        _ => ContextError::Walk {
            path: dir.display().to_string(),
            source: e,
        },
    })?;
    let mut names = Vec::new();
    for d in rd {
        let d = d.map_err(|source| ContextError::Walk {
            path: dir.display().to_string(),
            source,
        })?;
        names.push(d.file_name());
    }
    names.sort();
    for name in names {
        let abs = dir.join(&name);
        let name = name.to_string_lossy();
        let r = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => ContextError::Stat(abs.display().to_string()),
            _ => ContextError::Walk {
                path: abs.display().to_string(),
                source: e,
            },
        })?;
        let excluded = ignore.is_excluded(&r);
        let ft = meta.file_type();
        if ft.is_dir() {
            if !excluded {
                out.push(Entry {
                    rel: r.clone(),
                    abs: abs.clone(),
                    meta,
                });
                walk(&abs, &r, ignore, out)?;
            } else if ignore.may_include_below(&r) {
                walk(&abs, &r, ignore, out)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        if ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
            // Go's archive/tar has no sockets, and a context has no business holding devices.
            continue;
        }
        if ft.is_file() {
            // Docker checks every file before sending anything, so a build never starts on half
            // a context.
            if let Err(e) = std::fs::File::open(&abs) {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    return Err(ContextError::Unreadable(abs.display().to_string()));
                }
                return Err(ContextError::Walk {
                    path: abs.display().to_string(),
                    source: e,
                });
            }
        }
        out.push(Entry { rel: r, abs, meta });
    }
    Ok(())
}

/// A `Write` that hands fixed-size chunks to the request body; fails once the body is gone
/// (the daemon answered early), which stops the tar writer.
#[derive(Debug)]
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    /// Bytes handed over so far.
    pub sent: u64,
}

impl ChunkWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
        }
    }

    fn push(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon closed the upload",
            )
        })
    }

    /// Sends what is buffered; returns the total sent.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.push()?;
        Ok(self.sent)
    }

    /// Passes an error to the body so the upload aborts instead of ending cleanly.
    pub fn fail(self, e: std::io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.push()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data of an entry is exactly its header's size, padded to 512: a file that shrank
    /// after its size was read is filled with zeros, one that grew is cut.
    #[test]
    fn copy_padded_keeps_the_tar_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 100_000]).unwrap();
        let mut buf = vec![0u8; 4096];
        for (size, ones) in [
            (100_000u64, 100_000usize),
            (70_000, 70_000),
            (130_001, 100_000),
        ] {
            let mut out = Vec::new();
            copy_padded(std::fs::File::open(&p).unwrap(), size, &mut out, &mut buf).unwrap();
            assert_eq!(out.len() as u64, size.div_ceil(512) * 512, "size {size}");
            assert!(out[..ones].iter().all(|b| *b == 7), "size {size}");
            assert!(out[ones..].iter().all(|b| *b == 0), "size {size}");
        }
        let mut out = Vec::new();
        copy_padded(std::fs::File::open(&p).unwrap(), 0, &mut out, &mut buf).unwrap();
        assert!(out.is_empty());
    }
    use std::os::unix::fs::PermissionsExt;

    fn tar_names(bytes: &[u8]) -> Vec<(String, u32, u64, u64)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn walks_in_order_with_owners_zeroed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::create_dir(d.join("b")).unwrap();
        std::fs::write(d.join("b/z"), "z").unwrap();
        std::fs::write(d.join("a"), "a").unwrap();
        std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("../x", d.join("l")).unwrap();
        let c = DirContext::prepare(d.to_str().unwrap(), None, None).unwrap();
        assert_eq!(c.dockerfile, "Dockerfile");
        assert_eq!(c.names(), vec!["Dockerfile", "a", "b", "b/z", "l"]);
        let tar = c.write_tar(Vec::new()).unwrap();
        let names = tar_names(&tar);
        assert_eq!(names[1], ("a".into(), 0o751, 0, 0));
        assert_eq!(names[2].0, "b/");
        let mut a = tar::Archive::new(tar.as_slice());
        let link = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("l"))
            .unwrap();
        assert_eq!(link.link_name().unwrap().unwrap().to_str(), Some("../x"));
    }

    #[test]
    fn dockerfile_outside_the_context_gets_a_random_name_and_is_ignored() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("f"), "f").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "*.tmp").unwrap();
        let df = t.path().join("other.Dockerfile");
        std::fs::write(&df, "FROM busybox\n").unwrap();
        let c = DirContext::prepare(ctx.to_str().unwrap(), df.to_str(), None).unwrap();
        assert!(c.dockerfile.starts_with(".dockerfile."), "{}", c.dockerfile);
        assert_eq!(c.dockerfile.len(), ".dockerfile.".len() + 20);
        let tar = c.write_tar(Vec::new()).unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let mut seen = std::collections::BTreeMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            seen.insert(p, s);
        }
        assert_eq!(seen[&c.dockerfile], "FROM busybox\n");
        assert_eq!(seen[".dockerignore"], format!("*.tmp\n{}\n", c.dockerfile));
        assert_eq!(seen["f"], "f");
    }

    #[test]
    fn stdin_dockerfile_and_bad_paths() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let c = DirContext::prepare(d.to_str().unwrap(), Some("-"), Some(b"FROM x\n".to_vec()))
            .unwrap();
        assert!(c.dockerfile.starts_with(".dockerfile."));

        let e = DirContext::prepare("/nonexistent/ctx", None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to prepare context: path \"/nonexistent/ctx\" not found"
        );
        let e = DirContext::prepare(d.to_str().unwrap(), None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/Dockerfile: no such file or directory",
                d.display()
            )
        );
        std::fs::write(d.join("file"), "").unwrap();
        let e = DirContext::prepare(d.join("file").to_str().unwrap(), None, None).unwrap_err();
        assert!(e.to_string().contains("context must be a directory"), "{e}");
    }

    #[test]
    fn dockerignore_applied_build_files_kept() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in [
            "keep.log",
            "x.log",
            "logs/a.log",
            "logs/important.log",
            "build/o",
            "Dockerfile",
            "sub/Dockerfile",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        std::fs::write(
            d.join(".dockerignore"),
            "**/*.log\n!keep.log\n!logs/important.log\nbuild\nDockerfile\n.dockerignore\nsub\n",
        )
        .unwrap();
        let c = DirContext::prepare(d.to_str().unwrap(), None, None).unwrap();
        assert_eq!(
            c.names(),
            vec![
                "Dockerfile",
                "keep.log",
                "logs",
                "logs/important.log",
                ".dockerignore"
            ]
        );
        // -f names a Dockerfile below an excluded directory: it is sent, its directory is not.
        let df = d.join("sub/Dockerfile");
        let c = DirContext::prepare(d.to_str().unwrap(), df.to_str(), None).unwrap();
        assert_eq!(c.dockerfile, "sub/Dockerfile");
        assert_eq!(
            c.names(),
            vec![
                "keep.log",
                "logs",
                "logs/important.log",
                "sub/Dockerfile",
                ".dockerignore"
            ]
        );
        std::fs::write(d.join(".dockerignore"), "!\n").unwrap();
        let e = DirContext::prepare(d.to_str().unwrap(), None, None).unwrap_err();
        assert_eq!(e.to_string(), "illegal exclusion pattern: \"!\"");
    }

    #[test]
    fn chunk_writer_stops_when_the_body_is_gone() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let mut w = ChunkWriter::new(tx);
        let err = w.write_all(&vec![0u8; CHUNK * 2]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
