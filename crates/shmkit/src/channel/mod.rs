//! Lock-free message channels over shared memory.
//!
//! An SPSC channel is one POSIX shared-memory object (`/dev/shm/<name>`) holding a
//! [`crate::header`], the channel's own header and a byte ring of variable-size records
//! (see [`layout`] for the diagram). Any process may open the [`Sender`] or the
//! [`Receiver`]; each endpoint is held by one process at a time, and the slot of a
//! process that died is taken over by the next one to open it.
//!
//! - Copying calls ([`Sender::send`], [`Receiver::recv`]), zero-copy loans
//!   ([`Sender::loan`] → write in place → [`SendLoan::commit`]; [`Receiver::recv_ref`]
//!   → [`RecvGuard`] borrowing the message in place), and plain-old-data values
//!   ([`Sender::send_value`], [`Receiver::recv_value`]).
//! - Every call comes as `try_` (never waits), plain (waits) and `_timeout`. Waiting
//!   spins a configurable number of polls ([`Sender::set_spin`]) and then sleeps on a
//!   futex; the other side makes a wake-up system call only when someone sleeps. A
//!   call whose peer last ran on its own CPU (one-CPU machines and containers, or both
//!   processes pinned to one core) sleeps at once: the peer could not run meanwhile.
//! - When the sender closes or dies, the receiver gets every committed message, then
//!   [`ChannelError::Disconnected`] or [`ChannelError::PeerDied`]. A message the sender
//!   was writing when it died is never seen, whole or torn.
//! - Three more kinds share the error type and the call style: [`mpsc`] (several
//!   producers, one lane each, one consumer), [`broadcast`] (one publisher, N
//!   subscribers with their own cursors; Backpressure or Overwrite) and [`rpc`] (one
//!   client calls, one server answers; a request and its reply share one slot). Pick the kind with
//!   [`Options::kind`]; [`info_any`] describes any of them.
//! - Everything read from shared memory is validated: a corrupt or hostile object gives
//!   [`ChannelError::Corrupt`] (hot path) or [`crate::ErrorKind::Corrupt`] (open), never
//!   undefined behaviour, a panic or a hang.
//!
//! - The channel lives in a POSIX object by default; [`create_sysv`],
//!   [`Sender::open_sysv`] and [`Receiver::open_sysv`] put an SPSC channel in a System V
//!   segment instead, named by its id.
//!
//! ```no_run
//! # fn main() -> shmkit::Result<()> {
//! use shmkit::channel::{self, Options, Receiver, Sender};
//! channel::create("/jobs", &Options { capacity: 1 << 20, max_message: 4096, ..Options::default() })?;
//! // in one process
//! let mut tx = Sender::open("/jobs")?;
//! tx.send(b"job 1").expect("send");
//! drop(tx);
//! // in another
//! let mut rx = Receiver::open("/jobs")?;
//! while let Ok(msg) = rx.recv() {
//!     println!("{}", String::from_utf8_lossy(&msg));
//! }
//! channel::remove("/jobs")?;
//! # Ok(()) }
//! ```
#![allow(unsafe_code)]

pub mod broadcast;
mod copy;
pub mod fuzz;
pub mod fuzz_multi;
pub mod fuzz_rpc;
pub mod layout;
mod liveness;
pub mod mpsc;
mod multi;
mod ring;
pub mod rpc;
#[cfg(all(test, loom))]
mod rpc_model;
mod seqlock;
mod shared;
mod spsc;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
pub mod wait;

use std::fmt;

pub use spsc::{Receiver, RecvGuard, SendLoan, Sender};

use crate::error::{Error, ErrorKind, Result};
use crate::header::ObjectKind;
use crate::region::{Region, RegionExt};

