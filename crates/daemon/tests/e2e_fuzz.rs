//! Thousands of random and mutated JSON bodies at the create/update endpoints: no 5xx without a
//! message, no dropped connection (a panic), berthd alive afterwards, and the stored containers
//! still load after a restart.
//!
//! The seed is fixed so a failure reproduces; `BERTH_FUZZ_SEED` and `BERTH_FUZZ_CASES` change it.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
#![recursion_limit = "256"]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

fn create_body() -> Value {
    json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": null,
        "Env": ["A=1", "PATH=/bin"],
        "Labels": {"k": "v"},
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "AttachStdout": true,
        "User": "1000:1000",
        "WorkingDir": "/tmp",
        "Hostname": "h",
        "StopSignal": "SIGTERM",
        "StopTimeout": 5,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000i64, "Retries": 3},
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/anon": {}},
        "HostConfig": {
            "Memory": 67_108_864,
            "MemorySwap": -1,
            "NanoCpus": 500_000_000,
            "CpuShares": 512,
            "CpusetCpus": "0",
            "PidsLimit": 100,
            "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["MKNOD"],
            "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": "none",
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "AutoRemove": false,
            "Init": true,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
            "Tmpfs": {"/run": "size=1m"},
            "Mounts": [
                {"Type": "volume", "Source": "fuzzvol", "Target": "/v"},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1_048_576}}
            ],
            "Binds": ["fuzzvol2:/w:ro"],
            "ReadonlyRootfs": true,
            "ShmSize": 67_108_864
        },
        "NetworkingConfig": {"EndpointsConfig": {}}
    })
}

fn update_body() -> Value {
    json!({
        "Memory": 134_217_728,
        "MemorySwap": 268_435_456,
        "MemoryReservation": 33_554_432,
        "CpuShares": 256,
        "NanoCpus": 1_000_000_000,
        "CpuQuota": 50_000,
        "CpuPeriod": 100_000,
        "CpusetCpus": "0",
        "PidsLimit": 50,
        "BlkioWeight": 300,
        "RestartPolicy": {"Name": "unless-stopped"}
    })
}

fn exec_body() -> Value {
    json!({
        "Cmd": ["echo", "hi"],
        "AttachStdout": true,
        "AttachStderr": true,
        "AttachStdin": false,
        "Env": ["X=1"],
        "User": "0",
        "WorkingDir": "/",
        "Tty": false,
        "Privileged": false,
        "DetachKeys": "ctrl-p,ctrl-q",
        "ConsoleSize": [24, 80]
    })
}

fn exec_start_body() -> Value {
    json!({"Detach": true, "Tty": false, "ConsoleSize": [24, 80]})
}

fn volume_body() -> Value {
    json!({"Name": "fz", "Driver": "local", "Labels": {"a": "b"}, "DriverOpts": {}})
}

/// Strings that break parsers and validators. None is an absolute path with a colon, so a
/// mutated bind can never name a host directory (create makes missing bind sources).
fn weird_string(rng: &mut StdRng) -> String {
    const FIXED: &[&str] = &[
        "",
        " ",
        "-1",
        "0",
        "18446744073709551616",
        "1e309",
        "null",
        "true",
        "\u{0}",
        "a\u{0}b",
        "\u{202e}rtl",
        "🙂🙂",
        "../../../etc",
        "..",
        ".",
        "c:\\x",
        "ALL",
        "SIGKILL",
        "SIGNOPE",
        "999999999999g",
        "64m",
        "-64m",
        "nofile=1:0",
        "name=",
        "=",
        "a=b=c",
        "tcp",
        "80/udp",
        "65536/tcp",
        "on-failure:-1",
        "always",
        "host",
        "container:nope",
        "seccomp=unconfined",
        "seccomp={}",
        "apparmor=x",
        "label=disable",
        "ctrl-",
        "ctrl-@,ctrl-[",
        "0-1023",
        "99999",
        "size=-1",
        "mode=7777",
        "fuzzvol",
        "busybox:nope",
        "sha256:0000",
        "UPPER/case",
    ];
    match rng.random_range(0..4) {
        0 | 1 => FIXED[rng.random_range(0..FIXED.len())].to_string(),
        2 => {
            // Long: up to 200 kB.
            let n = rng.random_range(1000..200_000);
            let c = ['a', 'Z', '\u{0}', '/', ':', 'é'][rng.random_range(0..6)];
            std::iter::repeat_n(c, n).collect()
        }
        _ => {
            let n = rng.random_range(0..24);
            (0..n)
                .map(|_| {
                    let c: u32 = rng.random_range(0..0x3000);
                    char::from_u32(c).unwrap_or('?')
                })
                .filter(|c| *c != '/')
                .collect()
        }
    }
}

