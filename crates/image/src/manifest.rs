//! Manifests, indexes and image configurations.
//!
//! OCI image manifests and indexes and Docker schema2 manifests and manifest lists share one
//! wire shape, so both are parsed into oci-spec's [`ImageManifest`] and [`ImageIndex`]; the
//! media type strings are kept as they were (a Docker layer stays
//! `application/vnd.docker.image.rootfs.diff.tar.gzip`), so a manifest re-serialised for a
//! push or a save still names what it named. Schema1 manifests are refused: nothing current
//! produces them and their layers have no DiffIDs.
//!
//! The kind of a document comes from the HTTP Content-Type, else from its own `mediaType`
//! field, else from its shape (`manifests` for an index, `config` and `layers` for a manifest).
//! An image's ID is its config digest, as Docker's.

use oci_spec::image::{Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest};
use serde_json::Value;

use crate::digest::{Digest, DigestError};

/// Media types of manifests, configs and layers.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI layout header (`oci-layout` file).
    pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable uncompressed layer.
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable gzip layer.
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// OCI non-distributable zstd layer.
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    /// Docker schema2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker schema2 manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (rare, but produced by some tools).
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker zstd layer (containerd's non-standard name).
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    /// Docker foreign gzip layer (Windows base layers).
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker foreign uncompressed layer.
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
    /// Docker schema1 manifest (refused).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker signed schema1 manifest (refused).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

use media_types as mt;

/// The `Accept` header a registry client sends to resolve a tag: every manifest and index type
/// we can read, indexes first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or config we read into memory (Docker's own limit for manifests is 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Largest image config we read into memory.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;

/// Errors about manifests, indexes and configs.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A schema1 manifest.
    #[error(
        "schema1 manifests are not supported: {media_type} (push the image again with a \
         current client to get a schema2 or OCI manifest)"
    )]
    Schema1 {
        /// The media type, or "schemaVersion 1" when found from the document.
        media_type: String,
    },
    /// A media type that is neither a manifest nor an index we know.
    #[error("unsupported manifest media type {media_type}")]
    UnknownMediaType {
        /// The media type.
        media_type: String,
    },
    /// No media type and a shape that is neither a manifest nor an index.
    #[error("document has no mediaType and is neither an image manifest nor an index")]
    UnknownShape,
    /// The Content-Type says one kind and the document another.
    #[error(
        "manifest media type mismatch: served as {content_type} but the document says {document}"
    )]
    MediaTypeMismatch {
        /// From the Content-Type.
        content_type: String,
        /// From the document's mediaType.
        document: String,
    },
    /// Malformed JSON or a missing required field.
    #[error("parse {what}: {source}")]
    Json {
        /// What was being parsed (manifest, index, image config).
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A schemaVersion other than 2.
    #[error("unsupported {what} schemaVersion {version}")]
    SchemaVersion {
        /// Manifest or index.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A digest in a descriptor or config that we do not accept.
    #[error("{what}: {source}")]
    Digest {
        /// Where the digest was.
        what: String,
        /// Why it was refused.
        source: DigestError,
    },
    /// The manifest's layers and the config's diff_ids do not pair up.
    #[error("manifest has {layers} layers but its config {config} lists {diff_ids} diff_ids")]
    LayerCount {
        /// The config digest.
        config: String,
        /// Layers in the manifest.
        layers: usize,
        /// DiffIDs in the config.
        diff_ids: usize,
    },
    /// A layer of a media type we cannot unpack.
    #[error("unsupported layer media type {media_type} for layer {digest}")]
    UnknownLayerMediaType {
        /// The media type.
        media_type: String,
        /// The layer's digest.
        digest: String,
    },
    /// No entry of an index matches the wanted platform.
    #[error(
        "no matching manifest for {wanted} in the manifest list entries (available: {})",
        available.join(", ")
    )]
    NoMatchingPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
}

