//! System V shared memory: thin wrappers over `shmget`, `shmat`, `shmdt` and `shmctl`,
//! plus the `stat` behind `ftok`.
//!
//! Each wrapper turns a failure into an [`Error`] naming the call and the object
//! (`key 0x4100c4a7` for `shmget`, `id 32769` for the others). Nothing here keeps state;
//! the safe types live in [`crate::sysv`].

use std::path::Path;
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// `SHM_STAT` from `<linux/shm.h>` (`include/uapi/linux/shm.h`): `shmctl` by index into
/// the kernel's table, returning the id. libc does not define it.
pub const SHM_STAT: i32 = 13;
/// `SHM_INFO` from `<linux/shm.h>`: system-wide usage (`struct shm_info`), returns the
/// highest used index. libc does not define it.
pub const SHM_INFO: i32 = 14;
/// `SHM_STAT_ANY` from `<linux/shm.h>` (Linux 4.17): like [`SHM_STAT`] without the read
/// permission check, as `/proc/sysvipc/shm` shows. libc does not define it.
pub const SHM_STAT_ANY: i32 = 15;
/// `SHM_DEST` from `<linux/shm.h>`: mode bit set once the segment is removed while
/// still attached; it is destroyed at the last detach.
pub const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED` from `<linux/shm.h>`: mode bit set while the segment is locked in memory.
pub const SHM_LOCKED: u32 = 0o2000;

/// The kernel's System V shared-memory limits, from `shmctl(0, IPC_INFO)`:
/// `struct shminfo` in `<linux/shm.h>`.
///
/// ```
/// let (limits, _highest_index) = shmkit::sys::sysv::limits()?;
/// assert!(limits.shmmax >= limits.shmmin);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmLimits {
    /// SHMMAX: the largest segment, in bytes.
    pub shmmax: libc::c_ulong,
    /// SHMMIN: the smallest segment, in bytes (always 1).
    pub shmmin: libc::c_ulong,
    /// SHMMNI: the most segments system-wide.
    pub shmmni: libc::c_ulong,
    /// SHMSEG: the most attachments per process (not enforced by Linux).
    pub shmseg: libc::c_ulong,
    /// SHMALL: the most pages all segments may use together.
    pub shmall: libc::c_ulong,
    unused: [libc::c_ulong; 4],
}

/// System-wide usage, from `shmctl(0, SHM_INFO)`: `struct shm_info` in `<linux/shm.h>`.
///
/// ```
/// let (usage, _highest_index) = shmkit::sys::sysv::usage()?;
/// assert!(usage.used_ids >= 0);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmUsage {
    /// Number of existing segments.
    pub used_ids: libc::c_int,
    /// Pages all segments take together.
    pub shm_tot: libc::c_ulong,
    /// Pages resident in memory.
    pub shm_rss: libc::c_ulong,
    /// Pages swapped out.
    pub shm_swp: libc::c_ulong,
    /// Unused by Linux (always 0).
    pub swap_attempts: libc::c_ulong,
    /// Unused by Linux (always 0).
    pub swap_successes: libc::c_ulong,
}

/// How errors name a key: `key 0x%08x`.
///
/// ```
/// assert_eq!(shmkit::sys::sysv::key_object(0x1234), "key 0x00001234");
/// ```
pub fn key_object(key: i32) -> String {
    format!("key 0x{:08x}", key as u32)
}

/// How errors name an id: `id N`.
///
/// ```
/// assert_eq!(shmkit::sys::sysv::id_object(7), "id 7");
/// ```
pub fn id_object(id: i32) -> String {
    format!("id {id}")
}

/// `shmget(key, size, flags)`: the id of the segment with `key`, created per `flags`
/// (`IPC_CREAT`, `IPC_EXCL`, `SHM_HUGETLB` and the permission bits).
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600)?;
/// assert_eq!(sysv::stat(id)?.shm_segsz, 64);
/// sysv::rmid(id)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn shmget(key: i32, size: usize, flags: i32) -> Result<i32> {
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id < 0 {
        Err(Error::os("shmget", key_object(key), super::errno()))
    } else {
        Ok(id)
    }
}

