//! POSIX shared memory: named objects in /dev/shm, memfds, and their mappings.

#![allow(unsafe_code)]
mod mapping;

pub use mapping::Mapping;
