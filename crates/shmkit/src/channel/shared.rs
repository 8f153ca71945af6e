//! [`Shared`]: one process's mapping of a channel object, with typed access to the words
//! of its header and to the ring's bytes.
//!
//! The object is a POSIX shared-memory object ([`Mapping`]) or a System V segment
//! ([`Attachment`]); both are a [`Region`], and the ring code sees only the base pointer,
//! cached at open, so the two backings run the same code at the same speed.
//!
//! The ring is reached through the mapping's raw pointer, without the per-access size
//! check of [`Mapping`]'s copies (an fstat per message would defeat the channel's
//! purpose); the object's size is checked once at open. A hostile process that later
//! shrinks the object can still make this process fault with SIGBUS.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::layout::{self, Geometry, RING_OFFSET};
use super::liveness::Endpoint;
use super::ring::RingBytes;
use crate::error::{Error, Result};
use crate::header::{self, ObjectKind};
use crate::posix::{Access, CreateOptions, Mapping, PosixShm, ShmName};
use crate::region::Region;
use crate::sysv::{Attachment, Key, Segment};

/// How long an opener waits for a creator that is still laying the object out.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What keeps a channel's bytes mapped in this process.
enum Backing {
    /// A POSIX shared-memory object.
    Posix(Mapping),
    /// A System V segment.
    Sysv(Attachment),
}

impl Backing {
    fn region(&self) -> &dyn Region {
        match self {
            Backing::Posix(m) => m,
            Backing::Sysv(a) => a,
        }
    }
}

/// A mapped channel object.
pub(crate) struct Shared {
    /// The mapping's first byte (the mapping is page-aligned and lives as long as `map`).
    base: NonNull<u8>,
    /// Held only to keep the bytes mapped until drop.
    #[allow(dead_code)]
    map: Backing,
    /// The geometry validated at open.
    pub g: Geometry,
    /// `/name`, for errors.
    pub name: String,
}

impl Shared {
    /// Creates the object `name` with geometry `g`, exclusively, every page allocated
    /// (a full /dev/shm is an error here, not a SIGBUS later), and publishes it.
    pub fn create(name: &str, g: Geometry, mode: u32) -> Result<()> {
        let name = ShmName::new(name)?;
        let shm = PosixShm::create_with(&name, g.total_size(), &CreateOptions::new().mode(mode))?;
        let made = (|| {
            let map = shm.map()?;
            layout::init(&map, g)?;
            header::publish(&map)
        })();
        if made.is_err() {
            let _ = PosixShm::unlink(&name);
        }
        made
    }

    /// Opens and validates the object `name`.
    pub fn open(name: &str) -> Result<Shared> {
        let name = ShmName::new(name)?;
        let object = name.to_string();
        let shm = PosixShm::open(&name, Access::ReadWrite)?;
        let size = shm.size()?;
        if size < RING_OFFSET as u64 || size > layout::MAX_RING + RING_OFFSET as u64 {
            return Err(Error::corrupt(
                "open",
                &object,
                format!("{size} bytes is not the size of a channel"),
            ));
        }
        Shared::validate(Backing::Posix(shm.map()?), object)
    }

    /// Creates a System V segment with `key` ([`Key::PRIVATE`] allowed) holding a channel
    /// of geometry `g`, exclusively, lays it out and publishes it; returns its id.
    pub fn create_sysv(key: Key, g: Geometry, mode: u32) -> Result<i32> {
        let object = crate::sys::sysv::key_object(key.raw());
        let size = usize::try_from(g.total_size())
            .map_err(|_| Error::invalid("create", &object, "the channel is too large"))?;
        let seg = Segment::options().mode(mode).create(key, size)?;
        let made = (|| {
            let att = seg.attach()?;
            layout::init(&att, g)?;
            header::publish(&att)
        })();
        match made {
            Ok(()) => Ok(seg.id()),
            Err(e) => {
                let _ = seg.remove();
                Err(e)
            }
        }
    }

    /// Attaches and validates the System V segment `id`.
    pub fn open_sysv(id: i32) -> Result<Shared> {
        let att = Segment::from_id(id)?.attach()?;
        let object = att.object_name();
        Shared::validate(Backing::Sysv(att), object)
    }

