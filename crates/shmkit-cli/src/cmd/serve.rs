//! `shmkit serve NAME -- CMD [ARGS...]`: the server end of a request-reply channel from
//! a shell. For each request it runs CMD (directly, no shell) with the request on its
//! standard input and replies with its standard output; a CMD that fails (non-zero
//! exit, killed, not startable) or prints more than the channel's limit has its request
//! dropped unanswered, said on standard error. `--echo` answers each request with
//! itself instead of running a command.
//!
//! It stops with exit 0 when the client closes its end or after `--count` requests, and
//! with exit 1 when the client dies, `--timeout` passes without a request, or CMD
//! cannot be started at all.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shmkit::channel::{rpc, ChannelError};

use crate::report;

/// Arguments of `shmkit serve`.
#[derive(Args, Debug)]
#[command(
    after_help = "Line mode (the default) suits line tools and `shmkit call`'s \
lines: CMD reads the request followed by a newline, and one trailing newline of its \
output is left out of the reply. --raw passes the request and the reply byte for byte \
(use it with `shmkit call --frames`).\n\n\
Example:\n  shmkit channel create /up --kind rpc\n  shmkit serve /up -- tr a-z A-Z &\n  \
echo hello | shmkit call /up      # prints HELLO"
)]
pub struct ServeArgs {
    /// Request-reply channel name (`/name` or `name`), made with `channel create --kind rpc`.
    name: String,
    /// Answer each request with itself instead of running a command.
    #[arg(long, conflicts_with = "cmd")]
    echo: bool,
    /// Stop (exit 0) after this many requests.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Give up (exit 1) when no request comes for this long (`5s`, `200ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Pass requests and replies byte for byte (no newline added or removed).
    #[arg(long)]
    raw: bool,
    /// The command run for each request, after `--`.
    #[arg(last = true, value_name = "CMD", required_unless_present = "echo")]
    cmd: Vec<String>,
}

/// What became of one request's command.
enum Outcome {
    /// Its standard output: the reply.
    Reply(Vec<u8>),
    /// It failed; why (the request is dropped, and serving goes on).
    Dropped(String),
}

/// Runs `cmd` with `input` on its standard input; `Err` when it cannot be started.
fn run_cmd(cmd: &[String], input: &[u8], max: usize) -> std::io::Result<Outcome> {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(Outcome::Dropped("its pipes could not be set up".into()));
    };
    let mut reply = Vec::new();
    let read = std::thread::scope(|s| {
        // The input is written on its own thread so that a command printing before it
        // reads never blocks against us. A command that does not read its input ends
        // the write with EPIPE, which is no failure of ours.
        s.spawn(move || {
            let _ = stdin.write_all(input);
        });
        stdout.take(max as u64 + 1).read_to_end(&mut reply)
    });
    if reply.len() > max {
        // It would print more than a reply can hold: stop it rather than read on.
        let _ = child.kill();
        let _ = child.wait();
        return Ok(Outcome::Dropped(format!(
            "{} printed more than the channel's limit of {max} bytes",
            cmd[0]
        )));
    }
    let status = child.wait()?;
    if let Err(e) = read {
        return Ok(Outcome::Dropped(format!(
            "reading the output of {}: {e}",
            cmd[0]
        )));
    }
    if !status.success() {
        return Ok(Outcome::Dropped(format!("{} failed ({status})", cmd[0])));
    }
    Ok(Outcome::Reply(reply))
}

/// Runs `shmkit serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let fail = |msg: String| -> anyhow::Error {
        report::error("serve", format!("{}: {msg}", args.name));
        report::Reported.into()
    };
    let mut server = super::call::open_rpc("serve", &args.name, rpc::Server::open)?;
    let max = server.max_message();
    let mut n = 0u64;
    while args.count.is_none_or(|c| n < c) {
        let got = match args.timeout {
            Some(t) => server.recv_timeout(t),
            None => server.recv(),
        };
        let req = match got {
            Ok(req) => req,
            Err(ChannelError::Disconnected) => return Ok(()),
            Err(ChannelError::PeerDied(pid)) => {
                return Err(fail(format!(
                    "the client (pid {pid}) died after {n} requests"
                )))
            }
            Err(ChannelError::Timeout) => {
                return Err(fail(format!(
                    "no request for {} (after {n} requests)",
                    humantime::format_duration(args.timeout.unwrap_or_default())
                )))
            }
            Err(e) => return Err(fail(format!("{e} (after {n} requests)"))),
        };
        n += 1;
        if args.echo {
            let copy = req.to_vec();
            req.reply(&copy)
                .map_err(|e| fail(format!("request {n}: {e}")))?;
            continue;
        }
        let mut input = req.to_vec();
        if !args.raw {
            input.push(b'\n');
        }
        match run_cmd(&args.cmd, &input, max + usize::from(!args.raw)) {
            Ok(Outcome::Reply(mut out)) => {
                if !args.raw && out.last() == Some(&b'\n') {
                    out.pop();
                }
                if out.len() > max {
                    drop(req);
                    report::error(
                        "serve",
                        format!(
                            "{}: request {n}: {} printed {} bytes, more than the \
                             channel's limit of {max}; dropped unanswered",
                            args.name,
                            args.cmd[0],
                            out.len()
                        ),
                    );
                    continue;
                }
                req.reply(&out)
                    .map_err(|e| fail(format!("request {n}: {e}")))?;
            }
            Ok(Outcome::Dropped(why)) => {
                drop(req);
                report::error(
                    "serve",
                    format!("{}: request {n}: {why}; dropped unanswered", args.name),
                );
            }
            Err(e) => {
                // Answer the caller (with no reply) before giving up.
                drop(req);
                return Err(fail(format!(
                    "cannot run {}: {e}; request {n} dropped unanswered",
                    args.cmd[0]
                )));
            }
        }
    }
    Ok(())
}
