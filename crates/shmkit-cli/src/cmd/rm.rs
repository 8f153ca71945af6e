//! `shmkit rm`: remove objects, continuing past failures.

use anyhow::Result;
use clap::Args;

use super::{for_each, objects};
use crate::target;

/// Arguments of `shmkit rm`.
#[derive(Args, Debug)]
#[command(
    after_help = "A System V segment that is still attached is marked 'dest', its key \
becomes 0, and it is destroyed when the last process detaches."
)]
pub struct RmArgs {
    /// Objects: id:N, key:K, ftok:PATH:PROJ or /NAME.
    #[arg(required = true)]
    objects: Vec<String>,
}

/// Runs `shmkit rm`.
pub fn run(a: RmArgs) -> Result<()> {
    let specs = objects(&a.objects)?;
    for_each("rm", &specs, |s| Ok(target::remove(s)?))
}
