//! What the channel black-box tests share: the binary, channel names of their own that
//! are removed on drop, and running `shmkit` to completion.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The `shmkit` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shmkit");

static N: AtomicU32 = AtomicU32::new(0);

/// A channel name of our own (`/shmkit_test_<pid>_<n>_<tag>`), removed on drop.
pub struct Chan(pub String);

impl Chan {
    pub fn new(tag: &str) -> Chan {
        let n = N.fetch_add(1, Ordering::Relaxed);
        Chan(format!("/shmkit_test_{}_{}_{tag}", std::process::id(), n))
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm{}", self.0));
    }
}

/// Runs `shmkit ARGS` with no input and returns its output.
pub fn shmkit(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shmkit")
}

/// Collects a child's output on a thread, so that its pipes never fill up.
pub struct Collect {
    pid: u32,
    rx: std::sync::mpsc::Receiver<std::io::Result<Output>>,
}

pub fn collect(child: std::process::Child) -> Collect {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Collect { pid, rx }
}

impl Collect {
    /// Waits for the output with a deadline; kills the child on time-out.
    pub fn wait(self, deadline: std::time::Duration) -> Output {
        match self.rx.recv_timeout(deadline) {
            Ok(out) => out.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-9", &self.pid.to_string()])
                    .status();
                panic!(
                    "shmkit (pid {}) did not finish within {deadline:?}",
                    self.pid
                );
            }
        }
    }
}
