//! Synchronisation across processes: primitives placed inside shared memory, and the
//! kernel's System V and POSIX semaphores.
//!
//! The in-region primitives ([`Mutex`], [`Condvar`], [`Semaphore`], [`Event`],
//! [`RwLock`]) are fixed-size `#[repr(C)]` layouts of futex words that any process
//! mapping the region can use: create one with `init(region, offset, …)` while laying the
//! region out, then `attach(region, offset)` from every process. Each module documents
//! its layout, size and alignment (`SIZE`/`size()` and `ALIGN`), so that a benchmark or
//! a C peer can place them. None makes a system call when uncontended; every wait has a
//! timeout variant. [`Mutex`] is robust: a holder killed at any point leaves the next
//! locker with [`Locked::OwnerDied`]. [`mailbox`] hands a message from one process to
//! another, and [`lock_object`] is the named lock behind `shmkit lock`.
//!
//! The kernel's semaphores live in [`crate::sysv::sem`] and [`crate::posix::sem`].

pub mod condvar;
pub mod event;
pub mod lock_object;
pub mod mailbox;
pub mod mutex;
pub mod rwlock;
pub mod semaphore;
#[cfg(test)]
mod testing;
mod word;

pub use condvar::Condvar;
pub use event::{Event, Reset};
pub use lock_object::LockObject;
pub use mailbox::{Mailbox, MailboxError, MailboxObject};
pub use mutex::{LockError, Locked, Mutex, MutexGuard};
pub use rwlock::RwLock;
pub use semaphore::Semaphore;

use crate::error::{Error, Result};
use crate::region::Region;

/// Checks that `size` bytes at `offset` fit in `region` with the given alignment.
fn check_place(
    region: &dyn Region,
    what: &'static str,
    offset: usize,
    size: usize,
    align: usize,
) -> Result<()> {
    if offset % align != 0 || (region.as_ptr() as usize).wrapping_add(offset) % align != 0 {
        return Err(Error::invalid(
            what,
            region.object_name(),
            format!("offset {offset} is not {align}-byte aligned"),
        ));
    }
    region.check_range(what, offset, size)
}
