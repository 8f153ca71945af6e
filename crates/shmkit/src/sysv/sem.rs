//! System V semaphore sets: [`SemSet`], created or opened by key (an ftok key, a fixed
//! key, or IPC_PRIVATE), with several operations applied atomically in one call
//! ([`SemSet::op`]), SEM_UNDO, IPC_NOWAIT and timeouts, and the semctl commands.
//!
//! Keys are [`Key`]s (a plain `i32` converts); values are 0..=[`SEMVMX`].

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::sys::sem as sys;
pub use crate::sys::sem::{SemOp, SemStat};
use crate::sysv::Key;

/// The largest value a semaphore can hold (Linux SEMVMX, include/uapi/linux/sem.h).
pub const SEMVMX: i32 = 32767;
/// The most semaphores in one set by default (SEMMSL, include/uapi/linux/sem.h).
pub const SEMMSL_DEFAULT: i32 = 32000;
/// [`SemOp::flags`]: fail with `WouldBlock` instead of waiting.
pub const IPC_NOWAIT: i16 = libc::IPC_NOWAIT as i16;
/// [`SemOp::flags`]: undo the operation when the process exits.
pub const SEM_UNDO: i16 = libc::SEM_UNDO as i16;

/// How [`SemSet::get`] creates or opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Open an existing set.
    Open,
    /// Create a new set, failing if the key exists.
    Exclusive,
    /// Create it unless it exists.
    IfMissing,
}

/// A System V semaphore set, by id. It is a handle only: dropping it removes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemSet {
    id: i32,
    key: i32,
    object: String,
}

impl SemSet {
    /// Creates or opens the set for `key` with `nsems` semaphores (0 to open any size)
    /// and permission bits `mode`.
    pub fn get(key: impl Into<Key>, nsems: i32, create: Create, mode: u32) -> Result<SemSet> {
        let key = key.into().raw();
        let object = key_object(key);
        if !(0..=SEMMSL_DEFAULT).contains(&nsems) {
            return Err(Error::invalid(
                "semget",
                &object,
                format!("{nsems} semaphores is outside 0..={SEMMSL_DEFAULT}"),
            ));
        }
        if create != Create::Open && nsems == 0 {
            return Err(Error::invalid(
                "semget",
                &object,
                "a new set needs at least one semaphore",
            ));
        }
        let flags = (mode & 0o777) as i32
            | match create {
                Create::Open => 0,
                Create::Exclusive => libc::IPC_CREAT | libc::IPC_EXCL,
                Create::IfMissing => libc::IPC_CREAT,
            };
        let id = sys::semget(key, nsems, flags)?;
        Ok(SemSet {
            id,
            key,
            object: format!("semaphore set {id} ({object})"),
        })
    }

    /// A new private set (IPC_PRIVATE) with `nsems` semaphores, all 0.
    pub fn private(nsems: i32, mode: u32) -> Result<SemSet> {
        Self::get(Key::PRIVATE, nsems, Create::Exclusive, mode)
    }

    /// A handle for an existing id (checked with IPC_STAT).
    pub fn from_id(id: i32) -> Result<SemSet> {
        let object = format!("semaphore set {id}");
        let st = sys::stat(id, &object)?;
        Ok(SemSet {
            id,
            key: st.key,
            object,
        })
    }

    /// The id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was opened by (or IPC_STAT reported).
    pub fn key(&self) -> Key {
        Key::new(self.key)
    }

