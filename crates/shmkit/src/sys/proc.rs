//! Who is running: the calling thread's id and start time (cached, so that an
//! uncontended lock makes no system call), and whether another thread or process is
//! still alive, read from `/proc/<id>/stat`.
//!
//! A thread id is reused once its thread is gone; the start time (field 22 of
//! `/proc/<id>/stat`, clock ticks since boot) tells a new thread with an old id apart.
//! A zombie (exited, not yet reaped) counts as dead.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Bumped in the child after every `fork`, so that cached thread ids are recomputed.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Async-signal-safe: a single atomic add.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread as other processes can check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId {
    /// The kernel thread id (gettid); the process id for a main thread.
    pub tid: u32,
    /// Start time in clock ticks since boot; 0 if unknown.
    pub start: u64,
}

thread_local! {
    static CURRENT: Cell<Option<(u64, ThreadId)>> = const { Cell::new(None) };
}

/// The calling thread's id and start time. The first call in a thread reads /proc;
/// later calls are a thread-local read (recomputed after `fork`).
pub fn current_thread() -> ThreadId {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only does an atomic add, which is
        // async-signal-safe as required in a child after fork. The return value only
        // reports ENOMEM; without the handler a forked child would reuse its parent's
        // cached id, so we fall back to never caching in that case.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        if rc != 0 {
            FORK_GENERATION.store(u64::MAX, Ordering::Relaxed);
        }
    });
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    if generation != u64::MAX {
        if let Some((g, id)) = CURRENT.with(Cell::get) {
            if g == generation {
                return id;
            }
        }
    }
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let start = stat_of(tid).map(|s| s.start).unwrap_or(0);
    let id = ThreadId { tid, start };
    CURRENT.with(|c| c.set(Some((generation, id))));
    id
}

/// Whether /proc is mounted and shows this process (checked once).
pub fn proc_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| stat_of(std::process::id()).is_some())
}

/// What `/proc/<id>/stat` says about a thread or process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The state letter (R, S, D, Z, X, …).
    pub state: u8,
    /// Start time in clock ticks since boot.
    pub start: u64,
}

/// Reads `/proc/<id>/stat`; `None` if there is no such thread or process.
pub fn stat_of(id: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{id}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) may contain spaces and parentheses: split after the
    // last ')'. Then field 3 is the state and field 22 the start time.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start })
}

/// Whether thread (or process) `id` runs, and is the one whose start time has the low
/// 32 bits `start_low` (`None`: unknown, any start time matches). Zombies and dead tasks
/// count as gone. Only a missing `/proc/<id>` means gone: any other failure to read it
/// (permissions), or no /proc at all, counts as alive, so that a lock is never taken
/// from a live owner. (`hidepid` mounts and separate PID namespaces hide live tasks:
/// processes sharing a robust lock must see each other in /proc.)
pub fn is_alive(id: u32, start_low: Option<u32>) -> bool {
    if id == 0 {
        return false;
    }
    if !proc_available() {
        // Without /proc nothing can be known: never declare an owner dead.
        return true;
    }
    let text = match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Ok(t) => t,
        Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
    };
    match parse_stat(&text) {
        None => true,
        Some(s) if s.state == b'Z' || s.state == b'X' || s.state == b'x' => false,
        Some(s) => start_low.is_none_or(|low| s.start as u32 == low),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_thread_is_alive_and_cached() {
        let me = current_thread();
        assert!(me.tid > 0);
        assert!(me.start > 0);
        assert_eq!(current_thread(), me);
        assert!(is_alive(me.tid, Some(me.start as u32)));
        assert!(is_alive(me.tid, None));
        assert!(!is_alive(me.tid, Some(me.start as u32 + 1)));
        let other = std::thread::spawn(current_thread).join().unwrap();
        assert_ne!(other.tid, me.tid);
        // The thread has exited: its id is gone (or, rarely, reused with another start).
        assert!(!is_alive(other.tid, Some(other.start as u32)));
        assert!(!is_alive(0, None));
    }
}
