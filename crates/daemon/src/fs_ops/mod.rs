//! A container's filesystem from the outside: `docker cp` (stat, archive, extract), `docker
//! export`, `docker diff` and `docker commit`.
//!
//! Access goes through [`resolve::ContainerFs`]: a descriptor of the container's root plus its
//! volume and bind mounts, walked without ever following a symlink out of the container. The
//! root is the container's own overlay mount while it runs (`<exec-root>/containers/<id>/rootfs`);
//! for a stopped container this module mounts one itself on a private directory, opens it and
//! detaches it at once (`MNT_DETACH`): the descriptor keeps the mount alive exactly as long as
//! it is needed and nothing is left mounted if the daemon dies. Reads use a read-only overlay
//! of the upper and lower directories (which cannot conflict with a start in the meantime);
//! writes mount the container's own read-write overlay under the container's operation lock,
//! so no start can mount the same upper directory at the same time.
//!
//! Blocking work runs in `spawn_blocking`; archives stream to and from the HTTP body through
//! bounded channels ([`ChunkWriter`], [`ChunkReader`]).

pub mod changes;
pub mod commit;
pub mod resolve;
mod sys;
pub mod tarball;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use base64::Engine;
use berth_image::snapshot::{MountSpec, SnapshotError};
use futures_util::StreamExt;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::container::ContainerRecord;
use crate::error::{ApiError, ApiResult, Kind};
use crate::state::{Container, Daemon};
use resolve::{ContainerFs, FsMount};

/// Why a filesystem operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A path (in the container) that does not exist; the service names the container.
    #[error("no such file or directory: {0}")]
    Missing(String),
    #[error("extraction point is not a directory")]
    NotADirectory,
    #[error("container rootfs is marked read-only")]
    ReadOnlyRootfs,
    #[error("mounted volume is marked read-only")]
    ReadOnlyVolume,
    #[error("too many levels of symbolic links: {0}")]
    Loop(String),
    #[error("archive entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    #[error("cannot overwrite directory {path:?} with non-directory {entry:?}")]
    OverwriteDir { path: String, entry: String },
    #[error("cannot overwrite non-directory {path:?} with directory {entry:?}")]
    OverwriteNonDir { path: String, entry: String },
    #[error("read archive: {0}")]
    Archive(#[source] io::Error),
    #[error("write archive: {0}")]
    Write(#[source] io::Error),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("container {0} has no root filesystem")]
    NoRootfs(String),
    #[error("mount root filesystem of container {id}: {source}")]
    Mount { id: String, source: SnapshotError },
    #[error("unable to find user {user}: {reason}")]
    User { user: String, reason: String },
}

impl FsError {
    pub fn io(op: &'static str, path: impl std::fmt::Display, e: Errno) -> FsError {
        FsError::Io {
            op,
            path: path.to_string(),
            source: e.into(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            FsError::Missing(_) => Kind::NotFound,
            FsError::NotADirectory
            | FsError::ReadOnlyRootfs
            | FsError::ReadOnlyVolume
            | FsError::Loop(_)
            | FsError::BadEntry { .. }
            | FsError::OverwriteDir { .. }
            | FsError::OverwriteNonDir { .. }
            | FsError::Archive(_)
            | FsError::User { .. } => Kind::InvalidInput,
            FsError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR) => {
                Kind::InvalidInput
            }
            FsError::Write(_)
            | FsError::Io { .. }
            | FsError::NoRootfs(_)
            | FsError::Mount { .. } => Kind::Internal,
        }
    }
}

impl From<FsError> for ApiError {
    fn from(e: FsError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// Docker's answer for a path that is not there.
fn not_found_as_docker(e: FsError, path: &str, container: &str) -> ApiError {
    match e {
        FsError::Missing(_) => ApiError::not_found(format!(
            "Could not find the file {path} in container {container}"
        )),
        e => e.into(),
    }
}

fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("filesystem task failed: {e}"))
}

/// Opens a directory of the host as an `O_PATH` descriptor.
fn open_path(p: &Path) -> Result<OwnedFd, FsError> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::io("open", p.display(), e))
}

