//! POSIX shared-memory objects: files in /dev/shm, opened the way glibc's shm_open does,
//! but never through a symbolic link.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The directory where Linux keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";

/// How to open an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing object.
    Open,
    /// Create it, failing if it exists (O_CREAT | O_EXCL).
    CreateExclusive,
    /// Create it or open the existing one (O_CREAT).
    CreateOrOpen,
}

/// shm_open(`name`) with O_NOFOLLOW | O_CLOEXEC. `name` is the bare name, without the
/// leading slash, already validated by the caller. `object` names it for errors.
pub fn shm_open(
    name: &str,
    mode: OpenMode,
    writable: bool,
    perm: u32,
    object: &str,
) -> Result<OwnedFd> {
    let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC;
    flags |= if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    match mode {
        OpenMode::Open => {}
        OpenMode::CreateExclusive => flags |= OFlags::CREATE | OFlags::EXCL,
        OpenMode::CreateOrOpen => flags |= OFlags::CREATE,
    }
    let path = format!("{SHM_DIR}/{name}");
    rustix::fs::open(path.as_str(), flags, Mode::from_raw_mode(perm))
        .map_err(|e| Error::os("shm_open", object, e.raw_os_error()))
}

/// shm_unlink(`name`): removes the name; existing mappings stay valid.
pub fn shm_unlink(name: &str, object: &str) -> Result<()> {
    let path = format!("{SHM_DIR}/{name}");
    rustix::fs::unlink(path.as_str()).map_err(|e| Error::os("shm_unlink", object, e.raw_os_error()))
}

/// What `fstat` reports about an object, in plain fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (the low 12 bits of st_mode).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Device holding the object.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Whether it is a regular file (every shared-memory object is).
    pub regular: bool,
    /// Last access, modification and status change, as (seconds, nanoseconds) since
    /// the epoch.
    pub atime: (i64, u32),
    /// See `atime`.
    pub mtime: (i64, u32),
    /// See `atime`.
    pub ctime: (i64, u32),
}

impl FileStat {
    fn from_stat(st: &rustix::fs::Stat) -> FileStat {
        FileStat {
            size: st.st_size.max(0) as u64,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            dev: st.st_dev,
            ino: st.st_ino,
            regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            atime: (st.st_atime, st.st_atime_nsec as u32),
            mtime: (st.st_mtime, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime, st.st_ctime_nsec as u32),
        }
    }
}

/// fstat(`fd`).
pub fn fstat(fd: BorrowedFd<'_>, object: &str) -> Result<FileStat> {
    rustix::fs::fstat(fd)
        .map(|st| FileStat::from_stat(&st))
        .map_err(|e| Error::os("fstat", object, e.raw_os_error()))
}

/// lstat(`/dev/shm/<name>`): the entry at the name itself, never a link's target.
pub fn lstat_name(name: &str, object: &str) -> Result<FileStat> {
    let path = format!("{SHM_DIR}/{name}");
    rustix::fs::lstat(path.as_str())
        .map(|st| FileStat::from_stat(&st))
        .map_err(|e| Error::os("stat", object, e.raw_os_error()))
}

/// fchmod(`fd`, `mode`): sets the permission bits exactly (no umask applies).
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32, object: &str) -> Result<()> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
        .map_err(|e| Error::os("fchmod", object, e.raw_os_error()))
}

/// fchown(`fd`, `uid`, `gid`); `None` leaves that id unchanged.
pub fn fchown(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>, object: &str) -> Result<()> {
    let uid = uid.map(rustix::fs::Uid::from_raw_unchecked);
    let gid = gid.map(rustix::fs::Gid::from_raw_unchecked);
    rustix::fs::fchown(fd, uid, gid).map_err(|e| Error::os("fchown", object, e.raw_os_error()))
}

/// ftruncate(`fd`, `len`): sets the size; growth is sparse (pages are allocated on
/// first touch, and may then fail with SIGBUS if the file system is full).
pub fn ftruncate(fd: BorrowedFd<'_>, len: u64, object: &str) -> Result<()> {
    rustix::fs::ftruncate(fd, len).map_err(|e| Error::os("ftruncate", object, e.raw_os_error()))
}

/// fallocate(`fd`, 0, 0, `len`): allocates every page of the first `len` bytes now and
/// extends the size to at least `len`, so a full file system shows up here as ENOSPC
/// rather than later as SIGBUS. Falls back to ftruncate where the file system does not
/// support fallocate (EOPNOTSUPP).
pub fn allocate(fd: BorrowedFd<'_>, len: u64, object: &str) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    loop {
        match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::OPNOTSUPP) => return ftruncate(fd, len, object),
            Err(e) => return Err(Error::os("fallocate", object, e.raw_os_error())),
        }
    }
}

