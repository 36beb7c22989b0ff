//! `GET /containers/{id}/logs` from the json-file log the shim writes (Docker's format:
//! one `{"log","stream","time"}` object per line, rotated to `.1`, `.2`, …).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::version::ApiVersion;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::server::Params;
use crate::state::{Container, Daemon};

#[derive(Debug, Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

/// (stream, bytes, time) of one log line; None when it is not a json-file line or not wanted.
fn parse_line(l: &str, stdout: bool, stderr: bool) -> Option<(u8, Vec<u8>, String)> {
    let x: Line = serde_json::from_str(l).ok()?;
    let s = match x.stream.as_str() {
        "stdout" if stdout => 1,
        "stderr" if stderr => 2,
        _ => return None,
    };
    Some((s, x.log.into_bytes(), x.time))
}

/// The log files oldest first: `log.N` … `log.1`, `log`.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for i in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if p.exists() {
            v.push(p);
        }
    }
    v.push(path.to_path_buf());
    v
}

/// Every line logged so far.
pub fn read_all(path: &Path, stdout: bool, stderr: bool) -> Vec<(u8, Vec<u8>, String)> {
    let mut out = Vec::new();
    for f in files(path) {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        for l in BufReader::new(file).lines().map_while(Result::ok) {
            if let Some(x) = parse_line(&l, stdout, stderr) {
                out.push(x);
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Opts {
    stdout: bool,
    stderr: bool,
    since: Option<i64>,
    until: Option<i64>,
    tail: Option<usize>,
    timestamps: bool,
    follow: bool,
    tty: bool,
}

fn render(o: &Opts, s: u8, mut line: Vec<u8>, time: &str) -> Vec<u8> {
    if o.timestamps {
        let mut t = time.as_bytes().to_vec();
        t.push(b' ');
        t.append(&mut line);
        line = t;
    }
    if o.tty {
        line
    } else {
        berth_api::stream::frame(s, &line)
    }
}

fn keep(o: &Opts, time: &str) -> bool {
    let t = crate::util::parse_rfc3339_nanos(time).unwrap_or(0);
    o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u)
}

pub fn logs_response(
    d: Arc<Daemon>,
    c: Arc<Container>,
    q: &Params,
    v: ApiVersion,
) -> ApiResult<axum::response::Response> {
    let rec = c.snapshot();
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::invalid("You must choose at least one stream"));
    }
    if rec
        .host_config
        .log_config
        .as_ref()
        .and_then(|l| l.typ.as_deref())
        == Some("none")
    {
        return Err(ApiError::invalid(
            "configured logging driver does not support reading",
        ));
    }
    let time = |k: &str| -> ApiResult<Option<i64>> {
        match q.get(k).filter(|s| !s.is_empty() && *s != "0") {
            None => Ok(None),
            Some(x) => crate::events::parse_time_nanos(x)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for {k}: {x:?}"))),
        }
    };
    let tail = match q.get("tail").filter(|s| !s.is_empty() && *s != "all") {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("invalid value for tail: {t:?}")))?,
        )
        .filter(|n| *n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let o = Opts {
        stdout,
        stderr,
        since: time("since")?,
        until: time("until")?,
        tail,
        timestamps: q.bool("timestamps"),
        follow: q.bool("follow"),
        tty: rec.tty(),
    };
    let _ = d;
    let ct = if !o.tty && v.at_least(1, 42) {
        berth_api::stream::MULTIPLEXED_STREAM
    } else {
        berth_api::stream::RAW_STREAM
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(16);
    let path = rec.log_path.clone();
    tokio::task::spawn_blocking(move || stream_logs(&path, &o, &c, &tx));
    let mut r = axum::response::Response::new(axum::body::Body::from_stream(
        crate::routes::system::tokio_stream(rx),
    ));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(ct),
    );
    Ok(r)
}

type Tx = tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>;

fn stream_logs(path: &Path, o: &Opts, c: &Container, tx: &Tx) {
    let send = |b: Vec<u8>| tx.blocking_send(Ok(axum::body::Bytes::from(b))).is_ok();
    let mut lines: Vec<(u8, Vec<u8>, String)> = read_all(path, o.stdout, o.stderr)
        .into_iter()
        .filter(|(_, _, t)| keep(o, t))
        .collect();
    if let Some(n) = o.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    for (s, l, t) in lines {
        if !send(render(o, s, l, &t)) {
            return;
        }
    }
    if !o.follow {
        return;
    }
    // Follow: watch the file with inotify (no polling); a rotation replaces it.
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let mut pos = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let Ok(ino) = nix::sys::inotify::Inotify::init(
        nix::sys::inotify::InitFlags::IN_CLOEXEC | nix::sys::inotify::InitFlags::IN_NONBLOCK,
    ) else {
        return;
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let _ = ino.add_watch(
        dir,
        nix::sys::inotify::AddWatchFlags::IN_MODIFY
            | nix::sys::inotify::AddWatchFlags::IN_CREATE
            | nix::sys::inotify::AddWatchFlags::IN_MOVED_TO,
    );
    let mut partial = String::new();
    loop {
        let mut reader = BufReader::new(&file);
        let _ = reader.seek(SeekFrom::Start(pos));
        let mut buf = String::new();
        while let Ok(n) = reader.read_line(&mut buf) {
            if n == 0 {
                break;
            }
            pos += n as u64;
            if !buf.ends_with('\n') {
                partial.push_str(&buf);
                buf.clear();
                continue;
            }
            partial.push_str(&buf);
            buf.clear();
            let line = std::mem::take(&mut partial);
            if let Some((s, l, t)) = parse_line(line.trim_end(), o.stdout, o.stderr) {
                if o.until
                    .is_some_and(|u| crate::util::parse_rfc3339_nanos(&t).unwrap_or(0) > u)
                {
                    return;
                }
                if keep(o, &t) && !send(render(o, s, l, &t)) {
                    return;
                }
            }
        }
        drop(reader);
        let running = c.status().is_running() || c.status() == crate::container::Status::Restarting;
        if !running || c.lifecycle.borrow().removed {
            return;
        }
        if tx.is_closed() {
            return;
        }
        // Rotated: the path now names a new file.
        if let (Ok(a), Ok(b)) = (std::fs::metadata(path), file.metadata()) {
            use std::os::unix::fs::MetadataExt;
            if a.ino() != b.ino() {
                if let Ok(f) = std::fs::File::open(path) {
                    file = f;
                    pos = 0;
                    continue;
                }
            }
        }
        let fd = std::os::fd::AsFd::as_fd(&ino);
        let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        // The timeout only bounds how late we notice the container stopped or the client left.
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(500u16));
        let _ = ino.read_events();
    }
}
