//! Image services: resolving names (for the container side too), the list, inspect and history
//! views, tag and remove, prune with garbage collection, import, `docker save`/`docker load`,
//! pull and push with Docker's progress lines, and registry login.
//!
//! Only [`crate::routes::images`] knows HTTP; here a failure is an [`ApiError`] whose kind the
//! error module maps to a status. Pull and push are split in two: a `prepare_*` step that does
//! everything that can fail before the first byte of the reply (bad reference, unknown
//! repository, image missing locally), so those failures are plain HTTP errors as Docker's are,
//! and a `run` step that writes progress lines and reports later failures in the stream.
//!
//! Garbage collection (after rmi and prune) deletes blobs and layer snapshots no image record
//! names. Writers add blobs and snapshots before the record that names them, so they hold
//! [`Daemon::image_gc`] shared while they work and the collector holds it exclusively.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth_api::filters::Filters;
use berth_api::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse, ImageSummary,
};
use berth_api::version::ApiVersion;
use berth_distribution::pull::{Progress, PullOptions, Stores};
use berth_distribution::push::PushProgress;
use berth_distribution::{
    ClientConfig, Credential, CredentialsSource, ErrorKind, PushOutcome, RegistryClient,
    RegistryError, Repository,
};
use berth_image::archive::{self, ArchiveError, ArchiveImage, LoadedImage};
use berth_image::digest::Digest;
use berth_image::manifest::{self, ManifestKind};
use berth_image::platform::{self, Platform};
use berth_image::reference::Reference;
use berth_image::snapshot::{chain_id, SnapshotError};
use berth_image::store::{ImageRecord, LayerRecord};
use berth_image::unpack::{unpack_layer, Compression};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, Kind};
use crate::state::Daemon;

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker shows names.
pub fn familiar(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_string(),
    }
}

/// The repository of a reference as Docker prints it: `busybox`, `user/app`, `host:5000/a/b`.
pub fn familiar_name(r: &Reference) -> String {
    if r.domain() == berth_image::reference::DOCKER_HUB_DOMAIN {
        match r.path().strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => r.path().to_string(),
        }
    } else {
        r.repository()
    }
}

/// The image's 12-hex short id.
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

/// A name as Docker words it in "No such image: …": references in familiar form with their
/// tag (`nope` → `nope:latest`), ids and anything else as given.
pub fn name_for_message(name: &str) -> String {
    let hexish = name
        .strip_prefix("sha256:")
        .unwrap_or(name)
        .bytes()
        .all(|b| b.is_ascii_hexdigit());
    match Reference::parse(name) {
        Ok(r) if !hexish => r.familiar(),
        _ => name.to_string(),
    }
}

/// Finds a local image by reference, id, `sha256:` id or unique id prefix; 404 in Docker's
/// words otherwise (docker-py raises `ImageNotFound` only on "No such image").
pub fn resolve(d: &Daemon, name: &str) -> ApiResult<ImageRecord> {
    if name.is_empty() {
        return Err(ApiError::not_found("No such image: "));
    }
    d.images.resolve(name).map_err(|e| match e {
        berth_image::store::StoreError::NotFound(_) => {
            ApiError::not_found(format!("No such image: {}", name_for_message(name)))
        }
        other => other.into(),
    })
}

/// The image's config blob as JSON (kept whole so inspect passes every field through).
pub fn read_config(d: &Daemon, rec: &ImageRecord) -> ApiResult<Value> {
    let bytes = d
        .content
        .read_blob(&rec.config_digest, manifest::MAX_CONFIG_SIZE)
        .map_err(|e| ApiError::internal(format!("read config of image {}: {e}", rec.id())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("parse config of image {}: {e}", rec.id())))
}

fn labels_of(cfg: &Value) -> HashMap<String, String> {
    cfg.pointer("/config/Labels")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn created_of(rec: &ImageRecord, cfg: &Value) -> String {
    cfg.get("created")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| rec.created.clone())
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The image's tags, familiar and sorted.
pub fn repo_tags(d: &Daemon, id: &str) -> ApiResult<Vec<String>> {
    let mut v: Vec<String> = d.images.tags_of(id)?.iter().map(|t| familiar(t)).collect();
    v.sort();
    Ok(v)
}

fn repo_digests(rec: &ImageRecord) -> Vec<String> {
    rec.repo_digests.iter().map(|r| familiar(r)).collect()
}

/// Containers whose image is `id`: (container id, running).
fn image_users(d: &Daemon, id: &str) -> Vec<(String, bool)> {
    d.all_containers()
        .into_iter()
        .filter_map(|c| {
            let r = c.lock();
            (r.image == id).then(|| (c.id.clone(), r.state.status.is_running()))
        })
        .collect()
}

fn image_event(d: &Daemon, action: &str, id: &str, name: &str, labels: HashMap<String, String>) {
    let mut attrs = labels;
    attrs.insert("name".into(), name.to_string());
    d.events.emit("image", action, id, attrs);
}

// ---------------------------------------------------------------------------------------------
// List

/// One entry of `GET /images/json`: the generated summary plus `VirtualSize`, which API < 1.44
/// clients (CLI 20.10 shows it as SIZE) still read and the 1.52 types dropped.
#[derive(Debug, Clone, Serialize)]
pub struct ImageListEntry {
    #[serde(flatten)]
    pub summary: ImageSummary,
    #[serde(rename = "VirtualSize", skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
}

pub const LIST_FILTERS: &[&str] = &[
    "dangling",
    "label",
    "label!",
    "reference",
    "before",
    "since",
    "until",
];

fn dangling_filter(f: &Filters) -> ApiResult<Option<bool>> {
    match f.get("dangling") {
        [] => Ok(None),
        vals => {
            let mut want = None;
            for v in vals {
                let b = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ApiError::invalid(format!("Invalid filter 'dangling={v}'"))),
                };
                want = Some(b);
            }
            Ok(want)
        }
    }
}

/// Docker's `label` and `label!` image filters.
fn labels_match(f: &Filters, labels: &HashMap<String, String>) -> bool {
    let hit = |cond: &str| match cond.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(cond),
    };
    f.match_labels(labels) && !f.get("label!").iter().any(|c| hit(c))
}

