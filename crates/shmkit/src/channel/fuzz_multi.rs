//! Bodies of the MPSC and broadcast fuzz target (`/fuzz/fuzz_targets/
//! channel_multi_bytes.rs`), public so that a normal test runs them on seed inputs.
//! Not part of the stable API.
#![doc(hidden)]

use std::sync::atomic::Ordering;

use super::fuzz::Heap;
use super::layout::{Geometry, RECORD_ALIGN};
use super::ring::{Consumer, RingBytes};
use super::seqlock::{self, SlotMem};
use super::{broadcast, mpsc};
use crate::header;
use crate::region::Region;

impl Heap {
    fn u64_at(&self, off: usize) -> u64 {
        self.atomic_u64(off)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
    /// Applies the input as (offset u16, byte) pairs over the object.
    fn scribble(&self, data: &[u8]) {
        for pair in data.chunks_exact(3) {
            let off = u16::from_le_bytes([pair[0], pair[1]]) as usize % self.len();
            let _ = self.write_at(off, &[pair[2]]);
        }
    }
}

/// A lane's ring inside the heap.
struct LaneRing<'a> {
    heap: &'a Heap,
    base: usize,
    size: u64,
}

impl RingBytes for LaneRing<'_> {
    fn write_word(&self, off: u64, word: u64, order: Ordering) {
        if off + 8 <= self.size {
            if let Ok(a) = self.heap.atomic_u64(self.base + off as usize) {
                a.store(word, order);
            }
        }
    }
    fn read_word(&self, off: u64, order: Ordering) -> u64 {
        if off + 8 > self.size {
            return 0;
        }
        self.heap
            .atomic_u64(self.base + off as usize)
            .map(|a| a.load(order))
            .unwrap_or(0)
    }
}

/// Broadcast slots inside the heap.
struct Slots<'a> {
    heap: &'a Heap,
    g: broadcast::BroadcastGeometry,
}

impl Slots<'_> {
    fn off(&self, p: u64) -> usize {
        (self.g.ring_offset() + (p % self.g.slots) * self.g.slot_size()) as usize
    }
}

impl SlotMem for Slots<'_> {
    fn seq(&self, p: u64, order: Ordering) -> u64 {
        self.heap
            .atomic_u64(self.off(p))
            .map(|a| a.load(order))
            .unwrap_or(0)
    }
    fn set_seq(&self, p: u64, v: u64, order: Ordering) {
        if let Ok(a) = self.heap.atomic_u64(self.off(p)) {
            a.store(v, order)
        }
    }
    fn len(&self, p: u64) -> u32 {
        self.heap
            .atomic_u32(self.off(p) + 8)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
    fn set_len(&self, p: u64, v: u32) {
        if let Ok(a) = self.heap.atomic_u32(self.off(p) + 8) {
            a.store(v, Ordering::Relaxed)
        }
    }
    fn word(&self, p: u64, i: usize) -> u64 {
        self.heap
            .u64_at(self.off(p) + broadcast::SLOT_HEADER + 8 * i)
    }
    fn set_word(&self, p: u64, i: usize, v: u64) {
        if let Ok(a) = self
            .heap
            .atomic_u64(self.off(p) + broadcast::SLOT_HEADER + 8 * i)
        {
            a.store(v, Ordering::Relaxed)
        }
    }
    fn fence(&self, order: Ordering) {
        std::sync::atomic::fence(order)
    }
}

/// Lays out a small MPSC object, scribbles `data` over it, then validates, describes
/// and drains every lane as the receiver would: must return, never panic or loop.
pub fn check_mpsc_bytes(data: &[u8]) {
    let g = mpsc::MpscGeometry {
        ring: Geometry {
            ring_size: 128,
            max_message: 32,
            stamp_key: super::fuzz::SEED_KEY,
        },
        lanes: 3,
    };
    let heap = Heap::new(g.total_size());
    if mpsc::init(&heap, g).is_err() || header::publish(&heap).is_err() {
        return;
    }
    heap.scribble(data);
    let _ = super::describe_any(&heap);
    let Ok(g) = mpsc::validate(&heap) else {
        return;
    };
    for lane in 0..g.lanes as usize {
        let base = g.lane(lane);
        let tail = heap.u64_at(base + mpsc::LANE_TAIL) & !super::ring::WAITING;
        if tail % RECORD_ALIGN != 0 || tail > u64::MAX / 2 {
            continue;
        }
        let ring = LaneRing {
            heap: &heap,
            base: base + mpsc::LANE_HEADER,
            size: g.ring.ring_size,
        };
        let tail_word = match heap.atomic_u64(base + mpsc::LANE_TAIL) {
            Ok(a) => a,
            Err(_) => continue,
        };
        let mut c = Consumer::at(tail);
        for _ in 0..64 {
            match c.peek(&g.ring, tail_word, &ring) {
                Ok(Some(p)) => {
                    assert!(p.payload_off + p.len as u64 <= g.ring.ring_size);
                    c.release(tail_word, &p);
                }
                _ => break,
            }
        }
    }
}

/// Lays out a small broadcast object with a few messages, scribbles `data` over it,
/// then validates, describes and reads it as a subscriber would.
pub fn check_broadcast_bytes(data: &[u8]) {
    let g = broadcast::BroadcastGeometry {
        slots: 4,
        max_message: 24,
        subscribers: 2,
        mode: broadcast::Mode::Overwrite,
    };
    let heap = Heap::new(g.total_size());
    if broadcast::init(&heap, g).is_err() || header::publish(&heap).is_err() {
        return;
    }
    let slots = Slots { heap: &heap, g };
    for p in 0..6u64 {
        let msg = vec![p as u8; p as usize * 4];
        seqlock::begin(&slots, p);
        seqlock::write(&slots, p, &msg);
        seqlock::finish(&slots, p, msg.len() as u32);
    }
    heap.scribble(data);
    let _ = super::describe_any(&heap);
    let Ok(g) = broadcast::validate(&heap) else {
        return;
    };
    let slots = Slots { heap: &heap, g };
    for p in 0..8 {
        if let seqlock::Slot::Got(v) = seqlock::read(&slots, p, g.max_message) {
            assert!(v.len() <= g.max_message as usize);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Seed inputs (empty, hitting the configs, the lanes, the slots) and a few
    /// thousand pseudo-random ones: the fuzz bodies return without panicking.
    #[test]
    fn fuzz_multi_bodies_on_seeds() {
        let mut seeds: Vec<Vec<u8>> = vec![
            vec![],
            vec![64, 0, 0xff, 76, 0, 0xff, 72, 0, 0xff],
            vec![0x00, 0x02, 0xff, 0x08, 0x02, 0xff],
            vec![0x10, 0x02, 0x55, 0x98, 0x02, 0xaa, 0x18, 0x03, 0x01],
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in 0..3000 {
            let mut v = Vec::new();
            for _ in 0..(n % 12 + 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes()[..3]);
            }
            seeds.push(v);
        }
        for s in &seeds {
            check_mpsc_bytes(s);
            check_broadcast_bytes(s);
        }
    }
}
