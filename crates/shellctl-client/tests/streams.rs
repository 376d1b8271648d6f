//! The event streams of the SDK (`job_events`, `lifecycle_events`) and
//! `follow` on them, against a scripted HTTP server: what they send, how
//! they read events, resume a broken connection with `Last-Event-ID`, give
//! up, and fall back to waits on a server without streams.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use shellctl_client::{ClientError, ShellctlClient};
use shellctl_proto::{
    JobResult, JobStatus, JobStreamEvent, LifecycleStatus, OutputChunk, streams::END_EVENT,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const JOB: &str = "05211530-abc";

/// A request as the scripted server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    /// Headers, names in lower case.
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// What the server writes on one connection, piece by piece, before it
/// closes it.
type Script = Vec<Vec<u8>>;

/// A server that answers each connection's one request with the pieces
/// `handler` gives for it (and the number of requests before it), then
/// closes the connection.
async fn scripted<H>(handler: H) -> (String, Log)
where
    H: Fn(usize, &Seen) -> Script + Send + Sync + 'static,
{
    let log: Log = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen_log = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let Some(seen) = read_request(&mut socket).await else {
                continue;
            };
            let script = {
                let mut log = seen_log.lock().unwrap();
                log.push(seen.clone());
                handler(log.len() - 1, &seen)
            };
            for piece in script {
                if socket.write_all(&piece).await.is_err() {
                    break;
                }
                let _ = socket.flush().await;
            }
            let _ = socket.shutdown().await;
        }
    });
    (base, log)
}

/// Reads one request (head and `Content-Length` body).
async fn read_request(socket: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let target = request_line.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// The head of an event stream whose body ends when the connection closes.
fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_vec()
}

/// The head of an event stream sent in chunked encoding.
fn chunked_sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec()
}

/// `bytes` as one chunk of chunked encoding.
fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// A whole JSON response.
fn json_response(status: u16, body: &Value) -> Script {
    let body = body.to_string();
    vec![
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    ]
}

/// One SSE event.
fn event(name: &str, id: u64, data: &Value) -> Vec<u8> {
    format!("event: {name}\nid: {id}\ndata: {data}\n\n").into_bytes()
}

fn status_view(status: &str, exit_code: Option<i32>, offset: u64) -> Value {
    let done = !matches!(status, "running" | "created" | "starting");
    json!({"job_id": JOB, "status": status, "done": done, "exit_code": exit_code,
           "created_at": "2026-05-21T15:30:20Z", "started_at": "2026-05-21T15:30:20Z",
           "ended_at": if done { json!("2026-05-21T15:30:25Z") } else { Value::Null }, "offset": offset})
}

fn output(offset: u64, text: &str) -> Vec<u8> {
    let end = offset + text.len() as u64;
    event("output", end, &json!({"offset": offset, "text": text}))
}

fn job_result(done: bool, output: &str, offset: u64) -> Value {
    json!({"job_id": JOB, "done": done, "status": if done {"exited"} else {"running"},
           "exit_code": if done {json!(0)} else {Value::Null},
           "output_path": "/s/output.log", "output": output, "offset": offset, "truncated": false})
}

fn start_result() -> JobResult {
    serde_json::from_value(job_result(false, "a\n", 2)).unwrap()
}

fn client_of(base: &str) -> ShellctlClient {
    ShellctlClient::new(base).unwrap().with_token(None)
}

/// Every result of `follow`, until it ends.
async fn follow_all(mut follow: shellctl_client::Follow<'_>) -> Vec<JobResult> {
    let mut results = Vec::new();
    while let Some(result) = follow.next().await {
        results.push(result.unwrap());
    }
    results
}

