//! Image archives: `docker save` tarballs and OCI image layouts, read and written through the
//! content store, and import of a plain root filesystem tar as a one-layer image.
//!
//! Writing produces the layout Docker 25 writes, which every loader reads: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) plus Docker's `manifest.json` and
//! `repositories` pointing into the same blobs. Blobs go out as they are stored (compressed
//! layers stay compressed; `docker load` decompresses), so a round trip keeps every digest.
//!
//! Reading accepts that layout, a pure OCI layout, and the classic `docker save` layout
//! (`<id>/layer.tar`, `<config>.json`, symlinked duplicate layers), optionally gzip- or
//! zstd-compressed as a whole. Every file is streamed into the content store as it passes
//! (blobs named by digest are verified on the way in); the metadata is checked once the stream
//! ends: every referenced file present, sizes and digests right, each layer's DiffID equal to
//! its config's. On any error the blobs the load added are deleted again, so a bad archive
//! leaves the store as it was (a blob another writer stores at the same moment may be removed
//! with them; it is fetched again when next needed). Entry names with `..` or a leading `/`
//! are refused even though nothing is extracted to a path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{Descriptor, ImageIndex};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, Hasher};
use crate::manifest::{
    self, media_types as mt, ManifestError, ManifestKind, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
};
use crate::platform::{self, Platform};

/// Largest metadata file (manifest.json, index.json, repositories, oci-layout) we read.
const MAX_METADATA_SIZE: u64 = 16 << 20;

/// Annotation with the full image name (containerd and Docker write it).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI annotation with the reference (a tag, or a full name from some writers).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Errors reading, writing and importing archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The content store failed.
    #[error("{what}: {source}")]
    Content {
        /// What was being done.
        what: String,
        /// The store's error.
        source: ContentError,
    },
    /// A manifest or config is invalid.
    #[error("{what}: {source}")]
    Manifest {
        /// Which document.
        what: String,
        /// Why.
        source: ManifestError,
    },
    /// Reading or writing the archive stream failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The error.
        source: io::Error,
    },
    /// An entry name that is absolute or climbs out with `..`.
    #[error("archive entry {name:?} escapes the archive root")]
    UnsafePath {
        /// The name.
        name: String,
    },
    /// An entry of a type archives do not contain (device, fifo).
    #[error("archive entry {name:?} has unsupported type {kind}")]
    UnsupportedEntry {
        /// The name.
        name: String,
        /// Its tar type.
        kind: String,
    },
    /// Metadata names a file the archive does not contain.
    #[error("{referenced_by} references {path}, which is not in the archive")]
    Missing {
        /// The missing path or digest.
        path: String,
        /// The document naming it.
        referenced_by: String,
    },
    /// Neither `manifest.json` nor `index.json`.
    #[error("not an image archive: neither manifest.json nor index.json found")]
    NotAnArchive,
    /// A metadata file is not the JSON it should be.
    #[error("parse {file}: {source}")]
    Json {
        /// The file.
        file: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A metadata file too large to read.
    #[error("archive file {name} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        name: String,
        /// The limit.
        max: u64,
    },
    /// An OCI layout version we do not read.
    #[error("unsupported oci-layout imageLayoutVersion {0:?}")]
    LayoutVersion(String),
    /// A layer's content does not match its config's DiffID.
    #[error("layer {layer} has diff_id {actual} but config {config} expects {expected}")]
    DiffIdMismatch {
        /// The layer's path or digest.
        layer: String,
        /// The config.
        config: String,
        /// DiffID from the config.
        expected: String,
        /// DiffID computed.
        actual: String,
    },
    /// A blob's size differs from its descriptor.
    #[error("blob {digest} is {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: String,
        /// From the descriptor.
        expected: u64,
        /// Stored.
        actual: u64,
    },
    /// A bad digest string in an archive path or annotation.
    #[error("archive entry {name}: {reason}")]
    BadBlobName {
        /// The entry.
        name: String,
        /// Why.
        reason: String,
    },
    /// An index whose manifests are all absent.
    #[error("index {0} has none of its manifests in the archive")]
    EmptyIndex(String),
    /// A `--change` instruction we cannot apply.
    #[error("invalid change {change:?}: {reason}")]
    BadChange {
        /// The instruction.
        change: String,
        /// Why.
        reason: String,
    },
    /// Import input that is not a tar archive.
    #[error("import: input is not a tar archive")]
    NotATar,
}

fn content_err(what: impl Into<String>) -> impl FnOnce(ContentError) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Content { what, source }
}

fn manifest_err(what: impl Into<String>) -> impl FnOnce(ManifestError) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Manifest { what, source }
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let op = op.into();
    move |source| ArchiveError::Io { op, source }
}

/// An image to write: a manifest (or index) in the store and the names to give it, e.g.
/// `busybox:latest` (written as Docker's RepoTags and OCI ref-name annotations).
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The manifest or index digest.
    pub manifest_digest: Digest,
    /// Names (`repo:tag`); may be empty.
    pub names: Vec<String>,
}

