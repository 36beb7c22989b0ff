//! The daemon's error: a kind (which alone decides the HTTP status, in [`ApiError::status`])
//! and a message that says what was being done and on what.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 304: the thing is already in the asked-for state (start a running container).
    NotModified,
    InvalidInput,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: Kind,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(Kind::InvalidInput, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Kind::Internal, m)
    }
    pub fn not_modified() -> Self {
        Self::new(Kind::NotModified, "")
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, m)
    }

    /// Adds what was being done in front of the message.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        ApiError {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::NotModified => StatusCode::NOT_MODIFIED,
            Kind::InvalidInput => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An internal error from anything displayable, with what was being done.
pub fn internal(what: impl std::fmt::Display) -> impl FnOnce(ApiError) -> ApiError {
    move |e| e.context(what)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let message = if self.message.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        } else {
            self.message
        };
        let body = serde_json::to_vec(&berth_api::ErrorBody { message }).unwrap_or_default();
        let mut r = (status, body).into_response();
        // Exactly this: with a charset the docker CLI prints the raw JSON.
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

macro_rules! from_kinded {
    ($t:ty, $f:expr) => {
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                let kind: Kind = $f(&e);
                ApiError::new(kind, e.to_string())
            }
        }
    };
}

from_kinded!(std::io::Error, |e: &std::io::Error| match e.kind() {
    std::io::ErrorKind::NotFound => Kind::NotFound,
    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => Kind::InvalidInput,
    _ => Kind::Internal,
});
from_kinded!(berth_api::filters::FilterError, |_| Kind::InvalidInput);
from_kinded!(berth_image::reference::ReferenceError, |_| {
    Kind::InvalidInput
});
from_kinded!(
    berth_image::store::StoreError,
    |e: &berth_image::store::StoreError| { store_kind(e) }
);
from_kinded!(berth_image::snapshot::SnapshotError, |_| Kind::Internal);
from_kinded!(
    berth_image::content::ContentError,
    |e: &berth_image::content::ContentError| {
        if e.is_not_found() {
            Kind::NotFound
        } else {
            Kind::Internal
        }
    }
);
from_kinded!(berth_runtime::error::RuntimeError, |_| Kind::Internal);

fn store_kind(e: &berth_image::store::StoreError) -> Kind {
    use berth_image::store::StoreError as S;
    match e {
        S::NotFound(_) => Kind::NotFound,
        S::MultipleRepositories { .. } | S::InUse { .. } => Kind::Conflict,
        S::Content(c) if c.is_not_found() => Kind::NotFound,
        _ => Kind::Internal,
    }
}
