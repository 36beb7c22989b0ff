//! The five capability sets of the container process.

use std::collections::HashSet;

use caps::{CapSet, Capability};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Result, RuntimeError};

/// Converts the config's capability names into the `caps` crate's type. Names the running kernel
/// does not know are dropped, as runc does, so a newer config still runs on an older kernel.
pub fn to_set(caps: Option<&Capabilities>) -> HashSet<Capability> {
    let mut out = HashSet::new();
    let Some(caps) = caps else { return out };
    let last = last_cap();
    for c in caps {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if let Some(cap) = name.and_then(|n| n.parse::<Capability>().ok()) {
            if cap.index() <= last {
                out.insert(cap);
            }
        }
    }
    out
}

/// The highest capability the running kernel knows, read once.
fn last_cap() -> u8 {
    static LAST: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// The resolved sets.
#[derive(Debug, Clone, Default)]
pub struct CapPlan {
    pub bounding: HashSet<Capability>,
    pub effective: HashSet<Capability>,
    pub permitted: HashSet<Capability>,
    pub inheritable: HashSet<Capability>,
    pub ambient: HashSet<Capability>,
}

pub fn plan(c: Option<&LinuxCapabilities>) -> CapPlan {
    match c {
        None => CapPlan::default(),
        Some(c) => CapPlan {
            bounding: to_set(c.bounding().as_ref()),
            effective: to_set(c.effective().as_ref()),
            permitted: to_set(c.permitted().as_ref()),
            inheritable: to_set(c.inheritable().as_ref()),
            ambient: to_set(c.ambient().as_ref()),
        },
    }
}

/// Drops everything outside the bounding set. Needs CAP_SETPCAP, so it runs before the user
/// switch.
pub fn drop_bounding(p: &CapPlan) -> Result<()> {
    // One prctl per capability, no read-back: dropping an absent one is a no-op for the kernel.
    let last = last_cap();
    for cap in caps::all() {
        if cap.index() <= last && !p.bounding.contains(&cap) {
            crate::sys::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap.index()))
                .map_err(|e| RuntimeError::sys(format!("drop {cap} from bounding set"), e))?;
        }
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient sets, after the user switch.
pub fn apply(p: &CapPlan) -> Result<()> {
    let set = |which: CapSet, v: &HashSet<Capability>, name: &str| {
        caps::set(None, which, v)
            .map_err(|e| RuntimeError::Init(format!("set {name} capabilities: {e}")))
    };
    // Each capset must keep effective within permitted: shrink effective first, then
    // permitted, then set inheritable (bounded by the new permitted set).
    set(
        CapSet::Effective,
        &p.effective.intersection(&p.permitted).copied().collect(),
        "effective",
    )?;
    set(CapSet::Permitted, &p.permitted, "permitted")?;
    set(CapSet::Inheritable, &p.inheritable, "inheritable")?;
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| RuntimeError::Init(format!("clear ambient capabilities: {e}")))?;
        for cap in &p.ambient {
            // An ambient capability must be permitted and inheritable; skip it otherwise, as
            // the kernel would refuse it.
            if p.permitted.contains(cap) && p.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap)
                    .map_err(|e| RuntimeError::Init(format!("raise ambient {cap}: {e}")))?;
            }
        }
    }
    Ok(())
}
