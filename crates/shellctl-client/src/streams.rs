//! The push routes: one job's events ([`JobEventStream`]) and the lifecycle
//! events of all jobs ([`LifecycleStream`]), both Server-Sent Events read
//! incrementally, both resumed with `Last-Event-ID` when the connection
//! breaks.

use crate::sse::{SseError, SseEvent, SseParser};
use crate::{ClientError, ShellctlClient, decode_error, segment};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response};
use shellctl_proto::streams::{KEEP_ALIVE_SECONDS, LIFECYCLE_EVENT};
use shellctl_proto::{JobStreamEvent, LifecycleEvent, StreamDecodeError};
use std::time::Duration;
use tokio::time::Instant;

/// Default time a stream keeps trying to reconnect after its connection
/// broke, before it gives up with [`ClientError::StreamLost`].
pub const DEFAULT_RECONNECT_BUDGET: Duration = Duration::from_secs(30);

/// Name of the header a reconnecting client sends its last event id in.
const LAST_EVENT_ID: &str = "Last-Event-ID";

/// The first pause before a reconnection; each next one doubles, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between two reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Longest silence on a connection (not even a keep-alive comment, which
/// the server sends at least every [`KEEP_ALIVE_SECONDS`]) before it counts
/// as broken.
const IDLE_LIMIT: Duration = Duration::from_secs(3 * KEEP_ALIVE_SECONDS);

/// Longest wait for a stream's response headers.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// A failure of a connection, and whether a reconnection may mend it.
enum Failure {
    /// The connection broke, or the server was away or overloaded:
    /// reconnect (once the stream has been connected at all).
    Retry(ClientError),
    /// Reconnecting cannot help (an API error, a malformed stream).
    Fatal(ClientError),
    /// `204 No Content`: the server has nothing more to send (a job that
    /// ended, resumed past all its output).
    Complete,
}

