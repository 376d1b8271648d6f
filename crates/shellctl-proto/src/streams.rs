//! Wire types of the push routes, new beside the frozen v1 set: one job's
//! output stream and the lifecycle events of all jobs, both sent as
//! Server-Sent Events (`text/event-stream`).
//!
//! Routes: `GET /v1/jobs/{id}/events?offset=N` and
//! `GET /v1/events?since=SEQ`. Each SSE event has a name ([`JobStreamEvent`]
//! names its three, [`LIFECYCLE_EVENT`] the one of the lifecycle stream), an
//! `id` a reconnecting client sends back as `Last-Event-ID`, and one JSON
//! object as its data.

use crate::error::ValidationError;
use crate::job_id::JobId;
use crate::responses::JobStatusView;
use crate::validate::Validate;
use serde::{Deserialize, Serialize};

/// The `event:` name of a chunk of output on a job stream.
pub const OUTPUT_EVENT: &str = "output";
/// The `event:` name of a status change on a job stream.
pub const STATUS_EVENT: &str = "status";
/// The `event:` name of a job stream's last event.
pub const END_EVENT: &str = "end";
/// The `event:` name of every event on the lifecycle stream.
pub const LIFECYCLE_EVENT: &str = "job";
/// The longest gap between two writes on a stream: a keep-alive comment is
/// sent when nothing else was, so proxies and clients see a live
/// connection.
pub const KEEP_ALIVE_SECONDS: u64 = 10;
/// Most bytes of output in one `output` event. A client that reads slower
/// than the job writes gets chunks this large (coalesced), never a backlog
/// held by the server.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Query of `GET /v1/jobs/{id}/events`. A `Last-Event-ID` header, sent by a
/// reconnecting client, overrides `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct JobStreamQuery {
    /// Byte offset into the job's output to start from (default 0).
    #[serde(default)]
    pub offset: u64,
}

impl Validate for JobStreamQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// The data of an `output` event: output from byte `offset` on. The
/// event's `id` is the offset just after `text`. Text is cut at UTF-8
/// character boundaries, exactly like `wait`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputChunk {
    /// Absolute byte offset of `text`'s first byte.
    pub offset: u64,
    /// The output.
    pub text: String,
}

/// One event of a job stream, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStreamEvent {
    /// `output`: the next chunk of output.
    Output(OutputChunk),
    /// `status`: the job's status changed (also sent when the stream opens
    /// on a live job; the terminal status comes after the last output,
    /// just before `end`).
    Status(JobStatusView),
    /// `end`: the job has ended and all its output was sent; the stream
    /// closes after it.
    End(JobStatusView),
}

/// An SSE event that is not one a job stream sends.
#[derive(Debug, thiserror::Error)]
pub enum StreamDecodeError {
    /// An `event:` name this version does not know.
    #[error("unknown stream event {0:?}")]
    UnknownEvent(String),
    /// The data is not the JSON the event's name promises.
    #[error("bad data in {event:?} event: {source}")]
    BadData {
        /// The event's name.
        event: String,
        /// Why the JSON did not decode.
        source: serde_json::Error,
    },
}

impl JobStreamEvent {
    /// The event's `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            JobStreamEvent::Output(_) => OUTPUT_EVENT,
            JobStreamEvent::Status(_) => STATUS_EVENT,
            JobStreamEvent::End(_) => END_EVENT,
        }
    }

    /// Decodes an event from its `event:` name and `data:`.
    pub fn decode(name: &str, data: &str) -> Result<JobStreamEvent, StreamDecodeError> {
        let bad = |source| StreamDecodeError::BadData {
            event: name.to_owned(),
            source,
        };
        match name {
            OUTPUT_EVENT => serde_json::from_str(data).map(JobStreamEvent::Output),
            STATUS_EVENT => serde_json::from_str(data).map(JobStreamEvent::Status),
            END_EVENT => serde_json::from_str(data).map(JobStreamEvent::End),
            other => return Err(StreamDecodeError::UnknownEvent(other.to_owned())),
        }
        .map_err(bad)
    }
}

