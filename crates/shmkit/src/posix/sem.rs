//! POSIX named semaphores ([`NamedSemaphore`]): `/dev/shm/sem.NAME`, opened or created
//! with a mode and an initial value; post, wait, try-wait, timed wait, value, unlink.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::sys::psem::{self, RawSem};

/// The largest value (SEM_VALUE_MAX).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// An open named semaphore; closed (not unlinked) on drop.
#[derive(Debug)]
pub struct NamedSemaphore {
    raw: RawSem,
    name: String,
}

fn object(name: &str) -> String {
    format!("/{name}")
}

fn bare(name: &str) -> Result<&str> {
    let n = name.strip_prefix('/').unwrap_or(name);
    if n.is_empty() || n.contains('/') || n.len() > 251 {
        return Err(Error::invalid(
            "sem_open",
            format!("/{n}"),
            "a semaphore name is 1 to 251 bytes without '/' after the leading one",
        ));
    }
    Ok(n)
}

impl NamedSemaphore {
    /// Opens an existing semaphore (`name` with or without the leading slash).
    pub fn open(name: &str) -> Result<NamedSemaphore> {
        let n = bare(name)?;
        let raw = psem::open(n, 0, 0, 0, &object(n))?;
        Ok(NamedSemaphore {
            raw,
            name: n.to_string(),
        })
    }

    /// Creates a semaphore with exactly the permission bits `mode` (no umask) and
    /// `value`; with `exclusive`, fails if it exists, otherwise opens an existing one
    /// (whose mode and value stay).
    pub fn create(name: &str, mode: u32, value: u32, exclusive: bool) -> Result<NamedSemaphore> {
        let n = bare(name)?;
        if value > SEM_VALUE_MAX {
            return Err(Error::invalid(
                "sem_open",
                object(n),
                format!("value {value} exceeds SEM_VALUE_MAX {SEM_VALUE_MAX}"),
            ));
        }
        let obj = object(n);
        // Create exclusively first, so that we know whether this call created it: only
        // then are the permission bits set exactly (sem_open applies the umask).
        let raw = match psem::open(n, libc::O_CREAT | libc::O_EXCL, mode & 0o777, value, &obj) {
            Ok(raw) => {
                let path = format!("/dev/shm/sem.{n}");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
                    .map_err(|e| Error::from_io("chmod", &obj, e))?;
                raw
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && !exclusive => {
                psem::open(n, 0, 0, 0, &obj)?
            }
            Err(e) => return Err(e),
        };
        Ok(NamedSemaphore {
            raw,
            name: n.to_string(),
        })
    }

    /// The name, without the leading slash.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds one.
    pub fn post(&self) -> Result<()> {
        self.raw.post(&object(&self.name))
    }

    /// Takes one, waiting as long as it takes.
    pub fn wait(&self) -> Result<()> {
        self.raw.wait(None, &object(&self.name)).map(drop)
    }

    /// Takes one if the value is positive; `false` otherwise.
    pub fn try_wait(&self) -> Result<bool> {
        self.raw.try_wait(&object(&self.name))
    }

    /// Takes one, waiting at most `timeout` (measured on CLOCK_MONOTONIC); `false` when
    /// the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.raw.wait(Some(timeout), &object(&self.name))
    }

    /// The current value.
    pub fn value(&self) -> Result<i32> {
        self.raw.value(&object(&self.name))
    }

    /// Removes the name; open handles keep working.
    pub fn unlink(name: &str) -> Result<()> {
        let n = bare(name)?;
        psem::unlink(n, &object(n))
    }
}
