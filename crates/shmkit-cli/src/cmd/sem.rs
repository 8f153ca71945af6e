//! `shmkit sem`: System V semaphore sets (`key:K`, `ftok:PATH:PROJ`, `id:N`, or
//! `private` to create one) and POSIX named semaphores (`/NAME`) from the shell:
//! create, info, get, set, post, wait (with a timeout), rm.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use shmkit::posix::sem::NamedSemaphore;
use shmkit::sysv::sem::{Create, SemSet, IPC_NOWAIT, SEMVMX, SEM_UNDO};
use shmkit::sysv::Key;
use shmkit::ErrorKind;

use super::usage;
use crate::object::ObjectSpec;
use crate::report::{self, Usage};
use crate::value::{parse_duration, parse_mode};

/// Arguments of `shmkit sem`.
#[derive(Args, Debug)]
#[command(
    after_help = "Objects: key:K, ftok:PATH:PROJ or id:N name a System V semaphore set \
(the semaphore within it is chosen with --num); /NAME names a POSIX named semaphore \
(/dev/shm/sem.NAME). 'sem create private' makes an IPC_PRIVATE set and prints its id.\n\
Examples:\n  shmkit sem create key:0x5348aa01 --count 2 --value 1\n  \
shmkit sem wait key:0x5348aa01 --timeout 5s --undo\n  shmkit sem post /jobs\n  \
shmkit sem set key:0x5348aa01 3 0"
)]
pub struct SemArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a semaphore set (System V) or a named semaphore (POSIX).
    Create {
        /// key:K, ftok:PATH:PROJ, private, or /NAME.
        object: String,
        /// System V: number of semaphores in the set.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: i32,
        /// Initial value (of every semaphore of a set).
        #[arg(short, long, default_value_t = 0)]
        value: u32,
        /// Permission bits, octal.
        #[arg(short, long, default_value = "600")]
        mode: String,
        /// Fail if it exists (otherwise an existing one is left as it is).
        #[arg(short = 'x', long)]
        exclusive: bool,
    },
    /// Show owner, mode, values and waiters.
    Info {
        /// Objects.
        #[arg(required = true)]
        objects: Vec<String>,
    },
    /// Print the value of a semaphore (a set: --num, or all with --all).
    Get {
        /// The object.
        object: String,
        /// Semaphore number within a set.
        #[arg(long, default_value_t = 0)]
        num: u16,
        /// Every value of the set, one per line.
        #[arg(long)]
        all: bool,
    },
    /// Set values of a System V set: one value (for --num) or one per semaphore.
    Set {
        /// The object.
        object: String,
        /// The value(s), 0..=32767.
        #[arg(required = true)]
        values: Vec<i32>,
        /// Semaphore number, when one value is given.
        #[arg(long, default_value_t = 0)]
        num: u16,
    },
    /// Add to a semaphore (System V: --count units at once).
    Post {
        /// The object.
        object: String,
        /// Semaphore number within a set.
        #[arg(long, default_value_t = 0)]
        num: u16,
        /// Units to add (at least 1).
        #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// System V: SEM_UNDO (the kernel undoes it when this process exits).
        #[arg(long)]
        undo: bool,
    },
    /// Take from a semaphore, waiting at most --timeout.
    Wait {
        /// The object.
        object: String,
        /// Semaphore number within a set.
        #[arg(long, default_value_t = 0)]
        num: u16,
        /// Units to take (at least 1).
        #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// Give up after this long (0: do not wait at all).
        #[arg(short, long, default_value = "60s")]
        timeout: String,
        /// System V: SEM_UNDO (the units return when this process exits).
        #[arg(long)]
        undo: bool,
    },
    /// Remove sets or named semaphores.
    Rm {
        /// Objects.
        #[arg(required = true)]
        objects: Vec<String>,
    },
}

/// What a command line names.
enum Target {
    Sysv(ObjectSpec),
    Private,
    Posix(String),
}

fn target(s: &str) -> Result<Target, Usage> {
    if s == "private" {
        return Ok(Target::Private);
    }
    match super::object(s)? {
        ObjectSpec::Posix(n) => Ok(Target::Posix(n)),
        spec => Ok(Target::Sysv(spec)),
    }
}

fn key_of(spec: &ObjectSpec) -> shmkit::Result<Key> {
    match spec {
        ObjectSpec::SysvKey(k) => Ok(Key::new(*k)),
        ObjectSpec::Ftok { path, proj } => Key::ftok(path, *proj as i32),
        _ => Err(shmkit::Error::invalid(
            "semget",
            spec,
            "name a set by key:K or ftok:PATH:PROJ",
        )),
    }
}

