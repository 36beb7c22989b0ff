//! The json-file log the shim writes, and the shim's own footprint.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::{Opts, Shim};
use serde_json::{json, Value};

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn output_is_logged_in_docker_json_file_format() {
    let shim = Shim::start(
        &[
            "sh",
            "-c",
            "echo a; echo b >&2; echo '<x&y> \"q\"'; printf partial",
        ],
        Opts {
            log: true,
            ..Opts::default()
        },
    );
    shim.ok(json!({"op": "start"}));
    assert_eq!(shim.wait().exit.unwrap().code, 0);
    let text = std::fs::read_to_string(&shim.log).unwrap();
    let recs = records(&shim.log);
    let mut out: Vec<&str> = Vec::new();
    for r in &recs {
        let t = r["time"].as_str().unwrap();
        assert!(t.len() == 30 && t.ends_with('Z'), "time {t}");
        assert_eq!(r.as_object().unwrap().len(), 3);
        if r["stream"] == "stdout" {
            out.push(r["log"].as_str().unwrap());
        } else {
            assert_eq!(r["stream"], "stderr");
            assert_eq!(r["log"], "b\n");
        }
    }
    assert_eq!(out, ["a\n", "<x&y> \"q\"\n", "partial"]);
    assert!(
        text.contains(r#"{"log":"a\n","stream":"stdout","time":""#),
        "{text}"
    );
    assert!(
        text.contains(r#"\u003cx\u0026y\u003e"#),
        "Docker's HTML-safe escaping: {text}"
    );
}

#[test]
fn the_log_rotates_by_size_and_keeps_max_file_files() {
    let shim = Shim::start(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); done",
        ],
        Opts {
            log: true,
            log_max_size: Some(600),
            log_max_file: Some(3),
            ..Opts::default()
        },
    );
    shim.ok(json!({"op": "start"}));
    shim.wait();
    let dir = shim.log.parent().unwrap();
    let name = |n: u32| dir.join(format!("c.log.{n}"));
    assert!(name(1).exists() && name(2).exists());
    assert!(
        !name(3).exists(),
        "max-file 3 keeps c.log, c.log.1, c.log.2"
    );
    let mut all = Vec::new();
    for p in [name(2), name(1), shim.log.clone()] {
        assert!(std::fs::metadata(&p).unwrap().len() <= 600);
        all.extend(records(&p));
    }
    let last: Vec<String> = all
        .iter()
        .map(|r| r["log"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(last.last().unwrap(), "line-59\n");
    // Consecutive lines across the files, none lost between them.
    for w in last.windows(2) {
        let n = |s: &str| s.trim().trim_start_matches("line-").parse::<u32>().unwrap();
        assert_eq!(n(&w[0]) + 1, n(&w[1]));
    }
}

#[test]
fn shim_rss_with_a_running_container() {
    let shim = Shim::start(
        &["sleep", "100"],
        Opts {
            log: true,
            ..Opts::default()
        },
    );
    shim.ok(json!({"op": "start"}));
    shim.state();
    let pid = shim.shim_pid();
    let [rss, anon, file] = ["VmRSS", "RssAnon", "RssFile"].map(|f| common::status_kib(pid, f));
    println!(
        "berth-shim with a running sleep container: VmRSS {rss} KiB (RssAnon {anon} KiB, \
         RssFile {file} KiB: the binary's pages, shared by every shim)"
    );
    // The private part is what each container costs; the file part depends on the build
    // (a debug binary is ten times the size) and is shared.
    assert!(anon < 4096, "shim private memory regression: {anon} KiB");
}
