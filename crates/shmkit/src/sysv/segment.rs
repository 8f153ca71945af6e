//! [`Segment`]: a System V shared-memory segment, by id, and how to create, open,
//! attach, inspect, change and remove it.

use super::{Attachment, Key, SegmentInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::sys;

/// A System V shared-memory segment, named by its id.
///
/// The handle owns nothing: dropping it neither detaches nor removes anything. The
/// segment lives until [`Segment::remove`] (or `ipcrm`) and the last detach, also after
/// every process has exited: remove what you create.
///
/// ```
/// use shmkit::{Region, RegionExt};
/// use shmkit::sysv::{Key, Segment};
/// let seg = Segment::create(Key::PRIVATE, 4096)?;
/// let writer = seg.attach()?;
/// writer.write_at(0, b"hello")?;
/// let reader = Segment::from_id(seg.id())?.attach_read_only()?;
/// assert_eq!(reader.read_vec(0, 5)?, b"hello");
/// assert_eq!(seg.info()?.nattch, 2);
/// seg.remove()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    id: i32,
    key: Key,
}

/// How to create a segment: permission bits, exclusive or open-or-create, huge pages.
///
/// ```
/// use shmkit::sysv::{Key, Segment};
/// let seg = Segment::options().mode(0o640).create(Key::PRIVATE, 8192)?;
/// assert_eq!(seg.info()?.mode, 0o640);
/// seg.remove()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    mode: u32,
    exclusive: bool,
    hugepages: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            mode: 0o600,
            exclusive: true,
            hugepages: false,
        }
    }
}

impl CreateOptions {
    /// The permission bits (only the low 9 count); 0o600 by default.
    ///
    /// ```
    /// let o = shmkit::sysv::Segment::options().mode(0o644);
    /// # let _ = o;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// With `true` (the default), fail with [`ErrorKind::AlreadyExists`] if a segment has
    /// the key (`IPC_EXCL`); with `false`, open the existing one instead (its size must
    /// be at least the one asked). Private keys always create.
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// # // A key in the test range, unique among live processes.
    /// # let key = Key::new(0x5348_0000 | (std::process::id() as i32 & 0xffff));
    /// let a = Segment::options().create(key, 64)?;
    /// assert!(Segment::options().create(key, 64).is_err());
    /// let b = Segment::options().exclusive(false).create(key, 64)?;
    /// assert_eq!(a.id(), b.id());
    /// a.remove()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Back the segment with huge pages (`SHM_HUGETLB`); the size is rounded up to the
    /// huge page size. Needs CAP_IPC_LOCK or membership of `vm.hugetlb_shm_group`, and
    /// reserved huge pages (`vm.nr_hugepages`); otherwise creation fails (EPERM/ENOMEM).
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// // Works only where huge pages are reserved.
    /// if let Ok(seg) = Segment::options().hugepages(true).create(Key::PRIVATE, 2 << 20) {
    ///     seg.remove()?;
    /// }
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn hugepages(mut self, hugepages: bool) -> Self {
        self.hugepages = hugepages;
        self
    }

    /// Creates (or, when not exclusive, opens) the segment of `size` bytes with `key`.
    /// New segments are zero-filled. A size of 0 is refused: Linux has no empty segment.
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::options().create(Key::PRIVATE, 100)?;
    /// assert_eq!(seg.info()?.size, 100);
    /// assert!(Segment::options().create(Key::PRIVATE, 0).is_err());
    /// seg.remove()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn create(self, key: Key, size: usize) -> Result<Segment> {
        if size == 0 {
            return Err(Error::invalid(
                "shmget",
                sys::sysv::key_object(key.raw()),
                "a segment cannot have size 0",
            ));
        }
        let mut flags = libc::IPC_CREAT | self.mode as i32;
        if self.exclusive {
            flags |= libc::IPC_EXCL;
        }
        if self.hugepages {
            flags |= libc::SHM_HUGETLB;
        }
        let id = sys::sysv::shmget(key.raw(), size, flags).map_err(|e| {
            if self.hugepages && e.errno() == Some(libc::ENOMEM) {
                e.with_hint("too few huge pages are reserved: raise vm.nr_hugepages")
            } else {
                e
            }
        })?;
        Ok(Segment { id, key })
    }
}

impl Segment {
    /// Options for [`CreateOptions::create`]: mode 0o600, exclusive, normal pages.
    ///
    /// ```
    /// let opts = shmkit::sysv::Segment::options().exclusive(false);
    /// # let _ = opts;
    /// ```
    pub fn options() -> CreateOptions {
        CreateOptions::default()
    }

