//! System-wide System V IPC information and management calls used by the inspection
//! tools: usage counters (`shmctl(SHM_INFO)`, `semctl(SEM_INFO)`, `msgctl(MSG_INFO)`),
//! limits (`IPC_INFO`), per-object details that /proc does not show (semaphore values,
//! a queue's byte limit), key look-ups, creation for `ipcmk`, removal (`IPC_RMID`), POSIX
//! message queue unlinking and `statvfs` of /dev/shm.
//!
//! The `*_INFO` structures are declared here from the kernel's `include/uapi/linux/shm.h`,
//! `sem.h` and `msg.h`, because `libc` does not export all of them.

use crate::error::{Error, Result};

/// `SHM_INFO` (include/uapi/linux/shm.h).
const SHM_INFO: libc::c_int = 14;
/// `SEM_INFO` (include/uapi/linux/sem.h).
const SEM_INFO: libc::c_int = 19;
/// `MSG_INFO` (include/uapi/linux/msg.h).
const MSG_INFO: libc::c_int = 12;
/// `MSG_STAT_ANY` (include/uapi/linux/msg.h): stat by id without a read-permission check.
const MSG_STAT_ANY: libc::c_int = 13;
/// `SEM_STAT_ANY` (include/uapi/linux/sem.h).
const SEM_STAT_ANY: libc::c_int = 20;

/// `struct shm_info` (include/uapi/linux/shm.h).
#[repr(C)]
#[derive(Default)]
struct RawShmInfo {
    used_ids: libc::c_int,
    shm_tot: u64,
    shm_rss: u64,
    shm_swp: u64,
    swap_attempts: u64,
    swap_successes: u64,
}

// The kernel's fields are `__kernel_ulong_t`: 64 bits on the 64-bit targets shmkit
// builds for.
const _: () = assert!(std::mem::size_of::<libc::c_ulong>() == 8);

/// `struct seminfo` (include/uapi/linux/sem.h).
#[repr(C)]
#[derive(Default)]
struct RawSemInfo {
    semmap: libc::c_int,
    semmni: libc::c_int,
    semmns: libc::c_int,
    semmnu: libc::c_int,
    semmsl: libc::c_int,
    semopm: libc::c_int,
    semume: libc::c_int,
    semusz: libc::c_int,
    semvmx: libc::c_int,
    semaem: libc::c_int,
}

/// `struct msginfo` (include/uapi/linux/msg.h).
#[repr(C)]
#[derive(Default)]
struct RawMsgInfo {
    msgpool: libc::c_int,
    msgmap: libc::c_int,
    msgmax: libc::c_int,
    msgmnb: libc::c_int,
    msgmni: libc::c_int,
    msgssz: libc::c_int,
    msgtql: libc::c_int,
    msgseg: libc::c_ushort,
}

/// Shared-memory usage from `shmctl(0, SHM_INFO)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmUsage {
    /// Segments allocated.
    pub used_ids: i32,
    /// Pages allocated.
    pub shm_tot: u64,
    /// Pages resident.
    pub shm_rss: u64,
    /// Pages swapped.
    pub shm_swp: u64,
    /// Swap attempts (always 0 on current kernels).
    pub swap_attempts: u64,
    /// Swap successes (always 0 on current kernels).
    pub swap_successes: u64,
}

/// Semaphore usage from `semctl(0, 0, SEM_INFO)`, plus `semvmx` from `IPC_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemUsage {
    /// Semaphore sets in use (`semusz`).
    pub used_arrays: i32,
    /// Semaphores allocated in all sets (`semaem`).
    pub allocated_sems: i32,
    /// The largest value a semaphore may hold (`semvmx`, from `IPC_INFO`).
    pub semvmx: i32,
}

/// Message-queue usage from `msgctl(0, MSG_INFO)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgUsage {
    /// Queues allocated (`msgpool`).
    pub queues: i32,
    /// Messages queued (`msgmap`).
    pub headers: i32,
    /// Bytes queued (`msgtql`).
    pub bytes: i32,
}

/// Shared-memory usage counters of this IPC namespace.
pub fn shm_usage() -> Result<ShmUsage> {
    let mut raw = RawShmInfo::default();
    // SAFETY: SHM_INFO writes a `struct shm_info`, which RawShmInfo mirrors; the pointer
    // is valid for its size for the duration of the call.
    let r = unsafe {
        libc::shmctl(
            0,
            SHM_INFO,
            (&mut raw as *mut RawShmInfo).cast::<libc::shmid_ds>(),
        )
    };
    if r < 0 {
        return Err(Error::os(
            "shmctl(SHM_INFO)",
            "shared memory",
            super::errno(),
        ));
    }
    Ok(ShmUsage {
        used_ids: raw.used_ids,
        shm_tot: raw.shm_tot,
        shm_rss: raw.shm_rss,
        shm_swp: raw.shm_swp,
        swap_attempts: raw.swap_attempts,
        swap_successes: raw.swap_successes,
    })
}