/// An image an archive held, now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its manifest (or index) digest.
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The config digest (the image ID); None for an index.
    pub config_digest: Option<Digest>,
    /// Names the archive gave it: Docker's RepoTags, the `io.containerd.image.name`
    /// annotation, and `org.opencontainers.image.ref.name` when it is a whole name (has a `/`
    /// or `:`). Not normalised: `busybox:latest` and `docker.io/library/busybox:latest` may
    /// both appear.
    pub names: Vec<String>,
    /// The raw `org.opencontainers.image.ref.name` annotation (often a bare tag such as
    /// `latest`, which a loader may combine with a name the user gives).
    pub oci_ref_name: Option<String>,
}

/// What [`import_rootfs`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The OCI manifest.
    pub manifest_digest: Digest,
    /// The config (the image ID).
    pub config_digest: Digest,
    /// The gzip layer blob.
    pub layer_digest: Digest,
    /// The uncompressed layer's digest.
    pub diff_id: Digest,
}

// ---------------------------------------------------------------------------------------------
// Compression of whole streams

/// Wraps `r` in a decompressor chosen by its first bytes (gzip, zstd, or none).
fn decompress<'a>(r: impl Read + 'a, what: &str) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let mut br = BufReader::with_capacity(256 << 10, r);
    let head = br.fill_buf().map_err(io_err(format!("read {what}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::with_buffer(br)
            .map_err(io_err(format!("start zstd decoder for {what}")))?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(br))
    }
}

/// Media type of a layer stored as `head…`: Docker's types for a Docker-format archive.
fn docker_layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        mt::DOCKER_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        mt::DOCKER_LAYER_ZSTD
    } else {
        mt::DOCKER_LAYER
    }
}

/// The DiffID (digest of the uncompressed tar) of a stored layer.
fn layer_diff_id(store: &ContentStore, d: &Digest) -> Result<Digest, ArchiveError> {
    let f = store
        .open_blob(d)
        .map_err(content_err(format!("open layer {d}")))?;
    let mut r = decompress(f, &format!("layer {d}"))?;
    let mut h = Hasher::new();
    io::copy(&mut r, &mut h).map_err(io_err(format!("decompress layer {d}")))?;
    Ok(h.finish())
}

fn first_bytes(store: &ContentStore, d: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let mut f = store
        .open_blob(d)
        .map_err(content_err(format!("open blob {d}")))?;
    let mut head = vec![0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(format!("read blob {d}"))(e)),
        }
    }
    head.truncate(n);
    Ok(head)
}

// ---------------------------------------------------------------------------------------------
// Writing

fn tar_header(path: &str, size: u64, dir: bool) -> Result<tar::Header, ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(io_err(format!("tar header for {path}")))?;
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    if dir {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
    }
    h.set_cksum();
    Ok(h)
}

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    let h = tar_header(path, data.len() as u64, false)?;
    b.append(&h, data).map_err(io_err(format!("write {path}")))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn read_manifest(store: &ContentStore, d: &Digest) -> Result<ManifestKind, ArchiveError> {
    let bytes = store
        .read_blob(d, MAX_MANIFEST_SIZE)
        .map_err(content_err(format!("read manifest {d}")))?;
    manifest::parse_manifest(None, &bytes).map_err(manifest_err(format!("manifest {d}")))
}

fn desc_digest(desc: &Descriptor) -> Result<Digest, ArchiveError> {
    manifest::descriptor_digest(desc).map_err(manifest_err("descriptor"))
}

/// Collects (once each, in order) the blobs under a manifest or index; children of an index
/// absent from the store are left out (a pull keeps only the platform it used).
fn collect_blobs(
    store: &ContentStore,
    d: &Digest,
    out: &mut Vec<Digest>,
    seen: &mut HashSet<Digest>,
) -> Result<ManifestKind, ArchiveError> {
    let kind = read_manifest(store, d)?;
    fn push(d: Digest, out: &mut Vec<Digest>, seen: &mut HashSet<Digest>) {
        if seen.insert(d.clone()) {
            out.push(d);
        }
    }
    match &kind {
        ManifestKind::Image(m) => {
            push(desc_digest(m.config())?, out, seen);
            for l in m.layers() {
                let ld = desc_digest(l)?;
                if manifest::is_foreign_layer(l.media_type().as_ref()) && !store.exists(&ld) {
                    continue;
                }
                push(ld, out, seen);
            }
        }
        ManifestKind::Index(i) => {
            for c in i.manifests() {
                let cd = desc_digest(c)?;
                if store.exists(&cd) {
                    collect_blobs(store, &cd, out, seen)?;
                }
            }
        }
    }
    push(d.clone(), out, seen);
    Ok(kind)
}

/// Splits `repo:tag` (the tag after the last `/`); None for a digest reference.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.contains('@') {
        return None;
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => Some((&name[..slash + i], &name[slash + i + 1..])),
        None => Some((name, "latest")),
    }
}

