//! Image services the container side needs: resolving a name to an image and its config.

use berth_image::reference::Reference;

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker shows names.
pub fn familiar(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_string(),
    }
}
