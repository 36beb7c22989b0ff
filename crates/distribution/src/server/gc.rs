//! Garbage collection: mark what every repository's manifests reach, sweep the other blobs.
//!
//! Mark: every manifest linked in any repository is a root (tagged or not, as distribution's
//! collector does without --delete-untagged); from each, its config and layers, an index's
//! child manifests recursively, and a referrer's subject.
//!
//! Safe while serving, by a "recently touched" grace window rather than a stop-the-world lock:
//! every write that makes a digest reachable (upload finish, mount, manifest put and all the
//! digests the manifest names) records the time in the `touched` table, inside the same write
//! transaction in which it checks that the blob exists. The sweep deletes a blob only inside a
//! write transaction in which it re-reads `touched` and finds nothing at or after the cutoff
//! (mark start minus the grace). redb serializes write transactions, so either the writer ran
//! first (the blob is touched after the cutoff and kept), or the sweep ran first (the writer
//! then finds the blob gone and the manifest put answers MANIFEST_BLOB_UNKNOWN, never a manifest
//! naming a missing blob). The grace (an hour by default) covers the blobs of a push in progress
//! whose manifest is not there yet. A generation counter would do the same for the race but
//! not for that case, which is why the window is by time.

use std::collections::HashSet;
use std::time::{Duration, UNIX_EPOCH};

use berth_image::digest::Digest;
use redb::ReadableTable;
use serde::Serialize;

use super::storage::{db_, manifest_refs, now_secs, Storage, StorageError, MAX_MANIFEST};

/// What a collection did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub marked: usize,
    pub swept: Vec<String>,
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they were written or linked within the grace window.
    pub kept_recent: usize,
    pub ingests_removed: usize,
}

/// The mark phase: every digest reachable from a manifest of any repository.
pub fn mark(s: &Storage) -> Result<HashSet<Digest>, StorageError> {
    let mut marked = HashSet::new();
    let mut todo: Vec<(Digest, bool)> = s.all_manifests()?.into_iter().map(|d| (d, true)).collect();
    while let Some((d, is_manifest)) = todo.pop() {
        if !marked.insert(d.clone()) || !is_manifest {
            continue;
        }
        let bytes = match s.content.read_blob(&d, MAX_MANIFEST as u64) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        // A manifest stored by an older version or damaged: keep it, follow nothing.
        let Ok(refs) = manifest_refs(&bytes) else {
            continue;
        };
        todo.extend(refs.blobs.into_iter().map(|b| (b, false)));
        todo.extend(refs.manifests.into_iter().map(|m| (m, true)));
        if let Some(subj) = refs.subject {
            todo.push((subj, true));
        }
    }
    Ok(marked)
}

/// The sweep phase: deletes unmarked blobs not touched at or after `cutoff` (unix seconds).
pub fn sweep(
    s: &Storage,
    marked: &HashSet<Digest>,
    cutoff: u64,
    dry_run: bool,
) -> Result<GcReport, StorageError> {
    let mut report = GcReport {
        dry_run,
        marked: marked.len(),
        ..GcReport::default()
    };
    let candidates: Vec<Digest> = s
        .content
        .list()?
        .into_iter()
        .filter(|d| !marked.contains(d))
        .collect();
    if candidates.is_empty() {
        return Ok(report);
    }
    let txn = s.db.begin_write().map_err(db_("begin"))?;
    let mut gone: HashSet<String> = HashSet::new();
    {
        let mut touched = txn
            .open_table(super::storage::TOUCHED)
            .map_err(db_("open touched"))?;
        for d in candidates {
            let t = touched
                .get(d.as_str())
                .map_err(db_("read touched"))?
                .map(|v| v.value());
            let path = s.content.blob_path(&d);
            let meta = std::fs::metadata(&path).ok();
            let mtime = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if t.is_some_and(|t| t >= cutoff) || mtime >= cutoff {
                report.kept_recent += 1;
                continue;
            }
            report.bytes_freed += meta.map_or(0, |m| m.len());
            report.swept.push(d.to_string());
            if dry_run {
                continue;
            }
            match s.content.delete(&d) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            touched.remove(d.as_str()).map_err(db_("untouch"))?;
            gone.insert(d.to_string());
        }
        if !gone.is_empty() {
            let mut blobs = txn
                .open_table(super::storage::BLOBS)
                .map_err(db_("open blobs"))?;
            let mut doomed = Vec::new();
            for e in blobs.iter().map_err(db_("list blobs"))? {
                let (k, _) = e.map_err(db_("list blobs"))?;
                if let Some((_, d)) = k.value().split_once('\0') {
                    if gone.contains(d) {
                        doomed.push(k.value().to_string());
                    }
                }
            }
            for k in doomed {
                blobs.remove(k.as_str()).map_err(db_("unlink blob"))?;
            }
        }
    }
    if dry_run {
        txn.abort().map_err(db_("abort"))?;
    } else {
        txn.commit().map_err(db_("commit"))?;
    }
    Ok(report)
}

