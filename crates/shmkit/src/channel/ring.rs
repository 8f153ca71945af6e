//! The ring algorithm, apart from where its memory lives: positions, records, padding
//! and validation of everything read from the other side.
//!
//! [`Producer`] and [`Consumer`] hold each side's private state: its own position (the
//! only copy it trusts) and a cached copy of the other side's position, reloaded only
//! when the cache says the ring is full (producer) or empty (consumer). The positions in
//! shared memory are reached through [`Cursor`] and the ring bytes through [`RingBytes`],
//! so the same code runs over a mapping, over heap memory in property tests, and over
//! loom's atomics in the model checks (`cfg(loom)`).
//!
//! A record is published by its header word: the producer first zeroes the header slot
//! after the record (it always keeps 8 bytes of room for it), then stores the record's
//! header with Release. The consumer polls the header at its own position with Acquire:
//! zero means nothing yet, anything else is the next record. So a message crosses
//! between cores in the cache lines it occupies, without a separate index line; the
//! shared `head` is stored after each commit too, for inspection and for a restarted
//! producer ([`recover_head`]). A padding record is published after the message that
//! follows it, so the consumer never passes the end of the ring early.
//!
//! Every position, length and tag read from shared memory is checked before use; a bad
//! one yields [`ChannelError::Corrupt`], and no loop runs more than a bounded number of
//! times, so a hostile peer cannot cause a panic, undefined behaviour or a hang.

use std::sync::atomic::Ordering;

use super::layout::{record_len, Geometry, RECORD_HEADER, TAG_MSG, TAG_PAD};
use super::ChannelError;

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
/// Record headers are atomic words: the header is what publishes a record.
pub(crate) trait RingBytes {
    /// Stores one 8-byte record header at an 8-aligned offset.
    fn write_word(&self, off: u64, word: u64, order: Ordering);
    /// Loads one 8-byte record header at an 8-aligned offset.
    fn read_word(&self, off: u64, order: Ordering) -> u64;
}

/// The record header for a message of `len` bytes.
#[inline]
pub(crate) fn msg_word(len: u32) -> u64 {
    (TAG_MSG as u64) << 32 | len as u64
}

/// The record header for `pad` bytes of padding.
#[inline]
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
}

impl Producer {
    /// The fast path of [`Producer::reserve`]: a reservation if the cached consumer
    /// position already shows room, `None` otherwise (full, too large, or the cache is
    /// stale: `reserve` sorts those out). Reads nothing from shared memory.
    #[inline(always)]
    pub fn reserve_cached(&self, g: &Geometry, len: usize) -> Option<Reserved> {
        if len > g.max_message as usize {
            return None;
        }
        let (pad, need) = self.needs(g, len as u32);
        if g.ring_size - (self.head - self.cached_tail) < need {
            return None;
        }
        Some(self.reservation(g, pad, len as u32))
    }

