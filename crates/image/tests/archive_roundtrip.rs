//! Archives: import a rootfs tar, save as docker and OCI archives, load back into empty
//! stores; bad archives fail clearly and leave the store as it was.

// Helpers outside #[test] fns build fixtures; a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use berth_image::archive::{
    import_rootfs, read_archive, write_docker_archive, write_oci_layout, ArchiveError, ArchiveImage,
};
use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::manifest::{self, ManifestKind};
use berth_image::platform::Platform;
use serde_json::json;

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path()).unwrap();
    (dir, s)
}

/// A small rootfs tar built in memory.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_path("bin/").unwrap();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    b.append(&dir, std::io::empty()).unwrap();
    for (name, data) in [
        ("bin/sh", &b"#!fake shell\n"[..]),
        ("etc/hostname", b"box\n"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Appends a regular file with a raw (unchecked) name, so tests can write `../x`.
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn symlink_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_link_name(target).unwrap();
    h.set_size(0);
    h.set_mode(0o777);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
}

fn changes() -> Vec<String> {
    vec![
        r#"CMD ["sh"]"#.to_string(),
        "ENV A=b".to_string(),
        "WORKDIR /x".to_string(),
    ]
}

fn imported(s: &ContentStore) -> berth_image::archive::ImportedImage {
    let p = Platform::parse("linux/amd64").unwrap();
    import_rootfs(s, rootfs_tar().as_slice(), &changes(), &p).unwrap()
}

#[test]
fn import_makes_a_one_layer_image() {
    let (_d, s) = store();
    let tar = rootfs_tar();
    let img = imported(&s);
    assert_eq!(img.diff_id, Digest::sha256_of(&tar));
    let layer = s.read_blob(&img.layer_digest, 1 << 20).unwrap();
    assert_eq!(&layer[..2], &[0x1f, 0x8b], "layer stored gzip-compressed");
    let m = s.read_blob(&img.manifest_digest, 1 << 20).unwrap();
    let ManifestKind::Image(m) = manifest::parse_manifest(None, &m).unwrap() else {
        panic!("not an image manifest")
    };
    assert_eq!(m.layers().len(), 1);
    assert_eq!(
        m.layers()[0].digest().to_string(),
        img.layer_digest.to_string()
    );
    assert_eq!(
        m.config().digest().to_string(),
        img.config_digest.to_string()
    );
    let cfg = manifest::parse_config(&s.read_blob(&img.config_digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(manifest::diff_ids(&cfg).unwrap(), vec![img.diff_id.clone()]);
    let c = cfg.config().as_ref().unwrap();
    assert_eq!(c.cmd().as_ref().unwrap(), &vec!["sh".to_string()]);
    assert_eq!(c.env().as_ref().unwrap(), &vec!["A=b".to_string()]);
    assert_eq!(c.working_dir().as_deref(), Some("/x"));
    assert!(cfg.created().is_some());
    assert_eq!(manifest::history(&cfg).len(), 1);
    assert_eq!(cfg.architecture().to_string(), "amd64");
    manifest::check_config(&m, &cfg).unwrap();
    assert_eq!(
        manifest::image_id(&img.config_digest),
        img.config_digest.to_string()
    );
}

#[test]
fn import_message_becomes_the_comment() {
    let (_d, s) = store();
    let p = Platform::host();
    let img = berth_image::archive::import_rootfs_with(
        &s,
        rootfs_tar().as_slice(),
        &[],
        &p,
        Some("from the nightly build"),
    )
    .unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&s.read_blob(&img.config_digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(cfg["comment"], "from the nightly build");
    assert_eq!(cfg["history"][0]["comment"], "from the nightly build");
    // Without a message: no top-level comment, the default history comment.
    let plain = import_rootfs(&s, rootfs_tar().as_slice(), &[], &p).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&s.read_blob(&plain.config_digest, 1 << 20).unwrap()).unwrap();
    assert!(cfg.get("comment").is_none());
    assert_eq!(cfg["history"][0]["comment"], "Imported from tarball");
}

#[test]
fn import_refuses_non_tar_and_bad_changes_leaving_store_empty() {
    let (_d, s) = store();
    let p = Platform::host();
    let e = import_rootfs(&s, &b"hello, not a tar"[..], &[], &p).unwrap_err();
    assert!(matches!(e, ArchiveError::NotATar), "{e}");
    let e = import_rootfs(
        &s,
        rootfs_tar().as_slice(),
        &["RUN rm -rf /".to_string()],
        &p,
    )
    .unwrap_err();
    assert!(e.to_string().contains("RUN is not one of"), "{e}");
    assert!(s.list().unwrap().is_empty());
}

fn roundtrip(docker: bool) {
    let (_d, s) = store();
    let img = imported(&s);
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["test/imported:v1".to_string()],
    }];
    if docker {
        write_docker_archive(&s, &images, &mut out).unwrap();
    } else {
        write_oci_layout(&s, &images, &mut out).unwrap();
    }
    let (_d2, empty) = store();
    let loaded = read_archive(&empty, out.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!(l.manifest_digest, img.manifest_digest);
    assert_eq!(l.config_digest.as_ref(), Some(&img.config_digest));
    assert!(
        l.names.contains(&"test/imported:v1".to_string()),
        "{:?}",
        l.names
    );
    let mut want = vec![
        img.manifest_digest.clone(),
        img.config_digest.clone(),
        img.layer_digest.clone(),
    ];
    want.sort();
    assert_eq!(empty.list().unwrap(), want);
    // The archive's file list is what docker and OCI tools expect.
    let mut ar = tar::Archive::new(out.as_slice());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"oci-layout".to_string()));
    assert!(names.contains(&"index.json".to_string()));
    assert!(names.contains(&format!("blobs/sha256/{}", img.layer_digest.hex())));
    assert_eq!(names.contains(&"manifest.json".to_string()), docker);
}

