//! Docker's `json-file` log: one JSON object per line of container output,
//! `{"log":"<line>\n","stream":"stdout","time":"<RFC 3339, nanoseconds, UTC>"}`, with Docker's
//! escaping (invalid UTF-8 becomes U+FFFD, `<`, `>` and `&` are `\u00XX`) and its rotation
//! (`max-size`, `max-file`), so `docker logs` readers and log shippers parse it unchanged.
//!
//! Lines are cut at `\n`; a line longer than [`MAX_LINE`] is written in pieces of that size,
//! all but the last without a newline, as Docker's copier does. A trailing partial line waits
//! for more output and is written when the stream ends ([`JsonLog::finish`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Longest piece of a line written as one record (Docker's copier buffer).
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Which of the container's streams a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Where records go, how big files may grow and how many are kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub path: PathBuf,
    /// 0: unlimited.
    pub max_size: u64,
    /// Files kept in all, the live one included (at least 1).
    pub max_file: u32,
}

/// The open log with the partial line of each stream.
#[derive(Debug)]
pub struct JsonLog {
    cfg: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
    /// Set after a write failed (disk full, file removed under us): output is still served to
    /// attached clients, the container never blocks on its log.
    broken: bool,
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| LogError::Io {
            what: "open log",
            path: path.to_path_buf(),
            error,
        })
}

impl JsonLog {
    pub fn open(cfg: LogConfig) -> Result<Self, LogError> {
        let file = open_append(&cfg.path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            cfg,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
            broken: false,
        })
    }

    /// Logs `data` from `stream` at time `now` (RFC 3339): every complete line, and pieces of
    /// [`MAX_LINE`] bytes of a line that long; the rest waits for more.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: &str) {
        let i = stream.index();
        let mut buf = std::mem::take(&mut self.partial[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            let window = &rest[..rest.len().min(MAX_LINE)];
            let end = match window.iter().position(|&b| b == b'\n') {
                Some(p) => p + 1,
                None if rest.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            self.record(stream, &rest[..end], now);
            start += end;
        }
        buf.drain(..start);
        self.partial[i] = buf;
    }

    /// Writes the partial lines of both streams (the output has ended).
    pub fn finish(&mut self, now: &str) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream.index()]);
            if !line.is_empty() {
                self.record(stream, &line, now);
            }
        }
    }

    fn record(&mut self, stream: Stream, line: &[u8], now: &str) {
        if self.broken {
            return;
        }
        let rec = encode_record(line, stream.name(), now);
        let len = rec.len() as u64;
        let full = self.cfg.max_size > 0 && self.size > 0 && self.size + len > self.cfg.max_size;
        // A log that cannot rotate has nobody to tell but the daemon's reads of the file: stop
        // writing rather than fail on every line.
        if full && self.rotate().is_err() {
            self.broken = true;
            return;
        }
        if self.file.write_all(&rec).is_err() {
            self.broken = true;
            return;
        }
        self.size += len;
    }

    /// FILE.(n-2) → FILE.(n-1), …, FILE → FILE.1, and a new empty FILE; with one file in all,
    /// FILE is truncated.
    fn rotate(&mut self) -> Result<(), LogError> {
        let path = &self.cfg.path;
        let numbered = |n: u32| {
            let mut s = path.as_os_str().to_owned();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        };
        if self.cfg.max_file <= 1 {
            self.file.set_len(0).map_err(|error| LogError::Io {
                what: "truncate log",
                path: path.clone(),
                error,
            })?;
            self.size = 0;
            return Ok(());
        }
        let last = self.cfg.max_file - 1;
        let _ = std::fs::remove_file(numbered(last));
        for n in (1..last).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(path, numbered(1)).map_err(|error| LogError::Io {
            what: "rotate log",
            path: path.clone(),
            error,
        })?;
        self.file = open_append(path)?;
        self.size = 0;
        Ok(())
    }
}