/// `shmat(id, addr, flags)` without `SHM_REMAP`: attaches the segment and returns where.
///
/// `addr` 0 lets the kernel choose. Otherwise the segment goes at `addr` (rounded down
/// to SHMLBA with `round`); because `SHM_REMAP` is never passed, the kernel refuses
/// (EINVAL) an address range that overlaps any existing mapping, so no memory of this
/// process can be replaced.
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600)?;
/// let p = sysv::shmat(id, 0, true, false)?;
/// // SAFETY: p is attached and nothing uses it afterwards.
/// unsafe { sysv::shmdt(p)? };
/// sysv::rmid(id)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn shmat(id: i32, addr: usize, read_only: bool, round: bool) -> Result<NonNull<u8>> {
    let mut flags = 0;
    if read_only {
        flags |= libc::SHM_RDONLY;
    }
    if round {
        flags |= libc::SHM_RND;
    }
    // SAFETY: without SHM_REMAP the kernel maps only into free address space (it checks
    // for an intersecting mapping and fails with EINVAL), so no existing Rust memory is
    // replaced; the returned pointer is only handed out raw.
    let p = unsafe { libc::shmat(id, addr as *const libc::c_void, flags) };
    if p as isize == -1 {
        return Err(Error::os("shmat", id_object(id), super::errno()));
    }
    NonNull::new(p.cast())
        .ok_or_else(|| Error::invalid("shmat", id_object(id), "the kernel returned a null address"))
}

/// `shmdt(addr)`: detaches an attachment.
///
/// # Safety
///
/// `addr` must be an address returned by [`shmat`] that is still attached, and nothing
/// may touch the attachment's memory afterwards.
/// See [`shmat`] for an example.
///
pub unsafe fn shmdt(addr: NonNull<u8>) -> Result<()> {
    // SAFETY: the caller guarantees a live attachment no longer in use.
    let rc = unsafe { libc::shmdt(addr.as_ptr().cast()) };
    if rc < 0 {
        Err(Error::os(
            "shmdt",
            format!("address {:p}", addr),
            super::errno(),
        ))
    } else {
        Ok(())
    }
}

fn zeroed_ds() -> libc::shmid_ds {
    // SAFETY: shmid_ds is a plain C struct of integers, for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

fn ctl(id: i32, cmd: i32, buf: *mut libc::shmid_ds, op: &'static str) -> Result<i32> {
    // SAFETY: `buf` is null or points to a live, writable struct of the size the command
    // reads or writes (shmid_ds, or a larger struct for the info commands).
    let rc = unsafe { libc::shmctl(id, cmd, buf) };
    if rc < 0 {
        let object = if cmd == SHM_STAT || cmd == SHM_STAT_ANY {
            format!("index {id}")
        } else {
            id_object(id)
        };
        let errno = super::errno();
        // The hints are keyed on the plain call name; keep them for the detailed op.
        let hint = Error::os("shmctl", &object, errno)
            .hint()
            .map(str::to_string);
        let e = Error::os(op, object, errno);
        Err(match hint {
            Some(h) => e.with_hint(h),
            None => e,
        })
    } else {
        Ok(rc)
    }
}

/// `shmctl(id, IPC_STAT)`: the segment's `shmid_ds` (needs read permission).
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o640)?;
/// assert_eq!(sysv::stat(id)?.shm_perm.mode & 0o777, 0o640);
/// sysv::rmid(id)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn stat(id: i32) -> Result<libc::shmid_ds> {
    let mut ds = zeroed_ds();
    ctl(id, libc::IPC_STAT, &mut ds, "shmctl(IPC_STAT)")?;
    Ok(ds)
}

/// `shmctl(id, IPC_SET)`: sets uid, gid and the low 9 mode bits from `ds` (owner,
/// creator or CAP_SYS_ADMIN only).
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600)?;
/// let mut ds = sysv::stat(id)?;
/// ds.shm_perm.mode = 0o644;
/// sysv::set(id, &ds)?;
/// assert_eq!(sysv::stat(id)?.shm_perm.mode & 0o777, 0o644);
/// sysv::rmid(id)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn set(id: i32, ds: &libc::shmid_ds) -> Result<()> {
    let mut copy = *ds;
    ctl(id, libc::IPC_SET, &mut copy, "shmctl(IPC_SET)").map(drop)
}