#[test]
fn docker_archive_roundtrip() {
    roundtrip(true);
}

#[test]
fn oci_layout_roundtrip() {
    roundtrip(false);
}

#[test]
fn docker_archive_manifest_json_format() {
    let (_d, s) = store();
    let img = imported(&s);
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["busybox:latest".to_string()],
    }];
    write_docker_archive(&s, &images, &mut out).unwrap();
    let mut ar = tar::Archive::new(out.as_slice());
    let mut manifest_json = None;
    let mut repositories = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut buf = String::new();
        if p == "manifest.json" {
            std::io::Read::read_to_string(&mut e, &mut buf).unwrap();
            manifest_json = Some(buf);
        } else if p == "repositories" {
            std::io::Read::read_to_string(&mut e, &mut buf).unwrap();
            repositories = Some(buf);
        }
    }
    let m: serde_json::Value = serde_json::from_str(&manifest_json.unwrap()).unwrap();
    assert_eq!(
        m,
        json!([{
            "Config": format!("blobs/sha256/{}", img.config_digest.hex()),
            "RepoTags": ["busybox:latest"],
            "Layers": [format!("blobs/sha256/{}", img.layer_digest.hex())],
        }])
    );
    let r: serde_json::Value = serde_json::from_str(&repositories.unwrap()).unwrap();
    assert_eq!(r["busybox"]["latest"], json!(img.layer_digest.hex()));
}

/// A classic `docker save` archive: `<config>.json`, `<id>/layer.tar`, a second image whose
/// layer is a symlink to the first one's.
fn classic_archive(layer: &[u8], diff_id: &Digest) -> Vec<u8> {
    let cfg = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let cfg_d = Digest::sha256_of(&cfg);
    let cfg2 = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["ls"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let cfg2_d = Digest::sha256_of(&cfg2);
    let manifest = json!([
        {"Config": format!("{}.json", cfg_d.hex()), "RepoTags": ["a:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": format!("{}.json", cfg2_d.hex()), "RepoTags": ["b:2"], "Layers": ["bbbb/layer.tar"]},
    ]);
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, &format!("{}.json", cfg_d.hex()), &cfg);
    raw_entry(&mut b, &format!("{}.json", cfg2_d.hex()), &cfg2);
    raw_entry(&mut b, "aaaa/VERSION", b"1.0");
    raw_entry(&mut b, "aaaa/json", b"{}");
    raw_entry(&mut b, "aaaa/layer.tar", layer);
    symlink_entry(&mut b, "bbbb/layer.tar", "../aaaa/layer.tar");
    raw_entry(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    raw_entry(&mut b, "repositories", br#"{"a":{"1":"aaaa"}}"#);
    b.into_inner().unwrap()
}

#[test]
fn classic_docker_save_loads() {
    let layer = rootfs_tar();
    let diff_id = Digest::sha256_of(&layer);
    let archive = classic_archive(&layer, &diff_id);
    let (_d, s) = store();
    let loaded = read_archive(&s, archive.as_slice()).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].names, vec!["a:1".to_string()]);
    assert_eq!(loaded[1].names, vec!["b:2".to_string()]);
    for l in &loaded {
        let m = s.read_blob(&l.manifest_digest, 1 << 20).unwrap();
        let ManifestKind::Image(m) = manifest::parse_manifest(Some(&l.media_type), &m).unwrap()
        else {
            panic!("not an image manifest")
        };
        assert_eq!(m.layers()[0].digest().to_string(), diff_id.to_string());
        assert_eq!(
            m.layers()[0].media_type().to_string(),
            manifest::media_types::DOCKER_LAYER
        );
    }
    // 2 configs, 1 shared layer, 2 manifests; the legacy json/VERSION files are not kept.
    assert_eq!(s.list().unwrap().len(), 5);
}

#[test]
fn whole_archive_gzip_compressed() {
    let (_d, s) = store();
    let img = imported(&s);
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec![],
    }];
    write_docker_archive(&s, &images, &mut out).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&out).unwrap();
    let gz = gz.finish().unwrap();
    let (_d2, empty) = store();
    let loaded = read_archive(&empty, gz.as_slice()).unwrap();
    assert_eq!(loaded[0].manifest_digest, img.manifest_digest);
    assert!(loaded[0].names.is_empty());
}

