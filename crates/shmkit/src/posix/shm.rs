//! [`PosixShm`]: a named POSIX shared-memory object in /dev/shm, and [`UnlinkOnDrop`],
//! the explicit owner that removes its name.
//!
//! # Ownership
//!
//! Opening, creating or mapping an object never removes it: dropping a [`PosixShm`] or a
//! [`Mapping`] closes a descriptor or unmaps memory, nothing more. The name stays in
//! /dev/shm until someone calls [`PosixShm::unlink`] or drops an [`UnlinkOnDrop`] guard,
//! which the creator takes on explicitly when it wants that. (Python's
//! `multiprocessing.shared_memory` unlinks objects a process merely attached to; shmkit
//! does not.)
//!
//! # Sizes, resizing and SIGBUS
//!
//! [`PosixShm::create`] allocates every page with `fallocate` so that a full /dev/shm is
//! reported as an [`ErrorKind::NoSpace`] error at creation,
//! and removes the name again when that fails, rather than leaving a sparse object whose
//! first touch of a missing page kills the process with SIGBUS.
//!
//! [`PosixShm::resize`] changes the size for every process. Existing mappings keep their
//! length: after growth they still see only the old bytes (map again to see more); after
//! shrinking, the pages past the new end are gone and touching them raises SIGBUS.
//! The library's own copy methods ([`Region::read_at`](crate::Region::read_at),
//! `write_at`, `fill`, `read_vec`, `read`, `write`, and taking an atomic) check the
//! object's current size with `fstat` first and return
//! [`ErrorKind::OutOfBounds`] for bytes past the end.
//! That check is not atomic with the copy: a process shrinking the object in the window
//! between the check and the copy can still cause a SIGBUS, and so can raw pointers
//! from [`Region::as_ptr`](crate::Region::as_ptr) and atomics obtained before the
//! shrink. Only an object that cannot shrink (a [`Memfd`](super::Memfd) sealed with
//! [`Seals::SHRINK`](super::Seals::SHRINK)) rules SIGBUS out completely.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::sys;
use crate::sys::posix::{FileStat, OpenMode};

use super::{Mapping, ShmName};

/// The default permission bits of a new object: read and write for the owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// Read-only or read-write access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// O_RDONLY: mappings are read-only, writes fail with
    /// [`ErrorKind::ReadOnly`].
    ReadOnly,
    /// O_RDWR.
    ReadWrite,
}

/// How [`PosixShm::create_with`] creates an object.
///
/// ```
/// use shmkit::posix::CreateOptions;
/// let opts = CreateOptions::new().mode(0o640).exclusive(false);
/// assert_eq!(opts.get_mode(), 0o640);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    mode: u32,
    exclusive: bool,
    allocate: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            mode: DEFAULT_MODE,
            exclusive: true,
            allocate: true,
        }
    }
}

impl CreateOptions {
    /// Mode 0600, exclusive, pages allocated at creation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The permission bits (the low 12 bits count). They are applied exactly with
    /// `fchmod` after creation, so the process umask does not narrow them.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// The permission bits set by [`CreateOptions::mode`].
    pub fn get_mode(&self) -> u32 {
        self.mode
    }

    /// `true` (the default): fail with [`ErrorKind::AlreadyExists`] if the name exists
    /// (O_EXCL). `false`: open the existing object instead; its mode and owner are left
    /// alone, and it is grown to the asked size if it is smaller (never shrunk).
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// `true` (the default): allocate every page now with `fallocate`, so a full /dev/shm
    /// fails here with [`ErrorKind::NoSpace`] instead of a later SIGBUS. `false`: only
    /// set the size (`ftruncate`), leaving a sparse object that uses memory as it is
    /// touched.
    pub fn allocate(mut self, allocate: bool) -> Self {
        self.allocate = allocate;
        self
    }
}

/// An open POSIX shared-memory object (a descriptor on `/dev/shm/<name>`).
///
/// Dropping it closes the descriptor; it never unlinks the name (see the
/// [module docs](self)).
///
/// ```
/// use shmkit::posix::{PosixShm, ShmName, Access};
/// use shmkit::{Region, RegionExt};
/// let name = ShmName::new(&format!("/shmkit_test_{}_doc_shm", std::process::id()))?;
/// let shm = PosixShm::create(&name, 4096)?;
/// let _owner = shm.unlink_on_drop()?; // this process removes the name at the end
/// shm.map()?.write_at(0, b"hello")?;
///
/// let other = PosixShm::open(&name, Access::ReadOnly)?;
/// assert_eq!(other.map()?.read_vec(0, 5)?, b"hello");
/// assert_eq!(other.info()?.mode, 0o600);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct PosixShm {
    fd: OwnedFd,
    name: ShmName,
    writable: bool,
    created: bool,
}

