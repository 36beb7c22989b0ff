//! `run`, `create`, `start` and `attach`: docker's order of calls (create, pulling on "No such
//! image"; attach before start; wait registered before start), and its exit codes.

use std::io::IsTerminal;

use anyhow::Result;
use hyper::Method;
use serde_json::Value;

use crate::cli::{AttachArgs, RunArgs, StartArgs};
use crate::client::{enc, Client, ClientError, Query};
use crate::opts;
use crate::stream::{self, End};
use crate::Exit;

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// docker's exit status for a failed start: 127 when the command is missing, 126 when it cannot
/// be run, 125 otherwise.
fn start_error_code(msg: &str) -> u8 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

fn run_err(cmd: &str, msg: impl std::fmt::Display, code: u8) -> anyhow::Error {
    Exit::msg(
        code,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

async fn create_container(c: &Client, a: &RunArgs, cmd: &str) -> Result<String> {
    let spec = opts::create_spec(a).map_err(|e| run_err(cmd, e, 125))?;
    let q = Query::new()
        .opt("name", spec.name.as_deref())
        .opt("platform", spec.platform.as_deref());
    let path = q.path("/containers/create");
    if a.pull == "always" {
        pull_for_run(c, &spec.image, spec.platform.as_deref(), a.quiet, cmd).await?;
    }
    let created: Result<Value, ClientError> = c.json(Method::POST, &path, Some(&spec.body)).await;
    let created = match created {
        Err(ClientError::Daemon {
            status: 404,
            message,
        }) if message.starts_with("No such image") && a.pull != "never" => {
            eprintln!("Unable to find image '{}' locally", full_tag(&spec.image));
            pull_for_run(c, &spec.image, spec.platform.as_deref(), a.quiet, cmd).await?;
            c.json(Method::POST, &path, Some(&spec.body))
                .await
                .map_err(|e| run_err(cmd, e, 125))?
        }
        Err(e) => return Err(run_err(cmd, e, 125)),
        Ok(v) => v,
    };
    if let Some(w) = created["Warnings"].as_array() {
        for w in w.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &id).map_err(|e| {
            run_err(
                cmd,
                format!("failed to write the container ID to the file: {e}"),
                125,
            )
        })?;
    }
    Ok(id)
}

fn full_tag(image: &str) -> String {
    let (repo, tag) = opts::split_ref(image);
    if tag.starts_with("sha256:") {
        format!("{repo}@{tag}")
    } else {
        format!("{repo}:{tag}")
    }
}

async fn pull_for_run(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    cmd: &str,
) -> Result<()> {
    super::image::pull_image(c, image, platform, quiet, true)
        .await
        .map_err(|e| {
            let msg = e.to_string();
            run_err(cmd, msg, 125)
        })
}

pub async fn run(c: &Client, a: RunArgs, create_only: bool) -> Result<()> {
    let cmd = if create_only { "create" } else { "run" };
    if a.detach && a.rm && a.restart.as_deref().is_some_and(|r| r != "no") {
        return Err(run_err(cmd, "Conflicting options: --restart and --rm", 125));
    }
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.into());
    let keys = opts::detach_keys(&detach_keys).map_err(|e| run_err(cmd, e, 125))?;
    if a.tty && a.interactive && !std::io::stdin().is_terminal() && !create_only {
        return Err(run_err(cmd, "the input device is not a TTY", 1));
    }
    let id = create_container(c, &a, cmd).await?;
    if create_only {
        println!("{id}");
        return Ok(());
    }
    let cpath = format!("/containers/{}", enc(&id));
    if a.detach {
        if let Err(e) = c.call(Method::POST, &format!("{cpath}/start"), None).await {
            let code = start_error_code(&e.to_string());
            return Err(run_err(cmd, e, code));
        }
        println!("{id}");
        return Ok(());
    }
    let attach_all = a.attach.is_empty();
    let want = |s: &str| attach_all || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let stdin = a.interactive && (attach_all || want("stdin"));
    let q = Query::new()
        .add("stream", 1)
        .flag("stdin", stdin)
        .flag("stdout", want("stdout"))
        .flag("stderr", want("stderr"))
        .add("detachKeys", &detach_keys);
    let conn = c
        .hijack(&q.path(&format!("{cpath}/attach")), None)
        .await
        .map_err(|e| run_err(cmd, e, 125))?;
    // Registered before start so a fast exit (or --rm's removal) is not missed.
    let cond = if a.rm { "removed" } else { "next-exit" };
    let wait_resp = c
        .send(
            Method::POST,
            &Query::new()
                .add("condition", cond)
                .path(&format!("{cpath}/wait")),
            &[],
            crate::client::empty(),
        )
        .await
        .map_err(|e| run_err(cmd, e, 125))?;
    let raw = if a.tty && stdin {
        Some(stream::RawMode::enable())
    } else {
        None
    };
    if let Err(e) = c.call(Method::POST, &format!("{cpath}/start"), None).await {
        drop(raw);
        let code = start_error_code(&e.to_string());
        return Err(run_err(cmd, e, code));
    }
    if a.tty {
        stream::spawn_resizer(c.clone(), format!("{cpath}/resize"));
    } else if a.sig_proxy {
        stream::spawn_sig_proxy(c.clone(), id.clone());
    }
    let end = stream::pump(conn, a.tty, stdin, keys).await;
    drop(raw);
    if end == End::Detached {
        return Ok(());
    }
    let status: Value = crate::client::decode(wait_resp, "wait")
        .await
        .map_err(|e| run_err(cmd, e, 125))?;
    if let Some(m) = status["Error"]["Message"].as_str() {
        if !m.is_empty() {
            return Err(run_err(cmd, m, 125));
        }
    }
    let code = status["StatusCode"].as_i64().unwrap_or(0);
    exit_with(code)
}

