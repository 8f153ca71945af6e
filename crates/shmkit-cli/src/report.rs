//! How the CLI reports failures: `shmkit: <verb>: <object>: <reason>` on stderr, and the
//! exit codes 0 (all fine), 1 (an operation failed), 2 (usage error).

use std::fmt;

/// Exit code for an operation that failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;

/// Marker error: the failures were already printed; exit with [`EXIT_FAILURE`].
#[derive(Debug)]
pub struct Reported;

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("one or more operations failed")
    }
}
impl std::error::Error for Reported {}

/// A usage error found after argument parsing: exit with [`EXIT_USAGE`].
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

/// Prints `shmkit: <verb>: <message>` on stderr.
pub fn error(verb: &str, message: impl fmt::Display) {
    eprintln!("shmkit: {verb}: {message}");
}

/// Formats a library error for an object the user named: `<object>: <op> failed: <reason>`.
pub fn object_error(object: impl fmt::Display, e: &shmkit::Error) -> String {
    format!("{object}: {} failed: {}", e.op(), e.reason())
}

/// Whether an error chain ends in a closed pipe, which is not a failure for a CLI.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
