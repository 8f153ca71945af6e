//! Seeing and cleaning up the IPC objects on this machine.
//!
//! - [`sysvipc`] parses `/proc/sysvipc/{shm,sem,msg}`;
//! - [`procs`] scans `/proc/*/maps` and `/proc/*/fd` once to find who maps or holds what;
//! - [`objects`] joins both with /dev/shm and /dev/mqueue into one [`Object`] list with a
//!   [`Status`] (dest, locked, unlinked but mapped, orphaned, created by shmkit);
//! - [`limits`] reads the kernel limits and usage counters;
//! - [`remove`](mod@remove) removes an object by id or name.
//!
//! ```no_run
//! let snap = shmkit::inspect::list();
//! for o in snap.objects.iter().filter(|o| o.status.orphaned) {
//!     println!("{} is orphaned", o.label());
//! }
//! ```

pub mod limits;
pub mod objects;
pub mod procs;
pub mod remove;
pub mod sysvipc;

pub use objects::{list, list_from, Kind, Object, Snapshot, Sources, Status};
pub use procs::{Use, User};
