//! # shmkit: safe shared-memory IPC for Linux
//!
//! shmkit covers the whole life of a shared-memory object: System V segments
//! ([`sysv`]) and POSIX objects and memfds ([`posix`]), safe access to their bytes
//! through one API ([`Region`]), synchronisation that lives inside shared memory
//! ([`sync`]), lock-free channels ([`channel`]), and inspection of what exists on the
//! machine ([`inspect`]).
//!
//! ## Trust model
//!
//! Shared memory is untrusted input: another process, buggy, crashed half-way or
//! hostile, can write anything at any time. The safe API never hands out a Rust
//! reference over such bytes; it copies in and out at checked offsets or gives atomics.
//! Every index, length and offset read from shared memory is checked in release builds,
//! and a corrupt object yields an [`Error`] of kind [`ErrorKind::Corrupt`], never
//! undefined behaviour, a panic or a hang without a timeout.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(target_os = "linux"))]
compile_error!("shmkit supports Linux only: it relies on futexes, /proc and /dev/shm.");

pub mod channel;
pub mod error;
pub mod header;
pub mod inspect;
pub mod posix;
pub mod region;
pub mod sync;
pub mod sys;
pub mod sysv;

pub use error::{Error, ErrorKind, Result};

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
pub use region::{Region, RegionExt};
