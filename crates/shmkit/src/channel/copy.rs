//! Copying a message into the ring. Messages of up to 64 bytes are copied with a few
//! unaligned word moves inlined into the sender, instead of a call to `memcpy` whose
//! length is only known at run time: on the development VM the call cost about as much
//! as the rest of a small send.

use std::ptr::{read_unaligned, write_unaligned};

/// Copies `len` bytes from `src` to `dst`.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `len` bytes, and the two
/// ranges must not overlap (as for `std::ptr::copy_nonoverlapping`).
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: (the whole body) every access below lies within `src..src + len` or
    // `dst..dst + len` (the overlapping pairs cover the range from both ends), which
    // the caller guarantees valid and disjoint; unaligned reads and writes need no
    // alignment.
    unsafe {
        match len {
            0 => {}
            1..=3 => {
                *dst = *src;
                *dst.add(len / 2) = *src.add(len / 2);
                *dst.add(len - 1) = *src.add(len - 1);
            }
            4..=7 => {
                let a = read_unaligned(src.cast::<u32>());
                let b = read_unaligned(src.add(len - 4).cast::<u32>());
                write_unaligned(dst.cast::<u32>(), a);
                write_unaligned(dst.add(len - 4).cast::<u32>(), b);
            }
            8..=16 => {
                let a = read_unaligned(src.cast::<u64>());
                let b = read_unaligned(src.add(len - 8).cast::<u64>());
                write_unaligned(dst.cast::<u64>(), a);
                write_unaligned(dst.add(len - 8).cast::<u64>(), b);
            }
            17..=32 => {
                let a = read_unaligned(src.cast::<u128>());
                let b = read_unaligned(src.add(len - 16).cast::<u128>());
                write_unaligned(dst.cast::<u128>(), a);
                write_unaligned(dst.add(len - 16).cast::<u128>(), b);
            }
            33..=64 => {
                let a = read_unaligned(src.cast::<u128>());
                let b = read_unaligned(src.add(16).cast::<u128>());
                let c = read_unaligned(src.add(len - 32).cast::<u128>());
                let d = read_unaligned(src.add(len - 16).cast::<u128>());
                write_unaligned(dst.cast::<u128>(), a);
                write_unaligned(dst.add(16).cast::<u128>(), b);
                write_unaligned(dst.add(len - 32).cast::<u128>(), c);
                write_unaligned(dst.add(len - 16).cast::<u128>(), d);
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_length_copies_exactly_its_bytes() {
        let src: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=130 {
            let mut dst = vec![0xeeu8; len + 16];
            // SAFETY: src has at least `len` bytes, dst `len + 16`, separate vectors.
            unsafe { copy_bytes(src.as_ptr().add(1), dst.as_mut_ptr().add(8), len) };
            assert_eq!(&dst[8..8 + len], &src[1..1 + len], "length {len}");
            assert!(dst[..8].iter().all(|&b| b == 0xee), "before, length {len}");
            assert!(
                dst[8 + len..].iter().all(|&b| b == 0xee),
                "after, length {len}"
            );
        }
    }
}
