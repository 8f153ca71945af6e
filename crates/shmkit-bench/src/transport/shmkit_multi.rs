//! shmkit's multi-endpoint channels used point to point, one channel each way:
//!
//! - `shmkit-mpsc`: an MPSC channel with one lane per direction, one producer each;
//! - `shmkit-broadcast`: a broadcast channel per direction in
//!   [`Mode::Backpressure`] with one subscriber slot, so nothing is overwritten;
//! - `shmkit-broadcast-4`: the same, but the channel to the peer has [`FAN_OUT`]
//!   subscribers, all opened in the peer, which takes every message from each of them in
//!   turn on its one thread (checking that each got the same sequence number) before it
//!   answers on the channel back (one subscriber). Against `shmkit-broadcast` its round
//!   trip shows what the extra subscribers cost the publisher and the readers.
//!
//! Both wait with the library's default spin budget (polls a while, then sleeps on a
//! futex), like the `shmkit` SPSC transport. The MPSC receiver and the broadcast
//! subscriber (Backpressure mode) borrow each message in place (`recv_ref`) and copy it
//! out (`shmkit-broadcast-4`: the first of its four subscribers copies, the others check
//! the sequence number in place). Rings are sized as for the SPSC
//! transport: room for eight of the largest messages, at least 256 KiB.
//!
//! A broadcast subscriber only sees messages published after it joined, so the peer,
//! once it has joined its channel, publishes one [`READY`] message and the leading side
//! waits for it before its first send or receive. MPSC lanes keep what was sent before
//! the receiver looked, so they need no such hand-shake.
//!
//! The channels are POSIX objects named `/shmkit_bench_<pid>_<n>_{a,b}` (the counter is
//! shared with the SPSC transport), removed when the leading side's endpoint drops or by
//! [`crate::cleanup()`] on Ctrl-C. Waits use 100 ms timeouts so that the deadline and
//! the abort flag are checked.

use std::time::{Duration, Instant};

use shmkit::channel::broadcast::{self, Mode};
use shmkit::channel::{self, mpsc, ChannelError};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const SLICE: Duration = Duration::from_millis(100);

/// How many subscribers the peer opens on the channel to it in `shmkit-broadcast-4`.
pub const FAN_OUT: usize = 4;

/// The message a broadcast peer publishes once it has subscribed.
pub const READY: &[u8] = b"shmkit-bench ready";

/// Which multi-endpoint channel carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Multi {
    /// MPSC channels, one producer each.
    Mpsc,
    /// Broadcast channels in Backpressure mode, one subscriber each.
    Broadcast,
    /// Broadcast channels in Backpressure mode, [`FAN_OUT`] subscribers (all in the
    /// peer) on the channel to the peer, one on the channel back.
    BroadcastFan,
}

impl Multi {
    /// The channel kind behind a transport name.
    pub fn from_name(name: &str) -> Option<Multi> {
        match name {
            "shmkit-mpsc" => Some(Multi::Mpsc),
            "shmkit-broadcast" => Some(Multi::Broadcast),
            "shmkit-broadcast-4" => Some(Multi::BroadcastFan),
            _ => None,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Multi::Mpsc => "shmkit mpsc channel",
            Multi::Broadcast => "shmkit broadcast channel",
            Multi::BroadcastFan => "shmkit broadcast channel (4 subscribers)",
        }
    }

    /// Whether the channels are broadcast channels (the peer sends [`READY`]).
    fn broadcast(self) -> bool {
        matches!(self, Multi::Broadcast | Multi::BroadcastFan)
    }

    /// Subscriber slots on the channel to the peer.
    fn subscribers_to_peer(self) -> u32 {
        match self {
            Multi::BroadcastFan => FAN_OUT as u32,
            _ => 1,
        }
    }
}

enum Ends {
    Mpsc(mpsc::Sender, mpsc::Receiver),
    Broadcast(broadcast::Publisher, broadcast::Subscriber),
    /// The fan-out peer: one publisher back, [`FAN_OUT`] subscribers read in turn.
    Fan(broadcast::Publisher, Vec<broadcast::Subscriber>),
}

struct MultiEnd {
    multi: Multi,
    ends: Ends,
    /// The leading side has not yet seen the broadcast peer's [`READY`].
    await_ready: bool,
    /// Channels this side created and removes.
    owned: Vec<String>,
}

