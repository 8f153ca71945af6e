//! `shmkit demo`: the tour. For each mechanism, this process and a peer (this same
//! binary re-run as `shmkit demo --peer SECTION ARGS…`) exchange data and say what they
//! do at each step. Nothing is left behind: every object the tour creates is registered
//! for clean-up, which also runs on Ctrl-C (SIGINT) and SIGTERM.
//!
//! A section is a module with `tour(&Tour)` (the leading process) and `peer(&[String])`
//! (the other process), listed in [`SECTIONS`].

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

pub mod channel;
pub mod inspect;
pub mod posix;
pub mod rpc;
pub mod sync;
pub mod sysv;

/// Arguments of `shmkit demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run only these sections (by name); all by default.
    #[arg(long = "only", value_name = "SECTION")]
    only: Vec<String>,
    /// Internal: run as the peer of SECTION.
    #[arg(long, hide = true, value_name = "SECTION")]
    peer: Option<String>,
    /// Internal: the peer's arguments.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// One part of the tour.
pub struct Section {
    /// Short name, used by `--only` and `--peer`.
    pub name: &'static str,
    /// Title printed before the section.
    pub title: &'static str,
    /// The leading process's side.
    pub tour: fn(&Tour) -> Result<()>,
    /// The peer process's side, given the arguments the tour passed.
    pub peer: fn(&[String]) -> Result<()>,
}

/// Prints a line on stdout, ignoring a closed pipe (`shmkit demo | head` must still
/// clean up, so printing never fails the tour).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
#[allow(unused_imports)]
pub(crate) use out;

/// The sections, in the order of the tour.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "sysv",
        title: "System V shared memory: a request and a reply through one segment",
        tour: sysv::tour,
        peer: sysv::peer,
    },
    Section {
        name: "posix",
        title: "POSIX shared memory: a named object in /dev/shm, then a sealed memfd over a socket",
        tour: posix::tour,
        peer: posix::peer,
    },
    Section {
        name: "sync",
        title: "Synchronisation: a blocking mailbox each way, and a robust lock whose holder dies",
        tour: sync::tour,
        peer: sync::peer,
    },
    Section {
        name: "channel",
        title: "A message channel: a lock-free ring in shared memory",
        tour: channel::tour,
        peer: channel::peer,
    },
    Section {
        name: "rpc",
        title: "A request-reply channel: a call and its reply share one slot",
        tour: rpc::tour,
        peer: rpc::peer,
    },
    Section {
        name: "inspect",
        title: "Inspection: who maps what, whether its creator lives, and clean removal",
        tour: inspect::tour,
        peer: inspect::peer,
    },
];

/// Clean-up actions for the objects the tour created, run at the end of a section, at
/// exit, and from the signal handler.
static CLEANUP: Mutex<Vec<CleanupAction>> = Mutex::new(Vec::new());

/// What is cleaned up, and how.
type CleanupAction = (String, Box<dyn FnOnce() + Send>);

fn run_cleanup() {
    let actions: Vec<_> = match CLEANUP.lock() {
        Ok(mut g) => g.drain(..).collect(),
        Err(p) => p.into_inner().drain(..).collect(),
    };
    for (_, action) in actions.into_iter().rev() {
        action();
    }
}

/// What a section's tour side can do: talk, start its peer, register clean-ups.
pub struct Tour {
    _private: (),
}

impl Tour {
    /// Prints a line as the leading process.
    pub fn say(&self, msg: impl std::fmt::Display) {
        out!("  [pid {:>7} tour] {msg}", std::process::id());
    }

    /// Registers `action` to remove `what` when the section ends or the tour is
    /// interrupted. Actions run in reverse order of registration.
    pub fn on_cleanup(&self, what: impl Into<String>, action: impl FnOnce() + Send + 'static) {
        let mut g = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
        g.push((what.into(), Box::new(action)));
    }

