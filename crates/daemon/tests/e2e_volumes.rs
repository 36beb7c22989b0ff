//! Named and anonymous volumes through the docker CLI.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::*;

#[test]
fn named_volume_persists_across_containers() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo kept > /d/f",
    ]);
    // Created on first use.
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data");
    let out = d.ok(&["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"]);
    assert_eq!(out, "kept");
    // Read-only mount of the same volume.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/d:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /d/g",
    ]);
    assert_ne!(o.code(), 0, "write to a :ro volume must fail");
    assert!(o.err().contains("Read-only file system"), "{}", o.err());
    let v = d.inspect("data");
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    let mp = v["Mountpoint"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );
}

#[test]
fn volume_seeded_from_image_content() {
    let d = TestDaemon::start();
    // A new named volume mounted over /etc starts with the image's /etc, as Docker does.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.starts_with("root:x:0:0"), "{out}");
}

#[test]
fn anonymous_volume_and_rm_v() {
    let d = TestDaemon::start();
    d.ok(&[
        "run",
        "--name",
        "anon",
        "--mount",
        "type=volume,target=/x",
        "busybox",
        "sh",
        "-c",
        "echo a > /x/a",
    ]);
    let v = d.inspect("anon");
    let mounts = v["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Destination"], "/x");
    let name = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(
        name.len(),
        64,
        "anonymous volumes get a 64-hex name: {name}"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), name);
    // An anonymous volume in use cannot be removed.
    let o = d.fails(&["volume", "rm", &name]);
    assert!(o.err().contains("volume is in use"), "{}", o.err());
    // rm -v removes the container's anonymous volumes, not named ones.
    d.ok(&[
        "run",
        "--name",
        "named",
        "-v",
        "keepme:/k",
        "busybox",
        "true",
    ]);
    d.ok(&["rm", "-v", "anon"]);
    d.ok(&["rm", "-v", "named"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "keepme");
}

#[test]
fn volume_commands() {
    let d = TestDaemon::start();
    d.ok(&["volume", "create", "--label", "k=v", "v1"]);
    d.ok(&["volume", "create", "v2"]);
    let mut names: Vec<String> = d
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["v1", "v2"]);
    let filtered = d.ok(&["volume", "ls", "-q", "--filter", "label=k=v"]);
    assert_eq!(filtered, "v1");
    let v = d.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Labels}}",
        "v1",
    ]);
    assert_eq!(v, "v1 local map[k:v]");
    let o = d.fails(&["volume", "inspect", "nope"]);
    assert!(o.err().contains("no such volume"), "{}", o.err());
    // Creating an existing volume is not an error.
    d.ok(&["volume", "create", "v1"]);
    d.ok(&["volume", "rm", "v2"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v1");
    let o = d.fails(&["volume", "rm", "v2"]);
    assert!(o.err().contains("no such volume"), "{}", o.err());
    // In use by a container (even stopped): rm refuses, prune skips it.
    d.ok(&["create", "--name", "user", "-v", "v1:/v", "busybox", "true"]);
    let o = d.fails(&["volume", "rm", "v1"]);
    assert!(o.err().contains("volume is in use"), "{}", o.err());
    d.ok(&["volume", "create", "lonely"]);
    // Since API 1.42 prune only takes anonymous volumes unless --all.
    d.ok(&["volume", "prune", "-f", "--all"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v1");
    d.ok(&["rm", "user"]);
    d.ok(&["volume", "rm", "v1"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    // Bad names are refused.
    let o = d.fails(&["volume", "create", "bad/name"]);
    assert!(o.err().contains("invalid"), "{}", o.err());
}
