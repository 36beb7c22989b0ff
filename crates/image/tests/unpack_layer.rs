//! Root tests for layer unpacking: metadata preserved, whiteouts converted, escapes refused.

use berth_image::digest::Digest;
use berth_image::unpack::{unpack_layer, Compression};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// A tar built entry by entry with raw names, so hostile paths can be written.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len += 1;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

impl Tar {
    fn new() -> Tar {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Tar {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().expect("gnu header");
            g.name = [0; 100];
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                g.linkname = [0; 100];
                g.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).expect("append");
        self
    }

    fn dir(&mut self, name: &str) -> &mut Tar {
        self.raw(
            name,
            tar::EntryType::Directory,
            0o755,
            (0, 0),
            1000,
            None,
            b"",
        )
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.raw(
            name,
            tar::EntryType::Regular,
            0o644,
            (0, 0),
            1000,
            None,
            data,
        )
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(
            name,
            tar::EntryType::Symlink,
            0o777,
            (0, 0),
            1000,
            Some(target),
            b"",
        )
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(
            name,
            tar::EntryType::Link,
            0o644,
            (0, 0),
            1000,
            Some(target),
            b"",
        )
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.raw(
            "pax",
            tar::EntryType::XHeader,
            0o644,
            (0, 0),
            0,
            None,
            &data,
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.b.into_inner().expect("finish tar")
    }
}

fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(tar).expect("gzip");
            e.finish().expect("gzip")
        }
        Compression::Zstd => zstd::encode_all(tar, 1).expect("zstd"),
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    dest: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("a/b/dest");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&dest).expect("mkdir dest");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    Dirs {
        _tmp: tmp,
        dest,
        outside,
    }
}

fn unpack(tar: Vec<u8>, dest: &Path) -> Result<berth_image::unpack::UnpackStats, String> {
    unpack_layer(&tar[..], None, dest).map_err(|e| e.to_string())
}

fn sample_tar() -> Vec<u8> {
    let mut t = Tar::new();
    t.raw(
        "./etc/",
        tar::EntryType::Directory,
        0o750,
        (1000, 1001),
        111,
        None,
        b"",
    );
    t.pax(&[
        ("SCHILY.xattr.user.color", b"blue"),
        ("SCHILY.xattr.trusted.kind", b"secret"),
        ("mtime", b"222.5"),
    ]);
    t.raw(
        "./etc/hello",
        tar::EntryType::Regular,
        0o4751,
        (7, 8),
        999,
        None,
        b"hi there",
    );
    t.raw(
        "./link",
        tar::EntryType::Symlink,
        0o777,
        (3, 4),
        333,
        Some("etc/hello"),
        b"",
    );
    t.hardlink("./hard", "etc/hello");
    t.raw(
        "dev/null",
        tar::EntryType::Char,
        0o666,
        (0, 0),
        444,
        None,
        b"",
    );
    t.raw(
        "dev/loop9",
        tar::EntryType::Block,
        0o660,
        (0, 6),
        444,
        None,
        b"",
    );
    t.raw("fifo", tar::EntryType::Fifo, 0o620, (5, 5), 555, None, b"");
    t.bytes()
}

fn set_dev(tar: &mut [u8], name: &str, major: u32, minor: u32) {
    // Rewrite device numbers of an entry in place (Tar::raw has no parameter for them).
    let mut off = 0;
    while off + 512 <= tar.len() {
        let block = &tar[off..off + 512];
        if block[..name.len()] == *name.as_bytes() && block[name.len()] == 0 {
            let mut h = tar::Header::new_gnu();
            h.as_mut_bytes().copy_from_slice(block);
            h.set_device_major(major).expect("major");
            h.set_device_minor(minor).expect("minor");
            h.set_cksum();
            tar[off..off + 512].copy_from_slice(h.as_bytes());
            return;
        }
        off += 512;
    }
    panic!("entry {name} not found");
}

