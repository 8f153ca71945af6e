//! `shmkit chmod`: change the permission bits of objects.

use anyhow::Result;
use clap::Args;

use super::{for_each, objects, usage};
use crate::target;
use crate::value::parse_mode;

/// Arguments of `shmkit chmod`.
#[derive(Args, Debug)]
pub struct ChmodArgs {
    /// Permission bits in octal, such as 640.
    mode: String,
    /// Objects: id:N, key:K, ftok:PATH:PROJ or /NAME.
    #[arg(required = true)]
    objects: Vec<String>,
}

/// Runs `shmkit chmod`.
pub fn run(a: ChmodArgs) -> Result<()> {
    let mode = usage(parse_mode(&a.mode))?;
    let specs = objects(&a.objects)?;
    for_each("chmod", &specs, |s| Ok(target::chmod(s, mode)?))
}
