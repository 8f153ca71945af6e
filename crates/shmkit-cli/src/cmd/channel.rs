//! `shmkit channel create | info | rm`: message channels (SPSC, MPSC, broadcast) and
//! request-reply channels (rpc) in /dev/shm.

use anyhow::Result;
use clap::{Args, Subcommand};

use shmkit::channel::{self, broadcast, mpsc, rpc, AnyInfo, ChannelInfo, Kind, Options};

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
        /// Ring size (rounded up to a power of two): 64K, 1MiB, ... (not used by rpc).
        #[arg(long, default_value = "64KiB", value_parser = parse_size)]
        capacity: u64,
        /// Largest message (rpc: the largest request or reply).
        #[arg(long, default_value = "4KiB", value_parser = parse_size)]
        max_message: u64,
        /// Permission bits, octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// The kind: spsc (one sender, one receiver), mpsc (several senders), broadcast
        /// (one sender, several receivers each getting every message), rpc (one client
        /// calls, one server replies: see `shmkit call` and `shmkit serve`).
        #[arg(long, value_enum, default_value_t = KindArg::Spsc)]
        kind: KindArg,
        /// mpsc: the most senders at once (each gets a ring of --capacity).
        #[arg(long, default_value_t = 8)]
        lanes: u32,
        /// broadcast: the most receivers at once.
        #[arg(long, default_value_t = 8)]
        subscribers: u32,
        /// broadcast: a slow receiver is overtaken (and told how many messages it
        /// missed) instead of holding the sender back.
        #[arg(long)]
        overwrite: bool,
    },
    /// Show a channel's size, fill level and endpoints (rpc: calls answered, whether a
    /// request is pending, client and server).
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

/// `--kind` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum KindArg {
    Spsc,
    Mpsc,
    Broadcast,
    Rpc,
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
            kind,
            lanes,
            subscribers,
            overwrite,
        } => {
            if overwrite && kind != KindArg::Broadcast {
                return Err(report::Usage("--overwrite needs --kind broadcast".into()).into());
            }
            let kind = match kind {
                KindArg::Spsc => Kind::Spsc,
                KindArg::Rpc => Kind::Rpc,
                KindArg::Mpsc => Kind::Mpsc { lanes },
                KindArg::Broadcast => Kind::Broadcast {
                    subscribers,
                    mode: if overwrite {
                        broadcast::Mode::Overwrite
                    } else {
                        broadcast::Mode::Backpressure
                    },
                },
            };
            let opts = Options {
                capacity,
                max_message,
                mode,
                kind,
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
                match channel::info_any(name) {
                    Ok(info) => {
                        if json {
                            all.push(any_json(name, &info));
                        } else {
                            print_any(name, &info)?;
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

fn print_any(name: &str, info: &AnyInfo) -> Result<()> {
    use std::io::Write;
    match info {
        AnyInfo::Spsc(i) => print_info(name, i),
        AnyInfo::Mpsc(i) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{name}: channel-mpsc")?;
            writeln!(
                out,
                "  lanes        {} of {} bytes, messages up to {} bytes",
                i.lanes.len(),
                i.capacity,
                i.max_message
            )?;
            writeln!(
                out,
                "  receiver     {} (opened {} times)",
                endpoint(i.receiver),
                i.receiver_opens
            )?;
            for (n, l) in i.lanes.iter().enumerate() {
                writeln!(
                    out,
                    "  lane {n:<7} {} bytes used, sender {} (opened {} times)",
                    l.used,
                    endpoint(l.producer),
                    l.opens
                )?;
            }
            Ok(())
        }
        AnyInfo::Broadcast(i) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{name}: channel-broadcast")?;
            writeln!(
                out,
                "  ring         {} messages of up to {} bytes, {}",
                i.slots,
                i.max_message,
                mode_name(i.mode)
            )?;
            writeln!(out, "  published    {} messages", i.published)?;
            writeln!(out, "  sender       {}", endpoint(i.publisher))?;
            writeln!(
                out,
                "  receivers    {} of {}",
                i.subscribers.len(),
                i.capacity
            )?;
            for s in &i.subscribers {
                writeln!(
                    out,
                    "  slot {:<7} {}, {} messages behind",
                    s.slot,
                    endpoint(Some(s.holder)),
                    s.behind
                )?;
            }
            Ok(())
        }
        AnyInfo::Rpc(i) => print_rpc(name, i),
        _ => Ok(()),
    }
}

fn print_rpc(name: &str, i: &rpc::RpcInfo) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{name}: channel-rpc")?;
    writeln!(
        out,
        "  slot         requests and replies up to {} bytes",
        i.max_message
    )?;
    writeln!(out, "  calls        {} answered", i.calls)?;
    writeln!(
        out,
        "  pending      {}",
        if i.pending {
            "yes (a request waits for its reply)"
        } else {
            "no"
        }
    )?;
    writeln!(
        out,
        "  client       {} (opened {} times)",
        endpoint(i.client),
        i.client_opens
    )?;
    writeln!(
        out,
        "  server       {} (opened {} times)",
        endpoint(i.server),
        i.server_opens
    )?;
    Ok(())
}

fn mode_name(m: broadcast::Mode) -> &'static str {
    match m {
        broadcast::Mode::Backpressure => "backpressure",
        broadcast::Mode::Overwrite => "overwrite",
    }
}

fn any_json(name: &str, info: &AnyInfo) -> serde_json::Value {
    let ep = |e: Option<channel::EndpointInfo>| match e {
        None => serde_json::Value::Null,
        Some(e) => serde_json::json!({ "pid": e.pid, "alive": e.alive }),
    };
    match info {
        AnyInfo::Spsc(i) => to_json(name, i),
        AnyInfo::Mpsc(i) => serde_json::json!({
            "name": name,
            "kind": "channel-mpsc",
            "capacity": i.capacity,
            "max_message": i.max_message,
            "receiver": ep(i.receiver),
            "receiver_opens": i.receiver_opens,
            "lanes": i.lanes.iter().map(|l: &mpsc::LaneInfo| serde_json::json!({
                "sender": ep(l.producer),
                "used": l.used,
                "opens": l.opens,
            })).collect::<Vec<_>>(),
        }),
        AnyInfo::Broadcast(i) => serde_json::json!({
            "name": name,
            "kind": "channel-broadcast",
            "slots": i.slots,
            "max_message": i.max_message,
            "mode": mode_name(i.mode),
            "published": i.published,
            "sender": ep(i.publisher),
            "max_receivers": i.capacity,
            "receivers": i.subscribers.iter().map(|s| serde_json::json!({
                "slot": s.slot,
                "pid": s.holder.pid,
                "alive": s.holder.alive,
                "behind": s.behind,
            })).collect::<Vec<_>>(),
        }),
        AnyInfo::Rpc(i) => serde_json::json!({
            "name": name,
            "kind": "channel-rpc",
            "max_message": i.max_message,
            "calls": i.calls,
            "pending": i.pending,
            "client": ep(i.client),
            "server": ep(i.server),
            "client_opens": i.client_opens,
            "server_opens": i.server_opens,
        }),
        _ => serde_json::json!({ "name": name }),
    }
}
