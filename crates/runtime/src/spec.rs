//! The default `config.json` that `berth-runtime spec` writes: runc's defaults plus Docker's
//! default seccomp profile, so a bundle made with it is as confined as a `docker run` container.

use oci_spec::runtime::{
    LinuxBuilder, LinuxIdMappingBuilder, LinuxNamespaceType, Mount, ProcessBuilder, Spec,
};

use crate::error::{Result, RuntimeError};

/// `rootless`: a user namespace mapping root to the caller, and no cgroup namespace games.
pub fn default_spec(rootless: bool) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into());
    spec.set_hostname(Some("berth".into()));
    let mut process = spec
        .process()
        .clone()
        .unwrap_or_else(|| ProcessBuilder::default().build().unwrap_or_default());
    process.set_terminal(Some(true));
    let caps: Vec<String> = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .map(|s| {
            s.iter()
                .filter_map(|c| {
                    serde_json::to_value(c)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                })
                .collect()
        })
        .unwrap_or_default();
    spec.set_process(Some(process));
    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().unwrap_or_default());
    let cap_refs: Vec<&str> = caps.iter().map(String::as_str).collect();
    linux.set_seccomp(Some(crate::seccomp::default_profile(&cap_refs)));
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let map = |host| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
                .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))
        };
        linux.set_uid_mappings(Some(vec![map(uid)?]));
        linux.set_gid_mappings(Some(vec![map(gid)?]));
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
        ns.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?,
        );
        linux.set_namespaces(Some(ns));
        linux.set_resources(None);
        let mounts: Vec<Mount> = spec
            .mounts()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ().as_deref() != Some("cgroup"))
            .collect();
        spec.set_mounts(Some(mounts));
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}
