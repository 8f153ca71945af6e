//! The broadcast channel's message slots as seqlocks, apart from where their memory
//! lives, so that the same code runs over a mapping and over loom's atomics.
//!
//! Message `p` is written as: `seq = 2p + 1` (Relaxed), Release fence, length and
//! payload words (Relaxed atomics), `seq = 2p + 2` (SeqCst, at least Release). A reader
//! of message `p` loads `seq` (Acquire); `2p + 2` means ready, less means not yet, more
//! means the slot was reused. It then loads the length and the words (Relaxed), issues
//! an Acquire fence and loads `seq` again (Relaxed): if it changed, a writer may have
//! been at work during the copy and the copy is thrown away. This is the seqlock of
//! Boehm, "Can seqlocks get along with programming language memory models?" (2012).

use std::sync::atomic::Ordering;

/// The words of a ring of message slots.
pub(crate) trait SlotMem {
    /// Loads message `p`'s slot sequence word.
    fn seq(&self, p: u64, order: Ordering) -> u64;
    /// Stores message `p`'s slot sequence word.
    fn set_seq(&self, p: u64, v: u64, order: Ordering);
    /// Loads the slot's length word (Relaxed).
    fn len(&self, p: u64) -> u32;
    /// Stores the slot's length word (Relaxed).
    fn set_len(&self, p: u64, v: u32);
    /// Loads payload word `i` (Relaxed).
    fn word(&self, p: u64, i: usize) -> u64;
    /// Stores payload word `i` (Relaxed).
    fn set_word(&self, p: u64, i: usize, v: u64);
    /// A fence of the memory's kind (std or loom).
    fn fence(&self, order: Ordering);
}

/// Marks message `p`'s slot as being written.
#[inline]
pub(crate) fn begin<M: SlotMem + ?Sized>(m: &M, p: u64) {
    m.set_seq(p, 2 * p + 1, Ordering::Relaxed);
    // SYNC: Release fence pairs with the Acquire fence in `read`: a reader that sees
    // any payload word of this write also sees the odd seq (or later) on its re-check.
    m.fence(Ordering::Release);
}

/// Writes `data` into message `p`'s payload words (between `begin` and `finish`).
#[inline]
pub(crate) fn write<M: SlotMem + ?Sized>(m: &M, p: u64, data: &[u8]) {
    for (i, chunk) in data.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        m.set_word(p, i, u64::from_le_bytes(w));
    }
}

/// Publishes message `p` with `len` bytes.
#[inline]
pub(crate) fn finish<M: SlotMem + ?Sized>(m: &M, p: u64, len: u32) {
    m.set_len(p, len);
    // SYNC: SeqCst (release) pairs with the Acquire seq load in `read`: length and
    // payload are visible to a reader that sees 2p + 2. SeqCst also orders it before
    // the publisher's load of the sleepers count (Dekker with the subscribers' wait).
    m.set_seq(p, 2 * p + 2, Ordering::SeqCst);
}

/// What reading message `p` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The message, copied out intact.
    Got(Vec<u8>),
    /// Not published yet (or being written).
    Nothing,
    /// The slot holds a later message, or was rewritten during the copy.
    Reused,
    /// A stable slot whose length exceeds `max` (a hostile writer).
    TooLong,
}

