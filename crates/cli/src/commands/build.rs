//! `berth build`: the context tarred on the fly and streamed to POST /build, the daemon's JSON
//! lines shown as docker's classic builder shows them (`--progress plain`) or as a compact live
//! view (`--progress tty`), docker's exit codes (a failed RUN exits with its code).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::cli::BuildArgs;
use crate::client::{Body, Client, JsonLines, Query};
use crate::context::{ChunkWriter, DirContext};
use crate::Exit;

/// Chunks in flight between the tar writer and the socket.
const QUEUE: usize = 8;

/// What stdin holds for `berth build -`.
#[derive(Debug)]
enum Stdin {
    /// A tar (maybe compressed): the context; these are its first bytes, the rest still unread.
    Archive(Vec<u8>),
    /// A Dockerfile and no context.
    Dockerfile(Vec<u8>),
}

/// Docker's DetectArchiveReader: a compressed stream or a tar header makes an archive.
fn detect_stdin() -> Result<Stdin> {
    let mut head = Vec::with_capacity(512);
    std::io::stdin()
        .lock()
        .take(512)
        .read_to_end(&mut head)
        .context("read the build context from stdin")?;
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let tar = head.len() == 512 && (&head[257..262] == b"ustar");
    if compressed || tar {
        return Ok(Stdin::Archive(head));
    }
    let mut rest = head;
    std::io::stdin()
        .lock()
        .read_to_end(&mut rest)
        .context("read the Dockerfile from stdin")?;
    Ok(Stdin::Dockerfile(rest))
}

/// A request body fed by a thread through a bounded channel; the thread's result says how many
/// bytes went out.
fn channel_body<F>(produce: F) -> (Body, std::thread::JoinHandle<std::io::Result<u64>>)
where
    F: FnOnce(&mut ChunkWriter) -> std::io::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUE);
    let handle = std::thread::spawn(move || {
        let mut w = ChunkWriter::new(tx);
        match produce(&mut w) {
            Ok(()) => w.finish(),
            Err(e) => {
                let kind = e.kind();
                let msg = e.to_string();
                w.fail(e);
                Err(std::io::Error::new(kind, msg))
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), rx))
    });
    (http_body_util::StreamBody::new(stream).boxed(), handle)
}

/// Docker's build-arg map: `k=v` → "v", a bare `k` → null (the Dockerfile's default applies).
fn build_args_json(list: &[String]) -> String {
    let mut m = BTreeMap::new();
    for a in list {
        match a.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), Value::String(v.to_string())),
            None => m.insert(a.clone(), Value::Null),
        };
    }
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

fn labels_json(list: &[String]) -> String {
    let mut m = BTreeMap::new();
    for l in list {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        m.insert(k.to_string(), v.to_string());
    }
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<()> {
    if let Some(f) = &a.iidfile {
        // docker removes a stale id file first, so a failed build never leaves the old id.
        if let Err(e) = std::fs::remove_file(f) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Exit::msg(1, format!("Removing image ID file: {e}")).into());
            }
        }
    }
    let dockerfile_stdin = a.file.as_deref() == Some("-");
    let (body, writer, dockerfile) = if a.context == "-" {
        if dockerfile_stdin {
            return Err(Exit::msg(
                1,
                "invalid argument: can't use stdin for both build context and dockerfile",
            )
            .into());
        }
        match detect_stdin()? {
            Stdin::Archive(head) => {
                let (body, h) = channel_body(move |w| {
                    w.write_all(&head)?;
                    std::io::copy(&mut std::io::stdin().lock(), w)?;
                    Ok(())
                });
                (body, h, a.file.clone())
            }
            Stdin::Dockerfile(text) => {
                let (body, h) = channel_body(move |w| {
                    let mut tb = tar::Builder::new(w);
                    let mut hd = tar::Header::new_gnu();
                    hd.set_mode(0o600);
                    hd.set_size(text.len() as u64);
                    hd.set_entry_type(tar::EntryType::Regular);
                    tb.append_data(&mut hd, "Dockerfile", text.as_slice())?;
                    tb.finish()
                });
                (body, h, None)
            }
        }
    } else {
        let stdin_df = if dockerfile_stdin {
            let mut t = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut t)
                .context("read the Dockerfile from stdin")?;
            Some(t)
        } else {
            None
        };
        let ctx = DirContext::prepare(&a.context, a.file.as_deref(), stdin_df)
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        let name = ctx.dockerfile.clone();
        let (body, h) = channel_body(move |w| {
            ctx.write_tar(w)
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        (body, h, Some(name))
    };

    let mut q = Query::new();
    for t in &a.tags {
        q = q.add("t", t);
    }
    q = q
        .opt("dockerfile", dockerfile.as_deref())
        .opt("target", a.target.as_deref())
        .flag("q", a.quiet)
        .flag("nocache", a.no_cache)
        .flag("pull", a.pull)
        .add("rm", if a.rm { "1" } else { "0" })
        .flag("forcerm", a.force_rm)
        .opt("platform", a.platform.as_deref())
        .add("networkmode", &a.network)
        .add("version", "1");
    let mut build_args = a.build_args.clone();
    // As buildx does: SOURCE_DATE_EPOCH in the environment becomes the build arg that makes
    // file times and history deterministic, unless one is given explicitly.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let given = build_args
            .iter()
            .any(|b| b.split('=').next() == Some("SOURCE_DATE_EPOCH"));
        if !epoch.is_empty() && !given {
            build_args.push(format!("SOURCE_DATE_EPOCH={epoch}"));
        }
    }
    if !build_args.is_empty() {
        q = q.add("buildargs", build_args_json(&build_args));
    }
    if !a.labels.is_empty() {
        q = q.add("labels", labels_json(&a.labels));
    }
    let path = q.path("/build");
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("Content-Type", "application/x-tar".into())],
            body,
        )
        .await;
    // The upload is over (or was cut) once the daemon answers: the writer's result says which.
    let sent = match tokio::task::spawn_blocking(move || writer.join()).await {
        Ok(Ok(r)) => r,
        _ => Err(std::io::Error::other("the context writer panicked")),
    };
    let (resp, sending) = match (resp, sent) {
        (Ok(r), Ok(n)) => (
            r,
            format!(
                "Sending build context to berth daemon  {}\n",
                crate::format::human_size(i64::try_from(n).unwrap_or(i64::MAX))
            ),
        ),
        // A daemon error explains more than our broken pipe.
        (Err(e), _) => return Err(e.into()),
        (Ok(_), Err(e)) => {
            return Err(Exit::msg(1, format!("send the build context: {e}")).into());
        }
    };

    let tty = match a.progress.as_str() {
        "tty" => true,
        "plain" => false,
        _ => std::io::stdout().is_terminal(),
    };
    let mut view = View::new(a.quiet, tty);
    // Quiet keeps it for a failure, as docker does with its progress output.
    view.prelude(&sending);
    let mut lines = JsonLines::new(resp, &path);
    let mut id: Option<String> = None;
    let mut failure: Option<(String, i64)> = None;
    while let Some(v) = lines.next::<Value>().await? {
        if let Some(msg) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            let code = v["errorDetail"]["code"].as_i64().unwrap_or(0);
            failure = Some((msg.to_string(), code));
            break;
        }
        if let Some(i) = v["aux"]["ID"].as_str() {
            id = Some(i.to_string());
        }
        view.message(&v);
    }
    view.finish(failure.is_some());
    if let Some((msg, code)) = failure {
        // docker exits with the failing RUN's code; any other failure is 1.
        let code = u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1);
        return Err(Exit::msg(code, msg).into());
    }
    // With q=1 the daemon says nothing but the image ID, as a stream line (dockerd sends no aux
    // then).
    let id = id.or_else(|| {
        let t = view.log.trim();
        (a.quiet && !t.is_empty()).then(|| t.to_string())
    });
    let Some(id) = id else {
        return Err(Exit::msg(1, "the daemon ended the build without an image ID").into());
    };
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id)
            .map_err(|e| Exit::msg(1, format!("Failed to write image ID to file: {e}")))?;
    }
    Ok(())
}

