//! The wire between berthd and a berth-shim, over the shim's unix socket.
//!
//! Every connection starts with one request: a JSON object on one line, ended by `\n`. The shim
//! answers with one [`Response`] line. `attach` and `exec` (when not detached) then turn the
//! connection into a stream: the shim sends frames (an 8-byte header — stream byte, three zero
//! bytes, big-endian u32 length — then the payload, as the Engine API's multiplexed stream), the
//! client sends raw stdin bytes and half-closes its write side to signal stdin EOF.
//!
//! All other requests are one line each way; `wait` holds its answer until the container's init
//! has exited. The shim never sends a line the client did not ask for, so a client reading a
//! reply after a restart of berthd sees only the reply.

use oci_spec::runtime::{LinuxResources, Process};
use serde::{Deserialize, Serialize};

pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
/// Carries the final [`ExecState`] (as JSON) of an attached exec, just before the shim closes.
pub const STREAM_SYSTEM: u8 = 3;

/// Largest payload of one frame the shim sends.
pub const MAX_FRAME: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Starts the created container's process.
    Start,
    /// Reports [`ShimState`] at once.
    State,
    /// Answers with [`ShimState`] once the init has exited (at once when it already has).
    Wait,
    /// Sends `signal` to the init, or with `all` to every process of the container.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Sets the size of the container's terminal, or of an exec's when `exec_id` is given.
    Resize {
        width: u16,
        height: u16,
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Streams the container's output; stdin bytes from the client go to the container when
    /// `stdin` is true and the container was made with an open stdin.
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default = "yes")]
        stdout: bool,
        #[serde(default = "yes")]
        stderr: bool,
    },
    /// Runs `process` in the container (a tty when `process.terminal`). Unless `detach`, the
    /// connection becomes the process's stdio, and ends with a [`STREAM_SYSTEM`] frame holding
    /// its [`ExecState`].
    Exec {
        exec_id: String,
        process: Box<Process>,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        detach: bool,
    },
    /// Reports the [`ExecState`] of an exec this shim ran.
    ExecState { exec_id: String },
    /// Changes the container's cgroup limits.
    Update { resources: Box<LinuxResources> },
    /// Deletes the (stopped, or with `force` killed) container from the runtime, answers, removes
    /// its socket and exits.
    Delete {
        #[serde(default)]
        force: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ShimState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecState>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShimState {
    pub status: Status,
    /// The container's init, as seen from the host.
    pub pid: i32,
    /// RFC 3339 with nanoseconds, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit status, or 128 + the signal that ended the process.
    pub code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub exited_at: String,
    /// The container's cgroup saw an OOM kill.
    pub oom_killed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecState {
    pub pid: i32,
    pub running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The line the foreground `berth-shim` prints on stdout before it exits, leaving the shim
/// running in the background (or not, when `ok` is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The container's init pid.
    #[serde(default)]
    pub pid: i32,
    /// The background shim's pid.
    #[serde(default)]
    pub shim_pid: i32,
}

pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Splits a frame header into its stream byte and payload length.
pub fn parse_frame_header(h: &[u8; 8]) -> (u8, usize) {
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    (h[0], len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 9,
                all: false
            }
        );
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: true
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
        // Fields a newer berthd adds must not break a running older shim.
        assert!(serde_json::from_str::<Request>(r#"{"op":"wait","future":1}"#).is_ok());
        assert!(!serde_json::to_string(&Request::Wait)
            .unwrap()
            .contains('\n'));
    }

    #[test]
    fn frame_headers() {
        let h = frame_header(STREAM_STDERR, 258);
        assert_eq!(h, [2, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(parse_frame_header(&h), (2, 258));
    }
}
