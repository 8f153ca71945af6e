//! Who holds an endpoint, and whether that process still lives.
//!
//! An endpoint's owner word is `pid << 32 | start_time & 0xffff_ffff`, where the start
//! time is field 22 of `/proc/<pid>/stat` (clock ticks since boot). Comparing the start
//! time as well as the pid tells a dead process from a new one that reused its pid. A
//! zombie counts as dead: it will never touch the channel again. The reading of /proc
//! is [`crate::sys::proc`]'s: processes sharing a channel must see each other there.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The owner word for this process.
pub(crate) fn me() -> u64 {
    let pid = std::process::id();
    owner_word(pid, start_time(pid).unwrap_or(0))
}

/// Packs a pid and a start time.
pub(crate) fn owner_word(pid: u32, start: u64) -> u64 {
    (pid as u64) << 32 | (start & 0xffff_ffff)
}

/// The pid in an owner word.
pub(crate) fn pid_of(word: u64) -> u32 {
    (word >> 32) as u32
}

fn start_time(pid: u32) -> Option<u64> {
    crate::sys::proc::stat_of(pid).map(|s| s.start)
}

/// Whether the process named by an owner word is alive (0: no owner, not alive).
/// Without /proc, or when it cannot be read, the owner counts as alive
/// ([`crate::sys::proc::is_alive`]).
pub(crate) fn alive(word: u64) -> bool {
    word != 0 && crate::sys::proc::is_alive(pid_of(word), Some(word as u32))
}

/// An endpoint's two words in shared memory.
pub(crate) struct Endpoint<'a> {
    /// Owner word, 0 when free.
    pub owner: &'a AtomicU64,
    /// How many times the endpoint was claimed.
    pub epoch: &'a AtomicU32,
}

/// How a peer left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Still there (or never came).
    No,
    /// Closed its endpoint.
    Closed,
    /// Died holding it (pid).
    Died(u32),
}

impl Endpoint<'_> {
    /// Claims the endpoint for `me`: free, or held by a dead process. On failure returns
    /// the live holder's pid.
    pub fn claim(&self, me: u64) -> Result<(), u32> {
        // A bounded number of rounds: each failed exchange means another process changed
        // the word, and a live holder ends the loop.
        for _ in 0..64 {
            // SYNC: Acquire pairs with the Release in `release` (and the exchange below):
            // everything the previous holder wrote before leaving is visible.
            let cur = self.owner.load(Ordering::Acquire);
            if cur != 0 && alive(cur) {
                return Err(pid_of(cur));
            }
            // SYNC: AcqRel: Acquire as above, Release pairs with other claimers' loads.
            if self
                .owner
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.epoch.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        Err(pid_of(self.owner.load(Ordering::Relaxed)))
    }

    /// Gives the endpoint up, if `me` still holds it.
    pub fn release(&self, me: u64) {
        // SYNC: Release pairs with the Acquire loads in `claim` and `gone`: the holder's
        // last position store happens before the peer sees the endpoint free.
        let _ = self
            .owner
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Whether the holder has left; `check_process` also looks at /proc (slow path).
    /// A dead holder's word is cleared, so a restarted peer can claim it.
    pub fn gone(&self, check_process: bool, seen: &mut bool, epoch_at_open: u32) -> Gone {
        // SYNC: Acquire pairs with the Release in `release`.
        let w = self.owner.load(Ordering::Acquire);
        if w != 0 {
            *seen = true;
            if check_process && !alive(w) {
                // SYNC: Acquire as above; the dead holder wrote nothing after dying.
                let _ = self
                    .owner
                    .compare_exchange(w, 0, Ordering::Acquire, Ordering::Relaxed);
                return Gone::Died(pid_of(w));
            }
            return Gone::No;
        }
        if self.epoch.load(Ordering::Relaxed) != epoch_at_open {
            *seen = true;
        }
        if *seen {
            Gone::Closed
        } else {
            Gone::No
        }
    }

    /// The holder's pid and whether it lives, for inspection.
    pub fn holder(&self) -> Option<(u32, bool)> {
        let w = self.owner.load(Ordering::Relaxed);
        (w != 0).then(|| (pid_of(w), alive(w)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = me();
        assert_eq!(pid_of(me), std::process::id());
        assert!(alive(me));
        assert!(!alive(me ^ 1));
        assert!(!alive(0));
    }

    #[test]
    fn claim_release_and_reclaim_from_the_dead() {
        let owner = AtomicU64::new(0);
        let epoch = AtomicU32::new(0);
        let ep = Endpoint {
            owner: &owner,
            epoch: &epoch,
        };
        let me = me();
        ep.claim(me).unwrap();
        assert_eq!(ep.claim(me), Err(std::process::id()));
        ep.release(me);
        let mut seen = false;
        assert_eq!(ep.gone(true, &mut seen, 0), Gone::Closed);
        // A holder with a start time that does not match is a dead process.
        owner.store(me ^ 1, Ordering::Relaxed);
        let mut seen = false;
        assert_eq!(ep.gone(true, &mut seen, 2), Gone::Died(std::process::id()));
        ep.claim(me).unwrap();
        assert_eq!(epoch.load(Ordering::Relaxed), 2);
    }
}
