//! `shmkit bench`: the comparison benchmark. shmkit's transports against the floor (one
//! cache line between two cores), pipes, Unix sockets, TCP loopback, POSIX message
//! queues, iceoryx2 (when built with it) and memcpy, between two real processes, with
//! tables on stdout and optional Markdown, JSON and SVG files.
//!
//! The peer is this same binary, re-run as `shmkit bench --role peer <plan>`. The
//! measuring code lives in the `shmkit-bench` crate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use shmkit_bench::{BenchError, Options};

use crate::report::{Reported, Usage};

/// Arguments of `shmkit bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Transports to run, comma-separated (default: all; see --list).
    #[arg(long, short = 't', value_delimiter = ',', value_name = "NAME")]
    transports: Vec<String>,
    /// Round-trip message sizes in bytes, comma-separated; K and M suffixes allowed.
    #[arg(long, value_delimiter = ',', value_name = "SIZE", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Stream message sizes, comma-separated (default 64,64K).
    #[arg(long, value_delimiter = ',', value_name = "SIZE", value_parser = parse_size)]
    stream_sizes: Vec<usize>,
    /// Interleaved rounds (default 5; 2 with --quick).
    #[arg(long, short = 'r')]
    rounds: Option<u32>,
    /// Measured round trips per size and round (default: by size).
    #[arg(long, short = 'n')]
    iterations: Option<u64>,
    /// Messages per stream and round (default: by size).
    #[arg(long)]
    stream_messages: Option<u64>,
    /// Wake-up messages per round (0 skips the wake-up test).
    #[arg(long)]
    wake_messages: Option<u64>,
    /// Gap before each wake-up message, in microseconds.
    #[arg(long, value_name = "US")]
    wake_gap_us: Option<u64>,
    /// Cores for this process and the peer, as `A,B`, or `none` not to pin.
    #[arg(long, value_name = "A,B|none")]
    cores: Option<String>,
    /// Time limit per transport and round, in seconds.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Small counts: finishes in seconds, figures are rough.
    #[arg(long)]
    quick: bool,
    /// Write the tables as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write all figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a plot (latency distributions, throughput bars) as SVG to FILE.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// List the transports and exit.
    #[arg(long)]
    list: bool,
    /// Internal: run as the peer process.
    #[arg(long, hide = true, value_name = "ROLE")]
    role: Option<String>,
    /// Internal: the peer's plan.
    #[arg(hide = true, allow_hyphen_values = true)]
    plan: Option<String>,
}

fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        _ => (t, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (bytes, or with K/M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn bench_error(e: BenchError) -> anyhow::Error {
    match e {
        BenchError::Usage(m) => Usage(m).into(),
        other => anyhow::Error::new(other),
    }
}

/// Runs `shmkit bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(role) = &args.role {
        if role != "peer" {
            return Err(Usage(format!("unknown role '{role}'")).into());
        }
        let plan = args
            .plan
            .as_deref()
            .ok_or_else(|| Usage("the peer needs its plan".into()))?;
        return shmkit_bench::peer_main(plan).map_err(bench_error);
    }
    if args.list {
        for k in shmkit_bench::transport::KINDS {
            println!("{:<16} {}", k.name, k.about);
        }
        println!(
            "{:<16} memcpy between two buffers in one process (streams only)",
            shmkit_bench::MEMCPY
        );
        println!(
            "{:<16} uncontended mutex / semaphore costs in one process",
            shmkit_bench::SYNC
        );
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the shmkit executable")?;
    let peer = vec![
        exe.into_os_string(),
        "bench".into(),
        "--role".into(),
        "peer".into(),
    ];
    let mut opts = Options::new(peer);
    if args.quick {
        opts = opts.quick();
    }
    opts.transports = args.transports;
    if !args.sizes.is_empty() {
        opts.sizes = args.sizes;
    }
    if !args.stream_sizes.is_empty() {
        opts.stream_sizes = args.stream_sizes;
    }
    if let Some(r) = args.rounds {
        opts.rounds = r;
    }
    opts.iterations = args.iterations.or(opts.iterations);
    opts.stream_messages = args.stream_messages.or(opts.stream_messages);
    if let Some(w) = args.wake_messages {
        opts.wake_messages = w;
    }
    if let Some(g) = args.wake_gap_us {
        opts.wake_gap = Duration::from_micros(g);
    }
    if let Some(t) = args.timeout {
        opts.timeout = Duration::from_secs(t.max(1));
    }
    match args.cores.as_deref() {
        None => {}
        Some("none") => opts.cores = None,
        Some(s) => {
            let parts: Vec<&str> = s.split(',').collect();
            let parsed: Option<Vec<usize>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
            match parsed.as_deref() {
                Some([a, b]) => opts.cores = Some((*a, *b)),
                _ => return Err(Usage(format!("--cores takes A,B or none, not '{s}'")).into()),
            }
        }
    }
    opts.selected().map_err(bench_error)?;

    ctrlc::set_handler(|| {
        eprintln!("\nshmkit: bench: interrupted; stopping the peer and removing its queues");
        shmkit_bench::cleanup();
        std::process::exit(130);
    })
    .context("cannot install the Ctrl-C handler")?;

    let progress = !args.quiet;
    let report = shmkit_bench::run(&opts, progress).map_err(bench_error)?;
    shmkit_bench::cleanup();

    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(report.to_text().as_bytes())?;
    out.flush()?;
    if let Some(p) = &args.markdown {
        std::fs::write(p, report.to_markdown())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, report.to_json())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if let Some(p) = &args.plot {
        std::fs::write(p, shmkit_bench::svg::render(&report))
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if !report.failures.is_empty() {
        for f in &report.failures {
            crate::report::error(
                "bench",
                format!("{}: round {}: {}", f.transport, f.round, f.error),
            );
        }
        return Err(Reported.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("8"), Ok(8));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("x").is_err());
        assert!(parse_size("").is_err());
    }
}
