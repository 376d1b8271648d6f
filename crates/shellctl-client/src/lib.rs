//! Async client SDK for the shellctl HTTP API, version 1.
//!
//! [`ShellctlClient`] covers every v1 route, the terminal routes beside
//! them (screen, input state, keys, signal, resize), the agent routes
//! (detail, wait-for, log search, digest; labels, idempotency keys and
//! deadlines of `run`; the label filter of `list`) and `/metrics` (as
//! text). Like the reference's Python
//! SDK, it keeps the output-window knobs (`output_limit`,
//! `idle_flush_seconds`) on the client, so calls stay short. Errors are one
//! enum, [`ClientError`]: an API error carries the HTTP status and the
//! server's error code (from our error envelope, or from FastAPI's
//! `{"detail": …}` shape when talking to the reference server), apart from
//! transport and decode failures. [`Follow`] yields a job's output as it
//! arrives until the job is done: from the job's event stream, or by
//! repeated waits from a server without one (the reference server).
//!
//! The push routes are Server-Sent Events, read incrementally by the
//! bounded parser of [`sse`]: [`ShellctlClient::job_events`] yields one
//! job's status changes, output and end ([`JobEventStream`]),
//! [`ShellctlClient::lifecycle_events`] the lifecycle events of all jobs
//! ([`LifecycleStream`]). Both resume with `Last-Event-ID` when their
//! connection breaks (a server restart closes them), for a bounded time.
//! They (and so [`Follow`]) need a Tokio runtime with its time driver, as
//! `#[tokio::main]` builds one.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shellctl_client::ClientError> {
//! use shellctl_client::{RunOptions, ShellctlClient};
//! let client = ShellctlClient::new("http://127.0.0.1:8765")?;
//! let first = client.run("echo hi; sleep 1; echo bye", RunOptions::default()).await?;
//! let mut follow = client.follow(&first);
//! while let Some(chunk) = follow.next().await {
//!     print!("{}", chunk?.output);
//! }
//! # Ok(())
//! # }
//! ```

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shellctl_proto::limits::{
    AUTH_TOKEN_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_IDLE_FLUSH_SECONDS,
    DEFAULT_OUTPUT_LIMIT,
};
use shellctl_proto::{
    DeleteJobResponse, DigestRequest, DigestView, EnvOverlay, EnvPreset, HealthResponse,
    InputJobRequest, InputStateView, JobDetail, JobId, JobInfo, JobResult, JobStatus,
    JobStatusView, JobStreamEvent, KeysRequest, ListJobsQuery, ListJobsResponse, LogSearchResponse,
    OutputChunk, ResizeRequest, RunJobRequest, ScreenView, SignalName, SignalRequest, SignalTarget,
    TerminalSize, TerminateJobRequest, WaitForRequest, WaitForResult, WaitJobRequest,
};
use std::time::Duration;

pub mod sse;
mod streams;

pub use streams::{DEFAULT_RECONNECT_BUDGET, JobEventStream, LifecycleStream};

/// Extra time an HTTP request may take beyond the wait it asks for.
const HTTP_SLACK: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{code} ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error code (`job_not_found`, `validation_error`, …).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or the connection failed.
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered something that is not the expected JSON.
    #[error("decoding the response ({status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        message: String,
    },
    /// The base URL is not a valid http(s) URL.
    #[error("invalid base URL {0:?}")]
    InvalidUrl(String),
    /// The job id would not stay one segment of the request path: it is
    /// empty, or a dot segment (`.`, `..`, or an escaped form such as
    /// `%2e%2e`), which URL parsing resolves away, sending the request to
    /// another route. Nothing was sent. Real job ids have no dots.
    #[error("invalid job id {0:?}: not usable as a URL path segment")]
    InvalidJobId(String),
    /// An event stream broke its format or this client's bounds: the
    /// answer is not `text/event-stream`, an event is larger than 16 MiB,
    /// or an event's data does not decode.
    #[error("stream: {0}")]
    Stream(String),
    /// An event stream's connection broke and reconnecting with
    /// `Last-Event-ID` kept failing for the whole reconnect budget
    /// ([`ShellctlClient::with_reconnect_budget`]): the server went away.
    #[error("stream lost after {failures} failures in a row; the last: {last}")]
    StreamLost {
        /// Failures in a row: the break and the reconnections that failed.
        failures: u32,
        /// The last of them.
        #[source]
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// The server's error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether this is a server's answer to a route it does not have (an
    /// older shellctl, or the reference server, asked for a push route):
    /// `405`, or a `404` whose code is not `job_not_found` (FastAPI's
    /// `{"detail": "Not Found"}`, our `not_found`).
    pub fn is_missing_route(&self) -> bool {
        match self {
            ClientError::Api { status: 405, .. } => true,
            ClientError::Api {
                status: 404, code, ..
            } => code != "job_not_found",
            _ => false,
        }
    }
}

