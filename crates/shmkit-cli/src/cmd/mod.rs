//! The subcommands, one module each, and the helpers they share: parsing objects and
//! values into usage errors, printing to a stdout that may be closed, reporting
//! per-object failures.

use std::fmt;

use clap::Subcommand;

use crate::object::ObjectSpec;
use crate::report::{self, Usage};

pub mod bench;
pub mod call;
pub mod channel;
pub mod chmod;
pub mod chown;
pub mod compat;
pub mod create;
pub mod demo;
pub mod info;
pub mod limits;
pub mod lock;
pub mod ls;
pub mod messages;
pub mod read;
pub mod recv;
pub mod rm;
pub mod sem;
pub mod send;
pub mod serve;
pub mod wait;
pub mod write;

/// Every subcommand of `shmkit`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a System V segment (by key, by ftok, or private) or a POSIX object.
    Create(create::CreateArgs),
    /// Show everything known about objects (owner, size, mode, attach count, times).
    Info(info::InfoArgs),
    /// Read bytes from an object: text, raw, a hex dump, or typed values.
    Read(read::ReadArgs),
    /// Write bytes into an object: text, a C string, hex bytes, a typed value, or stdin.
    Write(write::WriteArgs),
    /// Wait until the bytes or value at an offset change, or equal a given value.
    Wait(wait::WaitArgs),
    /// Remove objects (System V: destroyed at the last detach).
    Rm(rm::RmArgs),
    /// Change the permission bits of objects.
    Chmod(chmod::ChmodArgs),
    /// Change the owner and/or group of objects.
    Chown(chown::ChownArgs),
    /// System V semaphore sets and POSIX named semaphores: create, info, get, set, post,
    /// wait, rm.
    Sem(sem::SemArgs),
    /// Run a command while holding a named robust lock (like flock(1)).
    Lock(lock::LockArgs),
    /// List every IPC object: System V, POSIX, named semaphores, message queues, memfds.
    Ls(ls::LsArgs),
    /// Kernel IPC limits and what is in use.
    Limits(limits::LimitsArgs),
    /// The tour: two processes talking through every mechanism, nothing left behind.
    Demo(demo::DemoArgs),
    /// Measure shmkit against pipes, sockets, message queues and the floor, side by side.
    Bench(Box<bench::BenchArgs>),
    /// Create, describe and remove channels: spsc, mpsc, broadcast, rpc (request-reply).
    Channel(channel::ChannelArgs),
    /// Send standard input into a channel, one message per line (or frame).
    Send(send::SendArgs),
    /// Receive messages from a channel to standard output.
    Recv(recv::RecvArgs),
    /// Call a request-reply (rpc) channel: one request per line (or frame) of standard
    /// input, each reply to standard output.
    Call(call::CallArgs),
    /// Answer a request-reply (rpc) channel: run a command per request (request on its
    /// stdin, reply from its stdout), or `--echo`.
    Serve(serve::ServeArgs),
    /// Drop-in util-linux ipcs: same options, byte-identical output for System V objects.
    Ipcs(compat::CompatArgs),
    /// Drop-in util-linux ipcrm (refuses the `-a msg` foot-gun; see `shmkit ipcrm --help`).
    Ipcrm(compat::CompatArgs),
    /// Drop-in util-linux ipcmk (creates with IPC_EXCL).
    Ipcmk(compat::CompatArgs),
}

impl Command {
    /// The verb used in error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Info(_) => "info",
            Command::Read(_) => "read",
            Command::Write(_) => "write",
            Command::Wait(_) => "wait",
            Command::Rm(_) => "rm",
            Command::Chmod(_) => "chmod",
            Command::Chown(_) => "chown",
            Command::Sem(_) => "sem",
            Command::Lock(_) => "lock",
            Command::Demo(_) => "demo",
            Command::Bench(_) => "bench",
            Command::Channel(_) => "channel",
            Command::Send(_) => "send",
            Command::Recv(_) => "recv",
            Command::Call(_) => "call",
            Command::Serve(_) => "serve",
            Command::Ls(_) => "ls",
            Command::Limits(_) => "limits",
            Command::Ipcs(_) => "ipcs",
            Command::Ipcrm(_) => "ipcrm",
            Command::Ipcmk(_) => "ipcmk",
        }
    }
}

/// Runs a subcommand.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(a) => create::run(a),
        Command::Info(a) => info::run(a),
        Command::Read(a) => read::run(a),
        Command::Write(a) => write::run(a),
        Command::Wait(a) => wait::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Chmod(a) => chmod::run(a),
        Command::Chown(a) => chown::run(a),
        Command::Sem(a) => sem::run(a),
        Command::Lock(a) => lock::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(*a),
        Command::Channel(a) => channel::run(a),
        Command::Send(a) => send::run(a),
        Command::Recv(a) => recv::run(a),
        Command::Call(a) => call::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Limits(a) => limits::run(a),
        Command::Ipcs(a) => compat::exit_with("ipcs", &a.args),
        Command::Ipcrm(a) => compat::exit_with("ipcrm", &a.args),
        Command::Ipcmk(a) => compat::exit_with("ipcmk", &a.args),
    }
}

/// Parses an object named on the command line; a malformed one is a usage error.
pub fn object(s: &str) -> Result<ObjectSpec, Usage> {
    s.parse::<ObjectSpec>().map_err(Usage)
}

/// Parses every object first, so that one malformed name changes nothing.
pub fn objects(list: &[String]) -> Result<Vec<ObjectSpec>, Usage> {
    list.iter().map(|s| object(s)).collect()
}

/// Where `read` and `wait` look: the object, the format, the offset and the optional
/// length, as given on the command line.
pub struct Window {
    /// The object.
    pub spec: ObjectSpec,
    /// How the bytes are shown (and, for a type, how many there are).
    pub format: crate::value::Format,
    /// The first byte.
    pub offset: usize,
    /// The number of bytes, when given.
    pub length: Option<usize>,
}

impl Window {
    /// Parses the arguments `read` and `wait` share; a malformed one is a usage error.
    pub fn parse(
        object_arg: &str,
        format: &str,
        offset: &str,
        length: Option<&str>,
    ) -> Result<Window, Usage> {
        use crate::value::{parse_usize, Format};
        Ok(Window {
            spec: object(object_arg)?,
            format: usage(Format::parse(format))?,
            offset: usage(parse_usize(offset))?,
            length: length.map(parse_usize).transpose().map_err(Usage)?,
        })
    }
}

/// Turns a parser's message into a usage error.
pub fn usage<T>(r: Result<T, String>) -> Result<T, Usage> {
    r.map_err(Usage)
}

/// Prints a library failure for one object and returns the marker for exit code 1.
pub fn failed(verb: &str, object: impl fmt::Display, e: &shmkit::Error) -> report::Reported {
    report::error(verb, report::object_error(object, e));
    report::Reported
}

/// Runs `op` on every object, printing each failure; exit code 1 at the end if any failed.
pub fn for_each(
    verb: &str,
    specs: &[ObjectSpec],
    mut op: impl FnMut(&ObjectSpec) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut ok = true;
    for spec in specs {
        if let Err(e) = op(spec) {
            if report::is_broken_pipe(&e) {
                return Err(e);
            }
            match e.downcast_ref::<shmkit::Error>() {
                Some(le) => report::error(verb, report::object_error(spec, le)),
                None => report::error(verb, format!("{spec}: {e:#}")),
            }
            ok = false;
        }
    }
    if ok {
        Ok(())
    } else {
        Err(report::Reported.into())
    }
}
