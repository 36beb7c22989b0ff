//! The container's root filesystem: the mounts of the config, /dev, pivot_root, masked and
//! read-only paths. Runs inside the container's new mount namespace, before and after pivot.
//!
//! Every destination is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)` and mounted
//! onto through its `/proc/self/fd/N` name, so a symlink planted in the image (or swapped in
//! while we work, CVE-2021-30465) can never send a mount outside the rootfs.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{chdir, fchdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::error::{Result, RuntimeError};
use crate::sys::{fd_path, open_in_root};

/// A mount's options split into what `mount(2)` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags explicitly cleared (e.g. `rw`, `suid`), which matter for remounts.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn data_str(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match opt.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if opt.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                o.propagation.push(base | rec);
                continue;
            }
            // runc extensions with no kernel meaning here.
            "tmpcopyup" | "rro" | "rrw" | "idmap" | "ridmap" => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
    }
    o
}

/// Makes every missing directory of `path` inside the root (and the last component as a file
/// when `file` is set), then returns an `O_PATH` descriptor of it.
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, file: bool) -> Result<OwnedFd> {
    ensure_depth(root, path, file, 0)
}

/// As many symlinks as the kernel follows in one lookup (SYMLOOP_MAX).
const MAX_LINKS: u32 = 40;

fn ensure_depth(root: BorrowedFd<'_>, path: &Path, file: bool, depth: u32) -> Result<OwnedFd> {
    let comps: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut cur = PathBuf::from("/");
    for (i, name) in comps.iter().enumerate() {
        let parent = open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| RuntimeError::io("open in rootfs", &cur, e))?;
        let dir = cur.clone();
        cur.push(name);
        let last = i + 1 == comps.len();
        match open_in_root(root, &cur, libc::O_PATH) {
            Ok(fd) => {
                if last {
                    return Ok(fd);
                }
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(RuntimeError::io("open in rootfs", &cur, e)),
        }
        // A dangling symlink: create what it points at, inside the root, then go on from there.
        if let Ok(target) = nix::fcntl::readlinkat(parent.as_fd(), *name) {
            if depth >= MAX_LINKS {
                return Err(RuntimeError::InvalidArgument(format!(
                    "too many levels of symbolic links under {}",
                    path.display()
                )));
            }
            let target = PathBuf::from(target);
            let mut next = if target.is_absolute() {
                target
            } else {
                dir.join(target)
            };
            for rest in &comps[i + 1..] {
                next.push(rest);
            }
            return ensure_depth(root, &next, file, depth + 1);
        }
        if last && file {
            let r = nix::fcntl::openat(
                parent.as_fd(),
                *name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            );
            match r {
                Ok(_) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(RuntimeError::sys(format!("create {}", cur.display()), e)),
            }
        } else {
            match nix::sys::stat::mkdirat(parent.as_fd(), *name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(RuntimeError::sys(format!("mkdir {}", cur.display()), e)),
            }
        }
    }
    open_in_root(root, &cur, libc::O_PATH).map_err(|e| RuntimeError::io("open in rootfs", &cur, e))
}

fn mnt(
    src: Option<&Path>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    shown: &Path,
) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        RuntimeError::sys(
            format!(
                "mount {} on {} (type {}, flags {:?})",
                src.map(|s| s.display().to_string())
                    .unwrap_or_else(|| "none".into()),
                shown.display(),
                fstype.unwrap_or("none"),
                flags
            ),
            e,
        )
    })
}

/// Flags the kernel locks on a mount we do not own (in a user namespace): a remount must repeat
/// them or it fails with EPERM.
fn locked_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

/// Context for building the rootfs inside the init.
#[derive(Debug)]
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// Container cgroup directories on the host, by hierarchy name ("memory", "unified", ...),
    /// bind-mounted under a `cgroup` mount.
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// Whether the container has a new cgroup namespace (cgroup2 can then be mounted directly).
    pub cgroupns: bool,
    pub userns: bool,
    /// The container root's host uid/gid, for device ownership.
    pub root_uid: u32,
    pub root_gid: u32,
}

