//! The pipe side of a job: the process behind tmux's `pipe-pane`.
//!
//! It marks itself ready, sanitizes the pane's raw output into
//! `output.log` (each line at once, a prompt after a short quiet spell),
//! and at end of input, once everything is in the log, marks the pipe
//! drained and applies the exit-commit rule
//! ([`commit_recorded_exit`]) itself. So a job reads as `exited` only when
//! all its output is in the log, and the commit happens even while the
//! server is down. If writing the log fails, it leaves the `pipe-failed`
//! marker at once and commits nothing: the server, which can kill the
//! job's session, settles the job as failed when it sees the marker.

use crate::files::{JobDir, OUTPUT, PIPE_DRAINED, PIPE_FAILED};
use crate::layout::PRIVATE_FILE_MODE;
use crate::lifecycle::{SettleError, commit_recorded_exit};
use crate::process::ProcessIdentity;
use crate::store::Store;
use shellctl_proto::JobId;
use shellctl_term::{FilterOptions, run_filter_with_sync};
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why the pipe side failed.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// Reading the pane or writing the log failed.
    #[error("pipe side of job: {0}")]
    Io(#[from] io::Error),
    /// The pipe side could not tell who it is (no readable `/proc`).
    #[error("pipe side: cannot read its own process identity from /proc")]
    NoIdentity,
    /// The exit could not be committed.
    #[error("committing exit: {0}")]
    Settle(#[from] SettleError),
}

/// Runs the pipe side of `job_id` over `input` (the pane's raw output).
pub fn run_pipe_side<R: Read + Send + 'static>(
    input: R,
    job_dir: &JobDir,
    database: &Path,
    job_id: JobId,
) -> Result<(), PipeError> {
    let me = ProcessIdentity::current().ok_or(PipeError::NoIdentity)?;
    job_dir.mark_pipe_ready(me)?;
    let drained = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_FILE_MODE)
        .open(job_dir.file(OUTPUT))
        .and_then(|mut log| {
            run_filter_with_sync(input, &mut log, FilterOptions::default(), &mut || {
                job_dir.acknowledge_sync();
            })
        });
    if let Err(err) = drained {
        if let Err(marker) = job_dir.touch(PIPE_FAILED) {
            // Without the marker the monitor still notices the dead pipe
            // side (by its identity), only later.
            return Err(io::Error::new(
                err.kind(),
                format!("{err}; and leaving the pipe-failed marker: {marker}"),
            )
            .into());
        }
        return Err(err.into());
    }
    job_dir.touch(PIPE_DRAINED)?;
    let store = Store::open_existing(database).map_err(SettleError::from)?;
    commit_recorded_exit(job_dir, &store, job_id)?;
    Ok(())
}
