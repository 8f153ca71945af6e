//! Who maps or holds what: one pass over `/proc/PID/maps` and `/proc/PID/fd` of every
//! process, keeping only the lines and links that name IPC objects.
//!
//! - System V segments appear in maps as `/SYSV%08x (deleted)` (the key in hex), with the
//!   inode column holding the shmid.
//! - POSIX objects appear as `/dev/shm/NAME` (named semaphores as `/dev/shm/sem.NAME`),
//!   with ` (deleted)` once unlinked.
//! - memfds appear as `/memfd:NAME (deleted)` in maps and fd links.
//! - POSIX message queues are held through fds linked to `/dev/mqueue/NAME` where the
//!   queue file system is mounted.
//!
//! Processes that vanish during the scan, or whose files this user may not read, are
//! skipped silently: the scan is a snapshot of what could be seen.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

/// What a process uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A System V segment, by shmid.
    SysvShm(i32),
    /// A file in /dev/shm (object or `sem.` semaphore) by name and inode; `deleted`
    /// when the kernel marks the path unlinked.
    DevShm {
        /// The file name inside /dev/shm.
        name: String,
        /// The inode number.
        inode: u64,
        /// Unlinked but still in use.
        deleted: bool,
    },
    /// A memfd by name (without the `memfd:` prefix) and inode.
    Memfd {
        /// The name given to memfd_create.
        name: String,
        /// The inode number, which tells memfds of the same name apart.
        inode: u64,
    },
    /// A POSIX message queue by name, held through an fd.
    Mqueue(String),
}

/// How a process uses a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Use {
    /// A mapping at `start..end` with the maps permission string (`rw-s`).
    Map {
        /// First address.
        start: u64,
        /// One past the last address.
        end: u64,
        /// Permissions as in /proc/PID/maps.
        perms: String,
    },
    /// An open file descriptor.
    Fd(i32),
}

/// One process that uses something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Process id.
    pub pid: i32,
    /// Command name from /proc/PID/comm.
    pub comm: String,
    /// How it uses the object.
    pub how: Use,
    /// When the process started (seconds since the epoch): the mapping or fd is at
    /// most this old, which is as much as the kernel tells.
    pub since: Option<i64>,
}

/// The result of one pass over /proc.
#[derive(Clone, Debug, Default)]
pub struct ProcScan {
    /// Users of every target seen.
    pub uses: HashMap<Target, Vec<User>>,
}

