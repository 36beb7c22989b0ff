//! The berth CLI against a real berthd, side by side with docker's CLI: connection settings,
//! version and info, bad input (docker's words and exit codes), help and completion.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_with_timeout, OutputExt, TestDaemon, BERTH};

fn berth_alone(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BERTH);
    cmd.args(args)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, Duration::from_secs(30), None)
}

#[test]
fn no_daemon_is_a_clear_message_and_exit_1() {
    let o = berth_alone(&["ps"], &[("BERTH_HOST", "unix:///nonexistent/berth.sock")]);
    assert_eq!(o.code(), 1, "{}", o.err());
    assert_eq!(
        o.err().trim(),
        "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock: is berthd running? Start it with: berthd &"
    );
    // The default socket when nothing is set.
    let o = berth_alone(&["version", "--format", "{{.Client.Version}}"], &[]);
    if !std::path::Path::new("/run/berth/berth.sock").exists() {
        assert_eq!(o.code(), 1);
        assert!(
            o.err().contains("unix:///run/berth/berth.sock"),
            "{}",
            o.err()
        );
    }
    // docker says the same thing in its words, with the same status.
    let d = run_with_timeout(
        {
            let mut c = Command::new(common::DOCKER);
            c.args(["ps"])
                .env("DOCKER_HOST", "unix:///nonexistent/berth.sock");
            c
        },
        Duration::from_secs(30),
        None,
    );
    assert_eq!(d.code(), o.code());
}

#[test]
fn version_flag_is_fast_and_offline() {
    let o = berth_alone(&["--version"], &[("BERTH_HOST", "unix:///nonexistent")]);
    assert_eq!(o.code(), 0);
    assert!(o.out().starts_with("berth version "), "{}", o.out());
    // Best of a few runs, so a busy machine does not fail it: well under docker's ~20 ms.
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let st = Command::new(BERTH).arg("--version").output().unwrap();
        best = best.min(t.elapsed());
        assert!(st.status.success());
    }
    assert!(
        best < Duration::from_millis(50),
        "berth --version took {best:?}"
    );
}

#[test]
fn host_selection_order() {
    let d = TestDaemon::start();
    let sock = format!("unix://{}", d.socket.display());
    // -H beats BERTH_HOST, which beats DOCKER_HOST.
    let o = berth_alone(
        &["-H", &sock, "ps", "-q"],
        &[
            ("BERTH_HOST", "unix:///nonexistent/a"),
            ("DOCKER_HOST", "unix:///nonexistent/b"),
        ],
    );
    assert_eq!(o.code(), 0, "{}", o.err());
    let o = berth_alone(
        &["ps", "-q"],
        &[
            ("BERTH_HOST", &sock),
            ("DOCKER_HOST", "unix:///nonexistent/b"),
        ],
    );
    assert_eq!(o.code(), 0, "{}", o.err());
    let o = berth_alone(&["ps", "-q"], &[("DOCKER_HOST", &sock)]);
    assert_eq!(o.code(), 0, "{}", o.err());
    let o = berth_alone(
        &["ps", "-q"],
        &[
            ("BERTH_HOST", "unix:///nonexistent/a"),
            ("DOCKER_HOST", &sock),
        ],
    );
    assert_eq!(o.code(), 1);
    assert!(o.err().contains("unix:///nonexistent/a"), "{}", o.err());
}

#[test]
fn version_and_info_match_docker() {
    let d = TestDaemon::start();
    for f in [
        "{{.Server.Version}}",
        "{{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}} {{.Server.KernelVersion}}",
    ] {
        let (b, k) = d.both(&["version", "--format", f]);
        assert_eq!(b.code(), 0, "{}", b.err());
        assert_eq!(b.out(), k.out(), "version --format {f}");
    }
    let out = d.bok(&["version"]);
    assert!(out.starts_with("Client:\n Version:"), "{out}");
    assert!(out.contains("\nServer:"), "{out}");
    assert!(out.contains(" Engine:\n  Version:"), "{out}");
    for f in [
        "{{.ServerVersion}}",
        "{{.Containers}} {{.Images}} {{.Driver}}",
        "{{.OperatingSystem}} {{.NCPU}}",
        "{{json .Plugins.Volume}} {{json .Plugins.Log}}",
    ] {
        let (b, k) = d.both(&["info", "--format", f]);
        assert_eq!(b.code(), 0, "{}", b.err());
        assert_eq!(b.out(), k.out(), "info --format {f}");
    }
    let info = d.bok(&["info"]);
    for needle in [
        "Server:\n Containers: 0\n  Running: 0",
        " Images: 1\n",
        " Server Version: ",
        " Storage Driver: ",
        " Cgroup Version: ",
    ] {
        assert!(info.contains(needle), "{needle:?} in {info}");
    }
}

