//! The common header at offset 0 of every object whose layout shmkit defines (channels,
//! lock objects, mailboxes): how an opener knows what it is looking at, and that the
//! creator has finished laying it out.
//!
//! ```text
//! offset size field
//!      0    8 magic            b"SHMKIT\0\x01" (little-endian u64 MAGIC)
//!      8    2 kind             ObjectKind: what follows the header
//!     10    2 layout_version   version of that kind's layout
//!     12    4 header_size      bytes of the kind's own header, starting at offset 64
//!     16    8 total_size       bytes the creator laid out (the mapping must be at least this)
//!     24    4 creator_pid      process that created the object
//!     28    4 ready            0 while the creator writes the layout; READY once done
//!     32    8 created_unix_ns  creation time, nanoseconds since the epoch
//!     40   24 reserved         zero
//! ```
//!
//! The creator writes every field with `ready` 0, then stores `ready` with Release and
//! wakes futex waiters on it. Openers load `ready` with Acquire before trusting any other
//! byte, and reject a wrong magic, kind, version or size with [`ErrorKind::Corrupt`]. A
//! C peer can follow the same protocol: the layout is fixed-width and `#[repr(C)]`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::region::{Region, RegionExt};
use crate::sys::futex;

/// The magic number at offset 0: the bytes `SHMKIT\0\x01`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// The value of the ready word once the object is laid out ("REDY").
pub const READY: u32 = u32::from_le_bytes(*b"REDY");
/// Size of the common header; a kind's own header starts here.
pub const HEADER_SIZE: usize = 64;

/// Offset of the ready word.
pub const READY_OFFSET: usize = 28;

/// What a shmkit object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKind(pub u16);

impl ObjectKind {
    /// A single-producer single-consumer channel.
    pub const CHANNEL_SPSC: ObjectKind = ObjectKind(1);
    /// A multi-producer single-consumer channel.
    pub const CHANNEL_MPSC: ObjectKind = ObjectKind(2);
    /// A broadcast channel (one publisher, many subscribers).
    pub const CHANNEL_BROADCAST: ObjectKind = ObjectKind(3);
    /// A request-reply channel (one client, one server).
    pub const CHANNEL_RPC: ObjectKind = ObjectKind(4);
    /// A lock object (`shmkit lock`): a robust mutex.
    pub const LOCK: ObjectKind = ObjectKind(16);
    /// A mailbox: one slot handed from writer to reader.
    pub const MAILBOX: ObjectKind = ObjectKind(17);

    /// A short human name: `channel-spsc`, `lock`, `mailbox`, or `kind-N`.
    pub fn name(self) -> String {
        match self {
            ObjectKind::CHANNEL_SPSC => "channel-spsc".into(),
            ObjectKind::CHANNEL_MPSC => "channel-mpsc".into(),
            ObjectKind::CHANNEL_BROADCAST => "channel-broadcast".into(),
            ObjectKind::CHANNEL_RPC => "channel-rpc".into(),
            ObjectKind::LOCK => "lock".into(),
            ObjectKind::MAILBOX => "mailbox".into(),
            ObjectKind(n) => format!("kind-{n}"),
        }
    }
}

/// The common header, as read from an object.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`ObjectKind`] number.
    pub kind: u16,
    /// The kind's layout version.
    pub layout_version: u16,
    /// Bytes of the kind's own header after the common one.
    pub header_size: u32,
    /// Bytes the creator laid out.
    pub total_size: u64,
    /// The creating process.
    pub creator_pid: u32,
    /// [`READY`] once laid out.
    pub ready: u32,
    /// Creation time in nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Zero.
    pub reserved: [u64; 3],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(std::mem::offset_of!(Header, ready) == READY_OFFSET);
const _: () = assert!(std::mem::offset_of!(Header, total_size) == 16);
const _: () = assert!(std::mem::offset_of!(Header, created_unix_ns) == 32);

impl Header {
    /// Decodes the first [`HEADER_SIZE`] bytes of an object, without validating it;
    /// `None` if the magic does not match. For tools that look at objects they did not
    /// create (`shmkit ls`).
    pub fn peek(bytes: &[u8]) -> Option<Header> {
        let h: Header = bytemuck::pod_read_unaligned(bytes.get(..HEADER_SIZE)?);
        (h.magic == MAGIC).then_some(h)
    }

    /// The kind.
    pub fn object_kind(&self) -> ObjectKind {
        ObjectKind(self.kind)
    }
}

/// What an object's creator declares in [`init`].
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// What the object holds.
    pub kind: ObjectKind,
    /// The kind's layout version.
    pub version: u16,
    /// Bytes of the kind's own header.
    pub header_size: u32,
    /// Bytes laid out in all.
    pub total_size: u64,
}

/// Writes the common header with the ready word 0. The caller then lays out the rest
/// and calls [`publish`].
pub fn init(region: &(impl Region + ?Sized), layout: Layout) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let h = Header {
        magic: MAGIC,
        kind: layout.kind.0,
        layout_version: layout.version,
        header_size: layout.header_size,
        total_size: layout.total_size,
        creator_pid: std::process::id(),
        ready: 0,
        created_unix_ns: now,
        reserved: [0; 3],
    };
    if (region.len() as u64) < layout.total_size {
        return Err(Error::invalid(
            "init",
            region.object_name(),
            format!(
                "the mapping has {} bytes, the layout needs {}",
                region.len(),
                layout.total_size
            ),
        ));
    }
    region.atomic_u32(READY_OFFSET)?.store(0, Ordering::Relaxed);
    region.write(0, &h)
}

