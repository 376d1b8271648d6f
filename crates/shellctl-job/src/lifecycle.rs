//! The typed lifecycle: how a job can end, why one fails, what the monitor
//! concludes, and the rules that decide each.
//!
//! ```text
//!   created ──► starting ──► running ──► exited | terminated | failed | lost
//!      │            │
//!      │            ├──► failed (start_failed, start_interrupted) | terminated
//!      └────────────┴──► failed (start_interrupted)
//! ```
//!
//! Every ending goes through [`Store::settle`], whichever process reaches
//! it: the pipe side (an exit, by [`commit_recorded_exit`]) and the server
//! (the same exit rule when the pipe side could not commit, terminate,
//! start failures, and the monitor's [`judge`]ment). `ARCHITECTURE.md` has
//! the rule behind every edge.

use crate::files::{ExitMarker, JobDir};
use crate::store::{Store, StoreError};
use shellctl_proto::{EndReason, JobId, JobStatus};
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

/// How long an exit recorded by the runner may wait for its pipe side to
/// drain before the pipe counts as failed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Why a job ended as `failed`. Stored in the `failure` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The session, the pipe or the runner did not come up in time.
    StartFailed,
    /// The server stopped while the job was being started.
    StartInterrupted,
    /// The pipe side died or could not write the log while the job ran.
    PipeFailed,
}

impl FailureReason {
    /// Every reason.
    pub const ALL: [FailureReason; 3] = [
        FailureReason::StartFailed,
        FailureReason::StartInterrupted,
        FailureReason::PipeFailed,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::StartFailed => "start_failed",
            FailureReason::StartInterrupted => "start_interrupted",
            FailureReason::PipeFailed => "pipe_failed",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored failure reason no version of shellctl writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure reason {0:?}")]
pub struct UnknownFailureReason(pub String);

impl FromStr for FailureReason {
    type Err = UnknownFailureReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| UnknownFailureReason(s.to_owned()))
    }
}

/// How a live job ends. Handed to [`Store::settle`], the one place that
/// writes a terminal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The script exited with this code (128+N for signal N) and all its
    /// output is in the log. Recorded as `terminated` instead when a
    /// terminate was requested first: the exit is then its doing (see
    /// [`Ending::is_terminate_doing`]).
    Exited {
        /// The script's exit code.
        exit_code: i32,
    },
    /// Terminated: on request (the session was killed after the grace), or
    /// by the runner for a deadline.
    Terminated(TerminateCause),
    /// Start-up failed or the pipe side died.
    Failed(FailureReason),
    /// The session vanished with no exit recorded. Also recorded as
    /// `terminated` after a terminate request.
    Lost,
}

impl Ending {
    /// Whether this ending, after a terminate request, is the terminate's
    /// doing and so records `terminated`: the script's exit (Ctrl-C ended
    /// it) and a vanished session (the kill after the grace removed it).
    pub fn is_terminate_doing(self) -> bool {
        matches!(self, Ending::Exited { .. } | Ending::Lost)
    }

    /// The status this ending records (before the terminate rule of
    /// [`Ending::Exited`]).
    pub fn status(self) -> JobStatus {
        match self {
            Ending::Exited { .. } => JobStatus::Exited,
            Ending::Terminated(_) => JobStatus::Terminated,
            Ending::Failed(_) => JobStatus::Failed,
            Ending::Lost => JobStatus::Lost,
        }
    }

    /// Why the job ended, as `detail` reports it (before the terminate rule:
    /// [`Store::settle`] records `terminate` for an ending that is a
    /// terminate's doing).
    pub fn end_reason(self) -> EndReason {
        match self {
            Ending::Exited { .. } => EndReason::Exit,
            Ending::Terminated(cause) => cause.end_reason(),
            Ending::Failed(FailureReason::StartFailed) => EndReason::StartFailed,
            Ending::Failed(FailureReason::StartInterrupted) => EndReason::StartInterrupted,
            Ending::Failed(FailureReason::PipeFailed) => EndReason::PipeFailed,
            Ending::Lost => EndReason::Lost,
        }
    }
}

