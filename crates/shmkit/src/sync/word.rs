//! The futex word every primitive is built on, as a trait, so that the state machines
//! run on real shared memory (std atomics and shared futexes) and, under `cfg(loom)`, on
//! loom's modelled atomics, where a futex wait becomes a yield (a spurious wake-up, which
//! the protocols must tolerate anyway) and a wake does nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use crate::sys::futex::Wait;

/// A 32-bit atomic word that threads of any process can sleep on.
pub(crate) trait Word {
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, value: u32, order: Ordering);
    fn swap(&self, value: u32, order: Ordering) -> u32;
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
    fn fetch_and(&self, value: u32, order: Ordering) -> u32;
    /// Sleeps while the word holds `expected`, at most `timeout`.
    fn wait(&self, expected: u32, timeout: Option<Duration>) -> Wait;
    /// Wakes up to `count` sleepers.
    fn wake(&self, count: u32);
}

macro_rules! forward_atomics {
    () => {
        fn load(&self, order: Ordering) -> u32 {
            self.load(order)
        }
        fn store(&self, value: u32, order: Ordering) {
            self.store(value, order)
        }
        fn swap(&self, value: u32, order: Ordering) -> u32 {
            self.swap(value, order)
        }
        fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            self.compare_exchange(current, new, success, failure)
        }
        fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            self.fetch_add(value, order)
        }
        fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
            self.fetch_sub(value, order)
        }
        fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
            self.fetch_and(value, order)
        }
    };
}

impl Word for AtomicU32 {
    forward_atomics!();
    fn wait(&self, expected: u32, timeout: Option<Duration>) -> Wait {
        crate::sys::futex::wait(self, expected, timeout)
    }
    fn wake(&self, count: u32) {
        crate::sys::futex::wake(self, count);
    }
}

#[cfg(loom)]
impl Word for loom::sync::atomic::AtomicU32 {
    forward_atomics!();
    fn wait(&self, expected: u32, timeout: Option<Duration>) -> Wait {
        if self.load(Ordering::Relaxed) != expected {
            return Wait::Changed;
        }
        loom::thread::yield_now();
        // A bounded wait "times out" so that callers run their slow-path checks (such
        // as owner liveness); an unbounded one is a spurious wake-up.
        if timeout.is_some() {
            Wait::TimedOut
        } else {
            Wait::Woken
        }
    }
    fn wake(&self, _count: u32) {}
}

/// A deadline from an optional timeout; `None` waits forever.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Time left until `deadline`: `Some(None)` forever, `Some(Some(d))` that much, `None`
/// when the deadline has passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Option<Duration>> {
    match deadline {
        None => Some(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                None
            } else {
                Some(Some(left))
            }
        }
    }
}
