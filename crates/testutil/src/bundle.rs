//! OCI bundles with a busybox root filesystem.

use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Where the host's busybox is expected (Debian's `busybox-static` installs it there).
pub const BUSYBOX_PATH: &str = "/bin/busybox";
/// `PATH` inside test containers.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Hostname set in every test bundle.
pub const HOSTNAME: &str = "berth-test";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

/// Errors while building or saving a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// `/bin/busybox` does not exist.
    #[error("{path} not found: install busybox-static (apt-get install busybox-static)")]
    BusyboxMissing {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// `/bin/busybox` exists but needs a dynamic loader, so it cannot run alone in a rootfs.
    #[error(
        "{path} is dynamically linked: install busybox-static (apt-get install busybox-static)"
    )]
    BusyboxDynamic {
        /// The binary that was inspected.
        path: PathBuf,
    },
    /// `busybox --list-full` failed.
    #[error("list applets with `{path} --list-full`: {reason}")]
    ListApplets {
        /// The busybox binary.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An applet path from busybox would leave the rootfs.
    #[error("busybox applet path {applet:?} is not a plain relative path")]
    BadAppletPath {
        /// The offending path.
        applet: String,
    },
    /// A path given to a helper would leave the rootfs.
    #[error("path {path:?} must stay inside the rootfs (no `..`)")]
    PathEscapesRootfs {
        /// The offending path.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` could not be serialized.
    #[error("serialize {path}: {source}")]
    Json {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The `tar` command failed.
    #[error("tar {path}: {reason}")]
    Tar {
        /// The archive being written.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
    let path = path.to_path_buf();
    move |source| BundleError::Io { op, path, source }
}

#[derive(Debug)]
enum Location {
    /// Removed when the bundle is dropped.
    Temp(TempDir),
    /// Left in place (for scripts and benchmarks).
    Persistent(PathBuf),
}

/// An OCI bundle: a directory with `rootfs/` and `config.json`.
///
/// The config lives in memory as JSON; edit it with [`Bundle::config_mut`] and write it with
/// [`Bundle::save`] before handing the bundle to a runtime.
#[derive(Debug)]
pub struct Bundle {
    location: Location,
    config: Value,
}

impl Bundle {
    /// Builds a bundle in a new temporary directory (removed on drop) that runs `args`.
    pub fn busybox(args: &[&str]) -> Result<Bundle, BundleError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .map_err(io_err("create temp dir in", &std::env::temp_dir()))?;
        Bundle::build(Location::Temp(dir), args)
    }

    /// Builds a bundle in `dir` (created if missing, kept after drop) that runs `args`.
    pub fn busybox_at(dir: &Path, args: &[&str]) -> Result<Bundle, BundleError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        Bundle::build(Location::Persistent(dir.to_path_buf()), args)
    }

    fn build(location: Location, args: &[&str]) -> Result<Bundle, BundleError> {
        let bundle = Bundle {
            location,
            config: default_config(args),
        };
        // The container's root user may be mapped to an unprivileged host uid (user namespace
        // tests); it must be able to reach rootfs/ through the bundle directory.
        set_mode(bundle.path(), 0o755)?;
        build_rootfs(&bundle.rootfs())?;
        bundle.save()?;
        Ok(bundle)
    }

    /// The bundle directory (what `--bundle` takes).
    pub fn path(&self) -> &Path {
        match &self.location {
            Location::Temp(dir) => dir.path(),
            Location::Persistent(path) => path,
        }
    }

    /// The root filesystem directory.
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// The path of `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }

    /// The config as it will be saved.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config, for editing; call [`Bundle::save`] afterwards.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Writes `config.json`.
    pub fn save(&self) -> Result<(), BundleError> {
        let path = self.config_path();
        let text =
            serde_json::to_string_pretty(&self.config).map_err(|source| BundleError::Json {
                path: path.clone(),
                source,
            })?;
        fs::write(&path, text).map_err(io_err("write", &path))
    }

    /// Sets `linux.cgroupsPath` (in memory; call [`Bundle::save`]).
    pub fn set_cgroups_path(&mut self, path: &str) {
        self.config["linux"]["cgroupsPath"] = Value::from(path);
    }

    /// Sets `process.args` (in memory; call [`Bundle::save`]).
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Writes a file inside the rootfs; `path` is relative to the container's `/`.
    pub fn write_rootfs_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<PathBuf, BundleError> {
        let target = self.rootfs_path(path)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::write(&target, contents).map_err(io_err("write", &target))?;
        set_mode(&target, mode)?;
        Ok(target)
    }

    /// Creates a directory (and parents) inside the rootfs.
    pub fn create_rootfs_dir(&self, path: &str) -> Result<PathBuf, BundleError> {
        let target = self.rootfs_path(path)?;
        fs::create_dir_all(&target).map_err(io_err("create", &target))?;
        Ok(target)
    }

    /// Maps a container path to the host path under the rootfs, refusing `..`.
    pub fn rootfs_path(&self, path: &str) -> Result<PathBuf, BundleError> {
        let rel = Path::new(path.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(BundleError::PathEscapesRootfs {
                path: PathBuf::from(path),
            });
        }
        Ok(self.rootfs().join(rel))
    }

    /// Shifts the owners of everything in the rootfs into a user namespace whose container
    /// root is host `uid`/`gid`: an entry owned by N:M becomes (uid+N):(gid+M), so root's files
    /// go to `uid` and `/home/user` (1000) to `uid`+1000. Symlinks themselves are changed, not
    /// their targets. Call it once per bundle.
    pub fn chown_rootfs(&self, uid: u32, gid: u32) -> Result<(), BundleError> {
        shift_owner_tree(&self.rootfs(), uid, gid)
    }

    /// Writes an uncompressed tar of the rootfs to `file` (for `docker import`).
    pub fn write_rootfs_tar(&self, file: &Path) -> Result<(), BundleError> {
        let rootfs = self.rootfs();
        let out = Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(file)
            .arg(".")
            .output()
            .map_err(|e| BundleError::Tar {
                path: file.to_path_buf(),
                reason: format!("run tar: {e}"),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(BundleError::Tar {
                path: file.to_path_buf(),
                reason: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}

fn shift_owner_tree(path: &Path, uid: u32, gid: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
    let new_uid = uid.saturating_add(meta.uid());
    let new_gid = gid.saturating_add(meta.gid());
    std::os::unix::fs::lchown(path, Some(new_uid), Some(new_gid)).map_err(io_err("chown", path))?;
    // chown clears set-id bits on files; restore the mode (not for symlinks, which have none).
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, meta.permissions()).map_err(io_err("chmod", path))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err("read dir", path))? {
            let entry = entry.map_err(io_err("read dir", path))?;
            shift_owner_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Checks that `path` is an ELF file without a `PT_INTERP` program header (statically linked).
fn is_static_elf(path: &Path) -> Result<bool, BundleError> {
    const PT_INTERP: u32 = 3;
    let mut file = fs::File::open(path).map_err(io_err("open", path))?;
    let mut head = vec![0u8; 64 * 1024];
    let mut len = 0;
    while len < head.len() {
        let n = file.read(&mut head[len..]).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        len += n;
    }
    head.truncate(len);
    let u16_at = |off: usize| -> Option<usize> {
        let b = head.get(off..off + 2)?;
        Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |off: usize| -> Option<u32> {
        let b = head.get(off..off + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |off: usize| -> Option<usize> {
        let b = head.get(off..off + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a)).ok()
    };
    if head.get(0..4) != Some(b"\x7fELF".as_slice()) {
        return Ok(false);
    }
    // Only 64-bit little-endian ELF is inspected; anything else is assumed static, and a wrong
    // guess shows up as a clear exec error in the first test.
    if head.get(4) != Some(&2) || head.get(5) != Some(&1) {
        return Ok(true);
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return Ok(false);
    };
    for i in 0..phnum {
        match u32_at(phoff + i * phentsize) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => break,
        }
    }
    Ok(true)
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>, BundleError> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| BundleError::ListApplets {
            path: busybox.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(BundleError::ListApplets {
            path: busybox.to_path_buf(),
            reason: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn build_rootfs(rootfs: &Path) -> Result<(), BundleError> {
    let busybox = Path::new(BUSYBOX_PATH);
    if !busybox.exists() {
        return Err(BundleError::BusyboxMissing {
            path: busybox.to_path_buf(),
        });
    }
    if !is_static_elf(busybox)? {
        return Err(BundleError::BusyboxDynamic {
            path: busybox.to_path_buf(),
        });
    }
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "etc",
        "root",
        "home/user",
        "run",
        "var",
        "tmp",
    ] {
        let path = rootfs.join(dir);
        fs::create_dir_all(&path).map_err(io_err("create", &path))?;
    }
    set_mode(rootfs, 0o755)?;
    set_mode(&rootfs.join("tmp"), 0o1777)?;
    set_mode(&rootfs.join("root"), 0o700)?;
    std::os::unix::fs::chown(rootfs.join("home/user"), Some(1000), Some(1000))
        .map_err(io_err("chown", &rootfs.join("home/user")))?;

    let target = rootfs.join("bin/busybox");
    fs::copy(busybox, &target).map_err(io_err("copy busybox to", &target))?;
    set_mode(&target, 0o755)?;

    for applet in busybox_applets(busybox)? {
        let rel = Path::new(&applet);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(BundleError::BadAppletPath { applet });
        }
        if rel == Path::new("bin/busybox") {
            continue;
        }
        let link = rootfs.join(rel);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        match symlink("/bin/busybox", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("symlink", &link)(e)),
        }
    }

    for (name, text) in [
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/hostname", "berth-test\n"),
    ] {
        let path = rootfs.join(name);
        fs::write(&path, text).map_err(io_err("write", &path))?;
    }
    Ok(())
}

/// The default test config: what `runc spec` writes (runtime-spec 1.0.2; namespaces, mounts,
/// capabilities, masked and read-only paths, `RLIMIT_NOFILE` 1024, no new privileges, read-only
/// root) plus a cgroup namespace, with no terminal, `args` as the process, a fixed `PATH` and the
/// hostname [`HOSTNAME`].
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [DEFAULT_PATH_ENV],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": HOSTNAME,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn default_config_has_args_and_hostname() {
        let c = default_config(&["sh", "-c", "true"]);
        assert_eq!(c["process"]["args"], json!(["sh", "-c", "true"]));
        assert_eq!(c["hostname"], "berth-test");
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["ociVersion"], "1.0.2");
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
    }

    #[test]
    fn chown_rootfs_shifts_owners() {
        use std::os::unix::fs::MetadataExt;
        crate::require_root().unwrap();
        let b = Bundle::busybox(&["true"]).unwrap();
        b.chown_rootfs(100000, 200000).unwrap();
        let root = fs::metadata(b.rootfs().join("bin/busybox")).unwrap();
        assert_eq!((root.uid(), root.gid()), (100000, 200000));
        let home = fs::metadata(b.rootfs().join("home/user")).unwrap();
        assert_eq!((home.uid(), home.gid()), (101000, 201000));
        let tmp = fs::metadata(b.rootfs().join("tmp")).unwrap();
        assert_eq!(tmp.mode() & 0o7777, 0o1777);
    }

    #[test]
    fn host_busybox_is_static() {
        let path = Path::new(BUSYBOX_PATH);
        assert!(
            path.exists(),
            "{BUSYBOX_PATH} missing: install busybox-static"
        );
        assert!(is_static_elf(path).unwrap(), "install busybox-static");
    }

    #[test]
    fn dynamic_binary_is_detected() {
        // /bin/sh on Debian is dash, dynamically linked.
        let sh = Path::new("/bin/sh");
        if let Ok(target) = fs::canonicalize(sh) {
            if target != Path::new(BUSYBOX_PATH) {
                assert!(!is_static_elf(&target).unwrap());
            }
        }
    }
}
