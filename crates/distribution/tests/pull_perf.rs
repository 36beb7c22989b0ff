//! The pull benchmark of issue 4 (ignored by default; bench/pull.sh runs it in release mode):
//! a 256 MiB image of four 64 MiB incompressible gzip layers, pushed to a local docker-registry,
//! pulled into an empty store — downloaded, verified, unpacked into snapshots, recorded.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use berth_distribution::pull::{pull, PullOptions, Stores};
use berth_distribution::{ClientConfig, RegistryClient, Repository};
use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::platform::Platform;
use berth_image::reference::Reference;
use berth_image::snapshot::Snapshotter;
use berth_image::store::ImageStore;
use registry_support::{pseudo_random, Auth, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn pull_256mib_image() {
    // bench/pull.sh runs the registry itself (so dockerd can pull the same image afterwards).
    let external = std::env::var("BERTH_BENCH_REGISTRY").ok();
    let started = match &external {
        Some(_) => None,
        None => {
            registry_support::require_registry();
            Some(Registry::start(Auth::None))
        }
    };
    let host =
        external.unwrap_or_else(|| started.as_ref().map(|r| r.host.clone()).unwrap_or_default());
    let c = Arc::new(RegistryClient::new(ClientConfig::default()).unwrap());
    let repo = Repository::new(host.clone(), "bench/big");
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..4u64 {
        let mut b = tar::Builder::new(Vec::new());
        let data = pseudo_random(64 << 20, i + 7);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, format!("data{i}.bin"), data.as_slice())
            .unwrap();
        let raw = b.into_inner().unwrap();
        diff_ids.push(Digest::sha256_of(&raw));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let blob = gz.finish().unwrap();
        let d = Digest::sha256_of(&blob);
        let p = tmp.path().join(format!("l{i}"));
        std::fs::write(&p, &blob).unwrap();
        layers.push((d, p, blob.len() as u64));
    }
    let platform = Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": platform.architecture, "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()}
    }))
    .unwrap();
    let cd = Digest::sha256_of(&config);
    let t = Instant::now();
    c.push_blob(&repo, &cd, bytes::Bytes::from(config.clone()), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (d, p, n) in layers.clone() {
        let (c, repo) = (c.clone(), repo.clone());
        tasks.push(tokio::spawn(async move {
            c.push_blob_file(&repo, &d, &p, n, None).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
        "layers": layers.iter().map(|(d, _, n)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": n})).collect::<Vec<_>>()
    }))
    .unwrap();
    c.put_manifest(
        &repo,
        "latest",
        "application/vnd.oci.image.manifest.v1+json",
        bytes::Bytes::from(manifest),
    )
    .await
    .unwrap();
    let push = t.elapsed();

    let root = tempfile::tempdir_in("/var/tmp").unwrap();
    let stores = Stores {
        content: ContentStore::open(root.path()).unwrap(),
        snapshots: Snapshotter::open(root.path()).unwrap(),
        images: Arc::new(ImageStore::open(root.path()).unwrap()),
    };
    let reference = Reference::parse(&format!("{host}/bench/big:latest")).unwrap();
    let t = Instant::now();
    let rec = pull(
        c.clone(),
        &stores,
        &reference,
        &PullOptions::default(),
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    let took = t.elapsed();
    assert_eq!(rec.layers.len(), 4);
    println!(
        "BENCH push 4 x 64 MiB layers (from files): {:.3} s",
        push.as_secs_f64()
    );
    println!(
        "BENCH pull 256 MiB image into an empty store, unpacked: {:.3} s",
        took.as_secs_f64()
    );
    println!("REGISTRY {host}");
}
