//! The floors: the least shared memory can do, one cache line handed back and forth
//! between two processes ([`FLOOR`](super::FLOOR)), and two lines each written by one
//! side only ([`FLOOR_PAIR`](super::FLOOR_PAIR)), which is what any pair of one-way
//! channels is built from. The second costs about two of the first on most machines: a
//! line written by one core and read by the other has to be taken back by the writer
//! before its next message (an invalidation), while a single line handed to and fro
//! moves once each way.
//!
//! A memfd mapped by both processes holds a state word and, right after it, the
//! payload. Small messages (up to 56 bytes) share the state word's cache line, so a
//! round trip moves that one line to the peer and back; larger ones are copied in and
//! out of the bytes that follow, which is the least any copying transport can do.
//!
//! ```text
//! offset 0        8                                   8 + max
//!        +--------+-----------------------------------+
//!        | state  | payload (message bytes)           |
//!        +--------+-----------------------------------+
//! state: 0 = empty, 1 = full (written by the leading side), 2 = full (by the peer)
//! ```
//!
//! The sender waits for `empty`, copies the message in and stores `full`; the receiver
//! waits for the other side's `full`, copies it out and stores `empty`. Both busy-poll.
//! The state word gives each side exclusive use of the payload in turn; the payload is
//! only ever touched through raw-pointer copies, never through a reference. A peer that
//! breaks the protocol can make the copy read garbage, never overrun the mapping: every
//! copy is bounded by the mapping's length.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::shared_map::SharedMap;
use crate::{BenchError, Result};

const EMPTY: u64 = 0;
const FULL_FROM_LEAD: u64 = 1;
const FULL_FROM_PEER: u64 = 2;
const HEADER: usize = 8;
/// Spins between two checks of the deadline and the abort flag.
const CHECK_EVERY: u32 = 1 << 12;
/// Spins after which a waiter yields the core (it only matters on a machine with
/// fewer cores than spinning processes).
const YIELD_AFTER: u32 = 1 << 16;

/// One side of the floor.
struct Floor {
    /// Keeps the mapping alive for the raw pointers below.
    _map: SharedMap,
    /// The state word at offset 0, and the payload right after it.
    state: *const AtomicU64,
    payload: *mut u8,
    room: usize,
    mine: u64,
    theirs: u64,
}

// SAFETY: the raw pointers point into `map`, which `Floor` owns and which may be used
// from any thread.
unsafe impl Send for Floor {}

impl Floor {
    fn new(map: SharedMap, mine: u64, theirs: u64) -> Result<Floor> {
        let state = map
            .at(0, HEADER)
            .ok_or_else(|| BenchError::Peer("floor: mapping too small".into()))?;
        let room = map.len() - HEADER;
        let payload = map
            .at(HEADER, room)
            .ok_or_else(|| BenchError::Peer("floor: mapping too small".into()))?;
        Ok(Floor {
            state: state.cast::<AtomicU64>(),
            payload,
            room,
            _map: map,
            mine,
            theirs,
        })
    }

    fn state(&self) -> &AtomicU64 {
        // SAFETY: offset 0 of a page-aligned mapping holds an aligned u64 that stays
        // mapped while `self.map` lives, and every access to it from either process is
        // atomic.
        unsafe { &*self.state }
    }

    /// Spins until the state word holds `want`; `false` on abort or deadline.
    fn wait_for(&self, want: u64, deadline: Instant) -> bool {
        spin_until(self.state(), want, deadline)
    }
}

/// A usage error if a `len`-byte message does not fit the `room` bytes of a floor.
fn fits(what: &str, len: usize, room: usize) -> Result<()> {
    if len > room {
        return Err(BenchError::Usage(format!(
            "{what}: {len} byte message larger than its {room} bytes of room"
        )));
    }
    Ok(())
}

