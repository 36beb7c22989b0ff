//! Round trip against Debian's docker-registry (plain HTTP on loopback): blobs pushed
//! monolithic and chunked, an OCI manifest under a tag, resolve, pull back, resume, mount.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use berth_distribution::{ClientConfig, PushOutcome, RegistryClient, Repository, WriteSink};
use berth_image::digest::{Digest, Hasher};
use berth_image::reference::Reference;
use bytes::Bytes;
use registry_support::{pseudo_random, Auth, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn client() -> RegistryClient {
    RegistryClient::new(ClientConfig::default()).unwrap()
}

fn manifest_json(config: &(Digest, usize), layers: &[(Digest, usize)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, n)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.as_str(), "size": n
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0.as_str(), "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trip() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::None);
    let c = client();
    let repo = Repository::new(reg.host.clone(), "berth/round");

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let small = pseudo_random(10_000, 1);
    let big = pseudo_random(3 * 1024 * 1024 + 17, 2);
    let (dc, ds, db) = (
        Digest::sha256_of(&config),
        Digest::sha256_of(&small),
        Digest::sha256_of(&big),
    );

    assert_eq!(c.blob_exists(&repo, &ds).await.unwrap(), None);
    assert_eq!(
        c.push_blob(&repo, &dc, Bytes::from(config.clone()), None)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert_eq!(
        c.push_blob(&repo, &ds, Bytes::from(small.clone()), None)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    // Chunked: 1 MiB PATCHes, the last one short.
    assert_eq!(
        c.push_blob_chunked(&repo, &db, &big[..], 1 << 20)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    // Present now: skipped.
    assert_eq!(
        c.push_blob(&repo, &ds, Bytes::from(small.clone()), None)
            .await
            .unwrap(),
        PushOutcome::AlreadyExists
    );
    assert_eq!(
        c.blob_exists(&repo, &db).await.unwrap(),
        Some(big.len() as u64)
    );

    let m = manifest_json(
        &(dc.clone(), config.len()),
        &[(ds.clone(), small.len()), (db.clone(), big.len())],
    );
    let dm = c
        .put_manifest(&repo, "v1", OCI_MANIFEST, Bytes::from(m.clone()))
        .await
        .unwrap();
    assert_eq!(dm, Digest::sha256_of(&m));

    // Resolve by tag (HEAD) and by digest.
    let r = Reference::parse(&format!("{}/berth/round:v1", reg.host)).unwrap();
    let res = c.resolve(&r).await.unwrap();
    assert_eq!(res.digest, dm);
    assert_eq!(res.media_type, OCI_MANIFEST);
    assert_eq!(res.size, m.len() as u64);
    let r2 = Reference::parse(&format!("{}/berth/round@{}", reg.host, dm)).unwrap();
    assert_eq!(c.resolve(&r2).await.unwrap().digest, dm);

    // Manifest by tag and by digest.
    let got = c.get_manifest(&repo, "v1").await.unwrap();
    assert_eq!(&got.bytes[..], &m[..]);
    assert_eq!(got.digest, dm);
    assert_eq!(got.media_type, OCI_MANIFEST);
    let got = c.get_manifest(&repo, dm.as_str()).await.unwrap();
    assert_eq!(got.digest, dm);

    // Blobs back, digests verified as they flow.
    let mut buf = Vec::new();
    let n = c
        .pull_blob(&repo, &db, Some(big.len() as u64), &mut buf)
        .await
        .unwrap();
    assert_eq!(n, big.len() as u64);
    assert_eq!(Digest::sha256_of(&buf), db);
    let mut h = Hasher::new();
    c.pull_blob(&repo, &ds, None, &mut WriteSink(&mut h))
        .await
        .unwrap();
    assert_eq!(h.finish(), ds);

    // Resume from an offset: the sink already holds the first part.
    let mut partial = big[..1_234_567].to_vec();
    c.pull_blob(&repo, &db, Some(big.len() as u64), &mut partial)
        .await
        .unwrap();
    assert_eq!(partial, big);

    // Raw stream with a Range.
    let mut s = c.get_blob(&repo, &db, 1000).await.unwrap();
    assert_eq!(s.offset, 1000);
    let mut tail = Vec::new();
    while let Some(ch) = s.chunk().await.unwrap() {
        tail.extend_from_slice(&ch);
    }
    assert_eq!(&tail[..], &big[1000..]);

    // Cross-repository mount, then the manifest under a second repo.
    let other = Repository::new(reg.host.clone(), "berth/other");
    assert!(c.mount_blob(&other, &db, "berth/round").await.unwrap());
    assert_eq!(
        c.push_blob(&other, &ds, Bytes::from(small.clone()), Some("berth/round"))
            .await
            .unwrap(),
        PushOutcome::Mounted
    );
    assert_eq!(
        c.push_blob(
            &other,
            &dc,
            Bytes::from(config.clone()),
            Some("berth/nothing-here")
        )
        .await
        .unwrap(),
        PushOutcome::Uploaded
    );
    c.put_manifest(&other, "latest", OCI_MANIFEST, Bytes::from(m.clone()))
        .await
        .unwrap();
    let r3 = Reference::parse(&format!("{}/berth/other", reg.host)).unwrap();
    assert_eq!(c.resolve(&r3).await.unwrap().digest, dm);

    // Docker schema2 manifest and an OCI index over both: media types as pushed.
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let dm2_bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": dc.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ds.as_str(), "size": small.len()}],
    }))
    .unwrap();
    let dm2 = c
        .put_manifest(
            &repo,
            "docker",
            DOCKER_MANIFEST,
            Bytes::from(dm2_bytes.clone()),
        )
        .await
        .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": dm.as_str(), "size": m.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": DOCKER_MANIFEST, "digest": dm2.as_str(), "size": dm2_bytes.len(), "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }))
    .unwrap();
    let di = c
        .put_manifest(&repo, "multi", OCI_INDEX, Bytes::from(index.clone()))
        .await
        .unwrap();
    for (tag, digest, mt) in [("docker", &dm2, DOCKER_MANIFEST), ("multi", &di, OCI_INDEX)] {
        let r = Reference::parse(&format!("{}/berth/round:{tag}", reg.host)).unwrap();
        let res = c.resolve(&r).await.unwrap();
        assert_eq!(
            (&res.digest, res.media_type.as_str()),
            (digest, mt),
            "{tag}"
        );
    }

    // Streaming upload from a file (how the content store's blobs are pushed).
    let third = Repository::new(reg.host.clone(), "berth/third");
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("blob");
    let file_data = pseudo_random(2 * 1024 * 1024 + 5, 9);
    std::fs::write(&f, &file_data).unwrap();
    let df = Digest::sha256_of(&file_data);
    assert_eq!(
        c.push_blob_file(&third, &df, &f, file_data.len() as u64, None)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    let mut back = Vec::new();
    c.pull_blob(&third, &df, Some(file_data.len() as u64), &mut back)
        .await
        .unwrap();
    assert_eq!(back, file_data);
    let e = c
        .push_blob_file(&third, &ds, &tmp.path().join("absent"), 1, None)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("open "), "{e}");

    // Unknown tag and blob: not-found errors naming them.
    let e = c.get_manifest(&repo, "nope").await.unwrap_err().to_string();
    assert!(e.contains("manifest nope not found in"), "{e}");
    let missing = Digest::sha256_of(b"missing");
    assert_eq!(c.blob_exists(&repo, &missing).await.unwrap(), None);
    let mut sink = Vec::new();
    let e = c
        .pull_blob(&repo, &missing, None, &mut sink)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("blob {missing} not found")), "{e}");
}
