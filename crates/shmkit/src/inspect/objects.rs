//! One view of every IPC object: [`Object`] joins what /proc/sysvipc, /dev/shm,
//! /dev/mqueue and one /proc scan ([`super::procs`]) say about each object, and derives
//! its [`Status`].
//!
//! Orphan rule: an object is orphaned when nothing maps or holds it (no attachment, no
//! mapping, no open fd seen in /proc) and its creator is gone. The creator is known for
//! System V segments (`cpid`) and for objects that shmkit laid out (the common header's
//! `creator_pid`); a creator pid that now belongs to a process started after the object
//! was created counts as gone (pid reuse). Semaphore sets and message queues record no
//! creator: for them the last pids the kernel records (`sempid` of each semaphore,
//! `lspid`/`lrpid`) stand in, and a set nobody ever touched counts as orphaned. POSIX
//! objects without a shmkit header have no recorded creator: unused means orphaned.
//!
//! shmkit's own objects are recognised by the common header's magic: read from
//! `/dev/shm/NAME` for POSIX objects; for System V segments only through
//! `/proc/PID/map_files/` of a process that maps it (needs CAP_SYS_ADMIN), because
//! attaching just to look would change the segment's attach time and count.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

use super::procs::{self, ProcScan, Target, Use, User};
use super::sysvipc::{self, MODE_DEST, MODE_LOCKED};
use crate::error::Error;
use crate::header::{Header, HEADER_SIZE, MAGIC};

/// The kinds of IPC object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// System V shared-memory segment.
    SysvShm,
    /// System V semaphore set.
    SysvSem,
    /// System V message queue.
    SysvMsg,
    /// POSIX shared-memory object (a file in /dev/shm).
    PosixShm,
    /// POSIX named semaphore (`/dev/shm/sem.NAME`).
    PosixSem,
    /// POSIX message queue (a file in /dev/mqueue).
    PosixMq,
    /// memfd, seen through a process that maps or holds it.
    Memfd,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 7] = [
        Kind::SysvShm,
        Kind::SysvSem,
        Kind::SysvMsg,
        Kind::PosixShm,
        Kind::PosixSem,
        Kind::PosixMq,
        Kind::Memfd,
    ];

    /// Short name used in listings and `--kind`: `shm`, `sem`, `msg`, `posix-shm`,
    /// `posix-sem`, `mqueue`, `memfd`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SysvShm => "shm",
            Kind::SysvSem => "sem",
            Kind::SysvMsg => "msg",
            Kind::PosixShm => "posix-shm",
            Kind::PosixSem => "posix-sem",
            Kind::PosixMq => "mqueue",
            Kind::Memfd => "memfd",
        }
    }

    /// Parses [`Kind::name`] (and a few aliases: `sysv-shm`, `psem`, `mq`, …).
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "shm" | "sysv-shm" => Kind::SysvShm,
            "sem" | "sysv-sem" => Kind::SysvSem,
            "msg" | "sysv-msg" => Kind::SysvMsg,
            "posix-shm" | "pshm" | "posix" => Kind::PosixShm,
            "posix-sem" | "psem" => Kind::PosixSem,
            "mqueue" | "mq" | "posix-mq" => Kind::PosixMq,
            "memfd" => Kind::Memfd,
            _ => return None,
        })
    }
}

/// What is special about an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Removed (IPC_RMID) but still attached: goes away with the last detach.
    pub dest: bool,
    /// Locked in memory (SHM_LOCK).
    pub locked: bool,
    /// The name is gone (unlinked) but a process still maps or holds it.
    pub unlinked: bool,
    /// Nothing maps or holds it and its creator is gone.
    pub orphaned: bool,
    /// Laid out by shmkit: the kind of its common header (`channel-spsc`, `lock` …).
    pub shmkit: Option<String>,
}