/// Who ended a `terminated` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminateCause {
    /// A terminate (or forced delete) request.
    Request,
    /// The runner: `max_runtime_seconds` passed.
    MaxRuntime,
    /// The runner: no output for `idle_timeout_seconds`.
    IdleTimeout,
    /// The runner: the OOM killer ended a process of the job under its
    /// memory limit, and the script failed.
    Oom,
}

impl TerminateCause {
    /// The spelling in the `deadline` marker (the same as the end reason).
    pub fn as_str(self) -> &'static str {
        self.end_reason().as_str()
    }

    /// The end reason it records.
    pub fn end_reason(self) -> EndReason {
        match self {
            TerminateCause::Request => EndReason::Terminate,
            TerminateCause::MaxRuntime => EndReason::MaxRuntime,
            TerminateCause::IdleTimeout => EndReason::IdleTimeout,
            TerminateCause::Oom => EndReason::Oom,
        }
    }
}

/// A `deadline` marker holding no cause this version knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown terminate cause {0:?}")]
pub struct UnknownTerminateCause(pub String);

impl FromStr for TerminateCause {
    type Err = UnknownTerminateCause;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [
            TerminateCause::Request,
            TerminateCause::MaxRuntime,
            TerminateCause::IdleTimeout,
            TerminateCause::Oom,
        ]
        .into_iter()
        .find(|cause| cause.as_str() == raw)
        .ok_or_else(|| UnknownTerminateCause(raw.to_owned()))
    }
}

/// Settling a job from its files failed.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// A marker could not be read.
    #[error("reading the job's markers: {0}")]
    Io(#[from] io::Error),
    /// The database refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The exit-commit rule: a job's exit may be committed once the runner
/// recorded it **and** the pipe side drained all output into the log, so a
/// job never reads as `exited` with output still missing. Returns the exit
/// when both hold.
pub fn committable_exit(job_dir: &JobDir) -> io::Result<Option<ExitMarker>> {
    if !job_dir.pipe_drained() {
        return Ok(None);
    }
    job_dir.read_exit()
}

/// Applies the exit-commit rule: settles the job as exited if its exit is
/// committable (as terminated, with the deadline as its cause, when the
/// runner ended the script for a deadline). Returns whether this call ended the job (false when the
/// rule does not hold yet or another writer settled it first). Run by the
/// pipe side right after draining, and by the server for an exit whose
/// pipe side died between draining and committing.
pub fn commit_recorded_exit(
    job_dir: &JobDir,
    store: &Store,
    job_id: JobId,
) -> Result<bool, SettleError> {
    match committable_exit(job_dir)? {
        Some(exit) => {
            // A deadline the runner enforced makes the exit its doing.
            let ending = match job_dir.deadline() {
                Some(cause) => Ending::Terminated(cause),
                None => Ending::Exited {
                    exit_code: exit.exit_code,
                },
            };
            Ok(store.settle(job_id, ending, &exit.ended_at)?)
        }
        None => Ok(false),
    }
}

/// What tmux reports about a job's pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneView {
    /// A pipe (the job's pipe side) is attached.
    pub piped: bool,
    /// The pane's process has exited.
    pub dead: bool,
}

/// Everything the monitor looks at for one running job whose exit is not
/// committable (that case is settled by [`commit_recorded_exit`] first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The job's pane; `None` when its session is gone.
    pub pane: Option<PaneView>,
    /// The pipe side left its `pipe-failed` marker.
    pub pipe_failed: bool,
    /// The pipe side drained the pane's output.
    pub pipe_drained: bool,
    /// Whether the pipe side recorded in `pipe-ready` still runs; `None`
    /// when it never reported.
    pub pipe_side_alive: Option<bool>,
    /// How long ago the runner recorded the exit, if it did.
    pub exit_recorded_ago: Option<Duration>,
}

/// The monitor's conclusion about one running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorVerdict {
    /// Nothing to do: it runs, or its pipe side is still draining.
    Healthy,
    /// End it as failed (and kill its session).
    Failed(FailureReason),
    /// End it as lost: its session vanished with no exit recorded.
    Lost,
}

