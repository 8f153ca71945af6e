//! The `shmkit` binary's `sem` and `lock` subcommands across processes: System V sets
//! and POSIX named semaphores posted by one shmkit process and waited for by another,
//! and `shmkit lock` whose holder is killed with SIGKILL.
//!
//! Every object is named `shmkit_test_<pid>_<n>_<tag>` (System V keys in 0x5348xxxx)
//! and removed by a guard, also when a test panics.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::posix::sem::NamedSemaphore;
use shmkit::sysv::sem::SemSet;

const SHMKIT: &str = env!("CARGO_BIN_EXE_shmkit");
const DEADLINE: Duration = Duration::from_secs(60);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmkit_test_{}_{n}_{tag}", std::process::id())
}

fn unique_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low = (std::process::id()
        .wrapping_mul(131)
        .wrapping_add(n.wrapping_mul(7919) + 17))
        & 0xffff;
    (0x5348_0000u32 | low) as i32
}

/// Removes a System V set by key on drop (only ours: keys in the test range).
struct KeyGuard(i32);
impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Ok(s) = SemSet::get(self.0, 0, shmkit::sysv::sem::Create::Open, 0) {
            let _ = s.remove();
        }
    }
}

/// Removes a POSIX object or named semaphore on drop.
struct PathGuard(String);
impl Drop for PathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn finish(mut child: Child, what: &str) -> Output {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    if child.try_wait().unwrap().is_some() {
        return child.wait_with_output().unwrap();
    }
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    let fd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec::try_from(left).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "{what} did not finish within {DEADLINE:?}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(_) => return child.wait_with_output().expect("output"),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

fn shmkit(args: &[&str]) -> Output {
    let child = Command::new(SHMKIT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmkit");
    finish(child, &format!("shmkit {args:?}"))
}

fn ok(args: &[&str]) -> String {
    let out = shmkit(args);
    assert!(
        out.status.success(),
        "shmkit {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], code: i32) -> String {
    let out = shmkit(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "shmkit {args:?}: stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn sysv_semaphore_across_processes() {
    let key = unique_key();
    let _g = KeyGuard(key);
    let obj = format!("key:{:#010x}", key as u32);
    let id = ok(&["sem", "create", &obj, "--count", "2", "--mode", "640"]);
    assert!(id.trim().parse::<i32>().is_ok(), "{id}");
    // Another shmkit process blocks until this one posts.
    let waiter = Command::new(SHMKIT)
        .args(["sem", "wait", &obj, "--num", "1", "--timeout", "50s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ok(&["sem", "post", &obj, "--num", "1", "--count", "1"]);
    let out = finish(waiter, "sem wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(&["sem", "get", &obj, "--num", "1"]).trim(), "0");
    ok(&["sem", "set", &obj, "3", "4"]);
    assert_eq!(ok(&["sem", "get", &obj, "--all"]), "3\n4\n");
    let info = ok(&["sem", "info", &obj]);
    assert!(info.contains("semaphores: 2"), "{info}");
    assert!(info.contains("[1] value 4"), "{info}");
    assert!(info.contains("mode 0640"), "{info}");
    let id_obj = format!("id:{}", id.trim());
    assert_eq!(ok(&["sem", "get", &id_obj, "--num", "0"]).trim(), "3");

    // Timeouts and bad input.
    ok(&["sem", "set", &obj, "0", "--num", "1"]);
    let t0 = Instant::now();
    let err = fails(
        &["sem", "wait", &obj, "--num", "1", "--timeout", "200ms"],
        1,
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(
        err.starts_with(&format!("shmkit: sem: {obj}: semtimedop failed")),
        "{err}"
    );
    assert!(
        err.contains("not possible within 200ms"),
        "no Rust debug text: {err}"
    );
    // A count of 0 would be semop's "wait for zero": post blocked for ever on a set
    // whose value is not 0. It is a usage error, and nothing changes.
    ok(&["sem", "set", &obj, "1", "--num", "0"]);
    let err = fails(&["sem", "post", &obj, "--count", "0"], 2);
    assert!(err.contains("--count"), "{err}");
    let err = fails(&["sem", "wait", &obj, "--count", "0", "--timeout", "1s"], 2);
    assert!(err.contains("--count"), "{err}");
    assert_eq!(ok(&["sem", "get", &obj, "--num", "0"]).trim(), "1");
    let err = fails(&["sem", "wait", &obj, "--num", "1", "--timeout", "0"], 1);
    assert!(err.contains("semop failed"), "{err}");
    let err = fails(&["sem", "set", &obj, "40000"], 2);
    assert!(err.contains("32767"), "{err}");
    let err = fails(&["sem", "set", &obj, "1", "2", "3"], 1);
    assert!(err.contains("needs 2 values"), "{err}");
    let err = fails(&["sem", "get", &obj, "--num", "9"], 1);
    assert!(err.contains(&obj), "{err}");
    fails(&["sem", "get", "key:nonsense"], 2);

    ok(&["sem", "rm", &obj]);
    let err = fails(&["sem", "get", &obj], 1);
    assert!(err.contains("semget failed: No such file"), "{err}");
}

#[test]
fn private_set_by_id() {
    let id = ok(&["sem", "create", "private", "--count", "3", "--value", "2"]);
    let id: i32 = id.trim().parse().unwrap();
    let obj = format!("id:{id}");
    struct IdGuard(i32);
    impl Drop for IdGuard {
        fn drop(&mut self) {
            if let Ok(s) = SemSet::from_id(self.0) {
                let _ = s.remove();
            }
        }
    }
    let _g = IdGuard(id);
    assert_eq!(ok(&["sem", "get", &obj, "--all"]), "2\n2\n2\n");
    let info = ok(&["sem", "info", &obj]);
    assert!(info.contains("key 0x00000000"), "{info}");
    ok(&["sem", "rm", &obj]);
    let err = fails(&["sem", "info", &obj], 1);
    assert!(err.contains(&obj), "{err}");
}

#[test]
fn posix_semaphore_across_processes() {
    let name = unique("sem");
    let _g = PathGuard(format!("/dev/shm/sem.{name}"));
    let obj = format!("/{name}");
    ok(&["sem", "create", &obj, "--value", "1", "--exclusive"]);
    fails(&["sem", "create", &obj, "--exclusive"], 1);
    let waiter = Command::new(SHMKIT)
        .args(["sem", "wait", &obj, "--count", "2", "--timeout", "50s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ok(&["sem", "post", &obj]);
    let out = finish(waiter, "sem wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(&["sem", "get", &obj]).trim(), "0");
    let info = ok(&["sem", "info", &obj]);
    assert!(info.contains("value: 0"), "{info}");
    let t0 = Instant::now();
    let err = fails(&["sem", "wait", &obj, "--timeout", "150ms"], 1);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert!(
        err.contains("timed out") || err.contains("stayed 0"),
        "{err}"
    );
    fails(&["sem", "set", &obj, "1"], 2);
    let s = NamedSemaphore::open(&name).unwrap();
    ok(&["sem", "post", &obj, "--count", "3"]);
    assert_eq!(s.value().unwrap(), 3);
    ok(&["sem", "rm", &obj]);
    let err = fails(&["sem", "get", &obj], 1);
    assert!(
        err.starts_with(&format!("shmkit: sem: {obj}: sem_open failed")),
        "{err}"
    );
}

#[test]
fn lock_passes_exit_codes_and_survives_a_killed_holder() {
    let name = unique("lock");
    let _g = PathGuard(format!("/dev/shm/{name}"));
    let obj = format!("/{name}");
    assert_eq!(
        shmkit(&["lock", &obj, "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    ok(&["lock", &obj, "--", "true"]);

    // A holder that says when it holds the lock, then waits for its stdin.
    let mut holder = Command::new(SHMKIT)
        .args(["lock", &obj, "--", "sh", "-c", "echo held; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "held");

    // While it holds the lock, another one times out.
    let t0 = Instant::now();
    let err = fails(&["lock", &obj, "--timeout", "200ms", "--", "true"], 1);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(err.contains("timed out"), "{err}");

    // SIGKILL the holder (the shmkit process); its `cat` ends when stdin closes.
    holder.kill().unwrap();
    drop(holder.stdin.take());
    finish(holder, "killed holder");
    let t0 = Instant::now();
    let out = shmkit(&["lock", &obj, "--timeout", "30s", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("previous holder"), "{err}");
    assert!(err.contains("died"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // Recovered: the next one runs cleanly, without a message.
    let out = shmkit(&["lock", &obj, "--", "true"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM to the holder is passed to its command; the lock is released cleanly.
    let mut holder = Command::new(SHMKIT)
        .args(["lock", &obj, "--", "sh", "-c", "echo held; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "held");
    let pid = rustix::process::Pid::from_raw(holder.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let _stdin = holder.stdin.take();
    let out = finish(holder, "terminated holder");
    assert_eq!(out.status.code(), Some(128 + 15));
    let out = shmkit(&["lock", &obj, "--timeout", "30s", "--", "true"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Objects that are not lock objects are refused with a reason.
    let other = unique("notalock");
    let _g2 = PathGuard(format!("/dev/shm/{other}"));
    std::fs::write(format!("/dev/shm/{other}"), vec![0u8; 4096]).unwrap();
    let err = fails(&["lock", &format!("/{other}"), "--", "true"], 1);
    assert!(err.contains("not a shmkit lock"), "{err}");
    std::fs::write(format!("/dev/shm/{other}"), b"tiny").unwrap();
    let err = fails(&["lock", &format!("/{other}"), "--", "true"], 1);
    assert!(err.contains("too small"), "{err}");

    fails(&["lock", "key:5", "--", "true"], 2);
    fails(&["lock", &obj, "--timeout", "soon", "--", "true"], 2);
    let err = fails(&["lock", &obj, "--", "/nonexistent/program"], 1);
    assert!(err.contains("cannot run it"), "{err}");
}

#[test]
fn sigterm_as_the_command_starts_is_passed_on() {
    // The command signals `shmkit lock` at once, often before shmkit has stored its
    // pid: such a signal used to be lost, and shmkit waited for ever on a command that
    // waits for its stdin. Now each run ends with the command's SIGTERM.
    let name = unique("lock_term");
    let _g = PathGuard(format!("/dev/shm/{name}"));
    let obj = format!("/{name}");
    for round in 0..20 {
        let holder = Command::new(SHMKIT)
            .args(["lock", &obj, "--", "sh", "-c", "kill -TERM $PPID; exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // stdin stays open (the Child owns it) until shmkit has exited or timed out.
        let out = finish(holder, "lock whose command sends SIGTERM");
        assert_eq!(
            out.status.code(),
            Some(128 + 15),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
