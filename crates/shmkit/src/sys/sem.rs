//! System V semaphore sets: semget, semop/semtimedop, semctl.
//!
//! `semtimedop` is called through `syscall(SYS_semtimedop)` so that every libc works;
//! `semctl`'s fourth argument (`union semun`) is passed as the one member the command
//! uses, which is how the C ABI passes a union through varargs.

use std::time::Duration;

use crate::error::{Error, Result};

/// One operation of [`semop`]: `sem_num`, `sem_op`, `sem_flg` (IPC_NOWAIT, SEM_UNDO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemOp {
    /// Index of the semaphore in the set.
    pub num: u16,
    /// Added to the value (negative: wait until it can be subtracted; 0: wait for zero).
    pub op: i16,
    /// `IPC_NOWAIT` and/or `SEM_UNDO`.
    pub flags: i16,
}

/// What IPC_STAT reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemStat {
    /// The key.
    pub key: i32,
    /// Owner uid and gid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub cuid: u32,
    /// Creator gid.
    pub cgid: u32,
    /// Mode bits (low 9 bits the permissions).
    pub mode: u32,
    /// Number of semaphores.
    pub nsems: u64,
    /// Time of the last semop, seconds since the epoch (0: never).
    pub otime: i64,
    /// Time of the last change, seconds since the epoch.
    pub ctime: i64,
}

fn key_name(key: i32) -> String {
    if key == libc::IPC_PRIVATE {
        "key IPC_PRIVATE".into()
    } else {
        format!("key {:#010x}", key as u32)
    }
}

/// semget(key, nsems, flags | perm).
pub fn semget(key: i32, nsems: i32, flags: i32) -> Result<i32> {
    // SAFETY: semget takes plain integers.
    let id = unsafe { libc::semget(key, nsems, flags) };
    if id < 0 {
        Err(Error::os("semget", key_name(key), super::errno()))
    } else {
        Ok(id)
    }
}

/// semtimedop(id, ops, timeout): all of `ops` atomically; `None` waits forever.
pub fn semop(id: i32, ops: &[SemOp], timeout: Option<Duration>, object: &str) -> Result<()> {
    let mut bufs: Vec<libc::sembuf> = ops
        .iter()
        .map(|o| libc::sembuf {
            sem_num: o.num,
            sem_op: o.op,
            sem_flg: o.flags,
        })
        .collect();
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `bufs` holds bufs.len() initialised sembufs that live across the call; the
    // timespec pointer is null or points to a live timespec.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_semtimedop,
            id as libc::c_long,
            bufs.as_mut_ptr(),
            bufs.len() as libc::size_t,
            tsp,
        )
    };
    if rc < 0 {
        let op = if timeout.is_some() {
            "semtimedop"
        } else {
            "semop"
        };
        Err(Error::os(op, object, super::errno()))
    } else {
        Ok(())
    }
}

/// The operation name errors give for semctl command `cmd`: `semctl(GETVAL)` and so on.
fn semctl_op(cmd: libc::c_int) -> &'static str {
    match cmd {
        libc::GETVAL => "semctl(GETVAL)",
        libc::GETPID => "semctl(GETPID)",
        libc::GETNCNT => "semctl(GETNCNT)",
        libc::GETZCNT => "semctl(GETZCNT)",
        libc::GETALL => "semctl(GETALL)",
        libc::SETVAL => "semctl(SETVAL)",
        libc::SETALL => "semctl(SETALL)",
        libc::IPC_STAT => "semctl(IPC_STAT)",
        libc::IPC_SET => "semctl(IPC_SET)",
        libc::IPC_RMID => "semctl(IPC_RMID)",
        _ => "semctl",
    }
}

fn check(rc: libc::c_int, cmd: libc::c_int, object: &str) -> Result<libc::c_int> {
    if rc < 0 {
        Err(Error::os(semctl_op(cmd), object, super::errno()))
    } else {
        Ok(rc)
    }
}

/// semctl with an integer-result command without argument (GETVAL, GETPID, GETNCNT,
/// GETZCNT, IPC_RMID).
pub fn semctl_int(id: i32, num: i32, cmd: i32, object: &str) -> Result<i32> {
    // SAFETY: these commands ignore the fourth argument; we pass a zero int.
    let rc = unsafe { libc::semctl(id, num, cmd, 0 as libc::c_int) };
    check(rc, cmd, object)
}

/// semctl(SETVAL).
pub fn setval(id: i32, num: i32, value: i32, object: &str) -> Result<()> {
    // SAFETY: SETVAL reads semun.val, an int, passed as such.
    let rc = unsafe { libc::semctl(id, num, libc::SETVAL, value as libc::c_int) };
    check(rc, libc::SETVAL, object).map(drop)
}

