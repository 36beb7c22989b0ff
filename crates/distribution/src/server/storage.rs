//! The registry's storage: blobs in the engine's content store (shared by every repository,
//! written ingest → verify → rename), and everything else in one redb database
//! (`<root>/registry.redb`), so a crash leaves the old or the new state, never half of one.
//!
//! Tables (keys join a repository name and a second part with NUL, which no name contains):
//!
//! ```text
//! repos      name                      -> created (unix seconds)
//! blobs      name \0 digest            -> linked (unix seconds): the repository holds the blob
//! manifests  name \0 digest            -> media type
//! tags       name \0 tag               -> digest
//! referrers  name \0 subject \0 digest -> descriptor JSON of the referrer
//! uploads    uuid                      -> upload state JSON (repository, start time)
//! touched    digest                    -> last time anything linked or referenced it
//! ```
//!
//! `touched` is what makes the garbage collector safe while serving: every write that makes a
//! digest reachable (an upload finishing, a mount, a manifest put and everything it names)
//! updates it in the same write transaction that checks the blobs exist, and the collector
//! deletes a blob only inside a write transaction that first re-reads it (see gc.rs).
//!
//! Upload data lives in `<root>/uploads/<uuid>` until the upload finishes; the content store
//! then verifies and commits it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_image::content::{ContentError, ContentStore};
use berth_image::digest::Digest;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const REPOS: TableDefinition<&str, u64> = TableDefinition::new("repos");
pub(crate) const BLOBS: TableDefinition<&str, u64> = TableDefinition::new("blobs");
const MANIFESTS: TableDefinition<&str, &str> = TableDefinition::new("manifests");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const REFERRERS: TableDefinition<&str, &str> = TableDefinition::new("referrers");
const UPLOADS: TableDefinition<&str, &str> = TableDefinition::new("uploads");
pub(crate) const TOUCHED: TableDefinition<&str, u64> = TableDefinition::new("touched");

/// Largest manifest accepted (the spec lets registries refuse more than 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Errors of the registry storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob {0}: unknown to this repository")]
    BlobUnknown(String),
    #[error("manifest {0}: unknown")]
    ManifestUnknown(String),
    #[error("repository {0}: unknown")]
    NameUnknown(String),
    #[error("upload {0}: unknown")]
    UploadUnknown(String),
    #[error("upload {0}: another request is writing to it")]
    UploadBusy(String),
    #[error("blob {expected}: digest mismatch: the data hashes to {got}")]
    DigestMismatch { expected: String, got: String },
    #[error("blob {digest}: size mismatch: {reason}")]
    SizeMismatch { digest: String, reason: String },
    #[error("manifest references {0}, which is not in this repository")]
    ManifestBlobUnknown(String),
    #[error("invalid manifest: {0}")]
    ManifestInvalid(String),
    #[error("metadata database: {0}")]
    Db(String),
    #[error("content store: {0}")]
    Content(ContentError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("storage task: {0}")]
    Join(String),
}

impl From<ContentError> for StorageError {
    fn from(e: ContentError) -> StorageError {
        match e {
            ContentError::DigestMismatch { expected, got } => StorageError::DigestMismatch {
                expected: expected.to_string(),
                got: got.to_string(),
            },
            ContentError::SizeMismatch {
                digest,
                expected,
                got,
            } => StorageError::SizeMismatch {
                digest,
                reason: format!("expected {expected} bytes, got {got}"),
            },
            ContentError::NotFound { digest } => StorageError::BlobUnknown(digest.to_string()),
            e => StorageError::Content(e),
        }
    }
}

fn db<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StorageError {
    move |e| StorageError::Db(format!("{what}: {}", e.into()))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key(a: &str, b: &str) -> String {
    format!("{a}\0{b}")
}

/// The range of keys that start with `name\0`.
fn prefix(name: &str) -> (String, String) {
    (format!("{name}\0"), format!("{name}\u{1}"))
}

/// The state of an upload kept in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadState {
    pub repo: String,
    pub started: u64,
}

/// A manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// What a manifest names, read from its JSON.
#[derive(Debug, Clone, Default)]
pub struct ManifestRefs {
    pub media_type: Option<String>,
    /// Config and layers (and an artifact manifest's blobs).
    pub blobs: Vec<Digest>,
    /// Child manifests of an index.
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
}

