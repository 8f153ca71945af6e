//! `shmkit recv NAME`: messages from a channel to standard output, one per line (or as
//! length-prefixed frames with `--frames`). Exits 0 when the sender closed and every
//! message was written, non-zero when the sender died (after writing every message it
//! had committed) or a timeout passed.
//!
//! Works on every kind: on an MPSC channel it reads every sender's messages until none
//! is left (non-zero if one died); on a broadcast channel it subscribes (and gets the
//! messages sent from then on), and an overtaken subscriber prints a warning with the
//! number of messages it missed on standard error. With `--count` on those kinds, the
//! end of one sender's stream does not end `recv`: it waits for the count.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shmkit::channel::{self, broadcast, mpsc, ChannelError, Receiver};
use shmkit::header::ObjectKind;

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
    let kind = channel::kind_of(&args.name).map_err(|e| {
        report::error("recv", report::object_error(&args.name, &e));
        anyhow::Error::from(report::Reported)
    })?;
    if kind == ObjectKind::CHANNEL_RPC {
        return Err(fail(
            "a request-reply channel: answer it with `shmkit serve`".into(),
        ));
    }
    if kind == ObjectKind::CHANNEL_MPSC || kind == ObjectKind::CHANNEL_BROADCAST {
        return run_multi(&args, kind, fail);
    }
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

/// Writes one message to `out`, as a line or a frame.
fn emit(out: &mut impl Write, msg: &[u8], frames: bool) -> std::io::Result<()> {
    if frames {
        out.write_all(&(msg.len() as u32).to_le_bytes())?;
    }
    out.write_all(msg)?;
    if !frames {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `recv` on an MPSC or broadcast channel.
fn run_multi(
    args: &RecvArgs,
    kind: ObjectKind,
    fail: impl Fn(String) -> anyhow::Error,
) -> Result<()> {
    enum Rx {
        Mpsc(mpsc::Receiver),
        Broadcast(broadcast::Subscriber),
    }
    let opened = if kind == ObjectKind::CHANNEL_MPSC {
        mpsc::Receiver::open(&args.name).map(Rx::Mpsc)
    } else {
        broadcast::Subscriber::open(&args.name).map(Rx::Broadcast)
    };
    let mut rx = opened.map_err(|e| {
        report::error("recv", report::object_error(&args.name, &e));
        anyhow::Error::from(report::Reported)
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let (mut n, mut died) = (0u64, Vec::new());
    while args.count.is_none_or(|c| n < c) {
        let got = match &mut rx {
            Rx::Mpsc(r) => match r.try_recv() {
                Err(ChannelError::Empty) => {
                    out.flush()?;
                    match args.timeout {
                        Some(t) => r.recv_timeout(t),
                        None => r.recv(),
                    }
                }
                other => other,
            },
            Rx::Broadcast(r) => match r.try_recv() {
                Err(ChannelError::Empty) => {
                    out.flush()?;
                    match args.timeout {
                        Some(t) => r.recv_timeout(t),
                        None => r.recv(),
                    }
                }
                other => other,
            },
        };
        match got {
            Ok(msg) => {
                emit(&mut out, &msg, args.frames)?;
                n += 1;
            }
            // With --count, several senders may come one after the other: a moment
            // with none left is not the end.
            Err(ChannelError::Disconnected) if args.count.is_some() => {}
            Err(ChannelError::Disconnected) => break,
            Err(ChannelError::Lagged(missed)) => {
                out.flush()?;
                report::error(
                    "recv",
                    format!(
                        "{}: warning: overtaken by the sender, {missed} messages missed",
                        args.name
                    ),
                );
            }
            Err(ChannelError::PeerDied(pid)) if matches!(rx, Rx::Mpsc(_)) => {
                // Other senders may go on: note it and keep receiving.
                out.flush()?;
                report::error(
                    "recv",
                    format!(
                        "{}: a sender (pid {pid}) died; every message it committed was received",
                        args.name
                    ),
                );
                died.push(pid);
            }
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
    if !died.is_empty() {
        return Err(report::Reported.into());
    }
    Ok(())
}