/// A store with one unrelated blob, and its listing, to check a failed load leaves it as is.
fn used_store() -> (tempfile::TempDir, ContentStore, Vec<Digest>) {
    let (d, s) = store();
    s.put_bytes(b"already here").unwrap();
    let before = s.list().unwrap();
    (d, s, before)
}

#[test]
fn path_traversal_refused() {
    let layer = rootfs_tar();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "aaaa/layer.tar", &layer);
    raw_entry(&mut b, "../../etc/evil", b"x");
    raw_entry(&mut b, "manifest.json", b"[]");
    let archive = b.into_inner().unwrap();
    let (_d, s, before) = used_store();
    let e = read_archive(&s, archive.as_slice()).unwrap_err();
    assert!(matches!(e, ArchiveError::UnsafePath { .. }), "{e}");
    assert!(e.to_string().contains("../../etc/evil"), "{e}");
    assert_eq!(s.list().unwrap(), before);

    // A symlink pointing out of the archive is refused too.
    let mut b = tar::Builder::new(Vec::new());
    symlink_entry(&mut b, "aaaa/layer.tar", "../../../etc/shadow");
    let archive = b.into_inner().unwrap();
    let e = read_archive(&s, archive.as_slice()).unwrap_err();
    assert!(matches!(e, ArchiveError::UnsafePath { .. }), "{e}");
}

#[test]
fn missing_layer_refused() {
    let layer = rootfs_tar();
    let diff_id = Digest::sha256_of(&layer);
    let cfg = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let cfg_d = Digest::sha256_of(&cfg);
    let manifest = json!([{"Config": format!("{}.json", cfg_d.hex()), "RepoTags": ["a:1"], "Layers": ["nope/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, &format!("{}.json", cfg_d.hex()), &cfg);
    raw_entry(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let archive = b.into_inner().unwrap();
    let (_d, s, before) = used_store();
    let e = read_archive(&s, archive.as_slice()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "manifest.json references nope/layer.tar, which is not in the archive"
    );
    assert_eq!(s.list().unwrap(), before);
}

#[test]
fn layer_not_matching_diff_id_refused() {
    let layer = rootfs_tar();
    let wrong = Digest::sha256_of(b"something else");
    let archive = classic_archive(&layer, &wrong);
    let (_d, s, before) = used_store();
    let e = read_archive(&s, archive.as_slice()).unwrap_err();
    assert!(matches!(e, ArchiveError::DiffIdMismatch { .. }), "{e}");
    assert!(e.to_string().contains(wrong.as_str()), "{e}");
    assert_eq!(s.list().unwrap(), before);
}

#[test]
fn blob_not_matching_its_name_refused() {
    let (_d0, src) = store();
    let img = imported(&src);
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["x:y".to_string()],
    }];
    write_oci_layout(&src, &images, &mut out).unwrap();
    // Rewrite the archive with the layer blob's content corrupted.
    let layer_path = format!("blobs/sha256/{}", img.layer_digest.hex());
    let mut ar = tar::Archive::new(out.as_slice());
    let mut b = tar::Builder::new(Vec::new());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if p == layer_path {
            let last = data.len() - 1;
            data[last] ^= 0xff;
        }
        let mut h = e.header().clone();
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    let bad = b.into_inner().unwrap();
    let (_d, s, before) = used_store();
    let e = read_archive(&s, bad.as_slice()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&layer_path), "{msg}");
    assert!(
        msg.contains("digest mismatch") || msg.contains("mismatch"),
        "{msg}"
    );
    assert_eq!(s.list().unwrap(), before);
}

#[test]
fn not_an_archive() {
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "hello.txt", b"hi");
    let archive = b.into_inner().unwrap();
    let (_d, s, before) = used_store();
    let e = read_archive(&s, archive.as_slice()).unwrap_err();
    assert!(matches!(e, ArchiveError::NotAnArchive), "{e}");
    assert_eq!(s.list().unwrap(), before);
}

#[test]
fn oci_layer_not_matching_config_diff_id_refused() {
    // A well-formed layout whose config names another DiffID than its layer has.
    let (_d0, src) = store();
    let layer_gz = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&rootfs_tar()).unwrap();
        gz.finish().unwrap()
    };
    let layer_d = src.put_bytes(&layer_gz).unwrap();
    let wrong = Digest::sha256_of(b"not the layer");
    let cfg = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [wrong.as_str()]},
    }))
    .unwrap();
    let cfg_d = src.put_bytes(&cfg).unwrap();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::media_types::OCI_MANIFEST,
        "config": {"mediaType": manifest::media_types::OCI_CONFIG, "size": cfg.len(), "digest": cfg_d.as_str()},
        "layers": [{"mediaType": manifest::media_types::OCI_LAYER_GZIP, "size": layer_gz.len(), "digest": layer_d.as_str()}],
    }))
    .unwrap();
    let m_d = src.put_bytes(&m).unwrap();
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: m_d,
        names: vec![],
    }];
    write_oci_layout(&src, &images, &mut out).unwrap();
    let (_d, s, before) = used_store();
    let e = read_archive(&s, out.as_slice()).unwrap_err();
    assert!(matches!(e, ArchiveError::DiffIdMismatch { .. }), "{e}");
    assert_eq!(s.list().unwrap(), before);
}