/// The image manifest a Docker `manifest.json` entry should describe: the manifest itself,
/// or for an index the host platform's entry when the store has it.
fn docker_entry_manifest(
    store: &ContentStore,
    d: &Digest,
    kind: &ManifestKind,
) -> Result<Option<(Digest, oci_spec::image::ImageManifest)>, ArchiveError> {
    match kind {
        ManifestKind::Image(m) => Ok(Some((d.clone(), m.clone()))),
        ManifestKind::Index(i) => {
            let Ok(desc) = platform::select(i, &Platform::host()) else {
                return Ok(None);
            };
            let cd = desc_digest(&desc)?;
            if !store.exists(&cd) {
                return Ok(None);
            }
            let ck = read_manifest(store, &cd)?;
            docker_entry_manifest(store, &cd, &ck)
        }
    }
}

fn write_layout(
    store: &ContentStore,
    images: &[ArchiveImage],
    w: impl Write,
    docker: bool,
) -> Result<(), ArchiveError> {
    let mut blobs = Vec::new();
    let mut seen = HashSet::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in images {
        let d = &img.manifest_digest;
        let kind = collect_blobs(store, d, &mut blobs, &mut seen)?;
        let size = store
            .open_blob(d)
            .map_err(content_err(format!("open manifest {d}")))?
            .metadata()
            .map_err(io_err(format!("stat manifest {d}")))?
            .len();
        let desc = |annotations: Option<Value>| {
            let mut v = json!({"mediaType": kind.media_type(), "digest": d.as_str(), "size": size});
            if let Some(a) = annotations {
                v["annotations"] = a;
            }
            v
        };
        if img.names.is_empty() {
            index_entries.push(desc(None));
        }
        for name in &img.names {
            let mut a = json!({ ANNOTATION_IMAGE_NAME: name });
            if let Some((_, tag)) = split_name(name) {
                a[ANNOTATION_REF_NAME] = Value::String(tag.to_string());
            }
            index_entries.push(desc(Some(a)));
        }
        if docker {
            if let Some((_, m)) = docker_entry_manifest(store, d, &kind)? {
                let layers: Vec<String> = m
                    .layers()
                    .iter()
                    .map(|l| desc_digest(l).map(|ld| blob_path(&ld)))
                    .collect::<Result<_, _>>()?;
                let config = blob_path(&desc_digest(m.config())?);
                let tags: Vec<&String> = img
                    .names
                    .iter()
                    .filter(|n| split_name(n).is_some())
                    .collect();
                docker_entries.push(json!({
                    "Config": config,
                    "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                    "Layers": layers,
                }));
                if let Some(top) = m.layers().last() {
                    let top = desc_digest(top)?;
                    for (repo, tag) in img.names.iter().filter_map(|n| split_name(n)) {
                        repositories
                            .entry(repo.to_string())
                            .or_default()
                            .insert(tag.to_string(), top.hex().to_string());
                    }
                }
            }
        }
    }

    let mut b = tar::Builder::new(w);
    for dir in ["blobs/", "blobs/sha256/"] {
        let h = tar_header(dir, 0, true)?;
        b.append(&h, io::empty())
            .map_err(io_err(format!("write {dir}")))?;
    }
    for d in &blobs {
        let path = blob_path(d);
        let f = store
            .open_blob(d)
            .map_err(content_err(format!("open blob {d}")))?;
        let size = f
            .metadata()
            .map_err(io_err(format!("stat blob {d}")))?
            .len();
        let h = tar_header(&path, size, false)?;
        b.append(&h, f).map_err(io_err(format!("write {path}")))?;
    }
    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    append_bytes(
        &mut b,
        "oci-layout",
        &to_vec(&json!({"imageLayoutVersion": "1.0.0"})),
    )?;
    append_bytes(
        &mut b,
        "index.json",
        &to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": index_entries,
        })),
    )?;
    if docker {
        append_bytes(&mut b, "manifest.json", &to_vec(&json!(docker_entries)))?;
        if !repositories.is_empty() {
            append_bytes(&mut b, "repositories", &to_vec(&json!(repositories)))?;
        }
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io_err("finish archive"))
}

/// Writes `images` as `docker save` does (Docker 25's layout: an OCI layout plus
/// `manifest.json` and `repositories`), loadable by `docker load` and by OCI tools.
pub fn write_docker_archive(
    store: &ContentStore,
    images: &[ArchiveImage],
    w: impl Write,
) -> Result<(), ArchiveError> {
    write_layout(store, images, w, true)
}

/// Writes `images` as an OCI image layout in a tar.
pub fn write_oci_layout(
    store: &ContentStore,
    images: &[ArchiveImage],
    w: impl Write,
) -> Result<(), ArchiveError> {
    write_layout(store, images, w, false)
}

// ---------------------------------------------------------------------------------------------
// Reading

#[derive(Debug, Clone)]
enum Node {
    Blob(Digest, u64),
    /// A symlink (target relative to the entry's directory) or hard link (relative to the root),
    /// already resolved to an archive path.
    Link(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Normalises an entry name to `a/b/c`; refuses absolute names and `..`.
fn clean_name(p: &Path) -> Result<String, ArchiveError> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(ArchiveError::UnsafePath {
                    name: p.display().to_string(),
                })
            }
        }
    }
    Ok(parts.join("/"))
}

