//! Interop with skopeo (Debian's): archives berth writes are read by skopeo, and archives
//! skopeo writes are loaded by berth, with the image ID (config digest) kept throughout.

// Helpers outside #[test] fns build fixtures; a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use berth_image::archive::{
    import_rootfs, read_archive, write_docker_archive, write_oci_layout, ArchiveImage,
    ImportedImage,
};
use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::manifest;
use berth_image::platform::Platform;

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("timeout")
        .arg("120")
        .arg("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn need_skopeo() {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs skopeo: apt-get install skopeo");
}

fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("bin/sh", &b"#!fake shell\n"[..]), ("etc/motd", b"hello\n")] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn setup(dir: &Path) -> (ContentStore, ImportedImage) {
    let s = ContentStore::open(&dir.join("store")).unwrap();
    let img = import_rootfs(
        &s,
        rootfs_tar().as_slice(),
        &[r#"CMD ["sh"]"#.to_string()],
        &Platform::parse("linux/amd64").unwrap(),
    )
    .unwrap();
    (s, img)
}

fn config_digest_of(inspect_config: &[u8]) -> Digest {
    Digest::sha256_of(inspect_config)
}

#[test]
fn skopeo_reads_our_oci_layout_and_we_read_its_docker_archive() {
    need_skopeo();
    let dir = tempfile::tempdir().unwrap();
    let (s, img) = setup(dir.path());
    let oci = dir.path().join("oci.tar");
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["berth/test:v1".to_string()],
    }];
    write_oci_layout(&s, &images, std::fs::File::create(&oci).unwrap()).unwrap();
    let oci_ref = format!("oci-archive:{}", oci.display());
    let raw = skopeo(&["inspect", "--raw", &oci_ref]);
    assert_eq!(Digest::sha256_of(&raw), img.manifest_digest);
    let cfg = skopeo(&["inspect", "--config", "--raw", &oci_ref]);
    assert_eq!(config_digest_of(&cfg), img.config_digest);

    let dock = dir.path().join("skopeo-docker.tar");
    let dock_ref = format!("docker-archive:{}:skopeo/test:v2", dock.display());
    skopeo(&["copy", &oci_ref, &dock_ref]);
    let fresh = ContentStore::open(&dir.path().join("fresh")).unwrap();
    let loaded = read_archive(&fresh, std::fs::File::open(&dock).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config_digest.as_ref(), Some(&img.config_digest));
    assert!(
        loaded[0].names.iter().any(|n| n.contains("skopeo/test:v2")),
        "{:?}",
        loaded[0].names
    );
}

#[test]
fn skopeo_reads_our_docker_archive() {
    need_skopeo();
    let dir = tempfile::tempdir().unwrap();
    let (s, img) = setup(dir.path());
    let ours = dir.path().join("ours.tar");
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["berth/test:v1".to_string()],
    }];
    write_docker_archive(&s, &images, std::fs::File::create(&ours).unwrap()).unwrap();
    let ours_ref = format!("docker-archive:{}", ours.display());
    let cfg = skopeo(&["inspect", "--config", "--raw", &ours_ref]);
    assert_eq!(config_digest_of(&cfg), img.config_digest);

    let back = dir.path().join("back.tar");
    let back_ref = format!("oci-archive:{}:berth/test:v1", back.display());
    skopeo(&["copy", &ours_ref, &back_ref]);
    let fresh = ContentStore::open(&dir.path().join("fresh")).unwrap();
    let loaded = read_archive(&fresh, std::fs::File::open(&back).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    // skopeo re-serialises the config on this path (Go's field order), so the image ID
    // changes; what it says must not.
    let theirs = loaded[0].config_digest.clone().unwrap();
    let theirs = manifest::parse_config(&fresh.read_blob(&theirs, 1 << 20).unwrap()).unwrap();
    let mine = manifest::parse_config(&s.read_blob(&img.config_digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(
        manifest::diff_ids(&theirs).unwrap(),
        vec![img.diff_id.clone()]
    );
    assert_eq!(theirs.config(), mine.config());
    assert_eq!(theirs.architecture(), mine.architecture());
    assert_eq!(loaded[0].names, vec!["berth/test:v1".to_string()]);
}
