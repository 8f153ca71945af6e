//! Removal of what a run created, also from a Ctrl-C handler: named message queues,
//! shared-memory objects and System V semaphore sets still registered, and the running
//! peer process.
//!
//! Everything else the benchmark uses is anonymous (pipes, socket pairs, a memfd) and
//! goes away with the processes. The peer also asks the kernel to kill it when the
//! leading process dies (`PR_SET_PDEATHSIG`).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// A named object the run created.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// A POSIX message queue.
    Mq(String),
    /// A POSIX shared-memory object.
    Shm(String),
    /// A System V semaphore set, by id.
    SysvSem(i32),
}

static OBJECTS: Mutex<Vec<Named>> = Mutex::new(Vec::new());
static PEER: AtomicI32 = AtomicI32::new(0);

fn objects() -> std::sync::MutexGuard<'static, Vec<Named>> {
    OBJECTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remembers a message queue to unlink if the run is interrupted.
pub fn register_mq(name: &str) {
    objects().push(Named::Mq(name.to_owned()));
}

/// Forgets a message queue that was unlinked normally.
pub fn forget_mq(name: &str) {
    objects().retain(|n| *n != Named::Mq(name.to_owned()));
}

/// Remembers a POSIX shared-memory object to unlink if the run is interrupted.
pub fn register_shm(name: &str) {
    objects().push(Named::Shm(name.to_owned()));
}

/// Forgets a shared-memory object that was unlinked normally.
pub fn forget_shm(name: &str) {
    objects().retain(|n| *n != Named::Shm(name.to_owned()));
}

/// Remembers a System V semaphore set to remove if the run is interrupted.
pub fn register_sysv_sem(id: i32) {
    objects().push(Named::SysvSem(id));
}

/// Forgets a System V semaphore set that was removed normally.
pub fn forget_sysv_sem(id: i32) {
    objects().retain(|n| *n != Named::SysvSem(id));
}

/// Records the running peer's pid (0: none).
pub fn set_peer(pid: u32) {
    // SYNC: pairs with the swap in `cleanup`, which may run on the Ctrl-C thread; no
    // other memory hangs on it, SeqCst only keeps the reasoning simple.
    PEER.store(pid as i32, Ordering::SeqCst);
}

/// Kills the running peer, if any, and unlinks every registered object. Safe to call
/// from a Ctrl-C handler thread (the `ctrlc` crate runs handlers on a thread).
pub fn cleanup() {
    // SYNC: pairs with the store in `set_peer`.
    let pid = PEER.swap(0, Ordering::SeqCst);
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let names: Vec<Named> = objects().drain(..).collect();
    for n in names {
        match n {
            Named::Mq(name) => crate::transport::mq::unlink(&name),
            Named::SysvSem(id) => {
                if let Ok(set) = shmkit::sysv::sem::SemSet::from_id(id) {
                    let _ = set.remove();
                }
            }
            Named::Shm(name) => {
                if let Ok(n) = shmkit::posix::ShmName::new(&name) {
                    let _ = shmkit::posix::PosixShm::unlink(&n);
                }
            }
        }
    }
}
