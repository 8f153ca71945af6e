//! [`Mailbox`]: one slot handed from a writer process to a reader process, with a
//! blocking handshake and no busy waiting.
//!
//! ## Layout
//!
//! A mailbox fills a whole object, starting with the common [`crate::header`]
//! (kind [`ObjectKind::MAILBOX`], layout version [`VERSION`]):
//!
//! ```text
//! offset size field
//!      0   64 common header   magic, kind 17, version 1, header_size 32, total_size, ready
//!     64    4 state           futex word: 0 EMPTY, 1 FULL
//!     68    4 capacity        bytes of the payload area (fixed by the creator)
//!     72    4 len             bytes of the message in the slot, <= capacity
//!     76    4 writer_pid      pid of the last writer (0: none yet)
//!     80    4 reader_pid      pid of the last reader (0: none yet)
//!     84    4 delivered       messages taken by readers so far (wraps)
//!     88    8 reserved        zero
//!     96    . payload         capacity bytes
//! ```
//!
//! ## Protocol (what a C peer must do)
//!
//! Writer: store its pid in `writer_pid`; sleep on `state` (FUTEX_WAIT, shared) while it
//! is FULL; copy the message to `payload`, store `len`, store `state` = FULL with release
//! ordering, FUTEX_WAKE `state`; then sleep while `state` is FULL, i.e. until the reader
//! has taken it. Reader: store its pid in `reader_pid`; sleep while `state` is EMPTY;
//! load `state` with acquire ordering, read `len` (reject > capacity), copy the payload,
//! increment `delivered`, store `state` = EMPTY with release ordering, FUTEX_WAKE `state`.
//!
//! Both sides sleep on the futex and are woken by the other side at once; no core
//! spins and no timer paces the handshake. To notice a peer that died (SIGKILL), a
//! sleeper bounds each futex wait to [`LIVENESS_SLICE`] and, when a slice ends with no
//! wake-up, checks that the peer's pid still runs (`/proc/PID/stat`, zombies count as
//! dead). There is one writer and one reader at a time.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::header::{self, Layout, ObjectKind, HEADER_SIZE};
use crate::region::Region;
use crate::sync::word::{self, Wait, Word};
use crate::sys::proc;

/// The layout version.
pub const VERSION: u16 = 1;
/// Bytes of the mailbox's own header after the common one.
pub const KIND_HEADER_SIZE: usize = 32;
/// Offset of the futex word.
pub const STATE_OFFSET: usize = HEADER_SIZE;
/// Offset of the capacity.
pub const CAPACITY_OFFSET: usize = HEADER_SIZE + 4;
/// Offset of the message length.
pub const LEN_OFFSET: usize = HEADER_SIZE + 8;
/// Offset of the writer's pid.
pub const WRITER_PID_OFFSET: usize = HEADER_SIZE + 12;
/// Offset of the reader's pid.
pub const READER_PID_OFFSET: usize = HEADER_SIZE + 16;
/// Offset of the delivered counter.
pub const DELIVERED_OFFSET: usize = HEADER_SIZE + 20;
/// Offset of the payload.
pub const PAYLOAD_OFFSET: usize = HEADER_SIZE + KIND_HEADER_SIZE;
/// `state`: the slot is free for the writer.
pub const EMPTY: u32 = 0;
/// `state`: the slot holds a message for the reader.
pub const FULL: u32 = 1;
/// How long a sleeper waits before checking that its peer is still alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// The mailbox's own header, for size and offset checks (and C peers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MailboxHeader {
    /// Futex word: [`EMPTY`] or [`FULL`].
    pub state: u32,
    /// Payload bytes.
    pub capacity: u32,
    /// Message bytes in the slot.
    pub len: u32,
    /// Last writer's pid.
    pub writer_pid: u32,
    /// Last reader's pid.
    pub reader_pid: u32,
    /// Messages delivered.
    pub delivered: u32,
    /// Zero.
    pub reserved: u64,
}
const _: () = assert!(std::mem::size_of::<MailboxHeader>() == KIND_HEADER_SIZE);
const _: () = assert!(std::mem::offset_of!(MailboxHeader, len) + HEADER_SIZE == LEN_OFFSET);
const _: () =
    assert!(std::mem::offset_of!(MailboxHeader, delivered) + HEADER_SIZE == DELIVERED_OFFSET);

