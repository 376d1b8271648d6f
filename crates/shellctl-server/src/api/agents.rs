//! Handlers of the agent routes: a job's detail, `wait-for`, log search
//! and digests. Same gates, auth, error envelope and strict ids as v1.

use super::{ApiResult, AppState, body, job_id, query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use shellctl_proto::{
    ApiErrorBody, DigestRequest, DigestView, JobDetail, LogSearchQuery, LogSearchResponse,
    WaitForRequest, WaitForResult,
};

#[utoipa::path(get, path = "/v1/jobs/{id}/detail", tag = "agents",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "Everything the server knows of the job: status, label, cwd, script, terminal size, why it ended, deadlines, pid", body = JobDetail),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<JobDetail> {
    let id = job_id(&id)?;
    Ok(Json(state.service.detail(id).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/wait-for", tag = "agents", request_body = WaitForRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "The wait ended: the job exited, the pattern matched, the job waits for input, output went idle, or the timeout passed (`reason`)", body = WaitForResult),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 422, description = "`validation_error`, also for a pattern that does not compile", body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_wait_for(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<WaitForResult> {
    let id = job_id(&id)?;
    let request: WaitForRequest = body(bytes)?;
    Ok(Json(state.service.wait_for(id, request).await?))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/log/search", tag = "agents",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`"),
           ("pattern" = String, Query, description = "Regular expression (Rust `regex` syntax) matched against each line of the whole log"),
           ("limit" = Option<u32>, Query, description = "Matching lines to return at most, 1..=1000, default 100")),
    responses(
        (status = 200, description = "Matching lines in log order, with their offsets and line numbers", body = LogSearchResponse),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_log_search(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<LogSearchResponse> {
    let id = job_id(&id)?;
    let search: LogSearchQuery = query(raw.as_deref())?;
    Ok(Json(state.service.search_log(id, search).await?))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/digest", tag = "agents", request_body = DigestRequest,
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`")),
    responses(
        (status = 200, description = "The output from `offset` rendered within `max_bytes`: head and tail kept, error lines from the middle kept with their offsets, every cut marked", body = DigestView),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_digest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<DigestView> {
    let id = job_id(&id)?;
    let request: DigestRequest = body(bytes)?;
    Ok(Json(state.service.digest(id, request).await?))
}

/// Documents `/mcp` for `/openapi.json`: the route is served by the MCP
/// SDK's Streamable HTTP service, not by a handler of ours.
#[utoipa::path(method(post, get, delete), path = "/mcp", tag = "agents",
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A JSON-RPC message of the Model Context Protocol (Streamable HTTP transport, protocol 2025-06-18 and earlier): `initialize`, `tools/list`, `tools/call`. `GET` opens the session's event stream, `DELETE` ends the session (`Mcp-Session-Id` header)."),
    responses(
        (status = 200, description = "The JSON-RPC answer, as `application/json` or an SSE stream (`text/event-stream`), per the MCP transport; the tools are `shell_run`, `shell_wait`, `shell_input`, `shell_screen`, `shell_signal`, `shell_terminate`, `shell_list`, `shell_search`"),
        (status = 401, body = ApiErrorBody)),
    security(("bearer" = [])))]
#[allow(dead_code)] // documentation only
pub(crate) fn mcp_endpoint() {}