impl MonitorVerdict {
    /// The ending to settle, if any.
    pub fn ending(self) -> Option<Ending> {
        match self {
            MonitorVerdict::Healthy => None,
            MonitorVerdict::Failed(reason) => Some(Ending::Failed(reason)),
            MonitorVerdict::Lost => Some(Ending::Lost),
        }
    }
}

/// The monitor's rules, in order:
/// 1. a `pipe-failed` marker fails the job;
/// 2. a live pane whose pipe is gone (tmux detached it, or the pipe-side
///    process died before draining; tmux notices a dead pipe only when the
///    pane next writes, so the process is checked too) fails it;
/// 3. a live pane otherwise is healthy;
/// 4. a vanished session with an exit recorded is healthy while its pipe
///    side still runs (it is draining; the runner's end-of-output handshake
///    can keep the exit record old by the time the pane closes), and
///    otherwise fails once the exit is [`DRAIN_GRACE`] old;
/// 5. a vanished session with no exit recorded is lost.
pub fn judge(seen: &Observation) -> MonitorVerdict {
    let pipe_gone = seen.pipe_side_alive == Some(false) && !seen.pipe_drained;
    match seen.pane {
        _ if seen.pipe_failed => MonitorVerdict::Failed(FailureReason::PipeFailed),
        Some(pane) if (!pane.piped || pipe_gone) && !pane.dead => {
            MonitorVerdict::Failed(FailureReason::PipeFailed)
        }
        Some(_) => MonitorVerdict::Healthy,
        None => match seen.exit_recorded_ago {
            Some(age) if age > DRAIN_GRACE && seen.pipe_side_alive != Some(true) => {
                MonitorVerdict::Failed(FailureReason::PipeFailed)
            }
            Some(_) => MonitorVerdict::Healthy,
            None => MonitorVerdict::Lost,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: Observation = Observation {
        pane: Some(PaneView {
            piped: true,
            dead: false,
        }),
        pipe_failed: false,
        pipe_drained: false,
        pipe_side_alive: Some(true),
        exit_recorded_ago: None,
    };

    #[test]
    fn failure_reasons_round_trip_through_their_stored_spelling() {
        for reason in FailureReason::ALL {
            assert_eq!(reason.as_str().parse::<FailureReason>(), Ok(reason));
        }
        assert!("".parse::<FailureReason>().is_err());
    }

    #[test]
    fn the_monitor_leaves_a_running_job_alone() {
        assert_eq!(judge(&RUNNING), MonitorVerdict::Healthy);
        let dead_pane_draining = Observation {
            pane: Some(PaneView {
                piped: true,
                dead: true,
            }),
            pipe_side_alive: Some(false),
            ..RUNNING
        };
        assert_eq!(judge(&dead_pane_draining), MonitorVerdict::Healthy);
    }

    #[test]
    fn a_dead_or_detached_pipe_fails_the_job() {
        let failed = MonitorVerdict::Failed(FailureReason::PipeFailed);
        for seen in [
            Observation {
                pipe_failed: true,
                ..RUNNING
            },
            Observation {
                pipe_side_alive: Some(false),
                ..RUNNING
            },
            Observation {
                pane: Some(PaneView {
                    piped: false,
                    dead: false,
                }),
                ..RUNNING
            },
        ] {
            assert_eq!(judge(&seen), failed, "{seen:?}");
        }
    }

    #[test]
    fn a_vanished_session_is_lost_unless_an_exit_was_recorded() {
        let gone = Observation {
            pane: None,
            ..RUNNING
        };
        assert_eq!(judge(&gone), MonitorVerdict::Lost);
        let draining = Observation {
            exit_recorded_ago: Some(Duration::from_secs(1)),
            ..gone
        };
        assert_eq!(judge(&draining), MonitorVerdict::Healthy);
        let slow_drain = Observation {
            exit_recorded_ago: Some(DRAIN_GRACE + Duration::from_secs(1)),
            ..gone
        };
        assert_eq!(
            judge(&slow_drain),
            MonitorVerdict::Healthy,
            "still draining"
        );
        let stuck = Observation {
            pipe_side_alive: Some(false),
            ..slow_drain
        };
        assert_eq!(
            judge(&stuck),
            MonitorVerdict::Failed(FailureReason::PipeFailed)
        );
    }
}