/// Whether `dir` is a mount point (another device than its parent's).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Some(Ok(b))) = (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) else {
        return false;
    };
    a.dev() != b.dev()
}

/// What an operation will do with the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A read-only view of a container's layers: its upper directory as the top lower one.
fn readonly_view(spec: &MountSpec) -> Option<MountSpec> {
    let (upper, lowers) = commit::overlay_dirs(spec);
    let dirs: Vec<String> = upper
        .into_iter()
        .chain(lowers)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if dirs.len() < 2 {
        return None;
    }
    Some(MountSpec {
        fstype: "overlay".into(),
        source: "overlay".into(),
        options: vec![format!("lowerdir={}", dirs.join(":")), "ro".into()],
    })
}

/// Mounts `spec` on a private directory under the exec root, opens it and detaches it: the
/// returned descriptor is the only reference to the mount.
fn mount_detached(d: &Daemon, id: &str, spec: &MountSpec) -> Result<OwnedFd, FsError> {
    let base = d.config.exec_root.join("fsview");
    std::fs::create_dir_all(&base).map_err(|e| FsError::Io {
        op: "create",
        path: base.display().to_string(),
        source: e,
    })?;
    let dir = base.join(format!(
        "{}-{}",
        &id[..12.min(id.len())],
        &crate::util::new_id()[..12]
    ));
    std::fs::create_dir(&dir).map_err(|e| FsError::Io {
        op: "create",
        path: dir.display().to_string(),
        source: e,
    })?;
    let out = berth_image::snapshot::mount(spec, &dir)
        .map_err(|source| FsError::Mount {
            id: id.to_string(),
            source,
        })
        .and_then(|()| {
            let fd = open_path(&dir);
            // Detached now, the mount lives as long as the descriptor (or not at all if the
            // open failed): nothing to clean up later, even after a crash.
            if let Err(e) = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("detach {}: {e}", dir.display());
            }
            fd
        });
    let _ = std::fs::remove_dir(&dir);
    out
}

