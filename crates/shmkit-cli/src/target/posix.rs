//! POSIX objects (`/NAME`) for the object layer: a placeholder until the POSIX
//! engineer (issue 3) fills it in. Every function returns a clear "not supported yet"
//! error, so commands already accept `/NAME` and fail politely.

use std::io::{self, Write};

use serde::Serialize;
use shmkit::{Error, ErrorKind, Region};

use super::{Created, Result};

/// What `info` shows about a POSIX object.
#[derive(Clone, Debug, Serialize)]
pub struct PosixInfo {
    /// The name, with its leading slash.
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The owner's gid.
    pub gid: u32,
}

impl PosixInfo {
    /// Prints the human form.
    pub fn print_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.name)?;
        writeln!(out, "  size     {} bytes", self.size)?;
        writeln!(out, "  mode     {:04o}", self.mode)?;
        writeln!(
            out,
            "  owner    {} / {}",
            super::user_label(self.uid),
            super::group_label(self.gid)
        )
    }
}

fn unsupported(op: &'static str, name: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        op,
        format!("/{name}"),
        "POSIX objects are not supported yet",
    )
}

/// Maps the object.
pub fn attach(name: &str, _writable: bool) -> Result<Box<dyn Region>> {
    Err(unsupported("shm_open", name))
}

/// Creates the object.
pub fn create(name: &str, _size: u64, _mode: u32, _exclusive: bool) -> Result<Created> {
    Err(unsupported("shm_open", name))
}

/// Describes the object.
pub fn info(name: &str) -> Result<PosixInfo> {
    Err(unsupported("fstat", name))
}

/// Unlinks the object.
pub fn remove(name: &str) -> Result<()> {
    Err(unsupported("shm_unlink", name))
}

/// Sets the permission bits.
pub fn chmod(name: &str, _mode: u32) -> Result<()> {
    Err(unsupported("fchmod", name))
}

/// Sets owner and group.
pub fn chown(name: &str, _owner: Option<u32>, _group: Option<u32>) -> Result<()> {
    Err(unsupported("fchown", name))
}
