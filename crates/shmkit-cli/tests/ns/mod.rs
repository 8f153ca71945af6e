//! Running a test script inside private namespaces (`unshare --ipc --mount`), with a
//! deadline on the child's pidfd. Where unshare is not permitted, callers skip with a
//! printed reason.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The shmkit binary under test.
pub const SHMKIT: &str = env!("CARGO_BIN_EXE_shmkit");

/// Why private namespaces cannot be used here, or `None` when they can.
pub fn unavailable(flags: &[&str]) -> Option<String> {
    let out = Command::new("unshare")
        .args(flags)
        .arg("true")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "unshare {} is not permitted here: {}",
            flags.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare cannot run: {e}")),
    }
}

/// A directory with `ipcs`, `ipcrm` and `ipcmk` symlinks to the shmkit binary.
pub fn tool_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shmkit_test_{}_{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create tool dir");
    for t in ["ipcs", "ipcrm", "ipcmk"] {
        std::os::unix::fs::symlink(SHMKIT, dir.join(t)).expect("symlink");
    }
    dir
}

/// Runs `unshare FLAGS bash SCRIPT ARGS`, killing it after `deadline`.
pub fn run_script(flags: &[&str], script: &str, args: &[&str], deadline: Duration) -> Output {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let mut child = Command::new("unshare")
        .args(flags)
        .arg("bash")
        .arg(script)
        .args(args)
        .env("SHMKIT", SHMKIT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    let fd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");
    // Drain the pipes on threads so a chatty script cannot block on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let end = Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not finish within {deadline:?}");
        }
        let ts = rustix::time::Timespec::try_from(left).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => continue,
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll on pidfd: {e}"),
        }
    }
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout: t1.join().expect("stdout thread"),
        stderr: t2.join().expect("stderr thread"),
    }
}