/// Marks the object ready and wakes openers waiting for it.
pub fn publish(region: &(impl Region + ?Sized)) -> Result<()> {
    let ready = region.atomic_u32(READY_OFFSET)?;
    // SYNC: Release pairs with the Acquire load in `validate`/`wait_ready`: everything the
    // creator wrote before is visible to an opener that sees READY.
    ready.store(READY, Ordering::Release);
    futex::wake_all(ready);
    Ok(())
}

/// Checks the header of an opened object: ready, magic, kind, version, and sizes that fit
/// the mapping. Returns the header.
pub fn validate(region: &(impl Region + ?Sized), kind: ObjectKind, version: u16) -> Result<Header> {
    let name = region.object_name();
    if region.len() < HEADER_SIZE {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "{} bytes is too small for a shmkit object (at least {HEADER_SIZE})",
                region.len()
            ),
        ));
    }
    let ready = load_ready(region)?;
    let h: Header = region.read(0)?;
    // A creator that has not written the header yet leaves zeros (a fresh ftruncate).
    if ready != READY && (h.magic == MAGIC || h.magic == 0) {
        return Err(Error::new(
            ErrorKind::WouldBlock,
            "open",
            &name,
            "the creator has not finished laying it out",
        ));
    }
    if h.magic != MAGIC {
        return Err(Error::corrupt(
            "open",
            &name,
            "not a shmkit object (wrong magic number)",
        ));
    }
    if ready != READY {
        return Err(Error::corrupt(
            "open",
            &name,
            format!("the ready word holds {ready:#x}"),
        ));
    }
    if h.kind != kind.0 {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "it holds a {}, not a {}",
                h.object_kind().name(),
                kind.name()
            ),
        ));
    }
    if h.layout_version != version {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "layout version {} is not the supported version {version}",
                h.layout_version
            ),
        ));
    }
    let needed = (HEADER_SIZE as u64).saturating_add(h.header_size as u64);
    if h.total_size > region.len() as u64 || needed > h.total_size {
        return Err(Error::corrupt(
            "open",
            &name,
            format!(
                "header sizes are inconsistent (total {}, kind header {}, mapping {})",
                h.total_size,
                h.header_size,
                region.len()
            ),
        ));
    }
    Ok(h)
}

/// Like [`validate`], but waits up to `timeout` for a creator that is still laying the
/// object out (the open-while-creating race), sleeping on the ready word's futex.
pub fn wait_ready(
    region: &(impl Region + ?Sized),
    kind: ObjectKind,
    version: u16,
    timeout: Duration,
) -> Result<Header> {
    // A huge timeout (Duration::MAX) means "as long as it takes", not an overflow panic.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match validate(region, kind, version) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "open",
                        region.object_name(),
                        e.reason(),
                    ));
                }
                let word = region.atomic_u32(READY_OFFSET)?;
                futex::wait(word, 0, left);
            }
            other => return other,
        }
    }
}

fn load_ready(region: &(impl Region + ?Sized)) -> Result<u32> {
    if region.is_writable() {
        // SYNC: Acquire pairs with the Release store in `publish`.
        Ok(region.atomic_u32(READY_OFFSET)?.load(Ordering::Acquire))
    } else {
        let v: u32 = region.read(READY_OFFSET)?;
        // SYNC: a read-only mapping cannot hand out an atomic; the fence upgrades the
        // plain read to pair with the Release store in `publish`.
        std::sync::atomic::fence(Ordering::Acquire);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Heap(Box<[u64]>);
    // SAFETY: the boxed slice lives as long as the struct and is 8 * len bytes.
    #[allow(unsafe_code)]
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
            "heap".into()
        }
    }

    fn layout() -> Layout {
        Layout {
            kind: ObjectKind::MAILBOX,
            version: 3,
            header_size: 16,
            total_size: 128,
        }
    }

    #[test]
    fn init_publish_validate() {
        let r = Heap(vec![0; 16].into_boxed_slice());
        init(&r, layout()).unwrap();
        let e = validate(&r, ObjectKind::MAILBOX, 3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        publish(&r).unwrap();
        let h = validate(&r, ObjectKind::MAILBOX, 3).unwrap();
        assert_eq!(h.total_size, 128);
        assert_eq!(h.creator_pid, std::process::id());
        assert_eq!(
            Header::peek(&r.read_vec(0, 64).unwrap())
                .unwrap()
                .object_kind(),
            ObjectKind::MAILBOX
        );
    }

    #[test]
    fn rejects_wrong_kind_version_magic_and_sizes() {
        let r = Heap(vec![0; 16].into_boxed_slice());
        init(&r, layout()).unwrap();
        publish(&r).unwrap();
        assert_eq!(
            validate(&r, ObjectKind::LOCK, 3).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            validate(&r, ObjectKind::MAILBOX, 4).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        r.write(16, &1_000_000u64).unwrap();
        let e = validate(&r, ObjectKind::MAILBOX, 3).unwrap_err();
        assert!(e.to_string().contains("inconsistent"), "{e}");
        r.write(0, &0u64).unwrap();
        assert!(validate(&r, ObjectKind::MAILBOX, 3)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        assert!(Header::peek(&r.read_vec(0, 64).unwrap()).is_none());
    }

    #[test]
    fn wait_ready_takes_a_timeout_past_the_clock_range() {
        let r = Heap(vec![0; 16].into_boxed_slice());
        init(&r, layout()).unwrap();
        publish(&r).unwrap();
        let h = wait_ready(&r, ObjectKind::MAILBOX, 3, Duration::MAX).unwrap();
        assert_eq!(h.total_size, 128);
    }

    #[test]
    fn wait_ready_times_out_on_an_unfinished_object() {
        let r = Heap(vec![0; 16].into_boxed_slice());
        init(&r, layout()).unwrap();
        let e = wait_ready(&r, ObjectKind::MAILBOX, 3, Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    }
}
