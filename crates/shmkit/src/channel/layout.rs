//! The layout of an SPSC channel object in shared memory, and the checks an opener runs.
//!
//! ```text
//! offset  size  line         contents
//!      0    64  common       shmkit::header (kind CHANNEL_SPSC, version LAYOUT_VERSION)
//!     64    64  config       ring_size u64 | max_message u32 | flags u32 | ring_offset u64
//!                            | stamp_key u64 | zero
//!    128   128  producer     head: AtomicU64, bytes ever committed (written by the sender)
//!    256   128  consumer     tail: AtomicU64, bytes ever released, bit 0: waiting (receiver)
//!    384   128  rx wait      rx_sleep: AtomicU32, 1 while the receiver sleeps on it (futex)
//!                            | rx_cpu: u32, the receiver's CPU hint (`wait::note_cpu`)
//!    512   128  tx wait      tx_sleep: AtomicU32, 1 while the sender sleeps on it (futex)
//!                            | tx_cpu: u32, the sender's CPU hint
//!    640   128  endpoints    sender owner u64 | sender epoch u32 | pad
//!                            receiver owner u64 | receiver epoch u32 | pad
//!    768   256  reserved     zero
//!   1024  ring  ring         records, 16-byte aligned, ring_size a power of two
//! ```
//!
//! Producer and consumer positions sit on separate 128-byte blocks (two cache lines, so
//! the adjacent-line prefetcher does not pair them), and so do the two futex words, which
//! are written only by a side that goes to sleep: in steady streaming each side reads
//! the other's sleep word from its own cache.
//!
//! A record in the ring is a 16-byte header followed by the payload, padded to a
//! multiple of 16 (so a record of an 8- or 16-byte message never straddles two cache
//! lines: measured, 24-byte records made an 8-byte round trip 15% slower). The
//! header's first word is the record's stamp,
//! `((position >> 3) ^ stamp_key) * 0x9e3779b97f4a7c15` (wrapping), its second the
//! kind and length (low 32 bits: payload length, high 32 bits: tag [`TAG_MSG`] or
//! [`TAG_PAD`]). Records never wrap: when one does not fit before the end of the ring,
//! a padding record fills the rest and the message starts at offset 0. Positions are byte
//! counts that only grow; `position & (ring_size - 1)` is the offset in the ring. The
//! stamp publishes its record: the sender writes the payload and the kind-and-length
//! word, then stores the stamp (a padding record's last of all); any other value at
//! the receiver's position means "nothing yet". `stamp_key` is random, chosen at
//! creation, with its top bit set (so no stamp is 0). `head` is stored after each
//! commit for inspection, for a sender that takes over from a dead one, and for the
//! receiver's check that a record `head` covers has its stamp.
//!
//! An endpoint's owner word is `pid << 32 | (start time in clock ticks & 0xffff_ffff)`
//! of the process holding it, or 0 when free; its epoch counts the claims.

use crate::error::{Error, Result};
use crate::header::{self, ObjectKind, HEADER_SIZE};
use crate::region::{Region, RegionExt};

/// The version of this layout, checked at open.
/// 3: bit 0 of `tail` says the receiver waits (`ring::WAITING`); 2: records are
/// published by a stamp (1: by a header word after a zeroed slot).
pub const LAYOUT_VERSION: u16 = 3;

/// Offset of the config block.
pub const CONFIG_OFFSET: usize = HEADER_SIZE;
/// Offset of the producer position (`head`).
pub const HEAD_OFFSET: usize = 128;
/// Offset of the consumer position (`tail`).
pub const TAIL_OFFSET: usize = 256;
/// Offset of the receiver's sleep word.
pub const RX_SLEEP_OFFSET: usize = 384;
/// Offset of the sender's sleep word.
pub const TX_SLEEP_OFFSET: usize = 512;
/// Offset of the sender endpoint (owner u64, epoch u32).
pub const SENDER_OFFSET: usize = 640;
/// Offset of the receiver endpoint (owner u64, epoch u32).
pub const RECEIVER_OFFSET: usize = 704;
/// Offset of the ring.
pub const RING_OFFSET: usize = 1024;

/// Tag of a message record ("MSG\0").
pub const TAG_MSG: u32 = u32::from_le_bytes(*b"MSG\0");
/// Tag of a padding record ("PAD\0").
pub const TAG_PAD: u32 = u32::from_le_bytes(*b"PAD\0");
/// Bytes of a record header.
pub const RECORD_HEADER: u64 = 16;
/// Records start and end at multiples of this many bytes.
pub const RECORD_ALIGN: u64 = 16;

/// Smallest ring.
pub const MIN_RING: u64 = 64;
/// Largest ring (1 GiB).
pub const MAX_RING: u64 = 1 << 30;

/// The config block at [`CONFIG_OFFSET`], written once by the creator.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Config {
    /// Bytes in the ring, a power of two.
    pub ring_size: u64,
    /// Largest payload in bytes.
    pub max_message: u32,
    /// Reserved flags, zero.
    pub flags: u32,
    /// Offset of the ring in the object ([`RING_OFFSET`]).
    pub ring_offset: u64,
    /// The key of the record stamps (top bit set).
    pub stamp_key: u64,
    /// Zero.
    pub reserved: [u64; 4],
}

/// The whole channel header (after the common one), for the size asserts.
#[repr(C)]
#[allow(dead_code)]
struct ChannelHeader {
    config: Config,
    head: [u64; 16],
    tail: [u64; 16],
    rx_sleep: [u32; 32],
    tx_sleep: [u32; 32],
    sender_owner: u64,
    sender_epoch: u32,
    _p0: [u32; 13],
    receiver_owner: u64,
    receiver_epoch: u32,
    _p1: [u32; 13],
    reserved: [u64; 32],
}

