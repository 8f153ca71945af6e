//! The one error type for setup and management calls.
//!
//! An [`Error`] names the operation that failed (`op`: usually the system call, such as
//! `shmget`, or a library step such as `read`), the object it was applied to (`key
//! 0x4100c4a7`, `id 32769`, `/name`) and the reason: an errno from the kernel, or a
//! library-level reason (a malformed name, an offset outside the object, a corrupt
//! header written by another process). Where a common errno has a common cause, the
//! message adds a hint. Hot paths (channels, locks) use their own small enums instead.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// `Result` with shmkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object does not exist (ENOENT; EINVAL from `shmctl` on a stale id).
    NotFound,
    /// The object exists and exclusive creation was asked for (EEXIST).
    AlreadyExists,
    /// Mode bits deny the access (EACCES).
    PermissionDenied,
    /// The caller is not the owner or lacks a capability (EPERM).
    NotPermitted,
    /// An argument is malformed or out of range (EINVAL, or checked by the library).
    InvalidInput,
    /// An offset or length lies outside the object.
    OutOfBounds,
    /// A write through a read-only attachment or mapping.
    ReadOnly,
    /// The object was removed while in use (EIDRM).
    Removed,
    /// A system-wide limit is reached (ENOSPC), or a file system is full.
    NoSpace,
    /// Not enough memory, or a per-user locked-memory limit (ENOMEM).
    OutOfMemory,
    /// A deadline passed before the operation could complete.
    TimedOut,
    /// The operation would block and non-blocking mode was asked for (EAGAIN).
    WouldBlock,
    /// Interrupted by a signal (EINTR).
    Interrupted,
    /// Shared memory holds something this library did not write, or that another
    /// process corrupted: wrong magic, version, kind, size or index.
    Corrupt,
    /// The operation is not supported here (ENOSYS, EOPNOTSUPP).
    Unsupported,
    /// Anything else; see [`Error::errno`].
    Other,
}

impl ErrorKind {
    /// The kind for an errno value.
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::ENOENT => ErrorKind::NotFound,
            libc::EEXIST => ErrorKind::AlreadyExists,
            libc::EACCES => ErrorKind::PermissionDenied,
            libc::EPERM => ErrorKind::NotPermitted,
            libc::EINVAL | libc::E2BIG | libc::ERANGE | libc::ENAMETOOLONG | libc::EFBIG => {
                ErrorKind::InvalidInput
            }
            libc::EIDRM => ErrorKind::Removed,
            libc::ENOSPC | libc::EMFILE | libc::ENFILE => ErrorKind::NoSpace,
            libc::ENOMEM => ErrorKind::OutOfMemory,
            libc::ETIMEDOUT => ErrorKind::TimedOut,
            libc::EAGAIN => ErrorKind::WouldBlock,
            libc::EINTR => ErrorKind::Interrupted,
            libc::ENOSYS | libc::EOPNOTSUPP => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        }
    }
}

/// An error from a setup or management call: operation, object, reason.
///
/// ```
/// use shmkit::{Error, ErrorKind};
/// let e = Error::os("shmget", "key 0x4100c4a7", libc::EACCES);
/// assert_eq!(e.kind(), ErrorKind::PermissionDenied);
/// assert_eq!(e.errno(), Some(libc::EACCES));
/// assert!(e.to_string().starts_with("shmget on key 0x4100c4a7 failed: Permission denied"));
/// ```
#[derive(Clone, Debug)]
pub struct Error {
    op: Cow<'static, str>,
    object: String,
    kind: ErrorKind,
    errno: Option<i32>,
    reason: Option<String>,
    hint: Option<Cow<'static, str>>,
}

impl Error {
    /// An error reported by the kernel: `op` on `object` failed with `errno`.
    /// A hint for common causes is added from the operation and errno.
    pub fn os(op: impl Into<Cow<'static, str>>, object: impl fmt::Display, errno: i32) -> Self {
        let op = op.into();
        let hint = default_hint(&op, errno).map(Cow::Borrowed);
        Error {
            op,
            object: object.to_string(),
            kind: ErrorKind::from_errno(errno),
            errno: Some(errno),
            reason: None,
            hint,
        }
    }

    /// An error from an [`io::Error`] or [`rustix::io::Errno`].
    pub fn from_io(
        op: impl Into<Cow<'static, str>>,
        object: impl fmt::Display,
        err: io::Error,
    ) -> Self {
        match err.raw_os_error() {
            Some(errno) => Error::os(op, object, errno),
            None => Error::new(ErrorKind::Other, op, object, err.to_string()),
        }
    }