/// A parsed manifest document.
// Unboxed as the shared interface has it; a manifest is parsed once per pull, not stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema2).
    Image(ImageManifest),
    /// An index (OCI image index or Docker manifest list).
    Index(ImageIndex),
}

impl ManifestKind {
    /// The media type of the document: its own mediaType field, or the OCI type of its kind.
    pub fn media_type(&self) -> String {
        match self {
            ManifestKind::Image(m) => m
                .media_type()
                .as_ref()
                .map_or(mt::OCI_MANIFEST.to_string(), |t| t.to_string()),
            ManifestKind::Index(i) => i
                .media_type()
                .as_ref()
                .map_or(mt::OCI_INDEX.to_string(), |t| t.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Index,
}

/// What a media type says about a document: Some(kind), or an error for schema1 and unknown
/// types. Generic types (`application/json`, empty) give Ok(None).
fn kind_of(media_type: &str) -> Result<Option<Kind>, ManifestError> {
    match media_type {
        mt::OCI_MANIFEST | mt::DOCKER_MANIFEST => Ok(Some(Kind::Image)),
        mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => Ok(Some(Kind::Index)),
        mt::DOCKER_SCHEMA1 | mt::DOCKER_SCHEMA1_SIGNED => Err(ManifestError::Schema1 {
            media_type: media_type.to_string(),
        }),
        "" | "application/json" | "text/plain" | "application/octet-stream" => Ok(None),
        other => Err(ManifestError::UnknownMediaType {
            media_type: other.to_string(),
        }),
    }
}

/// A Content-Type header value without parameters, trimmed and lowercased.
fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Parses a manifest or index. `media_type` is the Content-Type it was served with (or the
/// descriptor's media type), if any; without one, the document's own `mediaType` decides, and
/// without that its shape.
pub fn parse_manifest(
    media_type: Option<&str>,
    bytes: &[u8],
) -> Result<ManifestKind, ManifestError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        what: "manifest",
        source,
    })?;
    if doc.get("schemaVersion").and_then(Value::as_u64) == Some(1) || doc.get("fsLayers").is_some()
    {
        return Err(ManifestError::Schema1 {
            media_type: media_type
                .map(bare_media_type)
                .filter(|m| !m.is_empty() && m.starts_with("application/vnd."))
                .unwrap_or_else(|| "schemaVersion 1".to_string()),
        });
    }
    let header = media_type.map(bare_media_type).unwrap_or_default();
    let doc_type = doc
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let header_kind = kind_of(&header)?;
    let doc_kind = match kind_of(&doc_type) {
        Ok(k) => k,
        // A document naming a type we do not know, served under a known type, is a mismatch.
        Err(ManifestError::UnknownMediaType { .. }) if header_kind.is_some() => {
            return Err(ManifestError::MediaTypeMismatch {
                content_type: header,
                document: doc_type,
            })
        }
        Err(e) => return Err(e),
    };
    let kind = match (header_kind, doc_kind) {
        (Some(h), Some(d)) if h != d => {
            return Err(ManifestError::MediaTypeMismatch {
                content_type: header,
                document: doc_type,
            })
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => {
            if doc.get("manifests").is_some() {
                Kind::Index
            } else if doc.get("config").is_some() && doc.get("layers").is_some() {
                Kind::Image
            } else {
                return Err(ManifestError::UnknownShape);
            }
        }
    };
    match kind {
        Kind::Image => {
            let m: ImageManifest =
                serde_json::from_value(doc).map_err(|source| ManifestError::Json {
                    what: "image manifest",
                    source,
                })?;
            if m.schema_version() != 2 {
                return Err(ManifestError::SchemaVersion {
                    what: "image manifest",
                    version: m.schema_version(),
                });
            }
            Ok(ManifestKind::Image(m))
        }
        Kind::Index => {
            let i: ImageIndex =
                serde_json::from_value(doc).map_err(|source| ManifestError::Json {
                    what: "image index",
                    source,
                })?;
            if i.schema_version() != 2 {
                return Err(ManifestError::SchemaVersion {
                    what: "image index",
                    version: i.schema_version(),
                });
            }
            Ok(ManifestKind::Index(i))
        }
    }
}

/// Whether `media_type` is an image manifest type we read.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_MANIFEST | mt::DOCKER_MANIFEST)
}

/// Whether `media_type` is an index type we read.
pub fn is_index_media_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST)
}