/// One record, newline included.
pub fn encode_record(line: &[u8], stream: &str, time: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 64);
    out.extend_from_slice(b"{\"log\":");
    json_string(&mut out, line);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

/// A JSON string of arbitrary bytes, escaped as Docker's jsonlog does.
pub fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(v) => (v, 0),
            Err(e) => {
                // The first `valid_up_to` bytes are valid UTF-8 by definition.
                let v = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                (v, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if c.is_ascii_control() && c != '\x7f' || matches!(c, '<' | '>' | '&') => {
                    let b = u8::try_from(c).unwrap_or(b'?');
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        let skip = valid.len() + bad;
        for _ in 0..bad {
            out.extend_from_slice(b"\\ufffd");
        }
        rest = &rest[skip..];
    }
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    const T: &str = "2024-01-02T03:04:05.000000006Z";

    fn enc(b: &[u8]) -> String {
        let mut v = Vec::new();
        json_string(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escaping_matches_docker() {
        assert_eq!(enc(b"hi\n"), r#""hi\n""#);
        assert_eq!(enc(b"a\"b\\c\td\r"), r#""a\"b\\c\td\r""#);
        assert_eq!(enc(b"<&>\x01\x1b"), r#""\u003c\u0026\u003e\u0001\u001b""#);
        assert_eq!(enc("é\u{2028}".as_bytes()), "\"é\\u2028\"");
        assert_eq!(enc(b"a\xffb\xc3"), r#""a\ufffdb\ufffd""#);
        // Every encoding parses back as JSON.
        let all: Vec<u8> = (0..=255u8).collect();
        let s = enc(&all);
        let v: String = serde_json::from_str(&s).unwrap();
        assert!(v.contains('\u{fffd}'));
    }

    #[test]
    fn lines_are_split_and_partials_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut log = JsonLog::open(LogConfig {
            path: path.clone(),
            max_size: 0,
            max_file: 1,
        })
        .unwrap();
        log.write(Stream::Stdout, b"one\ntw", T);
        log.write(Stream::Stderr, b"err\n", T);
        log.write(Stream::Stdout, b"o\nthree", T);
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        log.write(Stream::Stderr, &long, T);
        log.finish(T);
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let logs: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| (r["stream"].as_str().unwrap(), r["log"].as_str().unwrap()))
            .collect();
        assert_eq!(logs[0], ("stdout", "one\n"));
        assert_eq!(logs[1], ("stderr", "err\n"));
        assert_eq!(logs[2], ("stdout", "two\n"));
        assert_eq!(logs[3].1.len(), MAX_LINE);
        assert_eq!(logs[4].1.len(), MAX_LINE);
        assert_eq!(logs[5], ("stdout", "three"));
        assert_eq!(logs[6], ("stderr", "xxxxx"));
        assert_eq!(recs[0]["time"], T);
        assert!(text.starts_with(r#"{"log":"one\n","stream":"stdout","time":""#));
    }

    #[test]
    fn rotation_keeps_max_file_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let rec_len = encode_record(b"0123456789\n", "stdout", T).len() as u64;
        let mut log = JsonLog::open(LogConfig {
            path: path.clone(),
            max_size: rec_len * 2,
            max_file: 3,
        })
        .unwrap();
        for _ in 0..9 {
            log.write(Stream::Stdout, b"0123456789\n", T);
        }
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!(lines(&path), 1);
        assert_eq!(lines(&dir.path().join("c.log.1")), 2);
        assert_eq!(lines(&dir.path().join("c.log.2")), 2);
        assert!(!dir.path().join("c.log.3").exists());

        let one = dir.path().join("one.log");
        let mut log = JsonLog::open(LogConfig {
            path: one.clone(),
            max_size: rec_len * 2,
            max_file: 1,
        })
        .unwrap();
        for _ in 0..5 {
            log.write(Stream::Stdout, b"0123456789\n", T);
        }
        assert_eq!(lines(&one), 1);
        assert!(!dir.path().join("one.log.1").exists());
    }
}
