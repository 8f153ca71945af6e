//! POSIX message queues: one queue each way, `mq_timedsend` / `mq_timedreceive`.
//!
//! The queues are named `/shmkit_bench_<pid>_<n>_{a,b}` (unique per run, outside the
//! tests' `shmkit_test_*` prefix), created exclusively with mode 0600, and unlinked by
//! the leading side when its endpoint drops, or by [`crate::cleanup()`] on Ctrl-C.
//! Messages are limited by `/proc/sys/fs/mqueue/msgsize_max` (8 KiB by default), so the
//! larger sizes are skipped for this transport. Waits use 100 ms slices so that a dead
//! peer or a deadline ends them.

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const SLICE: Duration = Duration::from_millis(100);

fn read_limit(path: &str, default: usize) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// The largest message a queue may carry on this machine.
pub fn max_message() -> usize {
    read_limit("/proc/sys/fs/mqueue/msgsize_max", 8192)
}

/// An open queue descriptor, closed on drop (and unlinked when `owner`).
struct Queue {
    mqd: libc::mqd_t,
    name: CString,
    owner: bool,
}

impl Queue {
    fn open(name: &str, create: Option<(usize, usize)>) -> Result<Queue> {
        let cname = CString::new(name)
            .map_err(|_| BenchError::Usage(format!("mq: bad queue name {name:?}")))?;
        let mqd = match create {
            Some((maxmsg, msgsize)) => {
                // SAFETY: mq_attr is plain old data; all-zero is a valid value.
                let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
                attr.mq_maxmsg = maxmsg as libc::c_long;
                attr.mq_msgsize = msgsize as libc::c_long;
                // SAFETY: `cname` is a valid NUL-terminated string; O_CREAT takes the
                // mode and a pointer to a valid, initialised mq_attr as the variadic
                // arguments, both alive for the call.
                unsafe {
                    libc::mq_open(
                        cname.as_ptr(),
                        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                        0o600 as libc::mode_t,
                        &mut attr as *mut libc::mq_attr,
                    )
                }
            }
            // SAFETY: `cname` is a valid NUL-terminated string; without O_CREAT no
            // variadic argument is read.
            None => unsafe { libc::mq_open(cname.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) },
        };
        if mqd == -1 {
            let e = std::io::Error::last_os_error();
            let hint = if create.is_some() {
                " (see /proc/sys/fs/mqueue/msg_max and msgsize_max)"
            } else {
                ""
            };
            return Err(BenchError::io(&format!("mq_open {name}{hint}"), e));
        }
        let q = Queue {
            mqd,
            name: cname,
            owner: create.is_some(),
        };
        if q.owner {
            crate::cleanup::register_mq(name);
        }
        Ok(q)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: `mqd` is an open descriptor owned by this value, closed only here.
        unsafe { libc::mq_close(self.mqd) };
        if self.owner {
            // SAFETY: `name` is a valid NUL-terminated string.
            unsafe { libc::mq_unlink(self.name.as_ptr()) };
            crate::cleanup::forget_mq(&self.name.to_string_lossy());
        }
    }
}

/// An absolute CLOCK_REALTIME time `SLICE` from now, or at the deadline if sooner.
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

/// One side: a queue to receive from, a queue to send to, and a receive buffer of the
/// queues' message size (mq_receive requires one at least that large).
struct MqEnd {
    rx: Queue,
    tx: Queue,
    scratch: Vec<u8>,
}

impl Endpoint for MqEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        loop {
            let ts = slice_end(deadline);
            // SAFETY: `msg` is valid for `msg.len()` bytes and `ts` is a valid timespec;
            // the kernel checks the length against the queue's limit.
            let r =
                unsafe { libc::mq_timedsend(self.tx.mqd, msg.as_ptr().cast(), msg.len(), 0, &ts) };
            if r == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ETIMEDOUT) => {
                    if aborted() || Instant::now() >= deadline {
                        return Err(wait_error("mq_timedsend", deadline));
                    }
                }
                _ => return Err(BenchError::io("mq_timedsend", e)),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        loop {
            let ts = slice_end(deadline);
            // SAFETY: `scratch` is valid for writes of its full length, which is the
            // queue's message size; the priority pointer may be null; `ts` is valid.
            let n = unsafe {
                libc::mq_timedreceive(
                    self.rx.mqd,
                    self.scratch.as_mut_ptr().cast(),
                    self.scratch.len(),
                    std::ptr::null_mut(),
                    &ts,
                )
            };
            if n >= 0 {
                let n = n as usize;
                if n != buf.len() {
                    return Err(BenchError::Peer(format!(
                        "mq: message of {n} bytes where {} were expected",
                        buf.len()
                    )));
                }
                buf.copy_from_slice(&self.scratch[..n]);
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ETIMEDOUT) => {
                    if aborted() || Instant::now() >= deadline {
                        return Err(wait_error("mq_timedreceive", deadline));
                    }
                }
                _ => return Err(BenchError::io("mq_timedreceive", e)),
            }
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Creates both queues for messages of at most `max` bytes.
pub fn setup(max: usize) -> Result<Setup> {
    let msgsize = max.clamp(8, max_message());
    let maxmsg = read_limit("/proc/sys/fs/mqueue/msg_max", 10).min(10);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let to_peer = queue_name(std::process::id(), n, 'a');
    let to_lead = queue_name(std::process::id(), n, 'b');
    let tx = Queue::open(&to_peer, Some((maxmsg, msgsize)))?;
    let rx = Queue::open(&to_lead, Some((maxmsg, msgsize)))?;
    Ok(Setup {
        local: Box::new(MqEnd {
            rx,
            tx,
            scratch: vec![0; msgsize],
        }),
        peer: PeerSpec::Mq {
            rx: to_peer,
            tx: to_lead,
            msgsize,
        },
        inherit: Vec::new(),
    })
}

/// Opens the queues the leading side created.
pub fn open(rx: &str, tx: &str, msgsize: usize) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(MqEnd {
        rx: Queue::open(rx, None)?,
        tx: Queue::open(tx, None)?,
        scratch: vec![0; msgsize],
    }))
}

/// Unlinks a queue by name (for the Ctrl-C handler); errors are ignored.
pub fn unlink(name: &str) {
    if let Ok(c) = CString::new(name) {
        // SAFETY: `c` is a valid NUL-terminated string.
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
}

/// Whether a queue of this name exists (opened read-only and closed again).
pub fn exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string; without O_CREAT no variadic argument
    // is read.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if mqd == -1 {
        return false;
    }
    // SAFETY: `mqd` was just opened here and is closed once.
    unsafe { libc::mq_close(mqd) };
    true
}

/// The name of queue `n` (0, 1, …) of the process `pid`, direction `a` or `b`.
pub fn queue_name(pid: u32, n: u32, dir: char) -> String {
    format!("/shmkit_bench_{pid}_{n}_{dir}")
}
