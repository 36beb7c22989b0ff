//! Registry client for the OCI distribution spec and Docker Registry HTTP API v2.
//!
//! [`RegistryClient`] resolves references by content negotiation, fetches and pushes manifests
//! and blobs, and handles auth the way Docker does: on a 401 it reads the `WWW-Authenticate`
//! challenge, then sends basic credentials or fetches a bearer token (anonymous, or with
//! credentials from `~/.docker/config.json` and its credential helpers), cached per scope.
//! Loopback registries and those listed as insecure are reached over plain HTTP, the rest over
//! HTTPS with the system roots. Requests are retried with backoff on 5xx and connection errors;
//! blob downloads resume with Range requests and are verified by digest as the bytes flow into a
//! [`BlobSink`].
//!
//! [`server`] is the other half: `berth-registry`, an OCI distribution-spec 1.1 server that
//! keeps blobs in the engine's content store and its metadata in redb (docs/registry.md).

pub mod challenge;
pub mod client;
pub mod credentials;
pub mod pull;
pub mod push;

pub use client::{
    is_plain_http, BlobSink, BlobStream, ClientConfig, ErrorKind, Manifest, PushOutcome,
    RegistryClient, RegistryError, Repository, Resolved, WriteSink, MANIFEST_ACCEPT,
};
pub use credentials::{Credential, CredentialsError, CredentialsSource};
pub mod server;
