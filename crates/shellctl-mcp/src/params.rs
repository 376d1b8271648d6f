//! The arguments of each tool: their types and bounds, and the doc
//! comments that become the JSON schema descriptions a model reads (so
//! they are written for a model, in plain words without Markdown).
//! Optional arguments are `Option`s: absent or null is the default.
// Tool and key names stay bare: the text is shown to models as it is.
#![allow(clippy::doc_markdown)]

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Arguments of `shell_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunParams {
    /// The shell script to run (one command or many lines).
    pub(crate) script: String,
    /// Working directory (~ is expanded). Default: the server's home directory.
    pub(crate) cwd: Option<String>,
    /// Environment variables to set for the script, added to the server's environment.
    pub(crate) env: Option<BTreeMap<String, String>>,
    /// A label to find the job by later with shell_list (1 to 128 characters).
    pub(crate) label: Option<String>,
    /// Seconds the job may run at most; then it is interrupted (Ctrl-C) and killed 3 seconds later. Use it for commands that could hang. Default: no limit.
    pub(crate) max_runtime_seconds: Option<f64>,
    /// Seconds the job may go without printing anything; then it is ended like max_runtime_seconds. Default: no limit.
    pub(crate) idle_timeout_seconds: Option<f64>,
    /// Set true only when the script starts a server or daemon in the background that must keep running after the script ends. Default false: background processes end with the script.
    pub(crate) keep_background: Option<bool>,
    /// Most memory the job may use, in bytes (at least 4194304); past it the job is killed and ends with end_reason "oom". Refused if the server cannot enforce it.
    pub(crate) memory_max_bytes: Option<u64>,
    /// Most processes the job may have at once. Refused if the server cannot enforce it.
    pub(crate) pids_max: Option<u32>,
    /// Most CPU the job may use, in cores (e.g. 0.5). Refused if the server cannot enforce it.
    pub(crate) cpu_max: Option<f64>,
    /// Milliseconds to wait for the job to end or to wait for input before returning (default 10000, max 300000). The job keeps running either way.
    #[schemars(range(max = 300_000))]
    pub(crate) yield_ms: Option<u32>,
    /// Byte budget of the returned output (default 16000, at least 256).
    #[schemars(range(min = 256, max = 1_048_576))]
    pub(crate) max_output_bytes: Option<u32>,
}

/// Arguments of `shell_wait`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitParams {
    /// The job's id, as shell_run returned it (e.g. "05211530-k3x").
    pub(crate) job_id: String,
    /// Byte position in the job's output to read from: the `offset` of the previous result, to get only new output. Default 0 (from the start).
    pub(crate) offset: Option<u64>,
    /// A regular expression: return as soon as a line of output after `offset` matches it (e.g. "listening on|error").
    pub(crate) pattern: Option<String>,
    /// Milliseconds to wait at most (default 10000, max 300000; 0 returns at once).
    #[schemars(range(max = 300_000))]
    pub(crate) yield_ms: Option<u32>,
    /// Byte budget of the returned output (default 16000, at least 256).
    #[schemars(range(min = 256, max = 1_048_576))]
    pub(crate) max_output_bytes: Option<u32>,
}

/// Arguments of `shell_input`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputParams {
    /// The job's id.
    pub(crate) job_id: String,
    /// Text typed exactly as given; include "\n" to press Enter.
    pub(crate) text: Option<String>,
    /// Key names pressed after the text, in order: Enter, Tab, Escape, BSpace, Up, Down, Left, Right, PageUp, PageDown, F1..F12, C-a..C-z, M-<char>, ….
    pub(crate) keys: Option<Vec<String>>,
    /// Milliseconds to wait for the job to end or to wait for input again (default 10000, max 300000).
    #[schemars(range(max = 300_000))]
    pub(crate) yield_ms: Option<u32>,
    /// Byte budget of the returned output (default 16000, at least 256).
    #[schemars(range(min = 256, max = 1_048_576))]
    pub(crate) max_output_bytes: Option<u32>,
}

/// Arguments of tools that take only a job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobParams {
    /// The job's id.
    pub(crate) job_id: String,
}

/// Arguments of `shell_signal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalParams {
    /// The job's id.
    pub(crate) job_id: String,
    /// The signal: INT, TERM, HUP, QUIT, KILL, USR1, USR2, STOP, CONT, WINCH or ALRM (case-insensitive, SIG prefix allowed).
    pub(crate) signal: String,
}

/// Arguments of `shell_terminate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminateParams {
    /// The job's id.
    pub(crate) job_id: String,
    /// Seconds between Ctrl-C and killing the job (default 5, max 300).
    #[schemars(range(min = 0, max = 300))]
    pub(crate) grace_seconds: Option<f64>,
}

/// Arguments of `shell_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// Only jobs with this status: created, starting, running, exited, terminated, failed or lost.
    pub(crate) status: Option<String>,
    /// Only jobs with this label.
    pub(crate) label: Option<String>,
    /// Jobs to return at most (default 20, max 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: Option<u32>,
}

/// Arguments of `shell_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchParams {
    /// The job's id.
    pub(crate) job_id: String,
    /// A regular expression (Rust regex syntax) matched against each line of the job's whole output.
    pub(crate) pattern: String,
    /// Matching lines to return at most (default 100, max 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: Option<u32>,
    /// Byte budget of the listed lines (default 16000, at least 256): lines
    /// past it are left out and counted.
    #[schemars(range(min = 256, max = 1_048_576))]
    pub(crate) max_output_bytes: Option<u32>,
}
