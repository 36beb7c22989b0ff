//! Tar streams in and out: cp, export, save, load, import.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use hyper::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::cli::{CpArgs, ImportArgs, LoadArgs, SaveArgs};
use crate::client::{enc, reader_body, BodyReader, Client, JsonLines, Query};
use crate::opts::split_ref;
use crate::Exit;

/// Streams a response body to `-o FILE` or stdout (refusing a terminal, as docker does).
async fn body_to_output(
    resp: hyper::Response<hyper::body::Incoming>,
    path: &str,
    output: Option<&str>,
) -> Result<()> {
    let mut body = BodyReader::new(resp, path);
    match output {
        Some(f) if f != "-" => {
            let tmp = format!("{f}.berth-tmp");
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("create {tmp}"))?;
            while let Some(c) = body.chunk().await? {
                file.write_all(&c).await?;
            }
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&tmp, f)
                .await
                .with_context(|| format!("rename {tmp} to {f}"))?;
        }
        _ => {
            let mut out = tokio::io::stdout();
            while let Some(c) = body.chunk().await? {
                out.write_all(&c).await?;
            }
            out.flush().await?;
        }
    }
    Ok(())
}

fn refuse_terminal(output: Option<&str>) -> Result<()> {
    if output.is_none_or(|o| o == "-") && std::io::stdout().is_terminal() {
        return Err(Exit::msg(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    Ok(())
}

pub async fn export(c: &Client, container: &str, output: Option<String>) -> Result<()> {
    refuse_terminal(output.as_deref())?;
    let path = format!("/containers/{}/export", enc(container));
    let resp = c.get(&path).await?;
    body_to_output(resp, &path, output.as_deref()).await
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<()> {
    refuse_terminal(a.output.as_deref())?;
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i);
    }
    let path = q.path("/images/get");
    let resp = c.get(&path).await?;
    body_to_output(resp, &path, a.output.as_deref()).await
}

async fn input_body(file: Option<&str>) -> Result<crate::client::Body> {
    Ok(match file {
        Some(f) if f != "-" => {
            let file = tokio::fs::File::open(f)
                .await
                .with_context(|| format!("open {f}"))?;
            reader_body(file)
        }
        _ => reader_body(tokio::io::stdin()),
    })
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<()> {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        return Err(Exit::msg(1, "requested load from stdin, but stdin is empty").into());
    }
    let body = input_body(a.input.as_deref()).await?;
    let path = Query::new().flag("quiet", a.quiet).path("/images/load");
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("Content-Type", "application/x-tar".into())],
            body,
        )
        .await?;
    let mut p = super::image::Progress::new(false, false);
    p.consume(JsonLines::new(resp, &path)).await?;
    Ok(())
}

pub async fn import(c: &Client, a: ImportArgs) -> Result<()> {
    let mut q = Query::new();
    let url = a.file.starts_with("http://") || a.file.starts_with("https://");
    q = q.add("fromSrc", if url { a.file.as_str() } else { "-" });
    if let Some(r) = &a.repository {
        let (repo, tag) = split_ref(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    q = q
        .opt("message", a.message.as_deref())
        .opt("platform", a.platform.as_deref());
    let body = if url {
        crate::client::empty()
    } else {
        input_body(Some(a.file.as_str())).await?
    };
    let path = q.path("/images/create");
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("Content-Type", "application/x-tar".into())],
            body,
        )
        .await?;
    let mut lines = JsonLines::new(resp, &path);
    while let Some(v) = lines.next::<Value>().await? {
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            return Err(Exit::msg(1, e.to_string()).into());
        }
        if let Some(s) = v["status"].as_str() {
            println!("{s}");
        }
    }
    Ok(())
}

/// `CONTAINER:PATH` split, or None for a local path.
fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    let (c, p) = s.split_once(':')?;
    (!c.is_empty()).then_some((c, p))
}

/// The stat header of `HEAD /containers/{id}/archive`: (is a directory).
async fn container_stat(c: &Client, container: &str, path: &str) -> Option<bool> {
    let p = Query::new()
        .add("path", path)
        .path(&format!("/containers/{}/archive", enc(container)));
    let resp = c
        .send(Method::HEAD, &p, &[], crate::client::empty())
        .await
        .ok()?;
    let h = resp.headers().get("X-Docker-Container-Path-Stat")?;
    let dec = base64::engine::general_purpose::STANDARD
        .decode(h.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h.as_bytes()))
        .ok()?;
    let v: Value = serde_json::from_slice(&dec).ok()?;
    let mode = v["mode"].as_u64()?;
    Some(mode & (1 << 31) != 0)
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<()> {
    match (split_container_path(&a.src), split_container_path(&a.dst)) {
        (Some((ctr, src)), None) => copy_from(c, ctr, src, &a.dst, a.follow_link).await,
        (None, Some((ctr, dst))) => copy_to(c, &a.src, ctr, dst).await,
        (Some(_), Some(_)) => {
            Err(Exit::msg(1, "copying between containers is not supported").into())
        }
        (None, None) => Err(Exit::msg(1, "must specify at least one container source").into()),
    }
}

