//! The distribution spec's error codes and the one place they become HTTP statuses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error code of the distribution spec (plus TAG_INVALID, which Docker's registry uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    /// Not a spec code: a failure of the registry itself.
    Internal,
}

impl Code {
    /// The spec's name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::Internal => "UNKNOWN",
        }
    }

    /// The status the spec gives the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::TagInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer: code, message, optional detail, and optionally a different status (413 for
/// an oversized manifest) and extra headers (the auth challenge, Range on a 416).
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    pub status: Option<StatusCode>,
    pub headers: Vec<(&'static str, String)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            detail: None,
            status: None,
            headers: Vec::new(),
        }
    }

    pub fn detail(mut self, d: serde_json::Value) -> ApiError {
        self.detail = Some(d);
        self
    }

    pub fn with_status(mut self, s: StatusCode) -> ApiError {
        self.status = Some(s);
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(Code::Internal, what.to_string())
    }
}

impl From<super::storage::StorageError> for ApiError {
    fn from(e: super::storage::StorageError) -> ApiError {
        use super::storage::StorageError as E;
        match &e {
            E::BlobUnknown(d) => ApiError::new(Code::BlobUnknown, e.to_string())
                .detail(serde_json::json!({ "digest": d })),
            E::ManifestUnknown(r) => ApiError::new(Code::ManifestUnknown, e.to_string())
                .detail(serde_json::json!({ "reference": r })),
            E::NameUnknown(n) => ApiError::new(Code::NameUnknown, e.to_string())
                .detail(serde_json::json!({ "name": n })),
            E::UploadUnknown(u) => ApiError::new(Code::BlobUploadUnknown, e.to_string())
                .detail(serde_json::json!({ "uuid": u })),
            E::DigestMismatch { .. } => ApiError::new(Code::DigestInvalid, e.to_string()),
            E::SizeMismatch { .. } => ApiError::new(Code::SizeInvalid, e.to_string()),
            E::ManifestBlobUnknown(d) => ApiError::new(Code::ManifestBlobUnknown, e.to_string())
                .detail(serde_json::json!({ "digest": d })),
            E::ManifestInvalid(_) => ApiError::new(Code::ManifestInvalid, e.to_string()),
            E::UploadBusy(_) => ApiError::new(Code::BlobUploadInvalid, e.to_string()),
            E::Db(_) | E::Content(_) | E::Io { .. } | E::Join(_) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.code.status());
        let mut err = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let body = serde_json::json!({ "errors": [err] }).to_string();
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        r
    }
}
