//! Images for berth: references, the content store, manifests and configs, layers (unpack and
//! diff), snapshots on overlayfs, image records and archives.
//!
//! Content is addressed by digest and written once: ingest into a temp file, verify size and
//! digest, fsync, rename into `content/blobs/<alg>/<hex>`. Layers are unpacked into one snapshot
//! directory per chain ID, shared between images; a container's root filesystem is an overlay
//! of those (read-only) plus its own upper directory, described as data and mounted by one
//! function.

pub mod archive;
pub mod compress;
pub mod content;
pub mod diff;
pub mod digest;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod unpack;