#[test]
fn unpack_preserves_metadata_in_every_compression() {
    let mut tar = sample_tar();
    set_dev(&mut tar, "dev/null", 1, 3);
    set_dev(&mut tar, "dev/loop9", 7, 9);
    let want = Digest::sha256_of(&tar);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let d = dirs();
        let blob = compress(&tar, c);
        for given in [None, Some(c)] {
            let dest = d.dest.join(format!("{given:?}"));
            std::fs::create_dir(&dest).expect("mkdir");
            let stats = unpack_layer(&blob[..], given, &dest).expect("unpack");
            assert_eq!(stats.diff_id, want, "{c:?}");
            assert_eq!(stats.uncompressed_size, tar.len() as u64);
            assert_eq!(stats.entries, 7);

            let etc = std::fs::symlink_metadata(dest.join("etc")).expect("etc");
            assert!(etc.is_dir());
            assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
            assert_eq!((etc.uid(), etc.gid(), etc.mtime()), (1000, 1001, 111));

            let hello = std::fs::symlink_metadata(dest.join("etc/hello")).expect("hello");
            assert_eq!(hello.permissions().mode() & 0o7777, 0o4751);
            assert_eq!((hello.uid(), hello.gid()), (7, 8));
            assert_eq!((hello.mtime(), hello.mtime_nsec()), (222, 500_000_000));
            assert_eq!(hello.nlink(), 2);
            assert_eq!(
                std::fs::read(dest.join("etc/hello")).expect("read"),
                b"hi there"
            );
            assert_eq!(
                xattr::get(dest.join("etc/hello"), "user.color").expect("xattr"),
                Some(b"blue".to_vec())
            );
            assert_eq!(
                xattr::get(dest.join("etc/hello"), "trusted.kind").expect("xattr"),
                Some(b"secret".to_vec())
            );

            let hard = std::fs::symlink_metadata(dest.join("hard")).expect("hard");
            assert_eq!(hard.ino(), hello.ino());

            let link = std::fs::symlink_metadata(dest.join("link")).expect("link");
            assert!(link.file_type().is_symlink());
            assert_eq!((link.uid(), link.gid(), link.mtime()), (3, 4, 333));
            assert_eq!(
                std::fs::read_link(dest.join("link")).expect("readlink"),
                Path::new("etc/hello")
            );

            let null = std::fs::symlink_metadata(dest.join("dev/null")).expect("null");
            assert!(null.file_type().is_char_device());
            assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
            assert_eq!(null.permissions().mode() & 0o7777, 0o666);
            let lp = std::fs::symlink_metadata(dest.join("dev/loop9")).expect("loop");
            assert!(lp.file_type().is_block_device());
            assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 9));
            assert_eq!(lp.gid(), 6);
            let dev = std::fs::symlink_metadata(dest.join("dev")).expect("dev");
            assert_eq!(dev.permissions().mode() & 0o7777, 0o755, "implicit parent");

            let fifo = std::fs::symlink_metadata(dest.join("fifo")).expect("fifo");
            assert!(fifo.file_type().is_fifo());
            assert_eq!(fifo.permissions().mode() & 0o7777, 0o620);
            assert_eq!((fifo.uid(), fifo.mtime()), (5, 555));
        }
    }
}

#[test]
fn unpack_turns_whiteouts_into_overlay_ones() {
    let d = dirs();
    let mut t = Tar::new();
    t.dir("a")
        .file("a/.wh.gone", b"")
        .dir("b")
        .file("b/.wh..wh..opq", b"");
    t.file("b/kept", b"k").file(".wh..wh.plnk", b"");
    unpack(t.bytes(), &d.dest).expect("unpack");
    let gone = std::fs::symlink_metadata(d.dest.join("a/gone")).expect("whiteout");
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!d.dest.join("a/.wh.gone").exists());
    assert_eq!(
        xattr::get(d.dest.join("b"), "trusted.overlay.opaque").expect("xattr"),
        Some(b"y".to_vec())
    );
    assert!(!d.dest.join("b/.wh..wh..opq").exists());
    assert!(d.dest.join("b/kept").exists());
    assert!(!d.dest.join(".wh..wh.plnk").exists());
}