fn digest_field(v: &serde_json::Value, what: &str) -> Result<Digest, StorageError> {
    let s = v
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| StorageError::ManifestInvalid(format!("{what} has no digest")))?;
    Digest::parse(s).map_err(|e| StorageError::ManifestInvalid(format!("{what} digest {s:?}: {e}")))
}

/// Parses a manifest's JSON for what it references.
pub fn manifest_refs(bytes: &[u8]) -> Result<ManifestRefs, StorageError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| StorageError::ManifestInvalid(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| StorageError::ManifestInvalid("not a JSON object".into()))?;
    let mut r = ManifestRefs {
        media_type: obj
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        artifact_type: obj
            .get("artifactType")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        annotations: obj.get("annotations").cloned(),
        ..ManifestRefs::default()
    };
    match obj.get("schemaVersion").and_then(|s| s.as_u64()) {
        Some(2) => {}
        Some(1) => {
            return Err(StorageError::ManifestInvalid(
                "schema 1 manifests are not supported".into(),
            ))
        }
        _ => {
            return Err(StorageError::ManifestInvalid(
                "schemaVersion must be 2".into(),
            ))
        }
    }
    if let Some(c) = obj.get("config") {
        r.blobs.push(digest_field(c, "config")?);
        r.config_media_type = c
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
    }
    for field in ["layers", "blobs"] {
        if let Some(ls) = obj.get(field) {
            let ls = ls
                .as_array()
                .ok_or_else(|| StorageError::ManifestInvalid(format!("{field} is not a list")))?;
            for l in ls {
                r.blobs.push(digest_field(l, field)?);
            }
        }
    }
    if let Some(ms) = obj.get("manifests") {
        let ms = ms
            .as_array()
            .ok_or_else(|| StorageError::ManifestInvalid("manifests is not a list".into()))?;
        for m in ms {
            r.manifests.push(digest_field(m, "manifests entry")?);
        }
    }
    if let Some(s) = obj.get("subject") {
        r.subject = Some(digest_field(s, "subject")?);
    }
    let is_index = matches!(r.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST));
    if !is_index && obj.get("config").is_none() && obj.get("blobs").is_none() {
        return Err(StorageError::ManifestInvalid(
            "an image manifest needs a config".into(),
        ));
    }
    if is_index && obj.get("manifests").is_none() {
        return Err(StorageError::ManifestInvalid(
            "an index needs manifests".into(),
        ));
    }
    Ok(r)
}

/// Storage of one registry root.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) db: Database,
    uploads_dir: PathBuf,
    /// Uploads a request is writing to right now.
    busy: Mutex<HashSet<String>>,
}

/// Marks an upload busy for the life of the guard.
#[derive(Debug)]
pub struct UploadGuard<'a> {
    storage: &'a Storage,
    uuid: String,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.storage.busy.lock() {
            b.remove(&self.uuid);
        }
    }
}

