//! berth's own client pushes to and pulls from berth-registry: monolithic and chunked blobs,
//! a tagged OCI manifest, resolve, ranged pull, cross-repository mount, tags and catalog.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod server_support;

use berth_distribution::{ClientConfig, PushOutcome, RegistryClient, Repository, WriteSink};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use bytes::Bytes;
use server_support::{http, manifest_json, pseudo_random, Server};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_with_berths_client() {
    let srv = Server::start(&[]);
    let c = RegistryClient::new(ClientConfig::default()).unwrap();
    let repo = Repository::new(srv.addr.clone(), "berth/round");

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
    assert_eq!(
        c.push_blob_chunked(&repo, &db, &big[..], 1 << 20)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
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
        (dc.as_str(), config.len()),
        &[(ds.as_str(), small.len()), (db.as_str(), big.len())],
    );
    let md = c
        .put_manifest(&repo, "v1", OCI_MANIFEST, Bytes::from(m.clone()))
        .await
        .unwrap();
    assert_eq!(md, Digest::sha256_of(&m));

    let r = Reference::parse(&format!("{}/berth/round:v1", srv.addr)).unwrap();
    let resolved = c.resolve(&r).await.unwrap();
    assert_eq!(resolved.digest, md);
    assert_eq!(resolved.media_type, OCI_MANIFEST);
    assert_eq!(resolved.size, m.len() as u64);

    let mut got = WriteSink(Vec::new());
    c.pull_blob(&repo, &db, Some(big.len() as u64), &mut got)
        .await
        .unwrap();
    assert_eq!(got.0, big);

    // Cross-repository mount: another repository gets the blob without data.
    let other = Repository::new(srv.addr.clone(), "berth/other");
    assert_eq!(
        c.push_blob(&other, &db, Bytes::from(big.clone()), Some("berth/round"))
            .await
            .unwrap(),
        PushOutcome::Mounted
    );

    let h = http();
    let r = h
        .get(srv.url(&format!("/v2/berth/round/blobs/{db}")))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", big.len())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[10..20]);

    let r = h
        .get(srv.url("/v2/berth/round/tags/list"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "berth/round", "tags": ["v1"]})
    );
    let r = h.get(srv.url("/v2/_catalog")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"repositories": ["berth/other", "berth/round"]})
    );

    // One blob file per digest, shared by both repositories.
    let blobs = std::fs::read_dir(srv.root.join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 4);
}
