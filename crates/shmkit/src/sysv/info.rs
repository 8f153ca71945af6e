//! [`SegmentInfo`]: everything `shmctl(IPC_STAT)` says about a segment.

use std::time::{Duration, SystemTime};

use super::Key;
use crate::sys::sysv::{SHM_DEST, SHM_LOCKED};

/// A snapshot of a segment's `shmid_ds`, from [`crate::sysv::Segment::info`].
///
/// ```
/// use shmkit::sysv::{Key, Segment};
/// let seg = Segment::create(Key::PRIVATE, 4096)?;
/// let info = seg.info()?;
/// assert_eq!((info.size, info.mode, info.nattch, info.dest), (4096, 0o600, 0, false));
/// assert_eq!(info.cpid, std::process::id() as i32);
/// seg.remove()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The key; [`Key::PRIVATE`] for private segments and for removed ones still attached.
    pub key: Key,
    /// The id.
    pub id: i32,
    /// The size asked at creation, in bytes (attachments are rounded up to pages).
    pub size: usize,
    /// The permission bits (low 9 bits of `shm_perm.mode`).
    pub mode: u32,
    /// Removed while attached (`SHM_DEST`): destroyed at the last detach.
    pub dest: bool,
    /// Locked in memory (`SHM_LOCKED`).
    pub locked: bool,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
    /// Process that created it.
    pub cpid: i32,
    /// Process that last attached or detached.
    pub lpid: i32,
    /// Current number of attachments (mappings, not processes).
    pub nattch: u64,
    /// Last attach, in seconds since the epoch; 0 if never.
    pub atime: i64,
    /// Last detach, in seconds since the epoch; 0 if never.
    pub dtime: i64,
    /// Last change (creation, IPC_SET), in seconds since the epoch.
    pub ctime: i64,
}

impl SegmentInfo {
    /// Builds the snapshot from a raw `shmid_ds`.
    pub(crate) fn from_raw(id: i32, ds: &libc::shmid_ds) -> SegmentInfo {
        let mode = ds.shm_perm.mode as u32;
        SegmentInfo {
            key: Key::new(ds.shm_perm.__key),
            id,
            size: ds.shm_segsz,
            mode: mode & 0o777,
            dest: mode & SHM_DEST != 0,
            locked: mode & SHM_LOCKED != 0,
            uid: ds.shm_perm.uid,
            gid: ds.shm_perm.gid,
            cuid: ds.shm_perm.cuid,
            cgid: ds.shm_perm.cgid,
            cpid: ds.shm_cpid,
            lpid: ds.shm_lpid,
            nattch: ds.shm_nattch,
            atime: ds.shm_atime,
            dtime: ds.shm_dtime,
            ctime: ds.shm_ctime,
        }
    }

    /// A time field as a [`SystemTime`], `None` for 0 ("never").
    ///
    /// ```
    /// use shmkit::sysv::SegmentInfo;
    /// assert!(SegmentInfo::time(0).is_none());
    /// assert!(SegmentInfo::time(1).is_some());
    /// ```
    pub fn time(secs: i64) -> Option<SystemTime> {
        (secs > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64))
    }
}
