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
