//! `membarrier(2)`: an asymmetric memory barrier across processes.
//!
//! A fast path that runs all the time keeps only a compiler barrier, and the rare slow
//! path calls [`global_expedited`], which makes the kernel run a full memory barrier on
//! every CPU currently running a thread of a process that called [`register`]. Between
//! them they order a store before a later load as a pair of `SeqCst` fences would.
//!
//! The registration belongs to this process: [`registered`] tells a fast path whether it
//! may leave its fence out. A forked child starts unregistered here (a `pthread_atfork`
//! handler resets the state), so it uses real fences until it registers itself.
//!
//! The channels do not use it at present: measured against a pair of `SeqCst` fences it
//! did not pay off (see `channel::wait`); it stays here, tested, for machines where it
//! does.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};

/// Not asked yet.
const UNKNOWN: u8 = 0;
/// The kernel lacks the commands (or a seccomp filter denies them).
const UNSUPPORTED: u8 = 1;
/// `GLOBAL_EXPEDITED` works, but this process is not registered.
const SUPPORTED: u8 = 2;
/// `GLOBAL_EXPEDITED` works and this process is registered.
const REGISTERED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static ATFORK: Once = Once::new();

extern "C" fn forked_child() {
    // Async-signal-safe: one atomic store. The child re-registers on its next open.
    let s = STATE.load(Ordering::Relaxed);
    if s == REGISTERED {
        STATE.store(SUPPORTED, Ordering::Relaxed);
    }
}

fn query() -> u8 {
    let q = membarrier_query();
    if q.contains_command(MembarrierCommand::GlobalExpedited)
        && q.contains_command(MembarrierCommand::RegisterGlobalExpedited)
    {
        SUPPORTED
    } else {
        UNSUPPORTED
    }
}

/// Registers this process for [`global_expedited`] barriers, once (again after a
/// fork). Returns whether it is registered, so that its fast paths may rely on other
/// processes' [`global_expedited`] calls.
pub fn register() -> bool {
    ATFORK.call_once(|| {
        // SAFETY: the handler only performs an atomic store, which is async-signal-safe
        // as a forked child of a threaded process requires; the function lives forever.
        // A failure (ENOMEM) leaves no handler: then a forked child could believe it is
        // registered, so give up on registration altogether.
        let rc = unsafe {
            libc::pthread_atfork(None, None, Some(forked_child as unsafe extern "C" fn()))
        };
        if rc != 0 {
            STATE.store(UNSUPPORTED, Ordering::Relaxed);
        }
    });
    let mut s = STATE.load(Ordering::Relaxed);
    if s == UNKNOWN {
        s = query();
    }
    if s == SUPPORTED {
        s = match membarrier(MembarrierCommand::RegisterGlobalExpedited) {
            Ok(()) => REGISTERED,
            Err(_) => UNSUPPORTED,
        };
    }
    // Relaxed: the registration is a system call that completed before this store, so
    // a thread that reads REGISTERED reads it after the kernel took the registration.
    STATE.store(s, Ordering::Relaxed);
    s == REGISTERED
}

/// Whether this process is registered (one relaxed load: for the fast path).
#[inline]
pub fn registered() -> bool {
    STATE.load(Ordering::Relaxed) == REGISTERED
}

/// Runs a full memory barrier on every CPU that runs a thread of a registered process,
/// and on this thread. Returns false if the kernel cannot: the caller must then use a
/// `SeqCst` fence, and so must the other side.
pub fn global_expedited() -> bool {
    let mut s = STATE.load(Ordering::Relaxed);
    if s == UNKNOWN {
        s = query();
        let _ = STATE.compare_exchange(UNKNOWN, s, Ordering::Relaxed, Ordering::Relaxed);
    }
    if s == UNSUPPORTED {
        return false;
    }
    membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn registration_and_barrier_agree() {
        let supported = query() == SUPPORTED;
        assert_eq!(register(), supported);
        assert_eq!(registered(), supported);
        // Where the process could register, the barrier itself must work.
        assert_eq!(global_expedited(), supported);
    }

    #[test]
    fn a_forked_child_is_not_registered() {
        if !register() {
            return;
        }
        // SAFETY: the child only loads an atomic and calls _exit, both
        // async-signal-safe, as a forked child of a threaded process requires.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if registered() { 1 } else { 0 };
            // SAFETY: ends the child at once, without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        // The child exits at once; a deadline all the same, on its pidfd.
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).expect("a child pid"),
            rustix::process::PidfdFlags::empty(),
        )
        .expect("pidfd_open");
        let ts = rustix::time::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let ready = rustix::event::poll(&mut fds, Some(&ts)).expect("poll on the pidfd");
        if ready == 0 {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("a child pid"),
                rustix::process::Signal::KILL,
            );
        }
        let mut status = 0;
        // SAFETY: reaps the child just forked (exited, or killed above); `status` is a
        // valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(ready == 1, "the forked child did not exit within 10 s");
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status), "child status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child believed it was registered"
        );
        assert!(registered(), "the parent stays registered");
    }
}
