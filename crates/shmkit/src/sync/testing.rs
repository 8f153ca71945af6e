//! A region over private heap memory, for the unit tests of the primitives.

use std::sync::atomic::AtomicU64;

use crate::region::Region;

/// `len` bytes (rounded up to 8) of zeroed, 16-byte aligned heap memory.
pub(crate) struct Heap(Box<[AtomicU64]>);

impl Heap {
    pub(crate) fn new(len: usize) -> Heap {
        // Allocate one extra word so that the first 16-byte aligned address fits.
        Heap(
            (0..len.div_ceil(8) + 2)
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }
    fn base(&self) -> *mut u8 {
        let p = self.0.as_ptr() as *mut u8;
        p.wrapping_add(p.align_offset(16))
    }
}

// SAFETY: the atomics live as long as the struct; base() is 16-aligned inside the
// allocation and at least len bytes remain after it; atomics permit shared mutation.
#[allow(unsafe_code)]
unsafe impl Region for Heap {
    fn as_ptr(&self) -> *mut u8 {
        self.base()
    }
    fn len(&self) -> usize {
        (self.0.len() - 2) * 8
    }
    fn is_writable(&self) -> bool {
        true
    }
    fn object_name(&self) -> String {
        "heap".into()
    }
}
