//! Which namespaces a container gets: new ones (clone flags) and existing ones to join (paths).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Result, RuntimeError};

/// The namespace plan derived from the config.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// `CLONE_NEW*` flags for the namespaces to create.
    pub new: CloneFlags,
    /// Namespaces to join, in the order to join them (user first, mount last).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        Self {
            new: CloneFlags::empty(),
            join: Vec::new(),
        }
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // Refused by config validation; no flag is the safe answer.
        LinuxNamespaceType::Time => CloneFlags::empty(),
    }
}

/// The file name under `/proc/<pid>/ns/`.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Join order: the user namespace first (it grants the capabilities for the others), the mount
/// namespace last (joining it changes the root, after which other paths would not resolve).
fn rank(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Ipc => 1,
        LinuxNamespaceType::Uts => 2,
        LinuxNamespaceType::Network => 3,
        LinuxNamespaceType::Pid => 4,
        LinuxNamespaceType::Cgroup => 5,
        LinuxNamespaceType::Time => 6,
        LinuxNamespaceType::Mount => 7,
    }
}

pub fn plan(namespaces: &[LinuxNamespace]) -> NamespacePlan {
    let mut p = NamespacePlan::default();
    for ns in namespaces {
        match ns.path() {
            Some(path) => p.join.push((ns.typ(), path.clone())),
            None => p.new |= clone_flag(ns.typ()),
        }
    }
    p.join.sort_by_key(|(t, _)| rank(t.to_owned()));
    p
}

/// Plan for joining every namespace of a running process (for exec): each of `types` that the
/// process does not already share with us.
pub fn plan_join_process(pid: i32, types: &[LinuxNamespaceType]) -> NamespacePlan {
    let mut p = NamespacePlan::default();
    for &t in types {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
        let ours = PathBuf::from(format!("/proc/self/ns/{}", proc_name(t)));
        if same_file(&theirs, &ours) {
            continue;
        }
        p.join.push((t, theirs));
    }
    p.join.sort_by_key(|(t, _)| rank(t.to_owned()));
    p
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Opens every namespace file first, then joins them: after joining a mount namespace the other
/// paths may no longer resolve.
pub fn join_all(join: &[(LinuxNamespaceType, PathBuf)]) -> Result<()> {
    let mut files = Vec::with_capacity(join.len());
    for (t, path) in join {
        let f =
            std::fs::File::open(path).map_err(|e| RuntimeError::io("open namespace", path, e))?;
        files.push((*t, path, f));
    }
    for (t, path, f) in &files {
        nix::sched::setns(f.as_fd(), clone_flag(*t)).map_err(|e| {
            RuntimeError::sys(
                format!("join {} namespace {}", proc_name(*t), path.display()),
                e,
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    #[test]
    fn plan_orders_joins() {
        let ns = vec![
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Mount)
                .path("/m")
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Pid)
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .path("/u")
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()
                .unwrap(),
        ];
        let p = plan(&ns);
        assert_eq!(p.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET);
        let order: Vec<_> = p.join.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            order,
            vec![LinuxNamespaceType::User, LinuxNamespaceType::Mount]
        );
    }
}