/// Why a channel operation did not complete. Small and allocation-free: it is returned
/// on the hot path. Convert with [`ChannelError::into_error`] for reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// No room now (`try_` sends).
    Full,
    /// No message now (`try_` receives).
    Empty,
    /// The timeout passed.
    Timeout,
    /// The peer closed its end and, for a receiver, every message was received.
    Disconnected,
    /// The peer process (this pid) died; for a receiver, every message it committed was
    /// received.
    PeerDied(u32),
    /// The message is larger than the channel's limit.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The channel's limit.
        max: usize,
    },
    /// A typed receive found a message of another size (the message was consumed).
    WrongSize {
        /// `size_of::<T>()`.
        expected: usize,
        /// The message's length.
        got: usize,
    },
    /// Shared memory holds something the protocol forbids (a buggy or hostile peer).
    Corrupt(&'static str),
    /// A broadcast subscriber was overtaken (Overwrite mode): this many messages were
    /// overwritten before it read them. The next receive goes on after them.
    Lagged(u64),
    /// A request-reply server dropped the request without replying (for example, its
    /// handler panicked).
    Unanswered,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Full => f.write_str("the channel is full"),
            ChannelError::Empty => f.write_str("the channel is empty"),
            ChannelError::Timeout => f.write_str("timed out"),
            ChannelError::Disconnected => f.write_str("the other end closed the channel"),
            ChannelError::PeerDied(pid) => write!(f, "the other end (pid {pid}) died"),
            ChannelError::TooLarge { len, max } => {
                write!(
                    f,
                    "a {len}-byte message exceeds the channel's limit of {max} bytes"
                )
            }
            ChannelError::WrongSize { expected, got } => {
                write!(f, "expected a {expected}-byte message, got {got} bytes")
            }
            ChannelError::Corrupt(why) => write!(f, "the channel is corrupt: {why}"),
            ChannelError::Lagged(n) => {
                write!(f, "overtaken by the publisher: {n} messages missed")
            }
            ChannelError::Unanswered => f.write_str("the server dropped the request unanswered"),
        }
    }
}

impl std::error::Error for ChannelError {}

impl ChannelError {
    /// The full [`Error`] for a channel named `object`, with `op` (`send`, `recv`).
    pub fn into_error(self, op: &'static str, object: &str) -> Error {
        let kind = match self {
            ChannelError::Full | ChannelError::Empty => ErrorKind::WouldBlock,
            ChannelError::Timeout => ErrorKind::TimedOut,
            ChannelError::TooLarge { .. } | ChannelError::WrongSize { .. } => {
                ErrorKind::InvalidInput
            }
            ChannelError::Corrupt(_) => ErrorKind::Corrupt,
            _ => ErrorKind::Other,
        };
        Error::new(kind, op, object, self.to_string())
    }
}

/// How to create a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Ring bytes at least (rounded up to a power of two, and to two records of the
    /// largest message). Each message takes 16 bytes plus its length rounded up to 16.
    pub capacity: u64,
    /// The largest message in bytes.
    pub max_message: u64,
    /// Permission bits of the object (before the umask).
    pub mode: u32,
    /// Which kind of channel to create (SPSC by default).
    pub kind: Kind,
}

/// The kind of channel [`create`] makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// One sender, one receiver ([`Sender`], [`Receiver`]).
    #[default]
    Spsc,
    /// Several producers, one consumer ([`mpsc::Sender`], [`mpsc::Receiver`]): `lanes`
    /// producers at once, each with its own ring of `capacity` bytes.
    Mpsc {
        /// The most producers at once (1..=64).
        lanes: u32,
    },
    /// One publisher, up to `subscribers` subscribers each with its own cursor
    /// ([`broadcast::Publisher`], [`broadcast::Subscriber`]); the ring holds
    /// `capacity / (16 + max_message)` messages (at least 2).
    Broadcast {
        /// The most subscribers at once (1..=1024).
        subscribers: u32,
        /// What a slow subscriber does to the publisher.
        mode: broadcast::Mode,
    },
    /// One client calls, one server answers ([`rpc::Client`], [`rpc::Server`]); a
    /// request and its reply share one slot of `max_message` bytes (`capacity` is not
    /// used).
    Rpc,
}

impl Default for Options {
    /// 64 KiB ring, 4 KiB messages, mode 0600.
    fn default() -> Self {
        Options {
            capacity: 64 * 1024,
            max_message: 4096,
            mode: 0o600,
            kind: Kind::Spsc,
        }
    }
}