/// Parses `until`/`before`-style times: unix seconds (maybe fractional), RFC 3339, or a Go
/// duration (`10m`, `1h30m`) meaning that long ago. Returns unix nanoseconds.
pub fn parse_until(s: &str, now_nanos: i64) -> Option<i64> {
    if let Some(n) = crate::events::parse_time_nanos(s) {
        return Some(n);
    }
    parse_go_duration(s).map(|d| now_nanos - i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * secs;
    }
    Some(Duration::from_secs_f64(total))
}

/// `path.Match` of Go, which Docker's `reference` filter uses: `*` and `?` never match `/`.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| rec(&p[1..], &s[i..])),
            Some('?') => s.first().is_some_and(|c| *c != '/') && rec(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return false;
                };
                let Some(c) = s.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^' | '!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && rec(&p[end + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && rec(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    rec(&p, &s)
}

/// Docker's `reference.FamiliarMatch`: the pattern against the familiar `name:tag`, and
/// against the familiar name alone.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let Ok(r) = Reference::parse(tag) else {
        return false;
    };
    glob_match(pattern, &r.familiar()) || glob_match(pattern, &familiar_name(&r))
}

/// `GET /images/json`: newest first.
pub fn list(d: &Daemon, f: &Filters, v: ApiVersion) -> ApiResult<Vec<ImageListEntry>> {
    f.validate(LIST_FILTERS)?;
    let dangling = dangling_filter(f)?;
    let now = crate::events::now_nanos();
    let time_of = |key: &str| -> ApiResult<Option<i64>> {
        match f.get(key).first() {
            None => Ok(None),
            Some(name) => {
                let rec = resolve(d, name)?;
                let cfg = read_config(d, &rec)?;
                Ok(Some(
                    crate::util::parse_rfc3339_nanos(&created_of(&rec, &cfg)).unwrap_or(0),
                ))
            }
        }
    };
    let before = time_of("before")?;
    let since = time_of("since")?;
    let until = match f.get("until").first() {
        None => None,
        Some(u) => Some(
            parse_until(u, now)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for until: {u:?}")))?,
        ),
    };
    let all_tags = d.images.tags()?;
    let mut out: Vec<(i64, ImageListEntry)> = Vec::new();
    for rec in d.images.list()? {
        let cfg = read_config(d, &rec)?;
        let created_ns = crate::util::parse_rfc3339_nanos(&created_of(&rec, &cfg)).unwrap_or(0);
        let labels = labels_of(&cfg);
        let mut tags: Vec<String> = all_tags
            .iter()
            .filter(|(_, id)| id == rec.id())
            .map(|(t, _)| t.clone())
            .collect();
        let untagged = tags.is_empty();
        let mut digests = repo_digests(&rec);
        if dangling.is_some_and(|want| want != untagged)
            || before.is_some_and(|b| created_ns >= b)
            || since.is_some_and(|s| created_ns <= s)
            || until.is_some_and(|u| created_ns >= u)
            || !labels_match(f, &labels)
        {
            continue;
        }
        if f.contains("reference") {
            tags.retain(|t| f.get("reference").iter().any(|p| reference_matches(p, t)));
            digests.retain(|t| f.get("reference").iter().any(|p| reference_matches(p, t)));
            if tags.is_empty() && digests.is_empty() {
                continue;
            }
        }
        let mut tags: Vec<String> = tags.iter().map(|t| familiar(t)).collect();
        tags.sort();
        // API < 1.43 marks an image with neither tags nor digests with `<none>` placeholders;
        // newer clients get empty lists.
        if !v.at_least(1, 43) && tags.is_empty() && digests.is_empty() {
            tags.push("<none>:<none>".into());
            digests.push("<none>@<none>".into());
        }
        let size = size_i64(rec.size);
        let summary = ImageSummary {
            id: rec.id().to_string(),
            parent_id: rec
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            repo_tags: tags,
            repo_digests: digests,
            created: created_ns / 1_000_000_000,
            size,
            shared_size: -1,
            labels,
            containers: -1,
            manifests: None,
            descriptor: None,
        };
        out.push((
            created_ns,
            ImageListEntry {
                summary,
                virtual_size: (!v.at_least(1, 44)).then_some(size),
            },
        ));
    }
    out.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.summary.id.cmp(&b.1.summary.id))
    });
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

// ---------------------------------------------------------------------------------------------
// Inspect and history

/// `GET /images/{name}/json`, with the fields API ≤ 1.51 clients read that the 1.52 types
/// dropped. `ContainerConfig` is always there (compose 1.29 reads `ContainerConfig.Volumes` and
/// fails with a KeyError without it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspectBody {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub container_config: Value,
    pub docker_version: String,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    pub graph_driver: Value,
    #[serde(rename = "RootFS")]
    pub root_fs: Value,
    pub metadata: Value,
}

pub fn inspect(d: &Daemon, rec: &ImageRecord, v: ApiVersion) -> ApiResult<ImageInspectBody> {
    let cfg = read_config(d, rec)?;
    let s = |k: &str| cfg.get(k).and_then(Value::as_str).map(str::to_string);
    let object_or_empty = |x: Option<&Value>| match x {
        Some(o @ Value::Object(_)) => o.clone(),
        _ => json!({}),
    };
    let created = created_of(rec, &cfg);
    let size = size_i64(rec.size);
    Ok(ImageInspectBody {
        id: rec.id().to_string(),
        repo_tags: repo_tags(d, rec.id())?,
        repo_digests: repo_digests(rec),
        parent: rec
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        comment: s("comment").unwrap_or_default(),
        created: (!created.is_empty()).then_some(created),
        container: (!v.at_least(1, 45)).then(|| s("container").unwrap_or_default()),
        container_config: object_or_empty(cfg.get("container_config")),
        docker_version: s("docker_version").unwrap_or_default(),
        author: s("author").unwrap_or_default(),
        config: object_or_empty(cfg.get("config")),
        architecture: s("architecture").unwrap_or_default(),
        variant: s("variant"),
        os: s("os").unwrap_or_default(),
        os_version: s("os.version"),
        size,
        virtual_size: (!v.at_least(1, 44)).then_some(size),
        graph_driver: json!({"Name": "overlay2", "Data": {}}),
        root_fs: json!({
            "Type": "layers",
            "Layers": rec.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        }),
        metadata: json!({"LastTagTime": crate::util::ZERO_TIME}),
    })
}