#[tokio::test]
async fn follow_reads_the_job_stream() {
    let (base, log) = scripted(|_, _| {
        let mut ended = event("status", 14, &status_view("exited", Some(3), 14));
        ended.extend(event(END_EVENT, 14, &status_view("exited", Some(3), 14)));
        vec![
            sse_head(),
            b": keep-alive\n\n".to_vec(),
            event("status", 2, &status_view("running", None, 2)),
            output(2, "b\n"),
            // An event this version does not know is skipped.
            b"event: future\r\ndata: {}\r\n\r\n".to_vec(),
            // CRLF line ends, and a character cut between two writes.
            b"event: output\r\nid: 10\r\ndata: {\"offset\": 4, \"text\": \"c \xE2".to_vec(),
            b"\x9C\x93\\n\"}\r\n\r\n".to_vec(),
            output(10, "last"),
            ended,
        ]
    })
    .await;
    let client = client_of(&base);
    let results = follow_all(client.follow(&start_result())).await;
    let outputs: Vec<&str> = results.iter().map(|r| r.output.as_str()).collect();
    assert_eq!(outputs, ["a\n", "b\n", "c ✓\n", "last", ""]);
    // While the job runs, chunks are not done and carry its status.
    for result in &results[1..4] {
        assert_eq!(
            (result.done, result.status, result.truncated),
            (false, JobStatus::Running, false)
        );
        assert_eq!(result.output_path, "/s/output.log");
    }
    assert_eq!(
        results.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [2, 4, 10, 14, 14]
    );
    let last = results.last().unwrap();
    assert_eq!(
        (last.done, last.status, last.exit_code, last.truncated),
        (true, JobStatus::Exited, Some(3), false)
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, format!("/v1/jobs/{JOB}/events"));
    assert_eq!(
        (seen[0].method.as_str(), seen[0].query.as_str()),
        ("GET", "offset=2")
    );
    assert_eq!(seen[0].header("accept"), Some("text/event-stream"));
    assert_eq!(seen[0].header("last-event-id"), None);
}

/// A job that had ended before the stream opened: its chunks come after
/// its terminal status; the last one is merged into the end, as a wait
/// would have answered (`done`, and `truncated` while more follows).
#[tokio::test]
async fn following_an_ended_job_merges_its_last_chunk_into_the_end() {
    let (base, _log) = scripted(|_, _| {
        vec![
            sse_head(),
            event("status", 0, &status_view("terminated", None, 6)),
            output(0, "one\n"),
            output(4, "2\n"),
            event(END_EVENT, 6, &status_view("terminated", None, 6)),
        ]
    })
    .await;
    let client = client_of(&base);
    let results = follow_all(client.follow_from(JOB, 0)).await;
    let shape: Vec<(&str, bool, bool, u64)> = results
        .iter()
        .map(|r| (r.output.as_str(), r.done, r.truncated, r.offset))
        .collect();
    assert_eq!(shape, [("one\n", true, true, 4), ("2\n", true, false, 6)]);
    assert_eq!(results[1].status, JobStatus::Terminated);
    // The stream does not say where the log is; follow_from had no result.
    assert_eq!(results[1].output_path, "");
    assert_eq!(results[1].job_id.as_str(), JOB);
}

#[tokio::test]
async fn follow_falls_back_to_waits_on_a_server_without_streams() {
    let missing_routes = [
        (404, json!({"detail": "Not Found"})),
        (405, json!({"detail": "Method Not Allowed"})),
        (
            404,
            json!({"error": {"code": "not_found", "message": "no such route"}}),
        ),
    ];
    for (status, body) in missing_routes {
        let answer = body.clone();
        let (base, log) = scripted(move |_, seen| {
            if seen.path.ends_with("/events") {
                return json_response(status, &answer);
            }
            let offset = seen.body["offset"].as_u64().unwrap();
            if offset < 4 {
                json_response(200, &job_result(false, "b\n", 4))
            } else {
                json_response(200, &job_result(true, "c\n", 6))
            }
        })
        .await;
        let client = client_of(&base);
        let results = follow_all(client.follow(&start_result())).await;
        let outputs: Vec<&str> = results.iter().map(|r| r.output.as_str()).collect();
        assert_eq!(outputs, ["a\n", "b\n", "c\n"], "{body}");
        let sent: Vec<(String, Value)> = log
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.path.clone(), s.body["offset"].clone()))
            .collect();
        assert_eq!(
            sent,
            [
                (format!("/v1/jobs/{JOB}/events"), Value::Null),
                (format!("/v1/jobs/{JOB}/wait"), json!(2)),
                (format!("/v1/jobs/{JOB}/wait"), json!(4)),
            ],
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_job_not_found_on_the_stream_is_an_error_not_a_fallback() {
    let (base, log) = scripted(|_, _| {
        json_response(
            404,
            &json!({"error": {"code": "job_not_found", "message": "no such job"}}),
        )
    })
    .await;
    let client = client_of(&base);
    let mut follow = client.follow_from(JOB, 0);
    let err = follow.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some("job_not_found"));
    assert!(!err.is_missing_route());
    assert!(follow.next().await.is_none());
    assert_eq!(log.lock().unwrap().len(), 1, "no wait was sent");
}