/// What [`PosixShm::info`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmInfo {
    /// The object's name.
    pub name: ShmName,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last change of the contents or size.
    pub mtime: SystemTime,
    /// Last change of the metadata (mode, owner, size).
    pub ctime: SystemTime,
    /// Inode number in /dev/shm.
    pub inode: u64,
    /// Device number of the file system holding it.
    pub dev: u64,
}

impl ShmInfo {
    fn from_stat(name: &ShmName, st: &FileStat) -> ShmInfo {
        ShmInfo {
            name: name.clone(),
            size: st.size,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            atime: to_time(st.atime),
            mtime: to_time(st.mtime),
            ctime: to_time(st.ctime),
            inode: st.ino,
            dev: st.dev,
        }
    }

    /// The metadata of the object called `name`, without opening it (so it works
    /// without read permission). A symbolic link at the name is reported as an error,
    /// not followed.
    ///
    /// ```
    /// use shmkit::posix::{ShmInfo, ShmName};
    /// let missing = ShmName::new("/shmkit_doc_surely_missing")?;
    /// assert_eq!(ShmInfo::of(&missing).unwrap_err().kind(), shmkit::ErrorKind::NotFound);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn of(name: &ShmName) -> Result<ShmInfo> {
        let st = sys::posix::lstat_name(name.bare(), &name.to_string())?;
        if !st.regular {
            return Err(Error::invalid(
                "stat",
                name,
                "not a shared-memory object (a symbolic link, directory or device stands at this name)",
            ));
        }
        Ok(ShmInfo::from_stat(name, &st))
    }
}

fn to_time((secs, nanos): (i64, u32)) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

impl PosixShm {
    /// Creates `name` exclusively with `size` bytes, mode 0600, every page allocated.
    /// See [`PosixShm::create_with`].
    pub fn create(name: &ShmName, size: u64) -> Result<PosixShm> {
        PosixShm::create_with(name, size, &CreateOptions::default())
    }

