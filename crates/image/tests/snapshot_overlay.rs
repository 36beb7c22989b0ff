//! Root tests for snapshots: layers unpacked into a chain, mounted with overlayfs.

use berth_image::digest::Digest;
mod common;

use berth_image::snapshot::{chain_id, SnapshotError, Snapshotter};
use berth_image::unpack::unpack_layer;
use common::Mounted;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
}

fn layer_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1000);
        let (name, data) = match e {
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, "")
            }
            E::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (n, *d)
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

/// Unpacks `layers` into `s` as one chain; returns the top chain ID.
fn build_chain(s: &Snapshotter, layers: &[Vec<u8>]) -> Digest {
    let mut diffs: Vec<Digest> = Vec::new();
    let mut parent: Option<Digest> = None;
    for tar in layers {
        diffs.push(Digest::sha256_of(tar));
        let c = chain_id(&diffs);
        s.prepare_layer(&c, parent.as_ref(), |dir| {
            unpack_layer(&tar[..], None, dir)
                .map(|_| ())
                .map_err(|e| SnapshotError::unpack(&c, e))
        })
        .expect("prepare layer");
        parent = Some(c);
    }
    parent.expect("at least one layer")
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
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(format!(
                    "{rel}={}",
                    std::fs::read_to_string(&p).expect("read")
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn snapshot_three_layers_with_whiteouts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(tmp.path()).expect("open");
    let base = layer_tar(&[
        E::Dir("a"),
        E::File("a/1", "one"),
        E::File("a/2", "two"),
        E::Dir("b"),
        E::File("b/x", "x"),
        E::Dir("c"),
        E::File("c/y", "y"),
    ]);
    let mid = layer_tar(&[
        E::Dir("a"),
        E::File("a/.wh.1", ""),
        E::Dir("b"),
        E::File("b/.wh..wh..opq", ""),
        E::File("b/new", "new"),
    ]);
    let top = layer_tar(&[
        E::Dir("a"),
        E::File("a/2", "TWO"),
        E::Dir("c"),
        E::File("c/z", "z"),
    ]);
    let chain = build_chain(&s, &[base, mid, top]);
    assert!(s.exists(&chain));
    let want = vec!["a/", "a/2=TWO", "b/", "b/new=new", "c/", "c/y=y", "c/z=z"];

    let ro = s.mounts(&chain, "unused", true).expect("ro mounts");
    let view = Mounted::new(&ro, &tmp.path().join("ro"));
    assert_eq!(tree(&view.0), want);
    let err = std::fs::write(view.0.join("nope"), b"").expect_err("read-only view");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));

    let rw = s.mounts(&chain, "ctr1", false).expect("rw mounts");
    {
        let ctr = Mounted::new(&rw, &tmp.path().join("rw"));
        assert_eq!(tree(&ctr.0), want);
        std::fs::write(ctr.0.join("c/w"), b"w").expect("write in container");
        std::fs::remove_file(ctr.0.join("c/y")).expect("delete in container");
    }
    drop(view);
    let upper = upper_dir(&rw);
    assert_eq!(
        std::fs::read(Path::new(upper).join("c/w")).expect("upper"),
        b"w"
    );
    // Another reopen of the store still knows the chain and the container snapshot.
    let s2 = Snapshotter::open(tmp.path()).expect("reopen");
    assert_eq!(s2.mounts(&chain, "ctr1", false).expect("again"), rw);
    s2.remove("ctr1").expect("remove container snapshot");
    assert!(!Path::new(upper).exists());
}

#[test]
fn snapshot_chain_of_100_layers_mounts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    hundred_layers(tmp.path(), true);
}

/// Under a long root the options exceed mount(2)'s page, so mount() goes through fsconfig;
/// with paths over fsconfig's 255-byte strings, it passes the dirs as descriptors.
#[test]
fn snapshot_chain_of_100_layers_under_long_roots() {
    for len in [100, 300] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp
            .path()
            .join("r".repeat(len / 2))
            .join("o".repeat(len / 2));
        hundred_layers(&root, false);
    }
}

