//! Push: an image from the store to a registry. Blobs go as stored (compressed layers are not
//! compressed again), several at once, each skipped when the registry has it and mounted from
//! another repository of the same registry when the image came from one; then the config, the
//! manifest under the tag, and the new repo digest recorded.

#![allow(clippy::result_large_err)] // as in pull: the registry's error is large, errors are rare

use std::sync::Arc;

use berth_image::digest::Digest;
use berth_image::manifest::{self, ManifestKind};
use berth_image::reference::Reference;
use bytes::Bytes;

use crate::client::{PushOutcome, RegistryClient, RegistryError, Repository};
use crate::pull::Stores;

/// Per-blob progress of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushProgress {
    Pushed {
        digest: Digest,
        outcome: PushOutcome,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("push {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("push {name}: {source}")]
    Store {
        name: String,
        source: berth_image::store::StoreError,
    },
    #[error("push {name}: {source}")]
    Content {
        name: String,
        source: berth_image::content::ContentError,
    },
    #[error("push {name}: {source}")]
    Manifest {
        name: String,
        source: manifest::ManifestError,
    },
    #[error("push {name}: a blob task failed: {message}")]
    Task { name: String, message: String },
}

/// Pushes the local image `local` (a reference or id) as `target`; returns the manifest digest.
pub async fn push(
    client: Arc<RegistryClient>,
    stores: &Stores,
    local: &str,
    target: &Reference,
    max_concurrent: usize,
    progress: Arc<dyn Fn(PushProgress) + Send + Sync>,
) -> Result<Digest, PushError> {
    let name = target.to_string();
    let invalid = |message: String| PushError::Invalid {
        name: name.clone(),
        message,
    };
    let mut img = stores
        .images
        .resolve(local)
        .map_err(|source| PushError::Store {
            name: name.clone(),
            source,
        })?;
    let mdigest = img
        .manifest_digest
        .clone()
        .ok_or_else(|| invalid(format!("image {} has no manifest to push", img.id())))?;
    let mbytes = stores
        .content
        .read_blob(&mdigest, manifest::MAX_MANIFEST_SIZE)
        .map_err(|source| PushError::Content {
            name: name.clone(),
            source,
        })?;
    let media_type = img
        .manifest_media_type
        .clone()
        .unwrap_or_else(|| manifest::media_types::OCI_MANIFEST.to_string());
    let ManifestKind::Image(m) =
        manifest::parse_manifest(Some(&media_type), &mbytes).map_err(|source| {
            PushError::Manifest {
                name: name.clone(),
                source,
            }
        })?
    else {
        return Err(invalid("only image manifests can be pushed".into()));
    };
    let repo = Repository::from(target);
    // A repository of the same registry that already holds these blobs, for cross-repo mounts.
    let mount_from: Option<String> = img.repo_digests.iter().find_map(|rd| {
        let repo_part = rd.split('@').next()?;
        let r = Reference::parse(repo_part).ok()?;
        (r.domain() == target.domain() && r.path() != target.path()).then(|| r.path().to_string())
    });

    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for l in m.layers() {
        let d = Digest::parse(l.digest().as_ref())
            .map_err(|e| invalid(format!("layer digest: {e}")))?;
        blobs.push((d, l.size()));
    }
    let config = m.config();
    let cd = Digest::parse(config.digest().as_ref())
        .map_err(|e| invalid(format!("config digest: {e}")))?;
    blobs.push((cd, config.size()));

    let sem = Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (d, size) in blobs {
        if !stores.content.exists(&d) {
            return Err(invalid(format!("blob {d} is missing from the store")));
        }
        let path = stores.content.blob_path(&d);
        let (client, repo, sem, progress, from) = (
            client.clone(),
            repo.clone(),
            sem.clone(),
            progress.clone(),
            mount_from.clone(),
        );
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let outcome = client
                .push_blob_file(&repo, &d, &path, size, from.as_deref())
                .await?;
            progress(PushProgress::Pushed { digest: d, outcome });
            Ok::<(), RegistryError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| PushError::Task {
            name: name.clone(),
            message: e.to_string(),
        })??;
    }
    let tag = match (target.tag(), target.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.as_str().to_string(),
        (None, None) => "latest".to_string(),
    };
    let pushed = client
        .put_manifest(&repo, &tag, &media_type, Bytes::from(mbytes))
        .await?;
    let rd = format!("{}@{}", target.repository(), pushed);
    if !img.repo_digests.contains(&rd) {
        img.repo_digests.push(rd);
        stores
            .images
            .put(&img, &[])
            .map_err(|source| PushError::Store {
                name: name.clone(),
                source,
            })?;
    }
    Ok(pushed)
}
