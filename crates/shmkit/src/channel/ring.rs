//! The ring algorithm, apart from where its memory lives: positions, records, padding
//! and validation of everything read from the other side.
//!
//! [`Producer`] and [`Consumer`] hold each side's private state: its own position (the
//! only copy it trusts) and, for the producer, a cached copy of the consumer's position,
//! reloaded only when the cache says the ring is full. The positions in shared memory
//! are reached through [`Cursor`] and the ring bytes through [`RingBytes`], so the same
//! code runs over a mapping, over heap memory in property tests, and over loom's
//! atomics in the model checks (`cfg(loom)`).
//!
//! A record is published by its *stamp*: the first word of its 16-byte header, a
//! keyed, one-to-one function of the record's position ([`stamp`]). The producer writes
//! the payload and the record's kind-and-length word, then stores the stamp with
//! Release; the consumer compares the word at its own position with the stamp it
//! expects there (Acquire). Any other value (zero, a record of an earlier lap, a
//! payload's bytes) means "nothing yet": the producer never has to clear anything, and
//! a message crosses between cores in the cache lines it occupies, without a separate
//! index line. (Layout version 1 zeroed the slot after each record instead; that store
//! often touched the next cache line before the record could be seen, about a quarter
//! of an 8-byte round trip on the development VM.) The shared `head` is stored after
//! each commit too, for inspection, for a restarted producer ([`recover_head`]) and for
//! the consumer's check that a stamp it waits for is not missing ([`Consumer::confirm_empty`]).
//! A padding record is published after the message that follows it, so the consumer
//! never passes the end of the ring early.
//!
//! Every position, length and tag read from shared memory is checked before use; a bad
//! one yields [`ChannelError::Corrupt`], and no loop runs more than a bounded number of
//! times, so a hostile peer cannot cause a panic, undefined behaviour or a hang.

use std::sync::atomic::Ordering;

use super::layout::{record_len, Geometry, RECORD_ALIGN, RECORD_HEADER, TAG_MSG, TAG_PAD};
use super::ChannelError;

/// The producer keeps its writes within the first windows of this many bytes while
/// the consumer keeps up: a record that would enter a window not yet written in this
/// lap goes to the ring's start instead if the ring is empty and the consumer waits
/// for it ([`Producer::reserve`]). A power of two.
pub(crate) const WINDOW: u64 = 4096;

/// Records longer than this go back to the ring's start (as [`WINDOW`] describes) only
/// once the producer has walked [`LARGE_WALK`] bytes into the ring (or half a smaller
/// ring). A small record costs its latency, which lines warm in both cores' caches
/// shorten; a large one costs bandwidth, and rewriting lines the consumer's core still
/// holds from its last read costs a cross-core invalidation each, which a walk past the
/// consumer's private cache (L2) avoids. Measured on an 8 MiB ring: 16 KiB round trips
/// 4.4 -> 2.3 us, 64 KiB 17.9 -> 6.7 us (floor 5.7), 4 KiB and 1 MiB unchanged.
pub(crate) const LARGE_RECORD: u64 = 2 * WINDOW;

/// How far a producer of large records walks before it may go back to the ring's
/// start: past the private cache of the cores of the day (0.5 to 2 MiB of L2).
pub(crate) const LARGE_WALK: u64 = 2 << 20;

/// Bit 0 of the shared consumer position (positions are multiples of
/// [`RECORD_ALIGN`]): set while the consumer waits in a receive call at that position
/// ([`Consumer::wait_here`]), cleared by its next store of the position. The producer
/// goes back to the ring's start only while it is set: the padding record that leaves
/// behind holds the rest of the ring until the consumer passes it, which a waiting
/// consumer does at once, and one busy elsewhere only at its next receive (until then
/// the ring would hold less than its capacity). A hint: no safety property depends on
/// it.
pub(crate) const WAITING: u64 = 1;

/// Whether a record of `need` bytes (padding included) at ring offset `off` enters a
/// [`WINDOW`] that the bytes before `off` do not reach: where [`Producer::reserve`]
/// looks whether it can go back to the ring's start. Never true in a ring of at most
/// one window, except on a wrap.
#[inline(always)]
fn enters_window(off: u64, need: u64) -> bool {
    off != 0 && ((off - 1) ^ (off + need - 1)) >= WINDOW
}

/// Whether a record of `rec` bytes (without padding) entering a window at ring offset
/// `off` may go back to the ring's start, if the ring is empty and the consumer waits:
/// the start lies behind it, and a large record has walked far enough
/// ([`LARGE_RECORD`]).
#[inline]
fn may_go_back(off: u64, rec: u64, ring_size: u64) -> bool {
    rec <= off && (rec <= LARGE_RECORD || off >= LARGE_WALK.min(ring_size / 2))
}

/// Multiplier of [`stamp`]: odd, so multiplication is one-to-one on 64-bit words.
const STAMP_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The stamp of a record at position `pos` (a multiple of 8) in a ring with key `key`.
/// One-to-one in `pos`, so a record of an earlier lap at the same offset never carries
/// the stamp of the current one; keyed (a random key per channel), so payload bytes
/// match it only by a 2^-64 chance; never 0 for a position below 2^63, because the key
/// has its top bit set ([`Geometry::check`]).
#[inline(always)]
pub(crate) fn stamp(key: u64, pos: u64) -> u64 {
    ((pos >> 3) ^ key).wrapping_mul(STAMP_MUL)
}

/// A 64-bit position word shared with the other side.
pub(crate) trait Cursor {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
}

impl Cursor for std::sync::atomic::AtomicU64 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        std::sync::atomic::AtomicU64::store(self, value, order)
    }
}

#[cfg(loom)]
impl Cursor for loom::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        loom::sync::atomic::AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        loom::sync::atomic::AtomicU64::store(self, value, order)
    }
}

