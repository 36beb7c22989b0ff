//! The round trip: an image built from Debian's busybox-static (imported from the
//! fixture's rootfs) is pushed by berth to a registry with htpasswd basic auth, pulled back into
//! an empty store, and its unpacked tree compared with the original: paths, types, modes,
//! owners, contents, symlink targets. Root (unpack, ownership).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use berth_distribution::pull::{pull, PullOptions, Stores};
use berth_distribution::push::push;
use berth_distribution::{ClientConfig, Credential, CredentialsSource, RegistryClient};
use berth_image::archive::import_rootfs;
use berth_image::content::ContentStore;
use berth_image::platform::Platform;
use berth_image::reference::Reference;
use berth_image::snapshot::{chain_id, Snapshotter};
use berth_image::store::{ImageRecord, ImageStore};
use registry_support::{Auth, Registry};

fn stores(root: &Path) -> Stores {
    Stores {
        content: ContentStore::open(root).unwrap(),
        snapshots: Snapshotter::open(root).unwrap(),
        images: Arc::new(ImageStore::open(root).unwrap()),
    }
}

/// path → (kind, mode, uid, gid, content or link target)
fn tree(root: &Path) -> BTreeMap<String, (String, u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let (kind, data) = if md.file_type().is_symlink() {
                (
                    "link",
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if md.is_dir() {
                stack.push(p.clone());
                ("dir", vec![])
            } else if md.is_file() {
                ("file", std::fs::read(&p).unwrap())
            } else {
                ("other", vec![])
            };
            out.insert(
                rel,
                (
                    kind.to_string(),
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid(),
                    data,
                ),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_image_round_trip_through_an_authenticated_registry() {
    registry_support::require_registry();
    berth_testutil::require_root().unwrap();
    let bundle = berth_testutil::Bundle::busybox(&["true"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("rootfs.tar");
    bundle.write_rootfs_tar(&tar).unwrap();

    let src = stores(&work.path().join("src"));
    let imp = import_rootfs(
        &src.content,
        std::fs::File::open(&tar).unwrap(),
        &[],
        &Platform::host(),
    )
    .unwrap();
    let record = ImageRecord::from_import(&imp, &src.content).unwrap();
    src.images
        .put(&record, &[Reference::parse("busybox:local").unwrap()])
        .unwrap();

    let reg = Registry::start(Auth::Htpasswd {
        user: "berth".into(),
        password: "s3cret".into(),
    });
    let target = Reference::parse(&format!("{}/library/busybox:rt", reg.host)).unwrap();
    // Without credentials: refused with a clear error, nothing pushed.
    let anon = Arc::new(RegistryClient::new(ClientConfig::default()).unwrap());
    let e = push(anon, &src, "busybox:local", &target, 4, Arc::new(|_| {}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("authentication required"), "{e}");

    let creds = CredentialsSource::Static(std::collections::HashMap::from([(
        reg.host.clone(),
        Credential::Basic {
            username: "berth".into(),
            password: "s3cret".into(),
        },
    )]));
    let client = Arc::new(
        RegistryClient::new(ClientConfig {
            credentials: creds,
            ..ClientConfig::default()
        })
        .unwrap(),
    );
    let pushed = push(
        client.clone(),
        &src,
        "busybox:local",
        &target,
        4,
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    assert_eq!(pushed, imp.manifest_digest);

    let dst = stores(&work.path().join("dst"));
    let rec = pull(
        client,
        &dst,
        &target,
        &PullOptions::default(),
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    assert_eq!(rec.config_digest, imp.config_digest);
    assert_eq!(rec.layers[0].digest, imp.layer_digest);
    assert_eq!(rec.layers[0].diff_id, imp.diff_id);
    let chain = chain_id(std::slice::from_ref(&imp.diff_id));
    assert!(dst.snapshots.exists(&chain));
    let snap_fs = work.path().join("dst/snapshots");
    // The single layer's snapshot is the only committed one: find its fs dir.
    let fs = std::fs::read_dir(&snap_fs)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("fs"))
        .find(|p| p.is_dir())
        .unwrap();
    let (want, got) = (tree(&bundle.rootfs()), tree(&fs));
    assert_eq!(want.len(), got.len(), "entry count");
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "{k}");
    }
}