/// Resolves `target` relative to `base_dir` (an archive directory, "" for the root); refuses
/// anything that climbs above the root.
fn join_inside(base_dir: &str, target: &str, name: &str) -> Result<String, ArchiveError> {
    let unsafe_path = || ArchiveError::UnsafePath {
        name: format!("{name} -> {target}"),
    };
    if target.starts_with('/') {
        return Err(unsafe_path());
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|s| !s.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(unsafe_path)?;
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

struct Loader<'a> {
    store: &'a ContentStore,
    before: HashSet<Digest>,
    added: Vec<Digest>,
    files: HashMap<String, Node>,
    meta: HashMap<String, Vec<u8>>,
}

impl Loader<'_> {
    fn note(&mut self, d: &Digest) {
        if !self.before.contains(d) && !self.added.contains(d) {
            self.added.push(d.clone());
        }
    }

    fn read_entries(&mut self, r: impl Read) -> Result<(), ArchiveError> {
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(io_err("read archive"))?;
        for e in entries {
            let mut e = e.map_err(io_err("read archive entry"))?;
            let raw = e.path().map_err(io_err("read archive entry name"))?;
            let name = clean_name(&raw)?;
            let kind = e.header().entry_type();
            match kind {
                tar::EntryType::Directory
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader => continue,
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name()
                        .map_err(io_err(format!("read link target of {name}")))?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let base = if kind == tar::EntryType::Symlink {
                        name.rsplit_once('/').map_or("", |(d, _)| d)
                    } else {
                        ""
                    };
                    let resolved = join_inside(base, &target, &name)?;
                    self.files.insert(name, Node::Link(resolved));
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => {
                    return Err(ArchiveError::UnsupportedEntry {
                        name,
                        kind: format!("{other:?}"),
                    })
                }
            }
            let size = e
                .header()
                .size()
                .map_err(io_err(format!("size of {name}")))?;
            let is_meta = matches!(
                name.as_str(),
                "manifest.json" | "index.json" | "oci-layout" | "repositories"
            );
            let legacy = name.ends_with("/json") || name.ends_with("/VERSION");
            if is_meta {
                if size > MAX_METADATA_SIZE {
                    return Err(ArchiveError::TooLarge {
                        name,
                        max: MAX_METADATA_SIZE,
                    });
                }
                let mut buf = Vec::new();
                e.read_to_end(&mut buf)
                    .map_err(io_err(format!("read {name}")))?;
                self.meta.insert(name, buf);
                continue;
            }
            if legacy {
                io::copy(&mut e, &mut io::sink()).map_err(io_err(format!("read {name}")))?;
                continue;
            }
            let expected = match name.strip_prefix("blobs/") {
                Some(rest) => {
                    let s = rest.replacen('/', ":", 1);
                    let d = Digest::parse(&s).map_err(|err| ArchiveError::BadBlobName {
                        name: name.clone(),
                        reason: err.to_string(),
                    })?;
                    Some(d)
                }
                None => None,
            };
            if let Some(d) = &expected {
                if self.store.exists(d) {
                    io::copy(&mut e, &mut io::sink()).map_err(io_err(format!("read {name}")))?;
                    self.files.insert(name, Node::Blob(d.clone(), size));
                    continue;
                }
            }
            let (d, n) = self
                .store
                .ingest(expected.as_ref(), Some(size), &mut e)
                .map_err(content_err(format!("store archive entry {name}")))?;
            self.note(&d);
            self.files.insert(name, Node::Blob(d, n));
        }
        Ok(())
    }

    fn resolve(&self, path: &str, referenced_by: &str) -> Result<(Digest, u64), ArchiveError> {
        let missing = || ArchiveError::Missing {
            path: path.to_string(),
            referenced_by: referenced_by.to_string(),
        };
        let mut p = join_inside("", path, referenced_by)?;
        for _ in 0..16 {
            match self.files.get(&p).ok_or_else(missing)? {
                Node::Blob(d, n) => return Ok((d.clone(), *n)),
                Node::Link(t) => p = t.clone(),
            }
        }
        Err(missing())
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, file: &str) -> Result<Option<T>, ArchiveError> {
        self.meta
            .get(file)
            .map(|b| {
                serde_json::from_slice(b).map_err(|source| ArchiveError::Json {
                    file: file.to_string(),
                    source,
                })
            })
            .transpose()
    }

    /// Checks a descriptor's blob is stored with the right size.
    fn check_blob(&self, desc: &Descriptor, by: &str) -> Result<Digest, ArchiveError> {
        let d = desc_digest(desc)?;
        let actual = self
            .store
            .size(&d)
            .map_err(content_err(format!("stat blob {d}")))?
            .ok_or_else(|| ArchiveError::Missing {
                path: blob_path(&d),
                referenced_by: by.to_string(),
            })?;
        if actual != desc.size() {
            return Err(ArchiveError::SizeMismatch {
                digest: d.to_string(),
                expected: desc.size(),
                actual,
            });
        }
        Ok(d)
    }

    /// Validates a manifest (recursively for an index); returns its config digest for an image.
    fn check_manifest(
        &self,
        desc: &Descriptor,
        referenced: &mut HashSet<Digest>,
    ) -> Result<Option<Digest>, ArchiveError> {
        let d = self.check_blob(desc, "index.json")?;
        referenced.insert(d.clone());
        let bytes = self
            .store
            .read_blob(&d, MAX_MANIFEST_SIZE)
            .map_err(content_err(format!("read manifest {d}")))?;
        let kind = manifest::parse_manifest(Some(desc.media_type().as_ref()), &bytes)
            .map_err(manifest_err(format!("manifest {d}")))?;
        let by = format!("manifest {d}");
        match kind {
            ManifestKind::Image(m) => {
                let cd = self.check_blob(m.config(), &by)?;
                referenced.insert(cd.clone());
                for l in m.layers() {
                    let foreign = manifest::is_foreign_layer(l.media_type().as_ref());
                    if foreign && !self.store.exists(&desc_digest(l)?) {
                        continue;
                    }
                    referenced.insert(self.check_blob(l, &by)?);
                }
                let cfg = self
                    .store
                    .read_blob(&cd, MAX_CONFIG_SIZE)
                    .map_err(content_err(format!("read config {cd}")))?;
                let cfg =
                    manifest::parse_config(&cfg).map_err(manifest_err(format!("config {cd}")))?;
                manifest::check_config(&m, &cfg).map_err(manifest_err(by.clone()))?;
                // Layers this load brought in are checked against the config's DiffIDs here
                // (the digest in their name only proves the compressed bytes).
                let ids = manifest::diff_ids(&cfg).map_err(manifest_err(format!("config {cd}")))?;
                for (l, want) in m.layers().iter().zip(&ids) {
                    let ld = desc_digest(l)?;
                    if !self.added.contains(&ld) {
                        continue;
                    }
                    let head = first_bytes(self.store, &ld)?;
                    let actual = if docker_layer_media_type(&head) == mt::DOCKER_LAYER {
                        ld.clone()
                    } else {
                        layer_diff_id(self.store, &ld)?
                    };
                    if actual != *want {
                        return Err(ArchiveError::DiffIdMismatch {
                            layer: ld.to_string(),
                            config: cd.to_string(),
                            expected: want.to_string(),
                            actual: actual.to_string(),
                        });
                    }
                }
                Ok(Some(cd))
            }
            ManifestKind::Index(i) => {
                let mut any = false;
                for c in i.manifests() {
                    if self.store.exists(&desc_digest(c)?) {
                        self.check_manifest(c, referenced)?;
                        any = true;
                    }
                }
                if !any {
                    return Err(ArchiveError::EmptyIndex(d.to_string()));
                }
                Ok(None)
            }
        }
    }

    fn load_oci(
        &self,
        docker_tags: &HashMap<Digest, Vec<String>>,
        referenced: &mut HashSet<Digest>,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        if let Some(layout) = self.json::<Value>("oci-layout")? {
            let v = layout
                .get("imageLayoutVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if v != "1.0.0" {
                return Err(ArchiveError::LayoutVersion(v.to_string()));
            }
        }
        let index: ImageIndex = self.json("index.json")?.ok_or(ArchiveError::NotAnArchive)?;
        let mut out: Vec<LoadedImage> = Vec::new();
        for desc in index.manifests() {
            let config = self.check_manifest(desc, referenced)?;
            let d = desc_digest(desc)?;
            let mut names = Vec::new();
            let annotations = desc.annotations().clone().unwrap_or_default();
            let ref_name = annotations.get(ANNOTATION_REF_NAME).cloned();
            if let Some(n) = annotations.get(ANNOTATION_IMAGE_NAME) {
                names.push(n.clone());
            }
            if let Some(r) = &ref_name {
                if r.contains('/') || r.contains(':') {
                    names.push(r.clone());
                }
            }
            if let Some(tags) = config.as_ref().and_then(|c| docker_tags.get(c)) {
                names.extend(tags.iter().cloned());
            }
            let idx = match out.iter().position(|l| l.manifest_digest == d) {
                Some(i) => i,
                None => {
                    out.push(LoadedImage {
                        manifest_digest: d,
                        media_type: desc.media_type().to_string(),
                        config_digest: config,
                        names: Vec::new(),
                        oci_ref_name: None,
                    });
                    out.len() - 1
                }
            };
            let l = &mut out[idx];
            for n in names {
                if !l.names.contains(&n) {
                    l.names.push(n);
                }
            }
            if l.oci_ref_name.is_none() {
                l.oci_ref_name = ref_name;
            }
        }
        Ok(out)
    }

    fn load_docker(
        &mut self,
        entries: &[DockerEntry],
        referenced: &mut HashSet<Digest>,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        let mut out = Vec::new();
        for e in entries {
            let (cd, csize) = self.resolve(&e.config, "manifest.json")?;
            referenced.insert(cd.clone());
            let cfg_bytes = self
                .store
                .read_blob(&cd, MAX_CONFIG_SIZE)
                .map_err(content_err(format!("read config {}", e.config)))?;
            let cfg = manifest::parse_config(&cfg_bytes)
                .map_err(manifest_err(format!("config {}", e.config)))?;
            let diff_ids =
                manifest::diff_ids(&cfg).map_err(manifest_err(format!("config {}", e.config)))?;
            if diff_ids.len() != e.layers.len() {
                return Err(ArchiveError::Manifest {
                    what: "manifest.json".to_string(),
                    source: ManifestError::LayerCount {
                        config: e.config.clone(),
                        layers: e.layers.len(),
                        diff_ids: diff_ids.len(),
                    },
                });
            }
            let mut layers = Vec::new();
            for (path, want) in e.layers.iter().zip(&diff_ids) {
                let (ld, lsize) = self.resolve(path, "manifest.json")?;
                referenced.insert(ld.clone());
                let head = first_bytes(self.store, &ld)?;
                let media_type = docker_layer_media_type(&head);
                let actual = if media_type == mt::DOCKER_LAYER {
                    ld.clone()
                } else {
                    layer_diff_id(self.store, &ld)?
                };
                if actual != *want {
                    return Err(ArchiveError::DiffIdMismatch {
                        layer: path.clone(),
                        config: e.config.clone(),
                        expected: want.to_string(),
                        actual: actual.to_string(),
                    });
                }
                layers.push(json!({"mediaType": media_type, "size": lsize, "digest": ld.as_str()}));
            }
            let m = json!({
                "schemaVersion": 2,
                "mediaType": mt::DOCKER_MANIFEST,
                "config": {"mediaType": mt::DOCKER_CONFIG, "size": csize, "digest": cd.as_str()},
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&m).map_err(|source| ArchiveError::Json {
                file: "generated manifest".to_string(),
                source,
            })?;
            let md = self
                .store
                .put_bytes(&bytes)
                .map_err(content_err("store manifest"))?;
            self.note(&md);
            referenced.insert(md.clone());
            out.push(LoadedImage {
                manifest_digest: md,
                media_type: mt::DOCKER_MANIFEST.to_string(),
                config_digest: Some(cd),
                names: e.repo_tags.clone().unwrap_or_default(),
                oci_ref_name: None,
            });
        }
        Ok(out)
    }

    fn load(&mut self, r: impl Read) -> Result<Vec<LoadedImage>, ArchiveError> {
        let r = decompress(r, "archive")?;
        self.read_entries(r)?;
        let mut referenced = HashSet::new();
        let docker: Option<Vec<DockerEntry>> = self.json("manifest.json")?;
        let loaded = if self.meta.contains_key("index.json") {
            let mut tags = HashMap::new();
            for e in docker.iter().flatten() {
                let (cd, _) = self.resolve(&e.config, "manifest.json")?;
                tags.entry(cd)
                    .or_insert_with(Vec::new)
                    .extend(e.repo_tags.iter().flatten().cloned());
            }
            self.load_oci(&tags, &mut referenced)?
        } else if let Some(entries) = docker {
            self.load_docker(&entries, &mut referenced)?
        } else {
            return Err(ArchiveError::NotAnArchive);
        };
        // Files the metadata never named (legacy extras, junk) do not stay in the store.
        // Best effort: a leftover is only an unreferenced blob, which garbage collection takes.
        for d in &self.added {
            if !referenced.contains(d) {
                let _ = self.store.delete(d);
            }
        }
        Ok(loaded)
    }

    fn roll_back(&self) {
        for d in &self.added {
            // Best effort: the load already failed with the error that matters.
            let _ = self.store.delete(d);
        }
    }
}

/// Reads a `docker save` archive or an OCI layout tar (either may be gzip- or zstd-compressed)
/// into `store`. On error, blobs the load added are removed again.
pub fn read_archive(store: &ContentStore, r: impl Read) -> Result<Vec<LoadedImage>, ArchiveError> {
    let before: HashSet<Digest> = store
        .list()
        .map_err(content_err("list content store"))?
        .into_iter()
        .collect();
    let mut loader = Loader {
        store,
        before,
        added: Vec::new(),
        files: HashMap::new(),
        meta: HashMap::new(),
    };
    let res = loader.load(r);
    if res.is_err() {
        loader.roll_back();
    }
    res
}

// ---------------------------------------------------------------------------------------------
// Import of a root filesystem tar

/// Hashes what passes through.
struct Tap<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Whether a 512-byte block is a tar header with a right checksum (any tar flavour, v7
/// included) or the zero block that ends an archive.
fn tar_block_ok(block: &[u8]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let Some(field) = block.get(148..156) else {
        return false;
    };
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| ('0'..='7').contains(c))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// Splits a change's argument into words, honouring quotes and backslashes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                cur.push(chars.next().ok_or("trailing backslash")?);
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A JSON array of strings (exec form), or a shell command wrapped in `/bin/sh -c`.
fn exec_or_shell(arg: &str) -> Result<Vec<String>, String> {
    let t = arg.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return Ok(v);
        }
    }
    if t.is_empty() {
        return Err("missing command".to_string());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), t.to_string()])
}

