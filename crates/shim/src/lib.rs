//! berth-shim: one small synchronous process per container.
//!
//! The shim is the parent and subreaper of the container's init (created in-process through the
//! runtime library), owns the container's stdio (pipes, or the pty master), writes the json-file
//! log, serves attach and exec streams to any number of clients over its own unix socket, and
//! records the exit status. It outlives berthd: a restarted daemon reconnects to the socket and
//! asks for the state. [`protocol`] is the wire both sides share.

pub mod protocol;
