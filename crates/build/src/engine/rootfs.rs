//! A stage's root filesystem while a step changes it: an overlay of the stage's layer chain with
//! a fresh upper directory (or a plain directory for a stage with no layers yet), and the layer
//! made from that upper directory. Guards undo every mount, snapshot and temp dir on any exit.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use berth_image::content::WritebackFile;
use berth_image::digest::Digest;
use berth_image::manifest::media_types as mt;
use berth_image::snapshot::{self, chain_id, SnapshotError};
use berth_image::store::LayerRecord;

use super::{BuildError, Engine};

/// A random id: container ids, snapshot keys, mount points.
pub fn random_id() -> String {
    let b: [u8; 32] = rand::random();
    hex::encode(b)
}

/// The chain id of a list of layers; None for no layers.
pub fn chain_of(layers: &[LayerRecord]) -> Option<Digest> {
    let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
    (!ids.is_empty()).then(|| chain_id(&ids))
}

/// A mounted writable rootfs for one step.
#[derive(Debug)]
pub struct Rootfs<'e> {
    eng: &'e Engine<'e>,
    pub id: String,
    /// Where the tree is seen (the overlay mount point, or the plain dir).
    pub dir: PathBuf,
    pub upper: PathBuf,
    mounted: Option<PathBuf>,
    /// The active snapshot key, until the upper dir is handed to a layer snapshot.
    key: Option<String>,
    /// Removed at drop.
    tmp: Vec<PathBuf>,
    parent_chain: Option<Digest>,
    diff_ids: Vec<Digest>,
    overlay: bool,
}

impl<'e> Rootfs<'e> {
    pub fn open(eng: &'e Engine<'e>, layers: &[LayerRecord]) -> Result<Rootfs<'e>, BuildError> {
        let id = random_id();
        let parent_chain = chain_of(layers);
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        match &parent_chain {
            None => {
                let stage = eng.snapshots.staging_dir()?;
                let dir = stage.join("fs");
                std::fs::create_dir(&dir).map_err(|e| BuildError::io("create", &dir, e))?;
                Ok(Rootfs {
                    eng,
                    id,
                    upper: dir.clone(),
                    dir,
                    mounted: None,
                    key: None,
                    tmp: vec![stage],
                    parent_chain: None,
                    diff_ids,
                    overlay: false,
                })
            }
            Some(chain) => {
                let key = format!("build-{}", &id[..32]);
                let mut r = Rootfs {
                    eng,
                    id: id.clone(),
                    dir: PathBuf::new(),
                    upper: PathBuf::new(),
                    mounted: None,
                    key: Some(key.clone()),
                    tmp: Vec::new(),
                    parent_chain: Some(chain.clone()),
                    diff_ids,
                    overlay: true,
                };
                let spec = eng.snapshots.mounts(chain, &key, false)?;
                r.upper = spec
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix("upperdir="))
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        BuildError::Internal("overlay mount without an upper dir".into())
                    })?;
                let mnt = eng.build_root.join("mnt").join(&id[..16]);
                std::fs::create_dir_all(&mnt).map_err(|e| BuildError::io("create", &mnt, e))?;
                r.tmp.push(mnt.clone());
                // Volatile: the unmount's sync of the whole filesystem cost 0.3 s per step
                // with a 256 MiB COPY. A step's upper dir needs no more durability than a
                // pulled layer's snapshot: its layer's blob is fsynced.
                snapshot::mount_volatile(&spec, &mnt)?;
                r.mounted = Some(mnt.clone());
                r.dir = mnt;
                Ok(r)
            }
        }
    }

    fn unmount(&mut self) -> Result<(), BuildError> {
        if let Some(m) = self.mounted.take() {
            snapshot::unmount(&m)?;
        }
        Ok(())
    }

    /// Whether the step changed nothing.
    pub fn is_unchanged(&self) -> bool {
        std::fs::read_dir(&self.upper)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
    }

    /// Turns the upper dir into a layer: the tar (sorted, mtimes clamped to `epoch`), uncompressed
    /// in the content store, and the dir itself as the snapshot of the new chain. Returns the
    /// layer and its uncompressed size.
    pub fn commit(mut self, epoch: Option<i64>) -> Result<(LayerRecord, u64), BuildError> {
        self.unmount()?;
        if let Some(e) = epoch {
            super::fsutil::clamp_mtimes(&self.upper, e)?;
        }
        let staging = self.eng.snapshots.staging_dir()?;
        self.tmp.push(staging.clone());
        let tar_path = staging.join("layer.tar");
        let f = File::create(&tar_path).map_err(|e| BuildError::io("create", &tar_path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, WritebackFile::new(f));
        let diff_id = if self.overlay {
            berth_image::diff::diff_upper(&self.upper, &mut w)
        } else {
            berth_image::diff::tar_dir(&self.upper, &mut w)
        }
        .map_err(|e| BuildError::Internal(format!("write layer: {e}")))?;
        let f = w
            .into_inner()
            .map_err(|e| BuildError::io("write", &tar_path, e.into_error()))?
            .into_inner();
        // Uncompressed, as Docker's builder keeps layers: gzip of a large layer costs seconds and
        // buys nothing locally (registries and pulls take uncompressed layers as they are). The
        // tar was hashed while written, so it moves into the store without another pass.
        drop(f);
        let size = self.eng.content.adopt(&tar_path, &diff_id)?;
        let (digest, csize) = (diff_id.clone(), size);

        let mut ids = self.diff_ids.clone();
        ids.push(diff_id.clone());
        let new_chain = chain_id(&ids);
        let upper = self.upper.clone();
        self.eng
            .snapshots
            .prepare_layer(&new_chain, self.parent_chain.as_ref(), |dir| {
                // The upper dir already holds the layer as overlay wants it (whiteouts as
                // 0/0 devices, opaque xattrs): it becomes the snapshot without an unpack.
                std::fs::remove_dir(dir).map_err(|e| SnapshotError::unpack(&new_chain, e))?;
                std::fs::rename(&upper, dir).map_err(|e| SnapshotError::unpack(&new_chain, e))
            })?;
        Ok((
            LayerRecord {
                digest,
                diff_id,
                media_type: mt::DOCKER_LAYER.to_string(),
                size: csize,
            },
            size,
        ))
    }
}

impl Drop for Rootfs<'_> {
    fn drop(&mut self) {
        let _ = self.unmount();
        if let Some(k) = self.key.take() {
            let _ = self.eng.snapshots.remove(&k);
        }
        for t in &self.tmp {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

/// A read-only view of a layer chain (COPY --from, RUN --mount from=), unmounted at drop.
#[derive(Debug)]
pub struct View {
    pub dir: PathBuf,
    mounted: bool,
    tmp: Option<PathBuf>,
}

impl View {
    pub fn open(eng: &Engine<'_>, layers: &[LayerRecord]) -> Result<View, BuildError> {
        let id = random_id();
        let mnt = eng.build_root.join("mnt").join(format!("ro-{}", &id[..16]));
        std::fs::create_dir_all(&mnt).map_err(|e| BuildError::io("create", &mnt, e))?;
        let mut v = View {
            dir: mnt.clone(),
            mounted: false,
            tmp: Some(mnt.clone()),
        };
        if let Some(chain) = chain_of(layers) {
            let spec = eng.snapshots.mounts(&chain, "", true)?;
            snapshot::mount(&spec, &mnt)?;
            v.mounted = true;
        }
        Ok(v)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            let _ = snapshot::unmount(&self.dir);
        }
        if let Some(t) = self.tmp.take() {
            let _ = std::fs::remove_dir(&t);
        }
    }
}