/// `k=v k2="v 2"` pairs, or the legacy `k v…` form with one pair.
fn pairs(arg: &str) -> Result<Vec<(String, String)>, String> {
    let w = words(arg)?;
    if w.is_empty() {
        return Err("missing key=value".to_string());
    }
    if !w[0].contains('=') {
        let (k, rest) = arg
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("missing value")?;
        return Ok(vec![(k.to_string(), rest.trim().to_string())]);
    }
    w.into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{kv:?} is not key=value")),
        })
        .collect()
}

/// Applies `docker import --change` style instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
/// STOPSIGNAL, USER, VOLUME, WORKDIR) to a config's `config` object; `docker commit --change`
/// uses it too. Instructions apply in order, so on an error the earlier ones are in `cfg`:
/// callers that must not see half a change apply them to a copy.
pub fn apply_changes(
    changes: &[String],
    cfg: &mut serde_json::Map<String, Value>,
) -> Result<(), ArchiveError> {
    for change in changes {
        let bad = |reason: String| ArchiveError::BadChange {
            change: change.clone(),
            reason,
        };
        let t = change.trim();
        let (ins, arg) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let arg = arg.trim();
        match ins.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.insert("Cmd".into(), json!(exec_or_shell(arg).map_err(bad)?));
            }
            "ENTRYPOINT" => {
                cfg.insert("Entrypoint".into(), json!(exec_or_shell(arg).map_err(bad)?));
            }
            "ENV" => {
                let mut env: Vec<String> = cfg
                    .get("Env")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                for (k, v) in pairs(arg).map_err(bad)? {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                    env.push(format!("{k}={v}"));
                }
                cfg.insert("Env".into(), json!(env));
            }
            "LABEL" => {
                let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
                for (k, v) in pairs(arg).map_err(bad)? {
                    labels[k] = Value::String(v);
                }
            }
            "WORKDIR" => {
                let w = words(arg).map_err(bad)?;
                let [dir] = w.as_slice() else {
                    return Err(bad("expected one directory".into()));
                };
                cfg.insert("WorkingDir".into(), json!(dir));
            }
            "USER" => {
                let w = words(arg).map_err(bad)?;
                let [user] = w.as_slice() else {
                    return Err(bad("expected one user".into()));
                };
                cfg.insert("User".into(), json!(user));
            }
            "STOPSIGNAL" => {
                let w = words(arg).map_err(bad)?;
                let [sig] = w.as_slice() else {
                    return Err(bad("expected one signal".into()));
                };
                cfg.insert("StopSignal".into(), json!(sig));
            }
            "EXPOSE" => {
                let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
                let w = words(arg).map_err(bad)?;
                if w.is_empty() {
                    return Err(bad("missing port".into()));
                }
                for p in w {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let valid = !num.is_empty()
                        && num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && matches!(proto, "tcp" | "udp" | "sctp");
                    if !valid {
                        return Err(bad(format!("invalid port {p:?}")));
                    }
                    // A range expands to its ports, as Docker does.
                    let (lo, hi) = match num.split_once('-') {
                        Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                        None => (num.parse::<u16>(), num.parse::<u16>()),
                    };
                    let (Ok(lo), Ok(hi)) = (lo, hi) else {
                        return Err(bad(format!("invalid port {p:?}")));
                    };
                    if lo > hi || lo == 0 {
                        return Err(bad(format!("invalid port range {p:?}")));
                    }
                    for port in lo..=hi {
                        ports[format!("{port}/{proto}")] = json!({});
                    }
                }
            }
            "VOLUME" => {
                let vols = if arg.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(arg).map_err(|e| bad(e.to_string()))?
                } else {
                    words(arg).map_err(bad)?
                };
                if vols.is_empty() {
                    return Err(bad("missing path".into()));
                }
                let map = cfg.entry("Volumes").or_insert_with(|| json!({}));
                for v in vols {
                    map[v] = json!({});
                }
            }
            "" => return Err(bad("empty instruction".into())),
            other => {
                return Err(bad(format!(
                    "{other} is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"
                )))
            }
        }
    }
    Ok(())
}

