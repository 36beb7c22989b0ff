//! `docker system df`: what images, containers' writable layers and volumes take on disk.

use berth_api::models::{BuildCache, BuildCacheTypeEnum, ImageSummary, VolumeUsageData};
use berth_api::DiskUsage;
use berth_build::engine::cache::Cache;

use crate::error::ApiResult;
use crate::state::Daemon;

pub fn disk_usage(d: &Daemon) -> ApiResult<DiskUsage> {
    let containers = d.all_containers();
    let mut images = Vec::new();
    let mut layers_size = 0i64;
    for rec in d.images.list()? {
        let size = i64::try_from(rec.size).unwrap_or(i64::MAX);
        layers_size += size;
        let users = containers
            .iter()
            .filter(|c| c.lock().image == rec.id())
            .count();
        images.push(ImageSummary {
            id: rec.id().to_string(),
            parent_id: String::new(),
            repo_tags: d
                .images
                .tags_of(rec.id())?
                .iter()
                .map(|t| crate::images::familiar(t))
                .collect(),
            repo_digests: rec.repo_digests.clone(),
            created: crate::util::rfc3339_secs(&rec.created),
            size,
            shared_size: 0,
            labels: Default::default(),
            containers: i64::try_from(users).unwrap_or(0),
            ..Default::default()
        });
    }
    let mut cs = Vec::new();
    for c in &containers {
        let rec = c.snapshot();
        cs.push(crate::routes::containers::summary(d, &rec, true));
    }
    let mut vols = Vec::new();
    for v in d.volumes.list()? {
        let users = containers
            .iter()
            .filter(|c| {
                c.lock()
                    .mounts
                    .iter()
                    .any(|m| m.typ == "volume" && m.name == v.name)
            })
            .count();
        let size = crate::volumes::dir_size(&d.volumes.data_dir(&v.name));
        let mut api = crate::routes::volumes::to_api(d, &v);
        api.usage_data = Some(VolumeUsageData {
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ref_count: i64::try_from(users).unwrap_or(0),
        });
        vols.push(api);
    }
    Ok(DiskUsage {
        layers_size,
        images,
        containers: cs,
        volumes: vols,
        build_cache: build_cache(d)?,
    })
}

/// The builder's cache as BuildKit's records: a step with its layer (shared when an image
/// uses that layer too, so pruning the cache would not free it) and the kept build context.
fn build_cache(d: &Daemon) -> ApiResult<Vec<BuildCache>> {
    let root = crate::build::build_root(d);
    let in_images: std::collections::HashSet<String> = d
        .images
        .list()?
        .iter()
        .flat_map(|r| r.layers.iter().map(|l| l.digest.to_string()))
        .collect();
    let when = crate::util::rfc3339_of;
    let mut out: Vec<BuildCache> = Cache::list(&root)
        .into_iter()
        .map(|s| {
            let size = s.layer.as_ref().map_or(0, |l| l.size);
            BuildCache {
                id: Some(s.key),
                typ: Some(BuildCacheTypeEnum::REGULAR),
                description: Some(s.description),
                in_use: Some(false),
                shared: Some(
                    s.layer
                        .as_ref()
                        .is_some_and(|l| in_images.contains(&l.digest.to_string())),
                ),
                size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                created_at: Some(when(s.stored)),
                last_used_at: Some(when(s.stored)),
                usage_count: Some(1),
                ..Default::default()
            }
        })
        .collect();
    if let Some((size, t)) = Cache::kept_context(&root) {
        out.push(BuildCache {
            id: Some("context-kept".into()),
            typ: Some(BuildCacheTypeEnum::SOURCE_LOCAL),
            description: Some("local source for context".into()),
            in_use: Some(false),
            shared: Some(false),
            size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
            created_at: Some(when(t)),
            last_used_at: Some(when(t)),
            usage_count: Some(1),
            ..Default::default()
        });
    }
    Ok(out)
}