/// The container's exit status as the CLI's (0-255).
fn exit_with(code: i64) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(Exit::code(u8::try_from(code & 0xff).unwrap_or(1)).into())
}

async fn inspect(c: &Client, id: &str) -> Result<Value, ClientError> {
    c.get_json(&format!("/containers/{}/json", enc(id))).await
}

pub async fn start(c: &Client, a: StartArgs) -> Result<()> {
    if !a.attach && !a.interactive {
        let mut failed = Vec::new();
        for n in &a.containers {
            match c
                .call(Method::POST, &format!("/containers/{}/start", enc(n)), None)
                .await
            {
                Ok(_) => println!("{n}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(n.clone());
                }
            }
        }
        if !failed.is_empty() {
            return Err(Exit::msg(
                1,
                format!("Error: failed to start containers: {}", failed.join(", ")),
            )
            .into());
        }
        return Ok(());
    }
    if a.containers.len() > 1 {
        return Err(Exit::msg(1, "you cannot start and attach multiple containers at once").into());
    }
    let name = &a.containers[0];
    let info = inspect(c, name).await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let stdin = a.interactive && open_stdin;
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.into());
    let keys = opts::detach_keys(&detach_keys).map_err(|e| Exit::msg(1, e))?;
    let cpath = format!("/containers/{}", enc(&id));
    let q = Query::new()
        .add("stream", 1)
        .flag("stdin", stdin)
        .add("stdout", 1)
        .add("stderr", 1)
        .add("detachKeys", &detach_keys);
    let conn = c.hijack(&q.path(&format!("{cpath}/attach")), None).await?;
    let wait_resp = c
        .send(
            Method::POST,
            &Query::new()
                .add("condition", "next-exit")
                .path(&format!("{cpath}/wait")),
            &[],
            crate::client::empty(),
        )
        .await?;
    let raw = (tty && stdin).then(stream::RawMode::enable);
    if let Err(e) = c.call(Method::POST, &format!("{cpath}/start"), None).await {
        drop(raw);
        return Err(Exit::msg(1, format!("{e}\nError: failed to start containers: {name}")).into());
    }
    if tty {
        stream::spawn_resizer(c.clone(), format!("{cpath}/resize"));
    } else {
        stream::spawn_sig_proxy(c.clone(), id.clone());
    }
    let end = stream::pump(conn, tty, stdin, keys).await;
    drop(raw);
    if end == End::Detached {
        return Ok(());
    }
    let status: Value = crate::client::decode(wait_resp, "wait").await?;
    exit_with(status["StatusCode"].as_i64().unwrap_or(0))
}

pub async fn attach(c: &Client, a: AttachArgs) -> Result<()> {
    let info = inspect(c, &a.container).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let state = &info["State"];
    if state["Paused"].as_bool() == Some(true) {
        return Err(Exit::msg(
            1,
            "You cannot attach to a paused container, unpause it first",
        )
        .into());
    }
    if state["Running"].as_bool() != Some(true) {
        return Err(Exit::msg(
            1,
            "You cannot attach to a stopped container, start it first",
        )
        .into());
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.into());
    let keys = opts::detach_keys(&detach_keys).map_err(|e| Exit::msg(1, e))?;
    let cpath = format!("/containers/{}", enc(&id));
    let q = Query::new()
        .add("stream", 1)
        .flag("stdin", stdin)
        .add("stdout", 1)
        .add("stderr", 1)
        .add("detachKeys", &detach_keys);
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err(Exit::msg(1, "the input device is not a TTY").into());
    }
    let conn = c.hijack(&q.path(&format!("{cpath}/attach")), None).await?;
    let raw = (tty && stdin).then(stream::RawMode::enable);
    if tty {
        stream::spawn_resizer(c.clone(), format!("{cpath}/resize"));
    } else if a.sig_proxy {
        stream::spawn_sig_proxy(c.clone(), id.clone());
    }
    let end = stream::pump(conn, tty, stdin, keys).await;
    drop(raw);
    if end == End::Detached {
        return Ok(());
    }
    // The output ended: the container exited (or is exiting); report its status.
    let status: Value = c
        .json(
            Method::POST,
            &format!("{cpath}/wait?condition=not-running"),
            None,
        )
        .await
        .unwrap_or(Value::Null);
    exit_with(status["StatusCode"].as_i64().unwrap_or(0))
}