impl Storage {
    /// Opens (creating) the storage under `root`.
    pub fn open(root: &Path) -> Result<Storage, StorageError> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        let content = ContentStore::open(root)?;
        let uploads_dir = root.join("uploads");
        fs::create_dir_all(&uploads_dir).map_err(io_err("create", &uploads_dir))?;
        let path = root.join("registry.redb");
        let db = Database::create(&path).map_err(|e| {
            StorageError::Db(format!("open {}: {}", path.display(), redb::Error::from(e)))
        })?;
        let txn = db.begin_write().map_err(db_("begin"))?;
        txn.open_table(REPOS).map_err(db_("create table"))?;
        txn.open_table(BLOBS).map_err(db_("create table"))?;
        txn.open_table(MANIFESTS).map_err(db_("create table"))?;
        txn.open_table(TAGS).map_err(db_("create table"))?;
        txn.open_table(REFERRERS).map_err(db_("create table"))?;
        txn.open_table(UPLOADS).map_err(db_("create table"))?;
        txn.open_table(TOUCHED).map_err(db_("create table"))?;
        txn.commit().map_err(db_("commit"))?;
        Ok(Storage {
            root: root.to_path_buf(),
            content,
            db,
            uploads_dir,
            busy: Mutex::new(HashSet::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    // ---- blobs ----

    /// The blob's size when `repo` holds it.
    pub fn blob_size(&self, repo: &str, d: &Digest) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let t = txn.open_table(BLOBS).map_err(db_("open blobs"))?;
        if t.get(key(repo, d.as_str()).as_str())
            .map_err(db_("read blobs"))?
            .is_none()
        {
            return Ok(None);
        }
        Ok(self.content.size(d)?)
    }

    /// Opens the blob of `repo` for reading, with its size.
    pub fn open_blob(&self, repo: &str, d: &Digest) -> Result<(File, u64), StorageError> {
        if self.blob_size(repo, d)?.is_none() {
            return Err(StorageError::BlobUnknown(d.to_string()));
        }
        let f = self.content.open_blob(d)?;
        let size = f
            .metadata()
            .map_err(io_err("stat", &self.content.blob_path(d)))?
            .len();
        Ok((f, size))
    }

    /// Removes the blob from `repo` (the data stays until the garbage collector runs).
    pub fn unlink_blob(&self, repo: &str, d: &Digest) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let mut t = txn.open_table(BLOBS).map_err(db_("open blobs"))?;
            if t.remove(key(repo, d.as_str()).as_str())
                .map_err(db_("remove blob link"))?
                .is_none()
            {
                return Err(StorageError::BlobUnknown(d.to_string()));
            }
        }
        txn.commit().map_err(db_("commit"))
    }

    /// Links a stored blob into `repo`; false when the store does not have it.
    pub fn link_blob(&self, repo: &str, d: &Digest) -> Result<bool, StorageError> {
        let now = now_secs();
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        // Checked inside the write transaction: the collector deletes only inside one.
        if !self.content.exists(d) {
            return Ok(false);
        }
        {
            let mut t = txn.open_table(BLOBS).map_err(db_("open blobs"))?;
            t.insert(key(repo, d.as_str()).as_str(), now)
                .map_err(db_("link blob"))?;
            let mut r = txn.open_table(REPOS).map_err(db_("open repos"))?;
            if r.get(repo).map_err(db_("read repos"))?.is_none() {
                r.insert(repo, now).map_err(db_("add repo"))?;
            }
            let mut tt = txn.open_table(TOUCHED).map_err(db_("open touched"))?;
            tt.insert(d.as_str(), now).map_err(db_("touch"))?;
        }
        txn.commit().map_err(db_("commit"))?;
        Ok(true)
    }

    /// Mounts `d` from repository `from` into `repo`: true when `from` holds it.
    pub fn mount_blob(&self, repo: &str, from: &str, d: &Digest) -> Result<bool, StorageError> {
        if self.blob_size(from, d)?.is_none() {
            return Ok(false);
        }
        self.link_blob(repo, d)
    }

