//! The container record: what was asked (config, host config), what it became (image, mounts,
//! snapshot), and its lifecycle status, saved atomically as `containers/<id>/container.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::models::{ContainerConfig, HostConfig, MountPoint};
use berth_image::snapshot::MountSpec;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Restarting)
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_unpause(self) -> bool {
        self == Status::Paused
    }
    pub fn can_exec(self) -> bool {
        self == Status::Running
    }
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
}

/// A health check's state, as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    #[serde(default)]
    pub health: Option<HealthState>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: crate::util::ZERO_TIME.into(),
            finished_at: crate::util::ZERO_TIME.into(),
            oom_killed: false,
            health: None,
        }
    }
}

/// A volume or bind the container mounts, resolved at create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRecord {
    /// "bind", "volume" or "tmpfs".
    pub typ: String,
    /// Volume name (for volumes).
    pub name: String,
    /// Host path (bind source, or the volume's `_data`).
    pub source: PathBuf,
    pub destination: String,
    pub rw: bool,
    /// Options as given (`ro`, `z`, `nocopy`, tmpfs size…).
    pub mode: String,
    pub options: Vec<String>,
    /// Copy the image's content at the destination into an empty volume on first use.
    pub copy_up: bool,
    pub anonymous: bool,
    /// The part of the volume mounted (Mount's VolumeOptions.Subpath), relative to its _data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

impl MountRecord {
    /// The host path to mount: the source, or for a volume with a subpath that directory of
    /// it, resolved (symlinks followed) and refused unless it exists inside the volume.
    pub fn resolved_source(&self) -> Result<PathBuf, String> {
        if self.subpath.is_empty() {
            return Ok(self.source.clone());
        }
        let base = std::fs::canonicalize(&self.source)
            .map_err(|e| format!("volume {} at {}: {e}", self.name, self.source.display()))?;
        let p = std::fs::canonicalize(self.source.join(&self.subpath)).map_err(|e| {
            format!(
                "cannot access path {}: subpath {:?} of volume {}: {e}",
                self.source.join(&self.subpath).display(),
                self.subpath,
                self.name
            )
        })?;
        if !p.starts_with(&base) {
            return Err(format!(
                "subpath {:?} of volume {} resolves to {}, outside the volume",
                self.subpath,
                self.name,
                p.display()
            ));
        }
        Ok(p)
    }

    /// The propagation mode given in the options (`rshared`, `slave`…), if any.
    pub fn propagation(&self) -> Option<&str> {
        self.options.iter().map(String::as_str).find(|o| {
            matches!(
                *o,
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
            )
        })
    }

    pub fn to_api(&self) -> MountPoint {
        MountPoint {
            typ: Some(self.typ.clone()),
            name: (self.typ == "volume").then(|| self.name.clone()),
            source: Some(if self.typ == "tmpfs" {
                String::new()
            } else {
                self.source.to_string_lossy().into_owned()
            }),
            destination: Some(self.destination.clone()),
            driver: (self.typ == "volume").then(|| "local".to_string()),
            mode: Some(self.mode.clone()),
            rw: Some(self.rw),
            propagation: Some(if self.typ == "bind" {
                self.propagation().unwrap_or("rprivate").to_string()
            } else {
                String::new()
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The image ID (`sha256:…`).
    pub image: String,
    /// The image as the user named it.
    pub image_name: String,
    /// The config after the image's defaults were merged in.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub mounts: Vec<MountRecord>,
    /// The writable layer's mount (overlay over the image's snapshots).
    pub rootfs: Option<MountSpec>,
    pub restart_count: i64,
    /// Stopped by a user (stop/kill): restart policies leave it alone.
    pub manually_stopped: bool,
    pub has_been_started: bool,
    /// Shim of the current run, for re-adoption after a daemon restart.
    pub shim_pid: i32,
    #[serde(default)]
    pub log_path: PathBuf,
    /// The networks the container is connected to, the primary (`NetworkMode`) first.
    #[serde(default)]
    pub networks: Vec<Attachment>,
    /// Host ports bound for the current run.
    #[serde(default)]
    pub published: Vec<crate::network::ports::Published>,
    /// The network namespace file berthd made for the current run (bridge networking).
    #[serde(default)]
    pub netns: Option<PathBuf>,
}

/// A container's membership of a network, as configured (create, connect); the live endpoint
/// (address, veth) is in the network's record while the container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network_id: String,
    pub aliases: Vec<String>,
    /// `--ip`: asked for at every start.
    pub ipv4: Option<std::net::Ipv4Addr>,
    /// `--ip6`: asked for at every start on IPv6 networks (echoed only on the others).
    #[serde(default)]
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// Links on a user network (`container:alias`, as given): the alias resolves to that
    /// container for this one only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `--mac-address` on this network (`02:42:...`), instead of the one derived from the
    /// address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `--link-local-ip`: further addresses on the interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local: Vec<std::net::IpAddr>,
    /// The endpoint's driver options, kept and reported as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

pub const RECORD_FILE: &str = "container.json";

impl ContainerRecord {
    pub fn save(&self, dir: &Path) -> ApiResult<()> {
        self.save_with(dir, true)
    }

    /// Saves without fsync: for status changes, which restore re-derives from the shim.
    pub fn save_fast(&self, dir: &Path) -> ApiResult<()> {
        self.save_with(dir, false)
    }

    fn save_with(&self, dir: &Path, durable: bool) -> ApiResult<()> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| ApiError::internal(format!("encode container {}: {e}", self.id)))?;
        crate::util::write_replace(&dir.join(RECORD_FILE), &bytes, durable)
            .map_err(|e| ApiError::internal(format!("save container {}: {e}", self.id)))
    }

    pub fn load(dir: &Path) -> ApiResult<ContainerRecord> {
        let p = dir.join(RECORD_FILE);
        let bytes = std::fs::read(&p)
            .map_err(|e| ApiError::internal(format!("read {}: {e}", p.display())))?;
        let rec: ContainerRecord = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::internal(format!("corrupt container record {}: {e}", p.display()))
        })?;
        // The id names directories and the shim socket: a record that does not carry the id
        // of its own directory is refused rather than followed elsewhere.
        let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !crate::util::is_container_id(&rec.id) || rec.id != dir_name {
            return Err(ApiError::internal(format!(
                "container record {} names id {:?}, not its directory's",
                p.display(),
                rec.id
            )));
        }
        Ok(rec)
    }

    pub fn labels(&self) -> std::collections::HashMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }

    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }

    /// The command line as `docker ps` shows it.
    pub fn command(&self) -> String {
        let mut v = vec![self.path.clone()];
        v.extend(self.args.iter().cloned());
        v.join(" ")
    }

    /// Attributes of this container's events: image, name and labels.
    pub fn event_attrs(&self) -> std::collections::HashMap<String, String> {
        let mut a = self.labels();
        a.insert("image".into(), self.image_name.clone());
        a.insert("name".into(), self.name.clone());
        a
    }
}

/// Docker's `--name` rule.
pub fn validate_name(name: &str) -> ApiResult<()> {
    let ok = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    let single = name.len() == 1 && name.chars().all(|c| c.is_ascii_alphanumeric());
    if ok || single {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Paused.can_kill());
        assert!(!Status::Exited.can_kill());
        assert!(!Status::Running.can_remove());
        assert!(Status::Dead.can_remove());
    }

    #[test]
    fn names() {
        assert!(validate_name("web_1").is_ok());
        assert!(validate_name("a").is_ok());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
    }
}