    /// Starts the peer side of `section` with `args`; its stdout lines are printed as
    /// they come. Returns the running peer.
    pub fn spawn_peer(&self, section: &str, args: &[String]) -> Result<Peer> {
        let exe = std::env::current_exe()
            .context("cannot find the shmkit executable to start the peer")?;
        let mut child = Command::new(exe)
            .args(["demo", "--peer", section])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the peer process")?;
        let out = child.stdout.take().context("peer stdout")?;
        let printer = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => out!("{l}"),
                    Err(_) => break,
                }
            }
        });
        Ok(Peer {
            child: Some(child),
            printer: Some(printer),
        })
    }
}

/// Sleeps on the futex `word` until it holds `want`, at most `deadline`; `what` names
/// what is awaited in the error. The sections' two processes hand turns over this way.
pub fn wait_word(
    word: &std::sync::atomic::AtomicU32,
    want: u32,
    deadline: Duration,
    what: &str,
) -> Result<()> {
    let end = std::time::Instant::now() + deadline;
    loop {
        // SYNC: Acquire pairs with the other side's Release store in `publish`, so what
        // it wrote before is visible once we see the new state.
        let now = word.load(std::sync::atomic::Ordering::Acquire);
        if now == want {
            return Ok(());
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            bail!("timed out after {deadline:?} waiting for {what} (state is {now})");
        }
        shmkit::sys::futex::wait(word, now, Some(left));
    }
}

/// Stores `state` in the futex `word` and wakes the other side.
pub fn publish(word: &std::sync::atomic::AtomicU32, state: u32) {
    // SYNC: Release pairs with the Acquire load in the other side's `wait_word`: what
    // was written before this store is visible to whoever sees the state.
    word.store(state, std::sync::atomic::Ordering::Release);
    shmkit::sys::futex::wake_all(word);
}

/// Prints a line as the peer process.
pub fn peer_say(msg: impl std::fmt::Display) {
    out!("  [pid {:>7} peer] {msg}", std::process::id());
}

/// A running peer process; killed if dropped before [`Peer::wait`].
pub struct Peer {
    child: Option<Child>,
    printer: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    /// Waits for the peer to finish (at most `deadline`) and fails unless it exited 0.
    pub fn wait(mut self, deadline: Duration) -> Result<()> {
        let mut child = self.child.take().expect("peer child");
        let end = std::time::Instant::now() + deadline;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if std::time::Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the peer did not finish within {deadline:?}");
            }
            // A watchdog, not synchronisation: the peer's progress is signalled through
            // shared memory; this only bounds how long the tour waits for its exit.
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(p) = self.printer.take() {
            let _ = p.join();
        }
        if !status.success() {
            bail!("the peer failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `shmkit demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    if let Some(name) = &args.peer {
        let section = SECTIONS
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no demo section named '{name}'"))?;
        return (section.peer)(&args.rest);
    }
    for name in &args.only {
        if !SECTIONS.iter().any(|s| s.name == name) {
            let names: Vec<_> = SECTIONS.iter().map(|s| s.name).collect();
            return Err(crate::report::Usage(format!(
                "no demo section named '{name}' (sections: {})",
                names.join(", ")
            ))
            .into());
        }
    }
    ctrlc::set_handler(|| {
        eprintln!("\nshmkit: demo: interrupted; removing what the tour created");
        run_cleanup();
        std::process::exit(130);
    })
    .context("cannot install the Ctrl-C handler")?;

    out!(
        "shmkit demo: two processes talking through shared memory (pid {})",
        std::process::id()
    );
    let tour = Tour { _private: () };
    let mut result = Ok(());
    for section in SECTIONS
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
    {
        out!("\n== {} ==", section.title);
        result = (section.tour)(&tour).with_context(|| format!("section '{}'", section.name));
        run_cleanup();
        if result.is_err() {
            break;
        }
    }
    run_cleanup();
    result?;
    out!("\nThe tour is over; everything it created has been removed.");
    Ok(())
}