/// The ring's bytes. Offsets passed in are always inside the ring (the algorithm checks
/// them); implementations check again and ignore out-of-range calls in release builds.
/// Record header words are atomic: the stamp is what publishes a record.
pub(crate) trait RingBytes {
    /// Stores one 8-byte header word at an 8-aligned offset.
    fn write_word(&self, off: u64, word: u64, order: Ordering);
    /// Loads one 8-byte header word at an 8-aligned offset.
    fn read_word(&self, off: u64, order: Ordering) -> u64;
}

/// The kind-and-length word of a message of `len` bytes.
#[inline(always)]
pub(crate) fn msg_word(len: u32) -> u64 {
    (TAG_MSG as u64) << 32 | len as u64
}

/// The kind-and-length word of `pad` bytes of padding.
#[inline(always)]
fn pad_word(pad: u64) -> u64 {
    (TAG_PAD as u64) << 32 | pad
}

/// Space reserved by the producer, not yet visible to the consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reserved {
    /// The producer position at reservation (where a padding record goes, if any).
    pub start: u64,
    /// Position of the record header.
    pub pos: u64,
    /// Offset of the payload in the ring.
    pub payload_off: u64,
    /// Bytes reserved for the payload.
    pub len: u32,
}

/// The producer's private state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Producer {
    /// The committed position; the shared `head` is only ever written from it.
    pub head: u64,
    /// The last consumer position read.
    pub cached_tail: u64,
    /// Whether the consumer waited at that position when it was read ([`WAITING`]).
    pub consumer_waiting: bool,
}

impl Producer {
    /// A producer at position `head`, with the consumer at `tail` (both checked by the
    /// caller).
    pub fn at(head: u64, tail: u64) -> Producer {
        Producer {
            head,
            cached_tail: tail,
            consumer_waiting: false,
        }
    }

    /// The fast path of [`Producer::reserve`]: a reservation if the cached consumer
    /// position already shows room, `None` otherwise (full, too large, or the cache is
    /// stale: `reserve` sorts those out). Reads nothing from shared memory.
    #[inline(always)]
    pub fn reserve_cached(&self, g: &Geometry, len: usize) -> Option<Reserved> {
        if len > g.max_message as usize {
            return None;
        }
        let (pad, need) = self.needs(g, len as u32);
        if enters_window(self.head & g.mask(), need) {
            return None;
        }
        if g.ring_size - (self.head - self.cached_tail) < need {
            return None;
        }
        Some(self.reservation(g, pad, len as u32))
    }

    /// The padding before a `len`-byte record at the current position, and the room it
    /// needs: the padding and the record.
    #[inline(always)]
    fn needs(&self, g: &Geometry, len: u32) -> (u64, u64) {
        let rec = record_len(len);
        let off = self.head & g.mask();
        let pad = if off + rec > g.ring_size {
            g.ring_size - off
        } else {
            0
        };
        (pad, pad + rec)
    }

    #[inline(always)]
    fn reservation(&self, g: &Geometry, pad: u64, len: u32) -> Reserved {
        let pos = self.head + pad;
        Reserved {
            start: self.head,
            pos,
            payload_off: (pos & g.mask()) + RECORD_HEADER,
            len,
        }
    }

    /// Reloads the consumer's position into the cache, checked; returns it.
    #[inline]
    fn refresh_tail<C: Cursor + ?Sized>(
        &mut self,
        g: &Geometry,
        tail: &C,
    ) -> Result<u64, ChannelError> {
        // SYNC: Acquire pairs with the Release stores of `tail` in Consumer::release
        // and Consumer::peek_slow (and the same position's in wait_here and
        // stop_waiting): the consumer has finished reading the bytes it released.
        // (The sleep word is ordered by `super::wait`'s barriers.)
        let word = tail.load(Ordering::Acquire);
        let t = word & !WAITING;
        if t > self.head || self.head - t > g.ring_size || t % RECORD_ALIGN != 0 {
            return Err(ChannelError::Corrupt(
                "the receiver's position is out of range",
            ));
        }
        self.cached_tail = t;
        self.consumer_waiting = word & WAITING != 0;
        Ok(t)
    }

    /// Reserves room for a `len`-byte message, or `Ok(None)` if the ring is full.
    #[inline]
    pub fn reserve<C: Cursor + ?Sized>(
        &mut self,
        g: &Geometry,
        tail: &C,
        len: usize,
    ) -> Result<Option<Reserved>, ChannelError> {
        if len > g.max_message as usize {
            return Err(ChannelError::TooLarge {
                len,
                max: g.max_message as usize,
            });
        }
        let len = len as u32;
        let (mut pad, mut need) = self.needs(g, len);
        let off = self.head & g.mask();
        if enters_window(off, need) && may_go_back(off, record_len(len), g.ring_size) {
            // A record entering a new window of an empty ring goes to the ring's start
            // instead (after a padding record) if the consumer waits for it: while the
            // consumer keeps up, the same few kilobytes carry every message, warm in
            // both cores' caches, instead of a walk through the whole ring (a round
            // trip through a 256 KiB ring was about 20 ns slower than through a 4 KiB
            // one). Knowing the ring is empty costs a load of the consumer's line, once
            // per window. Without a waiting consumer the record stays where it is (see
            // [`WAITING`]: a burst after a pause must find the whole ring). Large
            // records walk further first ([`LARGE_RECORD`]).
            if self.refresh_tail(g, tail)? == self.head && self.consumer_waiting {
                pad = g.ring_size - off;
                need = pad + record_len(len);
            }
        }
        if g.ring_size - (self.head - self.cached_tail) < need
            && g.ring_size - (self.head - self.refresh_tail(g, tail)?) < need
        {
            return Ok(None);
        }
        Ok(Some(self.reservation(g, pad, len)))
    }

