//! The HTTP API on axum: the reference's v1 routes, unchanged, and the
//! routes beyond it (the terminal: screen, input state, keys, signal,
//! resize; for agents (the `agents` submodule): detail, wait-for, log search, digest;
//! the push streams (the `streams` submodule): a job's output and the
//! lifecycle events, as Server-Sent Events; and the MCP tools at `/mcp`),
//! behind the same gates, auth and error envelope; and `/metrics` (the
//! `metrics` module's Prometheus text), behind the same token. The web console and
//! `/docs` (the `console` module) are static pages behind the same gates,
//! without auth: they hold no data, and every request they make carries
//! the token.
//!
//! Bodies and queries are decoded by `shellctl-proto` (so a bad field gets a
//! 422 that names it), path ids are parsed strictly (anything else is a 404
//! before any file is touched), and every failure goes through [`ApiError`],
//! the one place that picks an HTTP status and error code.

pub(crate) mod agents;
pub(crate) mod streams;

use crate::guard::{self, SitePolicy};
use crate::mcp::ServiceBackend;
use crate::metrics::Metrics;
use crate::service::{Service, ServiceError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shellctl_proto::{
    ApiErrorBody, DeleteJobQuery, DeleteJobResponse, ErrorCode, HealthResponse, InputJobRequest,
    InputStateView, JobId, JobResult, JobStatus, JobStatusView, KeysRequest, ListJobsQuery,
    ListJobsResponse, RequestError, ResizeRequest, RunJobRequest, ScreenQuery, ScreenView,
    SignalRequest, TailQuery, TerminateJobRequest, Validate, WaitJobRequest, decode_query,
    decode_request,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The job service.
    pub service: Arc<Service>,
    /// The bearer token; `None` means no auth.
    pub auth_token: Option<Arc<str>>,
    /// Cancelled at shutdown: ends the MCP sessions at `/mcp` and their
    /// open event streams, which would otherwise hold up a graceful
    /// shutdown.
    pub mcp_shutdown: CancellationToken,
}

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Which `Host` and `Origin` values are answered (see [`SitePolicy`]).
    pub site_policy: Arc<SitePolicy>,
}

/// The router. The site gates (Host, cross-site, JSON body) wrap every route,
/// the fallbacks included, so no route added here can miss them.
pub fn router(state: AppState, limits: ApiLimits) -> Router {
    let authed = Router::new()
        .route("/v1/jobs/run", post(run_job))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(job_status).delete(delete_job))
        .route("/v1/jobs/{id}/wait", post(wait_job))
        .route("/v1/jobs/{id}/input", post(input_job))
        .route("/v1/jobs/{id}/log/tail", get(tail_job))
        .route("/v1/jobs/{id}/terminate", post(terminate_job))
        .route("/v1/jobs/{id}/screen", get(job_screen))
        .route("/v1/jobs/{id}/input-state", get(job_input_state))
        .route("/v1/jobs/{id}/keys", post(job_keys))
        .route("/v1/jobs/{id}/signal", post(job_signal))
        .route("/v1/jobs/{id}/resize", post(job_resize))
        .route("/v1/jobs/{id}/detail", get(agents::job_detail))
        .route("/v1/jobs/{id}/wait-for", post(agents::job_wait_for))
        .route("/v1/jobs/{id}/log/search", get(agents::job_log_search))
        .route("/v1/jobs/{id}/digest", post(agents::job_digest))
        .route("/v1/jobs/{id}/events", get(streams::job_events))
        .route("/v1/events", get(streams::lifecycle_events))
        .route("/metrics", get(metrics))
        .route_service(
            "/mcp",
            shellctl_mcp::http_service(
                Arc::new(ServiceBackend::new(Arc::clone(&state.service))),
                state.mcp_shutdown.clone(),
            ),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .merge(crate::console::routes())
        .merge(authed)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            limits.site_policy,
            guard::enforce,
        ))
        // Outside the gates, so refusals are counted too; inside the
        // routing, so the matched route's template is known.
        .layer(middleware::from_fn_with_state(
            Arc::clone(state.service.metrics()),
            count_request,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

// ----- errors --------------------------------------------------------------

/// Every way a request can fail, with its HTTP status and error code.
#[derive(Debug)]
pub enum ApiError {
    /// Missing or wrong token.
    Unauthorized,
    /// Bad body or query.
    Request(RequestError),
    /// Body over the limit.
    PayloadTooLarge,
    /// Body could not be read.
    BadBody(String),
    /// No such route.
    NotFound,
    /// Route exists, method does not.
    MethodNotAllowed,
    /// A body not declared `application/json`.
    UnsupportedMediaType(String),
    /// A browser request from another site.
    CrossOrigin(String),
    /// A `Host` the server does not answer to.
    HostNotAllowed(String),
    /// The service said no.
    Service(ServiceError),
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        ApiError::Service(err)
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        ApiError::Request(err)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadBody(rejection.body_text())
        }
    }
}

