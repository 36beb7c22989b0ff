//! Root test for diffs: a container's changes, diffed from its upper dir and unpacked as a new
//! layer on the same lower, give the same merged tree.

use berth_image::diff::diff_upper;
use berth_image::digest::Digest;
mod common;

use berth_image::snapshot::{chain_id, MountSpec, SnapshotError, Snapshotter};
use berth_image::unpack::unpack_layer;
use common::Mounted;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn base_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let entries: &[(&str, Option<&str>)] = &[
        ("etc", None),
        ("etc/a", Some("a")),
        ("etc/b", Some("b")),
        ("gone", None),
        ("gone/g1", Some("g1")),
        ("keep", None),
        ("keep/k1", Some("k1")),
        ("opq", None),
        ("opq/o1", Some("o1")),
        ("opq/o2", Some("o2")),
        ("mod", Some("old")),
        ("tochmod", Some("c")),
    ];
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match data {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).expect("dir");
            }
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, name, d.as_bytes()).expect("file");
            }
        }
    }
    b.into_inner().expect("tar")
}

fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            let md = std::fs::symlink_metadata(&p).expect("stat");
            let what = if md.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).expect("readlink").display())
            } else if md.is_dir() {
                "dir".to_string()
            } else if !md.is_file() {
                // Never open fifos (that blocks) or devices.
                format!("special {:o} rdev={}", md.mode() & 0o170000, md.rdev())
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned()
            };
            let xattr = if md.file_type().is_symlink() {
                None
            } else {
                xattr::get(&p, "user.note").expect("xattr")
            };
            out.push(format!(
                "{rel} {what} mode={:o} owner={}:{} mtime={} xattr={xattr:?}",
                md.permissions().mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.mtime(),
            ));
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn snapshot_diff_of_upper_round_trips() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(tmp.path()).expect("open");
    let base = base_tar();
    let base_diff = Digest::sha256_of(&base);
    let base_chain = chain_id(std::slice::from_ref(&base_diff));
    let lower = s
        .prepare_layer(&base_chain, None, |d| {
            unpack_layer(&base[..], None, d)
                .map(|_| ())
                .map_err(|e| SnapshotError::unpack(&base_chain, e))
        })
        .expect("base layer");

    // Changes made through a container's view.
    let rw = s.mounts(&base_chain, "ctr", false).expect("rw");
    {
        let ctr = Mounted::new(&rw, &tmp.path().join("ctr"));
        let c = &ctr.0;
        std::fs::write(c.join("mod"), b"new").expect("modify");
        std::fs::remove_file(c.join("etc/b")).expect("delete file");
        std::fs::remove_dir_all(c.join("gone")).expect("delete dir");
        std::fs::remove_dir_all(c.join("opq")).expect("delete opq");
        std::fs::create_dir(c.join("opq")).expect("recreate opq");
        std::fs::write(c.join("opq/fresh"), b"fresh").expect("fresh");
        std::fs::create_dir(c.join("newdir")).expect("newdir");
        std::fs::write(c.join("newdir/x"), b"x").expect("x");
        std::fs::hard_link(c.join("newdir/x"), c.join("hl")).expect("hard link");
        std::os::unix::fs::symlink("etc/a", c.join("ln")).expect("symlink");
        std::fs::set_permissions(c.join("tochmod"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        std::os::unix::fs::lchown(c.join("tochmod"), Some(5), Some(6)).expect("chown");
        xattr::set(c.join("etc/a"), "user.note", b"hello").expect("xattr");
    }
    let upper = PathBuf::from(
        rw.options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .expect("upperdir"),
    );

    let mut layer = Vec::new();
    let diff_id = diff_upper(&upper, &mut layer).expect("diff");
    assert_eq!(diff_id, Digest::sha256_of(&layer));
    let mut again = Vec::new();
    assert_eq!(diff_upper(&upper, &mut again).expect("diff again"), diff_id);

    let names: Vec<String> = tar::Archive::new(&layer[..])
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    for want in [
        "etc/.wh.b",
        ".wh.gone",
        "opq/.wh..wh..opq",
        "opq/fresh",
        "hl",
        "ln",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.starts_with("keep")), "{names:?}");

    // The diff, unpacked as a new layer on the same lower, shows what the container saw.
    let chain = chain_id(&[base_diff, diff_id]);
    s.prepare_layer(&chain, Some(&base_chain), |d| {
        let stats =
            unpack_layer(&layer[..], None, d).map_err(|e| SnapshotError::unpack(&chain, e))?;
        assert_eq!(stats.diff_id, Digest::sha256_of(&layer));
        Ok(())
    })
    .expect("diff layer");
    let replayed = Mounted::new(
        &s.mounts(&chain, "unused", true).expect("ro"),
        &tmp.path().join("replayed"),
    );
    let original = Mounted::new(
        &MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={}:{}", upper.display(), lower.display())],
        },
        &tmp.path().join("original"),
    );
    let want = tree(&original.0);
    assert!(want.iter().any(|l| l.starts_with("opq/fresh ")), "{want:?}");
    assert!(!want.iter().any(|l| l.starts_with("opq/o1 ")), "{want:?}");
    assert_eq!(tree(&replayed.0), want);
    let x = std::fs::metadata(replayed.0.join("newdir/x")).expect("x");
    let hl = std::fs::metadata(replayed.0.join("hl")).expect("hl");
    assert_eq!(x.ino(), hl.ino(), "hard link kept");
}

#[test]
fn snapshot_tar_dir_round_trips_long_names_and_special_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let deep = src.join("d".repeat(90)).join("e".repeat(90));
    std::fs::create_dir_all(&deep).expect("mkdir deep");
    let long_file = deep.join("f".repeat(120));
    std::fs::write(&long_file, b"long").expect("write");
    std::fs::hard_link(&long_file, src.join("hl")).expect("hard link");
    std::os::unix::fs::symlink("t".repeat(200), src.join("ln")).expect("symlink");
    xattr::set(&long_file, "user.note", b"n").expect("xattr");
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("fifo");
    nix::sys::stat::mknod(
        &src.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .expect("mknod");
    std::os::unix::fs::lchown(&long_file, Some(11), Some(12)).expect("chown");
    let t = nix::sys::time::TimeSpec::new(123_456, 0);
    for p in [&long_file, &deep, &src.join("fifo")] {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p.as_path(),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimensat");
    }

    let mut bytes = Vec::new();
    let digest = berth_image::diff::tar_dir(&src, &mut bytes).expect("tar_dir");
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).expect("mkdir dst");
    let stats = unpack_layer(&bytes[..], None, &dst).expect("unpack");
    assert_eq!(stats.diff_id, digest);
    assert_eq!(tree(&dst), tree(&src));
    let a = std::fs::metadata(dst.join("hl")).expect("hl");
    let b = std::fs::metadata(dst.join(long_file.strip_prefix(&src).expect("rel"))).expect("f");
    assert_eq!(a.ino(), b.ino());
    let null = std::fs::symlink_metadata(dst.join("null")).expect("null");
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
}