const _: () = assert!(std::mem::size_of::<Config>() == 64);
const _: () = assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, head) == HEAD_OFFSET);
const _: () = assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, tail) == TAIL_OFFSET);
const _: () =
    assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, rx_sleep) == RX_SLEEP_OFFSET);
const _: () =
    assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, tx_sleep) == TX_SLEEP_OFFSET);
const _: () =
    assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, sender_owner) == SENDER_OFFSET);
const _: () =
    assert!(HEADER_SIZE + std::mem::offset_of!(ChannelHeader, receiver_owner) == RECEIVER_OFFSET);
const _: () = assert!(HEADER_SIZE + std::mem::size_of::<ChannelHeader>() == RING_OFFSET);

/// Bytes of the channel's own header (after the common 64).
pub const KIND_HEADER_SIZE: u32 = (RING_OFFSET - HEADER_SIZE) as u32;

/// Offset of an endpoint's epoch word from its owner word.
pub const EPOCH_DELTA: usize = 8;

/// Bytes one record of `len` payload bytes takes in the ring.
#[inline(always)]
pub fn record_len(len: u32) -> u64 {
    RECORD_HEADER + (len as u64).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The geometry an opener trusts after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes in the ring (power of two).
    pub ring_size: u64,
    /// Largest payload.
    pub max_message: u32,
    /// The key of the record stamps (see the module docs); its top bit is set.
    pub stamp_key: u64,
}

/// A fresh random stamp key with its top bit set.
pub fn new_stamp_key() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the operating system's random source, and each one
    // differs; hashing the time as well keeps keys apart should it ever be reused.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() | 1 << 63
}

impl Geometry {
    /// `ring_size - 1`.
    #[inline(always)]
    pub fn mask(&self) -> u64 {
        self.ring_size - 1
    }

    /// The geometry for a requested capacity and message limit: the ring is at least
    /// `capacity` bytes and holds two records of the largest message, rounded up to a
    /// power of two.
    pub fn for_request(capacity: u64, max_message: u64, object: &str) -> Result<Geometry> {
        if max_message > u32::MAX as u64 / 2 {
            return Err(Error::invalid(
                "create",
                object,
                format!("max message {max_message} is too large"),
            ));
        }
        let need = (2 * record_len(max_message as u32))
            .max(capacity)
            .max(MIN_RING);
        let ring = need.checked_next_power_of_two().unwrap_or(u64::MAX);
        if ring > MAX_RING {
            return Err(Error::invalid(
                "create",
                object,
                format!("a ring of {need} bytes exceeds the limit of {MAX_RING}"),
            ));
        }
        Ok(Geometry {
            ring_size: ring,
            max_message: max_message as u32,
            stamp_key: new_stamp_key(),
        })
    }

    /// Checks a geometry read from shared memory.
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        if !self.ring_size.is_power_of_two() || self.ring_size < MIN_RING {
            return Err("the ring size is not a power of two of at least 64");
        }
        if self.ring_size > MAX_RING {
            return Err("the ring size exceeds 1 GiB");
        }
        if 2 * record_len(self.max_message) > self.ring_size {
            return Err("the message limit does not fit twice in the ring");
        }
        if self.stamp_key >> 63 == 0 {
            return Err("the stamp key lacks its top bit");
        }
        Ok(())
    }

    /// Total bytes of the object.
    pub fn total_size(&self) -> u64 {
        RING_OFFSET as u64 + self.ring_size
    }
}

/// Writes the common header and the config of a fresh object (not yet published).
pub fn init(region: &(impl Region + ?Sized), g: Geometry) -> Result<()> {
    header::init(
        region,
        header::Layout {
            kind: ObjectKind::CHANNEL_SPSC,
            version: LAYOUT_VERSION,
            header_size: KIND_HEADER_SIZE,
            total_size: g.total_size(),
        },
    )?;
    let cfg = Config {
        ring_size: g.ring_size,
        max_message: g.max_message,
        flags: 0,
        ring_offset: RING_OFFSET as u64,
        stamp_key: g.stamp_key,
        reserved: [0; 4],
    };
    region.fill(HEAD_OFFSET, RING_OFFSET - HEAD_OFFSET, 0)?;
    region.write(CONFIG_OFFSET, &cfg)
}

/// Validates the common header and the config of an opened object; returns the
/// geometry. Every failure is [`crate::ErrorKind::Corrupt`] (or `WouldBlock` while the
/// creator is still laying it out).
pub fn validate(region: &(impl Region + ?Sized)) -> Result<Geometry> {
    let h = header::validate(region, ObjectKind::CHANNEL_SPSC, LAYOUT_VERSION)?;
    validate_config(region, &h)
}

/// The config part of [`validate`], after the common header was checked.
pub fn validate_config(region: &(impl Region + ?Sized), h: &header::Header) -> Result<Geometry> {
    let name = region.object_name();
    if h.header_size != KIND_HEADER_SIZE {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "channel header size {} is not {KIND_HEADER_SIZE}",
                h.header_size
            ),
        ));
    }
    let cfg: Config = region.read(CONFIG_OFFSET)?;
    let g = Geometry {
        ring_size: cfg.ring_size,
        max_message: cfg.max_message,
        stamp_key: cfg.stamp_key,
    };
    if cfg.ring_offset != RING_OFFSET as u64 {
        return Err(Error::corrupt("open", &name, "the ring offset is wrong"));
    }
    g.check().map_err(|r| Error::corrupt("open", &name, r))?;
    if g.total_size() != h.total_size || g.total_size() > region.len() as u64 {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "ring of {} bytes does not match the object size {} (mapping {})",
                g.ring_size,
                h.total_size,
                region.len()
            ),
        ));
    }
    Ok(g)
}