/// `GET /images/{name}/history`: newest first; the top entry carries the image's id and tags,
/// older ones `<missing>` (their images are not stored separately), as Docker shows a pulled
/// image.
pub fn history(d: &Daemon, rec: &ImageRecord) -> ApiResult<Vec<ImageHistoryResponseItem>> {
    let cfg = read_config(d, rec)?;
    let entries: Vec<Value> = cfg
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut layer = 0usize;
    if entries.is_empty() {
        // No history recorded: one line per layer.
        for l in &rec.layers {
            out.push(ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: 0,
                created_by: String::new(),
                tags: Vec::new(),
                size: size_i64(l.size),
                comment: String::new(),
            });
        }
    }
    for h in &entries {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            let s = rec.layers.get(layer).map_or(0, |l| size_i64(l.size));
            layer += 1;
            s
        };
        let text = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        out.push(ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: crate::util::rfc3339_secs(&text("created")),
            created_by: text("created_by"),
            tags: Vec::new(),
            size,
            comment: text("comment"),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = rec.id().to_string();
        top.tags = repo_tags(d, rec.id())?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Tag and remove

/// `repo` and `tag` as `POST /images/{name}/tag` and import take them (the CLI sends `repo` in
/// long form, maybe with the tag in it when `tag` is empty).
pub fn target_reference(repo: &str, tag: &str) -> ApiResult<Reference> {
    if repo.is_empty() {
        return Err(ApiError::invalid(
            "invalid reference format: repository name is empty",
        ));
    }
    let s = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    let r = Reference::parse(&s)?;
    if r.digest().is_some() {
        return Err(ApiError::invalid(
            "refusing to create a tag with a digest reference",
        ));
    }
    Ok(r)
}

/// `docker tag SOURCE TARGET`.
pub fn tag(d: &Daemon, source: &str, repo: &str, tag: &str) -> ApiResult<()> {
    let target = target_reference(repo, tag)?;
    let img = resolve(d, source)?;
    d.images.tag(img.id(), &target)?;
    let labels = read_config(d, &img)
        .map(|c| labels_of(&c))
        .unwrap_or_default();
    image_event(d, "tag", img.id(), &target.familiar(), labels);
    Ok(())
}

/// `docker rmi`: Docker's conflict rules on top of the store's untag/delete, then garbage
/// collection of what the deleted image alone used. The caller holds `image_gc` exclusively.
pub fn remove(d: &Daemon, name: &str, force: bool) -> ApiResult<Vec<ImageDeleteResponseItem>> {
    let img = resolve(d, name)?;
    let id = img.id().to_string();
    let tags = d.images.tags_of(&id)?;
    let by_tag = Reference::parse(name)
        .ok()
        .is_some_and(|r| tags.contains(&r.to_string()));
    let users = image_users(d, &id);
    if !by_tag && (tags.len() <= 1 || force) {
        if let Some((c, _)) = users.iter().find(|(_, running)| *running) {
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short_id(&id),
                short_id(c)
            )));
        }
        if let Some((c, _)) = users.first().filter(|_| !force) {
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                short_id(&id),
                short_id(c)
            )));
        }
    }
    let target = if by_tag { name.to_string() } else { id.clone() };
    let labels = read_config(d, &img)
        .map(|c| labels_of(&c))
        .unwrap_or_default();
    let report = d.images.remove(&target, force)?;
    let mut out = Vec::new();
    for t in &report.untagged {
        image_event(d, "untag", &id, &id, labels.clone());
        out.push(ImageDeleteResponseItem {
            untagged: Some(t.clone()),
            deleted: None,
        });
    }
    for del in &report.deleted {
        image_event(d, "delete", del, del, labels.clone());
        out.push(ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(del.clone()),
        });
    }
    if !report.deleted.is_empty() {
        gc(d)?;
    }
    Ok(out)
}

/// Deletes every blob and layer snapshot no image record needs; returns the bytes of blobs
/// freed. The caller holds `image_gc` exclusively.
pub fn gc(d: &Daemon) -> ApiResult<u64> {
    let live = d.images.live_blobs()?;
    let mut freed = 0u64;
    for b in d.content.list()? {
        if !live.contains(&b) {
            freed += d.content.size(&b)?.unwrap_or(0);
        }
    }
    d.images.gc_blobs(&d.content)?;
    d.images.gc_snapshots(&d.snapshots)?;
    Ok(freed)
}

pub const PRUNE_FILTERS: &[&str] = &["dangling", "until", "label", "label!"];

/// `POST /images/prune`: untagged images no container uses (all unused ones with
/// `dangling=false`), filtered by `until` and labels; then garbage collection. The caller
/// holds `image_gc` exclusively.
pub fn prune(d: &Daemon, f: &Filters) -> ApiResult<ImagePruneResponse> {
    f.validate(PRUNE_FILTERS)?;
    let dangling_only = dangling_filter(f)?.unwrap_or(true);
    let now = crate::events::now_nanos();
    let until = match f.get("until").first() {
        None => None,
        Some(u) => Some(
            parse_until(u, now)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for until: {u:?}")))?,
        ),
    };
    let used: HashSet<String> = d
        .all_containers()
        .into_iter()
        .map(|c| c.lock().image.clone())
        .collect();
    let mut deleted = Vec::new();
    for rec in d.images.list()? {
        let id = rec.id().to_string();
        if used.contains(&id) {
            continue;
        }
        let tags = d.images.tags_of(&id)?;
        if dangling_only && !tags.is_empty() {
            continue;
        }
        let cfg = read_config(d, &rec)?;
        let created = crate::util::parse_rfc3339_nanos(&created_of(&rec, &cfg)).unwrap_or(0);
        let labels = labels_of(&cfg);
        if until.is_some_and(|u| created >= u) || !labels_match(f, &labels) {
            continue;
        }
        // Forced: only so an image with several tags goes too; nothing uses it.
        let report = d.images.remove(&id, true)?;
        for t in report.untagged {
            image_event(d, "untag", &id, &id, labels.clone());
            deleted.push(ImageDeleteResponseItem {
                untagged: Some(t),
                deleted: None,
            });
        }
        for del in report.deleted {
            image_event(d, "delete", &del, &del, labels.clone());
            deleted.push(ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(del),
            });
        }
    }
    let freed = gc(d)?;
    Ok(ImagePruneResponse {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: Some(size_i64(freed)),
    })
}

