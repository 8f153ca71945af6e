//! POSIX shared memory: named objects in /dev/shm, memfds, and their mappings.

#![allow(unsafe_code)]
mod mapping;
pub mod sem;

pub use mapping::Mapping;