/// Everything known about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// System V id.
    pub id: Option<i32>,
    /// System V key.
    pub key: Option<i32>,
    /// POSIX name with its leading slash (`/name`), or the memfd name.
    pub name: Option<String>,
    /// Inode (POSIX objects, memfds).
    pub inode: Option<u64>,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid (System V).
    pub cuid: Option<u32>,
    /// Creator gid (System V).
    pub cgid: Option<u32>,
    /// Mode bits (permissions; System V also dest/locked bits).
    pub mode: u32,
    /// Size in bytes (segment size, file size, queued bytes, or number of semaphores
    /// for semaphore sets).
    pub size: u64,
    /// Attach count (System V segments).
    pub nattch: Option<u64>,
    /// Messages queued (message queues).
    pub messages: Option<u64>,
    /// Processes that map or hold it.
    pub users: Vec<User>,
    /// The creating process, where known.
    pub creator_pid: Option<i32>,
    /// Whether that process is still the one that created the object.
    pub creator_alive: Option<bool>,
    /// Last pids the kernel records (lpid; lspid/lrpid; per-semaphore sempid).
    pub last_pids: Vec<i32>,
    /// Change (or, for files, modification) time, seconds since the epoch.
    pub ctime: Option<i64>,
    /// Last attach / semop / send time.
    pub atime: Option<i64>,
    /// Last detach / receive time.
    pub dtime: Option<i64>,
    /// Derived status.
    pub status: Status,
    /// For a shmkit channel of any kind: capacity, fill level and endpoints.
    pub channel: Option<crate::channel::AnyInfo>,
}

impl Object {
    fn new(kind: Kind) -> Object {
        Object {
            kind,
            id: None,
            key: None,
            name: None,
            inode: None,
            uid: 0,
            gid: 0,
            cuid: None,
            cgid: None,
            mode: 0,
            size: 0,
            nattch: None,
            messages: None,
            users: Vec::new(),
            creator_pid: None,
            creator_alive: None,
            last_pids: Vec::new(),
            ctime: None,
            atime: None,
            dtime: None,
            status: Status::default(),
            channel: None,
        }
    }

    /// A name for messages: `shm id 5 (key 0x…)`, `/name`, `memfd:name`.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg => format!(
                "{} id {} (key {:#010x})",
                self.kind.name(),
                self.id.unwrap_or(-1),
                self.key.unwrap_or(0) as u32
            ),
            Kind::PosixSem => format!("psem:{}", self.name.as_deref().unwrap_or("?")),
            Kind::PosixMq => format!("mq:{}", self.name.as_deref().unwrap_or("?")),
            Kind::Memfd => format!("memfd:{}", self.name.as_deref().unwrap_or("?")),
            Kind::PosixShm => self.name.clone().unwrap_or_default(),
        }
    }

    /// The distinct pids among [`Object::users`].
    pub fn user_pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.users.iter().map(|u| u.pid).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Where to look; the defaults are the system's directories. Tests and benchmarks point
/// these at private directories.
#[derive(Clone, Debug)]
pub struct Sources {
    /// POSIX shared memory (and named semaphores): `/dev/shm`.
    pub shm_dir: String,
    /// POSIX message queues: `/dev/mqueue` (skipped when absent).
    pub mqueue_dir: String,
    /// Whether to read System V objects.
    pub sysv: bool,
    /// Whether to scan /proc for users (and memfds).
    pub procs: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            shm_dir: crate::sys::posix::SHM_DIR.to_string(),
            mqueue_dir: "/dev/mqueue".to_string(),
            sysv: true,
            procs: true,
        }
    }
}

/// A consistent-as-possible snapshot: every object plus the problems met reading.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every object found.
    pub objects: Vec<Object>,
    /// Sources that could not be read, one message each (the rest is still listed).
    pub problems: Vec<String>,
}

/// Lists every object from the system's sources.
pub fn list() -> Snapshot {
    list_from(&Sources::default())
}

fn is_channel(kind: crate::header::ObjectKind) -> bool {
    use crate::header::ObjectKind as K;
    matches!(
        kind,
        K::CHANNEL_SPSC | K::CHANNEL_MPSC | K::CHANNEL_BROADCAST | K::CHANNEL_RPC
    )
}

