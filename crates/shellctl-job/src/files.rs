//! One job's directory and the files that carry its state between the
//! server, the runner (inside the PTY) and the pipe side (behind
//! `pipe-pane`).
//!
//! ```text
//! jobs/<id>/      0700
//!   script        the script (0700 once made executable for a `#!` line)
//!   job.json      cwd and env overlay, read by the runner (values as data)
//!   gate          FIFO: the runner waits here until the server lets it go
//!   output.log    sanitized output, appended by the pipe side
//!   pipe-ready    the pipe side runs; holds `<pid> <start time>`
//!   runner        the runner's `<pid> <start time>`, written before the gate
//!   exit          `<code>\n<ended_at>\n`, written atomically by the runner
//!   pipe-drained  the pipe side reached EOF and flushed `output.log`
//!   pipe-failed   the pipe side could not write the log
//!   deadline      the runner is ending the job for a deadline: `max_runtime`
//!                 or `idle_timeout` (written before it signals the script)
//!   sync          FIFO: the pipe side tells the runner all output arrived
//!   leftovers     processes ended after the script exited (a number)
//!   log-capped    the log reached `max_log_bytes`; later output discarded
//!   log-incomplete  writing the log failed (disk full); output discarded
//! ```

use crate::containment::JobContainment;
use crate::layout::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, RESERVE_FILE};
use crate::lifecycle::TerminateCause;
use crate::process::ProcessIdentity;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use shellctl_proto::{ResourceLimits, TerminalSize};
use shellctl_term::SYNC_SEQUENCE;
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The script file.
pub const SCRIPT: &str = "script";
/// The job spec read by the runner.
pub const SPEC: &str = "job.json";
/// The start gate FIFO.
pub const GATE: &str = "gate";
/// The sanitized output.
pub const OUTPUT: &str = "output.log";
/// Marker: the pipe side is running.
pub const PIPE_READY: &str = "pipe-ready";
/// Marker: the script's exit code and end time.
pub const EXIT: &str = "exit";
/// Marker: the pipe side drained the pane's output into the log.
pub const PIPE_DRAINED: &str = "pipe-drained";
/// Marker: the pipe side failed.
pub const PIPE_FAILED: &str = "pipe-failed";
/// FIFO of the end-of-output handshake between runner and pipe side.
pub const SYNC: &str = "sync";
/// The runner's identity: the terminal's session leader, the root of the
/// job's processes.
pub const RUNNER: &str = "runner";
/// Marker: the runner is ending the job because a deadline passed; holds
/// which one ([`TerminateCause`]'s spelling).
pub const DEADLINE: &str = "deadline";

/// Marker: the log reached the job's `max_log_bytes`.
pub const LOG_CAPPED: &str = "log-capped";
/// Marker: writing the log failed (a full disk); output was discarded.
pub const LOG_INCOMPLETE: &str = "log-incomplete";
/// How many processes the job left behind that were ended after its
/// script exited (a decimal number).
pub const LEFTOVERS: &str = "leftovers";

/// Longest the runner waits for the pipe side to confirm the output.
const SYNC_WAIT_MS: u16 = 30_000;

/// What the runner needs besides the script, and what the job was started
/// with. Fields added after the first release are optional, so a spec
/// written by an older server still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Directory to run the script in.
    pub cwd: PathBuf,
    /// Variables laid over the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Milliseconds the script may run before the runner ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime_ms: Option<u64>,
    /// Milliseconds without output before the runner ends the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// The terminal size the job was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalSize>,
    /// How the job's processes are tracked (absent in specs written before
    /// containment: such jobs are tracked by their tree alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<JobContainment>,
    /// Leave processes the script started in the background running after
    /// it exits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_background: bool,
    /// The job's resource limits.
    #[serde(default, skip_serializing_if = "ResourceLimits::is_empty")]
    pub limits: ResourceLimits,
    /// Most bytes the pipe side appends to the log; later output is read
    /// and discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
}

/// The runner's record of how the script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitMarker {
    /// Exit code; 128+N for death by signal N.
    pub exit_code: i32,
    /// End time (wire timestamp).
    pub ended_at: String,
}

/// A job's directory.
#[derive(Debug, Clone)]
pub struct JobDir {
    path: PathBuf,
}

