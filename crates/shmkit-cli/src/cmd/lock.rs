//! `shmkit lock /NAME -- COMMAND…`: run a command while holding a named robust lock,
//! like flock(1) for shared memory. The lock object (`/dev/shm/NAME`, see
//! `shmkit::sync::lock_object`) is created on first use; the command's exit code is
//! passed on; a holder killed with SIGKILL does not block the next one, which is told
//! that the previous holder died.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::Result;
use clap::Args;
use shmkit::sync::{LockError, LockObject, Locked};

use super::usage;
use crate::object::ObjectSpec;
use crate::report::{self, Usage};
use crate::value::{parse_duration, parse_mode};

/// The running command's pid (0: none), for the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Set by the signal handler: the command is to be terminated, also if the signal came
/// before its pid was stored in [`CHILD`].
static TERMINATE: AtomicBool = AtomicBool::new(false);

/// Sends SIGTERM to `pid` (0: nobody).
fn terminate(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// Arguments of `shmkit lock`.
#[derive(Args, Debug)]
#[command(
    after_help = "The lock lives in /dev/shm/NAME; remove it with 'shmkit rm /NAME' when no \
one uses it any more. If a holder is killed, the next 'shmkit lock' notices within a \
fraction of a second, says so on stderr, and runs its command. The lock is held by the \
shmkit process: if it is killed, the command it started may still be running.\n\
Exit status: the command's (128+N if a signal N ended it), 1 if the lock could not be \
taken (timeout, not recoverable) or the command could not be started, 2 on usage errors. \
Ctrl-C, SIGTERM and SIGHUP are passed on to the command as SIGTERM; the lock is released \
when it has ended.\n\
Example:\n  shmkit lock /backup --timeout 30s -- rsync -a src/ dst/"
)]
pub struct LockArgs {
    /// The lock: /NAME.
    object: String,
    /// Give up after this long (default: wait as long as it takes).
    #[arg(short, long)]
    timeout: Option<String>,
    /// Permission bits of a lock object created now, octal.
    #[arg(short, long, default_value = "600")]
    mode: String,
    /// Do not print that a previous holder died.
    #[arg(short, long)]
    quiet: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `shmkit lock`.
pub fn run(a: LockArgs) -> Result<()> {
    let name = match super::object(&a.object)? {
        ObjectSpec::Posix(n) => n,
        other => {
            return Err(Usage(format!(
                "'{other}': a lock is a POSIX object; name it /NAME"
            ))
            .into())
        }
    };
    let timeout = a
        .timeout
        .as_deref()
        .map(|t| usage(parse_duration(t)))
        .transpose()?;
    let mode = usage(parse_mode(&a.mode))?;
    let object = format!("/{name}");

    let lock = match LockObject::open_or_create(&name, mode) {
        Ok(l) => l,
        Err(e) => return Err(super::failed("lock", &object, &e).into()),
    };
    let mutex = match lock.mutex() {
        Ok(m) => m,
        Err(e) => return Err(super::failed("lock", &object, &e).into()),
    };
    let got = match timeout {
        Some(t) => mutex.lock_timeout(t),
        None => mutex.lock(),
    };
    let guard = match got {
        Ok(Locked::Clean(g)) => g,
        Ok(Locked::OwnerDied(mut g)) => {
            let previous = g.get().map(|d| d.holder_pid).unwrap_or(0);
            if !a.quiet {
                report::error(
                    "lock",
                    format!(
                        "{object}: the previous holder (pid {previous}) died while holding \
                         the lock; taking it over"
                    ),
                );
            }
            let _ = g.update(|d| d.owner_deaths = d.owner_deaths.wrapping_add(1));
            // The lock guards no user data, so there is nothing to repair.
            g.mark_consistent();
            g
        }
        Err(e) => {
            let reason = match e {
                LockError::TimedOut => format!(
                    "timed out after {:?} waiting for the lock{}",
                    timeout.unwrap_or_default(),
                    mutex
                        .holder()
                        .map(|t| format!(" (held by thread {t})"))
                        .unwrap_or_default()
                ),
                other => other.to_string(),
            };
            report::error("lock", format!("{object}: {reason}"));
            return Err(report::Reported.into());
        }
    };
    let _ = guard.update(|d| {
        d.acquisitions = d.acquisitions.wrapping_add(1);
        d.holder_pid = std::process::id();
    });

    // Ctrl-C, SIGTERM and SIGHUP are passed to the command as SIGTERM; the lock is
    // released once the command has ended, so that an interrupted run does not leave
    // the next holder an "owner died" warning.
    // A signal that arrives after the command started but before its pid is stored
    // used to be lost: the command ran on and `shmkit lock` with it.
    let _ = ctrlc::set_handler(|| {
        // SYNC: SeqCst store then load, paired with the SeqCst store of CHILD then load
        // of TERMINATE below: at least one side sees the other's store, so the command
        // gets the SIGTERM from the handler or from the spawning thread (or both).
        TERMINATE.store(true, Ordering::SeqCst);
        // SYNC: see above.
        terminate(CHILD.load(Ordering::SeqCst));
    });
    let status = Command::new(&a.command[0])
        .args(&a.command[1..])
        .spawn()
        .and_then(|mut child| {
            // SYNC: pairs with the handler's SeqCst store of TERMINATE and load of CHILD.
            CHILD.store(child.id() as i32, Ordering::SeqCst);
            // SYNC: see above.
            if TERMINATE.load(Ordering::SeqCst) {
                terminate(child.id() as i32);
            }
            let st = child.wait();
            CHILD.store(0, Ordering::Relaxed);
            st
        });
    drop(guard);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            report::error("lock", format!("{}: cannot run it: {e}", a.command[0]));
            return Err(report::Reported.into());
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
