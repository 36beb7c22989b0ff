//! Snapshots: one unpacked directory per chain ID, stacked with overlayfs.
//!
//! Layout under `<root>/snapshots/`:
//! - `<n>/fs`: a committed layer (read-only lower dir), or a container's upper dir, with
//!   `<n>/work` its overlay work dir. `n` is a counter, so directory names stay short and a
//!   100-layer `lowerdir=` list under /var/lib/berth fits in the page mount(2) copies. When
//!   it does not (deeper chains, longer roots), [`mount`] builds the overlay with the new
//!   mount API instead, one `lowerdir+` value (or directory descriptor) per layer.
//! - `index.json`: chain ID → (n, parent chain ID) and container key → (n, chain ID); written
//!   to a temp file, fsynced and renamed, always under `index.lock`.
//! - `tmp-<n>/`: a layer being unpacked; renamed to `<n>/` once complete.
//! - `locks/<chain hex>.lock`: held while one chain is prepared, so a concurrent `prepare_layer`
//!   of the same chain waits and then finds it done.
//!
//! Mounts are described as [`MountSpec`] data by [`Snapshotter::mounts`]; [`mount`] is the one
//! function that calls mount(2).

use crate::digest::{Digest, Hasher};
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MntFlags, MsFlags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// OCI chain ID: chain(1) = diff_id(1), chain(n) = sha256(chain(n-1) + " " + diff_id(n)).
/// An empty list has no chain; it yields the digest of the empty string.
pub fn chain_id(diff_ids: &[Digest]) -> Digest {
    let mut ids = diff_ids.iter();
    let Some(first) = ids.next() else {
        return Digest::sha256_of(b"");
    };
    ids.fold(first.clone(), |chain, diff| {
        let mut h = Hasher::new();
        h.update(chain.as_str().as_bytes());
        h.update(b" ");
        h.update(diff.as_str().as_bytes());
        h.finish()
    })
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("snapshot root {0} contains ',', ':' or '\\', which overlay options cannot carry")]
    BadRoot(PathBuf),
    #[error("parse snapshot index {path}: {source}")]
    Index {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("snapshot {0} not found")]
    NotFound(String),
    #[error("parent snapshot {parent} of {chain} not found")]
    ParentMissing { chain: Digest, parent: Digest },
    #[error("snapshot {0} is in use by {1}")]
    InUse(String, String),
    #[error("snapshot key {key} already exists on chain {chain}")]
    KeyExists { key: String, chain: Digest },
    #[error("invalid snapshot key {0:?}")]
    BadKey(String),
    #[error("unpack layer {chain}: {message}")]
    Unpack { chain: Digest, message: String },
    #[error("mount {fstype} on {target}: {source}")]
    Mount {
        fstype: String,
        target: PathBuf,
        source: nix::Error,
    },
    #[error("unmount {target}: {source}")]
    Unmount { target: PathBuf, source: nix::Error },
}

