//! `inspect`: containers, images and volumes by name, as an indented JSON array or through a
//! `--format` template.

use anyhow::Result;
use serde_json::Value;

use crate::client::{enc, enc_name, Client, ClientError, Query};
use crate::format::{from_json, print_json_indented, Format};
use crate::Exit;

async fn fetch(c: &Client, typ: &str, name: &str, size: bool) -> Result<Value, ClientError> {
    let path = match typ {
        "container" => Query::new()
            .flag("size", size)
            .path(&format!("/containers/{}/json", enc(name))),
        "image" => format!("/images/{}/json", enc_name(name)),
        "volume" => format!("/volumes/{}", enc(name)),
        _ => format!("/{typ}s/{}", enc(name)),
    };
    c.get_json(&path).await
}

pub async fn inspect(
    c: &Client,
    names: Vec<String>,
    format: Option<String>,
    typ: Option<String>,
    size: bool,
) -> Result<()> {
    let fmt = match format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Format::parse("{{json .}}", "")),
        Some(f) => Some(Format::parse(f, "")),
    };
    let fmt = fmt.transpose().map_err(|e| Exit::msg(1, e.to_string()))?;
    if let Some(t) = &typ {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "network") {
            return Err(Exit::msg(1, format!("\"{t}\" is not a valid value for --type")).into());
        }
    }
    let types: Vec<&str> = match typ.as_deref() {
        Some(t) => vec![t],
        None => vec!["container", "image", "volume"],
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        let mut got = None;
        let mut last_err = None;
        for t in &types {
            match fetch(c, t, n, size).await {
                Ok(v) => {
                    got = Some(v);
                    break;
                }
                Err(e) if e.status() == Some(404) => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        match got {
            Some(v) => found.push(v),
            None => {
                let msg = match (&typ, last_err) {
                    (Some(_), Some(ClientError::Daemon { message, .. })) => message,
                    _ => format!("No such object: {n}"),
                };
                errors.push(msg);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match fmt {
        Some(f) => {
            for v in &found {
                let s = f
                    .render(&from_json(v))
                    .map_err(|e| Exit::msg(1, e.to_string()))?;
                use std::io::Write;
                writeln!(out, "{s}")?;
            }
        }
        None => print_json_indented(&mut out, &Value::Array(found))?,
    }
    if !errors.is_empty() {
        let msg: Vec<String> = errors.iter().map(|e| format!("Error: {e}")).collect();
        return Err(Exit::msg(1, msg.join("\n")).into());
    }
    Ok(())
}