/// Maps a channel read-only and reads its description (positions, endpoints). A
/// channel that cannot be read or validated is listed without one.
fn describe_channel(path: &str, fname: &str) -> Option<crate::channel::AnyInfo> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let size = usize::try_from(rustix::fs::fstat(&fd).ok()?.st_size).ok()?;
    let map = crate::posix::Mapping::new(fd, 0, size, false, true, format!("/{fname}")).ok()?;
    crate::channel::describe_any(&map).ok()
}

fn peek_file(path: &str) -> Option<Header> {
    let mut f = fs::File::open(path).ok()?;
    let mut buf = [0u8; HEADER_SIZE];
    f.read_exact(&mut buf).ok()?;
    Header::peek(&buf).filter(|h| h.magic == MAGIC)
}

/// Reads the header of a System V segment through a process that maps it, without
/// attaching (see the module docs).
fn peek_sysv(users: &[User]) -> Option<Header> {
    users.iter().find_map(|u| match &u.how {
        Use::Map { start, end, .. } if end - start >= HEADER_SIZE as u64 => {
            peek_file(&format!("/proc/{}/map_files/{start:x}-{end:x}", u.pid))
        }
        _ => None,
    })
}

/// Creator liveness: alive and started no later than the object's time.
fn creator_alive(pid: i32, ctime: Option<i64>, boot: Option<i64>) -> bool {
    if !procs::alive(pid) {
        return false;
    }
    match (procs::process_start(pid, boot), ctime) {
        // Allow a second of slack: both clocks are rounded to seconds.
        (Some(start), Some(t)) if t > 0 => start <= t + 1,
        _ => true,
    }
}

/// Lists every object from `src`.
pub fn list_from(src: &Sources) -> Snapshot {
    let mut snap = Snapshot::default();
    let scan = if src.procs {
        procs::scan_with(&src.mqueue_dir)
    } else {
        ProcScan::default()
    };
    let boot = procs::boot_time();
    if src.sysv {
        sysv_objects(&scan, boot, &mut snap);
    }
    let mut seen_inodes: HashSet<u64> = HashSet::new();
    posix_objects(src, &scan, boot, &mut seen_inodes, &mut snap);
    unlinked_and_memfds(&scan, &seen_inodes, &mut snap);
    if src.procs {
        mqueue_users(&scan, &mut snap);
    }
    snap
}

impl Object {
    /// A System V object with its ids, owner `[uid, gid, cuid, cgid]` and mode set.
    fn sysv(kind: Kind, id: i32, key: i32, owner: [u32; 4], mode: u32) -> Object {
        let mut o = Object::new(kind);
        o.id = Some(id);
        o.key = Some(key);
        [o.uid, o.gid] = [owner[0], owner[1]];
        o.cuid = Some(owner[2]);
        o.cgid = Some(owner[3]);
        o.mode = mode;
        o
    }
}

/// A System V time, where 0 means "never".
fn ever(t: i64) -> Option<i64> {
    Some(t).filter(|t| *t != 0)
}

