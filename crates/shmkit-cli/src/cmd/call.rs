//! `shmkit call NAME`: the client end of a request-reply channel from a shell. Each line
//! of standard input (or each length-prefixed frame with `--frames`) is one request;
//! each reply is written to standard output as a line (or a frame) as soon as it comes.
//! Exits 0 at the end of the input; 1 when the server dies or closes, a timeout passes,
//! or a request was dropped unanswered (the others still get their replies).

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shmkit::channel::{self, rpc, ChannelError};
use shmkit::header::ObjectKind;

use super::messages;
use crate::report;

/// Arguments of `shmkit call`.
#[derive(Args, Debug)]
#[command(
    after_help = "Without --timeout, a call waits for a server as long as none has \
come, and for the reply as long as the server lives. A request the server drops \
unanswered writes no reply and makes the exit code 1; later requests go on.\n\n\
Example:\n  shmkit channel create /calc --kind rpc\n  shmkit serve /calc -- bc &\n  \
echo '6*7' | shmkit call /calc      # prints 42"
)]
pub struct CallArgs {
    /// Request-reply channel name (`/name` or `name`), made with `channel create --kind rpc`.
    name: String,
    /// Read requests as frames (a 4-byte little-endian length, then the bytes) and write
    /// replies the same way, instead of lines.
    #[arg(long)]
    frames: bool,
    /// Give up when a call takes longer than this (`5s`, `200ms`), waiting for the
    /// server included.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// Opens the request-reply channel `name` as `verb`'s end, with a clear message when it
/// is missing or is another kind of object. The failure is already printed.
pub fn open_rpc<T>(
    verb: &str,
    name: &str,
    open: impl FnOnce(&str) -> shmkit::Result<T>,
) -> Result<T> {
    let printed = |msg: String| -> anyhow::Error {
        report::error(verb, msg);
        report::Reported.into()
    };
    let kind = channel::kind_of(name).map_err(|e| printed(report::object_error(name, &e)))?;
    if kind != ObjectKind::CHANNEL_RPC {
        return Err(printed(format!(
            "{name}: not a request-reply channel (it is a {}; make one with \
             `shmkit channel create {name} --kind rpc`)",
            kind.name()
        )));
    }
    open(name).map_err(|e| printed(report::object_error(name, &e)))
}

/// Runs `shmkit call`.
pub fn run(args: CallArgs) -> Result<()> {
    let fail = |msg: String| -> anyhow::Error {
        report::error("call", format!("{}: {msg}", args.name));
        report::Reported.into()
    };
    let mut client = open_rpc("call", &args.name, rpc::Client::open)?;
    let max = client.max_message();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::new();
    let (mut n, mut unanswered) = (0u64, 0u64);
    loop {
        if !messages::next(&mut input, args.frames, max, n + 1, &mut buf).map_err(fail)? {
            break;
        }
        n += 1;
        let reply = match args.timeout {
            Some(t) => client.call_timeout(&buf, t),
            None => client.call(&buf),
        };
        match reply {
            Ok(reply) => {
                if args.frames {
                    out.write_all(&(reply.len() as u32).to_le_bytes())?;
                }
                out.write_all(&reply)?;
                if !args.frames {
                    out.write_all(b"\n")?;
                }
                // One reply at a time: whoever reads it may be waiting to send the next
                // request.
                out.flush()?;
            }
            Err(ChannelError::Unanswered) => {
                report::error(
                    "call",
                    format!(
                        "{}: request {n} was dropped unanswered by the server",
                        args.name
                    ),
                );
                unanswered += 1;
            }
            Err(ChannelError::Timeout) => {
                return Err(fail(format!(
                    "no reply to request {n} within {}",
                    humantime::format_duration(args.timeout.unwrap_or_default())
                )))
            }
            Err(ChannelError::PeerDied(pid)) => {
                return Err(fail(format!(
                    "the server (pid {pid}) died before answering request {n}"
                )))
            }
            Err(ChannelError::Disconnected) => {
                return Err(fail(format!(
                    "the server closed the channel before answering request {n}"
                )))
            }
            Err(e) => return Err(fail(format!("request {n}: {e}"))),
        }
    }
    if unanswered > 0 {
        return Err(fail(format!(
            "{unanswered} of {n} requests were dropped unanswered"
        )));
    }
    Ok(())
}
