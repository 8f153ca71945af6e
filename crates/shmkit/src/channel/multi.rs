//! What the MPSC and broadcast channels share: a mapped object of any channel kind with
//! bounds-checked access to its atomic words, and rings at an offset inside it.
//!
//! [`Obj`] plays the part [`super::shared::Shared`] plays for SPSC, for layouts with
//! several rings (MPSC lanes) or several slots (broadcast subscribers). Every word
//! access is checked against the mapping's length (one compare, no system call); the
//! object's size is checked once at open, so a hostile process shrinking it later can
//! still cause SIGBUS, as for SPSC.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::liveness::{Endpoint, Gone};
use super::ring::RingBytes;
use super::wait::{Check, LIVENESS_SLICE};
use super::ChannelError;
use crate::error::{Error, Result};
use crate::header::{self, ObjectKind};
use crate::posix::{Access, CreateOptions, Mapping, PosixShm, ShmName};
use crate::region::Region;

/// How long an opener waits for a creator that is still laying the object out.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// A mapped channel object of a multi-party kind.
pub(crate) struct Obj {
    map: Mapping,
    /// `/name`, for errors.
    pub name: String,
}

impl Obj {
    /// Creates `name` with `size` bytes (pages allocated), lays it out with `init`, and
    /// publishes it. The object is removed if laying out fails.
    pub fn create(
        name: &str,
        size: u64,
        mode: u32,
        init: impl FnOnce(&Mapping) -> Result<()>,
    ) -> Result<()> {
        let name = ShmName::new(name)?;
        let shm = PosixShm::create_with(&name, size, &CreateOptions::new().mode(mode))?;
        let made = (|| {
            let map = shm.map()?;
            init(&map)?;
            header::publish(&map)
        })();
        if made.is_err() {
            let _ = PosixShm::unlink(&name);
        }
        made
    }

    /// Opens `name` read-write, waits for it to be ready and checks its common header
    /// for `kind`/`version`; returns the object and the header for the kind's checks.
    pub fn open(name: &str, kind: ObjectKind, version: u16) -> Result<(Obj, header::Header)> {
        let name = ShmName::new(name)?;
        let object = name.to_string();
        let shm = PosixShm::open(&name, Access::ReadWrite)?;
        let size = shm.size()?;
        if size < header::HEADER_SIZE as u64 {
            return Err(Error::corrupt(
                "open",
                &object,
                format!("{size} bytes is not the size of a channel"),
            ));
        }
        let map = shm.map()?;
        let h = header::wait_ready(&map, kind, version, READY_TIMEOUT)?;
        // Every page now, not on the rings' first lap (as for SPSC channels, in
        // `super::shared`); best effort.
        let _ = map.prefault();
        Ok((Obj { map, name: object }, h))
    }

    /// The mapping (for layout reads at open).
    pub fn map(&self) -> &Mapping {
        &self.map
    }

    /// The 8-byte word at `off`; a fallback word for an offset outside the mapping (the
    /// layouts compute offsets from validated geometry, so this never happens unless
    /// the code is wrong; it must not become UB either way).
    #[inline]
    pub fn word64(&self, off: usize) -> &AtomicU64 {
        if off % 8 != 0 || off + 8 > self.map.len() {
            debug_assert!(false, "word64 offset {off} out of range");
            return &DUMMY64;
        }
        // SAFETY: `off` is 8-aligned and inside the mapping (checked above); the mapping
        // is page-aligned. AtomicU64 may alias memory other processes access atomically;
        // the reference lives no longer than &self, hence than the mapping.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(off).cast()) }
    }

    /// The 4-byte word at `off` (see [`Obj::word64`]).
    #[inline]
    pub fn word32(&self, off: usize) -> &AtomicU32 {
        if off % 4 != 0 || off + 4 > self.map.len() {
            debug_assert!(false, "word32 offset {off} out of range");
            return &DUMMY32;
        }
        // SAFETY: as in word64, for a 4-aligned offset inside the mapping.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(off).cast()) }
    }

    /// An endpoint (owner u64 at `off`, epoch u32 at `off + 8`).
    pub fn endpoint(&self, off: usize) -> Endpoint<'_> {
        Endpoint {
            owner: self.word64(off),
            epoch: self.word32(off + 8),
        }
    }

    /// The ring of `size` bytes at object offset `off` (checked against the mapping).
    pub fn ring(&self, off: usize, size: u64) -> RingView<'_> {
        let ok = off % 8 == 0
            && (off as u64)
                .checked_add(size)
                .is_some_and(|e| e <= self.map.len() as u64);
        RingView {
            base: if ok {
                // SAFETY: `off` is inside the mapping (ok). Otherwise the view is empty
                // and never dereferenced (size 0 fails every range check).
                unsafe { self.map.as_ptr().add(off) }
            } else {
                self.map.as_ptr()
            },
            size: if ok { size } else { 0 },
            _obj: std::marker::PhantomData,
        }
    }
}

