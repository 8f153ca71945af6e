//! Drop-in `ipcs`, `ipcrm` and `ipcmk`: the same options, output, messages and exit
//! codes as util-linux 2.38.1 for System V objects, so scripts keep working. They run as
//! `shmkit ipcs …` or when the binary is invoked under the name `ipcs`, `ipcrm` or
//! `ipcmk` (a symlink).
//!
//! Deliberate differences, each documented where it lives:
//! - `ipcrm -a msg` (a space instead of `=`) is refused before anything is removed,
//!   where util-linux removes every object of every kind and only then complains about
//!   the stray `msg` ([`ipcrm`]); `ipcrm --help` prints util-linux's text followed by a
//!   paragraph explaining this;
//! - `ipcmk` creates with `IPC_EXCL`, retrying with a new random key on a collision,
//!   so it never hands back somebody else's existing object ([`ipcmk`]);
//! - `-V` names shmkit as well as the util-linux version followed.

use std::collections::HashMap;
use std::io::Write;

pub mod cfmt;
pub mod getopt;
pub mod ipcmk;
pub mod ipcrm;
pub mod ipcs;

/// The names the drop-ins answer to.
pub const TOOLS: [&str; 3] = ["ipcs", "ipcrm", "ipcmk"];

/// Arguments of `shmkit ipcs|ipcrm|ipcmk`: passed through untouched, `--help` included.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct CompatArgs {
    /// The tool's own options and operands.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Runs a drop-in as a subcommand and exits with its code (its output is complete).
pub fn exit_with(tool: &str, args: &[String]) -> anyhow::Result<()> {
    let code = run(tool, tool, args);
    std::process::exit(i32::from(code));
}

/// Runs drop-in `tool` with `args` (without the program name); returns the exit code.
/// `argv0` is the program name as invoked: glibc's getopt messages start with it.
pub fn run(tool: &str, argv0: &str, args: &[String]) -> u8 {
    let mut o = Output {
        argv0: argv0.to_string(),
        ..Output::default()
    };
    let code = match tool {
        "ipcs" => ipcs::main(args, &mut o),
        "ipcrm" => ipcrm::main(args, &mut o),
        _ => ipcmk::main(args, &mut o),
    };
    o.flush();
    code
}

/// Collects stdout and writes stderr at once, so the two streams keep util-linux's
/// order relative to each other (stdout is flushed before every stderr message).
#[derive(Default)]
pub struct Output {
    buf: String,
    argv0: String,
}

impl Output {
    /// Appends to stdout.
    pub fn out(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Writes a message to stderr (after flushing stdout).
    pub fn err(&mut self, s: &str) {
        self.flush();
        let _ = std::io::stderr().write_all(s.as_bytes());
    }

    /// `PROG: MSG` plus the "Try --help" line; returns exit code 1.
    pub fn try_help(&mut self, prog: &str, msg: &str) -> u8 {
        self.err(&format!(
            "{prog}: {msg}\nTry '{prog} --help' for more information.\n"
        ));
        1
    }

    /// A getopt error: `ARGV0: MSG` plus the "Try --help" line; returns exit code 1.
    pub fn getopt_error(&mut self, prog: &str, msg: &str) -> u8 {
        let argv0 = if self.argv0.is_empty() {
            prog.to_string()
        } else {
            self.argv0.clone()
        };
        self.err(&format!(
            "{argv0}: {msg}\nTry '{prog} --help' for more information.\n"
        ));
        1
    }

    /// Only the "Try --help" line; returns exit code 1.
    pub fn try_help_only(&mut self, prog: &str) -> u8 {
        self.err(&format!("Try '{prog} --help' for more information.\n"));
        1
    }

    /// Writes stdout; a closed pipe is ignored.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(self.buf.as_bytes());
            let _ = out.flush();
            self.buf.clear();
        }
    }
}

/// The `-V` line.
pub fn version(tool: &str) -> String {
    format!(
        "{tool} from shmkit {} (util-linux 2.38.1 compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// util-linux `strtos32_or_err`: decimal with optional sign and leading blanks; on
/// failure the suffix to append to the message (`""` or `": Numerical result out of
/// range"`).
pub fn strtos32(s: &str) -> Result<i32, String> {
    let t = s.trim_start();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(String::new());
    }
    let range = || format!(": {}", cfmt::strerror(libc::ERANGE));
    match t.parse::<i64>() {
        Ok(v) => i32::try_from(v).map_err(|_| range()),
        Err(_) => Err(range()),
    }
}

/// User and group names by id, looked up once each through the system's databases.
#[derive(Default)]
pub struct Names {
    users: std::cell::RefCell<HashMap<u32, Option<String>>>,
    groups: std::cell::RefCell<HashMap<u32, Option<String>>>,
}

impl Names {
    /// The user name of `uid`.
    pub fn user(&self, uid: u32) -> Option<String> {
        self.users
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| shmkit::sys::users::user_name(uid))
            .clone()
    }

    /// The group name of `gid`.
    pub fn group(&self, gid: u32) -> Option<String> {
        self.groups
            .borrow_mut()
            .entry(gid)
            .or_insert_with(|| shmkit::sys::users::group_name(gid))
            .clone()
    }
}
