//! `shmkit info`: everything known about objects, for humans or as JSON: System V
//! segments and POSIX objects through the object layer (plus who maps or holds them,
//! at which addresses, since when, and their status), and every other kind (semaphore
//! sets, message queues, named semaphores, POSIX message queues, memfds) from the
//! machine-wide inventory.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use shmkit::inspect::{self, Kind, Object, Snapshot};

use super::object;
use crate::inventory::{self, Extended};
use crate::object::ObjectSpec;
use crate::report::{self, Usage};
use crate::target;

/// Arguments of `shmkit info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Objects: id:N, key:K, ftok:PATH:PROJ, /NAME, sem:ID, semkey:K, msg:ID, msgkey:K,
    /// psem:/NAME, mq:/NAME, memfd:PID:FD.
    #[arg(required = true)]
    objects: Vec<String>,
    /// Print a JSON array (numbers as numbers, times as seconds since the epoch or null).
    #[arg(long)]
    json: bool,
}

enum Named {
    Spec(ObjectSpec),
    Ext(Extended),
}

/// The inventory entry for a System V segment or POSIX object the object layer found.
fn inventory_entry<'a>(snap: &'a Snapshot, info: &target::Info) -> Option<&'a Object> {
    match info {
        target::Info::Sysv(i) => snap
            .objects
            .iter()
            .find(|o| o.kind == Kind::SysvShm && o.id == Some(i.id)),
        target::Info::Posix(i) => snap.objects.iter().find(|o| {
            o.kind == Kind::PosixShm && !o.status.unlinked && o.name.as_deref() == Some(&i.name)
        }),
    }
}

/// Runs `shmkit info`; continues past objects that fail and exits 1 at the end.
pub fn run(a: InfoArgs) -> Result<()> {
    let mut named = Vec::new();
    for s in &a.objects {
        match inventory::parse_extended(s) {
            Some(r) => named.push(Named::Ext(r.map_err(Usage)?)),
            None => named.push(Named::Spec(object(s)?)),
        }
    }
    let snap = inspect::list();
    let mut json: Vec<serde_json::Value> = Vec::new();
    let mut ok = true;
    let mut first = true;
    let mut out = std::io::stdout().lock();
    for n in &named {
        match n {
            Named::Spec(spec) => match target::info(spec) {
                Ok(i) => {
                    let entry = inventory_entry(&snap, &i);
                    if a.json {
                        let mut v = serde_json::to_value(&i)?;
                        if let (Some(map), Some(o)) = (v.as_object_mut(), entry) {
                            let j = serde_json::to_value(inventory::to_json(o))?;
                            for k in ["users", "status", "creator_alive", "channel"] {
                                if let Some(x) = j.get(k) {
                                    map.insert(k.to_string(), x.clone());
                                }
                            }
                        } else if let Some(map) = v.as_object_mut() {
                            map.insert("users".into(), serde_json::Value::Array(Vec::new()));
                        }
                        json.push(v);
                    } else {
                        if !first {
                            writeln!(out)?;
                        }
                        i.print_human(&mut out)?;
                        if let Some(o) = entry {
                            print_users(o, &mut out)?;
                        }
                    }
                    first = false;
                }
                Err(e) => {
                    out.flush()?;
                    report::error("info", report::object_error(spec, &e));
                    ok = false;
                }
            },
            Named::Ext(e) => match inventory::find(&snap.objects, e) {
                Some(o) => {
                    if a.json {
                        json.push(serde_json::to_value(inventory::to_json(o))?);
                    } else {
                        if !first {
                            writeln!(out)?;
                        }
                        inventory::print_object(o, &mut out)?;
                    }
                    first = false;
                }
                None => {
                    out.flush()?;
                    report::error(
                        "info",
                        format!("{}: no such object", inventory::extended_label(e)),
                    );
                    ok = false;
                }
            },
        }
    }
    if a.json {
        out.write_all(serde_json::to_string_pretty(&json)?.as_bytes())?;
        writeln!(out)?;
    }
    out.flush()?;
    if ok {
        Ok(())
    } else {
        Err(report::Reported.into())
    }
}

/// The inventory's extra lines for an object the object layer described.
fn print_users(o: &Object, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "  status   {}", inventory::status_words(o))?;
    if o.channel.is_some() {
        writeln!(out, "  channel  {}", inventory::channel_text(o))?;
    }
    if let (Some(p), Some(alive)) = (o.creator_pid, o.creator_alive) {
        let state = if alive { "alive" } else { "gone" };
        writeln!(out, "  cstate   creator {p} is {state}")?;
    }
    if o.users.is_empty() {
        return writeln!(out, "  users    none");
    }
    writeln!(out, "  users")?;
    for u in &o.users {
        let how = match &u.how {
            inspect::Use::Fd(fd) => format!("holds fd {fd}"),
            inspect::Use::Map { start, end, perms } => format!("maps {start:#x}-{end:#x} {perms}"),
        };
        let since = u
            .since
            .map(|t| format!(", running since {}", inventory::local_time(t)))
            .unwrap_or_default();
        writeln!(out, "    {} {} {how}{since}", u.pid, u.comm)?;
    }
    Ok(())
}
