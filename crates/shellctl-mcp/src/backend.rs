//! The one interface the tools use to reach jobs: [`ShellBackend`], and its
//! error, [`BackendError`].
//!
//! Two implementations exist: `HttpBackend` (feature
//! `http-client`) over a running server's HTTP API, and the server's own,
//! over its in-process job service. The methods mirror the server's routes
//! one for one, so both implementations stay thin and behave alike.

use shellctl_proto::{
    DigestRequest, DigestView, InputJobRequest, InputStateView, JobId, JobResult, JobStatusView,
    KeysRequest, ListJobsQuery, ListJobsResponse, LogSearchQuery, LogSearchResponse, RunJobRequest,
    ScreenView, SignalRequest, WaitForRequest, WaitForResult,
};
use std::future::Future;

/// An error from the backend: the server's error code (when it answered with one) and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// The server's error code (`job_not_found`, `validation_error`, …);
    /// `None` when the failure was not an answer of the server (say, it
    /// could not be reached).
    pub code: Option<String>,
    /// What went wrong, in the server's words when it answered.
    pub message: String,
}

impl BackendError {
    /// An error with the server's `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        BackendError {
            code: Some(code.into()),
            message: message.into(),
        }
    }

    /// An error the server did not answer with (transport, decoding, …).
    pub fn other(message: impl Into<String>) -> Self {
        BackendError {
            code: None,
            message: message.into(),
        }
    }
}

/// Access to shellctl jobs, one method per server route.
///
/// Requests are the wire types and are expected to be handled exactly as
/// the HTTP API handles them (validation included), so the tools behave
/// the same over either implementation.
pub trait ShellBackend: Send + Sync + 'static {
    /// `POST /v1/jobs/run`.
    fn run(
        &self,
        request: RunJobRequest,
    ) -> impl Future<Output = Result<JobResult, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/wait-for`.
    fn wait_for(
        &self,
        job_id: JobId,
        request: WaitForRequest,
    ) -> impl Future<Output = Result<WaitForResult, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/input`.
    fn input(
        &self,
        job_id: JobId,
        request: InputJobRequest,
    ) -> impl Future<Output = Result<JobResult, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/keys`.
    fn keys(
        &self,
        job_id: JobId,
        request: KeysRequest,
    ) -> impl Future<Output = Result<JobResult, BackendError>> + Send;
    /// `GET /v1/jobs/{id}`.
    fn status(
        &self,
        job_id: JobId,
    ) -> impl Future<Output = Result<JobStatusView, BackendError>> + Send;
    /// `GET /v1/jobs/{id}/screen` (no scrollback).
    fn screen(
        &self,
        job_id: JobId,
    ) -> impl Future<Output = Result<ScreenView, BackendError>> + Send;
    /// `GET /v1/jobs/{id}/input-state`.
    fn input_state(
        &self,
        job_id: JobId,
    ) -> impl Future<Output = Result<InputStateView, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/signal`.
    fn signal(
        &self,
        job_id: JobId,
        request: SignalRequest,
    ) -> impl Future<Output = Result<JobStatusView, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/terminate`.
    fn terminate(
        &self,
        job_id: JobId,
        grace_seconds: f64,
    ) -> impl Future<Output = Result<JobStatusView, BackendError>> + Send;
    /// `GET /v1/jobs`.
    fn list(
        &self,
        query: ListJobsQuery,
    ) -> impl Future<Output = Result<ListJobsResponse, BackendError>> + Send;
    /// `GET /v1/jobs/{id}/log/search`.
    fn search(
        &self,
        job_id: JobId,
        query: LogSearchQuery,
    ) -> impl Future<Output = Result<LogSearchResponse, BackendError>> + Send;
    /// `POST /v1/jobs/{id}/digest`.
    fn digest(
        &self,
        job_id: JobId,
        request: DigestRequest,
    ) -> impl Future<Output = Result<DigestView, BackendError>> + Send;
}