impl JobDir {
    /// Creates the directory (0700). Fails with `AlreadyExists` if it exists,
    /// which is how a job-id collision is detected.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<JobDir> {
        let path = path.into();
        DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&path)?;
        Ok(JobDir { path })
    }

    /// Creates the directory and writes what the runner needs (see
    /// [`populate`](Self::populate)). If writing fails, the directory is
    /// removed again, so a failed creation leaves nothing behind.
    pub fn create_populated(
        path: impl Into<PathBuf>,
        script: &str,
        spec: &JobSpec,
    ) -> io::Result<JobDir> {
        let dir = JobDir::create(path)?;
        match dir.populate(script, spec) {
            Ok(()) => Ok(dir),
            Err(err) => {
                if let Err(cleanup) = dir.remove() {
                    return Err(io::Error::new(
                        err.kind(),
                        format!("{err} (and removing the job directory: {cleanup})"),
                    ));
                }
                Err(err)
            }
        }
    }

    /// Removes the directory and everything in it; one already gone is
    /// not an error.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// An existing directory.
    pub fn open(path: impl Into<PathBuf>) -> JobDir {
        JobDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of a file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes script, spec, an empty log and the gate and sync FIFOs.
    pub fn populate(&self, script: &str, spec: &JobSpec) -> io::Result<()> {
        write_private(&self.file(SCRIPT), script.as_bytes())?;
        write_private(&self.file(SPEC), &serde_json::to_vec(spec)?)?;
        write_private(&self.file(OUTPUT), b"")?;
        for fifo in [GATE, SYNC] {
            nix::unistd::mkfifo(
                &self.file(fifo),
                Mode::from_bits_truncate(PRIVATE_FILE_MODE),
            )?;
        }
        Ok(())
    }

    /// Runner side of the end-of-output handshake. tmux drops what it has
    /// not yet written to the pipe when a pane closes, so before the runner
    /// exits (closing the pane) it prints [`SYNC_SEQUENCE`] after the
    /// script's output and waits until the pipe side has seen it: the
    /// stream is ordered, so everything before it has then reached the log.
    /// Gives up after 30 s (a pipe side that died is the monitor's case).
    pub fn sync_with_pipe_side(&self, pty: &mut impl Write) -> io::Result<()> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        // Open first (non-blocking, so no writer is needed yet): the pipe
        // side's acknowledgement must find a reader.
        let sync = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(self.file(SYNC))?;
        pty.write_all(SYNC_SEQUENCE)?;
        pty.flush()?;
        let mut fds = [PollFd::new(sync.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(SYNC_WAIT_MS))?;
        Ok(())
    }

    /// Pipe side of the handshake: tells a waiting runner that its sync
    /// sequence arrived. Does nothing if no runner waits (a script printed
    /// the sequence itself).
    pub fn acknowledge_sync(&self) {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(self.file(SYNC));
        if let Ok(mut fifo) = opened {
            let _ = fifo.write_all(b"1");
        }
    }

    /// Reads the spec.
    pub fn read_spec(&self) -> io::Result<JobSpec> {
        Ok(serde_json::from_slice(&fs::read(self.file(SPEC))?)?)
    }

    /// Creates a marker file (idempotent).
    pub fn touch(&self, marker: &str) -> io::Result<()> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE)
            .open(self.file(marker))
            .map(drop)
    }

    /// Whether a marker file exists.
    pub fn has(&self, marker: &str) -> bool {
        self.file(marker).exists()
    }

    /// Marks the pipe side ready, recording its identity (atomically, so
    /// the marker never exists without it).
    pub fn mark_pipe_ready(&self, pipe_side: ProcessIdentity) -> io::Result<()> {
        let temp = self.file(".pipe-ready.tmp");
        write_private(&temp, format!("{pipe_side}\n").as_bytes())?;
        fs::rename(temp, self.file(PIPE_READY))
    }

    /// Records the runner's identity (atomically, like `pipe-ready`).
    pub fn record_runner(&self, runner: ProcessIdentity) -> io::Result<()> {
        let temp = self.file(".runner.tmp");
        write_private(&temp, format!("{runner}\n").as_bytes())?;
        fs::rename(temp, self.file(RUNNER))
    }

    /// The runner's identity, if it recorded one (it does before the gate,
    /// so every job that got past its start has one).
    pub fn runner(&self) -> Option<ProcessIdentity> {
        fs::read_to_string(self.file(RUNNER)).ok()?.parse().ok()
    }

    /// Whether the pipe side recorded in `pipe-ready` still runs: the same
    /// pid with the same start time, so a recycled pid does not count.
    /// `None` when no pipe side has reported (or its marker is unreadable).
    pub fn pipe_side_alive(&self) -> Option<bool> {
        let recorded: ProcessIdentity = fs::read_to_string(self.file(PIPE_READY))
            .ok()?
            .parse()
            .ok()?;
        Some(recorded.is_alive())
    }

    /// Whether the pipe side drained the pane's output into the log.
    pub fn pipe_drained(&self) -> bool {
        self.has(PIPE_DRAINED)
    }

    /// Whether the pipe side failed to write the log.
    pub fn pipe_failed(&self) -> bool {
        self.has(PIPE_FAILED)
    }

    /// Whether the pipe side will add nothing more to the log: it drained
    /// the pane, failed, died, or never reported.
    pub fn pipe_side_done(&self) -> bool {
        self.pipe_drained() || self.pipe_failed() || self.pipe_side_alive() != Some(true)
    }

    /// How long ago the runner recorded the exit; `None` if it has not.
    pub fn exit_recorded_ago(&self) -> Option<std::time::Duration> {
        fs::metadata(self.file(EXIT))
            .ok()?
            .modified()
            .ok()?
            .elapsed()
            .ok()
    }

    /// Size of `output.log` in bytes (0 if it is missing).
    pub fn output_size(&self) -> u64 {
        fs::metadata(self.file(OUTPUT)).map_or(0, |m| m.len())
    }

    /// Records the exit atomically (write, then rename), so a reader sees
    /// all of it or nothing.
    pub fn write_exit(&self, exit: &ExitMarker) -> io::Result<()> {
        let write = || {
            let temp = self.file(".exit.tmp");
            write_private(
                &temp,
                format!("{}\n{}\n", exit.exit_code, exit.ended_at).as_bytes(),
            )?;
            fs::rename(temp, self.file(EXIT))
        };
        // The exit must be recorded on a full disk too, or the job never
        // ends: the state dir's reserve is there for it.
        match write() {
            Err(err) if is_disk_full(&err) && self.release_reserve() => write(),
            outcome => outcome,
        }
    }

    /// Frees the state directory's reserve file (beside the database; a
    /// job directory is `<state dir>/jobs/<id>`). Whether there was one.
    fn release_reserve(&self) -> bool {
        self.path
            .parent()
            .and_then(Path::parent)
            .is_some_and(|state_dir| fs::remove_file(state_dir.join(RESERVE_FILE)).is_ok())
    }

    /// Records that the runner is ending the job for `cause` (atomically,
    /// so a reader never sees it half-written).
    pub fn record_deadline(&self, cause: TerminateCause) -> io::Result<()> {
        let temp = self.file(".deadline.tmp");
        write_private(&temp, format!("{}\n", cause.as_str()).as_bytes())?;
        fs::rename(temp, self.file(DEADLINE))
    }

    /// The deadline that ended the job, if the runner recorded one (an
    /// unreadable or unknown record counts as none).
    pub fn deadline(&self) -> Option<TerminateCause> {
        fs::read_to_string(self.file(DEADLINE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Adds `count` to the job's left-behind processes (runner and server
    /// may both end some: at the exit, and at a later terminate or delete
    /// of a job that kept its background processes).
    pub fn add_leftovers(&self, count: usize) -> io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        let total = u64::from(self.leftovers()).saturating_add(count as u64);
        let temp = self.file(".leftovers.tmp");
        write_private(&temp, format!("{total}\n").as_bytes())?;
        fs::rename(temp, self.file(LEFTOVERS))
    }

    /// Processes ended after the script exited (0 if none was recorded).
    pub fn leftovers(&self) -> u32 {
        fs::read_to_string(self.file(LEFTOVERS))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The exit record, if the runner wrote one.
    pub fn read_exit(&self) -> io::Result<Option<ExitMarker>> {
        let text = match fs::read_to_string(self.file(EXIT)) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let mut lines = text.lines();
        let exit_code = lines.next().and_then(|l| l.trim().parse().ok());
        let ended_at = lines.next().map(str::to_owned);
        match (exit_code, ended_at) {
            (Some(exit_code), Some(ended_at)) => Ok(Some(ExitMarker {
                exit_code,
                ended_at,
            })),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed exit marker",
            )),
        }
    }

    /// Runner side of the gate: blocks until the server lets the job go.
    pub fn wait_at_gate(&self) -> io::Result<()> {
        let mut gate = File::open(self.file(GATE))?;
        let mut sink = Vec::new();
        gate.read_to_end(&mut sink).map(drop)
    }

    /// Server side of the gate: blocks until the runner is at the gate, then
    /// lets it go.
    pub fn open_gate(&self) -> io::Result<()> {
        let mut gate = OpenOptions::new().write(true).open(self.file(GATE))?;
        gate.write_all(b"go")
    }

    /// Lets the runner go if it waits at the gate now, without blocking.
    /// Returns false when no runner waits: it has not arrived yet, or it
    /// passed the gate already (say, the server stopped between opening the
    /// gate and recording `running`).
    pub fn release_waiting_runner(&self) -> io::Result<bool> {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(self.file(GATE));
        match opened {
            Ok(mut gate) => gate.write_all(b"go").map(|()| true),
            // A FIFO with no reader refuses a non-blocking writer.
            Err(err) if err.raw_os_error() == Some(nix::libc::ENXIO) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Unblocks an [`open_gate`](Self::open_gate) whose runner never came,
    /// by standing in as the reader for a moment.
    pub fn abandon_gate(&self) -> io::Result<()> {
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(self.file(GATE))
            .map(drop)
    }
}

/// Whether `err` says the disk (or the user's quota) is full.
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    )
}

