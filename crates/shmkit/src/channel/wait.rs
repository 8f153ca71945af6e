//! Blocking: spin a little, then sleep on a futex word, without a system call on the
//! other side unless someone really sleeps.
//!
//! The waiter stores 1 into its sleep word, runs `slow_barrier`, then re-checks its
//! condition; the other side publishes its record stamp or position (a Release
//! store), runs `fast_barrier`, then loads the sleep word (Dekker's pattern). The two
//! barriers order each side's store before its load, so at least one side sees the
//! other's store: a wake-up is never lost, and a side that finds the word 0 makes no
//! system call.
//!
//! Both barriers are `SeqCst` fences. An asymmetric pair was measured too (the sleeping
//! side calling `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` through
//! [`crate::sys::membarrier`], the publishing side keeping only a compiler barrier):
//! on the 2-core AMD EPYC VM this was developed on it made the spinning round trip and
//! the 64-byte stream no faster (within noise) and a round trip with both sides asleep
//! up to 9 µs slower (the kernel's IPIs; three paired runs), so the fences stay. On a machine where a fence per message costs more
//! (bare metal, Intel), switching is a matter of these two functions plus registering
//! each endpoint's process at open; the loom model below holds for both, since the
//! pair is equivalent to two `SeqCst` fences (loom cannot model membarrier itself).
//!
//! Spinning helps only while the peer runs on another CPU: a peer on the waiter's own
//! CPU cannot answer until the waiter stops, so each hand-over would cost the whole
//! spin budget (measured with both processes on one core: an 8-byte round trip took
//! 130 µs against a pipe's 4.9 µs). Each end of a channel therefore records the CPU it
//! runs on in a hint word next to its sleep word when it opens, starts to wait and
//! wakes its peer (`note_cpu`), and a waiter whose peers last ran on its own CPU sleeps
//! at once (`budget`).
//!
//! Sleeps last at most [`LIVENESS_SLICE`]; after a sleep that timed out the waiter
//! checks whether its peer process still lives, so a dead peer is noticed within that
//! time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ChannelError;
use crate::sys::futex::{self, Wait};

/// The longest sleep before the waiter checks that its peer lives.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// The longest first sleep of a waiter whose peer shares its CPU ([`budget`]): that
/// waiter reads /proc only after it (the read would hold the peer off the CPU), and the
/// read is also how a peer killed meanwhile is noticed, within this time. Measured on
/// one core: with 1 or 3 ms every hand-over was slower (8-byte round trip 4.9 -> 6.0
/// us, a wake-up 3.4 -> 4.8-8.8 us), with 5 ms as with 50; consistent with a timeout
/// shorter than the kernel's tick (4 ms at HZ=250 there) reprogramming the timer
/// hardware at every sleep, which traps in a VM.
pub(crate) const SHARED_CPU_FIRST_SLEEP: Duration = Duration::from_millis(5);

/// The longest a waiter may sleep now: `longest`, or at most
/// [`SHARED_CPU_FIRST_SLEEP`] while it still owes the /proc read it put off because its
/// peer shares its CPU (its first sleep).
#[inline]
pub(crate) fn sleep_limit(longest: Duration, liveness_owed: bool) -> Duration {
    if liveness_owed {
        longest.min(SHARED_CPU_FIRST_SLEEP)
    } else {
        longest
    }
}

/// The default number of polls before sleeping.
pub const DEFAULT_SPIN: u32 = 2000;

/// Offset of a side's CPU hint from its sleep word (the same cache line, which the
/// other side reads anyway to decide whether to wake it): the CPU that side last
/// opened its end, started to wait or woke its peer on, plus one ([`note_cpu`]); 0 while
/// not known (objects made before the hint was kept have 0 there).
pub(crate) const CPU_HINT_DELTA: usize = 4;

