//! The only module that calls the kernel through `libc` or `rustix` FFI.
//!
//! Everything else in the crate calls the wrappers here, which turn raw return values
//! into [`crate::Error`]s naming the operation and the object. `clippy.toml` lists the
//! raw functions as disallowed outside this module. Each submodule holds one family of
//! calls: `mmap` (mmap/munmap and friends), `posix` (shm_open/shm_unlink on /dev/shm,
//! fstat/fchmod/fchown/ftruncate/fallocate, memfd and seals, SCM_RIGHTS), `sysv`
//! (shmget/shmat/shmdt/shmctl), `users` (user and group names), `proc` (thread ids and
//! liveness), `membarrier` (asymmetric barriers), `sem` (System V semaphore sets),
//! `psem` (POSIX named semaphores), `publish`
//! (renaming a laid-out object into place), `ipcinfo` (System V usage, limits, look-ups
//! and removal for the inspection tools).
#![allow(unsafe_code, clippy::disallowed_methods)]

pub mod futex;
pub mod ipcinfo;
pub mod membarrier;
pub mod mmap;
pub mod posix;
pub mod proc;
pub mod psem;
pub mod publish;
pub mod sem;
pub mod sysv;
pub mod users;

/// The calling thread's errno after a failed libc call.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The system page size in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
}