// ---------------------------------------------------------------------------------------------
// Layers into snapshots, records of stored images

/// Unpacks every layer of `rec` that has no snapshot yet, base first, checking each DiffID.
/// The caller holds `image_gc` shared.
pub fn ensure_unpacked(d: &Daemon, rec: &ImageRecord) -> ApiResult<()> {
    let diff_ids: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
    for (i, l) in rec.layers.iter().enumerate() {
        let chain = chain_id(&diff_ids[..=i]);
        if d.snapshots.exists(&chain) {
            continue;
        }
        let parent = (i > 0).then(|| chain_id(&diff_ids[..i]));
        let compression = Compression::from_media_type(&l.media_type);
        d.snapshots
            .prepare_layer(&chain, parent.as_ref(), |dir| {
                let f = d
                    .content
                    .open_blob(&l.digest)
                    .map_err(|e| SnapshotError::unpack(&chain, e))?;
                let stats = unpack_layer(
                    std::io::BufReader::with_capacity(1 << 20, f),
                    compression,
                    dir,
                )
                .map_err(|e| SnapshotError::unpack(&chain, e))?;
                if stats.diff_id != l.diff_id {
                    return Err(SnapshotError::unpack(
                        &chain,
                        format!(
                            "layer {} unpacks to {} but the config says {}",
                            l.digest, stats.diff_id, l.diff_id
                        ),
                    ));
                }
                Ok(())
            })
            .map_err(|e| ApiError::internal(format!("unpack layer {}: {e}", l.digest)))?;
    }
    Ok(())
}