impl ProcScan {
    /// Users of `t` (empty when nobody uses it).
    pub fn users(&self, t: &Target) -> &[User] {
        self.uses.get(t).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Seconds since the epoch at boot, from /proc/stat's `btime`.
pub fn boot_time() -> Option<i64> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// When process `pid` started, in seconds since the epoch (field 22 of
/// /proc/PID/stat, in clock ticks since boot), or `None` if it does not exist.
pub fn process_start(pid: i32, boot: Option<i64>) -> Option<i64> {
    if pid <= 0 {
        return None;
    }
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    // Field 3 (state) is the first after ')'; starttime is field 22.
    let ticks: u64 = rest.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let hz = crate::sys::ipcinfo::clock_ticks().max(1);
    Some(boot? + (ticks / hz) as i64)
}

/// The command name of `pid`, or an empty string.
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` still exists (a kill(pid, 0) equivalent).
pub fn alive(pid: i32) -> bool {
    crate::sys::ipcinfo::pid_alive(pid)
}

/// Parses one /proc/PID/maps line into a target and its mapping, if it names one.
pub fn parse_maps_line(line: &str) -> Option<(Target, Use)> {
    // address perms offset dev inode path
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?;
    let _offset = it.next()?;
    let _dev = it.next()?;
    let inode: u64 = it.next()?.parse().ok()?;
    let path = it.next()?.trim_start();
    let (a, b) = range.split_once('-')?;
    let start = u64::from_str_radix(a, 16).ok()?;
    let end = u64::from_str_radix(b, 16).ok()?;
    let how = Use::Map {
        start,
        end,
        perms: perms.to_string(),
    };
    let target = classify(path, inode)?;
    Some((target, how))
}

/// What a maps path or fd link names.
fn classify(path: &str, inode: u64) -> Option<Target> {
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    if path.starts_with("/SYSV") {
        return i32::try_from(inode).ok().map(Target::SysvShm);
    }
    if let Some(name) = path.strip_prefix("/dev/shm/") {
        return Some(Target::DevShm {
            name: name.to_string(),
            inode,
            deleted,
        });
    }
    if let Some(name) = path.strip_prefix("/memfd:") {
        return Some(Target::Memfd {
            name: name.to_string(),
            inode,
        });
    }
    if let Some(name) = path.strip_prefix("/dev/mqueue/") {
        return Some(Target::Mqueue(name.to_string()));
    }
    None
}

/// The device of the POSIX message-queue file system, if it is mounted at `dir`.
fn mqueue_dev(dir: &str) -> Option<u64> {
    let d = fs::metadata(dir).ok()?.dev();
    let parent = std::path::Path::new(dir).parent()?;
    let p = fs::metadata(parent).ok()?.dev();
    (d != p).then_some(d)
}

/// Scans every process once. Message-queue holders are recognised when the queue file
/// system is mounted at /dev/mqueue: an fd of a queue links to `/NAME` on its device.
pub fn scan() -> ProcScan {
    scan_with("/dev/mqueue")
}

/// [`scan`] with the queue file system looked for at `mqueue_dir`.
pub fn scan_with(mqueue_dir: &str) -> ProcScan {
    let mut out = ProcScan::default();
    let mq_dev = mqueue_dev(mqueue_dir);
    let boot = boot_time();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let mut found: Vec<(Target, Use)> = Vec::new();
        if let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) {
            for line in maps.lines() {
                // Cheap filter before parsing.
                if line.contains("/SYSV") || line.contains("/dev/shm/") || line.contains("/memfd:")
                {
                    found.extend(parse_maps_line(line));
                }
            }
        }
        let fd_dir = format!("/proc/{pid}/fd");
        if let Ok(fds) = fs::read_dir(&fd_dir) {
            for fd in fds.flatten() {
                let Ok(link) = fs::read_link(fd.path()) else {
                    continue;
                };
                let Some(link) = link.to_str() else { continue };
                // A queue's fd links to "/NAME" (its path inside the queue file system).
                let maybe_mq = mq_dev.is_some()
                    && link.len() > 1
                    && link.starts_with('/')
                    && !link.starts_with("/memfd:")
                    && !link[1..].contains('/');
                if !(link.starts_with("/dev/shm/")
                    || link.starts_with("/memfd:")
                    || link.starts_with("/dev/mqueue/")
                    || maybe_mq)
                {
                    continue;
                }
                let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                // stat through the magic link gives the object's own inode.
                let md = fs::metadata(fd.path()).ok();
                let inode = md.as_ref().map(|m| m.ino()).unwrap_or(0);
                if maybe_mq {
                    if md.map(|m| m.dev()) == mq_dev {
                        found.push((Target::Mqueue(link[1..].to_string()), Use::Fd(n)));
                    }
                    continue;
                }
                if let Some(t) = classify(link, inode) {
                    found.push((t, Use::Fd(n)));
                }
            }
        }
        if found.is_empty() {
            continue;
        }
        let comm = comm(pid);
        let since = process_start(pid, boot);
        for (t, how) in found {
            out.uses.entry(t).or_default().push(User {
                pid,
                comm: comm.clone(),
                how,
                since,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_maps_lines() {
        let l = "7f0000000000-7f0000001000 rw-s 00000000 00:01 32769                      /SYSV4100c4a7 (deleted)";
        let (t, u) = parse_maps_line(l).unwrap();
        assert_eq!(t, Target::SysvShm(32769));
        assert!(matches!(
            u,
            Use::Map {
                start: 0x7f0000000000,
                end: 0x7f0000001000,
                ..
            }
        ));
        let l = "7f0000000000-7f0000001000 rw-s 00000000 00:1a 77 /dev/shm/my obj (deleted)";
        let (t, _) = parse_maps_line(l).unwrap();
        assert_eq!(
            t,
            Target::DevShm {
                name: "my obj".into(),
                inode: 77,
                deleted: true
            }
        );
        let l = "7f0000000000-7f0000001000 rw-s 00000000 00:01 12 /memfd:ring (deleted)";
        assert!(matches!(
            parse_maps_line(l).unwrap().0,
            Target::Memfd { inode: 12, .. }
        ));
        let l = "7f0000000000-7f0000001000 r-xp 00000000 08:01 12 /usr/lib/libc.so.6";
        assert!(parse_maps_line(l).is_none());
    }

    #[test]
    fn own_start_time_is_known() {
        let me = std::process::id() as i32;
        let start = process_start(me, boot_time()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(start <= now + 1 && start > now - 86400 * 365);
    }
}