    /// The padding before a `len`-byte record at the current position, and the room it
    /// needs: the padding, the record, and the next header slot.
    #[inline(always)]
    fn needs(&self, g: &Geometry, len: u32) -> (u64, u64) {
        let rec = record_len(len);
        let off = self.head & g.mask();
        let pad = if off + rec > g.ring_size {
            g.ring_size - off
        } else {
            0
        };
        (pad, pad + rec + RECORD_HEADER)
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
        let (pad, need) = self.needs(g, len);
        if g.ring_size - (self.head - self.cached_tail) < need {
            // SYNC: Acquire pairs with the Release stores of `tail` in Consumer::release
            // and Consumer::peek: the consumer has finished reading the bytes it
            // released. (The sleep word is ordered by `super::wait`'s barriers.)
            let t = tail.load(Ordering::Acquire);
            if t > self.head || self.head - t > g.ring_size || t % 8 != 0 {
                return Err(ChannelError::Corrupt(
                    "the receiver's position is out of range",
                ));
            }
            self.cached_tail = t;
            if g.ring_size - (self.head - t) < need {
                return Ok(None);
            }
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
        let next = r.pos + record_len(len);
        // The slot after the record reads as "nothing yet" before the record is visible.
        bytes.write_word(next & g.mask(), 0, Ordering::Relaxed);
        // SYNC: Release pairs with the Acquire header load in Consumer::peek: the payload
        // and the zeroed next slot are visible to a consumer that sees this header.
        // (The sleep-word load after it is ordered by `super::wait::notify`'s barrier.)
        bytes.write_word(r.pos & g.mask(), msg_word(len), Ordering::Release);
        if r.pos != r.start {
            // SYNC: Release pairs with the Acquire header load in Consumer::peek: the
            // message at the ring's start is visible before the padding leading to it.
            bytes.write_word(
                r.start & g.mask(),
                pad_word(r.pos - r.start),
                Ordering::Release,
            );
        }
        self.head = next;
        // SYNC: Release pairs with the Acquire loads of `head` at open and in describe.
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

/// The consumer's private state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consumer {
    /// The released position; the shared `tail` is only ever written from it.
    pub tail: u64,
}

impl Consumer {
    /// The fast path of [`Consumer::peek`]: the next record if it is a well-formed
    /// message, `None` for anything else (nothing yet, padding, or garbage: `peek`
    /// sorts those out). One load from shared memory.
    #[inline(always)]
    pub fn peek_msg<B: RingBytes + ?Sized>(&self, g: &Geometry, bytes: &B) -> Option<Peeked> {
        let off = self.tail & g.mask();
        // SYNC: Acquire pairs with the Release header stores in Producer::commit.
        let w = bytes.read_word(off, Ordering::Acquire);
        self.parse_msg(g, off, w)
    }

    /// The message whose header word `w` sits at ring offset `off` (our position), if
    /// it is a well-formed one.
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

    /// Whether the header word at our position is still 0 (nothing published yet): the
    /// cheapest poll, for spinning.
    #[inline(always)]
    pub fn nothing_yet<B: RingBytes + ?Sized>(&self, g: &Geometry, bytes: &B) -> bool {
        // SYNC: Relaxed: only a hint to stop spinning; the record is then read through
        // `peek`, whose Acquire load pairs with the producer's Release header store.
        bytes.read_word(self.tail & g.mask(), Ordering::Relaxed) == 0
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
        let off = self.tail & g.mask();
        // SYNC: Acquire pairs with the Release header stores in Producer::commit.
        let w = bytes.read_word(off, Ordering::Acquire);
        if w == 0 {
            return Ok(None);
        }
        match self.parse_msg(g, off, w) {
            Some(p) => Ok(Some(p)),
            None => self.peek_slow(g, tail_word, bytes),
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
            // SYNC: Acquire pairs with the Release header stores in Producer::commit.
            // (A sleeping consumer's sleep-word store before it is ordered by
            // `super::wait::block_on`'s barrier.)
            let w = bytes.read_word(off, Ordering::Acquire);
            if w == 0 {
                return Ok(None);
            }
            let (len, tag) = (w as u32, (w >> 32) as u32);
            if tag == TAG_PAD {
                let pad = g.ring_size - off;
                if len as u64 != pad {
                    return Err(ChannelError::Corrupt("a padding record has a wrong length"));
                }
                self.tail += pad;
                // SYNC: Release pairs with the Acquire load of `tail` in
                // Producer::reserve.
                tail_word.store(self.tail, Ordering::Release);
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

    /// Gives the space of a peeked message back to the producer.
    #[inline(always)]
    pub fn release<C: Cursor + ?Sized>(&mut self, tail: &C, p: &Peeked) {
        self.tail = p.next;
        // SYNC: Release pairs with the Acquire load of `tail` in Producer::reserve: our
        // reads of the payload happen before the producer reuses the bytes.
        tail.store(self.tail, Ordering::Release);
    }
}

/// The producer position for a producer that takes over: the shared `head`, moved past
/// records a producer that died had published (header stored) before storing `head`.
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
        // SYNC: Acquire pairs with the Release header stores in Producer::commit.
        let w = bytes.read_word(off, Ordering::Acquire);
        let (len, tag) = (w as u32, (w >> 32) as u32);
        let step = if w == 0 {
            break;
        } else if tag == TAG_PAD && len as u64 == g.ring_size - off {
            len as u64
        } else if tag == TAG_MSG && len <= g.max_message && off + record_len(len) <= g.ring_size {
            record_len(len)
        } else {
            // Not a record: a stale or foreign word. Stop here: the slot will be
            // overwritten, and the consumer has not passed it.
            break;
        };
        if p + step - tail > g.ring_size {
            break;
        }
        p += step;
    }
    if p - tail > g.ring_size - RECORD_HEADER {
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

    struct Heap(RefCell<Vec<u8>>);
    impl RingBytes for Heap {
        fn write_word(&self, off: u64, word: u64, _: Ordering) {
            let off = off as usize;
            self.0.borrow_mut()[off..off + 8].copy_from_slice(&word.to_le_bytes());
        }
        fn read_word(&self, off: u64, _: Ordering) -> u64 {
            let off = off as usize;
            u64::from_le_bytes(self.0.borrow()[off..off + 8].try_into().unwrap())
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
                },
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                bytes: Heap(RefCell::new(vec![0; size as usize])),
                p: Producer {
                    head: 0,
                    cached_tail: 0,
                },
                c: Consumer { tail: 0 },
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

        #[test]
        fn garbage_never_panics(words in proptest::collection::vec(any::<u64>(), 32), head in any::<u64>(), tail in any::<u64>()) {
            let mut ring = Ring::new(256, 56);
            for (i, w) in words.iter().enumerate() { ring.bytes.write_word(i as u64 * 8, *w, Ordering::Relaxed); }
            ring.head.store(head, Ordering::Relaxed);
            ring.c.tail = tail & !7;
            for _ in 0..40 {
                match ring.recv() { Ok(Some(_)) => {}, _ => break }
            }
            // The producer's own position is validated at open (8-aligned); the
            // consumer's is garbage.
            let head = head & !7;
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
        assert!(ring.send(b"hello", None).unwrap());
        ring.bytes.write_word(0, msg_word(41), Ordering::Relaxed);
        assert!(matches!(ring.recv(), Err(ChannelError::Corrupt(_))));
        ring.bytes.write_word(0, msg_word(100), Ordering::Relaxed);
        assert!(matches!(ring.recv(), Err(ChannelError::Corrupt(_))));
        ring.bytes.write_word(0, 0xdead_beef, Ordering::Relaxed);
        assert!(matches!(ring.recv(), Err(ChannelError::Corrupt(_))));
        ring.bytes.write_word(0, pad_word(8), Ordering::Relaxed);
        assert!(matches!(ring.recv(), Err(ChannelError::Corrupt(_))));
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
            self.0[(off / 8) as usize].store(word, order);
        }
        fn read_word(&self, off: u64, order: Ordering) -> u64 {
            self.0[(off / 8) as usize].load(order)
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
            };
            let s = Arc::new(Shared {
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                bytes: Words((0..ring_size / 8).map(|_| AtomicU64::new(0)).collect()),
            });
            let s2 = s.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer {
                    head: 0,
                    cached_tail: 0,
                };
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
            let mut c = Consumer { tail: 0 };
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
                        None => loom::thread::yield_now(),
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
        // Six 16-byte records through a 64-byte ring: slots are reused, and a stale
        // header from the previous lap must never be taken for a new record.
        model(64, 8, &[8, 8, 8, 8, 8, 8]);
    }

    #[test]
    fn loom_ring_wraps_with_padding() {
        // 24-byte records in a 64-byte ring: the third needs padding at the end.
        model(64, 16, &[16, 16, 16]);
    }
}