/// Spins until `word` holds `want`; `false` on abort or deadline.
fn spin_until(state: &AtomicU64, want: u64, deadline: Instant) -> bool {
    {
        let mut spins: u32 = 0;
        loop {
            // SYNC: Acquire pairs with the other side's Release store of `want`, so the
            // payload it wrote before (or stopped reading before) is settled.
            if state.load(Ordering::Acquire) == want {
                return true;
            }
            spins = spins.wrapping_add(1);
            if spins % CHECK_EVERY == 0 {
                if aborted() || Instant::now() >= deadline {
                    // The peer's last store happened before it exited: look once more.
                    // SYNC: Acquire pairs with the other side's Release store, as above.
                    return state.load(Ordering::Acquire) == want;
                }
                if spins >= YIELD_AFTER {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
    }
}

impl Floor {
    fn check(&self, len: usize) -> Result<()> {
        fits("floor", len, self.room)
    }
}

impl Endpoint for Floor {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.check(msg.len())?;
        if !self.wait_for(EMPTY, deadline) {
            return Err(wait_error("floor: waiting for an empty slot", deadline));
        }
        // SAFETY: the destination lies inside the mapping (`check`) and the state is
        // `empty`, so by the protocol the other side is not touching the payload; the
        // source is a private buffer that cannot overlap the mapping.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), self.payload, msg.len()) };
        // SYNC: Release pairs with the receiver's Acquire load in `wait_for`, publishing
        // the payload copied above.
        self.state().store(self.mine, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        self.check(buf.len())?;
        if !self.wait_for(self.theirs, deadline) {
            return Err(wait_error("floor: waiting for a message", deadline));
        }
        // SAFETY: the source lies inside the mapping (`check`); the state says the
        // sender has finished writing and will not write again until we store `empty`;
        // the destination is a private buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.payload, buf.as_mut_ptr(), buf.len()) };
        // SYNC: Release pairs with the sender's Acquire load in `wait_for`: our copy out
        // is complete before it may overwrite the payload.
        self.state().store(EMPTY, Ordering::Release);
        Ok(())
    }
}

/// Creates the memfd and the leading side's endpoint.
pub fn setup(max: usize) -> Result<Setup> {
    let (map, fd) = SharedMap::create("floor", HEADER + max.max(64))?;
    let spec = PeerSpec::Floor {
        fd: super::raw(&fd),
        len: map.len(),
    };
    Ok(Setup {
        local: Box::new(Floor::new(map, FULL_FROM_LEAD, FULL_FROM_PEER)?),
        peer: spec,
        inherit: vec![fd],
    })
}

/// Maps the inherited memfd in the peer.
pub fn open(fd: RawFd, len: usize) -> Result<Box<dyn Endpoint>> {
    let map = SharedMap::open(fd, len)?;
    Ok(Box::new(Floor::new(map, FULL_FROM_PEER, FULL_FROM_LEAD)?))
}

/// Bytes from one side's block to the other's: two cache lines, so that the
/// adjacent-line prefetcher does not pair them.
const PAIR_STRIDE_MIN: usize = 128;
/// A block: `sent` (messages this side published), `taken` (messages it consumed from
/// the other side), then the payload.
const PAIR_HEADER: usize = 16;

/// One side of the pair floor: it writes only its own block and reads the other's.
///
/// ```text
/// offset 0                         stride
///        +------+-------+---------+------+-------+---------+
///        | sent | taken | payload | sent | taken | payload |
///        +------+-------+---------+------+-------+---------+
///          leading side's block     peer's block
/// ```
///
/// To send, a side waits until the other has taken everything it sent, copies the
/// payload into its own block and stores `sent + 1`; to receive, it waits for the
/// other's `sent` to pass its own `taken`, copies the payload out and stores
/// `taken + 1`. Messages up to 48 bytes share the line of the counters.
struct FloorPair {
    _map: SharedMap,
    mine: *mut u8,
    theirs: *mut u8,
    room: usize,
    sent: u64,
    taken: u64,
}

// SAFETY: the raw pointers point into `map`, which `FloorPair` owns and which may be
// used from any thread.
unsafe impl Send for FloorPair {}

/// Block size for messages of up to `max` bytes.
fn pair_stride(max: usize) -> usize {
    (PAIR_HEADER + max).div_ceil(PAIR_STRIDE_MIN) * PAIR_STRIDE_MIN
}

impl FloorPair {
    fn new(map: SharedMap, lead: bool) -> Result<FloorPair> {
        let stride = map.len() / 2;
        let small = || BenchError::Peer("floor-pair: mapping too small".into());
        if stride < PAIR_STRIDE_MIN {
            return Err(small());
        }
        let a = map.at(0, stride).ok_or_else(small)?;
        let b = map.at(stride, stride).ok_or_else(small)?;
        let (mine, theirs) = if lead { (a, b) } else { (b, a) };
        Ok(FloorPair {
            _map: map,
            mine,
            theirs,
            room: stride - PAIR_HEADER,
            sent: 0,
            taken: 0,
        })
    }

    /// Word `i` (0: sent, 1: taken) of our block (`mine`) or the other side's.
    fn word(&self, mine: bool, i: usize) -> &AtomicU64 {
        let block = if mine { self.mine } else { self.theirs };
        // SAFETY: a block starts at a multiple of 128 bytes in a page-aligned mapping
        // that `self._map` keeps alive as long as the returned reference, and every
        // access to its counters from either process is atomic.
        unsafe { &*block.add(8 * i).cast::<AtomicU64>() }
    }

    fn check(&self, len: usize) -> Result<()> {
        fits("floor-pair", len, self.room)
    }
}

impl Endpoint for FloorPair {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.check(msg.len())?;
        if !spin_until(self.word(false, 1), self.sent, deadline) {
            return Err(wait_error(
                "floor-pair: waiting for the last message to be taken",
                deadline,
            ));
        }
        // SAFETY: the destination lies inside our block (`check`), which only this side
        // writes; the other side has taken the previous message, so it is not reading
        // the payload; the source is a private buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.mine.add(PAIR_HEADER), msg.len())
        };
        self.sent += 1;
        // SYNC: Release pairs with the receiver's Acquire load in `spin_until`,
        // publishing the payload copied above.
        self.word(true, 0).store(self.sent, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        self.check(buf.len())?;
        if !spin_until(self.word(false, 0), self.taken + 1, deadline) {
            return Err(wait_error("floor-pair: waiting for a message", deadline));
        }
        // SAFETY: the source lies inside the other block (`check`); its writer does not
        // touch the payload again until we store `taken`; the destination is private.
        unsafe {
            std::ptr::copy_nonoverlapping(self.theirs.add(PAIR_HEADER), buf.as_mut_ptr(), buf.len())
        };
        self.taken += 1;
        // SYNC: Release pairs with the sender's Acquire load in `spin_until`: our copy
        // out is complete before it may overwrite the payload.
        self.word(true, 1).store(self.taken, Ordering::Release);
        Ok(())
    }
}

/// Creates the pair floor's memfd and the leading side's endpoint.
pub fn setup_pair(max: usize) -> Result<Setup> {
    let (map, fd) = SharedMap::create("floor-pair", 2 * pair_stride(max))?;
    let spec = PeerSpec::FloorPair {
        fd: super::raw(&fd),
        len: map.len(),
    };
    Ok(Setup {
        local: Box::new(FloorPair::new(map, true)?),
        peer: spec,
        inherit: vec![fd],
    })
}

/// Maps the inherited memfd in the peer.
pub fn open_pair(fd: RawFd, len: usize) -> Result<Box<dyn Endpoint>> {
    let map = SharedMap::open(fd, len)?;
    Ok(Box::new(FloorPair::new(map, false)?))
}
