//! Transports whose payload sits in shared memory and whose hand-over is signalled by a
//! semaphore: the classic advice ("use semaphores") measured as a messaging transport.
//!
//! Layout of the shared memfd (one semaphore per cache line, payload after them):
//!
//! ```text
//! offset   0: FREE     (starts at 1) the payload buffer may be written
//! offset  64: TO_PEER  (starts at 0) a message from the leading side is there
//! offset 128: TO_LEAD  (starts at 0) a message from the peer is there
//! offset 256: payload
//! ```
//!
//! A sender waits on FREE, copies its message in and posts the other side's semaphore;
//! the receiver waits on its own, copies the message out and posts FREE. Only one
//! message is in flight at a time, in either direction.
//!
//! `posix-sem` uses unnamed process-shared POSIX semaphores (`sem_init(…, 1, …)`) in
//! that memory: uncontended waits and posts stay in user space, a blocked wait sleeps on
//! a futex. Waits use `sem_timedwait` in 100 ms slices so that the deadline and the abort
//! flag are checked.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::shared_map::SharedMap;
use crate::{BenchError, Result};

const FREE: usize = 0;
const TO_PEER: usize = 64;
const TO_LEAD: usize = 128;
const PAYLOAD: usize = 256;
const SLICE: Duration = Duration::from_millis(100);

/// An absolute CLOCK_REALTIME time one slice from now, or the deadline if sooner.
fn slice_end(deadline: Instant) -> libc::timespec {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(SLICE);
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let mut sec = now.tv_sec + left.as_secs() as i64;
    let mut nsec = now.tv_nsec + i64::from(left.subsec_nanos());
    if nsec >= 1_000_000_000 {
        sec += 1;
        nsec -= 1_000_000_000;
    }
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    }
}

/// One side of `posix-sem`.
struct PosixSem {
    map: SharedMap,
    lead: bool,
}

impl PosixSem {
    fn sem(&self, offset: usize) -> *mut libc::sem_t {
        // The offsets are constants far inside the first page.
        self.map
            .at(offset, std::mem::size_of::<libc::sem_t>())
            .unwrap_or(std::ptr::null_mut())
            .cast()
    }

    fn post(&self, offset: usize) -> Result<()> {
        // SAFETY: the semaphore at `offset` was initialised by the leading side with
        // sem_init before the peer started, lies inside our mapping, and is only
        // used through the sem_* functions.
        if unsafe { libc::sem_post(self.sem(offset)) } != 0 {
            return Err(BenchError::io("sem_post", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn wait(&self, offset: usize, deadline: Instant) -> Result<()> {
        loop {
            let ts = slice_end(deadline);
            // SAFETY: as in `post`; `ts` is a valid timespec.
            if unsafe { libc::sem_timedwait(self.sem(offset), &ts) } == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ETIMEDOUT) => {
                    if aborted() || Instant::now() >= deadline {
                        // The peer's last post happened before it exited: try once more.
                        // SAFETY: as in `post`.
                        if unsafe { libc::sem_trywait(self.sem(offset)) } == 0 {
                            return Ok(());
                        }
                        return Err(wait_error("sem_timedwait", deadline));
                    }
                }
                _ => return Err(BenchError::io("sem_timedwait", e)),
            }
        }
    }

    fn check(&self, len: usize) -> Result<*mut u8> {
        self.map.at(PAYLOAD, len).ok_or_else(|| {
            BenchError::Usage(format!(
                "posix-sem: {len} byte message larger than the mapping"
            ))
        })
    }
}

// SAFETY: the mapping may be used from any thread; the semaphores are process-shared.
unsafe impl Send for PosixSem {}

impl Endpoint for PosixSem {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        let dst = self.check(msg.len())?;
        self.wait(FREE, deadline)?;
        // SAFETY: `dst` has room for the message (`check`); holding FREE gives this side
        // the payload until it posts; the source is private memory.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, msg.len()) };
        self.post(if self.lead { TO_PEER } else { TO_LEAD })
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        let src = self.check(buf.len())?;
        self.wait(if self.lead { TO_LEAD } else { TO_PEER }, deadline)?;
        // SAFETY: `src` lies inside the mapping (`check`); the sender posted our
        // semaphore after writing and waits for FREE before writing again.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        self.post(FREE)
    }
}

/// Creates the memfd, initialises the semaphores and the leading side's endpoint.
pub fn setup_posix(max: usize) -> Result<Setup> {
    let (map, fd) = SharedMap::create("posix-sem", PAYLOAD + max.max(64))?;
    let end = PosixSem { map, lead: true };
    for (offset, value) in [(FREE, 1), (TO_PEER, 0), (TO_LEAD, 0)] {
        // SAFETY: the pointer lies inside the fresh mapping, suitably aligned (page
        // start plus a multiple of 64), and nobody else uses it yet.
        if unsafe { libc::sem_init(end.sem(offset), 1, value) } != 0 {
            return Err(BenchError::io("sem_init", std::io::Error::last_os_error()));
        }
    }
    let spec = PeerSpec::PosixSem {
        fd: super::raw(&fd),
        len: end.map.len(),
    };
    Ok(Setup {
        local: Box::new(end),
        peer: spec,
        inherit: vec![fd],
    })
}

/// Maps the inherited memfd in the peer.
pub fn open_posix(fd: RawFd, len: usize) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(PosixSem {
        map: SharedMap::open(fd, len)?,
        lead: false,
    }))
}
