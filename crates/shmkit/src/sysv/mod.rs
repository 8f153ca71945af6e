//! System V shared memory and semaphore sets: keys, segments, attachments.
pub mod sem;
