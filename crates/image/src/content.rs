//! Content store (minimal, non-resumable stand-in for the img-manifest branch; the
//! img-content version replaces this file at merge).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, Hasher};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The blob is absent.
    #[error("blob {digest}: not found")]
    NotFound {
        /// The blob.
        digest: Digest,
    },
    /// The blob is larger than the caller accepts.
    #[error("blob {digest} is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The written data does not have the expected digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Expected.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// The written data does not have the expected size.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Expected.
        expected: u64,
        /// Written.
        actual: u64,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Blobs by digest under `root/content/blobs/<alg>/<hex>`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl ContentStore {
    /// Opens (creating) the store under the engine root `root`.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let root = root.join("content");
        for d in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(ContentStore { root })
    }

    /// Where the blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm()).join(d.hex())
    }

    /// Whether the blob is present.
    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The blob's size, None when absent.
    pub fn size(&self, d: &Digest) -> Result<Option<u64>, ContentError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens the blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound { digest: d.clone() }
            } else {
                io_err("open", &p)(e)
            }
        })
    }

    /// Reads a whole blob no larger than `max`.
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, ContentError> {
        let mut f = self.open_blob(d)?;
        let p = self.blob_path(d);
        let size = f.metadata().map_err(io_err("stat", &p))?.len();
        if size > max {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size,
                max,
            });
        }
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(io_err("read", &p))?;
        Ok(v)
    }

    fn new_ingest(
        &self,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        let n = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("ingest")
            .join(format!("{}-{n}", std::process::id()));
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        Ok(Ingest {
            store: self.clone(),
            tmp,
            file,
            hasher: Hasher::new(),
            written: 0,
            expected,
            expected_size,
        })
    }

    /// A writer for a blob of known digest.
    pub fn writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        self.new_ingest(Some(expected.clone()), expected_size)
    }

    /// Streams `r` into the store.
    pub fn ingest(
        &self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        mut r: impl Read,
    ) -> Result<(Digest, u64), ContentError> {
        let mut w = self.new_ingest(expected.cloned(), expected_size)?;
        let tmp = w.tmp.clone();
        if let Err(e) = io::copy(&mut r, &mut w) {
            w.abort();
            return Err(io_err("ingest into", &tmp)(e));
        }
        w.commit()
    }

    /// Stores bytes.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        Ok(self.ingest(None, Some(bytes.len() as u64), bytes)?.0)
    }

    /// Deletes a blob; NotFound when absent.
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

    /// All blobs.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        let blobs = self.root.join("blobs");
        for alg in fs::read_dir(&blobs).map_err(io_err("read", &blobs))? {
            let alg = alg.map_err(io_err("read", &blobs))?;
            let dir = alg.path();
            for e in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
                let e = e.map_err(io_err("read", &dir))?;
                let s = format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    e.file_name().to_string_lossy()
                );
                if let Ok(d) = Digest::parse(&s) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written.
#[derive(Debug)]
pub struct Ingest {
    store: ContentStore,
    tmp: PathBuf,
    file: File,
    hasher: Hasher,
    written: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Ingest {
    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Verifies and moves the blob into place.
    pub fn commit(self) -> Result<(Digest, u64), ContentError> {
        let actual = self.hasher.clone().finish();
        if let Some(expected) = &self.expected {
            if *expected != actual {
                let _ = fs::remove_file(&self.tmp);
                return Err(ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        if let Some(size) = self.expected_size {
            if size != self.written {
                let _ = fs::remove_file(&self.tmp);
                return Err(ContentError::SizeMismatch {
                    digest: actual,
                    expected: size,
                    actual: self.written,
                });
            }
        }
        self.file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        let dest = self.store.blob_path(&actual);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::rename(&self.tmp, &dest).map_err(io_err("rename into", &dest))?;
        Ok((actual, self.written))
    }

    /// Drops the partial data.
    pub fn abort(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}
