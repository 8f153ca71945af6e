//! [`Mutex`]: a robust futex mutex placed in a region, shared by threads of any process.
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0    4 state      futex word: owner TID (bits 0..=29) | OWNER_DIED (bit 30)
//!                        | WAITERS (bit 31); 0 = free; TID 0x3fffffff = not recoverable
//!      4    4 reserved   zero
//!      8    8 owner_tag  (owner TID << 32) | low 32 bits of the owner's start time
//!                        (clock ticks since boot, /proc/TID/stat field 22); 0 = unknown
//!     16    . data       the protected T (Pod, alignment at most 16)
//! ```
//!
//! [`Mutex::size`] bytes in all (16 + `size_of::<T>()`, rounded up to 8), aligned to
//! [`Mutex::ALIGN`].
//!
//! ## Protocol
//!
//! Locking is one compare-and-swap of `state` from 0 to the caller's TID: no system call
//! when nobody holds the lock. A contender sets WAITERS and sleeps on the futex;
//! unlocking swaps `state` to 0 and wakes one sleeper only if WAITERS was set. A thread
//! that acquires after sleeping sets WAITERS again, so that no sleeper is forgotten.
//!
//! ## Robustness
//!
//! The kernel's robust-futex list is owned by glibc (one per thread, for pthread
//! mutexes), so shmkit detects dead owners itself: a contender sleeps in slices of
//! [`LIVENESS_SLICE`] at most and, after each slice that ends without a wake-up, reads
//! `/proc/TID/stat` of the owner named in `state`. The owner is dead when that task is
//! gone or a zombie, or when its start time differs from `owner_tag` (the TID was reused
//! by a new thread). The contender then takes the lock over with a compare-and-swap that
//! installs its own TID with OWNER_DIED, and gets [`Locked::OwnerDied`]: the lock is held,
//! the data may be half-updated. Calling [`MutexGuard::mark_consistent`] clears
//! OWNER_DIED; dropping the guard without it marks the mutex not recoverable, and every
//! later lock fails with [`LockError::NotRecoverable`]. A holder killed with SIGKILL at
//! any point therefore leaves the next locker with OwnerDied after at most one slice,
//! never a hang. A holder that dies between the CAS and writing `owner_tag` leaves an
//! older tag; it is ignored because its TID differs, and liveness falls back to the
//! existence of the TID.
//!
//! All users must share a PID namespace and see each other in /proc (no `hidepid`):
//! an owner whose `/proc/TID` cannot be found counts as dead. Where /proc is not mounted
//! at all, no owner is ever declared dead (the mutex is then not robust, but still
//! excludes). The remaining blind spot is a TID reused within one slice by a new
//! thread while `owner_tag` still names an older owner; pid_max makes that remote.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::region::{Region, RegionExt};
use crate::sync::word::{self, Wait, Word};
use crate::sys::proc;

/// Mask of the owner's TID in the state word.
pub const TID_MASK: u32 = 0x3fff_ffff;
/// The owner died while holding the lock; set until the data is marked consistent.
pub const OWNER_DIED: u32 = 1 << 30;
/// At least one thread sleeps (or slept) on the futex.
pub const WAITERS: u32 = 1 << 31;
/// The TID value of a mutex whose data was not marked consistent after an owner died.
pub const NOT_RECOVERABLE: u32 = TID_MASK;
/// The longest a contender sleeps before it checks whether the owner is still alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// Offset of the futex word.
pub const STATE_OFFSET: usize = 0;
/// Offset of the owner tag.
pub const OWNER_TAG_OFFSET: usize = 8;
/// Offset of the protected data.
pub const DATA_OFFSET: usize = 16;

/// The fixed part of the layout, for size and offset checks (and C peers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MutexHeader {
    /// The futex word.
    pub state: u32,
    /// Zero.
    pub reserved: u32,
    /// (owner TID << 32) | low bits of its start time.
    pub owner_tag: u64,
}
const _: () = assert!(std::mem::size_of::<MutexHeader>() == DATA_OFFSET);
const _: () = assert!(std::mem::offset_of!(MutexHeader, state) == STATE_OFFSET);
const _: () = assert!(std::mem::offset_of!(MutexHeader, owner_tag) == OWNER_TAG_OFFSET);