/// Creates the channel `name` (`/name` or `name`) of the kind `opts.kind`; fails if the
/// name exists.
pub fn create(name: &str, opts: &Options) -> Result<()> {
    if let Kind::Mpsc { lanes } = opts.kind {
        return mpsc::create(name, opts.capacity, opts.max_message, lanes, opts.mode);
    }
    if let Kind::Broadcast { subscribers, mode } = opts.kind {
        return broadcast::create(
            name,
            opts.capacity,
            opts.max_message,
            subscribers,
            mode,
            opts.mode,
        );
    }
    if opts.kind == Kind::Rpc {
        return rpc::create(name, opts.max_message, opts.mode);
    }
    let object = crate::posix::ShmName::new(name)?.to_string();
    let g = layout::Geometry::for_request(opts.capacity, opts.max_message, &object)?;
    shared::Shared::create(name, g, opts.mode)
}

/// Creates an SPSC channel in a new System V segment with `key` (`IPC_CREAT |
/// IPC_EXCL`, permission bits `opts.mode`; [`crate::sysv::Key::PRIVATE`] makes a segment
/// found only by id) and returns the segment's id, for [`Sender::open_sysv`] and
/// [`Receiver::open_sysv`]. Layout, validation and ring are those of the POSIX channel.
/// Only [`Kind::Spsc`] is available this way. System V applies no umask to `opts.mode`.
/// Peers that know only the key find the id with
/// [`crate::sysv::Segment::open`]`(key)?.id()`. Remove it with [`remove_sysv`]:
/// segments outlive processes.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::channel::{self, Options, Receiver, Sender};
/// use shmkit::sysv::Key;
/// let id = channel::create_sysv(Key::PRIVATE, &Options::default())?;
/// let mut tx = Sender::open_sysv(id)?;
/// let mut rx = Receiver::open_sysv(id)?;
/// tx.send(b"over System V").unwrap();
/// assert_eq!(rx.recv().unwrap(), b"over System V");
/// drop((tx, rx));
/// channel::remove_sysv(id)?;
/// # Ok(()) }
/// ```
pub fn create_sysv(key: crate::sysv::Key, opts: &Options) -> Result<i32> {
    let object = crate::sys::sysv::key_object(key.raw());
    if opts.kind != Kind::Spsc {
        return Err(Error::invalid(
            "create",
            &object,
            "only SPSC channels can live in a System V segment",
        ));
    }
    let g = layout::Geometry::for_request(opts.capacity, opts.max_message, &object)?;
    shared::Shared::create_sysv(key, g, opts.mode)
}

/// Removes the System V segment `id` holding a channel (`IPC_RMID`): processes that
/// have it attached keep using it; the memory goes at the last detach.
pub fn remove_sysv(id: i32) -> Result<()> {
    crate::sysv::Segment::from_id(id)?.remove()
}

/// Removes the channel's name; processes that have it open keep using it.
pub fn remove(name: &str) -> Result<()> {
    crate::posix::PosixShm::unlink(&crate::posix::ShmName::new(name)?)
}

/// Describes the channel `name`: opens it read-only (so read permission is enough) and
/// claims no endpoint.
pub fn info(name: &str) -> Result<ChannelInfo> {
    use crate::posix::{Access, PosixShm, ShmName};
    let shm = PosixShm::open(&ShmName::new(name)?, Access::ReadOnly)?;
    describe(&shm.map()?)
}

/// One endpoint of a channel, as [`describe`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The holder's pid.
    pub pid: u32,
    /// Whether that process still lives.
    pub alive: bool,
}

/// What [`describe`] reports about a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The object kind (`CHANNEL_SPSC`).
    pub kind: ObjectKind,
    /// Ring bytes.
    pub capacity: u64,
    /// Largest message.
    pub max_message: u32,
    /// Ring bytes holding unreceived messages.
    pub used: u64,
    /// Unreceived messages, if the ring could be walked.
    pub messages: Option<u64>,
    /// The sender, if one holds the slot.
    pub sender: Option<EndpointInfo>,
    /// The receiver, if one holds the slot.
    pub receiver: Option<EndpointInfo>,
    /// How many times a sender has opened the channel.
    pub sender_opens: u32,
    /// How many times a receiver has opened the channel.
    pub receiver_opens: u32,
}

