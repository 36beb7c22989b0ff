//! Pull from a real registry (Debian's docker-registry) into an empty store: blobs verified,
//! layers unpacked into snapshots with their whiteouts, the image recorded and tagged, the
//! read-only overlay view showing the merged tree. Needs root (mknod of whiteouts, overlay).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_distribution::pull::{pull, Progress, PullOptions, Stores};
use berth_distribution::{ClientConfig, RegistryClient, Repository};
use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::platform::Platform;
use berth_image::reference::Reference;
use berth_image::snapshot::{self, chain_id, Snapshotter};
use berth_image::store::ImageStore;
use bytes::Bytes;
use registry_support::{Auth, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data).unwrap();
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

/// (gzip blob, diff id)
fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let raw = b.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = snapshot::unmount(&self.0);
    }
}

fn opaque(p: &Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_unpacks_and_records() {
    registry_support::require_registry();
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (overlay, whiteouts)"
    );
    let reg = Registry::start(Auth::None);
    let client = Arc::new(RegistryClient::new(ClientConfig::default()).unwrap());
    let repo = Repository::new(reg.host.clone(), "berth/pull");

    let (l1, d1) = layer(|b| {
        dir(b, "etc");
        file(b, "etc/hello", 0o644, b"hi\n");
        dir(b, "bin");
        file(b, "bin/tool", 0o755, b"#!/bin/sh\n");
        dir(b, "keep");
        file(b, "keep/a", 0o644, b"a");
    });
    let (l2, d2) = layer(|b| {
        file(b, "etc/.wh.hello", 0o644, b"");
        file(b, "etc/new", 0o600, b"new");
        file(b, "keep/.wh..wh..opq", 0o644, b"");
        file(b, "keep/b", 0o644, b"b");
    });
    let host = Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host.architecture, "os": host.os,
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": [d1.as_str(), d2.as_str()]},
        "config": {"Cmd": ["sh"]}
    }))
    .unwrap();
    let cd = Digest::sha256_of(&config);
    let (g1, g2) = (Digest::sha256_of(&l1), Digest::sha256_of(&l2));
    for (d, b) in [(&cd, &config), (&g1, &l1), (&g2, &l2)] {
        client
            .push_blob(&repo, d, Bytes::from(b.clone()), None)
            .await
            .unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": g1.as_str(), "size": l1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": g2.as_str(), "size": l2.len()}
        ]
    }))
    .unwrap();
    let md = client
        .put_manifest(&repo, "v1", OCI_MANIFEST, Bytes::from(manifest.clone()))
        .await
        .unwrap();
    // An index with only a foreign platform in it.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.as_str(), "size": manifest.len(),
                       "platform": {"os": "linux", "architecture": "s390x"}}]
    }))
    .unwrap();
    client
        .put_manifest(&repo, "foreign", OCI_INDEX, Bytes::from(index))
        .await
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let stores = Stores {
        content: ContentStore::open(root.path()).unwrap(),
        snapshots: Snapshotter::open(root.path()).unwrap(),
        images: Arc::new(ImageStore::open(root.path()).unwrap()),
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let progress: Arc<dyn Fn(Progress) + Send + Sync> =
        Arc::new(move |p| ev.lock().unwrap().push(p));
    let reference = Reference::parse(&format!("{}/berth/pull:v1", reg.host)).unwrap();
    let rec = pull(
        client.clone(),
        &stores,
        &reference,
        &PullOptions::default(),
        progress.clone(),
    )
    .await
    .unwrap();

    assert_eq!(rec.config_digest, cd);
    assert_eq!(rec.manifest_digest.as_ref(), Some(&md));
    assert_eq!(rec.layers.len(), 2);
    assert_eq!(stores.images.resolve(&reference.to_string()).unwrap(), rec);
    for d in [&cd, &g1, &g2, &md] {
        assert!(stores.content.exists(d), "blob {d} stored");
    }
    let evs = events.lock().unwrap().clone();
    assert!(
        evs.iter()
            .any(|e| matches!(e, Progress::Extracted { digest } if digest == &g2)),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, Progress::Downloading { .. })),
        "{evs:?}"
    );

    // The upper layer's snapshot holds overlay whiteouts.
    let c2 = chain_id(&[d1.clone(), d2.clone()]);
    let spec = stores.snapshots.mounts(&c2, "view", true).unwrap();
    let target = root.path().join("merged");
    std::fs::create_dir(&target).unwrap();
    snapshot::mount(&spec, &target).unwrap();
    let _guard = Unmount(target.clone());
    assert!(
        !target.join("etc/hello").exists(),
        "whiteout hides etc/hello"
    );
    assert_eq!(std::fs::read(target.join("etc/new")).unwrap(), b"new");
    assert_eq!(
        std::fs::metadata(target.join("etc/new"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert!(
        !target.join("keep/a").exists(),
        "opaque dir hides the lower keep/a"
    );
    assert_eq!(std::fs::read(target.join("keep/b")).unwrap(), b"b");
    assert_eq!(
        std::fs::metadata(target.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    let snap_root = root.path().join("snapshots");
    let mut found_whiteout = false;
    let mut found_opaque = false;
    for e in walk(&snap_root) {
        let md = std::fs::symlink_metadata(&e).unwrap();
        if e.ends_with("etc/hello") && md.file_type().is_char_device() && md.rdev() == 0 {
            found_whiteout = true;
        }
        if e.ends_with("keep") && md.is_dir() && opaque(&e) {
            found_opaque = true;
        }
    }
    assert!(
        found_whiteout && found_opaque,
        "whiteout {found_whiteout}, opaque {found_opaque}"
    );
    drop(_guard);

    // A second pull downloads nothing.
    events.lock().unwrap().clear();
    pull(
        client.clone(),
        &stores,
        &reference,
        &PullOptions::default(),
        progress.clone(),
    )
    .await
    .unwrap();
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Progress::Downloading { .. })));

    // Push it to another repository of the same registry: blobs are mounted, not uploaded; the
    // copy pulls back into an empty store as the same image.
    let pushed_events = Arc::new(Mutex::new(Vec::new()));
    let pe = pushed_events.clone();
    let target = Reference::parse(&format!("{}/berth/copy:c1", reg.host)).unwrap();
    let pd = berth_distribution::push::push(
        client.clone(),
        &stores,
        &reference.to_string(),
        &target,
        4,
        Arc::new(move |p| pe.lock().unwrap().push(p)),
    )
    .await
    .unwrap();
    assert_eq!(pd, md, "the manifest is pushed byte for byte");
    assert!(
        pushed_events.lock().unwrap().iter().all(|e| matches!(
            e,
            berth_distribution::push::PushProgress::Pushed {
                outcome: berth_distribution::PushOutcome::Mounted
                    | berth_distribution::PushOutcome::AlreadyExists,
                ..
            }
        )),
        "{:?}",
        pushed_events.lock().unwrap()
    );
    let root2 = tempfile::tempdir().unwrap();
    let stores2 = Stores {
        content: ContentStore::open(root2.path()).unwrap(),
        snapshots: Snapshotter::open(root2.path()).unwrap(),
        images: Arc::new(ImageStore::open(root2.path()).unwrap()),
    };
    let rec2 = pull(
        client.clone(),
        &stores2,
        &target,
        &PullOptions::default(),
        progress.clone(),
    )
    .await
    .unwrap();
    assert_eq!(rec2.config_digest, rec.config_digest);
    assert_eq!(rec2.layers, rec.layers);
    // A push of an image whose blobs are gone is refused before anything is sent.
    let e = berth_distribution::push::push(
        client.clone(),
        &stores,
        "nonexistent:tag",
        &target,
        4,
        Arc::new(|_| {}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("No such image"), "{e}");

    // No manifest for this platform: a clear error, nothing recorded.
    let foreign = Reference::parse(&format!("{}/berth/pull:foreign", reg.host)).unwrap();
    let before = stores.content.list().unwrap();
    let e = pull(
        client.clone(),
        &stores,
        &foreign,
        &PullOptions::default(),
        progress,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no matching manifest"), "{e}");
    assert!(stores.images.resolve(&foreign.to_string()).is_err());
    assert_eq!(stores.content.list().unwrap(), before, "store unchanged");
}

use std::os::unix::fs::FileTypeExt;

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            out.push(path.clone());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&path));
            }
        }
    }
    out
}