/// Shows the build's messages: docker's classic lines, or a compact live view on a terminal
/// (the current step and the last line of its output, the whole log replayed on failure).
struct View {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    /// Everything the daemon said, kept for `-q` and the live view to show on failure.
    log: String,
    /// What the CLI itself said before the build started ("Sending build context").
    prelude: String,
    /// Partial line of output not yet shown in the live view.
    pending: String,
    /// Pull progress lines already shown, per layer.
    last_status: BTreeMap<String, String>,
    /// "Successfully built/tagged" lines the live view prints at the end.
    summary: Vec<String>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("quiet", &self.quiet).finish()
    }
}

impl View {
    fn new(quiet: bool, tty: bool) -> View {
        let bar = (tty && !quiet).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_draw_target(indicatif::ProgressDrawTarget::stdout());
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {prefix}\n  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        View {
            quiet,
            bar,
            log: String::new(),
            prelude: String::new(),
            pending: String::new(),
            last_status: BTreeMap::new(),
            summary: Vec::new(),
        }
    }

    fn prelude(&mut self, s: &str) {
        self.prelude.push_str(s);
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(b) => b.println(s.trim_end()),
            None => {
                print!("{s}");
                let _ = std::io::stdout().flush();
            }
        }
    }

    fn text(&mut self, s: &str) {
        self.log.push_str(s);
        if self.quiet {
            return;
        }
        let Some(b) = &self.bar else {
            print!("{s}");
            let _ = std::io::stdout().flush();
            return;
        };
        self.pending.push_str(s);
        while let Some(nl) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=nl).collect();
            let line = line.trim_end();
            if line.starts_with("Step ") {
                b.set_prefix(line.to_string());
                b.set_message("");
            } else if line.starts_with("Successfully ") {
                // Printed after the live view is cleared (and even when it cannot draw).
                self.summary.push(line.to_string());
            } else if !line.trim().is_empty()
                && !line.starts_with(" ---> ")
                && !line.starts_with("Removing intermediate container")
            {
                b.set_message(line.to_string());
            }
        }
    }

    fn message(&mut self, v: &Value) {
        if let Some(s) = v["stream"].as_str() {
            self.text(s);
            return;
        }
        let Some(status) = v["status"].as_str() else {
            return;
        };
        // A FROM that pulls shows one line per layer state change, as the classic builder does.
        let line = match v["id"].as_str().filter(|i| !i.is_empty()) {
            Some(id) => {
                if self.last_status.get(id).map(String::as_str) == Some(status) {
                    return;
                }
                self.last_status.insert(id.to_string(), status.to_string());
                format!("{id}: {status}\n")
            }
            None => format!("{status}\n"),
        };
        self.text(&line);
    }

    fn finish(&mut self, failed: bool) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            if failed {
                // The live view hid the output; the failure needs it.
                print!("{}", self.log);
            }
            for l in &self.summary {
                println!("{l}");
            }
        } else if self.quiet && failed {
            eprint!("{}{}", self.prelude, self.log);
        }
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_maps() {
        assert_eq!(
            build_args_json(&["A=1".into(), "B".into(), "C=x=y".into()]),
            r#"{"A":"1","B":null,"C":"x=y"}"#
        );
        assert_eq!(
            labels_json(&["a=b".into(), "c".into()]),
            r#"{"a":"b","c":""}"#
        );
    }
}
