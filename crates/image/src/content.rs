//! The content store: blobs addressed by digest, written once and verified before anyone sees
//! them.
//!
//! Layout under the engine root:
//!
//! ```text
//! content/blobs/<alg>/<hex>      verified blobs, read-only (0444)
//! content/ingest/<alg>-<hex>     partial data of a blob of known digest (resumable)
//! content/ingest/tmp-<unique>    data of a blob whose digest is not known yet
//! ```
//!
//! Writing goes ingest → commit: data is streamed into a file under `ingest/` while it is
//! hashed; `commit` checks size and digest, fsyncs the file, renames it into `blobs/` and fsyncs
//! that directory. A blob therefore appears whole and verified, or not at all; a mismatch
//! deletes the partial data.
//!
//! A partial ingest of a known digest survives its writer (a dropped [`Ingest`], a crash): the
//! next [`ContentStore::writer`] for that digest reopens it, rebuilds the hash state by reading
//! it back, and reports in [`Ingest::offset`] where to resume (an HTTP Range request, say).
//!
//! Concurrency: the writer of a known digest holds an exclusive `flock` on its ingest file for
//! its whole life. A second [`ContentStore::writer`] of the same digest waits for it (a
//! [`ContentStore::try_writer`] fails at once with [`ContentError::Busy`] instead); once it gets
//! the lock it goes on from whatever the first one left. If the first one committed, the blob
//! exists and the second one's `commit` returns Ok without storing anything again (callers that
//! care check [`ContentStore::exists`] before downloading).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::digest::{Digest, Hasher};

/// Algorithms whose blob directories `list` walks.
const ALGORITHMS: [&str; 2] = ["sha256", "sha512"];
/// Copy buffer size for ingest and hash rebuilds.
const BUF_SIZE: usize = 1 << 20;

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The blob is not in the store.
    #[error("blob {digest}: not found")]
    NotFound { digest: Digest },
    /// `read_blob` refused a blob larger than its limit.
    #[error("blob {digest}: {size} bytes, more than the {max} allowed")]
    TooLarge { digest: Digest, size: u64, max: u64 },
    /// The data written does not hash to the expected digest (the partial data was deleted).
    #[error("blob {expected}: digest mismatch: got {got}")]
    DigestMismatch { expected: Digest, got: Digest },
    /// The data written is not the expected size (the partial data was deleted).
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        got: u64,
    },
    /// `try_writer` found another writer of the same digest.
    #[error("blob {digest}: ingest {path} is in use by another writer")]
    Busy { digest: Digest, path: PathBuf },
}

