//! Kernel limits and current usage: `/proc/sys/kernel/{shmmax,shmall,shmmni,
//! shm_rmid_forced,sem,msgmax,msgmnb,msgmni}`, `/proc/sys/fs/mqueue/*`, the usage
//! counters of `SHM_INFO` / `SEM_INFO` / `MSG_INFO`, and the space of /dev/shm.
//!
//! Every value is optional: a file that cannot be read leaves its field `None` and adds
//! a line to [`Limits::problems`], so one unreadable file never hides the others.

use crate::sys::ipcinfo::{self, MsgUsage, SemUsage, ShmUsage};

/// Kernel limits and usage of this IPC namespace.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Largest segment in bytes.
    pub shmmax: Option<u64>,
    /// Total shared memory in pages.
    pub shmall: Option<u64>,
    /// Most segments.
    pub shmmni: Option<u64>,
    /// Whether segments are removed when their last user exits even without IPC_RMID.
    pub shm_rmid_forced: Option<u64>,
    /// Smallest segment in bytes (always 1 on Linux).
    pub shmmin: u64,
    /// Most semaphores per set (`semmsl`).
    pub semmsl: Option<u64>,
    /// Most semaphores system-wide (`semmns`).
    pub semmns: Option<u64>,
    /// Most operations per semop call (`semopm`).
    pub semopm: Option<u64>,
    /// Most semaphore sets (`semmni`).
    pub semmni: Option<u64>,
    /// Largest message in bytes.
    pub msgmax: Option<u64>,
    /// Default byte limit of a queue.
    pub msgmnb: Option<u64>,
    /// Most queues.
    pub msgmni: Option<u64>,
    /// POSIX message queues: `/proc/sys/fs/mqueue/{queues_max,msg_max,msgsize_max,
    /// msg_default,msgsize_default}` as name/value pairs.
    pub mqueue: Vec<(String, u64)>,
    /// Shared-memory usage.
    pub shm_usage: Option<ShmUsage>,
    /// Semaphore usage (and `semvmx`).
    pub sem_usage: Option<SemUsage>,
    /// Message-queue usage.
    pub msg_usage: Option<MsgUsage>,
    /// /dev/shm: (total, free, available) bytes.
    pub dev_shm: Option<(u64, u64, u64)>,
    /// The system page size.
    pub page_size: u64,
    /// What could not be read, one message each.
    pub problems: Vec<String>,
}

fn read_u64(path: &str, problems: &mut Vec<String>) -> Option<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => match s.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                problems.push(format!("{path}: not a number: {:?}", s.trim()));
                None
            }
        },
        Err(e) => {
            problems.push(format!("{path}: {e}"));
            None
        }
    }
}

/// Reads every limit and usage counter.
pub fn read() -> Limits {
    let mut p = Vec::new();
    let k = "/proc/sys/kernel";
    let mut l = Limits {
        shmmax: read_u64(&format!("{k}/shmmax"), &mut p),
        shmall: read_u64(&format!("{k}/shmall"), &mut p),
        shmmni: read_u64(&format!("{k}/shmmni"), &mut p),
        shm_rmid_forced: read_u64(&format!("{k}/shm_rmid_forced"), &mut p),
        shmmin: 1,
        msgmax: read_u64(&format!("{k}/msgmax"), &mut p),
        msgmnb: read_u64(&format!("{k}/msgmnb"), &mut p),
        msgmni: read_u64(&format!("{k}/msgmni"), &mut p),
        page_size: crate::sys::page_size() as u64,
        ..Limits::default()
    };
    match std::fs::read_to_string(format!("{k}/sem")) {
        Ok(s) => {
            let v: Vec<u64> = s
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() == 4 {
                l.semmsl = Some(v[0]);
                l.semmns = Some(v[1]);
                l.semopm = Some(v[2]);
                l.semmni = Some(v[3]);
            } else {
                p.push(format!("{k}/sem: expected 4 numbers, got {:?}", s.trim()));
            }
        }
        Err(e) => p.push(format!("{k}/sem: {e}")),
    }
    for name in [
        "queues_max",
        "msg_max",
        "msgsize_max",
        "msg_default",
        "msgsize_default",
    ] {
        let path = format!("/proc/sys/fs/mqueue/{name}");
        if std::path::Path::new(&path).exists() {
            if let Some(v) = read_u64(&path, &mut p) {
                l.mqueue.push((name.to_string(), v));
            }
        }
    }
    match ipcinfo::shm_usage() {
        Ok(u) => l.shm_usage = Some(u),
        Err(e) => p.push(e.to_string()),
    }
    match ipcinfo::sem_usage() {
        Ok(u) => l.sem_usage = Some(u),
        Err(e) => p.push(e.to_string()),
    }
    match ipcinfo::msg_usage() {
        Ok(u) => l.msg_usage = Some(u),
        Err(e) => p.push(e.to_string()),
    }
    match ipcinfo::fs_space(crate::sys::posix::SHM_DIR) {
        Ok(s) => l.dev_shm = Some(s),
        Err(e) => p.push(e.to_string()),
    }
    l.problems = p;
    l
}
