//! HTTP handlers, one module per area of the API. Each turns a request into a call on the
//! daemon's services and the result into Docker's JSON.

pub mod archive;
pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod system;
pub mod volumes;
