//! Pull: a reference in, an image ready to run out — manifest (and platform choice from an
//! index), config, and every layer downloaded in parallel into the content store (resumed where
//! a partial download stopped, verified as the bytes flow) and unpacked into its snapshot as soon
//! as it is complete, then recorded with its tag in one transaction.

// A pull's error carries the registry's, which is large; errors are rare and leave the hot
// path, so boxing every one would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use berth_image::content::{ContentStore, Ingest};
use berth_image::digest::Digest;
use berth_image::manifest::{self, ManifestKind};
use berth_image::platform::{self, Platform};
use berth_image::reference::Reference;
use berth_image::snapshot::{chain_id, SnapshotError, Snapshotter};
use berth_image::store::{ImageRecord, ImageStore, LayerRecord};
use berth_image::unpack::{unpack_layer, Compression};

use crate::client::{BlobSink, RegistryClient, RegistryError, Repository};

/// What a pull reports as it goes, per layer, for the CLI's progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reference resolved to this manifest.
    Resolved { digest: Digest },
    /// The blob is already in the store: nothing to download.
    AlreadyExists { digest: Digest },
    /// Bytes of one blob written so far, out of `total`.
    Downloading {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// The blob is complete and verified.
    Downloaded { digest: Digest },
    /// The layer is unpacked into its snapshot.
    Extracted { digest: Digest },
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    /// Layers downloaded at once (at least 1; Docker's default is 3).
    pub max_concurrent: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            max_concurrent: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("pull {reference}: {source}")]
    Manifest {
        reference: String,
        source: manifest::ManifestError,
    },
    #[error("pull {reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("pull {reference}: store blob {digest}: {source}")]
    Content {
        reference: String,
        digest: Digest,
        source: berth_image::content::ContentError,
    },
    #[error("pull {reference}: layer {digest}: {source}")]
    Snapshot {
        reference: String,
        digest: Digest,
        source: SnapshotError,
    },
    #[error("pull {reference}: {source}")]
    Store {
        reference: String,
        source: berth_image::store::StoreError,
    },
    #[error("pull {reference}: a layer task failed: {message}")]
    Task { reference: String, message: String },
}

/// The stores a pull writes into.
#[derive(Debug, Clone)]
pub struct Stores {
    pub content: ContentStore,
    pub snapshots: Snapshotter,
    pub images: Arc<ImageStore>,
}

/// Streams registry bytes into a content-store ingest, counting them for progress.
struct IngestSink<'a> {
    ingest: Ingest,
    digest: Digest,
    total: u64,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
    /// The unpacker reading the same bytes as they arrive.
    tee: Option<std::sync::mpsc::SyncSender<Chunk>>,
}

/// What flows from a download to its unpacker.
enum Chunk {
    Data(Vec<u8>),
    /// The blob is complete and verified.
    End,
    Fail(String),
}

/// The unpacker's side of the tee: a reader over the chunks; an unverified end is an error.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Chunk::End) => self.done = true,
                Ok(Chunk::Fail(m)) => return Err(std::io::Error::other(m)),
                Err(_) => return Err(std::io::Error::other("download stopped")),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl BlobSink for IngestSink<'_> {
    fn offset(&self) -> u64 {
        self.ingest.offset()
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.ingest.write_all(bytes)?;
        if let Some(tx) = &self.tee {
            tx.send(Chunk::Data(bytes.to_vec()))
                .map_err(|_| std::io::Error::other("unpacker stopped"))?;
        }
        (self.progress)(Progress::Downloading {
            digest: self.digest.clone(),
            done: self.ingest.offset(),
            total: self.total,
        });
        Ok(())
    }
}

