//! `POST /build` as a service: the context tar unpacked under the data root, the Dockerfile
//! parsed, the engine of berth-build run with the daemon's stores and pull code, the result
//! tagged; progress as the classic builder's JSON lines. `POST /build/prune` empties the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use berth_build::engine::{
    self, BuildError, BuildRequest, Engine, Event, Host, NetworkMode, RunNetwork,
};
use berth_image::reference::Reference;
use berth_image::store::ImageRecord;
use serde_json::{json, Value};

use crate::container::Attachment;
use crate::error::{ApiError, ApiResult};
use crate::images::{self, AuthConfig, Lines};
use crate::network::wire;
use crate::state::Daemon;

/// The query of `POST /build`, checked before the body is read.
#[derive(Debug, Clone, Default)]
pub struct BuildParams {
    pub dockerfile: String,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: BTreeMap<String, String>,
    pub quiet: bool,
    pub pull: bool,
    pub platform: Option<String>,
    pub network: NetworkMode,
    /// The user network RUN steps join (`networkmode=<network>`); None: the default bridge.
    pub network_id: Option<String>,
    /// X-Registry-Config: server address → credentials, for pulls of base images.
    pub auths: BTreeMap<String, AuthConfig>,
}

/// Parses the JSON of `buildargs`/`labels` (an object of strings; buildargs values may be null).
pub fn parse_map(name: &str, s: Option<&str>) -> ApiResult<BTreeMap<String, Option<String>>> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> = serde_json::from_str(s)
        .map_err(|e| ApiError::invalid(format!("invalid {name} parameter: {e}")))?;
    Ok(v)
}

/// The modes `networkmode` may name; None for anything else (a network's name).
fn network_mode(s: &str) -> Option<NetworkMode> {
    match s {
        "" | "default" | "bridge" => Some(NetworkMode::Default),
        "host" => Some(NetworkMode::Host),
        "none" => Some(NetworkMode::None),
        _ => None,
    }
}

/// `networkmode`: default and bridge put RUN steps on the default bridge (loopback only when
/// the daemon runs without one), host in the host's namespace, none in one with only loopback,
/// a user network's name or id on that network (with its embedded DNS, as dockerd does; the
/// network's id is returned beside the mode). Refused before a step runs: a network or
/// container that does not exist in dockerd's words (`network X not found`, `No such
/// container: X`; dockerd says so at the first RUN), and `container:<name>` (not supported).
pub fn parse_network(d: &Daemon, s: Option<&str>) -> ApiResult<(NetworkMode, Option<String>)> {
    let s = s.unwrap_or("");
    if let Some(m) = network_mode(s) {
        return Ok((m, None));
    }
    if let Some(c) = s.strip_prefix("container:") {
        // dockerd says "No such container: X" for a missing one (at the first RUN).
        d.find(c)?;
        return Err(ApiError::invalid(format!(
            "network mode {s:?} is not supported for builds: use default, bridge, host or none"
        )));
    }
    let n = d.networks.get(s)?;
    if n.driver != "bridge" || n.pool.is_none() {
        return Err(ApiError::invalid(format!(
            "network mode {s:?} is not supported for builds: use default, bridge, host, none or a bridge network"
        )));
    }
    Ok((
        NetworkMode::Default,
        (!n.is_default_bridge()).then(|| n.id.clone()),
    ))
}

/// Decodes X-Registry-Config (base64 JSON: server → AuthConfig); empty when absent.
pub fn parse_registry_config(h: Option<&str>) -> ApiResult<BTreeMap<String, AuthConfig>> {
    let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let raw = URL_SAFE
        .decode(h)
        .or_else(|_| URL_SAFE_NO_PAD.decode(h))
        .or_else(|_| STANDARD.decode(h))
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Config header: {e}")))?;
    serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Config header: {e}")))
}

/// Pulls and local images for the engine.
struct DaemonHost {
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
    lines: Lines,
    platform: Option<String>,
    auths: BTreeMap<String, AuthConfig>,
    /// The user network RUN steps join instead of the default bridge.
    network_id: Option<String>,
}

