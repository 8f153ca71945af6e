//! [`Mapping`]: a MAP_SHARED view of a file descriptor that unmaps itself on drop.
//!
//! Used for POSIX objects and memfds. When the object behind the mapping can be shrunk
//! by another process, touching pages past its new end raises SIGBUS; a mapping that
//! keeps its descriptor therefore checks the object's current size (one `fstat`) before
//! each copy, so the library reports [`crate::ErrorKind::OutOfBounds`] instead of dying.
//! The check narrows the window but cannot close it: see the [`shm`](super::shm) module
//! docs for exactly what is guaranteed.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::region::{check_bounds, Region};
use crate::sys;

/// A shared mapping of (part of) an object, unmapped on drop. It never unlinks anything.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// Offset of the mapping in the object, for the shrink check.
    offset: u64,
    writable: bool,
    /// Kept to check the object's current size; `None` for objects that cannot shrink.
    fd: Option<OwnedFd>,
    name: String,
}

// SAFETY: the mapping is plain shared memory owned by this handle; all access goes
// through methods that copy or use atomics, which are fine from any thread.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}
// SAFETY: as above; &Mapping only allows copies and atomic views.
#[allow(unsafe_code)]
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`. With `check_shrink`, the mapping keeps `fd`
    /// and checks the object's size before each access. `name` names it in errors.
    pub(crate) fn new(
        fd: OwnedFd,
        offset: u64,
        len: usize,
        writable: bool,
        check_shrink: bool,
        name: String,
    ) -> Result<Mapping> {
        if offset % sys::page_size() as u64 != 0 {
            return Err(Error::invalid(
                "mmap",
                &name,
                format!(
                    "offset {offset} is not a multiple of the page size {}",
                    sys::page_size()
                ),
            ));
        }
        let ptr = sys::mmap::map_shared(fd.as_fd(), offset, len, writable, &name)?;
        Ok(Mapping {
            ptr,
            len,
            offset,
            writable,
            fd: check_shrink.then_some(fd),
            name,
        })
    }

    /// Offset of the mapping within the object.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Maps every page of the mapping into this process now (`MADV_POPULATE_WRITE`, or
    /// `_READ` for a read-only mapping), so that no later first touch of a page takes
    /// a page fault on a latency path: what `MAP_POPULATE` does at mapping time. The
    /// contents do not change. Needs Linux 5.14 (an `Unsupported`-kind error before);
    /// pages past the object's current end give an error, not SIGBUS.
    ///
    /// ```
    /// # use shmkit::posix::{Access, CreateOptions, PosixShm, ShmName};
    /// # fn main() -> shmkit::Result<()> {
    /// # let name = ShmName::new(&format!("/shmkit_doc_prefault_{}", std::process::id()))?;
    /// let shm = PosixShm::create_with(&name, 1 << 20, &CreateOptions::new())?;
    /// let map = shm.map()?;
    /// map.prefault()?;
    /// # PosixShm::unlink(&name)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefault(&self) -> Result<()> {
        sys::mmap::populate(self.ptr, self.len, self.writable, &self.name)
    }
}

/// Checks that a window of `len` bytes at `offset` lies inside an object of `size`
/// bytes, before mapping it (POSIX objects and memfds).
pub(crate) fn check_window(name: &str, offset: u64, len: usize, size: u64) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::new(
            crate::ErrorKind::OutOfBounds,
            "mmap",
            name,
            format!("window at offset {offset} of {len} bytes exceeds the size {size}"),
        )),
    }
}

/// The length of a whole-object mapping of an object of `size` bytes.
pub(crate) fn whole_len(name: &str, size: u64) -> Result<usize> {
    usize::try_from(size)
        .map_err(|_| Error::invalid("mmap", name, format!("size {size} does not fit in memory")))
}

// SAFETY: ptr..ptr+len is a live MAP_SHARED mapping until drop; it is writable exactly
// when `writable` (PROT_WRITE was asked); check_range rejects ranges past the object's
// current end when the object can shrink, so copies do not fault.
#[allow(unsafe_code)]
unsafe impl Region for Mapping {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_writable(&self) -> bool {
        self.writable
    }
    fn object_name(&self) -> String {
        self.name.clone()
    }
    fn check_range(&self, op: &'static str, offset: usize, len: usize) -> Result<()> {
        check_bounds(op, &self.name, offset, len, self.len)?;
        if let Some(fd) = &self.fd {
            let size = sys::posix::fstat(fd.as_fd(), &self.name)?.size;
            let end = self.offset + offset as u64 + len as u64;
            // Pages past the end of the object fault even below the mapping's length.
            if end > size {
                return Err(Error::new(
                    crate::ErrorKind::OutOfBounds,
                    op,
                    &self.name,
                    format!(
                        "offset {offset} + length {len} lies past the object's current size {} \
                         (another process shrank it)",
                        size.saturating_sub(self.offset)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by map_shared with this length, and no reference
        // into it can outlive &self, which drop consumes.
        #[allow(unsafe_code)]
        unsafe {
            sys::mmap::unmap(self.ptr, self.len)
        }
    }
}
