//! [`ShmName`]: a validated POSIX shared-memory object name.
//!
//! The rules are glibc's for `shm_open`: the name may start with one `/` (Linux keeps
//! the object as `/dev/shm/<name>` either way), contains no other `/`, no NUL byte, is
//! not empty, and the part after the slash is at most 255 bytes (`NAME_MAX`). `.` and
//! `..` are refused too: they name directories, not objects.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The longest name, in bytes, without the leading slash (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A validated POSIX shared-memory object name, displayed as `/name`.
///
/// ```
/// use shmkit::posix::ShmName;
/// let a = ShmName::new("/psm_1234")?;
/// let b = ShmName::new("psm_1234")?;
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "/psm_1234");
/// assert_eq!(a.bare(), "psm_1234");
/// assert!(ShmName::new("/a/b").is_err());
/// assert!(ShmName::new("").is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmName {
    /// Without the leading slash.
    bare: String,
}

impl ShmName {
    /// Validates `name`; the error says which rule it breaks.
    pub fn new(name: &str) -> Result<ShmName> {
        let shown = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        let bad = |reason: &str| {
            Err(Error::invalid(
                "validate name",
                shown.escape_debug(),
                reason,
            ))
        };
        let bare = name.strip_prefix('/').unwrap_or(name);
        if bare.is_empty() {
            return bad("the name is empty (give /NAME)");
        }
        if bare.contains('/') {
            return bad("a POSIX shared-memory name has no '/' after the leading one");
        }
        if bare.contains('\0') {
            return bad("the name contains a NUL byte");
        }
        if bare.len() > NAME_MAX {
            return Err(Error::invalid(
                "validate name",
                format!("/{}...", truncate_at_char(bare, 32)),
                format!(
                    "the name is {} bytes long; the limit is {NAME_MAX} bytes",
                    bare.len()
                ),
            ));
        }
        if bare == "." || bare == ".." {
            return bad("'.' and '..' name directories, not objects");
        }
        Ok(ShmName {
            bare: bare.to_string(),
        })
    }

    /// The name without the leading slash: the file name in /dev/shm.
    pub fn bare(&self) -> &str {
        &self.bare
    }

    /// The name with its leading slash, as `shm_open` callers in C write it.
    pub fn with_slash(&self) -> String {
        format!("/{}", self.bare)
    }

    /// The object's path: `/dev/shm/<name>`.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new(crate::sys::posix::SHM_DIR).join(&self.bare)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.bare)
    }
}

impl FromStr for ShmName {
    type Err = Error;
    fn from_str(s: &str) -> Result<ShmName> {
        ShmName::new(s)
    }
}

impl TryFrom<&str> for ShmName {
    type Error = Error;
    fn try_from(s: &str) -> Result<ShmName> {
        ShmName::new(s)
    }
}

impl AsRef<ShmName> for ShmName {
    fn as_ref(&self) -> &ShmName {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn accepts_glibc_names() {
        for ok in [
            "/a",
            "a",
            "/psm_12ab",
            "/with space",
            "/ünï",
            "/.hidden",
            "/a..b",
        ] {
            let n = ShmName::new(ok).unwrap();
            assert_eq!(n.bare(), ok.trim_start_matches('/'));
        }
        let max = "x".repeat(NAME_MAX);
        assert_eq!(ShmName::new(&max).unwrap().bare().len(), 255);
        assert_eq!(ShmName::new(&format!("/{max}")).unwrap().bare().len(), 255);
    }

    #[test]
    fn rejects_with_reasons() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("/", "empty"),
            ("/a/b", "no '/'"),
            ("//a", "no '/'"),
            ("a/", "no '/'"),
            ("/a\0b", "NUL"),
            (".", "directories"),
            ("/..", "directories"),
        ];
        for (name, reason) in cases {
            let e = ShmName::new(name).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(reason), "{name:?}: {e}");
        }
        let long = "y".repeat(NAME_MAX + 1);
        let e = ShmName::new(&long).unwrap_err();
        assert!(e.to_string().contains("256 bytes long"), "{e}");
        // A multi-byte character straddling the 32-byte cut does not panic.
        let e = ShmName::new(&"é".repeat(200)).unwrap_err();
        assert!(e.to_string().contains("400 bytes"), "{e}");
    }

    #[test]
    fn displays_with_one_slash() {
        let n: ShmName = "x1".parse().unwrap();
        assert_eq!(n.to_string(), "/x1");
        assert_eq!(n.with_slash(), "/x1");
        assert_eq!(n.path(), std::path::Path::new("/dev/shm/x1"));
    }
}
