//! The MCP tools served by the server itself at `/mcp` (Streamable HTTP):
//! the tool set of `shellctl-mcp` over the in-process job service.
//!
//! [`ServiceBackend`] is the second implementation of
//! [`ShellBackend`] (the first, in `shellctl-mcp`, goes through the HTTP
//! client for `shellctl mcp` on stdio). Each method validates its request
//! as the HTTP route does and maps failures through [`ApiError`], so a tool
//! sees the same error codes and messages over either.

use crate::api::ApiError;
use crate::service::{Service, ServiceError};
use shellctl_mcp::{BackendError, ShellBackend};
use shellctl_proto::{
    DigestRequest, DigestView, InputJobRequest, InputStateView, JobId, JobResult, JobStatusView,
    KeysRequest, ListJobsQuery, ListJobsResponse, LogSearchQuery, LogSearchResponse, RequestError,
    RunJobRequest, ScreenQuery, ScreenView, SignalRequest, Validate, WaitForRequest, WaitForResult,
};
use std::sync::Arc;
use std::time::Duration;

/// The job service as an MCP tool backend.
pub struct ServiceBackend {
    service: Arc<Service>,
}

impl ServiceBackend {
    /// The tools' view of `service`.
    pub fn new(service: Arc<Service>) -> Self {
        ServiceBackend { service }
    }
}

/// A service failure as the HTTP API would answer it.
fn backend_error(err: ServiceError) -> BackendError {
    let error = ApiError::Service(err);
    BackendError::new(error.code().as_str(), error.message())
}

/// A request that breaks the API's bounds, refused as the route refuses it.
fn validated<T: Validate>(request: T) -> Result<T, BackendError> {
    match request.validate() {
        Ok(()) => Ok(request),
        Err(err) => {
            let error = ApiError::Request(RequestError::Invalid(err));
            Err(BackendError::new(error.code().as_str(), error.message()))
        }
    }
}

impl ShellBackend for ServiceBackend {
    async fn run(&self, request: RunJobRequest) -> Result<JobResult, BackendError> {
        let request = validated(request)?;
        self.service.run(request).await.map_err(backend_error)
    }

    async fn wait_for(
        &self,
        job_id: JobId,
        request: WaitForRequest,
    ) -> Result<WaitForResult, BackendError> {
        let request = validated(request)?;
        self.service
            .wait_for(job_id, request)
            .await
            .map_err(backend_error)
    }

    async fn input(
        &self,
        job_id: JobId,
        request: InputJobRequest,
    ) -> Result<JobResult, BackendError> {
        let request = validated(request)?;
        self.service
            .input(job_id, request)
            .await
            .map_err(backend_error)
    }

    async fn keys(&self, job_id: JobId, request: KeysRequest) -> Result<JobResult, BackendError> {
        let request = validated(request)?;
        self.service
            .keys(job_id, request)
            .await
            .map_err(backend_error)
    }

    async fn status(&self, job_id: JobId) -> Result<JobStatusView, BackendError> {
        self.service.status(job_id).await.map_err(backend_error)
    }

    async fn screen(&self, job_id: JobId) -> Result<ScreenView, BackendError> {
        self.service
            .screen(job_id, ScreenQuery::default())
            .await
            .map_err(backend_error)
    }

    async fn input_state(&self, job_id: JobId) -> Result<InputStateView, BackendError> {
        self.service
            .input_state(job_id)
            .await
            .map_err(backend_error)
    }

    async fn signal(
        &self,
        job_id: JobId,
        request: SignalRequest,
    ) -> Result<JobStatusView, BackendError> {
        self.service
            .signal(job_id, request)
            .await
            .map_err(backend_error)
    }

    async fn terminate(
        &self,
        job_id: JobId,
        grace_seconds: f64,
    ) -> Result<JobStatusView, BackendError> {
        let request = validated(shellctl_proto::TerminateJobRequest { grace_seconds })?;
        self.service
            .terminate(job_id, Duration::from_secs_f64(request.grace_seconds))
            .await
            .map_err(backend_error)
    }

    async fn list(&self, query: ListJobsQuery) -> Result<ListJobsResponse, BackendError> {
        let query = validated(query)?;
        self.service.list(query).await.map_err(backend_error)
    }

    async fn search(
        &self,
        job_id: JobId,
        query: LogSearchQuery,
    ) -> Result<LogSearchResponse, BackendError> {
        let query = validated(query)?;
        self.service
            .search_log(job_id, query)
            .await
            .map_err(backend_error)
    }

    async fn digest(
        &self,
        job_id: JobId,
        request: DigestRequest,
    ) -> Result<DigestView, BackendError> {
        let request = validated(request)?;
        self.service
            .digest(job_id, request)
            .await
            .map_err(backend_error)
    }
}