/// The record of an image a load put in the store: its manifest (the host platform's, for an
/// index), config and layers.
fn record_of_loaded(d: &Daemon, li: &LoadedImage) -> ApiResult<ImageRecord> {
    let bad = |m: String| ApiError::invalid(format!("load: image {}: {m}", li.manifest_digest));
    let read = |dg: &Digest| {
        d.content
            .read_blob(dg, manifest::MAX_MANIFEST_SIZE)
            .map_err(|e| bad(format!("read manifest {dg}: {e}")))
    };
    let mut digest = li.manifest_digest.clone();
    let mut media_type = li.media_type.clone();
    let mut parsed = manifest::parse_manifest(Some(&media_type), &read(&digest)?)
        .map_err(|e| bad(e.to_string()))?;
    if let ManifestKind::Index(idx) = &parsed {
        let host = Platform::host();
        let desc = platform::select(idx, &host)
            .map_err(|_| bad(format!("no manifest for {host} in the archive's index")))?;
        digest = Digest::parse(desc.digest().as_ref()).map_err(|e| bad(e.to_string()))?;
        media_type = desc.media_type().to_string();
        parsed = manifest::parse_manifest(Some(&media_type), &read(&digest)?)
            .map_err(|e| bad(e.to_string()))?;
    }
    let ManifestKind::Image(m) = parsed else {
        return Err(bad("an index inside an index is not supported".into()));
    };
    let config_digest =
        Digest::parse(m.config().digest().as_ref()).map_err(|e| bad(e.to_string()))?;
    let cfg_bytes = d
        .content
        .read_blob(&config_digest, manifest::MAX_CONFIG_SIZE)
        .map_err(|e| bad(format!("read config {config_digest}: {e}")))?;
    let cfg = manifest::parse_config(&cfg_bytes).map_err(|e| bad(e.to_string()))?;
    let diff_ids = manifest::diff_ids(&cfg).map_err(|e| bad(e.to_string()))?;
    if diff_ids.len() != m.layers().len() {
        return Err(bad(format!(
            "manifest has {} layers but the config lists {} diff_ids",
            m.layers().len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (l, diff_id) in m.layers().iter().zip(&diff_ids) {
        layers.push(LayerRecord {
            digest: Digest::parse(l.digest().as_ref()).map_err(|e| bad(e.to_string()))?,
            diff_id: diff_id.clone(),
            media_type: l.media_type().to_string(),
            size: l.size(),
        });
    }
    Ok(ImageRecord {
        config_digest,
        manifest_digest: Some(digest),
        manifest_media_type: Some(media_type),
        chain_id: (!diff_ids.is_empty()).then(|| chain_id(&diff_ids)),
        size: layers.iter().map(|l| l.size).sum(),
        parent: None,
        layers,
        repo_digests: Vec::new(),
        created: cfg.created().clone().unwrap_or_default(),
    })
}

fn archive_error(e: ArchiveError) -> ApiError {
    match e {
        ArchiveError::Content { .. } => ApiError::internal(e.to_string()),
        other => ApiError::invalid(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Import, load, save

/// What `POST /images/create?fromSrc=-` asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub repo: String,
    pub tag: String,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<String>,
}

/// Checks an import's parameters before its body is read.
pub fn check_import(req: &ImportRequest) -> ApiResult<(Option<Reference>, Platform)> {
    let target = if req.repo.is_empty() {
        None
    } else {
        Some(target_reference(&req.repo, &req.tag)?)
    };
    let platform = match req.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| ApiError::invalid(e.to_string()))?,
        None => Platform::host(),
    };
    archive::check_changes(&req.changes).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok((target, platform))
}

/// `docker import`: a root filesystem tar (maybe compressed) as a one-layer image, unpacked
/// and tagged. Returns the image id. The caller holds `image_gc` shared.
pub fn import(d: &Daemon, body: impl Read, req: &ImportRequest) -> ApiResult<String> {
    let (target, platform) = check_import(req)?;
    let imp = archive::import_rootfs_with(
        &d.content,
        body,
        &req.changes,
        &platform,
        req.message.as_deref(),
    )
    .map_err(|e| match e {
        ArchiveError::Content { .. } => ApiError::internal(e.to_string()),
        other => ApiError::invalid(other.to_string()),
    })?;
    let mut rec = ImageRecord::from_import(&imp, &d.content)?;
    let cfg = read_config(d, &rec)?;
    rec.created = created_of(&rec, &cfg);
    ensure_unpacked(d, &rec)?;
    let tags: Vec<Reference> = target.iter().cloned().collect();
    d.images.put(&rec, &tags)?;
    let labels = labels_of(&cfg);
    image_event(d, "import", rec.id(), rec.id(), labels.clone());
    for t in &tags {
        image_event(d, "tag", rec.id(), &t.familiar(), labels.clone());
    }
    Ok(rec.id().to_string())
}

/// `docker load`: every image of a `docker save` archive or OCI layout (maybe compressed) is
/// stored, unpacked and tagged with the names it carries. Returns Docker's lines ("Loaded
/// image: busybox:latest"). A bad archive is refused with nothing stored. The caller holds
/// `image_gc` shared.
pub fn load(d: &Daemon, body: impl Read) -> ApiResult<Vec<String>> {
    let loaded = archive::read_archive(&d.content, body).map_err(archive_error)?;
    let mut lines = Vec::new();
    for li in &loaded {
        let rec = record_of_loaded(d, li)?;
        ensure_unpacked(d, &rec)?;
        let mut tags: Vec<Reference> = Vec::new();
        for n in &li.names {
            if let Ok(r) = Reference::parse(n) {
                if r.digest().is_none() && !tags.contains(&r) {
                    tags.push(r);
                }
            }
        }
        for t in &tags {
            if let Ok(old) = d.images.resolve(&t.to_string()) {
                if old.id() != rec.id() {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {} to empty string",
                        t.familiar(),
                        old.id()
                    ));
                }
            }
        }
        d.images.put(&rec, &tags)?;
        let labels = read_config(d, &rec)
            .map(|c| labels_of(&c))
            .unwrap_or_default();
        image_event(d, "load", rec.id(), rec.id(), labels.clone());
        if tags.is_empty() {
            lines.push(format!("Loaded image ID: {}", rec.id()));
        }
        for t in &tags {
            image_event(d, "tag", rec.id(), &t.familiar(), labels.clone());
            lines.push(format!("Loaded image: {}", t.familiar()));
        }
    }
    Ok(lines)
}

/// What `docker save NAME…` writes: each image by manifest, with the tags the names chose
/// (none for an image named by id), merged when two names are the same image.
pub fn save_plan(d: &Daemon, names: &[String]) -> ApiResult<Vec<ArchiveImage>> {
    if names.is_empty() {
        return Err(ApiError::invalid("no images to save: give names=..."));
    }
    let mut plan: Vec<ArchiveImage> = Vec::new();
    for name in names {
        let rec = resolve(d, name)?;
        let manifest_digest = rec.manifest_digest.clone().ok_or_else(|| {
            ApiError::internal(format!("image {} has no manifest to save", rec.id()))
        })?;
        let tag = Reference::parse(name)
            .ok()
            .filter(|r| r.digest().is_none())
            .filter(|r| {
                d.images
                    .tags_of(rec.id())
                    .is_ok_and(|t| t.contains(&r.to_string()))
            })
            .map(|r| r.familiar());
        match plan
            .iter_mut()
            .find(|a| a.manifest_digest == manifest_digest)
        {
            Some(a) => a.names.extend(tag.filter(|t| !a.names.contains(t))),
            None => plan.push(ArchiveImage {
                manifest_digest,
                names: tag.into_iter().collect(),
            }),
        }
    }
    Ok(plan)
}

pub fn save(d: &Daemon, plan: &[ArchiveImage], w: impl std::io::Write) -> ApiResult<()> {
    archive::write_docker_archive(&d.content, plan, w)
        .map_err(|e| ApiError::internal(format!("save: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Registry auth

/// `X-Registry-Auth` and `/auth` bodies: Docker's `AuthConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
    #[serde(default)]
    pub email: String,
}

impl AuthConfig {
    /// The credential it carries, if any (identity token first, then user and password,
    /// then `auth`, which is base64 of `user:password`).
    pub fn credential(&self) -> ApiResult<Option<Credential>> {
        if !self.identitytoken.is_empty() {
            return Ok(Some(Credential::IdentityToken(self.identitytoken.clone())));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Ok(Some(Credential::Basic {
                username: self.username.clone(),
                password: self.password.clone(),
            }));
        }
        if !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .map_err(|e| {
                    ApiError::invalid(format!("invalid auth field in registry auth: {e}"))
                })?;
            let s = String::from_utf8(raw)
                .map_err(|_| ApiError::invalid("invalid auth field in registry auth: not UTF-8"))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| ApiError::invalid("invalid auth field in registry auth: no ':'"))?;
            return Ok(Some(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        Ok(None)
    }
}

/// Decodes `X-Registry-Auth` (base64url of JSON; `e30=` is `{}`, no credentials).
pub fn decode_registry_auth(header: Option<&str>) -> ApiResult<AuthConfig> {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(AuthConfig::default());
    };
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = URL_SAFE
        .decode(h)
        .or_else(|_| URL_SAFE_NO_PAD.decode(h))
        .or_else(|_| STANDARD.decode(h))
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))
}

/// The registry domain a `docker login` server address names: `https://index.docker.io/v1/`
/// → `docker.io`, `http://host:5000/v2/` → `host:5000`.
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// A registry client for one request: the request's credentials for `domain`, or else
/// `~/.docker/config.json`; the daemon's insecure registries.
fn client_for(
    d: &Daemon,
    domain: &str,
    cred: Option<Credential>,
) -> ApiResult<Arc<RegistryClient>> {
    let credentials = match cred {
        Some(c) => CredentialsSource::Static(HashMap::from([(domain.to_string(), c)])),
        None => CredentialsSource::DockerConfig(None),
    };
    RegistryClient::new(ClientConfig {
        insecure_registries: d.config.insecure_registries.clone(),
        credentials,
        ..ClientConfig::default()
    })
    .map(Arc::new)
    .map_err(|e| ApiError::internal(e.to_string()))
}

fn registry_kind(e: &RegistryError) -> Kind {
    match e.kind() {
        ErrorKind::NotFound => Kind::NotFound,
        ErrorKind::Unauthorized => Kind::Unauthorized,
        ErrorKind::InvalidInput => Kind::InvalidInput,
        ErrorKind::Unavailable => Kind::Unavailable,
        ErrorKind::BadData | ErrorKind::Internal => Kind::Internal,
    }
}

/// `POST /auth`: checks the credentials against the registry.
pub async fn login(d: &Daemon, auth: &AuthConfig) -> ApiResult<()> {
    let domain = login_domain(&auth.serveraddress);
    let cred = auth.credential()?.ok_or_else(|| {
        ApiError::new(
            Kind::Unauthorized,
            "login: username and password are required",
        )
    })?;
    let client = client_for(d, &domain, Some(cred))?;
    client.login(&domain).await.map_err(|e| match e {
        RegistryError::WrongCredentials { detail, .. } => ApiError::new(Kind::Unauthorized, detail),
        other => ApiError::new(registry_kind(&other), other.to_string()),
    })
}

// ---------------------------------------------------------------------------------------------
// Progress lines

/// Where a streamed reply's JSON lines go.
#[derive(Debug, Clone)]
pub struct Lines(pub tokio::sync::mpsc::UnboundedSender<Bytes>);

impl Lines {
    pub fn send(&self, v: &Value) {
        // A client that went away stops reading; the work goes on (as Docker's does).
        let _ = self.0.send(crate::server::json_line(v));
    }
    fn status(&self, status: &str) {
        self.send(&json!({ "status": status }));
    }
    fn layer(&self, status: &str, id: &str) {
        self.send(&json!({"status": status, "progressDetail": {}, "id": id}));
    }
    /// A failure after the reply started: both fields, since the CLI reads `errorDetail` and
    /// docker-py/compose read `error`.
    pub fn error(&self, message: &str) {
        self.send(&json!({"errorDetail": {"message": message}, "error": message}));
    }
}

/// Docker's `units.HumanSize`: decimal units, four significant digits.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut f = n as f64;
    let mut i = 0;
    while f >= 1000.0 && i + 1 < UNITS.len() {
        f /= 1000.0;
        i += 1;
    }
    let digits = if f >= 100.0 {
        1
    } else if f >= 10.0 {
        2
    } else {
        3
    };
    let mut s = format!("{f:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// The text progress bar of Docker's JSON messages: `[=====>      ]  1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = usize::try_from(current.saturating_mul(50) / total)
        .unwrap_or(50)
        .min(50);
    let bar = if pct == 50 {
        "=".repeat(50)
    } else {
        format!("{}>{}", "=".repeat(pct), " ".repeat(49 - pct))
    };
    format!("[{bar}] {:>8}/{}", human_size(current), human_size(total))
}

// ---------------------------------------------------------------------------------------------
// Pull

/// A pull whose reference, credentials and manifest are known to be good; `run` streams it.
#[derive(Debug)]
pub struct PreparedPull {
    reference: Reference,
    client: Arc<RegistryClient>,
    platform: Platform,
    layers: Vec<(Digest, u64)>,
    before: Option<String>,
}

/// `fromImage` and `tag` as the CLI (full name, tag or digest) and docker-py (name as typed,
/// maybe with its tag) send them.
pub fn pull_reference(from_image: &str, tag: &str) -> ApiResult<Reference> {
    let r = Reference::parse(from_image)?;
    if tag.is_empty() {
        return Ok(r);
    }
    let sep = if tag.contains(':') { '@' } else { ':' };
    Ok(Reference::parse(&format!("{}{sep}{tag}", r.repository()))?)
}

fn pull_error(r: &Reference, e: RegistryError) -> ApiError {
    let denied = || {
        ApiError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
            familiar_name(r)
        ))
    };
    match &e {
        RegistryError::NotFound { detail, .. } => {
            if detail.contains("repository name not known") || detail.contains("name unknown") {
                denied()
            } else {
                ApiError::not_found(format!(
                    "manifest for {} not found: manifest unknown: {detail}",
                    r.familiar()
                ))
            }
        }
        RegistryError::AuthRequired { .. } | RegistryError::Denied { .. } => denied(),
        _ => ApiError::new(registry_kind(&e), e.to_string()),
    }
}

/// Checks a pull before any output: the reference, the platform, and that the registry has the
/// manifest (for the platform). Registry failures come back as Docker words them.
pub async fn prepare_pull(
    d: &Daemon,
    reference: Reference,
    platform: Option<&str>,
    auth: &AuthConfig,
) -> ApiResult<PreparedPull> {
    let explicit = match platform.filter(|p| !p.is_empty()) {
        Some(p) => Some(Platform::parse(p).map_err(|e| ApiError::invalid(e.to_string()))?),
        None => None,
    };
    let platform = explicit.clone().unwrap_or_else(Platform::host);
    let client = client_for(d, reference.domain(), auth.credential()?)?;
    let repo = Repository::from(&reference);
    let top = match reference.digest() {
        Some(dg) => dg.to_string(),
        None => reference.tag().unwrap_or("latest").to_string(),
    };
    let first = client
        .get_manifest(&repo, &top)
        .await
        .map_err(|e| pull_error(&reference, e))?;
    let bad = |m: String| ApiError::internal(format!("pull {}: {m}", reference.familiar()));
    let mut parsed = manifest::parse_manifest(Some(&first.media_type), &first.bytes)
        .map_err(|e| bad(e.to_string()))?;
    if let ManifestKind::Index(idx) = &parsed {
        let desc = platform::select(idx, &platform).map_err(|_| {
            ApiError::not_found(format!(
                "no matching manifest for {platform} in the manifest list entries"
            ))
        })?;
        let child = client
            .get_manifest(&repo, desc.digest().as_ref())
            .await
            .map_err(|e| pull_error(&reference, e))?;
        parsed = manifest::parse_manifest(Some(&child.media_type), &child.bytes)
            .map_err(|e| bad(e.to_string()))?;
    }
    let from_index = matches!(parsed, ManifestKind::Index(_));
    let ManifestKind::Image(m) = parsed else {
        return Err(bad("an index inside an index is not supported".into()));
    };
    if let (Some(want), false) = (explicit.as_ref(), from_index) {
        // A single-platform image says its platform only in its config: check it before
        // pulling something the caller said it does not want.
        let cd = Digest::parse(m.config().digest().as_ref()).map_err(|e| bad(e.to_string()))?;
        let mut cfg = Vec::new();
        client
            .pull_blob(&repo, &cd, Some(m.config().size()), &mut cfg)
            .await
            .map_err(|e| pull_error(&reference, e))?;
        let cfg: Value = serde_json::from_slice(&cfg).map_err(|e| bad(format!("config: {e}")))?;
        let text = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("");
        let variant = cfg.get("variant").and_then(Value::as_str);
        let actual = Platform::new(text("os"), text("architecture"), variant);
        if !want.matches(&actual) {
            return Err(ApiError::not_found(format!(
                "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {actual}",
                reference.familiar()
            )));
        }
    }
    let mut layers = Vec::new();
    for l in m.layers() {
        let dg = Digest::parse(l.digest().as_ref()).map_err(|e| bad(e.to_string()))?;
        layers.push((dg, l.size()));
    }
    let before = d
        .images
        .resolve(&reference.to_string())
        .ok()
        .map(|r| r.id().to_string());
    Ok(PreparedPull {
        reference,
        client,
        platform,
        layers,
        before,
    })
}

impl PreparedPull {
    /// Pulls, writing Docker's progress lines; a failure ends the stream with an error line.
    pub async fn run(self, d: Arc<Daemon>, out: Lines) {
        let r = &self.reference;
        let shown = match (r.digest(), r.tag()) {
            (Some(dg), _) => dg.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        out.send(&json!({"status": format!("Pulling from {}", r.path()), "id": shown}));
        let layer_ids: HashMap<Digest, String> = self
            .layers
            .iter()
            .map(|(dg, _)| (dg.clone(), short_id(dg.as_str())))
            .collect();
        // Layers already stored say so at once, as Docker's do; the rest wait for bytes.
        let stored: HashSet<Digest> = self
            .layers
            .iter()
            .filter(|(dg, _)| d.content.exists(dg))
            .map(|(dg, _)| dg.clone())
            .collect();
        for (dg, _) in &self.layers {
            if let Some(id) = layer_ids.get(dg) {
                let status = if stored.contains(dg) {
                    "Already exists"
                } else {
                    "Pulling fs layer"
                };
                out.layer(status, id);
            }
        }
        let last_sent: Mutex<HashMap<Digest, Instant>> = Mutex::new(HashMap::new());
        let (out2, ids) = (out.clone(), layer_ids.clone());
        let progress = Arc::new(move |p: Progress| {
            let (dg, line) = match &p {
                Progress::AlreadyExists { digest } if stored.contains(digest) => return,
                Progress::AlreadyExists { digest } => (digest, json!("Already exists")),
                Progress::Downloaded { digest } => (digest, json!("Download complete")),
                Progress::Extracted { digest } => (digest, json!("Pull complete")),
                Progress::Downloading {
                    digest,
                    done,
                    total,
                } => {
                    // At most ten lines a second per layer, and always the last one.
                    let now = Instant::now();
                    if let Ok(mut m) = last_sent.lock() {
                        let recent = m
                            .get(digest)
                            .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(100));
                        if recent && done < total {
                            return;
                        }
                        m.insert(digest.clone(), now);
                    }
                    if let Some(id) = ids.get(digest) {
                        out2.send(&json!({
                            "status": "Downloading",
                            "progressDetail": {"current": done, "total": total},
                            "progress": progress_bar(*done, *total),
                            "id": id,
                        }));
                    }
                    return;
                }
                Progress::Resolved { .. } => return,
            };
            // The config blob reports too; Docker shows layers only.
            if let Some(id) = ids.get(dg) {
                out2.send(&json!({"status": line, "progressDetail": {}, "id": id}));
            }
        });
        let stores = Stores {
            content: d.content.clone(),
            snapshots: d.snapshots.clone(),
            images: d.images.clone(),
        };
        let opts = PullOptions {
            platform: self.platform.clone(),
            ..PullOptions::default()
        };
        let result = {
            let _writer = d.image_gc.read().await;
            berth_distribution::pull::pull(self.client.clone(), &stores, r, &opts, progress).await
        };
        match result {
            Ok(rec) => {
                if let Some(dg) = rec
                    .repo_digests
                    .iter()
                    .rev()
                    .find(|x| x.starts_with(&format!("{}@", r.repository())))
                    .and_then(|x| x.split_once('@'))
                    .map(|(_, dg)| dg.to_string())
                {
                    out.status(&format!("Digest: {dg}"));
                }
                let name = r.familiar();
                if self.before.as_deref() == Some(rec.id()) {
                    out.status(&format!("Status: Image is up to date for {name}"));
                } else {
                    out.status(&format!("Status: Downloaded newer image for {name}"));
                }
                let labels = read_config(&d, &rec)
                    .map(|c| labels_of(&c))
                    .unwrap_or_default();
                image_event(&d, "pull", &name, &name, labels);
            }
            Err(e) => out.error(&e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Push

/// A push whose images are known to exist locally.
#[derive(Debug)]
pub struct PreparedPush {
    client: Arc<RegistryClient>,
    repository: String,
    /// (target reference, local image) per tag pushed.
    targets: Vec<(Reference, ImageRecord)>,
}

/// Checks a push before any output: `name` (a repository, maybe with a tag) and `tag` must
/// name local images; without a tag every tag of the repository is pushed, as Docker does.
pub fn prepare_push(
    d: &Daemon,
    name: &str,
    tag: &str,
    auth: &AuthConfig,
) -> ApiResult<PreparedPush> {
    let base = Reference::parse(name)?;
    let missing = |what: &str| {
        ApiError::not_found(format!(
            "An image does not exist locally with the tag: {what}"
        ))
    };
    let has_tag = {
        let last = name.rsplit('/').next().unwrap_or(name);
        last.contains(':') || name.contains('@')
    };
    let refs: Vec<Reference> = if !tag.is_empty() {
        vec![pull_reference(name, tag)?]
    } else if has_tag {
        vec![base.clone()]
    } else {
        let repo = base.repository();
        let mut v: Vec<Reference> = d
            .images
            .tags()?
            .into_iter()
            .filter_map(|(t, _)| Reference::parse(&t).ok())
            .filter(|r| r.repository() == repo)
            .collect();
        v.sort_by_key(|r| r.to_string());
        if v.is_empty() {
            return Err(missing(&familiar_name(&base)));
        }
        v
    };
    let mut targets = Vec::new();
    for r in refs {
        let rec = d
            .images
            .resolve(&r.to_string())
            .map_err(|_| missing(&r.familiar()))?;
        targets.push((r, rec));
    }
    let client = client_for(d, base.domain(), auth.credential()?)?;
    Ok(PreparedPush {
        client,
        repository: base.repository(),
        targets,
    })
}

impl PreparedPush {
    pub async fn run(self, d: Arc<Daemon>, out: Lines) {
        out.status(&format!(
            "The push refers to repository [{}]",
            self.repository
        ));
        let stores = Stores {
            content: d.content.clone(),
            snapshots: d.snapshots.clone(),
            images: d.images.clone(),
        };
        for (target, rec) in &self.targets {
            let ids: HashMap<Digest, String> = rec
                .layers
                .iter()
                .map(|l| (l.digest.clone(), short_id(l.digest.as_str())))
                .collect();
            // Newest layer first, as Docker lists them.
            for l in rec.layers.iter().rev() {
                out.layer("Preparing", &short_id(l.digest.as_str()));
            }
            let mount_from: Option<String> = rec.repo_digests.iter().find_map(|rd| {
                let r = Reference::parse(rd.split('@').next()?).ok()?;
                (r.domain() == target.domain() && r.path() != target.path())
                    .then(|| r.path().to_string())
            });
            let out2 = out.clone();
            let progress = Arc::new(move |p: PushProgress| {
                let PushProgress::Pushed { digest, outcome } = p;
                let Some(id) = ids.get(&digest) else { return };
                let status = match outcome {
                    PushOutcome::AlreadyExists => "Layer already exists".to_string(),
                    PushOutcome::Uploaded => "Pushed".to_string(),
                    PushOutcome::Mounted => format!(
                        "Mounted from {}",
                        mount_from.as_deref().unwrap_or("another repository")
                    ),
                };
                out2.layer(&status, id);
            });
            let r = berth_distribution::push::push(
                self.client.clone(),
                &stores,
                rec.id(),
                target,
                4,
                progress,
            )
            .await;
            let digest = match r {
                Ok(dg) => dg,
                Err(e) => {
                    out.error(&e.to_string());
                    return;
                }
            };
            let size = rec
                .manifest_digest
                .as_ref()
                .and_then(|m| d.content.size(m).ok().flatten())
                .unwrap_or(0);
            let tag = target.tag().unwrap_or("latest").to_string();
            out.status(&format!("{tag}: digest: {digest} size: {size}"));
            out.send(&json!({
                "progressDetail": {},
                "aux": {"Tag": tag, "Digest": digest.as_str(), "Size": size},
            }));
            let name = target.familiar();
            let labels = read_config(&d, rec)
                .map(|c| labels_of(&c))
                .unwrap_or_default();
            image_event(&d, "push", &name, &name, labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("*/*", "a/b"));
        assert!(glob_match("b?sy[a-c]ox", "busybox"));
        assert!(!glob_match("b[^u]sybox", "busybox"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(reference_matches(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "busybox:lat*",
            "docker.io/library/busybox:latest"
        ));
        assert!(!reference_matches(
            "alpine",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "localhost:5000/*/*",
            "localhost:5000/a/b:1"
        ));
    }

    #[test]
    fn sizes_and_bars_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        let b = progress_bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        assert!(progress_bar(100, 100).starts_with(&format!("[{}]", "=".repeat(50))));
        assert_eq!(progress_bar(7, 0).trim(), "7B");
    }

    #[test]
    fn durations_and_until() {
        assert_eq!(parse_go_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10x"), None);
        assert_eq!(parse_go_duration(""), None);
        let now = 10_000_000_000_000;
        assert_eq!(parse_until("1m", now), Some(now - 60_000_000_000));
        assert_eq!(parse_until("5", now), Some(5_000_000_000));
        assert!(parse_until("2020-01-01T00:00:00Z", now).is_some());
        assert_eq!(parse_until("soon", now), None);
    }

    #[test]
    fn registry_auth_headers() {
        assert!(decode_registry_auth(None)
            .unwrap()
            .credential()
            .unwrap()
            .is_none());
        assert!(decode_registry_auth(Some("e30="))
            .unwrap()
            .credential()
            .unwrap()
            .is_none());
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"u","password":"p","serveraddress":"localhost:5000"}"#);
        let c = decode_registry_auth(Some(&h))
            .unwrap()
            .credential()
            .unwrap();
        assert_eq!(
            c,
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw");
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"auth":"{auth}"}}"#));
        let c = decode_registry_auth(Some(&h))
            .unwrap()
            .credential()
            .unwrap();
        assert_eq!(
            c.and_then(|c| c.username().map(str::to_string)),
            Some("bob".into())
        );
        let h = base64::engine::general_purpose::URL_SAFE.encode(r#"{"identitytoken":"tok"}"#);
        assert!(matches!(
            decode_registry_auth(Some(&h))
                .unwrap()
                .credential()
                .unwrap(),
            Some(Credential::IdentityToken(_))
        ));
        assert!(decode_registry_auth(Some("!!!")).is_err());
        let not_json = base64::engine::general_purpose::URL_SAFE.encode("nope");
        assert!(decode_registry_auth(Some(&not_json)).is_err());
    }

    #[test]
    fn login_domains() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(login_domain("registry.lan"), "registry.lan");
    }

    #[test]
    fn references_for_pull_tag_and_messages() {
        let r = pull_reference("docker.io/library/busybox", "latest").unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        let r = pull_reference("busybox:1", "").unwrap();
        assert_eq!(r.familiar(), "busybox:1");
        let dg = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("busybox", &dg).unwrap();
        assert_eq!(r.digest().map(|d| d.to_string()), Some(dg));
        assert!(pull_reference("Bad/Name", "").is_err());
        assert!(pull_reference("busybox", "bad tag").is_err());
        let t = target_reference("docker.io/library/x", "v1").unwrap();
        assert_eq!(t.familiar(), "x:v1");
        assert_eq!(target_reference("x:2", "").unwrap().familiar(), "x:2");
        assert!(target_reference("", "v1").is_err());
        assert!(target_reference(&format!("x@sha256:{}", "b".repeat(64)), "").is_err());
        assert_eq!(name_for_message("nope"), "nope:latest");
        assert_eq!(name_for_message("abc123"), "abc123");
        assert_eq!(
            familiar_name(&Reference::parse("localhost:5000/a/b:1").unwrap()),
            "localhost:5000/a/b"
        );
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
