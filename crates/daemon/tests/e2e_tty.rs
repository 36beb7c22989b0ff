//! `docker run -it`, `docker exec -it` and `docker attach` through a real pty.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn run_it_type_read_ctrl_d() {
    let d = TestDaemon::start();
    let mut p = d.pty(&["run", "-it", "--name", "shell", "busybox", "sh"]);
    p.expect("# ", T);
    p.send(b"echo $((6*7)); tty\r");
    p.expect("42", T);
    p.expect("/dev/pts/", T);
    p.expect("# ", T);
    // The container's terminal has the pty size the CLI sent.
    p.send(b"stty size\r");
    p.expect("24 80", T);
    p.expect("# ", T);
    // Ctrl-D ends the shell; docker exits with its status (0).
    p.send(b"\x04");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    d.wait_status("shell", "exited", T);

    // The exit code of the shell comes through.
    let mut p = d.pty(&["run", "-it", "--rm", "busybox", "sh"]);
    p.expect("# ", T);
    p.send(b"exit 3\r");
    assert_eq!(p.wait(T), 3, "{}", p.transcript());
}

#[test]
fn exec_it_type_read_ctrl_d() {
    let d = TestDaemon::start();
    d.ok(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]);
    let mut p = d.pty(&["exec", "-it", "host", "sh"]);
    p.expect("# ", T);
    p.send(b"echo in-$HOSTNAME-$((1+1))\r");
    p.expect("in-", T);
    p.expect("-2", T);
    p.expect("# ", T);
    p.send(b"\x04");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());

    let mut p = d.pty(&["exec", "-it", "host", "sh", "-c", "read x; exit $x"]);
    p.send(b"5\r");
    assert_eq!(p.wait(T), 5, "{}", p.transcript());
    // The container is untouched.
    assert_eq!(d.status("host").unwrap(), "running");
}

#[test]
fn run_it_detach_and_attach_again() {
    let d = TestDaemon::start();
    let mut p = d.pty(&["run", "-it", "--name", "det", "busybox", "sh"]);
    p.expect("# ", T);
    p.send(b"export MARK=kept\r");
    // The echo of the line, then the next prompt: the export has run.
    p.expect("MARK=kept", T);
    p.expect("# ", T);
    // Ctrl-P Ctrl-Q detaches; the CLI exits 0 and the container keeps running.
    p.send(b"\x10\x11");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    assert_eq!(d.status("det").unwrap(), "running");

    let mut a = d.pty(&["attach", "det"]);
    // No prompt is repeated on attach; type a command and read its output.
    a.send(b"echo mark=$MARK\r");
    a.expect("mark=kept", T);
    a.send(b"exit 4\r");
    assert_eq!(a.wait(T), 4, "{}", a.transcript());
    d.wait_status("det", "exited", T);
    assert_eq!(d.inspect("det")["State"]["ExitCode"], 4);
}

#[test]
fn start_ai_reattaches_a_stopped_tty_container() {
    let d = TestDaemon::start();
    d.ok(&["create", "-it", "--name", "again", "busybox", "sh"]);
    let mut p = d.pty(&["start", "-ai", "again"]);
    p.expect("# ", T);
    p.send(b"echo first\r");
    p.expect("first", T);
    p.send(b"\x04");
    assert_eq!(p.wait(T), 0, "{}", p.transcript());
    let mut p = d.pty(&["start", "-ai", "again"]);
    p.expect("# ", T);
    p.send(b"exit 2\r");
    assert_eq!(p.wait(T), 2, "{}", p.transcript());
}