/// Everything before pivot_root: propagation, the rootfs bind, the config's mounts, /dev.
pub fn prepare(ctx: &RootfsContext<'_>) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("unbindable") | Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Nothing we mount may propagate back to the host.
    mnt(None, "/", None, prop, None, Path::new("/"))?;
    // pivot_root needs the new root to be a mount point whose parent is not shared.
    mnt(
        Some(ctx.rootfs),
        &ctx.rootfs.to_string_lossy(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        ctx.rootfs,
    )?;
    if prop.contains(MsFlags::MS_SHARED) {
        mnt(
            None,
            &ctx.rootfs.to_string_lossy(),
            None,
            MsFlags::MS_PRIVATE,
            None,
            ctx.rootfs,
        )?;
    }
    let root = crate::sys::open_path(ctx.rootfs)
        .map_err(|e| RuntimeError::io("open rootfs", ctx.rootfs, e))?;
    let mut dev_bound = false;
    for m in ctx.spec.mounts().as_deref().unwrap_or_default() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_bound = true;
        }
        mount_one(ctx, root.as_fd(), m)?;
    }
    if !dev_bound {
        create_devices(ctx, root.as_fd())?;
        dev_symlinks(ctx.rootfs)?;
    }
    // A missing cwd is created, as runc does, before the root may become read-only; resolving it
    // inside the root refuses magic links such as /proc/self/fd/N (CVE-2024-21626).
    if let Some(p) = ctx.spec.process().as_ref() {
        ensure_in_root(root.as_fd(), p.cwd(), false)?;
    }
    Ok(())
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

fn dest_of(m: &Mount) -> PathBuf {
    let d = m.destination();
    if d.is_absolute() {
        d.clone()
    } else {
        Path::new("/").join(d)
    }
}

fn mount_one(ctx: &RootfsContext<'_>, root: BorrowedFd<'_>, m: &Mount) -> Result<()> {
    let dest = dest_of(m);
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.is_bind() { "bind" } else { "" });
    if opts.is_bind() || typ == "bind" {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            ctx.bundle.join(src)
        };
        let is_dir = std::fs::metadata(&src)
            .map(|md| md.is_dir())
            .map_err(|e| RuntimeError::io("stat bind source", &src, e))?;
        let fd = ensure_in_root(root, &dest, !is_dir)?;
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mnt(Some(&src), &fd_path(fd.as_fd()), None, flags, None, &dest)?;
        drop(fd);
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        let top = open_in_root(root, &dest, libc::O_PATH)
            .map_err(|e| RuntimeError::io("open in rootfs", &dest, e))?;
        let top_path = fd_path(top.as_fd());
        if !extra.is_empty() {
            let locked = locked_flags(&top_path);
            mnt(
                None,
                &top_path,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked,
                None,
                &dest,
            )?;
        }
        for p in &opts.propagation {
            mnt(None, &top_path, None, *p, None, &dest)?;
        }
        return Ok(());
    }
    match typ {
        "cgroup" | "cgroup2" => return mount_cgroup(ctx, root, &dest, typ, &opts),
        _ => {}
    }
    let fd = ensure_in_root(root, &dest, false)?;
    let target = fd_path(fd.as_fd());
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data_str();
    let flags = opts.flags - MsFlags::MS_REMOUNT;
    let r = mnt(
        Some(&src),
        &target,
        Some(typ),
        flags,
        data.as_deref(),
        &dest,
    );
    if let Err(e) = r {
        // Without a namespace of their own, sysfs and mqueue cannot be mounted from a user
        // namespace; a recursive bind of the host's keeps the container working, as runc does.
        if ctx.userns && matches!(typ, "sysfs" | "mqueue") {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            mnt(
                Some(Path::new(host)),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                &dest,
            )?;
        } else {
            return Err(e);
        }
    }
    drop(fd);
    if !opts.propagation.is_empty() {
        let top = open_in_root(root, &dest, libc::O_PATH)
            .map_err(|e| RuntimeError::io("open in rootfs", &dest, e))?;
        for p in &opts.propagation {
            mnt(None, &fd_path(top.as_fd()), None, *p, None, &dest)?;
        }
    }
    Ok(())
}