/// Options of [`ShellctlClient::run`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Working directory (server default: its home).
    pub cwd: Option<String>,
    /// Variables laid over the server's environment.
    pub env: Option<EnvOverlay>,
    /// Seconds to wait for first output (server default 30).
    pub timeout: Option<f64>,
    /// PTY size.
    pub terminal: Option<TerminalSize>,
    /// Environment preset (not in the reference API): `noninteractive`
    /// keeps tools from opening pagers or editors or asking questions;
    /// `none` opts out of the server's `--env-preset`. `None` sends no
    /// field, so the server's default applies.
    pub env_preset: Option<EnvPreset>,
    /// A label to find the job by later (`list` with a label filter); not
    /// in the reference API.
    pub label: Option<String>,
    /// An idempotency key: a second `run` with the same key starts nothing
    /// and answers for the first job (a different script with the same key
    /// is a `409 idempotency_conflict`); not in the reference API.
    pub idempotency_key: Option<String>,
    /// Seconds the script may run before it is terminated; not in the
    /// reference API.
    pub max_runtime_seconds: Option<f64>,
    /// Seconds the job may go without output before it is terminated; not
    /// in the reference API.
    pub idle_timeout_seconds: Option<f64>,
    /// Leave processes the script started in the background running after
    /// it exits (by default they are ended with it); not in the reference
    /// API.
    pub keep_background: Option<bool>,
    /// Memory, process and CPU limits (a server without the cgroup
    /// controller answers `422 unsupported_limit`); not in the reference
    /// API.
    pub limits: shellctl_proto::ResourceLimits,
}

/// A client of one shellctl server.
#[derive(Debug, Clone)]
pub struct ShellctlClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// Bytes of output per window (default 8192).
    pub output_limit: u32,
    /// Quiet seconds after new output before a wait returns (default 0.5).
    pub idle_flush_seconds: f64,
    /// How long an event stream keeps reconnecting after its connection
    /// broke before it gives up.
    reconnect_budget: Duration,
}

