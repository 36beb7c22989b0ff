//! Image records: what images exist, their tags, and which containers use them, in one
//! crash-safe embedded database (`metadata.redb`). Every change is one transaction, so a crash
//! leaves either the old or the new state, never a half-tagged image.
//!
//! Removal follows Docker: removing a tag only untags while other tags remain; the image record
//! goes when its last reference goes; an image a container uses, or one referenced by several
//! repositories when named by ID, is refused unless forced. Blobs and snapshots are not deleted
//! here: [`ImageStore::live_blobs`] and [`ImageStore::live_chain_ids`] tell a garbage collector
//! what must stay ([`ImageStore::gc_blobs`] does it for the content store).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::snapshot::chain_id;

/// Image id (the config digest) → JSON [`ImageRecord`].
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// Normalised reference ("docker.io/library/busybox:latest") → image id.
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// "<image id> <container id>" → () : the containers that use an image.
const USERS: TableDefinition<&str, ()> = TableDefinition::new("image_users");

/// One layer of an image as stored: the blob (as the registry served it) and its DiffID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// Everything the engine keeps about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest, which is the image id (as Docker's).
    pub config_digest: Digest,
    /// The manifest it was pulled or built as, when there is one.
    pub manifest_digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    pub layers: Vec<LayerRecord>,
    /// The snapshot of the whole layer chain.
    pub chain_id: Option<Digest>,
    /// "repo@sha256:…" for each repository it was pulled from or pushed to.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// Sum of the uncompressed layer sizes, as `docker images` shows.
    pub size: u64,
    /// The local image it was made from (`docker commit`), shown as `Parent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
}

impl ImageRecord {
    pub fn id(&self) -> &str {
        self.config_digest.as_str()
    }

    /// The record of an image [`crate::archive::import_rootfs`] stored.
    pub fn from_import(
        imp: &crate::archive::ImportedImage,
        content: &ContentStore,
    ) -> Result<ImageRecord, StoreError> {
        let size = content.size(&imp.layer_digest)?.unwrap_or(0);
        Ok(ImageRecord {
            config_digest: imp.config_digest.clone(),
            manifest_digest: Some(imp.manifest_digest.clone()),
            manifest_media_type: Some(crate::manifest::media_types::OCI_MANIFEST.to_string()),
            layers: vec![LayerRecord {
                digest: imp.layer_digest.clone(),
                diff_id: imp.diff_id.clone(),
                media_type: crate::manifest::media_types::OCI_LAYER_GZIP.to_string(),
                size,
            }],
            chain_id: Some(imp.diff_id.clone()),
            repo_digests: Vec::new(),
            created: String::new(),
            size,
            parent: None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open image metadata {path}: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("image metadata: {what}: {source}")]
    Db {
        what: &'static str,
        source: redb::Error,
    },
    #[error("image metadata: corrupt record for {key}: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { id: String },
    #[error("conflict: unable to remove repository reference {name:?} (must force) - container {container} is using its referenced image {id}")]
    InUse {
        name: String,
        container: String,
        id: String,
    },
    #[error("{0}")]
    Content(#[from] crate::content::ContentError),
    #[error("{0}")]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

impl StoreError {
    fn db(what: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
        move |source| StoreError::Db { what, source }
    }
}

/// `?` on redb's many error types, with what was being done.
trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}
impl<T, E: Into<redb::Error>> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::db(what)(e.into()))
    }
}

/// What a removal did, in `docker rmi`'s words ("Untagged: …", "Deleted: …").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveReport {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

#[derive(Debug)]
pub struct ImageStore {
    db: Database,
}

impl ImageStore {
    /// Opens (creating) `<root>/metadata.redb`.
    pub fn open(root: &Path) -> Result<ImageStore, StoreError> {
        let path = root.join("metadata.redb");
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let db = Database::create(&path).map_err(|source| StoreError::Open { path, source })?;
        let txn = db.begin_write().ctx("begin")?;
        txn.open_table(IMAGES).ctx("create images table")?;
        txn.open_table(TAGS).ctx("create tags table")?;
        txn.open_table(USERS).ctx("create users table")?;
        txn.commit().ctx("commit")?;
        Ok(ImageStore { db })
    }

    /// Adds (or replaces) an image record and points `tags` at it, in one transaction.
    pub fn put(&self, record: &ImageRecord, tags: &[Reference]) -> Result<(), StoreError> {
        let json = serde_json::to_vec(record).map_err(|source| StoreError::Corrupt {
            key: record.id().to_string(),
            source,
        })?;
        let txn = self.db.begin_write().ctx("begin")?;
        {
            let mut images = txn.open_table(IMAGES).ctx("open images")?;
            images
                .insert(record.id(), json.as_slice())
                .ctx("insert image")?;
            let mut t = txn.open_table(TAGS).ctx("open tags")?;
            for r in tags {
                t.insert(r.to_string().as_str(), record.id())
                    .ctx("insert tag")?;
            }
        }
        txn.commit().ctx("commit")
    }

