//! Pull: a reference in, an image ready to run out — manifest (and platform choice from an
//! index), config, and every layer downloaded in parallel into the content store (resumed where
//! a partial download stopped, verified as the bytes flow) and unpacked into its snapshot as soon
//! as it is complete, then recorded with its tag in one transaction.

// A pull's error carries the registry's, which is large; errors are rare and leave the hot
// path, so boxing every one would buy nothing.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
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
}

impl BlobSink for IngestSink<'_> {
    fn offset(&self) -> u64 {
        self.ingest.offset()
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.ingest.write_all(bytes)?;
        (self.progress)(Progress::Downloading {
            digest: self.digest.clone(),
            done: self.ingest.offset(),
            total: self.total,
        });
        Ok(())
    }
}

/// Downloads one blob into the store (unless present), resuming a partial ingest.
async fn fetch_blob(
    client: &RegistryClient,
    repo: &Repository,
    content: &ContentStore,
    digest: &Digest,
    size: u64,
    reference: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), PullError> {
    if content.exists(digest) {
        progress(Progress::AlreadyExists {
            digest: digest.clone(),
        });
        return Ok(());
    }
    let content_err = |source| PullError::Content {
        reference: reference.to_string(),
        digest: digest.clone(),
        source,
    };
    let ingest = content.writer(digest, Some(size)).map_err(content_err)?;
    let mut sink = IngestSink {
        ingest,
        digest: digest.clone(),
        total: size,
        progress,
    };
    client
        .pull_blob(repo, digest, Some(size), &mut sink)
        .await?;
    sink.ingest.commit().map_err(content_err)?;
    progress(Progress::Downloaded {
        digest: digest.clone(),
    });
    Ok(())
}

/// Pulls `reference` into `stores` and tags it; returns the image record.
pub async fn pull(
    client: Arc<RegistryClient>,
    stores: &Stores,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
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
    stores
        .content
        .put_bytes(&current.bytes)
        .map_err(store_err(&current.digest))?;

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

    // Download every layer, several at once; unpack each, in chain order (a snapshot needs its
    // parent registered), as soon as it is complete, while the later ones still download.
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.max_concurrent.max(1)));
    let mut downloads = Vec::with_capacity(layers.len());
    let mut records = Vec::with_capacity(layers.len());
    let mut plan = Vec::with_capacity(layers.len());
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
        let needed = !stores.snapshots.exists(&chain);
        let (client, repo, content, progress, sem, rname2) = (
            client.clone(),
            repo.clone(),
            stores.content.clone(),
            progress.clone(),
            sem.clone(),
            rname.clone(),
        );
        let d = digest.clone();
        downloads.push(tokio::spawn(async move {
            if !needed {
                return Ok::<(), PullError>(());
            }
            let _permit = sem.acquire_owned().await;
            fetch_blob(
                &client,
                &repo,
                &content,
                &d,
                size,
                &rname2,
                progress.as_ref(),
            )
            .await
        }));
        plan.push((
            digest,
            compression,
            chain,
            parent,
            diff_ids[i].clone(),
            needed,
        ));
    }
    let task_err = |e: tokio::task::JoinError| PullError::Task {
        reference: rname.clone(),
        message: e.to_string(),
    };
    for (handle, (digest, compression, chain, parent, diff_id, needed)) in
        downloads.into_iter().zip(plan)
    {
        handle.await.map_err(task_err)??;
        if !needed {
            continue;
        }
        let (s2, d2, r2) = (stores.clone(), digest.clone(), rname.clone());
        tokio::task::spawn_blocking(move || {
            unpack_into(
                &s2,
                &d2,
                compression,
                &chain,
                parent.as_ref(),
                &diff_id,
                &r2,
            )
        })
        .await
        .map_err(task_err)??;
        progress(Progress::Extracted { digest });
    }

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

/// Unpacks a stored layer blob into the snapshot of `chain` and checks its DiffID.
fn unpack_into(
    stores: &Stores,
    digest: &Digest,
    compression: Compression,
    chain: &Digest,
    parent: Option<&Digest>,
    diff_id: &Digest,
    reference: &str,
) -> Result<PathBuf, PullError> {
    let snap_err = |source| PullError::Snapshot {
        reference: reference.to_string(),
        digest: digest.clone(),
        source,
    };
    stores
        .snapshots
        .prepare_layer(chain, parent, |dir| {
            let blob = stores
                .content
                .open_blob(digest)
                .map_err(|e| SnapshotError::unpack(chain, e))?;
            let stats = unpack_layer(
                std::io::BufReader::with_capacity(1 << 20, blob),
                Some(compression),
                dir,
            )
            .map_err(|e| SnapshotError::unpack(chain, e))?;
            if &stats.diff_id != diff_id {
                return Err(SnapshotError::unpack(
                    chain,
                    format!(
                        "layer {digest} unpacks to {} but the config says {diff_id}",
                        stats.diff_id
                    ),
                ));
            }
            Ok(())
        })
        .map_err(snap_err)
}
