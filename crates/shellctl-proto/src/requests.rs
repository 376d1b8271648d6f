//! Request bodies and query strings of the v1 API, with their defaults and bounds.
//!
//! Bodies reject unknown fields. Query strings ignore unknown parameters, as
//! the reference does.

use crate::agents::{validate_deadline, validate_name};
use crate::error::ValidationError;
use crate::limits::{
    DEFAULT_GRACE_SECONDS, DEFAULT_IDLE_FLUSH_SECONDS, DEFAULT_LIST_LIMIT, DEFAULT_OUTPUT_LIMIT,
    DEFAULT_TERMINAL_COLS, DEFAULT_TERMINAL_ROWS, DEFAULT_TIMEOUT_SECONDS, MAX_GRACE_SECONDS,
    MAX_IDLE_FLUSH_SECONDS, MAX_LIST_LIMIT, MAX_OUTPUT_LIMIT, MAX_TERMINAL_DIMENSION,
    MAX_TIMEOUT_SECONDS,
};
use crate::resources::ResourceLimits;
use crate::status::JobStatus;
use crate::terminal::EnvPreset;
use crate::validate::{Validate, float_in_range, int_in_range};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Variables laid over the server's inherited environment for one job.
///
/// Names are non-empty and contain neither `=` nor NUL; values contain no
/// NUL. These are `execve`'s rules, not a shell's: any such name is allowed.
pub type EnvOverlay = BTreeMap<String, String>;

/// Checks an env overlay against `execve`'s rules; the error names the entry.
pub fn validate_env(env: &EnvOverlay) -> Result<(), ValidationError> {
    for (name, value) in env {
        let field = format!("env.{name}");
        if name.is_empty() {
            return Err(ValidationError::new(
                "env",
                "variable names must be non-empty",
            ));
        }
        if name.contains('=') {
            return Err(ValidationError::new(
                field,
                "variable names must not contain '='",
            ));
        }
        if name.contains('\0') {
            return Err(ValidationError::new(
                "env",
                "variable names must not contain NUL",
            ));
        }
        if value.contains('\0') {
            return Err(ValidationError::new(field, "values must not contain NUL"));
        }
    }
    Ok(())
}

pub(crate) fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECONDS
}
pub(crate) fn default_output_limit() -> u32 {
    DEFAULT_OUTPUT_LIMIT
}
pub(crate) fn default_idle_flush() -> f64 {
    DEFAULT_IDLE_FLUSH_SECONDS
}
fn default_grace() -> f64 {
    DEFAULT_GRACE_SECONDS
}
fn default_cols() -> u16 {
    DEFAULT_TERMINAL_COLS
}
fn default_rows() -> u16 {
    DEFAULT_TERMINAL_ROWS
}
fn default_list_limit() -> u32 {
    DEFAULT_LIST_LIMIT
}

/// Initial PTY geometry of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalSize {
    /// Columns, 1..=4096, default 120.
    #[serde(default = "default_cols")]
    pub cols: u16,
    /// Rows, 1..=4096, default 80.
    #[serde(default = "default_rows")]
    pub rows: u16,
}

impl Default for TerminalSize {
    fn default() -> Self {
        TerminalSize {
            cols: DEFAULT_TERMINAL_COLS,
            rows: DEFAULT_TERMINAL_ROWS,
        }
    }
}

impl Validate for TerminalSize {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range("terminal.cols", self.cols, 1, MAX_TERMINAL_DIMENSION)?;
        int_in_range("terminal.rows", self.rows, 1, MAX_TERMINAL_DIMENSION)
    }
}

/// The output-window knobs shared by run, wait, input and keys.
pub(crate) fn validate_window(
    timeout: f64,
    output_limit: u32,
    idle_flush: f64,
) -> Result<(), ValidationError> {
    float_in_range("timeout", timeout, 0.0, false, MAX_TIMEOUT_SECONDS)?;
    int_in_range("output_limit", output_limit, 1, MAX_OUTPUT_LIMIT)?;
    float_in_range(
        "idle_flush_seconds",
        idle_flush,
        0.0,
        true,
        MAX_IDLE_FLUSH_SECONDS,
    )
}

