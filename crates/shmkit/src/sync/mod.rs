//! Synchronisation across processes: primitives placed inside shared memory, and the
//! kernel's System V and POSIX semaphores.
