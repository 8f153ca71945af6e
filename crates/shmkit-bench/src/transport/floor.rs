//! The floor: one cache line handed back and forth between two processes.
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

use std::os::fd::{AsFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
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

/// A shared mapping of a memfd, unmapped on drop.
struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMap {
    fn map(fd: impl AsFd, len: usize) -> Result<SharedMap> {
        // SAFETY: a fresh shared mapping at an address of the kernel's choosing, of a
        // memfd that is at least `len` bytes long (the leading side truncated it to
        // `len` before anyone mapped it); no existing memory is affected.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| BenchError::io("floor: mmap of the memfd", e.into()))?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| BenchError::Peer("floor: mmap returned null".into()))?;
        Ok(SharedMap { ptr, len })
    }

    fn state(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned and at least HEADER bytes long, so offset
        // 0 holds an aligned u64 that stays mapped for as long as `self` lives; all
        // accesses to it from either process are atomic.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicU64>() }
    }

    fn payload_room(&self) -> usize {
        self.len - HEADER
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `map`, and no reference
        // into it outlives `self` (the state reference borrows `self`).
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory, accessed only through atomics and raw copies.
unsafe impl Send for SharedMap {}

/// One side of the floor.
struct Floor {
    map: SharedMap,
    mine: u64,
    theirs: u64,
}

impl Floor {
    /// Spins until the state word holds `want`; `false` on abort or deadline.
    fn wait_for(&self, want: u64, deadline: Instant) -> bool {
        let state = self.map.state();
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

impl Endpoint for Floor {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        if msg.len() > self.map.payload_room() {
            return Err(BenchError::Usage(format!(
                "floor: {} byte message larger than the {} byte mapping",
                msg.len(),
                self.map.payload_room()
            )));
        }
        if !self.wait_for(EMPTY, deadline) {
            return Err(wait_error("floor: waiting for an empty slot", deadline));
        }
        // SAFETY: the destination lies inside the mapping (checked above) and the state
        // is `empty`, so by the protocol the other side is not touching the payload;
        // the source is a private buffer that cannot overlap the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                self.map.ptr.as_ptr().add(HEADER),
                msg.len(),
            );
        }
        // SYNC: Release pairs with the receiver's Acquire load in `wait_for`, publishing
        // the payload copied above.
        self.map.state().store(self.mine, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        if buf.len() > self.map.payload_room() {
            return Err(BenchError::Usage(format!(
                "floor: {} byte message larger than the {} byte mapping",
                buf.len(),
                self.map.payload_room()
            )));
        }
        if !self.wait_for(self.theirs, deadline) {
            return Err(wait_error("floor: waiting for a message", deadline));
        }
        // SAFETY: the source lies inside the mapping (checked above); the state says the
        // sender has finished writing and will not write again until we store `empty`;
        // the destination is a private buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.ptr.as_ptr().add(HEADER),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        // SYNC: Release pairs with the sender's Acquire load in `wait_for`: our copy out
        // is complete before it may overwrite the payload.
        self.map.state().store(EMPTY, Ordering::Release);
        Ok(())
    }
}

fn mapping_len(max: usize) -> usize {
    let page = rustix::param::page_size();
    (HEADER + max.max(64)).div_ceil(page) * page
}

/// Creates the memfd and the leading side's endpoint.
pub fn setup(max: usize) -> Result<Setup> {
    let len = mapping_len(max);
    let fd = memfd_create("shmkit-bench-floor", MemfdFlags::CLOEXEC)
        .map_err(|e| BenchError::io("floor: memfd_create", e.into()))?;
    ftruncate(&fd, len as u64).map_err(|e| BenchError::io("floor: ftruncate", e.into()))?;
    let map = SharedMap::map(&fd, len)?;
    let spec = PeerSpec::Floor {
        fd: super::raw(&fd),
        len,
    };
    Ok(Setup {
        local: Box::new(Floor {
            map,
            mine: FULL_FROM_LEAD,
            theirs: FULL_FROM_PEER,
        }),
        peer: spec,
        inherit: vec![fd],
    })
}

/// Maps the inherited memfd in the peer.
pub fn open(fd: RawFd, len: usize) -> Result<Box<dyn Endpoint>> {
    let owned = crate::peer::take_fd(fd)?;
    let st = rustix::fs::fstat(&owned).map_err(|e| BenchError::io("floor: fstat", e.into()))?;
    if (st.st_size as u64) < len as u64 || len < HEADER + 64 {
        return Err(BenchError::Peer(format!(
            "floor: the memfd has {} bytes, expected {len}",
            st.st_size
        )));
    }
    let map = SharedMap::map(&owned, len)?;
    Ok(Box::new(Floor {
        map,
        mine: FULL_FROM_PEER,
        theirs: FULL_FROM_LEAD,
    }))
}
