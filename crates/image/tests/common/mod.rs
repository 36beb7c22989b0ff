//! Helpers shared by the snapshot tests.

use std::path::{Path, PathBuf};

use berth_image::snapshot::{mount, unmount, MountSpec};

/// A mount that is undone when the test ends, also when it fails.
pub struct Mounted(pub PathBuf);

impl Mounted {
    pub fn new(spec: &MountSpec, target: &Path) -> Mounted {
        std::fs::create_dir_all(target).expect("mkdir target");
        mount(spec, target).expect("mount");
        Mounted(target.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            eprintln!("{e}");
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
