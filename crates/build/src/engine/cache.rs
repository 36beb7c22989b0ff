//! The build cache: one JSON file per step under `<data-root>/build/cache`, named by the step's
//! key (hash of the parent's key, the expanded instruction and the content it reads), holding
//! the image config and layers the step produced. Files survive daemon restarts; a write is a
//! temp file renamed into place, so a crash leaves the old entry or the new one.
//!
//! File content digests of the build context are cached too (`files.json`), keyed by the path,
//! size, mtime and mode a context entry arrives with and the inode it was extracted to: a
//! rebuild of an unchanged context (its files linked from the kept context) then hashes nothing. The same trade-off as make or git's index: a file rewritten with the same
//! size and mtime (to the nanosecond) is taken as unchanged.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_image::digest::{Digest, Hasher};
use berth_image::store::LayerRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BuildError;

/// What one cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The whole image config after the step.
    pub config: Value,
    pub layers: Vec<LayerRecord>,
    /// Uncompressed size of all layers.
    #[serde(default)]
    pub size: u64,
}

/// One cached step, as `docker system df` lists it.
#[derive(Debug, Clone)]
pub struct CachedStep {
    pub key: String,
    pub description: String,
    pub layer: Option<LayerRecord>,
    pub stored: std::time::SystemTime,
}

/// The cache directory.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    files: Mutex<HashMap<String, String>>,
    files_dirty: Mutex<bool>,
}

impl Cache {
    pub fn open(build_root: &Path) -> Result<Cache, BuildError> {
        let dir = build_root.join("cache");
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("create", &dir, e))?;
        let files = std::fs::read(build_root.join("files.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Cache {
            dir,
            files: Mutex::new(files),
            files_dirty: Mutex::new(false),
        })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    pub fn get(&self, key: &Digest) -> Option<Entry> {
        let b = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    pub fn put(&self, key: &Digest, e: &Entry) -> Result<(), BuildError> {
        let p = self.path(key);
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let b = serde_json::to_vec(e)
            .map_err(|e| BuildError::Internal(format!("encode cache entry: {e}")))?;
        std::fs::write(&tmp, b).map_err(|e| BuildError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| BuildError::io("rename", &tmp, e))
    }

    /// The content digest of a context file, from the digest cache when its identity matches.
    pub fn file_digest(&self, rel: &str, path: &Path) -> Result<String, BuildError> {
        let md = std::fs::symlink_metadata(path).map_err(|e| BuildError::io("stat", path, e))?;
        // The inode of the extracted file is part of the identity: a context extracted anew gets
        // new files, so a different file that merely shares path, size, one-second mtime and
        // mode (two projects' Dockerfiles, say) is hashed, not taken from the cache; unchanged
        // files linked from the kept context keep their inode and hit.
        let ident = format!(
            "{rel}\0{}\0{}.{}\0{:o}\0{}:{}",
            md.size(),
            md.mtime(),
            md.mtime_nsec(),
            md.mode(),
            md.dev(),
            md.ino()
        );
        if let Ok(f) = self.files.lock() {
            if let Some(d) = f.get(&ident) {
                return Ok(d.clone());
            }
        }
        let d = hash_file(path)?;
        // Racy files (git's rule): a file whose mtime is not at least a full second before
        // now could change again within the same second, keeping its size and (one-second
        // tar) mtime; its digest is not remembered.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        if md.mtime() + 1 < now {
            if let Ok(mut f) = self.files.lock() {
                f.insert(ident, d.clone());
            }
            if let Ok(mut dirty) = self.files_dirty.lock() {
                *dirty = true;
            }
        }
        Ok(d)
    }

    /// Writes the file digest cache back if it changed.
    pub fn save_files(&self) {
        let dirty = self.files_dirty.lock().map(|d| *d).unwrap_or(false);
        if !dirty {
            return;
        }
        let Ok(f) = self.files.lock() else { return };
        let Some(root) = self.dir.parent() else {
            return;
        };
        let p = root.join("files.json");
        let tmp = root.join(format!("files.json.tmp{}", std::process::id()));
        if let Ok(b) = serde_json::to_vec(&*f) {
            if std::fs::write(&tmp, b).is_ok() {
                let _ = std::fs::rename(&tmp, &p);
            }
        }
    }