    /// Makes the first `len` bytes (at most the reserved length) of a reservation
    /// visible to the consumer.
    #[inline(always)]
    pub fn commit<C: Cursor + ?Sized, B: RingBytes + ?Sized>(
        &mut self,
        g: &Geometry,
        head: &C,
        bytes: &B,
        r: &Reserved,
        len: u32,
    ) {
        let len = len.min(r.len);
        let off = r.pos & g.mask();
        bytes.write_word(off + 8, msg_word(len), Ordering::Relaxed);
        // SYNC: Release pairs with the Acquire stamp loads in Consumer::peek and
        // peek_msg: the payload and the kind-and-length word are visible to a consumer
        // that sees this stamp. (The sleep-word load after it is ordered by
        // `super::wait::notify`'s barrier.)
        bytes.write_word(off, stamp(g.stamp_key, r.pos), Ordering::Release);
        if r.pos != r.start {
            let poff = r.start & g.mask();
            // Positions are multiples of 16: a padding record has room for its header.
            bytes.write_word(poff + 8, pad_word(r.pos - r.start), Ordering::Relaxed);
            // SYNC: Release pairs with the Acquire stamp loads in Consumer::peek_slow:
            // the message at the ring's start is visible before the padding leading
            // to it.
            bytes.write_word(poff, stamp(g.stamp_key, r.start), Ordering::Release);
        }
        self.head = r.pos + record_len(len);
        // SYNC: Release pairs with the Acquire loads of `head` at open, in describe and
        // in Consumer::confirm_empty: every record before it is published.
        head.store(self.head, Ordering::Release);
    }
}

/// A message found by the consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peeked {
    /// Offset of the payload in the ring.
    pub payload_off: u64,
    /// Payload length (checked against the limit and the ring).
    pub len: u32,
    /// The consumer position after this record.
    pub next: u64,
}

/// What one look at the consumer's position found ([`Consumer::poll_stamp`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Polled {
    /// A well-formed message.
    Msg(Peeked),
    /// Nothing published there yet.
    Nothing,
    /// A padding record or garbage.
    Other,
}

/// The consumer's private state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consumer {
    /// The released position; the shared `tail` is only ever written from it.
    pub tail: u64,
    /// Whether the shared `tail` carries [`WAITING`].
    pub waiting: bool,
}

impl Consumer {
    /// A consumer at position `tail` (as read from the shared word, [`WAITING`] masked),
    /// not waiting.
    pub fn at(tail: u64) -> Consumer {
        Consumer {
            tail: tail & !WAITING,
            waiting: false,
        }
    }

    /// A consumer taking over the shared position at `tail` (read from `tail_word` and
    /// checked, [`WAITING`] already masked by the caller): clears the mark a consumer
    /// that died waiting left, which would otherwise let the producer go back to the
    /// ring's start while nobody waits. One store of the same position, by the
    /// position's new owner.
    pub fn take_over<C: Cursor + ?Sized>(tail: u64, tail_word: &C) -> Consumer {
        let mut c = Consumer {
            tail,
            waiting: true,
        };
        c.stop_waiting(tail_word);
        c
    }

    /// Tells the producer that this consumer waits for the record at its position
    /// ([`WAITING`]); one store, at the start of a wait. Cleared by the next release,
    /// or by [`Consumer::end_wait`] when the wait ends without a message.
    #[inline]
    pub fn wait_here<C: Cursor + ?Sized>(&mut self, tail_word: &C) {
        if !self.waiting {
            self.waiting = true;
            // SYNC: Release, as every store of `tail` (Consumer::release): it publishes
            // no reads beyond those the last store did; the bit is a hint.
            tail_word.store(self.tail | WAITING, Ordering::Release);
        }
    }

    /// Ends a wait that [`Consumer::wait_here`] announced and that found no message
    /// (a timeout, an error).
    #[inline]
    pub fn stop_waiting<C: Cursor + ?Sized>(&mut self, tail_word: &C) {
        if self.waiting {
            self.waiting = false;
            // SYNC: Release, as in `wait_here`.
            tail_word.store(self.tail, Ordering::Release);
        }
    }

    /// [`Consumer::stop_waiting`], then one look at our position that passes a padding
    /// record the producer may have published while the mark stood (it went back to
    /// the ring's start just as the wait ended): else that padding would hold the
    /// ring's rest until our next receive. A message found is left for that receive;
    /// errors are left for it too.
    pub fn end_wait<C: Cursor + ?Sized, B: RingBytes + ?Sized>(
        &mut self,
        g: &Geometry,
        tail_word: &C,
        bytes: &B,
    ) {
        if self.waiting {
            self.stop_waiting(tail_word);
            let _ = self.peek(g, tail_word, bytes);
        }
    }

    /// The fast path of [`Consumer::peek`]: the next record if it is a well-formed
    /// message, `None` for anything else (nothing yet, padding, or garbage: `peek`
    /// sorts those out).
    #[inline(always)]
    pub fn peek_msg<B: RingBytes + ?Sized>(&self, g: &Geometry, bytes: &B) -> Option<Peeked> {
        match self.poll_stamp(g, bytes) {
            Polled::Msg(p) => Some(p),
            Polled::Nothing | Polled::Other => None,
        }
    }

    /// The message whose kind-and-length word `w` follows a matching stamp at ring
    /// offset `off` (our position), if it is a well-formed one.
    #[inline(always)]
    fn parse_msg(&self, g: &Geometry, off: u64, w: u64) -> Option<Peeked> {
        let (len, tag) = (w as u32, (w >> 32) as u32);
        if tag != TAG_MSG || len > g.max_message {
            return None;
        }
        let rec = record_len(len);
        if off + rec > g.ring_size {
            return None;
        }
        Some(Peeked {
            payload_off: off + RECORD_HEADER,
            len,
            next: self.tail + rec,
        })
    }

