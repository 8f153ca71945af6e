//! Pinning the two processes to different cores.

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

use crate::{BenchError, Result};

/// The cores this process may run on, in increasing order.
pub fn allowed_cores() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Pins the calling thread (the whole process, when called before other threads start)
/// to `core`.
pub fn pin(core: usize) -> Result<()> {
    if core >= CpuSet::MAX_CPU {
        return Err(BenchError::Usage(format!("core {core} is out of range")));
    }
    let mut set = CpuSet::new();
    set.set(core);
    sched_setaffinity(None, &set)
        .map_err(|e| BenchError::io(&format!("sched_setaffinity to core {core}"), e.into()))
}

/// The default pair: the first two allowed cores, or none when fewer than two.
pub fn default_pair() -> Option<(usize, usize)> {
    let cores = allowed_cores();
    (cores.len() >= 2).then(|| (cores[0], cores[1]))
}
