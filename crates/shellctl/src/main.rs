//! The `shellctl` command: parses arguments, calls into the library crates,
//! and decides the process's exit code in one place ([`exit_code_for`]).

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, SanitizePtyArgs};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

/// Exit code for a command that is not implemented yet.
const EXIT_NOT_IMPLEMENTED: u8 = 3;
/// Exit code for any other failure.
const EXIT_FAILURE: u8 = 1;

/// A failure that carries its own exit code.
#[derive(Debug, thiserror::Error)]
enum CliFailure {
    #[error("{0}")]
    NotImplemented(&'static str),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shellctl: {err:#}");
            ExitCode::from(exit_code_for(&err))
        }
    }
}

/// The one place that maps failures to exit codes.
fn exit_code_for(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<CliFailure>() {
        Some(CliFailure::NotImplemented(_)) => EXIT_NOT_IMPLEMENTED,
        None => EXIT_FAILURE,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::SanitizePty(args) => sanitize_pty(args),
        Command::Serve => Err(CliFailure::NotImplemented(
            "`shellctl serve` is not implemented yet: the job server arrives with the server issue",
        )
        .into()),
    }
}

fn sanitize_pty(args: SanitizePtyArgs) -> anyhow::Result<()> {
    if let Some(ready_file) = &args.ready_file {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(ready_file)
            .with_context(|| format!("touching ready file {}", ready_file.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    shellctl_term::run_filter(std::io::stdin(), &mut stdout, Default::default())
        .context("sanitizing standard input")?;
    Ok(())
}
