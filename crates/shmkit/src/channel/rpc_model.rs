//! A loom model of the request-reply channel's turn protocol: a client and a server
//! thread hand one slot back and forth through its `turn` word (Release stores, Acquire
//! loads), with the tag-and-length word and the payload words written Relaxed, and
//! decide what they see with the channel's own pure functions ([`look_at`],
//! [`decode_request`], [`decode_answer`]). In every interleaving loom explores, each
//! side only ever sees one of the two legal `turn` values, and every request and reply
//! is read whole and right.

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use std::sync::atomic::Ordering;

use super::rpc::{
    decode_answer, decode_request, look_at, Look, TAG_REPLY, TAG_REQUEST, TAG_UNANSWERED,
};
use super::ChannelError;

/// The model's message limit: two payload words.
const MAX: u32 = 16;

/// The slot: `turn`, the tag-and-length word and two payload words.
struct Slot {
    turn: AtomicU64,
    tag_len: AtomicU64,
    payload: [AtomicU64; 2],
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            turn: AtomicU64::new(0),
            tag_len: AtomicU64::new(0),
            payload: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Writes a message and hands the slot over by storing `turn`.
    fn publish(&self, tag: u32, len: u32, words: [u64; 2], turn: u64) {
        for (w, v) in self.payload.iter().zip(words) {
            w.store(v, Ordering::Relaxed);
        }
        self.tag_len
            .store((tag as u64) << 32 | len as u64, Ordering::Relaxed);
        // SYNC: Release pairs with the Acquire load in `wait`, as in rpc's `publish`.
        self.turn.store(turn, Ordering::Release);
    }

    /// Waits until `turn` moves from `mine` to `next`; any other value fails the model.
    fn wait(&self, mine: u64, next: u64) {
        loop {
            // SYNC: Acquire pairs with the Release store in `publish`.
            let t = self.turn.load(Ordering::Acquire);
            match look_at(t, mine, next) {
                Ok(Look::Next) => return,
                Ok(Look::Nothing) => loom::thread::yield_now(),
                Err(e) => panic!("turn {t} is neither {mine} nor {next}: {e}"),
            }
        }
    }

    fn words(&self) -> [u64; 2] {
        [
            self.payload[0].load(Ordering::Relaxed),
            self.payload[1].load(Ordering::Relaxed),
        ]
    }

    fn tag_len(&self) -> u64 {
        self.tag_len.load(Ordering::Relaxed)
    }
}

/// Request `i`: its length and payload words.
fn request(i: u64) -> (u32, [u64; 2]) {
    (MAX - i as u32, [i * 10 + 1, i * 10 + 2])
}

/// The reply to a request with payload `w`.
fn reply(w: [u64; 2]) -> (u32, [u64; 2]) {
    ((w[0] % 9) as u32, [!w[0], w[0] ^ w[1]])
}

/// The server: answers `calls` requests in order, checking each one; the request
/// numbered `drop_at` is answered with no reply, as a dropped `Request` is.
fn serve(slot: &Slot, calls: u64, drop_at: Option<u64>) {
    for i in 0..calls {
        slot.wait(2 * i, 2 * i + 1);
        let len = decode_request(slot.tag_len(), MAX).expect("a legal request");
        let words = slot.words();
        assert_eq!((len, words), request(i), "request {i}");
        if drop_at == Some(i) {
            slot.publish(TAG_UNANSWERED, 0, [0, 0], 2 * i + 2);
        } else {
            let (len, words) = reply(words);
            slot.publish(TAG_REPLY, len, words, 2 * i + 2);
        }
    }
}

/// The client's call `i` (the slot is its own, `turn == 2 i`): the answer, checked.
fn call(slot: &Slot, i: u64) -> Result<(), ChannelError> {
    let (len, words) = request(i);
    slot.publish(TAG_REQUEST, len, words, 2 * i + 1);
    slot.wait(2 * i + 1, 2 * i + 2);
    let len = decode_answer(slot.tag_len(), MAX)?;
    assert_eq!((len, slot.words()), reply(words), "reply {i}");
    Ok(())
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Three calls, the last one answered with no reply: every reply matches its request
/// and the dropped one is reported as `Unanswered`.
#[test]
fn loom_rpc_three_calls_one_unanswered() {
    model(|| {
        let slot = Slot::new();
        let s2 = slot.clone();
        let server = loom::thread::spawn(move || serve(&s2, 3, Some(2)));
        call(&slot, 0).unwrap();
        call(&slot, 1).unwrap();
        assert_eq!(call(&slot, 2), Err(ChannelError::Unanswered));
        server.join().unwrap();
        assert_eq!(slot.turn.load(Ordering::Relaxed), 6);
    });
}

/// A client leaves with its second request out (killed after storing `turn`); a new
/// client opens at whatever `turn` it finds (Acquire, as `Chan::open` loads it); if the
/// request is still pending it waits for its answer and drops it; then it makes its own
/// call, answered right.
#[test]
fn loom_rpc_new_client_after_a_pending_request() {
    model(|| {
        let slot = Slot::new();
        let s2 = slot.clone();
        let server = loom::thread::spawn(move || serve(&s2, 3, None));
        let s3 = slot.clone();
        let old = loom::thread::spawn(move || {
            call(&s3, 0).unwrap();
            let (len, words) = request(1);
            s3.publish(TAG_REQUEST, len, words, 3);
        });
        old.join().unwrap();
        // SYNC: Acquire pairs with the Release stores of `turn` (as in Chan::open).
        let t = slot.turn.load(Ordering::Acquire);
        let (mut turn, pending) = (t & !1, t & 1 == 1);
        if pending {
            slot.wait(turn + 1, turn + 2);
            assert!(decode_answer(slot.tag_len(), MAX).is_ok());
            turn += 2;
        }
        // Either way, the old client's request was answered before the new call.
        assert_eq!(turn, 4, "turn {t} at open");
        call(&slot, 2).unwrap();
        server.join().unwrap();
    });
}