/// How a lock was acquired: cleanly, or from an owner that died holding it.
#[derive(Debug)]
#[must_use = "an OwnerDied lock must be inspected and marked consistent"]
pub enum Locked<G> {
    /// The previous holder unlocked normally.
    Clean(G),
    /// The previous holder died while holding the lock: the data may be inconsistent.
    /// Repair it, then call `mark_consistent` on the guard, or the mutex becomes not
    /// recoverable when the guard is dropped.
    OwnerDied(G),
}

impl<G> Locked<G> {
    /// The guard, however it was acquired.
    pub fn into_guard(self) -> G {
        match self {
            Locked::Clean(g) | Locked::OwnerDied(g) => g,
        }
    }

    /// Whether the previous holder died.
    pub fn owner_died(&self) -> bool {
        matches!(self, Locked::OwnerDied(_))
    }
}

/// Why a lock was not acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockError {
    /// `try_lock`: another thread holds it.
    WouldBlock,
    /// The timeout passed.
    TimedOut,
    /// An owner died and its successor did not mark the data consistent.
    NotRecoverable,
    /// The calling thread already holds it.
    WouldDeadlock,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::WouldBlock => "the lock is held by another thread",
            LockError::TimedOut => "timed out waiting for the lock",
            LockError::NotRecoverable => {
                "the lock is not recoverable: a holder died and its data was never marked \
                 consistent"
            }
            LockError::WouldDeadlock => "the calling thread already holds the lock",
        })
    }
}

impl std::error::Error for LockError {}

/// The state machine on the futex word, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    /// How the lock was taken.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Acquired {
        Clean,
        OwnerDied,
    }

    /// One compare-and-swap from free to `me`.
    pub(crate) fn try_lock<W: Word>(w: &W, me: u32) -> Result<Acquired, LockError> {
        // SYNC: Acquire pairs with the Release swap in `unlock` (and the Release stores in
        // `make_not_recoverable`): the previous holder's writes to the data are visible.
        match w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => Ok(Acquired::Clean),
            Err(cur) => match cur & TID_MASK {
                NOT_RECOVERABLE => Err(LockError::NotRecoverable),
                t if t == me => Err(LockError::WouldDeadlock),
                _ => Err(LockError::WouldBlock),
            },
        }
    }

    /// Locks, sleeping until `deadline`; `owner_dead(tid)` says whether the owner named
    /// in the word is gone (asked after each sleep that was not ended by a wake-up).
    pub(crate) fn lock<W: Word>(
        w: &W,
        me: u32,
        deadline: Option<Instant>,
        mut owner_dead: impl FnMut(u32) -> bool,
    ) -> Result<Acquired, LockError> {
        let mut slept = false;
        let mut check_owner = false;
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let tid = cur & TID_MASK;
            if tid == NOT_RECOVERABLE {
                return Err(LockError::NotRecoverable);
            }
            if tid == 0 {
                let new = me | if slept { WAITERS } else { 0 };
                // SYNC: Acquire pairs with the Release swap in `unlock`.
                match w.compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => return Ok(Acquired::Clean),
                    Err(c) => {
                        cur = c;
                        continue;
                    }
                }
            }
            if tid == me {
                return Err(LockError::WouldDeadlock);
            }
            if check_owner {
                check_owner = false;
                if owner_dead(tid) {
                    let new = me | OWNER_DIED | (cur & WAITERS);
                    // SYNC: Acquire pairs with whatever Release the dead owner made; the
                    // data is suspect anyway, which is what OwnerDied says.
                    match w.compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed) {
                        Ok(_) => return Ok(Acquired::OwnerDied),
                        Err(c) => {
                            // Another waiter changed the word (set WAITERS, or took the
                            // lock over first): look again at once.
                            cur = c;
                            check_owner = true;
                            continue;
                        }
                    }
                }
            }
            if cur & WAITERS == 0 {
                if let Err(c) =
                    w.compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                {
                    cur = c;
                    continue;
                }
                cur |= WAITERS;
            }
            let left = match word::remaining(deadline) {
                Some(l) => l,
                None => return Err(LockError::TimedOut),
            };
            let slice = left.map_or(LIVENESS_SLICE, |l| l.min(LIVENESS_SLICE));
            if w.wait(cur, Some(slice)) == Wait::TimedOut {
                check_owner = true;
            }
            slept = true;
            cur = w.load(Ordering::Relaxed);
        }
    }

    /// Releases the lock and wakes one sleeper if there are any.
    pub(crate) fn unlock<W: Word>(w: &W) {
        // SYNC: Release pairs with the Acquire CAS in `lock`/`try_lock`: the next holder
        // sees every write made under the lock.
        let old = w.swap(0, Ordering::Release);
        if old & WAITERS != 0 {
            w.wake(1);
        }
    }

    /// Clears OWNER_DIED: the holder repaired the data.
    pub(crate) fn mark_consistent<W: Word>(w: &W) {
        w.fetch_and(!OWNER_DIED, Ordering::Relaxed);
    }

    /// Releases the lock for good: every later locker gets NotRecoverable.
    pub(crate) fn make_not_recoverable<W: Word>(w: &W) {
        // SYNC: Release pairs with the Acquire loads of lockers that see the state.
        w.store(NOT_RECOVERABLE, Ordering::Release);
        w.wake(u32::MAX >> 1);
    }
}

