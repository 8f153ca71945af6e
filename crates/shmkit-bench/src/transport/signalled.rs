//! Transports whose payload sits in a shared memfd (shmkit's safe `Mapping` of a memfd
//! sealed against resizing, copied in and out with `write_at` / `read_at`) and whose hand-over is signalled by semaphores:
//!
//! - `sysv-sem`: a System V semaphore set of three (`semop` / `semtimedop`, a system
//!   call for every post and wait);
//! - `shmkit-sem`: three shmkit in-region `Semaphore`s in the same memfd (futex based:
//!   no system call unless someone sleeps).
//!
//! Semaphores: FREE (starts at 1: the payload may be written), TO_PEER and TO_LEAD
//! (start at 0: a message from that side is there). A sender waits on FREE, writes the
//! payload and posts the receiver's; the receiver waits on its own, reads the payload
//! and posts FREE. One message is in flight at a time. shmkit semaphores are attached
//! for each operation (a range check and a name string), since a handle borrows the
//! mapping it lives in; that costs tens of nanoseconds against microseconds of hand-over.
//! Waits use 100 ms slices so that the deadline and the abort flag are checked.
//!
//! Memfd layout for `shmkit-sem`: semaphores at 0, 64 and 128, payload at 256; for
//! `sysv-sem` the payload alone, at 256 too.

use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

use shmkit::posix::{Mapping, Memfd, Seals};
use shmkit::sync::Semaphore;
use shmkit::sysv::sem::SemSet;
use shmkit::{ErrorKind, Region};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const FREE: usize = 0;
const TO_PEER: usize = 1;
const TO_LEAD: usize = 2;
const PAYLOAD: usize = 256;
const SLICE: Duration = Duration::from_millis(100);

fn shm_err(what: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("{what}: {e}"))
}

fn slice(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .min(SLICE)
}

/// The semaphores of one flavour.
enum Signals {
    /// A System V set; the leading side removes it.
    SysV { set: SemSet, owner: bool },
    /// shmkit semaphores at `index * 64` in the mapping.
    Shmkit,
}

/// One side.
struct Signalled {
    signals: Signals,
    map: Mapping,
    lead: bool,
}

impl Signalled {
    fn post(&self, which: usize) -> Result<()> {
        match &self.signals {
            Signals::SysV { set, .. } => set
                .add(which as u16, 1, 0, None)
                .map_err(|e| shm_err("semop", e)),
            Signals::Shmkit => Semaphore::attach(&self.map, which * 64)
                .and_then(|s| s.post())
                .map_err(|e| shm_err("shmkit semaphore post", e)),
        }
    }

    fn wait(&self, which: usize, deadline: Instant) -> Result<()> {
        loop {
            let got = match &self.signals {
                Signals::SysV { set, .. } => {
                    match set.add(which as u16, -1, 0, Some(slice(deadline))) {
                        Ok(()) => true,
                        Err(e) if e.kind() == ErrorKind::TimedOut => false,
                        Err(e) => return Err(shm_err("semtimedop", e)),
                    }
                }
                Signals::Shmkit => Semaphore::attach(&self.map, which * 64)
                    .map_err(|e| shm_err("shmkit semaphore", e))?
                    .wait_timeout(slice(deadline)),
            };
            if got {
                return Ok(());
            }
            if aborted() || Instant::now() >= deadline {
                return Err(wait_error("semaphore wait", deadline));
            }
        }
    }
}

impl Endpoint for Signalled {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.wait(FREE, deadline)?;
        self.map
            .write_at(PAYLOAD, msg)
            .map_err(|e| shm_err("payload write", e))?;
        self.post(if self.lead { TO_PEER } else { TO_LEAD })
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        self.wait(if self.lead { TO_LEAD } else { TO_PEER }, deadline)?;
        self.map
            .read_at(PAYLOAD, buf)
            .map_err(|e| shm_err("payload read", e))?;
        self.post(FREE)
    }
}

impl Drop for Signalled {
    fn drop(&mut self) {
        if let Signals::SysV { set, owner: true } = &self.signals {
            let _ = set.remove();
            crate::cleanup::forget_sysv_sem(set.id());
        }
    }
}

fn memfd(what: &str, max: usize) -> Result<(Mapping, OwnedFd)> {
    let size = (PAYLOAD + max.max(64)).div_ceil(4096) * 4096;
    let m = Memfd::create(&format!("shmkit-bench-{what}"), size as u64)
        .map_err(|e| shm_err("memfd", e))?;
    // Sealed against shrinking, the mapping needs no size check (an fstat) per copy.
    m.add_seals(Seals::SHRINK | Seals::GROW)
        .map_err(|e| shm_err("memfd seals", e))?;
    let map = m.map().map_err(|e| shm_err("memfd map", e))?;
    Ok((map, m.into_fd()))
}

/// Sets up `sysv-sem` (`shmkit == false`) or `shmkit-sem`.
pub fn setup(max: usize, shmkit: bool) -> Result<Setup> {
    let (map, fd) = memfd(if shmkit { "shmkit-sem" } else { "sysv-sem" }, max)?;
    let (signals, sem_id) = if shmkit {
        for (which, value) in [(FREE, 1), (TO_PEER, 0), (TO_LEAD, 0)] {
            Semaphore::init(&map, which * 64, value).map_err(|e| shm_err("semaphore init", e))?;
        }
        (Signals::Shmkit, None)
    } else {
        let set = SemSet::private(3, 0o600).map_err(|e| shm_err("semget", e))?;
        crate::cleanup::register_sysv_sem(set.id());
        let id = set.id();
        let signals = Signals::SysV { set, owner: true };
        let end = Signalled {
            signals,
            map,
            lead: true,
        };
        end.post(FREE)?;
        let spec = PeerSpec::Signalled {
            fd: super::raw(&fd),
            sem_id: Some(id),
        };
        return Ok(Setup {
            local: Box::new(end),
            peer: spec,
            inherit: vec![fd],
        });
    };
    let spec = PeerSpec::Signalled {
        fd: super::raw(&fd),
        sem_id,
    };
    Ok(Setup {
        local: Box::new(Signalled {
            signals,
            map,
            lead: true,
        }),
        peer: spec,
        inherit: vec![fd],
    })
}

/// The peer's end: maps the inherited memfd, opens the System V set by id if any.
pub fn open(fd: RawFd, sem_id: Option<i32>) -> Result<Box<dyn Endpoint>> {
    let m = Memfd::from_fd(crate::peer::take_fd(fd)?).map_err(|e| shm_err("memfd", e))?;
    let map = m.map().map_err(|e| shm_err("memfd map", e))?;
    let signals = match sem_id {
        Some(id) => Signals::SysV {
            set: SemSet::from_id(id).map_err(|e| shm_err("semaphore set", e))?,
            owner: false,
        },
        None => Signals::Shmkit,
    };
    Ok(Box::new(Signalled {
        signals,
        map,
        lead: false,
    }))
}