impl ApiError {
    /// The error code this failure answers with.
    pub fn code(&self) -> ErrorCode {
        self.parts().1
    }

    /// The message this failure answers with.
    pub fn message(&self) -> String {
        self.parts().2
    }

    fn parts(&self) -> (StatusCode, ErrorCode, String) {
        use ServiceError as S;
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "missing or invalid bearer token".into(),
            ),
            ApiError::Request(err) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationError,
                err.to_string(),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "request body is too large".into(),
            ),
            ApiError::BadBody(msg) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::ValidationError,
                msg.clone(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such route".into(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route".into(),
            ),
            ApiError::UnsupportedMediaType(msg) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                msg.clone(),
            ),
            ApiError::CrossOrigin(msg) => {
                (StatusCode::FORBIDDEN, ErrorCode::CrossOrigin, msg.clone())
            }
            ApiError::HostNotAllowed(msg) => (
                StatusCode::FORBIDDEN,
                ErrorCode::HostNotAllowed,
                msg.clone(),
            ),
            ApiError::Service(err) => {
                let (status, code) = match err {
                    S::JobNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::JobNotFound),
                    S::InvalidOffset { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidOffset),
                    S::InvalidCwd(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidCwd),
                    S::JobNotRunning(_) => (StatusCode::CONFLICT, ErrorCode::JobNotRunning),
                    S::JobRunning(_) => (StatusCode::CONFLICT, ErrorCode::JobRunning),
                    S::IdempotencyConflict { .. } => {
                        (StatusCode::CONFLICT, ErrorCode::IdempotencyConflict)
                    }
                    S::InvalidPattern(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationError)
                    }
                    S::UnsupportedLimit(_) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        ErrorCode::UnsupportedLimit,
                    ),
                    S::TooManyJobs { .. } => {
                        (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyJobs)
                    }
                    S::InsufficientStorage(_) => (
                        StatusCode::INSUFFICIENT_STORAGE,
                        ErrorCode::InsufficientStorage,
                    ),
                    // A full disk met on any route, not only where the
                    // service tells it apart: the client's cue to free
                    // space, not a server fault.
                    S::Store(err) if err.is_disk_full() => (
                        StatusCode::INSUFFICIENT_STORAGE,
                        ErrorCode::InsufficientStorage,
                    ),
                    S::Io(err) if shellctl_job::files::is_disk_full(err) => (
                        StatusCode::INSUFFICIENT_STORAGE,
                        ErrorCode::InsufficientStorage,
                    ),
                    S::Layout(_)
                    | S::Store(_)
                    | S::Io(_)
                    | S::Tmux(_)
                    | S::Watch(_)
                    | S::Internal(_) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError)
                    }
                };
                (status, code, err.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(%code, "{message}");
        }
        (status, Json(ApiErrorBody::new(code, message))).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A path id that is not of the job-id form names no job.
fn job_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw).map_err(|_| ApiError::Service(ServiceError::JobNotFound(raw.to_owned())))
}

fn body<T: serde::de::DeserializeOwned + Validate>(
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    Ok(decode_request(&bytes?)?)
}

fn query<T: serde::de::DeserializeOwned + Validate>(raw: Option<&str>) -> Result<T, ApiError> {
    Ok(decode_query(raw.unwrap_or(""))?)
}

// ----- middleware ----------------------------------------------------------