fn open_set(spec: &ObjectSpec) -> shmkit::Result<SemSet> {
    match spec {
        ObjectSpec::SysvId(id) => SemSet::from_id(*id),
        _ => SemSet::get(key_of(spec)?, 0, Create::Open, 0),
    }
}

fn print(line: impl std::fmt::Display) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")?;
    Ok(())
}

/// Runs `shmkit sem`.
pub fn run(a: SemArgs) -> Result<()> {
    match a.action {
        Action::Create {
            object,
            count,
            value,
            mode,
            exclusive,
        } => {
            let mode = usage(parse_mode(&mode))?;
            let t = target(&object)?;
            one(&object, || create(t, count, value, mode, exclusive))
        }
        Action::Info { objects } => {
            let targets: Vec<_> = objects
                .iter()
                .map(|o| target(o))
                .collect::<Result<_, _>>()?;
            let mut ok = true;
            for (o, t) in objects.iter().zip(targets) {
                if let Err(e) = info(t) {
                    if report::is_broken_pipe(&e) {
                        return Err(e);
                    }
                    report_failure(o, &e);
                    ok = false;
                }
            }
            if ok {
                Ok(())
            } else {
                Err(report::Reported.into())
            }
        }
        Action::Get { object, num, all } => {
            let t = target(&object)?;
            one(&object, || match t {
                Target::Posix(n) => print(NamedSemaphore::open(&n)?.value()?),
                Target::Sysv(spec) => {
                    let set = open_set(&spec)?;
                    if all {
                        for v in set.values()? {
                            print(v)?;
                        }
                        Ok(())
                    } else {
                        print(set.value(num)?)
                    }
                }
                Target::Private => Err(Usage("give the set's id:N".into()).into()),
            })
        }
        Action::Set {
            object,
            values,
            num,
        } => {
            for v in &values {
                if !(0..=SEMVMX).contains(v) {
                    return Err(Usage(format!("value {v} is outside 0..={SEMVMX} (SEMVMX)")).into());
                }
            }
            let t = target(&object)?;
            one(&object, || match t {
                Target::Sysv(spec) => {
                    let set = open_set(&spec)?;
                    if values.len() == 1 {
                        set.set_value(num, values[0])?;
                    } else {
                        set.set_values(&values)?;
                    }
                    Ok(())
                }
                Target::Posix(_) => {
                    Err(Usage("a POSIX semaphore cannot be set; use post and wait".into()).into())
                }
                Target::Private => Err(Usage("give the set's id:N".into()).into()),
            })
        }
        Action::Post {
            object,
            num,
            count,
            undo,
        } => {
            let t = target(&object)?;
            one(&object, || match t {
                Target::Posix(n) => {
                    let s = NamedSemaphore::open(&n)?;
                    for _ in 0..count {
                        s.post()?;
                    }
                    Ok(())
                }
                Target::Sysv(spec) => {
                    let n = i16::try_from(count)
                        .map_err(|_| Usage(format!("--count {count} exceeds 32767")))?;
                    let flags = if undo { SEM_UNDO } else { 0 };
                    Ok(open_set(&spec)?.add(num, n, flags, None)?)
                }
                Target::Private => Err(Usage("give the set's id:N".into()).into()),
            })
        }
        Action::Wait {
            object,
            num,
            count,
            timeout,
            undo,
        } => {
            let timeout = usage(parse_duration(&timeout))?;
            let t = target(&object)?;
            one(&object, || match t {
                Target::Posix(n) => {
                    let s = NamedSemaphore::open(&n)?;
                    let end = std::time::Instant::now() + timeout;
                    for _ in 0..count {
                        let left = end.saturating_duration_since(std::time::Instant::now());
                        let got = if left.is_zero() {
                            s.try_wait()?
                        } else {
                            s.wait_timeout(left)?
                        };
                        if !got {
                            return Err(shmkit::Error::new(
                                ErrorKind::TimedOut,
                                "sem_wait",
                                format!("/{n}"),
                                format!("the value stayed 0 for {timeout:?}"),
                            )
                            .into());
                        }
                    }
                    Ok(())
                }
                Target::Sysv(spec) => {
                    let n = i16::try_from(count)
                        .map_err(|_| Usage(format!("--count {count} exceeds 32767")))?;
                    let mut flags = if undo { SEM_UNDO } else { 0 };
                    let wait = if timeout.is_zero() {
                        flags |= IPC_NOWAIT;
                        None
                    } else {
                        Some(timeout)
                    };
                    Ok(open_set(&spec)?.add(num, -n, flags, wait)?)
                }
                Target::Private => Err(Usage("give the set's id:N".into()).into()),
            })
        }
        Action::Rm { objects } => {
            let targets: Vec<_> = objects
                .iter()
                .map(|o| target(o))
                .collect::<Result<_, _>>()?;
            let mut ok = true;
            for (o, t) in objects.iter().zip(targets) {
                let r: Result<()> = match t {
                    Target::Posix(n) => NamedSemaphore::unlink(&n).map_err(Into::into),
                    Target::Sysv(spec) => {
                        open_set(&spec).and_then(|s| s.remove()).map_err(Into::into)
                    }
                    Target::Private => Err(Usage("give the set's id:N".into()).into()),
                };
                if let Err(e) = r {
                    if e.downcast_ref::<Usage>().is_some() {
                        return Err(e);
                    }
                    report_failure(o, &e);
                    ok = false;
                }
            }
            if ok {
                Ok(())
            } else {
                Err(report::Reported.into())
            }
        }
    }
}