    /// Creates `name` (or, when not exclusive, opens it if it exists) for reading and
    /// writing, with `size` bytes. A new object gets exactly `opts`' mode. If sizing a
    /// new object fails (ENOSPC on a full /dev/shm, for one), the name is removed again
    /// and the error returned, so no half-made object is left behind.
    ///
    /// ```
    /// use shmkit::posix::{CreateOptions, PosixShm, ShmName};
    /// let name = ShmName::new(&format!("/shmkit_test_{}_doc_cw", std::process::id()))?;
    /// let opts = CreateOptions::new().mode(0o644).exclusive(false);
    /// let a = PosixShm::create_with(&name, 100, &opts)?;
    /// let b = PosixShm::create_with(&name, 50, &opts)?; // opens a's object
    /// assert!(a.created() && !b.created());
    /// assert_eq!(b.size()?, 100);
    /// assert_eq!(a.info()?.mode, 0o644);
    /// PosixShm::unlink(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn create_with(name: &ShmName, size: u64, opts: &CreateOptions) -> Result<PosixShm> {
        let object = name.to_string();
        // Open-or-create is O_EXCL first, then a plain open, so that we know whether we
        // made the object (and may set its mode, or must remove it on failure). A few
        // rounds cover another process removing or creating it in between.
        let mut rounds = 0;
        let (fd, created) = loop {
            match sys::posix::shm_open(
                name.bare(),
                OpenMode::CreateExclusive,
                true,
                opts.mode,
                &object,
            ) {
                Ok(fd) => break (fd, true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && !opts.exclusive => {
                    match sys::posix::shm_open(name.bare(), OpenMode::Open, true, 0, &object) {
                        Ok(fd) => break (fd, false),
                        Err(e) if e.kind() == ErrorKind::NotFound && rounds < 8 => {
                            rounds += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(e.with_hint(
                        "an object with this name exists and exclusive creation was asked",
                    ))
                }
                Err(e) => return Err(e),
            }
        };
        let shm = PosixShm {
            fd,
            name: name.clone(),
            writable: true,
            created,
        };
        if created {
            let init = (|| {
                sys::posix::fchmod(shm.fd.as_fd(), opts.mode, &object)?;
                shm.set_initial_size(size, opts.allocate)
            })();
            if let Err(e) = init {
                // Remove what we made, but only if the name still means our object.
                shm.unlink_if_same();
                return Err(e);
            }
        } else if shm.size()? < size {
            shm.set_initial_size(size, opts.allocate)?;
        }
        Ok(shm)
    }

    fn set_initial_size(&self, size: u64, allocate: bool) -> Result<()> {
        let object = self.name.to_string();
        if allocate {
            sys::posix::allocate(self.fd.as_fd(), size, &object)
        } else {
            sys::posix::ftruncate(self.fd.as_fd(), size, &object)
        }
    }

    /// Unlinks the name if it still refers to the object behind our descriptor.
    fn unlink_if_same(&self) {
        let object = self.name.to_string();
        if let (Ok(mine), Ok(there)) = (
            sys::posix::fstat(self.fd.as_fd(), &object),
            sys::posix::lstat_name(self.name.bare(), &object),
        ) {
            if (mine.dev, mine.ino) == (there.dev, there.ino) {
                let _ = sys::posix::shm_unlink(self.name.bare(), &object);
            }
        }
    }

    /// Opens the existing object `name`. A symbolic link planted at the name is not
    /// followed: it fails with ELOOP and a hint, leaving the link's target untouched.
    ///
    /// ```
    /// use shmkit::posix::{Access, PosixShm, ShmName};
    /// let name = ShmName::new("/shmkit_doc_surely_missing")?;
    /// let e = PosixShm::open(&name, Access::ReadWrite).unwrap_err();
    /// assert_eq!(e.kind(), shmkit::ErrorKind::NotFound);
    /// assert!(e.to_string().starts_with("shm_open on /shmkit_doc_surely_missing failed"));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open(name: &ShmName, access: Access) -> Result<PosixShm> {
        let writable = access == Access::ReadWrite;
        let fd = sys::posix::shm_open(name.bare(), OpenMode::Open, writable, 0, &name.to_string())?;
        Ok(PosixShm {
            fd,
            name: name.clone(),
            writable,
            created: false,
        })
    }

    /// Removes the name `name` from /dev/shm. Processes that have it open or mapped keep
    /// using the memory; it is freed when the last of them lets go.
    ///
    /// ```
    /// use shmkit::posix::{PosixShm, ShmName};
    /// let name = ShmName::new(&format!("/shmkit_test_{}_doc_unlink", std::process::id()))?;
    /// let shm = PosixShm::create(&name, 10)?;
    /// PosixShm::unlink(&name)?;
    /// assert_eq!(PosixShm::unlink(&name).unwrap_err().kind(), shmkit::ErrorKind::NotFound);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn unlink(name: &ShmName) -> Result<()> {
        sys::posix::shm_unlink(name.bare(), &name.to_string())
    }

    /// A guard that unlinks this object's name when dropped, if the name then still
    /// refers to this object (compared by device and inode, so a newer object created
    /// under the same name is left alone). Take it in the process that owns the object.
    pub fn unlink_on_drop(&self) -> Result<UnlinkOnDrop> {
        let st = sys::posix::fstat(self.fd.as_fd(), &self.name.to_string())?;
        Ok(UnlinkOnDrop {
            name: Some(self.name.clone()),
            dev: st.dev,
            ino: st.ino,
        })
    }

    /// The object's name.
    pub fn name(&self) -> &ShmName {
        &self.name
    }

    /// Whether this call created the object (always true after an exclusive create).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Whether the object was opened read-write.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The current size in bytes.
    pub fn size(&self) -> Result<u64> {
        Ok(sys::posix::fstat(self.fd.as_fd(), &self.name.to_string())?.size)
    }

    /// Size, mode, owner, times and inode, from `fstat`.
    pub fn info(&self) -> Result<ShmInfo> {
        let st = sys::posix::fstat(self.fd.as_fd(), &self.name.to_string())?;
        Ok(ShmInfo::from_stat(&self.name, &st))
    }

