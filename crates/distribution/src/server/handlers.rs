//! The `/v2/` endpoints: each turns a request into a storage call and the result into the
//! spec's answer. Disk work runs on the blocking pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_image::digest::Digest;
use futures_util::StreamExt;

use super::error::{ApiError, ApiResult, Code};
use super::names::{self, Reference, Route};
use super::storage::{StorageError, MAX_MANIFEST, OCI_INDEX};
use super::Registry;

/// Reads of a blob are streamed in pieces this big.
const READ_CHUNK: usize = 512 << 10;
/// How much of an oversized manifest is read and dropped before the 413.
const DRAIN_LIMIT: u64 = 64 << 20;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(StorageError::Join(e.to_string()))),
    }
}

pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn q<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
}

fn header(h: &HeaderMap, k: &str) -> Option<String> {
    h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn resp(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn json_resp(status: StatusCode, v: &serde_json::Value, extra: &[(&str, String)]) -> Response {
    let body = v.to_string();
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        ("content-length", body.len().to_string()),
    ];
    h.extend(extra.iter().cloned());
    resp(status, &h, Body::from(body))
}

/// Dispatches a `/v2/` request whose route is known and authorized.
pub async fn dispatch(reg: Arc<Registry>, route: Route, req: Request) -> ApiResult<Response> {
    let method = req.method().clone();
    if reg.config.read_only && !matches!(method, Method::GET | Method::HEAD) {
        return Err(ApiError::new(
            Code::Unsupported,
            "this registry is read-only",
        ));
    }
    if let Some(name) = route.name() {
        names::check_name(name)?;
    }
    let pairs = query_pairs(req.uri().query());
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok(json_resp(StatusCode::OK, &serde_json::json!({}), &[]))
        }
        (Route::Catalog, Method::GET) => catalog(reg, &pairs).await,
        (Route::Tags { name }, Method::GET) => tags(reg, name, &pairs).await,
        (Route::Blob { name, digest }, m @ (Method::GET | Method::HEAD)) => {
            get_blob(reg, name, &digest, req.headers(), m == Method::HEAD).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => {
            let d = names::parse_digest(&digest)?;
            let s = reg.clone();
            blocking(move || s.storage.unlink_blob(&name, &d)).await?;
            Ok(resp(
                StatusCode::ACCEPTED,
                &[("content-length", "0".into())],
                Body::empty(),
            ))
        }
        (Route::UploadStart { name }, Method::POST) => start_upload(reg, name, &pairs, req).await,
        (Route::Upload { name, uuid }, Method::GET) => {
            let s = reg.clone();
            let (n2, u2) = (name.clone(), uuid.clone());
            let (_, size) = blocking(move || s.storage.upload(&n2, &u2)).await?;
            Ok(upload_resp(StatusCode::NO_CONTENT, &name, &uuid, size))
        }
        (Route::Upload { name, uuid }, Method::PATCH) => patch_upload(reg, name, uuid, req).await,
        (Route::Upload { name, uuid }, Method::PUT) => {
            finish_upload(reg, name, uuid, &pairs, req).await
        }
        (Route::Upload { name, uuid }, Method::DELETE) => {
            let s = reg.clone();
            blocking(move || {
                s.storage.upload(&name, &uuid)?;
                let _g = s.storage.claim_upload(&uuid)?;
                s.storage.remove_upload(&uuid)
            })
            .await?;
            Ok(resp(StatusCode::NO_CONTENT, &[], Body::empty()))
        }
        (Route::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            get_manifest(reg, name, &reference, req.headers(), m == Method::HEAD).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(reg, name, &reference, req).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            let r = Reference::parse(&reference)?;
            let s = reg.clone();
            blocking(move || s.storage.delete_manifest(&name, &r)).await?;
            Ok(resp(
                StatusCode::ACCEPTED,
                &[("content-length", "0".into())],
                Body::empty(),
            ))
        }
        (Route::Referrers { name, digest }, Method::GET) => {
            referrers(reg, name, &digest, &pairs).await
        }
        (_, m) => Err(ApiError::new(
            Code::Unsupported,
            format!("method {m} is not supported here"),
        )),
    }
}

