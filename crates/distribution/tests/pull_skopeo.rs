//! The skopeo interop of issue 4: an image berth imports and saves as an OCI layout is copied by
//! skopeo into a registry and pulled back by berth; the image berth then pushes is copied out
//! again by skopeo and compared. Needs root (unpack) and Debian's docker-registry and skopeo.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use berth_distribution::pull::{pull, PullOptions, Stores};
use berth_distribution::push::push;
use berth_distribution::{ClientConfig, RegistryClient};
use berth_image::archive::{import_rootfs, write_oci_layout, ArchiveImage};
use berth_image::content::ContentStore;
use berth_image::platform::Platform;
use berth_image::reference::Reference;
use berth_image::snapshot::Snapshotter;
use berth_image::store::{ImageRecord, ImageStore};
use registry_support::{Auth, Registry};

fn stores(root: &std::path::Path) -> Stores {
    Stores {
        content: ContentStore::open(root).unwrap(),
        snapshots: Snapshotter::open(root).unwrap(),
        images: Arc::new(ImageStore::open(root).unwrap()),
    }
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("install skopeo (Debian package)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_carries_berth_images_both_ways() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();

    // 1. berth imports a rootfs and saves it as an OCI layout archive.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let data = b"hello from berth\n";
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/motd", &data[..]).unwrap();
    let rootfs = b.into_inner().unwrap();
    let src = stores(&work.path().join("src"));
    let imp = import_rootfs(
        &src.content,
        rootfs.as_slice(),
        &["CMD [\"sh\"]".to_string()],
        &Platform::host(),
    )
    .unwrap();
    let layout = work.path().join("img.tar");
    let mut f = std::fs::File::create(&layout).unwrap();
    write_oci_layout(
        &src.content,
        &[ArchiveImage {
            manifest_digest: imp.manifest_digest.clone(),
            names: vec!["berth/sk:1".into()],
        }],
        &mut f,
    )
    .unwrap();
    f.flush().unwrap();

    // 2. skopeo copies it into the registry, keeping digests; berth pulls it.
    let dest = format!("docker://{}/berth/sk:1", reg.host);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", layout.display()),
        &dest,
    ]);
    let client = Arc::new(RegistryClient::new(ClientConfig::default()).unwrap());
    let dst = stores(&work.path().join("dst"));
    let reference = Reference::parse(&format!("{}/berth/sk:1", reg.host)).unwrap();
    let rec = pull(
        client.clone(),
        &dst,
        &reference,
        &PullOptions::default(),
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    assert_eq!(rec.config_digest, imp.config_digest);
    assert_eq!(rec.manifest_digest.as_ref(), Some(&imp.manifest_digest));
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].digest, imp.layer_digest);
    assert_eq!(rec.layers[0].diff_id, imp.diff_id);

    // 3. berth pushes the imported image itself; skopeo copies it back out and it is the same.
    let src_record = ImageRecord::from_import(&imp, &src.content).unwrap();
    src.images
        .put(&src_record, &[Reference::parse("berth/local:1").unwrap()])
        .unwrap();
    let target = Reference::parse(&format!("{}/berth/pushed:2", reg.host)).unwrap();
    let pushed = push(
        client.clone(),
        &src,
        "berth/local:1",
        &target,
        4,
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    assert_eq!(pushed, imp.manifest_digest);
    let back = work.path().join("back");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{}/berth/pushed:2", reg.host),
        &format!("oci:{}:back", back.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        imp.manifest_digest.as_str(),
        "{index}"
    );
    let blob = |d: &berth_image::digest::Digest| back.join("blobs/sha256").join(d.hex());
    for d in [&imp.config_digest, &imp.layer_digest] {
        assert_eq!(
            std::fs::read(blob(d)).unwrap(),
            std::fs::read(src.content.blob_path(d)).unwrap(),
            "{d}"
        );
    }
}
