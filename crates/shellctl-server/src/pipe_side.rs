//! The pipe side of a job: the process behind tmux's `pipe-pane`.
//!
//! It marks itself ready, sanitizes the pane's raw output into
//! `output.log` (each line at once, a prompt after a short quiet spell),
//! and at end of input, once everything is in the log, marks the pipe
//! drained and commits the runner's recorded exit to SQLite itself. So a
//! job reads as `exited` only when all its output is in the log, and the
//! commit happens even while the server is down. If writing the log fails,
//! it leaves the `pipe-failed` marker and commits nothing.

use crate::job_files::{JobDir, OUTPUT, PIPE_DRAINED, PIPE_FAILED};
use crate::layout::PRIVATE_FILE_MODE;
use crate::store::{Store, StoreError};
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
    /// The exit could not be committed.
    #[error("committing exit: {0}")]
    Store(#[from] StoreError),
}

/// Runs the pipe side of `job_id` over `input` (the pane's raw output).
pub fn run_pipe_side<R: Read + Send + 'static>(
    input: R,
    job_dir: &JobDir,
    database: &Path,
    job_id: &JobId,
) -> Result<(), PipeError> {
    job_dir.mark_pipe_ready(std::process::id())?;
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
        let _ = job_dir.touch(PIPE_FAILED);
        return Err(err.into());
    }
    job_dir.touch(PIPE_DRAINED)?;
    commit_recorded_exit(job_dir, database, job_id)
}

/// Commits the exit the runner recorded, if it recorded one and the pipe
/// drained. Used by the pipe side and by the server for exits whose commit
/// is missing (say, the pipe side was killed between drain and commit).
pub fn commit_recorded_exit(
    job_dir: &JobDir,
    database: &Path,
    job_id: &JobId,
) -> Result<(), PipeError> {
    if !job_dir.has(PIPE_DRAINED) {
        return Ok(());
    }
    if let Some(exit) = job_dir.read_exit()? {
        Store::open_existing(database)?.commit_exit(job_id, exit.exit_code, &exit.ended_at)?;
    }
    Ok(())
}