async fn copy_from(c: &Client, ctr: &str, src: &str, dst: &str, _follow: bool) -> Result<()> {
    let path = Query::new()
        .add("path", src)
        .path(&format!("/containers/{}/archive", enc(ctr)));
    let resp = c.get(&path).await?;
    let mut body = BodyReader::new(resp, &path);
    let mut tarball = Vec::new();
    while let Some(chunk) = body.chunk().await? {
        tarball.extend_from_slice(&chunk);
    }
    if dst == "-" {
        std::io::stdout().write_all(&tarball)?;
        return Ok(());
    }
    let dst = PathBuf::from(dst);
    let dst_is_dir = dst.is_dir();
    tokio::task::spawn_blocking(move || extract(&tarball, &dst, dst_is_dir))
        .await
        .context("extract the copied files")??;
    Ok(())
}

/// Unpacks the archive into `dst` (an existing directory), or renames its top entry to `dst`.
fn extract(tarball: &[u8], dst: &Path, dst_is_dir: bool) -> Result<()> {
    if dst_is_dir {
        let mut ar = tar::Archive::new(tarball);
        ar.set_preserve_permissions(true);
        ar.unpack(dst)
            .with_context(|| format!("unpack into {}", dst.display()))?;
        return Ok(());
    }
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Exit::msg(1, format!("Error: no such directory: {}", parent.display())).into());
    }
    let tmp = tempdir_in(parent)?;
    let mut ar = tar::Archive::new(tarball);
    ar.set_preserve_permissions(true);
    let res = ar
        .unpack(&tmp)
        .with_context(|| format!("unpack into {}", tmp.display()));
    let top = std::fs::read_dir(&tmp)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path());
    let moved = match (&res, top) {
        (Ok(()), Some(t)) => std::fs::rename(&t, dst)
            .with_context(|| format!("move {} to {}", t.display(), dst.display())),
        (Ok(()), None) => Ok(()),
        (Err(_), _) => Ok(()),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    res?;
    moved
}

fn tempdir_in(parent: &Path) -> Result<PathBuf> {
    for i in 0..100u32 {
        let p = parent.join(format!(".berth-cp-{}-{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    anyhow::bail!("create a temporary directory in {}", parent.display())
}

async fn copy_to(c: &Client, src: &str, ctr: &str, dst: &str) -> Result<()> {
    let (body, target) = if src == "-" {
        (reader_body(tokio::io::stdin()), dst.to_string())
    } else {
        let srcp = PathBuf::from(src);
        if std::fs::symlink_metadata(&srcp).is_err() {
            return Err(Exit::msg(
                1,
                format!("lstat {}: no such file or directory", srcp.display()),
            )
            .into());
        }
        let dst_is_dir = container_stat(c, ctr, dst).await;
        // An existing directory receives the source under its own name; otherwise the source
        // is renamed to the last element of the destination.
        let (dir, name) = match dst_is_dir {
            Some(true) => (
                dst.to_string(),
                srcp.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| ".".into()),
            ),
            _ => {
                let d = Path::new(dst);
                (
                    d.parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/".into()),
                    d.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            }
        };
        let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let mut b = tar::Builder::new(Vec::new());
            b.follow_symlinks(false);
            if srcp.is_dir() {
                b.append_dir_all(&name, &srcp)
                    .with_context(|| format!("archive {}", srcp.display()))?;
            } else {
                b.append_path_with_name(&srcp, &name)
                    .with_context(|| format!("archive {}", srcp.display()))?;
            }
            Ok(b.into_inner()?)
        })
        .await
        .context("archive the source")??;
        (crate::client::full(data), dir)
    };
    let path = Query::new()
        .add("path", &target)
        .path(&format!("/containers/{}/archive", enc(ctr)));
    c.send(
        Method::PUT,
        &path,
        &[("Content-Type", "application/x-tar".into())],
        body,
    )
    .await?;
    Ok(())
}
