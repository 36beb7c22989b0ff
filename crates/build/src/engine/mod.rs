//! The build engine: a parsed Dockerfile and a context directory in, an image in the store out.
//!
//! Stages form a graph (FROM <stage>, COPY --from, RUN --mount from=); only the stages the
//! target needs are built, those whose dependencies are done in parallel. Each stage walks its
//! instructions keeping the image config as JSON (Docker's shape, so metadata instructions are
//! plain edits) and the layer list; RUN, COPY, ADD and a WORKDIR that creates a directory make
//! a layer from an overlay upper dir ([`rootfs`]). Every step is looked up in the cache first
//! ([`cache`]): the key chains the parent's key, the instruction after expansion (with the
//! build args that reach it) and, for COPY/ADD, the digests of the files read.
//!
//! The engine is blocking; the daemon runs it on a blocking thread and hands it what only the
//! daemon knows through [`Host`] (pulling a missing base image).

pub mod cache;
pub mod context;
mod dispatch;
pub mod fsutil;
pub mod rootfs;
pub mod run;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_image::content::ContentStore;
use berth_image::digest::Digest;
use berth_image::manifest::media_types as mt;
use berth_image::snapshot::Snapshotter;
use berth_image::store::{ImageRecord, ImageStore, LayerRecord};
use serde_json::{json, Value};

use crate::ast::{Dockerfile, Instruction};

pub use run::{Network, NetworkMode};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Parse(#[from] crate::parser::ParseError),
    /// Bad input in the Dockerfile, the context or the request.
    #[error("{0}")]
    Invalid(String),
    /// A file, stage or image the build names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A RUN step exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("build cancelled")]
    Cancelled,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] berth_image::snapshot::SnapshotError),
    #[error(transparent)]
    Content(#[from] berth_image::content::ContentError),
    #[error(transparent)]
    Store(#[from] berth_image::store::StoreError),
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> BuildError {
        BuildError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The exit code of a failed RUN (Docker's errorDetail.code).
    pub fn code(&self) -> Option<i32> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A RUN container's place on the daemon's default bridge, held until dropped: the guard's
/// Drop frees the address, removes the namespace and the veth.
pub struct RunNetwork {
    /// The network namespace (a bind-mounted file) the container joins.
    pub netns: PathBuf,
    /// /etc/hosts for the container (its address and hostname).
    pub hosts: String,
    /// /etc/resolv.conf for the container, as a `docker run` container on the bridge gets it.
    pub resolv_conf: String,
    /// Undoes the wiring when dropped.
    pub guard: Box<dyn Send>,
}

impl std::fmt::Debug for RunNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunNetwork")
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}

/// What the daemon provides the engine.
pub trait Host: Sync {
    /// Wires the RUN container `id` (hostname `hostname`) to the default bridge, as `docker
    /// build` runs RUN steps; None when the daemon has no default bridge (the step then gets
    /// only loopback). Called from the engine's blocking threads.
    fn run_network(&self, id: &str, hostname: &str) -> Result<Option<RunNetwork>, BuildError>;

    /// The image `name` from the local store with its layers unpacked as snapshots, pulled
    /// first when missing or when `pull`; progress text goes to `out`.
    fn image(
        &self,
        name: &str,
        pull: bool,
        out: &(dyn Fn(&str) + Sync),
    ) -> Result<ImageRecord, BuildError>;
}

/// Progress of a build, as the classic builder reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text for `{"stream": ...}`.
    Stream(String),
    /// The final image id, for `{"aux":{"ID": ...}}`.
    Aux(String),
}

/// One build, validated.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The extracted context (with .dockerignore applied).
    pub context: PathBuf,
    pub dockerfile: Dockerfile,
    /// `--build-arg`: a None value takes nothing (as Docker's `--build-arg NAME` when NAME is
    /// not in the client's environment).
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// `networkmode`: what RUN steps without `--network` (or with `--network=default`) get.
    pub network: NetworkMode,
    /// SOURCE_DATE_EPOCH from the daemon's environment, used when no build arg gives one.
    pub env_source_date_epoch: Option<i64>,
}

/// The args Docker lets through without an ARG line (they reach RUN, not history).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The engine: stores, where it keeps its files, and the host.
pub struct Engine<'a> {
    pub content: &'a ContentStore,
    pub snapshots: &'a Snapshotter,
    pub images: &'a ImageStore,
    pub host: &'a dyn Host,
    /// `<data-root>/build`: cache, cache mounts, temp mounts.
    pub build_root: PathBuf,
    /// The runtime's state dir for RUN containers.
    pub runtime_root: PathBuf,
    pub runtime_bin: PathBuf,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("build_root", &self.build_root)
            .finish_non_exhaustive()
    }
}

