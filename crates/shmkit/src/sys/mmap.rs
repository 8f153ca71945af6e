//! mmap and munmap of shared file descriptors.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Error, Result};

/// Maps `len` bytes of `fd` at `offset` with MAP_SHARED, read-only or read-write.
/// `object` names the object for errors.
pub fn map_shared(
    fd: BorrowedFd<'_>,
    offset: u64,
    len: usize,
    writable: bool,
    object: &str,
) -> Result<NonNull<u8>> {
    if len == 0 {
        return Err(Error::invalid(
            "mmap",
            object,
            "cannot map 0 bytes (the object is empty)",
        ));
    }
    let prot = if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    // SAFETY: a null hint lets the kernel choose fresh address space, so no existing Rust
    // allocation is replaced; the result is only used as a raw pointer by the caller.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            MapFlags::SHARED,
            fd,
            offset,
        )
    }
    .map_err(|e| Error::os("mmap", object, e.raw_os_error()))?;
    NonNull::new(p.cast())
        .ok_or_else(|| Error::invalid("mmap", object, "the kernel returned a null mapping"))
}

/// Fills in the page tables of `len` bytes at `ptr` now (`MADV_POPULATE_WRITE`, or
/// `MADV_POPULATE_READ` for a read-only mapping; Linux 5.14), so that the first touch
/// of each page later takes no page fault. The contents do not change. Errors: EINVAL
/// before Linux 5.14, EFAULT for pages past the end of the object. `object` names the
/// object for errors.
pub fn populate(ptr: NonNull<u8>, len: usize, writable: bool, object: &str) -> Result<()> {
    let advice = if writable {
        rustix::mm::Advice::LinuxPopulateWrite
    } else {
        rustix::mm::Advice::LinuxPopulateRead
    };
    // SAFETY: the caller passes a live mapping of its own; both advices only fault the
    // pages in as a read or write would (without the access), changing no byte and no
    // mapping, and report pages past the object's end as EFAULT instead of SIGBUS.
    unsafe { rustix::mm::madvise(ptr.as_ptr().cast(), len, advice) }
        .map_err(|e| Error::os("madvise(MADV_POPULATE)", object, e.raw_os_error()))
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
///
/// `ptr` and `len` must describe a live mapping made by [`map_shared`] that nothing
/// will touch afterwards.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees a live mapping of `len` bytes no longer in use.
    // munmap cannot fail for such a range; nothing useful can be done if it did.
    let _ = unsafe { rustix::mm::munmap(ptr.as_ptr().cast(), len) };
}
