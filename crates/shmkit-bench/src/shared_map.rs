//! A memfd mapped shared by the leading process and its peer: the memory behind the
//! floor and the semaphore-signalled transports.
//!
//! The leading side creates the memfd, sizes it and maps it; the peer inherits the
//! descriptor and maps it too. The bytes are only reached through raw pointers or
//! atomics, never through references to plain data, since the other process writes
//! them.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use crate::{BenchError, Result};

/// A shared mapping of a memfd, unmapped on drop.
pub struct SharedMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMap {
    /// Creates a memfd of at least `len` bytes (rounded up to pages) and maps it;
    /// returns the mapping and the descriptor for the peer.
    pub fn create(what: &str, len: usize) -> Result<(SharedMap, OwnedFd)> {
        let page = rustix::param::page_size();
        let len = len.max(1).div_ceil(page) * page;
        let fd = memfd_create(format!("shmkit-bench-{what}"), MemfdFlags::CLOEXEC)
            .map_err(|e| BenchError::io(&format!("{what}: memfd_create"), e.into()))?;
        ftruncate(&fd, len as u64)
            .map_err(|e| BenchError::io(&format!("{what}: ftruncate"), e.into()))?;
        let map = SharedMap::map(&fd, len)?;
        Ok((map, fd))
    }

    /// Maps the inherited memfd `fd` in the peer, checking it is `len` bytes long.
    pub fn open(fd: RawFd, len: usize) -> Result<SharedMap> {
        let owned = crate::peer::take_fd(fd)?;
        let st = rustix::fs::fstat(&owned).map_err(|e| BenchError::io("fstat", e.into()))?;
        if st.st_size != len as i64 || len == 0 || len % rustix::param::page_size() != 0 {
            return Err(BenchError::Peer(format!(
                "the inherited memfd has {} bytes, expected {len}",
                st.st_size
            )));
        }
        SharedMap::map(&owned, len)
    }

    fn map(fd: impl AsFd, len: usize) -> Result<SharedMap> {
        // SAFETY: a fresh shared mapping at an address of the kernel's choosing, of a
        // memfd at least `len` bytes long (truncated to `len` before it was mapped, or
        // checked by `open`); no existing memory is affected.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| BenchError::io("mmap of the memfd", e.into()))?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| BenchError::Peer("mmap returned null".into()))?;
        Ok(SharedMap { ptr, len })
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mappings are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A raw pointer `offset` bytes into the mapping, `None` unless `size` bytes fit.
    pub fn at(&self, offset: usize, size: usize) -> Option<*mut u8> {
        let end = offset.checked_add(size)?;
        // SAFETY: offset ≤ end ≤ len, so the result stays inside the mapping.
        (end <= self.len).then(|| unsafe { self.ptr.as_ptr().add(offset) })
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `map`, and no reference
        // into it outlives `self` (references handed out borrow `self`).
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory reached only through atomics and raw pointers;
// moving the owner to another thread changes nothing about that.
unsafe impl Send for SharedMap {}