fn sysv_objects(scan: &ProcScan, boot: Option<i64>, snap: &mut Snapshot) {
    match sysvipc::shm() {
        Ok(v) => {
            for e in v {
                let mut o = Object::sysv(
                    Kind::SysvShm,
                    e.id,
                    e.key,
                    [e.uid, e.gid, e.cuid, e.cgid],
                    e.mode,
                );
                o.size = e.size;
                o.nattch = Some(e.nattch);
                o.users = scan.users(&Target::SysvShm(e.id)).to_vec();
                o.creator_pid = Some(e.cpid);
                o.last_pids = vec![e.lpid];
                o.ctime = Some(e.ctime);
                o.atime = ever(e.atime);
                o.dtime = ever(e.dtime);
                let alive = creator_alive(e.cpid, Some(e.ctime), boot);
                o.creator_alive = Some(alive);
                o.status.dest = e.mode & MODE_DEST != 0;
                o.status.locked = e.mode & MODE_LOCKED != 0;
                o.status.orphaned = e.nattch == 0 && o.users.is_empty() && !alive;
                o.status.shmkit = peek_sysv(&o.users).map(|h| h.object_kind().name());
                snap.objects.push(o);
            }
        }
        Err(e) => snap.problems.push(e.to_string()),
    }
    match sysvipc::sem() {
        Ok(v) => {
            for e in v {
                let mut o = Object::sysv(
                    Kind::SysvSem,
                    e.id,
                    e.key,
                    [e.uid, e.gid, e.cuid, e.cgid],
                    e.mode,
                );
                o.size = e.nsems;
                o.ctime = Some(e.ctime);
                o.atime = ever(e.otime);
                let pids: Vec<i32> = crate::sys::ipcinfo::sem_values(e.id, e.nsems as usize)
                    .map(|v| v.iter().map(|s| s.pid).collect())
                    .unwrap_or_default();
                o.status.orphaned = !pids.iter().any(|p| procs::alive(*p));
                o.last_pids = pids;
                snap.objects.push(o);
            }
        }
        Err(e) => snap.problems.push(e.to_string()),
    }
    match sysvipc::msg() {
        Ok(v) => {
            for e in v {
                let mut o = Object::sysv(
                    Kind::SysvMsg,
                    e.id,
                    e.key,
                    [e.uid, e.gid, e.cuid, e.cgid],
                    e.mode,
                );
                o.size = e.cbytes;
                o.messages = Some(e.qnum);
                o.ctime = Some(e.ctime);
                o.atime = ever(e.stime);
                o.dtime = ever(e.rtime);
                o.last_pids = vec![e.lspid, e.lrpid];
                o.status.orphaned = !o.last_pids.iter().any(|p| procs::alive(*p));
                snap.objects.push(o);
            }
        }
        Err(e) => snap.problems.push(e.to_string()),
    }
}

fn file_object(kind: Kind, name: String, md: &fs::Metadata) -> Object {
    let mut o = Object::new(kind);
    o.name = Some(name);
    o.inode = Some(md.ino());
    o.uid = md.uid();
    o.gid = md.gid();
    o.mode = md.mode() & 0o7777;
    o.size = md.size();
    o.ctime = Some(md.ctime());
    o.atime = Some(md.atime());
    o.dtime = Some(md.mtime());
    o
}

fn posix_objects(
    src: &Sources,
    scan: &ProcScan,
    boot: Option<i64>,
    seen: &mut HashSet<u64>,
    snap: &mut Snapshot,
) {
    match fs::read_dir(&src.shm_dir) {
        Ok(dir) => {
            for ent in dir.flatten() {
                let Some(fname) = ent.file_name().to_str().map(String::from) else {
                    continue;
                };
                let Ok(md) = ent.metadata() else { continue };
                if !md.is_file() {
                    continue;
                }
                let (kind, name) = match fname.strip_prefix("sem.") {
                    Some(n) => (Kind::PosixSem, format!("/{n}")),
                    None => (Kind::PosixShm, format!("/{fname}")),
                };
                let mut o = file_object(kind, name, &md);
                seen.insert(md.ino());
                let target = Target::DevShm {
                    name: fname.clone(),
                    inode: md.ino(),
                    deleted: false,
                };
                o.users = scan.users(&target).to_vec();
                let header = if kind == Kind::PosixShm && md.size() >= HEADER_SIZE as u64 {
                    peek_file(&format!("{}/{fname}", src.shm_dir))
                } else {
                    None
                };
                if let Some(h) = header {
                    o.status.shmkit = Some(h.object_kind().name());
                    if is_channel(h.object_kind()) {
                        o.channel = describe_channel(&format!("{}/{fname}", src.shm_dir), &fname);
                    }
                    let pid = h.creator_pid as i32;
                    let created = (h.created_unix_ns / 1_000_000_000) as i64;
                    o.creator_pid = Some(pid);
                    o.creator_alive = Some(creator_alive(pid, Some(created), boot));
                }
                o.status.orphaned = o.users.is_empty() && o.creator_alive != Some(true);
                snap.objects.push(o);
            }
        }
        Err(e) => snap
            .problems
            .push(Error::from_io("read_dir", &src.shm_dir, e).to_string()),
    }
    if let Ok(dir) = fs::read_dir(&src.mqueue_dir) {
        for ent in dir.flatten() {
            let Some(fname) = ent.file_name().to_str().map(String::from) else {
                continue;
            };
            let Ok(md) = ent.metadata() else { continue };
            let mut o = file_object(Kind::PosixMq, format!("/{fname}"), &md);
            // The file's text is "QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n".
            if let Ok(text) = fs::read_to_string(ent.path()) {
                for part in text.split_whitespace() {
                    if let Some(v) = part.strip_prefix("QSIZE:") {
                        o.size = v.parse().unwrap_or(0);
                    }
                }
            }
            o.messages = None;
            o.status.orphaned = true; // refined by mqueue_users
            snap.objects.push(o);
        }
    }
}