/// The server drops the connection in the middle of an event (a
/// close-delimited body that just ends); the stream reconnects with the
/// last id it received, and the half event is not delivered.
#[tokio::test]
async fn a_dropped_stream_resumes_with_last_event_id() {
    let (base, log) = scripted(|n, _| match n {
        0 => vec![
            sse_head(),
            event("status", 0, &status_view("running", None, 0)),
            output(0, "one\n"),
            b"event: output\nid: 99\ndata: {\"offset\": 4, \"te".to_vec(),
        ],
        _ => vec![
            sse_head(),
            event("status", 4, &status_view("running", None, 4)),
            output(4, "two\n"),
            event("status", 8, &status_view("exited", Some(0), 8)),
            event(END_EVENT, 8, &status_view("exited", Some(0), 8)),
        ],
    })
    .await;
    let client = client_of(&base);
    let mut events = client.job_events(JOB, 0);
    let mut names = Vec::new();
    let mut texts = String::new();
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        names.push(event.name());
        if let JobStreamEvent::Output(OutputChunk { text, .. }) = event {
            texts.push_str(&text);
        }
    }
    assert_eq!(texts, "one\ntwo\n");
    assert_eq!(
        names,
        ["status", "output", "status", "output", "status", "end"]
    );
    assert_eq!(events.last_event_id(), Some(8));
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("last-event-id"), None);
    assert_eq!(seen[1].header("last-event-id"), Some("4"));
    // The query stays; the header overrides its offset.
    assert_eq!(seen[1].query, "offset=0");
}

/// `follow` over a stream whose connection breaks mid-chunk (chunked
/// encoding cut short, a transport error): the output continues from
/// where it broke, without a gap or a repeat.
#[tokio::test]
async fn follow_resumes_across_a_broken_connection() {
    let (base, log) = scripted(|n, _| match n {
        0 => vec![
            chunked_sse_head(),
            chunk(&event("status", 2, &status_view("running", None, 2))),
            chunk(&output(2, "b\n")),
            // A chunk announced larger than what comes before the close.
            b"40\r\nevent: output\n".to_vec(),
        ],
        _ => vec![
            sse_head(),
            event("status", 4, &status_view("running", None, 4)),
            output(4, "c\n"),
            event("status", 6, &status_view("exited", Some(5), 6)),
            event(END_EVENT, 6, &status_view("exited", Some(5), 6)),
        ],
    })
    .await;
    let client = client_of(&base);
    let results = follow_all(client.follow(&start_result())).await;
    let outputs: Vec<&str> = results.iter().map(|r| r.output.as_str()).collect();
    assert_eq!(outputs, ["a\n", "b\n", "c\n", ""]);
    assert_eq!(results.last().unwrap().exit_code, Some(5));
    let ids: Vec<Option<String>> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.header("last-event-id").map(str::to_owned))
        .collect();
    assert_eq!(ids, [None, Some("4".to_owned())]);
}

#[tokio::test]
async fn lifecycle_events_resume_from_the_last_seq() {
    let job = |seq: u64, status: &str, exit_code: Option<i32>| {
        let data = json!({"seq": seq, "job_id": JOB, "status": status, "exit_code": exit_code,
                          "at": "2026-05-21T15:30:20Z", "label": "ci"});
        event("job", seq, &data)
    };
    let (base, log) = scripted(move |n, _| match n {
        0 => vec![sse_head(), job(1, "created", None), job(2, "running", None)],
        _ => vec![
            sse_head(),
            b": keep-alive\n\n".to_vec(),
            job(3, "exited", Some(0)),
        ],
    })
    .await;
    let client = client_of(&base);
    let mut events = client.lifecycle_events(Some(0), Some("ci"));
    let mut seen_events = Vec::new();
    while seen_events.len() < 3 {
        seen_events.push(events.next().await.unwrap().unwrap());
    }
    let shape: Vec<(u64, LifecycleStatus, Option<i32>)> = seen_events
        .iter()
        .map(|e| (e.seq, e.status, e.exit_code))
        .collect();
    assert_eq!(
        shape,
        [
            (1, LifecycleStatus::Created, None),
            (2, LifecycleStatus::Running, None),
            (3, LifecycleStatus::Exited, Some(0)),
        ]
    );
    assert_eq!(seen_events[0].label.as_deref(), Some("ci"));
    assert_eq!(events.last_seq(), Some(3));
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen.iter()
            .map(|s| (s.path.as_str(), s.query.as_str(), s.header("last-event-id")))
            .collect::<Vec<_>>(),
        [
            ("/v1/events", "since=0&label=ci", None),
            ("/v1/events", "since=0&label=ci", Some("2")),
        ]
    );
}