/// Whether `fd` was opened for writing (O_RDWR or O_WRONLY).
pub fn fd_writable(fd: BorrowedFd<'_>, object: &str) -> Result<bool> {
    let fl = rustix::fs::fcntl_getfl(fd)
        .map_err(|e| Error::os("fcntl(F_GETFL)", object, e.raw_os_error()))?;
    let acc = fl & OFlags::RWMODE;
    Ok(acc == OFlags::RDWR || acc == OFlags::WRONLY)
}

/// memfd_create(`name`, MFD_CLOEXEC | MFD_ALLOW_SEALING).
pub fn memfd_create(name: &str, object: &str) -> Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::os("memfd_create", object, e.raw_os_error()))
}

/// fcntl(F_GET_SEALS): the raw F_SEAL_* bits. EINVAL means `fd` is not a memfd (or
/// another file that supports sealing).
pub fn get_seals(fd: BorrowedFd<'_>, object: &str) -> Result<u32> {
    rustix::fs::fcntl_get_seals(fd)
        .map(|s| s.bits())
        .map_err(|e| Error::os("fcntl(F_GET_SEALS)", object, e.raw_os_error()))
}

/// fcntl(F_ADD_SEALS, `bits`).
pub fn add_seals(fd: BorrowedFd<'_>, bits: u32, object: &str) -> Result<()> {
    rustix::fs::fcntl_add_seals(fd, rustix::fs::SealFlags::from_bits_retain(bits))
        .map_err(|e| Error::os("fcntl(F_ADD_SEALS)", object, e.raw_os_error()))
}

/// The raw F_SEAL_* values from the kernel's `include/uapi/linux/fcntl.h`.
pub mod seal_bits {
    /// F_SEAL_SEAL: no more seals can be added.
    pub const SEAL: u32 = 0x0001;
    /// F_SEAL_SHRINK: the size cannot decrease.
    pub const SHRINK: u32 = 0x0002;
    /// F_SEAL_GROW: the size cannot increase.
    pub const GROW: u32 = 0x0004;
    /// F_SEAL_WRITE: the contents cannot change.
    pub const WRITE: u32 = 0x0008;
    /// F_SEAL_FUTURE_WRITE: no new writable mappings or writes; existing writable
    /// mappings keep working.
    pub const FUTURE_WRITE: u32 = 0x0010;
}

/// Sends `fd` over the Unix socket `sock` with SCM_RIGHTS, together with the bytes
/// `payload` (at least one byte must travel with ancillary data; an empty payload sends
/// one zero byte).
pub fn send_fd(
    sock: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    payload: &[u8],
    object: &str,
) -> Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;
    let zero = [0u8];
    let data = if payload.is_empty() {
        &zero[..]
    } else {
        payload
    };
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::invalid("sendmsg", object, "no room for SCM_RIGHTS"));
    }
    let iov = [IoSlice::new(data)];
    loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(n) => {
                return Err(Error::new(
                    crate::ErrorKind::Other,
                    "sendmsg",
                    object,
                    format!("sent {n} of {} bytes", data.len()),
                ))
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os("sendmsg", object, e.raw_os_error())),
        }
    }
}

/// Receives one descriptor sent by [`send_fd`] on `sock`, with up to `buf.len()` payload
/// bytes. Returns the descriptor (close-on-exec) and the payload length. Extra
/// descriptors in the same message are closed; a message without one is an error.
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8], object: &str) -> Result<(OwnedFd, usize)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;
    let mut one = [0u8];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let target: &mut [u8] = if buf.is_empty() { &mut one } else { buf };
    let msg = loop {
        let mut iov = [IoSliceMut::new(target)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os("recvmsg", object, e.raw_os_error())),
        }
    };
    let mut got: Option<OwnedFd> = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                // Keep the first; the others drop (close) here.
                if got.is_none() {
                    got = Some(fd);
                }
            }
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) && got.is_none() {
        return Err(Error::invalid(
            "recvmsg",
            object,
            "the ancillary data was truncated and carried no usable descriptor",
        ));
    }
    match got {
        Some(fd) => Ok((fd, msg.bytes.min(target.len()))),
        None if msg.bytes == 0 => Err(Error::new(
            crate::ErrorKind::NotFound,
            "recvmsg",
            object,
            "the peer closed the socket before sending a descriptor",
        )),
        None => Err(Error::invalid(
            "recvmsg",
            object,
            "the message carried no descriptor (SCM_RIGHTS)",
        )),
    }
}
