//! The size of a file descriptor's object: fstat and ftruncate.

use std::os::fd::BorrowedFd;

use crate::error::{Error, Result};

/// The object's current size in bytes (fstat).
pub fn size(fd: BorrowedFd<'_>, object: &str) -> Result<u64> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::os("fstat", object, e.raw_os_error()))?;
    Ok(st.st_size.max(0) as u64)
}

/// Sets the object's size (ftruncate); growth reads as zeros.
pub fn set_size(fd: BorrowedFd<'_>, len: u64, object: &str) -> Result<()> {
    rustix::fs::ftruncate(fd, len).map_err(|e| Error::os("ftruncate", object, e.raw_os_error()))
}