/// The grace of a terminate, in a body or a query: 0..=300 seconds.
fn validate_grace(grace_seconds: f64) -> Result<(), ValidationError> {
    float_in_range("grace_seconds", grace_seconds, 0.0, true, MAX_GRACE_SECONDS)
}

/// Body of `POST /v1/jobs/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunJobRequest {
    /// The script text. A `#!` first line makes it run as that interpreter;
    /// otherwise it runs under `sh`.
    pub script: String,
    /// Working directory (`~` expanded); default: the server's home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Variables laid over the inherited environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvOverlay>,
    /// PTY geometry; default 120×80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalSize>,
    /// Environment preset (not in the reference): `noninteractive` sets
    /// variables that keep tools from opening pagers or editors or asking
    /// questions; `none` opts out of a server-wide preset. Default: the
    /// server's `--env-preset`. `env` overrides the preset's variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_preset: Option<EnvPreset>,
    /// A label (1..=128 characters, not in the reference) to find the job
    /// by: `GET /v1/jobs?label=…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// An idempotency key (1..=128 characters, not in the reference): a
    /// second `run` with the same key starts nothing and answers for the
    /// first job, also across server restarts, while that job exists; with
    /// a different script it is a `409 idempotency_conflict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Seconds the script may run (not in the reference); then it gets
    /// Ctrl-C, and is killed 3 s later, ending `terminated` with
    /// `end_reason` `max_runtime`. Enforced by the job's own processes,
    /// so it holds while the server is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime_seconds: Option<f64>,
    /// Seconds the job may go without output (not in the reference); then
    /// it ends like `max_runtime_seconds`, with `end_reason`
    /// `idle_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<f64>,
    /// Keep processes the script started in the background running after
    /// the script exits (not in the reference), for a job that starts a
    /// daemon on purpose. By default they are ended with the job.
    /// `terminate` and `delete` end them either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_background: Option<bool>,
    /// Most memory the job's processes may use together, in bytes (at
    /// least 4 MiB; not in the reference). Needs the cgroup memory
    /// controller, else `422 unsupported_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max_bytes: Option<u64>,
    /// Most processes and threads the job may have at once (not in the
    /// reference). Needs the cgroup pids controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u32>,
    /// Most CPU the job may use, in cores (0.01 to 1024; not in the
    /// reference). Needs the cgroup cpu controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<f64>,
    /// Seconds to wait for first output, `0 < t <= 300`, default 30.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Bytes of output to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
    /// Quiet seconds after new output before returning, 0..=30, default 0.5.
    #[serde(default = "default_idle_flush")]
    pub idle_flush_seconds: f64,
}

impl RunJobRequest {
    /// A request for `script` with every other field at its default.
    pub fn new(script: impl Into<String>) -> Self {
        RunJobRequest {
            script: script.into(),
            cwd: None,
            env: None,
            terminal: None,
            env_preset: None,
            label: None,
            idempotency_key: None,
            max_runtime_seconds: None,
            idle_timeout_seconds: None,
            keep_background: None,
            memory_max_bytes: None,
            pids_max: None,
            cpu_max: None,
            timeout: DEFAULT_TIMEOUT_SECONDS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            idle_flush_seconds: DEFAULT_IDLE_FLUSH_SECONDS,
        }
    }
}

impl RunJobRequest {
    /// The resource limits the request asks for.
    pub fn limits(&self) -> ResourceLimits {
        ResourceLimits {
            memory_max_bytes: self.memory_max_bytes,
            pids_max: self.pids_max,
            cpu_max: self.cpu_max,
        }
    }
}

