//! POSIX named semaphores (`/dev/shm/sem.NAME`): sem_open, sem_post, sem_wait and
//! friends, through glibc.

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use crate::error::{Error, Result};

extern "C" {
    /// glibc 2.30+: sem_timedwait against a chosen clock (here CLOCK_MONOTONIC, so that
    /// a wall-clock change does not stretch a timeout). Missing from the libc crate.
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// An open named semaphore (the pointer sem_open returned); closed on drop.
#[derive(Debug)]
pub struct RawSem {
    ptr: NonNull<libc::sem_t>,
}

// SAFETY: sem_t operations are thread-safe (POSIX), and the pointer stays valid until
// sem_close in drop.
unsafe impl Send for RawSem {}
// SAFETY: as above.
unsafe impl Sync for RawSem {}

fn cname(name: &str, object: &str) -> Result<CString> {
    CString::new(format!("/{name}"))
        .map_err(|_| Error::invalid("sem_open", object, "the name contains a NUL byte"))
}

/// sem_open(`/name`, flags, perm, value). `flags` is 0, O_CREAT or O_CREAT|O_EXCL.
pub fn open(name: &str, flags: i32, perm: u32, value: u32, object: &str) -> Result<RawSem> {
    let c = cname(name, object)?;
    // SAFETY: `c` is a valid C string; with O_CREAT the variadic mode and value are read
    // as mode_t (promoted to unsigned int) and unsigned int, which we pass.
    let p = unsafe {
        libc::sem_open(
            c.as_ptr(),
            flags,
            perm as libc::c_uint,
            value as libc::c_uint,
        )
    };
    if p == libc::SEM_FAILED {
        return Err(Error::os("sem_open", object, super::errno()));
    }
    NonNull::new(p)
        .map(|ptr| RawSem { ptr })
        .ok_or_else(|| Error::invalid("sem_open", object, "sem_open returned null"))
}

/// sem_unlink(`/name`).
pub fn unlink(name: &str, object: &str) -> Result<()> {
    let c = cname(name, object)?;
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::sem_unlink(c.as_ptr()) } < 0 {
        return Err(Error::os("sem_unlink", object, super::errno()));
    }
    Ok(())
}

impl RawSem {
    /// sem_post.
    pub fn post(&self, object: &str) -> Result<()> {
        // SAFETY: ptr is a live semaphore from sem_open.
        if unsafe { libc::sem_post(self.ptr.as_ptr()) } < 0 {
            return Err(Error::os("sem_post", object, super::errno()));
        }
        Ok(())
    }

    /// sem_trywait; `Ok(false)` when the value is 0.
    pub fn try_wait(&self, object: &str) -> Result<bool> {
        // SAFETY: ptr is a live semaphore from sem_open.
        if unsafe { libc::sem_trywait(self.ptr.as_ptr()) } < 0 {
            return match super::errno() {
                libc::EAGAIN => Ok(false),
                e => Err(Error::os("sem_trywait", object, e)),
            };
        }
        Ok(true)
    }

    /// sem_wait (`None`) or sem_clockwait on CLOCK_MONOTONIC for `timeout`; `Ok(false)`
    /// when the time ran out. EINTR is retried.
    pub fn wait(&self, timeout: Option<Duration>, object: &str) -> Result<bool> {
        let abs = match timeout {
            None => None,
            Some(d) => {
                let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let total = Duration::new(now.tv_sec as u64, now.tv_nsec as u32).saturating_add(d);
                Some(libc::timespec {
                    tv_sec: total.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: total.subsec_nanos() as _,
                })
            }
        };
        loop {
            let rc = match &abs {
                // SAFETY: ptr is a live semaphore from sem_open.
                None => unsafe { libc::sem_wait(self.ptr.as_ptr()) },
                // SAFETY: as above; `t` is a live timespec.
                Some(t) => unsafe { sem_clockwait(self.ptr.as_ptr(), libc::CLOCK_MONOTONIC, t) },
            };
            if rc == 0 {
                return Ok(true);
            }
            match super::errno() {
                libc::EINTR => continue,
                libc::ETIMEDOUT => return Ok(false),
                e => return Err(Error::os("sem_wait", object, e)),
            }
        }
    }

    /// sem_getvalue.
    pub fn value(&self, object: &str) -> Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: ptr is a live semaphore; `v` is a valid out pointer.
        if unsafe { libc::sem_getvalue(self.ptr.as_ptr(), &mut v) } < 0 {
            return Err(Error::os("sem_getvalue", object, super::errno()));
        }
        Ok(v)
    }
}

impl Drop for RawSem {
    fn drop(&mut self) {
        // SAFETY: ptr came from sem_open and is closed exactly once, here.
        unsafe {
            libc::sem_close(self.ptr.as_ptr());
        }
    }
}