impl SnapshotError {
    /// An unpack failure, for the closure given to [`Snapshotter::prepare_layer`].
    pub fn unpack(chain: &Digest, err: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Unpack {
            chain: chain.clone(),
            message: err.to_string(),
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A mount described as data: `mount -t <fstype> -o <options> <source> <target>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    next: u64,
    /// chain ID → committed layer.
    layers: BTreeMap<String, Layer>,
    /// container key → active (writable) snapshot.
    active: BTreeMap<String, Active>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Layer {
    id: u64,
    parent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Active {
    id: u64,
    chain: String,
}

/// The snapshot store under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

/// mount(2) copies at most one page of option data (the last byte a NUL).
const PAGE_LIMIT: usize = 4095;

impl Snapshotter {
    /// Opens (creating) `<root>/snapshots`.
    pub fn open(root: &Path) -> Result<Snapshotter, SnapshotError> {
        let dir = std::path::absolute(root.join("snapshots"))
            .map_err(io_err("resolve snapshot root", root))?;
        let s = dir.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            return Err(SnapshotError::BadRoot(dir));
        }
        std::fs::create_dir_all(dir.join("locks")).map_err(io_err("create", &dir))?;
        Ok(Snapshotter { dir })
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn lock(&self, path: PathBuf) -> Result<Flock<std::fs::File>, SnapshotError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock", &path))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| SnapshotError::Io {
            op: "lock",
            path,
            source: e.into(),
        })
    }

    fn lock_index(&self) -> Result<Flock<std::fs::File>, SnapshotError> {
        self.lock(self.dir.join("index.lock"))
    }

    fn read_index(&self) -> Result<Index, SnapshotError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| SnapshotError::Index { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Writes the index atomically; the caller holds the index lock.
    fn write_index(&self, idx: &Index) -> Result<(), SnapshotError> {
        let path = self.index_path();
        let tmp = self.dir.join("index.json.tmp");
        let bytes = serde_json::to_vec_pretty(idx).map_err(|source| SnapshotError::Index {
            path: path.clone(),
            source,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        Ok(())
    }

    /// Allocates the next short id.
    fn next_id(&self) -> Result<u64, SnapshotError> {
        let _lock = self.lock_index()?;
        let mut idx = self.read_index()?;
        let id = idx.next;
        idx.next += 1;
        self.write_index(&idx)?;
        Ok(id)
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string()).join("fs")
    }

    /// Whether the layer for `chain_id` is unpacked.
    /// A new empty directory on the snapshots' filesystem, for unpacking a layer before its
    /// parent is ready; hand it to [`Snapshotter::prepare_layer`] by renaming it in the closure.
    pub fn staging_dir(&self) -> Result<PathBuf, SnapshotError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = self.dir.join(format!("staging-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        Ok(p)
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.read_index()
            .map(|idx| idx.layers.contains_key(chain_id.as_str()))
            .unwrap_or(false)
    }

    /// Unpacks (if missing) the layer for `chain_id` whose parent is `parent` (None for the
    /// base) using `unpack` on a temp dir, then renames into place. Returns the snapshot's
    /// short dir (`<root>/snapshots/<n>/fs`).
    pub fn prepare_layer(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        unpack: impl FnOnce(&Path) -> Result<(), SnapshotError>,
    ) -> Result<PathBuf, SnapshotError> {
        let _chain_lock = self.lock(
            self.dir
                .join("locks")
                .join(format!("{}.lock", chain_id.hex())),
        )?;
        {
            let idx = self.read_index()?;
            if let Some(l) = idx.layers.get(chain_id.as_str()) {
                return Ok(self.fs_dir(l.id));
            }
            if let Some(p) = parent {
                if !idx.layers.contains_key(p.as_str()) {
                    return Err(SnapshotError::ParentMissing {
                        chain: chain_id.clone(),
                        parent: p.clone(),
                    });
                }
            }
        }
        let id = self.next_id()?;
        let tmp = self.dir.join(format!("tmp-{id}"));
        let tmp_fs = tmp.join("fs");
        std::fs::create_dir_all(&tmp_fs).map_err(io_err("create", &tmp_fs))?;
        let done = unpack(&tmp_fs).and_then(|()| {
            let dest = self.dir.join(id.to_string());
            std::fs::rename(&tmp, &dest).map_err(io_err("rename", &tmp))
        });
        if let Err(e) = done {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let _lock = self.lock_index()?;
        let mut idx = self.read_index()?;
        idx.layers.insert(
            chain_id.as_str().to_string(),
            Layer {
                id,
                parent: parent.map(|p| p.as_str().to_string()),
            },
        );
        self.write_index(&idx)?;
        Ok(self.fs_dir(id))
    }

    /// Short ids of the chain, top first.
    fn chain_ids(idx: &Index, chain: &Digest) -> Result<Vec<u64>, SnapshotError> {
        let mut out = Vec::new();
        let mut cur = Some(chain.as_str().to_string());
        while let Some(c) = cur {
            let l = idx
                .layers
                .get(&c)
                .ok_or_else(|| SnapshotError::NotFound(c.clone()))?;
            out.push(l.id);
            cur = l.parent.clone();
            if out.len() > idx.layers.len() {
                return Err(SnapshotError::NotFound(format!("{chain} (parent cycle)")));
            }
        }
        Ok(out)
    }

    /// The mount for a container: lower dirs of the chain (top first) plus a new upper/work
    /// under `key`; or a read-only view (`key` unused).
    pub fn mounts(
        &self,
        chain: &Digest,
        key: &str,
        readonly: bool,
    ) -> Result<MountSpec, SnapshotError> {
        let idx = self.read_index()?;
        let ids = Self::chain_ids(&idx, chain)?;
        let lower = ids
            .iter()
            .map(|id| self.fs_dir(*id).to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let spec = if readonly {
            if ids.len() == 1 {
                MountSpec {
                    fstype: "bind".into(),
                    source: lower,
                    options: vec!["rbind".into(), "ro".into()],
                }
            } else {
                MountSpec {
                    fstype: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![format!("lowerdir={lower}")],
                }
            }
        } else {
            let id = self.prepare_active(chain, key)?;
            let upper = self.fs_dir(id);
            let work = self.dir.join(id.to_string()).join("work");
            MountSpec {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir={lower}"),
                    format!("upperdir={}", upper.display()),
                    format!("workdir={}", work.display()),
                ],
            }
        };
        Ok(spec)
    }

    /// Creates (or finds) the upper/work pair of container `key` on `chain`.
    fn prepare_active(&self, chain: &Digest, key: &str) -> Result<u64, SnapshotError> {
        if key.is_empty() || key.contains(['/', '\0']) || key.starts_with("sha256:") {
            return Err(SnapshotError::BadKey(key.to_string()));
        }
        let _lock = self.lock_index()?;
        let mut idx = self.read_index()?;
        if let Some(a) = idx.active.get(key) {
            if a.chain == chain.as_str() {
                return Ok(a.id);
            }
            return Err(SnapshotError::KeyExists {
                key: key.to_string(),
                chain: chain.clone(),
            });
        }
        let id = idx.next;
        idx.next += 1;
        let base = self.dir.join(id.to_string());
        for sub in ["fs", "work"] {
            let p = base.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        idx.active.insert(
            key.to_string(),
            Active {
                id,
                chain: chain.as_str().to_string(),
            },
        );
        self.write_index(&idx)?;
        Ok(id)
    }

    /// Removes a container's upper snapshot (by key) or an unused layer (by chain ID).
    /// Every committed layer snapshot, by chain ID.
    pub fn layers(&self) -> Result<Vec<Digest>, SnapshotError> {
        let idx = self.read_index()?;
        Ok(idx
            .layers
            .keys()
            .filter_map(|k| Digest::parse(k).ok())
            .collect())
    }

    pub fn remove(&self, key_or_chain: &str) -> Result<(), SnapshotError> {
        let id = {
            let _lock = self.lock_index()?;
            let mut idx = self.read_index()?;
            let id = if let Some(a) = idx.active.remove(key_or_chain) {
                a.id
            } else if let Some(l) = idx.layers.get(key_or_chain) {
                let id = l.id;
                if let Some((child, _)) = idx
                    .layers
                    .iter()
                    .find(|(_, l)| l.parent.as_deref() == Some(key_or_chain))
                {
                    return Err(SnapshotError::InUse(
                        key_or_chain.to_string(),
                        child.clone(),
                    ));
                }
                if let Some((key, _)) = idx.active.iter().find(|(_, a)| a.chain == key_or_chain) {
                    return Err(SnapshotError::InUse(key_or_chain.to_string(), key.clone()));
                }
                idx.layers.remove(key_or_chain);
                id
            } else {
                return Err(SnapshotError::NotFound(key_or_chain.to_string()));
            };
            self.write_index(&idx)?;
            id
        };
        let dir = self.dir.join(id.to_string());
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}

/// Mounts an overlay `spec` with `volatile` (Linux 5.10+; without it on older kernels): its
/// upper filesystem is not synced at unmount, nor by fsync inside it. Unmounting a plain
/// overlay syncs the whole upper filesystem, i.e. waits for every dirty page of the host on
/// it. For upper dirs that are thrown away (`run --rm`) or made durable another way (a build
/// step, whose layer blob is fsynced).
pub fn mount_volatile(spec: &MountSpec, target: &Path) -> Result<(), SnapshotError> {
    if spec.fstype != "overlay" {
        return mount(spec, target);
    }
    // A volatile mount leaves <workdir>/work/incompat/volatile behind, and overlayfs refuses
    // any later mount of that workdir while it is there (after a crash the upper may be
    // inconsistent). These uppers are thrown away or remade, and this one was unmounted by
    // berthd (a `--rm` container restarted): the marker goes.
    if let Some(w) = spec.options.iter().find_map(|o| o.strip_prefix("workdir=")) {
        let marker = Path::new(w).join("work").join("incompat");
        match std::fs::remove_dir_all(&marker) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &marker)(e));
            }
            _ => {}
        }
    }
    let mut v = spec.clone();
    v.options.push("volatile".into());
    mount(&v, target).or_else(|_| mount(spec, target))
}

/// Mounts `spec` on `target`: the one function in berth-image that calls mount(2).
pub fn mount(spec: &MountSpec, target: &Path) -> Result<(), SnapshotError> {
    let err = |source| SnapshotError::Mount {
        fstype: spec.fstype.clone(),
        target: target.to_path_buf(),
        source,
    };
    let ro = spec.options.iter().any(|o| o == "ro");
    if spec.fstype == "bind" {
        let mut flags = MsFlags::MS_BIND;
        if spec.options.iter().any(|o| o == "rbind") {
            flags |= MsFlags::MS_REC;
        }
        nix::mount::mount(
            Some(spec.source.as_str()),
            target,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(err)?;
        if ro {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            {
                let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
                return Err(err(e));
            }
        }
        return Ok(());
    }
    let mut flags = MsFlags::empty();
    if ro {
        flags |= MsFlags::MS_RDONLY;
    }
    let data = spec
        .options
        .iter()
        .filter(|o| o.as_str() != "ro" && o.as_str() != "rw")
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if spec.fstype == "overlay" && data.len() > PAGE_LIMIT {
        return mount_overlay_fsconfig(spec, target, ro).map_err(err);
    }
    nix::mount::mount(
        Some(spec.source.as_str()),
        target,
        Some(spec.fstype.as_str()),
        flags,
        Some(data.as_str()),
    )
    .map_err(err)
}

// Linux mount API constants (include/uapi/linux/mount.h).
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
/// fsconfig(2) copies string values of at most this many bytes.
const FSCONFIG_STRING_MAX: usize = 255;

fn cstring(s: &str) -> Result<std::ffi::CString, nix::Error> {
    std::ffi::CString::new(s).map_err(|_| nix::Error::EINVAL)
}

fn syscall_result(ret: libc::c_long) -> Result<libc::c_long, nix::Error> {
    if ret < 0 {
        Err(nix::Error::last())
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> Result<std::os::fd::OwnedFd, nix::Error> {
    use std::os::fd::FromRawFd;
    let raw = i32::try_from(ret).map_err(|_| nix::Error::EBADF)?;
    // SAFETY: `raw` was just returned by fsopen/fsmount as a new descriptor that nothing else
    // owns; the OwnedFd takes sole ownership and closes it once.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// Sets one fsconfig key: a string value, or when the value is a path too long for fsconfig's
/// string limit, an O_PATH descriptor of it (overlay takes either for its dir options).
fn fsconfig_value(
    fs: std::os::fd::BorrowedFd<'_>,
    key: &str,
    value: &str,
) -> Result<(), nix::Error> {
    use std::os::fd::AsRawFd;
    let k = cstring(key)?;
    if value.len() <= FSCONFIG_STRING_MAX {
        let v = cstring(value)?;
        // SAFETY: fsconfig reads the NUL-terminated key and value, which outlive the call; `fs`
        // is an open fs context.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        syscall_result(ret).map(drop)
    } else {
        let dir = nix::fcntl::open(
            value,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: as above; the value pointer is NULL and `aux` a descriptor that stays open
        // for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_FD,
                k.as_ptr(),
                std::ptr::null::<libc::c_char>(),
                dir.as_raw_fd(),
            )
        };
        syscall_result(ret).map(drop)
    }
}

/// Mounts an overlay whose options exceed a page through the new mount API: each lower dir
/// is its own "lowerdir+" value (Linux 6.8), so the length of the chain does not matter.
fn mount_overlay_fsconfig(spec: &MountSpec, target: &Path, ro: bool) -> Result<(), nix::Error> {
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::ffi::OsStrExt;
    let fstype = cstring(&spec.fstype)?;
    // SAFETY: fsopen reads the NUL-terminated filesystem name, which outlives the call.
    let fs = fd_from(syscall_result(unsafe {
        libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC)
    })?)?;
    for opt in &spec.options {
        match opt.split_once('=') {
            Some(("lowerdir", dirs)) => {
                for dir in dirs.split(':') {
                    fsconfig_value(fs.as_fd(), "lowerdir+", dir)?;
                }
            }
            Some((k, v)) => fsconfig_value(fs.as_fd(), k, v)?,
            None if opt == "ro" || opt == "rw" => {}
            None => {
                let k = cstring(opt)?;
                // SAFETY: fsconfig reads the NUL-terminated key; value and aux are unused.
                syscall_result(unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fs.as_raw_fd(),
                        FSCONFIG_SET_FLAG,
                        k.as_ptr(),
                        std::ptr::null::<libc::c_char>(),
                        0,
                    )
                })?;
            }
        }
    }
    // SAFETY: no pointers are passed; `fs` is an open fs context.
    syscall_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    let attrs = if ro { MOUNT_ATTR_RDONLY } else { 0 };
    // SAFETY: no pointers are passed; `fs` is a created fs context.
    let mnt = fd_from(syscall_result(unsafe {
        libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)
    })?)?;
    let to =
        std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    let empty = c"";
    // SAFETY: move_mount reads the two NUL-terminated paths, which outlive the call; `mnt` is
    // the detached mount fsmount returned.
    syscall_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Unmounts `target`.
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    nix::mount::umount2(target, MntFlags::empty()).map_err(|source| SnapshotError::Unmount {
        target: target.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
    }

    #[test]
    fn chain_id_follows_oci() {
        assert_eq!(chain_id(&[d('a')]), d('a'));
        let two = Digest::sha256_of(format!("{} {}", d('a'), d('b')).as_bytes());
        assert_eq!(chain_id(&[d('a'), d('b')]), two);
        let three = Digest::sha256_of(format!("{} {}", two, d('c')).as_bytes());
        assert_eq!(chain_id(&[d('a'), d('b'), d('c')]), three);
    }

    #[test]
    fn mount_specs_are_short_and_ordered() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = Snapshotter::open(tmp.path()).expect("open");
        let mut parent = None;
        let mut diffs = Vec::new();
        for i in 0..3u8 {
            diffs.push(Digest::sha256_of(&[i]));
            let c = chain_id(&diffs);
            s.prepare_layer(&c, parent.as_ref(), |_| Ok(()))
                .expect("prepare");
            parent = Some(c);
        }
        let top = parent.expect("top");
        let base = s.dir.display().to_string();
        let ro = s.mounts(&top, "x", true).expect("ro");
        assert_eq!(
            ro.options,
            vec![format!("lowerdir={base}/2/fs:{base}/1/fs:{base}/0/fs")]
        );
        let rw = s.mounts(&top, "ctr", false).expect("rw");
        assert_eq!(rw.options[1], format!("upperdir={base}/3/fs"));
        assert_eq!(rw.options[2], format!("workdir={base}/3/work"));
        assert_eq!(s.mounts(&top, "ctr", false).expect("again"), rw);
        let one = s.mounts(&chain_id(&diffs[..1]), "x", true).expect("one");
        assert_eq!(one.fstype, "bind");
        assert!(matches!(
            s.remove(top.as_str()),
            Err(SnapshotError::InUse(..))
        ));
        s.remove("ctr").expect("remove key");
        s.remove(top.as_str()).expect("remove top");
        assert!(!s.exists(&top));
        assert!(!s.dir.join("2").exists());
        assert!(matches!(
            s.prepare_layer(&d('f'), Some(&d('e')), |_| Ok(())),
            Err(SnapshotError::ParentMissing { .. })
        ));
    }
}