/// A robust mutex protecting a `T` inside a shared region (see the [module docs](self)
/// for the layout and protocol). The handle borrows the region; create the mutex once
/// with [`Mutex::init`], then [`Mutex::attach`] to it from any process that maps the
/// region.
pub struct Mutex<'r, T> {
    region: &'r (dyn Region + Sync),
    offset: usize,
    state: &'r AtomicU32,
    owner_tag: &'r AtomicU64,
    _data: PhantomData<T>,
}

impl<T> fmt::Debug for Mutex<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("object", &self.region.object_name())
            .field("offset", &self.offset)
            .field(
                "state",
                &format_args!("{:#x}", self.state.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

impl<'r, T: bytemuck::Pod> Mutex<'r, T> {
    /// Alignment the offset must have.
    pub const ALIGN: usize = 16;

    /// Bytes the mutex and its data occupy.
    pub const fn size() -> usize {
        (DATA_OFFSET + std::mem::size_of::<T>() + 7) & !7
    }

    /// Lays out a free mutex holding `value` at `offset`. Nobody may use the bytes yet
    /// (do this before publishing the object's header).
    pub fn init(region: &'r (dyn Region + Sync), offset: usize, value: T) -> Result<Self> {
        let m = Self::attach(region, offset)?;
        region.write(offset, &MutexHeader::default())?;
        region.write(offset + DATA_OFFSET, &value)?;
        Ok(m)
    }

    /// A handle on a mutex that [`Mutex::init`] laid out at `offset` of `region`.
    pub fn attach(region: &'r (dyn Region + Sync), offset: usize) -> Result<Self> {
        if std::mem::align_of::<T>() > Self::ALIGN {
            return Err(Error::invalid(
                "mutex",
                region.object_name(),
                "the data type needs an alignment above 16",
            ));
        }
        if offset % Self::ALIGN != 0 {
            return Err(Error::invalid(
                "mutex",
                region.object_name(),
                format!("offset {offset} is not a multiple of {}", Self::ALIGN),
            ));
        }
        region.check_range("mutex", offset, Self::size())?;
        Ok(Mutex {
            region,
            offset,
            state: region.atomic_u32(offset + STATE_OFFSET)?,
            owner_tag: region.atomic_u64(offset + OWNER_TAG_OFFSET)?,
            _data: PhantomData,
        })
    }

    /// Locks, waiting as long as it takes (a dead owner is detected, see the module
    /// docs).
    pub fn lock(&self) -> Result<Locked<MutexGuard<'_, 'r, T>>, LockError> {
        self.lock_until(None)
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Locked<MutexGuard<'_, 'r, T>>, LockError> {
        self.lock_until(word::deadline(Some(timeout)))
    }

    /// Locks if that is possible at once. A dead owner is only detected by the waiting
    /// calls.
    pub fn try_lock(&self) -> Result<Locked<MutexGuard<'_, 'r, T>>, LockError> {
        let me = proc::current_thread();
        let got = raw::try_lock(self.state, me.tid)?;
        Ok(self.acquired(got, me))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Locked<MutexGuard<'_, 'r, T>>, LockError> {
        let me = proc::current_thread();
        let got = match raw::try_lock(self.state, me.tid) {
            Err(LockError::WouldBlock) => {
                raw::lock(self.state, me.tid, deadline, |tid| self.owner_is_dead(tid))?
            }
            other => other?,
        };
        Ok(self.acquired(got, me))
    }

    fn owner_is_dead(&self, tid: u32) -> bool {
        let tag = self.owner_tag.load(Ordering::Relaxed);
        let start = ((tag >> 32) as u32 == tid).then_some(tag as u32);
        !proc::is_alive(tid, start)
    }

    fn acquired(&self, got: raw::Acquired, me: proc::ThreadId) -> Locked<MutexGuard<'_, 'r, T>> {
        self.owner_tag.store(
            ((me.tid as u64) << 32) | (me.start & 0xffff_ffff),
            Ordering::Relaxed,
        );
        let g = MutexGuard {
            mutex: self,
            inconsistent: got == raw::Acquired::OwnerDied,
        };
        match got {
            raw::Acquired::Clean => Locked::Clean(g),
            raw::Acquired::OwnerDied => Locked::OwnerDied(g),
        }
    }

    /// The TID of the current holder, if any (a snapshot, for diagnostics).
    pub fn holder(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & TID_MASK {
            0 | NOT_RECOVERABLE => None,
            t => Some(t),
        }
    }

    /// Whether the mutex was made not recoverable.
    pub fn is_not_recoverable(&self) -> bool {
        self.state.load(Ordering::Relaxed) & TID_MASK == NOT_RECOVERABLE
    }

    /// Resets a not-recoverable (or abandoned) mutex to free, with `value` as its data.
    /// Only for administrators who know that nobody uses it.
    pub fn reset(&self, value: T) -> Result<()> {
        self.region.write(self.offset + DATA_OFFSET, &value)?;
        self.owner_tag.store(0, Ordering::Relaxed);
        // SYNC: Release pairs with the Acquire CAS of the next locker.
        self.state.store(0, Ordering::Release);
        self.state.wake(u32::MAX >> 1);
        Ok(())
    }
}

/// Proof that the calling thread holds a [`Mutex`]; unlocks on drop. Gives copy access
/// to the protected value ([`get`](Self::get), [`set`](Self::set),
/// [`update`](Self::update)).
pub struct MutexGuard<'m, 'r, T: bytemuck::Pod> {
    mutex: &'m Mutex<'r, T>,
    inconsistent: bool,
}

impl<T: bytemuck::Pod> fmt::Debug for MutexGuard<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("mutex", self.mutex)
            .field("inconsistent", &self.inconsistent)
            .finish()
    }
}

impl<'m, 'r, T: bytemuck::Pod> MutexGuard<'m, 'r, T> {
    /// A copy of the protected value. Any bit pattern is a `T`, so a value written by a
    /// buggy process is still a value.
    pub fn get(&self) -> Result<T> {
        self.mutex.region.read(self.mutex.offset + DATA_OFFSET)
    }

    /// Replaces the protected value.
    pub fn set(&self, value: T) -> Result<()> {
        self.mutex
            .region
            .write(self.mutex.offset + DATA_OFFSET, &value)
    }

    /// Reads the value, lets `f` change it, writes it back; returns what `f` returned.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let mut v = self.get()?;
        let r = f(&mut v);
        self.set(v)?;
        Ok(r)
    }

    /// Declares the data consistent again after [`Locked::OwnerDied`]; without it, the
    /// mutex becomes not recoverable when this guard is dropped.
    pub fn mark_consistent(&mut self) {
        if self.inconsistent {
            raw::mark_consistent(self.mutex.state);
            self.inconsistent = false;
        }
    }

    /// Whether the guard came from a dead owner and is not yet marked consistent.
    pub fn is_inconsistent(&self) -> bool {
        self.inconsistent
    }

    pub(crate) fn mutex_ref(&self) -> &'m Mutex<'r, T> {
        self.mutex
    }
}

impl<T: bytemuck::Pod> Drop for MutexGuard<'_, '_, T> {
    fn drop(&mut self) {
        let m = self.mutex;
        m.owner_tag.store(0, Ordering::Relaxed);
        if self.inconsistent {
            raw::make_not_recoverable(m.state);
        } else {
            raw::unlock(m.state);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn lock_unlock_try_and_timeout() {
        let r = Heap::new(64);
        let m = Mutex::<u64>::init(&r, 16, 5).unwrap();
        assert_eq!(Mutex::<u64>::size(), 24);
        {
            let g = m.lock().unwrap().into_guard();
            assert_eq!(g.get().unwrap(), 5);
            g.set(6).unwrap();
            assert_eq!(m.holder(), Some(proc::current_thread().tid));
            assert_eq!(m.try_lock().unwrap_err(), LockError::WouldDeadlock);
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(m.try_lock().unwrap_err(), LockError::WouldBlock);
                    let t0 = Instant::now();
                    let e = m.lock_timeout(Duration::from_millis(30)).unwrap_err();
                    assert_eq!(e, LockError::TimedOut);
                    assert!(t0.elapsed() >= Duration::from_millis(30));
                });
            });
        }
        assert_eq!(m.holder(), None);
        let g = m.try_lock().unwrap().into_guard();
        assert_eq!(g.update(|v| *v * 2).unwrap(), 12);
    }

    #[test]
    fn threads_count_exactly() {
        let r = Heap::new(64);
        let m = Mutex::<u64>::init(&r, 0, 0).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        let g = m.lock().unwrap().into_guard();
                        g.update(|v| *v += 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(m.lock().unwrap().into_guard().get().unwrap(), 8000);
    }

    #[test]
    fn dead_owner_gives_owner_died_then_not_recoverable() {
        let r = Heap::new(64);
        let m = Mutex::<u32>::init(&r, 0, 1).unwrap();
        // A thread that exits holding the lock: its TID disappears.
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(m.lock().unwrap()));
        });
        let g = match m.lock_timeout(Duration::from_secs(10)).unwrap() {
            Locked::OwnerDied(g) => g,
            Locked::Clean(_) => panic!("expected OwnerDied"),
        };
        assert!(g.is_inconsistent());
        drop(g);
        assert!(m.is_not_recoverable());
        assert_eq!(m.lock().unwrap_err(), LockError::NotRecoverable);
        assert_eq!(m.try_lock().unwrap_err(), LockError::NotRecoverable);
        m.reset(0).unwrap();

        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(m.lock().unwrap()));
        });
        let mut g = m.lock().unwrap().into_guard();
        g.mark_consistent();
        drop(g);
        assert!(matches!(m.lock().unwrap(), Locked::Clean(_)));
    }

    #[test]
    fn rejects_misaligned_and_short_regions() {
        let r = Heap::new(32);
        assert!(Mutex::<u64>::attach(&r, 8).is_err());
        assert!(Mutex::<[u64; 4]>::attach(&r, 0).is_err());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::raw;
    use crate::sync::word::{LoomWord, Word};
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::Arc;

    #[test]
    fn loom_mutex_excludes() {
        loom::model(|| {
            let w = Arc::new(LoomWord::new(0));
            let inside = Arc::new(AtomicUsize::new(0));
            let ts: Vec<_> = (1..=2u32)
                .map(|tid| {
                    let (w, inside) = (w.clone(), inside.clone());
                    loom::thread::spawn(move || {
                        let got = raw::lock(&*w, tid, None, |_| false).unwrap();
                        assert_eq!(got, raw::Acquired::Clean);
                        assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                        inside.fetch_sub(1, Ordering::Relaxed);
                        raw::unlock(&*w);
                    })
                })
                .collect();
            for t in ts {
                t.join().unwrap();
            }
            assert_eq!(w.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn loom_mutex_owner_death_is_reported() {
        loom::model(|| {
            let w = Arc::new(LoomWord::with_timeouts(0));
            let dead = Arc::new(AtomicBool::new(false));
            let (w1, d1) = (w.clone(), dead.clone());
            let holder = loom::thread::spawn(move || {
                // Takes the lock and "dies" holding it.
                let got = raw::lock(&*w1, 1, None, |_| false).unwrap();
                d1.store(true, Ordering::Relaxed);
                got
            });
            let got =
                raw::lock(&*w, 2, None, |tid| tid == 1 && dead.load(Ordering::Relaxed)).unwrap();
            if got == raw::Acquired::Clean {
                raw::unlock(&*w);
            }
            let first = holder.join().unwrap();
            assert_eq!(first, raw::Acquired::Clean);
            // Either the holder had not locked yet (clean), or it died: OwnerDied.
            if got == raw::Acquired::OwnerDied {
                assert!(dead.load(Ordering::Relaxed));
                raw::make_not_recoverable(&*w);
                assert_eq!(
                    raw::lock(&*w, 3, None, |_| true).unwrap_err(),
                    super::LockError::NotRecoverable
                );
            }
        });
    }
}
