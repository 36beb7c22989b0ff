//! Content store: round trips, resumable ingest, verification, concurrency and disk full.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use berth_image::content::{ContentError, ContentStore};
use berth_image::digest::{Digest, Hasher};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = ContentStore::open(dir.path()).expect("open store");
    (dir, s)
}

/// Deterministic, poorly compressible test data.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn ingest_dir(root: &Path) -> PathBuf {
    root.join("content/ingest")
}

fn blobs_dir(root: &Path) -> PathBuf {
    root.join("content/blobs/sha256")
}

#[test]
fn round_trip() {
    let (dir, s) = store();
    let bytes = data(100_000, 1);
    let d = s.put_bytes(&bytes).expect("put");
    assert_eq!(d, Digest::sha256_of(&bytes));
    assert_eq!(s.blob_path(&d), blobs_dir(dir.path()).join(d.hex()));
    assert!(s.exists(&d));
    assert_eq!(s.size(&d).expect("size"), Some(100_000));
    assert_eq!(s.read_blob(&d, 100_000).expect("read"), bytes);
    let mut f = s.open_blob(&d).expect("open");
    let mut back = Vec::new();
    f.read_to_end(&mut back).expect("read");
    assert_eq!(back, bytes);
    // Stored blobs are read-only.
    let mode = std::fs::metadata(s.blob_path(&d))
        .expect("stat")
        .permissions();
    assert!(mode.readonly());

    // Storing again is a no-op.
    assert_eq!(s.put_bytes(&bytes).expect("put again"), d);
    let e = s.put_bytes(b"").expect("empty blob");
    let mut want = vec![d.clone(), e.clone()];
    want.sort();
    assert_eq!(s.list().expect("list"), want);
    assert!(entries(&ingest_dir(dir.path())).is_empty());

    // Size guard.
    let err = s.read_blob(&d, 99_999).expect_err("too large");
    assert!(matches!(err, ContentError::TooLarge { .. }));
    assert_eq!(
        err.to_string(),
        format!("blob {d}: 100000 bytes, more than the 99999 allowed")
    );

    s.delete(&d).expect("delete");
    assert!(!s.exists(&d));
    assert_eq!(s.size(&d).expect("size"), None);
    let err = s.open_blob(&d).expect_err("gone");
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), format!("blob {d}: not found"));
    assert!(s.read_blob(&d, 10).expect_err("gone").is_not_found());
    assert!(s.delete(&d).expect_err("gone").is_not_found());
    assert_eq!(s.list().expect("list"), vec![e]);

    // A stray file in the blob directory is not listed.
    std::fs::write(blobs_dir(dir.path()).join("junk"), b"x").expect("write junk");
    assert_eq!(s.list().expect("list").len(), 1);
}

