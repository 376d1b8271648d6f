//! Handlers of the push routes: a job's output stream and the lifecycle
//! event stream, framed as Server-Sent Events. Same gates, auth, error
//! envelope and strict ids as v1; a bad request fails with a JSON error
//! before the stream starts.

use super::{ApiError, AppState, job_id, query};
use crate::service::{JobStream, LifecycleStream};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use shellctl_proto::streams::{KEEP_ALIVE_SECONDS, LIFECYCLE_EVENT, parse_last_event_id};
use shellctl_proto::{
    ApiErrorBody, JobStreamEvent, JobStreamQuery, LifecycleEvent, LifecycleQuery, OutputChunk,
};
use std::convert::Infallible;
use std::time::Duration;

static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The `Last-Event-ID` a reconnecting client sent, if any.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(&LAST_EVENT_ID) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::Request(
            shellctl_proto::ValidationError::new("Last-Event-ID", "must be ASCII digits").into(),
        )
    })?;
    parse_last_event_id(text).map_err(|err| ApiError::Request(err.into()))
}

/// Frames `events` as an SSE response with keep-alive comments. Proxies
/// are asked not to buffer it (`X-Accel-Buffering`), so events reach the
/// client as they are sent.
fn sse_response<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let keep_alive = KeepAlive::new()
        .interval(Duration::from_secs(KEEP_ALIVE_SECONDS))
        .text("keep-alive");
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// An SSE event named `name` with `id` and `data` as JSON.
fn json_event(name: &'static str, id: u64, data: &impl serde::Serialize) -> Event {
    let event = Event::default().event(name).id(id.to_string());
    match event.json_data(data) {
        Ok(event) => event,
        // Our wire types always serialize; never send a half-made event.
        Err(err) => Event::default().comment(format!("unserializable event: {err}")),
    }
}

#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "streams",
    params(("id" = String, Path, description = "Job id, `MMDDHHMM-xyz`"),
           ("offset" = Option<u64>, Query, description = "Byte offset of the job's output to start from, default 0"),
           ("Last-Event-ID" = Option<u64>, Header, description = "The `id` of the last event received; overrides `offset` (an `EventSource` sends it when it reconnects)")),
    responses(
        (status = 200, content_type = "text/event-stream", body = OutputChunk,
         description = "Server-Sent Events. `event: output`, `id:` the offset just after the chunk, `data:` `{\"offset\", \"text\"}` (text cut at UTF-8 boundaries like `wait`'s, at most 64 KiB, coalesced for a slow reader). `event: status` (data: the `JobStatusView`) when the stream opens and on every change. `event: end` (data: the final `JobStatusView`) after the last output; then the stream closes. Keep-alive comments every 10 s. A stream closed without `end` (server shutdown) resumes exactly with `Last-Event-ID`."),
        (status = 204, description = "A resume (`Last-Event-ID`) of a job that has ended, past all its output: nothing more will come (an `EventSource` stops reconnecting)"),
        (status = 400, description = "`invalid_offset`", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 422, description = "`validation_error`, also for a `Last-Event-ID` that is not an offset", body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let request: JobStreamQuery = query(raw.as_deref())?;
    let offset = last_event_id(&headers)?.unwrap_or(request.offset);
    let job_stream = state.service.job_stream(id, offset).await?;
    if job_stream.complete_at_open() && headers.contains_key(&LAST_EVENT_ID) {
        // A client resuming after `end` (an `EventSource` reconnects by
        // itself when the server closes): 204 tells it to stop.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let events = stream::unfold(job_stream, |mut job_stream: JobStream| async move {
        let (event, id) = match job_stream.next().await? {
            Ok(item) => item,
            Err(err) => {
                // A job deleted while streamed is the usual case.
                tracing::info!("job stream ended early: {err}");
                return None;
            }
        };
        let frame = match &event {
            JobStreamEvent::Output(chunk) => json_event(event.name(), id, chunk),
            JobStreamEvent::Status(view) | JobStreamEvent::End(view) => {
                json_event(event.name(), id, view)
            }
        };
        Some((Ok(frame), job_stream))
    });
    Ok(sse_response(events))
}

#[utoipa::path(get, path = "/v1/events", tag = "streams",
    params(("since" = Option<u64>, Query, description = "Send the events after this seq (exclusive); `0` sends every event still kept. Without it, only events from now on"),
           ("label" = Option<String>, Query, description = "Only events of jobs with this label"),
           ("Last-Event-ID" = Option<u64>, Header, description = "The `id` (seq) of the last event received; overrides `since`")),
    responses(
        (status = 200, content_type = "text/event-stream", body = LifecycleEvent,
         description = "Server-Sent Events, one per status change of any job, in commit order: `event: job`, `id:` the event's seq, `data:` the `LifecycleEvent`. Statuses: created, running, exited, terminated, failed, lost, deleted (a job that ends before it ran goes from created to its end). Seqs are durable and increasing: transitions made while the server was down (exits the job side committed) appear after a restart. The stream opens with an id-only frame (the seq it starts after), so a client that reconnects before the first event resumes there. Events are trimmed by GC after the retention of ended jobs. Keep-alive comments every 10 s; the stream does not end by itself."),
        (status = 401, body = ApiErrorBody),
        (status = 422, description = "`validation_error`", body = ApiErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn lifecycle_events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request: LifecycleQuery = query(raw.as_deref())?;
    let since = last_event_id(&headers)?.or(request.since);
    let lifecycle = state.service.lifecycle_stream(since, request.label).await?;
    // An id-only frame first: a client that reconnects before the first
    // event resumes from here, not from "now" again.
    let opening = Event::default().id(lifecycle.since().to_string());
    let events = stream::unfold(lifecycle, |mut lifecycle: LifecycleStream| async move {
        let event: LifecycleEvent = match lifecycle.next().await? {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!("lifecycle stream ended early: {err}");
                return None;
            }
        };
        Some((
            Ok(json_event(LIFECYCLE_EVENT, event.seq, &event)),
            lifecycle,
        ))
    });
    Ok(sse_response(
        stream::once(std::future::ready(Ok(opening))).chain(events),
    ))
}