/// Checks `docker import --change` instructions without importing anything, so a caller can
/// refuse bad ones before it reads the upload.
pub fn check_changes(changes: &[String]) -> Result<(), ArchiveError> {
    apply_changes(changes, &mut serde_json::Map::new())
}

/// RFC 3339 UTC time of `secs` since the epoch.
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Imports a root filesystem tar (plain, gzip or zstd) as a one-layer image: the layer is
/// stored gzip-compressed, the config gets `rootfs.diff_ids`, a history entry, the creation
/// time, `platform`, and the `changes` (as `docker import --change`: CMD, ENTRYPOINT, ENV,
/// EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR). Nothing is stored when a change is
/// invalid or the input is not a tar.
pub fn import_rootfs(
    store: &ContentStore,
    tar: impl Read,
    changes: &[String],
    platform: &Platform,
) -> Result<ImportedImage, ArchiveError> {
    import_rootfs_with(store, tar, changes, platform, None)
}

/// [`import_rootfs`] with `docker import --message`: the message becomes the config's
/// `comment` and its history entry's comment (instead of "Imported from tarball").
pub fn import_rootfs_with(
    store: &ContentStore,
    tar: impl Read,
    changes: &[String],
    platform: &Platform,
    message: Option<&str>,
) -> Result<ImportedImage, ArchiveError> {
    // Check the changes before reading anything.
    let mut runtime_cfg = serde_json::Map::new();
    apply_changes(changes, &mut runtime_cfg)?;

    // Look at the first block before storing anything: a tar header, or the zero block of an
    // empty archive.
    let mut input = decompress(tar, "import input")?;
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read import input")(e)),
        }
    }
    if n < 512 || !tar_block_ok(&head) {
        return Err(ArchiveError::NotATar);
    }
    let mut tap = Tap {
        inner: io::Cursor::new(head).chain(input),
        hasher: Hasher::new(),
    };
    // Compressed on every core; the layer is stored exactly as it will be pushed.
    let enc = crate::compress::ParallelGzip::new(&mut tap, flate2::Compression::fast());
    let (layer_digest, layer_size) = store
        .ingest(None, None, enc)
        .map_err(content_err("store imported layer"))?;
    let diff_id = tap.hasher.finish();

    let created = rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    let comment = message.filter(|m| !m.is_empty());
    let mut cfg = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": runtime_cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
        "history": [{
            "created": created,
            "created_by": "berth import",
            "comment": comment.unwrap_or("Imported from tarball"),
        }],
    });
    if let Some(c) = comment {
        cfg["comment"] = json!(c);
    }
    if let Some(v) = &platform.variant {
        cfg["variant"] = json!(v);
    }
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(|source| ArchiveError::Json {
        file: "image config".to_string(),
        source,
    })?;
    let config_digest = store
        .put_bytes(&cfg_bytes)
        .map_err(content_err("store imported config"))?;
    let m = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "size": cfg_bytes.len(), "digest": config_digest.as_str()},
        "layers": [{"mediaType": mt::OCI_LAYER_GZIP, "size": layer_size, "digest": layer_digest.as_str()}],
    });
    let m_bytes = serde_json::to_vec(&m).map_err(|source| ArchiveError::Json {
        file: "image manifest".to_string(),
        source,
    })?;
    let manifest_digest = store
        .put_bytes(&m_bytes)
        .map_err(content_err("store imported manifest"))?;
    Ok(ImportedImage {
        manifest_digest,
        config_digest,
        layer_digest,
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn split_names() {
        assert_eq!(split_name("busybox:latest"), Some(("busybox", "latest")));
        assert_eq!(
            split_name("host:5000/a/b"),
            Some(("host:5000/a/b", "latest"))
        );
        assert_eq!(
            split_name("host:5000/a/b:v1"),
            Some(("host:5000/a/b", "v1"))
        );
        assert_eq!(split_name("a@sha256:00"), None);
    }

    #[test]
    fn link_targets_stay_inside() {
        assert_eq!(
            join_inside("a/b", "../c/layer.tar", "x").unwrap(),
            "a/c/layer.tar"
        );
        assert!(join_inside("a", "../../etc/passwd", "x").is_err());
        assert!(join_inside("", "/etc/passwd", "x").is_err());
    }

    #[test]
    fn changes_parse() {
        let mut c = serde_json::Map::new();
        let ch: Vec<String> = [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --x",
            r#"ENV A=b C="d e""#,
            "ENV A z",
            "WORKDIR /srv",
            "USER 1000:1000",
            "EXPOSE 80 53/udp 8000-8001",
            r#"LABEL org.x="y z""#,
            r#"VOLUME ["/data"]"#,
            "STOPSIGNAL SIGTERM",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply_changes(&ch, &mut c).unwrap();
        let v = Value::Object(c);
        assert_eq!(v["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(v["Entrypoint"], json!(["/bin/sh", "-c", "/bin/init --x"]));
        assert_eq!(v["Env"], json!(["C=d e", "A=z"]));
        assert_eq!(v["WorkingDir"], json!("/srv"));
        assert_eq!(v["User"], json!("1000:1000"));
        assert_eq!(
            v["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(v["Labels"], json!({"org.x": "y z"}));
        assert_eq!(v["Volumes"], json!({"/data": {}}));
        assert_eq!(v["StopSignal"], json!("SIGTERM"));
    }

    #[test]
    fn check_changes_without_importing() {
        assert!(check_changes(&["CMD [\"sh\"]".to_string()]).is_ok());
        let e = check_changes(&["FROM scratch".to_string()]).unwrap_err();
        assert!(e.to_string().contains("FROM is not one of"), "{e}");
    }

    #[test]
    fn bad_changes() {
        for (c, needle) in [
            ("RUN true", "RUN is not one of"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 90-80", "invalid port range"),
            ("ENV =x", "not key=value"),
            ("WORKDIR", "expected one directory"),
            (r#"LABEL a="b"#, "unterminated quote"),
        ] {
            let mut m = serde_json::Map::new();
            let e = apply_changes(&[c.to_string()], &mut m).unwrap_err();
            assert!(e.to_string().contains(needle), "{c}: {e}");
        }
    }
}