    /// An error detected by the library, with a reason in words.
    pub fn new(
        kind: ErrorKind,
        op: impl Into<Cow<'static, str>>,
        object: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error {
            op: op.into(),
            object: object.to_string(),
            kind,
            errno: None,
            reason: Some(reason.into()),
            hint: None,
        }
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(
        op: impl Into<Cow<'static, str>>,
        object: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::new(ErrorKind::InvalidInput, op, object, reason)
    }

    /// Shorthand for [`ErrorKind::Corrupt`]: shared memory holds something unexpected.
    pub fn corrupt(
        op: impl Into<Cow<'static, str>>,
        object: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::new(ErrorKind::Corrupt, op, object, reason)
    }

    /// Replaces the hint (or adds one where there was none).
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Replaces the object description, for callers that know a better name.
    pub fn with_object(mut self, object: impl fmt::Display) -> Self {
        self.object = object.to_string();
        self
    }

    /// Replaces the kind, for callers that know better than the errno (EINVAL from
    /// `shmctl` on an id that no longer exists is [`ErrorKind::NotFound`]).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno, where the kernel reported one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The operation: a system call name such as `shmget`, or a library step.
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The object the operation was applied to, as displayed in the message.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The hint, if there is one.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The reason alone, without operation and object: "Permission denied (os error 13)"
    /// or the library's words, plus the hint.
    pub fn reason(&self) -> String {
        let mut s = match (&self.reason, self.errno) {
            (Some(r), _) => r.clone(),
            (None, Some(e)) => io::Error::from_raw_os_error(e).to_string(),
            (None, None) => "unknown error".to_string(),
        };
        if let Some(h) = &self.hint {
            s.push_str(" (");
            s.push_str(h);
            s.push(')');
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} failed: {}",
            self.op,
            self.object,
            self.reason()
        )
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e.errno {
            Some(errno) => io::Error::new(io::Error::from_raw_os_error(errno).kind(), e),
            None => io::Error::other(e),
        }
    }
}

/// Common causes of common errnos, by operation.
fn default_hint(op: &str, errno: i32) -> Option<&'static str> {
    Some(match (op, errno) {
        ("shmget", libc::EINVAL) => {
            "size larger than the existing segment or outside SHMMIN..SHMMAX"
        }
        ("shmget", libc::ENOSPC) => "the SHMMNI limit is reached, or SHMALL pages are in use",
        ("shmget", libc::ENOENT) => "no segment has this key; create it first",
        ("shmget", libc::EEXIST) => {
            "a segment with this key exists and exclusive creation was asked"
        }
        ("shmget", libc::ENOMEM) => "not enough memory for the segment",
        ("shmget", libc::EPERM) => {
            "SHM_HUGETLB needs CAP_IPC_LOCK or membership of vm.hugetlb_shm_group"
        }
        ("shmat", libc::EINVAL) => {
            "invalid id, or an address that is not page aligned (use SHM_RND) or already mapped"
        }
        ("shmat", libc::EIDRM) | ("shmctl", libc::EIDRM) => "the segment was removed",
        ("shmctl", libc::EINVAL) => "no segment has this id (it may have been removed)",
        ("shmctl", libc::ENOMEM) => "locking would exceed RLIMIT_MEMLOCK",
        ("semget", libc::EINVAL) => {
            "nsems out of range, or larger than the existing set's number of semaphores"
        }
        ("semget", libc::ENOSPC) => "the SEMMNI or SEMMNS limit is reached",
        (_, libc::EACCES) => "the mode bits do not give this user that access",
        (_, libc::EPERM) => "only the owner, the creator or a privileged user may do this",
        ("shm_open", libc::ENOENT) | ("open", libc::ENOENT) => "no object has this name",
        ("shm_open", libc::ELOOP) | ("open", libc::ELOOP) => {
            "a symbolic link stands at this name; shmkit does not follow it"
        }
        (_, libc::ENOSPC) => "the file system holding it (often /dev/shm) is full",
        (_, libc::EMFILE) => "this process has too many open files",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_op_object_reason_and_hint() {
        let e = Error::os("shmget", "key 0x4100c4a7", libc::EINVAL);
        assert_eq!(
            e.to_string(),
            "shmget on key 0x4100c4a7 failed: Invalid argument (os error 22) \
             (size larger than the existing segment or outside SHMMIN..SHMMAX)"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn library_reason_has_no_errno() {
        let e = Error::new(
            ErrorKind::OutOfBounds,
            "read",
            "id 7",
            "offset 10 + length 20 exceeds size 16",
        );
        assert_eq!(e.errno(), None);
        assert_eq!(
            e.to_string(),
            "read on id 7 failed: offset 10 + length 20 exceeds size 16"
        );
    }

    #[test]
    fn converts_to_io_error_keeping_kind() {
        let e: io::Error = Error::os("shm_open", "/x", libc::ENOENT).into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
