//! The machine-wide inventory behind `ls`, `limits`, bulk `rm` and `info` for every
//! kind: selection filters over [`shmkit::inspect::Object`]s, the extended object forms
//! (`sem:ID`, `msg:ID`, `semkey:K`, `msgkey:K`, `psem:/NAME`, `mq:/NAME`,
//! `memfd:PID:FD`), and typed JSON values (numbers as numbers, times as ISO 8601 plus
//! epoch seconds, empty lists rather than missing keys).

use std::time::Duration;

use serde::Serialize;
use shmkit::channel::AnyInfo;
use shmkit::inspect::{Kind, Object, Use};

/// A time for JSON: ISO 8601 (UTC) and seconds since the epoch.
#[derive(Clone, Debug, Serialize)]
pub struct Time {
    /// `2026-11-30T04:26:18Z`.
    pub iso: String,
    /// Seconds since the epoch.
    pub epoch: i64,
}

impl Time {
    /// From epoch seconds.
    pub fn new(epoch: i64) -> Time {
        let iso = chrono::DateTime::from_timestamp(epoch, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        Time { iso, epoch }
    }
}

/// Local time for humans: `2026-11-30 04:26:18`.
pub fn local_time(epoch: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(epoch, 0).single() {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => epoch.to_string(),
    }
}

/// One user of an object, for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct UserJson {
    /// Process id.
    pub pid: i32,
    /// Command name.
    pub comm: String,
    /// `map` or `fd`.
    pub how: &'static str,
    /// The fd number (for `fd`).
    pub fd: Option<i32>,
    /// First mapped address as hex (for `map`).
    pub start: Option<String>,
    /// One past the last mapped address as hex (for `map`).
    pub end: Option<String>,
    /// Mapping permissions (for `map`).
    pub perms: Option<String>,
    /// The process start time: the use is at most this old.
    pub since: Option<Time>,
}

/// Status flags for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct StatusJson {
    /// Removed but still attached.
    pub dest: bool,
    /// Locked in memory.
    pub locked: bool,
    /// Unlinked but still mapped or held.
    pub unlinked: bool,
    /// Nothing uses it and its creator is gone.
    pub orphaned: bool,
    /// The shmkit object kind, or null.
    pub shmkit: Option<String>,
}

/// One channel endpoint, for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointJson {
    /// The process holding the endpoint.
    pub pid: u32,
    /// Whether it is still running.
    pub alive: bool,
}

/// A shmkit channel's state, for JSON (every kind in one shape).
#[derive(Clone, Debug, Serialize)]
pub struct ChannelJson {
    /// `spsc`, `mpsc`, `broadcast` or `rpc`.
    pub kind: &'static str,
    /// Ring bytes (broadcast: slots × largest message; rpc: the slot's payload bytes,
    /// the largest message).
    pub capacity: u64,
    /// The largest message.
    pub max_message: u32,
    /// Ring bytes holding unreceived messages (all lanes), or null (broadcast).
    pub used: Option<u64>,
    /// Unreceived messages, where the ring could be walked (rpc: 1 while a request
    /// waits for its reply, else 0).
    pub messages: Option<u64>,
    /// The sending endpoints (SPSC: at most one; MPSC: one per lane in use; broadcast:
    /// the publisher; rpc: the client).
    pub senders: Vec<EndpointJson>,
    /// The receiving endpoints (broadcast: every subscriber; rpc: the server).
    pub receivers: Vec<EndpointJson>,
    /// rpc only: `idle` or `pending` (a request waits for its reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// rpc only: calls answered so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
}

fn ep_json(e: &shmkit::channel::EndpointInfo) -> EndpointJson {
    EndpointJson {
        pid: e.pid,
        alive: e.alive,
    }
}