/// The container's filesystem, ready for `access`.
pub fn open_fs(d: &Daemon, rec: &ContainerRecord, access: Access) -> Result<ContainerFs, FsError> {
    let spec = rec
        .rootfs
        .as_ref()
        .ok_or_else(|| FsError::NoRootfs(rec.id.clone()))?;
    let live = d.bundle_dir(&rec.id).join("rootfs");
    let root = if rec.state.status.is_running() && is_mount_point(&live) {
        open_path(&live)?
    } else if spec.fstype == "bind" {
        open_path(Path::new(&spec.source))?
    } else if access == Access::Write {
        if rec.state.status.is_running() {
            // Its overlay exists but not where it should be: a second one on the same upper
            // directory would be undefined behaviour, so refuse.
            return Err(FsError::Io {
                op: "find root filesystem of running container",
                path: live.display().to_string(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        mount_detached(d, &rec.id, spec)?
    } else {
        match readonly_view(spec) {
            Some(v) => mount_detached(d, &rec.id, &v)?,
            None => {
                let (_, lowers) = commit::overlay_dirs(spec);
                let only = lowers
                    .first()
                    .ok_or_else(|| FsError::NoRootfs(rec.id.clone()))?;
                open_path(only)?
            }
        }
    };
    let mut mounts = Vec::new();
    for m in &rec.mounts {
        if m.typ == "tmpfs" {
            // Lives only in the container's mount namespace.
            continue;
        }
        let dest = resolve::components(&m.destination);
        if dest.is_empty() || dest.iter().any(|c| c == "..") {
            continue;
        }
        // Bind mounts of single files are read through the root filesystem.
        let Ok(fd) = open_path(&m.source) else {
            continue;
        };
        mounts.push(FsMount {
            dest,
            fd: Arc::new(fd),
            rw: m.rw,
            source: m.source.clone(),
        });
    }
    let readonly = rec.host_config.readonly_rootfs.unwrap_or(false);
    Ok(ContainerFs::new(root, mounts, readonly))
}

/// `X-Docker-Container-Path-Stat`: the stat of a path, with Go's `os.FileMode` bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: standard base64 of the JSON.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}

/// Go's `os.FileMode` of a `st_mode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = st_mode & 0o777;
    let ft = st_mode & SFlag::S_IFMT.bits();
    m |= match ft {
        x if x == SFlag::S_IFDIR.bits() => DIR,
        x if x == SFlag::S_IFLNK.bits() => SYMLINK,
        x if x == SFlag::S_IFIFO.bits() => NAMED_PIPE,
        x if x == SFlag::S_IFSOCK.bits() => SOCKET,
        x if x == SFlag::S_IFBLK.bits() => DEVICE,
        x if x == SFlag::S_IFCHR.bits() => DEVICE | CHAR_DEVICE,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= STICKY;
    }
    m
}

/// Go's `filepath.Base` of a container path as the client gave it.
fn base_name(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_stat(fs: &ContainerFs, found: &resolve::Found, requested: &str, st: &FileStat) -> PathStat {
    let link_target = if resolve::is_symlink(st) {
        fs.link_target(found)
    } else {
        String::new()
    };
    PathStat {
        name: base_name(requested),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: berth_runtime::state::rfc3339(
            u64::try_from(st.st_mtime).unwrap_or(0),
            u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        ),
        link_target,
    }
}

/// The absolute form of a client path (Docker joins it to `/`), keeping a trailing `/` or
/// `/.`, which mean "the directory itself".
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// `HEAD /containers/{id}/archive`.
pub async fn stat_path(
    d: Arc<Daemon>,
    c: Arc<Container>,
    name: String,
    path: String,
) -> ApiResult<PathStat> {
    let rec = c.snapshot();
    tokio::task::spawn_blocking(move || {
        let abs = absolute(&path);
        let fs = open_fs(&d, &rec, Access::Read)?;
        let found = fs
            .resolve(&abs, false)
            .map_err(|e| not_found_as_docker(e, &path, &name))?;
        let st = found
            .stat
            .ok_or_else(|| not_found_as_docker(FsError::Missing(abs.clone()), &path, &name))?;
        Ok(path_stat(&fs, &found, &abs, &st))
    })
    .await
    .map_err(join_err)?
}

/// A `Write` that hands fixed-size chunks to an async body.
#[derive(Debug)]
pub struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl ChunkWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }

    /// Ends the body with an error, so the client sees a cut stream instead of a short
    /// archive that looks whole.
    pub fn fail(self, e: impl std::fmt::Display) {
        let _ = self.tx.blocking_send(Err(io::Error::other(e.to_string())));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` over chunks an async task pumps from the request body.
#[derive(Debug)]
pub struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChunkReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChunkReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// The body of a streamed response, from the chunks a blocking task sends.
pub fn body_from(rx: mpsc::Receiver<io::Result<Bytes>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// `GET /containers/{id}/archive`: the path's stat and a tar of it. A directory is the top
/// entry named by its base name, its content below (Docker's `TarResourceRebase`).
pub async fn archive_path(
    d: Arc<Daemon>,
    c: Arc<Container>,
    name: String,
    path: String,
) -> ApiResult<(PathStat, Body)> {
    let rec = c.snapshot();
    let (stat_tx, stat_rx) = oneshot::channel::<ApiResult<PathStat>>();
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let abs = absolute(&path);
        let prep = (|| {
            let fs = open_fs(&d, &rec, Access::Read)?;
            let found = fs
                .resolve(&abs, false)
                .map_err(|e| not_found_as_docker(e, &path, &name))?;
            let st = found
                .stat
                .ok_or_else(|| not_found_as_docker(FsError::Missing(abs.clone()), &path, &name))?;
            let stat = path_stat(&fs, &found, &abs, &st);
            Ok::<_, ApiError>((fs, found, st, stat))
        })();
        let (fs, found, st, stat) = match prep {
            Ok(p) => p,
            Err(e) => {
                let _ = stat_tx.send(Err(e));
                return;
            }
        };
        let tar_name = match stat.name.as_str() {
            "/" => ".".to_string(),
            n => n.to_string(),
        };
        if stat_tx.send(Ok(stat)).is_err() {
            return;
        }
        let mut out = ChunkWriter::new(tx);
        let cpath: Vec<OsString> = resolve::components(&found.path());
        let res = (|| {
            let (dir, obj) = found.at();
            let mut w = tarball::TarWriter::new(&mut out, Some(&fs));
            w.add(dir, obj, &st, &tar_name, &cpath)?;
            w.finish()?;
            out.flush().map_err(FsError::Write)
        })();
        if let Err(e) = res {
            tracing::warn!("archive {abs} of container {}: {e}", rec.id);
            out.fail(e);
        }
    });
    let stat = stat_rx
        .await
        .map_err(|_| ApiError::internal("archive task ended early"))??;
    Ok((stat, body_from(rx)))
}

/// `GET /containers/{id}/export`: the whole root filesystem (without volumes) as a tar.
pub async fn export(d: Arc<Daemon>, c: Arc<Container>) -> ApiResult<Body> {
    let rec = c.snapshot();
    let (ready_tx, ready_rx) = oneshot::channel::<ApiResult<()>>();
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let fs = match open_fs(&d, &rec, Access::Read) {
            Ok(fs) => fs,
            Err(e) => {
                let _ = ready_tx.send(Err(e.into()));
                return;
            }
        };
        if ready_tx.send(Ok(())).is_err() {
            return;
        }
        let mut out = ChunkWriter::new(tx);
        let res = (|| {
            let root = fs.root();
            let st = nix::sys::stat::fstat(root.dir()).map_err(|e| FsError::io("stat", "/", e))?;
            let mut w = tarball::TarWriter::new(&mut out, None);
            // The root's own entry has no name: its children are the top of the archive.
            w.add(root.dir(), std::ffi::OsStr::new("."), &st, "", &[])?;
            w.finish()?;
            out.flush().map_err(FsError::Write)
        })();
        if let Err(e) = res {
            tracing::warn!("export of container {}: {e}", rec.id);
            out.fail(e);
        }
    });
    ready_rx
        .await
        .map_err(|_| ApiError::internal("export task ended early"))??;
    Ok(body_from(rx))
}

/// `PUT /containers/{id}/archive` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// Reads a small file of the container (`/etc/passwd`), resolved inside it.
fn read_small(fs: &ContainerFs, path: &str) -> Option<String> {
    let found = fs.resolve(path, true).ok()?;
    let (dir, name) = found.at();
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// uid and gid of `user` (`name`, `uid`, `name:group`, `uid:gid`) in the container's passwd
/// and group files, as Docker resolves `copyUIDGID`.
pub fn lookup_user(fs: &ContainerFs, user: &str) -> Result<(u32, u32), FsError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_small(fs, "/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || (f[0] != u && f[2] != u) {
            return None;
        }
        Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?))
    });
    let (uid, mut gid) = match (entry, u.parse::<u32>()) {
        (Some(e), _) => e,
        (None, Ok(n)) => (n, n),
        (None, Err(_)) => {
            return Err(FsError::User {
                user: u.to_string(),
                reason: "no matching entries in passwd file".into(),
            })
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_small(fs, "/etc/group").unwrap_or_default();
                group
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok())?
                    })
                    .ok_or_else(|| FsError::User {
                        user: user.to_string(),
                        reason: "no matching entries in group file".into(),
                    })?
            }
        };
    }
    Ok((uid, gid))
}

/// `PUT /containers/{id}/archive`: extracts the tar body into directory `path`.
pub async fn extract_to_dir(
    d: Arc<Daemon>,
    c: Arc<Container>,
    name: String,
    path: String,
    opts: PutOptions,
    body: Body,
) -> ApiResult<()> {
    // No start, stop or removal while we write: a stopped container's overlay is mounted
    // read-write here and must be the only one on its upper directory.
    let _op = c.op.lock().await;
    let rec = c.snapshot();
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let work = tokio::task::spawn_blocking(move || -> ApiResult<u64> {
        let abs = absolute(&path);
        let fs = open_fs(&d, &rec, Access::Write)?;
        // The extraction point is fully resolved, the last link too: extracting into a
        // symlink to a directory extracts into the directory (Docker's EvalSymlinks).
        let found = fs
            .resolve(&abs, true)
            .map_err(|e| not_found_as_docker(e, &path, &name))?;
        if !found.exists() {
            return Err(not_found_as_docker(FsError::Missing(abs), &path, &name));
        }
        if !found.is_dir() {
            return Err(FsError::NotADirectory.into());
        }
        fs.check_writable(&resolve::components(&found.path()))?;
        let user = rec.config.user.clone().unwrap_or_default();
        let chown = if opts.copy_uid_gid && !user.is_empty() {
            Some(lookup_user(&fs, &user)?)
        } else {
            None
        };
        let dest = found.into_dir()?;
        let eo = tarball::ExtractOptions {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            chown,
        };
        Ok(tarball::extract(&fs, &dest, ChunkReader::new(rx), eo)?)
    });
    // Read the whole body even when extraction stops early, so the client is never cut off
    // mid-upload and gets the answer.
    let pump = async move {
        let mut s = body.into_data_stream();
        let mut open = true;
        while let Some(frame) = s.next().await {
            let item = frame.map_err(io::Error::other);
            let failed = item.is_err();
            if open && tx.send(item).await.is_err() {
                open = false;
            }
            if failed {
                break;
            }
        }
    };
    let (_, res) = tokio::join!(pump, work);
    res.map_err(join_err)?.map(drop)
}

/// Reads and drops a request body.
pub async fn drain(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

/// `GET /containers/{id}/changes`.
pub async fn changes(c: Arc<Container>) -> ApiResult<Vec<(String, changes::Kind)>> {
    let rec = c.snapshot();
    tokio::task::spawn_blocking(move || {
        let Some(spec) = rec.rootfs.as_ref() else {
            return Ok(Vec::new());
        };
        let (upper, lowers) = commit::overlay_dirs(spec);
        let Some(upper) = upper else {
            return Ok(Vec::new());
        };
        let lowers: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
        let mounts: Vec<String> = rec
            .mounts
            .iter()
            .map(|m| resolve::join_path(&resolve::components(&m.destination)))
            .collect();
        Ok(changes::changes(&upper, &lowers, &mounts)?)
    })
    .await
    .map_err(join_err)?
}

/// `POST /commit`: the new image's record. Pauses a running container meanwhile when asked.
pub async fn commit(
    d: Arc<Daemon>,
    c: Arc<Container>,
    opts: commit::CommitOptions,
    pause: bool,
) -> ApiResult<berth_image::store::ImageRecord> {
    let _op = c.op.lock().await;
    let rec = c.snapshot();
    // Bad changes or config are refused before anything is paused or written.
    commit::image_config(&rec, &opts)?;
    let paused = pause && rec.state.status == crate::container::Status::Running && {
        match d.runtime().pause(&rec.id) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "commit {}: pause failed, committing a running container: {e}",
                    rec.id
                );
                false
            }
        }
    };
    let d2 = d.clone();
    let rec2 = rec.clone();
    let res = tokio::task::spawn_blocking(move || commit::commit(&d2, &rec2, &opts))
        .await
        .map_err(join_err);
    if paused {
        if let Err(e) = d.runtime().resume(&rec.id) {
            tracing::warn!("commit {}: resume failed: {e}", rec.id);
        }
    }
    res?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(
            go_file_mode(libc::S_IFCHR | 0o666),
            (1 << 26) | (1 << 21) | 0o666
        );
        assert_eq!(
            go_file_mode(libc::S_IFDIR | 0o1777),
            (1 << 31) | (1 << 20) | 0o777
        );
    }

    #[test]
    fn names_and_header() {
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a/b.txt"), "b.txt");
        let s = PathStat {
            name: "x".into(),
            size: 1,
            mode: 0o644,
            mtime: "2020-01-01T00:00:00.000000000Z".into(),
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.header_value())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["linkTarget"], "");
        assert_eq!(v["mode"], 0o644);
    }

    #[test]
    fn readonly_views_stack_upper_on_lowers() {
        let spec = MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "lowerdir=/s/2/fs:/s/1/fs".into(),
                "upperdir=/s/3/fs".into(),
                "workdir=/s/3/work".into(),
            ],
        };
        let v = readonly_view(&spec).unwrap();
        assert_eq!(
            v.options,
            vec!["lowerdir=/s/3/fs:/s/2/fs:/s/1/fs".to_string(), "ro".into()]
        );
    }
}
