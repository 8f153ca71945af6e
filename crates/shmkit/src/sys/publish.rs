//! Publishing a fully laid-out object under its final name in one step:
//! `renameat2(RENAME_NOREPLACE)` within /dev/shm, so that openers never see it
//! half-initialised and an existing object is never replaced.

use crate::error::{Error, Result};
use crate::sys::posix::SHM_DIR;

/// Renames `/dev/shm/<from>` to `/dev/shm/<to>` unless `to` exists; `Ok(false)` if it
/// does (another process published first).
pub fn rename_noreplace(from: &str, to: &str, object: &str) -> Result<bool> {
    let from = format!("{SHM_DIR}/{from}");
    let to = format!("{SHM_DIR}/{to}");
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from.as_str(),
        rustix::fs::CWD,
        to.as_str(),
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        Err(e) => Err(Error::os("rename", object, e.raw_os_error())),
    }
}