/// Mark then sweep, keeping whatever was touched within `grace` before the mark started.
pub fn collect(s: &Storage, grace: Duration, dry_run: bool) -> Result<GcReport, StorageError> {
    let start = now_secs();
    let marked = mark(s)?;
    let mut report = sweep(s, &marked, start.saturating_sub(grace.as_secs()), dry_run)?;
    if !dry_run {
        report.ingests_removed = s.content.prune_ingests(grace)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::names::Reference;
    use crate::server::storage::{OCI_INDEX, OCI_MANIFEST};

    fn manifest(config: &Digest, layers: &[&Digest], subject: Option<(&Digest, usize)>) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": 1}))
            .collect();
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
            "layers": layers,
        });
        if let Some((s, n)) = subject {
            m["subject"] =
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.as_str(), "size": n});
        }
        serde_json::to_vec(&m).unwrap()
    }

    fn put(s: &Storage, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        s.put_blob(repo, &d, data).unwrap();
        d
    }

    #[test]
    fn keeps_the_reachable_and_sweeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let cfg = put(&s, "a", b"{}");
        let l1 = put(&s, "a", b"layer1");
        let orphan = put(&s, "a", b"orphan");
        let m1 = manifest(&cfg, &[&l1], None);
        let (d1, _) = s
            .put_manifest("a", Some("v1"), None, OCI_MANIFEST, &m1)
            .unwrap();
        // An index in another repository naming a manifest there.
        put(&s, "b", b"{}");
        let l2 = put(&s, "b", b"layer2");
        let m2 = manifest(&cfg, &[&l2], None);
        let (d2, _) = s.put_manifest("b", None, None, OCI_MANIFEST, &m2).unwrap();
        let idx = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d2.as_str(), "size": m2.len()}],
        }))
        .unwrap();
        let (di, _) = s
            .put_manifest("b", Some("multi"), None, OCI_INDEX, &idx)
            .unwrap();
        // A referrer of m1, whose own layer must stay too.
        let sig = put(&s, "a", b"signature");
        let m3 = manifest(&cfg, &[&sig], Some((&d1, m1.len())));
        s.put_manifest("a", None, None, OCI_MANIFEST, &m3).unwrap();
        // A manifest deleted: its unique layer becomes garbage.
        let l4 = put(&s, "a", b"layer4");
        let m4 = manifest(&cfg, &[&l4], None);
        let (d4, _) = s
            .put_manifest("a", Some("old"), None, OCI_MANIFEST, &m4)
            .unwrap();
        s.delete_manifest("a", &Reference::Digest(d4.clone()))
            .unwrap();

        // Within the grace window nothing goes.
        let r = collect(&s, Duration::from_secs(3600), false).unwrap();
        assert!(r.swept.is_empty(), "{r:?}");
        assert_eq!(r.kept_recent, 3);

        // Dry run with a cutoff past every touch: lists, deletes nothing.
        let marked = mark(&s).unwrap();
        let r = sweep(&s, &marked, now_secs() + 10, true).unwrap();
        let mut got = r.swept.clone();
        got.sort();
        let mut want = vec![orphan.to_string(), l4.to_string(), d4.to_string()];
        want.sort();
        assert_eq!(got, want);
        assert!(s.content.exists(&orphan));

        let r = sweep(&s, &marked, now_secs() + 10, false).unwrap();
        assert_eq!(r.swept.len(), 3);
        for d in [&orphan, &l4, &d4] {
            assert!(!s.content.exists(d), "{d} should be gone");
        }
        for d in [&cfg, &l1, &l2, &d1, &d2, &di, &sig] {
            assert!(s.content.exists(d), "{d} should stay");
        }
        assert_eq!(s.blob_size("a", &orphan).unwrap(), None);
        assert!(s.get_manifest("b", &Reference::Tag("multi".into())).is_ok());
    }

    #[test]
    fn what_is_linked_after_the_mark_is_not_swept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let cfg = put(&s, "a", b"{}");
        let layer = put(&s, "a", b"layer");
        // The mark runs while nothing references the layer...
        let start = now_secs();
        let marked = mark(&s).unwrap();
        assert!(!marked.contains(&layer));
        // ...then a push links it (a manifest naming it arrives), after the mark started.
        let m = manifest(&cfg, &[&layer], None);
        s.put_manifest("a", Some("v1"), None, OCI_MANIFEST, &m)
            .unwrap();
        let r = sweep(&s, &marked, start, false).unwrap();
        assert!(r.swept.is_empty(), "{r:?}");
        assert!(s.content.exists(&layer));
        assert!(s.content.exists(&Digest::sha256_of(&m)));
    }
}
