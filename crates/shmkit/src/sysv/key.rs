//! [`Key`]: the 32-bit name of a System V object, explicit, private, or made by `ftok`.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sys;

/// A System V IPC key. Displayed as `0x%08x`, as `ipcs` does.
///
/// ```
/// use shmkit::sysv::Key;
/// assert_eq!(Key::new(0x1234).to_string(), "0x00001234");
/// assert!(Key::PRIVATE.is_private());
/// assert_eq!(Key::new(-1).to_string(), "0xffffffff");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(i32);

impl Key {
    /// `IPC_PRIVATE` (0): every `shmget` with it creates a new segment that no other
    /// process can find by key; share its id instead.
    ///
    /// ```
    /// assert_eq!(shmkit::sysv::Key::PRIVATE.raw(), 0);
    /// ```
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);

    /// An explicit key. `Key::new(0)` is [`Key::PRIVATE`].
    ///
    /// ```
    /// let k = shmkit::sysv::Key::new(0x5348_0001);
    /// assert_eq!(k.raw(), 0x5348_0001);
    /// ```
    pub const fn new(raw: i32) -> Key {
        Key(raw)
    }

    /// The key `ftok(path, proj)` gives, computed bit for bit as glibc does:
    /// `(proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)`, with the
    /// `stat` of `path` (symbolic links followed).
    ///
    /// Only the low 8 bits of `proj` count, as in glibc (so 0x141 and 0x41 give the same
    /// key). The result can be any 32-bit value, and three cases need care:
    ///
    /// - **0**: that is `IPC_PRIVATE`, which would silently create a new private segment
    ///   on every call instead of naming a shared one. This happens only for `proj` 0 on
    ///   a device whose low 8 bits are 0 and an inode ≡ 0 mod 65536, so it is rare, but
    ///   it is refused here with [`crate::ErrorKind::InvalidInput`]; choose another
    ///   `proj`. (Avoid `proj` 0 in general: POSIX leaves it unspecified.)
    /// - **-1** (`0xffffffff`): a valid key, but C code that tests `ftok(...) == -1` for
    ///   failure would take it for an error. It is returned as is.
    /// - **negative** (`proj >= 0x80`): valid keys; `ipcs` prints them in hex and
    ///   `/proc/sysvipc/shm` in signed decimal.
    ///
    /// Different files can give the same key (only 16 bits of the inode and 8 of the
    /// device count): use [`crate::sysv::CreateOptions::exclusive`] to detect a collision.
    ///
    /// ```
    /// use shmkit::sysv::Key;
    /// let k = Key::ftok("/", 'A' as i32)?;
    /// assert_eq!(k.raw() as u32 >> 24, 0x41);
    /// assert!(Key::ftok("/no/such/path", 1).is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn ftok(path: impl AsRef<Path>, proj: i32) -> Result<Key> {
        let path = path.as_ref();
        let (dev, ino) = sys::sysv::dev_ino(path).map_err(|e| {
            let op = "ftok";
            match e.errno() {
                Some(errno) => Error::os(op, path.display(), errno),
                None => e,
            }
        })?;
        let raw = ftok_bits(dev, ino, proj);
        if raw == 0 {
            return Err(Error::invalid(
                "ftok",
                format!("{} with proj {proj}", path.display()),
                "the key comes out as 0, which is IPC_PRIVATE and would name no shared \
                 segment; choose another proj",
            ));
        }
        Ok(Key(raw))
    }

    /// The raw `key_t` value.
    ///
    /// ```
    /// assert_eq!(shmkit::sysv::Key::new(7).raw(), 7);
    /// ```
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is [`Key::PRIVATE`].
    ///
    /// ```
    /// assert!(!shmkit::sysv::Key::new(7).is_private());
    /// ```
    pub const fn is_private(self) -> bool {
        self.0 == libc::IPC_PRIVATE
    }
}

/// glibc's ftok formula on a `stat`'s device and inode numbers.
pub(crate) fn ftok_bits(dev: u64, ino: u64, proj: i32) -> i32 {
    (((proj as u32 & 0xff) << 24) | ((dev as u32 & 0xff) << 16) | (ino as u32 & 0xffff)) as i32
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl From<i32> for Key {
    fn from(raw: i32) -> Key {
        Key(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_masks_like_glibc() {
        assert_eq!(
            ftok_bits(0x1234_5678, 0xdead_beef, 0x141) as u32,
            0x4178_beef
        );
        assert_eq!(ftok_bits(0, 0x1_0000, 0), 0);
        assert_eq!(ftok_bits(0xff, 0xffff, 0xff), -1);
        assert!(ftok_bits(1, 1, 0x80) < 0);
    }

    #[test]
    fn matches_the_c_library() {
        for (path, proj) in [("/", 1), ("/tmp", b'A' as i32), ("/proc/self", 0x80)] {
            let c = std::ffi::CString::new(path).unwrap();
            // SAFETY: a valid NUL-terminated path; ftok only stats it.
            #[allow(unsafe_code)]
            let theirs = unsafe { libc::ftok(c.as_ptr(), proj) };
            assert_eq!(
                Key::ftok(path, proj).unwrap().raw(),
                theirs,
                "{path} {proj}"
            );
        }
    }
}
