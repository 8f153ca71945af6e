//! Uncontended synchronisation costs, measured in one process on primitives placed in a
//! shared memfd mapping (as they would be between processes): a robust, process-shared
//! pthread mutex (lock + unlock) and a process-shared POSIX semaphore (post + wait).
//!
//! Each figure is the time of one pair, averaged over `count` pairs: what a program
//! pays when nobody else is contending, i.e. the fast path with no system call.

use std::time::Instant;

use crate::shared_map::SharedMap;
use crate::{BenchError, Result};

const MUTEX_AT: usize = 0;
const SEM_AT: usize = 256;

/// One uncontended figure: name, one line on what it is, nanoseconds per pair.
pub type Figure = (&'static str, &'static str, f64);

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(BenchError::io(what, std::io::Error::from_raw_os_error(rc)))
    }
}

fn pthread_mutex(map: &SharedMap, count: u64) -> Result<f64> {
    let m = map
        .at(MUTEX_AT, std::mem::size_of::<libc::pthread_mutex_t>())
        .ok_or_else(|| BenchError::Peer("mapping too small".into()))?
        .cast::<libc::pthread_mutex_t>();
    // SAFETY: the attribute object is initialised by pthread_mutexattr_init before any
    // other use and destroyed after the mutex is initialised; `m` points into our own
    // fresh mapping, suitably aligned (page start), used by this thread only, and is
    // initialised before it is locked and destroyed after the last unlock.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        check(
            libc::pthread_mutexattr_init(attr.as_mut_ptr()),
            "pthread_mutexattr_init",
        )?;
        check(
            libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
            "pthread_mutexattr_setpshared",
        )?;
        check(
            libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST),
            "pthread_mutexattr_setrobust",
        )?;
        check(
            libc::pthread_mutex_init(m, attr.as_ptr()),
            "pthread_mutex_init",
        )?;
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        let t0 = Instant::now();
        for _ in 0..count {
            check(libc::pthread_mutex_lock(m), "pthread_mutex_lock")?;
            check(libc::pthread_mutex_unlock(m), "pthread_mutex_unlock")?;
        }
        let dt = t0.elapsed();
        libc::pthread_mutex_destroy(m);
        Ok(dt.as_nanos() as f64 / count.max(1) as f64)
    }
}

fn posix_sem(map: &SharedMap, count: u64) -> Result<f64> {
    let s = map
        .at(SEM_AT, std::mem::size_of::<libc::sem_t>())
        .ok_or_else(|| BenchError::Peer("mapping too small".into()))?
        .cast::<libc::sem_t>();
    // SAFETY: `s` points into our own fresh mapping, 64-byte aligned, used by this
    // thread only, initialised before use and destroyed after.
    unsafe {
        if libc::sem_init(s, 1, 0) != 0 {
            return Err(BenchError::io("sem_init", std::io::Error::last_os_error()));
        }
        let t0 = Instant::now();
        for _ in 0..count {
            if libc::sem_post(s) != 0 || libc::sem_wait(s) != 0 {
                return Err(BenchError::io(
                    "sem_post/sem_wait",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        let dt = t0.elapsed();
        libc::sem_destroy(s);
        Ok(dt.as_nanos() as f64 / count.max(1) as f64)
    }
}

/// Measures every uncontended figure once, `count` pairs each.
pub fn measure(count: u64) -> Result<Vec<Figure>> {
    let (map, _fd) = SharedMap::create("sync", 4096)?;
    Ok(vec![
        (
            "pthread-mutex",
            "robust process-shared pthread mutex: lock + unlock",
            pthread_mutex(&map, count)?,
        ),
        (
            "posix-sem",
            "process-shared POSIX semaphore: sem_post + sem_wait",
            posix_sem(&map, count)?,
        ),
    ])
}
