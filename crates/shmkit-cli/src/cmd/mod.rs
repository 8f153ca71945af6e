//! The subcommands, one module each.

use clap::Subcommand;

pub mod bench;
pub mod demo;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tour: two processes talking through every mechanism, nothing left behind.
    Demo(demo::DemoArgs),
    /// Measure shmkit against pipes, sockets, message queues and the floor, side by side.
    Bench(Box<bench::BenchArgs>),
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Bench(_) => "bench",
        }
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(*a),
    }
}
