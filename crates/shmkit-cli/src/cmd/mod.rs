//! The subcommands, one module each.

use clap::Subcommand;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match *self {}
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