impl ChannelJson {
    fn new(c: &AnyInfo) -> ChannelJson {
        match c {
            AnyInfo::Spsc(c) => ChannelJson {
                kind: "spsc",
                capacity: c.capacity,
                max_message: c.max_message,
                used: Some(c.used),
                messages: c.messages,
                senders: c.sender.iter().map(ep_json).collect(),
                receivers: c.receiver.iter().map(ep_json).collect(),
                state: None,
                calls: None,
            },
            AnyInfo::Mpsc(m) => ChannelJson {
                kind: "mpsc",
                capacity: m.capacity,
                max_message: m.max_message,
                used: Some(m.lanes.iter().map(|l| l.used).sum()),
                messages: None,
                senders: m
                    .lanes
                    .iter()
                    .filter_map(|l| l.producer.as_ref())
                    .map(ep_json)
                    .collect(),
                receivers: m.receiver.iter().map(ep_json).collect(),
                state: None,
                calls: None,
            },
            AnyInfo::Broadcast(b) => ChannelJson {
                kind: "broadcast",
                capacity: b.slots.saturating_mul(u64::from(b.max_message)),
                max_message: b.max_message,
                used: None,
                messages: None,
                senders: b.publisher.iter().map(ep_json).collect(),
                receivers: b.subscribers.iter().map(|s| ep_json(&s.holder)).collect(),
                state: None,
                calls: None,
            },
            AnyInfo::Rpc(r) => ChannelJson {
                kind: "rpc",
                capacity: u64::from(r.max_message),
                max_message: r.max_message,
                used: None,
                messages: Some(u64::from(r.pending)),
                senders: r.client.iter().map(ep_json).collect(),
                receivers: r.server.iter().map(ep_json).collect(),
                state: Some(rpc_state(r)),
                calls: Some(r.calls),
            },
            _ => ChannelJson {
                kind: "unknown",
                capacity: 0,
                max_message: 0,
                used: None,
                messages: None,
                senders: Vec::new(),
                receivers: Vec::new(),
                state: None,
                calls: None,
            },
        }
    }
}

/// A channel in words: `fill 120/65536 B (3 msgs), sender 812 alive, receiver none`.
pub fn channel_text(o: &Object) -> String {
    let Some(c) = &o.channel else {
        return "-".into();
    };
    let one = |e: &shmkit::channel::EndpointInfo| {
        format!("{} {}", e.pid, if e.alive { "alive" } else { "dead" })
    };
    let opt = |e: &Option<shmkit::channel::EndpointInfo>| {
        e.as_ref().map(one).unwrap_or_else(|| "none".into())
    };
    match c {
        AnyInfo::Spsc(c) => {
            let msgs = c
                .messages
                .map(|m| format!(" ({m} msgs)"))
                .unwrap_or_default();
            format!(
                "fill {}/{} B{msgs}, sender {}, receiver {}",
                c.used,
                c.capacity,
                opt(&c.sender),
                opt(&c.receiver)
            )
        }
        AnyInfo::Mpsc(m) => {
            let used: u64 = m.lanes.iter().map(|l| l.used).sum();
            let senders: Vec<String> = m
                .lanes
                .iter()
                .filter_map(|l| l.producer.as_ref())
                .map(one)
                .collect();
            format!(
                "mpsc: fill {used}/{} B over {} lanes, senders [{}], receiver {}",
                m.capacity,
                m.lanes.len(),
                senders.join(", "),
                opt(&m.receiver)
            )
        }
        AnyInfo::Broadcast(b) => {
            let behind = b.subscribers.iter().map(|s| s.behind).max().unwrap_or(0);
            format!(
                "broadcast ({:?}): {} slots, {} published, publisher {}, {} subscribers (furthest {behind} behind)",
                b.mode,
                b.slots,
                b.published,
                opt(&b.publisher),
                b.subscribers.len()
            )
        }
        AnyInfo::Rpc(r) => format!(
            "rpc: {}, {} calls answered, messages up to {} B, client {}, server {}",
            rpc_state(r),
            r.calls,
            r.max_message,
            opt(&r.client),
            opt(&r.server)
        ),
        _ => "unknown channel kind".into(),
    }
}

/// A request-reply channel's state in a word: `pending` while a request waits for its
/// reply, `idle` otherwise.
fn rpc_state(r: &shmkit::channel::rpc::RpcInfo) -> &'static str {
    if r.pending {
        "pending"
    } else {
        "idle"
    }
}

/// One object, for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectJson {
    /// `shm`, `sem`, `msg`, `posix-shm`, `posix-sem`, `mqueue`, `memfd`.
    pub kind: &'static str,
    /// The System V id.
    pub id: Option<i32>,
    /// The System V key as a number.
    pub key: Option<i64>,
    /// The System V key as `0x%08x`.
    pub key_hex: Option<String>,
    /// The POSIX or memfd name.
    pub name: Option<String>,
    /// What to pass to `shmkit info` / `shmkit rm`.
    pub object: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner name, if it has one.
    pub owner: Option<String>,
    /// Group gid.
    pub gid: u32,
    /// Group name, if it has one.
    pub group: Option<String>,
    /// Permission bits as a number.
    pub mode: u32,
    /// Permission bits as octal text.
    pub mode_octal: String,
    /// Bytes (number of semaphores for semaphore sets).
    pub size: u64,
    /// Attach count.
    pub nattch: Option<u64>,
    /// Queued messages.
    pub messages: Option<u64>,
    /// Processes that map or hold it.
    pub users: Vec<UserJson>,
    /// Creator pid, where known.
    pub creator_pid: Option<i32>,
    /// Whether the creator is alive.
    pub creator_alive: Option<bool>,
    /// Last pids the kernel records.
    pub last_pids: Vec<i32>,
    /// Change time.
    pub ctime: Option<Time>,
    /// Last attach / operation / send time.
    pub atime: Option<Time>,
    /// Last detach / receive time.
    pub dtime: Option<Time>,
    /// Status flags.
    pub status: StatusJson,
    /// For a shmkit channel: capacity, fill level, endpoints; null otherwise.
    pub channel: Option<ChannelJson>,
}