/// The resuming core of both streams: one GET route read as
/// Server-Sent Events, reconnected with `Last-Event-ID` whenever its
/// connection breaks until the caller closes it.
#[derive(Debug)]
struct Resuming {
    client: ShellctlClient,
    /// The route's path, or why it has none (an invalid job id).
    path: Result<String, Option<ClientError>>,
    /// The query of every request (a `Last-Event-ID` overrides its start).
    query: Vec<(&'static str, String)>,
    parser: SseParser,
    response: Option<Response>,
    /// A connection was opened once: later failures are retried.
    connected: bool,
    /// Failures in a row since data last arrived.
    failures: u32,
    /// When the first of those failures happened.
    first_failure: Option<Instant>,
    /// The server answered `204 No Content`: nothing more will come.
    complete: bool,
}

impl Resuming {
    fn new(
        client: &ShellctlClient,
        path: Result<String, ClientError>,
        query: Vec<(&'static str, String)>,
    ) -> Resuming {
        Resuming {
            client: client.clone(),
            path: path.map_err(Some),
            query,
            parser: SseParser::new(),
            response: None,
            connected: false,
            failures: 0,
            first_failure: None,
            complete: false,
        }
    }

    /// The next event, connecting and reconnecting as needed; `None` once
    /// the server said nothing more will come (`204`). An error is final:
    /// the caller stops reading.
    async fn next_event(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Ok(Some(event));
            }
            if self.complete {
                return Ok(None);
            }
            let Some(response) = self.response.as_mut() else {
                self.connect().await?;
                continue;
            };
            let failure = match tokio::time::timeout(IDLE_LIMIT, response.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    if !bytes.is_empty() {
                        self.failures = 0;
                        self.first_failure = None;
                    }
                    self.parser.feed(&bytes).map_err(too_large)?;
                    continue;
                }
                Ok(Ok(None)) => ClientError::Stream("the stream closed before its end".into()),
                Ok(Err(err)) => ClientError::Transport(err),
                Err(_) => ClientError::Stream(format!(
                    "nothing arrived for {} s, not even a keep-alive",
                    IDLE_LIMIT.as_secs()
                )),
            };
            self.response = None;
            self.back_off(failure).await?;
        }
    }

    /// Drops the connection (after the stream's last event).
    fn close(&mut self) {
        self.response = None;
    }

    /// The last event id received, as a number (both streams' ids are).
    fn last_id(&self) -> Option<u64> {
        self.parser.last_event_id().parse().ok()
    }

    /// Opens a connection, retrying failures that a retry may mend once
    /// the stream has been connected before. The first connection is not
    /// retried: a server that is not there is reported at once, like by
    /// every other call.
    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            match self.open().await {
                Ok(response) => {
                    self.parser.reconnect();
                    self.response = Some(response);
                    self.connected = true;
                    return Ok(());
                }
                Err(Failure::Complete) => {
                    self.complete = true;
                    return Ok(());
                }
                Err(Failure::Retry(err)) if self.connected => self.back_off(err).await?,
                Err(Failure::Retry(err) | Failure::Fatal(err)) => return Err(err),
            }
        }
    }

    /// Counts a failure, then pauses before the next attempt; gives up with
    /// [`ClientError::StreamLost`] once the reconnect budget would be
    /// spent.
    async fn back_off(&mut self, failure: ClientError) -> Result<(), ClientError> {
        let now = Instant::now();
        let first = *self.first_failure.get_or_insert(now);
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_BACKOFF);
        self.failures += 1;
        if now + delay > first + self.client.reconnect_budget {
            return Err(ClientError::StreamLost {
                failures: self.failures,
                last: Box::new(failure),
            });
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Sends the request (with the last event id, if any) and checks that
    /// an event stream answers.
    async fn open(&mut self) -> Result<Response, Failure> {
        let path = match &mut self.path {
            Ok(path) => path,
            Err(invalid) => {
                let err = invalid
                    .take()
                    .unwrap_or_else(|| ClientError::InvalidJobId(String::new()));
                return Err(Failure::Fatal(err));
            }
        };
        let mut builder = self
            .client
            .request(Method::GET, path, None)
            .map_err(Failure::Fatal)?
            .query(&self.query)
            .header(ACCEPT, "text/event-stream");
        let last_id = self.parser.last_event_id();
        if !last_id.is_empty() {
            let value = HeaderValue::from_str(last_id).map_err(|_| {
                Failure::Fatal(ClientError::Stream(format!(
                    "the server sent an event id that cannot be sent back: {last_id:?}"
                )))
            })?;
            builder = builder.header(LAST_EVENT_ID, value);
        }
        let response = match tokio::time::timeout(CONNECT_LIMIT, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(Failure::Retry(ClientError::Transport(err))),
            Err(_) => {
                return Err(Failure::Retry(ClientError::Stream(format!(
                    "no answer within {} s",
                    CONNECT_LIMIT.as_secs()
                ))));
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Err(Failure::Complete);
        }
        if !status.is_success() {
            let body = response
                .bytes()
                .await
                .map_err(|err| Failure::Retry(ClientError::Transport(err)))?;
            let err = decode_error(status, &body);
            return Err(if status.is_server_error() {
                Failure::Retry(err)
            } else {
                Failure::Fatal(err)
            });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(Failure::Fatal(ClientError::Stream(format!(
                "expected an event stream (text/event-stream), got {content_type:?}"
            ))));
        }
        Ok(response)
    }
}

/// The parser's refusal as a client error.
fn too_large(err: SseError) -> ClientError {
    ClientError::Stream(err.to_string())
}

/// One job's events as they happen (`GET /v1/jobs/{id}/events`); see
/// [`ShellctlClient::job_events`].
///
/// Yields the job's status when the stream opens and on every change, its
/// output in chunks, and last its end. When the connection breaks before
/// the end (a server restart closes streams without one), the stream
/// reconnects on its own with the last event id as `Last-Event-ID`, which
/// gives exactly the output missed; it gives up with
/// [`ClientError::StreamLost`] once reconnecting failed for the client's
/// reconnect budget ([`ShellctlClient::with_reconnect_budget`]).
#[derive(Debug)]
pub struct JobEventStream {
    inner: Resuming,
    /// The job, for its final status when the server has nothing more.
    job_id: String,
    finished: bool,
}

impl JobEventStream {
    /// The next event; `None` after the `end` event or an error.
    ///
    /// A resume the server answers `204 No Content` (the job ended and all
    /// its output was received, but the `end` was lost with the
    /// connection) yields an `end` with the job's status from
    /// `GET /v1/jobs/{id}`. Events of names this version does not know are
    /// skipped. An error is final; an API error of the first request (a
    /// `404 job_not_found`, or a server without this route: see
    /// [`ClientError::is_missing_route`]) comes as one, too.
    pub async fn next(&mut self) -> Option<Result<JobStreamEvent, ClientError>> {
        if self.finished {
            return None;
        }
        loop {
            let event = match self.inner.next_event().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    // A resume past all the output of a job that ended
                    // (its `end` was lost with the connection): the end
                    // is the job's status now.
                    self.finished = true;
                    return Some(
                        self.inner
                            .client
                            .status(&self.job_id)
                            .await
                            .map(JobStreamEvent::End),
                    );
                }
                Err(err) => {
                    self.finished = true;
                    return Some(Err(err));
                }
            };
            match JobStreamEvent::decode(&event.event, &event.data) {
                Ok(decoded) => {
                    if matches!(decoded, JobStreamEvent::End(_)) {
                        self.finished = true;
                        self.inner.close();
                    }
                    return Some(Ok(decoded));
                }
                Err(StreamDecodeError::UnknownEvent(_)) => {}
                Err(err @ StreamDecodeError::BadData { .. }) => {
                    self.finished = true;
                    self.inner.close();
                    return Some(Err(ClientError::Stream(err.to_string())));
                }
            }
        }
    }

    /// The id of the last event received: the byte offset of the output
    /// delivered so far (where a reconnection resumes).
    pub fn last_event_id(&self) -> Option<u64> {
        self.inner.last_id()
    }
}

