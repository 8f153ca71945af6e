//! The subcommands, one module each.

use clap::Subcommand;

pub mod demo;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tour: two processes talking through every mechanism, nothing left behind.
    Demo(demo::DemoArgs),
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
        }
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Demo(a) => demo::run(a),
    }
}
