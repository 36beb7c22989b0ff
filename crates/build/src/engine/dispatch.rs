//! One stage, instruction by instruction: FROM, the metadata instructions (config edits with a
//! history entry), RUN, COPY and ADD (layers), each looked up in the cache first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::manifest::MAX_CONFIG_SIZE;
use serde_json::{json, Value};

use super::cache::{Entry, KeyBuilder};
use super::fsutil::{self, CopyAttrs};
use super::rootfs::{self, Rootfs, View};
use super::run::{self, Network, NetworkMode, RunSpec};
use super::{go_quote_list, BuildError, Run, State};
use crate::ast::{self, Command, Healthcheck, Instruction, MountType, Spanned};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bumped when a rule that decides a step's result changes (see the stage key).
const BUILDER_RULES: &str = "rules-2";

fn short(d: &str) -> String {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    h.chars().take(12).collect()
}

/// Where COPY/ADD read from.
enum Source {
    Context,
    /// A stage's or image's tree, mounted read-only.
    View(View),
}

impl Run<'_> {
    fn expand(&self, st: &State, word: &str) -> Result<String, BuildError> {
        let lookup = |n: &str| -> Option<String> {
            st.env_get(n).or_else(|| st.args.get(n).cloned().flatten())
        };
        crate::words::expand(word, self.req.dockerfile.escape, &lookup)
            .map_err(|e| BuildError::Invalid(e.to_string()))
    }

    fn lookup_cache(&self, key: &berth_image::digest::Digest) -> Option<Entry> {
        if self.req.no_cache {
            return None;
        }
        let e = self.cache.get(key)?;
        let ok = e.layers.iter().all(|l| self.eng.content.exists(&l.digest))
            && rootfs::chain_of(&e.layers).is_none_or(|c| self.eng.snapshots.exists(&c));
        ok.then_some(e)
    }

    fn take_cached(&self, st: &mut State, key: &berth_image::digest::Digest) -> bool {
        match self.lookup_cache(key) {
            Some(e) => {
                st.config = e.config;
                st.layers = e.layers;
                st.size = e.size;
                st.key = key.to_string();
                self.say(" ---> Using cache\n");
                true
            }
            None => false,
        }
    }

    fn remember(
        &self,
        st: &mut State,
        key: &berth_image::digest::Digest,
    ) -> Result<(), BuildError> {
        st.key = key.to_string();
        self.cache.put(
            key,
            &Entry {
                config: st.config.clone(),
                layers: st.layers.clone(),
                size: st.size,
            },
        )
    }

    fn push_history(&self, st: &mut State, created_by: String, empty: bool) {
        let now = self.now();
        let mut h = json!({"created": now, "created_by": created_by});
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !st.config.get("history").is_some_and(Value::is_array) {
            st.config["history"] = json!([]);
        }
        if let Some(a) = st.config["history"].as_array_mut() {
            a.push(h);
        }
        st.config["created"] = json!(now);
    }

    fn push_layer(&self, st: &mut State, layer: berth_image::store::LayerRecord, size: u64) {
        if !st.config.get("rootfs").is_some_and(Value::is_object) {
            st.config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        if !st.config["rootfs"]
            .get("diff_ids")
            .is_some_and(Value::is_array)
        {
            st.config["rootfs"]["diff_ids"] = json!([]);
        }
        if let Some(a) = st.config["rootfs"]["diff_ids"].as_array_mut() {
            a.push(json!(layer.diff_id.as_str()));
        }
        st.layers.push(layer);
        st.size += size;
    }

    /// A metadata instruction: `apply` edits the config; `desc` goes in history and the key.
    fn meta(
        &self,
        st: &mut State,
        desc: String,
        apply: impl FnOnce(&mut State),
    ) -> Result<(), BuildError> {
        let mut k = KeyBuilder::new(&st.key);
        k.add("meta").add(&desc);
        let key = k.finish();
        if self.take_cached(st, &key) {
            return Ok(());
        }
        apply(st);
        let created_by = format!("{} #(nop)  {desc}", st.shell().join(" "));
        self.push_history(st, created_by, true);
        self.remember(st, &key)
    }

    fn say_id(&self, st: &State) {
        self.say(format!(" ---> {}\n", short(st.image_id().as_str())));
    }

    pub(crate) fn build_stage(&self, idx: usize) -> Result<(), BuildError> {
        let df = &self.req.dockerfile;
        let stage = &df.stages[idx];
        let from = &stage.from;
        self.say(format!(
            "Step {}/{} : {}\n",
            self.steps.get(&(idx, 0)).copied().unwrap_or(0),
            self.total_steps,
            from.original
        ));
        let glookup = |n: &str| self.global_args.get(n).cloned().flatten();
        let image = crate::words::expand(&from.inner.image, df.escape, &glookup)
            .map_err(|e| BuildError::Invalid(format!("Dockerfile:{}: {e}", from.line)))?;
        if image.is_empty() {
            return Err(BuildError::Invalid(format!(
                "base name ({}) should not be blank",
                from.inner.image
            )));
        }
        let mut st = if image.eq_ignore_ascii_case("scratch") {
            let p = berth_image::platform::Platform::host();
            State {
                config: json!({
                    "architecture": p.architecture, "os": p.os,
                    "config": {"Env": [DEFAULT_PATH]},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                layers: Vec::new(),
                key: "scratch".into(),
                args: BTreeMap::new(),
                size: 0,
                cmd_set: false,
            }
        } else if let Some(j) = self
            .names
            .get(&image.to_ascii_lowercase())
            .copied()
            .filter(|j| *j < idx)
        {
            let done = self
                .done
                .lock()
                .map_err(|_| BuildError::Internal("stage table poisoned".into()))?;
            let mut s = done
                .get(&j)
                .cloned()
                .ok_or_else(|| BuildError::Internal(format!("stage {j} was not built")))?;
            s.args.clear();
            s.cmd_set = false;
            s
        } else {
            let say = |s: &str| self.say(s.to_string());
            let rec = self.eng.host.image(&image, self.req.pull, &say)?;
            let bytes = self
                .eng
                .content
                .read_blob(&rec.config_digest, MAX_CONFIG_SIZE)?;
            let base: Value = serde_json::from_slice(&bytes)
                .map_err(|e| BuildError::Internal(format!("config of image {image}: {e}")))?;
            let mut config = json!({
                "architecture": base.get("architecture").cloned().unwrap_or(json!("amd64")),
                "os": base.get("os").cloned().unwrap_or(json!("linux")),
                "config": base.get("config").cloned().filter(Value::is_object).unwrap_or(json!({})),
                "rootfs": base.get("rootfs").cloned().unwrap_or(json!({"type": "layers", "diff_ids": []})),
                "history": base.get("history").cloned().filter(Value::is_array).unwrap_or(json!([])),
                "created": base.get("created").cloned().unwrap_or(Value::Null),
            });
            if let Some(v) = base.get("variant") {
                config["variant"] = v.clone();
            }
            State {
                config,
                layers: rec.layers.clone(),
                key: rec.id().to_string(),
                args: BTreeMap::new(),
                size: rec.size,
                cmd_set: false,
            }
        };
        // The classic builder's beginStage (setDefaultPath): a stage whose base has no PATH
        // gets the default one appended to its Env, which RUN sees and `$PATH` expands to.
        set_default_path(&mut st);
        let mut k = KeyBuilder::new(&st.key);
        // The version names the builder's rules: entries an older builder cached with other
        // results for the same instructions are not reused.
        k.add("epoch")
            .add(&format!("{:?}", self.epoch))
            .add(BUILDER_RULES);
        st.key = k.finish().to_string();
        self.say_id(&st);

        // ONBUILD triggers of the base run first, then the image forgets them.
        let triggers: Vec<String> = st
            .cfg_ref()
            .and_then(|c| c.get("OnBuild"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !triggers.is_empty() {
            self.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            st.cfg().insert("OnBuild".into(), Value::Null);
            for t in &triggers {
                let parsed = crate::parser::parse(&format!("FROM scratch\n{t}\n"), "ONBUILD")?;
                for ins in parsed.stages.iter().flat_map(|s| s.instructions.iter()) {
                    self.check_cancel()?;
                    self.dispatch(&mut st, ins)?;
                }
            }
        }

        for (j, ins) in stage.instructions.iter().enumerate() {
            self.check_cancel()?;
            self.say(format!(
                "Step {}/{} : {}\n",
                self.steps.get(&(idx, j + 1)).copied().unwrap_or(0),
                self.total_steps,
                ins.original
            ));
            self.dispatch(&mut st, ins).map_err(|e| match e {
                BuildError::Invalid(m)
                    if !m.starts_with("Dockerfile")
                        && !m.contains("COPY")
                        && !m.contains("ADD") =>
                {
                    BuildError::Invalid(format!("Dockerfile:{}: {m}", ins.line))
                }
                e => e,
            })?;
            self.say_id(&st);
        }
        self.done
            .lock()
            .map_err(|_| BuildError::Internal("stage table poisoned".into()))?
            .insert(idx, st);
        Ok(())
    }

    fn dispatch(&self, st: &mut State, ins: &Spanned<Instruction>) -> Result<(), BuildError> {
        match &ins.inner {
            Instruction::Arg(list) => {
                let mut descs = Vec::new();
                for (k, default) in list {
                    let given = self.build_arg(k);
                    let v = match given {
                        Some(Some(v)) => {
                            if let Ok(mut u) = self.used_args.lock() {
                                u.insert(k.clone());
                            }
                            Some(v)
                        }
                        _ => match default {
                            Some(d) => Some(self.expand(st, d)?),
                            // A global ARG redeclared without a value takes the global's.
                            None => self.global_args.get(k).cloned().flatten(),
                        },
                    };
                    descs.push(match default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                    st.args.insert(k.clone(), v);
                }
                self.meta(st, format!("ARG {}", descs.join(" ")), |_| {})
            }
            Instruction::Env(pairs) => {
                let mut kv = Vec::new();
                for (k, v) in pairs {
                    // Later pairs see earlier ones of the same line, as Docker's do.
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    set_env(st, &k, &v);
                    kv.push(format!("{k}={v}"));
                }
                // The env was applied above so later words could see it; meta re-applies
                // nothing and only records.
                self.meta(st, format!("ENV {}", kv.join(" ")), |_| {})
            }
            Instruction::Label(pairs) => {
                let mut kv = Vec::new();
                for (k, v) in pairs {
                    kv.push((self.expand(st, k)?, self.expand(st, v)?));
                }
                let desc = format!(
                    "LABEL {}",
                    kv.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                self.meta(st, desc, |st| {
                    let l = st.cfg().entry("Labels").or_insert_with(|| json!({}));
                    if !l.is_object() {
                        *l = json!({});
                    }
                    for (k, v) in kv {
                        l[k.as_str()] = json!(v);
                    }
                })
            }
            Instruction::Cmd(c) => {
                let v = self.command_list(st, c);
                st.cmd_set = true;
                self.meta(st, format!("CMD {}", go_quote_list(&v)), |st| {
                    st.cfg().insert("Cmd".into(), json!(v));
                })
            }
            Instruction::Entrypoint(c) => {
                let v = self.command_list(st, c);
                let keep_cmd = st.cmd_set;
                self.meta(st, format!("ENTRYPOINT {}", go_quote_list(&v)), |st| {
                    st.cfg().insert("Entrypoint".into(), json!(v));
                    // An ENTRYPOINT drops the CMD inherited from the base, as Docker's does.
                    if !keep_cmd {
                        st.cfg().insert("Cmd".into(), Value::Null);
                    }
                })
            }
            Instruction::Expose(words) => {
                let mut specs = Vec::new();
                let mut ports = Vec::new();
                for w in words {
                    for p in self.expand(st, w)?.split_whitespace() {
                        ports.extend(parse_port_spec(p)?);
                        specs.push(p.to_string());
                    }
                }
                // History has the words as written (after expansion), as the classic builder's.
                self.meta(st, format!("EXPOSE {}", specs.join(" ")), |st| {
                    let e = st.cfg().entry("ExposedPorts").or_insert_with(|| json!({}));
                    if !e.is_object() {
                        *e = json!({});
                    }
                    for p in ports {
                        e[p.as_str()] = json!({});
                    }
                })
            }
            Instruction::Volume(words) => {
                let mut vols = Vec::new();
                for w in words {
                    let v = self.expand(st, w)?;
                    if v.is_empty() {
                        return Err(BuildError::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    vols.push(v);
                }
                self.meta(st, format!("VOLUME {}", go_quote_list(&vols)), |st| {
                    let e = st.cfg().entry("Volumes").or_insert_with(|| json!({}));
                    if !e.is_object() {
                        *e = json!({});
                    }
                    for v in vols {
                        e[v.as_str()] = json!({});
                    }
                })
            }
            Instruction::User(u) => {
                let u = self.expand(st, u)?;
                self.meta(st, format!("USER {u}"), |st| {
                    st.cfg().insert("User".into(), json!(u));
                })
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(st, s)?;
                self.meta(st, format!("STOPSIGNAL {s}"), |st| {
                    st.cfg().insert("StopSignal".into(), json!(s));
                })
            }
            Instruction::Maintainer(m) => {
                let m = m.clone();
                self.meta(st, format!("MAINTAINER {m}"), |st| {
                    st.config["author"] = json!(m);
                })
            }
            Instruction::Onbuild(t) => {
                let t = t.trim().to_string();
                self.meta(st, format!("ONBUILD {t}"), |st| {
                    let e = st.cfg().entry("OnBuild").or_insert_with(|| json!([]));
                    if !e.is_array() {
                        *e = json!([]);
                    }
                    if let Some(a) = e.as_array_mut() {
                        a.push(json!(t));
                    }
                })
            }
            Instruction::Shell(v) => {
                let v = v.clone();
                self.meta(st, format!("SHELL {}", go_quote_list(&v)), |st| {
                    st.cfg().insert("Shell".into(), json!(v));
                })
            }
            Instruction::Healthcheck(h) => {
                let hc = match h {
                    Healthcheck::None => json!({"Test": ["NONE"]}),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let mut o = json!({"Test": test});
                        for (k, v) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                            ("Retries", retries),
                        ] {
                            if let Some(v) = v.filter(|v| *v != 0) {
                                o[k] = json!(v);
                            }
                        }
                        o
                    }
                };
                let desc = format!("HEALTHCHECK &{hc}");
                self.meta(st, desc, |st| {
                    st.cfg().insert("Healthcheck".into(), hc);
                })
            }
            Instruction::Workdir(w) => self.workdir(st, w),
            Instruction::Run(r) => self.run_step(st, r),
            Instruction::Copy(c) => self.copy_step(st, c, false),
            Instruction::Add(c) => self.copy_step(st, c, true),
        }
    }

    /// CMD/ENTRYPOINT's stored form: exec as written, shell form through SHELL.
    fn command_list(&self, st: &State, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn workdir(&self, st: &mut State, w: &str) -> Result<(), BuildError> {
        let w = self.expand(st, w)?;
        let cur = st.str_field("WorkingDir");
        let joined = if w.starts_with('/') {
            w.clone()
        } else {
            format!("{}/{w}", if cur.is_empty() { "/" } else { &cur })
        };
        let dir = format!("/{}", fsutil::clean_rel(&joined));
        let mut k = KeyBuilder::new(&st.key);
        k.add("WORKDIR").add(&dir);
        let key = k.finish();
        if self.take_cached(st, &key) {
            return Ok(());
        }
        st.cfg().insert("WorkingDir".into(), json!(dir));
        let created_by = format!("{} #(nop) WORKDIR {dir}", st.shell().join(" "));
        // The directory is made now, so it exists (root-owned, 0755) even if nothing else
        // writes there; a WORKDIR that already exists adds no layer.
        let rf = Rootfs::open(self.eng, &st.layers)?;
        let target = fsutil::secure_join(&rf.dir, &dir, true)?;
        fsutil::mkdir_all(&target, None)?;
        if rf.is_unchanged() {
            drop(rf);
            self.push_history(st, created_by, true);
        } else {
            let (layer, size) = rf.commit(self.epoch)?;
            self.push_layer(st, layer, size);
            self.push_history(st, created_by, false);
        }
        self.remember(st, &key)
    }

    fn run_step(&self, st: &mut State, r: &ast::Run) -> Result<(), BuildError> {
        let args: Vec<String> = match &r.command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(heredoc_script(s, &r.heredocs));
                v
            }
        };
        let env_keys: BTreeSet<String> = st
            .env()
            .iter()
            .map(|e| e.split('=').next().unwrap_or("").to_string())
            .collect();
        let arg_env: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| !env_keys.contains(*k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        let proxy_env: Vec<String> = super::PROXY_ARGS
            .iter()
            .filter(|k| !st.args.contains_key(**k))
            .filter_map(|k| self.build_arg(k).flatten().map(|v| format!("{k}={v}")))
            .collect();
        let cmd_text = args.join(" ");
        let created_by = if arg_env.is_empty() {
            cmd_text.clone()
        } else {
            format!("|{} {} {cmd_text}", arg_env.len(), arg_env.join(" "))
        };
        let mode = match r.network.as_deref() {
            None | Some("default") => self.req.network,
            Some("none") => NetworkMode::None,
            Some("host") => NetworkMode::Host,
            Some(n) => {
                return Err(BuildError::Invalid(format!(
                    "unsupported RUN --network={n}"
                )))
            }
        };
        let mut k = KeyBuilder::new(&st.key);
        k.add("RUN")
            .add(&created_by)
            .add(&format!("{:?}", r.mounts))
            .add(&format!("{mode:?}"));
        let key = k.finish();
        if self.take_cached(st, &key) {
            return Ok(());
        }

        let rf = Rootfs::open(self.eng, &st.layers)?;
        let cwd = {
            let w = st.str_field("WorkingDir");
            if w.is_empty() {
                "/".to_string()
            } else {
                w
            }
        };
        fsutil::mkdir_all(&fsutil::secure_join(&rf.dir, &cwd, true)?, None)?;
        let user = fsutil::resolve_user(&st.str_field("User"), &rf.dir, true)?;
        let mut env = st.env();
        env.extend(arg_env);
        env.extend(proxy_env);
        let mut mounts = Vec::new();
        let mut views = Vec::new();
        let mut stubs = Vec::new();
        for m in &r.mounts {
            let target = if m.target.starts_with('/') {
                m.target.clone()
            } else {
                format!("{}/{}", cwd.trim_end_matches('/'), m.target)
            };
            let inside = fsutil::secure_join(&rf.dir, &target, true)?;
            if std::fs::symlink_metadata(&inside).is_err() {
                stubs.push(inside);
            }
            match m.typ {
                MountType::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                    let name: String = id
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let dir = self.eng.build_root.join("mounts").join(format!(
                        "{name}-{}",
                        short(berth_image::digest::Digest::sha256_of(id.as_bytes()).as_str())
                    ));
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir)
                            .map_err(|e| BuildError::io("create", &dir, e))?;
                        std::fs::set_permissions(
                            &dir,
                            std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                        )
                        .map_err(|e| BuildError::io("chmod", &dir, e))?;
                        fsutil::lchown(&dir, m.uid.unwrap_or(0), m.gid.unwrap_or(0))?;
                    }
                    mounts.push(json!({"destination": target, "type": "bind", "source": dir, "options": ["rbind", "rw"]}));
                }
                MountType::Bind => {
                    let src_root: PathBuf = match &m.from {
                        Some(f) => {
                            let f = self.expand(st, f)?;
                            let (v, _) = self.open_from(&f)?;
                            let p = v.path().to_path_buf();
                            views.push(v);
                            p
                        }
                        None => self.req.context.clone(),
                    };
                    let src =
                        fsutil::secure_join(&src_root, m.source.as_deref().unwrap_or("/"), true)?;
                    if std::fs::symlink_metadata(&src).is_err() {
                        return Err(BuildError::NotFound(format!(
                            "RUN --mount: source {} not found",
                            m.source.as_deref().unwrap_or("/")
                        )));
                    }
                    let ro = if m.readonly { "ro" } else { "rw" };
                    mounts.push(json!({"destination": target, "type": "bind", "source": src, "options": ["rbind", ro]}));
                }
                MountType::Tmpfs => {
                    let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = m.size {
                        o.push(format!("size={s}"));
                    }
                    mounts.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}));
                }
                MountType::Secret | MountType::Ssh => {
                    return Err(BuildError::Invalid(
                        "RUN --mount=type=secret and type=ssh are not supported by this builder"
                            .into(),
                    ))
                }
            }
        }
        let bundle = self.eng.build_root.join("tmp").join(&rf.id[..16]);
        let _bundle_guard = RemoveDir(bundle.clone());
        std::fs::create_dir_all(&bundle).map_err(|e| BuildError::io("create", &bundle, e))?;
        let hostname = short(&rf.id);
        // Held until the container is gone: dropping it unwires the step.
        let bridge = match mode {
            NetworkMode::Default => self.eng.host.run_network(&rf.id, &hostname)?,
            NetworkMode::Host | NetworkMode::None => None,
        };
        let network = match (mode, &bridge) {
            (NetworkMode::Host, _) => Network::Host,
            (NetworkMode::Default, Some(b)) => Network::Join(b.netns.clone()),
            _ => Network::None,
        };
        match &bridge {
            Some(b) => {
                for (name, body) in [("hosts", &b.hosts), ("resolv.conf", &b.resolv_conf)] {
                    let src = bundle.join(name);
                    std::fs::write(&src, body).map_err(|e| BuildError::io("write", &src, e))?;
                    if let Some(stub) = etc_mount_target(&rf.dir, name) {
                        mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": src, "options": ["rbind", "ro"]}));
                        stubs.extend(stub);
                    }
                }
            }
            None if network == Network::Host => {
                let rc = rf.dir.join("etc/resolv.conf");
                if std::fs::symlink_metadata(&rc).is_ok_and(|m| m.is_file())
                    && Path::new("/etc/resolv.conf").exists()
                {
                    mounts.push(json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro"]}));
                }
            }
            None => {}
        }
        let spec = RunSpec {
            rootfs: rf.dir.clone(),
            args: args.clone(),
            env,
            cwd,
            user,
            hostname,
            network,
            mounts,
            cgroups_path: format!("berth-build/{}", rf.id),
        };
        let cfg = serde_json::to_vec(&run::oci_spec(&spec))
            .map_err(|e| BuildError::Internal(format!("encode spec: {e}")))?;
        std::fs::write(bundle.join("config.json"), cfg)
            .map_err(|e| BuildError::io("write", bundle.join("config.json"), e))?;
        self.say(format!(" ---> Running in {}\n", short(&rf.id)));
        // A chunk may end inside a UTF-8 sequence: the tail waits for the next chunk.
        let pending = std::sync::Mutex::new(Vec::<u8>::new());
        let out = |b: &[u8]| {
            let Ok(mut p) = pending.lock() else { return };
            p.extend_from_slice(b);
            let keep = match std::str::from_utf8(&p) {
                Ok(_) => 0,
                Err(e) if e.error_len().is_none() => p.len() - e.valid_up_to(),
                Err(_) => 0,
            };
            let at = p.len() - keep;
            let tail = p.split_off(at);
            let text = String::from_utf8_lossy(&p).into_owned();
            *p = tail;
            if !text.is_empty() {
                self.say(text);
            }
        };
        let code = run::run(
            &self.eng.runtime_bin,
            &self.eng.runtime_root,
            &bundle,
            &rf.id,
            self.cancel,
            &out,
        )?;
        drop(bridge);
        drop(views);
        if let Ok(p) = pending.lock() {
            if !p.is_empty() {
                self.say(String::from_utf8_lossy(&p).into_owned());
            }
        }
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: cmd_text,
                code,
            });
        }
        for s in stubs.iter().rev() {
            let _ = std::fs::remove_dir(s).or_else(|_| std::fs::remove_file(s));
        }
        self.say(format!(
            " ---> Removed intermediate container {}\n",
            short(&rf.id)
        ));
        let (layer, size) = rf.commit(self.epoch)?;
        self.push_layer(st, layer, size);
        self.push_history(st, created_by, false);
        self.remember(st, &key)
    }

    /// A stage (name or index) or an image, mounted read-only; plus a string naming its content.
    fn open_from(&self, name: &str) -> Result<(View, String), BuildError> {
        let stage = self
            .names
            .get(&name.to_ascii_lowercase())
            .copied()
            .or_else(|| name.parse::<usize>().ok());
        if let Some(j) = stage {
            let st = self
                .done
                .lock()
                .map_err(|_| BuildError::Internal("stage table poisoned".into()))?
                .get(&j)
                .cloned();
            if let Some(st) = st {
                let v = View::open(self.eng, &st.layers)?;
                return Ok((v, format!("stage:{}", st.key)));
            }
            if name.parse::<usize>().is_ok() {
                return Err(BuildError::NotFound(format!(
                    "invalid from flag value {name}: stage {j} is not built before this one"
                )));
            }
        }
        let say = |s: &str| self.say(s.to_string());
        let rec = self.eng.host.image(name, false, &say)?;
        let v = View::open(self.eng, &rec.layers)?;
        Ok((v, format!("image:{}", rec.id())))
    }

    fn copy_step(&self, st: &mut State, c: &ast::Copy, is_add: bool) -> Result<(), BuildError> {
        let kw = if is_add { "ADD" } else { "COPY" };
        let dest_raw = self.expand(st, &c.dest)?;
        let cur = st.str_field("WorkingDir");
        let dest_is_dir_flag =
            dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        let dest_abs = if dest_raw.starts_with('/') {
            format!("/{}", fsutil::clean_rel(&dest_raw))
        } else {
            format!(
                "/{}",
                fsutil::clean_rel(&format!(
                    "{}/{dest_raw}",
                    if cur.is_empty() { "/" } else { &cur }
                ))
            )
        };
        let chown = c.chown.as_deref().map(|s| self.expand(st, s)).transpose()?;
        let chmod = match c.chmod.as_deref() {
            Some(m) => {
                let m = self.expand(st, m)?;
                Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| {
                            BuildError::Invalid(format!(
                                "invalid chmod parameter {m:?}: want an octal mode"
                            ))
                        })?,
                )
            }
            None => None,
        };
        let (source, from_id) = match &c.from {
            Some(f) => {
                let f = self.expand(st, f)?;
                let (v, id) = self.open_from(&f)?;
                (Source::View(v), Some(id))
            }
            None => (Source::Context, None),
        };
        let root: PathBuf = match &source {
            Source::Context => self.req.context.clone(),
            Source::View(v) => v.path().to_path_buf(),
        };

        enum Item {
            Path { rel: String, path: PathBuf },
            Heredoc { name: String, content: String },
            Url { url: String, file: PathBuf },
        }
        let tmp = self
            .eng
            .build_root
            .join("tmp")
            .join(&rootfs::random_id()[..16]);
        let _tmp_guard = RemoveDir(tmp.clone());
        let mut items = Vec::new();
        for w in &c.sources {
            let hd_name = w
                .trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(|ch| ch == '"' || ch == '\'');
            {
                if let Some(h) = c.heredocs.iter().find(|h| h.name == hd_name) {
                    let content = if h.expand {
                        expand_heredoc(self, st, &h.content)?
                    } else {
                        h.content.clone()
                    };
                    items.push(Item::Heredoc {
                        name: h.name.clone(),
                        content,
                    });
                    continue;
                }
            }
            let w = self.expand(st, w)?;
            if is_add && (w.starts_with("http://") || w.starts_with("https://")) {
                std::fs::create_dir_all(&tmp).map_err(|e| BuildError::io("create", &tmp, e))?;
                let file = tmp.join(format!("url{}", items.len()));
                download(&w, &file)?;
                items.push(Item::Url { url: w, file });
                continue;
            }
            let rel = fsutil::clean_rel(&w);
            let matches = if fsutil::has_glob(&rel) {
                let m = fsutil::glob(&root, &rel)?;
                if m.is_empty() {
                    return Err(BuildError::NotFound(format!(
                        "{kw} failed: no source files were specified"
                    )));
                }
                m
            } else {
                vec![rel]
            };
            for m in matches {
                let path = fsutil::secure_join(&root, &m, true)?;
                if std::fs::symlink_metadata(&path).is_err() {
                    let what = if from_id.is_some() {
                        ""
                    } else {
                        " in build context or excluded by .dockerignore"
                    };
                    return Err(BuildError::NotFound(format!(
                        "{kw} failed: file not found{what}: stat {m}: file does not exist"
                    )));
                }
                items.push(Item::Path { rel: m, path });
            }
        }
        if items.is_empty() {
            return Err(BuildError::Invalid(format!(
                "{kw} requires at least two arguments"
            )));
        }
        let multiple = items.len() > 1;
        if multiple && !dest_is_dir_flag {
            return Err(BuildError::Invalid(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }

        // The key: everything that decides the result, file contents by digest.
        let mut content = KeyBuilder::new("");
        let mut kind = "file";
        for it in &items {
            match it {
                Item::Path { rel, path } => {
                    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                        kind = "dir";
                    }
                    match &from_id {
                        Some(id) => {
                            content.add(id).add(rel);
                        }
                        None => {
                            content.add(&self.hash_tree(rel, path)?);
                        }
                    }
                }
                Item::Heredoc {
                    name,
                    content: body,
                } => {
                    content.add("heredoc").add(name).add(body);
                }
                Item::Url { url, file } => {
                    content.add(url).add(&super::cache::hash_file(file)?);
                }
            }
        }
        if multiple {
            kind = "multi";
        }
        let content = content.finish();
        let created_by = format!(
            "{} #(nop) {kw} {kind}:{} in {dest_raw} ",
            st.shell().join(" "),
            content.hex()
        );
        let mut k = KeyBuilder::new(&st.key);
        k.add(kw)
            .add(content.as_str())
            .add(&dest_abs)
            .add(&dest_is_dir_flag.to_string())
            .add(&format!("{chown:?} {chmod:?}"));
        let key = k.finish();
        if self.take_cached(st, &key) {
            return Ok(());
        }

        let rf = Rootfs::open(self.eng, &st.layers)?;
        let owner = match &chown {
            Some(spec) => {
                let u = fsutil::resolve_user(spec, &rf.dir, false)?;
                (u.uid, u.gid)
            }
            None => (0, 0),
        };
        let attrs = CopyAttrs {
            owner: Some(owner),
            mode: chmod,
            clamp: self.epoch,
        };
        let dest = fsutil::secure_join(&rf.dir, &dest_abs, true)?;
        let dest_exists_dir = dest.is_dir();
        let dest_is_dir = dest_is_dir_flag || multiple || dest_exists_dir;
        let make_dest_dir = |d: &Path| -> Result<(), BuildError> {
            if !d.is_dir() {
                if let Some(p) = d.parent() {
                    fsutil::mkdir_all(p, None)?;
                }
                fsutil::mkdir_all(d, Some(owner))?;
            }
            Ok(())
        };
        let file_target = |name: &str| -> Result<PathBuf, BuildError> {
            if dest_is_dir {
                make_dest_dir(&dest)?;
                Ok(dest.join(name))
            } else {
                if let Some(p) = dest.parent() {
                    fsutil::mkdir_all(p, None)?;
                }
                Ok(dest.clone())
            }
        };
        for it in &items {
            match it {
                Item::Path { rel, path } => {
                    let md = std::fs::symlink_metadata(path)
                        .map_err(|e| BuildError::io("stat", path, e))?;
                    if is_add && md.is_file() && super::context::is_archive(path) {
                        make_dest_dir(&dest)?;
                        super::context::extract_archive(path, &dest)?;
                    } else if md.is_dir() {
                        let created = !dest.is_dir();
                        make_dest_dir(&dest)?;
                        // BuildKit's copier gives a directory it creates for a directory
                        // source the --chmod mode too (an existing one keeps its own).
                        if let (true, Some(m)) = (created, chmod) {
                            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(m))
                                .map_err(|e| BuildError::io("chmod", &dest, e))?;
                        }
                        let mut names: Vec<_> = std::fs::read_dir(path)
                            .map_err(|e| BuildError::io("read directory", path, e))?
                            .filter_map(|e| e.ok().map(|e| e.file_name()))
                            .collect();
                        names.sort();
                        for n in names {
                            fsutil::copy_tree(&path.join(&n), &dest.join(&n), &attrs)?;
                        }
                    } else {
                        let base = Path::new(rel)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| rel.clone());
                        let t = file_target(&base)?;
                        fsutil::copy_tree(path, &t, &attrs)?;
                    }
                }
                Item::Heredoc { name, content } => {
                    let t = file_target(name)?;
                    // BuildKit writes inline files 0664.
                    write_file(
                        &t,
                        content.as_bytes(),
                        chmod.unwrap_or(0o664),
                        owner,
                        self.epoch,
                    )?;
                }
                Item::Url { url, file } => {
                    let base = url
                        .split(['?', '#'])
                        .next()
                        .and_then(|u| u.rsplit('/').next())
                        .filter(|b| !b.is_empty())
                        .unwrap_or("download")
                        .to_string();
                    let t = file_target(&base)?;
                    let body = std::fs::read(file).map_err(|e| BuildError::io("read", file, e))?;
                    write_file(&t, &body, chmod.unwrap_or(0o600), owner, self.epoch)?;
                }
            }
        }
        drop(source);
        let (layer, size) = rf.commit(self.epoch)?;
        self.push_layer(st, layer, size);
        self.push_history(st, created_by, false);
        self.remember(st, &key)
    }

    /// Digest of a context path: names, types, modes, link targets and file contents (not
    /// mtimes or owners: COPY sets the owner).
    fn hash_tree(&self, rel: &str, path: &Path) -> Result<String, BuildError> {
        let mut entries: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
        collect(rel, path, &mut entries)?;
        let files: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.2.is_file())
            .map(|(i, _)| i)
            .collect();
        let mut digests: Vec<Option<String>> = vec![None; entries.len()];
        // Hash the files on two threads: cold builds of large contexts are bound by sha256.
        let chunks: Vec<Vec<usize>> = {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for (n, i) in files.iter().enumerate() {
                if n % 2 == 0 {
                    a.push(*i)
                } else {
                    b.push(*i)
                }
            }
            vec![a, b]
        };
        let results: Vec<Result<Vec<(usize, String)>, BuildError>> = std::thread::scope(|sc| {
            let hs: Vec<_> = chunks
                .iter()
                .map(|ch| {
                    let entries = &entries;
                    sc.spawn(move || {
                        ch.iter()
                            .map(|i| {
                                let (r, p, _) = &entries[*i];
                                self.cache.file_digest(r, p).map(|d| (*i, d))
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BuildError::Internal("hash thread panicked".into()))
                    })
                })
                .collect()
        });
        for r in results {
            for (i, d) in r? {
                digests[i] = Some(d);
            }
        }
        let mut k = KeyBuilder::new("tree");
        for (i, (r, p, md)) in entries.iter().enumerate() {
            k.add(r).add(&format!("{:o}", md.mode()));
            if md.file_type().is_symlink() {
                let t = std::fs::read_link(p).map_err(|e| BuildError::io("readlink", p, e))?;
                k.add(&t.to_string_lossy());
            }
            if let Some(d) = &digests[i] {
                k.add(d);
            }
        }
        Ok(k.finish().to_string())
    }
}

