//! The daemon's live state: the stores, the containers, the exec sessions, the event bus.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use berth_image::content::ContentStore;
use berth_image::snapshot::Snapshotter;
use berth_image::store::ImageStore;
use tokio::sync::watch;

use crate::config::Config;
use crate::container::{ContainerRecord, Status};
use crate::error::{ApiError, ApiResult};
use crate::events::Events;

/// What a waiter needs to know of a container's lifecycle; bumped on every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    pub starts: u64,
    pub exits: u64,
    pub running: bool,
    pub removed: bool,
    pub exit_code: i64,
    /// Why the last start failed, when it did.
    pub error: Option<String>,
}

/// An attach that arrived before the container's shim existed: start connects it to the shim
/// before the process runs, so no output is lost.
#[derive(Debug)]
pub struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tx: tokio::sync::oneshot::Sender<tokio::net::UnixStream>,
}

#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    rec: Mutex<ContainerRecord>,
    /// Serialises lifecycle operations (start, stop, remove, restart) on this container.
    pub op: tokio::sync::Mutex<()>,
    pub lifecycle: watch::Sender<Lifecycle>,
    pub pending_attach: Mutex<Vec<PendingAttach>>,
    /// Set while `restart` stops and starts it: that exit does not auto-remove a `--rm`
    /// container (as dockerd suspends AutoRemove for a restart).
    pub restarting: std::sync::atomic::AtomicBool,
}

impl Container {
    pub fn new(dir: PathBuf, rec: ContainerRecord) -> Container {
        let running = rec.state.status.is_running();
        let (tx, _) = watch::channel(Lifecycle {
            running,
            exit_code: rec.state.exit_code,
            ..Default::default()
        });
        Container {
            id: rec.id.clone(),
            dir,
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            lifecycle: tx,
            pending_attach: Mutex::new(Vec::new()),
            restarting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, ContainerRecord> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> ContainerRecord {
        self.lock().clone()
    }

    pub fn status(&self) -> Status {
        self.lock().state.status
    }

    /// Changes the record and saves it; the change is kept in memory even when saving fails
    /// (the error is returned so the caller can report it).
    pub fn update<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> ApiResult<T> {
        let mut g = self.lock();
        let out = f(&mut g);
        g.save_fast(&self.dir)?;
        Ok(out)
    }

    pub fn short_id(&self) -> &str {
        crate::util::short(&self.id)
    }
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: berth_api::models::ExecConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
    pub started: bool,
}

#[derive(Debug)]
pub struct Daemon {
    pub config: Config,
    pub content: ContentStore,
    pub snapshots: Snapshotter,
    /// Shared with pulls and pushes (berth_distribution's `Stores` holds an `Arc`).
    pub images: Arc<ImageStore>,
    /// Image writers (pull, import, load) hold it shared while they add blobs and snapshots no
    /// record names yet; garbage collection (rmi, prune) holds it exclusively, so it never takes
    /// what a writer is about to record.
    pub image_gc: tokio::sync::RwLock<()>,
    pub containers: RwLock<HashMap<String, Arc<Container>>>,
    pub execs: Mutex<HashMap<String, ExecRecord>>,
    pub events: Events,
    pub volumes: crate::volumes::Volumes,
    pub networks: crate::network::Networks,
    /// Names being created, reserved so two creates cannot take the same one.
    pub reserved_names: Mutex<HashMap<String, String>>,
    pub started_at: std::time::Instant,
}

impl Daemon {
    /// Opens (or creates) the stores under the data root.
    pub fn open(config: Config) -> ApiResult<Daemon> {
        let root = &config.data_root;
        for d in [root.join("containers"), config.exec_root.clone()] {
            std::fs::create_dir_all(&d)
                .map_err(|e| ApiError::internal(format!("create {}: {e}", d.display())))?;
        }
        let content = ContentStore::open(root)?;
        let snapshots = Snapshotter::open(root)?;
        let images = ImageStore::open(root)?;
        let volumes = crate::volumes::Volumes::open(&root.join("volumes"))?;
        let networks = crate::network::Networks::open(&root.join("network"), &config.net)?;
        Ok(Daemon {
            content,
            snapshots,
            images: Arc::new(images),
            image_gc: tokio::sync::RwLock::new(()),
            containers: RwLock::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            events: Events::default(),
            volumes,
            networks,
            reserved_names: Mutex::new(HashMap::new()),
            started_at: std::time::Instant::now(),
            config,
        })
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    /// The bundle (config.json and rootfs mount point) of a running container, on tmpfs.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }

    /// berth-runtime's state root for berthd's containers.
    pub fn runtime_root(&self) -> PathBuf {
        self.config.exec_root.join("runtime")
    }

    /// The shim's socket; kept short (unix socket paths are limited to 107 bytes).
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("s").join(crate::util::short(id))
    }

    pub fn runtime(&self) -> berth_runtime::container::Runtime {
        berth_runtime::container::Runtime::new(self.runtime_root())
    }

    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Finds a container by full id, name (with or without `/`) or unique id prefix.
    pub fn find(&self, key: &str) -> ApiResult<Arc<Container>> {
        let map = self
            .containers
            .read()
            .map_err(|_| ApiError::internal("container table poisoned"))?;
        if key.is_empty() {
            return Err(ApiError::not_found("No such container: "));
        }
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.lock().name == name) {
            return Ok(c.clone());
        }
        let hits: Vec<_> = map.values().filter(|c| c.id.starts_with(key)).collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(ApiError::not_found(format!("No such container: {key}"))),
            _ => Err(ApiError::invalid(format!(
                "multiple containers found with provided prefix: {key}"
            ))),
        }
    }

    pub fn name_owner(&self, name: &str) -> Option<String> {
        if let Ok(r) = self.reserved_names.lock() {
            if let Some(id) = r.get(name) {
                return Some(id.clone());
            }
        }
        self.all_containers()
            .into_iter()
            .find(|c| c.lock().name == name)
            .map(|c| c.id.clone())
    }

    pub fn insert(&self, c: Arc<Container>) {
        if let Ok(mut m) = self.containers.write() {
            m.insert(c.id.clone(), c);
        }
    }

    pub fn forget(&self, id: &str) {
        if let Ok(mut m) = self.containers.write() {
            m.remove(id);
        }
    }

    pub fn emit_container(&self, rec: &ContainerRecord, action: &str) {
        self.events
            .emit("container", action, &rec.id, rec.event_attrs());
    }
}
