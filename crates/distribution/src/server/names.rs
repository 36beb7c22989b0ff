//! Repository names, tags and the routes of `/v2/`, checked before anything touches storage.
//!
//! Names are matched against the spec's grammar on the raw (still percent-encoded) path, so
//! `..`, `%2e%2e` and encoded slashes never match, and a name is only ever a key in the
//! metadata database, never a filesystem path.

use berth_image::digest::Digest;

use super::error::{ApiError, ApiResult, Code};

/// Longest repository name accepted.
pub const MAX_NAME_LEN: usize = 255;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+", followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Whether `name` is a valid repository name.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

pub fn check_name(name: &str) -> ApiResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(Code::NameInvalid, "invalid repository name")
            .detail(serde_json::json!({ "name": name })))
    }
}

pub fn parse_digest(s: &str) -> ApiResult<Digest> {
    Digest::parse(s).map_err(|e| {
        ApiError::new(Code::DigestInvalid, format!("invalid digest {s:?}: {e}"))
            .detail(serde_json::json!({ "digest": s }))
    })
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> ApiResult<Reference> {
        if s.contains(':') {
            parse_digest(s).map(Reference::Digest)
        } else if valid_tag(s) {
            Ok(Reference::Tag(s.to_string()))
        } else {
            Err(
                ApiError::new(Code::TagInvalid, format!("invalid tag {s:?}"))
                    .detail(serde_json::json!({ "tag": s })),
            )
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => f.write_str(d.as_str()),
        }
    }
}

/// What a `/v2/...` path names (names still unchecked; the segment strings raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, uuid: String },
    Referrers { name: String, digest: String },
}

impl Route {
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Splits a raw request path into a route; None when it names nothing under `/v2/`.
pub fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    let name = |k: usize| parts[..n - k].join("/");
    if n >= 4 && parts[n - 3] == "blobs" && parts[n - 2] == "uploads" {
        return Some(if parts[n - 1].is_empty() {
            Route::UploadStart { name: name(3) }
        } else {
            Route::Upload {
                name: name(3),
                uuid: parts[n - 1].to_string(),
            }
        });
    }
    if n >= 3 && parts[n - 2] == "blobs" && parts[n - 1] == "uploads" {
        return Some(Route::UploadStart { name: name(2) });
    }
    if n >= 3 && parts[n - 2] == "tags" && parts[n - 1] == "list" {
        return Some(Route::Tags { name: name(2) });
    }
    if n >= 3 {
        let last = parts[n - 1].to_string();
        match parts[n - 2] {
            "manifests" => {
                return Some(Route::Manifest {
                    name: name(2),
                    reference: last,
                })
            }
            "blobs" => {
                return Some(Route::Blob {
                    name: name(2),
                    digest: last,
                })
            }
            "referrers" => {
                return Some(Route::Referrers {
                    name: name(2),
                    digest: last,
                })
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in ["a", "library/busybox", "a.b_c__d---e/f0", "x/y/z", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "..", "a/../b", "%2e%2e",
            "a%2fb", "a/./b", "a b", "a_.b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name(&"a".repeat(255)));
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for ok in ["latest", "_x", "v1.2.3-rc_1", &"a".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "..", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn routes_split_names_with_slashes() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            route("/v2/a/b/manifests/latest"),
            Some(Route::Manifest {
                name: "a/b".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/"),
            Some(Route::UploadStart { name: "a".into() })
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/u1"),
            Some(Route::Upload {
                name: "a".into(),
                uuid: "u1".into()
            })
        );
        assert_eq!(
            route("/v2/x/blobs/manifests/t"),
            Some(Route::Manifest {
                name: "x/blobs".into(),
                reference: "t".into()
            })
        );
        assert_eq!(
            route("/v2/a/tags/list"),
            Some(Route::Tags { name: "a".into() })
        );
        assert_eq!(route("/v3/a/tags/list"), None);
        assert_eq!(route("/v2/a"), None);
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(
            Reference::parse("latest").ok(),
            Some(Reference::Tag("latest".into()))
        );
        assert!(matches!(
            Reference::parse("sha256:abc"),
            Err(ApiError {
                code: Code::DigestInvalid,
                ..
            })
        ));
        assert!(matches!(
            Reference::parse("..%2f"),
            Err(ApiError {
                code: Code::TagInvalid,
                ..
            })
        ));
    }
}
