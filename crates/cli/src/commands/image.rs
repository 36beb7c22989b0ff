//! Image verbs: images, pull and push (per-layer progress bars on a terminal, plain lines
//! otherwise), rmi, tag, history, prune.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use berth_api::models::ImageSummary;
use hyper::Method;
use serde_json::Value;

use crate::cli::{HistoryArgs, ImagesArgs, PruneArgs, PullArgs, PushArgs, RmiArgs};
use crate::client::{enc_name, Client, ClientError, JsonLines, Query};
use crate::format::{ago, ellipsis, go_time, human_size_prec, row, short_id, Format};
use crate::opts::{self, split_ref};
use crate::Exit;

const IMAGES_DEFAULT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub async fn images(c: &Client, a: ImagesArgs) -> Result<()> {
    let mut filter = a.filter.clone();
    if let Some(r) = &a.repository {
        filter.push(format!("reference={r}"));
    }
    let f = opts::filters(&filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let q = Query::new().flag("all", a.all).opt("filters", f);
    let list: Vec<ImageSummary> = c.get_json(&q.path("/images/json")).await?;
    let trunc = !a.no_trunc;
    let default = if a.digests {
        IMAGES_DIGESTS
    } else {
        IMAGES_DEFAULT
    };
    let fmt_text = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some("json") => "{{json .}}".into(),
            Some(f) if !f.is_empty() => f.to_string(),
            _ => default.to_string(),
        }
    };
    let fmt = Format::parse(&fmt_text, default).map_err(|e| Exit::msg(1, e.to_string()))?;
    let mut rows = Vec::new();
    for img in &list {
        let id = if trunc {
            short_id(&img.id)
        } else {
            img.id.clone()
        };
        let digests: HashMap<String, String> = img
            .repo_digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .map(|(r, d)| (r.to_string(), d.to_string()))
            .collect();
        let mut entries: Vec<(String, String, String)> = Vec::new();
        for t in &img.repo_tags {
            if t == "<none>:<none>" {
                continue;
            }
            let (repo, tag) = split_ref(t);
            let digest = digests
                .get(&repo)
                .cloned()
                .unwrap_or_else(|| "<none>".into());
            entries.push((repo, tag, digest));
        }
        if entries.is_empty() {
            if let Some((repo, d)) = digests.iter().next() {
                entries.push((repo.clone(), "<none>".into(), d.clone()));
            } else {
                entries.push(("<none>".into(), "<none>".into(), "<none>".into()));
            }
        }
        for (repo, tag, digest) in entries {
            rows.push(row(vec![
                ("Repository", repo),
                ("Tag", tag),
                ("Digest", digest),
                ("ID", id.clone()),
                ("CreatedSince", ago(img.created)),
                ("CreatedAt", go_time(img.created)),
                ("Size", human_size_prec(img.size as f64, 3)),
                (
                    "Containers",
                    if img.containers < 0 {
                        "N/A".into()
                    } else {
                        img.containers.to_string()
                    },
                ),
                (
                    "SharedSize",
                    if img.shared_size < 0 {
                        "N/A".into()
                    } else {
                        human_size_prec(img.shared_size as f64, 3)
                    },
                ),
                (
                    "UniqueSize",
                    if img.shared_size < 0 {
                        "N/A".into()
                    } else {
                        human_size_prec((img.size - img.shared_size) as f64, 3)
                    },
                ),
                ("VirtualSize", crate::format::human_size(img.size)),
            ]));
        }
    }
    let mut out = std::io::stdout().lock();
    fmt.write_rows(&mut out, IMAGE_HEADERS, &rows)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    Ok(())
}