/// What to pass to `shmkit info`/`rm` for this object.
pub fn object_arg(o: &Object) -> String {
    let name = o.name.clone().unwrap_or_default();
    match o.kind {
        Kind::SysvShm => format!("id:{}", o.id.unwrap_or(-1)),
        Kind::SysvSem => format!("sem:{}", o.id.unwrap_or(-1)),
        Kind::SysvMsg => format!("msg:{}", o.id.unwrap_or(-1)),
        Kind::PosixShm => name,
        Kind::PosixSem => format!("psem:{name}"),
        Kind::PosixMq => format!("mq:{name}"),
        Kind::Memfd => match o.users.iter().find_map(|u| match u.how {
            Use::Fd(fd) => Some((u.pid, fd)),
            _ => None,
        }) {
            Some((pid, fd)) => format!("memfd:{pid}:{fd}"),
            None => format!("memfd:{name}"),
        },
    }
}

/// Converts an object for JSON.
pub fn to_json(o: &Object) -> ObjectJson {
    let sysv = matches!(o.kind, Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg);
    ObjectJson {
        kind: o.kind.name(),
        id: o.id,
        key: o.key.map(i64::from),
        key_hex: o.key.map(|k| format!("0x{:08x}", k as u32)),
        name: o.name.clone(),
        object: object_arg(o),
        uid: o.uid,
        owner: shmkit::sys::users::user_name(o.uid),
        gid: o.gid,
        group: shmkit::sys::users::group_name(o.gid),
        mode: o.mode & if sysv { 0o777 } else { 0o7777 },
        mode_octal: format!("{:04o}", o.mode & if sysv { 0o777 } else { 0o7777 }),
        size: o.size,
        nattch: o.nattch,
        messages: o.messages,
        users: o
            .users
            .iter()
            .map(|u| {
                let (how, fd, start, end, perms) = match &u.how {
                    Use::Fd(fd) => ("fd", Some(*fd), None, None, None),
                    Use::Map { start, end, perms } => (
                        "map",
                        None,
                        Some(format!("0x{start:x}")),
                        Some(format!("0x{end:x}")),
                        Some(perms.clone()),
                    ),
                };
                UserJson {
                    pid: u.pid,
                    comm: u.comm.clone(),
                    how,
                    fd,
                    start,
                    end,
                    perms,
                    since: u.since.map(Time::new),
                }
            })
            .collect(),
        creator_pid: o.creator_pid,
        creator_alive: o.creator_alive,
        last_pids: o.last_pids.clone(),
        ctime: o.ctime.map(Time::new),
        atime: o.atime.map(Time::new),
        dtime: o.dtime.map(Time::new),
        status: StatusJson {
            dest: o.status.dest,
            locked: o.status.locked,
            unlinked: o.status.unlinked,
            orphaned: o.status.orphaned,
            shmkit: o.status.shmkit.clone(),
        },
        channel: o.channel.as_ref().map(ChannelJson::new),
    }
}

/// The status words for humans: `dest,locked,unlinked,orphaned,shmkit:lock`, or `-`.
pub fn status_words(o: &Object) -> String {
    let mut v = Vec::new();
    if o.status.dest {
        v.push("dest".to_string());
    }
    if o.status.locked {
        v.push("locked".to_string());
    }
    if o.status.unlinked {
        v.push("unlinked".to_string());
    }
    if o.status.orphaned {
        v.push("orphaned".to_string());
    }
    if let Some(k) = &o.status.shmkit {
        v.push(format!("shmkit:{k}"));
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

/// `pid/comm` of each user process, comma-separated, or `-`.
pub fn users_text(o: &Object) -> String {
    let mut seen = Vec::new();
    for u in &o.users {
        let t = format!("{}/{}", u.pid, u.comm);
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    if seen.is_empty() {
        "-".into()
    } else {
        seen.join(",")
    }
}

/// Whether a process maps or holds it (attach count included).
pub fn in_use(o: &Object) -> bool {
    !o.users.is_empty() || o.nattch.unwrap_or(0) > 0
}

/// Selection shared by `ls` and bulk `rm`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these kinds (empty: all).
    pub kinds: Vec<Kind>,
    /// Only objects of this uid.
    pub owner: Option<u32>,
    /// Only orphaned objects.
    pub orphaned: bool,
    /// Only objects whose change time is older than this.
    pub older_than: Option<Duration>,
}

impl Filter {
    /// Whether `o` is selected.
    pub fn matches(&self, o: &Object, now: i64) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&o.kind) {
            return false;
        }
        if self.owner.is_some_and(|u| u != o.uid) {
            return false;
        }
        if self.orphaned && !o.status.orphaned {
            return false;
        }
        if let Some(age) = self.older_than {
            match o.ctime {
                Some(t) if now - t >= age.as_secs() as i64 => {}
                _ => return false,
            }
        }
        true
    }
}

