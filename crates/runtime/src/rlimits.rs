//! Process resource limits. Validation against the hard limit happens in [`crate::config`].

use oci_spec::runtime::PosixRlimit;

use crate::config::{rlimit_name, rlimit_resource};
use crate::error::{Result, RuntimeError};

pub fn apply(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        crate::sys::setrlimit(rlimit_resource(r.typ()), r.soft(), r.hard()).map_err(|e| {
            RuntimeError::sys(
                format!(
                    "set rlimit {} to {}:{}",
                    rlimit_name(r.typ()),
                    r.soft(),
                    r.hard()
                ),
                e,
            )
        })?;
    }
    Ok(())
}
