//! The peer process: started by the leading process as `<peer command> <plan as JSON>`,
//! it pins itself, opens its endpoint and follows the plan.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::harness::{self, Plan};
use crate::{affinity, transport, BenchError, Result};

static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of a descriptor inherited from the leading process, once.
pub fn take_fd(fd: RawFd) -> Result<OwnedFd> {
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    if fd < 3 || taken.contains(&fd) {
        return Err(BenchError::Peer(format!(
            "descriptor {fd} is not an inherited one"
        )));
    }
    // SAFETY: F_GETFD only inspects the descriptor table; an invalid number gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(BenchError::io(
            &format!("inherited descriptor {fd}"),
            std::io::Error::last_os_error(),
        ));
    }
    taken.push(fd);
    // SAFETY: the descriptor is open (checked above), was inherited for this peer alone,
    // and is taken at most once (recorded in TAKEN), so nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs the peer side of one transport run, given the plan as JSON.
pub fn main(plan_json: &str) -> Result<()> {
    // Die with the leading process, whatever kills it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| BenchError::io("prctl(PR_SET_PDEATHSIG)", e.into()))?;
    let plan: Plan = serde_json::from_str(plan_json)
        .map_err(|e| BenchError::Usage(format!("bad peer plan: {e}")))?;
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
    if parent != Some(plan.parent) {
        return Err(BenchError::Peer(
            "the leading process is gone (or this was not started by it)".into(),
        ));
    }
    if let Some(core) = plan.core {
        affinity::pin(core)?;
    }
    let deadline = Instant::now() + Duration::from_millis(plan.timeout_ms);
    let mut ep = transport::open_peer(&plan.spec, deadline)?;
    harness::follow(ep.as_mut(), &plan, deadline)
}
