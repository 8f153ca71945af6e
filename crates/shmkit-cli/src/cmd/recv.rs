//! `shmkit recv NAME`: messages from a channel to standard output, one per line (or as
//! length-prefixed frames with `--frames`). Exits 0 when the sender closed and every
//! message was written, non-zero when the sender died (after writing every message it
//! had committed) or a timeout passed.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shmkit::channel::{ChannelError, Receiver};

use crate::report;

/// Arguments of `shmkit recv`.
#[derive(Args, Debug)]
pub struct RecvArgs {
    /// Channel name (`/name` or `name`).
    name: String,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Give up when no message comes for this long (`5s`, `200ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Write frames (a 4-byte little-endian length, then the bytes) instead of lines.
    #[arg(long)]
    frames: bool,
}

/// Runs `shmkit recv`.
pub fn run(args: RecvArgs) -> Result<()> {
    let fail = |msg: String| -> anyhow::Error {
        report::error("recv", format!("{}: {msg}", args.name));
        report::Reported.into()
    };
    let mut rx = Receiver::open(&args.name).map_err(|e| {
        report::error("recv", report::object_error(&args.name, &e));
        anyhow::Error::from(report::Reported)
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut n = 0u64;
    while args.count.is_none_or(|c| n < c) {
        // Flush before going to sleep, so that a reader downstream sees messages as
        // they come; while messages are waiting, write them in batches.
        if !rx.has_message() {
            out.flush()?;
        }
        let got = match args.timeout {
            Some(t) => rx.recv_ref_timeout(t),
            None => rx.recv_ref(),
        };
        match got {
            Ok(msg) => {
                if args.frames {
                    out.write_all(&(msg.len() as u32).to_le_bytes())?;
                    out.write_all(&msg)?;
                } else {
                    out.write_all(&msg)?;
                    out.write_all(b"\n")?;
                }
                n += 1;
            }
            Err(ChannelError::Disconnected) => break,
            Err(ChannelError::PeerDied(pid)) => {
                out.flush()?;
                return Err(fail(format!(
                    "the sender (pid {pid}) died; all {n} messages it committed were received"
                )));
            }
            Err(ChannelError::Timeout) => {
                out.flush()?;
                return Err(fail(format!(
                    "no message for {} (after {n} messages)",
                    humantime::format_duration(args.timeout.unwrap_or_default())
                )));
            }
            Err(e) => {
                out.flush()?;
                return Err(fail(format!("{e} (after {n} messages)")));
            }
        }
    }
    out.flush()?;
    Ok(())
}
