//! The transports compared by the benchmark, behind one [`Endpoint`] trait.
//!
//! A transport is set up by the leading process ([`setup`]), which keeps one endpoint
//! and describes the other in a [`PeerSpec`] that travels to the peer process on its
//! command line; the peer rebuilds its endpoint with [`open_peer`]. File descriptors
//! (pipes, sockets, the floor's memfd) are inherited by the peer; named objects (POSIX
//! message queues) are unlinked by the leading side when its endpoint drops, and from
//! the Ctrl-C handler through [`crate::cleanup()`].
//!
//! Every wait is bounded: blocking reads end with EOF when the peer dies (the leading
//! process closes the peer's descriptors after starting it, and a watchdog kills a peer
//! that overruns its deadline); spinning and timed waits check [`aborted`] and the
//! deadline.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{BenchError, Result};

pub mod fds;
#[allow(unsafe_code)]
pub mod floor;
#[cfg(feature = "iceoryx2")]
pub mod iceoryx;
pub mod mailbox;
#[allow(unsafe_code)]
pub mod mq;
#[allow(unsafe_code)]
pub mod semaphore;
pub mod shmkit_channel;
pub mod shmkit_multi;
pub mod shmkit_rpc;
pub mod signalled;

/// One side of a transport: sends and receives whole messages of known size.
///
/// Round trips go through [`Endpoint::round_trip`] (leading side) and
/// [`Endpoint::serve`] (peer), which by default send and receive; a request-reply
/// transport, which cannot send without a request or receive without answering,
/// overrides both.
pub trait Endpoint {
    /// Sends one message (all of `msg`).
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()>;
    /// Receives one message of exactly `buf.len()` bytes into `buf`.
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()>;

    /// The leading side of one round trip: sends `msg` and receives the answer, of
    /// exactly `reply.len()` bytes, into `reply`.
    fn round_trip(&mut self, msg: &[u8], reply: &mut [u8], deadline: Instant) -> Result<()> {
        self.send(msg, deadline)?;
        self.recv(reply, deadline)
    }

    /// The peer's side of one round trip: receives a message of exactly `buf.len()`
    /// bytes into `buf`, lets `handle` check and change it, and sends `buf` back.
    fn serve(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        handle: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    ) -> Result<()> {
        self.recv(buf, deadline)?;
        handle(buf)?;
        self.send(buf, deadline)
    }
}

/// How a transport waits: it matters when reading the wake-up figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Waiting {
    /// The receiver spins on shared memory: no sleep, no system call, one core busy.
    Spins,
    /// The receiver sleeps in the kernel until woken.
    Blocks,
}

/// A transport the benchmark knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// One line saying what it is.
    pub about: &'static str,
    /// Whether the receiver spins or sleeps.
    pub waiting: Waiting,
    /// Every message is a hand-over between sleeping processes (one in flight):
    /// streams are ten times shorter so that a run stays in minutes.
    pub handoff: bool,
    /// Carries one-way streams; `false`: round trips only, the stream test is skipped.
    pub streams: bool,
}

/// The floor: one cache line handed back and forth through shared memory.
pub const FLOOR: &str = "floor";
/// The pair floor: two cache lines, each written by one side only.
pub const FLOOR_PAIR: &str = "floor-pair";