impl ShellctlClient {
    /// A client of the server at `base_url` (http or https), with the token
    /// from `SHELLCTL_AUTH_TOKEN` if set.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let mut base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|_| ClientError::InvalidUrl(base_url.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(ClientError::Transport)?;
        Ok(ShellctlClient {
            http,
            base,
            token: std::env::var(AUTH_TOKEN_ENV).ok().filter(|t| !t.is_empty()),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            idle_flush_seconds: DEFAULT_IDLE_FLUSH_SECONDS,
            reconnect_budget: DEFAULT_RECONNECT_BUDGET,
        })
    }

    /// A client configured from `SHELLCTL_BASE_URL` (default
    /// `http://127.0.0.1:8765`) and `SHELLCTL_AUTH_TOKEN`.
    pub fn from_env() -> Result<Self, ClientError> {
        let base = std::env::var(BASE_URL_ENV).unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned());
        Self::new(&base)
    }

    /// Uses `token` as the bearer token (`None` or empty: no auth header).
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Sets the window size of output-returning calls.
    #[must_use]
    pub fn with_output_limit(mut self, output_limit: u32) -> Self {
        self.output_limit = output_limit;
        self
    }

    /// Sets the idle flush of output-returning calls.
    #[must_use]
    pub fn with_idle_flush_seconds(mut self, seconds: f64) -> Self {
        self.idle_flush_seconds = seconds;
        self
    }

    /// Sets how long an event stream ([`JobEventStream`],
    /// [`LifecycleStream`], and so [`Follow`]) keeps reconnecting, with
    /// growing pauses (0.1 s doubling up to 5 s), after its connection broke
    /// before it gives up with [`ClientError::StreamLost`] (default
    /// [`DEFAULT_RECONNECT_BUDGET`], 30 s; zero: never reconnect). The time
    /// starts again whenever data arrives.
    #[must_use]
    pub fn with_reconnect_budget(mut self, budget: Duration) -> Self {
        self.reconnect_budget = budget;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        wait: Option<f64>,
    ) -> Result<RequestBuilder, ClientError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|_| ClientError::InvalidUrl(format!("{}{path}", self.base)))?;
        let mut builder = self.http.request(method, url);
        if let Some(seconds) = wait {
            let wait = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO);
            builder = builder.timeout(wait + HTTP_SLACK);
        }
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        Ok(builder)
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        let response = builder.send().await.map_err(ClientError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        if !status.is_success() {
            return Err(decode_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|err| ClientError::Decode {
            status: status.as_u16(),
            message: err.to_string(),
        })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        wait: Option<f64>,
    ) -> Result<T, ClientError> {
        self.send(self.request(Method::POST, path, wait)?.json(body))
            .await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        self.send(self.request(Method::GET, "/healthz", None)?)
            .await
    }

    /// `GET /metrics`: the server's metrics in the Prometheus text
    /// exposition format (0.0.4), as the server sent them. Needs the token
    /// like the `/v1` routes; a server without the route (an older
    /// shellctl, the reference server) answers 404
    /// ([`ClientError::is_missing_route`]).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self
            .request(Method::GET, "/metrics", None)?
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        if !status.is_success() {
            return Err(decode_error(status, &body));
        }
        String::from_utf8(body.to_vec()).map_err(|err| ClientError::Decode {
            status: status.as_u16(),
            message: format!("the metrics are not UTF-8: {err}"),
        })
    }

    /// `POST /v1/jobs/run`: starts `script` and waits for first output.
    pub async fn run(&self, script: &str, options: RunOptions) -> Result<JobResult, ClientError> {
        let mut request = RunJobRequest::new(script);
        request.cwd = options.cwd;
        request.env = options.env;
        request.terminal = options.terminal;
        request.env_preset = options.env_preset;
        request.label = options.label;
        request.idempotency_key = options.idempotency_key;
        request.max_runtime_seconds = options.max_runtime_seconds;
        request.idle_timeout_seconds = options.idle_timeout_seconds;
        request.keep_background = options.keep_background;
        request.memory_max_bytes = options.limits.memory_max_bytes;
        request.pids_max = options.limits.pids_max;
        request.cpu_max = options.limits.cpu_max;
        if let Some(timeout) = options.timeout {
            request.timeout = timeout;
        }
        request.output_limit = self.output_limit;
        request.idle_flush_seconds = self.idle_flush_seconds;
        let wait = request.timeout;
        self.post("/v1/jobs/run", &request, Some(wait)).await
    }

    /// `POST /v1/jobs/{id}/wait`: output from `offset`.
    pub async fn wait(
        &self,
        job_id: &str,
        offset: u64,
        timeout: Option<f64>,
    ) -> Result<JobResult, ClientError> {
        let mut request = WaitJobRequest::new(offset);
        if let Some(timeout) = timeout {
            request.timeout = timeout;
        }
        request.output_limit = self.output_limit;
        request.idle_flush_seconds = self.idle_flush_seconds;
        let wait = request.timeout;
        self.post(
            &format!("/v1/jobs/{}/wait", segment(job_id)?),
            &request,
            Some(wait),
        )
        .await
    }

    /// `POST /v1/jobs/{id}/input`: types `text` (no newline added), then
    /// waits from `offset`.
    pub async fn input(
        &self,
        job_id: &str,
        text: &str,
        offset: u64,
        timeout: Option<f64>,
    ) -> Result<JobResult, ClientError> {
        let request = InputJobRequest {
            text: text.to_owned(),
            offset,
            timeout: timeout.unwrap_or(shellctl_proto::limits::DEFAULT_TIMEOUT_SECONDS),
            output_limit: self.output_limit,
            idle_flush_seconds: self.idle_flush_seconds,
        };
        let wait = request.timeout;
        self.post(
            &format!("/v1/jobs/{}/input", segment(job_id)?),
            &request,
            Some(wait),
        )
        .await
    }

    /// `GET /v1/jobs/{id}/log/tail`.
    pub async fn tail(&self, job_id: &str) -> Result<JobResult, ClientError> {
        let path = format!("/v1/jobs/{}/log/tail", segment(job_id)?);
        let builder = self
            .request(Method::GET, &path, None)?
            .query(&[("output_limit", self.output_limit)]);
        self.send(builder).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn status(&self, job_id: &str) -> Result<JobStatusView, ClientError> {
        let path = format!("/v1/jobs/{}", segment(job_id)?);
        self.send(self.request(Method::GET, &path, None)?).await
    }

    /// `GET /v1/jobs`: newest first.
    pub async fn list(
        &self,
        status: Option<JobStatus>,
        limit: Option<u32>,
    ) -> Result<Vec<JobInfo>, ClientError> {
        let query = ListJobsQuery {
            status,
            label: None,
            limit: limit.unwrap_or(shellctl_proto::limits::DEFAULT_LIST_LIMIT),
        };
        self.list_jobs(&query).await
    }

    /// `GET /v1/jobs` with every filter of `query` (status, label, limit):
    /// newest first. The label filter is not in the reference API.
    pub async fn list_jobs(&self, query: &ListJobsQuery) -> Result<Vec<JobInfo>, ClientError> {
        let mut pairs: Vec<(&str, String)> = vec![("limit", query.limit.to_string())];
        if let Some(status) = query.status {
            pairs.push(("status", status.as_str().to_owned()));
        }
        if let Some(label) = &query.label {
            pairs.push(("label", label.clone()));
        }
        let builder = self.request(Method::GET, "/v1/jobs", None)?.query(&pairs);
        let list: ListJobsResponse = self.send(builder).await?;
        Ok(list.jobs)
    }

    /// `GET /v1/jobs/{id}/detail`: everything the server knows of a job
    /// (label, script, cwd, deadlines, why it ended, …).
    pub async fn detail(&self, job_id: &str) -> Result<JobDetail, ClientError> {
        let path = format!("/v1/jobs/{}/detail", segment(job_id)?);
        self.send(self.request(Method::GET, &path, None)?).await
    }

    /// `POST /v1/jobs/{id}/wait-for`: waits until one of the request's
    /// conditions holds (the job ended, a pattern matched, the job waits
    /// for input, output went idle) or its timeout passes. The request is
    /// sent as given: its window knobs, not the client's, apply.
    pub async fn wait_for(
        &self,
        job_id: &str,
        request: &WaitForRequest,
    ) -> Result<WaitForResult, ClientError> {
        self.post(
            &format!("/v1/jobs/{}/wait-for", segment(job_id)?),
            request,
            Some(request.timeout),
        )
        .await
    }

    /// `GET /v1/jobs/{id}/log/search`: the lines of the job's whole log
    /// that match `pattern` (a regular expression), at most `limit` of them
    /// (`None`: the server's default, 100).
    pub async fn search_log(
        &self,
        job_id: &str,
        pattern: &str,
        limit: Option<u32>,
    ) -> Result<LogSearchResponse, ClientError> {
        let path = format!("/v1/jobs/{}/log/search", segment(job_id)?);
        let mut query = vec![("pattern", pattern.to_owned())];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let builder = self.request(Method::GET, &path, None)?.query(&query);
        self.send(builder).await
    }

    /// `POST /v1/jobs/{id}/digest`: the output from `request.offset` (to
    /// `end_offset` or the log's end) rendered within a byte budget, every
    /// cut marked.
    pub async fn digest(
        &self,
        job_id: &str,
        request: &DigestRequest,
    ) -> Result<DigestView, ClientError> {
        self.post(
            &format!("/v1/jobs/{}/digest", segment(job_id)?),
            request,
            None,
        )
        .await
    }

    /// `POST /v1/jobs/{id}/terminate`.
    pub async fn terminate(
        &self,
        job_id: &str,
        grace_seconds: Option<f64>,
    ) -> Result<JobStatusView, ClientError> {
        let request = TerminateJobRequest {
            grace_seconds: grace_seconds.unwrap_or(shellctl_proto::limits::DEFAULT_GRACE_SECONDS),
        };
        let wait = request.grace_seconds;
        self.post(
            &format!("/v1/jobs/{}/terminate", segment(job_id)?),
            &request,
            Some(wait),
        )
        .await
    }

    /// `GET /v1/jobs/{id}/screen`: the rendered screen of a running job's
    /// terminal, with `history` scrollback lines above it (0..=10000), its
    /// foreground process and whether it waits for input. An ended job
    /// answers `409 job_not_running`.
    pub async fn screen(&self, job_id: &str, history: u32) -> Result<ScreenView, ClientError> {
        let path = format!("/v1/jobs/{}/screen", segment(job_id)?);
        let builder = self
            .request(Method::GET, &path, None)?
            .query(&[("history", history)]);
        self.send(builder).await
    }

    /// `GET /v1/jobs/{id}/input-state`: whether a running job waits for
    /// input, and for what. An ended job answers `409 job_not_running`.
    pub async fn input_state(&self, job_id: &str) -> Result<InputStateView, ClientError> {
        let path = format!("/v1/jobs/{}/input-state", segment(job_id)?);
        self.send(self.request(Method::GET, &path, None)?).await
    }

    /// `POST /v1/jobs/{id}/keys`: presses `keys` in order (key names such as
    /// `Enter`, `C-c`, `F1`, `M-x`, see [`shellctl_proto::terminal::KEY_NAMES`];
    /// any other element is typed as text), then waits from `offset` like
    /// [`input`](Self::input).
    pub async fn keys<I, K>(
        &self,
        job_id: &str,
        keys: I,
        offset: u64,
        timeout: Option<f64>,
    ) -> Result<JobResult, ClientError>
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let request = KeysRequest {
            keys: keys.into_iter().map(Into::into).collect(),
            offset,
            timeout: timeout.unwrap_or(shellctl_proto::limits::DEFAULT_TIMEOUT_SECONDS),
            output_limit: self.output_limit,
            idle_flush_seconds: self.idle_flush_seconds,
        };
        let wait = request.timeout;
        self.post(
            &format!("/v1/jobs/{}/keys", segment(job_id)?),
            &request,
            Some(wait),
        )
        .await
    }

    /// `POST /v1/jobs/{id}/signal`: sends `signal` to the terminal's
    /// foreground process group ([`SignalTarget::Foreground`]) or to every
    /// process of the job but its runner ([`SignalTarget::Job`]).
    pub async fn signal(
        &self,
        job_id: &str,
        signal: SignalName,
        target: SignalTarget,
    ) -> Result<JobStatusView, ClientError> {
        let request = SignalRequest { signal, target };
        self.post(
            &format!("/v1/jobs/{}/signal", segment(job_id)?),
            &request,
            None,
        )
        .await
    }

    /// `POST /v1/jobs/{id}/resize`: sets the job's terminal to `cols` ×
    /// `rows` (each 1..=4096; the program gets SIGWINCH) and returns the
    /// screen after it.
    pub async fn resize(
        &self,
        job_id: &str,
        cols: u16,
        rows: u16,
    ) -> Result<ScreenView, ClientError> {
        let request = ResizeRequest { cols, rows };
        self.post(
            &format!("/v1/jobs/{}/resize", segment(job_id)?),
            &request,
            None,
        )
        .await
    }

    /// `DELETE /v1/jobs/{id}`.
    pub async fn delete(
        &self,
        job_id: &str,
        force: bool,
        grace_seconds: Option<f64>,
    ) -> Result<DeleteJobResponse, ClientError> {
        let mut query = vec![("force", force.to_string())];
        if let Some(grace) = grace_seconds {
            query.push(("grace_seconds", grace.to_string()));
        }
        let path = format!("/v1/jobs/{}", segment(job_id)?);
        let wait = grace_seconds.unwrap_or(shellctl_proto::limits::DEFAULT_GRACE_SECONDS);
        self.send(
            self.request(Method::DELETE, &path, Some(wait))?
                .query(&query),
        )
        .await
    }

    /// Follows a job from a result it returned (`run`, `wait`, `input`):
    /// yields that result, then the job's output as it arrives, until the
    /// job is done and its output read. See [`Follow`].
    pub fn follow(&self, start: &JobResult) -> Follow<'_> {
        Follow::new(
            self,
            start.job_id.to_string(),
            start.offset,
            Some(start.clone()),
        )
    }

    /// Follows a job from byte `offset`. See [`Follow`].
    pub fn follow_from(&self, job_id: &str, offset: u64) -> Follow<'_> {
        Follow::new(self, job_id.to_owned(), offset, None)
    }
}