    /// Changes the size to `len` bytes for every process. Growth allocates the new pages
    /// (`fallocate`, so a full /dev/shm fails here); shrinking (`ftruncate`) frees them.
    ///
    /// Existing mappings keep their length: after growth they do not see the new bytes
    /// (map again); after shrinking, the library's copy methods on them return
    /// [`ErrorKind::OutOfBounds`] for bytes past the new end instead of faulting. See the
    /// [module docs](self) for what is and is not covered.
    ///
    /// ```
    /// use shmkit::posix::{PosixShm, ShmName};
    /// use shmkit::{ErrorKind, Region};
    /// let name = ShmName::new(&format!("/shmkit_test_{}_doc_resize", std::process::id()))?;
    /// let shm = PosixShm::create(&name, 8192)?;
    /// let _owner = shm.unlink_on_drop()?;
    /// let map = shm.map()?;
    /// shm.resize(4096)?;
    /// assert!(map.read_vec(0, 16).is_ok());
    /// assert_eq!(map.read_vec(4096, 16).unwrap_err().kind(), ErrorKind::OutOfBounds);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn resize(&self, len: u64) -> Result<()> {
        let object = self.name.to_string();
        let size = self.size()?;
        if len > size {
            sys::posix::allocate(self.fd.as_fd(), len, &object)
        } else if len < size {
            sys::posix::ftruncate(self.fd.as_fd(), len, &object)
        } else {
            Ok(())
        }
    }

    /// Sets the permission bits exactly.
    pub fn chmod(&self, mode: u32) -> Result<()> {
        sys::posix::fchmod(self.fd.as_fd(), mode & 0o7777, &self.name.to_string())
    }

    /// Changes the owner and/or group (`None` keeps it).
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        sys::posix::fchown(self.fd.as_fd(), uid, gid, &self.name.to_string())
    }

    /// Maps the whole object, read-write if it was opened so, else read-only.
    pub fn map(&self) -> Result<Mapping> {
        let len = self.whole_len()?;
        self.map_inner(0, len, self.writable)
    }

    /// Maps the whole object read-only, even if it was opened read-write.
    pub fn map_read_only(&self) -> Result<Mapping> {
        let len = self.whole_len()?;
        self.map_inner(0, len, false)
    }

    /// Maps `len` bytes at `offset` (a multiple of the page size), writable if the
    /// object was opened read-write. The window must lie inside the current size.
    ///
    /// ```
    /// use shmkit::posix::{PosixShm, ShmName};
    /// use shmkit::Region;
    /// let page = shmkit::sys::page_size();
    /// let name = ShmName::new(&format!("/shmkit_test_{}_doc_window", std::process::id()))?;
    /// let shm = PosixShm::create(&name, 2 * page as u64)?;
    /// let _owner = shm.unlink_on_drop()?;
    /// shm.map_window(page as u64, 100)?.write_at(0, b"second page")?;
    /// assert_eq!(shm.map()?.read_vec(page, 11)?, b"second page");
    /// assert!(shm.map_window(page as u64, page + 1).is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn map_window(&self, offset: u64, len: usize) -> Result<Mapping> {
        super::mapping::check_window(&self.name.to_string(), offset, len, self.size()?)?;
        self.map_inner(offset, len, self.writable)
    }

    fn whole_len(&self) -> Result<usize> {
        super::mapping::whole_len(&self.name.to_string(), self.size()?)
    }

    fn map_inner(&self, offset: u64, len: usize, writable: bool) -> Result<Mapping> {
        let object = self.name.to_string();
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::from_io("dup", &object, e))?;
        Mapping::new(fd, offset, len, writable, true, object)
    }

    /// The descriptor, for calls the library does not wrap.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for PosixShm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Unlinks an object's name when dropped: the explicit owner of a name.
///
/// Made by [`PosixShm::unlink_on_drop`]. On drop it removes the name if it still refers
/// to the same object (device and inode), and ignores errors (the name may be gone
/// already). Call [`UnlinkOnDrop::disarm`] to keep the object after all, or
/// [`UnlinkOnDrop::unlink_now`] to see the error.
#[derive(Debug)]
pub struct UnlinkOnDrop {
    name: Option<ShmName>,
    dev: u64,
    ino: u64,
}

impl UnlinkOnDrop {
    /// The guarded name.
    pub fn name(&self) -> Option<&ShmName> {
        self.name.as_ref()
    }

    /// Gives up the duty: the object stays after the guard drops.
    pub fn disarm(mut self) -> Option<ShmName> {
        self.name.take()
    }

    /// Unlinks now and reports the result. Fails with [`ErrorKind::NotFound`] if the
    /// name is gone, and leaves a different object now at the name alone
    /// ([`ErrorKind::NotFound`] too, with a reason saying so).
    pub fn unlink_now(mut self) -> Result<()> {
        match self.name.take() {
            Some(name) => self.unlink_name(&name),
            None => Ok(()),
        }
    }

    fn unlink_name(&self, name: &ShmName) -> Result<()> {
        let object = name.to_string();
        let st = sys::posix::lstat_name(name.bare(), &object)?;
        if (st.dev, st.ino) != (self.dev, self.ino) {
            return Err(Error::new(
                ErrorKind::NotFound,
                "shm_unlink",
                name,
                "the name now refers to a different object; left alone",
            ));
        }
        sys::posix::shm_unlink(name.bare(), &object)
    }
}

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = self.unlink_name(&name);
        }
    }
}