/// Downloads one blob into the store (unless present), resuming a partial ingest. With `tee`,
/// the bytes also go to an unpacker as they arrive, followed by `End` once the blob is verified.
#[allow(clippy::too_many_arguments)] // one call site per kind of blob; a struct would only rename them
async fn fetch_blob(
    client: &RegistryClient,
    repo: &Repository,
    content: &ContentStore,
    digest: &Digest,
    size: u64,
    reference: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
    tee: Option<std::sync::mpsc::SyncSender<Chunk>>,
    added: &Added,
) -> Result<(), PullError> {
    if content.exists(digest) {
        progress(Progress::AlreadyExists {
            digest: digest.clone(),
        });
        if let Some(tx) = tee {
            // Reading a file blocks: off the async worker.
            let (c, d) = (content.clone(), digest.clone());
            let _ = tokio::task::spawn_blocking(move || feed_file(&c, &d, &tx)).await;
        }
        return Ok(());
    }
    let content_err = |source| PullError::Content {
        reference: reference.to_string(),
        digest: digest.clone(),
        source,
    };
    let ingest = content.writer(digest, Some(size)).map_err(content_err)?;
    if let Some(tx) = &tee {
        // A resumed ingest already holds the first bytes: the unpacker needs them too.
        if ingest.offset() > 0 {
            feed_prefix(&content.ingest_path(digest), ingest.offset(), tx);
        }
    }
    let mut sink = IngestSink {
        ingest,
        digest: digest.clone(),
        total: size,
        progress,
        tee,
    };
    let r = client.pull_blob(repo, digest, Some(size), &mut sink).await;
    let IngestSink { ingest, tee, .. } = sink;
    let fail = |m: String| {
        if let Some(tx) = &tee {
            let _ = tx.send(Chunk::Fail(m));
        }
    };
    if let Err(e) = r {
        fail(e.to_string());
        return Err(e.into());
    }
    if let Err(e) = ingest.commit() {
        fail(e.to_string());
        return Err(content_err(e));
    }
    if let Ok(mut a) = added.lock() {
        a.push(digest.clone());
    }
    if let Some(tx) = &tee {
        let _ = tx.send(Chunk::End);
    }
    progress(Progress::Downloaded {
        digest: digest.clone(),
    });
    Ok(())
}

/// Sends a stored (verified) blob to an unpacker.
fn feed_file(content: &ContentStore, digest: &Digest, tx: &std::sync::mpsc::SyncSender<Chunk>) {
    use std::io::Read;
    let mut f = match content.open_blob(digest) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Chunk::Fail(e.to_string()));
            return;
        }
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Chunk::Fail(e.to_string()));
                return;
            }
        }
    }
    let _ = tx.send(Chunk::End);
}

/// Sends the first `len` bytes of a partial ingest (not verified yet: the end decides).
fn feed_prefix(path: &std::path::Path, len: u64, tx: &std::sync::mpsc::SyncSender<Chunk>) {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        let _ = tx.send(Chunk::Fail(format!(
            "read partial download {}",
            path.display()
        )));
        return;
    };
    let mut r = f.take(len);
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 || tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
            break;
        }
    }
}

/// The blobs a pull stored, to take back out if it fails.
type Added = Arc<std::sync::Mutex<Vec<Digest>>>;

