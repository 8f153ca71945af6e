//! # shmkit-bench: the comparison benchmark behind `shmkit bench`
//!
//! Measures shared-memory messaging against what users already have, in one run on one
//! machine, between two real processes pinned to different cores: shmkit's channels
//! (one-way and request-reply), semaphores and mailbox, the floor (one cache line handed back and forth), anonymous
//! pipes, Unix stream and seqpacket sockets, TCP over loopback, POSIX message queues,
//! POSIX and System V semaphores, iceoryx2 (cargo feature `iceoryx2`), memcpy in one
//! process as the copy limit, and uncontended lock and semaphore costs.
//!
//! For each transport and round the leading process sets the transport up, starts a
//! peer (the same binary, through [`Options::peer_command`], which must end up calling
//! [`peer_main`] with the plan argument) and both follow the protocols of [`harness`]:
//! round trips, streams with sequence checks, and wake-ups of a waiting receiver.
//! Rounds interleave the transports so that a noisy neighbour hits all of them alike.
//! [`run`] returns a [`report::Report`], which renders as tables, Markdown, JSON and SVG.
//!
//! This crate holds the benchmark's unsafe code (the floor's mapping, message queues,
//! inherited descriptors, the time-stamp counter), so that the CLI can forbid it.

#[cfg(not(target_os = "linux"))]
compile_error!("shmkit-bench supports Linux only.");

pub mod affinity;
pub mod cleanup;
#[allow(unsafe_code)]
pub mod clock;
pub mod harness;
#[allow(unsafe_code)]
pub mod peer;
pub mod report;
pub mod runner;
#[allow(unsafe_code)]
pub mod shared_map;
pub mod stats;
pub mod svg;
#[allow(unsafe_code)]
pub mod sync_ops;
pub mod transport;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub use cleanup::cleanup;
use harness::{Measured, Plan};
pub use report::Report;

/// What can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A system call failed.
    #[error("{what} failed: {source}")]
    Io {
        /// The operation and its object.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The peer misbehaved, died or overran its deadline.
    #[error("{0}")]
    Peer(String),
    /// The options asked for something impossible.
    #[error("{0}")]
    Usage(String),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub fn io(what: &str, source: std::io::Error) -> BenchError {
        BenchError::Io {
            what: what.to_owned(),
            source,
        }
    }
}

/// Result with [`BenchError`].
pub type Result<T> = std::result::Result<T, BenchError>;

/// The pseudo-transport measuring memcpy in one process.
pub const MEMCPY: &str = "memcpy";
/// The pseudo-transport measuring uncontended synchronisation in one process.
pub const SYNC: &str = "sync";

/// Every transport name `--transports` accepts, in report order.
pub fn transport_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = transport::KINDS.iter().map(|k| k.name).collect();
    v.push(MEMCPY);
    v.push(SYNC);
    v
}

/// What to measure and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Transports to run (names from [`transport_names`]); empty: all.
    pub transports: Vec<String>,
    /// Round-trip message sizes in bytes (each at least 8).
    pub sizes: Vec<usize>,
    /// Stream message sizes in bytes (each at least 8).
    pub stream_sizes: Vec<usize>,
    /// Interleaved rounds.
    pub rounds: u32,
    /// Measured round trips per size and round; `None`: by size (fewer for big ones).
    pub iterations: Option<u64>,
    /// Messages per stream and round; `None`: by size.
    pub stream_messages: Option<u64>,
    /// Wake-up messages per round (0: skip).
    pub wake_messages: u64,
    /// Gap before each wake-up message.
    pub wake_gap: Duration,
    /// Cores for the leading process and the peer; `None`: don't pin.
    pub cores: Option<(usize, usize)>,
    /// Time limit for one transport in one round.
    pub timeout: Duration,
    /// Scale everything down to finish in seconds (figures are then rough).
    pub quick: bool,
    /// Program and leading arguments that start a peer; the plan is appended.
    pub peer_command: Vec<OsString>,
}

impl Options {
    /// Defaults for a full run, with the given peer command.
    pub fn new(peer_command: Vec<OsString>) -> Options {
        Options {
            transports: Vec::new(),
            sizes: vec![8, 64, 4096, 1 << 20],
            stream_sizes: vec![64, 64 << 10],
            rounds: 5,
            iterations: None,
            stream_messages: None,
            wake_messages: 200,
            wake_gap: Duration::from_micros(200),
            cores: affinity::default_pair(),
            timeout: Duration::from_secs(120),
            quick: false,
            peer_command,
        }
    }

    /// Switches to quick mode: two rounds and small counts.
    pub fn quick(mut self) -> Options {
        self.quick = true;
        self.rounds = 2;
        self.wake_messages = 20;
        self.timeout = Duration::from_secs(30);
        self
    }

    fn round_trips_for(&self, size: usize) -> u64 {
        if let Some(n) = self.iterations {
            return n;
        }
        let full: u64 = match size {
            0..=1024 => 20_000,
            1025..=16384 => 10_000,
            16385..=262_144 => 2_000,
            _ => 300,
        };
        if self.quick {
            (full / 100).max(10)
        } else {
            full
        }
    }

    fn sync_pairs(&self) -> u64 {
        if self.quick {
            10_000
        } else {
            1_000_000
        }
    }

    fn warmup_for(&self) -> u64 {
        if self.quick {
            10
        } else {
            200
        }
    }

    fn stream_for(&self, name: &str, size: usize) -> u64 {
        if let Some(n) = self.stream_messages {
            return n;
        }
        // About 256 MiB per stream for big messages, 200 000 small ones; a tenth for
        // transports where each message is a hand-over between sleeping processes.
        let mut full = ((256u64 << 20) / size.max(1) as u64).clamp(1000, 200_000);
        if transport::kind(name).is_some_and(|k| k.handoff) {
            full = (full / 10).max(1000);
        }
        if self.quick {
            (full / 100).max(20)
        } else {
            full
        }
    }

