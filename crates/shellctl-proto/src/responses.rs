//! Response bodies of the v1 API.
//!
//! Each carries exactly the reference's fields: the reference's Python SDK
//! validates responses with `extra="forbid"`, so one extra field breaks it.
//! `Option` fields serialize as `null`, never disappear.

use crate::job_id::JobId;
use crate::status::JobStatus;
use serde::{Deserialize, Serialize};

/// Answer of run, wait, input and tail: a window of a job's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobResult {
    /// The job.
    pub job_id: JobId,
    /// Whether the job's status is terminal.
    pub done: bool,
    /// The job's status when the window was read.
    pub status: JobStatus,
    /// The exit code, set only for `exited`.
    pub exit_code: Option<i32>,
    /// Absolute path of the job's `output.log`.
    pub output_path: String,
    /// Output text, valid UTF-8 cut at character boundaries.
    pub output: String,
    /// Byte offset just after `output`; the next wait starts here.
    pub offset: u64,
    /// Whether more bytes already exist past `offset`.
    pub truncated: bool,
}

/// Answer of status and terminate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatusView {
    /// The job.
    pub job_id: JobId,
    /// The job's status.
    pub status: JobStatus,
    /// Whether the status is terminal.
    pub done: bool,
    /// The exit code, set only for `exited`.
    pub exit_code: Option<i32>,
    /// When the job was created (wire timestamp).
    pub created_at: String,
    /// When the script started, once it has.
    pub started_at: Option<String>,
    /// When the job ended, once it has.
    pub ended_at: Option<String>,
    /// Current size of `output.log` in bytes.
    pub offset: u64,
}

/// One row of a job listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInfo {
    /// The job.
    pub job_id: JobId,
    /// The job's status.
    pub status: JobStatus,
    /// When the job was created (wire timestamp).
    pub created_at: String,
    /// When the script started, once it has.
    pub started_at: Option<String>,
    /// When the job ended, once it has.
    pub ended_at: Option<String>,
}

/// Answer of `GET /v1/jobs`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListJobsResponse {
    /// The jobs.
    pub jobs: Vec<JobInfo>,
}

/// Answer of a successful delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteJobResponse {
    /// The deleted job.
    pub job_id: JobId,
    /// Always true.
    pub deleted: bool,
}

/// Answer of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// Always `"ok"`.
    pub status: String,
}

impl Default for HealthResponse {
    fn default() -> Self {
        HealthResponse {
            status: "ok".to_owned(),
        }
    }
}
