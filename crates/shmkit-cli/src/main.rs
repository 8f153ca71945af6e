//! `shmkit`: create, inspect, exchange data through and clean up shared-memory objects.
//!
//! One file per subcommand under `cmd/`. Errors are printed as
//! `shmkit: <verb>: <object>: <reason>`; exit codes are 0 (all fine), 1 (an operation
//! failed) and 2 (usage error). A closed stdout pipe is not an error, and no Rust panic
//! or backtrace ever reaches the user.

mod cmd;
mod inventory;
mod object;
mod report;
mod target;
mod value;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Safe shared-memory IPC for Linux: System V and POSIX objects, semaphores, channels.
#[derive(Parser, Debug)]
#[command(name = "shmkit", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("shmkit: internal error: {msg}{at}; please report this as a bug");
    }));

    // Invoked as ipcs, ipcrm or ipcmk (a symlink): behave exactly as that tool.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(tool) = argv.first().and_then(|a| {
        let base = std::path::Path::new(a).file_name()?.to_str()?;
        cmd::compat::TOOLS.iter().find(|t| **t == base).copied()
    }) {
        return ExitCode::from(cmd::compat::run(tool, &argv[0], &argv[1..]));
    }

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &argv),
    };
    let verb = cli.command.verb();
    let result = std::panic::catch_unwind(|| cmd::run(cli.command));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            if report::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if e.downcast_ref::<report::Reported>().is_some() {
                return ExitCode::from(report::EXIT_FAILURE);
            }
            if let Some(u) = e.downcast_ref::<report::Usage>() {
                report::error(verb, u);
                return ExitCode::from(report::EXIT_USAGE);
            }
            report::error(verb, format!("{e:#}"));
            ExitCode::from(report::EXIT_FAILURE)
        }
        // The hook has printed the message.
        Err(_) => ExitCode::from(report::EXIT_FAILURE),
    }
}

/// Prints a command-line parsing error as `shmkit: <verb>: <reason>` followed by clap's
/// usage lines, and returns exit code 2; help and version requests print as clap does.
fn usage_error(e: clap::Error, argv: &[String]) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    }
    let verb = argv
        .get(1)
        .filter(|a| Cli::command().find_subcommand(a.as_str()).is_some())
        .map_or("usage", String::as_str);
    let text = e.render().to_string();
    // The reason is the first paragraph ("error: ..." and its indented lines); the
    // usage and the hint follow as clap wrote them.
    let (reason, rest) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let reason = reason
        .trim_start_matches("error: ")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    report::error(verb, reason);
    if !rest.is_empty() {
        eprint!("\n{rest}");
    }
    ExitCode::from(report::EXIT_USAGE)
}