#[test]
fn bad_input_in_dockers_words_and_codes() {
    let d = TestDaemon::start();
    // (args, text berth prints, with "docker" for "berth")
    let cases: &[(&[&str], &str)] = &[
        (&["nosuchcommand"], "unknown command: berth nosuchcommand"),
        (&["ps", "--bogus"], "unknown flag: --bogus"),
        (
            &["run", "--memory", "1x", "busybox"],
            "invalid argument \"1x\" for \"-m, --memory\" flag: invalid suffix: 'x'",
        ),
        (
            &["run", "-p", "abc", "busybox"],
            "invalid containerPort: abc",
        ),
        (&["ps", "--format", "{{.Foo"], "failed to parse template"),
        (&["run"], "'berth run' requires at least 1 argument"),
        (
            &["stop", "nosuch"],
            "Error response from daemon: No such container: nosuch",
        ),
        (&["inspect", "nosuch"], "Error: No such object: nosuch"),
        (
            &["rmi", "nosuch:latest"],
            "Error response from daemon: No such image: nosuch:latest",
        ),
    ];
    for (args, text) in cases {
        let (b, k) = d.both(args);
        assert_eq!(
            b.code(),
            k.code(),
            "exit code of {args:?}: berth {} ({}), docker {} ({})",
            b.code(),
            b.err(),
            k.code(),
            k.err()
        );
        assert!(b.err().contains(text), "berth {args:?}: {:?}", b.err());
        assert!(
            k.err().contains(&text.replace("berth", "docker")),
            "docker {args:?}: {:?}",
            k.err()
        );
    }
    // Values docker checks too, whatever its wording: same status.
    for args in [
        &["run", "-v", "a:b:c:d", "busybox"][..],
        &["run", "--rm", "-v", "/tmp:rel", "busybox", "true"],
        &["run", "--rm", "busybox", "nosuchcmd"],
        &["run", "--rm", "busybox", "/etc"],
        &["run", "--rm", "busybox", "sh", "-c", "exit 3"],
        &["exec", "nosuch", "true"],
        &["logs", "nosuch"],
        &["ps", "--filter", "nokeyvalue"],
    ] {
        let (b, k) = d.both(args);
        assert_eq!(
            b.code(),
            k.code(),
            "exit code of {args:?}: berth {} ({}), docker {} ({})",
            b.code(),
            b.err(),
            k.code(),
            k.err()
        );
    }
    // A daemon error at create (name in use) is 125, as docker's.
    d.bok(&["create", "--name", "taken", "busybox"]);
    let (b, k) = d.both(&["run", "--name", "taken", "busybox", "true"]);
    assert_eq!(
        (b.code(), k.code()),
        (125, 125),
        "{} / {}",
        b.err(),
        k.err()
    );
    assert!(b.err().contains("Conflict"), "{}", b.err());
    let o = d.berth(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(o.code(), 127);
    assert!(o.err().contains("executable file not found"), "{}", o.err());
}

#[test]
fn help_for_every_command_and_completion() {
    let o = berth_alone(&["--help"], &[]);
    assert_eq!(o.code(), 0);
    let top = o.out();
    for c in ["run", "ps", "images", "volume", "system", "completion"] {
        assert!(top.contains(c), "{c} in --help");
    }
    let cmds = [
        "run", "create", "start", "stop", "restart", "kill", "rm", "ps", "logs", "exec", "attach",
        "inspect", "wait", "pause", "unpause", "rename", "top", "port", "update", "stats", "cp",
        "diff", "export", "commit", "images", "pull", "push", "rmi", "tag", "save", "load",
        "import", "history", "login", "logout", "events", "version", "info",
    ];
    for c in cmds {
        let o = berth_alone(&[c, "--help"], &[]);
        assert_eq!(o.code(), 0, "{c} --help: {}", o.err());
        assert!(o.out().contains("Usage:"), "{c} --help: {}", o.out());
    }
    for sub in [
        &["image", "ls"][..],
        &["volume", "create"],
        &["system", "df"],
        &["container", "ls"],
        &["container", "top"],
        &["container", "attach"],
        &["container", "commit"],
        &["image", "history"],
        &["volume", "prune"],
        &["system", "prune"],
    ] {
        let mut a = sub.to_vec();
        a.push("--help");
        let o = berth_alone(&a, &[]);
        assert_eq!(o.code(), 0, "{a:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let o = berth_alone(&["completion", shell], &[]);
        assert_eq!(o.code(), 0, "{shell}");
        assert!(o.out().contains("berth"), "{shell}");
        assert!(o.out().len() > 1000, "{shell} completion is too short");
    }
    let bash = berth_alone(&["completion", "bash"], &[]).out();
    assert!(
        bash.contains("--detach-keys"),
        "run flags in the bash completion"
    );
}

/// `berth network create --ipv6` with a subnet of each family, gateways matched to their
/// subnets as the docker CLI does; `--ip6` on create is sent as IPAMConfig.IPv6Address (the
/// network record only: no container starts, so no bridge is made on this host).
#[test]
fn network_create_ipv6_and_ip6_flags() {
    let d = TestDaemon::start();
    d.bok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.71.0.0/24",
        "--subnet",
        "fd00:71::/64",
        "--gateway",
        "fd00:71::fe",
        "--ip-range",
        "fd00:71::/80",
        "cli6",
    ]);
    let net = d.inspect("cli6");
    assert_eq!(net["EnableIPv6"], true, "{net}");
    let cfg = net["IPAM"]["Config"].as_array().unwrap().clone();
    assert_eq!(cfg[0]["Subnet"], "10.71.0.0/24", "{net}");
    assert_eq!(cfg[1]["Subnet"], "fd00:71::/64", "{net}");
    assert_eq!(cfg[1]["Gateway"], "fd00:71::fe", "{net}");
    assert_eq!(cfg[1]["IPRange"], "fd00:71::/80", "{net}");
    d.bok(&[
        "create",
        "--name",
        "c6",
        "--network",
        "cli6",
        "--ip6",
        "fd00:71::99",
        "busybox",
        "true",
    ]);
    let c = d.inspect("c6");
    assert_eq!(
        c["NetworkSettings"]["Networks"]["cli6"]["IPAMConfig"]["IPv6Address"], "fd00:71::99",
        "{c}"
    );
    let o = d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.72.0.0/24",
        "--gateway",
        "fd00::1",
        "bad",
    ]);
    assert_eq!(o.code(), 125, "{}", o.err());
    assert!(
        o.err().contains("no matching subnet for gateway fd00::1"),
        "{}",
        o.err()
    );
    d.bok(&["rm", "c6"]);
    d.bok(&["network", "rm", "cli6"]);
}
