//! Lock-free message channels over shared memory.