/// A job's output as it arrives; see [`ShellctlClient::follow`].
///
/// Reads the job's event stream ([`ShellctlClient::job_events`]), which
/// resumes on its own across broken connections and server restarts. Each
/// chunk of output comes as the [`JobResult`] a wait would have answered:
/// the job's status from its last status event, `done` and `truncated`
/// false while the job runs (once it has ended, both are set on every
/// chunk but the last); the last result is `done`, with the job's final
/// status and exit code, and the last chunk of output or none. Results
/// from the stream carry the `output_path` of the result
/// [`follow`](ShellctlClient::follow) started from; those of
/// [`follow_from`](ShellctlClient::follow_from) have none (empty), as the
/// stream does not say it.
///
/// A server without the stream (an older shellctl, the reference server:
/// [`ClientError::is_missing_route`]) is followed by repeated waits
/// instead, each wait's answer yielded as it is.
#[derive(Debug)]
pub struct Follow<'a> {
    client: &'a ShellctlClient,
    job_id: String,
    /// The offset after everything yielded.
    offset: u64,
    pending: Option<JobResult>,
    finished: bool,
    /// The job's event stream; `None` once the server turned out to have
    /// none (then each result is a wait's).
    stream: Option<FollowStream>,
}

impl<'a> Follow<'a> {
    fn new(
        client: &'a ShellctlClient,
        job_id: String,
        offset: u64,
        pending: Option<JobResult>,
    ) -> Follow<'a> {
        let stream = FollowStream {
            events: client.job_events(&job_id, offset),
            job: pending
                .as_ref()
                .map(|start| start.job_id)
                .or_else(|| JobId::parse(&job_id).ok()),
            output_path: pending
                .as_ref()
                .map(|start| start.output_path.clone())
                .unwrap_or_default(),
            offset,
            status: None,
            held: None,
            error: None,
        };
        Follow {
            client,
            job_id,
            offset,
            pending,
            finished: false,
            stream: Some(stream),
        }
    }
}

