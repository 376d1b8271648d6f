//! Wire types of the agent routes, new beside the frozen v1 set: a job's
//! detail, server-side wait conditions, log search and output digests
//! (output rendered within a byte budget).
//!
//! Routes: `GET /v1/jobs/{id}/detail`, `POST /v1/jobs/{id}/wait-for`,
//! `GET /v1/jobs/{id}/log/search`, `POST /v1/jobs/{id}/digest`. The labels,
//! idempotency keys and deadlines of `run` are optional fields of
//! [`RunJobRequest`](crate::RunJobRequest); the label filter of `list` is
//! an optional query parameter. Requests reject unknown fields, like v1's.

use crate::error::ValidationError;
use crate::job_id::JobId;
use crate::limits::{
    DEFAULT_IDLE_FLUSH_SECONDS, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT_SECONDS, MAX_OUTPUT_LIMIT,
};
use crate::requests::{
    TerminalSize, default_idle_flush, default_output_limit, default_timeout, validate_window,
};
use crate::responses::JobResult;
use crate::status::JobStatus;
use crate::terminal::InputKind;
use crate::validate::{Validate, int_in_range};
use serde::{Deserialize, Serialize};

/// Longest label or idempotency key, in characters.
pub const MAX_LABEL_CHARS: usize = 128;
/// Longest a deadline (`max_runtime_seconds`, `idle_timeout_seconds`) may
/// be: 30 days.
pub const MAX_DEADLINE_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
/// Longest search or wait pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1000;
/// Default number of matches a log search returns.
pub const DEFAULT_SEARCH_LIMIT: u32 = 100;
/// Most matches a log search may return.
pub const MAX_SEARCH_LIMIT: u32 = 1000;
/// Default byte budget of a digest (about 4,000 tokens).
pub const DEFAULT_DIGEST_BYTES: u32 = 16_000;
/// Smallest digest budget: room for the markers and a last line.
pub const MIN_DIGEST_BYTES: u32 = 256;
/// Largest digest budget.
pub const MAX_DIGEST_BYTES: u32 = MAX_OUTPUT_LIMIT;

/// Checks a label or idempotency key: 1..=128 characters, no control
/// characters (they would garble listings and logs).
pub(crate) fn validate_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_LABEL_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_LABEL_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a deadline: `0 < seconds <= 30 days`.
pub(crate) fn validate_deadline(field: &str, seconds: f64) -> Result<(), ValidationError> {
    crate::validate::float_in_range(field, seconds, 0.0, false, MAX_DEADLINE_SECONDS)
}

/// Checks a pattern's size; its syntax is the server's to check (it
/// compiles it).
fn validate_pattern(field: &str, pattern: &str) -> Result<(), ValidationError> {
    if pattern.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_PATTERN_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Why a job ended, finer than its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EndReason {
    /// The script ended by itself (`exited`).
    Exit,
    /// A terminate or a forced delete ended it (`terminated`).
    Terminate,
    /// `max_runtime_seconds` passed (`terminated`).
    MaxRuntime,
    /// No output appeared for `idle_timeout_seconds` (`terminated`).
    IdleTimeout,
    /// The session, the pipe or the runner did not come up (`failed`).
    StartFailed,
    /// The server stopped while the job was being started (`failed`).
    StartInterrupted,
    /// The output pipe died or could not write the log (`failed`).
    PipeFailed,
    /// The session vanished without a recorded exit (`lost`).
    Lost,
    /// The kernel's OOM killer ended a process of the job, which then
    /// failed, under `memory_max_bytes` (`terminated`).
    Oom,
}

impl EndReason {
    /// Every reason.
    pub const ALL: [EndReason; 9] = [
        EndReason::Exit,
        EndReason::Terminate,
        EndReason::MaxRuntime,
        EndReason::IdleTimeout,
        EndReason::StartFailed,
        EndReason::StartInterrupted,
        EndReason::PipeFailed,
        EndReason::Lost,
        EndReason::Oom,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Terminate => "terminate",
            EndReason::MaxRuntime => "max_runtime",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::StartFailed => "start_failed",
            EndReason::StartInterrupted => "start_interrupted",
            EndReason::PipeFailed => "pipe_failed",
            EndReason::Lost => "lost",
            EndReason::Oom => "oom",
        }
    }
}

impl std::str::FromStr for EndReason {
    type Err = ValidationError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        EndReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == raw)
            .ok_or_else(|| ValidationError::new("end_reason", format!("unknown reason {raw:?}")))
    }
}