/// Pulls `reference` into `stores` and tags it; returns the image record. A pull that fails
/// leaves the store as it found it: blobs it stored and no image needs are removed again (a
/// partial download stays in the ingest area, to be resumed).
pub async fn pull(
    client: Arc<RegistryClient>,
    stores: &Stores,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<ImageRecord, PullError> {
    let added: Added = Arc::default();
    let r = pull_inner(client, stores, reference, opts, progress, &added).await;
    if r.is_err() {
        let live = stores.images.live_blobs().unwrap_or_default();
        let added = added.lock().map(|a| a.clone()).unwrap_or_default();
        for d in added.iter().filter(|d| !live.contains(*d)) {
            let _ = stores.content.delete(d);
        }
    }
    r
}

async fn pull_inner(
    client: Arc<RegistryClient>,
    stores: &Stores,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    added: &Added,
) -> Result<ImageRecord, PullError> {
    let rname = reference.to_string();
    let invalid = |message: String| PullError::Invalid {
        reference: rname.clone(),
        message,
    };
    let repo = Repository::from(reference);
    let top = match reference.digest() {
        Some(d) => d.as_str().to_string(),
        None => reference.tag().unwrap_or("latest").to_string(),
    };
    let first = client.get_manifest(&repo, &top).await?;
    progress(Progress::Resolved {
        digest: first.digest.clone(),
    });
    let mut current = first.clone();
    let image_manifest = loop {
        let parsed = manifest::parse_manifest(Some(&current.media_type), &current.bytes).map_err(
            |source| PullError::Manifest {
                reference: rname.clone(),
                source,
            },
        )?;
        match parsed {
            ManifestKind::Image(m) => break m,
            ManifestKind::Index(index) => {
                if current.digest != first.digest {
                    return Err(invalid("an index inside an index is not supported".into()));
                }
                let desc = platform::select(&index, &opts.platform).map_err(|source| {
                    PullError::Manifest {
                        reference: rname.clone(),
                        source,
                    }
                })?;
                let child = desc.digest().to_string();
                current = client.get_manifest(&repo, &child).await?;
            }
        }
    };
    let store_err = |digest: &Digest| {
        let digest = digest.clone();
        let reference = rname.clone();
        move |source| PullError::Content {
            reference,
            digest,
            source,
        }
    };
    if !stores.content.exists(&current.digest) {
        stores
            .content
            .put_bytes(&current.bytes)
            .map_err(store_err(&current.digest))?;
        if let Ok(mut a) = added.lock() {
            a.push(current.digest.clone());
        }
    }

    let config_desc = image_manifest.config();
    let config_digest = Digest::parse(config_desc.digest().as_ref())
        .map_err(|e| invalid(format!("config digest: {e}")))?;
    let config_size = config_desc.size();
    if config_size > manifest::MAX_CONFIG_SIZE {
        return Err(invalid(format!(
            "config of {config_size} bytes is larger than allowed"
        )));
    }
    fetch_blob(
        &client,
        &repo,
        &stores.content,
        &config_digest,
        config_size,
        &rname,
        progress.as_ref(),
        None,
        added,
    )
    .await?;
    let config_bytes = stores
        .content
        .read_blob(&config_digest, manifest::MAX_CONFIG_SIZE)
        .map_err(store_err(&config_digest))?;
    let config = manifest::parse_config(&config_bytes).map_err(|source| PullError::Manifest {
        reference: rname.clone(),
        source,
    })?;
    let diff_ids: Vec<Digest> =
        manifest::diff_ids(&config).map_err(|source| PullError::Manifest {
            reference: rname.clone(),
            source,
        })?;
    let layers = image_manifest.layers();
    if layers.len() != diff_ids.len() {
        return Err(invalid(format!(
            "manifest has {} layers but the config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }

    // Download every layer, several at once, each decompressed and unpacked into a staging
    // directory while its bytes arrive; then register the snapshots in chain order (a snapshot
    // needs its parent registered) by renaming the staged trees into place.
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.max_concurrent.max(1)));
    let mut jobs = Vec::with_capacity(layers.len());
    let mut records = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let digest = Digest::parse(l.digest().as_ref())
            .map_err(|e| invalid(format!("layer digest: {e}")))?;
        let media_type = l.media_type().to_string();
        let compression = Compression::from_media_type(&media_type).ok_or_else(|| {
            invalid(format!(
                "layer {digest}: unsupported media type {media_type}"
            ))
        })?;
        let size = l.size();
        let chain = chain_id(&diff_ids[..=i]);
        let parent = (i > 0).then(|| chain_id(&diff_ids[..i]));
        records.push(LayerRecord {
            digest: digest.clone(),
            diff_id: diff_ids[i].clone(),
            media_type,
            size,
        });
        if stores.snapshots.exists(&chain) {
            progress(Progress::AlreadyExists {
                digest: digest.clone(),
            });
            jobs.push(None);
            continue;
        }
        let staging = stores
            .snapshots
            .staging_dir()
            .map_err(|source| PullError::Snapshot {
                reference: rname.clone(),
                digest: digest.clone(),
                source,
            })?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(64);
        let (dir, want, d_unpack, r_unpack) = (
            staging.clone(),
            diff_ids[i].clone(),
            digest.clone(),
            rname.clone(),
        );
        let unpack = tokio::task::spawn_blocking(move || {
            let reader = ChunkReader {
                rx,
                buf: Vec::new(),
                pos: 0,
                done: false,
            };
            let snap = |m: String| PullError::Snapshot {
                reference: r_unpack.clone(),
                digest: d_unpack.clone(),
                source: SnapshotError::unpack(&want, m),
            };
            let stats = unpack_layer(
                std::io::BufReader::with_capacity(1 << 20, reader),
                Some(compression),
                &dir,
            )
            .map_err(|e| snap(e.to_string()))?;
            if stats.diff_id != want {
                return Err(snap(format!(
                    "layer {d_unpack} unpacks to {} but the config says {want}",
                    stats.diff_id
                )));
            }
            Ok::<(), PullError>(())
        });
        let (client, repo, content, progress2, sem, rname2, d) = (
            client.clone(),
            repo.clone(),
            stores.content.clone(),
            progress.clone(),
            sem.clone(),
            rname.clone(),
            digest.clone(),
        );
        let added2 = added.clone();
        let download = tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            fetch_blob(
                &client,
                &repo,
                &content,
                &d,
                size,
                &rname2,
                progress2.as_ref(),
                Some(tx),
                &added2,
            )
            .await
        });
        jobs.push(Some((download, unpack, staging, digest, chain, parent)));
    }
    let task_err = |e: tokio::task::JoinError| PullError::Task {
        reference: rname.clone(),
        message: e.to_string(),
    };
    let mut result = Ok(());
    let mut leftovers = Vec::new();
    for job in jobs.into_iter().flatten() {
        let (download, unpack, staging, digest, chain, parent) = job;
        leftovers.push(staging.clone());
        if result.is_err() {
            download.abort();
            continue;
        }
        let r = async {
            download.await.map_err(task_err)??;
            unpack.await.map_err(task_err)??;
            stores
                .snapshots
                .prepare_layer(&chain, parent.as_ref(), |dir| {
                    // `dir` is the snapshotter's new empty directory: the staged tree replaces it.
                    std::fs::rename(&staging, dir).map_err(|e| SnapshotError::unpack(&chain, e))
                })
                .map_err(|source| PullError::Snapshot {
                    reference: rname.clone(),
                    digest: digest.clone(),
                    source,
                })?;
            progress(Progress::Extracted {
                digest: digest.clone(),
            });
            Ok::<(), PullError>(())
        }
        .await;
        if let Err(e) = r {
            result = Err(e);
        }
    }
    for dir in leftovers {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    result?;

    let size = records.iter().map(|l| l.size).sum();
    let record = ImageRecord {
        config_digest: config_digest.clone(),
        manifest_digest: Some(current.digest.clone()),
        manifest_media_type: Some(current.media_type.clone()),
        chain_id: (!diff_ids.is_empty()).then(|| chain_id(&diff_ids)),
        layers: records,
        repo_digests: vec![format!("{}@{}", reference.repository(), first.digest)],
        created: config.created().clone().unwrap_or_default(),
        size,
        parent: None,
    };
    let tags: Vec<Reference> = if reference.tag().is_some() {
        vec![reference.clone()]
    } else {
        vec![]
    };
    stores
        .images
        .put(&record, &tags)
        .map_err(|source| PullError::Store {
            reference: rname.clone(),
            source,
        })?;
    Ok(record)
}
