//! A plot of a report as a standalone SVG file, written by hand (no plotting
//! dependency): for each round-trip size, each transport's latency distribution on a
//! logarithmic axis (a line from the fastest sample to p99.9, a box from the median to
//! p99, a dot at the median), then one bar chart per stream size, then the wake-up
//! distributions.

use std::fmt::Write as _;

use crate::report::{fmt_bandwidth, fmt_ns, fmt_rate, fmt_size, Report};
use crate::stats::Latency;
use crate::MEMCPY;

const WIDTH: f64 = 960.0;
const LABEL: f64 = 150.0;
const VALUE: f64 = 130.0;
const ROW: f64 = 20.0;
const TITLE: f64 = 34.0;
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Canvas {
    body: String,
    y: f64,
}

impl Canvas {
    fn title(&mut self, text: &str) {
        self.y += TITLE;
        let _ = writeln!(
            self.body,
            r#"<text x="10" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#,
            self.y - 10.0,
            esc(text)
        );
    }

    fn note(&mut self, text: &str) {
        self.y += ROW;
        let _ = writeln!(
            self.body,
            r##"<text x="10" y="{:.1}" fill="#333">{}</text>"##,
            self.y - 6.0,
            esc(text)
        );
    }

    fn label(&mut self, text: &str, value: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}">{}</text>"#,
            LABEL - 6.0,
            self.y + 14.0,
            esc(text),
            WIDTH - VALUE + 6.0,
            self.y + 14.0,
            esc(value)
        );
    }

    /// Distribution rows on a shared log axis.
    fn distributions(&mut self, rows: &[(usize, &str, &Latency)]) {
        if rows.is_empty() {
            return;
        }
        let lo = rows
            .iter()
            .map(|(_, _, l)| l.min_ns.max(1) as f64)
            .fold(f64::MAX, f64::min);
        let hi = rows
            .iter()
            .map(|(_, _, l)| l.p999_ns.max(1) as f64)
            .fold(0.0, f64::max);
        let (lo, hi) = (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        );
        let span = WIDTH - LABEL - VALUE;
        let x = |ns: f64| LABEL + (ns.max(1.0).log10() - lo) / (hi - lo) * span;
        let top = self.y;
        for &(i, name, l) in rows {
            let c = PALETTE[i % PALETTE.len()];
            let mid = self.y + ROW / 2.0;
            let _ = writeln!(
                self.body,
                r#"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="{c}" stroke-width="1.5"/>"#,
                x(l.min_ns as f64),
                x(l.p999_ns as f64)
            );
            let (bx, bw) = (
                x(l.median_ns),
                (x(l.p99_ns as f64) - x(l.median_ns)).max(1.0),
            );
            let _ = writeln!(
                self.body,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{c}" opacity="0.55"/><circle cx="{bx:.1}" cy="{mid:.1}" r="3.5" fill="{c}"/>"#,
                self.y + 4.0,
                ROW - 8.0
            );
            self.label(name, &format!("median {}", fmt_ns(l.median_ns)));
            self.y += ROW;
        }
        // Decade grid lines and labels.
        let mut d = lo;
        while d <= hi {
            let gx = LABEL + (d - lo) / (hi - lo) * span;
            let _ = writeln!(
                self.body,
                r##"<line x1="{gx:.1}" y1="{top:.1}" x2="{gx:.1}" y2="{:.1}" stroke="#ccc" stroke-dasharray="3,3"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                self.y,
                self.y + 14.0,
                decade(d as i32)
            );
            d += 1.0;
        }
        self.y += ROW;
    }

    /// Horizontal bars on a linear axis.
    fn bars(&mut self, rows: &[(usize, &str, f64, String)]) {
        let max = rows.iter().map(|r| r.2).fold(0.0, f64::max);
        if max <= 0.0 {
            return;
        }
        let span = WIDTH - LABEL - VALUE;
        for (i, name, v, text) in rows {
            let c = PALETTE[*i % PALETTE.len()];
            let _ = writeln!(
                self.body,
                r#"<rect x="{LABEL:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{c}"/>"#,
                self.y + 3.0,
                (v / max * span).max(1.0),
                ROW - 6.0
            );
            self.label(name, text);
            self.y += ROW;
        }
        self.y += ROW / 2.0;
    }
}

/// A decade of nanoseconds as an axis label: 10 ns, 100 ns, 1 µs, …
fn decade(exp: i32) -> String {
    let units = ["ns", "µs", "ms", "s"];
    let idx = (exp.max(0) / 3).min(3);
    let mantissa = 10u64.pow((exp.max(0) - idx * 3) as u32);
    format!("{mantissa} {}", units[idx as usize])
}

/// Renders the report as an SVG document.
pub fn render(report: &Report) -> String {
    let mut c = Canvas {
        body: String::new(),
        y: 0.0,
    };
    let colour = |name: &str| {
        report
            .transports
            .iter()
            .position(|t| t.name == name)
            .unwrap_or(0)
    };
    c.title("shmkit bench");
    c.note(&report.describe());
    for &size in &report.settings.sizes {
        let rows: Vec<(usize, &str, &Latency)> = report
            .transports
            .iter()
            .filter_map(|t| {
                t.round_trip
                    .iter()
                    .find(|r| r.size == size)
                    .map(|r| (colour(&t.name), t.name.as_str(), &r.latency))
            })
            .collect();
        if !rows.is_empty() {
            c.title(&format!(
                "Round trip, {} (dot: median, box: to p99, line: fastest to p99.9)",
                fmt_size(size)
            ));
            c.distributions(&rows);
        }
    }
    for &size in &report.settings.stream_sizes {
        let big = size >= 4096;
        let mut memcpy = None;
        let rows: Vec<(usize, &str, f64, String)> = report
            .transports
            .iter()
            .filter_map(|t| {
                let r = t.throughput.iter().find(|r| r.size == size)?;
                let (v, text) = if big {
                    (r.bytes_per_sec, fmt_bandwidth(r.bytes_per_sec))
                } else {
                    (r.msgs_per_sec, fmt_rate(r.msgs_per_sec))
                };
                if t.name == MEMCPY {
                    memcpy = Some(text);
                    return None;
                }
                Some((colour(&t.name), t.name.as_str(), v, text))
            })
            .collect();
        if !rows.is_empty() {
            c.title(&format!("One-way stream, {} messages", fmt_size(size)));
            c.bars(&rows);
            if let Some(m) = memcpy {
                c.note(&format!("(memcpy in one process, the copy limit: {m})"));
            }
        }
    }
    let wake: Vec<(usize, &str, &Latency)> = report
        .transports
        .iter()
        .filter_map(|t| {
            t.wakeup
                .as_ref()
                .map(|l| (colour(&t.name), t.name.as_str(), l))
        })
        .collect();
    if !wake.is_empty() {
        c.title("Wake-up of a waiting receiver, one way");
        c.distributions(&wake);
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{:.0}\" \
         viewBox=\"0 0 {WIDTH} {:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
        c.y + 10.0,
        c.y + 10.0,
        c.body
    )
}

#[cfg(test)]
mod tests {
    use super::decade;

    #[test]
    fn decade_labels() {
        assert_eq!(decade(1), "10 ns");
        assert_eq!(decade(3), "1 µs");
        assert_eq!(decade(5), "100 µs");
        assert_eq!(decade(6), "1 ms");
        assert_eq!(decade(9), "1 s");
        assert_eq!(decade(11), "100 s");
    }
}
