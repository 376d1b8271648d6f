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
//!
//! Two exceptions keep the job running with a partial log, because a job
//! must never block on its terminal nor die of its log: past the job's
//! `max_log_bytes` the pipe side appends one marker line, leaves the
//! `log-capped` marker and discards the rest; when the disk is full
//! (`ENOSPC`, `EDQUOT`), it leaves `log-incomplete` and discards the rest.
//! Either way it goes on reading the terminal to its end.

use crate::files::{
    JobDir, LOG_CAPPED, LOG_INCOMPLETE, OUTPUT, PIPE_DRAINED, PIPE_FAILED, is_disk_full,
};
use crate::layout::PRIVATE_FILE_MODE;
use crate::lifecycle::{SettleError, commit_recorded_exit};
use crate::process::ProcessIdentity;
use crate::store::Store;
use shellctl_proto::JobId;
use shellctl_term::{FilterOptions, run_filter_with_sync};
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
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
    let cap = job_dir.read_spec().ok().and_then(|spec| spec.max_log_bytes);
    let drained = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_FILE_MODE)
        .open(job_dir.file(OUTPUT))
        .and_then(|file| LogWriter::new(file, cap, job_dir))
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

/// What the log writer does with the next bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogState {
    /// Appends them.
    Open,
    /// Discards them: the log reached its cap.
    Capped,
    /// Discards them: the disk is full.
    Full,
}

/// The job's log as the filter writes it: appends up to the cap, then one
/// marker line, then discards; on a full disk, discards. Discarding still
/// answers "written", so the filter keeps reading the terminal.
struct LogWriter<'a> {
    file: std::fs::File,
    written: u64,
    cap: Option<u64>,
    last_byte: Option<u8>,
    state: LogState,
    job_dir: &'a JobDir,
}

impl<'a> LogWriter<'a> {
    fn new(file: std::fs::File, cap: Option<u64>, job_dir: &'a JobDir) -> io::Result<Self> {
        let written = file.metadata()?.len();
        Ok(LogWriter {
            file,
            written,
            cap,
            last_byte: None,
            state: LogState::Open,
            job_dir,
        })
    }

    /// Appends all of `bytes`, or moves to [`LogState::Full`] when the disk
    /// is full. Other failures are the caller's.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.written += bytes.len() as u64;
                self.last_byte = bytes.last().copied().or(self.last_byte);
                Ok(())
            }
            Err(err) if is_disk_full(&err) => {
                self.state = LogState::Full;
                // On a full disk an empty file still fits (no data block);
                // if even that fails, the detail cannot say so, but the job
                // still runs on.
                let _marked = self.job_dir.touch(LOG_INCOMPLETE);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Writes what fits under the cap, the marker line, and stops.
    fn cap_at(&mut self, cap: u64, bytes: &[u8]) -> io::Result<()> {
        let room = usize::try_from(cap.saturating_sub(self.written)).unwrap_or(usize::MAX);
        let cut = char_boundary_at_or_before(bytes, room.min(bytes.len()));
        self.append(&bytes[..cut])?;
        if self.state != LogState::Open {
            return Ok(());
        }
        let newline = if self.last_byte.is_some_and(|b| b != b'\n') {
            "\n"
        } else {
            ""
        };
        let marker = format!(
            "{newline}[shellctl: the output log reached its cap of {cap} bytes (--max-log-bytes); later output is discarded]\n"
        );
        self.append(marker.as_bytes())?;
        if self.state == LogState::Open {
            self.state = LogState::Capped;
            let _marked = self.job_dir.touch(LOG_CAPPED);
        }
        Ok(())
    }
}

impl Write for LogWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.state == LogState::Open {
            match self.cap {
                Some(cap) if self.written + bytes.len() as u64 > cap => self.cap_at(cap, bytes)?,
                _ => self.append(bytes)?,
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.state {
            LogState::Open => self.file.flush(),
            LogState::Capped | LogState::Full => Ok(()),
        }
    }
}

/// The largest index `<= at` that does not split a UTF-8 character.
fn char_boundary_at_or_before(bytes: &[u8], at: usize) -> usize {
    let mut cut = at.min(bytes.len());
    while cut > 0 && cut < bytes.len() && (bytes[cut] & 0b1100_0000) == 0b1000_0000 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_in(dir: &tempfile::TempDir) -> (JobDir, std::path::PathBuf) {
        let job_dir = JobDir::open(dir.path());
        (job_dir, dir.path().join(OUTPUT))
    }

    #[test]
    fn the_log_stops_at_the_cap_with_one_marker_line_and_keeps_accepting() {
        let dir = tempfile::tempdir().unwrap();
        let (job_dir, path) = writer_in(&dir);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut log = LogWriter::new(file, Some(8), &job_dir).unwrap();
        assert_eq!(log.write(b"hello\n").unwrap(), 6);
        assert_eq!(log.write("wörld and more\n".as_bytes()).unwrap(), 16);
        assert_eq!(log.write(b"discarded\n").unwrap(), 10);
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let (kept, marker) = text.split_at(text.find("\n[shellctl").unwrap());
        // "ö" straddles the cap: the cut goes before it, never through it.
        assert_eq!(kept, "hello\nw");
        assert!(marker.contains("cap of 8 bytes"), "{marker}");
        assert_eq!(marker.matches('\n').count(), 2);
        assert!(job_dir.has(LOG_CAPPED));
    }

    #[test]
    fn a_full_disk_is_marked_and_output_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let (job_dir, _) = writer_in(&dir);
        // /dev/full fails every write with ENOSPC.
        let file = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let mut log = LogWriter::new(file, None, &job_dir).unwrap();
        assert_eq!(log.write(b"lost\n").unwrap(), 5);
        assert_eq!(log.write(b"lost too\n").unwrap(), 9);
        log.flush().unwrap();
        assert!(job_dir.has(LOG_INCOMPLETE));
        assert!(!job_dir.has(LOG_CAPPED));
    }
}