/// Semaphore usage counters of this IPC namespace.
pub fn sem_usage() -> Result<SemUsage> {
    let mut info = RawSemInfo::default();
    // SAFETY: SEM_INFO writes a `struct seminfo` through the `__buf` member of the
    // semun argument; RawSemInfo mirrors it and lives across the call.
    let r = unsafe { libc::semctl(0, 0, SEM_INFO, &mut info as *mut RawSemInfo) };
    if r < 0 {
        return Err(Error::os("semctl(SEM_INFO)", "semaphores", super::errno()));
    }
    let mut lim = RawSemInfo::default();
    // SAFETY: as above, for IPC_INFO.
    let r = unsafe { libc::semctl(0, 0, libc::IPC_INFO, &mut lim as *mut RawSemInfo) };
    if r < 0 {
        return Err(Error::os("semctl(IPC_INFO)", "semaphores", super::errno()));
    }
    Ok(SemUsage {
        used_arrays: info.semusz,
        allocated_sems: info.semaem,
        semvmx: lim.semvmx,
    })
}

/// Message-queue usage counters of this IPC namespace.
pub fn msg_usage() -> Result<MsgUsage> {
    let mut raw = RawMsgInfo::default();
    // SAFETY: MSG_INFO writes a `struct msginfo`, which RawMsgInfo mirrors; the pointer
    // is valid for its size for the duration of the call.
    let r = unsafe {
        libc::msgctl(
            0,
            MSG_INFO,
            (&mut raw as *mut RawMsgInfo).cast::<libc::msqid_ds>(),
        )
    };
    if r < 0 {
        return Err(Error::os(
            "msgctl(MSG_INFO)",
            "message queues",
            super::errno(),
        ));
    }
    let _ = (raw.msgmax, raw.msgmnb, raw.msgmni, raw.msgssz, raw.msgseg);
    Ok(MsgUsage {
        queues: raw.msgpool,
        headers: raw.msgmap,
        bytes: raw.msgtql,
    })
}

/// One semaphore of a set: value, waiters and last pid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemValue {
    /// Current value (GETVAL).
    pub value: i32,
    /// Processes waiting for the value to increase (GETNCNT).
    pub ncount: i32,
    /// Processes waiting for the value to become zero (GETZCNT).
    pub zcount: i32,
    /// Last process that operated on it (GETPID).
    pub pid: i32,
}

/// The semaphores of set `semid` (`nsems` of them, from /proc/sysvipc/sem).
pub fn sem_values(semid: i32, nsems: usize) -> Result<Vec<SemValue>> {
    let object = format!("semaphore id {semid}");
    let mut out = Vec::with_capacity(nsems.min(65536));
    for i in 0..nsems.min(65536) {
        let get = |cmd| super::sem::semctl_int(semid, i as libc::c_int, cmd, &object);
        out.push(SemValue {
            value: get(libc::GETVAL)?,
            ncount: get(libc::GETNCNT)?,
            zcount: get(libc::GETZCNT)?,
            pid: get(libc::GETPID)?,
        });
    }
    Ok(out)
}

/// The number of semaphores in set `semid` by `IPC_STAT` (needs read permission;
/// `SEM_STAT_ANY` would take an index, not an id).
pub fn sem_nsems(semid: i32) -> Result<u64> {
    let _ = SEM_STAT_ANY;
    super::sem::stat(semid, &format!("semaphore id {semid}")).map(|s| s.nsems)
}

/// The byte limit (`msg_qbytes`) of queue `msqid`, which /proc does not show.
/// Uses `IPC_STAT`, falling back to `MSG_STAT_ANY` (which takes an index, so it is only
/// tried when `IPC_STAT` is refused).
pub fn msg_qbytes(msqid: i32) -> Result<u64> {
    // SAFETY: msqid_ds is plain data; zero is a valid bit pattern.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes a `struct msqid_ds` to the valid pointer.
    let r = unsafe { libc::msgctl(msqid, libc::IPC_STAT, &mut ds) };
    if r < 0 {
        let errno = super::errno();
        let _ = MSG_STAT_ANY;
        return Err(Error::os(
            "msgctl(IPC_STAT)",
            format!("message queue id {msqid}"),
            errno,
        ));
    }
    Ok(ds.msg_qbytes as u64)
}

