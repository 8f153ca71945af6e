//! `shmkit send NAME`: standard input into a channel, one message per line (or per
//! length-prefixed frame with `--frames`). At the end of the input the sender closes,
//! and the receiver, having received everything, sees the end of the stream. Works on
//! every message kind: an MPSC sender takes a free lane, a broadcast sender is the
//! publisher (a request-reply channel is for `shmkit call`).

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shmkit::channel::{self, broadcast, mpsc, ChannelError, Sender};
use shmkit::header::ObjectKind;

use super::messages;
use crate::report;

/// Arguments of `shmkit send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Channel name (`/name` or `name`).
    name: String,
    /// Read frames (a 4-byte little-endian length, then the bytes) instead of lines.
    #[arg(long)]
    frames: bool,
    /// Give up when the channel stays full this long (`5s`, `200ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// Runs `shmkit send`.
pub fn run(args: SendArgs) -> Result<()> {
    let fail = |msg: String| -> anyhow::Error {
        report::error("send", format!("{}: {msg}", args.name));
        report::Reported.into()
    };
    if channel::kind_of(&args.name).ok() == Some(ObjectKind::CHANNEL_RPC) {
        return Err(fail(
            "a request-reply channel: call it with `shmkit call`".into(),
        ));
    }
    let mut tx = AnySender::open(&args.name).map_err(|e| {
        report::error("send", report::object_error(&args.name, &e));
        anyhow::Error::from(report::Reported)
    })?;
    let max = tx.max_message();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        if !messages::next(&mut input, args.frames, max, n + 1, &mut buf).map_err(fail)? {
            break;
        }
        let r = match args.timeout {
            Some(t) => tx.send_timeout(&buf, t),
            None => tx.send(&buf),
        };
        match r {
            Ok(()) => n += 1,
            Err(ChannelError::Timeout) => {
                return Err(fail(format!(
                    "the channel stayed full for {} after {n} messages",
                    humantime::format_duration(args.timeout.unwrap_or_default())
                )))
            }
            Err(e @ (ChannelError::Disconnected | ChannelError::PeerDied(_))) => {
                return Err(fail(format!("{e} after {n} messages")))
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    Ok(())
}

/// The sending end of a channel of any kind.
enum AnySender {
    Spsc(Sender),
    Mpsc(mpsc::Sender),
    Broadcast(broadcast::Publisher),
}

impl AnySender {
    fn open(name: &str) -> shmkit::Result<AnySender> {
        Ok(match channel::kind_of(name)? {
            ObjectKind::CHANNEL_MPSC => AnySender::Mpsc(mpsc::Sender::open(name)?),
            ObjectKind::CHANNEL_BROADCAST => {
                AnySender::Broadcast(broadcast::Publisher::open(name)?)
            }
            _ => AnySender::Spsc(Sender::open(name)?),
        })
    }
    fn max_message(&self) -> usize {
        match self {
            AnySender::Spsc(t) => t.max_message(),
            AnySender::Mpsc(t) => t.max_message(),
            AnySender::Broadcast(t) => t.max_message(),
        }
    }
    fn send(&mut self, data: &[u8]) -> std::result::Result<(), ChannelError> {
        match self {
            AnySender::Spsc(t) => t.send(data),
            AnySender::Mpsc(t) => t.send(data),
            AnySender::Broadcast(t) => t.send(data),
        }
    }
    fn send_timeout(&mut self, data: &[u8], d: Duration) -> std::result::Result<(), ChannelError> {
        match self {
            AnySender::Spsc(t) => t.send_timeout(data, d),
            AnySender::Mpsc(t) => t.send_timeout(data, d),
            AnySender::Broadcast(t) => t.send_timeout(data, d),
        }
    }
}