impl Follow<'_> {
    /// The next chunk; `None` once the job is done and all output read.
    pub async fn next(&mut self) -> Option<Result<JobResult, ClientError>> {
        if self.finished {
            return None;
        }
        let next = match (self.pending.take(), &mut self.stream) {
            (Some(result), _) => Ok(result),
            (None, Some(stream)) => match stream.next().await {
                Err(err) if err.is_missing_route() => {
                    self.stream = None;
                    self.client.wait(&self.job_id, self.offset, None).await
                }
                other => other,
            },
            (None, None) => self.client.wait(&self.job_id, self.offset, None).await,
        };
        match next {
            Ok(result) => {
                self.offset = result.offset;
                self.finished = result.done && !result.truncated;
                Some(Ok(result))
            }
            Err(err) => {
                self.finished = true;
                Some(Err(err))
            }
        }
    }

    /// The offset after everything yielded so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// A [`Follow`]'s job stream, and what it turns events into results with.
#[derive(Debug)]
struct FollowStream {
    events: JobEventStream,
    /// The job's id (from the start result, the id given, or the stream).
    job: Option<JobId>,
    /// The start result's `output_path` (empty without one).
    output_path: String,
    /// The offset after all output read from the stream (held included).
    offset: u64,
    /// The job's last status event.
    status: Option<JobStatusView>,
    /// A chunk read after the job ended, held until the next event says
    /// whether it is the last (then it is merged into the end's result).
    held: Option<JobResult>,
    /// An error that came while a chunk was held: reported after it.
    error: Option<ClientError>,
}

