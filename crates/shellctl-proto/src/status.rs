//! The job lifecycle statuses.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a job is in its lifecycle.
///
/// `Created → Starting → Running → Exited | Terminated | Failed | Lost`.
/// The last four are terminal: once written they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobStatus {
    /// The row exists; nothing has been started yet.
    Created,
    /// The tmux session and output pipe are being set up.
    Starting,
    /// The script runs.
    Running,
    /// The script exited and all of its output is in the log.
    Exited,
    /// The job was terminated on request.
    Terminated,
    /// Start-up failed, or the output pipe died while the job ran.
    Failed,
    /// The job's tmux session vanished without a recorded exit.
    Lost,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Created,
        JobStatus::Starting,
        JobStatus::Running,
        JobStatus::Exited,
        JobStatus::Terminated,
        JobStatus::Failed,
        JobStatus::Lost,
    ];

    /// Whether the status is final (`done` on the wire).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Exited | JobStatus::Terminated | JobStatus::Failed | JobStatus::Lost
        )
    }

    /// The wire spelling, as stored in SQLite and sent in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Starting => "starting",
            JobStatus::Running => "running",
            JobStatus::Exited => "exited",
            JobStatus::Terminated => "terminated",
            JobStatus::Failed => "failed",
            JobStatus::Lost => "lost",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no job status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_are_exactly_the_last_four() {
        let terminal: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                JobStatus::Exited,
                JobStatus::Terminated,
                JobStatus::Failed,
                JobStatus::Lost
            ]
        );
    }

    #[test]
    fn wire_spelling_round_trips_through_serde_and_from_str() {
        for status in JobStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), status);
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
        }
        assert!("Running".parse::<JobStatus>().is_err());
        assert!(serde_json::from_str::<JobStatus>("\"done\"").is_err());
    }
}