fn hundred_layers(root: &Path, must_fit_a_page: bool) {
    let s = Snapshotter::open(root).expect("open");
    let tmp = root;
    let layers: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let name = format!("f{i:03}");
            let content = i.to_string();
            layer_tar(&[E::File(&name, &content)])
        })
        .collect();
    let chain = build_chain(&s, &layers);
    let want: Vec<String> = (0..100).map(|i| format!("f{i:03}={i}")).collect();
    for (readonly, key) in [(true, "ro"), (false, "rw")] {
        let spec = s.mounts(&chain, key, readonly).expect("mounts");
        let lower = spec.options[0].split(':').count();
        assert_eq!(lower, 100);
        let len = spec.options.join(",").len();
        assert_eq!(len < 4096, must_fit_a_page, "{len} bytes of options");
        let m = Mounted::new(&spec, &tmp.join(key));
        assert_eq!(tree(&m.0), want);
    }
}

#[test]
fn snapshot_concurrent_prepare_unpacks_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(tmp.path()).expect("open");
    let tar = Arc::new(layer_tar(&[E::File("only", "once")]));
    let chain = chain_id(&[Digest::sha256_of(&tar)]);
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (s, tar, chain, calls) = (s.clone(), tar.clone(), chain.clone(), calls.clone());
            std::thread::spawn(move || {
                s.prepare_layer(&chain, None, |dir| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    unpack_layer(&tar[..], None, dir)
                        .map(|_| ())
                        .map_err(|e| SnapshotError::unpack(&chain, e))
                })
                .expect("prepare")
            })
        })
        .collect();
    let dirs: Vec<PathBuf> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(dirs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read(dirs[0].join("only")).expect("read"), b"once");
}

#[test]
fn snapshot_failed_unpack_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(tmp.path()).expect("open");
    let chain = Digest::sha256_of(b"bad layer");
    let err = s
        .prepare_layer(&chain, None, |dir| {
            std::fs::write(dir.join("partial"), b"x").expect("write");
            Err(SnapshotError::unpack(&chain, "corrupt stream"))
        })
        .expect_err("unpack fails");
    assert_eq!(
        err.to_string(),
        format!("unpack layer {chain}: corrupt stream")
    );
    assert!(!s.exists(&chain));
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("snapshots"))
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-") || n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// mount_volatile: the overlay is mounted with `volatile` (this machine's kernel has it), works
/// as a writable rootfs, and what was written is in the upper dir after the unmount; a
/// read-only bind spec goes through unchanged.
#[test]
fn snapshot_volatile_mount_writes_reach_the_upper_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::open(tmp.path()).expect("open");
    let chain = build_chain(&s, &[layer_tar(&[E::Dir("a"), E::File("a/1", "one")])]);
    let rw = s.mounts(&chain, "vol", false).expect("rw mounts");
    let target = tmp.path().join("v");
    std::fs::create_dir_all(&target).expect("mkdir");
    berth_image::snapshot::mount_volatile(&rw, &target).expect("mount volatile");
    let guard = Unmount(target.clone());
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target.to_str().expect("utf-8")))
        .expect("the mount is listed");
    assert!(line.contains("volatile"), "{line}");
    std::fs::write(target.join("a/2"), b"two").expect("write");
    drop(guard);
    let upper = upper_dir(&rw);
    assert_eq!(
        std::fs::read(Path::new(upper).join("a/2")).expect("upper"),
        b"two"
    );
    // Mounted again on the same dirs (a restarted `--rm` container): the volatile marker the
    // first mount left does not make overlayfs refuse it, and the upper's file is there.
    berth_image::snapshot::mount_volatile(&rw, &target).expect("mount volatile again");
    let again = Unmount(target.clone());
    assert_eq!(std::fs::read(target.join("a/2")).expect("read"), b"two");
    drop(again);
    // Not an overlay: mounted as given.
    let ro = s.mounts(&chain, "", true).expect("ro");
    assert_eq!(ro.fstype, "bind");
    let t2 = tmp.path().join("ro");
    std::fs::create_dir_all(&t2).expect("mkdir");
    berth_image::snapshot::mount_volatile(&ro, &t2).expect("bind");
    let _g2 = Unmount(t2.clone());
    assert_eq!(std::fs::read(t2.join("a/1")).expect("read"), b"one");
    s.remove("vol").expect("remove");
}

/// Unmounts a path the test mounted itself, at drop.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if berth_image::snapshot::unmount(&self.0).is_err() {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The upper dir of a writable overlay spec.
fn upper_dir(spec: &berth_image::snapshot::MountSpec) -> &str {
    spec.options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .expect("upperdir")
}