/// Whether `media_type` is an image config type.
pub fn is_config_media_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_CONFIG | mt::DOCKER_CONFIG)
}

/// Whether `media_type` is a layer type we can unpack.
pub fn is_layer_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        mt::OCI_LAYER
            | mt::OCI_LAYER_GZIP
            | mt::OCI_LAYER_ZSTD
            | mt::OCI_LAYER_NONDIST
            | mt::OCI_LAYER_NONDIST_GZIP
            | mt::OCI_LAYER_NONDIST_ZSTD
            | mt::DOCKER_LAYER
            | mt::DOCKER_LAYER_GZIP
            | mt::DOCKER_LAYER_ZSTD
            | mt::DOCKER_FOREIGN_LAYER
            | mt::DOCKER_FOREIGN_LAYER_GZIP
    )
}

/// Whether a layer of `media_type` is non-distributable (foreign): not pushed, fetched from
/// its descriptor's `urls` if at all.
pub fn is_foreign_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        mt::OCI_LAYER_NONDIST
            | mt::OCI_LAYER_NONDIST_GZIP
            | mt::OCI_LAYER_NONDIST_ZSTD
            | mt::DOCKER_FOREIGN_LAYER
            | mt::DOCKER_FOREIGN_LAYER_GZIP
    )
}

/// Whether `media_type` belongs to Docker's schema2 family (so a manifest written alongside
/// should use Docker types too).
pub fn is_docker_media_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// The digest of a descriptor as ours (sha256 or sha512 only).
pub fn descriptor_digest(desc: &Descriptor) -> Result<Digest, ManifestError> {
    let s = desc.digest().to_string();
    Digest::parse(&s).map_err(|source| ManifestError::Digest {
        what: format!("descriptor digest {s}"),
        source,
    })
}

/// Checks that an image manifest's layers are of types we can unpack.
pub fn check_layers(manifest: &ImageManifest) -> Result<(), ManifestError> {
    for l in manifest.layers() {
        let t = l.media_type().to_string();
        if !is_layer_media_type(&t) {
            return Err(ManifestError::UnknownLayerMediaType {
                media_type: t,
                digest: l.digest().to_string(),
            });
        }
    }
    Ok(())
}

/// Docker's image ID: the config digest, `sha256:<hex>`.
pub fn image_id(config_digest: &Digest) -> String {
    config_digest.to_string()
}

/// Parses an image config (OCI or Docker; Docker's extra fields such as `container_config`
/// are ignored). A config without `rootfs.diff_ids` (Docker omits the field for an image of
/// no layers) reads as one with an empty list.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration, ManifestError> {
    let json_err = |source| ManifestError::Json {
        what: "image config",
        source,
    };
    let mut doc: Value = serde_json::from_slice(bytes).map_err(json_err)?;
    if let Some(rootfs) = doc.get_mut("rootfs").and_then(Value::as_object_mut) {
        if rootfs.get("diff_ids").is_none_or(Value::is_null) {
            rootfs.insert("diff_ids".to_string(), Value::Array(Vec::new()));
        }
    }
    serde_json::from_value(doc).map_err(json_err)
}

/// The config's DiffIDs, base layer first.
pub fn diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>, ManifestError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|s| {
            Digest::parse(s).map_err(|source| ManifestError::Digest {
                what: format!("config diff_id {s}"),
                source,
            })
        })
        .collect()
}