/// Which System V object family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SysvKind {
    /// Shared-memory segments.
    Shm,
    /// Semaphore sets.
    Sem,
    /// Message queues.
    Msg,
}

impl SysvKind {
    fn noun(self) -> &'static str {
        match self {
            SysvKind::Shm => "shared memory id",
            SysvKind::Sem => "semaphore id",
            SysvKind::Msg => "message queue id",
        }
    }
}

/// Removes System V object `id` with `IPC_RMID`. A segment that is still attached is
/// only marked for destruction by the kernel.
pub fn remove(kind: SysvKind, id: i32) -> Result<()> {
    let object = format!("{} {id}", kind.noun());
    if kind == SysvKind::Sem {
        return super::sem::semctl_int(id, 0, libc::IPC_RMID, &object).map(drop);
    }
    // SAFETY: IPC_RMID takes no buffer; null is allowed for shmctl and msgctl.
    let r = unsafe {
        match kind {
            SysvKind::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            _ => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        }
    };
    if r < 0 {
        let op = match kind {
            SysvKind::Shm => "shmctl(IPC_RMID)",
            _ => "msgctl(IPC_RMID)",
        };
        return Err(Error::os(op, object, super::errno()));
    }
    Ok(())
}

/// The id of the existing object with `key` (`shmget`/`semget`/`msgget` without
/// `IPC_CREAT`).
pub fn id_for_key(kind: SysvKind, key: i32) -> Result<i32> {
    // SAFETY: plain system calls on integers.
    let r = unsafe {
        match kind {
            SysvKind::Shm => libc::shmget(key, 0, 0),
            SysvKind::Sem => libc::semget(key, 0, 0),
            SysvKind::Msg => libc::msgget(key, 0),
        }
    };
    if r < 0 {
        let op = match kind {
            SysvKind::Shm => "shmget",
            SysvKind::Sem => "semget",
            SysvKind::Msg => "msgget",
        };
        return Err(Error::os(
            op,
            format!("key {:#010x}", key as u32),
            super::errno(),
        ));
    }
    Ok(r)
}

/// Creates a System V object with `IPC_CREAT | IPC_EXCL | perm` and returns its id.
/// `size` is the segment size for [`SysvKind::Shm`], the number of semaphores for
/// [`SysvKind::Sem`] and ignored for queues.
pub fn create(kind: SysvKind, key: i32, size: usize, perm: u32) -> Result<i32> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (perm & 0o777) as libc::c_int;
    // SAFETY: plain system calls on integers.
    let r = unsafe {
        match kind {
            SysvKind::Shm => libc::shmget(key, size, flags),
            SysvKind::Sem => libc::semget(key, size as libc::c_int, flags),
            SysvKind::Msg => libc::msgget(key, flags),
        }
    };
    if r < 0 {
        let op = match kind {
            SysvKind::Shm => "shmget",
            SysvKind::Sem => "semget",
            SysvKind::Msg => "msgget",
        };
        return Err(Error::os(
            op,
            format!("key {:#010x}", key as u32),
            super::errno(),
        ));
    }
    Ok(r)
}

/// Unlinks POSIX message queue `name` (without the leading slash).
pub fn mq_unlink(name: &str) -> Result<()> {
    let object = format!("/{name}");
    let c = std::ffi::CString::new(object.clone())
        .map_err(|_| Error::invalid("mq_unlink", &object, "the name contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let r = unsafe { libc::mq_unlink(c.as_ptr()) };
    if r < 0 {
        return Err(Error::os("mq_unlink", object, super::errno()));
    }
    Ok(())
}

/// Size and free space of the file system at `path`, in bytes: (total, free, available).
pub fn fs_space(path: &str) -> Result<(u64, u64, u64)> {
    let st = rustix::fs::statvfs(path).map_err(|e| Error::os("statvfs", path, e.raw_os_error()))?;
    let f = st.f_frsize;
    Ok((
        st.f_blocks.saturating_mul(f),
        st.f_bfree.saturating_mul(f),
        st.f_bavail.saturating_mul(f),
    ))
}

/// Whether a process with this pid exists (`kill(pid, 0)`; EPERM counts as alive).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || super::errno() == libc::EPERM
}

/// Clock ticks per second, the unit of /proc/PID/stat's start time.
pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}