/// Shows a pull/push/load JSON stream: a bar per layer on a terminal, plain lines otherwise.
pub struct Progress {
    bars: Option<(
        indicatif::MultiProgress,
        HashMap<String, indicatif::ProgressBar>,
    )>,
    to_stderr: bool,
    quiet: bool,
    last: HashMap<String, String>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl Progress {
    pub fn new(to_stderr: bool, quiet: bool) -> Progress {
        let tty = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let bars = (tty && !quiet).then(|| {
            let target = if to_stderr {
                indicatif::ProgressDrawTarget::stderr()
            } else {
                indicatif::ProgressDrawTarget::stdout()
            };
            (
                indicatif::MultiProgress::with_draw_target(target),
                HashMap::new(),
            )
        });
        Progress {
            bars,
            to_stderr,
            quiet,
            last: HashMap::new(),
        }
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        if let Some((m, _)) = &self.bars {
            let _ = m.println(s);
        } else if self.to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    /// One message of the stream; an error message is returned as the error.
    pub fn message(&mut self, v: &Value) -> Result<(), String> {
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            return Err(e.to_string());
        }
        let status = v["status"].as_str().unwrap_or("");
        if let Some(s) = v["stream"].as_str() {
            if !self.quiet {
                if self.to_stderr {
                    eprint!("{s}");
                } else {
                    print!("{s}");
                }
            }
            return Ok(());
        }
        let Some(id) = v["id"].as_str().filter(|s| !s.is_empty()) else {
            if !status.is_empty() {
                self.line(status);
            }
            return Ok(());
        };
        if let Some((m, bars)) = &mut self.bars {
            let plain = || {
                indicatif::ProgressStyle::with_template("{prefix}: {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            };
            let bar = bars.entry(id.to_string()).or_insert_with(|| {
                let b = m.add(indicatif::ProgressBar::new(0));
                b.set_style(plain());
                b.set_prefix(id.to_string());
                b
            });
            let total = v["progressDetail"]["total"].as_u64().unwrap_or(0);
            let current = v["progressDetail"]["current"].as_u64().unwrap_or(0);
            if total > 0 {
                // docker's "[==>   ]  1.2MB/3.4MB" while bytes move.
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix}: {msg} [{bar:50.=>-}] {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_length(total);
                bar.set_position(current);
            } else {
                bar.set_style(plain());
            }
            bar.set_message(status.to_string());
            if matches!(
                status,
                "Pull complete"
                    | "Already exists"
                    | "Pushed"
                    | "Layer already exists"
                    | "Loading layer done"
                    | "Download complete"
            ) || status.starts_with("Pulling from")
            {
                bar.set_style(plain());
                bar.finish_with_message(status.to_string());
            }
        } else if self.last.get(id).map(String::as_str) != Some(status) {
            // Plain output: one line per status change, none per progress tick.
            self.last.insert(id.to_string(), status.to_string());
            self.line(&format!("{id}: {status}"));
        }
        Ok(())
    }

    pub async fn consume(&mut self, mut lines: JsonLines) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        while let Some(v) = lines.next::<Value>().await? {
            if let Err(e) = self.message(&v) {
                self.finish();
                return Err(Exit::msg(1, e).into());
            }
            all.push(v);
        }
        self.finish();
        Ok(all)
    }

    pub fn finish(&mut self) {
        if let Some((m, bars)) = &self.bars {
            for b in bars.values() {
                if !b.is_finished() {
                    b.abandon();
                }
            }
            let _ = m.clear();
        }
    }
}

/// Pulls `image`; run's pull writes to stderr.
pub async fn pull_image(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<(), anyhow::Error> {
    let (repo, tag) = split_ref(image);
    let q = Query::new()
        .add("fromImage", &repo)
        .add("tag", &tag)
        .opt("platform", platform);
    let path = q.path("/images/create");
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("X-Registry-Auth", super::login::auth_header(image))],
            crate::client::empty(),
        )
        .await
        .map_err(anyhow::Error::from)?;
    let mut p = Progress::new(to_stderr, quiet);
    p.consume(JsonLines::new(resp, &path)).await?;
    Ok(())
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<()> {
    let name = a.name.clone();
    let has_tag = name.contains('@') || {
        let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        name[slash..].contains(':')
    };
    if a.all_tags && has_tag {
        return Err(Exit::msg(1, "tag can't be used with --all-tags/-a").into());
    }
    if !has_tag && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let (repo, tag) = split_ref(&name);
    let q = Query::new()
        .add("fromImage", &repo)
        .opt("tag", (!a.all_tags).then_some(tag.clone()))
        .opt("platform", a.platform.as_deref());
    let path = q.path("/images/create");
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("X-Registry-Auth", super::login::auth_header(&name))],
            crate::client::empty(),
        )
        .await?;
    let mut p = Progress::new(false, a.quiet);
    p.consume(JsonLines::new(resp, &path)).await?;
    println!(
        "{}",
        full_name(&repo, if a.all_tags { None } else { Some(&tag) })
    );
    Ok(())
}