/// `/sys/fs/cgroup` in the container shows the container's own cgroups: cgroup2 mounted directly
/// when the container has its own cgroup namespace on a v2 host, otherwise a tmpfs holding a
/// bind mount of the container's directory for each hierarchy.
fn mount_cgroup(
    ctx: &RootfsContext<'_>,
    root: BorrowedFd<'_>,
    dest: &Path,
    typ: &str,
    opts: &MountOptions,
) -> Result<()> {
    let fd = ensure_in_root(root, dest, false)?;
    let target = fd_path(fd.as_fd());
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let v2_only = ctx.cgroup_dirs.len() == 1 && ctx.cgroup_dirs[0].0 == "unified";
    if v2_only && ctx.cgroupns {
        return mnt(
            Some(Path::new("cgroup2")),
            &target,
            Some("cgroup2"),
            opts.flags,
            None,
            dest,
        );
    }
    if v2_only || typ == "cgroup2" {
        let host = ctx
            .cgroup_dirs
            .iter()
            .find(|(n, _)| n == "unified")
            .map(|(_, p)| p.clone());
        if let Some(host) = host {
            mnt(
                Some(&host),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                dest,
            )?;
            if ro {
                mnt(
                    None,
                    &target_top(root, dest)?,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                    None,
                    dest,
                )?;
            }
        }
        return Ok(());
    }
    mnt(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        base,
        Some("mode=755"),
        dest,
    )?;
    drop(fd);
    for (name, host) in &ctx.cgroup_dirs {
        let sub = dest.join(name);
        let sfd = ensure_in_root(root, &sub, false)?;
        mnt(
            Some(host),
            &fd_path(sfd.as_fd()),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            &sub,
        )?;
        drop(sfd);
        if ro {
            let top = target_top(root, &sub)?;
            mnt(
                None,
                &top,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                None,
                &sub,
            )?;
        }
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name, as on hosts.
        if name.contains(',') {
            for part in name.split(',') {
                let link = ctx
                    .rootfs
                    .join(dest.strip_prefix("/").unwrap_or(dest))
                    .join(part);
                if !link.exists() {
                    symlink(name, &link).map_err(|e| RuntimeError::io("symlink", &link, e))?;
                }
            }
        }
    }
    if ro {
        let top = target_top(root, dest)?;
        mnt(
            None,
            &top,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
            Some("mode=755"),
            dest,
        )?;
    }
    Ok(())
}

fn target_top(root: BorrowedFd<'_>, dest: &Path) -> Result<String> {
    let fd = open_in_root(root, dest, libc::O_PATH)
        .map_err(|e| RuntimeError::io("open in rootfs", dest, e))?;
    let p = fd_path(fd.as_fd());
    // The path names the descriptor; keep it open for the caller's mount call by leaking it into
    // the path string's lifetime is not possible, so resolve through the real path instead.
    let real = std::fs::read_link(&p).map_err(|e| RuntimeError::io("readlink", dest, e))?;
    Ok(real.to_string_lossy().into_owned())
}

/// The devices every container gets, as runc adds them.
pub fn default_devices() -> Vec<(PathBuf, LinuxDeviceType, i64, i64, u32)> {
    vec![
        ("/dev/null".into(), LinuxDeviceType::C, 1, 3, 0o666),
        ("/dev/zero".into(), LinuxDeviceType::C, 1, 5, 0o666),
        ("/dev/full".into(), LinuxDeviceType::C, 1, 7, 0o666),
        ("/dev/random".into(), LinuxDeviceType::C, 1, 8, 0o666),
        ("/dev/urandom".into(), LinuxDeviceType::C, 1, 9, 0o666),
        ("/dev/tty".into(), LinuxDeviceType::C, 5, 0, 0o666),
    ]
}

fn create_devices(ctx: &RootfsContext<'_>, root: BorrowedFd<'_>) -> Result<()> {
    let configured: Vec<LinuxDevice> = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let mut all: Vec<(PathBuf, LinuxDeviceType, i64, i64, u32, u32, u32)> = default_devices()
        .into_iter()
        .filter(|d| !configured.iter().any(|c| c.path() == &d.0))
        .map(|(p, t, ma, mi, mode)| (p, t, ma, mi, mode, ctx.root_uid, ctx.root_gid))
        .collect();
    for d in &configured {
        if !config_dotdot_free(d.path()) {
            return Err(RuntimeError::InvalidArgument(format!(
                "device path {} contains '..'",
                d.path().display()
            )));
        }
        all.push((
            d.path().clone(),
            d.typ(),
            d.major(),
            d.minor(),
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(ctx.root_uid),
            d.gid().unwrap_or(ctx.root_gid),
        ));
    }
    for (path, typ, major, minor, mode, uid, gid) in all {
        let parent = path.parent().unwrap_or(Path::new("/dev"));
        let pfd = ensure_in_root(root, parent, false)?;
        let name = path.file_name().ok_or_else(|| {
            RuntimeError::InvalidArgument(format!(
                "device path {} has no file name",
                path.display()
            ))
        })?;
        if ctx.userns {
            // mknod is not allowed in a user namespace: bind the host's node instead.
            let fd = ensure_in_root(root, &path, true)?;
            mnt(
                Some(&path),
                &fd_path(fd.as_fd()),
                None,
                MsFlags::MS_BIND,
                None,
                &path,
            )?;
            continue;
        }
        let kind = match typ {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "device {}: type 'a' is only valid in cgroup rules",
                    path.display()
                )))
            }
        };
        let dev = nix::sys::stat::makedev(
            u64::try_from(major).unwrap_or(0),
            u64::try_from(minor).unwrap_or(0),
        );
        let _ = nix::unistd::unlinkat(pfd.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let perm = Mode::from_bits_truncate(mode & 0o7777);
        mknodat(pfd.as_fd(), name, kind, perm, dev)
            .map_err(|e| RuntimeError::sys(format!("mknod {}", path.display()), e))?;
        nix::sys::stat::fchmodat(
            pfd.as_fd(),
            name,
            perm,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|_| {
            nix::sys::stat::fchmodat(
                pfd.as_fd(),
                name,
                perm,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        })
        .map_err(|e| RuntimeError::sys(format!("chmod {}", path.display()), e))?;
        nix::unistd::fchownat(
            pfd.as_fd(),
            name,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| RuntimeError::sys(format!("chown {}", path.display()), e))?;
    }
    Ok(())
}