fn outside_untouched(d: &Dirs) {
    let names: Vec<_> = std::fs::read_dir(&d.outside)
        .expect("read outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        names.is_empty() || names == ["secret"],
        "outside changed: {names:?}"
    );
    let parent = d.dest.parent().expect("parent");
    let names: Vec<_> = std::fs::read_dir(parent)
        .expect("read parent")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["dest"], "something written next to dest");
}

#[test]
fn unpack_refuses_dotdot_with_a_clear_error() {
    for name in ["../x", "a/../../x", "./../etc/passwd"] {
        let d = dirs();
        let mut t = Tar::new();
        t.file(name, b"pwned");
        let err = unpack(t.bytes(), &d.dest).expect_err(name);
        assert_eq!(
            err,
            format!("layer entry {name:?}: path escapes the layer root")
        );
        outside_untouched(&d);
    }
}

#[test]
fn unpack_makes_absolute_paths_relative() {
    let d = dirs();
    let abs = d.outside.join("abs");
    let mut t = Tar::new();
    t.file(abs.to_str().expect("utf8"), b"inside");
    t.file("/top", b"t");
    unpack(t.bytes(), &d.dest).expect("unpack");
    let landed = d.dest.join(abs.strip_prefix("/").expect("absolute"));
    assert_eq!(std::fs::read(landed).expect("read"), b"inside");
    assert_eq!(std::fs::read(d.dest.join("top")).expect("read"), b"t");
    assert!(!abs.exists());
    outside_untouched(&d);
}

#[test]
fn unpack_never_writes_through_a_planted_symlink() {
    let d = dirs();
    let outside = d.outside.to_str().expect("utf8").to_string();
    let mut t = Tar::new();
    t.symlink("evil", &outside);
    t.file("evil/passwd", b"pwned");
    t.symlink("rel", "../../../../../../../../..");
    let rel_target = format!("rel{outside}/shadow");
    t.file(&rel_target, b"pwned");
    t.symlink("dir/up", "..");
    t.symlink("dir/upup", "up/..");
    t.file("dir/upup/upfile", b"x");
    // A final-component symlink is replaced, not followed.
    t.symlink("victim", &format!("{outside}/victim"));
    t.file("victim", b"replaced");
    // Confined rather than refused: the absolute symlink resolves against the layer root.
    unpack(t.bytes(), &d.dest).expect("confined unpack");
    let inside = d.dest.join(outside.trim_start_matches('/'));
    assert_eq!(
        std::fs::read(inside.join("passwd")).expect("read"),
        b"pwned"
    );
    assert_eq!(
        std::fs::read(inside.join("shadow")).expect("read"),
        b"pwned"
    );
    assert_eq!(std::fs::read(d.dest.join("upfile")).expect("read"), b"x");
    let victim = std::fs::symlink_metadata(d.dest.join("victim")).expect("victim");
    assert!(victim.is_file());
    outside_untouched(&d);
}

#[test]
fn unpack_refuses_hard_links_outside() {
    let d = dirs();
    std::fs::write(d.outside.join("secret"), b"s").expect("write secret");
    let mut t = Tar::new();
    t.hardlink("shadow", "../../etc/shadow");
    let err = unpack(t.bytes(), &d.dest).expect_err("escaping hard link");
    assert_eq!(
        err,
        "layer entry \"shadow\": hard link target \"../../etc/shadow\" escapes the layer root"
    );

    // Through a planted symlink: the target resolves inside the root, where it does not exist.
    let mut t = Tar::new();
    t.symlink("evil", d.outside.to_str().expect("utf8"));
    t.hardlink("grab", "evil/secret");
    let err = unpack(t.bytes(), &d.dest).expect_err("hard link through symlink");
    assert_eq!(
        err,
        "layer entry \"grab\": hard link target \"evil/secret\" is not in this layer \
         (links into lower layers are not supported)"
    );
    let secret = std::fs::metadata(d.outside.join("secret")).expect("secret");
    assert_eq!(secret.nlink(), 1);
    outside_untouched(&d);
}

