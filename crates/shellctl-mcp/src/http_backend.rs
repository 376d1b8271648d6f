//! [`HttpBackend`]: the tools over a running shellctl server, through the
//! client SDK (`shellctl-client`).

use crate::backend::{BackendError, ShellBackend};
use shellctl_client::{ClientError, RunOptions, ShellctlClient};
use shellctl_proto::{
    DigestRequest, DigestView, InputJobRequest, InputStateView, JobId, JobResult, JobStatusView,
    KeysRequest, ListJobsQuery, ListJobsResponse, LogSearchQuery, LogSearchResponse, RunJobRequest,
    ScreenView, SignalRequest, WaitForRequest, WaitForResult,
};

/// A [`ShellBackend`] that calls a shellctl server over HTTP.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    client: ShellctlClient,
}

impl HttpBackend {
    /// A backend sending every call through `client` (its base URL and
    /// token; its window knobs are replaced per call by the request's).
    pub fn new(client: ShellctlClient) -> Self {
        HttpBackend { client }
    }

    /// The client calls go through.
    pub fn client(&self) -> &ShellctlClient {
        &self.client
    }

    /// The client with a request's window knobs: the SDK keeps them on the
    /// client, the tools choose them per call.
    fn windowed(&self, output_limit: u32, idle_flush_seconds: f64) -> ShellctlClient {
        self.client
            .clone()
            .with_output_limit(output_limit)
            .with_idle_flush_seconds(idle_flush_seconds)
    }
}

impl From<ClientError> for BackendError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Api { code, message, .. } => BackendError::new(code, message),
            other => BackendError::other(other.to_string()),
        }
    }
}

impl ShellBackend for HttpBackend {
    async fn run(&self, request: RunJobRequest) -> Result<JobResult, BackendError> {
        let limits = request.limits();
        let options = RunOptions {
            cwd: request.cwd,
            env: request.env,
            timeout: Some(request.timeout),
            terminal: request.terminal,
            env_preset: request.env_preset,
            label: request.label,
            idempotency_key: request.idempotency_key,
            max_runtime_seconds: request.max_runtime_seconds,
            idle_timeout_seconds: request.idle_timeout_seconds,
            keep_background: request.keep_background,
            limits,
        };
        Ok(self
            .windowed(request.output_limit, request.idle_flush_seconds)
            .run(&request.script, options)
            .await?)
    }

    async fn wait_for(
        &self,
        job_id: JobId,
        request: WaitForRequest,
    ) -> Result<WaitForResult, BackendError> {
        Ok(self.client.wait_for(job_id.as_str(), &request).await?)
    }

    async fn input(
        &self,
        job_id: JobId,
        request: InputJobRequest,
    ) -> Result<JobResult, BackendError> {
        Ok(self
            .windowed(request.output_limit, request.idle_flush_seconds)
            .input(
                job_id.as_str(),
                &request.text,
                request.offset,
                Some(request.timeout),
            )
            .await?)
    }

    async fn keys(&self, job_id: JobId, request: KeysRequest) -> Result<JobResult, BackendError> {
        Ok(self
            .windowed(request.output_limit, request.idle_flush_seconds)
            .keys(
                job_id.as_str(),
                request.keys,
                request.offset,
                Some(request.timeout),
            )
            .await?)
    }

    async fn status(&self, job_id: JobId) -> Result<JobStatusView, BackendError> {
        Ok(self.client.status(job_id.as_str()).await?)
    }

    async fn screen(&self, job_id: JobId) -> Result<ScreenView, BackendError> {
        Ok(self.client.screen(job_id.as_str(), 0).await?)
    }

    async fn input_state(&self, job_id: JobId) -> Result<InputStateView, BackendError> {
        Ok(self.client.input_state(job_id.as_str()).await?)
    }

    async fn signal(
        &self,
        job_id: JobId,
        request: SignalRequest,
    ) -> Result<JobStatusView, BackendError> {
        Ok(self
            .client
            .signal(job_id.as_str(), request.signal, request.target)
            .await?)
    }

    async fn terminate(
        &self,
        job_id: JobId,
        grace_seconds: f64,
    ) -> Result<JobStatusView, BackendError> {
        Ok(self
            .client
            .terminate(job_id.as_str(), Some(grace_seconds))
            .await?)
    }

    async fn list(&self, query: ListJobsQuery) -> Result<ListJobsResponse, BackendError> {
        let jobs = self.client.list_jobs(&query).await?;
        Ok(ListJobsResponse { jobs })
    }

    async fn search(
        &self,
        job_id: JobId,
        query: LogSearchQuery,
    ) -> Result<LogSearchResponse, BackendError> {
        Ok(self
            .client
            .search_log(job_id.as_str(), &query.pattern, Some(query.limit))
            .await?)
    }

    async fn digest(
        &self,
        job_id: JobId,
        request: DigestRequest,
    ) -> Result<DigestView, BackendError> {
        Ok(self.client.digest(job_id.as_str(), &request).await?)
    }
}
