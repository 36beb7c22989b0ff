//! The registry conformance suite: every endpoint and error code of the OCI distribution-spec
//! (pull, push, content discovery, content management) plus name/tag validation and auth,
//! written against a base address so it runs against any registry. In the spirit of the OCI
//! conformance tests, not a port of them.
//!
//! Each check is a function returning `Err(reason)`; the runner collects every outcome and the
//! test fails listing all failures at once. A check tied to a [`Feature`] the target declares
//! unsupported still runs and must fail there (expected-unsupported): a feature that starts
//! working is reported so the declaration gets corrected, and the suite itself is proved by
//! running against two implementations.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the suite"
)]
#![allow(clippy::unwrap_used, reason = "test harness: a failure should be loud")]

pub mod http;
pub mod server;
mod suite;

use std::path::PathBuf;

pub use http::{request, Resp};
pub use server::{BerthOptions, BerthRegistry};
pub use suite::{data, run_auth_basic, run_auth_token, run_core, TokenCase};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Optional parts of the spec (or of OCI 1.1) a target may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// OCI 1.1: `GET /v2/<name>/referrers/<digest>` and `OCI-Subject` on manifest PUT.
    Referrers,
    /// `POST /v2/<name>/blobs/uploads/?digest=` with the blob in the body (201 at once).
    SinglePostUpload,
    /// `n`/`last` on the tags list, with a `Link` header.
    TagsPagination,
    /// `DELETE /v2/<name>/manifests/<tag>` removes the tag only (OCI 1.1).
    TagDelete,
    /// A PATCH whose Content-Range does not continue the upload is refused with 416.
    ChunkRangeCheck,
    /// A PATCH whose body ends before its Content-Length is answered 400 BLOB_UPLOAD_INVALID.
    UploadInvalidOnCut,
    /// Tags lists come in lexical order.
    SortedTags,
    /// Invalid tags (including `a:b`) are 400 TAG_INVALID (or MANIFEST_INVALID), never a 5xx.
    StrictTagValidation,
    /// Manifests over 4 MiB are refused (413/SIZE_INVALID).
    ManifestSizeLimit,
    /// Invalid names are answered 400 NAME_INVALID rather than an unrouted 404.
    NameInvalidCode,
    /// A token without the needed scope is answered 403 DENIED (not 401 insufficient_scope).
    Denied403,
}

/// A registry under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// For messages: "berth-registry", "distribution 2.8".
    pub name: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// `Authorization` header value sent with every request, if any.
    pub auth: Option<String>,
    pub unsupported: Vec<Feature>,
    /// The registry's storage root: traversal checks assert nothing appears beside it.
    pub root: Option<PathBuf>,
}

impl Target {
    pub fn supports(&self, f: Feature) -> bool {
        !self.unsupported.contains(&f)
    }

    pub fn req(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Resp, String> {
        let mut h: Vec<(&str, String)> = headers.to_vec();
        if let Some(a) = &self.auth {
            h.push(("Authorization", a.clone()));
        }
        request(&self.host, method, target, &h, body)
    }
}

/// One check's result.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// Declared unsupported and failed, as expected: the reason it failed.
    ExpectedUnsupported(String),
    /// Declared unsupported but passed: the declaration is wrong.
    UnexpectedPass,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<(String, String, Outcome)>,
}

impl Report {
    pub fn check(
        &mut self,
        t: &Target,
        group: &str,
        name: &str,
        feature: Option<Feature>,
        f: impl FnOnce() -> Result<(), String>,
    ) {
        let res = f();
        let outcome = match (feature.map(|f| t.supports(f)).unwrap_or(true), res) {
            (true, Ok(())) => Outcome::Pass,
            (true, Err(e)) => Outcome::Fail(e),
            (false, Ok(())) => Outcome::UnexpectedPass,
            (false, Err(e)) => Outcome::ExpectedUnsupported(e),
        };
        self.rows
            .push((group.to_string(), name.to_string(), outcome));
    }

    /// Prints the table and panics listing every failure.
    pub fn finish(&self, t: &Target) {
        let mut failures = Vec::new();
        let (mut pass, mut unsup) = (0, 0);
        for (g, n, o) in &self.rows {
            let s = match o {
                Outcome::Pass => {
                    pass += 1;
                    "pass".to_string()
                }
                Outcome::Fail(e) => {
                    failures.push(format!("[{g}] {n}: {e}"));
                    format!("FAIL: {e}")
                }
                Outcome::ExpectedUnsupported(e) => {
                    unsup += 1;
                    format!("expected-unsupported ({e})")
                }
                Outcome::UnexpectedPass => {
                    failures.push(format!(
                        "[{g}] {n}: declared unsupported on {} but passes",
                        t.name
                    ));
                    "UNEXPECTED PASS".to_string()
                }
            };
            eprintln!("{:<28} {:<12} {:<58} {}", t.name, g, n, s);
        }
        eprintln!(
            "{}: {} checks, {pass} pass, {unsup} expected-unsupported, {} failed",
            t.name,
            self.rows.len(),
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{} conformance failures on {}:\n{}",
            failures.len(),
            t.name,
            failures.join("\n")
        );
    }
}
