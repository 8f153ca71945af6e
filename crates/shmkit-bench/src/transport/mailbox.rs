//! shmkit's mailbox as a transport (`shmkit-mailbox`): one mailbox object each way. A
//! send places the message in the slot and waits until the reader has taken it, so at
//! most one message is in flight per direction and every stream message is a hand-over.
//!
//! The objects are POSIX shared memory named `shmkit_bench_<pid>_<n>_{a,b}`, removed
//! when the leading side's endpoint drops or by [`crate::cleanup()`] on Ctrl-C. The
//! mailbox handle is opened for each operation (it borrows its object), which validates
//! the header: tens of nanoseconds against microseconds of hand-over. A send waits at
//! most until the deadline (a timed-out send leaves its message in the slot, so it is
//! not retried); receives wait in 100 ms slices so that the abort flag is checked.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::sync::{MailboxError, MailboxObject};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const SLICE: Duration = Duration::from_millis(100);

fn shm_err(what: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("shmkit mailbox {what}: {e}"))
}

fn mb_err(what: &str, e: MailboxError, deadline: Instant) -> BenchError {
    match e {
        MailboxError::TimedOut | MailboxError::PeerDied(_) => {
            wait_error(&format!("shmkit mailbox {what} ({e})"), deadline)
        }
        other => BenchError::Peer(format!("shmkit mailbox {what}: {other}")),
    }
}

struct MailboxEnd {
    tx: MailboxObject,
    rx: MailboxObject,
    /// Objects this side created and removes.
    owned: Vec<String>,
}

impl Endpoint for MailboxEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        let mb = self.tx.mailbox().map_err(|e| shm_err("open", e))?;
        let left = deadline.saturating_duration_since(Instant::now());
        mb.send(msg, Some(left))
            .map_err(|e| mb_err("send", e, deadline))
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        let mb = self.rx.mailbox().map_err(|e| shm_err("open", e))?;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(SLICE);
            match mb.recv(Some(slice)) {
                Ok(v) => {
                    if v.len() != buf.len() {
                        return Err(BenchError::Peer(format!(
                            "shmkit mailbox: message of {} bytes where {} were expected",
                            v.len(),
                            buf.len()
                        )));
                    }
                    buf.copy_from_slice(&v);
                    return Ok(());
                }
                Err(MailboxError::TimedOut) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(mb_err("receive", e, deadline)),
            }
        }
    }
}

impl Drop for MailboxEnd {
    fn drop(&mut self) {
        for name in &self.owned {
            let _ = MailboxObject::unlink(name);
            crate::cleanup::forget_shm(name);
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Creates both mailboxes for messages of at most `max` bytes.
pub fn setup(max: usize) -> Result<Setup> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let base = format!("shmkit_bench_{}_{n}", std::process::id());
    let to_peer = format!("{base}_a");
    let to_lead = format!("{base}_b");
    let mut owned = Vec::new();
    let mut objects = Vec::new();
    for name in [&to_peer, &to_lead] {
        match MailboxObject::create(name, max.max(64), 0o600) {
            Ok(o) => {
                crate::cleanup::register_shm(name);
                owned.push(name.clone());
                objects.push(o);
            }
            Err(e) => {
                for n in &owned {
                    let _ = MailboxObject::unlink(n);
                    crate::cleanup::forget_shm(n);
                }
                return Err(shm_err(&format!("create {name}"), e));
            }
        }
    }
    let rx = objects
        .pop()
        .ok_or_else(|| BenchError::Peer("mailbox".into()))?;
    let tx = objects
        .pop()
        .ok_or_else(|| BenchError::Peer("mailbox".into()))?;
    Ok(Setup {
        local: Box::new(MailboxEnd { tx, rx, owned }),
        peer: PeerSpec::Mailbox {
            rx: to_peer,
            tx: to_lead,
        },
        inherit: Vec::new(),
    })
}

/// Opens the peer's mailboxes.
pub fn open(rx: &str, tx: &str) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(MailboxEnd {
        tx: MailboxObject::open(tx).map_err(|e| shm_err(&format!("open {tx}"), e))?,
        rx: MailboxObject::open(rx).map_err(|e| shm_err(&format!("open {rx}"), e))?,
        owned: Vec::new(),
    }))
}
