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

/// A futex word for loom models: an atomic plus a loom mutex and condvar that model the
/// kernel's futex queue (the value check and the sleep are atomic with respect to a
/// wake, as in the kernel). A bounded wait blocks like an unbounded one unless the word
/// was made with [`LoomWord::with_timeouts`], in which case it returns `TimedOut` at once
/// (after a yield), which models a slice that ended with nobody waking it.
#[cfg(all(loom, test))]
#[derive(Debug)]
pub(crate) struct LoomWord {
    value: loom::sync::atomic::AtomicU32,
    queue: loom::sync::Mutex<()>,
    wakeup: loom::sync::Condvar,
    timeouts: bool,
}

#[cfg(all(loom, test))]
impl LoomWord {
    pub(crate) fn new(v: u32) -> Self {
        Self::make(v, false)
    }
    pub(crate) fn with_timeouts(v: u32) -> Self {
        Self::make(v, true)
    }
    fn make(v: u32, timeouts: bool) -> Self {
        LoomWord {
            value: loom::sync::atomic::AtomicU32::new(v),
            queue: loom::sync::Mutex::new(()),
            wakeup: loom::sync::Condvar::new(),
            timeouts,
        }
    }
}

#[cfg(all(loom, test))]
impl Word for LoomWord {
    fn load(&self, order: Ordering) -> u32 {
        self.value.load(order)
    }
    fn store(&self, value: u32, order: Ordering) {
        self.value.store(value, order)
    }
    fn swap(&self, value: u32, order: Ordering) -> u32 {
        self.value.swap(value, order)
    }
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.value.compare_exchange(current, new, success, failure)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_add(value, order)
    }
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_sub(value, order)
    }
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        self.value.fetch_and(value, order)
    }
    fn wait(&self, expected: u32, timeout: Option<Duration>) -> Wait {
        if timeout.is_some() && self.timeouts {
            loom::thread::yield_now();
            return Wait::TimedOut;
        }
        let guard = self.queue.lock().unwrap();
        // SYNC: SeqCst models the kernel's check of the value after the full barrier in
        // futex_wait; it pairs with the waker's SeqCst operations. The queue lock makes
        // the check and the sleep atomic with respect to `wake`.
        if self.value.load(Ordering::SeqCst) != expected {
            return Wait::Changed;
        }
        drop(self.wakeup.wait(guard).unwrap());
        Wait::Woken
    }
    fn wake(&self, _count: u32) {
        let _guard = self.queue.lock().unwrap();
        self.wakeup.notify_all();
    }
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
