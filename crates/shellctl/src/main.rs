//! The `shellctl` command: parses arguments into one of three typed groups
//! of subcommands and dispatches each to the module that owns it:
//!
//! - [`cli`]: the command-line syntax (clap types);
//! - [`client_cmd`]: the client commands (`health`, `run`, `wait`, `input`,
//!   `tail`, `status`, `list`, `terminate`, `delete`, `screen`, `keys`,
//!   `signal`, `resize`, `detail`, `wait-for`, `search`, `digest`, `events`,
//!   `metrics`);
//! - [`mcp`]: `shellctl mcp`, the MCP server over stdio;
//! - [`doctor`]: `shellctl doctor`, the checks of this machine (in
//!   `shellctl_server::doctor`), printed;
//! - [`local`]: the local commands (`completions`, `serve` through
//!   [`serve`], `attach` through [`attach`], and the filter form of
//!   `sanitize-pty`);
//! - [`internal`]: the job-side commands the server starts through tmux
//!   (`job-runner`, the pipe-side form of `sanitize-pty`);
//! - [`exit`]: every exit code, and the one function that turns an outcome
//!   into the process's exit code;
//! - [`logging`]: the log subscriber of `serve` and `mcp` (text or JSON
//!   lines on stderr).

mod attach;
mod cli;
mod client_cmd;
mod doctor;
mod exit;
mod internal;
mod local;
mod logging;
mod mcp;
mod serve;

use clap::Parser;
use cli::{Cli, Command};
use exit::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        // The MCP server runs until its client goes away; a failure is
        // reported as text on stderr, the MCP log.
        Command::Mcp(args) => Outcome::Other(mcp::run(args.base_url, args.auth_token)),
        Command::Doctor(args) => Outcome::Doctor(doctor::run(args)),
        Command::Client(command) => Outcome::Client(client_cmd::run(command)),
        Command::Local(command) => Outcome::Other(local::run(command)),
        Command::Internal(command) => Outcome::Other(internal::run(command)),
    };
    exit::finish(outcome)
}
