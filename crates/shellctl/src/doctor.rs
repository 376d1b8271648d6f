//! `shellctl doctor`: resolves the state layout exactly as `serve` does
//! ([`crate::serve::state_layout`]), runs the checks of
//! `shellctl_server::doctor` on it, and prints the report on stdout.

use crate::cli::DoctorArgs;
use anyhow::Context;
use std::io::Write;

/// Checks this machine for `args`' layout and prints the report; `true`
/// when nothing must be fixed.
pub fn run(args: DoctorArgs) -> anyhow::Result<bool> {
    let layout = crate::serve::state_layout(args.state_dir, args.runtime_dir);
    // tmux is looked up on this process's PATH: `serve` started from the
    // same environment runs the same tmux.
    let path = std::env::var_os("PATH");
    let report = shellctl_server::doctor::examine(&layout, path.as_deref());
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{report}")
        .and_then(|()| stdout.flush())
        .context("writing the report")?;
    Ok(!report.has_failures())
}