/// Answer of `GET /v1/jobs/{id}/detail`: everything the server knows of a
/// job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// A wire type: each flag is an independent fact a client reads by name.
#[allow(clippy::struct_excessive_bools)]
pub struct JobDetail {
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
    /// Current size of `output.log` in bytes (the v1 status's `offset`).
    pub offset: u64,
    /// The label given at `run`.
    pub label: Option<String>,
    /// The idempotency key given at `run`.
    pub idempotency_key: Option<String>,
    /// The job's working directory.
    pub cwd: String,
    /// The script as given.
    pub script: String,
    /// The terminal's size: the live pane's while the job runs, else the
    /// size it was started with.
    pub terminal: TerminalSize,
    /// Why a `failed` job failed (`start_failed`, `start_interrupted`,
    /// `pipe_failed`).
    pub failure_reason: Option<String>,
    /// Why the job ended; null while it runs, and for jobs that ended
    /// before this field existed.
    pub end_reason: Option<EndReason>,
    /// Bytes of output in the log (the same as `offset`).
    pub output_bytes: u64,
    /// The job's runtime limit.
    pub max_runtime_seconds: Option<f64>,
    /// The job's output-idleness limit.
    pub idle_timeout_seconds: Option<f64>,
    /// Process id of the job's runner (the terminal's session leader; the
    /// script is its child); null once the job has ended.
    pub pid: Option<u32>,
    /// Whether the job was started with `keep_background`.
    pub keep_background: bool,
    /// The job's memory limit, in bytes.
    pub memory_max_bytes: Option<u64>,
    /// The job's process limit.
    pub pids_max: Option<u32>,
    /// The job's CPU limit, in cores.
    pub cpu_max: Option<f64>,
    /// How the job's processes are tracked: `cgroup` (v1 or v2) or
    /// `process_scan` (an inherited environment marker found in `/proc`).
    pub containment: Option<String>,
    /// Processes the job left behind that shellctl ended after its script
    /// exited (at the exit, or at `terminate`/`delete` for a job started
    /// with `keep_background`).
    pub leftover_processes: u32,
    /// The log reached the server's `--max-log-bytes`: later output was
    /// read from the terminal and discarded, after one marker line.
    pub log_capped: bool,
    /// Writing the log failed (a full disk): later output was read from the
    /// terminal and discarded, so the log misses the job's end.
    pub log_incomplete: bool,
}

/// A condition that ends a `wait-for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WaitUntil {
    /// The job ended.
    Exit,
    /// The pattern matched a line of the output.
    Match,
    /// The job waits for input on its terminal.
    Input,
    /// New output appeared and then went quiet for `idle_flush_seconds`.
    Idle,
}

/// The conditions a `wait-for` uses when the request names none.
pub const DEFAULT_WAIT_UNTIL: [WaitUntil; 3] =
    [WaitUntil::Exit, WaitUntil::Match, WaitUntil::Input];

/// Body of `POST /v1/jobs/{id}/wait-for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitForRequest {
    /// Byte offset into `output.log` to read and match from (required).
    pub offset: u64,
    /// A regular expression (Rust `regex` syntax) matched line by line
    /// against the output from `offset` on, including a line still being
    /// written (a prompt). A match that reaches the end of such an
    /// unfinished line counts only once the job waits for input or has
    /// ended, since the rest of the line may still come (`^err$` must not
    /// match the start of `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Which conditions end the wait; default `["exit", "match", "input"]`
    /// (`match` only when a pattern is given). A job that has ended always
    /// ends the wait, as `exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Vec<WaitUntil>>,
    /// Seconds to wait, `0 < t <= 300`, default 30.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Bytes of output to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
    /// Quiet seconds after new output that end an `idle` wait, 0..=30,
    /// default 0.5.
    #[serde(default = "default_idle_flush")]
    pub idle_flush_seconds: f64,
}

impl WaitForRequest {
    /// A wait from `offset` with every other field at its default.
    pub fn new(offset: u64) -> Self {
        WaitForRequest {
            offset,
            pattern: None,
            until: None,
            timeout: DEFAULT_TIMEOUT_SECONDS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            idle_flush_seconds: DEFAULT_IDLE_FLUSH_SECONDS,
        }
    }

    /// The conditions in force: the request's, else the default, with
    /// `match` dropped when no pattern is given.
    pub fn conditions(&self) -> Vec<WaitUntil> {
        let wanted = self.until.as_deref().unwrap_or(&DEFAULT_WAIT_UNTIL);
        let mut conditions: Vec<WaitUntil> = Vec::with_capacity(wanted.len());
        for &condition in wanted {
            if (condition != WaitUntil::Match || self.pattern.is_some())
                && !conditions.contains(&condition)
            {
                conditions.push(condition);
            }
        }
        conditions
    }
}

