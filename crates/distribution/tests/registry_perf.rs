//! Throughput figure (ignored by default; run with --release -- --ignored --nocapture).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod registry_support;

use std::time::Instant;

use berth_distribution::{ClientConfig, RegistryClient, Repository};
use berth_image::digest::Digest;
use registry_support::{pseudo_random, Auth, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput_64mib_blobs() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::None);
    let c = std::sync::Arc::new(RegistryClient::new(ClientConfig::default()).unwrap());
    let repo = Repository::new(reg.host.clone(), "perf/img");
    let tmp = tempfile::tempdir().unwrap();
    let mut blobs = Vec::new();
    for i in 0..4u64 {
        let data = pseudo_random(64 << 20, i + 100);
        let d = Digest::sha256_of(&data);
        let p = tmp.path().join(format!("b{i}"));
        std::fs::write(&p, &data).unwrap();
        blobs.push((d, p));
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (d, p) in blobs.clone() {
        let (c, repo) = (c.clone(), repo.clone());
        tasks.push(tokio::spawn(async move {
            c.push_blob_file(&repo, &d, &p, 64 << 20, None)
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("push 4 x 64 MiB in parallel: {:?}", t.elapsed());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, (d, _)) in blobs.iter().cloned().enumerate() {
        let (c, repo) = (c.clone(), repo.clone());
        let out = tmp.path().join(format!("out{i}"));
        tasks.push(tokio::spawn(async move {
            let f = std::fs::File::create(out).unwrap();
            let mut sink =
                berth_distribution::WriteSink(std::io::BufWriter::with_capacity(1 << 20, f));
            c.pull_blob(&repo, &d, Some(64 << 20), &mut sink)
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("pull 4 x 64 MiB in parallel into files: {:?}", t.elapsed());
}
