//! The local commands, which need no server: `completions`, `serve` (via
//! [`crate::serve`]), `attach` (via [`crate::attach`], on the server's host)
//! and `sanitize-pty` (its pipe-side form is a job-side command and goes to
//! [`crate::internal`]).

use crate::cli::{Cli, CompletionsArgs, InternalCommand, LocalCommand, SanitizeMode};
use anyhow::Context;
use clap::CommandFactory;
use shellctl_term::FilterOptions;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Runs a local command to its end.
pub fn run(command: LocalCommand) -> anyhow::Result<()> {
    match command {
        LocalCommand::Completions(args) => completions(&args),
        LocalCommand::Serve(args) => crate::serve::run(args),
        LocalCommand::Attach(args) => crate::attach::run(args),
        LocalCommand::SanitizePty(args) => match args.into_mode() {
            SanitizeMode::Filter { ready_file } => sanitize(ready_file.as_deref()),
            SanitizeMode::PipeSide(args) => crate::internal::run(InternalCommand::PipeSide(args)),
        },
    }
}

/// Prints the completion script for a shell.
fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    // Rendered into memory first: clap_complete panics on a write error
    // (say, stdout piped into `head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "shellctl", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script).context("writing completions")
}

/// Filters stdin to stdout, touching `ready_file` (if any) first.
fn sanitize(ready_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(ready_file) = ready_file {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(ready_file)
            .with_context(|| format!("touching ready file {}", ready_file.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    shellctl_term::run_filter(std::io::stdin(), &mut stdout, FilterOptions::default())
        .context("sanitizing standard input")?;
    Ok(())
}
