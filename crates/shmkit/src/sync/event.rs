//! [`Event`]: a flag that threads wait for, with automatic or manual reset.
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0    4 state    futex word: 0 unset, 1 set
//!      4    4 mode     0 auto reset, 1 manual reset (fixed at init)
//!      8    4 waiters  threads about to sleep or sleeping on `state`
//!     12    4 reserved zero
//! ```
//!
//! [`Event::SIZE`] = 16 bytes, aligned to 4.
//!
//! A manual-reset event stays set until [`Event::reset`], releasing every waiter; an
//! auto-reset event releases one waiter per [`Event::set`] (the waiter clears it with a
//! compare-and-swap). `set` makes a system call only when someone waits.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::region::Region;
use crate::sync::word::{self, Word};

/// Offset of the state word.
pub const STATE_OFFSET: usize = 0;
/// Offset of the mode.
pub const MODE_OFFSET: usize = 4;
/// Offset of the waiter count.
pub const WAITERS_OFFSET: usize = 8;

/// How an event resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// A waiter that sees the event set clears it: one `set` releases one waiter.
    Auto,
    /// The event stays set, releasing every waiter, until `reset`.
    Manual,
}

/// The state machine, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    pub(crate) fn try_wait<W: Word>(state: &W, manual: bool) -> bool {
        if manual {
            // SYNC: Acquire pairs with the SeqCst (Release) store in `set`.
            state.load(Ordering::Acquire) == 1
        } else {
            // SYNC: as above.
            state
                .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }
    }

    pub(crate) fn wait<W: Word>(
        state: &W,
        waiters: &W,
        manual: bool,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if try_wait(state, manual) {
                return true;
            }
            let left = match word::remaining(deadline) {
                Some(l) => l,
                None => return false,
            };
            // SYNC: SeqCst registration, then re-check: the Dekker pair with `set`'s
            // SeqCst store of `state` and load of `waiters`.
            waiters.fetch_add(1, Ordering::SeqCst);
            // SYNC: see above; a read-modify-write reads the latest value.
            if state.fetch_add(0, Ordering::SeqCst) == 0 {
                state.wait(0, left);
            }
            waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn set<W: Word>(state: &W, waiters: &W, manual: bool) {
        // SYNC: Release for the Acquire in `try_wait`; SeqCst for the Dekker pair with
        // `wait`.
        state.swap(1, Ordering::SeqCst);
        // SYNC: pairs with the SeqCst registration in `wait`.
        if waiters.fetch_add(0, Ordering::SeqCst) > 0 {
            state.wake(if manual { u32::MAX >> 1 } else { 1 });
        }
    }

    pub(crate) fn reset<W: Word>(state: &W) {
        state.store(0, Ordering::Relaxed);
    }
}

/// An event inside a shared region (see the [module docs](self)).
pub struct Event<'r> {
    state: &'r AtomicU32,
    waiters: &'r AtomicU32,
    manual: bool,
    name: String,
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("object", &self.name)
            .field("manual", &self.manual)
            .field("set", &self.is_set())
            .finish()
    }
}

impl<'r> Event<'r> {
    /// Bytes the event occupies.
    pub const SIZE: usize = 16;
    /// Alignment the offset must have.
    pub const ALIGN: usize = 4;

    /// Lays out an unset event at `offset`, before anyone uses it.
    pub fn init(region: &'r (dyn Region + Sync), offset: usize, reset: Reset) -> Result<Self> {
        super::check_place(region, "event", offset, Self::SIZE, Self::ALIGN)?;
        let mode = region.atomic_u32(offset + MODE_OFFSET)?;
        mode.store((reset == Reset::Manual) as u32, Ordering::Relaxed);
        region
            .atomic_u32(offset + STATE_OFFSET)?
            .store(0, Ordering::Relaxed);
        region
            .atomic_u32(offset + WAITERS_OFFSET)?
            .store(0, Ordering::Relaxed);
        region.atomic_u32(offset + 12)?.store(0, Ordering::Relaxed);
        Self::attach(region, offset)
    }

    /// A handle on an event laid out by [`Event::init`]; the mode is read (and checked)
    /// once.
    pub fn attach(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        super::check_place(region, "event", offset, Self::SIZE, Self::ALIGN)?;
        let manual = match region
            .atomic_u32(offset + MODE_OFFSET)?
            .load(Ordering::Relaxed)
        {
            0 => false,
            1 => true,
            m => {
                return Err(Error::corrupt(
                    "event",
                    region.object_name(),
                    format!("the mode word holds {m}, not 0 (auto) or 1 (manual)"),
                ))
            }
        };
        Ok(Event {
            state: region.atomic_u32(offset + STATE_OFFSET)?,
            waiters: region.atomic_u32(offset + WAITERS_OFFSET)?,
            manual,
            name: region.object_name(),
        })
    }

    /// Sets the event: wakes every waiter (manual) or one (auto).
    pub fn set(&self) {
        raw::set(self.state, self.waiters, self.manual);
    }

    /// Clears the event.
    pub fn reset(&self) {
        raw::reset(self.state);
    }

    /// Whether the event is set (a snapshot).
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    /// Waits until the event is set (and clears it, for auto reset).
    pub fn wait(&self) {
        raw::wait(self.state, self.waiters, self.manual, None);
    }

    /// Like [`Event::wait`], at most `timeout`; false if the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        raw::wait(
            self.state,
            self.waiters,
            self.manual,
            word::deadline(Some(timeout)),
        )
    }

    /// Takes the event if it is set, without waiting.
    pub fn try_wait(&self) -> bool {
        raw::try_wait(self.state, self.manual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn auto_and_manual_reset() {
        let r = Heap::new(32);
        let auto = Event::init(&r, 0, Reset::Auto).unwrap();
        let manual = Event::init(&r, 16, Reset::Manual).unwrap();
        assert!(!auto.wait_timeout(Duration::from_millis(10)));
        auto.set();
        assert!(auto.try_wait());
        assert!(!auto.try_wait());
        manual.set();
        assert!(manual.try_wait());
        assert!(manual.wait_timeout(Duration::from_millis(1)));
        manual.reset();
        assert!(!manual.try_wait());
        std::thread::scope(|s| {
            let a = s.spawn(|| manual.wait());
            let b = s.spawn(|| manual.wait());
            let c = s.spawn(|| auto.wait());
            manual.set();
            auto.set();
            a.join().unwrap();
            b.join().unwrap();
            c.join().unwrap();
        });
        r.atomic_u32(4).unwrap().store(7, Ordering::Relaxed);
        assert_eq!(
            Event::attach(&r, 0).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::raw;
    use crate::sync::word::LoomWord;
    use loom::sync::Arc;

    #[test]
    fn loom_event_auto_releases_one() {
        loom::model(|| {
            let e = Arc::new((LoomWord::new(0), LoomWord::new(0)));
            let e2 = e.clone();
            let setter = loom::thread::spawn(move || raw::set(&e2.0, &e2.1, false));
            assert!(raw::wait(&e.0, &e.1, false, None));
            setter.join().unwrap();
            assert!(!raw::try_wait(&e.0, false));
        });
    }

    #[test]
    fn loom_event_manual_releases_all() {
        loom::model(|| {
            let e = Arc::new((LoomWord::new(0), LoomWord::new(0)));
            let e2 = e.clone();
            let waiter = loom::thread::spawn(move || raw::wait(&e2.0, &e2.1, true, None));
            raw::set(&e.0, &e.1, true);
            assert!(raw::wait(&e.0, &e.1, true, None));
            assert!(waiter.join().unwrap());
        });
    }
}
