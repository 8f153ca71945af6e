//! `shmkit limits`: the kernel's IPC limits and what is in use (ipcs -l and -u in one
//! view, plus POSIX message-queue limits and the space of /dev/shm).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use shmkit::inspect::limits;

/// Arguments of `shmkit limits`.
#[derive(Args, Debug)]
pub struct LimitsArgs {
    /// Print JSON (numbers as numbers; null where a value could not be read).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Shm {
    shmmax: Option<u64>,
    shmall_pages: Option<u64>,
    shmmni: Option<u64>,
    shm_rmid_forced: Option<u64>,
    shmmin: u64,
    segments: Option<i32>,
    pages_allocated: Option<u64>,
    pages_resident: Option<u64>,
    pages_swapped: Option<u64>,
}

#[derive(Serialize)]
struct Sem {
    semmsl: Option<u64>,
    semmns: Option<u64>,
    semopm: Option<u64>,
    semmni: Option<u64>,
    semvmx: Option<i32>,
    arrays: Option<i32>,
    semaphores: Option<i32>,
}

#[derive(Serialize)]
struct Msg {
    msgmax: Option<u64>,
    msgmnb: Option<u64>,
    msgmni: Option<u64>,
    queues: Option<i32>,
    messages: Option<i32>,
    bytes: Option<i32>,
}

#[derive(Serialize)]
struct DevShm {
    total: u64,
    free: u64,
    available: u64,
}

#[derive(Serialize)]
struct Doc {
    page_size: u64,
    shm: Shm,
    sem: Sem,
    msg: Msg,
    mqueue: std::collections::BTreeMap<String, u64>,
    dev_shm: Option<DevShm>,
    problems: Vec<String>,
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

/// Runs `shmkit limits`.
pub fn run(a: LimitsArgs) -> Result<()> {
    let l = limits::read();
    let su = l.shm_usage;
    let seu = l.sem_usage;
    let mu = l.msg_usage;
    let doc = Doc {
        page_size: l.page_size,
        shm: Shm {
            shmmax: l.shmmax,
            shmall_pages: l.shmall,
            shmmni: l.shmmni,
            shm_rmid_forced: l.shm_rmid_forced,
            shmmin: l.shmmin,
            segments: su.map(|u| u.used_ids),
            pages_allocated: su.map(|u| u.shm_tot),
            pages_resident: su.map(|u| u.shm_rss),
            pages_swapped: su.map(|u| u.shm_swp),
        },
        sem: Sem {
            semmsl: l.semmsl,
            semmns: l.semmns,
            semopm: l.semopm,
            semmni: l.semmni,
            semvmx: seu.map(|u| u.semvmx),
            arrays: seu.map(|u| u.used_arrays),
            semaphores: seu.map(|u| u.allocated_sems),
        },
        msg: Msg {
            msgmax: l.msgmax,
            msgmnb: l.msgmnb,
            msgmni: l.msgmni,
            queues: mu.map(|u| u.queues),
            messages: mu.map(|u| u.headers),
            bytes: mu.map(|u| u.bytes),
        },
        mqueue: l.mqueue.iter().cloned().collect(),
        dev_shm: l.dev_shm.map(|(total, free, available)| DevShm {
            total,
            free,
            available,
        }),
        problems: l.problems.clone(),
    };
    for p in &l.problems {
        crate::report::error("limits", p);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        out.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    let s = &doc.shm;
    writeln!(out, "System V shared memory")?;
    writeln!(
        out,
        "  shmmax           {} bytes (largest segment)",
        opt(s.shmmax)
    )?;
    writeln!(
        out,
        "  shmall           {} pages of {} bytes (all segments together)",
        opt(s.shmall_pages),
        doc.page_size
    )?;
    writeln!(out, "  shmmni           {} (most segments)", opt(s.shmmni))?;
    writeln!(
        out,
        "  shm_rmid_forced  {} (1: segments go when their last user exits)",
        opt(s.shm_rmid_forced)
    )?;
    writeln!(
        out,
        "  in use           {} segments, {} pages allocated, {} resident, {} swapped",
        opt(s.segments),
        opt(s.pages_allocated),
        opt(s.pages_resident),
        opt(s.pages_swapped)
    )?;
    let e = &doc.sem;
    writeln!(out, "System V semaphores")?;
    writeln!(
        out,
        "  semmsl           {} (semaphores per set)",
        opt(e.semmsl)
    )?;
    writeln!(
        out,
        "  semmns           {} (semaphores system-wide)",
        opt(e.semmns)
    )?;
    writeln!(
        out,
        "  semopm           {} (operations per semop call)",
        opt(e.semopm)
    )?;
    writeln!(out, "  semmni           {} (most sets)", opt(e.semmni))?;
    writeln!(out, "  semvmx           {} (largest value)", opt(e.semvmx))?;
    writeln!(
        out,
        "  in use           {} sets, {} semaphores",
        opt(e.arrays),
        opt(e.semaphores)
    )?;
    let m = &doc.msg;
    writeln!(out, "System V message queues")?;
    writeln!(
        out,
        "  msgmax           {} bytes (largest message)",
        opt(m.msgmax)
    )?;
    writeln!(
        out,
        "  msgmnb           {} bytes (default queue limit)",
        opt(m.msgmnb)
    )?;
    writeln!(out, "  msgmni           {} (most queues)", opt(m.msgmni))?;
    writeln!(
        out,
        "  in use           {} queues, {} messages, {} bytes",
        opt(m.queues),
        opt(m.messages),
        opt(m.bytes)
    )?;
    writeln!(out, "POSIX message queues")?;
    if doc.mqueue.is_empty() {
        writeln!(out, "  (no /proc/sys/fs/mqueue)")?;
    }
    for (k, v) in &doc.mqueue {
        writeln!(out, "  {k:<16} {v}")?;
    }
    writeln!(out, "/dev/shm")?;
    match &doc.dev_shm {
        Some(d) => writeln!(
            out,
            "  size             {} bytes, {} free, {} available",
            d.total, d.free, d.available
        )?,
        None => writeln!(out, "  (unavailable)")?,
    }
    Ok(out.flush()?)
}