    /// Records that `d` is about to be written, so a collector running now keeps it.
    fn touch(&self, d: &Digest) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let mut tt = txn.open_table(TOUCHED).map_err(db_("open touched"))?;
            tt.insert(d.as_str(), now_secs()).map_err(db_("touch"))?;
        }
        txn.commit().map_err(db_("commit"))
    }

    // ---- uploads ----

    fn upload_path(&self, uuid: &str) -> PathBuf {
        self.uploads_dir.join(uuid)
    }

    /// Starts an upload session into `repo`; returns its id.
    pub fn start_upload(&self, repo: &str) -> Result<String, StorageError> {
        let uuid = new_uuid();
        let path = self.upload_path(&uuid);
        File::create(&path).map_err(io_err("create", &path))?;
        let state = UploadState {
            repo: repo.to_string(),
            started: now_secs(),
        };
        let json = serde_json::to_string(&state).map_err(|e| StorageError::Db(e.to_string()))?;
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let mut t = txn.open_table(UPLOADS).map_err(db_("open uploads"))?;
            t.insert(uuid.as_str(), json.as_str())
                .map_err(db_("add upload"))?;
        }
        txn.commit().map_err(db_("commit"))?;
        Ok(uuid)
    }

    /// The upload's state and current size; [`StorageError::UploadUnknown`] unless it belongs
    /// to `repo`.
    pub fn upload(&self, repo: &str, uuid: &str) -> Result<(UploadState, u64), StorageError> {
        let unknown = || StorageError::UploadUnknown(uuid.to_string());
        // Ids are ours (hex); anything else never reaches the filesystem.
        if uuid.is_empty() || uuid.len() > 64 || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let t = txn.open_table(UPLOADS).map_err(db_("open uploads"))?;
        let json = t
            .get(uuid)
            .map_err(db_("read uploads"))?
            .ok_or_else(unknown)?
            .value()
            .to_string();
        let state: UploadState = serde_json::from_str(&json).map_err(|_| unknown())?;
        if state.repo != repo {
            return Err(unknown());
        }
        let path = self.upload_path(uuid);
        let size = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(unknown()),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        Ok((state, size))
    }

    /// Claims the upload for one request; UploadBusy while another holds it.
    pub fn claim_upload(&self, uuid: &str) -> Result<UploadGuard<'_>, StorageError> {
        let mut b = self
            .busy
            .lock()
            .map_err(|_| StorageError::Db("upload table lock poisoned".into()))?;
        if !b.insert(uuid.to_string()) {
            return Err(StorageError::UploadBusy(uuid.to_string()));
        }
        Ok(UploadGuard {
            storage: self,
            uuid: uuid.to_string(),
        })
    }

    /// Opens the upload's data file for appending.
    pub fn upload_file(&self, uuid: &str) -> Result<File, StorageError> {
        let path = self.upload_path(uuid);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))
    }

    /// Verifies the upload's data against `d`, commits it to the content store and links it
    /// into the repository. A mismatch stores nothing and ends the upload.
    pub fn finish_upload(&self, repo: &str, uuid: &str, d: &Digest) -> Result<u64, StorageError> {
        let path = self.upload_path(uuid);
        self.touch(d)?;
        let f = File::open(&path).map_err(io_err("open", &path))?;
        let result = if self.content.exists(d) {
            // The store would take the existing blob without reading: verify the data anyway,
            // so a wrong upload is refused whether or not someone else pushed the blob.
            verify_file(f, &path, d)
        } else {
            self.content
                .ingest(Some(d), None, io::BufReader::with_capacity(1 << 20, f))
                .map_err(StorageError::from)
        };
        self.remove_upload(uuid)?;
        let (_, size) = result?;
        self.link_blob(repo, d)?;
        Ok(size)
    }

    /// Stores a whole blob given in one request (monolithic upload).
    pub fn put_blob(
        &self,
        repo: &str,
        d: &Digest,
        data: impl io::Read,
    ) -> Result<u64, StorageError> {
        self.touch(d)?;
        let (_, size) = self.content.ingest(Some(d), None, data)?;
        self.link_blob(repo, d)?;
        Ok(size)
    }

    /// Cancels an upload: its data and state go.
    pub fn remove_upload(&self, uuid: &str) -> Result<(), StorageError> {
        let path = self.upload_path(uuid);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let mut t = txn.open_table(UPLOADS).map_err(db_("open uploads"))?;
            t.remove(uuid).map_err(db_("remove upload"))?;
        }
        txn.commit().map_err(db_("commit"))
    }

    /// Removes uploads whose data was last written more than `max_age` ago (and upload files
    /// without state, left by a crash between the two); returns how many went.
    pub fn purge_uploads(&self, max_age: Duration) -> Result<usize, StorageError> {
        let now = SystemTime::now();
        let mut removed = 0;
        let known: Vec<String> = {
            let txn = self.db.begin_read().map_err(db_("begin"))?;
            let t = txn.open_table(UPLOADS).map_err(db_("open uploads"))?;
            let mut v = Vec::new();
            for e in t.iter().map_err(db_("list uploads"))? {
                let (k, _) = e.map_err(db_("list uploads"))?;
                v.push(k.value().to_string());
            }
            v
        };
        let mut ids: HashSet<String> = known.into_iter().collect();
        let entries = fs::read_dir(&self.uploads_dir).map_err(io_err("read", &self.uploads_dir))?;
        for e in entries {
            let e = e.map_err(io_err("read", &self.uploads_dir))?;
            if let Some(n) = e.file_name().to_str() {
                ids.insert(n.to_string());
            }
        }
        for uuid in ids {
            let age = fs::metadata(self.upload_path(&uuid))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok());
            // No data file: the state is left over; else old enough to be abandoned.
            let stale = age.is_none_or(|a| a >= max_age);
            if !stale {
                continue;
            }
            // Never under a request that is writing to it right now.
            let Ok(_guard) = self.claim_upload(&uuid) else {
                continue;
            };
            self.remove_upload(&uuid)?;
            removed += 1;
        }
        Ok(removed)
    }

    // ---- manifests ----

    fn resolve_ref(
        &self,
        txn: &redb::ReadTransaction,
        repo: &str,
        reference: &super::names::Reference,
    ) -> Result<Option<Digest>, StorageError> {
        use super::names::Reference;
        match reference {
            Reference::Digest(d) => {
                let t = txn.open_table(MANIFESTS).map_err(db_("open manifests"))?;
                Ok(t.get(key(repo, d.as_str()).as_str())
                    .map_err(db_("read manifests"))?
                    .map(|_| d.clone()))
            }
            Reference::Tag(tag) => {
                let t = txn.open_table(TAGS).map_err(db_("open tags"))?;
                match t.get(key(repo, tag).as_str()).map_err(db_("read tags"))? {
                    Some(v) => Ok(Digest::parse(v.value()).ok()),
                    None => Ok(None),
                }
            }
        }
    }

    /// The manifest `reference` names in `repo`.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &super::names::Reference,
    ) -> Result<StoredManifest, StorageError> {
        let unknown = || StorageError::ManifestUnknown(reference.to_string());
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let d = self
            .resolve_ref(&txn, repo, reference)?
            .ok_or_else(unknown)?;
        let t = txn.open_table(MANIFESTS).map_err(db_("open manifests"))?;
        let media_type = t
            .get(key(repo, d.as_str()).as_str())
            .map_err(db_("read manifests"))?
            .ok_or_else(unknown)?
            .value()
            .to_string();
        let bytes = match self.content.read_blob(&d, MAX_MANIFEST as u64) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        Ok(StoredManifest {
            digest: d,
            media_type,
            bytes,
        })
    }

    /// Stores a manifest under `repo` (and tags it when `tag` is given), after checking that
    /// everything it references is there. Returns its digest and subject.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        expected: Option<&Digest>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(Digest, Option<Digest>), StorageError> {
        let refs = manifest_refs(bytes)?;
        if let Some(mt) = &refs.media_type {
            if mt != media_type {
                return Err(StorageError::ManifestInvalid(format!(
                    "mediaType {mt} does not match Content-Type {media_type}"
                )));
            }
        }
        let digest = match expected {
            Some(e) => {
                let mut h = e.hasher();
                h.update(bytes);
                let got = h.finish();
                if &got != e {
                    return Err(StorageError::DigestMismatch {
                        expected: e.to_string(),
                        got: got.to_string(),
                    });
                }
                got
            }
            None => Digest::sha256_of(bytes),
        };
        self.touch(&digest)?;
        if !self.content.exists(&digest) {
            let size = bytes.len() as u64;
            self.content.ingest(Some(&digest), Some(size), bytes)?;
        }
        let now = now_secs();
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let blobs = txn.open_table(BLOBS).map_err(db_("open blobs"))?;
            let mut manifests = txn.open_table(MANIFESTS).map_err(db_("open manifests"))?;
            let mut touched = txn.open_table(TOUCHED).map_err(db_("open touched"))?;
            for b in &refs.blobs {
                let linked = blobs
                    .get(key(repo, b.as_str()).as_str())
                    .map_err(db_("read blobs"))?
                    .is_some();
                // Inside the write transaction, so the collector cannot delete it meanwhile.
                if !linked || !self.content.exists(b) {
                    return Err(StorageError::ManifestBlobUnknown(b.to_string()));
                }
                touched.insert(b.as_str(), now).map_err(db_("touch"))?;
            }
            for m in &refs.manifests {
                let known = manifests
                    .get(key(repo, m.as_str()).as_str())
                    .map_err(db_("read manifests"))?
                    .is_some();
                if !known || !self.content.exists(m) {
                    return Err(StorageError::ManifestBlobUnknown(m.to_string()));
                }
                touched.insert(m.as_str(), now).map_err(db_("touch"))?;
            }
            if !self.content.exists(&digest) {
                return Err(StorageError::ManifestBlobUnknown(digest.to_string()));
            }
            touched.insert(digest.as_str(), now).map_err(db_("touch"))?;
            manifests
                .insert(key(repo, digest.as_str()).as_str(), media_type)
                .map_err(db_("add manifest"))?;
            if let Some(tag) = tag {
                let mut tags = txn.open_table(TAGS).map_err(db_("open tags"))?;
                tags.insert(key(repo, tag).as_str(), digest.as_str())
                    .map_err(db_("tag"))?;
            }
            if let Some(s) = &refs.subject {
                let mut desc = serde_json::json!({
                    "mediaType": media_type,
                    "digest": digest.as_str(),
                    "size": bytes.len(),
                });
                if let Some(at) = refs
                    .artifact_type
                    .as_ref()
                    .or(refs.config_media_type.as_ref())
                {
                    desc["artifactType"] = serde_json::Value::String(at.clone());
                }
                if let Some(a) = &refs.annotations {
                    desc["annotations"] = a.clone();
                }
                let mut r = txn.open_table(REFERRERS).map_err(db_("open referrers"))?;
                let k = format!("{repo}\0{}\0{}", s.as_str(), digest.as_str());
                r.insert(k.as_str(), desc.to_string().as_str())
                    .map_err(db_("add referrer"))?;
            }
            let mut r = txn.open_table(REPOS).map_err(db_("open repos"))?;
            if r.get(repo).map_err(db_("read repos"))?.is_none() {
                r.insert(repo, now).map_err(db_("add repo"))?;
            }
        }
        txn.commit().map_err(db_("commit"))?;
        Ok((digest, refs.subject))
    }

    /// Deletes a tag, or a manifest by digest with every tag that names it.
    pub fn delete_manifest(
        &self,
        repo: &str,
        reference: &super::names::Reference,
    ) -> Result<(), StorageError> {
        use super::names::Reference;
        let unknown = || StorageError::ManifestUnknown(reference.to_string());
        let txn = self.db.begin_write().map_err(db_("begin"))?;
        {
            let mut tags = txn.open_table(TAGS).map_err(db_("open tags"))?;
            match reference {
                Reference::Tag(t) => {
                    tags.remove(key(repo, t).as_str())
                        .map_err(db_("remove tag"))?
                        .ok_or_else(unknown)?;
                }
                Reference::Digest(d) => {
                    let mut manifests = txn.open_table(MANIFESTS).map_err(db_("open manifests"))?;
                    manifests
                        .remove(key(repo, d.as_str()).as_str())
                        .map_err(db_("remove manifest"))?
                        .ok_or_else(unknown)?;
                    let (lo, hi) = prefix(repo);
                    let mut doomed = Vec::new();
                    for e in tags
                        .range(lo.as_str()..hi.as_str())
                        .map_err(db_("list tags"))?
                    {
                        let (k, v) = e.map_err(db_("list tags"))?;
                        if v.value() == d.as_str() {
                            doomed.push(k.value().to_string());
                        }
                    }
                    for k in doomed {
                        tags.remove(k.as_str()).map_err(db_("remove tag"))?;
                    }
                    // Its entry in its subject's referrers list goes too.
                    let mut refs = txn.open_table(REFERRERS).map_err(db_("open referrers"))?;
                    let suffix = format!("\0{}", d.as_str());
                    let mut doomed = Vec::new();
                    for e in refs
                        .range(lo.as_str()..hi.as_str())
                        .map_err(db_("list referrers"))?
                    {
                        let (k, _) = e.map_err(db_("list referrers"))?;
                        if k.value().ends_with(&suffix) {
                            doomed.push(k.value().to_string());
                        }
                    }
                    for k in doomed {
                        refs.remove(k.as_str()).map_err(db_("remove referrer"))?;
                    }
                }
            }
        }
        txn.commit().map_err(db_("commit"))
    }

    /// Tags of `repo`, sorted, after `last`, at most `n`; and whether more follow.
    pub fn tags(
        &self,
        repo: &str,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<(Vec<String>, bool), StorageError> {
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let repos = txn.open_table(REPOS).map_err(db_("open repos"))?;
        if repos.get(repo).map_err(db_("read repos"))?.is_none() {
            return Err(StorageError::NameUnknown(repo.to_string()));
        }
        let t = txn.open_table(TAGS).map_err(db_("open tags"))?;
        let (lo, hi) = prefix(repo);
        let start = match last {
            Some(l) => format!("{lo}{l}\0"),
            None => lo.clone(),
        };
        let mut out = Vec::new();
        let mut more = false;
        for e in t
            .range(start.as_str()..hi.as_str())
            .map_err(db_("list tags"))?
        {
            let (k, _) = e.map_err(db_("list tags"))?;
            if n.is_some_and(|n| out.len() >= n) {
                more = true;
                break;
            }
            out.push(k.value()[lo.len()..].to_string());
        }
        Ok((out, more))
    }

    /// Repository names, sorted, after `last`, at most `n`; and whether more follow.
    pub fn catalog(
        &self,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<(Vec<String>, bool), StorageError> {
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let t = txn.open_table(REPOS).map_err(db_("open repos"))?;
        let mut out = Vec::new();
        let mut more = false;
        let iter = match last {
            Some(l) => {
                let start = format!("{l}\0");
                t.range(start.as_str()..).map_err(db_("list repos"))?
            }
            None => t.iter().map_err(db_("list repos"))?,
        };
        for e in iter {
            let (k, _) = e.map_err(db_("list repos"))?;
            if n.is_some_and(|n| out.len() >= n) {
                more = true;
                break;
            }
            out.push(k.value().to_string());
        }
        Ok((out, more))
    }

    /// Descriptors of the manifests in `repo` whose subject is `subject`, optionally only
    /// those of `artifact_type`.
    pub fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, StorageError> {
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let t = txn.open_table(REFERRERS).map_err(db_("open referrers"))?;
        let lo = format!("{repo}\0{}\0", subject.as_str());
        let hi = format!("{repo}\0{}\u{1}", subject.as_str());
        let mut out = Vec::new();
        for e in t
            .range(lo.as_str()..hi.as_str())
            .map_err(db_("list referrers"))?
        {
            let (_, v) = e.map_err(db_("list referrers"))?;
            let Ok(desc) = serde_json::from_str::<serde_json::Value>(v.value()) else {
                continue;
            };
            if let Some(at) = artifact_type {
                if desc.get("artifactType").and_then(|a| a.as_str()) != Some(at) {
                    continue;
                }
            }
            out.push(desc);
        }
        Ok(out)
    }

    /// Every (repository, manifest digest) pair, for the collector's mark phase.
    pub(crate) fn all_manifests(&self) -> Result<Vec<Digest>, StorageError> {
        let txn = self.db.begin_read().map_err(db_("begin"))?;
        let t = txn.open_table(MANIFESTS).map_err(db_("open manifests"))?;
        let mut out = Vec::new();
        for e in t.iter().map_err(db_("list manifests"))? {
            let (k, _) = e.map_err(db_("list manifests"))?;
            if let Some((_, d)) = k.value().split_once('\0') {
                if let Ok(d) = Digest::parse(d) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Number of stored blobs (for /metrics).
    pub fn blob_count(&self) -> usize {
        self.content.list().map_or(0, |l| l.len())
    }
}

pub(crate) fn db_<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StorageError {
    db(what)
}

/// Hashes the file and compares with `d`; returns its size.
fn verify_file(mut f: File, path: &Path, d: &Digest) -> Result<(Digest, u64), StorageError> {
    use std::io::Read;
    let mut h = d.hasher();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", path)(e)),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    let got = h.finish();
    if &got != d {
        return Err(StorageError::DigestMismatch {
            expected: d.to_string(),
            got: got.to_string(),
        });
    }
    Ok((got, size))
}

/// A random 128-bit id in hex (what the spec calls the upload's UUID; any opaque string does).
fn new_uuid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::names::Reference;

    fn manifest(config: &Digest, layers: &[&Digest]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": 1}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn manifest_put_checks_blobs_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let cfg = Digest::sha256_of(b"{}");
        let layer = Digest::sha256_of(b"layer");
        let m = manifest(&cfg, &[&layer]);
        assert!(matches!(
            s.put_manifest("a/b", Some("t"), None, OCI_MANIFEST, &m),
            Err(StorageError::ManifestBlobUnknown(_))
        ));
        s.put_blob("a/b", &cfg, &b"{}"[..]).unwrap();
        s.put_blob("a/b", &layer, &b"layer"[..]).unwrap();
        let (d, subj) = s
            .put_manifest("a/b", Some("t"), None, OCI_MANIFEST, &m)
            .unwrap();
        assert_eq!(d, Digest::sha256_of(&m));
        assert!(subj.is_none());
        let got = s.get_manifest("a/b", &Reference::Tag("t".into())).unwrap();
        assert_eq!(got.bytes, m);
        assert_eq!(got.media_type, OCI_MANIFEST);
        // Another repository does not see it, nor the blobs.
        assert!(s.get_manifest("c", &Reference::Digest(d.clone())).is_err());
        assert_eq!(s.blob_size("c", &layer).unwrap(), None);
        assert_eq!(s.tags("a/b", None, None).unwrap().0, vec!["t".to_string()]);
        s.delete_manifest("a/b", &Reference::Digest(d)).unwrap();
        assert!(s.tags("a/b", None, None).unwrap().0.is_empty());
    }

    #[test]
    fn bad_manifests_are_invalid() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{\"schemaVersion\":1}",
            b"{\"schemaVersion\":2}",
        ] {
            assert!(
                matches!(manifest_refs(bad), Err(StorageError::ManifestInvalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn digest_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let want = Digest::sha256_of(b"good");
        let u = s.start_upload("r").unwrap();
        std::io::Write::write_all(&mut s.upload_file(&u).unwrap(), b"evil").unwrap();
        assert!(matches!(
            s.finish_upload("r", &u, &want),
            Err(StorageError::DigestMismatch { .. })
        ));
        assert!(!s.content.exists(&want));
        assert!(s.content.list().unwrap().is_empty());
        assert!(matches!(
            s.upload("r", &u),
            Err(StorageError::UploadUnknown(_))
        ));

        // Same when the blob is already stored: the data is checked all the same.
        s.put_blob("other", &want, &b"good"[..]).unwrap();
        let u = s.start_upload("r").unwrap();
        std::io::Write::write_all(&mut s.upload_file(&u).unwrap(), b"evil").unwrap();
        assert!(matches!(
            s.finish_upload("r", &u, &want),
            Err(StorageError::DigestMismatch { .. })
        ));
        assert_eq!(s.blob_size("r", &want).unwrap(), None);
        let u = s.start_upload("r").unwrap();
        std::io::Write::write_all(&mut s.upload_file(&u).unwrap(), b"good").unwrap();
        assert_eq!(s.finish_upload("r", &u, &want).unwrap(), 4);
        assert_eq!(s.blob_size("r", &want).unwrap(), Some(4));
    }

    #[test]
    fn pagination_of_tags_and_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let cfg = Digest::sha256_of(b"{}");
        for r in ["a", "b", "c"] {
            s.put_blob(r, &cfg, &b"{}"[..]).unwrap();
        }
        let m = manifest(&cfg, &[]);
        for t in ["t1", "t2", "t3"] {
            s.put_manifest("a", Some(t), None, OCI_MANIFEST, &m)
                .unwrap();
        }
        assert_eq!(
            s.tags("a", None, Some(2)).unwrap(),
            (vec!["t1".into(), "t2".into()], true)
        );
        assert_eq!(
            s.tags("a", Some("t2"), Some(2)).unwrap(),
            (vec!["t3".into()], false)
        );
        assert_eq!(
            s.catalog(Some("a"), Some(1)).unwrap(),
            (vec!["b".into()], true)
        );
        assert!(matches!(
            s.tags("zz", None, None),
            Err(StorageError::NameUnknown(_))
        ));
    }

    #[test]
    fn old_uploads_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let u = s.start_upload("r").unwrap();
        assert_eq!(s.purge_uploads(Duration::from_secs(3600)).unwrap(), 0);
        assert!(s.upload("r", &u).is_ok());
        assert_eq!(s.purge_uploads(Duration::ZERO).unwrap(), 1);
        assert!(s.upload("r", &u).is_err());
        assert!(!dir.path().join("uploads").join(&u).exists());
    }
}