fn collect(
    rel: &str,
    path: &Path,
    out: &mut Vec<(String, PathBuf, std::fs::Metadata)>,
) -> Result<(), BuildError> {
    let md = std::fs::symlink_metadata(path).map_err(|e| BuildError::io("stat", path, e))?;
    let is_dir = md.is_dir();
    out.push((rel.to_string(), path.to_path_buf(), md));
    if is_dir {
        let mut names: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| BuildError::io("read directory", path, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", n.to_string_lossy())
            };
            collect(&r, &path.join(&n), out)?;
        }
    }
    Ok(())
}

/// One EXPOSE word as nat.ParsePortSpec reads it: `[[ip:]hostPort:]port[-end][/proto]`, a
/// range giving one port per number; the result is `port/proto`, protocol lower-cased.
fn parse_port_spec(raw: &str) -> Result<Vec<String>, BuildError> {
    let bad = |what: &str| BuildError::Invalid(format!("invalid {what}: {raw}"));
    let (port, proto) = match raw.split_once('/') {
        None => (raw, "tcp".to_string()),
        Some((p, "")) => (p, "tcp".to_string()),
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::Invalid(format!("invalid proto: {proto}")));
    }
    // The container port is the last `:` part (the others are a host address and port).
    let container = port.rsplit(':').next().unwrap_or(port);
    if container.is_empty() {
        return Err(BuildError::Invalid(format!(
            "no port specified: {raw}<empty>"
        )));
    }
    let (start, end) = match container.split_once('-') {
        Some((a, b)) => (a, b),
        None => (container, container),
    };
    let start: u16 = start.parse().map_err(|_| bad("containerPort"))?;
    let end: u16 = end.parse().map_err(|_| bad("containerPort"))?;
    if end < start {
        return Err(BuildError::Invalid(format!(
            "invalid range specified for container port: {container}"
        )));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// Appends Docker's default PATH to the Env when there is no PATH in it.
fn set_default_path(st: &mut State) {
    if !st.env().iter().any(|e| e.split('=').next() == Some("PATH")) {
        let mut env = st.env();
        env.push(DEFAULT_PATH.to_string());
        st.cfg().insert("Env".into(), json!(env));
    }
}

fn set_env(st: &mut State, k: &str, v: &str) {
    let mut env = st.env();
    let entry = format!("{k}={v}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
    st.cfg().insert("Env".into(), json!(env));
}

/// The shell script of a RUN with here-documents: `RUN <<EOF` alone runs the body; a command
/// that reads here-documents gets their bodies after it, as a shell script would have them.
fn heredoc_script(cmd: &str, heredocs: &[ast::Heredoc]) -> String {
    if heredocs.is_empty() {
        return cmd.to_string();
    }
    let t = cmd.trim();
    let only = t.starts_with("<<") && !t.contains(char::is_whitespace) && heredocs.len() == 1;
    if only {
        return heredocs[0].content.clone();
    }
    let mut s = cmd.to_string();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        if !h.content.ends_with('\n') && !h.content.is_empty() {
            s.push('\n');
        }
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

fn expand_heredoc(_run: &Run<'_>, st: &State, body: &str) -> Result<String, BuildError> {
    let lookup =
        |n: &str| -> Option<String> { st.env_get(n).or_else(|| st.args.get(n).cloned().flatten()) };
    // BuildKit expands here-document bodies with `\` whatever `# escape=` says.
    crate::words::expand_heredoc(body, '\\', &lookup)
        .map_err(|e| BuildError::Invalid(e.to_string()))
}

fn write_file(
    t: &Path,
    body: &[u8],
    mode: u32,
    owner: (u32, u32),
    clamp: Option<i64>,
) -> Result<(), BuildError> {
    if std::fs::symlink_metadata(t).is_ok() {
        let _ = std::fs::remove_file(t);
    }
    std::fs::write(t, body).map_err(|e| BuildError::io("write", t, e))?;
    fsutil::lchown(t, owner.0, owner.1)?;
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io("chmod", t, e))?;
    if let Some(e) = clamp {
        fsutil::clamp_mtimes(t, e)?;
    }
    Ok(())
}

/// ADD of a URL: the body to `file`.
fn download(url: &str, file: &Path) -> Result<(), BuildError> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| BuildError::Internal(format!("http client: {e}")))?;
    let mut resp = client
        .get(url)
        .send()
        .map_err(|e| BuildError::Invalid(format!("ADD failed: download {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(BuildError::Invalid(format!(
            "ADD failed: download {url}: HTTP status {}",
            resp.status()
        )));
    }
    let mut f = std::fs::File::create(file).map_err(|e| BuildError::io("create", file, e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = resp
            .read(&mut buf)
            .map_err(|e| BuildError::Invalid(format!("ADD failed: download {url}: {e}")))?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut f, &buf[..n])
            .map_err(|e| BuildError::io("write", file, e))?;
    }
    Ok(())
}

