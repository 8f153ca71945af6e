//! [`Memfd`]: an anonymous shared-memory file (memfd_create) with seals, passed between
//! processes over a Unix socket ([`send_fd`], [`recv_fd`]).
//!
//! A memfd has no name in /dev/shm, so nothing can leak: the memory is freed when the
//! last descriptor and mapping go. Seals ([`Seals`]) let the creator promise the
//! receiver that the size or contents will not change: a receiver that checks for
//! [`Seals::SHRINK`] can map the object with no risk of SIGBUS, and one that checks for
//! [`Seals::WRITE`] can read it knowing nobody will change it underneath.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::error::{Error, Result};
use crate::sys;
use crate::sys::posix::seal_bits;

use super::Mapping;

/// The longest memfd name the kernel accepts, in bytes.
pub const MEMFD_NAME_MAX: usize = 249;

/// A set of memfd seals (F_SEAL_*). Once added, a seal cannot be removed.
///
/// ```
/// use shmkit::posix::Seals;
/// let s = Seals::GROW | Seals::SHRINK;
/// assert!(s.contains(Seals::SHRINK));
/// assert!(!s.contains(Seals::WRITE));
/// assert_eq!(s.to_string(), "shrink,grow");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seals(u32);

impl Seals {
    /// No seal.
    pub const NONE: Seals = Seals(0);
    /// F_SEAL_SEAL: no further seals may be added.
    pub const SEAL: Seals = Seals(seal_bits::SEAL);
    /// F_SEAL_SHRINK: the size can never decrease (no SIGBUS from shrinking).
    pub const SHRINK: Seals = Seals(seal_bits::SHRINK);
    /// F_SEAL_GROW: the size can never increase.
    pub const GROW: Seals = Seals(seal_bits::GROW);
    /// F_SEAL_WRITE: the contents can never change; refused (EBUSY) while a writable
    /// shared mapping exists.
    pub const WRITE: Seals = Seals(seal_bits::WRITE);
    /// F_SEAL_FUTURE_WRITE: no new writes or writable mappings; writable mappings that
    /// exist already keep working (the creator keeps writing, receivers only read).
    pub const FUTURE_WRITE: Seals = Seals(seal_bits::FUTURE_WRITE);

    const NAMES: [(Seals, &'static str); 5] = [
        (Seals::SEAL, "seal"),
        (Seals::SHRINK, "shrink"),
        (Seals::GROW, "grow"),
        (Seals::WRITE, "write"),
        (Seals::FUTURE_WRITE, "future-write"),
    ];

    /// The raw F_SEAL_* bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Seals from raw bits (unknown bits are kept and shown in hex).
    pub fn from_bits(bits: u32) -> Seals {
        Seals(bits)
    }

    /// Whether every seal in `other` is in `self`.
    pub fn contains(self, other: Seals) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no seal is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses one seal name: `seal`, `shrink`, `grow`, `write`, `future-write`.
    pub fn from_name(name: &str) -> Option<Seals> {
        Seals::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(s, _)| *s)
    }
}

impl BitOr for Seals {
    type Output = Seals;
    fn bitor(self, rhs: Seals) -> Seals {
        Seals(self.0 | rhs.0)
    }
}

impl BitOrAssign for Seals {
    fn bitor_assign(&mut self, rhs: Seals) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for Seals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut rest = self.0;
        let mut first = true;
        for (s, n) in Seals::NAMES {
            if self.contains(s) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
                rest &= !s.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Seals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seals({self})")
    }
}

/// An anonymous, sealable shared-memory file.
///
/// ```
/// use shmkit::posix::{Memfd, Seals};
/// use shmkit::Region;
/// let m = Memfd::create("frame", 4096)?;
/// m.map()?.write_at(0, b"pixels")?;
/// m.add_seals(Seals::SHRINK | Seals::GROW)?;
/// assert!(m.seals()?.contains(Seals::SHRINK));
/// assert!(m.resize(100).is_err()); // sealed
///
/// // Hand it to another process (here: ourselves) over a Unix socket.
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// m.send(&a)?;
/// let got = Memfd::recv(&b)?;
/// assert_eq!(got.map_read_only()?.read_vec(0, 6)?, b"pixels");
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Memfd {
    fd: OwnedFd,
    /// `memfd:<name>`, for errors.
    name: String,
    writable: bool,
}

