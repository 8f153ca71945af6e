//! System V shared memory: keys, segments, attachments.
//!
//! The classic flow, without undefined behaviour:
//!
//! 1. a [`Key`]: [`Key::PRIVATE`], an explicit number, or [`Key::ftok`];
//! 2. a [`Segment`]: [`Segment::create`] / [`Segment::options`] (mode, exclusive,
//!    huge pages), [`Segment::open`] by key, [`Segment::from_id`];
//! 3. an [`Attachment`] from [`Segment::attach`], [`Segment::attach_read_only`] or
//!    [`Segment::attach_at`], which implements [`crate::Region`] (checked copies, values,
//!    atomics) and detaches on drop;
//! 4. management: [`Segment::info`] ([`SegmentInfo`]), [`Segment::set_mode`],
//!    [`Segment::set_owner`], [`Segment::lock`], [`Segment::remove`].
//!
//! ```
//! use shmkit::{Region, RegionExt};
//! use shmkit::sysv::{Key, Segment};
//!
//! let seg = Segment::create(Key::PRIVATE, 4096)?;
//! let a = seg.attach()?;
//! a.write_at(0, b"hello\0")?;
//! a.write(64, &1234u32)?;
//! // Another process would do Segment::from_id(id)?.attach()? and read the same bytes.
//! assert_eq!(Segment::from_id(seg.id())?.attach()?.read::<u32>(64)?, 1234);
//! seg.remove()?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! Segments outlive processes: remove what you create. A segment removed while
//! attached stays usable by those attached and disappears at the last detach (see
//! [`Segment::remove`]). A child created by `fork` inherits every attachment.

mod attachment;
mod info;
mod key;
mod segment;
pub mod sem;

pub use attachment::Attachment;
pub use info::SegmentInfo;
pub use key::Key;
pub use segment::{CreateOptions, Segment};
