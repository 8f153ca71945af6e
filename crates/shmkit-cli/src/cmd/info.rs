//! `shmkit info`: everything known about objects, for humans or as JSON.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::objects;
use crate::report;
use crate::target;

/// Arguments of `shmkit info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Objects: id:N, key:K, ftok:PATH:PROJ or /NAME.
    #[arg(required = true)]
    objects: Vec<String>,
    /// Print a JSON array (numbers as numbers, times as seconds since the epoch or null).
    #[arg(long)]
    json: bool,
}

/// Runs `shmkit info`; continues past objects that fail and exits 1 at the end.
pub fn run(a: InfoArgs) -> Result<()> {
    let specs = objects(&a.objects)?;
    let mut infos = Vec::new();
    let mut ok = true;
    let mut out = std::io::stdout().lock();
    for spec in &specs {
        match target::info(spec) {
            Ok(i) => {
                if a.json {
                    infos.push(i);
                } else {
                    if !infos.is_empty() {
                        writeln!(out)?;
                    }
                    i.print_human(&mut out)?;
                    infos.push(i);
                }
            }
            Err(e) => {
                out.flush()?;
                report::error("info", report::object_error(spec, &e));
                ok = false;
            }
        }
    }
    if a.json {
        serde_json::to_writer_pretty(&mut out, &infos)?;
        writeln!(out)?;
    }
    out.flush()?;
    if ok {
        Ok(())
    } else {
        Err(report::Reported.into())
    }
}