/// Why a send or receive did not complete.
#[derive(Debug)]
pub enum MailboxError {
    /// The timeout passed.
    TimedOut,
    /// The peer process (this pid) died.
    PeerDied(u32),
    /// The message is larger than the capacity.
    TooLarge {
        /// Message bytes.
        len: usize,
        /// Capacity.
        capacity: usize,
    },
    /// The shared state is invalid, or a copy failed.
    Failed(Error),
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailboxError::TimedOut => f.write_str("timed out waiting for the peer"),
            MailboxError::PeerDied(pid) => write!(f, "the peer process {pid} died"),
            MailboxError::TooLarge { len, capacity } => write!(
                f,
                "a message of {len} bytes does not fit the mailbox's {capacity} bytes"
            ),
            MailboxError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MailboxError {}

impl From<Error> for MailboxError {
    fn from(e: Error) -> Self {
        MailboxError::Failed(e)
    }
}

/// The handshake on the state word, generic so that loom can model it.
pub(crate) mod raw {
    use super::*;

    /// Sleeps until `state` differs from `busy`. `peer_dead()` is asked after each slice
    /// that ended without a wake-up.
    pub(crate) fn wait_while<W: Word>(
        state: &W,
        busy: u32,
        deadline: Option<Instant>,
        mut peer_dead: impl FnMut() -> Option<u32>,
    ) -> Result<(), MailboxError> {
        loop {
            // SYNC: Acquire pairs with the Release store of the other side in `put` /
            // `take`: the payload (or the slot's release) is visible.
            if state.load(Ordering::Acquire) != busy {
                return Ok(());
            }
            let left = word::remaining(deadline).ok_or(MailboxError::TimedOut)?;
            let slice = left.map_or(LIVENESS_SLICE, |l| l.min(LIVENESS_SLICE));
            if state.wait(busy, Some(slice)) == Wait::TimedOut {
                // SYNC: as above.
                if state.load(Ordering::Acquire) != busy {
                    return Ok(());
                }
                if let Some(pid) = peer_dead() {
                    return Err(MailboxError::PeerDied(pid));
                }
            }
        }
    }

    /// Publishes a filled slot.
    pub(crate) fn put<W: Word>(state: &W) {
        // SYNC: Release pairs with the reader's Acquire in `wait_while`.
        state.store(FULL, Ordering::Release);
        state.wake(u32::MAX >> 1);
    }

    /// Hands the slot back to the writer.
    pub(crate) fn take<W: Word>(state: &W) {
        // SYNC: Release pairs with the writer's Acquire in `wait_while`: our copy out
        // happened before the writer overwrites the payload.
        state.store(EMPTY, Ordering::Release);
        state.wake(u32::MAX >> 1);
    }
}

/// A mailbox laid out in a region (see the [module docs](self)).
pub struct Mailbox<'r> {
    region: &'r (dyn Region + Sync),
    state: &'r AtomicU32,
    len: &'r AtomicU32,
    writer_pid: &'r AtomicU32,
    reader_pid: &'r AtomicU32,
    delivered: &'r AtomicU32,
    capacity: usize,
}

impl fmt::Debug for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("object", &self.region.object_name())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<'r> Mailbox<'r> {
    /// Bytes an object needs for a mailbox of `capacity` payload bytes.
    pub const fn total_size(capacity: usize) -> usize {
        PAYLOAD_OFFSET + capacity
    }