/// Parses `--kind` values: comma-separated kind names.
pub fn parse_kinds(list: &[String]) -> Result<Vec<Kind>, String> {
    let mut v = Vec::new();
    for item in list.iter().flat_map(|s| s.split(',')) {
        let k = Kind::parse(item.trim()).ok_or_else(|| {
            format!(
                "unknown kind '{item}': use shm, sem, msg, posix-shm, posix-sem, mqueue or memfd"
            )
        })?;
        if !v.contains(&k) {
            v.push(k);
        }
    }
    Ok(v)
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` (a bare number is seconds).
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}': write a number and a unit, such as 30m, 12h or 7d"))?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("'{s}': the unit is s, m, h, d or w")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mul)))
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An object form beyond the System V segment and POSIX object forms that
/// [`crate::object::ObjectSpec`] knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extended {
    /// `sem:ID`
    SemId(i32),
    /// `msg:ID`
    MsgId(i32),
    /// `semkey:K`
    SemKey(i32),
    /// `msgkey:K`
    MsgKey(i32),
    /// `psem:/NAME` or `/sem.NAME`
    PosixSem(String),
    /// `mq:/NAME`
    Mqueue(String),
    /// `memfd:PID:FD`
    Memfd(i32, i32),
}

fn parse_key(k: &str) -> Option<i32> {
    if let Some(h) = k.strip_prefix("0x").or_else(|| k.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok().map(|v| v as i32);
    }
    k.parse::<i64>()
        .ok()
        .filter(|v| *v >= i64::from(i32::MIN) && *v <= i64::from(u32::MAX))
        .map(|v| v as u32 as i32)
}

fn posix_name(s: &str, n: &str) -> Result<String, String> {
    let name = n.strip_prefix('/').unwrap_or(n);
    if name.is_empty() || name.contains('/') || name.len() > 251 {
        return Err(format!("'{s}': give a name such as /NAME (no other '/')"));
    }
    Ok(name.to_string())
}

/// Parses an extended form; `None` when `s` is not one (the caller tries the others).
pub fn parse_extended(s: &str) -> Option<Result<Extended, String>> {
    let id = |n: &str| -> Result<i32, String> {
        n.parse::<i32>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| format!("'{s}': an id is a non-negative decimal number"))
    };
    let key = |n: &str| -> Result<i32, String> {
        parse_key(n).ok_or_else(|| format!("'{s}': a key is a 32-bit number, decimal or 0x hex"))
    };
    Some(if let Some(n) = s.strip_prefix("sem:") {
        id(n).map(Extended::SemId)
    } else if let Some(n) = s.strip_prefix("msg:") {
        id(n).map(Extended::MsgId)
    } else if let Some(n) = s.strip_prefix("semkey:") {
        key(n).map(Extended::SemKey)
    } else if let Some(n) = s.strip_prefix("msgkey:") {
        key(n).map(Extended::MsgKey)
    } else if let Some(n) = s.strip_prefix("psem:") {
        posix_name(s, n).map(Extended::PosixSem)
    } else if let Some(n) = s.strip_prefix("/sem.") {
        posix_name(s, n).map(Extended::PosixSem)
    } else if let Some(n) = s.strip_prefix("mq:") {
        posix_name(s, n).map(Extended::Mqueue)
    } else if let Some(n) = s.strip_prefix("memfd:") {
        match n
            .split_once(':')
            .map(|(p, f)| (p.parse::<i32>(), f.parse::<i32>()))
        {
            Some((Ok(p), Ok(f))) if p > 0 && f >= 0 => Ok(Extended::Memfd(p, f)),
            _ => Err(format!("'{s}': write memfd:PID:FD, such as memfd:1234:5")),
        }
    } else {
        return None;
    })
}

/// Finds the object an extended form names in `objects`.
pub fn find<'a>(objects: &'a [Object], e: &Extended) -> Option<&'a Object> {
    objects.iter().find(|o| match e {
        Extended::SemId(id) => o.kind == Kind::SysvSem && o.id == Some(*id),
        Extended::MsgId(id) => o.kind == Kind::SysvMsg && o.id == Some(*id),
        Extended::SemKey(k) => o.kind == Kind::SysvSem && o.key == Some(*k) && *k != 0,
        Extended::MsgKey(k) => o.kind == Kind::SysvMsg && o.key == Some(*k) && *k != 0,
        Extended::PosixSem(n) => {
            o.kind == Kind::PosixSem
                && !o.status.unlinked
                && o.name.as_deref() == Some(&format!("/{n}"))
        }
        Extended::Mqueue(n) => {
            o.kind == Kind::PosixMq && o.name.as_deref() == Some(&format!("/{n}"))
        }
        Extended::Memfd(pid, fd) => {
            o.kind == Kind::Memfd
                && o.users
                    .iter()
                    .any(|u| u.pid == *pid && u.how == Use::Fd(*fd))
        }
    })
}

/// The label of an extended form for messages.
pub fn extended_label(e: &Extended) -> String {
    match e {
        Extended::SemId(id) => format!("sem:{id}"),
        Extended::MsgId(id) => format!("msg:{id}"),
        Extended::SemKey(k) => format!("semkey:0x{:08x}", *k as u32),
        Extended::MsgKey(k) => format!("msgkey:0x{:08x}", *k as u32),
        Extended::PosixSem(n) => format!("psem:/{n}"),
        Extended::Mqueue(n) => format!("mq:/{n}"),
        Extended::Memfd(p, f) => format!("memfd:{p}:{f}"),
    }
}

/// Human `info` for any object from the inventory: `name value` lines.
pub fn print_object(o: &Object, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let j = to_json(o);
    writeln!(out, "{}", object_arg(o))?;
    writeln!(out, "  kind     {}", j.kind)?;
    if let Some(id) = j.id {
        writeln!(out, "  id       {id}")?;
    }
    if let Some(k) = &j.key_hex {
        writeln!(out, "  key      {k}")?;
    }
    if let Some(n) = &j.name {
        writeln!(out, "  name     {n}")?;
    }
    writeln!(out, "  owner    {}", crate::target::user_label(o.uid))?;
    writeln!(
        out,
        "  group    {}",
        shmkit::sys::users::group_name(o.gid)
            .map(|g| format!("{g} ({})", o.gid))
            .unwrap_or_else(|| o.gid.to_string())
    )?;
    writeln!(out, "  mode     {}", j.mode_octal)?;
    let size_label = if o.kind == Kind::SysvSem {
        "nsems"
    } else {
        "size"
    };
    writeln!(out, "  {size_label:<9}{}", o.size)?;
    if let Some(n) = o.nattch {
        writeln!(out, "  nattch   {n}")?;
    }
    if let Some(m) = o.messages {
        writeln!(out, "  msgs     {m}")?;
    }
    match (o.creator_pid, o.creator_alive) {
        (Some(p), Some(true)) => writeln!(out, "  creator  {p} (alive)")?,
        (Some(p), Some(false)) => writeln!(out, "  creator  {p} (gone)")?,
        (Some(p), None) => writeln!(out, "  creator  {p}")?,
        _ => writeln!(out, "  creator  unknown")?,
    }
    if !o.last_pids.is_empty() {
        let v: Vec<String> = o.last_pids.iter().map(|p| p.to_string()).collect();
        writeln!(out, "  lastpids {}", v.join(" "))?;
    }
    if let Some(t) = o.ctime {
        writeln!(out, "  ctime    {}", local_time(t))?;
    }
    if let Some(t) = o.atime {
        writeln!(out, "  used     {}", local_time(t))?;
    }
    writeln!(out, "  status   {}", status_words(o))?;
    if o.channel.is_some() {
        writeln!(out, "  channel  {}", channel_text(o))?;
    }
    if o.users.is_empty() {
        writeln!(out, "  users    none")?;
    } else {
        writeln!(out, "  users")?;
        for u in &o.users {
            let how = match &u.how {
                Use::Fd(fd) => format!("holds fd {fd}"),
                Use::Map { start, end, perms } => {
                    format!("maps {start:#x}-{end:#x} {perms}")
                }
            };
            let since = u
                .since
                .map(|t| format!(", running since {}", local_time(t)))
                .unwrap_or_default();
            writeln!(out, "    {} {} {how}{since}", u.pid, u.comm)?;
        }
    }
    Ok(())
}
