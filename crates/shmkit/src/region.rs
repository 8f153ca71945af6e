//! Safe access to bytes that other processes share: the one API for every kind of object.
//!
//! A System V attachment, a POSIX mapping and a memfd mapping all implement [`Region`],
//! so code written against it works with either. Another process may write the bytes at
//! any moment, so the API never hands out `&[u8]` or `&T` over them: it copies in and
//! out at checked offsets ([`Region::read_at`], [`Region::write_at`], [`RegionExt::read`],
//! [`RegionExt::write`]) and hands out atomics ([`Region::atomic_u32`]) for flags and
//! counters. Every offset and length is checked in release builds; a write through a
//! read-only mapping is an [`ErrorKind::ReadOnly`] error, not a SIGSEGV.
//!
//! Copies between private memory and a region are plain `memcpy`s: without a protocol
//! (a lock, a flag set with Release and read with Acquire) a reader may see a mix of old
//! and new bytes, as in C. Use [`crate::sync`] or the atomics for that protocol.

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::{Error, ErrorKind, Result};

/// Bytes mapped into this process and shared with others.
///
/// Implemented by the library's attachment and mapping types; users call the provided
/// methods. See the [module docs](self).
///
/// ```
/// use shmkit::{Region, RegionExt};
/// # fn demo(region: &dyn Region) -> shmkit::Result<()> {
/// region.write_at(0, b"hello")?;
/// let mut buf = [0u8; 5];
/// region.read_at(0, &mut buf)?;
/// region.write(8, &42u64)?;
/// let v: u64 = region.read(8)?;
/// region.atomic_u32(16)?.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
/// # let _ = v; Ok(()) }
/// ```
///
/// # Safety
///
/// An implementor guarantees that, for as long as `&self` lives, [`Region::as_ptr`] points
/// to [`Region::len`] bytes mapped in this process, readable, and writable when
/// [`Region::is_writable`] is true, and that [`Region::check_range`] returns `Ok` only
/// for ranges that can be touched without a fault.
#[allow(unsafe_code)]
pub unsafe trait Region {
    /// The first mapped byte in this process. Dereferencing it is `unsafe`: other
    /// processes may write the bytes concurrently.
    fn as_ptr(&self) -> *mut u8;

    /// The number of mapped bytes.
    fn len(&self) -> usize;

    /// Whether the mapping allows writes.
    fn is_writable(&self) -> bool;

    /// How errors name the object: `id 32769`, `key 0x00001234`, `/name`, `memfd:name`.
    fn object_name(&self) -> String;