/// A stage's image while it is built.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The whole image config (architecture, os, config, history, rootfs).
    pub config: Value,
    pub layers: Vec<LayerRecord>,
    /// The cache key of the state so far.
    pub key: String,
    /// ARGs declared in the stage, with their values (None: declared, no value).
    pub args: BTreeMap<String, Option<String>>,
    pub size: u64,
    /// Whether this stage set CMD (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl State {
    pub fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.is_object() {
            self.config = json!({});
        }
        let Value::Object(root) = &mut self.config else {
            unreachable!("made an object above")
        };
        let c = root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        let Value::Object(m) = c else {
            unreachable!("made an object above")
        };
        m
    }

    pub fn cfg_ref(&self) -> Option<&serde_json::Map<String, Value>> {
        self.config.get("config").and_then(Value::as_object)
    }

    pub fn env(&self) -> Vec<String> {
        self.cfg_ref()
            .and_then(|c| c.get("Env"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env_get(&self, name: &str) -> Option<String> {
        self.env().iter().rev().find_map(|e| {
            e.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn str_field(&self, k: &str) -> String {
        self.cfg_ref()
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn shell(&self) -> Vec<String> {
        self.cfg_ref()
            .and_then(|c| c.get("Shell"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The image id this state would have (digest of its config).
    pub fn image_id(&self) -> Digest {
        Digest::sha256_of(&serde_json::to_vec(&self.config).unwrap_or_default())
    }
}

/// Shared by the stages of one build.
pub(crate) struct Run<'r> {
    pub eng: &'r Engine<'r>,
    pub req: &'r BuildRequest,
    pub cache: cache::Cache,
    pub cancel: &'r AtomicBool,
    pub out: &'r (dyn Fn(Event) + Sync),
    /// Built stages by index.
    pub done: Mutex<HashMap<usize, State>>,
    /// Stage names (lower case) → index.
    pub names: HashMap<String, usize>,
    /// Step numbers: (stage, instruction index + 1; 0 for FROM) → n.
    pub steps: HashMap<(usize, usize), usize>,
    pub total_steps: usize,
    pub epoch: Option<i64>,
    pub global_args: BTreeMap<String, Option<String>>,
    pub used_args: Mutex<BTreeSet<String>>,
}

impl Run<'_> {
    pub fn say(&self, s: impl Into<String>) {
        (self.out)(Event::Stream(s.into()));
    }

    pub fn check_cancel(&self) -> Result<(), BuildError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// A build arg's value as given (Some(None) when given without a value).
    pub fn build_arg(&self, name: &str) -> Option<Option<String>> {
        self.req.build_args.get(name).cloned()
    }

    /// The time written in `created` fields.
    pub fn now(&self) -> String {
        match self.epoch {
            Some(e) => berth_runtime::state::rfc3339(u64::try_from(e).unwrap_or(0), 0)
                .replace(".000000000Z", "Z"),
            None => berth_runtime::state::now_rfc3339(),
        }
    }
}

impl<'a> Engine<'a> {
    /// Builds the request's target; returns the image record stored (untagged: the caller tags).
    pub fn build(
        &self,
        req: &BuildRequest,
        cancel: &AtomicBool,
        out: &(dyn Fn(Event) + Sync),
    ) -> Result<ImageRecord, BuildError> {
        let df = &req.dockerfile;
        if df.stages.is_empty() {
            return Err(BuildError::Invalid("file with no instructions".into()));
        }
        std::fs::create_dir_all(&self.build_root)
            .map_err(|e| BuildError::io("create", &self.build_root, e))?;
        let mut names = HashMap::new();
        for s in &df.stages {
            if let Some(n) = s.name() {
                names.insert(n.to_ascii_lowercase(), s.index);
            }
        }
        let target = match &req.target {
            Some(t) if !t.is_empty() => *names.get(&t.to_ascii_lowercase()).ok_or_else(|| {
                BuildError::NotFound(format!("failed to reach build target {t} in Dockerfile"))
            })?,
            _ => df.stages.len() - 1,
        };
        // Global ARGs: their defaults, overridden by --build-arg.
        let mut global_args: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut used = BTreeSet::new();
        for a in &df.global_args {
            if let Instruction::Arg(list) = &a.inner {
                for (k, default) in list {
                    let lookup = |n: &str| global_args.get(n).cloned().flatten();
                    let def = match default {
                        Some(d) => {
                            Some(crate::words::expand(d, df.escape, &lookup).map_err(|e| {
                                BuildError::Invalid(format!("Dockerfile:{}: {e}", a.line))
                            })?)
                        }
                        None => None,
                    };
                    let v = match req.build_args.get(k) {
                        Some(Some(v)) => {
                            used.insert(k.clone());
                            Some(v.clone())
                        }
                        _ => def,
                    };
                    global_args.insert(k.clone(), v);
                }
            }
        }
        let epoch = match req.build_args.get("SOURCE_DATE_EPOCH") {
            Some(Some(v)) => Some(v.trim().parse::<i64>().map_err(|_| {
                BuildError::Invalid(format!(
                    "invalid SOURCE_DATE_EPOCH {v:?}: want seconds since 1970"
                ))
            })?),
            _ => req.env_source_date_epoch,
        };
        used.insert("SOURCE_DATE_EPOCH".to_string());

        // Dependencies of each stage (on earlier stages only, as Docker resolves names).
        let deps: Vec<BTreeSet<usize>> = df
            .stages
            .iter()
            .map(|s| stage_deps(s, &names, &global_args, df.escape))
            .collect();
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(deps[i].iter().copied());
            }
        }
        let mut steps = HashMap::new();
        // The classic builder counts (and prints) the ARGs before the first FROM as steps.
        let mut n = df.global_args.len();
        for s in df.stages.iter().filter(|s| needed.contains(&s.index)) {
            n += 1;
            steps.insert((s.index, 0), n);
            for (j, _) in s.instructions.iter().enumerate() {
                n += 1;
                steps.insert((s.index, j + 1), n);
            }
        }
        let run = Run {
            eng: self,
            req,
            cache: cache::Cache::open(&self.build_root)?,
            cancel,
            out,
            done: Mutex::new(HashMap::new()),
            names,
            steps,
            total_steps: n,
            epoch,
            global_args,
            used_args: Mutex::new(used),
        };

        for (i, a) in df.global_args.iter().enumerate() {
            run.say(format!(
                "Step {}/{} : {}\n",
                i + 1,
                run.total_steps,
                a.original
            ));
        }
        // Waves: every needed stage whose dependencies are built, in parallel.
        let mut remaining: BTreeSet<usize> = needed.clone();
        while !remaining.is_empty() {
            let ready: Vec<usize> = {
                let done = run
                    .done
                    .lock()
                    .map_err(|_| BuildError::Internal("stage table poisoned".into()))?;
                remaining
                    .iter()
                    .copied()
                    .filter(|i| deps[*i].iter().all(|d| done.contains_key(d)))
                    .collect()
            };
            if ready.is_empty() {
                return Err(BuildError::Invalid(
                    "circular dependency between stages".into(),
                ));
            }
            let results: Vec<Result<(), BuildError>> = if ready.len() == 1 {
                vec![run.build_stage(ready[0])]
            } else {
                std::thread::scope(|sc| {
                    let hs: Vec<_> = ready
                        .iter()
                        .map(|i| {
                            let run = &run;
                            let i = *i;
                            sc.spawn(move || run.build_stage(i))
                        })
                        .collect();
                    hs.into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(BuildError::Internal("stage thread panicked".into()))
                            })
                        })
                        .collect()
                })
            };
            for r in results {
                r?;
            }
            for i in ready {
                remaining.remove(&i);
            }
        }
        run.cache.save_files();

        let unused: Vec<String> = {
            let used = run.used_args.lock().map(|u| u.clone()).unwrap_or_default();
            req.build_args
                .keys()
                .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        if !unused.is_empty() {
            run.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }

        let mut st = run
            .done
            .lock()
            .map_err(|_| BuildError::Internal("stage table poisoned".into()))?
            .remove(&target)
            .ok_or_else(|| BuildError::Internal("target stage was not built".into()))?;
        if !req.labels.is_empty() {
            let labels = st.cfg().entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &req.labels {
                labels[k.as_str()] = json!(v);
            }
        }
        self.write_image(&st)
    }

    /// Stores the config, a manifest and the image record.
    fn write_image(&self, st: &State) -> Result<ImageRecord, BuildError> {
        let cfg_bytes = serde_json::to_vec(&st.config)
            .map_err(|e| BuildError::Internal(format!("encode image config: {e}")))?;
        let config_digest = self.content.put_bytes(&cfg_bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt::DOCKER_MANIFEST,
            "config": {"mediaType": mt::DOCKER_CONFIG, "size": cfg_bytes.len(), "digest": config_digest.as_str()},
            "layers": st.layers.iter().map(|l| json!({
                "mediaType": l.media_type, "size": l.size, "digest": l.digest.as_str()
            })).collect::<Vec<_>>(),
        });
        let m_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| BuildError::Internal(format!("encode manifest: {e}")))?;
        let manifest_digest = self.content.put_bytes(&m_bytes)?;
        let record = ImageRecord {
            config_digest,
            manifest_digest: Some(manifest_digest),
            manifest_media_type: Some(mt::DOCKER_MANIFEST.to_string()),
            layers: st.layers.clone(),
            chain_id: rootfs::chain_of(&st.layers),
            repo_digests: Vec::new(),
            created: st
                .config
                .get("created")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            size: st.size,
            parent: None,
        };
        self.images.put(&record, &[])?;
        Ok(record)
    }
}