#[test]
fn ingest_computes_or_checks_the_digest() {
    let (dir, s) = store();
    let bytes = data(3 << 20, 2);
    let (d, n) = s.ingest(None, None, &bytes[..]).expect("ingest");
    assert_eq!((d.clone(), n), (Digest::sha256_of(&bytes), 3 << 20));
    let other = data(1000, 3);
    let od = Digest::sha256_of(&other);
    let (d2, n2) = s.ingest(Some(&od), Some(1000), &other[..]).expect("known");
    assert_eq!((d2, n2), (od.clone(), 1000));
    // Already present: Ok, nothing read.
    let (d3, _) = s.ingest(Some(&od), None, &b""[..]).expect("present");
    assert_eq!(d3, od);
    // Already present but a different size announced.
    let err = s.ingest(Some(&od), Some(5), &b""[..]).expect_err("size");
    assert!(matches!(err, ContentError::SizeMismatch { .. }), "{err}");
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

#[test]
fn sha512_blobs() {
    let (dir, s) = store();
    let bytes = data(5000, 4);
    let mut h = Hasher::sha512();
    h.update(&bytes);
    let d = h.finish();
    let mut w = s.writer(&d, Some(5000)).expect("writer");
    w.write_all(&bytes).expect("write");
    assert_eq!(w.commit().expect("commit"), (d.clone(), 5000));
    assert!(dir
        .path()
        .join("content/blobs/sha512")
        .join(d.hex())
        .is_file());
    assert_eq!(s.list().expect("list"), vec![d]);
}

#[test]
fn resume_after_partial_write() {
    let (dir, s) = store();
    let bytes = data(2_500_000, 5);
    let d = Digest::sha256_of(&bytes);
    let size = Some(bytes.len() as u64);

    let mut w = s.writer(&d, size).expect("writer");
    assert_eq!(w.offset(), 0);
    assert_eq!(
        w.path(),
        ingest_dir(dir.path()).join(format!("sha256-{}", d.hex()))
    );
    w.write_all(&bytes[..1_234_567]).expect("write");
    assert_eq!(w.offset(), 1_234_567);
    drop(w); // interrupted
    assert!(!s.exists(&d));

    let mut w = s.writer(&d, size).expect("reopen");
    assert_eq!(w.offset(), 1_234_567);
    let at = usize::try_from(w.offset()).expect("offset");
    w.write_all(&bytes[at..]).expect("write rest");
    assert_eq!(w.commit().expect("commit"), (d.clone(), bytes.len() as u64));
    assert_eq!(s.read_blob(&d, u64::MAX).expect("read"), bytes);
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

#[test]
fn resume_of_garbage_longer_than_the_blob_starts_over() {
    let (dir, s) = store();
    let bytes = data(1000, 6);
    let d = Digest::sha256_of(&bytes);
    let partial = ingest_dir(dir.path()).join(format!("sha256-{}", d.hex()));
    std::fs::write(&partial, data(5000, 7)).expect("garbage");
    let mut w = s.writer(&d, Some(1000)).expect("writer");
    assert_eq!(w.offset(), 0);
    w.write_all(&bytes).expect("write");
    w.commit().expect("commit");
    assert_eq!(s.read_blob(&d, 1000).expect("read"), bytes);
}

#[test]
fn corrupt_partial_is_caught_at_commit() {
    let (dir, s) = store();
    let bytes = data(1000, 8);
    let d = Digest::sha256_of(&bytes);
    let partial = ingest_dir(dir.path()).join(format!("sha256-{}", d.hex()));
    std::fs::write(&partial, vec![0u8; 500]).expect("zeros");
    let mut w = s.writer(&d, Some(1000)).expect("writer");
    assert_eq!(w.offset(), 500);
    w.write_all(&bytes[500..]).expect("write");
    let err = w.commit().expect_err("mismatch");
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert!(!partial.exists());
    assert!(!s.exists(&d));
}

#[test]
fn digest_mismatch_stores_nothing() {
    let (dir, s) = store();
    let claimed = Digest::sha256_of(b"what the registry promised");
    let served = b"what it served".to_vec();
    let got = Digest::sha256_of(&served);

    let mut w = s.writer(&claimed, None).expect("writer");
    w.write_all(&served).expect("write");
    let err = w.commit().expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!("blob {claimed}: digest mismatch: got {got}")
    );
    assert!(!s.exists(&claimed));
    assert!(!s.exists(&got));
    assert!(entries(&blobs_dir(dir.path())).is_empty());
    assert!(entries(&ingest_dir(dir.path())).is_empty());

    let err = s
        .ingest(Some(&claimed), None, &served[..])
        .expect_err("mismatch");
    assert!(matches!(err, ContentError::DigestMismatch { .. }));
    assert!(entries(&blobs_dir(dir.path())).is_empty());
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

#[test]
fn size_mismatch_stores_nothing() {
    let (dir, s) = store();
    let bytes = data(1000, 9);
    let d = Digest::sha256_of(&bytes);

    // Too short.
    let mut w = s.writer(&d, Some(2000)).expect("writer");
    w.write_all(&bytes).expect("write");
    let err = w.commit().expect_err("short");
    assert_eq!(
        err.to_string(),
        format!("blob {d}: size mismatch: expected 2000 bytes, got 1000")
    );
    assert!(entries(&ingest_dir(dir.path())).is_empty());

    // Too long: refused at the write that goes past the size.
    let mut w = s.writer(&d, Some(999)).expect("writer");
    let err = w.write_all(&bytes).expect_err("long");
    assert!(err
        .to_string()
        .contains("more data than the expected 999 bytes"));
    w.abort();

    let err = s
        .ingest(None, Some(10), &bytes[..])
        .expect_err("unknown digest, long");
    assert!(err.to_string().starts_with("write "), "{err}");
    let err = s
        .ingest(Some(&d), Some(1001), &bytes[..])
        .expect_err("known digest, short");
    assert!(matches!(err, ContentError::SizeMismatch { .. }));

    assert!(!s.exists(&d));
    assert!(entries(&blobs_dir(dir.path())).is_empty());
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

#[test]
fn abort_removes_the_partial() {
    let (dir, s) = store();
    let d = Digest::sha256_of(b"abc");
    let mut w = s.writer(&d, Some(3)).expect("writer");
    w.write_all(b"ab").expect("write");
    w.abort();
    assert!(entries(&ingest_dir(dir.path())).is_empty());
    let w = s.writer(&d, Some(3)).expect("writer");
    assert_eq!(w.offset(), 0);
}

#[test]
fn try_writer_is_busy_while_another_writer_works() {
    let (_dir, s) = store();
    let d = Digest::sha256_of(b"abc");
    let mut w = s.writer(&d, Some(3)).expect("writer");
    w.write_all(b"a").expect("write");
    let err = s.try_writer(&d, Some(3)).expect_err("busy");
    assert!(matches!(err, ContentError::Busy { .. }));
    assert!(
        err.to_string().contains("is in use by another writer"),
        "{err}"
    );
    drop(w);
    let mut w = s.try_writer(&d, Some(3)).expect("free again");
    assert_eq!(w.offset(), 1);
    w.write_all(b"bc").expect("write");
    w.commit().expect("commit");
}

#[test]
fn commit_when_the_blob_already_exists_is_ok() {
    let (dir, s) = store();
    let d = s.put_bytes(b"abc").expect("put");
    let mut w = s.writer(&d, Some(3)).expect("writer");
    w.write_all(b"abc").expect("write");
    assert_eq!(w.commit().expect("commit"), (d.clone(), 3));
    assert_eq!(s.read_blob(&d, 3).expect("read"), b"abc");
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

#[test]
fn prune_removes_only_old_unlocked_ingests() {
    let (dir, s) = store();
    let hour = std::time::Duration::from_secs(3600);
    let old = std::time::SystemTime::now() - 2 * hour;
    let age = |p: &Path| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .expect("open")
            .set_modified(old)
            .expect("set mtime");
    };
    // An abandoned partial, an abandoned temp file, a fresh partial, and an old one in use.
    let abandoned = Digest::sha256_of(b"abandoned");
    let mut w = s.writer(&abandoned, None).expect("writer");
    w.write_all(b"aban").expect("write");
    drop(w);
    age(&s.ingest_path(&abandoned));
    let temp = ingest_dir(dir.path()).join("tmp-1-2-3");
    std::fs::write(&temp, b"x").expect("temp");
    age(&temp);
    let fresh = Digest::sha256_of(b"fresh");
    drop(s.writer(&fresh, None).expect("writer"));
    let busy = Digest::sha256_of(b"busy");
    let mut held = s.writer(&busy, None).expect("writer");
    held.write_all(b"bu").expect("write");
    age(&s.ingest_path(&busy));

    assert_eq!(s.prune_ingests(hour).expect("prune"), 2);
    let left = entries(&ingest_dir(dir.path()));
    assert_eq!(left, {
        let mut v = vec![s.ingest_path(&fresh), s.ingest_path(&busy)];
        v.sort();
        v
    });
    // The writer still holding its file can finish.
    held.write_all(b"sy").expect("write");
    held.commit().expect("commit");
}

/// A reader that hands out small pieces, so concurrent writers overlap.
struct Slow<'a>(&'a [u8]);

impl Read for Slow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(64 * 1024);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::thread::yield_now();
        Ok(n)
    }
}