    /// Whether the region is empty (never true for a live mapping).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that `len` bytes at `offset` may be touched now; `op` names the caller for
    /// the error. The default checks the mapping's bounds; a mapping of an object that
    /// another process can shrink also checks the object's current size.
    fn check_range(&self, op: &'static str, offset: usize, len: usize) -> Result<()> {
        check_bounds(op, &self.object_name(), offset, len, self.len())
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the region.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check_range("read", offset, buf.len())?;
        // SAFETY: check_range proved offset..offset+len lies inside the mapping, which
        // lives as long as &self (trait contract); `buf` is a valid &mut. `copy` (memmove)
        // rather than copy_nonoverlapping, so no aliasing assumption is needed.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len());
        }
        Ok(())
    }

    /// Copies `data` into the region at `offset`.
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_writable("write")?;
        self.check_range("write", offset, data.len())?;
        // SAFETY: in bounds and writable (checked above); the mapping outlives &self;
        // `data` is a valid slice. `copy` (memmove) tolerates overlap.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy(data.as_ptr(), self.as_ptr().add(offset), data.len());
        }
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`.
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<()> {
        self.check_writable("fill")?;
        self.check_range("fill", offset, len)?;
        // SAFETY: in bounds and writable (checked above); the mapping outlives &self.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::write_bytes(self.as_ptr().add(offset), byte, len);
        }
        Ok(())
    }

    /// Copies `len` bytes at `offset` into a new vector.
    fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.check_range("read", offset, len)?;
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    /// An atomic view of the 4 bytes at `offset`, which must be 4-byte aligned, in a
    /// writable region. Atomics are the one safe way to share a word with another
    /// process without a lock.
    fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.check_writable("atomic_u32")?;
        self.check_range("atomic_u32", offset, 4)?;
        check_aligned("atomic_u32", &self.object_name(), self.as_ptr(), offset, 4)?;
        // SAFETY: in bounds, aligned, writable; AtomicU32 has the size and alignment of
        // u32 and may alias memory that other processes access atomically. The reference
        // lives no longer than &self, hence no longer than the mapping.
        #[allow(unsafe_code)]
        Ok(unsafe { AtomicU32::from_ptr(self.as_ptr().add(offset).cast()) })
    }

    /// An atomic view of the 8 bytes at `offset`, which must be 8-byte aligned, in a
    /// writable region.
    fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.check_writable("atomic_u64")?;
        self.check_range("atomic_u64", offset, 8)?;
        check_aligned("atomic_u64", &self.object_name(), self.as_ptr(), offset, 8)?;
        // SAFETY: as in atomic_u32, for 8 bytes with 8-byte alignment.
        #[allow(unsafe_code)]
        Ok(unsafe { AtomicU64::from_ptr(self.as_ptr().add(offset).cast()) })
    }

    /// An [`ErrorKind::ReadOnly`] error unless the region is writable.
    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.is_writable() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::ReadOnly,
                op,
                self.object_name(),
                "the region is attached or mapped read-only",
            ))
        }
    }
}

/// Typed reads and writes of plain-old-data values; implemented for every [`Region`],
/// including `dyn Region`.
pub trait RegionExt: Region {
    /// Reads a `T` at `offset` (any alignment). Every bit pattern is a valid `T`, so
    /// whatever another process wrote there is a value, never undefined behaviour.
    fn read<T: bytemuck::AnyBitPattern>(&self, offset: usize) -> Result<T> {
        self.check_range("read", offset, std::mem::size_of::<T>())?;
        // SAFETY: the range is inside the mapping (checked above), read_unaligned has no
        // alignment requirement, and AnyBitPattern makes every byte pattern a valid T.
        #[allow(unsafe_code)]
        Ok(unsafe { std::ptr::read_unaligned(self.as_ptr().add(offset).cast::<T>()) })
    }

    /// Writes `value` at `offset` (any alignment).
    fn write<T: bytemuck::NoUninit>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_at(offset, bytemuck::bytes_of(value))
    }
}

impl<R: Region + ?Sized> RegionExt for R {}

/// The bounds check shared by every implementation: `len` bytes at `offset` inside `size`.
pub(crate) fn check_bounds(
    op: &'static str,
    object: &str,
    offset: usize,
    len: usize,
    size: usize,
) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::new(
            ErrorKind::OutOfBounds,
            op,
            object,
            format!("offset {offset} + length {len} exceeds the size {size}"),
        )),
    }
}

fn check_aligned(
    op: &'static str,
    object: &str,
    base: *mut u8,
    offset: usize,
    align: usize,
) -> Result<()> {
    if (base as usize).wrapping_add(offset) % align == 0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            object,
            format!("offset {offset} is not {align}-byte aligned"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region over private heap memory, to test the provided methods alone.
    struct Heap {
        buf: Box<[u64]>,
        writable: bool,
    }

    // SAFETY: the boxed slice lives as long as the struct and is 8 * len bytes.
    #[allow(unsafe_code)]
    unsafe impl Region for Heap {
        fn as_ptr(&self) -> *mut u8 {
            self.buf.as_ptr() as *mut u8
        }
        fn len(&self) -> usize {
            self.buf.len() * 8
        }
        fn is_writable(&self) -> bool {
            self.writable
        }
        fn object_name(&self) -> String {
            "heap".into()
        }
    }

    #[test]
    fn copies_in_and_out_and_checks_bounds() {
        let r = Heap {
            buf: vec![0; 4].into_boxed_slice(),
            writable: true,
        };
        r.write_at(30, b"ab").unwrap();
        assert_eq!(r.read_vec(30, 2).unwrap(), b"ab");
        let e = r.write_at(31, b"ab").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfBounds);
        assert_eq!(
            e.to_string(),
            "write on heap failed: offset 31 + length 2 exceeds the size 32"
        );
        assert_eq!(
            r.read_vec(usize::MAX, 2).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
    }

    #[test]
    fn typed_values_and_atomics() {
        let r = Heap {
            buf: vec![0; 4].into_boxed_slice(),
            writable: true,
        };
        r.write(3, &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(r.read::<u64>(3).unwrap(), 0x1122_3344_5566_7788);
        let a = r.atomic_u32(16).unwrap();
        a.store(7, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r.read::<u32>(16).unwrap(), 7);
        assert_eq!(
            r.atomic_u32(18).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(r.atomic_u64(32).unwrap_err().kind(), ErrorKind::OutOfBounds);
    }

    #[test]
    fn read_only_refuses_writes() {
        let r = Heap {
            buf: vec![0; 1].into_boxed_slice(),
            writable: false,
        };
        assert_eq!(r.write_at(0, b"x").unwrap_err().kind(), ErrorKind::ReadOnly);
        assert_eq!(r.atomic_u32(0).unwrap_err().kind(), ErrorKind::ReadOnly);
        assert_eq!(r.read::<u8>(0).unwrap(), 0);
    }
}
