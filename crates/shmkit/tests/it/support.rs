//! Shared test support: unique names for the objects a test creates, re-running this
//! binary as a child process, forked children (guards that kill and reap them, a
//! "ready" pipe), compiling C peers, and waiting with a deadline.
//!
//! Every object a test creates is named `shmkit_test_<pid>_<n>_<tag>` (POSIX) or has a
//! key in the test range `0x5348xxxx` (System V; IPC_PRIVATE objects are removed by a
//! guard). CI fails if any such object outlives the test run.
#![allow(dead_code)]

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The environment variable that tells an ignored child test it was started by a parent.
pub const CHILD_ENV: &str = "SHMKIT_TEST_CHILD";

/// A name no other test or program uses: `shmkit_test_<pid>_<n>_<tag>`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmkit_test_{}_{}_{}", std::process::id(), n, tag)
}

/// A System V key in the test range `0x5348_0000..=0x5348_ffff`, unique within this
/// process and unlikely to collide across concurrent test processes.
pub fn unique_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low = (std::process::id()
        .wrapping_mul(131)
        .wrapping_add(n.wrapping_mul(7919)))
        & 0xffff;
    (0x5348_0000u32 | low) as i32
}

/// Whether this process is a child started by [`run_child`]; ignored child tests return
/// at once when it is not.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Re-runs this test binary to execute exactly the ignored test `name` (its full path,
/// such as `sysv::child_writer`), with `env` set, and returns the spawned child.
pub fn spawn_child(name: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child test")
}

/// Runs a child test to completion within `deadline` and returns its output; a hang
/// becomes a panic naming the child.
pub fn run_child(name: &str, env: &[(&str, &str)], deadline: Duration) -> Output {
    let child = spawn_child(name, env);
    wait_output(child, deadline, name)
}

