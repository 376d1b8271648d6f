//! The job-side commands, which the server starts through tmux for each job:
//! the runner inside the job's pane (`shellctl job-runner`) and the pipe
//! side behind its pipe-pane (`shellctl sanitize-pty --job-id … --job-dir …
//! --state-dir …`).
//!
//! This module is the only one of the binary that touches the job path of
//! `shellctl-job` (runner, pipe side, job files and the state layout).

use crate::cli::{InternalCommand, JobRunnerArgs, PipeSideArgs};
use anyhow::Context;
use shellctl_job::{JobDir, StateLayout};
use shellctl_proto::JobId;

/// Runs a job-side command to its end.
pub fn run(command: InternalCommand) -> anyhow::Result<()> {
    match command {
        InternalCommand::JobRunner(args) => job_runner(args),
        InternalCommand::PipeSide(args) => pipe_side(&args),
    }
}

/// Runs the job's script in its pane, then records its exit.
fn job_runner(args: JobRunnerArgs) -> anyhow::Result<()> {
    shellctl_job::runner::run_job(&JobDir::open(args.job_dir)).context("recording the job's exit")
}

/// Sanitizes the pane's bytes from stdin into the job's `output.log`, then
/// commits the job's exit to the state database.
fn pipe_side(args: &PipeSideArgs) -> anyhow::Result<()> {
    let job_id = JobId::parse(&args.job_id)?;
    let database = StateLayout::database_in(&args.state_dir);
    shellctl_job::pipe_side::run_pipe_side(
        std::io::stdin(),
        &JobDir::open(&args.job_dir),
        &database,
        job_id,
    )?;
    Ok(())
}