fn config_dotdot_free(p: &Path) -> bool {
    crate::config::check_no_dotdot(p)
}

fn dev_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if !dev.join("ptmx").exists() && std::fs::symlink_metadata(dev.join("ptmx")).is_err() {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let link = dev.join(name);
        // The rootfs's /dev is our fresh tmpfs here, so there is no symlink to follow out.
        match symlink(target, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RuntimeError::io("symlink", &link, e)),
        }
    }
    Ok(())
}

/// Switches the root to the rootfs. With `no_pivot` the rootfs is moved over `/` and chrooted
/// into, for root filesystems pivot_root cannot handle (a ramdisk).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        chdir(rootfs).map_err(|e| RuntimeError::sys(format!("chdir {}", rootfs.display()), e))?;
        mnt(
            Some(rootfs),
            "/",
            None,
            MsFlags::MS_MOVE,
            None,
            Path::new("/"),
        )?;
        nix::unistd::chroot(".").map_err(|e| RuntimeError::sys("chroot", e))?;
        return chdir("/").map_err(|e| RuntimeError::sys("chdir /", e));
    }
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys("open /", e))?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys(format!("open {}", rootfs.display()), e))?;
    fchdir(&new).map_err(|e| RuntimeError::sys("fchdir rootfs", e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one at "/"; we then unmount it
    // from there, without needing a directory for it inside the image.
    pivot_root(".", ".")
        .map_err(|e| RuntimeError::sys(format!("pivot_root {}", rootfs.display()), e))?;
    fchdir(&old).map_err(|e| RuntimeError::sys("fchdir old root", e))?;
    // Keep the unmount from propagating to the host's mounts.
    mnt(
        None,
        ".",
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
        Path::new("/"),
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| RuntimeError::sys("unmount old root", e))?;
    chdir("/").map_err(|e| RuntimeError::sys("chdir /", e))?;
    drop(old);
    Ok(())
}

/// After pivot: sysctls, read-only and masked paths, then the read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    if let Some(sysctls) = linux.sysctl() {
        for (k, v) in sysctls {
            let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&path, v.as_bytes())
                .map_err(|e| RuntimeError::io("write sysctl", &path, e))?;
        }
    }
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        readonly_path(Path::new(p))?;
    }
    for p in linux.masked_paths().as_deref().unwrap_or_default() {
        mask_path(Path::new(p))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let locked = locked_flags("/");
        mnt(
            None,
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None,
            Path::new("/"),
        )?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    let s = p.to_string_lossy();
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(RuntimeError::sys(format!("bind {s} read-only"), e)),
    }
    let locked = locked_flags(&s);
    mnt(
        None,
        &s,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked,
        None,
        p,
    )
}

fn mask_path(p: &Path) -> Result<()> {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::io("stat masked path", p, e)),
    };
    if md.is_dir() {
        mnt(
            Some(Path::new("tmpfs")),
            &p.to_string_lossy(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
            p,
        )
    } else {
        mnt(
            Some(Path::new("/dev/null")),
            &p.to_string_lossy(),
            None,
            MsFlags::MS_BIND,
            None,
            p,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = parse_options(&s(&[
            "nosuid",
            "noexec",
            "nodev",
            "mode=755",
            "size=65536k",
        ]));
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(o.data_str().as_deref(), Some("mode=755,size=65536k"));
        let o = parse_options(&s(&["rbind", "ro", "rprivate"]));
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let o = parse_options(&s(&["ro", "rw"]));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn ensure_stays_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // A symlink pointing at an absolute host path resolves inside the root.
        symlink("/etc", root.join("evil")).unwrap();
        let rfd = crate::sys::open_path(&root).unwrap();
        ensure_in_root(rfd.as_fd(), Path::new("/evil/sub"), false).unwrap();
        assert!(root.join("etc/sub").is_dir());
        assert!(!Path::new("/etc/sub").exists());
        ensure_in_root(rfd.as_fd(), Path::new("/a/b/file"), true).unwrap();
        assert!(root.join("a/b/file").is_file());
    }
}