impl Memfd {
    /// Creates a memfd called `name` (shown as `memfd:<name>` in /proc; it need not be
    /// unique) with `size` bytes, close-on-exec and sealing allowed. The pages are
    /// allocated now (`fallocate`), so lack of memory fails here rather than as SIGBUS.
    pub fn create(name: &str, size: u64) -> Result<Memfd> {
        let object = format!("memfd:{name}");
        if name.len() > MEMFD_NAME_MAX {
            return Err(Error::invalid(
                "memfd_create",
                &object,
                format!(
                    "the name is {} bytes; the limit is {MEMFD_NAME_MAX}",
                    name.len()
                ),
            ));
        }
        if name.contains('\0') {
            return Err(Error::invalid(
                "memfd_create",
                &object,
                "the name contains a NUL byte",
            ));
        }
        let fd = sys::posix::memfd_create(name, &object)?;
        sys::posix::allocate(fd.as_fd(), size, &object)?;
        Ok(Memfd {
            fd,
            name: object,
            writable: true,
        })
    }

    /// Wraps a memfd descriptor received from elsewhere. Fails with
    /// [`crate::ErrorKind::InvalidInput`] if `fd` does not support seals (not a memfd).
    pub fn from_fd(fd: OwnedFd) -> Result<Memfd> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match link.strip_prefix("/memfd:") {
            Some(rest) => format!("memfd:{}", rest.strip_suffix(" (deleted)").unwrap_or(rest)),
            None => format!("fd {} ({link})", fd.as_raw_fd()),
        };
        if let Err(e) = sys::posix::get_seals(fd.as_fd(), &name) {
            return Err(if e.errno() == Some(libc::EINVAL) {
                Error::invalid("fcntl(F_GET_SEALS)", &name, "the descriptor is not a memfd")
            } else {
                e
            });
        }
        let writable = sys::posix::fd_writable(fd.as_fd(), &name)?;
        Ok(Memfd { fd, name, writable })
    }

    /// How errors name it: `memfd:<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current size in bytes.
    pub fn size(&self) -> Result<u64> {
        Ok(sys::posix::fstat(self.fd.as_fd(), &self.name)?.size)
    }

    /// Changes the size (fails with EPERM when sealed against it). Existing mappings
    /// behave as for [`PosixShm::resize`](super::PosixShm::resize).
    pub fn resize(&self, len: u64) -> Result<()> {
        let size = self.size()?;
        let r = if len > size {
            sys::posix::allocate(self.fd.as_fd(), len, &self.name)
        } else {
            sys::posix::ftruncate(self.fd.as_fd(), len, &self.name)
        };
        r.map_err(|e| self.seal_hint(e))
    }

    /// The seals in force.
    pub fn seals(&self) -> Result<Seals> {
        sys::posix::get_seals(self.fd.as_fd(), &self.name).map(Seals)
    }

    /// Adds `seals`. Fails with EPERM if [`Seals::SEAL`] is set, and with EBUSY when
    /// adding [`Seals::WRITE`] while a writable shared mapping exists.
    pub fn add_seals(&self, seals: Seals) -> Result<()> {
        sys::posix::add_seals(self.fd.as_fd(), seals.0, &self.name).map_err(|e| match e.errno() {
            Some(libc::EBUSY) => {
                e.with_hint("a writable mapping exists; drop it before sealing against writes")
            }
            Some(libc::EPERM) => {
                e.with_hint("the memfd is sealed against further seals (F_SEAL_SEAL)")
            }
            _ => e,
        })
    }

    fn seal_hint(&self, e: Error) -> Error {
        if e.errno() == Some(libc::EPERM) {
            let seals = self.seals().unwrap_or_default();
            e.with_hint(format!("the memfd is sealed: {seals}"))
        } else {
            e
        }
    }

    /// Maps the whole memfd: read-write if the descriptor allows writing and no write
    /// seal forbids it, read-only otherwise.
    pub fn map(&self) -> Result<Mapping> {
        let seals = self.seals()?;
        let writable =
            self.writable && !seals.contains(Seals::WRITE) && !seals.contains(Seals::FUTURE_WRITE);
        let len = self.whole_len()?;
        self.map_inner(0, len, writable, seals)
    }

    /// Maps the whole memfd read-only.
    pub fn map_read_only(&self) -> Result<Mapping> {
        let seals = self.seals()?;
        let len = self.whole_len()?;
        self.map_inner(0, len, false, seals)
    }

    /// Maps `len` bytes at `offset` (a multiple of the page size), writable when
    /// [`Memfd::map`] would be. The window must lie inside the current size.
    pub fn map_window(&self, offset: u64, len: usize) -> Result<Mapping> {
        let seals = self.seals()?;
        let size = self.size()?;
        super::mapping::check_window(&self.name, offset, len, size)?;
        let writable =
            self.writable && !seals.contains(Seals::WRITE) && !seals.contains(Seals::FUTURE_WRITE);
        self.map_inner(offset, len, writable, seals)
    }

    fn whole_len(&self) -> Result<usize> {
        super::mapping::whole_len(&self.name, self.size()?)
    }

    fn map_inner(&self, offset: u64, len: usize, writable: bool, seals: Seals) -> Result<Mapping> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::from_io("dup", &self.name, e))?;
        // A memfd sealed against shrinking cannot lose pages under the mapping, so the
        // per-access size check is unnecessary.
        let check_shrink = !seals.contains(Seals::SHRINK);
        Mapping::new(fd, offset, len, writable, check_shrink, self.name.clone())
    }

    /// Sends the descriptor over the Unix stream `sock` (SCM_RIGHTS). The receiver gets
    /// its own descriptor for the same memory, with the same seals.
    pub fn send(&self, sock: &UnixStream) -> Result<()> {
        send_fd(sock, self.fd.as_fd(), b"memfd")
    }

    /// Receives a memfd sent with [`Memfd::send`] (or any SCM_RIGHTS descriptor of a
    /// memfd) from `sock`, blocking until one arrives or the peer closes the socket.
    pub fn recv(sock: &UnixStream) -> Result<Memfd> {
        let mut buf = [0u8; 16];
        let (fd, _) = recv_fd(sock, &mut buf)?;
        Memfd::from_fd(fd)
    }

    /// The descriptor, for calls the library does not wrap.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sends the descriptor `fd` over the Unix stream `sock` with SCM_RIGHTS, along with