impl FollowStream {
    /// The next result: a chunk of output, or the end.
    async fn next(&mut self) -> Result<JobResult, ClientError> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        loop {
            let event = match self.events.next().await {
                Some(Ok(event)) => event,
                Some(Err(err)) => {
                    return match self.held.take() {
                        Some(held) => {
                            self.error = Some(err);
                            Ok(held)
                        }
                        None => Err(err),
                    };
                }
                None => return Err(ClientError::Stream("the job stream is over".into())),
            };
            match event {
                JobStreamEvent::Status(view) => {
                    self.job = Some(view.job_id);
                    self.status = Some(view);
                }
                JobStreamEvent::Output(chunk) => {
                    let Some(text) = self.fresh_text(chunk) else {
                        continue;
                    };
                    let mut result = self.result(text)?;
                    // After the end, the chunk before the last has more
                    // output after it, as a wait would say.
                    let ended = result.done;
                    result.truncated = ended;
                    if !ended {
                        return Ok(result);
                    }
                    if let Some(previous) = self.held.replace(result) {
                        return Ok(previous);
                    }
                }
                JobStreamEvent::End(view) => {
                    let mut last = match self.held.take() {
                        Some(held) => held,
                        None => self.result(String::new())?,
                    };
                    last.job_id = view.job_id;
                    last.done = true;
                    last.truncated = false;
                    last.status = view.status;
                    last.exit_code = view.exit_code;
                    last.offset = self.offset;
                    return Ok(last);
                }
            }
        }
    }

    /// The part of `chunk` not read yet (a server that resumes exactly
    /// sends none twice); `None` when there is none.
    fn fresh_text(&mut self, chunk: OutputChunk) -> Option<String> {
        let end = chunk
            .offset
            .saturating_add(u64::try_from(chunk.text.len()).unwrap_or(u64::MAX));
        if end <= self.offset {
            return None;
        }
        let seen = usize::try_from(self.offset.saturating_sub(chunk.offset)).unwrap_or(0);
        self.offset = end;
        Some(match chunk.text.get(seen..) {
            Some(fresh) if seen > 0 => fresh.to_owned(),
            _ => chunk.text,
        })
    }

    /// A result of `output` ending at the current offset, with the last
    /// status.
    fn result(&self, output: String) -> Result<JobResult, ClientError> {
        let job_id = self
            .job
            .ok_or_else(|| ClientError::Stream("the job stream gave no job id".into()))?;
        let (status, exit_code) = self
            .status
            .as_ref()
            .map_or((JobStatus::Running, None), |view| {
                (view.status, view.exit_code)
            });
        Ok(JobResult {
            job_id,
            done: status.is_terminal(),
            status,
            exit_code,
            output_path: self.output_path.clone(),
            output,
            offset: self.offset,
            truncated: false,
        })
    }
}