    /// Lays out an empty mailbox over the whole region (header included) and publishes
    /// it. The capacity is what the region holds after the headers.
    pub fn create(region: &'r (dyn Region + Sync)) -> Result<Self> {
        let name = region.object_name();
        let capacity = region
            .len()
            .checked_sub(PAYLOAD_OFFSET)
            .filter(|c| *c > 0 && *c <= u32::MAX as usize)
            .ok_or_else(|| {
                Error::invalid(
                    "mailbox",
                    &name,
                    format!(
                        "{} bytes cannot hold a mailbox (more than {PAYLOAD_OFFSET} needed)",
                        region.len()
                    ),
                )
            })?;
        header::init(
            region,
            Layout {
                kind: ObjectKind::MAILBOX,
                version: VERSION,
                header_size: KIND_HEADER_SIZE as u32,
                total_size: region.len() as u64,
            },
        )?;
        let kh = MailboxHeader {
            capacity: capacity as u32,
            ..MailboxHeader::default()
        };
        crate::region::RegionExt::write(region, HEADER_SIZE, &kh)?;
        header::publish(region)?;
        Self::open(region, Duration::ZERO)
    }

    /// Opens a mailbox that another process created, waiting up to `timeout` for the
    /// creator to finish laying it out.
    pub fn open(region: &'r (dyn Region + Sync), timeout: Duration) -> Result<Self> {
        let h = header::wait_ready(region, ObjectKind::MAILBOX, VERSION, timeout)?;
        let name = region.object_name();
        if h.header_size as usize != KIND_HEADER_SIZE {
            return Err(Error::corrupt(
                "open",
                &name,
                format!(
                    "mailbox header size {} is not {KIND_HEADER_SIZE}",
                    h.header_size
                ),
            ));
        }
        let capacity = region.atomic_u32(CAPACITY_OFFSET)?.load(Ordering::Relaxed) as usize;
        if PAYLOAD_OFFSET as u64 + capacity as u64 > h.total_size {
            return Err(Error::corrupt(
                "open",
                &name,
                format!(
                    "capacity {capacity} does not fit the object's {} bytes",
                    h.total_size
                ),
            ));
        }
        Ok(Mailbox {
            region,
            state: region.atomic_u32(STATE_OFFSET)?,
            len: region.atomic_u32(LEN_OFFSET)?,
            writer_pid: region.atomic_u32(WRITER_PID_OFFSET)?,
            reader_pid: region.atomic_u32(READER_PID_OFFSET)?,
            delivered: region.atomic_u32(DELIVERED_OFFSET)?,
            capacity,
        })
    }

    /// Payload bytes a message may have.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u32 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn peer_dead(peer: &AtomicU32) -> Option<u32> {
        let pid = peer.load(Ordering::Relaxed);
        (pid != 0 && pid != std::process::id() && !proc::is_alive(pid, None)).then_some(pid)
    }

    /// Puts `data` in the slot once it is free, and waits until the reader has taken
    /// it; at most `timeout` in all (`None`: as long as it takes). A timeout (or a dead
    /// reader) after the message was placed leaves it in the slot for the next reader.
    pub fn send(&self, data: &[u8], timeout: Option<Duration>) -> Result<(), MailboxError> {
        if data.len() > self.capacity {
            return Err(MailboxError::TooLarge {
                len: data.len(),
                capacity: self.capacity,
            });
        }
        let deadline = word::deadline(timeout);
        self.writer_pid.store(std::process::id(), Ordering::Relaxed);
        raw::wait_while(self.state, FULL, deadline, || {
            Self::peer_dead(self.reader_pid)
        })?;
        self.region.write_at(PAYLOAD_OFFSET, data)?;
        self.len.store(data.len() as u32, Ordering::Relaxed);
        raw::put(self.state);
        raw::wait_while(self.state, FULL, deadline, || {
            Self::peer_dead(self.reader_pid)
        })
    }

    /// Waits for a message (at most `timeout`; `None`: as long as it takes), takes it
    /// out of the slot and returns it.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>, MailboxError> {
        let deadline = word::deadline(timeout);
        self.reader_pid.store(std::process::id(), Ordering::Relaxed);
        raw::wait_while(self.state, EMPTY, deadline, || {
            Self::peer_dead(self.writer_pid)
        })?;
        let state = self.state.load(Ordering::Relaxed);
        if state != FULL {
            return Err(MailboxError::Failed(Error::corrupt(
                "recv",
                self.region.object_name(),
                format!("the state word holds {state}, not 0 (empty) or 1 (full)"),
            )));
        }
        let len = self.len.load(Ordering::Relaxed) as usize;
        if len > self.capacity {
            return Err(MailboxError::Failed(Error::corrupt(
                "recv",
                self.region.object_name(),
                format!(
                    "message length {len} exceeds the capacity {}",
                    self.capacity
                ),
            )));
        }
        let data = self.region.read_vec(PAYLOAD_OFFSET, len)?;
        self.delivered.fetch_add(1, Ordering::Relaxed);
        raw::take(self.state);
        Ok(data)
    }
}