fn weird_number(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(1.5),
        6 => json!(-0.0),
        7 => json!(1e300),
        _ => json!(rng.random::<i32>()),
    }
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let k = if depth > 3 {
        rng.random_range(0..4)
    } else {
        rng.random_range(0..7)
    };
    match k {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => weird_number(rng),
        3 => Value::String(weird_string(rng)),
        4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        5 => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..4) {
                m.insert(weird_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => {
            // Deep nesting, past serde_json's recursion limit at times.
            let n = rng.random_range(10..300);
            let mut v = Value::Null;
            for _ in 0..n {
                v = if rng.random_bool(0.5) {
                    Value::Array(vec![v])
                } else {
                    json!({ "Memory": v })
                };
            }
            v
        }
    }
}

/// Every node of `v` as a path of keys/indices.
fn paths(v: &Value, prefix: &mut Vec<PathSeg>, out: &mut Vec<Vec<PathSeg>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(PathSeg::Key(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(PathSeg::Index(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathSeg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (PathSeg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn mutate(rng: &mut StdRng, v: &mut Value) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = all[rng.random_range(0..all.len())].clone();
    match rng.random_range(0..9) {
        // Same type, odd value: gets past the JSON decoder to the validators.
        6..=8 => {
            let nv = match node_mut(v, &path) {
                Some(Value::Number(_)) => weird_number(rng),
                Some(Value::String(_)) => Value::String(weird_string(rng)),
                Some(Value::Bool(b)) => Value::Bool(!*b),
                Some(Value::Array(a)) if !a.is_empty() => {
                    let mut a = a.clone();
                    let i = rng.random_range(0..a.len());
                    a.push(a[i].clone());
                    Value::Array(a)
                }
                _ => return,
            };
            if let Some(n) = node_mut(v, &path) {
                *n = nv;
            }
        }
        // Delete the node (from its parent).
        0 if !path.is_empty() => {
            let (last, parent) = path.split_last().unwrap();
            if let Some(p) = node_mut(v, parent) {
                match (last, p) {
                    (PathSeg::Key(k), Value::Object(m)) => {
                        m.remove(k);
                    }
                    (PathSeg::Index(i), Value::Array(a)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        // Change its type: a number becomes a string of it, a string a number, etc.
        1 => {
            if let Some(n) = node_mut(v, &path) {
                *n = match n.take() {
                    Value::Number(x) => Value::String(x.to_string()),
                    Value::String(s) => s
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| json!([s])),
                    Value::Array(a) => a.into_iter().next().unwrap_or(Value::Null),
                    Value::Object(_) => json!("{}"),
                    Value::Bool(b) => json!(i32::from(b)),
                    Value::Null => json!({}),
                };
            }
        }
        // Insert a new key or element.
        2 => {
            let nv = random_value(rng, 1);
            if let Some(n) = node_mut(v, &path) {
                match n {
                    Value::Object(m) => {
                        let keys = [
                            "Memory",
                            "HostConfig",
                            "Cmd",
                            "Env",
                            "Mounts",
                            "Binds",
                            "Tmpfs",
                            "Ulimits",
                            "Devices",
                            "User",
                            "Labels",
                            "RestartPolicy",
                            "Healthcheck",
                            "Name",
                            "Detach",
                            "DriverOpts",
                            "Privileged",
                            "Entrypoint",
                        ];
                        let k = if rng.random_bool(0.7) {
                            keys[rng.random_range(0..keys.len())].to_string()
                        } else {
                            weird_string(rng)
                        };
                        m.insert(k, nv);
                    }
                    Value::Array(a) => a.push(nv),
                    other => *other = nv,
                }
            }
        }
        // Replace with something random.
        _ => {
            let nv = random_value(rng, 1);
            if let Some(n) = node_mut(v, &path) {
                *n = nv;
            }
        }
    }
}

/// One body for an endpoint: a valid one mutated 1-4 times, sometimes damaged as bytes.
fn make_body(rng: &mut StdRng, base: fn() -> Value) -> Vec<u8> {
    if rng.random_range(0..40) == 0 {
        // Pure noise.
        let n = rng.random_range(0..512);
        return (0..n).map(|_| rng.random()).collect();
    }
    let mut v = base();
    if rng.random_range(0..10) != 0 {
        for _ in 0..rng.random_range(1..5) {
            mutate(rng, &mut v);
        }
    }
    let mut bytes = serde_json::to_vec(&v).unwrap();
    match rng.random_range(0..12) {
        0 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes.truncate(at);
        }
        1 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes.insert(at, rng.random());
        }
        2 => bytes.extend_from_slice(b" trailing"),
        _ => {}
    }
    bytes
}

#[derive(Debug, Default)]
struct Tally {
    by_status: BTreeMap<u16, usize>,
    /// 5xx messages, first body that gave each.
    server_errors: BTreeMap<String, String>,
}

#[test]
fn fuzz_create_update_exec_volume_bodies() {
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xB3E7_F022);
    let cases: usize = std::env::var("BERTH_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut d = TestDaemon::start();
    let running = d.ok(&["run", "-d", "--name", "fz", "busybox", "sleep", "100000"]);
    let created = d.ok(&["create", "--name", "fz2", "busybox", "true"]);
    assert_eq!(
        d.docker(&["run", "--name", "fz3", "busybox", "sh", "-c", "exit 4"])
            .code(),
        4
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let started = Instant::now();
    let names = ["", "fuzzed", "fz", "bad/name", "a..b", "-x", "ok_name-1.2"];
    for case in 0..cases {
        let (path, body) = match rng.random_range(0..10) {
            0..=3 => {
                let name = names[rng.random_range(0..names.len())];
                let q = if name.is_empty() {
                    String::new()
                } else {
                    format!("?name={}", name.replace('/', "%2F"))
                };
                (
                    format!("/containers/create{q}"),
                    make_body(&mut rng, create_body),
                )
            }
            4 | 5 => {
                let target = if rng.random_bool(0.7) { "fz" } else { "fz2" };
                (
                    format!("/containers/{target}/update"),
                    make_body(&mut rng, update_body),
                )
            }
            6 => (
                "/containers/fz/exec".to_string(),
                make_body(&mut rng, exec_body),
            ),
            7 => {
                // A fresh exec instance each time (an exec starts once).
                let r = d.http(
                    "POST",
                    "/containers/fz/exec",
                    Some(r#"{"Cmd":["true"],"AttachStdout":true}"#),
                );
                assert_eq!(r.status, 201, "{}", r.text());
                let eid = r.json()["Id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}", r.text()))
                    .to_string();
                (
                    format!("/exec/{eid}/start"),
                    make_body(&mut rng, exec_start_body),
                )
            }
            _ => (
                "/volumes/create".to_string(),
                make_body(&mut rng, volume_body),
            ),
        };
        let r = http_request(
            &d.socket,
            "POST",
            &path,
            Some(&body),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| {
            panic!(
                "case {case} (seed {seed}): POST {path} broke the connection: {e}\nbody: {}\n{}",
                String::from_utf8_lossy(&body[..body.len().min(2000)]),
                d.log_tail()
            )
        });
        *tally.by_status.entry(r.status).or_default() += 1;
        if r.status >= 500 {
            let msg = serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            assert!(
                !msg.is_empty(),
                "case {case} (seed {seed}): POST {path} gave {} without a message: {:?}\nbody: {}",
                r.status,
                r.text(),
                String::from_utf8_lossy(&body[..body.len().min(2000)])
            );
            tally.server_errors.entry(msg).or_insert_with(|| {
                format!(
                    "POST {path} {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                )
            });
        }
        if r.status < 400 && r.status != 304 {
            // Something valid got through: undo it so thousands of cases leave little behind.
            if path.starts_with("/containers/create") {
                let id = r.json()["Id"].as_str().unwrap().to_string();
                let del = d.http("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
                assert_eq!(del.status, 204, "remove fuzzed container: {}", del.text());
            } else if path == "/volumes/create" {
                let name = r.json()["Name"].as_str().unwrap().to_string();
                let _ = d.http("DELETE", &format!("/volumes/{name}"), None);
            }
        }
    }
    eprintln!(
        "fuzz: {cases} cases in {:?}, seed {seed}, statuses {:?}",
        started.elapsed(),
        tally.by_status
    );
    for (m, example) in &tally.server_errors {
        eprintln!("5xx: {m}\n    e.g. {example}");
    }

    // berthd is alive and the containers it had are intact.
    let r = d.http("GET", "/_ping", None);
    assert_eq!(r.status, 200);
    for (name, status) in [("fz", "running"), ("fz2", "created"), ("fz3", "exited")] {
        assert_eq!(d.status(name).as_deref(), Some(status), "{name}");
    }
    assert_eq!(d.inspect("fz")["Id"], running.as_str());
    assert_eq!(d.inspect("fz2")["Id"], created.as_str());
    assert_eq!(d.ok(&["exec", "fz", "echo", "alive"]), "alive");
    // The stored records load: restart berthd and read them all back.
    d.kill9();
    d.spawn();
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["fz running", "fz2 created", "fz3 exited"], "{all}");
    assert!(
        !std::fs::read_to_string(&d.log)
            .unwrap()
            .contains("skip container"),
        "a record failed to load:\n{}",
        d.log_tail()
    );
    for name in ["fz", "fz2", "fz3"] {
        let v = d.inspect(name);
        assert!(v["State"].is_object() && v["HostConfig"].is_object() && v["Config"].is_object());
    }
    assert_eq!(d.ok(&["exec", "fz", "echo", "alive"]), "alive");
    assert_eq!(d.ok(&["start", "-a", "fz2"]), "");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "fuzz took {:?}",
        started.elapsed()
    );
}