/// Whether /etc/`name` of the rootfs can take the container's file: Some(None) when the image
/// has it as a regular file, Some(Some(stub)) when it is missing from a real /etc (the mount
/// point made for the step, removed before the commit as Docker's init layer keeps it out of
/// images), None otherwise (a symlink, no /etc: left as the image has it).
fn etc_mount_target(root: &Path, name: &str) -> Option<Option<PathBuf>> {
    let etc = root.join("etc");
    if !std::fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    let p = etc.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => Some(None),
        Ok(_) => None,
        Err(_) => Some(Some(p)),
    }
}

/// Removes a directory tree at drop.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_scripts() {
        let h = vec![ast::Heredoc {
            name: "EOF".into(),
            content: "echo a\necho b\n".into(),
            expand: true,
        }];
        assert_eq!(heredoc_script("<<EOF", &h), "echo a\necho b\n");
        assert_eq!(
            heredoc_script("cat <<EOF > /f", &h),
            "cat <<EOF > /f\necho a\necho b\nEOF\n"
        );
        assert_eq!(heredoc_script("true", &[]), "true");
    }

    #[test]
    fn expose_specs_as_nat_parses_them() {
        assert_eq!(parse_port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_port_spec("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            parse_port_spec("9000-9002").unwrap(),
            vec!["9000/tcp", "9001/tcp", "9002/tcp"]
        );
        assert_eq!(
            parse_port_spec("7000-7001/udp").unwrap(),
            vec!["7000/udp", "7001/udp"]
        );
        assert_eq!(parse_port_spec("8080/").unwrap(), vec!["8080/tcp"]);
        assert_eq!(
            parse_port_spec("127.0.0.1:8000:80").unwrap(),
            vec!["80/tcp"]
        );
        for bad in ["", "x", "70000", "9002-9000", "80/icmp", "1-x"] {
            let e = parse_port_spec(bad).unwrap_err().to_string();
            assert!(e.contains("invalid") || e.contains("no port"), "{bad}: {e}");
        }
    }

    #[test]
    fn default_path_only_when_the_base_has_none() {
        let mut st = State {
            config: json!({"config": {"Env": ["A=1"]}}),
            layers: Vec::new(),
            key: String::new(),
            args: BTreeMap::new(),
            size: 0,
            cmd_set: false,
        };
        set_default_path(&mut st);
        assert_eq!(st.env(), vec!["A=1".to_string(), DEFAULT_PATH.to_string()]);
        st.config = json!({"config": {"Env": ["PATH=/x", "B=2"]}});
        set_default_path(&mut st);
        assert_eq!(st.env(), vec!["PATH=/x", "B=2"]);
        st.config = json!({"config": {}});
        set_default_path(&mut st);
        assert_eq!(st.env(), vec![DEFAULT_PATH]);
    }
}