/// A job id as one URL path segment, or [`ClientError::InvalidJobId`].
///
/// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) is
/// percent-escaped, so `/`, `\`, `?`, `#` and `%` in an id stay inside the
/// segment; ids from the server (`MMDDHHMM-xyz`) come out unchanged.
/// Escaping cannot save the dot segments, though: URL parsing (WHATWG
/// rules, which `reqwest` follows) resolves a segment `.` or `..` away, and
/// counts `%2e` as a dot too, so `/v1/jobs/../wait` (or `/v1/jobs/%2e%2e/wait`)
/// is sent as `/v1/wait`. Such ids are refused, as is the empty id (which
/// leaves no segment). Ids that only look like one once unescaped
/// (`%2e%2e`) would stay in place (`%` becomes `%25`), but they are refused
/// as well: they name no job, and a server or proxy that decodes the path
/// twice would read them as dot segments.
fn segment(job_id: &str) -> Result<String, ClientError> {
    if is_empty_or_dot_segment(job_id) {
        return Err(ClientError::InvalidJobId(job_id.to_owned()));
    }
    Ok(job_id
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect())
}

/// Whether `segment` is empty, or a dot segment as URL parsing reads one:
/// two or fewer units, each `.` or `%2e` (any case).
fn is_empty_or_dot_segment(segment: &str) -> bool {
    matches!(
        segment.to_ascii_lowercase().replace("%2e", ".").as_str(),
        "" | "." | ".."
    )
}

