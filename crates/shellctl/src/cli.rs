//! Command-line syntax of `shellctl`: the argument types clap parses into.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// shellctl: a shell-job server that programs can come back to.
#[derive(Debug, Parser)]
#[command(name = "shellctl", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job server (not implemented yet).
    Serve,
    /// Filter raw PTY bytes on stdin into clean UTF-8 text on stdout.
    ///
    /// Used on the job path behind tmux's pipe-pane. Writes each completed
    /// line at once and a pending partial line (a prompt) after a short quiet
    /// period; exits 0 at end of input.
    SanitizePty(SanitizePtyArgs),
}

/// Arguments of `shellctl sanitize-pty`.
#[derive(Debug, Args)]
pub struct SanitizePtyArgs {
    /// File to create (or touch) once the filter is running, before it reads.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}