fn chan_err(what: &str, op: &str, e: ChannelError, deadline: Instant) -> BenchError {
    match e {
        ChannelError::Disconnected | ChannelError::PeerDied(_) | ChannelError::Timeout => {
            wait_error(&format!("{what} {op} ({e})"), deadline)
        }
        other => BenchError::Peer(format!("{what} {op}: {other}")),
    }
}

fn wrong_len(what: &str, got: usize, want: usize) -> BenchError {
    BenchError::Peer(format!(
        "{what}: message of {got} bytes where {want} were expected"
    ))
}

impl MultiEnd {
    fn what(&self) -> &'static str {
        self.multi.what()
    }

    /// Receives one message into `buf` (its length must match).
    fn recv_into(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        let what = self.what();
        loop {
            let r = match &mut self.ends {
                Ends::Mpsc(_, rx) => match rx.recv_ref_timeout(SLICE) {
                    Ok(g) if g.len() == buf.len() => {
                        buf.copy_from_slice(&g);
                        Ok(())
                    }
                    Ok(g) => return Err(wrong_len(what, g.len(), buf.len())),
                    Err(e) => Err(e),
                },
                Ends::Broadcast(_, rx) => match rx.recv_ref_timeout(SLICE) {
                    Ok(g) if g.len() == buf.len() => {
                        buf.copy_from_slice(&g);
                        Ok(())
                    }
                    Ok(g) => return Err(wrong_len(what, g.len(), buf.len())),
                    Err(e) => Err(e),
                },
                Ends::Fan(_, subs) => return recv_fan(what, subs, buf, deadline),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(chan_err(what, "receive", e, deadline)),
            }
        }
    }

    /// On the leading side of a broadcast pair, waits once for the peer's [`READY`].
    fn ready(&mut self, deadline: Instant) -> Result<()> {
        if self.await_ready {
            let mut buf = [0u8; READY.len()];
            self.recv_into(&mut buf, deadline)?;
            if buf != READY {
                return Err(BenchError::Peer(format!(
                    "{}: the peer's first message is not its ready mark",
                    self.what()
                )));
            }
            self.await_ready = false;
        }
        Ok(())
    }
}

/// The sequence number at the start of a message (as many of its first 8 bytes as
/// there are, little-endian, as the harness writes it).
fn seq(msg: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = msg.len().min(8);
    b[..n].copy_from_slice(&msg[..n]);
    u64::from_le_bytes(b)
}

/// Receives one message on each of `subs` in turn: the first subscriber's copy goes to
/// `buf` (its length must match), every other copy must be as long and carry the same
/// sequence number.
fn recv_fan(
    what: &str,
    subs: &mut [broadcast::Subscriber],
    buf: &mut [u8],
    deadline: Instant,
) -> Result<()> {
    for (i, rx) in subs.iter_mut().enumerate() {
        let m = loop {
            match rx.recv_ref_timeout(SLICE) {
                Ok(m) => break m,
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => {
                    return Err(chan_err(
                        what,
                        &format!("receive on subscriber {i}"),
                        e,
                        deadline,
                    ))
                }
            }
        };
        if m.len() != buf.len() {
            return Err(wrong_len(what, m.len(), buf.len()));
        }
        if i == 0 {
            buf.copy_from_slice(&m);
        } else if seq(&m) != seq(buf) {
            return Err(BenchError::Peer(format!(
                "{what}: subscriber {i} got sequence number {} where subscriber 0 got {}",
                seq(&m),
                seq(buf)
            )));
        }
    }
    Ok(())
}

impl Endpoint for MultiEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.ready(deadline)?;
        let what = self.what();
        loop {
            let r = match &mut self.ends {
                Ends::Mpsc(tx, _) => tx.send_timeout(msg, SLICE),
                Ends::Broadcast(tx, _) | Ends::Fan(tx, _) => tx.send_timeout(msg, SLICE),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(chan_err(what, "send", e, deadline)),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        self.ready(deadline)?;
        self.recv_into(buf, deadline)
    }
}

impl Drop for MultiEnd {
    fn drop(&mut self) {
        for name in &self.owned {
            let _ = channel::remove(name);
            crate::cleanup::forget_shm(name);
        }
    }
}

