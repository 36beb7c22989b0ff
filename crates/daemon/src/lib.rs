//! berthd: the Docker Engine API over a unix socket (and TCP with TLS), the container state
//! machine, persistence, events, restart policies, health checks and volumes, wired to the
//! runtime (through one berth-shim per container) and the image store.
//!
//! Handlers in [`routes`] turn requests into calls on the services ([`lifecycle`], [`images`],
//! [`volumes`]…) and their results or [`error::ApiError`]s into Docker's JSON; only the
//! routes know HTTP. The container record ([`container`]) is saved atomically on every change,
//! and each container's shim outlives the daemon, so a restarted berthd re-adopts running
//! containers ([`lifecycle::restore`]).

pub mod attach;
pub mod build;
pub mod config;
pub mod container;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod fs_ops;
pub mod health;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod routes;
pub mod server;
pub mod shim;
pub mod spec;
pub mod state;
pub mod stats;
pub mod usage;
pub mod util;
pub mod volumes;