    /// One look at our position: the message if a well-formed one is published there,
    /// `Nothing` if nothing is, `Other` for anything else (padding, garbage: `peek`
    /// sorts those out). One load when nothing is there.
    #[inline(always)]
    pub fn poll_stamp<B: RingBytes + ?Sized>(&self, g: &Geometry, bytes: &B) -> Polled {
        let off = self.tail & g.mask();
        // SYNC: Acquire pairs with the Release stamp stores in Producer::commit.
        if bytes.read_word(off, Ordering::Acquire) != stamp(g.stamp_key, self.tail) {
            return Polled::Nothing;
        }
        match self.parse_msg(g, off, bytes.read_word(off + 8, Ordering::Relaxed)) {
            Some(p) => Polled::Msg(p),
            None => Polled::Other,
        }
    }

    /// Polls our position up to `spins` more times (pausing between polls) while
    /// nothing is there: the spinning part of a blocking receive, which returns a
    /// message as soon as its line arrives. `None` after the spins, or at once if a
    /// record that is not a plain message is there.
    #[inline(always)]
    pub fn spin_for_msg<B: RingBytes + ?Sized>(
        &self,
        g: &Geometry,
        bytes: &B,
        mut spins: u32,
    ) -> Option<Peeked> {
        loop {
            match self.poll_stamp(g, bytes) {
                Polled::Msg(p) => return Some(p),
                Polled::Other => return None,
                Polled::Nothing if spins == 0 => return None,
                Polled::Nothing => {}
            }
            spins -= 1;
            std::hint::spin_loop();
        }
    }

    /// The next message, `Ok(None)` if the ring is empty. Empty and a plain message
    /// are decided inline; padding and errors in [`Consumer::peek_slow`].
    #[inline(always)]
    pub fn peek<C: Cursor + ?Sized, B: RingBytes + ?Sized>(
        &mut self,
        g: &Geometry,
        tail_word: &C,
        bytes: &B,
    ) -> Result<Option<Peeked>, ChannelError> {
        match self.poll_stamp(g, bytes) {
            Polled::Msg(p) => Ok(Some(p)),
            Polled::Nothing => Ok(None),
            Polled::Other => self.peek_slow(g, tail_word, bytes),
        }
    }

    /// The next message, `Ok(None)` if the ring is empty: the whole decision, with
    /// padding records and validation.
    #[inline(never)]
    pub fn peek_slow<C: Cursor + ?Sized, B: RingBytes + ?Sized>(
        &mut self,
        g: &Geometry,
        tail_word: &C,
        bytes: &B,
    ) -> Result<Option<Peeked>, ChannelError> {
        // At most two rounds: a padding record always ends at the ring's end, so the
        // record after it starts at offset 0 and cannot be padding unless it fills the
        // whole ring, which the producer never writes.
        for _ in 0..3 {
            let off = self.tail & g.mask();
            // SYNC: Acquire pairs with the Release stamp stores in Producer::commit.
            // (A sleeping consumer's sleep-word store before it is ordered by
            // `super::wait::block_on`'s barrier.)
            if bytes.read_word(off, Ordering::Acquire) != stamp(g.stamp_key, self.tail) {
                return Ok(None);
            }
            // Our position is a multiple of 16, so a whole header fits before the end.
            let pad = g.ring_size - off;
            let w = bytes.read_word(off + 8, Ordering::Relaxed);
            let (len, tag) = (w as u32, (w >> 32) as u32);
            if tag == TAG_PAD {
                if len as u64 != pad {
                    return Err(ChannelError::Corrupt("a padding record has a wrong length"));
                }
                self.tail += pad;
                // SYNC: Release pairs with the Acquire load of `tail` in
                // Producer::reserve. A waiting consumer still waits.
                tail_word.store(self.tail | self.waiting as u64, Ordering::Release);
                continue;
            }
            if tag != TAG_MSG {
                return Err(ChannelError::Corrupt("a record has an unknown tag"));
            }
            if len > g.max_message {
                return Err(ChannelError::Corrupt(
                    "a record is longer than the channel's message limit",
                ));
            }
            let rec = record_len(len);
            if off + rec > g.ring_size {
                return Err(ChannelError::Corrupt("a record runs past the ring's end"));
            }
            return Ok(Some(Peeked {
                payload_off: off + RECORD_HEADER,
                len,
                next: self.tail + rec,
            }));
        }
        Err(ChannelError::Corrupt("padding records follow each other"))
    }

    /// After [`Consumer::peek`] found nothing: checks that the producer's `head` does
    /// not claim a record at our position whose stamp is missing (overwritten by a
    /// buggy or hostile process), which would otherwise leave both sides waiting for
    /// ever. `Ok(true)`: a record has been published meanwhile (peek again). Costs a
    /// load of the producer's line, so it runs on the slow polls only.
    pub fn confirm_empty<C: Cursor + ?Sized, B: RingBytes + ?Sized>(
        &self,
        g: &Geometry,
        head_word: &C,
        bytes: &B,
    ) -> Result<bool, ChannelError> {
        // SYNC: Acquire pairs with the Release store of `head` in Producer::commit:
        // every stamp before that position is visible.
        let head = head_word.load(Ordering::Acquire);
        // A head at or behind us says nothing (a producer that died between a stamp
        // and its head store leaves it behind); one more than a ring ahead is garbage
        // that the producer side reports.
        if head <= self.tail || head - self.tail > g.ring_size {
            return Ok(false);
        }
        let off = self.tail & g.mask();
        // SYNC: Acquire pairs with the Release stamp stores in Producer::commit.
        if bytes.read_word(off, Ordering::Acquire) == stamp(g.stamp_key, self.tail) {
            return Ok(true);
        }
        Err(ChannelError::Corrupt(
            "a published record's stamp was overwritten",
        ))
    }