/// Checks that a manifest's layers pair up with its config's DiffIDs.
pub fn check_config(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<(), ManifestError> {
    let layers = manifest.layers().len();
    let ids = config.rootfs().diff_ids().len();
    if layers != ids {
        return Err(ManifestError::LayerCount {
            config: manifest.config().digest().to_string(),
            layers,
            diff_ids: ids,
        });
    }
    Ok(())
}

/// The config's history, each entry with the index of the layer it made (None for entries
/// marked `empty_layer`), as `docker history` shows it.
pub fn history(config: &ImageConfiguration) -> Vec<(Option<usize>, History)> {
    let mut layer = 0usize;
    config
        .history()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            if h.empty_layer().unwrap_or(false) {
                (None, h)
            } else {
                layer += 1;
                (Some(layer - 1), h)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1469,"digest":"{D1}"}},"layers":[{{"mediaType":"{}","size":2479,"digest":"{D2}"}}]}}"#,
            mt::DOCKER_MANIFEST,
            mt::DOCKER_CONFIG,
            mt::DOCKER_LAYER_GZIP
        )
    }

    #[test]
    fn docker_schema2_keeps_media_types() {
        let m = match parse_manifest(None, docker_manifest().as_bytes()).unwrap() {
            ManifestKind::Image(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(m.config().media_type().to_string(), mt::DOCKER_CONFIG);
        assert_eq!(
            m.layers()[0].media_type().to_string(),
            mt::DOCKER_LAYER_GZIP
        );
        check_layers(&m).unwrap();
        let again = serde_json::to_string(&m).unwrap();
        assert!(again.contains(mt::DOCKER_LAYER_GZIP));
        assert!(again.contains(mt::DOCKER_MANIFEST));
        assert_eq!(
            ManifestKind::Image(m).media_type(),
            mt::DOCKER_MANIFEST.to_string()
        );
    }

    #[test]
    fn content_type_with_parameters() {
        let k = parse_manifest(
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            docker_manifest().as_bytes(),
        )
        .unwrap();
        assert!(matches!(k, ManifestKind::Image(_)));
    }

    #[test]
    fn oci_manifest_without_media_type_by_shape() {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[]}}"#,
            mt::OCI_CONFIG
        );
        let k = parse_manifest(None, doc.as_bytes()).unwrap();
        assert_eq!(k.media_type(), mt::OCI_MANIFEST);
        let k = parse_manifest(Some(mt::OCI_MANIFEST), doc.as_bytes()).unwrap();
        assert!(matches!(k, ManifestKind::Image(_)));
    }

    #[test]
    fn docker_list_and_oci_index() {
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":7143,"digest":"{D1}","platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#,
            mt::DOCKER_MANIFEST_LIST,
            mt::DOCKER_MANIFEST
        );
        let ManifestKind::Index(i) = parse_manifest(None, list.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            i.manifests()[0].media_type().to_string(),
            mt::DOCKER_MANIFEST
        );
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        let k = parse_manifest(Some(mt::OCI_INDEX), idx.as_bytes()).unwrap();
        assert!(matches!(k, ManifestKind::Index(_)));
        let k = parse_manifest(None, idx.as_bytes()).unwrap();
        assert!(matches!(k, ManifestKind::Index(_)));
    }

    #[test]
    fn schema1_refused() {
        let doc = r#"{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}"#;
        let e = parse_manifest(Some(mt::DOCKER_SCHEMA1_SIGNED), doc.as_bytes()).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("schema1 manifests are not supported: "),
            "{s}"
        );
        assert!(s.contains("prettyjws"), "{s}");
        let e = parse_manifest(None, doc.as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::Schema1 { .. }));
        let e = parse_manifest(Some(mt::DOCKER_SCHEMA1), b"{}").unwrap_err();
        assert!(matches!(e, ManifestError::Schema1 { .. }));
    }

    #[test]
    fn unknown_media_type_named() {
        let e = parse_manifest(Some("application/vnd.example.thing+json"), b"{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported manifest media type application/vnd.example.thing+json"
        );
        let e = parse_manifest(
            None,
            br#"{"mediaType":"application/x-foo","schemaVersion":2}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("application/x-foo"), "{e}");
        let e = parse_manifest(None, br#"{"schemaVersion":2}"#).unwrap_err();
        assert!(matches!(e, ManifestError::UnknownShape));
        let e = parse_manifest(None, b"not json").unwrap_err();
        assert!(e.to_string().starts_with("parse manifest: "), "{e}");
    }

    #[test]
    fn mismatch_between_header_and_document() {
        let e = parse_manifest(Some(mt::OCI_INDEX), docker_manifest().as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::MediaTypeMismatch { .. }), "{e}");
    }

    #[test]
    fn missing_field_is_clear() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","layers":[]}}"#,
            mt::OCI_MANIFEST
        );
        let e = parse_manifest(None, doc.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("config"), "{e}");
        let doc = format!(
            r#"{{"schemaVersion":3,"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[]}}"#,
            mt::OCI_CONFIG
        );
        let e = parse_manifest(Some(mt::OCI_MANIFEST), doc.as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::SchemaVersion { version: 3, .. }));
    }

    #[test]
    fn accept_lists_everything_readable() {
        for t in [
            mt::OCI_MANIFEST,
            mt::OCI_INDEX,
            mt::DOCKER_MANIFEST,
            mt::DOCKER_MANIFEST_LIST,
        ] {
            assert!(ACCEPT.contains(t));
        }
        assert!(!ACCEPT.contains("v1+prettyjws"));
    }

    #[test]
    fn docker_config_with_extra_fields() {
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","docker_version":"20.10.7",
            "container":"abc","container_config":{{"Hostname":"abc","Cmd":["/bin/sh"]}},
            "config":{{"Hostname":"","AttachStdin":false,"Env":["PATH=/bin"],"Cmd":["sh"],
              "Image":"sha256:00","Volumes":null,"ExposedPorts":{{"80/tcp":{{}}}},
              "WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}},
            "created":"2021-06-15T21:19:37.236498585Z",
            "history":[{{"created":"2021-01-01T00:00:00Z","created_by":"ADD file"}},
                       {{"created":"2021-01-01T00:00:00Z","created_by":"CMD [\"sh\"]","empty_layer":true}}],
            "rootfs":{{"type":"layers","diff_ids":["{D2}"]}}}}"#
        );
        let c = parse_config(cfg.as_bytes()).unwrap();
        assert_eq!(diff_ids(&c).unwrap(), vec![Digest::parse(D2).unwrap()]);
        let inner = c.config().as_ref().unwrap();
        assert_eq!(inner.cmd().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(
            inner.exposed_ports().as_ref().unwrap(),
            &vec!["80/tcp".to_string()]
        );
        let h = history(&c);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].0, Some(0));
        assert_eq!(h[1].0, None);
        let m = match parse_manifest(None, docker_manifest().as_bytes()).unwrap() {
            ManifestKind::Image(m) => m,
            other => panic!("{other:?}"),
        };
        check_config(&m, &c).unwrap();
    }

    #[test]
    fn config_without_diff_ids_and_bad_diff_id() {
        let c =
            parse_config(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#)
                .unwrap();
        assert!(diff_ids(&c).unwrap().is_empty());
        let c = parse_config(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["md5:00"]}}"#,
        )
        .unwrap();
        let e = diff_ids(&c).unwrap_err();
        assert!(e.to_string().contains("md5:00"), "{e}");
    }

    #[test]
    fn image_id_is_config_digest() {
        let d = Digest::parse(D1).unwrap();
        assert_eq!(image_id(&d), D1);
    }

    #[test]
    fn unknown_layer_type_refused() {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","size":1,"digest":"{D2}"}}]}}"#,
            mt::OCI_CONFIG
        );
        let ManifestKind::Image(m) = parse_manifest(None, doc.as_bytes()).unwrap() else {
            panic!("not a manifest")
        };
        let e = check_layers(&m).unwrap_err();
        assert!(e.to_string().contains("helm"), "{e}");
    }
}