    /// The transports to run, checked.
    pub fn selected(&self) -> Result<Vec<String>> {
        let all = transport_names();
        if self.transports.is_empty() {
            return Ok(all.into_iter().map(String::from).collect());
        }
        let mut out = Vec::new();
        for t in &self.transports {
            if !all.contains(&t.as_str()) {
                return Err(BenchError::Usage(format!(
                    "unknown transport '{t}' (known: {})",
                    all.join(", ")
                )));
            }
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        Ok(out)
    }

    fn check(&self) -> Result<()> {
        if let Some(&s) = self
            .sizes
            .iter()
            .chain(self.stream_sizes.iter())
            .find(|&&s| s < harness::MIN_SIZE)
        {
            return Err(BenchError::Usage(format!(
                "message size {s} is below the minimum of {} bytes (the sequence number)",
                harness::MIN_SIZE
            )));
        }
        if self.rounds == 0 {
            return Err(BenchError::Usage("at least one round is needed".into()));
        }
        if let Some((a, b)) = self.cores {
            let allowed = affinity::allowed_cores();
            for c in [a, b] {
                if !allowed.contains(&c) {
                    return Err(BenchError::Usage(format!(
                        "core {c} is not available (allowed: {allowed:?})"
                    )));
                }
            }
        }
        Ok(())
    }

    fn plan_for(&self, name: &str) -> (Plan, Vec<usize>) {
        let limit = transport::max_message(name);
        let streams = transport::kind(name).is_none_or(|k| k.streams);
        let fits = |s: &usize| limit.is_none_or(|l| *s <= l);
        let mut skipped: Vec<usize> = self
            .sizes
            .iter()
            .chain(self.stream_sizes.iter())
            .copied()
            .filter(|s| !fits(s))
            .collect();
        skipped.sort_unstable();
        skipped.dedup();
        let plan = Plan {
            spec: transport::PeerSpec::Fds {
                rx: -1,
                tx: -1,
                packet: false,
            },
            core: self.cores.map(|c| c.1),
            parent: 0,
            warmup: self.warmup_for(),
            round_trip: self
                .sizes
                .iter()
                .filter(|s| fits(s))
                .map(|&s| (s, self.round_trips_for(s)))
                .collect(),
            stream: self
                .stream_sizes
                .iter()
                .filter(|s| streams && fits(s))
                .map(|&s| (s, self.stream_for(name, s)))
                .collect(),
            wake: self.wake_messages,
            wake_gap_us: self.wake_gap.as_micros() as u64,
            timeout_ms: 0,
        };
        (plan, skipped)
    }
}

/// Runs the benchmark: every selected transport once per round, rounds interleaved,
/// with a progress bar on stderr (hidden when stderr is not a terminal or `progress` is
/// false). Failures of one transport in one round are recorded in the report and the
/// run goes on.
pub fn run(opts: &Options, progress: bool) -> Result<Report> {
    opts.check()?;
    let names = opts.selected()?;
    let started = Instant::now();
    let saved = rustix::thread::sched_getaffinity(None).ok();
    if let Some((lead, _)) = opts.cores {
        affinity::pin(lead)?;
    }
    let steps = u64::from(opts.rounds) * names.len() as u64;
    let bar = if progress {
        ProgressBar::new(steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut collected: Vec<report::Collected> = names
        .iter()
        .map(|n| {
            let (_, skipped) = opts.plan_for(n);
            report::Collected::new(n, skipped)
        })
        .collect();
    for round in 0..opts.rounds {
        // Rotate the order each round so no transport always runs first or last.
        let n = names.len();
        for k in 0..n {
            let idx = (k + round as usize) % n;
            let name = &names[idx];
            bar.set_message(format!("round {}/{}: {name}", round + 1, opts.rounds));
            let outcome = if name == MEMCPY {
                Ok(memcpy_round(opts))
            } else if name == SYNC {
                sync_ops::measure(opts.sync_pairs()).map(|ops| Measured {
                    ops,
                    ..Measured::default()
                })
            } else {
                let (plan, _) = opts.plan_for(name);
                let b = bar.clone();
                runner::run_once(name, plan, &opts.peer_command, opts.timeout, &mut || {
                    b.tick()
                })
            };
            match outcome {
                Ok(m) => collected[idx].add_round(m),
                Err(e) => collected[idx].add_failure(round, e.to_string()),
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if let Some(set) = saved {
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
    Ok(Report::build(opts, collected, started.elapsed()))
}

fn memcpy_round(opts: &Options) -> Measured {
    let mut m = Measured::default();
    for &s in &opts.stream_sizes {
        let (count, dt) = harness::memcpy(s, opts.stream_for(MEMCPY, s));
        m.stream.push((s, count, dt));
    }
    m
}

/// The peer process's entry point: `plan` is the last argument the leading process
/// appended to [`Options::peer_command`].
pub fn peer_main(plan: &str) -> Result<()> {
    peer::main(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_only_transports_get_no_streams() {
        let opts = Options::new(vec!["unused".into()]);
        for name in ["shmkit-rpc", "shmkit-rpc-spin"] {
            let (plan, skipped) = opts.plan_for(name);
            assert!(plan.stream.is_empty(), "{name}: {:?}", plan.stream);
            assert_eq!(plan.round_trip.len(), opts.sizes.len(), "{name}");
            assert!(skipped.is_empty(), "{name}: {skipped:?}");
            assert!(!transport::kind(name).unwrap().streams);
        }
        let (plan, _) = opts.plan_for("shmkit");
        assert_eq!(plan.stream.len(), opts.stream_sizes.len());
    }
}