fn page_params(pairs: &[(String, String)]) -> ApiResult<(Option<usize>, Option<String>)> {
    let n = match q(pairs, "n") {
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(Code::Unsupported, format!("n={s:?} is not a number"))
                .with_status(StatusCode::BAD_REQUEST)
        })?),
        None => None,
    };
    Ok((n, q(pairs, "last").map(str::to_string)))
}

fn next_link(path: &str, n: Option<usize>, last: Option<&String>) -> Vec<(&'static str, String)> {
    match (n, last) {
        (Some(n), Some(last)) => vec![(
            "link",
            format!("<{path}?n={n}&last={}>; rel=\"next\"", pct_encode(last)),
        )],
        _ => Vec::new(),
    }
}

fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn catalog(reg: Arc<Registry>, pairs: &[(String, String)]) -> ApiResult<Response> {
    let (n, last) = page_params(pairs)?;
    let s = reg.clone();
    let l2 = last.clone();
    let (repos, more) = blocking(move || s.storage.catalog(l2.as_deref(), n)).await?;
    let link = if more {
        next_link("/v2/_catalog", n, repos.last())
    } else {
        Vec::new()
    };
    Ok(json_resp(
        StatusCode::OK,
        &serde_json::json!({ "repositories": repos }),
        &link,
    ))
}

