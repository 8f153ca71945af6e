//! `shmkit rm`: remove objects by name, continuing past failures, or in bulk by
//! selection (`--orphaned`, `--older-than`, `--owner`, `--kind`).
//!
//! Bulk removal lists what it selected and asks before removing, unless `--yes`;
//! `--dry-run` only lists. It never removes an object that a process still maps, holds
//! open or has attached unless `--force`, and never one the selection did not pick.
//! memfds have no name and cannot be removed; they are never selected.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;
use shmkit::inspect::{self, Kind, Object};

use super::{failed, object};
use crate::inventory::{self, Extended, Filter};
use crate::object::ObjectSpec;
use crate::report::{self, Usage};
use crate::target;

/// Arguments of `shmkit rm`.
#[derive(Args, Debug)]
#[command(
    after_help = "Objects: id:N, key:K, ftok:PATH:PROJ, /NAME (System V segments, POSIX \
objects), sem:ID, semkey:K, msg:ID, msgkey:K, psem:/NAME (or /sem.NAME), mq:/NAME.\n\
A System V segment that is still attached is marked 'dest', its key becomes 0, and it is \
destroyed when the last process detaches.\n\
Bulk removal (--orphaned, --older-than, --owner, --kind) shows the selection and asks \
unless --yes; objects still in use are skipped unless --force.\n\
Orphaned: nothing maps, attaches or holds the object and its creator is gone. Semaphore \
sets and message queues record no creator: for them it means no process the kernel \
records as their last user is alive, so check `shmkit info` before removing them."
)]
pub struct RmArgs {
    /// Objects to remove.
    objects: Vec<String>,
    /// Select objects that nothing uses and whose creator is gone.
    #[arg(long)]
    orphaned: bool,
    /// Select objects last changed longer ago than this (90s, 30m, 12h, 7d, 2w).
    #[arg(long, value_name = "AGE")]
    older_than: Option<String>,
    /// Select objects owned by this user (name or uid).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Select objects of these kinds (shm, sem, msg, posix-shm, posix-sem, mqueue).
    #[arg(long, value_name = "KIND")]
    kind: Vec<String>,
    /// Remove the selection without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Show the selection only; remove nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Also remove selected objects that are still attached or held open.
    #[arg(long)]
    force: bool,
}

enum Named {
    Spec(ObjectSpec),
    Ext(Extended),
}

/// Runs `shmkit rm`.
pub fn run(a: RmArgs) -> Result<()> {
    let bulk = a.orphaned || a.older_than.is_some() || a.owner.is_some() || !a.kind.is_empty();
    if bulk && !a.objects.is_empty() {
        return Err(Usage(
            "name objects or select them (--orphaned, --older-than, --owner, --kind), not both"
                .into(),
        )
        .into());
    }
    if !bulk {
        if a.objects.is_empty() {
            return Err(Usage(
                "name the objects to remove, or select them with --orphaned, --older-than, --owner or --kind".into(),
            )
            .into());
        }
        return remove_named(&a.objects);
    }
    let filter = Filter {
        kinds: inventory::parse_kinds(&a.kind).map_err(Usage)?,
        owner: match &a.owner {
            Some(u) => Some(target::user_id(u).map_err(Usage)?),
            None => None,
        },
        orphaned: a.orphaned,
        older_than: match &a.older_than {
            Some(s) => Some(inventory::parse_age(s).map_err(Usage)?),
            None => None,
        },
    };
    remove_selected(&filter, a.yes, a.dry_run, a.force)
}

fn remove_named(list: &[String]) -> Result<()> {
    // Parse everything first: one malformed name changes nothing.
    let mut named = Vec::new();
    for s in list {
        match inventory::parse_extended(s) {
            Some(r) => named.push(Named::Ext(r.map_err(Usage)?)),
            None => named.push(Named::Spec(object(s)?)),
        }
    }
    let mut snap: Option<inspect::Snapshot> = None;
    let mut ok = true;
    for n in &named {
        match n {
            Named::Spec(spec) => {
                if let Err(e) = target::remove(spec) {
                    failed("rm", spec, &e);
                    ok = false;
                }
            }
            Named::Ext(e) => {
                let label = inventory::extended_label(e);
                let snap = snap.get_or_insert_with(inspect::list);
                let Some(obj) = inventory::find(&snap.objects, e) else {
                    report::error("rm", format!("{label}: no such object"));
                    ok = false;
                    continue;
                };
                if let Err(err) = inspect::remove::remove(obj, shmkit::sys::posix::SHM_DIR) {
                    report::error("rm", format!("{label}: {}", err.reason()));
                    ok = false;
                }
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(report::Reported.into())
    }
}

fn describe(o: &Object) -> String {
    let mut s = format!(
        "{:<10} {:<40} owner {:<8} size {:>10}",
        o.kind.name(),
        inventory::object_arg(o),
        shmkit::sys::users::user_name(o.uid).unwrap_or_else(|| o.uid.to_string()),
        o.size
    );
    if let Some(t) = o.ctime {
        s.push_str(&format!("  changed {}", inventory::local_time(t)));
    }
    s.push_str(&format!("  [{}]", inventory::status_words(o)));
    s
}

fn remove_selected(filter: &Filter, yes: bool, dry_run: bool, force: bool) -> Result<()> {
    let snap = inspect::list();
    for p in &snap.problems {
        report::error("rm", p);
    }
    let now = inventory::now();
    let mut chosen: Vec<&Object> = Vec::new();
    let mut skipped: Vec<&Object> = Vec::new();
    for o in snap.objects.iter().filter(|o| filter.matches(o, now)) {
        if o.kind == Kind::Memfd || o.status.unlinked || o.status.dest {
            continue; // nothing to remove by name
        }
        if inventory::in_use(o) && !force {
            skipped.push(o);
        } else {
            chosen.push(o);
        }
    }
    let mut out = std::io::stdout().lock();
    for o in &skipped {
        writeln!(
            out,
            "skipping {} (in use by {}; --force removes it anyway)",
            inventory::object_arg(o),
            match inventory::users_text(o).as_str() {
                "-" => format!("{} attachment(s)", o.nattch.unwrap_or(0)),
                u => u.to_string(),
            }
        )?;
    }
    if chosen.is_empty() {
        writeln!(out, "nothing selected")?;
        return Ok(out.flush()?);
    }
    let verb = if dry_run { "would remove" } else { "to remove" };
    writeln!(out, "{verb} {} object(s):", chosen.len())?;
    for o in &chosen {
        writeln!(out, "  {}", describe(o))?;
    }
    out.flush()?;
    if dry_run {
        return Ok(());
    }
    if !yes {
        eprint!(
            "shmkit: rm: remove these {} object(s)? [y/N] ",
            chosen.len()
        );
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            writeln!(out, "nothing removed")?;
            return Ok(out.flush()?);
        }
    }
    let mut ok = true;
    for o in &chosen {
        match inspect::remove::remove(o, shmkit::sys::posix::SHM_DIR) {
            Ok(()) => writeln!(out, "removed {}", inventory::object_arg(o))?,
            Err(e) => {
                out.flush()?;
                report::error(
                    "rm",
                    format!("{}: {}", inventory::object_arg(o), e.reason()),
                );
                ok = false;
            }
        }
    }
    out.flush()?;
    if ok {
        Ok(())
    } else {
        Err(report::Reported.into())
    }
}
