//! [`LockObject`]: a named, robust lock in its own POSIX object (`/dev/shm/NAME`), the
//! lock behind `shmkit lock`: created on first use, shared by every process that names
//! it.
//!
//! ## Layout
//!
//! ```text
//! offset size field
//!      0   64 common header  kind LOCK (16), layout version 1, header_size 40
//!     64   16 mutex header   see `sync::mutex` (state, reserved, owner_tag)
//!     80    8 acquisitions   times the lock was taken (LockData)
//!     88    4 holder_pid     pid of the process that took it last
//!     92    4 owner_deaths   times a holder died holding it
//!     96    8 reserved
//! ```
//!
//! Creation cannot race with opening: the creator lays the object out under a temporary
//! name and renames it into place with `RENAME_NOREPLACE`; an opener therefore always
//! sees a complete object (the ready word is still checked, and an object whose header
//! is empty is reported as not being a lock). A crash between the two steps leaves the
//! temporary `/dev/shm/NAME.tmp.PID` behind; nothing else uses it.

use std::os::fd::AsFd;

use crate::error::{Error, ErrorKind, Result};
use crate::header::{self, Layout, ObjectKind, HEADER_SIZE};
use crate::posix::Mapping;
use crate::region::Region;
use crate::sync::mutex::Mutex;
use crate::sys::posix::{self, shm_open, shm_unlink, OpenMode};
use crate::sys::publish;

/// The layout version.
pub const VERSION: u16 = 1;
/// Offset of the mutex.
pub const MUTEX_OFFSET: usize = HEADER_SIZE;

/// The data the lock protects: bookkeeping shown by `shmkit lock --info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LockData {
    /// Times the lock was taken.
    pub acquisitions: u64,
    /// Pid of the process that took it last.
    pub holder_pid: u32,
    /// Times a holder died holding it.
    pub owner_deaths: u32,
    /// Zero.
    pub reserved: u64,
}

/// Bytes of a lock object.
pub const TOTAL_SIZE: usize = MUTEX_OFFSET + Mutex::<LockData>::size();
const _: () = assert!(TOTAL_SIZE == 104);

/// An open lock object; [`LockObject::mutex`] gives the lock.
#[derive(Debug)]
pub struct LockObject {
    map: Mapping,
    created: bool,
}

impl LockObject {
    /// Opens the lock object `name` (without the leading slash), creating it with mode
    /// `perm` if it does not exist.
    pub fn open_or_create(name: &str, perm: u32) -> Result<LockObject> {
        match Self::open(name) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        let init = |map: &Mapping| -> Result<()> {
            header::init(
                map,
                Layout {
                    kind: ObjectKind::LOCK,
                    version: VERSION,
                    header_size: Mutex::<LockData>::size() as u32,
                    total_size: TOTAL_SIZE as u64,
                },
            )?;
            Mutex::init(map, MUTEX_OFFSET, LockData::default())?;
            header::publish(map)
        };
        match create_published(name, TOTAL_SIZE, perm, init)? {
            Some(map) => Ok(LockObject { map, created: true }),
            None => Self::open(name),
        }
    }

    /// Opens an existing lock object.
    pub fn open(name: &str) -> Result<LockObject> {
        let map = open_mapping(name, TOTAL_SIZE)?;
        validate_published(&map, ObjectKind::LOCK, VERSION)?;
        Ok(LockObject {
            map,
            created: false,
        })
    }

    /// Whether this call created the object.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The robust mutex.
    pub fn mutex(&self) -> Result<Mutex<'_, LockData>> {
        Mutex::attach(&self.map, MUTEX_OFFSET)
    }

    /// Removes the name `name`; processes that have it open keep using it.
    pub fn unlink(name: &str) -> Result<()> {
        shm_unlink(name, &format!("/{name}"))
    }
}

/// Creates `/dev/shm/<name>` of `size` bytes with `perm`, laid out by `init` under a
/// temporary name and renamed into place without replacing anything. `Ok(None)` when
/// another process created the name first.
pub(crate) fn create_published(
    name: &str,
    size: usize,
    perm: u32,
    init: impl FnOnce(&Mapping) -> Result<()>,
) -> Result<Option<Mapping>> {
    let object = format!("/{name}");
    validate_name(name, &object)?;
    let tmp = format!("{name}.tmp.{}", std::process::id());
    let fd = shm_open(&tmp, OpenMode::CreateExclusive, true, perm, &object)?;
    let tmp_guard = Unlink(tmp.clone(), object.clone());
    // fallocate: a full /dev/shm is an error now, not a SIGBUS later.
    posix::allocate(fd.as_fd(), size as u64, &object)?;
    // fchmod: the umask may have narrowed `perm`.
    posix::fchmod(fd.as_fd(), perm, &object)?;
    let map = Mapping::new(fd, 0, size, true, true, object.clone())?;
    init(&map)?;
    if publish::rename_noreplace(&tmp, name, &object)? {
        std::mem::forget(tmp_guard);
        Ok(Some(map))
    } else {
        Ok(None)
    }
}

/// Opens `/dev/shm/<name>` read-write and maps `size` bytes, or the whole object when
/// `size` is 0; a smaller object is corrupt.
pub(crate) fn open_mapping(name: &str, size: usize) -> Result<Mapping> {
    let object = format!("/{name}");
    validate_name(name, &object)?;
    let fd = shm_open(name, OpenMode::Open, true, 0, &object)?;
    let actual = posix::fstat(fd.as_fd(), &object)?.size as usize;
    if actual < size.max(1) {
        return Err(Error::corrupt(
            "open",
            &object,
            format!("{actual} bytes is too small for this object (at least {size})"),
        ));
    }
    let len = if size == 0 { actual } else { size };
    Mapping::new(fd, 0, len, true, true, object)
}

/// Validates the header of an object published by [`create_published`]: it is complete
/// by construction, so an empty header means the object is something else.
pub(crate) fn validate_published(map: &Mapping, kind: ObjectKind, version: u16) -> Result<()> {
    match header::validate(map, kind, version) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Err(Error::corrupt(
            "open",
            map.object_name(),
            format!("not a shmkit {} (its header is empty)", kind.name()),
        )),
        other => other.map(drop),
    }
}

fn validate_name(name: &str, object: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.len() > 200 || name == "." || name == ".." {
        return Err(Error::invalid(
            "open",
            object,
            "a lock name is 1 to 200 bytes without '/'",
        ));
    }
    Ok(())
}

/// Unlinks a temporary name on drop.
struct Unlink(String, String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = shm_unlink(&self.0, &self.1);
    }
}