/// Records the CPU this thread runs on, plus one, in this side's hint word `mine`, and
/// returns it. Each side does so when it claims its end, starts to wait, and wakes its
/// peer: a side that never waits (a sender that always finds room) still tells where
/// it runs. Out of line: only waits, wake-ups and opens call it, and inlined it grew
/// the publishing fast paths around them (broadcast: 8-byte round trip 20-30 ns slower).
#[inline(never)]
pub(crate) fn note_cpu(mine: &AtomicU32) -> u32 {
    let me = u32::try_from(rustix::thread::sched_getcpu())
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1);
    // Relaxed: a hint, no other memory hangs on it. Stored only when it changed, so the
    // line the peer reads for the sleep word stays in its cache.
    if mine.load(Ordering::Relaxed) != me {
        mine.store(me, Ordering::Relaxed);
    }
    me
}

/// The spin budget for a wait, and the check of its first poll after spinning
/// (for [`block_on`]): `spin` and [`Check::Liveness`], or 0 and [`Check::Normal`] when
/// every peer whose CPU is known (`peers`: their hint words; at least one known) last
/// ran on this thread's CPU, as they then cannot answer until this side sleeps.
/// Records this side's CPU in `mine` first ([`note_cpu`]). Called once per wait.
#[inline(never)]
pub(crate) fn budget<'a>(
    mine: &AtomicU32,
    peers: impl IntoIterator<Item = &'a AtomicU32>,
    spin: u32,
) -> (u32, Check) {
    let me = note_cpu(mine);
    let mut known = false;
    for peer in peers {
        // A peer process writes this word: any value is only a reason to spin or not.
        match peer.load(Ordering::Relaxed) {
            0 => {}
            cpu if cpu == me => known = true,
            _ => return (spin, Check::Liveness),
        }
    }
    if known {
        (0, Check::Normal)
    } else {
        (spin, Check::Liveness)
    }
}

/// How long a call may wait. A timeout becomes a deadline only once the call has to
/// wait, so a call that finds its message (or room) at once reads no clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Do not wait (`try_` calls).
    Now,
    /// Wait as long as the peer lives.
    Forever,
    /// Wait at most this long.
    For(Duration),
}

impl Patience {
    /// `None` for [`Patience::Now`], else itself: what [`block_on`] takes.
    #[inline]
    pub(crate) fn waiting(self) -> Option<Patience> {
        match self {
            Patience::Now => None,
            p => Some(p),
        }
    }

    /// `None` for [`Patience::Now`], else the deadline (`None`: no deadline; a timeout
    /// too large to add to the clock counts as none), reading the clock now.
    #[inline]
    pub(crate) fn resolve(self) -> Option<Option<Instant>> {
        match self {
            Patience::Now => None,
            Patience::Forever => Some(None),
            Patience::For(d) => Some(Instant::now().checked_add(d)),
        }
    }
}

/// How much a poll should check besides the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Only the ring (spinning: react as fast as possible).
    Spin,
    /// The ring and the peer's endpoint word; /proc at most every [`LIVENESS_SLICE`].
    Normal,
    /// The ring, the endpoint word and /proc now.
    Liveness,
}

/// The publishing side's half of the barrier pair: between its publication (a Release
/// store) and its load of the other side's sleep word.
#[inline(always)]
pub(crate) fn fast_barrier() {
    // SYNC: pairs with the SeqCst fence in `slow_barrier` (store-buffering: of the two
    // stores before the fences, one is seen by the other side's load after its fence).
    std::sync::atomic::fence(Ordering::SeqCst);
}

/// The sleeping side's half: between its sleep-word store and its re-check.
#[inline]
pub(crate) fn slow_barrier() {
    // SYNC: pairs with the SeqCst fence in `fast_barrier`.
    std::sync::atomic::fence(Ordering::SeqCst);
}

/// Waits until `poll` returns a value or an error, or the time `patience` allows
/// passes. A timeout counts from the end of the spin phase, which is bounded by `spin`
/// polls: the clock is read only by a call that goes on to sleep. A zero timeout does
/// not spin. `first` is the check of the first poll after spinning:
/// [`Check::Liveness`], or [`Check::Normal`] when the peer shares this CPU
/// ([`budget`]).
pub(crate) fn block_on<T>(
    sleep_word: &AtomicU32,
    spin: u32,
    first: Check,
    patience: Patience,
    poll: impl FnMut(Check) -> Result<Option<T>, ChannelError>,
) -> Result<T, ChannelError> {
    block_on_sliced(sleep_word, spin, first, patience, LIVENESS_SLICE, poll)
}