/// The stages a stage needs: its FROM, COPY --from and RUN --mount from= naming a stage.
fn stage_deps(
    s: &crate::ast::Stage,
    names: &HashMap<String, usize>,
    args: &BTreeMap<String, Option<String>>,
    escape: char,
) -> BTreeSet<usize> {
    let lookup = |n: &str| args.get(n).cloned().flatten();
    let resolve = |w: &str| -> Option<usize> {
        let w = crate::words::expand(w, escape, &lookup).unwrap_or_else(|_| w.to_string());
        if let Some(i) = names.get(&w.to_ascii_lowercase()) {
            return (*i < s.index).then_some(*i);
        }
        w.parse::<usize>().ok().filter(|i| *i < s.index)
    };
    let mut out = BTreeSet::new();
    let from = crate::words::expand(&s.from.inner.image, escape, &lookup)
        .unwrap_or_else(|_| s.from.inner.image.clone());
    if let Some(i) = names
        .get(&from.to_ascii_lowercase())
        .filter(|i| **i < s.index)
    {
        out.insert(*i);
    }
    for ins in &s.instructions {
        match &ins.inner {
            Instruction::Copy(c) | Instruction::Add(c) => {
                if let Some(i) = c.from.as_deref().and_then(resolve) {
                    out.insert(i);
                }
            }
            Instruction::Run(r) => {
                for m in &r.mounts {
                    if let Some(i) = m.from.as_deref().and_then(resolve) {
                        out.insert(i);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Go's `%q` of a string list, as the classic builder writes CMD/ENTRYPOINT in history.
pub(crate) fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}