#[test]
fn unpack_replaces_entries_of_the_same_path() {
    let d = dirs();
    let mut t = Tar::new();
    t.file("x", b"one").file("x", b"two");
    t.dir("d").file("d/f", b"f").file("d", b"now a file");
    t.file("e", b"file").dir("e").file("e/g", b"g");
    t.dir("keep").file("keep/a", b"a").dir("keep");
    unpack(t.bytes(), &d.dest).expect("unpack");
    assert_eq!(std::fs::read(d.dest.join("x")).expect("x"), b"two");
    assert_eq!(std::fs::read(d.dest.join("d")).expect("d"), b"now a file");
    assert_eq!(std::fs::read(d.dest.join("e/g")).expect("e/g"), b"g");
    assert_eq!(std::fs::read(d.dest.join("keep/a")).expect("keep/a"), b"a");
}

#[test]
fn unpack_reports_corrupt_streams() {
    let d = dirs();
    let mut blob = compress(&sample_tar(), Compression::Gzip);
    blob.truncate(blob.len() / 2);
    let err = unpack_layer(&blob[..], None, &d.dest).expect_err("truncated");
    assert!(err.to_string().contains("layer"), "{err}");
}

#[test]
fn unpack_whiteouts_through_a_planted_symlink_stay_inside() {
    let d = dirs();
    std::fs::write(d.outside.join("secret"), b"s").expect("write secret");
    let mut t = Tar::new();
    t.symlink("evil", d.outside.to_str().expect("utf8"));
    t.file("evil/.wh.secret", b"");
    t.file("evil/.wh..wh..opq", b"");
    t.symlink("up", "../../..");
    t.file("up/outside/.wh.secret", b"");
    unpack(t.bytes(), &d.dest).expect("confined unpack");
    assert_eq!(
        std::fs::read(d.outside.join("secret")).expect("secret kept"),
        b"s"
    );
    let inside = d.dest.join(d.outside.strip_prefix("/").expect("absolute"));
    let wh = std::fs::symlink_metadata(inside.join("secret")).expect("whiteout inside");
    assert!(wh.file_type().is_char_device());
    assert_eq!(
        xattr::get(&inside, "trusted.overlay.opaque").expect("xattr"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        xattr::get(&d.outside, "trusted.overlay.opaque").expect("xattr"),
        None,
        "opaque xattr set outside the root"
    );
    outside_untouched(&d);
}

#[test]
fn unpack_refuses_symlink_loops_in_parents() {
    let d = dirs();
    let mut t = Tar::new();
    t.symlink("a", "b").symlink("b", "/a").file("a/x", b"x");
    let err = unpack(t.bytes(), &d.dest).expect_err("loop");
    assert!(
        err.starts_with("layer entry \"a/x\": open parent directory:"),
        "{err}"
    );
    outside_untouched(&d);
}

/// Throughput of a 64 MiB incompressible layer (the pull benchmark's shape); run with
/// `cargo test --release -p berth-image --test unpack_layer -- --ignored --nocapture`.
#[test]
#[ignore]
fn unpack_throughput_64mib() {
    let mut data = vec![0u8; 64 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut t = Tar::new();
    t.file("big", &data);
    let tar = t.bytes();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let blob = compress(&tar, c);
        let start = std::time::Instant::now();
        if c == Compression::Gzip {
            let mut dec = flate2::read::MultiGzDecoder::new(&blob[..]);
            std::io::copy(&mut dec, &mut std::io::sink()).expect("decode");
            println!(
                "gzip decode alone: {:.0} MiB/s ({} bytes compressed)",
                64.0 / start.elapsed().as_secs_f64(),
                blob.len()
            );
        }
        let d = dirs();
        let start = std::time::Instant::now();
        unpack_layer(&blob[..], Some(c), &d.dest).expect("unpack");
        let secs = start.elapsed().as_secs_f64();
        println!("{c:?}: {:.0} MiB/s", 64.0 / secs);
    }
}