/// The lifecycle events of all jobs, or of the jobs with one label
/// (`GET /v1/events`); see [`ShellctlClient::lifecycle_events`].
///
/// The stream never ends by itself. Like [`JobEventStream`], it reconnects
/// with `Last-Event-ID` (the last `seq`) when its connection breaks, and
/// gives up with [`ClientError::StreamLost`] after the reconnect budget.
/// The server opens the stream with an id-only frame (the seq it starts
/// after), so a stream opened without `since` that breaks before its first
/// event resumes from there.
#[derive(Debug)]
pub struct LifecycleStream {
    inner: Resuming,
    finished: bool,
}

impl LifecycleStream {
    /// The next event; `None` only after an error (which is final).
    /// Events of other names than `job` are skipped.
    pub async fn next(&mut self) -> Option<Result<LifecycleEvent, ClientError>> {
        if self.finished {
            return None;
        }
        loop {
            let event = match self.inner.next_event().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.finished = true;
                    return Some(Err(ClientError::Stream(
                        "the lifecycle stream answered 204 No Content".into(),
                    )));
                }
                Err(err) => {
                    self.finished = true;
                    return Some(Err(err));
                }
            };
            if event.event != LIFECYCLE_EVENT {
                continue;
            }
            return Some(serde_json::from_str(&event.data).map_err(|err| {
                self.finished = true;
                self.inner.close();
                ClientError::Stream(format!("bad data in a {LIFECYCLE_EVENT:?} event: {err}"))
            }));
        }
    }

    /// The `seq` of the last event received (where a reconnection
    /// resumes).
    pub fn last_seq(&self) -> Option<u64> {
        self.inner.last_id()
    }
}

impl ShellctlClient {
    /// `GET /v1/jobs/{id}/events?offset=N`: the job's events from byte
    /// `offset` of its output on, as they happen. Connects on the first
    /// [`next`](JobEventStream::next); an invalid job id is reported there.
    pub fn job_events(&self, job_id: &str, offset: u64) -> JobEventStream {
        let path = segment(job_id).map(|id| format!("/v1/jobs/{id}/events"));
        JobEventStream {
            inner: Resuming::new(self, path, vec![("offset", offset.to_string())]),
            job_id: job_id.to_owned(),
            finished: false,
        }
    }

    /// `GET /v1/events?since=SEQ&label=L`: the jobs' lifecycle events
    /// (created, running, exited, …) after `since` (`Some(0)`: every event
    /// the server still keeps; `None`: only those from now on), of jobs
    /// with `label` only if given. Connects on the first
    /// [`next`](LifecycleStream::next).
    pub fn lifecycle_events(&self, since: Option<u64>, label: Option<&str>) -> LifecycleStream {
        let mut query = Vec::new();
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        if let Some(label) = label {
            query.push(("label", label.to_owned()));
        }
        LifecycleStream {
            inner: Resuming::new(self, Ok("/v1/events".to_owned()), query),
            finished: false,
        }
    }
}
