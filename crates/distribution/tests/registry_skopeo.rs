//! Interop with skopeo: an OCI layout copied by skopeo into docker-registry is resolved and
//! pulled by the client; an image the client pushes is copied back out by skopeo and compared.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::path::Path;
use std::process::Command;

use berth_distribution::{ClientConfig, PushOutcome, RegistryClient, Repository};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use bytes::Bytes;
use registry_support::{pseudo_random, Auth, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn have_skopeo() -> bool {
    Path::new("/usr/bin/skopeo").exists()
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn write_blob(layout: &Path, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    std::fs::write(layout.join("blobs/sha256").join(d.hex()), data).unwrap();
    d
}

/// A one-layer OCI image layout written by hand; returns (manifest digest, layer, config).
fn make_layout(layout: &Path) -> (Digest, Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let src = layout.parent().unwrap().join("rootfs");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/hello"), pseudo_random(100_000, 5)).unwrap();
    let tgz = layout.parent().unwrap().join("layer.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let layer = std::fs::read(&tgz).unwrap();
    let dl = write_blob(layout, &layer);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let dc = write_blob(layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dl.as_str(), "size": layer.len()}],
    }))
    .unwrap();
    let dm = write_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": dm.as_str(), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    (dm, layer, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_we_pull_then_we_push_and_skopeo_pulls() {
    registry_support::require_registry();
    assert!(have_skopeo(), "skopeo is missing: apt-get install skopeo");
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (dm, layer, config) = make_layout(&layout);

    // skopeo → registry → berth
    let dest = format!("docker://{}/skopeo/img:v1", reg.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &dest,
    ]);
    let c = RegistryClient::new(ClientConfig::default()).unwrap();
    let r = Reference::parse(&format!("{}/skopeo/img:v1", reg.host)).unwrap();
    let res = c.resolve(&r).await.unwrap();
    assert_eq!(res.digest, dm, "skopeo kept the manifest as is");
    assert_eq!(res.media_type, OCI_MANIFEST);
    let repo = Repository::from(&r);
    let m = c.get_manifest(&repo, dm.as_str()).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    for (desc, want) in [(&v["layers"][0], &layer), (&v["config"], &config)] {
        let d = Digest::parse(desc["digest"].as_str().unwrap()).unwrap();
        let mut got = Vec::new();
        c.pull_blob(&repo, &d, desc["size"].as_u64(), &mut got)
            .await
            .unwrap();
        assert_eq!(&got, want);
    }

    // berth → registry → skopeo
    let ours = Repository::new(reg.host.clone(), "berth/pushed");
    let blob = pseudo_random(500_000, 11);
    let (db, dc) = (Digest::sha256_of(&blob), Digest::sha256_of(&config));
    c.push_blob_chunked(&ours, &db, &blob[..], 128 * 1024)
        .await
        .unwrap();
    assert_eq!(
        c.push_blob(&ours, &dc, Bytes::from(config.clone()), Some("skopeo/img"))
            .await
            .unwrap(),
        PushOutcome::Mounted
    );
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": db.as_str(), "size": blob.len()}],
    }))
    .unwrap();
    let dpushed = c
        .put_manifest(&ours, "v2", OCI_MANIFEST, Bytes::from(manifest.clone()))
        .await
        .unwrap();
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{}/berth/pushed:v2", reg.host),
    ]);
    assert_eq!(raw, manifest);
    let out = tmp.path().join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        // Without it skopeo gzips the uncompressed layer on the way into the layout.
        "--preserve-digests",
        &format!("docker://{}/berth/pushed:v2", reg.host),
        &format!("oci:{}:v2", out.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let got_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let got_manifest = std::fs::read(out.join("blobs/sha256").join(&got_digest[7..])).unwrap();
    assert_eq!(got_digest, dpushed.as_str());
    assert_eq!(got_manifest, manifest);
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(db.hex())).unwrap(),
        blob
    );
}
