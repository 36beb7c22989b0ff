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

/// Go structs print their zero values where berthd's JSON leaves a field out; fill the
/// commonly templated ones so `{{.HostConfig.Memory}}` prints `0` as with docker.
fn fill_zero_values(typ: &str, v: &mut Value) {
    if typ != "container" || !v.is_object() {
        return;
    }
    let zeros: &[(&str, &[(&str, Value)])] = &[
        (
            "HostConfig",
            &[
                ("Memory", Value::from(0)),
                ("MemoryReservation", Value::from(0)),
                ("MemorySwap", Value::from(0)),
                ("NanoCpus", Value::from(0)),
                ("CpuShares", Value::from(0)),
                ("CpuPeriod", Value::from(0)),
                ("CpuQuota", Value::from(0)),
                ("CpusetCpus", Value::from("")),
                ("CpusetMems", Value::from("")),
                ("BlkioWeight", Value::from(0)),
                ("ShmSize", Value::from(0)),
                ("Privileged", Value::Bool(false)),
                ("PublishAllPorts", Value::Bool(false)),
                ("ReadonlyRootfs", Value::Bool(false)),
                ("AutoRemove", Value::Bool(false)),
                ("NetworkMode", Value::from("")),
                ("IpcMode", Value::from("")),
                ("PidMode", Value::from("")),
                ("UTSMode", Value::from("")),
                ("UsernsMode", Value::from("")),
                ("CgroupParent", Value::from("")),
                ("Runtime", Value::from("")),
            ],
        ),
        (
            "Config",
            &[
                ("Hostname", Value::from("")),
                ("Domainname", Value::from("")),
                ("User", Value::from("")),
                ("WorkingDir", Value::from("")),
                ("Tty", Value::Bool(false)),
                ("OpenStdin", Value::Bool(false)),
                ("StdinOnce", Value::Bool(false)),
                ("AttachStdin", Value::Bool(false)),
                ("AttachStdout", Value::Bool(false)),
                ("AttachStderr", Value::Bool(false)),
            ],
        ),
        (
            "State",
            &[
                ("Running", Value::Bool(false)),
                ("Paused", Value::Bool(false)),
                ("Restarting", Value::Bool(false)),
                ("OOMKilled", Value::Bool(false)),
                ("Dead", Value::Bool(false)),
                ("Pid", Value::from(0)),
                ("ExitCode", Value::from(0)),
                ("Error", Value::from("")),
            ],
        ),
    ];
    for (section, fields) in zeros {
        if let Some(m) = v[*section].as_object_mut() {
            for (k, z) in *fields {
                m.entry(k.to_string()).or_insert_with(|| z.clone());
            }
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.entry("RestartCount").or_insert(Value::from(0));
    }
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
                Ok(mut v) => {
                    if fmt.is_some() {
                        fill_zero_values(t, &mut v);
                    }
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