/// Runs the operation on one object, reporting a library failure as
/// `shmkit: sem: OBJECT: op failed: reason` (exit 1); usage errors pass through.
fn one(object: &str, op: impl FnOnce() -> Result<()>) -> Result<()> {
    match op() {
        Ok(()) => Ok(()),
        Err(e) if e.downcast_ref::<Usage>().is_some() || report::is_broken_pipe(&e) => Err(e),
        Err(e) => {
            report_failure(object, &e);
            Err(report::Reported.into())
        }
    }
}

fn report_failure(object: &str, e: &anyhow::Error) {
    match e.downcast_ref::<shmkit::Error>() {
        Some(le) => report::error("sem", report::object_error(object, le)),
        None => report::error("sem", format!("{object}: {e:#}")),
    }
}

fn create(t: Target, count: i32, value: u32, mode: u32, exclusive: bool) -> Result<()> {
    match t {
        Target::Posix(n) => {
            NamedSemaphore::create(&n, mode, value, exclusive)?;
            Ok(())
        }
        Target::Private | Target::Sysv(_) => {
            if value > SEMVMX as u32 {
                return Err(
                    Usage(format!("value {value} is outside 0..={SEMVMX} (SEMVMX)")).into(),
                );
            }
            let key = match &t {
                Target::Private => Key::PRIVATE,
                Target::Sysv(ObjectSpec::SysvId(_)) => {
                    return Err(
                        Usage("create a set by key:K, ftok:PATH:PROJ or private".into()).into(),
                    )
                }
                Target::Sysv(spec) => key_of(spec)?,
                Target::Posix(_) => unreachable!("handled above"),
            };
            let how = if exclusive || key.is_private() {
                Create::Exclusive
            } else {
                Create::IfMissing
            };
            let set = SemSet::get(key, count, how, mode)?;
            // Only a fresh set (never operated on) gets the initial values.
            if set.stat()?.otime == 0 && value > 0 {
                set.set_values(&vec![value as i32; count as usize])?;
            }
            print(set.id())
        }
    }
}

fn info(t: Target) -> Result<()> {
    match t {
        Target::Posix(n) => {
            let s = NamedSemaphore::open(&n)?;
            let path = format!("/dev/shm/sem.{n}");
            let meta = std::fs::metadata(&path);
            print(format!("POSIX named semaphore /{n} ({path})"))?;
            print(format!("  value: {}", s.value()?))?;
            if let Ok(m) = meta {
                use std::os::unix::fs::MetadataExt;
                print(format!(
                    "  owner: uid {} gid {}, mode {:04o}",
                    m.uid(),
                    m.gid(),
                    m.mode() & 0o7777
                ))?;
            }
            Ok(())
        }
        Target::Sysv(spec) => {
            let set = open_set(&spec)?;
            let st = set.stat()?;
            print(format!(
                "System V semaphore set {} (key {:#010x})",
                set.id(),
                st.key as u32
            ))?;
            print(format!(
                "  owner: uid {} gid {}, creator uid {} gid {}, mode {:04o}",
                st.uid,
                st.gid,
                st.cuid,
                st.cgid,
                st.mode & 0o777
            ))?;
            print(format!(
                "  semaphores: {}, last semop: {}, last change: {}",
                st.nsems,
                if st.otime == 0 {
                    "never".to_string()
                } else {
                    format!("{} (unix time)", st.otime)
                },
                st.ctime
            ))?;
            let values = set.values()?;
            for (i, v) in values.iter().enumerate() {
                let n = i as u16;
                print(format!(
                    "  [{i}] value {v}, last pid {}, waiting for increase {}, for zero {}",
                    set.last_pid(n)?,
                    set.waiting_for_increase(n)?,
                    set.waiting_for_zero(n)?
                ))?;
            }
            Ok(())
        }
        Target::Private => Err(Usage("give the set's id:N".into()).into()),
    }
}