/// `payload` bytes (one zero byte if empty: ancillary data needs at least one byte).
///
/// ```
/// use std::os::fd::AsFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let file = std::fs::File::open("/dev/null").unwrap();
/// shmkit::posix::send_fd(&a, file.as_fd(), b"hi")?;
/// let mut buf = [0u8; 8];
/// let (fd, n) = shmkit::posix::recv_fd(&b, &mut buf)?;
/// assert_eq!(&buf[..n], b"hi");
/// # drop(fd); Ok::<(), shmkit::Error>(())
/// ```
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
    sys::posix::send_fd(
        sock.as_fd(),
        fd,
        payload,
        &format!("socket fd {}", sock.as_raw_fd()),
    )
}

/// Receives one descriptor from the Unix stream `sock`, with up to `buf.len()` payload
/// bytes, blocking until a message arrives. Returns the descriptor (close-on-exec) and
/// the number of payload bytes. A closed socket gives [`crate::ErrorKind::NotFound`]; a
/// message without a descriptor gives [`crate::ErrorKind::InvalidInput`].
pub fn recv_fd(sock: &UnixStream, buf: &mut [u8]) -> Result<(OwnedFd, usize)> {
    sys::posix::recv_fd(
        sock.as_fd(),
        buf,
        &format!("socket fd {}", sock.as_raw_fd()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_display_and_parse() {
        assert_eq!(Seals::NONE.to_string(), "none");
        let all = Seals::SEAL | Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::FUTURE_WRITE;
        assert_eq!(all.to_string(), "seal,shrink,grow,write,future-write");
        assert_eq!(Seals::from_bits(0x100 | 2).to_string(), "shrink,0x100");
        for n in ["seal", "shrink", "grow", "write", "future-write"] {
            assert_eq!(Seals::from_name(n).unwrap().to_string(), n);
        }
        assert!(Seals::from_name("exec").is_none());
    }
}