/// Describes the channel laid out in `region` (for `shmkit ls` and `shmkit channel
/// info`). Works on read-only mappings; validates the header like an opener.
pub fn describe(region: &(impl Region + ?Sized)) -> Result<ChannelInfo> {
    let g = layout::validate(region)?;
    let head: u64 = region.read(layout::HEAD_OFFSET)?;
    let tail = region.read::<u64>(layout::TAIL_OFFSET)? & !ring::WAITING;
    let endpoint = |off: usize| -> Result<(Option<EndpointInfo>, u32)> {
        let w: u64 = region.read(off)?;
        let epoch: u32 = region.read(off + layout::EPOCH_DELTA)?;
        let info = (w != 0).then(|| EndpointInfo {
            pid: liveness::pid_of(w),
            alive: liveness::alive(w),
        });
        Ok((info, epoch))
    };
    let (sender, sender_opens) = endpoint(layout::SENDER_OFFSET)?;
    let (receiver, receiver_opens) = endpoint(layout::RECEIVER_OFFSET)?;
    let consistent = tail <= head && head - tail <= g.ring_size;
    let messages = if consistent {
        count_messages(region, &g, head, tail)
    } else {
        None
    };
    Ok(ChannelInfo {
        kind: ObjectKind::CHANNEL_SPSC,
        capacity: g.ring_size,
        max_message: g.max_message,
        used: if consistent { head - tail } else { 0 },
        messages,
        sender,
        receiver,
        sender_opens,
        receiver_opens,
    })
}

/// Walks the records between `tail` and `head` (a snapshot; bounded by the ring size).
fn count_messages(
    region: &(impl Region + ?Sized),
    g: &layout::Geometry,
    head: u64,
    mut tail: u64,
) -> Option<u64> {
    let mut n = 0;
    while tail < head {
        let off = tail & g.mask();
        let at = layout::RING_OFFSET + off as usize;
        let s: u64 = region.read(at).ok()?;
        if s != ring::stamp(g.stamp_key, tail) {
            return None;
        }
        let w: u64 = region.read(at + 8).ok()?;
        let (len, tag) = (w as u32, (w >> 32) as u32);
        let step = match tag {
            layout::TAG_PAD if len as u64 == g.ring_size - off => len as u64,
            layout::TAG_MSG if len <= g.max_message => {
                n += 1;
                layout::record_len(len)
            }
            _ => return None,
        };
        tail += step;
    }
    (tail == head).then_some(n)
}

/// What [`describe_any`] reports: the description of whichever kind of channel it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnyInfo {
    /// An SPSC channel.
    Spsc(ChannelInfo),
    /// An MPSC channel.
    Mpsc(mpsc::MpscInfo),
    /// A broadcast channel.
    Broadcast(broadcast::BroadcastInfo),
    /// A request-reply channel.
    Rpc(rpc::RpcInfo),
}

/// Describes a channel of any kind laid out in `region` (read-only mappings work).
pub fn describe_any(region: &(impl Region + ?Sized)) -> Result<AnyInfo> {
    let h: crate::header::Header = region.read(0)?;
    match ObjectKind(h.kind) {
        ObjectKind::CHANNEL_MPSC => mpsc::describe(region).map(AnyInfo::Mpsc),
        ObjectKind::CHANNEL_BROADCAST => broadcast::describe(region).map(AnyInfo::Broadcast),
        ObjectKind::CHANNEL_RPC => rpc::describe(region).map(AnyInfo::Rpc),
        _ => describe(region).map(AnyInfo::Spsc),
    }
}

/// Describes the channel `name` of any kind, opening it read-only.
pub fn info_any(name: &str) -> Result<AnyInfo> {
    use crate::posix::{Access, PosixShm, ShmName};
    let shm = PosixShm::open(&ShmName::new(name)?, Access::ReadOnly)?;
    describe_any(&shm.map()?)
}

/// The kind of the channel `name` (read from its header, opening it read-only).
pub fn kind_of(name: &str) -> Result<ObjectKind> {
    use crate::posix::{Access, PosixShm, ShmName};
    let shm = PosixShm::open(&ShmName::new(name)?, Access::ReadOnly)?;
    let h: crate::header::Header = shm.map()?.read(0)?;
    Ok(ObjectKind(h.kind))
}

/// A message as a plain-old-data value: [`ChannelError::WrongSize`] unless it has
/// exactly the value's size (the typed receives of every channel kind).
#[inline]
pub(crate) fn value_of<T: bytemuck::AnyBitPattern>(bytes: &[u8]) -> Result<T, ChannelError> {
    if bytes.len() != std::mem::size_of::<T>() {
        return Err(ChannelError::WrongSize {
            expected: std::mem::size_of::<T>(),
            got: bytes.len(),
        });
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}