/// Waits for `child` with a deadline; kills it and panics on time-out.
pub fn wait_output(mut child: Child, deadline: Duration, what: &str) -> Output {
    match wait_timeout(&mut child, deadline) {
        Some(_) => child.wait_with_output().expect("collect child output"),
        None => {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect child output");
            panic!(
                "{what} did not finish within {deadline:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Waits for a child to exit, up to `deadline`, on its pidfd (no polling loop).
pub fn wait_timeout(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    if let Some(st) = child.try_wait().expect("try_wait") {
        return Some(st);
    }
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    let fd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");
    let end = std::time::Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let ts = rustix::time::Timespec::try_from(left).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return child.try_wait().expect("try_wait"),
            Ok(_) => return Some(child.wait().expect("wait")),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll on pidfd: {e}"),
        }
    }
}

/// The process-wide fork lock: a forked child inherits every System V attachment and
/// every mapping of this process until it exits, which raises `nattch` (and adds a user
/// to `/proc/PID/maps` listings) of the objects that other tests of this binary hold.
/// Every test that forks does so through [`fork`], which needs this lock held; every
/// test that checks an attach count or a list of users holds it while it checks. Forked
/// children are reaped before the lock is released, so under the lock no inherited
/// attachment of another test exists.
static FORK_LOCK: Mutex<()> = Mutex::new(());

/// Proof that this thread holds the process-wide fork lock (see [`fork_lock`]).
pub struct ForkLock(#[allow(dead_code)] MutexGuard<'static, ()>);

/// Takes the process-wide fork lock for the rest of the test: no other test of this
/// binary forks until the returned guard is dropped. A test that panicked while holding
/// it does not poison it for the others.
pub fn fork_lock() -> ForkLock {
    ForkLock(FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner()))
}

/// `fork(2)` under the fork lock: returns 0 in the child and the child's pid in the
/// parent, which must reap it (with [`wait_forked`]) before it drops `_lock`.
///
/// # Safety
///
/// The child of a multi-threaded process may only do async-signal-safe work (raw memory
/// access, system calls) and must leave with `_exit`.
pub unsafe fn fork(_lock: &ForkLock) -> libc::pid_t {
    // SAFETY: the caller keeps the child to async-signal-safe work (contract above).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    pid
}

/// Forks under the fork lock; the child runs `child` (async-signal-safe work only: raw
/// memory access and system calls) and `_exit`s with its return value. Returns the raw
/// wait status, waited for with [`wait_forked`].
pub fn fork_child(lock: &ForkLock, child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child`, which the callers keep to raw memory access and
    // async-signal-safe system calls, then _exit without running destructors or atexit.
    let pid = unsafe { fork(lock) };
    if pid == 0 {
        let code = child();
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) };
    }
    wait_forked(pid, Duration::from_secs(20))
}

/// The raw wait status of the forked child `pid`, waited for on its pidfd within
/// `deadline`; a child still running then is killed, reaped, and the test fails.
pub fn wait_forked(pid: libc::pid_t, deadline: Duration) -> i32 {
    if !exits_within(pid, deadline) {
        kill_and_reap(pid);
        panic!("forked child {pid} did not finish within {deadline:?}");
    }
    let mut status = 0;
    // SAFETY: pid is our exited child (its pidfd is readable); status is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    status
}

/// Whether our unreaped child `pid` exits within `deadline`, waited for on its pidfd
/// (no polling loop). It is not reaped.
fn exits_within(pid: libc::pid_t, deadline: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let fd = pidfd_open(Pid::from_raw(pid).expect("pid"), PidfdFlags::empty()).expect("pidfd_open");
    let end = Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec::try_from(left).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll on pidfd: {e}"),
        }
    }
}

/// Sends SIGKILL to our unreaped child `pid` (a no-op on a zombie) and reaps it: its
/// wait status, or `None` if `waitpid` failed.
fn kill_and_reap(pid: libc::pid_t) -> Option<i32> {
    // SAFETY: `pid` is our own child, not yet reaped (a zombie at worst), so the signal
    // reaches no other process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: reaping our own child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    (r == pid).then_some(status)
}

/// Forks under the fork lock a child that runs `f` and `_exit`s with its result (101 if
/// `f` panicked), and returns at once with a guard that kills and reaps the child on
/// drop. Unlike [`fork_child`], the parent goes on while the child runs: for crash
/// tests that kill it at a random point, or for several children at a time. The caller
/// holds `lock` until every child is reaped (the guards are dropped or consumed).
///
/// `f` is the body of a forked child of a multi-threaded process: it must keep to
/// system calls, raw memory access and glibc's fork-safe allocator (opening a channel
/// and sending, receiving or calling on it is fine), and should not panic.
pub fn fork_guarded(lock: &ForkLock, f: impl FnOnce() -> i32) -> Forked {
    // Initialise process-wide lazy state in the parent, so that the child never waits
    // on a one-time initialisation another thread was in the middle of at the fork.
    shmkit::sys::proc::proc_available();
    // SAFETY: the child only runs `f`, which the callers keep to system calls, raw
    // memory access and glibc's fork-safe allocator (contract above), then `_exit`s
    // without running any destructor or test-harness code.
    let pid = unsafe { fork(lock) };
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: _exit ends the forked child at once, as a forked child must.
        unsafe { libc::_exit(code) };
    }
    Forked(pid)
}

/// A child forked by [`fork_guarded`], killed with SIGKILL and reaped on drop (also
/// when the test panics), so that no child outlives a failed test.
pub struct Forked(libc::pid_t);

impl Forked {
    /// The child's pid (for comparing with a `PeerDied` pid, or for signalling it; the
    /// guard still reaps it).
    pub fn pid(&self) -> libc::pid_t {
        self.0
    }

    /// Kills (if still running) and reaps the child now; returns its raw wait status.
    pub fn kill(mut self) -> i32 {
        let pid = std::mem::replace(&mut self.0, 0);
        kill_and_reap(pid)
            .unwrap_or_else(|| panic!("waitpid({pid}): {}", std::io::Error::last_os_error()))
    }

    /// Waits up to `deadline` for the child to exit and reaps it: its exit code, or
    /// `None` if a signal ended it or it was still running at the deadline (it is then
    /// killed and reaped).
    pub fn join(mut self, deadline: Duration) -> Option<i32> {
        let pid = std::mem::replace(&mut self.0, 0);
        if !exits_within(pid, deadline) {
            kill_and_reap(pid);
            return None;
        }
        let mut status = 0;
        // SAFETY: reaping our own child, which has exited; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            exit_code(status)
        } else {
            None
        }
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        if self.0 > 0 {
            // No panic here: this may run while the test unwinds.
            kill_and_reap(self.0);
        }
    }
}

/// How long [`Ready::wait`] waits for a child's byte.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);

/// A pipe on which forked children say they are ready, one byte each: create it before
/// forking, [`signal`](Ready::signal) in each child, [`wait`](Ready::wait) once per
/// child in the parent.
pub struct Ready {
    read: OwnedFd,
    /// The parent's write end, closed by the first `wait` so that the pipe reads EOF
    /// once every child has ended; the children keep their inherited copies.
    write: RefCell<Option<OwnedFd>>,
}

impl Ready {
    /// A new pipe (close-on-exec, so spawned programs do not inherit it).
    pub fn new() -> Ready {
        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe2");
        Ready {
            read,
            write: RefCell::new(Some(write)),
        }
    }

    /// In a child: one byte to the parent (a single `write`, async-signal-safe).
    pub fn signal(&self) {
        if let Some(w) = self.write.borrow().as_ref() {
            let _ = rustix::io::write(w, b"r");
        }
    }

    /// In the parent, after forking the children: waits up to [`READY_DEADLINE`] for one
    /// child's byte. False if it did not come: every child ended without sending it
    /// (EOF), or the deadline passed.
    pub fn wait(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        self.write.borrow_mut().take();
        let end = Instant::now() + READY_DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let ts = rustix::time::Timespec::try_from(left).expect("timespec");
            let mut fds = [PollFd::new(&self.read, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return false,
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => panic!("poll on the ready pipe: {e}"),
            }
        }
        let mut b = [0u8; 1];
        matches!(rustix::io::read(&self.read, &mut b), Ok(1))
    }
}

/// The exit code in a wait status, if the child exited normally.
pub fn exit_code(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

/// The signal that ended the child, if a signal did.
pub fn term_signal(status: i32) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

/// Whether a wait status says SIGKILL ended the child (not a failed check of its own).
pub fn killed(status: i32) -> bool {
    term_signal(status) == Some(libc::SIGKILL)
}

/// Asserts that a child exited with status 0, showing its output otherwise.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles a C program from `source` with the system's `cc` (cached per test run by
/// name) and returns the executable's path. Extra arguments (`-lrt`, `-pthread`) follow.
pub fn compile_c(name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-peers");
    std::fs::create_dir_all(&dir).expect("create c-peers dir");
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    // Write under a per-call name, then rename, so that concurrent runs (and concurrent
    // tests of this run) never see half a file.
    let call = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_src = dir.join(format!("{name}.{}.{call}.c", std::process::id()));
    std::fs::write(&tmp_src, source).expect("write C source");
    std::fs::rename(&tmp_src, &src).expect("rename C source");
    let tmp_exe = dir.join(format!("{name}.{}.{call}.out", std::process::id()));
    let out = Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-std=gnu11", "-o"])
        .arg(&tmp_exe)
        .arg(&src)
        .args(extra)
        .output()
        .expect("run cc (a C compiler is part of a fresh machine)");
    assert!(
        out.status.success(),
        "cc {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp_exe, &exe).expect("rename C program");
    exe
}

/// A guard that runs a clean-up closure on drop, also when the test panics.
pub struct Cleanup<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Removes `/dev/shm/<name>` on drop if it still exists.
pub struct PosixGuard(pub String);

impl Drop for PosixGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0.trim_start_matches('/')));
    }
}

/// FNV-1a (32 bits), the checksum the channel tests put into their messages.
pub fn checksum(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ x as u32).wrapping_mul(0x0100_0193)
    })
}

/// xorshift64: a small deterministic generator for kill points and lengths.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The count in the environment variable `var` (stress sizes, crash rounds), or
/// `default` when it is unset or not a number.
pub fn env_count<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
