//! [`Semaphore`]: a counting semaphore placed in a region.
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0    4 count    futex word: the value, 0..=MAX_VALUE
//!      4    4 waiters  number of threads about to sleep or sleeping on `count`
//! ```
//!
//! [`Semaphore::SIZE`] = 8 bytes, aligned to 4.
//!
//! `wait` decrements `count` with a compare-and-swap when it is positive, and otherwise
//! registers in `waiters` and sleeps on `count` while it is 0. `post` increments `count`
//! and wakes one sleeper only if `waiters` is non-zero, so neither side makes a system
//! call when nobody waits. A waiter killed while registered leaves `waiters` too high,
//! which costs later posts a needless wake-up and nothing else.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::region::Region;
use crate::sync::word::{self, Word};

/// The largest value (as for POSIX semaphores, `SEM_VALUE_MAX`).
pub const MAX_VALUE: u32 = i32::MAX as u32;

/// Offset of the count.
pub const COUNT_OFFSET: usize = 0;
/// Offset of the waiter count.
pub const WAITERS_OFFSET: usize = 4;

/// The state machine, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    pub(crate) fn try_wait<W: Word>(count: &W) -> bool {
        let mut c = count.load(Ordering::Relaxed);
        while c > 0 {
            // SYNC: Acquire pairs with the SeqCst (Release) increment in `post`: what the
            // poster wrote before posting is visible to the waiter that takes the unit.
            match count.compare_exchange(c, c - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    pub(crate) fn wait<W: Word>(count: &W, waiters: &W, deadline: Option<Instant>) -> bool {
        loop {
            if try_wait(count) {
                return true;
            }
            let left = match word::remaining(deadline) {
                Some(l) => l,
                None => return false,
            };
            // SYNC: SeqCst orders this registration before the re-check of `count`,
            // against the SeqCst increment of `count` and load of `waiters` in `post`
            // (a Dekker pair): either the poster sees us, or we see its unit.
            waiters.fetch_add(1, Ordering::SeqCst);
            // SYNC: see above; a read-modify-write reads the latest value, which the
            // Dekker argument needs (a plain load may be stale in the C++ model).
            if count.fetch_add(0, Ordering::SeqCst) == 0 {
                count.wait(0, left);
            }
            waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn post<W: Word>(count: &W, waiters: &W) -> bool {
        let mut c = count.load(Ordering::Relaxed);
        loop {
            if c >= MAX_VALUE {
                return false;
            }
            // SYNC: SeqCst: Release for the Acquire CAS in `try_wait`, and the other
            // half of the Dekker pair with `wait`'s registration.
            match count.compare_exchange(c, c + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        // SYNC: pairs with the SeqCst registration in `wait`.
        if waiters.fetch_add(0, Ordering::SeqCst) > 0 {
            count.wake(1);
        }
        true
    }
}

/// A counting semaphore inside a shared region (see the [module docs](self)).
pub struct Semaphore<'r> {
    count: &'r AtomicU32,
    waiters: &'r AtomicU32,
    name: String,
}

impl fmt::Debug for Semaphore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("object", &self.name)
            .field("value", &self.value())
            .finish()
    }
}

impl<'r> Semaphore<'r> {
    /// Bytes the semaphore occupies.
    pub const SIZE: usize = 8;
    /// Alignment the offset must have.
    pub const ALIGN: usize = 4;

    /// Lays out a semaphore with `value` at `offset`, before anyone uses it.
    pub fn init(region: &'r (dyn Region + Sync), offset: usize, value: u32) -> Result<Self> {
        if value > MAX_VALUE {
            return Err(Error::invalid(
                "semaphore",
                region.object_name(),
                format!("initial value {value} exceeds the maximum {MAX_VALUE}"),
            ));
        }
        let s = Self::attach(region, offset)?;
        s.count.store(value, Ordering::Relaxed);
        s.waiters.store(0, Ordering::Relaxed);
        Ok(s)
    }

    /// A handle on a semaphore laid out by [`Semaphore::init`].
    pub fn attach(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        super::check_place(region, "semaphore", offset, Self::SIZE, Self::ALIGN)?;
        Ok(Semaphore {
            count: region.atomic_u32(offset + COUNT_OFFSET)?,
            waiters: region.atomic_u32(offset + WAITERS_OFFSET)?,
            name: region.object_name(),
        })
    }

    /// Takes one unit, waiting as long as it takes.
    pub fn wait(&self) {
        raw::wait(self.count, self.waiters, None);
    }

    /// Takes one unit, waiting at most `timeout`; false if the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        raw::wait(self.count, self.waiters, word::deadline(Some(timeout)))
    }

    /// Takes one unit if one is there.
    pub fn try_wait(&self) -> bool {
        raw::try_wait(self.count)
    }

    /// Adds one unit and wakes a waiter; fails at [`MAX_VALUE`].
    pub fn post(&self) -> Result<()> {
        if raw::post(self.count, self.waiters) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                "post",
                &self.name,
                format!("the semaphore is at its maximum value {MAX_VALUE}"),
            ))
        }
    }

    /// The current value (a snapshot).
    pub fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn counts_waits_and_times_out() {
        let r = Heap::new(16);
        let s = Semaphore::init(&r, 4, 2).unwrap();
        assert!(s.try_wait());
        assert!(s.try_wait());
        assert!(!s.try_wait());
        let t0 = Instant::now();
        assert!(!s.wait_timeout(Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        std::thread::scope(|sc| {
            sc.spawn(|| s.wait());
            s.post().unwrap();
        });
        assert_eq!(s.value(), 0);
        assert!(Semaphore::init(&r, 0, MAX_VALUE + 1).is_err());
        let s = Semaphore::init(&r, 0, MAX_VALUE).unwrap();
        assert_eq!(s.post().unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(Semaphore::attach(&r, 2).is_err());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::raw;
    use crate::sync::word::LoomWord;
    use loom::sync::Arc;

    #[test]
    fn loom_semaphore_hands_over_units() {
        loom::model(|| {
            let s = Arc::new((LoomWord::new(0), LoomWord::new(0)));
            let s2 = s.clone();
            let poster = loom::thread::spawn(move || assert!(raw::post(&s2.0, &s2.1)));
            assert!(raw::wait(&s.0, &s.1, None));
            poster.join().unwrap();
            assert!(!raw::try_wait(&s.0));
        });
    }
}