    /// Creates a new segment of `size` bytes with `key`, mode 0o600, failing if one
    /// exists ([`ErrorKind::AlreadyExists`]). Use [`Key::PRIVATE`] for a segment that
    /// other processes find by id.
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 4096)?;
    /// seg.remove()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn create(key: Key, size: usize) -> Result<Segment> {
        Segment::options().create(key, size)
    }

    /// Opens the existing segment with `key`, whatever its size
    /// ([`ErrorKind::NotFound`] if none has it).
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// # let key = Key::new(0x5348_0000 | (std::process::id() as i32 & 0xffff));
    /// assert_eq!(Segment::open(key).unwrap_err().kind(), shmkit::ErrorKind::NotFound);
    /// ```
    pub fn open(key: Key) -> Result<Segment> {
        Segment::open_checked(key, 0)
    }

    /// Opens the existing segment with `key`, failing ([`ErrorKind::InvalidInput`]) if it
    /// is smaller than `size` bytes.
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// # let key = Key::new(0x5348_0000 | (std::process::id() as i32 & 0xffff));
    /// let seg = Segment::create(key, 100)?;
    /// assert_eq!(Segment::open_checked(key, 100)?.id(), seg.id());
    /// assert!(Segment::open_checked(key, 101).is_err());
    /// seg.remove()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open_checked(key: Key, size: usize) -> Result<Segment> {
        if key.is_private() {
            return Err(Error::invalid(
                "shmget",
                sys::sysv::key_object(key.raw()),
                "IPC_PRIVATE names no existing segment; open a private segment by id",
            ));
        }
        let id = sys::sysv::shmget(key.raw(), size, 0)?;
        Ok(Segment { id, key })
    }

    /// The segment with id `id`, checked to exist (it must be readable to learn its key;
    /// an unreadable one is returned with [`Key::PRIVATE`] as its key).
    ///
    /// ```
    /// use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// assert_eq!(Segment::from_id(seg.id())?, seg);
    /// seg.remove()?;
    /// assert!(Segment::from_id(seg.id()).is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn from_id(id: i32) -> Result<Segment> {
        if id < 0 {
            return Err(Error::invalid(
                "shmctl(IPC_STAT)",
                sys::sysv::id_object(id),
                "ids are not negative",
            ));
        }
        match sys::sysv::stat(id) {
            Ok(ds) => Ok(Segment {
                id,
                key: Key::new(ds.shm_perm.__key),
            }),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(Segment {
                id,
                key: Key::PRIVATE,
            }),
            Err(e) => Err(not_found(e)),
        }
    }

    /// The id.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// assert!(seg.id() >= 0);
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened with ([`Key::PRIVATE`] for private segments;
    /// see [`Segment::info`] for the current key, which becomes 0 on removal).
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// assert!(seg.key().is_private());
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn key(&self) -> Key {
        self.key
    }

    /// Attaches the segment read-write where the kernel chooses.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// use shmkit::Region;
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let a = seg.attach()?;
    /// assert!(a.is_writable() && a.len() == 64);
    /// # drop(a); seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn attach(&self) -> Result<Attachment> {
        self.do_attach(0, true, false)
    }

    /// Attaches the segment read-only (`SHM_RDONLY`): writes through the safe API are
    /// [`ErrorKind::ReadOnly`] errors, and a raw store would fault.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// use shmkit::Region;
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let a = seg.attach_read_only()?;
    /// assert_eq!(a.write_at(0, b"x").unwrap_err().kind(), shmkit::ErrorKind::ReadOnly);
    /// # drop(a); seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn attach_read_only(&self) -> Result<Attachment> {
        self.do_attach(0, false, false)
    }

    /// Attaches the segment at address `addr`, read-write or read-only. With `round`
    /// (`SHM_RND`) the address is rounded down to a multiple of SHMLBA (the page size);
    /// without it, it must be page aligned.
    ///
    /// This is safe because shmkit never passes `SHM_REMAP`: the kernel refuses
    /// ([`ErrorKind::InvalidInput`], EINVAL) any address range that overlaps an
    /// existing mapping of this process, so nothing already mapped (heap, stacks,
    /// libraries, other attachments) can be replaced. Pick a free range, for instance
    /// one that a previous attachment of the same segment occupied.
    ///
    /// ```
    /// use shmkit::Region;
    /// use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 4096)?;
    /// let first = seg.attach()?;
    /// let addr = first.addr();
    /// // Occupied: refused rather than replaced.
    /// assert!(seg.attach_at(addr, true, false).is_err());
    /// drop(first);
    /// let again = seg.attach_at(addr + 5, true, true)?; // rounded down to addr
    /// assert_eq!(again.addr(), addr);
    /// # drop(again); seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn attach_at(&self, addr: usize, writable: bool, round: bool) -> Result<Attachment> {
        if addr == 0 {
            return Err(Error::invalid(
                "shmat",
                sys::sysv::id_object(self.id),
                "address 0 asks the kernel to choose; use attach() or attach_read_only()",
            ));
        }
        self.do_attach(addr, writable, round)
    }

    fn do_attach(&self, addr: usize, writable: bool, round: bool) -> Result<Attachment> {
        let ptr = sys::sysv::shmat(self.id, addr, !writable, round).map_err(not_found)?;
        // Length 0 until the size is known; dropped (detached) if IPC_STAT fails.
        let mut att = Attachment::new(ptr, 0, writable, self.id);
        // The attachment keeps the segment alive, so IPC_STAT cannot fail for lack of
        // the segment; shmat needed at least the read permission IPC_STAT needs.
        let ds = sys::sysv::stat(self.id)?;
        att.set_len(ds.shm_segsz);
        Ok(att)
    }

    /// Everything `IPC_STAT` says: sizes, owners, pids, attach count, times, flags.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let info = seg.info()?;
    /// assert_eq!((info.id, info.size, info.nattch), (seg.id(), 64, 0));
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn info(&self) -> Result<SegmentInfo> {
        let ds = sys::sysv::stat(self.id).map_err(not_found)?;
        Ok(SegmentInfo::from_raw(self.id, &ds))
    }

    /// Changes owner and group (`IPC_SET`); only the owner, the creator or a privileged
    /// process may ([`ErrorKind::NotPermitted`]).
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let me = seg.info()?;
    /// seg.set_owner(me.uid, me.gid)?;
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn set_owner(&self, uid: u32, gid: u32) -> Result<()> {
        let mut ds = sys::sysv::stat(self.id).map_err(not_found)?;
        ds.shm_perm.uid = uid;
        ds.shm_perm.gid = gid;
        sys::sysv::set(self.id, &ds).map_err(not_found)
    }

    /// Changes the permission bits (`IPC_SET`; only the low 9 bits count).
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// seg.set_mode(0o644)?;
    /// assert_eq!(seg.info()?.mode, 0o644);
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        if mode > 0o777 {
            return Err(Error::invalid(
                "shmctl(IPC_SET)",
                sys::sysv::id_object(self.id),
                format!("mode {mode:o} has bits outside 0777"),
            ));
        }
        let mut ds = sys::sysv::stat(self.id).map_err(not_found)?;
        ds.shm_perm.mode = mode as libc::c_ushort;
        sys::sysv::set(self.id, &ds).map_err(not_found)
    }

    /// Removes the segment (`IPC_RMID`), following the kernel's semantics:
    ///
    /// - with nobody attached it is destroyed at once;
    /// - otherwise it is marked *dest* ([`SegmentInfo::dest`]), its key becomes 0
    ///   (`IPC_PRIVATE`) so that no `shmget` finds it, the processes attached keep
    ///   reading and writing it, new `shmat` by id still works on Linux, and it is
    ///   destroyed at the last detach.
    ///
    /// ```
    /// use shmkit::{Region, RegionExt};
    /// use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 64)?;
    /// let a = seg.attach()?;
    /// seg.remove()?;
    /// a.write(0, &7u32)?; // still usable
    /// assert!(seg.info()?.dest);
    /// drop(a); // destroyed now
    /// assert!(seg.info().is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn remove(&self) -> Result<()> {
        sys::sysv::rmid(self.id).map_err(not_found)
    }

    /// Locks the pages in memory (`SHM_LOCK`): they are not swapped out. Needs
    /// CAP_IPC_LOCK or enough `RLIMIT_MEMLOCK` as the owner.
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 4096)?;
    /// if seg.lock().is_ok() {
    ///     assert!(seg.info()?.locked);
    ///     seg.unlock()?;
    ///     assert!(!seg.info()?.locked);
    /// }
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn lock(&self) -> Result<()> {
        sys::sysv::lock(self.id, true).map_err(not_found)
    }

    /// Undoes [`Segment::lock`] (`SHM_UNLOCK`).
    ///
    /// ```
    /// # use shmkit::sysv::{Key, Segment};
    /// let seg = Segment::create(Key::PRIVATE, 4096)?;
    /// seg.unlock()?; // unlocking an unlocked segment is fine
    /// # seg.remove()?; Ok::<(), shmkit::Error>(())
    /// ```
    pub fn unlock(&self) -> Result<()> {
        sys::sysv::lock(self.id, false).map_err(not_found)
    }
}

/// shmat and shmctl report a stale id as EINVAL (or EIDRM); give it the kind
/// [`ErrorKind::NotFound`] while keeping the errno and message.
fn not_found(e: Error) -> Error {
    if matches!(e.errno(), Some(libc::EINVAL) | Some(libc::EIDRM)) && !e.op().starts_with("shmget")
    {
        // Re-check: is the id gone, or was something else invalid (address, mode)?
        if let Some(id) = e
            .object()
            .strip_prefix("id ")
            .and_then(|s| s.parse::<i32>().ok())
        {
            if matches!(sys::sysv::stat(id), Err(ref s) if s.errno() != Some(libc::EACCES)) {
                return e.with_kind(ErrorKind::NotFound);
            }
        }
    }
    e
}