static DUMMY64: AtomicU64 = AtomicU64::new(0);
static DUMMY32: AtomicU32 = AtomicU32::new(0);

/// A ring inside an [`Obj`]: `size` bytes from `base`.
#[derive(Clone, Copy)]
pub(crate) struct RingView<'a> {
    base: *mut u8,
    size: u64,
    _obj: std::marker::PhantomData<&'a Obj>,
}

impl RingView<'_> {
    /// A pointer to `len` bytes at ring offset `off`, or `None` if out of range.
    #[inline]
    pub fn ptr(&self, off: u64, len: usize) -> Option<*mut u8> {
        let end = off.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        // SAFETY: off + len <= size, and base..base+size lies inside the mapping
        // (checked in Obj::ring).
        Some(unsafe { self.base.add(off as usize) })
    }

    /// Copies `src` to ring offset `off`; false if out of range.
    #[inline]
    pub fn copy_in(&self, off: u64, src: &[u8]) -> bool {
        match self.ptr(off, src.len()) {
            Some(p) => {
                // SAFETY: in range (ptr); `src` is private memory, no overlap.
                unsafe { super::copy::copy_bytes(src.as_ptr(), p, src.len()) };
                true
            }
            None => false,
        }
    }
}

impl RingBytes for RingView<'_> {
    #[inline]
    fn write_word(&self, off: u64, word: u64, order: Ordering) {
        if off % 8 != 0 {
            return;
        }
        if let Some(p) = self.ptr(off, 8) {
            // SAFETY: in range (ptr) and 8-aligned (base and off are); an atomic store.
            unsafe { AtomicU64::from_ptr(p.cast()) }.store(word, order);
        }
    }

    #[inline]
    fn read_word(&self, off: u64, order: Ordering) -> u64 {
        if off % 8 != 0 {
            return 0;
        }
        match self.ptr(off, 8) {
            // SAFETY: as in write_word; read once, so the value checked is the one used.
            Some(p) => unsafe { AtomicU64::from_ptr(p.cast()) }.load(order),
            None => 0,
        }
    }
}

/// Watches one peer endpoint (the receiver, for an MPSC sender; the publisher, for a
/// subscriber, and either SPSC end): rate-limited liveness checks, the end reported
/// once, then waiting for a new peer as if freshly opened.
pub(crate) struct Watch {
    pub seen: bool,
    pub epoch_at_open: u32,
    pub died: Option<u32>,
    pub last_check: Instant,
    /// Normal polls since [`Watch::due`] last said yes.
    polls: u32,
}

/// Normal polls between two costlier checks in [`Watch::due`]: an empty `try_recv`
/// loop then costs one load per call, not a clock read.
const POLLS_PER_CLOCK_READ: u32 = 64;

impl Watch {
    /// A watch of `ep` starting now.
    pub fn new(ep: &Endpoint<'_>) -> Watch {
        Watch {
            seen: ep.holder().is_some(),
            epoch_at_open: ep.epoch.load(Ordering::Relaxed),
            died: None,
            last_check: Instant::now(),
            polls: 0,
        }
    }

    /// Whether this poll is due for the costlier checks (the clock, the producer's
    /// `head`): every poll that asks for liveness, one normal poll in
    /// [`POLLS_PER_CLOCK_READ`], never a spinning one.
    pub fn due(&mut self, how: Check) -> bool {
        match how {
            Check::Spin => false,
            Check::Normal => {
                self.polls += 1;
                if self.polls >= POLLS_PER_CLOCK_READ {
                    self.polls = 0;
                    true
                } else {
                    false
                }
            }
            Check::Liveness => true,
        }
    }

    /// Whether the peer has gone, looking as far as `how` says.
    pub fn gone(&mut self, ep: &Endpoint<'_>, how: Check) -> Option<ChannelError> {
        self.gone_if_due(ep, how, true)
    }

    /// As [`Watch::gone`], but a normal poll reads the clock only when `due` (the
    /// result of [`Watch::due`] for this poll).
    pub fn gone_if_due(
        &mut self,
        ep: &Endpoint<'_>,
        how: Check,
        due: bool,
    ) -> Option<ChannelError> {
        let check = match how {
            Check::Spin => return None,
            Check::Normal => due && self.last_check.elapsed() >= LIVENESS_SLICE,
            Check::Liveness => true,
        };
        if check {
            self.last_check = Instant::now();
        }
        match ep.gone(check, &mut self.seen, self.epoch_at_open) {
            Gone::No => None,
            Gone::Died(pid) => {
                self.died = Some(pid);
                Some(ChannelError::PeerDied(pid))
            }
            Gone::Closed => Some(match self.died {
                Some(pid) => ChannelError::PeerDied(pid),
                None => ChannelError::Disconnected,
            }),
        }
    }

    /// The end was reported: from now on, wait for the next peer.
    pub fn reported(&mut self, ep: &Endpoint<'_>) {
        self.seen = false;
        self.died = None;
        self.epoch_at_open = ep.epoch.load(Ordering::Relaxed);
    }
}
