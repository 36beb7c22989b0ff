//! The runtime as a library, the way berth-shim will use it: create and start in-process, with
//! the container's stdio on pipes the caller owns, then wait for the init (our child) and delete.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use berth_runtime::container::{CreateOptions, ExecOptions, Runtime};
use berth_runtime::state::Status;
use berth_testutil::{require_root, unique_id, Bundle};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe, Pid};

/// Deletes the container even when an assertion fails.
struct Cleanup<'a>(&'a Runtime, String);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(&self.1, true);
    }
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut s);
    s
}

#[test]
fn create_start_exec_with_caller_pipes() {
    require_root().unwrap();
    let root = tempfile::Builder::new()
        .prefix("berth-lib-")
        .tempdir_in("/run")
        .unwrap();
    let rt = Runtime::new(root.path());
    let id = unique_id("lib");
    let mut bundle = Bundle::busybox(&["sh", "-c", "echo out-$$; echo err >&2; sleep 30"]).unwrap();
    bundle.set_cgroups_path(&format!("berth-test-{id}"));
    bundle.save().unwrap();
    let _cleanup = Cleanup(&rt, id.clone());

    let (in_r, in_w) = pipe().unwrap();
    let (out_r, out_w) = pipe().unwrap();
    let (err_r, err_w) = pipe().unwrap();
    let st = rt
        .create(&CreateOptions {
            id: id.clone(),
            bundle: bundle.path().to_path_buf(),
            stdio: Some([in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]),
            ..CreateOptions::default()
        })
        .unwrap();
    assert_eq!(rt.state(&id).unwrap().status, Status::Created);
    rt.start(&id).unwrap();
    assert_eq!(rt.state(&id).unwrap().status, Status::Running);

    // exec with its own pipe: its output arrives there, not on ours.
    let (x_r, x_w) = pipe().unwrap();
    let mut process = st.config.process().clone().unwrap();
    process.set_args(Some(vec!["sh".into(), "-c".into(), "echo exec-$$".into()]));
    let pid = rt
        .exec(
            &id,
            &ExecOptions {
                process,
                stdio: Some([in_r.as_raw_fd(), x_w.as_raw_fd(), x_w.as_raw_fd()]),
                ..ExecOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        waitpid(Pid::from_raw(pid), None).unwrap(),
        WaitStatus::Exited(Pid::from_raw(pid), 0)
    );
    drop(x_w);
    let exec_out = read_all(x_r);
    assert!(exec_out.starts_with("exec-"), "exec output: {exec_out:?}");

    rt.kill(&id, nix::sys::signal::Signal::SIGKILL, false)
        .unwrap();
    // The init is our child (CLONE_PARENT): we reap it, as the shim will.
    let ws = waitpid(Pid::from_raw(st.pid), None).unwrap();
    assert!(
        matches!(
            ws,
            WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
        ),
        "{ws:?}"
    );
    drop((in_w, out_w, err_w));
    assert_eq!(read_all(out_r), "out-1\n");
    assert_eq!(read_all(err_r), "err\n");
    assert_eq!(rt.state(&id).unwrap().status, Status::Stopped);
    rt.delete(&id, false).unwrap();
    assert!(!root.path().join(&id).exists());
}