/// As [`block_on`], sleeping at most `slice` at a time (at most [`LIVENESS_SLICE`]):
/// for a waiter whose wake-up the other side may owe for a while (the client of
/// [`super::rpc`]), a short slice bounds how late it can be. The polls after a short
/// slice are normal ones, so /proc is still read at most every [`LIVENESS_SLICE`].
pub(crate) fn block_on_sliced<T>(
    sleep_word: &AtomicU32,
    spin: u32,
    first: Check,
    patience: Patience,
    slice: Duration,
    mut poll: impl FnMut(Check) -> Result<Option<T>, ChannelError>,
) -> Result<T, ChannelError> {
    let slice_max = slice.min(LIVENESS_SLICE);
    let spin = match patience {
        Patience::Now | Patience::For(Duration::ZERO) => 0,
        _ => spin,
    };
    for _ in 0..spin {
        if let Some(v) = poll(Check::Spin)? {
            return Ok(v);
        }
        std::hint::spin_loop();
    }
    // The first poll after spinning also reads /proc, unless the peer shares this CPU.
    // Measured: starting with Check::Normal instead (no /proc read) made a round trip
    // with both sides asleep on two cores 2 to 3.5 times slower, as the read delays the
    // sleep long enough for most replies to arrive before it; the read is not on the
    // wake-up path either way. On one CPU it is: the peer runs only once we sleep. The
    // read then follows a first sleep of at most SHARED_CPU_FIRST_SLEEP that timed out.
    let deadline = match patience {
        Patience::For(d) => Instant::now().checked_add(d),
        Patience::Now => Some(Instant::now()),
        Patience::Forever => None,
    };
    let mut check = first;
    let mut liveness_owed = first != Check::Liveness;
    loop {
        if let Some(v) = poll(check)? {
            return Ok(v);
        }
        sleep_word.store(1, Ordering::Relaxed);
        // Either the other side's fast_barrier comes after this barrier and its load
        // sees our 1 (it wakes us), or its publication comes before and the poll below
        // sees it.
        slow_barrier();
        match poll(Check::Normal) {
            Ok(None) => {}
            Ok(Some(v)) => {
                sleep_word.store(0, Ordering::Relaxed);
                return Ok(v);
            }
            Err(e) => {
                sleep_word.store(0, Ordering::Relaxed);
                return Err(e);
            }
        }
        let longest = sleep_limit(slice_max, liveness_owed);
        let slice = match deadline {
            None => longest,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    sleep_word.store(0, Ordering::Relaxed);
                    return Err(ChannelError::Timeout);
                }
                left.min(longest)
            }
        };
        let w = futex::wait(sleep_word, 1, Some(slice));
        sleep_word.store(0, Ordering::Relaxed);
        check = if w == Wait::TimedOut && (slice_max == LIVENESS_SLICE || liveness_owed) {
            Check::Liveness
        } else {
            Check::Normal
        };
        liveness_owed = false;
    }
}

/// Called after publishing a position or record: wakes the other side if it sleeps,
/// noting this side's CPU first in the hint word `mine` returns (called only then, so
/// the fast path does not even compute its address).
#[inline]
pub(crate) fn notify<'a>(sleep_word: &AtomicU32, mine: impl FnOnce() -> &'a AtomicU32) {
    fast_barrier();
    wake_if_asleep(sleep_word, mine);
}

/// The second half of [`notify`], for a side that ran [`fast_barrier`] after its
/// publication and looks at the sleep word later: any time later is as correct, since
/// the barrier already orders the load after the publication.
#[inline]
pub(crate) fn wake_if_asleep<'a>(sleep_word: &AtomicU32, mine: impl FnOnce() -> &'a AtomicU32) {
    // Relaxed: the barrier pair orders this load (see the module docs); the value only
    // decides whether to make the futex call.
    if sleep_word.load(Ordering::Relaxed) != 0 {
        wake_noting(sleep_word, mine());
    }
}