/// Every transport that runs between two processes, in report order.
pub const KINDS: &[Kind] = &[
    Kind {
        name: FLOOR,
        about: "one shared cache line (state word + payload) handed back and forth, busy-polling",
        waiting: Waiting::Spins,
        handoff: false,
        streams: true,
    },
    Kind {
        name: FLOOR_PAIR,
        about: "two cache lines, each written by one side only (what a pair of one-way channels is made of), busy-polling",
        waiting: Waiting::Spins,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-spin",
        about: "shmkit SPSC channels, waiting by polling only",
        waiting: Waiting::Spins,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit",
        about: "shmkit SPSC channels, default waiting (polls, then sleeps on a futex)",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-block",
        about: "shmkit SPSC channels, sleeping on a futex at once",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-loan",
        about: "shmkit SPSC channels, zero-copy loans to send, default waiting",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-rpc",
        about: "a shmkit request-reply channel (request and reply share one slot), default waiting; round trips only",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: false,
    },
    Kind {
        name: "shmkit-rpc-spin",
        about: "a shmkit request-reply channel, waiting by polling only; round trips only",
        waiting: Waiting::Spins,
        handoff: false,
        streams: false,
    },
    Kind {
        name: "shmkit-mpsc",
        about: "shmkit MPSC channels (one producer lane each way), default waiting",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-broadcast",
        about: "shmkit broadcast channels (backpressure, one subscriber each way), default waiting",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "shmkit-broadcast-4",
        about: "shmkit broadcast channels (backpressure), four subscribers in the peer read each message, one answers back, default waiting",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "pipe",
        about: "two anonymous pipes",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "unix-stream",
        about: "a Unix stream socket pair",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "unix-seqpacket",
        about: "a Unix seqpacket socket pair (one message per packet)",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "tcp",
        about: "TCP over loopback with TCP_NODELAY",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "mq",
        about: "two POSIX message queues (mq_send / mq_receive)",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
    Kind {
        name: "posix-sem",
        about: "payload in a shared memfd, hand-over signalled by process-shared POSIX semaphores",
        waiting: Waiting::Blocks,
        handoff: true,
        streams: true,
    },
    Kind {
        name: "sysv-sem",
        about: "payload in a shared memfd, hand-over signalled by a System V semaphore set",
        waiting: Waiting::Blocks,
        handoff: true,
        streams: true,
    },
    Kind {
        name: "shmkit-sem",
        about: "payload in a shared memfd, hand-over signalled by shmkit in-region semaphores",
        waiting: Waiting::Blocks,
        handoff: true,
        streams: true,
    },
    Kind {
        name: "shmkit-mailbox",
        about: "shmkit mailboxes, one each way (a send waits until the reader took it)",
        waiting: Waiting::Blocks,
        handoff: true,
        streams: true,
    },
    #[cfg(feature = "iceoryx2")]
    Kind {
        name: "iceoryx2-poll",
        about: "iceoryx2 publish-subscribe, busy-polling receive",
        waiting: Waiting::Spins,
        handoff: false,
        streams: true,
    },
    #[cfg(feature = "iceoryx2")]
    Kind {
        name: "iceoryx2-event",
        about: "iceoryx2 publish-subscribe, woken through its event service",
        waiting: Waiting::Blocks,
        handoff: false,
        streams: true,
    },
];

/// Finds a transport by name.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// What the peer needs to build its endpoint; serialised onto its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerSpec {
    /// The floor: an inherited memfd of `len` bytes.
    Floor {
        /// The memfd's descriptor number in the peer.
        fd: RawFd,
        /// Mapping length.
        len: usize,
    },
    /// The pair floor: an inherited memfd of `len` bytes.
    FloorPair {
        /// The memfd's descriptor number in the peer.
        fd: RawFd,
        /// Mapping length.
        len: usize,
    },
    /// shmkit channels by name.
    Shmkit {
        /// Channel the peer receives from.
        rx: String,
        /// Channel the peer sends to.
        tx: String,
        /// How it waits and sends.
        flavour: shmkit_channel::Flavour,
    },
    /// shmkit MPSC or broadcast channels by name.
    ShmkitMulti {
        /// Channel the peer receives from (subscribes to).
        rx: String,
        /// Channel the peer sends to (publishes on).
        tx: String,
        /// Which kind of channel.
        multi: shmkit_multi::Multi,
    },
    /// A shmkit request-reply channel by name (the peer is its server).
    Rpc {
        /// The channel's name.
        name: String,
        /// How it waits.
        flavour: shmkit_rpc::Flavour,
    },
    /// Shared payload signalled by POSIX semaphores in an inherited memfd.
    PosixSem {
        /// The memfd's descriptor number in the peer.
        fd: RawFd,
        /// Mapping length.
        len: usize,
    },
    /// Shared payload in an inherited memfd, signalled by a System V semaphore set
    /// (`sem_id`) or by shmkit semaphores in the memfd (`None`).
    Signalled {
        /// The memfd's descriptor number in the peer.
        fd: RawFd,
        /// The System V semaphore set's id.
        sem_id: Option<i32>,
    },
    /// shmkit mailboxes by name.
    Mailbox {
        /// Mailbox the peer receives from.
        rx: String,
        /// Mailbox the peer sends to.
        tx: String,
    },
    /// Byte streams or packets over inherited descriptors.
    Fds {
        /// Descriptor the peer reads.
        rx: RawFd,
        /// Descriptor the peer writes.
        tx: RawFd,
        /// One message per read/write (seqpacket) rather than a byte stream.
        packet: bool,
    },
    /// POSIX message queues by name.
    Mq {
        /// Queue the peer receives from.
        rx: String,
        /// Queue the peer sends to.
        tx: String,
        /// The queues' message size limit.
        msgsize: usize,
    },
    /// iceoryx2 services by name.
    Iceoryx {
        /// Service the peer subscribes to.
        rx: String,
        /// Service the peer publishes on.
        tx: String,
        /// Largest message.
        max: usize,
        /// Wait through the event service instead of polling.
        event: bool,
    },
}