#[test]
fn concurrent_ingest_of_one_blob() {
    let (dir, s) = store();
    let bytes = Arc::new(data(4 << 20, 10));
    let d = Digest::sha256_of(&bytes);
    let barrier = Arc::new(Barrier::new(8));
    let mut threads = Vec::new();
    for i in 0..8 {
        let (s, bytes, d, barrier) = (s.clone(), bytes.clone(), d.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            match i % 2 {
                // Known digest: the locked, resumable path.
                0 => s.ingest(Some(&d), Some(bytes.len() as u64), Slow(&bytes)),
                // Writer used directly, resuming from whatever is there.
                _ => {
                    let mut w = s.writer(&d, Some(bytes.len() as u64))?;
                    let at = usize::try_from(w.offset()).expect("offset");
                    w.write_all(&bytes[at..]).expect("write");
                    w.commit()
                }
            }
        }));
    }
    for t in threads {
        let (got, n) = t.join().expect("thread").expect("ingest");
        assert_eq!((got, n), (d.clone(), 4 << 20));
    }
    // Four more with unknown digest (temp files, rename race).
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (s, bytes) = (s.clone(), bytes.clone());
        threads.push(std::thread::spawn(move || {
            s.ingest(None, None, Slow(&bytes))
        }));
    }
    for t in threads {
        assert_eq!(t.join().expect("thread").expect("ingest").0, d);
    }
    assert_eq!(s.list().expect("list"), vec![d.clone()]);
    assert_eq!(s.read_blob(&d, u64::MAX).expect("read"), *bytes);
    assert!(entries(&ingest_dir(dir.path())).is_empty());
}

