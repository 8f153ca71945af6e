//! Bodies of the fuzz targets in `/fuzz`, public so that the targets and a normal test
//! (on seed inputs) run the same code. Not part of the stable API.
#![doc(hidden)]

use std::sync::atomic::Ordering;

use super::layout::{self, RING_OFFSET};
use super::ring::{Consumer, Producer, RingBytes};
use crate::region::Region;

/// Private memory posing as a channel object (also for the MPSC and broadcast bodies).
pub(crate) struct Heap(Box<[u64]>);

impl Heap {
    /// Zeroed memory of at least `bytes` bytes.
    pub(crate) fn new(bytes: u64) -> Heap {
        Heap(vec![0u64; bytes.div_ceil(8) as usize].into_boxed_slice())
    }
}

// SAFETY: the boxed slice lives as long as the struct and is 8 * len bytes, writable.
unsafe impl Region for Heap {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr() as *mut u8
    }
    fn len(&self) -> usize {
        self.0.len() * 8
    }
    fn is_writable(&self) -> bool {
        true
    }
    fn object_name(&self) -> String {
        "fuzz".into()
    }
}

struct HeapRing<'a>(&'a Heap);

impl RingBytes for HeapRing<'_> {
    fn write_word(&self, off: u64, word: u64, order: Ordering) {
        if let Ok(a) = self.0.atomic_u64(RING_OFFSET.saturating_add(off as usize)) {
            a.store(word, order);
        }
    }
    fn read_word(&self, off: u64, order: Ordering) -> u64 {
        self.0
            .atomic_u64(RING_OFFSET.saturating_add(off as usize))
            .map(|a| a.load(order))
            .unwrap_or(0)
    }
}

/// Treats `data` as the bytes of a channel object: validates it, describes it, and if
/// it validates, receives and sends through it. Must never panic, hang or misbehave.
pub fn check_bytes(data: &[u8]) {
    let len = data.len().clamp(RING_OFFSET + 64, 1 << 20);
    let heap = Heap::new(len as u64);
    let n = data.len().min(heap.len());
    let _ = heap.write_at(0, &data[..n]);
    let _ = super::describe(&heap);
    let Ok(g) = layout::validate(&heap) else {
        return;
    };
    let (Ok(head), Ok(tail)) = (
        heap.atomic_u64(layout::HEAD_OFFSET),
        heap.atomic_u64(layout::TAIL_OFFSET),
    ) else {
        return;
    };
    let bytes = HeapRing(&heap);
    let t = tail.load(Ordering::Relaxed);
    let mut c = Consumer::at(t);
    for _ in 0..4096 {
        match c.peek(&g, tail, &bytes) {
            Ok(Some(p)) => {
                assert!(p.payload_off + p.len as u64 <= g.ring_size);
                assert!(p.next > c.tail);
                c.release(tail, &p);
            }
            Ok(None) => {
                let _ = c.confirm_empty(&g, head, &bytes);
                break;
            }
            Err(_) => break,
        }
    }
    let h = match super::ring::recover_head(&g, head.load(Ordering::Relaxed), c.tail, &bytes) {
        Ok(h) => h,
        Err(_) => return,
    };
    let mut p = Producer::at(h, c.tail);
    for i in 0..4096usize {
        match p.reserve(&g, tail, i % (g.max_message as usize + 1)) {
            Ok(Some(r)) => {
                assert!(r.payload_off + r.len as u64 <= g.ring_size);
                p.commit(&g, head, &bytes, &r, r.len);
            }
            _ => break,
        }
    }
}

/// The stamp key of seed objects (fixed, so that seeds are reproducible).
pub const SEED_KEY: u64 = 0x8000_5348_4d4b_4954;

/// A valid channel object of `ring` bytes holding `messages`, as a seed for the fuzzer
/// and the seed test.
pub fn seed(ring: u64, max_message: u32, messages: &[&[u8]]) -> Vec<u8> {
    let g = layout::Geometry {
        ring_size: ring,
        max_message,
        stamp_key: SEED_KEY,
    };
    let heap = Heap::new(g.total_size());
    if layout::init(&heap, g).is_err() || crate::header::publish(&heap).is_err() {
        return Vec::new();
    }
    if let (Ok(head), Ok(tail)) = (
        heap.atomic_u64(layout::HEAD_OFFSET),
        heap.atomic_u64(layout::TAIL_OFFSET),
    ) {
        let bytes = HeapRing(&heap);
        let mut p = Producer::at(0, 0);
        for m in messages {
            if let Ok(Some(r)) = p.reserve(&g, tail, m.len()) {
                let _ = heap.write_at(RING_OFFSET + r.payload_off as usize, m);
                p.commit(&g, head, &bytes, &r, r.len);
            }
        }
    }
    heap.read_vec(0, heap.len()).unwrap_or_default()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fuzz_body_on_seed_inputs() {
        let good = seed(256, 64, &[b"hello", b"", &[7u8; 64], b"world"]);
        assert!(!good.is_empty());
        let info = super::super::describe(&{
            let h = Heap::new(good.len() as u64);
            h.write_at(0, &good).unwrap();
            h
        })
        .unwrap();
        assert_eq!(info.messages, Some(4));
        check_bytes(&good);
        check_bytes(&[]);
        check_bytes(&[0xff; 2000]);
        // Every single-byte corruption of the header and first records.
        for i in 0..(RING_OFFSET + 128).min(good.len()) {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                check_bytes(&bad);
            }
        }
    }
}
