//! POSIX shared memory: named objects in /dev/shm ([`PosixShm`], named by [`ShmName`]),
//! anonymous sealable memfds passed between processes over Unix sockets ([`Memfd`]),
//! and their mappings ([`Mapping`]), which implement the same [`Region`](crate::Region)
//! access API as System V attachments.
//!
//! Nothing here removes an object implicitly: see [`UnlinkOnDrop`] for the explicit
//! owner, and the [`shm`] module docs for the SIGBUS guarantee.

#[allow(unsafe_code)]
mod mapping;
pub mod memfd;
pub mod name;
pub mod sem;
pub mod shm;

pub use mapping::Mapping;
pub use memfd::{recv_fd, send_fd, Memfd, Seals};
pub use name::ShmName;
pub use shm::{Access, CreateOptions, PosixShm, ShmInfo, UnlinkOnDrop, DEFAULT_MODE};