/// A tiny tmpfs mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        use nix::mount::{mount, MsFlags};
        let dir = tempfile::tempdir().expect("tempdir");
        mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size},mode=0700").as_str()),
        )
        .unwrap_or_else(|e| {
            panic!("mounting a tmpfs needs root (CAP_SYS_ADMIN) for the disk-full test: {e}")
        });
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn disk_full_leaves_nothing_behind() {
    let fs = Tmpfs::mount("64k");
    let root = fs.dir.path();
    let s = ContentStore::open(root).expect("open on tmpfs");
    let bytes = data(1 << 20, 11);
    let d = Digest::sha256_of(&bytes);

    for expected in [None, Some(&d)] {
        let err = s
            .ingest(expected, Some(1 << 20), &bytes[..])
            .expect_err("disk full");
        let ContentError::Io { op, source, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert_eq!(*op, "write", "{err}");
        assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{err}");
        assert!(err.to_string().contains("No space left on device"), "{err}");
        assert!(entries(&blobs_dir(root)).is_empty());
        assert!(entries(&ingest_dir(root)).is_empty());
        assert!(!s.exists(&d));
    }

    // The resumable writer reports ENOSPC and keeps nothing visible as a blob.
    let mut w = s.writer(&d, Some(1 << 20)).expect("writer");
    let err = w.write_all(&bytes).expect_err("disk full");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    w.abort();
    assert!(entries(&blobs_dir(root)).is_empty());
    assert!(entries(&ingest_dir(root)).is_empty());

    // Small blobs still fit.
    let small = s.put_bytes(b"small").expect("small blob");
    assert_eq!(s.list().expect("list"), vec![small]);
}

/// A blob written through WritebackFile (writeback started every few MiB) and adopted is
/// byte-identical; a wrong digest given to adopt is still the caller's, as before.
#[test]
fn writeback_file_then_adopt_keeps_every_byte() {
    use berth_image::content::WritebackFile;
    let (dir, s) = store();
    let body = data(20 << 20, 7);
    let path = dir.path().join("layer.tar");
    let mut w = std::io::BufWriter::with_capacity(
        1 << 20,
        WritebackFile::new(std::fs::File::create(&path).expect("create")),
    );
    for chunk in body.chunks(300_001) {
        w.write_all(chunk).expect("write");
    }
    let f = w.into_inner().expect("flush").into_inner();
    drop(f);
    let d = Digest::sha256_of(&body);
    assert_eq!(s.adopt(&path, &d).expect("adopt"), body.len() as u64);
    let mut back = Vec::new();
    s.open_blob(&d)
        .expect("open")
        .read_to_end(&mut back)
        .expect("read");
    assert!(back == body, "blob differs from what was written");
    assert!(!path.exists(), "the adopted file moved into the store");
    // Empty writes and a flush with nothing pending are fine.
    let mut e = WritebackFile::new(std::fs::File::create(dir.path().join("e")).expect("create"));
    assert_eq!(e.write(&[]).expect("empty write"), 0);
    e.flush().expect("flush");
}