/// Writes a new file with mode 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_marker_round_trips_and_absent_reads_as_none() {
        let root = tempfile::tempdir().unwrap();
        let dir = JobDir::create(root.path().join("j")).unwrap();
        assert!(
            JobDir::create(root.path().join("j")).is_err(),
            "collision detected"
        );
        assert_eq!(dir.read_exit().unwrap(), None);
        let exit = ExitMarker {
            exit_code: 130,
            ended_at: "2026-05-21T15:30:20Z".into(),
        };
        dir.write_exit(&exit).unwrap();
        assert_eq!(dir.read_exit().unwrap(), Some(exit));
    }

    fn populated_job_dir() -> (tempfile::TempDir, JobDir) {
        let root = tempfile::tempdir().unwrap();
        let dir = JobDir::create(root.path().join("j")).unwrap();
        let spec = JobSpec {
            cwd: "/".into(),
            env: BTreeMap::new(),
            ..JobSpec::default()
        };
        dir.populate("echo", &spec).unwrap();
        (root, dir)
    }

    #[test]
    fn a_populated_directory_is_complete_and_removable_once_or_twice() {
        let root = tempfile::tempdir().unwrap();
        let spec = JobSpec {
            cwd: "/".into(),
            env: BTreeMap::new(),
            ..JobSpec::default()
        };
        let path = root.path().join("j");
        let made = JobDir::create_populated(&path, "echo", &spec).unwrap();
        assert!(made.has(GATE));
        made.remove().unwrap();
        assert!(!path.exists());
        made.remove().unwrap();
    }

    #[test]
    fn a_pipe_ready_marker_names_one_process() {
        let (_root, dir) = populated_job_dir();
        assert_eq!(dir.pipe_side_alive(), None, "not reported yet");
        let me = ProcessIdentity::current().unwrap();
        dir.mark_pipe_ready(me).unwrap();
        assert_eq!(dir.pipe_side_alive(), Some(true));
        // Same pid, other start time: the pid was recycled.
        dir.mark_pipe_ready(ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        })
        .unwrap();
        assert_eq!(dir.pipe_side_alive(), Some(false));
    }

    #[test]
    fn gate_lets_the_runner_go_once_opened() {
        let (_root, dir) = populated_job_dir();
        let runner_side = dir.clone();
        let runner = std::thread::spawn(move || runner_side.wait_at_gate());
        dir.open_gate().unwrap();
        runner.join().unwrap().unwrap();
    }

    #[test]
    fn the_runner_waits_for_the_pipe_side_to_see_the_sync_sequence() {
        let (_root, dir) = populated_job_dir();
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        let runner_side = dir.clone();
        let runner = std::thread::spawn(move || runner_side.sync_with_pipe_side(&mut writer));
        // The "pty" carries the sequence; the pipe side acknowledges it.
        let mut seen = vec![0u8; SYNC_SEQUENCE.len()];
        std::io::Read::read_exact(&mut reader, &mut seen).unwrap();
        assert_eq!(seen, SYNC_SEQUENCE);
        dir.acknowledge_sync();
        runner.join().unwrap().unwrap();
        // With no runner waiting, an acknowledgement is a no-op.
        dir.acknowledge_sync();
    }

    #[test]
    fn a_waiting_runner_is_released_without_blocking_and_none_is_reported() {
        let (_root, dir) = populated_job_dir();
        assert!(!dir.release_waiting_runner().unwrap(), "no runner yet");
        let runner_side = dir.clone();
        let runner = std::thread::spawn(move || runner_side.wait_at_gate());
        // Released once the runner is at the gate.
        while !dir.release_waiting_runner().unwrap() {
            std::thread::yield_now();
        }
        runner.join().unwrap().unwrap();
    }

    #[test]
    fn an_abandoned_gate_unblocks_the_opener() {
        let (_root, dir) = populated_job_dir();
        let server_side = dir.clone();
        let opener = std::thread::spawn(move || server_side.open_gate());
        // Keep standing in until the blocked opener got through.
        while !opener.is_finished() {
            dir.abandon_gate().unwrap();
            std::thread::yield_now();
        }
        // Writing to a FIFO whose reader left is a broken pipe; either way
        // the opener is no longer stuck.
        let _ = opener.join().unwrap();
    }
}
