//! The results of a run and their renderings: terminal tables, Markdown, JSON (and SVG
//! in [`crate::svg`]).
//!
//! Latencies are pooled over rounds for the median and percentiles; the spread is the
//! smallest and largest per-round median. Throughputs are the median over rounds, with
//! the same spread. Ratios compare medians from this same run: "× floor" divides by the
//! floor's figure for the same size, and the ratio matrix divides each row by each
//! column.

use std::time::Duration;

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use crate::harness::Measured;
use crate::stats::{self, Latency};
use crate::transport::{self, Waiting, FLOOR};
use crate::{Options, MEMCPY, SYNC};

/// Raw per-round figures for one transport, before summarising.
#[derive(Debug)]
pub struct Collected {
    name: String,
    skipped: Vec<usize>,
    rounds: Vec<Measured>,
    failures: Vec<Failure>,
}

impl Collected {
    /// An empty collection for `name`, which skips the sizes in `skipped`.
    pub fn new(name: &str, skipped: Vec<usize>) -> Collected {
        Collected {
            name: name.to_owned(),
            skipped,
            rounds: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Adds one round's measurements.
    pub fn add_round(&mut self, m: Measured) {
        self.rounds.push(m);
    }

    /// Records a failed round.
    pub fn add_failure(&mut self, round: u32, error: String) {
        self.failures.push(Failure {
            transport: self.name.clone(),
            round: round + 1,
            error,
        });
    }
}

/// A transport that failed in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Transport name.
    pub transport: String,
    /// Round number, from 1.
    pub round: u32,
    /// What went wrong.
    pub error: String,
}

/// Round-trip latency for one message size.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    /// Message size in bytes.
    pub size: usize,
    /// The distribution, in nanoseconds.
    #[serde(flatten)]
    pub latency: Latency,
}

/// One-way throughput for one message size.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Message size in bytes.
    pub size: usize,
    /// Messages per round.
    pub messages: u64,
    /// Median over rounds of messages per second.
    pub msgs_per_sec: f64,
    /// The same in bytes per second.
    pub bytes_per_sec: f64,
    /// Messages per second of each round.
    pub round_msgs_per_sec: Vec<f64>,
}

/// The cost of one uncontended operation pair.
#[derive(Debug, Clone, Serialize)]
pub struct OpCost {
    /// Primitive name.
    pub name: String,
    /// What was measured.
    pub about: String,
    /// Median over rounds, nanoseconds per pair.
    pub ns_per_pair: f64,
    /// Each round's figure.
    pub round_ns: Vec<f64>,
}

/// Everything measured for one transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportReport {
    /// Name as on the command line.
    pub name: String,
    /// What it is.
    pub about: String,
    /// How its receiver waits (`None` for memcpy, which has no receiver).
    pub waiting: Option<Waiting>,
    /// Round trips by size.
    pub round_trip: Vec<RoundTrip>,
    /// Streams by size.
    pub throughput: Vec<Throughput>,
    /// Wake-up latency of a waiting receiver.
    pub wakeup: Option<Latency>,
    /// Sizes this transport cannot carry here (for example message queues above
    /// `msgsize_max`).
    pub skipped_sizes: Vec<usize>,
    /// Uncontended synchronisation costs (the `sync` pseudo-transport).
    pub uncontended: Vec<OpCost>,
    /// Rounds that completed.
    pub rounds_ok: usize,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs online.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Cores the two processes were pinned to.
    pub pinned: Option<(usize, usize)>,
    /// Whether /proc/cpuinfo lists the `hypervisor` flag.
    pub virtual_machine: bool,
}

impl Machine {
    fn detect(pinned: Option<(usize, usize)>) -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = info
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let virtual_machine = info
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let uname = rustix::system::uname();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: uname.release().to_string_lossy().into_owned(),
            pinned,
            virtual_machine,
        }
    }
}

/// The settings a run used, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Interleaved rounds.
    pub rounds: u32,
    /// Quick mode (small counts: rough figures).
    pub quick: bool,
    /// Round-trip sizes.
    pub sizes: Vec<usize>,
    /// Stream sizes.
    pub stream_sizes: Vec<usize>,
    /// Wake-up messages per round.
    pub wake_messages: u64,
    /// Gap before each wake-up message, in microseconds.
    pub wake_gap_us: u64,
    /// Wall-clock time of the whole run, in seconds.
    pub elapsed_s: f64,
}

