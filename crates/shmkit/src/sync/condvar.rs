//! [`Condvar`]: a condition variable used together with a [`Mutex`].
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0    4 seq       futex word: bumped by every notify
//!      4    4 waiters   threads waiting (a hint: notify skips the wake-up at 0)
//! ```
//!
//! [`Condvar::SIZE`] = 8 bytes, aligned to 4.
//!
//! A waiter reads `seq` while it holds the mutex, registers, unlocks, and sleeps while
//! `seq` is unchanged; a notifier bumps `seq` and wakes. A notify that happens between
//! the unlock and the sleep changes `seq`, so the futex wait returns at once: no wake-up
//! is lost. As with every condition variable, wake-ups can be spurious: re-check the
//! condition in a loop. If the mutex's owner died while the waiter slept, the relock
//! reports [`Locked::OwnerDied`].

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::region::Region;
use crate::sync::mutex::{LockError, Locked, Mutex, MutexGuard};
use crate::sync::word::Word;

/// A condition variable inside a shared region (see the [module docs](self)).
pub struct Condvar<'r> {
    seq: &'r AtomicU32,
    waiters: &'r AtomicU32,
}

impl fmt::Debug for Condvar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("seq", &self.seq.load(Ordering::Relaxed))
            .finish()
    }
}

/// The state machine, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    /// Called with the mutex held: the value to sleep on.
    pub(crate) fn prepare<W: Word>(seq: &W, waiters: &W) -> u32 {
        // SYNC: SeqCst registration pairs with the SeqCst load of `waiters` in
        // `notify`, so a notifier that bumps `seq` after our unlock sees us.
        waiters.fetch_add(1, Ordering::SeqCst);
        seq.load(Ordering::Relaxed)
    }

    /// Called after unlocking: sleep while `seq` is unchanged.
    pub(crate) fn sleep<W: Word>(seq: &W, waiters: &W, seen: u32, timeout: Option<Duration>) {
        seq.wait(seen, timeout);
        waiters.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn notify<W: Word>(seq: &W, waiters: &W, count: u32) {
        // SYNC: SeqCst pairs with the SeqCst registration in `prepare`.
        seq.fetch_add(1, Ordering::SeqCst);
        // SYNC: as above.
        if waiters.fetch_add(0, Ordering::SeqCst) > 0 {
            seq.wake(count);
        }
    }
}

impl<'r> Condvar<'r> {
    /// Bytes the condvar occupies.
    pub const SIZE: usize = 8;
    /// Alignment the offset must have.
    pub const ALIGN: usize = 4;

    /// Lays out a condvar at `offset`, before anyone uses it.
    pub fn init(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        let c = Self::attach(region, offset)?;
        c.seq.store(0, Ordering::Relaxed);
        c.waiters.store(0, Ordering::Relaxed);
        Ok(c)
    }

    /// A handle on a condvar laid out by [`Condvar::init`].
    pub fn attach(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        super::check_place(region, "condvar", offset, Self::SIZE, Self::ALIGN)?;
        Ok(Condvar {
            seq: region.atomic_u32(offset)?,
            waiters: region.atomic_u32(offset + 4)?,
        })
    }

    /// Unlocks `guard`'s mutex, sleeps until notified (or spuriously), and locks again.
    /// The guard must not be inconsistent (see [`MutexGuard::mark_consistent`]);
    /// an inconsistent one makes the mutex not recoverable, as dropping it would.
    pub fn wait<'m, T: bytemuck::Pod>(
        &self,
        guard: MutexGuard<'m, 'r, T>,
    ) -> Result<Locked<MutexGuard<'m, 'r, T>>, LockError> {
        self.wait_inner(guard, None)
    }

    /// Like [`Condvar::wait`], sleeping at most `timeout` (the relock itself waits as
    /// long as it takes). Check your condition afterwards to know whether it was met.
    pub fn wait_timeout<'m, T: bytemuck::Pod>(
        &self,
        guard: MutexGuard<'m, 'r, T>,
        timeout: Duration,
    ) -> Result<Locked<MutexGuard<'m, 'r, T>>, LockError> {
        self.wait_inner(guard, Some(timeout))
    }

    fn wait_inner<'m, T: bytemuck::Pod>(
        &self,
        guard: MutexGuard<'m, 'r, T>,
        timeout: Option<Duration>,
    ) -> Result<Locked<MutexGuard<'m, 'r, T>>, LockError> {
        let mutex: &'m Mutex<'r, T> = guard.mutex_ref();
        let seen = raw::prepare(self.seq, self.waiters);
        drop(guard);
        raw::sleep(self.seq, self.waiters, seen, timeout);
        mutex.lock()
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        raw::notify(self.seq, self.waiters, 1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        raw::notify(self.seq, self.waiters, u32::MAX >> 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn waits_for_a_condition() {
        let r = Heap::new(64);
        let m = Mutex::<u32>::init(&r, 0, 0).unwrap();
        let c = Condvar::init(&r, 32).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut g = m.lock().unwrap().into_guard();
                while g.get().unwrap() == 0 {
                    g = c.wait(g).unwrap().into_guard();
                }
                assert_eq!(g.get().unwrap(), 1);
            });
            m.lock().unwrap().into_guard().set(1).unwrap();
            c.notify_all();
        });
        let g = m.lock().unwrap().into_guard();
        let t0 = std::time::Instant::now();
        let g = c
            .wait_timeout(g, Duration::from_millis(20))
            .unwrap()
            .into_guard();
        assert!(t0.elapsed() >= Duration::from_millis(20));
        drop(g);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::raw;
    use crate::sync::mutex::raw as mraw;
    use crate::sync::word::LoomWord;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;

    #[test]
    fn loom_condvar_no_lost_wakeup() {
        loom::model(|| {
            // (mutex, seq, waiters, flag)
            let s = Arc::new((
                LoomWord::new(0),
                LoomWord::new(0),
                LoomWord::new(0),
                AtomicBool::new(false),
            ));
            let s2 = s.clone();
            let notifier = loom::thread::spawn(move || {
                mraw::lock(&s2.0, 2, None, |_| false).unwrap();
                s2.3.store(true, Ordering::Relaxed);
                mraw::unlock(&s2.0);
                raw::notify(&s2.1, &s2.2, 1);
            });
            mraw::lock(&s.0, 1, None, |_| false).unwrap();
            while !s.3.load(Ordering::Relaxed) {
                let seen = raw::prepare(&s.1, &s.2);
                mraw::unlock(&s.0);
                raw::sleep(&s.1, &s.2, seen, None);
                mraw::lock(&s.0, 1, None, |_| false).unwrap();
            }
            mraw::unlock(&s.0);
            notifier.join().unwrap();
        });
    }
}