fn shm_err(what: &str, step: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("{what}: {step}: {e}"))
}

/// Opens this side's ends: subscribes/receives on `rx` first, then sends on `tx`. The
/// fan-out peer subscribes [`FAN_OUT`] times.
fn open(rx: &str, tx: &str, multi: Multi, lead: bool, owned: Vec<String>) -> Result<MultiEnd> {
    let what = multi.what();
    let ends = match multi {
        Multi::Mpsc => {
            let r =
                mpsc::Receiver::open(rx).map_err(|e| shm_err(what, "opening the receiver", e))?;
            let s = mpsc::Sender::open(tx).map_err(|e| shm_err(what, "opening the sender", e))?;
            Ends::Mpsc(s, r)
        }
        Multi::BroadcastFan if !lead => {
            let mut subs = Vec::with_capacity(FAN_OUT);
            for i in 0..FAN_OUT {
                subs.push(
                    broadcast::Subscriber::open(rx)
                        .map_err(|e| shm_err(what, &format!("subscribing ({i})"), e))?,
                );
            }
            let s = broadcast::Publisher::open(tx)
                .map_err(|e| shm_err(what, "opening the publisher", e))?;
            Ends::Fan(s, subs)
        }
        Multi::Broadcast | Multi::BroadcastFan => {
            let r = broadcast::Subscriber::open(rx).map_err(|e| shm_err(what, "subscribing", e))?;
            let s = broadcast::Publisher::open(tx)
                .map_err(|e| shm_err(what, "opening the publisher", e))?;
            Ends::Broadcast(s, r)
        }
    };
    Ok(MultiEnd {
        multi,
        ends,
        await_ready: lead && multi.broadcast(),
        owned,
    })
}

/// Creates both channels for messages of at most `max` bytes.
pub fn setup(max: usize, multi: Multi) -> Result<Setup> {
    let (to_peer, to_lead) = super::shmkit_channel::names();
    let what = multi.what();
    // As for the SPSC transport: eight of the largest messages with their record (or
    // slot) headers, at least 256 KiB; an 8 MiB ring for 1 MiB messages.
    let header = match multi {
        Multi::Mpsc => 8,
        Multi::Broadcast | Multi::BroadcastFan => broadcast::SLOT_HEADER as u64,
    };
    let max_ready = max.max(READY.len()) as u64;
    let capacity = ((max_ready + header) * 8).max(256 << 10);
    let opts = |subscribers: u32| channel::Options {
        capacity,
        max_message: max_ready,
        kind: match multi {
            Multi::Mpsc => channel::Kind::Mpsc { lanes: 1 },
            Multi::Broadcast | Multi::BroadcastFan => channel::Kind::Broadcast {
                subscribers,
                mode: Mode::Backpressure,
            },
        },
        ..channel::Options::default()
    };
    let mut owned = Vec::new();
    let remove_all = |owned: &[String]| {
        for n in owned {
            let _ = channel::remove(n);
            crate::cleanup::forget_shm(n);
        }
    };
    for (name, subscribers) in [(&to_peer, multi.subscribers_to_peer()), (&to_lead, 1)] {
        if let Err(e) = channel::create(name, &opts(subscribers)) {
            remove_all(&owned);
            return Err(shm_err(what, &format!("creating {name}"), e));
        }
        crate::cleanup::register_shm(name);
        owned.push(name.clone());
    }
    let local = match open(&to_lead, &to_peer, multi, true, owned.clone()) {
        Ok(l) => l,
        Err(e) => {
            remove_all(&owned);
            return Err(e);
        }
    };
    Ok(Setup {
        local: Box::new(local),
        peer: PeerSpec::ShmkitMulti {
            rx: to_peer,
            tx: to_lead,
            multi,
        },
        inherit: Vec::new(),
    })
}

/// Opens the peer's ends (and, for broadcast, publishes [`READY`]).
pub fn open_peer(rx: &str, tx: &str, multi: Multi, deadline: Instant) -> Result<Box<dyn Endpoint>> {
    let mut end = open(rx, tx, multi, false, Vec::new())?;
    if multi.broadcast() {
        end.send(READY, deadline)?;
    }
    Ok(Box::new(end))
}
