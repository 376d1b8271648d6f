//! The `shellctl` command: parses arguments into one of three typed groups
//! of subcommands and dispatches each to the module that owns it:
//!
//! - [`cli`]: the command-line syntax (clap types);
//! - [`client_cmd`]: the client commands (`health`, `run`, `wait`, `input`,
//!   `tail`, `status`, `list`, `terminate`, `delete`, `screen`, `keys`,
//!   `signal`, `resize`);
//! - [`local`]: the local commands (`completions`, `serve` through
//!   [`serve`], `attach` through [`attach`], and the filter form of
//!   `sanitize-pty`);
//! - [`internal`]: the job-side commands the server starts through tmux
//!   (`job-runner`, the pipe-side form of `sanitize-pty`);
//! - [`exit`]: every exit code, and the one function that turns an outcome
//!   into the process's exit code.

mod attach;
mod cli;
mod client_cmd;
mod exit;
mod internal;
mod local;
mod serve;

use clap::Parser;
use cli::{Cli, Command};
use exit::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Client(command) => Outcome::Client(client_cmd::run(command)),
        Command::Local(command) => Outcome::Other(local::run(command)),
        Command::Internal(command) => Outcome::Other(internal::run(command)),
    };
    exit::finish(outcome)
}