/// A transport set up by the leading process.
pub struct Setup {
    /// The leading process's endpoint.
    pub local: Box<dyn Endpoint>,
    /// What the peer opens.
    pub peer: PeerSpec,
    /// Descriptors the peer inherits; closed here once the peer has started.
    pub inherit: Vec<OwnedFd>,
}

/// The largest message `name` can carry on this machine (`None`: no limit of its own).
pub fn max_message(name: &str) -> Option<usize> {
    match name {
        "mq" => Some(mq::max_message()),
        "unix-seqpacket" => Some(fds::max_packet()),
        _ => None,
    }
}

/// Sets up transport `name` for messages of at most `max` bytes.
pub fn setup(name: &str, max: usize) -> Result<Setup> {
    if let Some(f) = shmkit_channel::Flavour::from_name(name) {
        return shmkit_channel::setup(max, f);
    }
    if let Some(m) = shmkit_multi::Multi::from_name(name) {
        return shmkit_multi::setup(max, m);
    }
    if let Some(f) = shmkit_rpc::Flavour::from_name(name) {
        return shmkit_rpc::setup(max, f);
    }
    match name {
        FLOOR => floor::setup(max),
        FLOOR_PAIR => floor::setup_pair(max),
        "pipe" => fds::setup_pipes(),
        "unix-stream" => fds::setup_socketpair(false),
        "unix-seqpacket" => fds::setup_socketpair(true),
        "tcp" => fds::setup_tcp(),
        "mq" => mq::setup(max),
        "posix-sem" => semaphore::setup_posix(max),
        "sysv-sem" => signalled::setup(max, false),
        "shmkit-sem" => signalled::setup(max, true),
        "shmkit-mailbox" => mailbox::setup(max),
        #[cfg(feature = "iceoryx2")]
        "iceoryx2-poll" => iceoryx::setup(max, false),
        #[cfg(feature = "iceoryx2")]
        "iceoryx2-event" => iceoryx::setup(max, true),
        other => Err(BenchError::Usage(format!("unknown transport '{other}'"))),
    }
}

/// Builds the peer's endpoint from its spec; a hand-shake it needs ends by `deadline`.
pub fn open_peer(spec: &PeerSpec, deadline: Instant) -> Result<Box<dyn Endpoint>> {
    match spec {
        PeerSpec::Floor { fd, len } => floor::open(*fd, *len),
        PeerSpec::FloorPair { fd, len } => floor::open_pair(*fd, *len),
        PeerSpec::Fds { rx, tx, packet } => fds::open(*rx, *tx, *packet),
        PeerSpec::Mq { rx, tx, msgsize } => mq::open(rx, tx, *msgsize),
        PeerSpec::PosixSem { fd, len } => semaphore::open_posix(*fd, *len),
        PeerSpec::Shmkit { rx, tx, flavour } => shmkit_channel::open_peer(rx, tx, *flavour),
        PeerSpec::ShmkitMulti { rx, tx, multi } => {
            shmkit_multi::open_peer(rx, tx, *multi, deadline)
        }
        PeerSpec::Rpc { name, flavour } => shmkit_rpc::open_peer(name, *flavour),
        PeerSpec::Signalled { fd, sem_id } => signalled::open(*fd, *sem_id),
        PeerSpec::Mailbox { rx, tx } => mailbox::open(rx, tx),
        #[cfg(feature = "iceoryx2")]
        PeerSpec::Iceoryx { rx, tx, max, event } => iceoryx::open(rx, tx, *max, *event),
        #[cfg(not(feature = "iceoryx2"))]
        PeerSpec::Iceoryx { .. } => Err(BenchError::Usage(
            "this build has no iceoryx2 support (cargo feature `iceoryx2`)".into(),
        )),
    }
}

/// Set when the current run must stop: the peer died or overran its deadline.
static ABORT: AtomicBool = AtomicBool::new(false);

/// Whether the current run was aborted.
pub fn aborted() -> bool {
    // Relaxed: a hint polled in loops; the watchdog's kill is what really ends waits.
    ABORT.load(Ordering::Relaxed)
}

/// Marks the current run as aborted (or clears the mark).
pub fn set_aborted(v: bool) {
    ABORT.store(v, Ordering::Relaxed);
}

/// The error for a wait that ended without its message.
pub fn wait_error(what: &str, deadline: Instant) -> BenchError {
    if Instant::now() >= deadline {
        BenchError::Peer(format!("{what}: timed out"))
    } else {
        BenchError::Peer(format!("{what}: the peer went away"))
    }
}

/// The raw number of a descriptor the peer will inherit.
pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