/// Decodes an error response: our envelope, FastAPI's `{"detail": …}`, or
/// whatever text came.
fn decode_error(status: StatusCode, body: &[u8]) -> ClientError {
    let fallback = || String::from_utf8_lossy(body).into_owned();
    let status_code = status.as_u16();
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ClientError::Api {
            status: status_code,
            code: "request_failed".into(),
            message: fallback(),
        };
    };
    if let Some(error) = value.get("error").filter(|e| e.is_object()) {
        let text = |key: &str| error.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        return ClientError::Api {
            status: status_code,
            code: text("code").unwrap_or_else(|| "request_failed".into()),
            message: text("message").unwrap_or_else(fallback),
        };
    }
    if let Some(detail) = value.get("detail") {
        let message = match detail {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let code = if status == StatusCode::UNPROCESSABLE_ENTITY {
            "validation_error"
        } else {
            "request_failed"
        };
        return ClientError::Api {
            status: status_code,
            code: code.into(),
            message,
        };
    }
    ClientError::Api {
        status: status_code,
        code: "request_failed".into(),
        message: fallback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_servers_decode() {
        let ours = decode_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"job_not_found","message":"job x not found"}}"#,
        );
        assert!(
            matches!(ours, ClientError::Api { status: 404, ref code, ref message } if code == "job_not_found" && message == "job x not found")
        );
        let fastapi = decode_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"detail":[{"loc":["body","offset"],"msg":"Field required"}]}"#,
        );
        assert_eq!(fastapi.code(), Some("validation_error"));
        assert!(fastapi.to_string().contains("Field required"));
        let text = decode_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert!(
            matches!(text, ClientError::Api { status: 502, ref message, .. } if message == "upstream down")
        );
    }

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(segment("05211530-abc").unwrap(), "05211530-abc");
        assert_eq!(segment("../x").unwrap(), "..%2Fx");
        assert_eq!(segment("a b?c").unwrap(), "a%20b%3Fc");
        assert_eq!(segment("...").unwrap(), "...");
        assert_eq!(segment("%2e%2e/").unwrap(), "%252e%252e%2F");
        for dots in ["", ".", "..", "%2e", "%2E", ".%2e", "%2E.", "%2e%2E"] {
            assert!(
                matches!(segment(dots), Err(ClientError::InvalidJobId(ref id)) if id == dots),
                "{dots:?}"
            );
        }
    }

    /// Undoes percent-escaping.
    fn unescape_segment(segment: &str) -> String {
        percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    /// Every id of up to five of the characters URL parsing treats
    /// specially either is refused (exactly the empty and dot-segment ones)
    /// or becomes one segment, sent as built, that unescapes to the id.
    #[test]
    fn no_short_id_of_special_characters_leaves_its_segment() {
        const CHARS: [char; 12] = ['.', '%', '2', 'e', 'E', '/', '\\', '?', '#', ' ', '\t', 'é'];
        let base = Url::parse("http://example.invalid/prefix/").unwrap();
        let mut ids = vec![String::new()];
        let mut shorter = ids.clone();
        for _ in 0..5 {
            shorter = shorter
                .iter()
                .flat_map(|id| CHARS.iter().map(move |c| format!("{id}{c}")))
                .collect();
            ids.extend(shorter.iter().cloned());
        }
        let mut refused = Vec::new();
        for id in &ids {
            match segment(id) {
                Ok(escaped) => {
                    let path = format!("v1/jobs/{escaped}/wait");
                    let url = base.join(&path).unwrap();
                    assert_eq!(url.path(), format!("/prefix/{path}"), "{id:?}");
                    assert_eq!(unescape_segment(&escaped), *id);
                }
                Err(ClientError::InvalidJobId(got)) if got == *id => refused.push(got),
                Err(other) => panic!("{id:?}: {other:?}"),
            }
        }
        refused.sort();
        assert_eq!(
            refused,
            ["", "%2E", "%2E.", "%2e", "%2e.", ".", ".%2E", ".%2e", ".."]
        );
    }

    #[test]
    fn base_urls_are_checked_and_keep_their_path() {
        assert!(ShellctlClient::new("ftp://x").is_err());
        assert!(ShellctlClient::new("not a url").is_err());
        let client = ShellctlClient::new("https://example.invalid/prefix").unwrap();
        assert_eq!(
            client.base_url().as_str(),
            "https://example.invalid/prefix/"
        );
    }
}
