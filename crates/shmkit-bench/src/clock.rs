//! Time stamps for per-message samples.
//!
//! A round trip of a fast transport lasts about a hundred nanoseconds, and two
//! `clock_gettime` calls through the vDSO cost about 45 of them on the development VM
//! (22 ns each). Where the CPU's time-stamp counter ticks at a constant rate whatever
//! the core's frequency or sleep state (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`), samples are taken with `rdtsc` instead (about 10 ns there) and
//! converted to nanoseconds by the rate the counter showed against `CLOCK_MONOTONIC`
//! over the whole measured loop. Elsewhere the samples are `Instant` readings.

use std::sync::OnceLock;
use std::time::Instant;

/// Whether this machine has an invariant time-stamp counter (x86-64 only).
fn invariant_tsc() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return false;
        }
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return false;
        };
        let flags = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|w| w == f);
        has("constant_tsc") && has("nonstop_tsc")
    })
}

/// A running clock for samples: [`Stopwatch::ticks`] is cheap, and
/// [`Stopwatch::ns_per_tick`] converts differences of ticks at the end.
#[derive(Debug)]
pub struct Stopwatch {
    tsc: bool,
    start: Instant,
    start_ticks: u64,
}

impl Stopwatch {
    /// Starts the clock.
    pub fn start() -> Stopwatch {
        let tsc = invariant_tsc();
        let start = Instant::now();
        let mut w = Stopwatch {
            tsc,
            start,
            start_ticks: 0,
        };
        w.start_ticks = w.ticks();
        w
    }

    /// The current reading, in ticks of this clock.
    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            // SAFETY: rdtsc has no preconditions on x86-64 (it is an `unsafe` intrinsic
            // by convention only) and only reads the counter.
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
        self.start.elapsed().as_nanos() as u64
    }

    /// Nanoseconds per tick, from the time since [`Stopwatch::start`]: call it at the
    /// end of the loop whose samples it converts.
    pub fn ns_per_tick(&self) -> f64 {
        if !self.tsc {
            return 1.0;
        }
        let ticks = self.ticks().wrapping_sub(self.start_ticks);
        let ns = self.start.elapsed().as_nanos() as f64;
        if ticks == 0 {
            1.0
        } else {
            ns / ticks as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_elapsed_time() {
        let w = Stopwatch::start();
        let t0 = w.ticks();
        let started = Instant::now();
        // Busy for at least 20 ms of wall time (no sleep: this is the interval measured).
        while started.elapsed().as_millis() < 20 {
            std::hint::spin_loop();
        }
        let t1 = w.ticks();
        let ns = (t1 - t0) as f64 * w.ns_per_tick();
        assert!(
            (19e6..200e6).contains(&ns),
            "20 ms measured as {ns} ns (tsc: {})",
            w.tsc
        );
    }
}