#[test]
fn index_roundtrip_keeps_present_children() {
    let (_d0, s) = store();
    let img = imported(&s);
    let m_size = s.size(&img.manifest_digest).unwrap().unwrap();
    let absent = Digest::sha256_of(b"arm64 manifest we never pulled");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::media_types::OCI_INDEX,
        "manifests": [
            {"mediaType": manifest::media_types::OCI_MANIFEST, "size": m_size,
             "digest": img.manifest_digest.as_str(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": manifest::media_types::OCI_MANIFEST, "size": 100,
             "digest": absent.as_str(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    }))
    .unwrap();
    let index_d = s.put_bytes(&index).unwrap();
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: index_d.clone(),
        names: vec!["multi:latest".to_string()],
    }];
    write_oci_layout(&s, &images, &mut out).unwrap();
    let (_d, empty) = store();
    let loaded = read_archive(&empty, out.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].manifest_digest, index_d);
    assert_eq!(loaded[0].media_type, manifest::media_types::OCI_INDEX);
    assert_eq!(loaded[0].config_digest, None);
    assert!(empty.exists(&img.layer_digest));
    assert!(empty.exists(&img.manifest_digest));
    assert!(!empty.exists(&absent));
}

#[test]
fn import_accepts_empty_and_compressed_tars() {
    let (_d, s) = store();
    let p = Platform::parse("linux/arm64").unwrap();
    let empty_tar = tar::Builder::new(Vec::new()).into_inner().unwrap();
    let img = import_rootfs(&s, empty_tar.as_slice(), &[], &p).unwrap();
    assert_eq!(img.diff_id, Digest::sha256_of(&empty_tar));
    let cfg = manifest::parse_config(&s.read_blob(&img.config_digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(cfg.variant().as_deref(), Some("v8"));
    let zst = zstd::encode_all(rootfs_tar().as_slice(), 3).unwrap();
    let img = import_rootfs(&s, zst.as_slice(), &[], &p).unwrap();
    assert_eq!(img.diff_id, Digest::sha256_of(&rootfs_tar()));
}

#[test]
fn oci_ref_names() {
    let (_d0, s) = store();
    let img = imported(&s);
    let mut out = Vec::new();
    let images = [ArchiveImage {
        manifest_digest: img.manifest_digest.clone(),
        names: vec!["a/b:c".to_string(), "d:e".to_string()],
    }];
    write_oci_layout(&s, &images, &mut out).unwrap();
    let (_d, empty) = store();
    let loaded = read_archive(&empty, out.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1, "one image, two names");
    assert_eq!(
        loaded[0].names,
        vec!["a/b:c".to_string(), "d:e".to_string()]
    );
    assert_eq!(loaded[0].oci_ref_name.as_deref(), Some("c"));
}