/// The result of a benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub settings: Settings,
    /// Per transport, in the order they were asked for.
    pub transports: Vec<TransportReport>,
    /// Rounds that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Summarises collected rounds.
    pub fn build(opts: &Options, collected: Vec<Collected>, elapsed: Duration) -> Report {
        let mut failures = Vec::new();
        let mut transports = Vec::new();
        for c in collected {
            failures.extend(c.failures.iter().cloned());
            let kind = transport::kind(&c.name);
            let about = match kind {
                Some(k) => k.about.to_owned(),
                None if c.name == MEMCPY => "memcpy between two buffers in one process".into(),
                None if c.name == SYNC => "uncontended synchronisation in one process".into(),
                None => String::new(),
            };
            let mut round_trip = Vec::new();
            for &size in &opts.sizes {
                let per_round: Vec<Vec<u64>> = c
                    .rounds
                    .iter()
                    .filter_map(|m| m.round_trip.iter().find(|(s, _)| *s == size))
                    .map(|(_, v)| v.clone())
                    .collect();
                if let Some(latency) = Latency::from_rounds(&per_round) {
                    round_trip.push(RoundTrip { size, latency });
                }
            }
            let mut throughput = Vec::new();
            for &size in &opts.stream_sizes {
                let mut rates = Vec::new();
                let mut messages = 0;
                for m in &c.rounds {
                    for &(s, n, dt) in &m.stream {
                        if s == size && !dt.is_zero() {
                            rates.push(n as f64 / dt.as_secs_f64());
                            messages = n;
                        }
                    }
                }
                if let Some(msgs_per_sec) = stats::median_f64(&rates) {
                    throughput.push(Throughput {
                        size,
                        messages,
                        msgs_per_sec,
                        bytes_per_sec: msgs_per_sec * size as f64,
                        round_msgs_per_sec: rates,
                    });
                }
            }
            let mut uncontended: Vec<OpCost> = Vec::new();
            for m in &c.rounds {
                for &(name, about, ns) in &m.ops {
                    match uncontended.iter_mut().find(|o| o.name == name) {
                        Some(o) => o.round_ns.push(ns),
                        None => uncontended.push(OpCost {
                            name: name.to_owned(),
                            about: about.to_owned(),
                            ns_per_pair: f64::NAN,
                            round_ns: vec![ns],
                        }),
                    }
                }
            }
            for o in &mut uncontended {
                o.ns_per_pair = stats::median_f64(&o.round_ns).unwrap_or(f64::NAN);
            }
            let wake_rounds: Vec<Vec<u64>> = c.rounds.iter().map(|m| m.wake.clone()).collect();
            transports.push(TransportReport {
                about,
                waiting: kind.map(|k| k.waiting),
                round_trip,
                throughput,
                wakeup: Latency::from_rounds(&wake_rounds),
                skipped_sizes: c.skipped,
                uncontended,
                rounds_ok: c.rounds.len(),
                name: c.name,
            });
        }
        Report {
            machine: Machine::detect(opts.cores),
            settings: Settings {
                rounds: opts.rounds,
                quick: opts.quick,
                sizes: opts.sizes.clone(),
                stream_sizes: opts.stream_sizes.clone(),
                wake_messages: opts.wake_messages,
                wake_gap_us: opts.wake_gap.as_micros() as u64,
                elapsed_s: elapsed.as_secs_f64(),
            },
            transports,
            failures,
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as terminal tables.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.describe());
        for (title, table) in self.tables(presets::UTF8_FULL_CONDENSED) {
            out.push_str(&format!("\n{title}\n{table}\n"));
        }
        out
    }

    /// The report as Markdown: a heading per table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("{}\n", self.describe());
        for (title, table) in self.tables(presets::ASCII_MARKDOWN) {
            out.push_str(&format!("\n#### {title}\n\n{table}\n"));
        }
        out
    }

    /// One paragraph on the machine and settings.
    pub fn describe(&self) -> String {
        let m = &self.machine;
        let pinned = match m.pinned {
            Some((a, b)) => format!("leader on core {a}, peer on core {b}"),
            None => "not pinned".into(),
        };
        format!(
            "{} ({} CPUs{}), Linux {}; {pinned}; {} round(s){}, {:.1} s.",
            m.cpu,
            m.cpus,
            if m.virtual_machine {
                ", virtual machine"
            } else {
                ""
            },
            m.kernel,
            self.settings.rounds,
            if self.settings.quick {
                ", quick mode (rough figures)"
            } else {
                ""
            },
            self.settings.elapsed_s
        )
    }

    fn transport(&self, name: &str) -> Option<&TransportReport> {
        self.transports.iter().find(|t| t.name == name)
    }

    /// The median round trip of `name` for `size`.
    pub fn rt_median(&self, name: &str, size: usize) -> Option<f64> {
        self.transport(name)?
            .round_trip
            .iter()
            .find(|r| r.size == size)
            .map(|r| r.latency.median_ns)
    }

    fn rate(&self, name: &str, size: usize) -> Option<f64> {
        self.transport(name)?
            .throughput
            .iter()
            .find(|r| r.size == size)
            .map(|r| r.msgs_per_sec)
    }

    fn new_table(&self, preset: &str, header: Vec<&str>) -> Table {
        let mut t = Table::new();
        t.load_preset(preset)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header);
        for i in 1..t.column_count() {
            if let Some(c) = t.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        t
    }

    /// The tables, titled.
    pub fn tables(&self, preset: &str) -> Vec<(String, Table)> {
        let mut out = Vec::new();
        for &size in &self.settings.sizes {
            let floor = self.rt_median(FLOOR, size);
            let mut t = self.new_table(
                preset,
                vec![
                    "transport",
                    "median",
                    "p99",
                    "p99.9",
                    "round medians (min–max)",
                    "× floor",
                ],
            );
            let mut rows = 0;
            for tr in &self.transports {
                if tr.name == MEMCPY {
                    continue;
                }
                let Some(r) = tr.round_trip.iter().find(|r| r.size == size) else {
                    if tr.skipped_sizes.contains(&size) {
                        t.add_row(vec![Cell::new(&tr.name), Cell::new("too large")]);
                        rows += 1;
                    }
                    continue;
                };
                let l = &r.latency;
                let (lo, hi) = l.spread();
                t.add_row(vec![
                    tr.name.clone(),
                    fmt_ns(l.median_ns),
                    fmt_ns(l.p99_ns as f64),
                    fmt_ns(l.p999_ns as f64),
                    format!("{}–{}", fmt_ns(lo), fmt_ns(hi)),
                    ratio(Some(l.median_ns), floor),
                ]);
                rows += 1;
            }
            if rows > 0 {
                out.push((format!("Round trip, {} messages", fmt_size(size)), t));
            }
        }
        if let Some(&size) = self.settings.sizes.first() {
            let names: Vec<&str> = self
                .transports
                .iter()
                .filter(|t| t.round_trip.iter().any(|r| r.size == size))
                .map(|t| t.name.as_str())
                .collect();
            if names.len() > 1 {
                let mut header = vec!["row ÷ column"];
                header.extend(names.iter().copied());
                let mut t = self.new_table(preset, header);
                for &row in &names {
                    let mut cells = vec![row.to_owned()];
                    for &col in &names {
                        cells.push(ratio(self.rt_median(row, size), self.rt_median(col, size)));
                    }
                    t.add_row(cells);
                }
                out.push((
                    format!(
                        "Round-trip median ratios, {} messages (below 1: the row is faster)",
                        fmt_size(size)
                    ),
                    t,
                ));
            }
        }
        if !self.settings.stream_sizes.is_empty() {
            let mut header = vec!["transport".to_owned()];
            for &s in &self.settings.stream_sizes {
                header.push(format!("{} rate", fmt_size(s)));
                header.push(format!("{} bandwidth", fmt_size(s)));
                header.push(format!("{} × floor", fmt_size(s)));
            }
            let mut t = self.new_table(preset, header.iter().map(String::as_str).collect());
            let mut rows = 0;
            for tr in &self.transports {
                if tr.throughput.is_empty() && tr.skipped_sizes.is_empty() {
                    continue;
                }
                let mut cells = vec![tr.name.clone()];
                for &s in &self.settings.stream_sizes {
                    match tr.throughput.iter().find(|r| r.size == s) {
                        Some(r) => {
                            cells.push(fmt_rate(r.msgs_per_sec));
                            cells.push(fmt_bandwidth(r.bytes_per_sec));
                            cells.push(ratio(Some(r.msgs_per_sec), self.rate(FLOOR, s)));
                        }
                        None => {
                            let why = if tr.skipped_sizes.contains(&s) {
                                "too large"
                            } else {
                                "—"
                            };
                            cells.extend([why.to_owned(), String::new(), String::new()]);
                        }
                    }
                }
                t.add_row(cells);
                rows += 1;
            }
            if rows > 0 {
                out.push((
                    "One-way stream, sequence numbers checked (above 1: faster than the floor)"
                        .to_owned(),
                    t,
                ));
            }
        }
        let ops: Vec<&OpCost> = self
            .transports
            .iter()
            .flat_map(|t| t.uncontended.iter())
            .collect();
        if !ops.is_empty() {
            let mut t = self.new_table(
                preset,
                vec!["primitive", "per pair", "rounds (min–max)", "what"],
            );
            for o in ops {
                let (lo, hi) = stats::spread(&o.round_ns);
                t.add_row(vec![
                    o.name.clone(),
                    fmt_ns_fine(o.ns_per_pair),
                    format!("{}–{}", fmt_ns_fine(lo), fmt_ns_fine(hi)),
                    o.about.clone(),
                ]);
            }
            if let Some(c) = t.column_mut(3) {
                c.set_cell_alignment(CellAlignment::Left);
            }
            out.push(("Uncontended synchronisation, one process".to_owned(), t));
        }
        let pipe = self
            .transport("pipe")
            .and_then(|t| t.wakeup.as_ref())
            .map(|l| l.median_ns);
        let mut t = self.new_table(
            preset,
            vec!["transport", "receiver", "median", "p99", "p99.9", "× pipe"],
        );
        let mut rows = 0;
        for tr in &self.transports {
            if let Some(l) = &tr.wakeup {
                let waits = match tr.waiting {
                    Some(Waiting::Spins) => "spins",
                    Some(Waiting::Blocks) => "sleeps",
                    None => "",
                };
                t.add_row(vec![
                    tr.name.clone(),
                    waits.to_owned(),
                    fmt_ns(l.median_ns),
                    fmt_ns(l.p99_ns as f64),
                    fmt_ns(l.p999_ns as f64),
                    ratio(Some(l.median_ns), pipe),
                ]);
                rows += 1;
            }
        }
        if rows > 0 {
            out.push((
                format!(
                    "Wake-up: send to a waiting receiver ({} µs gap), one-way latency",
                    self.settings.wake_gap_us
                ),
                t,
            ));
        }
        out
    }
}