/// docker.io/library/busybox:latest, as docker prints after a pull.
fn full_name(repo: &str, tag: Option<&str>) -> String {
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    match tag {
        Some(t) if t.starts_with("sha256:") => format!("{full}@{t}"),
        Some(t) => format!("{full}:{t}"),
        None => full,
    }
}

pub async fn push(c: &Client, a: PushArgs) -> Result<()> {
    let (repo, tag) = split_ref(&a.name);
    let q = Query::new().opt("tag", (!a.all_tags).then_some(tag));
    let path = q.path(&format!("/images/{}/push", enc_name(&repo)));
    let resp = c
        .send(
            Method::POST,
            &path,
            &[("X-Registry-Auth", super::login::auth_header(&a.name))],
            crate::client::empty(),
        )
        .await?;
    let mut p = Progress::new(false, a.quiet);
    let all = p.consume(JsonLines::new(resp, &path)).await?;
    if a.quiet {
        println!("{}", a.name);
    } else if let Some(aux) = all.iter().rev().find(|v| v["aux"].is_object()) {
        let _ = aux;
    }
    Ok(())
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<()> {
    let mut failed = false;
    for n in &a.images {
        let path = Query::new()
            .flag("force", a.force)
            .flag("noprune", a.no_prune)
            .path(&format!("/images/{}", enc_name(n)));
        match c.json::<Value>(Method::DELETE, &path, None).await {
            Ok(v) => {
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::code(1).into());
    }
    Ok(())
}

pub async fn tag(c: &Client, source: &str, target: &str) -> Result<()> {
    let (repo, tag) = split_ref(target);
    if tag.starts_with("sha256:") {
        return Err(Exit::msg(1, "refusing to create a tag with a digest reference").into());
    }
    let path = Query::new()
        .add("repo", repo)
        .add("tag", tag)
        .path(&format!("/images/{}/tag", enc_name(source)));
    c.call(Method::POST, &path, None).await?;
    Ok(())
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<()> {
    const DEFAULT: &str =
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    let headers: &[(&str, &str)] = &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    let v: Vec<Value> = c
        .get_json(&format!("/images/{}/history", enc_name(&a.image)))
        .await?;
    let fmt_text = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some("json") => "{{json .}}".into(),
            Some(f) if !f.is_empty() => f.to_string(),
            _ => DEFAULT.into(),
        }
    };
    let fmt = Format::parse(&fmt_text, DEFAULT).map_err(|e| Exit::msg(1, e.to_string()))?;
    let trunc = !a.no_trunc;
    let rows: Vec<_> = v
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let id = if id.is_empty() || id == "<missing>" {
                "<missing>".to_string()
            } else if trunc {
                short_id(id)
            } else {
                id.to_string()
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if trunc { ellipsis(&by, 45) } else { by };
            let size = h["Size"].as_i64().unwrap_or(0);
            row(vec![
                ("ID", id),
                (
                    "CreatedSince",
                    if a.human {
                        ago(created)
                    } else {
                        go_time(created)
                    },
                ),
                ("CreatedAt", go_time(created)),
                ("CreatedBy", by),
                (
                    "Size",
                    if a.human {
                        human_size_prec(size as f64, 3)
                    } else {
                        size.to_string()
                    },
                ),
                ("Comment", h["Comment"].as_str().unwrap_or("").to_string()),
            ])
        })
        .collect();
    let mut out = std::io::stdout().lock();
    fmt.write_rows(&mut out, headers, &rows)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    out.flush()?;
    Ok(())
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !super::confirm(warning, a.force) {
        return Ok(());
    }
    let mut filter = a.filter.clone();
    filter.push(format!("dangling={}", !a.all));
    let f = opts::filters(&filter).map_err(|e| Exit::msg(125, e.to_string()))?;
    let v: Value = c
        .json(
            Method::POST,
            &Query::new().opt("filters", f).path("/images/prune"),
            None,
        )
        .await?;
    let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in items {
            if let Some(u) = i["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = i["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(())
}

#[allow(
    dead_code,
    reason = "used by callers that map a pull failure themselves"
)]
pub fn is_not_found(e: &ClientError) -> bool {
    e.status() == Some(404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names() {
        assert_eq!(
            full_name("busybox", Some("latest")),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_name("a/b", Some("1")), "docker.io/a/b:1");
        assert_eq!(
            full_name("localhost:5000/x", Some("t")),
            "localhost:5000/x:t"
        );
    }
}
