//! [`Attachment`]: a segment attached to this process, detached on drop.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use crate::region::Region;
use crate::sys;

/// A System V segment attached to this process (`shmat`); detached (`shmdt`) on drop.
///
/// Access the bytes through [`Region`] and [`crate::RegionExt`]: copies at checked
/// offsets, plain-old-data values, atomics. Writes through a read-only attachment are
/// [`crate::ErrorKind::ReadOnly`] errors. The attachment stays valid after the segment
/// is removed ([`crate::sysv::Segment::remove`]); the kernel frees the memory at the
/// last detach. A child created by `fork` inherits the attachment (the kernel counts it
/// again in `nattch`) together with a copy of this handle, which detaches the child's
/// mapping if the child drops it; the parent's mapping is unaffected.
///
/// ```
/// use shmkit::{Region, RegionExt};
/// use shmkit::sysv::{Key, Segment};
/// let seg = Segment::create(Key::PRIVATE, 64)?;
/// let a = seg.attach()?;
/// a.write_at(0, b"hi")?;
/// a.write(8, &42u64)?;
/// assert_eq!(a.read::<u64>(8)?, 42);
/// assert_eq!(a.read_vec(0, 2)?, b"hi");
/// assert!(a.read_vec(60, 8).is_err()); // past the end
/// drop(a);
/// seg.remove()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Attachment {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    id: i32,
}

// SAFETY: the attachment is shared memory owned by this handle; all access goes through
// Region's copying and atomic methods, which are fine from any thread.
unsafe impl Send for Attachment {}
// SAFETY: as above; &Attachment only allows copies and atomic views.
unsafe impl Sync for Attachment {}

impl Attachment {
    /// Wraps a live attachment of `len` bytes made by `sys::sysv::shmat`.
    pub(crate) fn new(ptr: NonNull<u8>, len: usize, writable: bool, id: i32) -> Attachment {
        Attachment {
            ptr,
            len,
            writable,
            id,
        }
    }

    /// Sets the length once the segment's size is known.
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    /// The segment's id.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// assert_eq!(seg.attach()?.id(), seg.id());
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The address of the attachment in this process (for [`crate::sysv::Segment::attach_at`]
    /// and for diagnostics).
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let a = seg.attach()?;
    /// assert_eq!(a.addr() % shmkit::sys::page_size(), 0);
    /// # drop(a); seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

// SAFETY: ptr..ptr+len lies inside a live shmat attachment (len is the segment's size,
// which System V segments never change) until drop; it was attached with write access
// exactly when `writable`.
unsafe impl Region for Attachment {
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
        sys::sysv::id_object(self.id)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from shmat and is still attached; no reference into the
        // attachment outlives &self, which drop consumes. A failure (impossible for a
        // live attachment) cannot be reported from drop.
        let _ = unsafe { sys::sysv::shmdt(self.ptr) };
    }
}