/// [`wake`], noting this side's CPU in `mine` first: out of line, so that the
/// publishing fast path stays as small as before the hints.
#[cold]
fn wake_noting(sleep_word: &AtomicU32, mine: &AtomicU32) {
    note_cpu(mine);
    wake(sleep_word);
}

/// Wakes the other side unconditionally (on close).
#[cold]
pub(crate) fn wake(sleep_word: &AtomicU32) {
    sleep_word.store(0, Ordering::Relaxed);
    futex::wake(sleep_word, 1);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Pins the calling thread to the CPU it runs on, so the CPU `note_cpu` reads
    /// stays the same through a test.
    fn pin_here() -> u32 {
        let cpu = rustix::thread::sched_getcpu();
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set).expect("pin");
        cpu as u32 + 1
    }

    #[test]
    fn a_peer_on_this_cpu_cuts_the_spin_and_the_proc_read() {
        let me = pin_here();
        let (mine, same, other, unknown) = (
            AtomicU32::new(0),
            AtomicU32::new(me),
            AtomicU32::new(me + 1),
            AtomicU32::new(0),
        );
        assert_eq!(budget(&mine, [&same], 7), (0, Check::Normal));
        assert_eq!(mine.load(Ordering::Relaxed), me, "this side's CPU recorded");
        // Peers without a hint do not count; one elsewhere, or none known, keeps the spin.
        assert_eq!(budget(&mine, [&unknown, &same], 7), (0, Check::Normal));
        assert_eq!(budget(&mine, [&same, &other], 7), (7, Check::Liveness));
        assert_eq!(budget(&mine, [&unknown], 7), (7, Check::Liveness));
        assert_eq!(budget(&mine, [], 7), (7, Check::Liveness));
        // Any value a peer wrote is only a hint.
        let garbage = AtomicU32::new(u32::MAX);
        assert_eq!(budget(&mine, [&garbage], 7), (7, Check::Liveness));
    }

    #[test]
    fn a_waker_records_its_cpu_only_when_it_wakes() {
        let me = pin_here();
        let (sleep, mine) = (AtomicU32::new(0), AtomicU32::new(0));
        wake_if_asleep(&sleep, || &mine);
        assert_eq!(
            mine.load(Ordering::Relaxed),
            0,
            "nobody asleep: nothing written"
        );
        sleep.store(1, Ordering::Relaxed);
        wake_if_asleep(&sleep, || &mine);
        assert_eq!(mine.load(Ordering::Relaxed), me);
        assert_eq!(sleep.load(Ordering::Relaxed), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
    use loom::sync::Arc;
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

    /// The sleep/wake handshake with the barrier pair modelled as the SeqCst fences it
    /// is equivalent to (loom cannot model membarrier): the publisher stores a record
    /// header and loads the sleep word; the waiter stores the sleep word and re-checks
    /// the header. They must not both miss each other (a lost wake-up).
    fn handshake(barriers: bool) {
        loom::model(move || {
            let header = Arc::new(AtomicU64::new(0));
            let sleep = Arc::new(AtomicU32::new(0));
            let (h2, s2) = (header.clone(), sleep.clone());
            let publisher = loom::thread::spawn(move || {
                h2.store(1, Release);
                if barriers {
                    fence(SeqCst); // fast_barrier
                }
                s2.load(Relaxed)
            });
            sleep.store(1, Relaxed);
            if barriers {
                fence(SeqCst); // slow_barrier
            }
            let seen = header.load(Acquire);
            let saw_sleeper = publisher.join().unwrap();
            assert!(seen == 1 || saw_sleeper == 1, "lost wake-up");
        });
    }

    #[test]
    fn loom_wait_handshake_never_loses_a_wakeup() {
        handshake(true);
    }

    #[test]
    #[should_panic(expected = "lost wake-up")]
    fn loom_wait_handshake_without_barriers_loses_wakeups() {
        handshake(false);
    }
}
