//! Puts an image made from a root filesystem tar into a data root before berthd starts (the
//! test's own fixture; the API's import is tested on its own).

use std::path::Path;

use berth_image::content::ContentStore;
use berth_image::reference::Reference;
use berth_image::snapshot::{SnapshotError, Snapshotter};
use berth_image::store::{ImageRecord, ImageStore};

pub fn seed_image(data_root: &Path, tar: &Path, name: &str, changes: &[String]) -> String {
    let content = ContentStore::open(data_root).expect("content store");
    let snaps = Snapshotter::open(data_root).expect("snapshotter");
    let store = ImageStore::open(data_root).expect("image store");
    let f = std::fs::File::open(tar).expect("open rootfs tar");
    let imp = berth_image::archive::import_rootfs(
        &content,
        f,
        changes,
        &berth_image::platform::Platform::host(),
    )
    .expect("import");
    let mut rec = ImageRecord::from_import(&imp, &content).expect("record");
    rec.created = "2026-01-01T00:00:00Z".into();
    let blob = content.open_blob(&imp.layer_digest).expect("layer blob");
    let gz = flate2::read::GzDecoder::new(blob);
    snaps
        .prepare_layer(&imp.diff_id, None, |dir| {
            berth_image::unpack::unpack_layer(gz, None, dir)
                .map(|_| ())
                .map_err(|e| SnapshotError::unpack(&imp.diff_id, e))
        })
        .expect("unpack");
    store
        .put(&rec, &[Reference::parse(name).expect("name")])
        .expect("put image");
    rec.id().to_string()
}