/// Reads message `p`, accepting lengths up to `max`.
pub(crate) fn read<M: SlotMem + ?Sized>(m: &M, p: u64, max: u32) -> Slot {
    let want = 2 * p + 2;
    // SYNC: Acquire pairs with the SeqCst (release) store in `finish`.
    let s1 = m.seq(p, Ordering::Acquire);
    if s1 < want {
        return Slot::Nothing;
    }
    if s1 > want {
        return Slot::Reused;
    }
    let len = m.len(p);
    let out = if len > max {
        None
    } else {
        let mut out = vec![0u8; len as usize];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let w = m.word(p, i).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Some(out)
    };
    // SYNC: Acquire fence pairs with the Release fence in `begin`: if a load above saw
    // a later writer's store, the seq load below sees that writer's odd (or later) seq.
    m.fence(Ordering::Acquire);
    if m.seq(p, Ordering::Relaxed) != s1 {
        return Slot::Reused;
    }
    match out {
        Some(v) => Slot::Got(v),
        None => Slot::TooLong,
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicU32, AtomicU64};
    use loom::sync::Arc;

    /// Two slots of two payload words each, as loom atomics.
    struct Mem {
        seq: [AtomicU64; 2],
        len: [AtomicU32; 2],
        words: [[AtomicU64; 2]; 2],
    }

    impl SlotMem for Mem {
        fn seq(&self, p: u64, order: Ordering) -> u64 {
            self.seq[(p % 2) as usize].load(order)
        }
        fn set_seq(&self, p: u64, v: u64, order: Ordering) {
            self.seq[(p % 2) as usize].store(v, order)
        }
        fn len(&self, p: u64) -> u32 {
            self.len[(p % 2) as usize].load(Ordering::Relaxed)
        }
        fn set_len(&self, p: u64, v: u32) {
            self.len[(p % 2) as usize].store(v, Ordering::Relaxed)
        }
        fn word(&self, p: u64, i: usize) -> u64 {
            self.words[(p % 2) as usize][i].load(Ordering::Relaxed)
        }
        fn set_word(&self, p: u64, i: usize, v: u64) {
            self.words[(p % 2) as usize][i].store(v, Ordering::Relaxed)
        }
        fn fence(&self, order: Ordering) {
            loom::sync::atomic::fence(order)
        }
    }

    /// Message `p`: `p + 1` bytes (at most 16), every byte `p + 1`.
    fn msg(p: u64) -> Vec<u8> {
        vec![p as u8 + 1; (p as usize % 16) + 1]
    }

    /// An overwriting publisher laps a 2-slot ring while a subscriber reads: whatever
    /// the subscriber accepts is exactly the message it asked for (never torn, never
    /// another lap's), and it is never told "not yet" about a message it saw reused.
    #[test]
    fn loom_seqlock_overwrite_never_tears() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(|| {
            let m = Arc::new(Mem {
                seq: [AtomicU64::new(0), AtomicU64::new(0)],
                len: [AtomicU32::new(0), AtomicU32::new(0)],
                words: [
                    [AtomicU64::new(0), AtomicU64::new(0)],
                    [AtomicU64::new(0), AtomicU64::new(0)],
                ],
            });
            let m2 = m.clone();
            let publisher = loom::thread::spawn(move || {
                for p in 0..4 {
                    let data = msg(p);
                    begin(&*m2, p);
                    write(&*m2, p, &data);
                    finish(&*m2, p, data.len() as u32);
                }
            });
            let mut p = 0;
            let mut reads = 0;
            while p < 4 && reads < 6 {
                reads += 1;
                match read(&*m, p, 16) {
                    Slot::Got(v) => {
                        assert_eq!(v, msg(p));
                        p += 1;
                    }
                    Slot::Reused => p += 1,
                    Slot::Nothing => loom::thread::yield_now(),
                    Slot::TooLong => panic!("a length above the limit"),
                }
            }
            publisher.join().unwrap();
        });
    }

    /// Backpressure over a 2-slot ring: the publisher writes message `p` only once the
    /// subscriber's cursor (SeqCst, as in the channel) is above `p - 2`; the
    /// subscriber must then read every message intact, never a reused slot.
    #[test]
    fn loom_backpressure_never_overtakes() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(|| {
            let m = Arc::new(Mem {
                seq: [AtomicU64::new(0), AtomicU64::new(0)],
                len: [AtomicU32::new(0), AtomicU32::new(0)],
                words: [
                    [AtomicU64::new(0), AtomicU64::new(0)],
                    [AtomicU64::new(0), AtomicU64::new(0)],
                ],
            });
            let cursor = Arc::new(AtomicU64::new(0));
            let (m2, c2) = (m.clone(), cursor.clone());
            let publisher = loom::thread::spawn(move || {
                for p in 0..3 {
                    // SYNC: the model's cursor stands for the subscriber's cursor word;
                    // SeqCst pairs with the subscriber's store below.
                    while p - c2.load(Ordering::SeqCst).min(p) >= 2 {
                        loom::thread::yield_now();
                    }
                    let data = msg(p);
                    begin(&*m2, p);
                    write(&*m2, p, &data);
                    finish(&*m2, p, data.len() as u32);
                }
            });
            let mut p = 0;
            while p < 3 {
                match read(&*m, p, 16) {
                    Slot::Got(v) => {
                        assert_eq!(v, msg(p));
                        p += 1;
                        // SYNC: pairs with the publisher's load of the cursor above.
                        cursor.store(p, Ordering::SeqCst);
                    }
                    Slot::Nothing => loom::thread::yield_now(),
                    other => panic!("message {p}: {other:?}"),
                }
            }
            publisher.join().unwrap();
        });
    }
}
