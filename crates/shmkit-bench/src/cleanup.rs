//! Removal of what a run created, also from a Ctrl-C handler: named message queues
//! still registered and the running peer process.
//!
//! Everything else the benchmark uses is anonymous (pipes, socket pairs, a memfd) and
//! goes away with the processes. The peer also asks the kernel to kill it when the
//! leading process dies (`PR_SET_PDEATHSIG`).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

static QUEUES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static PEER: AtomicI32 = AtomicI32::new(0);

fn queues() -> std::sync::MutexGuard<'static, Vec<String>> {
    QUEUES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remembers a message queue to unlink if the run is interrupted.
pub fn register_mq(name: &str) {
    queues().push(name.to_owned());
}

/// Forgets a message queue that was unlinked normally.
pub fn forget_mq(name: &str) {
    queues().retain(|n| n != name);
}

/// Records the running peer's pid (0: none).
pub fn set_peer(pid: u32) {
    PEER.store(pid as i32, Ordering::SeqCst);
}

/// Kills the running peer, if any, and unlinks every registered message queue. Safe to
/// call from a Ctrl-C handler thread (the `ctrlc` crate runs handlers on a thread).
pub fn cleanup() {
    let pid = PEER.swap(0, Ordering::SeqCst);
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let names: Vec<String> = queues().drain(..).collect();
    for n in names {
        crate::transport::mq::unlink(&n);
    }
}
