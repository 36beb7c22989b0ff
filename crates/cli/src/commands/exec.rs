//! `exec`: create the exec, start it on a hijacked connection (or detached), then exit with the
//! process's status as docker does.

use std::io::IsTerminal;

use anyhow::Result;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::client::{enc, Client};
use crate::opts;
use crate::stream::{self, End};
use crate::Exit;

pub async fn exec(c: &Client, a: ExecArgs) -> Result<()> {
    let container = a.args[0].clone();
    let cmd: Vec<String> = a.args[1..].to_vec();
    let env =
        opts::env_list(&a.env, &a.env_file).map_err(|e| Exit::msg(125, format!("berth: {e}")))?;
    let detach_keys = a
        .detach_keys
        .clone()
        .unwrap_or_else(|| "ctrl-p,ctrl-q".into());
    let keys = opts::detach_keys(&detach_keys).map_err(|e| Exit::msg(125, e))?;
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        return Err(Exit::msg(1, "the input device is not a TTY").into());
    }
    let mut body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": env,
        "Cmd": cmd,
        "Privileged": a.privileged,
        "DetachKeys": detach_keys,
    });
    if let Some(u) = &a.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &a.workdir {
        body["WorkingDir"] = json!(w);
    }
    let created: Value = c
        .json(
            Method::POST,
            &format!("/containers/{}/exec", enc(&container)),
            Some(&body),
        )
        .await?;
    // berthd answers `{"id": ...}` here; docker's Go client reads either case.
    let id = created["Id"]
        .as_str()
        .or(created["id"].as_str())
        .unwrap_or_default()
        .to_string();
    let start_path = format!("/exec/{}/start", enc(&id));
    if a.detach {
        c.call(
            Method::POST,
            &start_path,
            Some(&json!({"Detach": true, "Tty": a.tty})),
        )
        .await?;
        return Ok(());
    }
    let conn = c
        .hijack(&start_path, Some(&json!({"Detach": false, "Tty": a.tty})))
        .await?;
    let raw = (a.tty && a.interactive).then(stream::RawMode::enable);
    if a.tty {
        stream::spawn_resizer(c.clone(), format!("/exec/{}/resize", enc(&id)));
    }
    let end = stream::pump(conn, a.tty, a.interactive, keys).await;
    drop(raw);
    if end == End::Detached {
        return Ok(());
    }
    // The output ends when the process closes it; its exit is recorded a moment later.
    let mut info: Value = c.get_json(&format!("/exec/{}/json", enc(&id))).await?;
    for _ in 0..200 {
        if info["Running"].as_bool() != Some(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        info = c.get_json(&format!("/exec/{}/json", enc(&id))).await?;
    }
    let code = info["ExitCode"].as_i64().unwrap_or(0);
    if code != 0 {
        return Err(Exit::code(u8::try_from(code & 0xff).unwrap_or(1)).into());
    }
    Ok(())
}
