//! Body of the request-reply fuzz target (`/fuzz/fuzz_targets/rpc_bytes.rs`), public so
//! that the target and a normal test (on seed inputs) run the same code: any bytes laid
//! over a request-reply object are validated, described, and, if they validate, read
//! as the client and the server would read the slot. Not part of the stable API.
#![doc(hidden)]

use std::sync::atomic::Ordering;

use super::fuzz::Heap;
use super::rpc::{self, Look, SLOT_HEADER, SLOT_OFFSET, TAG_REPLY};
use crate::region::Region;

/// Offset of the slot's `turn` word, its tag-and-length word and its payload.
const TURN: usize = SLOT_OFFSET;
const TAG_LEN: usize = SLOT_OFFSET + 8;
const PAYLOAD: usize = SLOT_OFFSET + SLOT_HEADER;

/// The smallest mapping an input is laid over: a header, the slot's words and one
/// 64-byte payload, in whole pages as a real object is.
const MIN_LEN: usize = 4096;

fn word(heap: &Heap, off: usize) -> u64 {
    heap.atomic_u64(off)
        .map(|a| a.load(Ordering::Relaxed))
        .unwrap_or(0)
}

fn store(heap: &Heap, off: usize, v: u64) {
    if let Ok(a) = heap.atomic_u64(off) {
        a.store(v, Ordering::Relaxed);
    }
}

/// Treats `data` as the bytes of a request-reply object: validates and describes it,
/// and if it validates, decodes the slot as a client and as a server would, reads the
/// payload bounded by the decoded length, and answers a request as a server would.
/// Must never panic or hang.
pub fn check_bytes(data: &[u8]) {
    let len = data.len().clamp(MIN_LEN, 1 << 20).div_ceil(4096) * 4096;
    let heap = Heap::new(len as u64);
    let n = data.len().min(heap.len());
    let _ = heap.write_at(0, &data[..n]);
    let described = rpc::describe(&heap);
    let Ok(max) = rpc::validate(&heap) else {
        assert!(
            described.is_err(),
            "describe accepted what validate refused"
        );
        return;
    };
    let info = described.expect("describe refused what validate accepted");
    assert_eq!(info.max_message, max);
    // Validation promises the slot holds `max` payload bytes.
    assert!(PAYLOAD + max as usize <= heap.len());
    let t = word(&heap, TURN);
    let w = word(&heap, TAG_LEN);
    let base = t & !1;
    // The server at `base` waits for `base + 1`; a client with a request out waits for
    // `base + 2`; and a few pairs `t` matches neither of.
    for (mine, next) in [
        (base, base.wrapping_add(1)),
        (base.wrapping_add(1), base.wrapping_add(2)),
        (t.wrapping_add(1), t.wrapping_add(2)),
        (t.wrapping_sub(2), t.wrapping_sub(1)),
    ] {
        match rpc::look_at(t, mine, next) {
            Ok(Look::Next) => assert_eq!(t, next),
            Ok(Look::Nothing) => assert_eq!(t, mine),
            Err(_) => assert!(t != mine && t != next),
        }
    }
    // As a client: an answer's bytes, bounded by the decoded length.
    if let Ok(n) = rpc::decode_answer(w, max) {
        assert!(n <= max);
        let reply = heap
            .read_vec(PAYLOAD, n as usize)
            .expect("a reply within the slot");
        assert_eq!(reply.len(), n as usize);
    }
    // As a server: a request's bytes, then the reply written over them (reversed),
    // which a client then decodes back.
    if let Ok(n) = rpc::decode_request(w, max) {
        assert!(n <= max);
        let mut v = heap
            .read_vec(PAYLOAD, n as usize)
            .expect("a request within the slot");
        v.reverse();
        heap.write_at(PAYLOAD, &v).expect("a reply within the slot");
        store(&heap, TAG_LEN, (TAG_REPLY as u64) << 32 | n as u64);
        let after = t.wrapping_add(1);
        store(&heap, TURN, after);
        assert_eq!(rpc::look_at(after, t, after), Ok(Look::Next));
        assert_eq!(rpc::decode_answer(word(&heap, TAG_LEN), max), Ok(n));
        assert_eq!(heap.read_vec(PAYLOAD, n as usize).ok(), Some(v));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::channel::rpc::{TAG_REQUEST, TAG_UNANSWERED};

    /// A valid request-reply object for messages of at most 100 bytes, its slot holding
    /// `turn`, the tag-and-length word `tag_len` and `payload`.
    fn seed(turn: u64, tag_len: u64, payload: &[u8]) -> Vec<u8> {
        let heap = Heap::new(MIN_LEN as u64);
        rpc::init(&heap, 100).unwrap();
        crate::header::publish(&heap).unwrap();
        store(&heap, TURN, turn);
        store(&heap, TAG_LEN, tag_len);
        heap.write_at(PAYLOAD, payload).unwrap();
        heap.read_vec(0, heap.len()).unwrap()
    }

    #[test]
    fn fuzz_rpc_body_on_seed_inputs() {
        let req = (TAG_REQUEST as u64) << 32 | 5;
        let seeds = [
            seed(0, 0, b""),
            seed(1, req, b"hello"),
            seed(2, (TAG_REPLY as u64) << 32 | 5, b"olleh"),
            seed(4, (TAG_UNANSWERED as u64) << 32, b""),
            seed(7, (TAG_REQUEST as u64) << 32 | 100, &[3; 100]),
        ];
        let heap = Heap::new(MIN_LEN as u64);
        heap.write_at(0, &seeds[1]).unwrap();
        let info = rpc::describe(&heap).unwrap();
        assert_eq!((info.max_message, info.calls, info.pending), (100, 0, true));
        check_bytes(&[]);
        check_bytes(&[0xff; 5000]);
        for good in &seeds {
            check_bytes(good);
            // Truncations, at and around the header, the config and the slot.
            for cut in [0, 1, 63, 64, 100, 128, 1023, 1024, 1031, 1040, 1100, 4095] {
                check_bytes(&good[..cut.min(good.len())]);
            }
            // Every word of the header, config and slot flipped, zeroed and maxed.
            for off in (0..PAYLOAD + 64).step_by(8) {
                let w = u64::from_le_bytes(good[off..off + 8].try_into().unwrap());
                for v in [!w, 0, u64::MAX, w ^ 1, w ^ (1 << 32), w.wrapping_add(2)] {
                    let mut bad = good.clone();
                    bad[off..off + 8].copy_from_slice(&v.to_le_bytes());
                    check_bytes(&bad);
                }
            }
        }
        // A request longer than the limit is not decoded as one.
        let long = seed(1, (TAG_REQUEST as u64) << 32 | 101, b"");
        heap.write_at(0, &long).unwrap();
        assert!(rpc::decode_request(word(&heap, TAG_LEN), 100).is_err());
        check_bytes(&long);
    }
}
