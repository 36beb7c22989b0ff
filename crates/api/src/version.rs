//! API versions: what berthd answers and how a `/vX.Y/` prefix is read.

/// The oldest API version berthd answers (Docker 28's minimum).
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);
/// The newest: the version of the swagger the wire types were generated from.
pub const MAX_API_VERSION: ApiVersion = ApiVersion(1, 53);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        if a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion(major, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits a request path into its API version prefix, if any, and the rest:
/// `/v1.41/containers/json` → (Some("1.41"), "/containers/json").
pub fn split_version_prefix(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let v = &rest[..end];
        if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            let tail = &rest[end..];
            return (Some(v), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("client version {0} is too new. Maximum supported API version is {MAX_API_VERSION}")]
    TooNew(String),
    #[error("client version {0} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version")]
    TooOld(String),
    #[error("invalid API version {0:?}")]
    Invalid(String),
}

/// The version a request asks for (the server's newest without a prefix), or why it is refused.
pub fn negotiate(prefix: Option<&str>) -> Result<ApiVersion, VersionError> {
    let Some(p) = prefix else {
        return Ok(MAX_API_VERSION);
    };
    let v = ApiVersion::parse(p).ok_or_else(|| VersionError::Invalid(p.to_string()))?;
    if v > MAX_API_VERSION {
        return Err(VersionError::TooNew(p.to_string()));
    }
    if v < MIN_API_VERSION {
        return Err(VersionError::TooOld(p.to_string()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            split_version_prefix("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(split_version_prefix("/_ping"), (None, "/_ping"));
        assert_eq!(split_version_prefix("/v1.51"), (Some("1.51"), "/"));
        assert_eq!(split_version_prefix("/volumes"), (None, "/volumes"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None), Ok(MAX_API_VERSION));
        assert_eq!(negotiate(Some("1.41")), Ok(ApiVersion(1, 41)));
        assert!(matches!(
            negotiate(Some("1.99")),
            Err(VersionError::TooNew(_))
        ));
        assert!(matches!(
            negotiate(Some("1.12")),
            Err(VersionError::TooOld(_))
        ));
        assert!(matches!(
            negotiate(Some("1.")),
            Err(VersionError::Invalid(_))
        ));
        assert!(ApiVersion(1, 42).at_least(1, 42));
    }
}
