//! POSIX objects (`/NAME`) for the object layer: shm_open + mmap through
//! [`shmkit::posix`]. Names are validated by [`ShmName`]; a symbolic link at a name is
//! never followed; nothing here unlinks except [`remove`].

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use shmkit::posix::{Access, CreateOptions, PosixShm, ShmInfo, ShmName};
use shmkit::Region;

use super::{Created, Result};

/// What `info` shows about a POSIX object.
#[derive(Clone, Debug, Serialize)]
pub struct PosixInfo {
    /// The name, with its leading slash.
    pub name: String,
    /// The path in /dev/shm.
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The owner's gid.
    pub gid: u32,
    /// Inode number in /dev/shm.
    pub inode: u64,
    /// Last access, seconds since the epoch.
    pub atime: i64,
    /// Last change of contents or size, seconds since the epoch.
    pub mtime: i64,
    /// Last change of metadata, seconds since the epoch.
    pub ctime: i64,
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

impl From<ShmInfo> for PosixInfo {
    fn from(i: ShmInfo) -> Self {
        PosixInfo {
            name: i.name.to_string(),
            path: i.name.path().display().to_string(),
            size: i.size,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            inode: i.inode,
            atime: secs(i.atime),
            mtime: secs(i.mtime),
            ctime: secs(i.ctime),
        }
    }
}

impl PosixInfo {
    /// Prints the human form.
    pub fn print_human(&self, out: &mut dyn Write) -> io::Result<()> {
        use super::{format_time, group_label, user_label};
        writeln!(out, "{}", self.name)?;
        writeln!(out, "  path     {}", self.path)?;
        writeln!(out, "  size     {} bytes", self.size)?;
        writeln!(out, "  mode     {:04o}", self.mode)?;
        writeln!(
            out,
            "  owner    {} / {}",
            user_label(self.uid),
            group_label(self.gid)
        )?;
        writeln!(out, "  inode    {}", self.inode)?;
        writeln!(out, "  accessed {}", format_time(self.atime))?;
        writeln!(out, "  modified {}", format_time(self.mtime))?;
        writeln!(out, "  changed  {}", format_time(self.ctime))
    }
}

fn name(bare: &str) -> Result<ShmName> {
    ShmName::new(bare)
}

/// Maps the whole object, read-write or read-only.
pub fn attach(bare: &str, writable: bool) -> Result<Box<dyn Region>> {
    let access = if writable {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let shm = PosixShm::open(&name(bare)?, access)?;
    Ok(Box::new(shm.map()?))
}

/// Creates the object with exactly `mode`; with `exclusive` false, opens an existing
/// one instead (growing it to `size` if smaller).
pub fn create(bare: &str, size: u64, mode: u32, exclusive: bool) -> Result<Created> {
    let n = name(bare)?;
    let opts = CreateOptions::new().mode(mode).exclusive(exclusive);
    let shm = PosixShm::create_with(&n, size, &opts)?;
    let info = shm.info()?;
    Ok(Created {
        object: n.to_string(),
        id: None,
        key: None,
        size: info.size,
        mode: info.mode,
    })
}

/// Describes the object (lstat: no read permission needed, links not followed).
pub fn info(bare: &str) -> Result<PosixInfo> {
    ShmInfo::of(&name(bare)?).map(PosixInfo::from)
}

/// Unlinks the object; processes that map it keep the memory until they let go.
pub fn remove(bare: &str) -> Result<()> {
    PosixShm::unlink(&name(bare)?)
}

/// Sets the permission bits.
pub fn chmod(bare: &str, mode: u32) -> Result<()> {
    PosixShm::open(&name(bare)?, Access::ReadOnly)?.chmod(mode)
}

/// Sets owner and group.
pub fn chown(bare: &str, owner: Option<u32>, group: Option<u32>) -> Result<()> {
    PosixShm::open(&name(bare)?, Access::ReadOnly)?.chown(owner, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_layer() {
        struct Guard(String);
        impl Drop for Guard {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
            }
        }
        let bare = format!("shmkit_test_{}_cli_layer", std::process::id());
        let _guard = Guard(bare.clone());
        let created = create(&bare, 100, 0o640, true).unwrap();
        assert_eq!(created.line(), format!("/{bare} size 100 mode 0640"));
        let region = attach(&bare, true).unwrap();
        region.write_at(0, b"via layer").unwrap();
        assert_eq!(
            attach(&bare, false).unwrap().read_vec(0, 9).unwrap(),
            b"via layer"
        );
        chmod(&bare, 0o600).unwrap();
        let i = info(&bare).unwrap();
        assert_eq!((i.size, i.mode), (100, 0o600));
        remove(&bare).unwrap();
        let e = info(&bare).unwrap_err();
        assert_eq!(e.kind(), shmkit::ErrorKind::NotFound);
        let e = attach("a/b", false).err().unwrap();
        assert_eq!(e.kind(), shmkit::ErrorKind::InvalidInput);
    }
}
