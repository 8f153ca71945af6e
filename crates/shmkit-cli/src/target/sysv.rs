//! System V segments (`id:N`, `key:K`, `ftok:PATH:PROJ`) for the object layer.

use std::io::{self, Write};

use serde::Serialize;
use shmkit::sysv::{Key, Segment, SegmentInfo};
use shmkit::{Error, Region};

use super::{Created, Result};
use crate::object::ObjectSpec;

/// What `info` shows about a System V segment: every field of `shmid_ds`.
#[derive(Clone, Debug, Serialize)]
pub struct SysvInfo {
    /// The id.
    pub id: i32,
    /// The key as `0x%08x` (`0x00000000` for private and removed segments).
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
    /// Removed while attached; destroyed at the last detach.
    pub dest: bool,
    /// Locked in memory.
    pub locked: bool,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Creator's uid.
    pub cuid: u32,
    /// Creator's gid.
    pub cgid: u32,
    /// Creator's pid.
    pub cpid: i32,
    /// Pid of the last attach or detach.
    pub lpid: i32,
    /// Number of attachments.
    pub nattch: u64,
    /// Last attach, seconds since the epoch; null if never.
    pub atime: Option<i64>,
    /// Last detach, seconds since the epoch; null if never.
    pub dtime: Option<i64>,
    /// Last change, seconds since the epoch.
    pub ctime: Option<i64>,
}

impl From<SegmentInfo> for SysvInfo {
    fn from(i: SegmentInfo) -> Self {
        let t = |s: i64| (s > 0).then_some(s);
        SysvInfo {
            id: i.id,
            key: i.key.to_string(),
            size: i.size as u64,
            mode: i.mode,
            dest: i.dest,
            locked: i.locked,
            uid: i.uid,
            gid: i.gid,
            cuid: i.cuid,
            cgid: i.cgid,
            cpid: i.cpid,
            lpid: i.lpid,
            nattch: i.nattch,
            atime: t(i.atime),
            dtime: t(i.dtime),
            ctime: t(i.ctime),
        }
    }
}

impl SysvInfo {
    /// Prints the human form.
    pub fn print_human(&self, out: &mut dyn Write) -> io::Result<()> {
        use super::{format_time, group_label, user_label};
        let mut flags = Vec::new();
        if self.dest {
            flags.push("dest: removed, destroyed at the last detach");
        }
        if self.locked {
            flags.push("locked");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        };
        let time = |t: Option<i64>| format_time(t.unwrap_or(0));
        writeln!(out, "id:{}  (System V shared memory)", self.id)?;
        writeln!(out, "  key      {}", self.key)?;
        writeln!(out, "  size     {} bytes", self.size)?;
        writeln!(out, "  mode     {:04o}{flags}", self.mode)?;
        writeln!(
            out,
            "  owner    {} / {}",
            user_label(self.uid),
            group_label(self.gid)
        )?;
        writeln!(
            out,
            "  creator  {} / {}",
            user_label(self.cuid),
            group_label(self.cgid)
        )?;
        writeln!(out, "  cpid     {}", self.cpid)?;
        writeln!(out, "  lpid     {}", self.lpid)?;
        writeln!(out, "  nattch   {}", self.nattch)?;
        writeln!(out, "  atime    {}", time(self.atime))?;
        writeln!(out, "  dtime    {}", time(self.dtime))?;
        writeln!(out, "  ctime    {}", time(self.ctime))
    }
}

/// The key a spec names (`key:K` or `ftok:PATH:PROJ`), or `None` for an id.
pub fn key_of(spec: &ObjectSpec) -> Result<Option<Key>> {
    match spec {
        ObjectSpec::SysvKey(k) => Ok(Some(Key::new(*k))),
        ObjectSpec::Ftok { path, proj } => Key::ftok(path, i32::from(*proj)).map(Some),
        _ => Ok(None),
    }
}

/// The existing segment a spec names.
pub fn segment(spec: &ObjectSpec) -> Result<Segment> {
    match spec {
        ObjectSpec::SysvId(id) => Segment::from_id(*id),
        _ => match key_of(spec)? {
            Some(key) => Segment::open(key),
            None => Err(Error::invalid(
                "resolve",
                spec,
                "not a System V object (use id:N, key:K or ftok:PATH:PROJ)",
            )),
        },
    }
}

/// Attaches the segment.
pub fn attach(spec: &ObjectSpec, writable: bool) -> Result<Box<dyn Region>> {
    let seg = segment(spec)?;
    let a = if writable {
        seg.attach()?
    } else {
        seg.attach_read_only()?
    };
    Ok(Box::new(a))
}

/// Creates (or opens) a segment; `None` or `key:0` makes a private one.
pub fn create(
    spec: Option<&ObjectSpec>,
    size: u64,
    mode: u32,
    exclusive: bool,
    hugepages: bool,
) -> Result<Created> {
    let key = match spec {
        None => Key::PRIVATE,
        Some(ObjectSpec::SysvId(id)) => {
            return Err(Error::invalid(
                "shmget",
                format!("id:{id}"),
                "an id names an existing segment; create by key:K or ftok:PATH:PROJ, \
                 or give no object for a private segment",
            ))
        }
        Some(s) => key_of(s)?.unwrap_or(Key::PRIVATE),
    };
    let size_usize = usize::try_from(size).map_err(|_| {
        Error::invalid("shmget", key, format!("size {size} does not fit in memory"))
    })?;
    let seg = Segment::options()
        .mode(mode)
        .exclusive(exclusive)
        .hugepages(hugepages)
        .create(key, size_usize)?;
    let info = seg.info()?;
    Ok(Created {
        object: format!("id:{}", seg.id()),
        id: Some(seg.id()),
        key: Some(info.key.to_string()),
        size: info.size as u64,
        mode: info.mode,
    })
}

/// Describes the segment.
pub fn info(spec: &ObjectSpec) -> Result<SysvInfo> {
    Ok(segment(spec)?.info()?.into())
}

/// Removes the segment.
pub fn remove(spec: &ObjectSpec) -> Result<()> {
    segment(spec)?.remove()
}

/// Sets the permission bits.
pub fn chmod(spec: &ObjectSpec, mode: u32) -> Result<()> {
    segment(spec)?.set_mode(mode)
}

/// Sets owner and/or group; the one not given stays.
pub fn chown(spec: &ObjectSpec, owner: Option<u32>, group: Option<u32>) -> Result<()> {
    let seg = segment(spec)?;
    let now = seg.info()?;
    seg.set_owner(owner.unwrap_or(now.uid), group.unwrap_or(now.gid))
}