impl DaemonHost {
    fn auth_for(&self, r: &Reference) -> AuthConfig {
        self.auths
            .iter()
            .find(|(server, _)| images::login_domain(server) == r.domain())
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    fn local(&self, name: &str) -> Option<ImageRecord> {
        self.d.images.resolve(name).ok()
    }
}

fn api_to_build(e: ApiError) -> BuildError {
    BuildError::NotFound(e.to_string())
}

impl Host for DaemonHost {
    fn image(
        &self,
        name: &str,
        pull: bool,
        _out: &(dyn Fn(&str) + Sync),
    ) -> Result<ImageRecord, BuildError> {
        let rec = match (pull, self.local(name)) {
            (false, Some(rec)) => rec,
            _ => {
                let reference = images::pull_reference(name, "").map_err(api_to_build)?;
                let auth = self.auth_for(&reference);
                let d = self.d.clone();
                let lines = self.lines.clone();
                let platform = self.platform.clone();
                let r2 = reference.clone();
                // The pull writes Docker's pull progress lines into the build's stream, as
                // the classic builder's FROM does.
                let res = self.rt.block_on(async move {
                    let p = images::prepare_pull(&d, r2, platform.as_deref(), &auth).await?;
                    p.run(d.clone(), lines).await;
                    Ok::<_, ApiError>(())
                });
                if let Err(e) = res {
                    // A failed refresh (--pull) of an image we have is not fatal for Docker.
                    if let (true, Some(rec)) = (pull, self.local(name)) {
                        rec
                    } else {
                        return Err(BuildError::NotFound(format!(
                            "pull access denied or image not found for {name}: {e}"
                        )));
                    }
                } else {
                    self.local(&reference.to_string()).ok_or_else(|| {
                        BuildError::NotFound(format!("pull of {name} did not store an image"))
                    })?
                }
            }
        };
        images::ensure_unpacked(&self.d, &rec)
            .map_err(|e| BuildError::Internal(format!("unpack {name}: {e}")))?;
        Ok(rec)
    }