#[tokio::test]
async fn lifecycle_events_without_since_send_no_since() {
    let (base, log) = scripted(|_, _| vec![sse_head(), b": hi\n\n".to_vec()]).await;
    let client = client_of(&base).with_reconnect_budget(Duration::ZERO);
    let mut events = client.lifecycle_events(None, None);
    let err = events.next().await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::StreamLost { .. }), "{err:?}");
    assert!(events.next().await.is_none());
    assert_eq!(log.lock().unwrap()[0].query, "");
}

/// Without a reconnect budget, a broken stream is lost at once; with a
/// small one, the stream gives up once the server kept failing for it.
#[tokio::test]
async fn a_stream_gives_up_after_its_reconnect_budget() {
    let script = |n: usize, _: &Seen| match n {
        0 => vec![
            sse_head(),
            event("status", 0, &status_view("running", None, 0)),
        ],
        _ => json_response(
            503,
            &json!({"error": {"code": "unavailable", "message": "restarting"}}),
        ),
    };
    let (base, log) = scripted(script).await;
    let client = client_of(&base).with_reconnect_budget(Duration::ZERO);
    let mut events = client.job_events(JOB, 0);
    assert!(matches!(
        events.next().await,
        Some(Ok(JobStreamEvent::Status(_)))
    ));
    match events.next().await {
        Some(Err(ClientError::StreamLost { failures: 1, last })) => {
            assert!(matches!(*last, ClientError::Stream(_)), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(events.next().await.is_none());
    assert_eq!(log.lock().unwrap().len(), 1);

    let (base, log) = scripted(script).await;
    let client = client_of(&base).with_reconnect_budget(Duration::from_millis(400));
    let mut events = client.job_events(JOB, 0);
    assert!(matches!(
        events.next().await,
        Some(Ok(JobStreamEvent::Status(_)))
    ));
    match events.next().await {
        Some(Err(ClientError::StreamLost { failures, last })) => {
            assert!(failures > 1, "{failures}");
            assert!(
                matches!(*last, ClientError::Api { status: 503, .. }),
                "{last:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let seen = log.lock().unwrap().clone();
    assert!(seen.len() > 1);
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.header("last-event-id") == Some("0"))
    );
}

/// The first connection is not retried: a server that is not there is
/// reported at once, as by every other call.
#[tokio::test]
async fn the_first_connection_is_not_retried() {
    // Nothing listens on port 9 of loopback.
    let client = client_of("http://127.0.0.1:9");
    let mut events = client.job_events(JOB, 0);
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::Transport(_)))
    ));
    let mut follow = client.follow_from(JOB, 0);
    assert!(matches!(
        follow.next().await,
        Some(Err(ClientError::Transport(_)))
    ));
}

#[tokio::test]
async fn a_body_that_is_no_event_stream_is_refused() {
    let (base, _log) = scripted(|_, _| json_response(200, &json!({"hello": "world"}))).await;
    let client = client_of(&base);
    let mut events = client.lifecycle_events(Some(0), None);
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::Stream(_)))
    ));
}

#[tokio::test]
async fn invalid_job_ids_are_refused_on_the_first_read() {
    let client = client_of("http://127.0.0.1:9");
    let mut events = client.job_events("..", 0);
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::InvalidJobId(id))) if id == ".."
    ));
    assert!(events.next().await.is_none());
}

/// A resume the server answers `204 No Content` (the job ended and every
/// byte was received; the `end` was lost with the connection): the stream
/// ends with the job's status from the status route.
#[tokio::test]
async fn a_resume_answered_no_content_ends_with_the_status() {
    let (base, log) = scripted(|n, seen| match n {
        0 => vec![
            sse_head(),
            event("status", 0, &status_view("running", None, 0)),
            output(0, "all\n"),
        ],
        1 => vec![b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_vec()],
        _ => {
            assert_eq!(seen.path, format!("/v1/jobs/{JOB}"));
            json_response(200, &status_view("exited", Some(2), 4))
        }
    })
    .await;
    let client = client_of(&base);
    let mut events = client.job_events(JOB, 0);
    let mut names = Vec::new();
    let mut last = None;
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        names.push(event.name());
        last = Some(event);
    }
    assert_eq!(names, ["status", "output", "end"]);
    let Some(JobStreamEvent::End(view)) = last else {
        panic!("no end: {last:?}")
    };
    assert_eq!((view.status, view.exit_code), (JobStatus::Exited, Some(2)));
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[1].header("last-event-id"), Some("4"));
}
