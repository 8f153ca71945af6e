//! Uncontended synchronisation costs, measured in one process on primitives placed in a
//! shared memfd mapping (as they would be between processes): shmkit's robust Mutex
//! (lock + unlock) and Semaphore (post + wait), a robust, process-shared pthread mutex,
//! a process-shared POSIX semaphore, and a System V semaphore (two `semop` calls).
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

fn shm_err(what: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("{what}: {e}"))
}

fn per_pair(t0: Instant, count: u64) -> f64 {
    t0.elapsed().as_nanos() as f64 / count.max(1) as f64
}

/// shmkit's robust in-region mutex and semaphore, in a sealed memfd mapping.
fn shmkit_ops(count: u64) -> Result<Vec<Figure>> {
    use shmkit::posix::{Memfd, Seals};
    use shmkit::sync::{Mutex, Semaphore};
    let m = Memfd::create("shmkit-bench-sync", 4096).map_err(|e| shm_err("memfd", e))?;
    m.add_seals(Seals::SHRINK | Seals::GROW)
        .map_err(|e| shm_err("memfd seals", e))?;
    let map = m.map().map_err(|e| shm_err("memfd map", e))?;
    let mutex = Mutex::<u64>::init(&map, 0, 0).map_err(|e| shm_err("mutex init", e))?;
    let t0 = Instant::now();
    for _ in 0..count {
        let g = mutex
            .lock()
            .map_err(|e| BenchError::Peer(format!("shmkit mutex lock: {e}")))?;
        drop(g);
    }
    let mutex_ns = per_pair(t0, count);
    let sem = Semaphore::init(&map, 256, 0).map_err(|e| shm_err("semaphore init", e))?;
    let t0 = Instant::now();
    for _ in 0..count {
        sem.post().map_err(|e| shm_err("semaphore post", e))?;
        sem.wait();
    }
    let sem_ns = per_pair(t0, count);
    Ok(vec![
        (
            "shmkit-mutex",
            "shmkit robust in-region Mutex: lock + unlock",
            mutex_ns,
        ),
        (
            "shmkit-sem",
            "shmkit in-region Semaphore: post + wait",
            sem_ns,
        ),
    ])
}

/// A System V semaphore: semop +1 then semop -1, two system calls.
fn sysv_ops(count: u64) -> Result<Figure> {
    use shmkit::sysv::sem::SemSet;
    let set = SemSet::private(1, 0o600).map_err(|e| shm_err("semget", e))?;
    crate::cleanup::register_sysv_sem(set.id());
    let run = || -> Result<f64> {
        let t0 = Instant::now();
        for _ in 0..count {
            set.add(0, 1, 0, None).map_err(|e| shm_err("semop", e))?;
            set.add(0, -1, 0, None).map_err(|e| shm_err("semop", e))?;
        }
        Ok(per_pair(t0, count))
    };
    let ns = run();
    let _ = set.remove();
    crate::cleanup::forget_sysv_sem(set.id());
    Ok(("sysv-semop", "System V semaphore: semop +1, semop -1", ns?))
}

/// Measures every uncontended figure once, `count` pairs each (System V semaphores,
/// two system calls a pair, get a tenth of the pairs).
pub fn measure(count: u64) -> Result<Vec<Figure>> {
    let (map, _fd) = SharedMap::create("sync", 4096)?;
    let mut out = shmkit_ops(count)?;
    out.push(sysv_ops((count / 10).max(1))?);
    out.extend([
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
    ]);
    Ok(out)
}
