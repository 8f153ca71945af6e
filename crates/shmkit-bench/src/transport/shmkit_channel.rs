//! shmkit's SPSC channels, one each way, in four flavours:
//!
//! - `shmkit-spin`: waits only by polling (spin budget `u32::MAX`), like the floor;
//! - `shmkit`: the default budget (polls a while, then sleeps on a futex);
//! - `shmkit-block`: sleeps on the futex at once (spin budget 0);
//! - `shmkit-loan`: like `shmkit`, but sends by loaning ring space and writing the
//!   message in place (`loan` + `commit`) instead of `send`.
//!
//! Every flavour receives through `recv_ref` (the message borrowed in place) and copies
//! it out, as the other transports' receivers do. The channels are POSIX objects named
//! `/shmkit_bench_<pid>_<n>_{a,b}`, removed when the leading side's endpoint drops or
//! by [`crate::cleanup()`] on Ctrl-C. Waits use 100 ms timeouts so that the deadline and
//! the abort flag are checked.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::channel::{self, ChannelError, Receiver, Sender};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const SLICE: Duration = Duration::from_millis(100);

/// How a flavour waits and sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavour {
    /// Polls forever.
    Spin,
    /// The default spin budget, then a futex.
    Default,
    /// Futex at once.
    Block,
    /// Default waiting, zero-copy loans for sending.
    Loan,
}

impl Flavour {
    /// The flavour behind a transport name.
    pub fn from_name(name: &str) -> Option<Flavour> {
        match name {
            "shmkit-spin" => Some(Flavour::Spin),
            "shmkit" => Some(Flavour::Default),
            "shmkit-block" => Some(Flavour::Block),
            "shmkit-loan" => Some(Flavour::Loan),
            _ => None,
        }
    }
}

struct ChanEnd {
    tx: Sender,
    rx: Receiver,
    loan: bool,
    /// Channels this side created and removes.
    owned: Vec<String>,
}

fn chan_err(what: &str, e: ChannelError, deadline: Instant) -> BenchError {
    match e {
        ChannelError::Disconnected | ChannelError::PeerDied(_) | ChannelError::Timeout => {
            wait_error(&format!("shmkit channel {what} ({e})"), deadline)
        }
        other => BenchError::Peer(format!("shmkit channel {what}: {other}")),
    }
}

impl Endpoint for ChanEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        loop {
            let r = if self.loan {
                match self.tx.loan_timeout(msg.len(), SLICE) {
                    Ok(mut l) => {
                        l.copy_from_slice(msg);
                        l.commit();
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.tx.send_timeout(msg, SLICE)
            };
            match r {
                Ok(()) => return Ok(()),
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(chan_err("send", e, deadline)),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        loop {
            match self.rx.recv_ref_timeout(SLICE) {
                Ok(g) => {
                    if g.len() != buf.len() {
                        return Err(BenchError::Peer(format!(
                            "shmkit channel: message of {} bytes where {} were expected",
                            g.len(),
                            buf.len()
                        )));
                    }
                    buf.copy_from_slice(&g);
                    return Ok(());
                }
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(chan_err("receive", e, deadline)),
            }
        }
    }
}

impl Drop for ChanEnd {
    fn drop(&mut self) {
        for name in &self.owned {
            let _ = channel::remove(name);
            crate::cleanup::forget_shm(name);
        }
    }
}

fn shm_err(what: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("shmkit channel: {what}: {e}"))
}

fn open(rx: &str, tx: &str, flavour: Flavour, owned: Vec<String>) -> Result<ChanEnd> {
    let mut end_tx = Sender::open(tx).map_err(|e| shm_err("opening the sender", e))?;
    let mut end_rx = Receiver::open(rx).map_err(|e| shm_err("opening the receiver", e))?;
    let spin = match flavour {
        Flavour::Spin => Some(u32::MAX),
        Flavour::Block => Some(0),
        Flavour::Default | Flavour::Loan => None,
    };
    if let Some(s) = spin {
        end_tx.set_spin(s);
        end_rx.set_spin(s);
    }
    Ok(ChanEnd {
        tx: end_tx,
        rx: end_rx,
        loan: flavour == Flavour::Loan,
        owned,
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh object name prefix `/shmkit_bench_<pid>_<n>`, for the shmkit transports.
pub fn base_name() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("/shmkit_bench_{}_{n}", std::process::id())
}

/// A fresh pair of object names `/shmkit_bench_<pid>_<n>_{a,b}`: (to the peer, to the
/// leading side).
pub fn names() -> (String, String) {
    let base = base_name();
    (format!("{base}_a"), format!("{base}_b"))
}

/// Creates both channels for messages of at most `max` bytes.
pub fn setup(max: usize, flavour: Flavour) -> Result<Setup> {
    let (to_peer, to_lead) = names();
    // Room for eight of the largest messages (at least 256 KiB), so that streams have
    // many messages in flight; an 8 MiB ring for 1 MiB messages.
    let capacity = ((max as u64 + 8) * 8).max(256 << 10);
    let opts = channel::Options {
        capacity,
        max_message: max as u64,
        ..channel::Options::default()
    };
    let mut owned = Vec::new();
    for name in [&to_peer, &to_lead] {
        channel::create(name, &opts).map_err(|e| shm_err(&format!("creating {name}"), e))?;
        crate::cleanup::register_shm(name);
        owned.push(name.clone());
    }
    let local = match open(&to_lead, &to_peer, flavour, owned.clone()) {
        Ok(l) => l,
        Err(e) => {
            for n in &owned {
                let _ = channel::remove(n);
                crate::cleanup::forget_shm(n);
            }
            return Err(e);
        }
    };
    Ok(Setup {
        local: Box::new(local),
        peer: PeerSpec::Shmkit {
            rx: to_peer,
            tx: to_lead,
            flavour,
        },
        inherit: Vec::new(),
    })
}

/// Opens the peer's ends.
pub fn open_peer(rx: &str, tx: &str, flavour: Flavour) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(open(rx, tx, flavour, Vec::new())?))
}
