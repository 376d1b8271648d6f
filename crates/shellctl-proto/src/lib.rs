//! Wire types of the shellctl HTTP API, version 1.
//!
//! This crate owns everything that crosses the wire between a shellctl client
//! and server, and nothing else: request and response bodies with their exact
//! field sets, defaults and bounds ([`requests`], [`responses`]), the job
//! lifecycle statuses ([`JobStatus`]), the error envelope and error codes
//! ([`error`]), job ids ([`JobId`]) and timestamps ([`timestamp`]); and,
//! beside the frozen v1 set, the types of the terminal routes
//! ([`terminal`]) and of the agent routes ([`agents`]) and of the push routes ([`streams`]), and the
//! per-job resource limits ([`resources`]).
//!
//! The field sets match the Python reference (`shell-session-manager` 2.2.0)
//! exactly, because its SDK rejects responses that carry extra fields.
//! Requests reject unknown fields.
//!
//! Decoding a request body goes through [`decode_request`], which both parses
//! and validates, and reports the offending field by name in a typed
//! [`RequestError`].

pub mod agents;
pub mod error;
pub mod job_id;
pub mod limits;
pub mod requests;
pub mod resources;
pub mod responses;
pub mod status;
pub mod streams;
pub mod terminal;
pub mod timestamp;
mod validate;

pub use agents::{
    DigestRequest, DigestView, EndReason, JobDetail, LogSearchMatch, LogSearchQuery,
    LogSearchResponse, PatternMatch, WaitForRequest, WaitForResult, WaitReason, WaitUntil,
    WaitingForInput,
};
pub use error::{ApiErrorBody, ErrorCode, ErrorDetail, RequestError, ValidationError};
pub use job_id::{InvalidJobId, JobId};
pub use requests::{
    DeleteJobQuery, EnvOverlay, InputJobRequest, ListJobsQuery, RunJobRequest, TailQuery,
    TerminalSize, TerminateJobRequest, WaitJobRequest,
};
pub use resources::{LimitKind, ResourceLimits};
pub use responses::{
    DeleteJobResponse, HealthResponse, JobInfo, JobResult, JobStatusView, ListJobsResponse,
};
pub use status::JobStatus;
pub use streams::{
    JobStreamEvent, JobStreamQuery, LifecycleEvent, LifecycleQuery, LifecycleStatus, OutputChunk,
    StreamDecodeError,
};
pub use terminal::{
    Cursor, EnvPreset, ForegroundProcess, InputKind, InputState, InputStateView, KeysRequest,
    ResizeRequest, ScreenQuery, ScreenView, SignalName, SignalRequest, SignalTarget,
};
pub use validate::{Validate, decode_query, decode_request};