async fn tags(reg: Arc<Registry>, name: String, pairs: &[(String, String)]) -> ApiResult<Response> {
    let (n, last) = page_params(pairs)?;
    let s = reg.clone();
    let n2 = name.clone();
    let (tags, more) = blocking(move || s.storage.tags(&n2, last.as_deref(), n)).await?;
    let link = if more {
        next_link(&format!("/v2/{name}/tags/list"), n, tags.last())
    } else {
        Vec::new()
    };
    Ok(json_resp(
        StatusCode::OK,
        &serde_json::json!({ "name": name, "tags": tags }),
        &link,
    ))
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`; None when unsatisfiable.
fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (start, end)
    };
    (start <= end && start < size).then_some((start, end))
}

async fn get_blob(
    reg: Arc<Registry>,
    name: String,
    digest: &str,
    h: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    use std::io::Seek;
    let d = names::parse_digest(digest)?;
    let s = reg.clone();
    let d2 = d.clone();
    let (file, size) = blocking(move || s.storage.open_blob(&name, &d2)).await?;
    let mut headers = vec![
        ("docker-content-digest", d.to_string()),
        ("etag", format!("\"{d}\"")),
        ("accept-ranges", "bytes".to_string()),
        ("content-type", "application/octet-stream".to_string()),
        ("cache-control", "max-age=31536000".to_string()),
    ];
    let (status, start, len) = match header(h, "range") {
        Some(r) => match parse_range(&r, size) {
            Some((a, b)) => {
                headers.push(("content-range", format!("bytes {a}-{b}/{size}")));
                (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
            }
            None => {
                return Err(ApiError::new(
                    Code::RangeInvalid,
                    format!("range {r:?} of a {size}-byte blob"),
                )
                .header("content-range", format!("bytes */{size}")))
            }
        },
        None => (StatusCode::OK, 0, size),
    };
    headers.push(("content-length", len.to_string()));
    if head {
        return Ok(resp(status, &headers, Body::empty()));
    }
    let mut file = file;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .map_err(ApiError::internal)?;
    }
    reg.metrics.bytes_out.fetch_add(len, Ordering::Relaxed);
    let body = Body::from_stream(super::stream::FileStream::new(file, len, READ_CHUNK));
    Ok(resp(status, &headers, body))
}

fn upload_resp(status: StatusCode, name: &str, uuid: &str, size: u64) -> Response {
    let range = if size == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", size - 1)
    };
    resp(
        status,
        &[
            ("location", format!("/v2/{name}/blobs/uploads/{uuid}")),
            ("range", range),
            ("docker-upload-uuid", uuid.to_string()),
            ("content-length", "0".to_string()),
        ],
        Body::empty(),
    )
}

fn blob_created(name: &str, d: &Digest) -> Response {
    resp(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{d}")),
            ("docker-content-digest", d.to_string()),
            ("content-length", "0".to_string()),
        ],
        Body::empty(),
    )
}

/// Counts a request writing upload data in `uploads_in_flight` for its life (a client that
/// goes away drops the future, and the count with it).
struct InFlight(Arc<Registry>);

impl InFlight {
    fn new(reg: &Arc<Registry>) -> InFlight {
        reg.metrics
            .uploads_in_flight
            .fetch_add(1, Ordering::Relaxed);
        InFlight(reg.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .metrics
            .uploads_in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Streams a request body to the end of the upload's file; returns the bytes written.
async fn append_body(reg: &Arc<Registry>, uuid: &str, body: Body) -> ApiResult<u64> {
    use std::io::Write;
    let s = reg.clone();
    let u = uuid.to_string();
    let file = blocking(move || s.storage.upload_file(&u)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let path = uuid.to_string();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut n = 0u64;
        while let Some(b) = rx.blocking_recv() {
            w.write_all(&b)?;
            n += b.len() as u64;
        }
        w.flush()?;
        Ok(n)
    });
    let mut stream = body.into_data_stream();
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
                reg.metrics
                    .bytes_in
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let written = match writer.await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(ApiError::internal(format!("write upload {path}: {e}"))),
        Err(e) => return Err(ApiError::internal(e)),
    };
    if let Some(e) = failed {
        return Err(ApiError::new(
            Code::BlobUploadInvalid,
            format!("reading the request body: {e}"),
        ));
    }
    Ok(written)
}

async fn start_upload(
    reg: Arc<Registry>,
    name: String,
    pairs: &[(String, String)],
    req: Request,
) -> ApiResult<Response> {
    if let (Some(mount), Some(from)) = (q(pairs, "mount"), q(pairs, "from")) {
        let d = names::parse_digest(mount)?;
        // Mounting reads `from`: only when the caller may pull from it (else a plain upload).
        let may_read = match (&reg.auth, req.extensions().get::<super::auth::Identity>()) {
            (Some(a), Some(id)) => id.may(a, from, "pull"),
            (Some(_), None) => false,
            (None, _) => true,
        };
        if names::valid_name(from) && may_read {
            let s = reg.clone();
            let (n2, f2, d2) = (name.clone(), from.to_string(), d.clone());
            if blocking(move || s.storage.mount_blob(&n2, &f2, &d2)).await? {
                return Ok(blob_created(&name, &d));
            }
        }
    }
    let s = reg.clone();
    let n2 = name.clone();
    let uuid = blocking(move || s.storage.start_upload(&n2)).await?;
    if let Some(digest) = q(pairs, "digest") {
        // Monolithic upload: the whole blob is the body.
        let d = match names::parse_digest(digest) {
            Ok(d) => d,
            Err(e) => {
                let s = reg.clone();
                let _ = blocking(move || s.storage.remove_upload(&uuid)).await;
                return Err(e);
            }
        };
        return finish_with_body(reg, name, uuid, d, req.into_body()).await;
    }
    Ok(upload_resp(StatusCode::ACCEPTED, &name, &uuid, 0))
}

/// Parses `Content-Range: a-b` (also `bytes a-b/*`).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

async fn patch_upload(
    reg: Arc<Registry>,
    name: String,
    uuid: String,
    req: Request,
) -> ApiResult<Response> {
    let s = reg.clone();
    let (n2, u2) = (name.clone(), uuid.clone());
    let (_, size) = blocking(move || s.storage.upload(&n2, &u2)).await?;
    let _g = reg.storage.claim_upload(&uuid)?;
    if let Some(cr) = header(req.headers(), "content-range") {
        let range_err = || {
            ApiError::new(
                Code::RangeInvalid,
                format!("content range {cr:?} does not continue the upload at {size}"),
            )
            .header("location", format!("/v2/{name}/blobs/uploads/{uuid}"))
            .header(
                "range",
                if size == 0 {
                    "0-0".into()
                } else {
                    format!("0-{}", size - 1)
                },
            )
            .header("docker-upload-uuid", uuid.clone())
        };
        let (a, b) = parse_content_range(&cr).ok_or_else(range_err)?;
        if a != size || b < a {
            return Err(range_err());
        }
    }
    let _busy = InFlight::new(&reg);
    let written = append_body(&reg, &uuid, req.into_body()).await?;
    Ok(upload_resp(
        StatusCode::ACCEPTED,
        &name,
        &uuid,
        size + written,
    ))
}

async fn finish_upload(
    reg: Arc<Registry>,
    name: String,
    uuid: String,
    pairs: &[(String, String)],
    req: Request,
) -> ApiResult<Response> {
    let s = reg.clone();
    let (n2, u2) = (name.clone(), uuid.clone());
    blocking(move || s.storage.upload(&n2, &u2)).await?;
    let digest = q(pairs, "digest")
        .ok_or_else(|| ApiError::new(Code::DigestInvalid, "the digest parameter is missing"))?;
    let d = names::parse_digest(digest)?;
    finish_with_body(reg, name, uuid, d, req.into_body()).await
}

async fn finish_with_body(
    reg: Arc<Registry>,
    name: String,
    uuid: String,
    d: Digest,
    body: Body,
) -> ApiResult<Response> {
    let _g = reg.storage.claim_upload(&uuid)?;
    let _busy = InFlight::new(&reg);
    append_body(&reg, &uuid, body).await?;
    let s = reg.clone();
    let (n2, d2) = (name.clone(), d.clone());
    blocking(move || s.storage.finish_upload(&n2, &uuid, &d2)).await?;
    Ok(blob_created(&name, &d))
}

/// Whether an Accept header lets the client take `media_type`. Clients that name no manifest
/// type at all (or `*/*`) take anything.
fn accepts(h: &HeaderMap, media_type: &str) -> bool {
    let types: Vec<String> = h
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let manifest_like = |t: &str| t.contains("manifest") || t.contains("image.index");
    if types.is_empty()
        || types.iter().any(|t| t == "*/*")
        || !types.iter().any(|t| manifest_like(t))
    {
        return true;
    }
    types.iter().any(|t| t == media_type)
}

async fn get_manifest(
    reg: Arc<Registry>,
    name: String,
    reference: &str,
    h: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let r = Reference::parse(reference)?;
    let s = reg.clone();
    let m = blocking(move || s.storage.get_manifest(&name, &r)).await?;
    if !accepts(h, &m.media_type) {
        return Err(ApiError::new(
            Code::ManifestUnknown,
            format!(
                "manifest {reference} is a {}, which the Accept header does not take",
                m.media_type
            ),
        ));
    }
    let headers = [
        ("content-type", m.media_type.clone()),
        ("docker-content-digest", m.digest.to_string()),
        ("etag", format!("\"{}\"", m.digest)),
        ("content-length", m.bytes.len().to_string()),
    ];
    if head {
        return Ok(resp(StatusCode::OK, &headers, Body::empty()));
    }
    reg.metrics
        .bytes_out
        .fetch_add(m.bytes.len() as u64, Ordering::Relaxed);
    Ok(resp(StatusCode::OK, &headers, Body::from(m.bytes)))
}

async fn put_manifest(
    reg: Arc<Registry>,
    name: String,
    reference: &str,
    req: Request,
) -> ApiResult<Response> {
    let r = Reference::parse(reference)?;
    let too_big = || {
        ApiError::new(
            Code::SizeInvalid,
            format!("manifest larger than {MAX_MANIFEST} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = header(req.headers(), "content-length").and_then(|l| l.parse::<u64>().ok());
    let content_type = header(req.headers(), "content-type");
    // Reads the body whole up to the limit. Past it the rest is read and dropped (up to a
    // bound), so the client gets to see the 413 rather than a reset while it still writes.
    let mut stream = req.into_body().into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(64 << 10, |l| {
        usize::try_from(l).unwrap_or(MAX_MANIFEST).min(MAX_MANIFEST)
    }));
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::ManifestInvalid, format!("reading the manifest: {e}"))
        })?;
        total += chunk.len() as u64;
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= MAX_MANIFEST as u64 {
            buf.extend_from_slice(&chunk);
        }
    }
    if total > MAX_MANIFEST as u64 || declared.is_some_and(|l| l > MAX_MANIFEST as u64) {
        return Err(too_big());
    }
    let bytes = buf;
    reg.metrics
        .bytes_in
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let media_type =
        match content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()) {
            Some(ct) if !ct.is_empty() => ct,
            _ => super::storage::manifest_refs(&bytes)
                .map_err(ApiError::from)?
                .media_type
                .ok_or_else(|| {
                    ApiError::new(Code::ManifestInvalid, "no Content-Type and no mediaType")
                })?,
        };
    let (tag, expected) = match &r {
        Reference::Tag(t) => (Some(t.clone()), None),
        Reference::Digest(d) => (None, Some(d.clone())),
    };
    let s = reg.clone();
    let n2 = name.clone();
    let (digest, subject) = blocking(move || {
        s.storage
            .put_manifest(&n2, tag.as_deref(), expected.as_ref(), &media_type, &bytes)
    })
    .await?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_string()),
    ];
    if let Some(s) = subject {
        headers.push(("oci-subject", s.to_string()));
    }
    Ok(resp(StatusCode::CREATED, &headers, Body::empty()))
}

async fn referrers(
    reg: Arc<Registry>,
    name: String,
    digest: &str,
    pairs: &[(String, String)],
) -> ApiResult<Response> {
    let d = names::parse_digest(digest)?;
    let at = q(pairs, "artifactType").map(str::to_string);
    let s = reg.clone();
    let at2 = at.clone();
    let list = blocking(move || s.storage.referrers(&name, &d, at2.as_deref())).await?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": list,
    });
    let body = index.to_string();
    let mut headers = vec![
        ("content-type", OCI_INDEX.to_string()),
        ("content-length", body.len().to_string()),
    ];
    if at.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_string()));
    }
    Ok(resp(StatusCode::OK, &headers, Body::from(body)))
}

/// Not part of the API: answered for paths outside it.
pub fn not_found() -> Response {
    ApiError::new(Code::NameUnknown, "no such endpoint")
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("lines=1-2", 100), None);
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19)));
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, OCI_INDEX), "no Accept takes anything");
        h.insert(
            "accept",
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        );
        assert!(!accepts(&h, OCI_INDEX));
        assert!(accepts(&h, "application/vnd.oci.image.manifest.v1+json"));
        h.append(
            "accept",
            HeaderValue::from_static("application/vnd.oci.image.index.v1+json; q=0.5"),
        );
        assert!(accepts(&h, OCI_INDEX));
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_static("application/json, */*"));
        assert!(accepts(&h, OCI_INDEX));
    }

    #[test]
    fn query_decoding() {
        let p = query_pairs(Some("a=b%3Ac&n=2&last=x+y"));
        assert_eq!(q(&p, "a"), Some("b:c"));
        assert_eq!(q(&p, "last"), Some("x y"));
        assert_eq!(pct_decode("%zz%"), "%zz%");
    }
}
