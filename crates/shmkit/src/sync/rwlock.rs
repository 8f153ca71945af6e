//! [`RwLock`]: many readers or one writer, placed in a region.
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0    4 state  futex word: reader count (bits 0..=29) | WRITER (bit 30)
//!                    | WAITERS (bit 31)
//!      4    4 reserved zero
//! ```
//!
//! [`RwLock::SIZE`] = 8 bytes, aligned to 4.
//!
//! Acquiring is one compare-and-swap; a thread that cannot acquire sets WAITERS and
//! sleeps on the word; the last reader or the writer leaving clears WAITERS and wakes
//! every sleeper, who compete again. Readers are preferred (a steady stream of readers
//! can starve a writer). Unlike [`super::Mutex`], the rwlock is not robust: a holder that
//! dies keeps it held, and others see their timeouts expire. Use the `_timeout` calls
//! when peers may crash.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::region::Region;
use crate::sync::word::{self, Word};

/// Mask of the reader count.
pub const READERS_MASK: u32 = 0x3fff_ffff;
/// A writer holds the lock.
pub const WRITER: u32 = 1 << 30;
/// Someone sleeps on the word.
pub const WAITERS: u32 = 1 << 31;

/// The state machine, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    fn acquire<W: Word>(
        w: &W,
        deadline: Option<Instant>,
        next: impl Fn(u32) -> Option<u32>,
    ) -> bool {
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            if let Some(new) = next(cur) {
                // SYNC: Acquire pairs with the Release in `read_unlock`/`write_unlock`.
                match w.compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(c) => {
                        cur = c;
                        continue;
                    }
                }
            }
            let left = match word::remaining(deadline) {
                Some(l) => l,
                None => return false,
            };
            if cur & WAITERS == 0 {
                if let Err(c) =
                    w.compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                {
                    cur = c;
                    continue;
                }
                cur |= WAITERS;
            }
            w.wait(cur, left);
            cur = w.load(Ordering::Relaxed);
        }
    }

    fn read_next(cur: u32) -> Option<u32> {
        (cur & WRITER == 0 && cur & READERS_MASK < READERS_MASK).then_some(cur + 1)
    }

    fn write_next(cur: u32) -> Option<u32> {
        (cur & (WRITER | READERS_MASK) == 0).then_some(cur | WRITER)
    }

    pub(crate) fn read_lock<W: Word>(w: &W, deadline: Option<Instant>) -> bool {
        acquire(w, deadline, read_next)
    }

    pub(crate) fn write_lock<W: Word>(w: &W, deadline: Option<Instant>) -> bool {
        acquire(w, deadline, write_next)
    }

    pub(crate) fn try_read<W: Word>(w: &W) -> bool {
        let cur = w.load(Ordering::Relaxed);
        // SYNC: Acquire pairs with the Release in the unlocks.
        read_next(cur).is_some_and(|n| {
            w.compare_exchange(cur, n, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    pub(crate) fn try_write<W: Word>(w: &W) -> bool {
        let cur = w.load(Ordering::Relaxed);
        // SYNC: Acquire pairs with the Release in the unlocks.
        write_next(cur).is_some_and(|n| {
            w.compare_exchange(cur, n, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn wake_if_last<W: Word>(w: &W, old: u32, left: u32) {
        if left == 0 && old & WAITERS != 0 {
            w.fetch_and(!WAITERS, Ordering::Relaxed);
            w.wake(u32::MAX >> 1);
        }
    }

    pub(crate) fn read_unlock<W: Word>(w: &W) {
        // SYNC: Release pairs with the Acquire CAS of the next writer.
        let old = w.fetch_sub(1, Ordering::Release);
        wake_if_last(w, old, (old & READERS_MASK).saturating_sub(1));
    }

    pub(crate) fn write_unlock<W: Word>(w: &W) {
        // SYNC: Release pairs with the Acquire CAS of the next reader or writer.
        let old = w.fetch_and(!WRITER, Ordering::Release);
        wake_if_last(w, old, 0);
    }
}

/// A reader-writer lock inside a shared region (see the [module docs](self)). It guards
/// no data of its own: it orders access to whatever bytes the users agree on.
pub struct RwLock<'r> {
    state: &'r AtomicU32,
    name: String,
}

impl fmt::Debug for RwLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("object", &self.name)
            .field(
                "state",
                &format_args!("{:#x}", self.state.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

/// A held read lock; released on drop.
#[derive(Debug)]
pub struct ReadGuard<'a, 'r>(&'a RwLock<'r>);
/// A held write lock; released on drop.
#[derive(Debug)]
pub struct WriteGuard<'a, 'r>(&'a RwLock<'r>);

impl Drop for ReadGuard<'_, '_> {
    fn drop(&mut self) {
        raw::read_unlock(self.0.state);
    }
}
impl Drop for WriteGuard<'_, '_> {
    fn drop(&mut self) {
        raw::write_unlock(self.0.state);
    }
}

impl<'r> RwLock<'r> {
    /// Bytes the lock occupies.
    pub const SIZE: usize = 8;
    /// Alignment the offset must have.
    pub const ALIGN: usize = 4;

    /// Lays out a free lock at `offset`, before anyone uses it.
    pub fn init(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        let l = Self::attach(region, offset)?;
        l.state.store(0, Ordering::Relaxed);
        region.atomic_u32(offset + 4)?.store(0, Ordering::Relaxed);
        Ok(l)
    }

    /// A handle on a lock laid out by [`RwLock::init`].
    pub fn attach(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        super::check_place(region, "rwlock", offset, Self::SIZE, Self::ALIGN)?;
        Ok(RwLock {
            state: region.atomic_u32(offset)?,
            name: region.object_name(),
        })
    }

    /// Shared access, waiting as long as it takes.
    pub fn read(&self) -> ReadGuard<'_, 'r> {
        raw::read_lock(self.state, None);
        ReadGuard(self)
    }

    /// Shared access, waiting at most `timeout`.
    pub fn read_timeout(&self, timeout: Duration) -> Option<ReadGuard<'_, 'r>> {
        raw::read_lock(self.state, word::deadline(Some(timeout))).then(|| ReadGuard(self))
    }

    /// Shared access if available at once.
    pub fn try_read(&self) -> Option<ReadGuard<'_, 'r>> {
        raw::try_read(self.state).then(|| ReadGuard(self))
    }

    /// Exclusive access, waiting as long as it takes.
    pub fn write(&self) -> WriteGuard<'_, 'r> {
        raw::write_lock(self.state, None);
        WriteGuard(self)
    }

    /// Exclusive access, waiting at most `timeout`.
    pub fn write_timeout(&self, timeout: Duration) -> Option<WriteGuard<'_, 'r>> {
        raw::write_lock(self.state, word::deadline(Some(timeout))).then(|| WriteGuard(self))
    }

    /// Exclusive access if available at once.
    pub fn try_write(&self) -> Option<WriteGuard<'_, 'r>> {
        raw::try_write(self.state).then(|| WriteGuard(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn readers_share_writers_exclude() {
        let r = Heap::new(8);
        let l = RwLock::init(&r, 0).unwrap();
        let a = l.read();
        let b = l.try_read().unwrap();
        assert!(l.try_write().is_none());
        assert!(l.write_timeout(Duration::from_millis(10)).is_none());
        drop((a, b));
        let w = l.write();
        assert!(l.try_read().is_none());
        std::thread::scope(|s| {
            let h = s.spawn(|| l.read_timeout(Duration::from_secs(2)).is_some());
            drop(w);
            assert!(h.join().unwrap());
        });
        assert!(l.try_write().is_some());
        assert_eq!(l.state.load(Ordering::Relaxed) & !WAITERS, 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::raw;
    use crate::sync::word::{LoomWord, Word};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    #[test]
    fn loom_rwlock_writer_excludes_reader() {
        loom::model(|| {
            let w = Arc::new(LoomWord::new(0));
            let data = Arc::new(AtomicUsize::new(0));
            let (w2, d2) = (w.clone(), data.clone());
            let writer = loom::thread::spawn(move || {
                raw::write_lock(&*w2, None);
                d2.store(1, Ordering::Relaxed);
                d2.store(2, Ordering::Relaxed);
                raw::write_unlock(&*w2);
            });
            raw::read_lock(&*w, None);
            let seen = data.load(Ordering::Relaxed);
            assert!(seen == 0 || seen == 2, "reader saw a half-done write");
            raw::read_unlock(&*w);
            writer.join().unwrap();
            assert_eq!(w.load(Ordering::Relaxed) & !super::WAITERS, 0);
        });
    }
}
