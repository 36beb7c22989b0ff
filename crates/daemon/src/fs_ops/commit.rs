//! `docker commit`: a new image from a container, its parent's layers plus one layer made of
//! the container's overlay upper directory.
//!
//! The layer tar is written once to a staging file (its digest is the DiffID), stored
//! gzip-compressed in the content store and unpacked as a snapshot on top of the parent's
//! chain, so the new image runs at once without a pull or unpack. The config is the parent's
//! with the container's config (or the one the request gives, completed from the container's
//! as Docker's `merge` does) and the `changes` applied, a history entry and the new DiffID.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use berth_api::models::ContainerConfig;
use berth_image::digest::Digest;
use berth_image::manifest::{media_types as mt, MAX_CONFIG_SIZE};
use berth_image::reference::Reference;
use berth_image::snapshot::{chain_id, SnapshotError};
use berth_image::store::{ImageRecord, LayerRecord};
use berth_image::unpack::{unpack_layer, Compression};
use serde_json::{json, Value};

use crate::container::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo` and `tag`, already parsed; None leaves the image untagged.
    pub reference: Option<Reference>,
    pub comment: String,
    pub author: String,
    /// Dockerfile-like instructions (`CMD ["sh"]`, `ENV A=b`…).
    pub changes: Vec<String>,
    /// A config from the request body, completed from the container's.
    pub config: Option<ContainerConfig>,
}

/// Parses `repo`/`tag` as Docker does: no repo means no tag; a repo with a digest or a tag
/// that is not one is refused.
pub fn parse_reference(repo: &str, tag: &str) -> ApiResult<Option<Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let s = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    let r = Reference::parse(&s)
        .map_err(|e| ApiError::invalid(format!("invalid reference format: {e}")))?;
    if r.digest().is_some() {
        return Err(ApiError::invalid(
            "invalid reference format: a commit cannot be tagged with a digest",
        ));
    }
    Ok(Some(r))
}

fn env_key(e: &str) -> &str {
    e.split('=').next().unwrap_or(e)
}

/// Docker's `merge(userConf, imageConf)`: fills what the user's config leaves empty from the
/// container's.
pub fn merge(user: &mut ContainerConfig, base: &ContainerConfig) {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for p in b {
                if !u.contains(p) {
                    u.push(p.clone());
                }
            }
        }
        // The user's own list stays when the container's has none.
        (Some(u), None) if !u.is_empty() => {}
        (u, b) => *u = b.clone(),
    }
    match (&mut user.env, &base.env) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for e in b {
                if !u.iter().any(|x| env_key(x) == env_key(e)) {
                    u.push(e.clone());
                }
            }
        }
        // The user's own list stays when the container's has none.
        (Some(u), None) if !u.is_empty() => {}
        (u, b) => *u = b.clone(),
    }
    let labels = user.labels.get_or_insert_with(HashMap::new);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = base.cmd.clone();
            user.args_escaped = base.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = base.healthcheck.clone();
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for v in b {
                if !u.contains(v) {
                    u.push(v.clone());
                }
            }
        }
        // The user's own list stays when the container's has none.
        (Some(u), None) if !u.is_empty() => {}
        (u, b) => *u = b.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

/// The runtime config of the new image: the request's (or the container's) with `changes`
/// applied, completed from the container's.
pub fn image_config(rec: &ContainerRecord, opts: &CommitOptions) -> ApiResult<ContainerConfig> {
    let user = opts.config.clone().unwrap_or_else(|| rec.config.clone());
    let mut v = match serde_json::to_value(&user) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::internal("encode container config")),
    };
    berth_image::archive::apply_changes(&opts.changes, &mut v)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut user: ContainerConfig = serde_json::from_value(Value::Object(v))
        .map_err(|e| ApiError::invalid(format!("invalid config after changes: {e}")))?;
    merge(&mut user, &rec.config);
    Ok(user)
}

/// The overlay directories of a container's root filesystem mount: upper (None for a
/// read-only view) and lowers, top first.
pub fn overlay_dirs(spec: &berth_image::snapshot::MountSpec) -> (Option<PathBuf>, Vec<PathBuf>) {
    if spec.fstype == "bind" {
        return (None, vec![PathBuf::from(&spec.source)]);
    }
    let mut upper = None;
    let mut lowers = Vec::new();
    for o in &spec.options {
        if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(u));
        } else if let Some(l) = o.strip_prefix("lowerdir=") {
            lowers = l.split(':').map(PathBuf::from).collect();
        }
    }
    (upper, lowers)
}

/// Removes the staging directory when the commit is done, whatever happened.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> String {
    crate::util::now_rfc3339()
}

/// Makes the image; blocking (diff, compress, unpack). Returns its record and tags.
pub fn commit(d: &Daemon, rec: &ContainerRecord, opts: &CommitOptions) -> ApiResult<ImageRecord> {
    let config = image_config(rec, opts)?;
    let parent = d
        .images
        .get(&rec.image)?
        .ok_or_else(|| ApiError::not_found(format!("No such image: {}", rec.image)))?;
    let parent_cfg_bytes = d
        .content
        .read_blob(&parent.config_digest, MAX_CONFIG_SIZE)?;
    let mut cfg: Value = serde_json::from_slice(&parent_cfg_bytes)
        .map_err(|e| ApiError::internal(format!("parse config of image {}: {e}", parent.id())))?;
    if !cfg.is_object() {
        return Err(ApiError::internal(format!(
            "config of image {} is not an object",
            parent.id()
        )));
    }
    let spec = rec.rootfs.as_ref().ok_or_else(|| {
        ApiError::internal(format!("container {} has no root filesystem", rec.id))
    })?;
    let (upper, _) = overlay_dirs(spec);

    // The layer tar, once, on the snapshots' filesystem.
    let staging = Staging(d.snapshots.staging_dir()?);
    let tar_path = staging.0.join("layer.tar");
    let (diff_id, tar_size) = write_layer(upper.as_deref(), &tar_path)?;

    let f = File::open(&tar_path)
        .map_err(|e| ApiError::internal(format!("open {}: {e}", tar_path.display())))?;
    let gz = berth_image::compress::ParallelGzip::fast(f);
    let (layer_digest, layer_size) = d.content.ingest(None, None, gz)?;

    // The snapshot of the new chain, so containers of the new image start without an unpack.
    let mut diff_ids: Vec<Digest> = parent.layers.iter().map(|l| l.diff_id.clone()).collect();
    let parent_chain = (!diff_ids.is_empty()).then(|| chain_id(&diff_ids));
    diff_ids.push(diff_id.clone());
    let new_chain = chain_id(&diff_ids);
    d.snapshots
        .prepare_layer(&new_chain, parent_chain.as_ref(), |dir| {
            let f = File::open(&tar_path).map_err(|e| SnapshotError::unpack(&new_chain, e))?;
            unpack_layer(f, Some(Compression::None), dir)
                .map(drop)
                .map_err(|e| SnapshotError::unpack(&new_chain, e))
        })?;

    let created = now();
    let cfg_obj = cfg
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("image config is not an object"))?;
    cfg_obj.insert(
        "config".into(),
        serde_json::to_value(&config).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    cfg_obj.insert(
        "container_config".into(),
        serde_json::to_value(&rec.config).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    cfg_obj.insert("container".into(), json!(rec.id));
    cfg_obj.insert("created".into(), json!(created));
    for (k, v) in [("author", &opts.author), ("comment", &opts.comment)] {
        if v.is_empty() {
            cfg_obj.remove(k);
        } else {
            cfg_obj.insert(k.into(), json!(v));
        }
    }
    cfg_obj.remove("id");
    cfg_obj.remove("parent");
    let rootfs = cfg_obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    rootfs["type"] = json!("layers");
    rootfs["diff_ids"] = json!(diff_ids.iter().map(Digest::as_str).collect::<Vec<_>>());
    let mut h = serde_json::Map::new();
    h.insert("created".into(), json!(created));
    if !opts.author.is_empty() {
        h.insert("author".into(), json!(opts.author));
    }
    h.insert(
        "created_by".into(),
        json!(rec.config.cmd.clone().unwrap_or_default().join(" ")),
    );
    if !opts.comment.is_empty() {
        h.insert("comment".into(), json!(opts.comment));
    }
    match cfg_obj.get_mut("history").and_then(Value::as_array_mut) {
        Some(a) => a.push(Value::Object(h)),
        None => {
            cfg_obj.insert("history".into(), json!([h]));
        }
    }
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| ApiError::internal(e.to_string()))?;
    let config_digest = d.content.put_bytes(&cfg_bytes)?;

    // The manifest keeps the parent's family (Docker schema2 or OCI) so a push sends what a
    // registry expects for the parent's layers.
    let docker = parent
        .manifest_media_type
        .as_deref()
        .is_some_and(|m| m == mt::DOCKER_MANIFEST);
    let (manifest_mt, config_mt, layer_mt) = if docker {
        (
            mt::DOCKER_MANIFEST,
            mt::DOCKER_CONFIG,
            mt::DOCKER_LAYER_GZIP,
        )
    } else {
        (mt::OCI_MANIFEST, mt::OCI_CONFIG, mt::OCI_LAYER_GZIP)
    };
    let mut layers = parent.layers.clone();
    layers.push(LayerRecord {
        digest: layer_digest,
        diff_id,
        media_type: layer_mt.to_string(),
        size: layer_size,
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_mt,
        "config": {"mediaType": config_mt, "size": cfg_bytes.len(), "digest": config_digest.as_str()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type, "size": l.size, "digest": l.digest.as_str()
        })).collect::<Vec<_>>(),
    });
    let m_bytes = serde_json::to_vec(&manifest).map_err(|e| ApiError::internal(e.to_string()))?;
    let manifest_digest = d.content.put_bytes(&m_bytes)?;
    let record = ImageRecord {
        config_digest,
        manifest_digest: Some(manifest_digest),
        manifest_media_type: Some(manifest_mt.to_string()),
        layers,
        chain_id: Some(new_chain),
        repo_digests: Vec::new(),
        created,
        size: parent.size + tar_size,
        parent: Some(parent.config_digest.clone()),
    };
    let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
    d.images.put(&record, &tags)?;
    Ok(record)
}

/// Writes the layer tar of `upper` (an empty layer without one) to `path`; its DiffID and size.
fn write_layer(upper: Option<&Path>, path: &Path) -> ApiResult<(Digest, u64)> {
    let f = File::create(path)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", path.display())))?;
    let mut w = BufWriter::new(f);
    let diff_id = match upper {
        Some(u) => berth_image::diff::diff_upper(u, &mut w),
        None => {
            let empty = tempfile_dir(path)?;
            berth_image::diff::tar_dir(&empty, &mut w)
        }
    }
    .map_err(|e| ApiError::internal(format!("commit: {e}")))?;
    let f = w
        .into_inner()
        .map_err(|e| ApiError::internal(format!("write {}: {e}", path.display())))?;
    f.sync_all()
        .map_err(|e| ApiError::internal(format!("sync {}: {e}", path.display())))?;
    let size = f
        .metadata()
        .map_err(|e| ApiError::internal(format!("stat {}: {e}", path.display())))?
        .len();
    Ok((diff_id, size))
}

/// An empty directory next to `path`, for the layer of a container without an upper dir.
fn tempfile_dir(path: &Path) -> ApiResult<PathBuf> {
    let p = path.with_extension("empty");
    std::fs::create_dir_all(&p)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", p.display())))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> ContainerConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn merge_completes_the_users_config() {
        let base = cfg(json!({
            "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "User": "1",
            "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/w"
        }));
        let mut user =
            cfg(json!({"Env": ["A=2"], "Labels": {"b": "2"}, "ExposedPorts": {"53/udp": {}}}));
        merge(&mut user, &base);
        assert_eq!(
            user.env.unwrap(),
            vec!["A=2".to_string(), "PATH=/bin".to_string()]
        );
        assert_eq!(user.cmd.unwrap(), vec!["sh".to_string()]);
        assert_eq!(user.user.as_deref(), Some("1"));
        assert_eq!(user.working_dir.as_deref(), Some("/w"));
        let l = user.labels.unwrap();
        assert_eq!((l["a"].as_str(), l["b"].as_str()), ("1", "2"));
        let mut p = user.exposed_ports.unwrap();
        p.sort();
        assert_eq!(p, vec!["53/udp".to_string(), "80/tcp".to_string()]);

        // The user's own ports, env and volumes stay when the container has none (a commit
        // with `--change EXPOSE 8000` of a container without exposed ports).
        let mut user =
            cfg(json!({"Env": ["A=2"], "ExposedPorts": {"8000/tcp": {}}, "Volumes": {"/v": {}}}));
        merge(&mut user, &cfg(json!({})));
        assert_eq!(user.exposed_ports.unwrap(), vec!["8000/tcp".to_string()]);
        assert_eq!(user.env.unwrap(), vec!["A=2".to_string()]);
        assert_eq!(user.volumes.unwrap(), vec!["/v".to_string()]);

        // A user Cmd wins; an Entrypoint of the user's keeps the base Cmd out.
        let mut user = cfg(json!({"Entrypoint": ["/init"]}));
        merge(&mut user, &base);
        assert!(user.cmd.is_none());
    }

    #[test]
    fn references() {
        assert!(parse_reference("", "x").unwrap().is_none());
        let r = parse_reference("localhost:5000/a", "v1").unwrap().unwrap();
        assert_eq!(r.to_string(), "localhost:5000/a:v1");
        assert!(parse_reference("UPPER", "").is_err());
        assert!(parse_reference("a", "bad tag!").is_err());
    }
}