/// `shmctl(id, IPC_RMID)`: removes the segment, at once if nobody is attached, else at
/// the last detach (the segment is then marked dest and its key becomes 0).
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600)?;
/// sysv::rmid(id)?;
/// assert!(sysv::stat(id).is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn rmid(id: i32) -> Result<()> {
    ctl(id, libc::IPC_RMID, std::ptr::null_mut(), "shmctl(IPC_RMID)").map(drop)
}

/// `shmctl(id, SHM_LOCK)` or `SHM_UNLOCK`: keeps the pages from being swapped out.
///
/// ```
/// use shmkit::sys::sysv;
/// let id = sysv::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600)?;
/// sysv::lock(id, false)?; // unlocking needs no privilege
/// sysv::rmid(id)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn lock(id: i32, lock: bool) -> Result<()> {
    let (cmd, op) = if lock {
        (libc::SHM_LOCK, "shmctl(SHM_LOCK)")
    } else {
        (libc::SHM_UNLOCK, "shmctl(SHM_UNLOCK)")
    };
    ctl(id, cmd, std::ptr::null_mut(), op).map(drop)
}

/// `shmctl(index, SHM_STAT)` or `SHM_STAT_ANY` (with `any`): the segment at `index` of
/// the kernel's table, as `(id, shmid_ds)`. Used to enumerate segments.
///
/// ```
/// use shmkit::sys::sysv;
/// let (_, highest) = sysv::usage()?;
/// let ids: Vec<i32> = (0..=highest)
///     .filter_map(|i| sysv::stat_index(i, true).ok().map(|(id, _)| id))
///     .collect();
/// # let _ = ids;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn stat_index(index: i32, any: bool) -> Result<(i32, libc::shmid_ds)> {
    let mut ds = zeroed_ds();
    let cmd = if any { SHM_STAT_ANY } else { SHM_STAT };
    let id = ctl(index, cmd, &mut ds, "shmctl(SHM_STAT)")?;
    Ok((id, ds))
}

/// A buffer for the info commands, which write a struct other than `shmid_ds`: big
/// and aligned enough for `shmid_ds`, `shminfo` and `shm_info`.
#[repr(C, align(16))]
struct InfoBuf([u8; 256]);

const _: () = assert!(std::mem::size_of::<libc::shmid_ds>() <= 256);
const _: () = assert!(std::mem::size_of::<ShmLimits>() <= 256);
const _: () = assert!(std::mem::size_of::<ShmUsage>() <= 256);

fn info_ctl<T: Copy>(cmd: i32, op: &'static str) -> Result<(T, i32)> {
    let mut buf = InfoBuf([0; 256]);
    let max = ctl(0, cmd, buf.0.as_mut_ptr().cast(), op)?;
    // SAFETY: the buffer is 16-byte aligned and larger than T (asserted above); T is a
    // repr(C) struct of integers mirroring what the kernel wrote, valid for any bits.
    let value = unsafe { std::ptr::read(buf.0.as_ptr().cast::<T>()) };
    Ok((value, max))
}

/// `shmctl(0, IPC_INFO)`: the limits, with the highest used index.
///
/// ```
/// assert!(shmkit::sys::sysv::limits()?.0.shmmni > 0);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn limits() -> Result<(ShmLimits, i32)> {
    info_ctl::<ShmLimits>(libc::IPC_INFO, "shmctl(IPC_INFO)")
}

/// `shmctl(0, SHM_INFO)`: system-wide usage, with the highest used index.
///
/// ```
/// assert!(shmkit::sys::sysv::usage()?.0.used_ids >= 0);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn usage() -> Result<(ShmUsage, i32)> {
    info_ctl::<ShmUsage>(SHM_INFO, "shmctl(SHM_INFO)")
}

/// The `(st_dev, st_ino)` of `path` (following symbolic links, as ftok's stat does).
///
/// ```
/// let (_dev, ino) = shmkit::sys::sysv::dev_ino(std::path::Path::new("/"))?;
/// assert!(ino > 0);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn dev_ino(path: &Path) -> Result<(u64, u64)> {
    let st =
        rustix::fs::stat(path).map_err(|e| Error::os("stat", path.display(), e.raw_os_error()))?;
    Ok((st.st_dev, st.st_ino))
}