impl Validate for WaitForRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_window(self.timeout, self.output_limit, self.idle_flush_seconds)?;
        if let Some(pattern) = &self.pattern {
            validate_pattern("pattern", pattern)?;
        }
        if let Some(until) = &self.until {
            if until.is_empty() {
                return Err(ValidationError::new(
                    "until",
                    "must name at least one condition",
                ));
            }
            if until.contains(&WaitUntil::Match) && self.pattern.is_none() {
                return Err(ValidationError::new("until", "\"match\" needs a pattern"));
            }
        }
        Ok(())
    }
}

/// Why a `wait-for` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WaitReason {
    /// The job has ended.
    Exited,
    /// The pattern matched.
    Matched,
    /// The job waits for input on its terminal.
    WaitingForInput,
    /// New output went quiet for `idle_flush_seconds`.
    Idle,
    /// The timeout passed first (or the server is shutting down).
    Timeout,
}

/// Where the pattern matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatternMatch {
    /// Absolute byte offset of the match's first byte in the log.
    pub offset: u64,
    /// The matched text.
    pub text: String,
}

/// What a job waiting for input waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitingForInput {
    /// The kind of input.
    pub kind: InputKind,
    /// The cursor's line up to the cursor, when it is a prompt.
    pub prompt: Option<String>,
}

/// Answer of `POST /v1/jobs/{id}/wait-for`: the v1 window fields, plus why
/// the wait ended and where the pattern matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitForResult {
    /// The output window and status, as `wait` returns them. After a match
    /// the output runs up to the end of the matching line (at most
    /// `output_limit` bytes; a match further on than that is still
    /// reported, and the next read from `offset` reaches it).
    #[serde(flatten)]
    pub result: JobResult,
    /// Why the wait ended.
    pub reason: WaitReason,
    /// Where the pattern matched; null unless `reason` is `matched`.
    #[serde(rename = "match")]
    pub pattern_match: Option<PatternMatch>,
    /// What the job waits for; null unless `reason` is
    /// `waiting_for_input`.
    pub waiting_for_input: Option<WaitingForInput>,
}

fn default_search_limit() -> u32 {
    DEFAULT_SEARCH_LIMIT
}

/// Query of `GET /v1/jobs/{id}/log/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSearchQuery {
    /// A regular expression (Rust `regex` syntax) matched against each
    /// line of the whole log.
    pub pattern: String,
    /// Matching lines to return at most, 1..=1000, default 100.
    #[serde(default = "default_search_limit")]
    pub limit: u32,
}

impl Validate for LogSearchQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_pattern("pattern", &self.pattern)?;
        int_in_range("limit", self.limit, 1, MAX_SEARCH_LIMIT)
    }
}

/// One matching line of a log search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogSearchMatch {
    /// Absolute byte offset of the line's first byte.
    pub offset: u64,
    /// The line's number, counted from 1.
    pub line_number: u64,
    /// The line without its newline (cut at 4096 bytes, with `…`).
    pub line: String,
}

/// Answer of `GET /v1/jobs/{id}/log/search`, in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogSearchResponse {
    /// The matching lines, at most `limit`.
    pub matches: Vec<LogSearchMatch>,
    /// Whether more lines match beyond `limit`.
    pub truncated: bool,
}

fn default_digest_bytes() -> u32 {
    DEFAULT_DIGEST_BYTES
}

/// Body of `POST /v1/jobs/{id}/digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestRequest {
    /// Byte offset into `output.log` where the digest starts (required).
    pub offset: u64,
    /// Byte budget of the text, markers included, 256..=1048576, default
    /// 16000.
    #[serde(default = "default_digest_bytes")]
    pub max_bytes: u32,
    /// Where the digest ends; default the log's current end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
}

impl DigestRequest {
    /// A digest from `offset` to the end, within `max_bytes`.
    pub fn new(offset: u64, max_bytes: u32) -> Self {
        DigestRequest {
            offset,
            max_bytes,
            end_offset: None,
        }
    }
}

impl Validate for DigestRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range(
            "max_bytes",
            self.max_bytes,
            MIN_DIGEST_BYTES,
            MAX_DIGEST_BYTES,
        )?;
        if self.end_offset.is_some_and(|end| end < self.offset) {
            return Err(ValidationError::new(
                "end_offset",
                "must not be before offset",
            ));
        }
        Ok(())
    }
}

/// Answer of `POST /v1/jobs/{id}/digest`: output rendered within a byte
/// budget, head and tail kept, error lines from the middle kept, every cut
/// marked (the format is in README, "Output digests").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestView {
    /// The rendered text, at most `max_bytes` bytes.
    pub text: String,
    /// Byte offset where the digest ends; the next read starts here.
    pub offset: u64,
    /// Bytes of the range left out of `text`.
    pub omitted_bytes: u64,
    /// Whole lines left out of `text`.
    pub omitted_lines: u64,
}
