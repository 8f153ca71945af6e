//! Running one transport once: set it up, start the peer process with the plan, lead
//! the measurements, and collect the peer's exit status, all within a deadline.
//!
//! A watchdog thread waits on the peer's pidfd. When the peer exits it marks the run
//! aborted (spinning waits then stop instead of spinning forever; blocking reads see
//! EOF anyway); when the deadline passes first it kills the peer.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::{fcntl_setfd, FdFlags};

use crate::harness::{self, Measured, Plan};
use crate::{cleanup, transport, BenchError, Result};

/// Starts and watches the peer process.
struct Watchdog {
    pid: rustix::process::Pid,
    handle: JoinHandle<std::io::Result<ExitStatus>>,
}

impl Watchdog {
    fn start(mut child: std::process::Child, deadline: Instant) -> Result<Watchdog> {
        let pid = rustix::process::Pid::from_raw(child.id() as i32)
            .ok_or_else(|| BenchError::Peer("peer has no pid".into()))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| BenchError::io("pidfd_open of the peer", e.into()))?;
        cleanup::set_peer(child.id());
        let handle = std::thread::Builder::new()
            .name("bench-watchdog".into())
            .spawn(move || {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let _ = child.kill();
                        break;
                    }
                    let ts = rustix::time::Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: i64::from(left.subsec_nanos()),
                    };
                    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
                    match poll(&mut fds, Some(&ts)) {
                        Ok(n) if n > 0 => break,
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
                transport::set_aborted(true);
                let st = child.wait();
                cleanup::set_peer(0);
                st
            })
            .map_err(|e| BenchError::io("spawning the watchdog thread", e))?;
        Ok(Watchdog { pid, handle })
    }

    /// Kills the peer (it is not reaped before the watchdog's `wait`, so the pid is
    /// still its own).
    fn kill(&self) {
        let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::KILL);
    }

    fn finish(self) -> Result<ExitStatus> {
        match self.handle.join() {
            Ok(r) => r.map_err(|e| BenchError::io("waiting for the peer", e)),
            Err(_) => Err(BenchError::Peer("the watchdog thread panicked".into())),
        }
    }
}

/// Runs `name` once following `plan` (whose `spec` is filled in here).
pub fn run_once(
    name: &str,
    mut plan: Plan,
    peer_command: &[OsString],
    timeout: Duration,
    tick: &mut dyn FnMut(),
) -> Result<Measured> {
    let max = plan
        .round_trip
        .iter()
        .chain(plan.stream.iter())
        .map(|&(s, _)| s)
        .chain([harness::WAKE_SIZE, 8])
        .max()
        .unwrap_or(64);
    transport::set_aborted(false);
    let setup = transport::setup(name, max)?;
    plan.spec = setup.peer;
    plan.parent = std::process::id();
    plan.timeout_ms = timeout.as_millis() as u64;
    let json = serde_json::to_string(&plan)
        .map_err(|e| BenchError::Peer(format!("cannot encode the plan: {e}")))?;
    for fd in &setup.inherit {
        fcntl_setfd(fd.as_fd(), FdFlags::empty())
            .map_err(|e| BenchError::io("clearing FD_CLOEXEC", e.into()))?;
    }
    let (prog, args) = peer_command
        .split_first()
        .ok_or_else(|| BenchError::Usage("empty peer command".into()))?;
    let deadline = Instant::now() + timeout;
    let child = Command::new(prog)
        .args(args)
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BenchError::io(&format!("starting the peer {prog:?}"), e));
    // Our copies of the peer's descriptors must go, so that its death reads as EOF.
    drop(setup.inherit);
    let watchdog = Watchdog::start(child?, deadline)?;
    let mut local = setup.local;
    let result = harness::lead(local.as_mut(), &plan, deadline, tick);
    // Close our end first: a peer still blocked on it sees EOF and exits; one that may
    // be spinning is killed.
    drop(local);
    if result.is_err() {
        watchdog.kill();
    }
    let status = watchdog.finish()?;
    match result {
        Ok(m) if status.success() => Ok(m),
        Ok(_) => Err(BenchError::Peer(format!("the peer failed ({status})"))),
        Err(e) if status.success() => Err(e),
        Err(e) => Err(BenchError::Peer(format!("{e}; the peer: {status}"))),
    }
}