impl Validate for RunJobRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(env) = &self.env {
            validate_env(env)?;
        }
        if let Some(terminal) = &self.terminal {
            terminal.validate()?;
        }
        if self.cwd.as_deref().is_some_and(|cwd| cwd.contains('\0')) {
            return Err(ValidationError::new("cwd", "must not contain NUL"));
        }
        if let Some(label) = &self.label {
            validate_name("label", label)?;
        }
        if let Some(key) = &self.idempotency_key {
            validate_name("idempotency_key", key)?;
        }
        if let Some(seconds) = self.max_runtime_seconds {
            validate_deadline("max_runtime_seconds", seconds)?;
        }
        if let Some(seconds) = self.idle_timeout_seconds {
            validate_deadline("idle_timeout_seconds", seconds)?;
        }
        self.limits().validate()?;
        validate_window(self.timeout, self.output_limit, self.idle_flush_seconds)
    }
}

/// Body of `POST /v1/jobs/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitJobRequest {
    /// Byte offset into `output.log` to read from (required).
    pub offset: u64,
    /// Seconds to wait, `0 < t <= 300`, default 30.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Bytes of output to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
    /// Quiet seconds after new output before returning, 0..=30, default 0.5.
    #[serde(default = "default_idle_flush")]
    pub idle_flush_seconds: f64,
}

impl WaitJobRequest {
    /// A wait from `offset` with every other field at its default.
    pub fn new(offset: u64) -> Self {
        WaitJobRequest {
            offset,
            timeout: DEFAULT_TIMEOUT_SECONDS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            idle_flush_seconds: DEFAULT_IDLE_FLUSH_SECONDS,
        }
    }
}

impl Validate for WaitJobRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_window(self.timeout, self.output_limit, self.idle_flush_seconds)
    }
}

/// Body of `POST /v1/jobs/{id}/input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputJobRequest {
    /// Text typed into the job's terminal, byte for byte (no newline added).
    pub text: String,
    /// Byte offset into `output.log` to read from after typing (required).
    pub offset: u64,
    /// Seconds to wait, `0 < t <= 300`, default 30.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Bytes of output to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
    /// Quiet seconds after new output before returning, 0..=30, default 0.5.
    #[serde(default = "default_idle_flush")]
    pub idle_flush_seconds: f64,
}

impl Validate for InputJobRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_window(self.timeout, self.output_limit, self.idle_flush_seconds)
    }
}

/// Body of `POST /v1/jobs/{id}/terminate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminateJobRequest {
    /// Seconds between Ctrl-C and killing the session, 0..=300, default 5.
    #[serde(default = "default_grace")]
    pub grace_seconds: f64,
}

impl Default for TerminateJobRequest {
    fn default() -> Self {
        TerminateJobRequest {
            grace_seconds: DEFAULT_GRACE_SECONDS,
        }
    }
}

impl Validate for TerminateJobRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_grace(self.grace_seconds)
    }
}

/// Query of `GET /v1/jobs/{id}/log/tail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailQuery {
    /// Bytes of the log's end to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
}

impl Validate for TailQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range("output_limit", self.output_limit, 1, MAX_OUTPUT_LIMIT)
    }
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListJobsQuery {
    /// Only jobs with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// Only jobs with this label (not in the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Jobs to return at most, newest first, 1..=1000, default 100.
    #[serde(default = "default_list_limit")]
    pub limit: u32,
}

impl Default for ListJobsQuery {
    fn default() -> Self {
        ListJobsQuery {
            status: None,
            label: None,
            limit: DEFAULT_LIST_LIMIT,
        }
    }
}

impl Validate for ListJobsQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range("limit", self.limit, 1, MAX_LIST_LIMIT)
    }
}

/// Query of `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteJobQuery {
    /// Terminate a running job first instead of answering 409.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force: bool,
    /// Grace for that terminate, 0..=300, default 5.
    #[serde(default = "default_grace")]
    pub grace_seconds: f64,
}

impl Default for DeleteJobQuery {
    fn default() -> Self {
        DeleteJobQuery {
            force: false,
            grace_seconds: DEFAULT_GRACE_SECONDS,
        }
    }
}

impl Validate for DeleteJobQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_grace(self.grace_seconds)
    }
}

/// Accepts the spellings of a boolean that the reference's framework accepts
/// in a query string (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let raw = String::deserialize(deserializer)?;
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "expected a boolean, got {raw:?}"
        ))),
    }
}
