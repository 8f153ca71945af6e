//! The measurement protocols, run in lock-step by the leading process and its peer.
//!
//! Both sides follow the same [`Plan`]:
//!
//! 1. **Round trip** for each size: the leader sends a message carrying its sequence
//!    number in the first 8 bytes, the peer checks it and sends the message back, the
//!    leader checks the echo ([`Endpoint::round_trip`] and [`Endpoint::serve`]). One
//!    sample per round trip, after a warm-up, timed by [`crate::clock::Stopwatch`] (the
//!    time-stamp counter where it is invariant).
//! 2. **Stream** for each size: the leader sends `count` messages back to back, the peer
//!    checks every sequence number and answers with one 8-byte acknowledgement holding
//!    the count; the time from the first send to the acknowledgement gives the rate.
//!    Transports that carry round trips only (a request-reply channel) have no stream
//!    sizes in their plan.
//! 3. **Wake-up**: the leader sleeps for a gap (so the peer is waiting, asleep if the
//!    transport blocks), stamps the message with `CLOCK_MONOTONIC` and sends it; the
//!    peer subtracts the stamp from its own clock reading on arrival and returns the
//!    difference. `CLOCK_MONOTONIC` is one clock for all processes on the machine.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::Stopwatch;
use crate::transport::{Endpoint, PeerSpec};
use crate::{BenchError, Result};

/// Smallest message: room for the sequence number.
pub const MIN_SIZE: usize = 8;
/// Size of wake-up messages: sequence number and time stamp.
pub const WAKE_SIZE: usize = 16;

/// What one transport run does, shared by both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// How the peer opens its endpoint.
    pub spec: PeerSpec,
    /// The core the peer pins itself to.
    pub core: Option<usize>,
    /// The leading process's pid: the peer gives up when its parent is another.
    pub parent: u32,
    /// Round trips before the measured ones, per size.
    pub warmup: u64,
    /// Round trips: (size, measured count).
    pub round_trip: Vec<(usize, u64)>,
    /// Streams: (size, message count).
    pub stream: Vec<(usize, u64)>,
    /// Wake-up messages to send (0: none).
    pub wake: u64,
    /// Gap before each wake-up message, in microseconds.
    pub wake_gap_us: u64,
    /// Time limit for the whole run, in milliseconds.
    pub timeout_ms: u64,
}

/// What the leading side measured in one run.
#[derive(Debug, Default)]
pub struct Measured {
    /// Round-trip samples in ns, per size.
    pub round_trip: Vec<(usize, Vec<u64>)>,
    /// Streams: (size, messages, elapsed).
    pub stream: Vec<(usize, u64, Duration)>,
    /// Wake-up latencies in ns.
    pub wake: Vec<u64>,
    /// Uncontended operation costs (in-process pseudo-transport only).
    pub ops: Vec<crate::sync_ops::Figure>,
}

/// Nanoseconds on `CLOCK_MONOTONIC`, comparable between processes.
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn mismatch(what: &str, size: usize, got: u64, want: u64) -> BenchError {
    BenchError::Peer(format!(
        "{what} of {size} B: sequence number {got} where {want} was expected"
    ))
}

/// The leading side. `tick` is called now and then so a progress bar can move.
pub fn lead(
    ep: &mut dyn Endpoint,
    plan: &Plan,
    deadline: Instant,
    tick: &mut dyn FnMut(),
) -> Result<Measured> {
    let mut out = Measured::default();
    for &(size, count) in &plan.round_trip {
        let mut msg = vec![0x5au8; size];
        let mut reply = vec![0u8; size];
        let mut samples = Vec::with_capacity(count as usize);
        let total = plan.warmup + count;
        let clock = Stopwatch::start();
        for i in 0..total {
            put_u64(&mut msg, 0, i);
            let t0 = clock.ticks();
            ep.round_trip(&msg, &mut reply, deadline)?;
            let dt = clock.ticks().wrapping_sub(t0);
            let got = get_u64(&reply, 0);
            if got != i {
                return Err(mismatch("round trip", size, got, i));
            }
            if i >= plan.warmup {
                samples.push(dt);
            }
        }
        let scale = clock.ns_per_tick();
        for s in &mut samples {
            *s = (*s as f64 * scale).round() as u64;
        }
        out.round_trip.push((size, samples));
        tick();
    }
    for &(size, count) in &plan.stream {
        let mut msg = vec![0xa5u8; size];
        let mut ack = [0u8; 8];
        let t0 = Instant::now();
        for i in 0..count {
            put_u64(&mut msg, 0, i);
            ep.send(&msg, deadline)?;
        }
        ep.recv(&mut ack, deadline)?;
        let dt = t0.elapsed();
        let got = u64::from_le_bytes(ack);
        if got != count {
            return Err(mismatch("stream acknowledgement", size, got, count));
        }
        out.stream.push((size, count, dt));
        tick();
    }
    if plan.wake > 0 {
        let mut msg = [0u8; WAKE_SIZE];
        let mut reply = [0u8; WAKE_SIZE];
        let gap = Duration::from_micros(plan.wake_gap_us);
        for i in 0..plan.wake {
            // The gap lets the peer go back to waiting; this is the thing measured, not
            // a stand-in for synchronisation.
            std::thread::sleep(gap);
            put_u64(&mut msg, 0, i);
            put_u64(&mut msg, 8, mono_ns());
            ep.round_trip(&msg, &mut reply, deadline)?;
            let got = get_u64(&reply, 0);
            if got != i {
                return Err(mismatch("wake-up", WAKE_SIZE, got, i));
            }
            out.wake.push(get_u64(&reply, 8));
        }
        tick();
    }
    Ok(out)
}

/// The peer's side: mirrors [`lead`].
pub fn follow(ep: &mut dyn Endpoint, plan: &Plan, deadline: Instant) -> Result<()> {
    for &(size, count) in &plan.round_trip {
        let mut buf = vec![0u8; size];
        for i in 0..plan.warmup + count {
            ep.serve(&mut buf, deadline, &mut |b| {
                let got = get_u64(b, 0);
                if got != i {
                    return Err(mismatch("round trip", size, got, i));
                }
                Ok(())
            })?;
        }
    }
    for &(size, count) in &plan.stream {
        let mut buf = vec![0u8; size];
        for i in 0..count {
            ep.recv(&mut buf, deadline)?;
            let got = get_u64(&buf, 0);
            if got != i {
                return Err(mismatch("stream", size, got, i));
            }
        }
        ep.send(&count.to_le_bytes(), deadline)?;
    }
    let mut buf = [0u8; WAKE_SIZE];
    for i in 0..plan.wake {
        ep.serve(&mut buf, deadline, &mut |b| {
            let now = mono_ns();
            let got = get_u64(b, 0);
            if got != i {
                return Err(mismatch("wake-up", WAKE_SIZE, got, i));
            }
            let sent = get_u64(b, 8);
            put_u64(b, 8, now.saturating_sub(sent));
            Ok(())
        })?;
    }
    Ok(())
}

/// Copy bandwidth in one process: `count` copies of `size` bytes between two buffers.
pub fn memcpy(size: usize, count: u64) -> (u64, Duration) {
    let src = vec![0x3cu8; size];
    let mut dst = vec![0u8; size];
    let t0 = Instant::now();
    for i in 0..count {
        let s = std::hint::black_box(&src);
        dst.copy_from_slice(s);
        dst[0] = i as u8;
        std::hint::black_box(&mut dst);
    }
    (count, t0.elapsed())
}