/// `a / b` as "1.23×", or "—" when either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => {
            let r = a / b;
            if r >= 100.0 {
                format!("{r:.0}×")
            } else if r >= 10.0 {
                format!("{r:.1}×")
            } else if r >= 0.1 || r == 0.0 {
                format!("{r:.2}×")
            } else {
                // Three significant digits for small ratios: 0.00437×.
                let digits = (2 - r.log10().floor() as i32).clamp(2, 9) as usize;
                format!("{r:.digits$}×")
            }
        }
        _ => "—".into(),
    }
}

/// A duration in nanoseconds with a fitting unit.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "—".into()
    } else if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Like [`fmt_ns`], with one decimal below 100 ns (for per-operation costs).
pub fn fmt_ns_fine(ns: f64) -> String {
    if ns.is_finite() && ns < 100.0 {
        format!("{ns:.1} ns")
    } else {
        fmt_ns(ns)
    }
}

/// A message size: B, KiB or MiB.
pub fn fmt_size(b: usize) -> String {
    if b >= 1 << 20 && b % (1 << 20) == 0 {
        format!("{} MiB", b >> 20)
    } else if b >= 1024 && b % 1024 == 0 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

/// Messages per second with a fitting unit.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}

/// Bytes per second in GB/s (10^9) or MB/s.
pub fn fmt_bandwidth(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB/s", b / 1e9)
    } else {
        format!("{:.0} MB/s", b / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        let mut o = Options::new(vec!["unused".into()]);
        o.sizes = vec![8];
        o.stream_sizes = vec![64];
        o.rounds = 2;
        o.cores = None;
        o
    }

    fn measured(rt: Vec<u64>, msgs: u64, secs: f64, wake: Vec<u64>) -> Measured {
        Measured {
            round_trip: vec![(8, rt)],
            stream: vec![(64, msgs, Duration::from_secs_f64(secs))],
            wake,
            ops: Vec::new(),
        }
    }

    #[test]
    fn build_pools_rounds_and_computes_ratios() {
        let mut floor = Collected::new(FLOOR, vec![]);
        floor.add_round(measured(vec![100, 100, 300], 1000, 0.001, vec![50]));
        floor.add_round(measured(vec![100, 200, 100], 1000, 0.002, vec![70]));
        let mut pipe = Collected::new("pipe", vec![]);
        pipe.add_round(measured(vec![400, 400, 400], 100, 0.001, vec![1000]));
        pipe.add_failure(1, "the peer went away".into());
        let r = Report::build(&opts(), vec![floor, pipe], Duration::from_secs(1));

        // Floor pooled: 100 100 100 100 200 300 -> median 100; round medians 100, 100.
        assert_eq!(r.rt_median(FLOOR, 8), Some(100.0));
        assert_eq!(r.rt_median("pipe", 8), Some(400.0));
        let f = &r.transports[0];
        assert_eq!(f.round_trip[0].latency.round_medians_ns, vec![100.0, 100.0]);
        // Rates 1e6/s and 5e5/s -> median 7.5e5/s; bytes/s = 64 x that.
        assert_eq!(f.throughput[0].msgs_per_sec, 750_000.0);
        assert_eq!(f.throughput[0].bytes_per_sec, 48_000_000.0);
        assert_eq!(f.wakeup.as_ref().unwrap().median_ns, 60.0);
        assert_eq!(r.transports[1].rounds_ok, 1);
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].round, 2);

        let text = r.to_text();
        assert!(text.contains("4.00×"), "pipe is 4x the floor:\n{text}");
        assert!(
            text.contains("0.25×"),
            "floor is a quarter of pipe:\n{text}"
        );
        let md = r.to_markdown();
        assert!(md.contains("#### Round trip, 8 B messages"), "{md}");
        assert!(md.contains("| pipe"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["transports"][1]["round_trip"][0]["median_ns"], 400.0);
        let svg = crate::svg::render(&r);
        assert!(svg.contains("median 400 ns"), "{svg}");
    }

    #[test]
    fn skipped_sizes_are_reported_as_too_large() {
        let mut mq = Collected::new("mq", vec![1 << 20]);
        mq.add_round(measured(vec![10], 1, 0.5, vec![]));
        let mut o = opts();
        o.sizes = vec![8, 1 << 20];
        let r = Report::build(&o, vec![mq], Duration::from_secs(1));
        let text = r.to_text();
        assert!(text.contains("Round trip, 1 MiB"), "{text}");
        assert!(text.contains("too large"), "{text}");
        assert!(r.transports[0].wakeup.is_none());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(250.4), "250 ns");
        assert_eq!(fmt_ns(12_345.0), "12.35 µs");
        assert_eq!(fmt_ns(2_500_000.0), "2.50 ms");
        assert_eq!(fmt_size(8), "8 B");
        assert_eq!(fmt_size(4096), "4 KiB");
        assert_eq!(fmt_size(1 << 20), "1 MiB");
        assert_eq!(fmt_rate(25_000_000.0), "25.00 M/s");
        assert_eq!(fmt_bandwidth(3.2e9), "3.20 GB/s");
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), None), "—");
        assert_eq!(ratio(Some(300.0), Some(2.0)), "150×");
        assert_eq!(ratio(Some(1.0), Some(229.0)), "0.00437×");
        assert_eq!(ratio(Some(1.0), Some(20.0)), "0.0500×");
    }
}
