//! `shmkit create`: make a System V segment (by key, ftok, or private) or a POSIX object.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::{failed, object, usage};
use crate::report;
use crate::target;
use crate::value::{parse_mode, parse_size};

/// Arguments of `shmkit create`.
#[derive(Args, Debug)]
#[command(
    after_help = "Prints one line: the object to name in later commands, the key, \
the size and the mode, such as 'id:32769 key:0x5348abcd size 4096 mode 0600'.\n\
Examples:\n  shmkit create --size 4K                 a private segment\n  \
shmkit create key:0x5348 --size 1M --mode 640\n  shmkit create ftok:/tmp:A --size 64 --or-open"
)]
pub struct CreateArgs {
    /// key:K, ftok:PATH:PROJ or /NAME; none (or key:0) makes a private System V segment.
    object: Option<String>,
    /// Size in bytes: decimal, 0x hex, or with K, M, G.
    #[arg(short, long, allow_hyphen_values = true)]
    size: String,
    /// Permission bits in octal.
    #[arg(short, long, default_value = "600")]
    mode: String,
    /// Open the existing object with this key or name instead of failing.
    #[arg(long)]
    or_open: bool,
    /// Back the segment with huge pages (System V, needs reserved huge pages).
    #[arg(long)]
    hugepages: bool,
    /// Print JSON instead of a line.
    #[arg(long)]
    json: bool,
}

/// Runs `shmkit create`.
pub fn run(a: CreateArgs) -> Result<()> {
    let spec = a.object.as_deref().map(object).transpose()?;
    let size = usage(parse_size(&a.size))?;
    let mode = usage(parse_mode(&a.mode))?;
    let created = match target::create(spec.as_ref(), size, mode, !a.or_open, a.hugepages) {
        Ok(c) => c,
        Err(e) => {
            let name = spec
                .as_ref()
                .map_or_else(|| "private segment".to_string(), |s| s.to_string());
            return Err(failed("create", name, &e).into());
        }
    };
    let printed = (|| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if a.json {
            serde_json::to_writer_pretty(&mut out, &created)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", created.line())?;
        }
        out.flush()
    })();
    if let Err(e) = printed {
        // Nobody learnt the id of what was created (a private segment would be lost for
        // good): remove it again, unless it may have existed before (--or-open).
        let mut what = format!("{}: cannot print it: {e}", created.object);
        if !a.or_open {
            if let Ok(spec) = created.object.parse::<crate::object::ObjectSpec>() {
                if target::remove(&spec).is_ok() {
                    what.push_str("; removed it again");
                }
            }
        }
        report::error("create", what);
        return Err(report::Reported.into());
    }
    Ok(())
}