async fn require_auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.auth_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guess was right (only whether its length was).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts every answer by the template of the route it matched (axum's
/// [`MatchedPath`], `/v1/jobs/{id}`, never a job id) and its status code;
/// a request no route matched counts as
/// [`UNMATCHED_ROUTE`](crate::metrics::UNMATCHED_ROUTE).
async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let response = next.run(request).await;
    metrics.request_answered(route.as_deref(), response.status().as_u16());
    response
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

// ----- handlers ------------------------------------------------------------

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The server is up", body = HealthResponse)))]
pub(crate) async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse::default())
}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, content_type = "text/plain; version=0.0.4; charset=utf-8", body = String,
         description = "The server's metrics in the Prometheus text exposition format (0.0.4): `shellctl_jobs{status}` (jobs per status in the database), `shellctl_job_starts_total`, `shellctl_job_duration_seconds` (histogram, jobs this server saw end), `shellctl_output_bytes_total` (job output sent in output windows and job stream events), `shellctl_waiters` (long-poll waits in flight), `shellctl_streams{kind}` (open event streams), `shellctl_http_requests_total{route,code}` (route templates, never job ids; `unmatched` for no route), `shellctl_tmux_command_duration_seconds{client,command}` (histogram)"),
        (status = 401, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.service.metrics_text().await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[utoipa::path(post, path = "/v1/jobs/run", tag = "jobs", request_body = RunJobRequest,
    responses(
        (status = 200, description = "Job started; first output window", body = JobResult),
        (status = 400, description = "`invalid_cwd`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 413, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn run_job(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobResult> {
    let request: RunJobRequest = body(bytes)?;
    Ok(Json(state.service.run(request).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/wait", tag = "jobs", request_body = WaitJobRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Output window from `offset`", body = JobResult),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn wait_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobResult> {
    let id = job_id(&id)?;
    let request: WaitJobRequest = body(bytes)?;
    Ok(Json(state.service.wait(id, request).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/input", tag = "jobs", request_body = InputJobRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Text typed; output window from `offset`", body = JobResult),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`", body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn input_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobResult> {
    let id = job_id(&id)?;
    let request: InputJobRequest = body(bytes)?;
    Ok(Json(state.service.input(id, request).await?))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/log/tail", tag = "jobs",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`"),
           ("output_limit" = Option<u32>, Query, description = "Bytes of the log's end, 1..=1048576, default 8192")),
    responses(
        (status = 200, description = "The end of the output", body = JobResult),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tail_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<JobResult> {
    let id = job_id(&id)?;
    let tail: TailQuery = query(raw.as_deref())?;
    Ok(Json(state.service.tail(id, tail.output_limit).await?))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "The job's status", body = JobStatusView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<JobStatusView> {
    let id = job_id(&id)?;
    Ok(Json(state.service.status(id).await?))
}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(("status" = Option<JobStatus>, Query, description = "Only jobs with this status"),
           ("label" = Option<String>, Query, description = "Only jobs with this label (not in the reference)"),
           ("limit" = Option<u32>, Query, description = "At most this many, 1..=1000, default 100")),
    responses(
        (status = 200, description = "Jobs, newest first", body = ListJobsResponse),
        (status = 401, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<ListJobsResponse> {
    let list: ListJobsQuery = query(raw.as_deref())?;
    Ok(Json(state.service.list(list).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/terminate", tag = "jobs", request_body = TerminateJobRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Ctrl-C, then the session killed after the grace if still running", body = JobStatusView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn terminate_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobStatusView> {
    let id = job_id(&id)?;
    // The reference's SDK always sends a body; an empty one means defaults.
    let request: TerminateJobRequest = match bytes {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => TerminateJobRequest::default(),
        other => body(other)?,
    };
    let grace = Duration::from_secs_f64(request.grace_seconds);
    Ok(Json(state.service.terminate(id, grace).await?))
}

#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`"),
           ("force" = Option<bool>, Query, description = "Terminate a running job first"),
           ("grace_seconds" = Option<f64>, Query, description = "Grace of that terminate, 0..=300, default 5")),
    responses(
        (status = 200, description = "Row and directory removed", body = DeleteJobResponse),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_running`", body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<DeleteJobResponse> {
    let id = job_id(&id)?;
    let delete: DeleteJobQuery = query(raw.as_deref())?;
    Ok(Json(state.service.delete(id, delete).await?))
}

// ----- the terminal ----------------------------------------------------------

#[utoipa::path(get, path = "/v1/jobs/{id}/screen", tag = "terminal",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`"),
           ("history" = Option<u32>, Query, description = "Scrollback lines above the screen to include, 0..=10000, default 0")),
    responses(
        (status = 200, description = "The rendered screen of the job's terminal, with its input state", body = ScreenView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`", body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_screen(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<ScreenView> {
    let id = job_id(&id)?;
    let screen: ScreenQuery = query(raw.as_deref())?;
    Ok(Json(state.service.screen(id, screen).await?))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/input-state", tag = "terminal",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Whether the job waits for input (from the foreground process's system call), what for, since when", body = InputStateView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`", body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_input_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<InputStateView> {
    let id = job_id(&id)?;
    Ok(Json(state.service.input_state(id).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/keys", tag = "terminal", request_body = KeysRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Keys pressed; output window from `offset`", body = JobResult),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`", body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobResult> {
    let id = job_id(&id)?;
    let request: KeysRequest = body(bytes)?;
    Ok(Json(state.service.keys(id, request).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/signal", tag = "terminal", request_body = SignalRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Signal sent to the script's processes (never the job's runner)", body = JobStatusView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`: the job ended, or no process of its script is left", body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_signal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<JobStatusView> {
    let id = job_id(&id)?;
    let request: SignalRequest = body(bytes)?;
    Ok(Json(state.service.signal(id, request).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/resize", tag = "terminal", request_body = ResizeRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "The screen after the resize (the program got SIGWINCH)", body = ScreenView),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, description = "`job_not_running`", body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<ScreenView> {
    let id = job_id(&id)?;
    let request: ResizeRequest = body(bytes)?;
    Ok(Json(state.service.resize(id, request).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
