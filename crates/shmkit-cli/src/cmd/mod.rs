//! The subcommands, one module each.

use clap::Subcommand;

pub mod channel;
pub mod demo;
pub mod recv;
pub mod send;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tour: two processes talking through every mechanism, nothing left behind.
    Demo(demo::DemoArgs),
    /// Create, describe and remove message channels.
    Channel(channel::ChannelArgs),
    /// Send standard input into a channel, one message per line (or frame).
    Send(send::SendArgs),
    /// Receive messages from a channel to standard output.
    Recv(recv::RecvArgs),
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Channel(_) => "channel",
            Command::Send(_) => "send",
            Command::Recv(_) => "recv",
        }
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Demo(a) => demo::run(a),
        Command::Channel(a) => channel::run(a),
        Command::Send(a) => send::run(a),
        Command::Recv(a) => recv::run(a),
    }
}
