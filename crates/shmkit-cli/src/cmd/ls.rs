//! `shmkit ls`: every IPC object on the machine in one view: System V segments,
//! semaphore sets and message queues, POSIX objects, named semaphores and message
//! queues, and memfds that processes map or hold; who uses each, whether its creator
//! lives, and its status. One pass over /proc per listing.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use shmkit::inspect::{self, Kind, Object};

use crate::inventory::{self, Filter};
use crate::report::Usage;

/// The columns `-o` accepts, in default order.
const COLUMNS: &[(&str, &str)] = &[
    ("kind", "KIND"),
    ("id", "ID"),
    ("key", "KEY"),
    ("name", "NAME"),
    ("object", "OBJECT"),
    ("owner", "OWNER"),
    ("group", "GROUP"),
    ("mode", "MODE"),
    ("size", "SIZE"),
    ("nattch", "NATTCH"),
    ("messages", "MSGS"),
    ("users", "USERS"),
    ("cpid", "CPID"),
    ("creator", "CREATOR"),
    ("ctime", "CHANGED"),
    ("status", "STATUS"),
    ("channel", "CHANNEL"),
];

const DEFAULT: &str = "kind,object,key,owner,mode,size,nattch,users,cpid,status";

/// Arguments of `shmkit ls`.
#[derive(Args, Debug)]
#[command(
    after_help = "Columns for -o: kind, id, key, name, object, owner, group, mode, size, \
nattch, messages, users, cpid, creator, ctime, status, channel (fill level and endpoints \
of shmkit channels, or for rpc channels idle/pending, calls answered and client and \
server; shown by default when a channel is listed).\n\
Kinds: shm, sem, msg (System V), posix-shm, posix-sem, mqueue, memfd.\n\
Status words: dest (removed, still attached), locked, unlinked (name gone, still used), \
orphaned (nothing uses it and its creator is gone), shmkit:KIND (laid out by shmkit)."
)]
pub struct LsArgs {
    /// Only these kinds (comma-separated or repeated).
    #[arg(long, short = 'k', value_name = "KIND")]
    kind: Vec<String>,
    /// Only objects owned by this user (name or uid).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Only orphaned objects.
    #[arg(long)]
    orphaned: bool,
    /// Sort by this column (default: kind, then id or name).
    #[arg(long, value_name = "COLUMN")]
    sort: Option<String>,
    /// Reverse the order.
    #[arg(long, short = 'r')]
    reverse: bool,
    /// Columns to show (comma-separated), like lsipc -o.
    #[arg(long, short = 'o', value_name = "COLUMNS")]
    output: Option<String>,
    /// Print JSON: {"objects": [...], "problems": [...]}.
    #[arg(long)]
    json: bool,
    /// Omit the heading line.
    #[arg(long, short = 'n')]
    noheadings: bool,
}

fn cell(o: &Object, col: &str) -> String {
    let dash = || "-".to_string();
    match col {
        "kind" => o.kind.name().into(),
        "id" => o.id.map(|v| v.to_string()).unwrap_or_else(dash),
        "key" => o
            .key
            .map(|k| format!("0x{:08x}", k as u32))
            .unwrap_or_else(dash),
        "name" => o.name.clone().unwrap_or_else(dash),
        "object" => inventory::object_arg(o),
        "owner" => shmkit::sys::users::user_name(o.uid).unwrap_or_else(|| o.uid.to_string()),
        "group" => shmkit::sys::users::group_name(o.gid).unwrap_or_else(|| o.gid.to_string()),
        "mode" => format!("{:04o}", o.mode & 0o777),
        "size" => o.size.to_string(),
        "nattch" => o.nattch.map(|v| v.to_string()).unwrap_or_else(dash),
        "messages" => o.messages.map(|v| v.to_string()).unwrap_or_else(dash),
        "users" => inventory::users_text(o),
        "cpid" => o.creator_pid.map(|v| v.to_string()).unwrap_or_else(dash),
        "creator" => match o.creator_alive {
            Some(true) => "alive".into(),
            Some(false) => "gone".into(),
            None => dash(),
        },
        "ctime" => o.ctime.map(inventory::local_time).unwrap_or_else(dash),
        "status" => inventory::status_words(o),
        "channel" => inventory::channel_text(o),
        _ => dash(),
    }
}

fn sort_key(o: &Object, col: &str) -> (i128, String) {
    let num = |v: Option<i64>| (v.map(i128::from).unwrap_or(i128::MIN), String::new());
    match col {
        "id" => num(o.id.map(i64::from)),
        "key" => num(o.key.map(|k| i64::from(k as u32))),
        "size" => num(Some(o.size as i64)),
        "nattch" => num(o.nattch.map(|v| v as i64)),
        "messages" => num(o.messages.map(|v| v as i64)),
        "cpid" => num(o.creator_pid.map(i64::from)),
        "ctime" => num(o.ctime),
        "owner" => (i128::from(o.uid), String::new()),
        "users" => num(Some(o.user_pids().len() as i64)),
        c => (0, cell(o, c)),
    }
}

/// Runs `shmkit ls`.
pub fn run(a: LsArgs) -> Result<()> {
    let kinds = inventory::parse_kinds(&a.kind).map_err(Usage)?;
    let owner = match &a.owner {
        Some(u) => Some(crate::target::user_id(u).map_err(Usage)?),
        None => None,
    };
    let mut cols: Vec<String> = a
        .output
        .as_deref()
        .unwrap_or(DEFAULT)
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    for c in &cols {
        if !COLUMNS.iter().any(|(n, _)| n == c) {
            return Err(Usage(format!(
                "unknown column '{c}'; columns: {}",
                COLUMNS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    if let Some(s) = &a.sort {
        if !COLUMNS.iter().any(|(n, _)| n == s) {
            return Err(Usage(format!("unknown sort column '{s}'")).into());
        }
    }
    let filter = Filter {
        kinds,
        owner,
        orphaned: a.orphaned,
        older_than: None,
    };
    let snap = inspect::list();
    let now = inventory::now();
    let mut objs: Vec<&Object> = snap
        .objects
        .iter()
        .filter(|o| filter.matches(o, now))
        .collect();
    let kind_rank = |k: Kind| Kind::ALL.iter().position(|x| *x == k).unwrap_or(0);
    match &a.sort {
        Some(col) => objs.sort_by_key(|o| sort_key(o, col)),
        None => objs.sort_by(|x, y| {
            (kind_rank(x.kind), x.id, &x.name).cmp(&(kind_rank(y.kind), y.id, &y.name))
        }),
    }
    if a.reverse {
        objs.reverse();
    }
    for p in &snap.problems {
        crate::report::error("ls", p);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Doc {
            objects: Vec<inventory::ObjectJson>,
            problems: Vec<String>,
        }
        let doc = Doc {
            objects: objs.iter().map(|o| inventory::to_json(o)).collect(),
            problems: snap.problems.clone(),
        };
        out.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    if a.output.is_none() && objs.iter().any(|o| o.channel.is_some()) {
        cols.push("channel".into());
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !a.noheadings {
        t.set_header(cols.iter().map(|c| {
            COLUMNS
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, h)| *h)
                .unwrap_or("")
        }));
    }
    for o in &objs {
        t.add_row(cols.iter().map(|c| cell(o, c)));
    }
    for (i, c) in cols.iter().enumerate() {
        if matches!(c.as_str(), "id" | "size" | "nattch" | "messages" | "cpid") {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    if !objs.is_empty() || !a.noheadings {
        for line in t.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(out.flush()?)
}
