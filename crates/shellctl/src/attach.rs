//! `shellctl attach`: a person on the server's host watches and types into
//! a running job's terminal.
//!
//! The command finds the jobs' tmux socket exactly as `serve` does
//! ([`crate::serve::state_layout`] and [`StateLayout::tmux_socket`]),
//! checks the job's session exists, then replaces itself with
//! `tmux attach-session`, so tmux owns the terminal from then on:
//!
//! - the usual tmux detach key, Ctrl-b d, leaves the job running;
//! - the client attaches with tmux's `ignore-size` flag, so attaching never
//!   changes the job's terminal size (the program sees no SIGWINCH and its
//!   output keeps its layout); `shellctl resize` changes the size;
//! - `--read-only` adds tmux's `read-only` flag: keys are not sent.
//!
//! [`StateLayout::tmux_socket`]: shellctl_job::StateLayout::tmux_socket

use crate::cli::AttachArgs;
use crate::exit::UsageError;
use anyhow::{Context, bail};
use shellctl_proto::JobId;
use shellctl_server::SESSION_PREFIX;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Attaches to job `args.id`; returns only on failure (on success the
/// process becomes tmux).
pub fn run(args: AttachArgs) -> anyhow::Result<()> {
    // First of all: without a terminal there is nothing to attach.
    if !std::io::stdin().is_terminal() {
        bail!(
            "attach needs a terminal, but stdin is not a terminal (run it from an interactive shell)"
        );
    }
    let id = JobId::parse(&args.id).map_err(|err| UsageError(err.to_string()))?;
    let socket = crate::serve::state_layout(args.state_dir, args.runtime_dir).tmux_socket();
    let session = format!("{SESSION_PREFIX}{id}");
    // Job ids have a fixed length and no glob characters, so tmux's
    // fallback matching of a target (prefix, pattern) can only find this
    // exact session.
    let found = tmux(&socket)
        .args(["has-session", "-t", &session])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running tmux")?
        .success();
    if !found {
        bail!(
            "job {id} has no terminal on this server (it has ended, or runs under another state dir)"
        );
    }
    let flags = if args.read_only {
        "read-only,ignore-size"
    } else {
        "ignore-size"
    };
    let err = tmux(&socket)
        .args(["attach-session", "-t", &session, "-f", flags])
        .exec();
    Err(err).context("running tmux attach-session")
}

/// `tmux` on the jobs' server at `socket`, with no user config (as the
/// server runs it).
fn tmux(socket: &Path) -> Command {
    let mut command = Command::new("tmux");
    command.arg("-S").arg(socket).args(["-f", "/dev/null"]);
    command
}