    /// Checks the size, waits for the creator, validates the layout and caches the base.
    fn validate(map: Backing, object: String) -> Result<Shared> {
        let region = map.region();
        let size = region.len() as u64;
        if size < RING_OFFSET as u64 || size > layout::MAX_RING + RING_OFFSET as u64 {
            return Err(Error::corrupt(
                "open",
                &object,
                format!("{size} bytes is not the size of a channel"),
            ));
        }
        let h = header::wait_ready(
            region,
            ObjectKind::CHANNEL_SPSC,
            layout::LAYOUT_VERSION,
            READY_TIMEOUT,
        )?;
        let g = layout::validate_config(region, &h)?;
        let base = NonNull::new(region.as_ptr())
            .ok_or_else(|| Error::corrupt("open", &object, "the mapping has no address"))?;
        // Fault every page in now rather than on the ring's first lap: a 64-byte stream
        // of 200 000 messages through an 8 MiB ring went 24 -> 38-45 M/s on the
        // development VM. Best effort: a kernel before 5.14 leaves them to fault.
        let _ = crate::sys::mmap::populate(base, region.len(), true, &object);
        Ok(Shared {
            base,
            map,
            g,
            name: object,
        })
    }

    /// The 8-byte word at a header offset (a constant from [`layout`]).
    #[inline]
    pub fn word64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= RING_OFFSET);
        // SAFETY: `off` is one of the layout's header offsets, 8-aligned and below
        // RING_OFFSET, and open checked the mapping is longer than RING_OFFSET; the
        // mapping is page-aligned, so the address is 8-aligned. AtomicU64 may alias
        // memory other processes access atomically; the reference lives no longer than
        // &self, hence than the mapping.
        #[allow(unsafe_code)]
        unsafe {
            AtomicU64::from_ptr(self.base.as_ptr().add(off).cast())
        }
    }

    /// The CPU hint next to the sleep word at `sleep` ([`super::wait::note_cpu`]).
    #[inline]
    pub fn cpu_hint(&self, sleep: usize) -> &AtomicU32 {
        self.word32(sleep + super::wait::CPU_HINT_DELTA)
    }

    /// The 4-byte word at a header offset.
    #[inline]
    pub fn word32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= RING_OFFSET);
        // SAFETY: as in word64, for a 4-aligned offset below RING_OFFSET.
        #[allow(unsafe_code)]
        unsafe {
            AtomicU32::from_ptr(self.base.as_ptr().add(off).cast())
        }
    }

    /// An endpoint's words.
    pub fn endpoint(&self, off: usize) -> Endpoint<'_> {
        Endpoint {
            owner: self.word64(off),
            epoch: self.word32(off + layout::EPOCH_DELTA),
        }
    }

    /// A pointer to `len` ring bytes at ring offset `off`, or `None` if out of range.
    #[inline(always)]
    pub fn ring_ptr(&self, off: u64, len: usize) -> Option<*mut u8> {
        let end = off.checked_add(len as u64)?;
        if end > self.g.ring_size {
            return None;
        }
        // SAFETY: RING_OFFSET + off + len <= RING_OFFSET + ring_size <= mapping length
        // (checked at open), so the pointer stays inside the mapping.
        #[allow(unsafe_code)]
        Some(unsafe { self.base.as_ptr().add(RING_OFFSET + off as usize) })
    }
}

// SAFETY: `base` points into `map`, which Shared owns and which is Send and Sync (both
// backings are); all access through it is atomic or to slots this side owns by protocol,
// exactly as through the backing itself.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl RingBytes for Shared {
    #[inline(always)]
    fn write_word(&self, off: u64, word: u64, order: Ordering) {
        if off % 8 != 0 {
            return;
        }
        if let Some(p) = self.ring_ptr(off, 8) {
            // SAFETY: in range (ring_ptr) and 8-aligned (ring and offset are); an atomic
            // store, so a concurrent hostile write is a race on an atomic, not UB.
            #[allow(unsafe_code)]
            unsafe { AtomicU64::from_ptr(p.cast()) }.store(word, order);
        }
    }

    #[inline(always)]
    fn read_word(&self, off: u64, order: Ordering) -> u64 {
        if off % 8 != 0 {
            return 0;
        }
        match self.ring_ptr(off, 8) {
            // SAFETY: as in write_word; read once, so the value checked is the one used.
            #[allow(unsafe_code)]
            Some(p) => unsafe { AtomicU64::from_ptr(p.cast()) }.load(order),
            None => 0,
        }
    }
}
