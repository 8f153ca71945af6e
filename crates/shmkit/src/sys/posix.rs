//! POSIX shared-memory objects: files in /dev/shm, opened the way glibc's shm_open does,
//! but never through a symbolic link.

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The directory where Linux keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";

/// How to open an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing object.
    Open,
    /// Create it, failing if it exists (O_CREAT | O_EXCL).
    CreateExclusive,
    /// Create it or open the existing one (O_CREAT).
    CreateOrOpen,
}

/// shm_open(`name`) with O_NOFOLLOW | O_CLOEXEC. `name` is the bare name, without the
/// leading slash, already validated by the caller. `object` names it for errors.
pub fn shm_open(
    name: &str,
    mode: OpenMode,
    writable: bool,
    perm: u32,
    object: &str,
) -> Result<OwnedFd> {
    let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC;
    flags |= if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    match mode {
        OpenMode::Open => {}
        OpenMode::CreateExclusive => flags |= OFlags::CREATE | OFlags::EXCL,
        OpenMode::CreateOrOpen => flags |= OFlags::CREATE,
    }
    let path = format!("{SHM_DIR}/{name}");
    rustix::fs::open(path.as_str(), flags, Mode::from_raw_mode(perm))
        .map_err(|e| Error::os("shm_open", object, e.raw_os_error()))
}

/// shm_unlink(`name`): removes the name; existing mappings stay valid.
pub fn shm_unlink(name: &str, object: &str) -> Result<()> {
    let path = format!("{SHM_DIR}/{name}");
    rustix::fs::unlink(path.as_str()).map_err(|e| Error::os("shm_unlink", object, e.raw_os_error()))
}