    /// Applies `ops` atomically: all or none. With a timeout, a wait that lasts longer
    /// fails with [`ErrorKind::TimedOut`] (semtimedop's EAGAIN); an IPC_NOWAIT op that
    /// would block fails with [`ErrorKind::WouldBlock`].
    pub fn op(&self, ops: &[SemOp], timeout: Option<Duration>) -> Result<()> {
        if ops.is_empty() {
            return Err(Error::invalid("semop", &self.object, "no operation given"));
        }
        let nowait = ops.iter().all(|o| o.flags & IPC_NOWAIT != 0);
        loop {
            match sys::semop(self.id, ops, timeout, &self.object) {
                Err(e) if e.kind() == ErrorKind::Interrupted && timeout.is_none() => continue,
                Err(e) if e.errno() == Some(libc::EAGAIN) && !nowait && timeout.is_some() => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "semtimedop",
                        &self.object,
                        format!("not possible within {:?}", timeout.unwrap_or_default()),
                    ))
                }
                Err(e) if e.errno() == Some(libc::EAGAIN) => {
                    return Err(e.with_hint("the operation would have to wait (IPC_NOWAIT)"))
                }
                Err(e) if e.errno() == Some(libc::EFBIG) => {
                    return Err(e.with_hint("a semaphore number is past the end of the set"))
                }
                Err(e) if e.errno() == Some(libc::ERANGE) => {
                    return Err(e.with_hint(format!("a value would exceed SEMVMX {SEMVMX}")))
                }
                other => return other,
            }
        }
    }

    /// Adds `n` (may be negative) to semaphore `num`, waiting as semop does.
    pub fn add(&self, num: u16, n: i16, flags: i16, timeout: Option<Duration>) -> Result<()> {
        self.op(&[SemOp { num, op: n, flags }], timeout)
    }

    /// GETVAL.
    pub fn value(&self, num: u16) -> Result<i32> {
        sys::semctl_int(self.id, num as i32, libc::GETVAL, &self.object)
    }

    /// SETVAL (0..=SEMVMX).
    pub fn set_value(&self, num: u16, value: i32) -> Result<()> {
        check_value(value, &self.object)?;
        sys::setval(self.id, num as i32, value, &self.object)
    }

    /// GETALL.
    pub fn values(&self) -> Result<Vec<u16>> {
        let n = self.stat()?.nsems as usize;
        let mut v = vec![0u16; n];
        sys::getall(self.id, &mut v, &self.object)?;
        Ok(v)
    }

    /// SETALL: exactly one value per semaphore, each 0..=SEMVMX.
    pub fn set_values(&self, values: &[i32]) -> Result<()> {
        let n = self.stat()?.nsems as usize;
        if values.len() != n {
            return Err(Error::invalid(
                "semctl",
                &self.object,
                format!(
                    "SETALL needs {n} values (one per semaphore), not {}",
                    values.len()
                ),
            ));
        }
        for v in values {
            check_value(*v, &self.object)?;
        }
        let v: Vec<u16> = values.iter().map(|v| *v as u16).collect();
        sys::setall(self.id, &v, &self.object)
    }

    /// GETPID: the pid of the last process that operated on semaphore `num`.
    pub fn last_pid(&self, num: u16) -> Result<i32> {
        sys::semctl_int(self.id, num as i32, libc::GETPID, &self.object)
    }

    /// GETNCNT: processes waiting for semaphore `num` to increase.
    pub fn waiting_for_increase(&self, num: u16) -> Result<i32> {
        sys::semctl_int(self.id, num as i32, libc::GETNCNT, &self.object)
    }

    /// GETZCNT: processes waiting for semaphore `num` to become zero.
    pub fn waiting_for_zero(&self, num: u16) -> Result<i32> {
        sys::semctl_int(self.id, num as i32, libc::GETZCNT, &self.object)
    }

    /// IPC_STAT.
    pub fn stat(&self) -> Result<SemStat> {
        sys::stat(self.id, &self.object)
    }

    /// IPC_SET: new owner and permission bits (owner, creator or root only).
    pub fn set_owner_and_mode(&self, uid: u32, gid: u32, mode: u32) -> Result<()> {
        sys::set(self.id, uid, gid, mode, &self.object)
    }

    /// IPC_RMID: removes the set at once; waiters fail with [`ErrorKind::Removed`].
    pub fn remove(&self) -> Result<()> {
        sys::semctl_int(self.id, 0, libc::IPC_RMID, &self.object).map(drop)
    }
}

fn check_value(v: i32, object: &str) -> Result<()> {
    if !(0..=SEMVMX).contains(&v) {
        return Err(Error::invalid(
            "semctl",
            object,
            format!("value {v} is outside 0..={SEMVMX} (SEMVMX)"),
        ));
    }
    Ok(())
}

fn key_object(key: i32) -> String {
    if key == libc::IPC_PRIVATE {
        "key IPC_PRIVATE".into()
    } else {
        format!("key {:#010x}", key as u32)
    }
}
