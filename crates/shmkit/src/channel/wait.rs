//! Blocking: spin a little, then sleep on a futex word, without a system call on the
//! other side unless someone really sleeps.
//!
//! The waiter stores 1 into its sleep word (SeqCst), then re-checks its condition with
//! SeqCst loads; the other side publishes its record header or position with a SeqCst
//! store, then loads the sleep word with SeqCst (Dekker's pattern: on x86 one locked
//! store on the publishing side and no fence). At least one of them sees the other's
//! store, so a
//! wake-up is never lost, and a side that finds the word 0 makes no system call. Sleeps
//! last at most [`LIVENESS_SLICE`]; after a sleep that timed out the waiter checks
//! whether its peer process still lives, so a dead peer is noticed within that time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ChannelError;
use crate::sys::futex::{self, Wait};

/// The longest sleep before the waiter checks that its peer lives.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// The default number of polls before sleeping.
pub const DEFAULT_SPIN: u32 = 2000;

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

/// Waits until `poll` returns a value or an error, or `deadline` passes.
pub(crate) fn block_on<T>(
    sleep_word: &AtomicU32,
    spin: u32,
    deadline: Option<Instant>,
    mut poll: impl FnMut(Check) -> Result<Option<T>, ChannelError>,
) -> Result<T, ChannelError> {
    for _ in 0..spin {
        if let Some(v) = poll(Check::Spin)? {
            return Ok(v);
        }
        std::hint::spin_loop();
    }
    let mut check = Check::Liveness;
    loop {
        if let Some(v) = poll(check)? {
            return Ok(v);
        }
        // SYNC: SeqCst store pairs with the SeqCst load in `notify`: either the other
        // side sees our 1 and wakes us, or we see its new position in the poll below.
        sleep_word.store(1, Ordering::SeqCst);
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
        let slice = match deadline {
            None => LIVENESS_SLICE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    sleep_word.store(0, Ordering::Relaxed);
                    return Err(ChannelError::Timeout);
                }
                left.min(LIVENESS_SLICE)
            }
        };
        let w = futex::wait(sleep_word, 1, Some(slice));
        sleep_word.store(0, Ordering::Relaxed);
        check = if w == Wait::TimedOut {
            Check::Liveness
        } else {
            Check::Normal
        };
    }
}

/// Called after publishing a position: wakes the other side if it sleeps.
#[inline]
pub(crate) fn notify(sleep_word: &AtomicU32) {
    // SYNC: SeqCst load, after the caller's SeqCst publication, pairs with the SeqCst
    // store in `block_on` (store-buffering: one of the two sides sees the other).
    if sleep_word.load(Ordering::SeqCst) != 0 {
        wake(sleep_word);
    }
}

/// Wakes the other side unconditionally (on close).
#[cold]
pub(crate) fn wake(sleep_word: &AtomicU32) {
    sleep_word.store(0, Ordering::Relaxed);
    futex::wake(sleep_word, 1);
}
