//! Pull against a registry that serves a layer whose bytes do not match its digest: a clear
//! error, and the store exactly as before (no image, no blob, no snapshot). Root (unpack).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::io::Write;
use std::sync::Arc;

use berth_distribution::pull::{pull, PullOptions, Stores};
use berth_distribution::{ClientConfig, RegistryClient};
use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::platform::Platform;
use berth_image::reference::Reference;
use berth_image::snapshot::Snapshotter;
use berth_image::store::ImageStore;
use registry_support::{respond, MockServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_layer_is_refused_and_nothing_is_kept() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    b.append_data(&mut h, "f", &b"hello"[..]).unwrap();
    let raw = b.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let layer = gz.finish().unwrap();
    let ld = Digest::sha256_of(&layer);
    let mut corrupt = layer.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let p = Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": p.architecture, "os": p.os,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]}
    }))
    .unwrap();
    let cd = Digest::sha256_of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.as_str(), "size": layer.len()}]
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let (m2, c2, cdp, ldp) = (
        manifest.clone(),
        config.clone(),
        format!("/blobs/{cd}"),
        format!("/blobs/{ld}"),
    );
    let srv = MockServer::start(move |req, s| {
        let path = req.path().to_string();
        if path.ends_with("/manifests/v1") {
            let headers = [
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".to_string(),
                ),
                ("Docker-Content-Digest", md.to_string()),
            ];
            respond(s, "200 OK", &headers, &m2);
        } else if path.ends_with(&cdp) {
            respond(s, "200 OK", &[], &c2);
        } else if path.ends_with(&ldp) {
            respond(s, "200 OK", &[], &corrupt);
        } else {
            respond(s, "200 OK", &[], b"{}");
        }
    });
    let root = tempfile::tempdir().unwrap();
    let stores = Stores {
        content: ContentStore::open(root.path()).unwrap(),
        snapshots: Snapshotter::open(root.path()).unwrap(),
        images: Arc::new(ImageStore::open(root.path()).unwrap()),
    };
    let client = Arc::new(
        RegistryClient::new(ClientConfig {
            max_attempts: 1,
            ..ClientConfig::default()
        })
        .unwrap(),
    );
    let reference = Reference::parse(&format!("127.0.0.1:{}/mock/app:v1", srv.port)).unwrap();
    let e = pull(
        client,
        &stores,
        &reference,
        &PullOptions::default(),
        Arc::new(|_| {}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(
        stores.images.list().unwrap().is_empty(),
        "no image recorded"
    );
    assert!(
        stores.content.list().unwrap().is_empty(),
        "no blob kept: {:?}",
        stores.content.list().unwrap()
    );
    assert!(
        stores.snapshots.layers().unwrap().is_empty(),
        "no snapshot kept"
    );
}
