//! Bad input through the docker CLI and raw HTTP: Docker's status codes and messages.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::*;

/// Error bodies are `{"message": ...}` with a Content-Type of exactly application/json.
#[track_caller]
fn api_error(r: &HttpResponse, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{:?}",
        r.headers
    );
    let m = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(!m.is_empty(), "error without a message: {}", r.text());
    m
}

#[test]
fn unknown_image() {
    let d = TestDaemon::start();
    // The CLI gets 404, says so, tries to pull (no registry answers), exits 125.
    let o = d.docker(&["run", "--rm", "nosuchimage:1.0", "true"]);
    assert_eq!(o.code(), 125, "{}", o.err());
    assert!(
        o.err()
            .contains("Unable to find image 'nosuchimage:1.0' locally"),
        "{}",
        o.err()
    );
    let r = d.http(
        "POST",
        "/v1.47/containers/create",
        Some(r#"{"Image":"nosuchimage:1.0"}"#),
    );
    let m = api_error(&r, 404);
    assert_eq!(m, "No such image: nosuchimage:1.0");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn name_conflict() {
    let d = TestDaemon::start();
    let id = d.ok(&["create", "--name", "dup", "busybox", "true"]);
    let o = d.fails(&["run", "--name", "dup", "busybox", "true"]);
    assert_eq!(o.code(), 125);
    assert!(
        o.err().contains(&format!(
            "Conflict. The container name \"/dup\" is already in use by container \"{id}\""
        )),
        "{}",
        o.err()
    );
    let r = d.http(
        "POST",
        "/containers/create?name=dup",
        Some(r#"{"Image":"busybox"}"#),
    );
    api_error(&r, 409);
    let r = d.http(
        "POST",
        "/containers/create?name=bad%2Fname",
        Some(r#"{"Image":"busybox"}"#),
    );
    let m = api_error(&r, 400);
    assert!(m.contains("Invalid container name"), "{m}");
    // Remove a running container without force: 409.
    d.ok(&["start", "dup"]);
    d.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "100"]);
    let o = d.fails(&["rm", "live"]);
    assert!(o.err().contains("cannot remove container"), "{}", o.err());
    assert!(
        o.err()
            .contains("stop the container before removing or force remove"),
        "{}",
        o.err()
    );
}

#[test]
fn bad_memory_and_mounts() {
    let d = TestDaemon::start();
    let o = d.fails(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(o.code(), 125);
    assert!(
        o.err().contains("Minimum memory limit allowed is 6MB"),
        "{}",
        o.err()
    );
    // An unparsable size is refused by the CLI itself.
    let o = d.fails(&["run", "--rm", "--memory", "lots", "busybox", "true"]);
    assert!(o.err().contains("invalid"), "{}", o.err());
    let r = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Memory":-5}}"#),
    );
    api_error(&r, 400);

    let o = d.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent-berth-e2e,target=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code(), 125);
    assert!(
        o.err()
            .contains("invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth-e2e"),
        "{}",
        o.err()
    );
    let o = d.fails(&["run", "--rm", "-v", "relative/path:/x", "busybox", "true"]);
    assert!(
        o.err()
            .contains("includes invalid characters for a local volume name")
            || o.err().contains("invalid"),
        "{}",
        o.err()
    );
    let o = d.fails(&["run", "--rm", "--tmpfs", "relative", "busybox", "true"]);
    assert_eq!(o.code(), 125, "{}", o.err());
    let o = d.fails(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=200:100",
        "busybox",
        "true",
    ]);
    assert!(o.err().contains("soft"), "{}", o.err());
    let o = d.fails(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"]);
    assert!(o.err().contains("unknown capability"), "{}", o.err());
    let o = d.fails(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert!(
        o.err()
            .contains("conflicting options: cannot specify both --restart and --rm"),
        "{}",
        o.err()
    );
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "nothing left after refused creates"
    );
}

#[test]
fn attach_exec_stop_on_wrong_states() {
    let d = TestDaemon::start();
    d.ok(&["run", "--name", "stopped", "busybox", "true"]);
    // The CLI's own check: attach to a stopped container.
    let o = d.fails(&["attach", "stopped"]);
    assert!(
        o.err()
            .contains("You cannot attach to a stopped container, start it first"),
        "{}",
        o.err()
    );
    // exec in a stopped container: 409 with Docker's message.
    let o = d.fails(&["exec", "stopped", "true"]);
    assert!(o.err().contains("is not running"), "{}", o.err());
    let r = d.http(
        "POST",
        "/containers/stopped/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    api_error(&r, 409);
    // Missing containers: 404 "No such container".
    let o = d.fails(&["stop", "missing"]);
    assert!(
        o.err().contains("No such container: missing"),
        "{}",
        o.err()
    );
    let r = d.http("POST", "/containers/missing/stop", None);
    assert_eq!(api_error(&r, 404), "No such container: missing");
    for (m, p) in [
        ("GET", "/containers/missing/json"),
        ("GET", "/containers/missing/logs?stdout=1"),
        ("POST", "/containers/missing/start"),
        ("POST", "/containers/missing/kill"),
        ("DELETE", "/containers/missing"),
        ("POST", "/containers/missing/attach?stream=1&stdout=1"),
        ("GET", "/exec/nothing/json"),
    ] {
        let r = d.http(m, p, None);
        api_error(&r, 404);
    }
    let r = d.http("POST", "/exec/nothing/start", Some("{}"));
    assert_eq!(api_error(&r, 404), "No such exec instance: nothing");
    // logs with neither stream: 400.
    let r = d.http("GET", "/containers/stopped/logs", None);
    assert_eq!(api_error(&r, 400), "You must choose at least one stream");
    // exec with no command.
    d.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "100"]);
    let r = d.http("POST", "/containers/up/exec", Some(r#"{"Cmd":[]}"#));
    api_error(&r, 400);
    // kill with a bad signal.
    let r = d.http("POST", "/containers/up/kill?signal=SIGNOPE", None);
    api_error(&r, 400);
    // Starting a paused --rm container is refused, and the refusal removes nothing.
    d.ok(&[
        "run", "-d", "--rm", "--name", "pz", "busybox", "sleep", "100",
    ]);
    d.ok(&["pause", "pz"]);
    let o = d.fails(&["start", "pz"]);
    assert!(
        o.err().contains("cannot start a paused container"),
        "{}",
        o.err()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(d.status("pz").as_deref(), Some("paused"));
    d.ok(&["unpause", "pz"]);
    // wait with a bad condition.
    let r = d.http("POST", "/containers/up/wait?condition=whenever", None);
    api_error(&r, 400);
}

#[test]
fn malformed_bodies_and_versions() {
    let d = TestDaemon::start();
    for body in [
        "{",
        "not json",
        r#"{"Image": 5}"#,
        r#"{"Image":"busybox","Cmd":"not-a-list"}"#,
        r#"{"Image":"busybox","HostConfig":{"Memory":"64m"}}"#,
        r#"[1,2,3]"#,
        "",
    ] {
        let r = d.http("POST", "/containers/create", Some(body));
        let m = api_error(&r, 400);
        assert!(!m.is_empty(), "{body}");
    }
    let r = d.http("POST", "/containers/create", Some(r#"{"Cmd":["true"]}"#));
    api_error(&r, 400);
    let r = d.http("POST", "/volumes/create", Some(r#"{"Name": ["x"]}"#));
    api_error(&r, 400);

    // Versions: too new is 400 with Docker's message; too old too; the newest works.
    let r = d.http("GET", "/v9.99/version", None);
    let m = api_error(&r, 400);
    assert!(m.contains("client version 9.99 is too new"), "{m}");
    let r = d.http("GET", "/v1.12/version", None);
    let m = api_error(&r, 400);
    assert!(m.contains("client version 1.12 is too old"), "{m}");
    let r = d.http("GET", "/vabc/version", None);
    assert!(r.status == 400 || r.status == 404, "{}", r.status);
    let r = d.http("GET", "/v1.41/version", None);
    assert_eq!(r.status, 200);
    let r = d.http("GET", "/version", None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(r.header("api-version"), v["ApiVersion"].as_str());
    // Unknown path: 404 with a JSON message.
    let r = d.http("GET", "/no/such/endpoint", None);
    api_error(&r, 404);
    // The daemon is fine afterwards.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "ok"]), "ok");
}

/// berthd is never in a swarm: the swarm endpoints answer 503 as dockerd does on a node
/// outside one (docker-py's `leave_swarm(force=True)`, run by its tests' teardown, takes that
/// as "nothing to leave"); an unknown path stays 404.
#[test]
fn swarm_endpoints_answer_as_a_node_outside_a_swarm() {
    let d = TestDaemon::start();
    let r = d.http("POST", "/v1.43/swarm/leave?force=1", None);
    assert_eq!(api_error(&r, 503), "This node is not part of a swarm");
    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/v1.43/services"),
        ("GET", "/nodes"),
        ("GET", "/tasks"),
        ("GET", "/secrets"),
        ("GET", "/configs"),
        ("POST", "/swarm/update"),
    ] {
        let r = d.http(method, path, None);
        let m = api_error(&r, 503);
        assert!(
            m.starts_with("This node is not a swarm manager."),
            "{path}: {m}"
        );
    }
    let r = d.http("POST", "/swarm/init", Some("{}"));
    let m = api_error(&r, 503);
    assert!(m.contains("swarm"), "{m}");
    let r = d.http("GET", "/swarmy", None);
    assert!(api_error(&r, 404).contains("page not found"));
    // The CLI says what dockerd's would.
    let o = d.docker(&["service", "ls"]);
    assert_ne!(o.code(), 0);
    assert!(
        o.err().contains("This node is not a swarm manager"),
        "{}",
        o.err()
    );
    let o = d.docker(&["swarm", "leave", "--force"]);
    assert_ne!(o.code(), 0);
    assert!(
        o.err().contains("This node is not part of a swarm"),
        "{}",
        o.err()
    );
}