    /// Gives the space of a peeked message back to the producer.
    #[inline(always)]
    pub fn release<C: Cursor + ?Sized>(&mut self, tail: &C, p: &Peeked) {
        self.tail = p.next;
        self.waiting = false;
        // SYNC: Release pairs with the Acquire load of `tail` in Producer::reserve: our
        // reads of the payload happen before the producer reuses the bytes.
        tail.store(self.tail, Ordering::Release);
    }
}

/// The producer position for a producer that takes over: the shared `head`, moved past
/// records a producer that died had published (stamp stored) before storing `head`.
/// `tail` is the consumer position. Walks at most one ring of records, validating each.
pub(crate) fn recover_head<B: RingBytes + ?Sized>(
    g: &Geometry,
    head: u64,
    tail: u64,
    bytes: &B,
) -> Result<u64, ChannelError> {
    let mut p = head.max(tail);
    for _ in 0..=g.ring_size / RECORD_HEADER {
        if p - tail >= g.ring_size {
            break;
        }
        let off = p & g.mask();
        // SYNC: Acquire pairs with the Release stamp stores in Producer::commit.
        if bytes.read_word(off, Ordering::Acquire) != stamp(g.stamp_key, p) {
            break;
        }
        let w = bytes.read_word(off + 8, Ordering::Relaxed);
        let (len, tag) = (w as u32, (w >> 32) as u32);
        let step = if tag == TAG_PAD && len as u64 == g.ring_size - off {
            len as u64
        } else if tag == TAG_MSG && len <= g.max_message && off + record_len(len) <= g.ring_size {
            record_len(len)
        } else {
            // A stamped record with a bad kind-and-length word: stop here; the slot
            // will be overwritten, and the consumer has not passed it.
            break;
        };
        if p + step - tail > g.ring_size {
            break;
        }
        p += step;
    }
    if p - tail > g.ring_size {
        return Err(ChannelError::Corrupt("the ring holds more than it can"));
    }
    Ok(p)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicU64;

    use proptest::prelude::*;

    /// Heap bytes with the trait's contract: out-of-range words are ignored (write) or
    /// read as 0, and an offset that is not a multiple of 8 is a test failure.
    struct Heap(RefCell<Vec<u8>>);
    impl RingBytes for Heap {
        fn write_word(&self, off: u64, word: u64, _: Ordering) {
            assert_eq!(off % 8, 0, "unaligned header word");
            let off = off as usize;
            if let Some(w) = self.0.borrow_mut().get_mut(off..off + 8) {
                w.copy_from_slice(&word.to_le_bytes());
            }
        }
        fn read_word(&self, off: u64, _: Ordering) -> u64 {
            assert_eq!(off % 8, 0, "unaligned header word");
            let off = off as usize;
            self.0
                .borrow()
                .get(off..off + 8)
                .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap()))
        }
    }
    impl Heap {
        fn write(&self, off: u64, data: &[u8]) {
            let off = off as usize;
            self.0.borrow_mut()[off..off + data.len()].copy_from_slice(data);
        }
        fn read(&self, off: u64, len: u32) -> Vec<u8> {
            let off = off as usize;
            self.0.borrow()[off..off + len as usize].to_vec()
        }
    }

    struct Ring {
        g: Geometry,
        head: AtomicU64,
        tail: AtomicU64,
        bytes: Heap,
        p: Producer,
        c: Consumer,
    }

    impl Ring {
        fn new(size: u64, max: u32) -> Ring {
            Ring {
                g: Geometry {
                    ring_size: size,
                    max_message: max,
                    stamp_key: super::super::fuzz::SEED_KEY,
                },
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                bytes: Heap(RefCell::new(vec![0; size as usize])),
                p: Producer::at(0, 0),
                c: Consumer::at(0),
            }
        }
        fn send(&mut self, msg: &[u8], commit_len: Option<u32>) -> Result<bool, ChannelError> {
            match self.p.reserve(&self.g, &self.tail, msg.len())? {
                None => Ok(false),
                Some(r) => {
                    self.bytes.write(r.payload_off, msg);
                    let n = commit_len.unwrap_or(msg.len() as u32);
                    self.p.commit(&self.g, &self.head, &self.bytes, &r, n);
                    Ok(true)
                }
            }
        }
        /// What a blocking receive does when it finds nothing: announce the wait.
        fn wait(&mut self) {
            self.c.wait_here(&self.tail);
        }
        fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
            match self.c.peek(&self.g, &self.tail, &self.bytes)? {
                None => Ok(None),
                Some(p) => {
                    let v = self.bytes.read(p.payload_off, p.len);
                    self.c.release(&self.tail, &p);
                    Ok(Some(v))
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(Vec<u8>),
        SendShort(Vec<u8>, u32),
        Recv,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..60).prop_map(Op::Send),
            (proptest::collection::vec(any::<u8>(), 0..60), 0u32..60)
                .prop_map(|(v, n)| Op::SendShort(v, n)),
            Just(Op::Recv),
            Just(Op::Recv),
        ]
    }

    proptest! {
        #[test]
        fn ring_matches_a_vecdeque_model(ops in proptest::collection::vec(op(), 1..300)) {
            let mut ring = Ring::new(256, 56);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut model_bytes = 0u64;
            for op in ops {
                match op {
                    Op::Send(m) | Op::SendShort(m, _) if m.len() > 56 => {
                        let too_large = matches!(ring.send(&m, None), Err(ChannelError::TooLarge { .. }));
                        prop_assert!(too_large);
                    }
                    Op::Send(m) => {
                        let sent = ring.send(&m, None).unwrap();
                        // A message always fits when the ring is empty.
                        prop_assert!(sent || model_bytes > 0);
                        if sent { model_bytes += record_len(m.len() as u32); model.push_back(m); }
                    }
                    Op::SendShort(m, n) => {
                        let n = n.min(m.len() as u32);
                        if ring.send(&m, Some(n)).unwrap() {
                            model_bytes += record_len(n);
                            model.push_back(m[..n as usize].to_vec());
                        }
                    }
                    Op::Recv => {
                        let got = ring.recv().unwrap();
                        let want = model.pop_front();
                        if let Some(w) = &want { model_bytes -= record_len(w.len() as u32); }
                        prop_assert_eq!(got, want);
                    }
                }
            }
            while let Some(w) = model.pop_front() {
                prop_assert_eq!(ring.recv().unwrap(), Some(w));
            }
            prop_assert_eq!(ring.recv().unwrap(), None);
        }

        /// Through a ring of four windows, with a consumer that sometimes waits (so
        /// the producer goes back to the ring's start) and sometimes stops waiting
        /// without a message: the contents match the model, and while the consumer
        /// does not wait no padding but the one at the ring's end (shorter than a
        /// record) holds room, so a send fails only when the messages themselves
        /// fill the ring.
        #[test]
        fn a_consumer_that_does_not_wait_never_loses_capacity(
            ops in proptest::collection::vec(
                prop_oneof![
                    1 => (0usize..60).prop_map(Some),
                    1 => Just(None),
                ],
                1..600,
            ),
            waits in proptest::collection::vec(0u8..3, 600),
        ) {
            const SIZE: u64 = 4 * WINDOW;
            let mut ring = Ring::new(SIZE, 56);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut model_bytes = 0u64;
            let mut seq = 0u8;
            for (op, wait) in ops.into_iter().zip(waits) {
                match op {
                    Some(len) => {
                        let len = len.min(56);
                        let m = vec![seq; len];
                        seq = seq.wrapping_add(1);
                        let sent = ring.send(&m, None).unwrap();
                        if sent {
                            model_bytes += record_len(len as u32);
                            model.push_back(m);
                        } else if !ring.c.waiting {
                            prop_assert!(
                                model_bytes + record_len(len as u32) + record_len(56) > SIZE,
                                "refused with {} of {} bytes in messages", model_bytes, SIZE
                            );
                        }
                    }
                    None => {
                        let got = ring.recv().unwrap();
                        let want = model.pop_front();
                        if let Some(w) = &want { model_bytes -= record_len(w.len() as u32); }
                        prop_assert_eq!(got, want);
                    }
                }
                // As a blocking receive on an empty ring: announce a wait, or end one.
                match wait {
                    0 if model.is_empty() => ring.wait(),
                    1 => ring.c.end_wait(&ring.g, &ring.tail, &ring.bytes),
                    _ => {}
                }
                if !ring.c.waiting {
                    let in_flight = ring.p.head - (ring.tail.load(Ordering::Relaxed) & !WAITING);
                    prop_assert!(
                        in_flight - model_bytes < record_len(56),
                        "{} bytes of padding held", in_flight - model_bytes
                    );
                }
            }
            while let Some(w) = model.pop_front() {
                prop_assert_eq!(ring.recv().unwrap(), Some(w));
            }
            prop_assert_eq!(ring.recv().unwrap(), None);
        }

        #[test]
        fn garbage_never_panics(words in proptest::collection::vec(any::<u64>(), 32), head in any::<u64>(), tail in any::<u64>()) {
            let mut ring = Ring::new(256, 56);
            for (i, w) in words.iter().enumerate() { ring.bytes.write_word(i as u64 * 8, *w, Ordering::Relaxed); }
            ring.head.store(head, Ordering::Relaxed);
            ring.c.tail = tail & !15;
            for _ in 0..40 {
                match ring.recv() { Ok(Some(_)) => {}, _ => break }
            }
            // The producer's own position is validated at open (16-aligned); the
            // consumer's is garbage.
            let head = head & !15;
            ring.p.head = head;
            ring.p.cached_tail = head;
            ring.tail.store(tail, Ordering::Relaxed);
            for _ in 0..40 {
                match ring.send(b"abc", None) { Ok(true) => {}, _ => break }
            }
        }
    }

    #[test]
    fn corrupt_records_are_errors() {
        let mut ring = Ring::new(128, 40);
        let key = ring.g.stamp_key;
        assert!(ring.send(b"hello", None).unwrap());
        // A stamped record whose kind-and-length word is bad.
        for w in [msg_word(41), msg_word(100), 0xdead_beef, pad_word(8)] {
            ring.bytes.write_word(8, w, Ordering::Relaxed);
            assert!(
                matches!(ring.recv(), Err(ChannelError::Corrupt(_))),
                "{w:#x} taken for a record"
            );
        }
        // A stamp overwritten while `head` covers the record: an error on the slow poll,
        // not a wait for ever; a stamp of another position reads as "nothing yet".
        ring.bytes.write_word(8, msg_word(5), Ordering::Relaxed);
        ring.bytes.write_word(0, stamp(key, 128), Ordering::Relaxed);
        assert_eq!(ring.recv().unwrap(), None);
        assert!(matches!(
            ring.c.confirm_empty(&ring.g, &ring.head, &ring.bytes),
            Err(ChannelError::Corrupt(_))
        ));
        ring.bytes.write_word(0, stamp(key, 0), Ordering::Relaxed);
        assert!(ring
            .c
            .confirm_empty(&ring.g, &ring.head, &ring.bytes)
            .unwrap());
        assert_eq!(ring.recv().unwrap().as_deref(), Some(&b"hello"[..]));
        // Nothing published after it: empty, and `head` agrees.
        assert!(!ring
            .c
            .confirm_empty(&ring.g, &ring.head, &ring.bytes)
            .unwrap());
    }

    #[test]
    fn stamps_differ_by_position_and_are_never_zero() {
        let key = super::super::fuzz::SEED_KEY;
        let mut seen = std::collections::HashSet::new();
        for pos in (0..1u64 << 16).map(|p| p * 8) {
            let s = stamp(key, pos);
            assert_ne!(s, 0);
            assert!(seen.insert(s), "stamp of {pos} repeats");
        }
        // A record one lap (of any ring size) earlier never carries the current stamp.
        for ring in [64u64, 4096, 1 << 30] {
            assert_ne!(stamp(key, 5 * ring + 8), stamp(key, 4 * ring + 8));
        }
    }

    #[test]
    fn a_gap_at_the_end_becomes_a_padding_record() {
        // 32- and 48-byte records in a 128-byte ring: after 32 + 48 + 32 bytes, a
        // 48-byte record does not fit in the last 16, which become padding.
        let mut ring = Ring::new(128, 32);
        for round in 0..20u8 {
            for len in [8usize, 24, 8, 24] {
                assert!(ring.send(&vec![round; len], None).unwrap());
                assert_eq!(ring.recv().unwrap(), Some(vec![round; len]));
            }
            assert_eq!(ring.recv().unwrap(), None);
        }
        assert_eq!(ring.p.head % 16, 0);
    }

    #[test]
    fn large_messages_into_an_empty_ring_start_at_the_beginning() {
        let mut ring = Ring::new(1 << 16, 8192);
        let big = vec![7u8; WINDOW as usize];
        for round in 0..5 {
            assert!(ring.send(b"small", None).unwrap());
            assert_eq!(ring.recv().unwrap().as_deref(), Some(&b"small"[..]));
            ring.wait();
            // Empty, and the consumer waits: the large one goes to offset 0, after a
            // padding record, once the ring's start lies behind it (it needs the
            // padding and itself to fit in one ring: not so in round 0, right after
            // the start, where it simply follows).
            let r = ring
                .p
                .reserve(&ring.g, &ring.tail, big.len())
                .unwrap()
                .unwrap();
            if round > 0 {
                assert_eq!(r.payload_off, RECORD_HEADER, "round {round}");
            }
            assert!(ring.send(&big, None).unwrap());
            assert_eq!(ring.recv().unwrap(), Some(big.clone()));
        }
        // Not empty: no rewind, the large message follows the small one.
        ring.wait();
        assert!(ring.send(b"small", None).unwrap());
        let r = ring
            .p
            .reserve(&ring.g, &ring.tail, big.len())
            .unwrap()
            .unwrap();
        assert_ne!(r.payload_off, RECORD_HEADER);
        // Empty, but the consumer does not wait (it never did, or stopped): no rewind
        // either, so the padding never holds the ring's rest from a consumer that is
        // busy elsewhere.
        assert_eq!(ring.recv().unwrap().as_deref(), Some(&b"small"[..]));
        for waited in [false, true] {
            if waited {
                ring.wait();
                ring.c.stop_waiting(&ring.tail);
            }
            let r = ring
                .p
                .reserve(&ring.g, &ring.tail, big.len())
                .unwrap()
                .unwrap();
            assert_eq!(r.start, r.pos, "no padding (waited: {waited})");
            assert!(r.pos > WINDOW, "at {} (waited: {waited})", r.pos);
        }
    }

    #[test]
    fn large_records_walk_past_the_private_cache_before_going_back() {
        // Each message is taken at once by a consumer that then waits: small records
        // would go back at every window; large ones go back only from LARGE_WALK on
        // (or half of a smaller ring), and then to the start.
        for (size, len) in [(8u64 << 20, 16_000usize), (1 << 18, 9000), (1 << 20, 65536)] {
            let mut ring = Ring::new(size, len as u32);
            let walk = LARGE_WALK.min(size / 2);
            let msg = vec![3u8; len];
            let (mut furthest, mut back) = (0, 0);
            let mut last = 0;
            for i in 0..(3 * walk / len as u64 + 10) {
                ring.wait();
                let r = ring.p.reserve(&ring.g, &ring.tail, len).unwrap().unwrap();
                if r.payload_off == RECORD_HEADER && i > 0 {
                    assert!(
                        last >= walk,
                        "went back from {last} ({size} B ring, {len} B)"
                    );
                    back += 1;
                }
                furthest = furthest.max(r.payload_off);
                last = r.payload_off + len as u64;
                assert!(ring.send(&msg, None).unwrap());
                assert_eq!(ring.recv().unwrap().as_deref(), Some(&msg[..]));
            }
            assert!(back >= 2, "went back {back} times ({size} B ring, {len} B)");
            assert!(
                furthest < walk + 2 * record_len(len as u32),
                "walked to {furthest} ({size} B ring, {len} B)"
            );
        }
        // The largest small record still goes back at its first window entry.
        let mut ring = Ring::new(8 << 20, 8192);
        let len = (LARGE_RECORD - RECORD_HEADER) as usize;
        assert_eq!(record_len(len as u32), LARGE_RECORD);
        for _ in 0..3 {
            ring.wait();
            assert!(ring.send(&vec![1u8; len], None).unwrap());
            assert!(ring.recv().unwrap().is_some());
        }
        assert!(ring.p.head > 8 << 20, "stayed at {}", ring.p.head);
    }

    #[test]
    fn a_wait_that_ends_as_the_producer_goes_back_passes_the_padding() {
        const SIZE: u64 = 1 << 16;
        let mut ring = Ring::new(SIZE, 64);
        // One window of 32-byte records, each taken at once.
        for i in 0..(WINDOW / 32) as u32 {
            ring.wait();
            assert!(ring.send(&i.to_le_bytes(), None).unwrap());
            assert!(ring.recv().unwrap().is_some());
        }
        // The consumer waits; the producer goes back to the start (padding from
        // WINDOW to the end, the message at SIZE); the wait ends (a timeout) before
        // the consumer took it.
        ring.wait();
        assert!(ring.send(b"late", None).unwrap());
        assert_eq!(ring.p.head, SIZE + 32);
        ring.c.end_wait(&ring.g, &ring.tail, &ring.bytes);
        assert_eq!(
            ring.tail.load(Ordering::Relaxed),
            SIZE,
            "padding passed, no mark"
        );
        // The whole ring but the message is free, and the message is still there.
        let mut n = 0u32;
        while ring.send(&n.to_le_bytes(), None).unwrap() {
            n += 1;
        }
        assert_eq!(n as u64, SIZE / 32 - 1);
        assert_eq!(ring.recv().unwrap().as_deref(), Some(&b"late"[..]));
        for i in 0..n {
            assert_eq!(ring.recv().unwrap(), Some(i.to_le_bytes().to_vec()));
        }
    }

    #[test]
    fn a_drained_ring_keeps_small_messages_in_its_first_window() {
        let mut ring = Ring::new(1 << 16, 64);
        let mut highest = 0;
        for i in 0..5000u32 {
            let msg = i.to_le_bytes();
            ring.wait();
            // As a sender does: the cached fast path first.
            let r = match ring.p.reserve_cached(&ring.g, msg.len()) {
                Some(r) => r,
                None => ring
                    .p
                    .reserve(&ring.g, &ring.tail, msg.len())
                    .unwrap()
                    .unwrap(),
            };
            highest = highest.max(r.payload_off + msg.len() as u64);
            assert!(ring.send(&msg, None).unwrap());
            assert_eq!(
                ring.recv().unwrap().as_deref(),
                Some(&msg[..]),
                "message {i}"
            );
        }
        assert!(highest <= WINDOW, "reached offset {highest}");
        // A ring that is never drained below one message walks on past the window.
        assert!(ring.send(b"kept", None).unwrap());
        let mut walked = 0;
        for i in 0..2000u32 {
            let msg = i.to_le_bytes();
            let r = ring
                .p
                .reserve(&ring.g, &ring.tail, msg.len())
                .unwrap()
                .unwrap();
            walked = walked.max(r.payload_off);
            assert!(ring.send(&msg, None).unwrap());
            assert!(ring.recv().unwrap().is_some());
        }
        assert!(walked > WINDOW, "stayed below {walked}");
    }

    #[test]
    fn positions_stay_on_sixteen_byte_boundaries() {
        for len in 0..100u32 {
            assert_eq!(record_len(len) % RECORD_ALIGN, 0, "record of {len}");
            assert!(record_len(len) >= RECORD_HEADER + len as u64);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicU64;
    use loom::sync::Arc;

    /// Ring bytes as loom atomics, one per 8-byte word, written Relaxed: loom then finds
    /// any missing happens-before between a write and the read of the same word.
    struct Words(Vec<AtomicU64>);
    impl RingBytes for Words {
        fn write_word(&self, off: u64, word: u64, order: Ordering) {
            if let Some(w) = self.0.get((off / 8) as usize) {
                w.store(word, order);
            }
        }
        fn read_word(&self, off: u64, order: Ordering) -> u64 {
            self.0.get((off / 8) as usize).map_or(0, |w| w.load(order))
        }
    }

    struct Shared {
        head: AtomicU64,
        tail: AtomicU64,
        bytes: Words,
    }

    fn model(ring_size: u64, max: u32, msgs: &'static [u32]) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(move || {
            let g = Geometry {
                ring_size,
                max_message: max,
                stamp_key: 0x8000_0000_0000_0001,
            };
            let s = Arc::new(Shared {
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                bytes: Words((0..ring_size / 8).map(|_| AtomicU64::new(0)).collect()),
            });
            let s2 = s.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer::at(0, 0);
                for (i, &len) in msgs.iter().enumerate() {
                    loop {
                        match p.reserve(&g, &s2.tail, len as usize).unwrap() {
                            Some(r) => {
                                let mut off = r.payload_off;
                                while off < r.payload_off + len as u64 {
                                    s2.bytes.write_word(off, 1000 + i as u64, Ordering::Relaxed);
                                    off += 8;
                                }
                                p.commit(&g, &s2.head, &s2.bytes, &r, len);
                                break;
                            }
                            None => loom::thread::yield_now(),
                        }
                    }
                }
            });
            let mut c = Consumer::at(0);
            for (i, &len) in msgs.iter().enumerate() {
                loop {
                    match c.peek(&g, &s.tail, &s.bytes).unwrap() {
                        Some(p) => {
                            assert_eq!(p.len, len);
                            let mut off = p.payload_off;
                            while off < p.payload_off + len as u64 {
                                assert_eq!(
                                    s.bytes.read_word(off, Ordering::Relaxed),
                                    1000 + i as u64
                                );
                                off += 8;
                            }
                            c.release(&s.tail, &p);
                            break;
                        }
                        None => {
                            // As a blocking receive: the producer reads the mark
                            // with the position and must take it apart.
                            c.wait_here(&s.tail);
                            loom::thread::yield_now()
                        }
                    }
                }
            }
            producer.join().unwrap();
        });
    }

    #[test]
    fn loom_ring_small_messages() {
        model(64, 8, &[8, 0, 8, 8]);
    }

    #[test]
    fn loom_ring_laps_over_stale_headers() {
        // Six 32-byte records through a 64-byte ring: slots are reused, and the stamp of
        // a record of the previous lap must never be taken for a new record.
        model(64, 8, &[8, 8, 8, 8, 8, 8]);
    }

    #[test]
    fn loom_ring_wraps_with_padding() {
        // Records of 48, 48 and 48 bytes in a 128-byte ring: the third does not fit in
        // the last 32 bytes, which become a padding record.
        model(128, 32, &[24, 24, 24]);
    }
}