    pub fn get(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
        let txn = self.db.begin_read().ctx("begin")?;
        let images = txn.open_table(IMAGES).ctx("open images")?;
        match images.get(id).ctx("read image")? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    key: id.to_string(),
                    source,
                }),
        }
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let txn = self.db.begin_read().ctx("begin")?;
        let images = txn.open_table(IMAGES).ctx("open images")?;
        let mut out = Vec::new();
        for item in images.iter().ctx("list images")? {
            let (k, v) = item.ctx("read image")?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                    key: k.value().to_string(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// Every tag, as (normalised reference, image id).
    pub fn tags(&self) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.db.begin_read().ctx("begin")?;
        let tags = txn.open_table(TAGS).ctx("open tags")?;
        let mut out = Vec::new();
        for item in tags.iter().ctx("list tags")? {
            let (k, v) = item.ctx("read tag")?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    pub fn tags_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(t, _)| t)
            .collect())
    }

    /// Finds an image by reference, full id, `sha256:` id or unique id prefix (as Docker
    /// accepts them), or by repo digest.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, StoreError> {
        let not_found = || StoreError::NotFound(name.to_string());
        if let Ok(r) = Reference::parse(name) {
            let key = r.to_string();
            let txn = self.db.begin_read().ctx("begin")?;
            let tags = txn.open_table(TAGS).ctx("open tags")?;
            if let Some(id) = tags.get(key.as_str()).ctx("read tag")? {
                let id = id.value().to_string();
                return self.get(&id)?.ok_or_else(not_found);
            }
            if let Some(d) = r.digest() {
                let want = format!("{}@{}", r.repository(), d);
                if let Some(img) = self
                    .list()?
                    .into_iter()
                    .find(|i| i.repo_digests.contains(&want))
                {
                    return Ok(img);
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<ImageRecord> = self
                .list()?
                .into_iter()
                .filter(|i| i.config_digest.hex().starts_with(hex))
                .collect();
            if matches.len() == 1 {
                return matches.into_iter().next().ok_or_else(not_found);
            }
        }
        Err(not_found())
    }

    /// Points `reference` at the image `target` names.
    pub fn tag(&self, target: &str, reference: &Reference) -> Result<(), StoreError> {
        let img = self.resolve(target)?;
        let txn = self.db.begin_write().ctx("begin")?;
        {
            let mut t = txn.open_table(TAGS).ctx("open tags")?;
            t.insert(reference.to_string().as_str(), img.id())
                .ctx("insert tag")?;
        }
        txn.commit().ctx("commit")
    }

    /// Records that `container` uses image `id` (refused for an unknown image).
    ///
    /// Not fsynced (it is on the hot path of every container create): a crash may lose it,
    /// so the engine reconciles users from its container records when it starts
    /// ([`ImageStore::set_users`]).
    pub fn add_user(&self, id: &str, container: &str) -> Result<(), StoreError> {
        if self.get(id)?.is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let mut txn = self.db.begin_write().ctx("begin")?;
        let _ = txn.set_durability(redb::Durability::None);
        {
            let mut u = txn.open_table(USERS).ctx("open users")?;
            u.insert(format!("{id} {container}").as_str(), ())
                .ctx("insert user")?;
        }
        txn.commit().ctx("commit")
    }

    /// As [`ImageStore::add_user`], not fsynced.
    pub fn remove_user(&self, id: &str, container: &str) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().ctx("begin")?;
        let _ = txn.set_durability(redb::Durability::None);
        {
            let mut u = txn.open_table(USERS).ctx("open users")?;
            u.remove(format!("{id} {container}").as_str())
                .ctx("remove user")?;
        }
        txn.commit().ctx("commit")
    }

    /// Replaces every (image, container) use with `users`, durably: the engine's own
    /// container records are the truth after a crash.
    pub fn set_users(&self, users: &[(String, String)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().ctx("begin")?;
        {
            let mut u = txn.open_table(USERS).ctx("open users")?;
            let keys: Vec<String> = u
                .iter()
                .ctx("list users")?
                .filter_map(|i| i.ok().map(|(k, _)| k.value().to_string()))
                .collect();
            for k in keys {
                u.remove(k.as_str()).ctx("remove user")?;
            }
            for (id, c) in users {
                u.insert(format!("{id} {c}").as_str(), ())
                    .ctx("insert user")?;
            }
        }
        txn.commit().ctx("commit")
    }

    fn users_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().ctx("begin")?;
        let u = txn.open_table(USERS).ctx("open users")?;
        let prefix = format!("{id} ");
        let mut out = Vec::new();
        for item in u.iter().ctx("list users")? {
            let (k, _) = item.ctx("read user")?;
            if let Some(c) = k.value().strip_prefix(&prefix) {
                out.push(c.to_string());
            }
        }
        Ok(out)
    }

    /// `docker rmi NAME`: untag, and delete the record when nothing refers to it any more.
    pub fn remove(&self, name: &str, force: bool) -> Result<RemoveReport, StoreError> {
        let img = self.resolve(name)?;
        let id = img.id().to_string();
        let tags = self.tags_of(&id)?;
        let users = self.users_of(&id)?;
        let by_tag = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| tags.contains(t));
        let mut report = RemoveReport::default();
        let untag: Vec<String> = match &by_tag {
            // Naming one of several tags only removes that tag.
            Some(t) if tags.len() > 1 => vec![t.clone()],
            Some(_) => tags.clone(),
            None if tags.len() > 1 && !force => {
                return Err(StoreError::MultipleRepositories { id: short_id(&id) })
            }
            None => tags.clone(),
        };
        let delete = untag.len() == tags.len();
        if delete && !users.is_empty() && !force {
            return Err(StoreError::InUse {
                name: name.to_string(),
                container: users[0].chars().take(12).collect(),
                id: short_id(&id),
            });
        }
        let txn = self.db.begin_write().ctx("begin")?;
        {
            let mut t = txn.open_table(TAGS).ctx("open tags")?;
            for tag in &untag {
                t.remove(tag.as_str()).ctx("remove tag")?;
                report.untagged.push(familiar_tag(tag));
            }
            // Docker keeps a forced-away image that containers still use, untagged.
            if delete && users.is_empty() {
                let mut images = txn.open_table(IMAGES).ctx("open images")?;
                images.remove(id.as_str()).ctx("remove image")?;
                report.deleted.push(id.clone());
            }
        }
        txn.commit().ctx("commit")?;
        Ok(report)
    }

    /// Every blob some image needs: manifests, configs, layers.
    pub fn live_blobs(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut out = BTreeSet::new();
        for img in self.list()? {
            out.insert(img.config_digest.clone());
            if let Some(m) = &img.manifest_digest {
                out.insert(m.clone());
            }
            out.extend(img.layers.iter().map(|l| l.digest.clone()));
        }
        Ok(out)
    }

    /// Every snapshot chain some image needs (each prefix of each image's layer chain).
    pub fn live_chain_ids(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut out = BTreeSet::new();
        for img in self.list()? {
            let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
            for n in 1..=diff_ids.len() {
                out.insert(chain_id(&diff_ids[..n]));
            }
        }
        Ok(out)
    }

    /// Removes every layer snapshot no image needs (children before parents; a snapshot a
    /// container still mounts stays); returns what went.
    pub fn gc_snapshots(
        &self,
        snapshots: &crate::snapshot::Snapshotter,
    ) -> Result<Vec<Digest>, StoreError> {
        let live = self.live_chain_ids()?;
        let mut removed = Vec::new();
        loop {
            let mut progress = false;
            for chain in snapshots.layers()? {
                if live.contains(&chain) || removed.contains(&chain) {
                    continue;
                }
                match snapshots.remove(chain.as_str()) {
                    Ok(()) => {
                        removed.push(chain);
                        progress = true;
                    }
                    Err(crate::snapshot::SnapshotError::InUse(..)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !progress {
                return Ok(removed);
            }
        }
    }

    /// Deletes every blob no image needs; returns what went.
    pub fn gc_blobs(&self, content: &ContentStore) -> Result<Vec<Digest>, StoreError> {
        let live = self.live_blobs()?;
        let mut removed = Vec::new();
        for d in content.list()? {
            if !live.contains(&d) {
                content.delete(&d)?;
                removed.push(d);
            }
        }
        Ok(removed)
    }
}

fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

/// "docker.io/library/busybox:latest" → "busybox:latest", as `docker rmi` prints it.
fn familiar_tag(tag: &str) -> String {
    Reference::parse(tag)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8) -> ImageRecord {
        let layer = Digest::sha256_of(&[n, 1]);
        ImageRecord {
            config_digest: Digest::sha256_of(&[n]),
            manifest_digest: Some(Digest::sha256_of(&[n, 2])),
            manifest_media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            layers: vec![LayerRecord {
                digest: layer,
                diff_id: Digest::sha256_of(&[n, 3]),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 10,
            }],
            chain_id: Some(Digest::sha256_of(&[n, 3])),
            repo_digests: vec![],
            created: "2026-01-01T00:00:00Z".into(),
            size: 100,
            parent: None,
        }
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn tag_resolve_untag_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let img = record(1);
        s.put(&img, &[r("busybox"), r("localhost:5000/bb:1")])
            .unwrap();
        assert_eq!(s.resolve("busybox").unwrap(), img);
        assert_eq!(s.resolve("docker.io/library/busybox:latest").unwrap(), img);
        assert_eq!(s.resolve(&img.config_digest.hex()[..12]).unwrap(), img);
        assert_eq!(s.resolve(img.id()).unwrap(), img);
        assert!(matches!(s.resolve("nope"), Err(StoreError::NotFound(_))));

        // By id with two tags: refused unless forced.
        let e = s.remove(img.id(), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("referenced in multiple repositories"),
            "{e}"
        );
        // One tag of two: untag only.
        let rep = s.remove("busybox", false).unwrap();
        assert_eq!(rep.untagged, vec!["busybox:latest".to_string()]);
        assert!(rep.deleted.is_empty());
        assert!(s.get(img.id()).unwrap().is_some());
        // The last one: deleted.
        let rep = s.remove("localhost:5000/bb:1", false).unwrap();
        assert_eq!(rep.deleted, vec![img.id().to_string()]);
        assert!(s.get(img.id()).unwrap().is_none());
    }

    #[test]
    fn set_users_replaces_every_use() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let img = record(7);
        s.put(&img, &[r("seven")]).unwrap();
        s.add_user(img.id(), "c1").unwrap();
        s.add_user(img.id(), "c2").unwrap();
        s.set_users(&[(img.id().to_string(), "c3".to_string())])
            .unwrap();
        assert_eq!(s.users_of(img.id()).unwrap(), vec!["c3".to_string()]);
        s.set_users(&[]).unwrap();
        assert!(s.users_of(img.id()).unwrap().is_empty());
        assert!(s.add_user("sha256:nope", "c").is_err());
    }

    #[test]
    fn in_use_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let img = record(2);
        s.put(&img, &[r("alpine:3")]).unwrap();
        s.add_user(img.id(), "c0ffee1234567890").unwrap();
        let e = s.remove("alpine:3", false).unwrap_err();
        assert!(
            e.to_string().contains("container c0ffee123456 is using"),
            "{e}"
        );
        assert_eq!(s.resolve("alpine:3").unwrap(), img, "nothing changed");
        let rep = s.remove("alpine:3", true).unwrap();
        assert_eq!(rep.untagged.len(), 1);
        assert!(rep.deleted.is_empty(), "kept while a container uses it");
        s.remove_user(img.id(), "c0ffee1234567890").unwrap();
        let rep = s.remove(img.id(), false).unwrap();
        assert_eq!(rep.deleted.len(), 1);
        assert!(s.add_user("sha256:00", "x").is_err());
    }

    #[test]
    fn gc_snapshots_keeps_what_images_need() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = crate::snapshot::Snapshotter::open(dir.path()).unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let (d1, d2, d3) = (
            Digest::sha256_of(b"1"),
            Digest::sha256_of(b"2"),
            Digest::sha256_of(b"3"),
        );
        let c1 = chain_id(std::slice::from_ref(&d1));
        let c2 = chain_id(&[d1.clone(), d2.clone()]);
        let c3 = chain_id(&[d1.clone(), d3.clone()]);
        snaps.prepare_layer(&c1, None, |_| Ok(())).unwrap();
        snaps.prepare_layer(&c2, Some(&c1), |_| Ok(())).unwrap();
        snaps.prepare_layer(&c3, Some(&c1), |_| Ok(())).unwrap();
        let mut img = record(4);
        img.layers = [&d1, &d2]
            .iter()
            .map(|d| LayerRecord {
                digest: (*d).clone(),
                diff_id: (*d).clone(),
                media_type: String::new(),
                size: 1,
            })
            .collect();
        s.put(&img, &[]).unwrap();
        let removed = s.gc_snapshots(&snaps).unwrap();
        assert_eq!(removed, vec![c3.clone()]);
        assert!(snaps.exists(&c1) && snaps.exists(&c2) && !snaps.exists(&c3));
        s.remove(img.id(), false).unwrap();
        let mut removed = s.gc_snapshots(&snaps).unwrap();
        removed.sort();
        let mut want = vec![c1.clone(), c2.clone()];
        want.sort();
        assert_eq!(removed, want, "the child goes before its parent");
    }

    #[test]
    fn survives_reopen_and_gc_keeps_live_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let content = ContentStore::open(dir.path()).unwrap();
        let live = content.put_bytes(b"config").unwrap();
        let dead = content.put_bytes(b"orphan").unwrap();
        {
            let s = ImageStore::open(dir.path()).unwrap();
            let mut img = record(3);
            img.config_digest = live.clone();
            img.manifest_digest = None;
            img.layers.clear();
            s.put(&img, &[r("x/y:z")]).unwrap();
        }
        let s = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s.resolve("x/y:z").unwrap().config_digest, live);
        let removed = s.gc_blobs(&content).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(content.exists(&live));
        assert!(!content.exists(&dead));
    }
}
