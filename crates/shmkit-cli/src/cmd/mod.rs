//! The subcommands, one module each.

use clap::Subcommand;

pub mod compat;
pub mod demo;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tour: two processes talking through every mechanism, nothing left behind.
    Demo(demo::DemoArgs),
    /// Drop-in util-linux ipcs: same options, byte-identical output for System V objects.
    Ipcs(compat::CompatArgs),
    /// Drop-in util-linux ipcrm (refuses the `-a msg` foot-gun; see `shmkit ipcrm --help`).
    Ipcrm(compat::CompatArgs),
    /// Drop-in util-linux ipcmk (creates with IPC_EXCL).
    Ipcmk(compat::CompatArgs),
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Ipcs(_) => "ipcs",
            Command::Ipcrm(_) => "ipcrm",
            Command::Ipcmk(_) => "ipcmk",
        }
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Demo(a) => demo::run(a),
        Command::Ipcs(a) => compat::exit_with("ipcs", &a.args),
        Command::Ipcrm(a) => compat::exit_with("ipcrm", &a.args),
        Command::Ipcmk(a) => compat::exit_with("ipcmk", &a.args),
    }
}