/// Checks that a buffer of `len` values matches the number of semaphores of set `id`,
/// which GETALL writes and SETALL reads whatever the buffer's length.
fn check_len(id: i32, len: usize, cmd: libc::c_int, object: &str) -> Result<()> {
    let nsems = stat(id, object)?.nsems;
    if nsems != len as u64 {
        return Err(Error::invalid(
            semctl_op(cmd),
            object,
            format!("the set has {nsems} semaphores, not {len}"),
        ));
    }
    Ok(())
}

/// semctl(GETALL) into `out`, which must have the set's number of semaphores (checked:
/// an error otherwise).
pub fn getall(id: i32, out: &mut [u16], object: &str) -> Result<()> {
    check_len(id, out.len(), libc::GETALL, object)?;
    // SAFETY: GETALL writes nsems unsigned shorts to semun.array; `out` has exactly nsems
    // (checked just above). A set's size never changes; only if the set were removed and
    // its id reused by a larger set in between could the count differ, which needs the
    // id's 16-bit sequence number to wrap around within these two calls.
    let rc = unsafe { libc::semctl(id, 0, libc::GETALL, out.as_mut_ptr()) };
    check(rc, libc::GETALL, object).map(drop)
}

/// semctl(SETALL) from `values`, which must have the set's number of semaphores
/// (checked: an error otherwise).
pub fn setall(id: i32, values: &[u16], object: &str) -> Result<()> {
    check_len(id, values.len(), libc::SETALL, object)?;
    // SAFETY: SETALL reads nsems unsigned shorts from semun.array; `values` has exactly
    // nsems (checked just above; see `getall` for the id-reuse caveat).
    let rc = unsafe { libc::semctl(id, 0, libc::SETALL, values.as_ptr()) };
    check(rc, libc::SETALL, object).map(drop)
}

/// semctl(IPC_STAT).
pub fn stat(id: i32, object: &str) -> Result<SemStat> {
    // SAFETY: semid_ds is plain old data; all zeroes is a valid value.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one semid_ds to semun.buf, which points to `ds`.
    let rc = unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
    check(rc, libc::IPC_STAT, object)?;
    Ok(SemStat {
        key: ds.sem_perm.__key,
        uid: ds.sem_perm.uid,
        gid: ds.sem_perm.gid,
        cuid: ds.sem_perm.cuid,
        cgid: ds.sem_perm.cgid,
        mode: ds.sem_perm.mode as u32,
        nsems: ds.sem_nsems as u64,
        otime: ds.sem_otime as i64,
        ctime: ds.sem_ctime as i64,
    })
}

/// semctl(IPC_SET): new owner uid/gid and permission bits.
pub fn set(id: i32, uid: u32, gid: u32, mode: u32, object: &str) -> Result<()> {
    // SAFETY: semid_ds is plain old data; all zeroes is a valid value.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    ds.sem_perm.uid = uid;
    ds.sem_perm.gid = gid;
    ds.sem_perm.mode = (mode & 0o777) as _;
    // SAFETY: IPC_SET reads uid, gid and mode from the semid_ds semun.buf points to.
    let rc = unsafe { libc::semctl(id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) };
    check(rc, libc::IPC_SET, object).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set of 3 semaphores, each 7, removed on drop.
    struct Set(i32);
    impl Drop for Set {
        fn drop(&mut self) {
            let _ = semctl_int(self.0, 0, libc::IPC_RMID, "test set");
        }
    }

    #[test]
    fn getall_and_setall_refuse_a_buffer_of_the_wrong_length() {
        let set = Set(semget(libc::IPC_PRIVATE, 3, libc::IPC_CREAT | 0o600).unwrap());
        setall(set.0, &[7, 7, 7], "test set").unwrap();
        // A one-value buffer with room behind it: GETALL must not write past its end.
        let mut v: Vec<u16> = vec![0xaaaa; 8];
        v.truncate(1);
        let e = getall(set.0, &mut v, "test set").unwrap_err();
        assert!(e.to_string().contains("3 semaphores, not 1"), "{e}");
        // SAFETY: the 8 values were initialised above; truncate kept the allocation.
        unsafe { v.set_len(8) };
        assert_eq!(v, [0xaaaa; 8], "nothing written");
        assert!(setall(set.0, &[1], "test set").is_err());
        let mut all = [0u16; 3];
        getall(set.0, &mut all, "test set").unwrap();
        assert_eq!(all, [7, 7, 7], "nothing changed");
    }
}