fn unlinked_and_memfds(scan: &ProcScan, seen: &HashSet<u64>, snap: &mut Snapshot) {
    let mut targets: Vec<&Target> = scan.uses.keys().collect();
    targets.sort();
    let mut done: HashSet<(bool, u64)> = HashSet::new();
    for t in targets {
        match t {
            Target::DevShm { name, inode, .. } if !seen.contains(inode) => {
                if !done.insert((false, *inode)) {
                    // Same inode under "deleted" and live spellings: merge users.
                    if let Some(o) = snap
                        .objects
                        .iter_mut()
                        .find(|o| o.inode == Some(*inode) && o.status.unlinked)
                    {
                        o.users.extend(scan.users(t).iter().cloned());
                    }
                    continue;
                }
                let kind = if name.starts_with("sem.") {
                    Kind::PosixSem
                } else {
                    Kind::PosixShm
                };
                let mut o = Object::new(kind);
                o.name = Some(format!("/{}", name.strip_prefix("sem.").unwrap_or(name)));
                o.inode = Some(*inode);
                o.users = scan.users(t).to_vec();
                fill_from_fd(&mut o);
                o.status.unlinked = true;
                snap.objects.push(o);
            }
            Target::Memfd { name, inode } => {
                if !done.insert((true, *inode)) {
                    continue;
                }
                let mut o = Object::new(Kind::Memfd);
                o.name = Some(name.clone());
                o.inode = Some(*inode);
                o.users = scan.users(t).to_vec();
                fill_from_fd(&mut o);
                snap.objects.push(o);
            }
            _ => {}
        }
    }
}

/// Size, owner and mode of an object seen only through a process: stat one of its fds,
/// or its mapping in map_files.
fn fill_from_fd(o: &mut Object) {
    for u in &o.users {
        let path = match &u.how {
            Use::Fd(fd) => format!("/proc/{}/fd/{fd}", u.pid),
            Use::Map { start, end, .. } => format!("/proc/{}/map_files/{start:x}-{end:x}", u.pid),
        };
        if let Ok(md) = fs::metadata(&path) {
            o.uid = md.uid();
            o.gid = md.gid();
            o.mode = md.mode() & 0o7777;
            o.size = md.size();
            o.ctime = Some(md.ctime());
            return;
        }
    }
}

fn mqueue_users(scan: &ProcScan, snap: &mut Snapshot) {
    for o in snap.objects.iter_mut().filter(|o| o.kind == Kind::PosixMq) {
        let name = o.name.as_deref().unwrap_or("/").trim_start_matches('/');
        o.users = scan.users(&Target::Mqueue(name.to_string())).to_vec();
        o.status.orphaned = o.users.is_empty();
    }
}