/// Query of `GET /v1/events`. A `Last-Event-ID` header overrides `since`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct LifecycleQuery {
    /// Send the events after this `seq` (exclusive); `0` sends every
    /// event still kept. Without it, only events from now on are sent.
    #[serde(default)]
    pub since: Option<u64>,
    /// Only events of jobs with this label.
    #[serde(default)]
    pub label: Option<String>,
}

impl Validate for LifecycleQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        match &self.label {
            Some(label) => crate::agents::validate_name("label", label),
            None => Ok(()),
        }
    }
}

/// A status on the lifecycle stream: a job's statuses as `list` shows them
/// (`starting` is not reported: it lasts moments), and `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStatus {
    /// The job was accepted.
    Created,
    /// Its script started.
    Running,
    /// Its script exited; `exit_code` says how.
    Exited,
    /// It was terminated, or hit a deadline.
    Terminated,
    /// It could not start or its output could not be kept.
    Failed,
    /// Its tmux session vanished without an exit record.
    Lost,
    /// Its record and files were deleted (by `DELETE` or by GC).
    Deleted,
}

impl LifecycleStatus {
    /// Every lifecycle status, in the order a job can pass them.
    pub const ALL: [LifecycleStatus; 7] = [
        LifecycleStatus::Created,
        LifecycleStatus::Running,
        LifecycleStatus::Exited,
        LifecycleStatus::Terminated,
        LifecycleStatus::Failed,
        LifecycleStatus::Lost,
        LifecycleStatus::Deleted,
    ];

    /// The status as it is spelled on the wire (and in the events table).
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStatus::Created => "created",
            LifecycleStatus::Running => "running",
            LifecycleStatus::Exited => "exited",
            LifecycleStatus::Terminated => "terminated",
            LifecycleStatus::Failed => "failed",
            LifecycleStatus::Lost => "lost",
            LifecycleStatus::Deleted => "deleted",
        }
    }

    /// The status spelled `text`, if any.
    pub fn parse(text: &str) -> Option<LifecycleStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// The data of a lifecycle event (`event: job`, `id: <seq>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LifecycleEvent {
    /// Position in the server's event log: durable, increasing, never
    /// reused.
    pub seq: u64,
    /// The job.
    pub job_id: JobId,
    /// Its new status.
    pub status: LifecycleStatus,
    /// The exit code, set only for `exited`.
    pub exit_code: Option<i32>,
    /// When the transition was recorded (wire timestamp).
    pub at: String,
    /// The job's label, if it has one.
    pub label: Option<String>,
}

/// Parses a `Last-Event-ID` header value: a decimal integer (what both
/// streams put in `id:`). Blank means none, as an `EventSource` sends it
/// before any event had an id.
pub fn parse_last_event_id(value: &str) -> Result<Option<u64>, ValidationError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        ValidationError::new(
            "Last-Event-ID",
            "must be a non-negative integer (an id this server sent)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_statuses_round_trip_their_spelling() {
        for status in LifecycleStatus::ALL {
            assert_eq!(LifecycleStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(LifecycleStatus::parse("starting"), None);
    }

    #[test]
    fn last_event_id_is_a_decimal_offset() {
        assert_eq!(parse_last_event_id("42").unwrap(), Some(42));
        assert_eq!(parse_last_event_id(" 7 ").unwrap(), Some(7));
        assert_eq!(parse_last_event_id("").unwrap(), None);
        for bad in ["-1", "1.5", "abc", "18446744073709551616"] {
            assert!(parse_last_event_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn job_stream_events_decode_by_name() {
        let event = JobStreamEvent::decode("output", r#"{"offset": 3, "text": "hi\n"}"#).unwrap();
        assert_eq!(
            event,
            JobStreamEvent::Output(OutputChunk {
                offset: 3,
                text: "hi\n".into()
            })
        );
        assert_eq!(event.name(), OUTPUT_EVENT);
        assert!(matches!(
            JobStreamEvent::decode("bogus", "{}"),
            Err(StreamDecodeError::UnknownEvent(_))
        ));
        assert!(matches!(
            JobStreamEvent::decode("end", "{}"),
            Err(StreamDecodeError::BadData { .. })
        ));
    }
}
