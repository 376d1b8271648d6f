//! Exit codes of `shellctl`, and the one place that turns a command's
//! outcome into the process's [`ExitCode`] ([`finish`]).
//!
//! | code | when |
//! |---|---|
//! | 0 | success |
//! | 1 | the server answered with an error (client commands), or any other failure |
//! | 2 | usage error (clap's own code for arguments that do not parse, too) |
//! | 3 | the server could not be reached (also: an event stream's server stayed away after its connection broke) |
//! | 4 | the server's answer could not be decoded (also: a malformed event stream) |
//! | 78 | `doctor` found something that must be fixed (sysexits' `EX_CONFIG`) |
//!
//! `run --follow` and `wait --follow` exit with the followed job's own code
//! instead ([`job_end`]): its exit code, or 143 terminated, 70 failed, 69
//! lost, and 130 after Ctrl-C (which terminates the job). `events` runs
//! until Ctrl-C, then exits 130.
//!
//! A failing client command prints a compact JSON error object on stderr
//! (`{"error":{"code":…,"message":…}}`); any other command prints
//! `shellctl: <message>`.

use serde_json::json;
use shellctl_client::ClientError;
use shellctl_proto::{JobResult, JobStatus};
use std::process::ExitCode;

/// Exit code for a failure the server reported (client commands).
pub const API: u8 = 1;
/// Exit code for any other failure.
pub const FAILURE: u8 = 1;
/// Exit code for arguments that parse but make no sense (clap uses the
/// same code for arguments that do not parse).
pub const USAGE: u8 = 2;
/// Exit code when the server cannot be reached.
pub const TRANSPORT: u8 = 3;
/// Exit code when the server's answer is not what the API promises.
pub const DECODE: u8 = 4;
/// Exit code when `doctor` found something that must be fixed: the
/// machine or the state layout is misconfigured (sysexits' `EX_CONFIG`,
/// beside the sysexits codes 69 and 70 used below).
pub const DOCTOR_FOUND_PROBLEMS: u8 = 78;
/// Exit code when following a job that was terminated (128 + SIGTERM).
pub const JOB_TERMINATED: u8 = 143;
/// Exit code when following a job that failed (pipe or start failure).
pub const JOB_FAILED: u8 = 70;
/// Exit code when following a job that was lost (its session vanished).
pub const JOB_LOST: u8 = 69;
/// Exit code after Ctrl-C while following (the job is terminated), or
/// during `events`.
pub const INTERRUPTED: u8 = 130;

/// A usage error found after parsing (a bad `--env`, a non-positive
/// `--gc-interval-seconds`, …): exits with [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a command came to, by the kind of command (which decides how a
/// failure is reported).
#[derive(Debug)]
pub enum Outcome {
    /// A client command: the exit code it chose, or its failure (reported
    /// as JSON on stderr).
    Client(anyhow::Result<u8>),
    /// A local or internal command: success (0), or its failure (reported
    /// as `shellctl: <message>` on stderr).
    Other(anyhow::Result<()>),
    /// `doctor`: whether nothing must be fixed, or its failure to report
    /// at all (reported like [`Outcome::Other`]'s).
    Doctor(anyhow::Result<bool>),
}

/// Turns an outcome into the process's exit code, reporting a failure on
/// stderr first.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Client(Ok(code)) => ExitCode::from(code),
        Outcome::Other(Ok(())) | Outcome::Doctor(Ok(true)) => ExitCode::SUCCESS,
        Outcome::Doctor(Ok(false)) => ExitCode::from(DOCTOR_FOUND_PROBLEMS),
        Outcome::Client(Err(err)) => {
            let (json, code) = describe_client_failure(&err);
            eprintln!("{json}");
            ExitCode::from(code)
        }
        Outcome::Other(Err(err)) | Outcome::Doctor(Err(err)) => {
            eprintln!("shellctl: {err:#}");
            let code = if err.downcast_ref::<UsageError>().is_some() {
                USAGE
            } else {
                FAILURE
            };
            ExitCode::from(code)
        }
    }
}

/// The exit code that mirrors how a followed job ended, from the last
/// result read (`None`: nothing was read, which only a failure explains).
pub fn job_end(last: Option<&JobResult>) -> u8 {
    match last {
        Some(result) => match result.status {
            JobStatus::Exited => {
                u8::try_from(result.exit_code.unwrap_or(0).clamp(0, 255)).unwrap_or(255)
            }
            JobStatus::Terminated => JOB_TERMINATED,
            JobStatus::Lost => JOB_LOST,
            _ => JOB_FAILED,
        },
        None => JOB_FAILED,
    }
}

/// The JSON error object printed on stderr, and the exit code, for a
/// failed client command.
fn describe_client_failure(err: &anyhow::Error) -> (serde_json::Value, u8) {
    if let Some(client_err) = err.downcast_ref::<ClientError>() {
        return match client_err {
            ClientError::Api {
                status,
                code,
                message,
            } => (
                json!({"error": {"code": code, "message": message, "status": status}}),
                API,
            ),
            ClientError::Transport(_) | ClientError::StreamLost { .. } => (
                json!({"error": {"code": "transport_error", "message": err.to_string()}}),
                TRANSPORT,
            ),
            ClientError::Decode { .. } | ClientError::Stream(_) => (
                json!({"error": {"code": "decode_error", "message": err.to_string()}}),
                DECODE,
            ),
            // Refused before sending: the input, not the server, is wrong.
            ClientError::InvalidUrl(_) | ClientError::InvalidJobId(_) => (
                json!({"error": {"code": "usage_error", "message": err.to_string()}}),
                USAGE,
            ),
        };
    }
    if err.downcast_ref::<UsageError>().is_some() {
        return (
            json!({"error": {"code": "usage_error", "message": err.to_string()}}),
            USAGE,
        );
    }
    (
        json!({"error": {"code": "client_error", "message": format!("{err:#}")}}),
        FAILURE,
    )
}
