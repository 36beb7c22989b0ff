//! What the runtime suites share: [`Case`], one test's world (a runtime with its own root, a
//! busybox bundle, a unique id and cgroups path, a guard that deletes the container), and small
//! helpers for config JSON and /proc files.

// Each suite file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use anyhow::{ensure, Context, Result};
use berth_testutil::{
    cgroup, require_root, unique_id, Bundle, CmdOutput, ContainerGuard, Extras, Running, Runtime,
};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::time::Duration;

/// The runtime under test when `BERTH_TEST_RUNTIME` is not set.
pub const DEFAULT_RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");
pub const RUNTIME_ENV: &str = "BERTH_TEST_RUNTIME";
pub const WAIT: Duration = Duration::from_secs(15);

/// One test's world: a runtime with its own root, a bundle, an id and a cgroups path.
/// Fields drop in order: the guard deletes the container before the bundle and root go.
pub struct Case {
    pub guard: ContainerGuard,
    pub rt: Runtime,
    pub bundle: Bundle,
    pub cgroup: String,
}

impl Case {
    pub fn new(name: &str, args: &[&str]) -> Result<Case> {
        require_root()?;
        let rt = Runtime::from_env(RUNTIME_ENV, DEFAULT_RUNTIME)?;
        let id = unique_id(name);
        let mut bundle = Bundle::busybox(args)?;
        // One level only: the runtime removes the leaf on delete, so nothing stays behind
        // (a `parent/<id>` path would leave the parent in every hierarchy).
        let cgroup = format!("berth-test-{id}");
        bundle.set_cgroups_path(&cgroup);
        bundle.save()?;
        let guard = rt.guard(&id);
        Ok(Case {
            guard,
            rt,
            bundle,
            cgroup,
        })
    }

    pub fn id(&self) -> &str {
        self.guard.id()
    }

    pub fn config(&mut self) -> &mut Value {
        self.bundle.config_mut()
    }

    pub fn save(&self) -> Result<()> {
        Ok(self.bundle.save()?)
    }

    /// `run` in the foreground; returns the runtime's output (the container's stdio).
    pub fn run(&self) -> Result<CmdOutput> {
        Ok(self.rt.run(self.id(), self.bundle.path())?)
    }

    /// `create` with the output files kept, so the container's stdout (inherited from the
    /// runtime) can be read later.
    pub fn create(&self) -> Result<Running> {
        self.create_with(&[], &Extras::default())
    }

    /// `create` with extra flags (e.g. `--console-socket S`) and [`Extras`], started but not
    /// waited for (the caller may have to serve a console socket first).
    pub fn spawn_create(&self, flags: &[&str], extras: &Extras) -> Result<Running> {
        let mut args: Vec<&OsStr> = vec![OsStr::new("create")];
        args.extend(flags.iter().map(OsStr::new));
        args.extend([
            OsStr::new("--bundle"),
            self.bundle.path().as_os_str(),
            OsStr::new(self.id()),
        ]);
        Ok(self.rt.spawn_with(args, extras)?)
    }

    /// `create` with extra flags and [`Extras`], which must succeed.
    pub fn create_with(&self, flags: &[&str], extras: &Extras) -> Result<Running> {
        let mut create = self.spawn_create(flags, extras)?;
        create.wait()?.check()?;
        Ok(create)
    }

    /// `exec <id> <args...>` with [`Extras`].
    pub fn exec_with(&self, args: &[&str], extras: &Extras) -> Result<CmdOutput> {
        let mut all = vec!["exec", self.id()];
        all.extend_from_slice(args);
        Ok(self.rt.invoke_with(all, extras)?)
    }

    /// `create` then `start`; returns the create invocation (its stdout is the container's).
    pub fn create_and_start(&self) -> Result<Running> {
        let create = self.create()?;
        self.rt.start_container(self.id())?.check()?;
        Ok(create)
    }

    pub fn pid(&self) -> Result<i32> {
        Ok(self.rt.pid(self.id())?)
    }

    pub fn cgroup_dir(&self, controller: &str) -> Result<std::path::PathBuf> {
        cgroup::dir_for(controller, &self.cgroup)?.with_context(|| {
            format!("no cgroup hierarchy with the {controller} controller on this host")
        })
    }

    /// Fails if anything of this container is left: state, files under the root, cgroups,
    /// mounts of the bundle.
    pub fn assert_nothing_left(&self) -> Result<()> {
        let state = self.rt.invoke(["state", self.id()])?;
        ensure!(
            !state.success(),
            "state of {} still succeeds: {state}",
            self.id()
        );
        let files = self.rt.leftovers(self.id())?;
        ensure!(
            files.is_empty(),
            "files for {} left under the root: {files:?}",
            self.id()
        );
        for dir in cgroup::all_dirs_for(&self.cgroup)? {
            ensure!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")?
            .lines()
            .filter(|l| l.contains(&bundle))
            .map(str::to_owned)
            .collect();
        ensure!(mounts.is_empty(), "mounts of the bundle left: {mounts:?}");
        Ok(())
    }

    /// Whether berth-only assertions apply; prints a note when they are skipped.
    pub fn berth_only(&self, what: &str) -> bool {
        if self.rt.is_berth() {
            true
        } else {
            eprintln!(
                "note: {} is not berth-runtime, skipping berth-only assertion: {what}",
                self.rt.name()
            );
            false
        }
    }

    /// Checks that a refused operation failed with an error that says what was wrong:
    /// nonzero exit, and stderr (case-insensitively) containing one of `any_of`; for berth
    /// also one of `berth_any_of`.
    pub fn assert_refused(
        &self,
        out: &CmdOutput,
        any_of: &[&str],
        berth_any_of: &[&str],
    ) -> Result<()> {
        ensure!(!out.success(), "expected a failure: {out}");
        let err = out.stderr.to_lowercase();
        ensure!(
            !err.trim().is_empty(),
            "failed without an error message: {out}"
        );
        if !any_of.is_empty() {
            ensure!(
                any_of.iter().any(|k| err.contains(&k.to_lowercase())),
                "error should mention one of {any_of:?}: {out}"
            );
        }
        if !berth_any_of.is_empty()
            && self.berth_only(&format!("error mentions one of {berth_any_of:?}"))
        {
            ensure!(
                berth_any_of.iter().any(|k| err.contains(&k.to_lowercase())),
                "error should mention one of {berth_any_of:?}: {out}"
            );
        }
        Ok(())
    }
}

pub fn push(value: &mut Value, item: Value) -> Result<()> {
    value
        .as_array_mut()
        .context("expected a json array")?
        .push(item);
    Ok(())
}

/// The `Name:` line of a /proc status file, e.g. `CapEff`.
pub fn status_field<'a>(status: &'a str, name: &str) -> Result<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .with_context(|| format!("no {name} in status:\n{status}"))
}
