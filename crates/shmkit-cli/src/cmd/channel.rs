//! `shmkit channel create | info | rm`: SPSC message channels in /dev/shm.

use anyhow::Result;
use clap::{Args, Subcommand};

use shmkit::channel::{self, ChannelInfo, Options};

use crate::report;

/// Arguments of `shmkit channel`.
#[derive(Args, Debug)]
pub struct ChannelArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a channel (fails if the name exists).
    Create {
        /// Channel name (`/name` or `name`).
        name: String,
        /// Ring size (rounded up to a power of two): 64K, 1MiB, ...
        #[arg(long, default_value = "64KiB", value_parser = parse_size)]
        capacity: u64,
        /// Largest message.
        #[arg(long, default_value = "4KiB", value_parser = parse_size)]
        max_message: u64,
        /// Permission bits, octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Show a channel's size, fill level and endpoints.
    Info {
        /// Channel names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove channels (processes using them keep them until they close).
    Rm {
        /// Channel names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Sizes like `64K`, `1MiB` (K/M/G are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("'{s}' is not a size ({e})"))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{s}' is not an octal mode"))
}

/// Runs `shmkit channel`.
pub fn run(args: ChannelArgs) -> Result<()> {
    match args.action {
        Action::Create {
            name,
            capacity,
            max_message,
            mode,
        } => {
            let opts = Options {
                capacity,
                max_message,
                mode,
            };
            channel::create(&name, &opts).map_err(|e| {
                report::error("channel create", report::object_error(&name, &e));
                report::Reported
            })?;
            Ok(())
        }
        Action::Info { names, json } => {
            let mut failed = false;
            let mut all = Vec::new();
            for name in &names {
                match channel::info(name) {
                    Ok(info) => {
                        if json {
                            all.push(to_json(name, &info));
                        } else {
                            print_info(name, &info)?;
                        }
                    }
                    Err(e) => {
                        report::error("channel info", report::object_error(name, &e));
                        failed = true;
                    }
                }
            }
            if json {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &all)?;
                writeln!(out)?;
            }
            if failed {
                return Err(report::Reported.into());
            }
            Ok(())
        }
        Action::Rm { names } => {
            let mut failed = false;
            for name in &names {
                if let Err(e) = channel::remove(name) {
                    report::error("channel rm", report::object_error(name, &e));
                    failed = true;
                }
            }
            if failed {
                return Err(report::Reported.into());
            }
            Ok(())
        }
    }
}

fn endpoint(e: Option<channel::EndpointInfo>) -> String {
    match e {
        None => "none".into(),
        Some(e) if e.alive => format!("pid {} (alive)", e.pid),
        Some(e) => format!("pid {} (dead)", e.pid),
    }
}

fn print_info(name: &str, i: &ChannelInfo) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{name}: {}", i.kind.name())?;
    writeln!(
        out,
        "  capacity     {} bytes, messages up to {} bytes",
        i.capacity, i.max_message
    )?;
    let msgs = i
        .messages
        .map(|n| format!("{n} messages"))
        .unwrap_or_else(|| "messages unknown".into());
    writeln!(
        out,
        "  fill         {} bytes ({:.1}%), {msgs}",
        i.used,
        i.used as f64 * 100.0 / i.capacity as f64
    )?;
    writeln!(
        out,
        "  sender       {} (opened {} times)",
        endpoint(i.sender),
        i.sender_opens
    )?;
    writeln!(
        out,
        "  receiver     {} (opened {} times)",
        endpoint(i.receiver),
        i.receiver_opens
    )?;
    Ok(())
}

fn to_json(name: &str, i: &ChannelInfo) -> serde_json::Value {
    let ep = |e: Option<channel::EndpointInfo>| match e {
        None => serde_json::Value::Null,
        Some(e) => serde_json::json!({ "pid": e.pid, "alive": e.alive }),
    };
    serde_json::json!({
        "name": name,
        "kind": i.kind.name(),
        "capacity": i.capacity,
        "max_message": i.max_message,
        "used": i.used,
        "messages": i.messages,
        "sender": ep(i.sender),
        "receiver": ep(i.receiver),
        "sender_opens": i.sender_opens,
        "receiver_opens": i.receiver_opens,
    })
}
