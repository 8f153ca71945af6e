//! The object layer every command uses: it resolves an [`ObjectSpec`] to the library's
//! System V or POSIX objects and performs one operation on it.
//!
//! Commands call only the functions here, never `shmkit::sysv` or `shmkit::posix`
//! directly, so that every command works for every kind of object. The System V arms
//! live in [`sysv`], the POSIX arms in [`posix`]. Errors are the library's
//! [`shmkit::Error`], which the commands print with [`crate::report::object_error`].

pub mod posix;
pub mod sysv;

use std::io::{self, Write};

use serde::Serialize;
use shmkit::Region;

use crate::object::ObjectSpec;

/// Result of the object layer: the library's error, naming the operation and reason.
pub type Result<T> = std::result::Result<T, shmkit::Error>;

/// What `create` made (or opened, when not exclusive).
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    /// How to name the object in later commands: `id:N` or `/NAME`.
    pub object: String,
    /// The System V id, if it is a System V segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// The System V key as `0x%08x`, if it is a System V segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The size in bytes.
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
}

impl Created {
    /// One line for humans and scripts: `id:32769 key:0x5348abcd size 4096 mode 0600`.
    pub fn line(&self) -> String {
        let mut s = self.object.clone();
        if let Some(k) = &self.key {
            s.push_str(&format!(" key:{k}"));
        }
        s.push_str(&format!(" size {} mode {:04o}", self.size, self.mode));
        s
    }
}

/// What `info` shows about one object; serialised for `--json` with a `kind` field.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Info {
    /// A System V segment.
    Sysv(sysv::SysvInfo),
    /// A POSIX object.
    Posix(posix::PosixInfo),
}

impl Info {
    /// Prints the human form: a heading line with the object, then `name value` lines.
    pub fn print_human(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Info::Sysv(i) => i.print_human(out),
            Info::Posix(i) => i.print_human(out),
        }
    }
}

/// Attaches or maps the object, read-write or read-only.
pub fn attach(spec: &ObjectSpec, writable: bool) -> Result<Box<dyn Region>> {
    match spec {
        ObjectSpec::Posix(name) => posix::attach(name, writable),
        _ => sysv::attach(spec, writable),
    }
}

/// Creates the object with `size` bytes and permission bits `mode`; with `exclusive`
/// false, opens an existing one instead. `spec` `None` makes a private System V segment.
pub fn create(
    spec: Option<&ObjectSpec>,
    size: u64,
    mode: u32,
    exclusive: bool,
    hugepages: bool,
) -> Result<Created> {
    match spec {
        Some(ObjectSpec::Posix(name)) => posix::create(name, size, mode, exclusive),
        _ => sysv::create(spec, size, mode, exclusive, hugepages),
    }
}

/// Everything known about the object.
pub fn info(spec: &ObjectSpec) -> Result<Info> {
    match spec {
        ObjectSpec::Posix(name) => posix::info(name).map(Info::Posix),
        _ => sysv::info(spec).map(Info::Sysv),
    }
}

/// Removes the object (System V: IPC_RMID, effective at the last detach; POSIX: unlink).
pub fn remove(spec: &ObjectSpec) -> Result<()> {
    match spec {
        ObjectSpec::Posix(name) => posix::remove(name),
        _ => sysv::remove(spec),
    }
}

/// Sets the permission bits (0..=0o777).
pub fn chmod(spec: &ObjectSpec, mode: u32) -> Result<()> {
    match spec {
        ObjectSpec::Posix(name) => posix::chmod(name, mode),
        _ => sysv::chmod(spec, mode),
    }
}

/// Sets the owner and/or the group (numbers; see [`user_id`] and [`group_id`]).
pub fn chown(spec: &ObjectSpec, owner: Option<u32>, group: Option<u32>) -> Result<()> {
    match spec {
        ObjectSpec::Posix(name) => posix::chown(name, owner, group),
        _ => sysv::chown(spec, owner, group),
    }
}

/// A user name or number as a uid.
pub fn user_id(s: &str) -> std::result::Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    shmkit::sys::users::uid_by_name(s).ok_or_else(|| format!("no user named '{s}'"))
}

/// A group name or number as a gid.
pub fn group_id(s: &str) -> std::result::Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    shmkit::sys::users::gid_by_name(s).ok_or_else(|| format!("no group named '{s}'"))
}

/// `name (uid)` for humans, or just the number when it has no name.
pub fn user_label(uid: u32) -> String {
    match shmkit::sys::users::user_name(uid) {
        Some(n) => format!("{n} ({uid})"),
        None => uid.to_string(),
    }
}

/// `name (gid)` for humans, or just the number when it has no name.
pub fn group_label(gid: u32) -> String {
    match shmkit::sys::users::group_name(gid) {
        Some(n) => format!("{n} ({gid})"),
        None => gid.to_string(),
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`, or `never` for 0.
pub fn format_time(secs: i64) -> String {
    if secs <= 0 {
        return "never".into();
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "never");
        assert_eq!(format_time(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