impl ContentError {
    /// True when the error says a blob is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ContentError::NotFound { .. })
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Blobs by digest under `<root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    /// `<engine root>/content`.
    dir: PathBuf,
}

/// A file writer that starts the kernel's writeback every few MiB as data is written, so the
/// fsync that makes the file durable ([`ContentStore::adopt`]) waits for the tail only and not
/// for the whole file: writing a 256 MiB layer and then fsyncing it cost half a second here.
#[derive(Debug)]
pub struct WritebackFile {
    file: File,
    written: u64,
    started: u64,
}

/// How much is written before its writeback is started.
const WRITEBACK_CHUNK: u64 = 8 << 20;

impl WritebackFile {
    pub fn new(file: File) -> WritebackFile {
        WritebackFile {
            file,
            written: 0,
            started: 0,
        }
    }

    pub fn into_inner(self) -> File {
        self.file
    }

    fn start_writeback(&mut self) {
        let (Ok(off), Ok(len)) = (
            i64::try_from(self.started),
            i64::try_from(self.written - self.started),
        ) else {
            return;
        };
        // SAFETY: sync_file_range on a descriptor this struct owns, over bytes already written;
        // it only queues I/O. Failures are ignored: the fsync that follows reports real errors.
        let _ = unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        self.started = self.written;
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_CHUNK {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ContentStore {
    /// `root` is the engine root: blobs go to root/content/blobs/<alg>/<hex>, partial
    /// ingests to root/content/ingest/.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let store = ContentStore {
            dir: root.join("content"),
        };
        for alg in ALGORITHMS {
            let d = store.dir.join("blobs").join(alg);
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let ingest = store.ingest_dir();
        fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
        Ok(store)
    }

    fn ingest_dir(&self) -> PathBuf {
        self.dir.join("ingest")
    }

    fn blob_dir(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join(d.algorithm())
    }

    /// Where the blob of `d` lives (whether or not it is there).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blob_dir(d).join(d.hex())
    }

    /// Where a partial ingest of `d` lives.
    pub fn ingest_path(&self, d: &Digest) -> PathBuf {
        self.ingest_dir()
            .join(format!("{}-{}", d.algorithm(), d.hex()))
    }

    /// Whether the blob is stored.
    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The blob's size, or None when it is not stored.
    pub fn size(&self, d: &Digest) -> Result<Option<u64>, ContentError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens the blob for reading; [`ContentError::NotFound`] when absent.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err("open", &p)(e)),
        }
    }

    /// Reads a whole blob, refusing one larger than `max` bytes.
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, ContentError> {
        let p = self.blob_path(d);
        let f = self.open_blob(d)?;
        let size = f.metadata().map_err(io_err("stat", &p))?.len();
        if size > max {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size,
                max,
            });
        }
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // Blobs are immutable, but read no more than `max` + 1 in case one was tampered with.
        f.take(max.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(io_err("read", &p))?;
        let got = u64::try_from(out.len()).unwrap_or(u64::MAX);
        if got > max {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size: got,
                max,
            });
        }
        Ok(out)
    }

    /// Resumable writer for a blob of known digest: reopens a partial ingest of the same digest
    /// (its `offset()` tells where to resume); `commit()` checks size and digest, fsyncs and
    /// renames into place (or returns Ok if it already exists); a mismatch deletes the partial
    /// data and errors. Waits while another writer of the same digest is active.
    pub fn writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        self.locked_writer(expected, expected_size, true)
    }

    /// As [`writer`](Self::writer), but fails with [`ContentError::Busy`] instead of waiting
    /// when another writer of the same digest is active.
    pub fn try_writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        self.locked_writer(expected, expected_size, false)
    }

    fn locked_writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
        wait: bool,
    ) -> Result<Ingest, ContentError> {
        let path = self.ingest_path(expected);
        let file = lock_ingest_file(&path, expected, wait)?;
        let mut len = file.metadata().map_err(io_err("stat", &path))?.len();
        if expected_size.is_some_and(|s| len > s) {
            // Longer than the blob can be: garbage, start over.
            file.set_len(0).map_err(io_err("truncate", &path))?;
            len = 0;
        }
        let hasher = rehash(&file, &path, expected.hasher(), len)?;
        let mut ingest = Ingest {
            file,
            path,
            blob_dir: self.blob_dir(expected),
            blob: self.blob_path(expected),
            expected: Some(expected.clone()),
            expected_size,
            hasher,
            offset: len,
        };
        ingest
            .file
            .seek(SeekFrom::Start(len))
            .map_err(io_err("seek", &ingest.path))?;
        Ok(ingest)
    }

    /// Streams `r` into the store; with `expected` None the digest (sha256) is computed. On any
    /// error nothing is left behind, neither blob nor partial data.
    pub fn ingest(
        &self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        mut r: impl Read,
    ) -> Result<(Digest, u64), ContentError> {
        let mut ingest = match expected {
            Some(d) => {
                if let Some(done) = self.existing(d, expected_size)? {
                    return Ok(done);
                }
                let mut w = self.writer(d, expected_size)?;
                // The reader starts at 0: whatever a previous writer left is of no use.
                w.restart()?;
                w
            }
            None => self.temp_ingest(expected_size)?,
        };
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let path = ingest.path.clone();
                    ingest.abort();
                    return Err(ContentError::Io {
                        op: "read data for",
                        path,
                        source,
                    });
                }
            };
            if let Err(e) = ingest.write_chunk(&buf[..n]) {
                ingest.abort();
                return Err(e);
            }
        }
        ingest.commit()
    }

    /// Moves a file this process wrote and hashed itself (a layer tar the builder or commit just
    /// produced, with `digest` computed while writing it) into the store without copying or
    /// re-reading it: fsync, rename, fsync the directory. The file must be on the store's
    /// filesystem. When the blob already exists the file is removed. Returns the blob's size.
    pub fn adopt(&self, file: &Path, digest: &Digest) -> Result<u64, ContentError> {
        let blob = self.blob_path(digest);
        if blob.exists() {
            let _ = fs::remove_file(file);
            return fs::metadata(&blob)
                .map(|m| m.len())
                .map_err(io_err("stat", &blob));
        }
        let f = File::open(file).map_err(io_err("open", file))?;
        let size = f.metadata().map_err(io_err("stat", file))?.len();
        f.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", file))?;
        f.sync_all().map_err(io_err("fsync", file))?;
        let dir = self.blob_dir(digest);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        fs::rename(file, &blob).map_err(io_err("rename into place", file))?;
        let d = File::open(&dir).map_err(io_err("open", &dir))?;
        d.sync_all().map_err(io_err("fsync", &dir))?;
        Ok(size)
    }

    /// Stores `bytes`, returning their sha256 digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let d = Digest::sha256_of(bytes);
        if self.exists(&d) {
            return Ok(d);
        }
        self.ingest(None, Some(size), bytes).map(|(d, _)| d)
    }

    /// Removes a blob; [`ContentError::NotFound`] when absent.
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Every stored blob, sorted. Files whose names are not digests are ignored.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for alg in ALGORITHMS {
            let dir = self.dir.join("blobs").join(alg);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read directory", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("read directory", &dir))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if let Ok(d) = Digest::parse(&format!("{alg}:{name}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes ingest files untouched for `max_age` that no writer holds (partial data left by
    /// crashed or abandoned writers); returns how many were removed. A partial of a known
    /// digest is removed under its lock, so a writer never loses the file it works on.
    pub fn prune_ingests(&self, max_age: std::time::Duration) -> Result<usize, ContentError> {
        let dir = self.ingest_dir();
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        let entries = fs::read_dir(&dir).map_err(io_err("read directory", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= max_age));
            if !old {
                continue;
            }
            let name = entry.file_name();
            let temp = name.to_str().is_some_and(|n| n.starts_with("tmp-"));
            // A temp file's writer holds no lock: its age is all we go by.
            let _guard = if temp {
                None
            } else {
                let Ok(f) = OpenOptions::new().read(true).open(&path) else {
                    continue;
                };
                match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                    Ok(l) => Some(l),
                    Err(_) => continue,
                }
            };
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(removed)
    }

    /// `Some((digest, size))` when the blob is already stored (and of the expected size).
    fn existing(
        &self,
        d: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Option<(Digest, u64)>, ContentError> {
        match self.size(d)? {
            Some(size) => {
                if let Some(want) = expected_size.filter(|&w| w != size) {
                    return Err(ContentError::SizeMismatch {
                        digest: d.to_string(),
                        expected: want,
                        got: size,
                    });
                }
                Ok(Some((d.clone(), size)))
            }
            None => Ok(None),
        }
    }

    /// An ingest into a fresh uniquely named file, for content whose digest is not known yet.
    fn temp_ingest(&self, expected_size: Option<u64>) -> Result<Ingest, ContentError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = self
            .ingest_dir()
            .join(format!("tmp-{}-{seq}-{nanos}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(Ingest {
            file: IngestFile::Plain(file),
            path,
            blob_dir: self.dir.join("blobs").join("sha256"),
            blob: PathBuf::new(),
            expected: None,
            expected_size,
            hasher: Hasher::new(),
            offset: 0,
        })
    }
}

/// Opens (creating) the ingest file at `path` and takes its exclusive lock. After the lock is
/// taken, the path must still name the locked file: a writer that committed or aborted before
/// us renamed or removed it, and then we start again on a fresh one.
fn lock_ingest_file(path: &Path, d: &Digest, wait: bool) -> Result<IngestFile, ContentError> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open", path))?;
        let arg = if wait {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockExclusiveNonblock
        };
        let mut file = file;
        let locked = loop {
            match Flock::lock(file, arg) {
                Ok(l) => break l,
                Err((f, Errno::EINTR)) => file = f,
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(ContentError::Busy {
                        digest: d.clone(),
                        path: path.to_path_buf(),
                    })
                }
                Err((_, e)) => return Err(io_err("lock", path)(io::Error::from(e))),
            }
        };
        let ours = locked.metadata().map_err(io_err("stat", path))?;
        match fs::metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                return Ok(IngestFile::Locked(locked));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("stat", path)(e)),
        }
    }
}

/// Feeds the first `len` bytes of `file` into `hasher` (to resume a partial ingest).
fn rehash(file: &File, path: &Path, mut hasher: Hasher, len: u64) -> Result<Hasher, ContentError> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut pos = 0u64;
    while pos < len {
        let want = usize::try_from((len - pos).min(BUF_SIZE as u64)).unwrap_or(BUF_SIZE);
        let n = file
            .read_at(&mut buf[..want], pos)
            .map_err(io_err("read partial ingest", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hasher)
}

/// The ingest file: locked for a known digest, plain for a uniquely named temp file.
#[derive(Debug)]
enum IngestFile {
    Locked(Flock<File>),
    Plain(File),
}

impl std::ops::Deref for IngestFile {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            IngestFile::Locked(f) => f,
            IngestFile::Plain(f) => f,
        }
    }
}

impl std::ops::DerefMut for IngestFile {
    fn deref_mut(&mut self) -> &mut File {
        match self {
            IngestFile::Locked(f) => f,
            IngestFile::Plain(f) => f,
        }
    }
}

/// A blob being written. Dropping it without `commit` keeps the partial data of a known digest
/// for a later writer to resume; `abort` deletes it.
#[derive(Debug)]
pub struct Ingest {
    file: IngestFile,
    path: PathBuf,
    blob_dir: PathBuf,
    /// Empty until known, for content of unknown digest.
    blob: PathBuf,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    hasher: Hasher,
    offset: u64,
}

impl Ingest {
    /// Bytes written so far (including those of a resumed partial ingest).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The partial file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Verifies size and digest, fsyncs, renames into place and fsyncs the directory. Returns Ok
    /// without storing anything if the blob already exists. On a mismatch the partial data is
    /// deleted.
    pub fn commit(mut self) -> Result<(Digest, u64), ContentError> {
        let expected_name = self
            .expected
            .as_ref()
            .map_or_else(|| "(unknown digest)".to_string(), Digest::to_string);
        if let Some(want) = self.expected_size.filter(|&w| w != self.offset) {
            let got = self.offset;
            self.abort();
            return Err(ContentError::SizeMismatch {
                digest: expected_name,
                expected: want,
                got,
            });
        }
        let got = self.hasher.clone().finish();
        let digest = match &self.expected {
            Some(want) if *want != got => {
                let expected = want.clone();
                self.abort();
                return Err(ContentError::DigestMismatch { expected, got });
            }
            Some(want) => want.clone(),
            None => {
                self.blob = self.blob_dir.join(got.hex());
                got
            }
        };
        let size = self.offset;
        if self.blob.is_file() {
            self.abort();
            return Ok((digest, size));
        }
        let result = self.publish();
        if result.is_err() {
            self.abort();
        }
        result.map(|()| (digest, size))
    }

    fn publish(&mut self) -> Result<(), ContentError> {
        self.file.flush().map_err(io_err("flush", &self.path))?;
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", &self.path))?;
        self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        fs::rename(&self.path, &self.blob).map_err(io_err("rename into place", &self.path))?;
        let dir = File::open(&self.blob_dir).map_err(io_err("open", &self.blob_dir))?;
        dir.sync_all().map_err(io_err("fsync", &self.blob_dir))
    }

    /// Deletes the partial data (while still holding the lock, so a waiting writer starts over).
    pub fn abort(self) {
        // Best effort: the file may already be gone (renamed by `publish` before a later step
        // failed, in which case the blob is verified anyway).
        let _ = fs::remove_file(&self.path);
    }

    /// Empties the partial file and the hash state.
    fn restart(&mut self) -> Result<(), ContentError> {
        self.file
            .set_len(0)
            .map_err(io_err("truncate", &self.path))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &self.path))?;
        self.hasher = match &self.expected {
            Some(d) => d.hasher(),
            None => Hasher::new(),
        };
        self.offset = 0;
        Ok(())
    }

    fn write_chunk(&mut self, buf: &[u8]) -> Result<(), ContentError> {
        self.write_all(buf).map_err(io_err("write", &self.path))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if let Some(max) = self.expected_size {
            if self.offset.saturating_add(len) > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "more data than the expected {max} bytes (at offset {})",
                        self.offset
                    ),
                ));
            }
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