    fn run_network(&self, id: &str, hostname: &str) -> Result<Option<RunNetwork>, BuildError> {
        let network = match &self.network_id {
            Some(n) => n.clone(),
            None if self.d.config.bridge => "bridge".to_string(),
            None => return Ok(None),
        };
        let (ns, ip) = self
            .rt
            .block_on(join_network(&self.d, id, hostname, &network))
            .map_err(|e| {
                BuildError::Internal(format!(
                    "connect build container {hostname} to network {network}: {e}"
                ))
            })?;
        let mut guard = BridgeLease {
            d: self.d.clone(),
            rt: self.rt.clone(),
            id: id.to_string(),
            dns: None,
        };
        // On a user network the step asks the embedded DNS server, as a container there does.
        let embedded = self.network_id.is_some();
        if embedded {
            let _rt = self.rt.enter();
            guard.dns = Some(wire::serve_dns(&self.d, id, &ns).map_err(|e| {
                BuildError::Internal(format!("DNS for build container {hostname}: {e}"))
            })?);
        }
        let hosts = berth_network::etc::hosts(
            &[(std::net::IpAddr::V4(ip), vec![hostname.to_string()])],
            &[],
        );
        Ok(Some(RunNetwork {
            netns: ns,
            hosts,
            resolv_conf: wire::resolv_conf_with(&berth_network::etc::ResolvOptions {
                embedded,
                ..Default::default()
            }),
            guard: Box::new(guard),
        }))
    }
}

/// Wires build step `id` to the default bridge as [`wire::setup`] wires a container: a
/// namespace under the exec root, a lease owned by `id`, a veth with the default route. On
/// error nothing is left.
async fn join_network(
    d: &Arc<Daemon>,
    id: &str,
    hostname: &str,
    network: &str,
) -> ApiResult<(std::path::PathBuf, std::net::Ipv4Addr)> {
    let r = async {
        let n = d.networks.get(network)?;
        let ns = wire::netns_path(d, id);
        wire::create_netns(ns.clone()).await?;
        let att = Attachment {
            network_id: n.id.clone(),
            aliases: Vec::new(),
            ipv4: None,
            ipv6: None,
        };
        let (n, ep) = wire::attach_one(d, id, hostname, &att, 0, &ns, true).await?;
        wire::emit(d, &n, id, "connect");
        Ok((ns, ep.ip))
    }
    .await;
    if r.is_err() {
        wire::release(d, id).await;
    }
    r
}

/// Unwires a build step when dropped (on the engine's blocking thread, after its container
/// is gone).
struct BridgeLease {
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
    id: String,
    /// The embedded DNS server of a step on a user network; stops when dropped.
    dns: Option<berth_network::dns::DnsServer>,
}

impl Drop for BridgeLease {
    fn drop(&mut self) {
        drop(self.dns.take());
        self.rt.block_on(wire::release(&self.d, &self.id));
    }
}

/// Removes the unpacked context when the build ends, whatever happened.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the engine keeps its cache, mounts and temp files.
pub fn build_root(d: &Daemon) -> PathBuf {
    d.config.data_root.join("build")
}

/// Runs one build, blocking: unpacks `body` as the context, builds, tags; every outcome goes
/// to `lines` (the reply has started).
pub fn run(
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
    p: BuildParams,
    body: impl std::io::Read,
    lines: Lines,
    cancel: &AtomicBool,
) {
    let quiet = p.quiet;
    match build(&d, rt, &p, body, &lines, cancel) {
        Ok(rec) => {
            let id = rec.id().to_string();
            lines.send(&json!({"aux": {"ID": id}}));
            if quiet {
                lines.send(&json!({"stream": format!("{id}\n")}));
            } else {
                lines.send(
                    &json!({"stream": format!("Successfully built {}\n", images::short_id(&id))}),
                );
            }
            for t in &p.tags {
                match d.images.tag(&id, t) {
                    Ok(()) => {
                        let mut attrs = std::collections::HashMap::new();
                        attrs.insert("name".to_string(), t.to_string());
                        d.events.emit("image", "tag", &id, attrs);
                        if !quiet {
                            lines.send(&json!({"stream": format!(
                                "Successfully tagged {}:{}\n",
                                images::familiar_name(t),
                                t.tag().unwrap_or("latest")
                            )}));
                        }
                    }
                    Err(e) => lines.error(&format!("tag {t}: {e}")),
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let mut detail = json!({"message": msg});
            if let Some(c) = e.code() {
                detail["code"] = json!(c);
            }
            lines.send(&json!({"errorDetail": detail, "error": msg}));
        }
    }
}

fn build(
    d: &Arc<Daemon>,
    rt: tokio::runtime::Handle,
    p: &BuildParams,
    body: impl std::io::Read,
    lines: &Lines,
    cancel: &AtomicBool,
) -> Result<ImageRecord, BuildError> {
    let root = build_root(d);
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| BuildError::io("create", &tmp, e))?;
    let ctx = tmp.join(format!("ctx-{}", &engine::rootfs::random_id()[..16]));
    std::fs::create_dir(&ctx).map_err(|e| BuildError::io("create", &ctx, e))?;
    let _ctx_guard = TempDir(ctx.clone());
    // Files unchanged since the last build are linked from its kept context, not written.
    engine::context::extract_reusing(body, &ctx, &p.dockerfile, &root)?;

    let name = if p.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        &p.dockerfile
    };
    let text = read_dockerfile(&ctx, name)?;
    let dockerfile = berth_build::parser::parse(&text, name)?;
    let quiet = p.quiet;
    let out = |e: Event| match e {
        Event::Stream(s) if !quiet => lines.send(&json!({"stream": s})),
        _ => {}
    };
    let host = DaemonHost {
        d: d.clone(),
        rt,
        lines: lines.clone(),
        platform: p.platform.clone(),
        auths: p.auths.clone(),
        network_id: p.network_id.clone(),
    };
    let eng = Engine {
        content: &d.content,
        snapshots: &d.snapshots,
        images: &d.images,
        host: &host,
        build_root: root.clone(),
        runtime_root: d.config.exec_root.join("build-runtime"),
        runtime_bin: engine::run::runtime_binary(),
    };
    let req = BuildRequest {
        context: ctx.clone(),
        dockerfile,
        build_args: p.build_args.clone(),
        target: p.target.clone(),
        no_cache: p.no_cache,
        pull: p.pull,
        labels: p.labels.clone(),
        network: p.network,
        env_source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
    };
    let res = eng.build(&req, cancel, &out);
    // Kept rather than removed: cheaper now (a rename) and the next build links from it.
    engine::context::keep(&root, &ctx);
    res
}

/// The Dockerfile inside the context (never outside it); `dockerfile` as Docker's fallback
/// when the default name is missing.
fn read_dockerfile(ctx: &Path, name: &str) -> Result<String, BuildError> {
    let mut candidates = vec![name.to_string()];
    if name == "Dockerfile" {
        candidates.push("dockerfile".into());
    }
    for c in &candidates {
        let p = engine::fsutil::secure_join(ctx, c, true)?;
        if p.is_file() {
            return std::fs::read_to_string(&p).map_err(|e| BuildError::io("read", &p, e));
        }
    }
    Err(BuildError::NotFound(format!(
        "Cannot locate specified Dockerfile: {name}"
    )))
}

/// `POST /build/prune`: the cache entries and cache mounts.
pub fn prune(d: &Daemon) -> ApiResult<Value> {
    let (removed, bytes) = engine::cache::Cache::prune(&build_root(d))
        .map_err(|e| ApiError::internal(format!("prune build cache: {e}")))?;
    Ok(json!({"CachesDeleted": removed, "SpaceReclaimed": bytes}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values() {
        let m = parse_map("buildargs", Some(r#"{"A":"1","B":null}"#)).unwrap();
        assert_eq!(m["A"].as_deref(), Some("1"));
        assert_eq!(m["B"], None);
        assert!(parse_map("buildargs", Some("[1]")).is_err());
        assert!(parse_map("labels", None).unwrap().is_empty());
        assert_eq!(network_mode("none"), Some(NetworkMode::None));
        assert_eq!(network_mode("host"), Some(NetworkMode::Host));
        for m in ["", "default", "bridge"] {
            assert_eq!(network_mode(m), Some(NetworkMode::Default), "{m:?}");
        }
        assert_eq!(network_mode("container:x"), None);
        assert_eq!(network_mode("mynet"), None);
        use base64::Engine as _;
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"localhost:5000":{"username":"u","password":"p"}}"#);
        let a = parse_registry_config(Some(&h)).unwrap();
        assert_eq!(a["localhost:5000"].username, "u");
    }
}