/// A mailbox in its own POSIX object (`/dev/shm/NAME`), for processes that share
/// nothing else; [`MailboxObject::mailbox`] gives the mailbox.
#[derive(Debug)]
pub struct MailboxObject {
    map: crate::posix::Mapping,
}

impl MailboxObject {
    /// Creates `/dev/shm/<name>` with room for `capacity` payload bytes and mode
    /// `perm`; fails with `AlreadyExists` if the name is taken.
    pub fn create(name: &str, capacity: usize, perm: u32) -> Result<MailboxObject> {
        let size = Mailbox::total_size(capacity);
        match super::lock_object::create_published(name, size, perm, |m| {
            Mailbox::create(m).map(drop)
        })? {
            Some(map) => Ok(MailboxObject { map }),
            None => Err(Error::os("shm_open", format!("/{name}"), libc::EEXIST)),
        }
    }

    /// Opens an existing mailbox object.
    pub fn open(name: &str) -> Result<MailboxObject> {
        let map = super::lock_object::open_mapping(name, 0)?;
        super::lock_object::validate_published(&map, ObjectKind::MAILBOX, VERSION)?;
        Mailbox::open(&map, Duration::ZERO)?;
        Ok(MailboxObject { map })
    }

    /// The mailbox.
    pub fn mailbox(&self) -> Result<Mailbox<'_>> {
        Mailbox::open(&self.map, Duration::ZERO)
    }

    /// Removes the name `name`.
    pub fn unlink(name: &str) -> Result<()> {
        crate::sys::posix::shm_unlink(name, &format!("/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::Heap;

    #[test]
    fn hands_messages_over_between_threads() {
        let r = Heap::new(128);
        let m = Mailbox::create(&r).unwrap();
        assert_eq!(m.capacity(), 128 - PAYLOAD_OFFSET);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..50u32 {
                    m.send(&i.to_le_bytes(), Some(Duration::from_secs(10)))
                        .unwrap();
                }
            });
            for i in 0..50u32 {
                let v = m.recv(Some(Duration::from_secs(10))).unwrap();
                assert_eq!(v, i.to_le_bytes());
            }
        });
        assert_eq!(m.delivered(), 50);
        assert!(matches!(
            m.recv(Some(Duration::from_millis(10))),
            Err(MailboxError::TimedOut)
        ));
        assert!(matches!(
            m.send(&[0; 200], None),
            Err(MailboxError::TooLarge { .. })
        ));
        r.atomic_u32(LEN_OFFSET)
            .unwrap()
            .store(9999, Ordering::Relaxed);
        r.atomic_u32(STATE_OFFSET)
            .unwrap()
            .store(FULL, Ordering::Relaxed);
        assert!(matches!(m.recv(None), Err(MailboxError::Failed(_))));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::word::LoomWord;
    use loom::sync::Arc;

    #[test]
    fn loom_mailbox_handshake() {
        loom::model(|| {
            // (state, payload)
            let s = Arc::new((LoomWord::new(EMPTY), LoomWord::new(0)));
            let s2 = s.clone();
            let writer = loom::thread::spawn(move || {
                for v in 1..=2 {
                    raw::wait_while(&s2.0, FULL, None, || None).unwrap();
                    s2.1.store(v, Ordering::Relaxed);
                    raw::put(&s2.0);
                }
            });
            for v in 1..=2 {
                raw::wait_while(&s.0, EMPTY, None, || None).unwrap();
                assert_eq!(s.1.load(Ordering::Relaxed), v);
                raw::take(&s.0);
            }
            writer.join().unwrap();
        });
    }
}