    /// Every cached step, for `docker system df`: the key, what the step was (the history
    /// line it wrote), the layer it made (None for a config-only step) and when it was stored.
    pub fn list(build_root: &Path) -> Vec<CachedStep> {
        let Ok(rd) = std::fs::read_dir(build_root.join("cache")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let (Some(stem), Ok(md)) = (p.file_stem(), e.metadata()) else {
                continue;
            };
            let Some(entry) = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
            else {
                continue;
            };
            let last = entry
                .config
                .get("history")
                .and_then(Value::as_array)
                .and_then(|h| h.last());
            let description = last
                .and_then(|h| h.get("created_by"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let empty = last
                .and_then(|h| h.get("empty_layer"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out.push(CachedStep {
                key: format!("sha256:{}", stem.to_string_lossy()),
                description,
                layer: if empty {
                    None
                } else {
                    entry.layers.last().cloned()
                },
                stored: md.modified().unwrap_or(std::time::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| a.stored.cmp(&b.stored).then(a.key.cmp(&b.key)));
        out
    }

    /// The size and age of the context kept for the next build, if any.
    pub fn kept_context(build_root: &Path) -> Option<(u64, std::time::SystemTime)> {
        let p = build_root.join(super::context::KEPT);
        let md = std::fs::metadata(&p).ok()?;
        Some((du(&p), md.modified().unwrap_or(std::time::UNIX_EPOCH)))
    }

    /// Removes every entry; returns the keys removed and the bytes freed.
    pub fn prune(build_root: &Path) -> Result<(Vec<String>, u64), BuildError> {
        let dir = build_root.join("cache");
        let mut removed = Vec::new();
        let mut bytes = 0;
        let rd = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((removed, 0)),
            Err(e) => return Err(BuildError::io("read directory", &dir, e)),
        };
        for e in rd.flatten() {
            let p = e.path();
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(&p).is_ok() {
                bytes += size;
                if let Some(stem) = p.file_stem() {
                    removed.push(format!("sha256:{}", stem.to_string_lossy()));
                }
            }
        }
        for extra in ["files.json", "mounts", super::context::KEPT] {
            let p = build_root.join(extra);
            if p.is_dir() {
                bytes += du(&p);
                let _ = std::fs::remove_dir_all(&p);
            } else if let Ok(m) = std::fs::metadata(&p) {
                bytes += m.len();
                let _ = std::fs::remove_file(&p);
            }
        }
        removed.sort();
        Ok((removed, bytes))
    }
}

fn du(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if md.is_dir() {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0)
    } else {
        md.len()
    }
}

/// sha256 of a file's bytes, as "sha256:<hex>".
pub fn hash_file(path: &Path) -> Result<String, BuildError> {
    let mut f = std::fs::File::open(path).map_err(|e| BuildError::io("open", path, e))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| BuildError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().to_string())
}

/// Builds a step key from its parts.
#[derive(Debug)]
pub struct KeyBuilder(Hasher);

impl KeyBuilder {
    pub fn new(parent: &str) -> KeyBuilder {
        let mut h = Hasher::new();
        h.update(parent.as_bytes());
        h.update(b"\n");
        KeyBuilder(h)
    }

    pub fn add(&mut self, part: &str) -> &mut Self {
        self.0.update(part.len().to_string().as_bytes());
        self.0.update(b":");
        self.0.update(part.as_bytes());
        self
    }

    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_prune() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let mut k = KeyBuilder::new("parent");
        k.add("RUN echo hi");
        let key = k.finish();
        assert!(c.get(&key).is_none());
        c.put(
            &key,
            &Entry {
                config: serde_json::json!({"a": 1}),
                layers: vec![],
                size: 0,
            },
        )
        .unwrap();
        assert_eq!(c.get(&key).unwrap().config["a"], 1);
        // Keys depend on every part and on where parts split.
        let mut a = KeyBuilder::new("p");
        a.add("ab").add("c");
        let mut b = KeyBuilder::new("p");
        b.add("a").add("bc");
        assert_ne!(a.finish(), b.finish());
        // The context kept for the next build goes with the cache.
        let kept = d.path().join(super::super::context::KEPT);
        std::fs::create_dir_all(kept.join("sub")).unwrap();
        std::fs::write(kept.join("sub/f"), vec![0u8; 5000]).unwrap();
        let (removed, bytes) = Cache::prune(d.path()).unwrap();
        assert_eq!(removed, vec![key.to_string()]);
        assert!(bytes >= 5000, "{bytes}");
        assert!(c.get(&key).is_none());
        assert!(!kept.exists());
    }

    #[test]
    fn file_digests_are_cached_by_identity() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let f = d.path().join("f");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        std::fs::write(&f, "one").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let a = c.file_digest("f", &f).unwrap();
        assert_eq!(a, Digest::sha256_of(b"one").to_string());
        std::fs::write(&f, "two!").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let b = c.file_digest("f", &f).unwrap();
        // Same size, same mtime, new content: taken from the cache (the accepted trade-off),
        // unless the mtime is recent (racy), when it is hashed again.
        std::fs::write(&f, "six!").unwrap();
        assert_eq!(
            c.file_digest("f", &f).unwrap(),
            Digest::sha256_of(b"six!").to_string()
        );
        std::fs::write(&f, "two!").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(b, Digest::sha256_of(b"two!").to_string());
        c.save_files();
        let c2 = Cache::open(d.path()).unwrap();
        assert_eq!(c2.file_digest("f", &f).unwrap(), b);
    }
}
