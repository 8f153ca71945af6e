//! Futex wait and wake on words in shared memory.
//!
//! Always without `FUTEX_PRIVATE_FLAG`: the waiters live in other processes, and the
//! kernel must key the futex by the physical page, not by this address space.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// How a [`wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Woken by [`wake`], or spuriously: re-check the word.
    Woken,
    /// The word no longer held the expected value when the kernel looked.
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal interrupted the wait: re-check the word.
    Interrupted,
}

/// Sleeps while `word` holds `expected`, at most `timeout` (forever with `None`).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wait {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => Wait::Woken,
        Err(rustix::io::Errno::AGAIN) => Wait::Changed,
        Err(rustix::io::Errno::TIMEDOUT) => Wait::TimedOut,
        Err(rustix::io::Errno::INTR) => Wait::Interrupted,
        // EFAULT/EINVAL cannot happen for a valid &AtomicU32; treat as a spurious wake so
        // callers re-check their condition and deadline.
        Err(_) => Wait::Woken,
    }
}

/// Wakes up to `count` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Wakes every waiter on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}
