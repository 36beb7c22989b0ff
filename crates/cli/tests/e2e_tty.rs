//! `berth run -it`, `attach` and `exec -it` through a real pty: type, read the screen, detach
//! with Ctrl-P Ctrl-Q, re-attach, resize, exit status.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::TestDaemon;

const T: Duration = Duration::from_secs(20);

#[test]
fn run_it_detach_and_reattach() {
    let d = TestDaemon::start();
    let mut p = d.berth_pty(&["run", "-it", "--name", "shell", "busybox", "sh"]);
    p.expect("# ", T);
    p.send(b"echo $((6*7))\r");
    p.expect("42", T);
    // The container's terminal has the size of ours (80x24 from the harness).
    p.send(b"stty size\r");
    p.expect("24 80", T);
    // A resize of ours (SIGWINCH) reaches the container's terminal.
    p.resize(40, 120);
    common::wait_until("the container's terminal to be resized", T, || {
        p.send(b"stty size\r");
        p.seen_within("40 120", Duration::from_millis(300))
            .then_some(())
    });
    // Ctrl-P Ctrl-Q: the CLI exits 0, the container keeps running.
    p.send(b"\x10\x11");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    d.wait_status("shell", "running", T);
    // Re-attach: what the container writes to its terminal shows up, and the CLI exits with
    // the container's status when it ends.
    let mut a = d.berth_pty(&["attach", "shell"]);
    common::wait_until("the attach to be served", T, || {
        d.bok(&[
            "exec",
            "shell",
            "sh",
            "-c",
            "echo reattached-$((1+1)) > /proc/1/fd/1",
        ]);
        a.seen_within("reattached-2", Duration::from_millis(300))
            .then_some(())
    });
    d.bok(&["kill", "shell"]);
    assert_eq!(a.wait(T), 137, "{}", a.transcript());
    d.wait_status("shell", "exited", T);
    // Custom detach keys.
    let mut p = d.berth_pty(&[
        "run",
        "-it",
        "--detach-keys",
        "ctrl-a,x",
        "--name",
        "k",
        "busybox",
        "sh",
    ]);
    p.expect("# ", T);
    p.send(b"\x01x");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    d.wait_status("k", "running", T);
}

#[test]
fn reattached_terminal_takes_input() {
    let d = TestDaemon::start();
    let mut p = d.berth_pty(&["run", "-it", "--name", "shell", "busybox", "sh"]);
    p.expect("# ", T);
    p.send(b"\x10\x11");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    let mut a = d.berth_pty(&["attach", "shell"]);
    a.send(b"echo back-$((1+1))\r");
    a.expect("back-2", T);
    a.send(b"exit 3\r");
    assert_eq!(a.wait(T), 3, "{}", a.transcript());
}

#[test]
fn exec_it_and_tty_run_status() {
    let d = TestDaemon::start();
    d.bok(&["run", "-d", "--name", "bg", "busybox", "sleep", "1000"]);
    let mut p = d.berth_pty(&["exec", "-it", "bg", "sh"]);
    p.expect("# ", T);
    p.send(b"tty && echo in-$((2+3))\r");
    p.expect("in-5", T);
    p.send(b"exit 4\r");
    assert_eq!(p.wait(T), 4, "{}", p.transcript());
    // The live stats table redraws with docker's header and the container's row.
    let mut s = d.berth_pty(&["stats"]);
    s.expect("CONTAINER ID   NAME", T);
    s.expect(" bg ", T);
    s.expect("CONTAINER ID   NAME", T);
    drop(s);
    // run -t without -i: output through the tty, status of the process.
    let mut p = d.berth_pty(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 6"]);
    p.expect("/dev/pts/", T);
    assert_eq!(p.wait(T), 6, "{}", p.transcript());
    // -it with a non-terminal stdin: docker's error.
    let o = d.berth(&["run", "-it", "--rm", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the input device is not a TTY"),
        "{o:?}"
    );
}
