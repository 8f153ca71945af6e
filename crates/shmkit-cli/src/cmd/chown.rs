//! `shmkit chown`: change the owner and/or group of objects.

use anyhow::Result;
use clap::Args;

use super::{for_each, objects};
use crate::report::Usage;
use crate::target;

/// Arguments of `shmkit chown`.
#[derive(Args, Debug)]
pub struct ChownArgs {
    /// OWNER, OWNER:GROUP or :GROUP; names or numbers.
    owner: String,
    /// Objects: id:N, key:K, ftok:PATH:PROJ or /NAME.
    #[arg(required = true)]
    objects: Vec<String>,
}

/// Runs `shmkit chown`.
pub fn run(a: ChownArgs) -> Result<()> {
    let (user, group) = match a.owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (a.owner.as_str(), None),
    };
    let uid = match user {
        "" => None,
        u => Some(target::user_id(u).map_err(Usage)?),
    };
    let gid = match group {
        None | Some("") => None,
        Some(g) => Some(target::group_id(g).map_err(Usage)?),
    };
    if uid.is_none() && gid.is_none() {
        return Err(Usage(format!("'{}': give OWNER, OWNER:GROUP or :GROUP", a.owner)).into());
    }
    let specs = objects(&a.objects)?;
    for_each("chown", &specs, |s| Ok(target::chown(s, uid, gid)?))
}
