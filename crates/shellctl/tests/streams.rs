//! The push routes against a real server: a job's output stream (order,
//! `end`, resuming with `Last-Event-ID` across a kill -9 and restart, a
//! stalled reader's bounded cost) and the lifecycle event stream (durable
//! seqs, transitions committed while the server was down).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;
use support::*;

/// One Server-Sent Event as the test reads it.
#[derive(Debug, Clone)]
struct SseEvent {
    name: String,
    id: Option<String>,
    data: Value,
}

/// A minimal SSE reader over a streaming response: enough for the
/// server's own framing (`event:`, `id:`, one `data:` line, comments).
struct SseReader {
    response: reqwest::Response,
    /// Bytes, not text: a chunk may end inside a character.
    buffer: Vec<u8>,
}

impl SseReader {
    async fn open(server: &TestServer, path: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = server
            .client
            .get(format!("{}{path}", server.base))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event; `None` when the server closed the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(bytes).unwrap();
                let mut event = SseEvent {
                    name: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        name.clone_into(&mut event.name);
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        event.id = Some(id.to_owned());
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).unwrap();
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue; // a keep-alive comment
            }
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk())
                .await
                .expect("the stream went silent")
                .unwrap()?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Events up to and including the first one `stop` accepts.
    async fn until(&mut self, stop: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await.expect("the stream closed early");
            let done = stop(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

fn id_of(result: &Value) -> String {
    result["job_id"].as_str().unwrap().to_owned()
}

/// The output carried by `events`, checking that each chunk starts where
/// the last one ended and that its id is the offset after it.
fn joined_output(events: &[SseEvent], mut offset: u64) -> (String, u64) {
    let mut text = String::new();
    for event in events.iter().filter(|e| e.name == "output") {
        assert_eq!(event.data["offset"], offset, "{event:?}");
        let chunk = event.data["text"].as_str().unwrap();
        offset += chunk.len() as u64;
        assert_eq!(event.id.as_deref(), Some(offset.to_string().as_str()));
        text.push_str(chunk);
    }
    (text, offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stream_delivers_the_lines_in_order_then_end() {
    let server = TestServer::start();
    let job = server
        .run(json!({"script": "echo one; echo two; echo three; exit 4", "timeout": 0.01}))
        .await;
    let id = id_of(&job);
    let mut stream = SseReader::open(&server, &format!("/v1/jobs/{id}/events"), None).await;
    let events = stream.until(|e| e.name == "end").await;
    // A live job's stream opens with its status; an ended job's status
    // comes after its output (the job may have ended by now).
    assert!(
        events[0].name == "status" || events[0].name == "output",
        "{events:?}"
    );
    let (text, offset) = joined_output(&events, 0);
    assert_eq!(text, "one\ntwo\nthree\n");
    let end = events.last().unwrap();
    assert_eq!(
        (
            &end.data["status"],
            &end.data["exit_code"],
            &end.data["offset"]
        ),
        (&json!("exited"), &json!(4), &json!(offset))
    );
    assert_eq!(end.id.as_deref(), Some(offset.to_string().as_str()));
    // The terminal status is announced once, right before `end`.
    let before_end = &events[events.len() - 2];
    assert_eq!(
        (before_end.name.as_str(), &before_end.data["status"]),
        ("status", &json!("exited"))
    );
    assert!(stream.next().await.is_none(), "the stream closes after end");
    // A client resuming after `end` is told there is nothing more.
    let resumed = server
        .client
        .get(format!("{}/v1/jobs/{id}/events", server.base))
        .header("Last-Event-ID", offset.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_after_a_crash_and_restart_yields_every_byte_once() {
    let mut server = TestServer::start();
    let _keep = std::mem::take(server.dir_mut());
    let job = server
        .run(json!({
            "script": "echo first; read go; echo second; echo third; exit 0",
            "timeout": 0.01
        }))
        .await;
    let id = id_of(&job);
    let mut stream = SseReader::open(&server, &format!("/v1/jobs/{id}/events"), None).await;
    let first = stream
        .until(|e| e.name == "output" && e.data["text"].as_str().unwrap().contains("first\n"))
        .await;
    let (before, last_id) = joined_output(&first, 0);
    drop(stream);
    server.kill9();
    // While no server runs, the job goes on; answer its read through tmux.
    server.type_line_through_tmux(&id, "go");
    let restarted = server.restart();
    // `offset=0` is overridden by the header: nothing is sent twice.
    let mut resumed = SseReader::open(
        &restarted,
        &format!("/v1/jobs/{id}/events?offset=0"),
        Some(&last_id.to_string()),
    )
    .await;
    let rest = resumed.until(|e| e.name == "end").await;
    let (after, end_offset) = joined_output(&rest, last_id);
    let (whole, _) = restarted.wait_done(&id, 0).await;
    assert_eq!(format!("{before}{after}"), whole);
    assert_eq!(whole, "first\ngo\nsecond\nthird\n");
    assert_eq!(rest.last().unwrap().data["offset"], end_offset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_resume_point_is_refused_before_the_stream_starts() {
    let server = TestServer::start();
    let job = server.run(json!({"script": "echo hi", "timeout": 5})).await;
    let id = id_of(&job);
    let past_end = server
        .get(&format!("/v1/jobs/{id}/events?offset=999"))
        .await;
    assert_eq!(
        (past_end.0, &past_end.1["error"]["code"]),
        (400, &json!("invalid_offset"))
    );
    let bad_header = server
        .send(
            server
                .client
                .get(format!("{}/v1/jobs/{id}/events", server.base))
                .header("Last-Event-ID", "abc"),
        )
        .await;
    assert_eq!(
        (bad_header.0, &bad_header.1["error"]["code"]),
        (422, &json!("validation_error"))
    );
    let unknown = server.get("/v1/jobs/01010101-zzz/events").await;
    assert_eq!(unknown.0, 404);
    let bad_query = server.get("/v1/events?since=-1").await;
    assert_eq!(bad_query.0, 422);
}

/// Jobs' statuses in the order the lifecycle stream gave them.
fn transitions(events: &[SseEvent]) -> HashMap<String, Vec<(String, Value)>> {
    let mut by_job: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    let mut last_seq = 0;
    for event in events {
        assert_eq!(event.name, "job");
        let seq = event.data["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "seqs increase: {events:?}");
        assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()));
        last_seq = seq;
        by_job
            .entry(event.data["job_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                event.data["status"].as_str().unwrap().to_owned(),
                event.data["exit_code"].clone(),
            ));
    }
    by_job
}

fn statuses(list: &[(&str, Value)]) -> Vec<(String, Value)> {
    list.iter()
        .map(|(status, code)| ((*status).to_owned(), code.clone()))
        .collect()
}

/// Waits until the job's row, read straight from SQLite (no server
/// running), has ended.
fn wait_for_committed_exit(root: &std::path::Path, id: &str) -> String {
    let db = rusqlite::Connection::open(root.join("state/shellctl.db")).unwrap();
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        let status: String = db
            .query_row("SELECT status FROM jobs WHERE job_id = ?1", [id], |row| {
                row.get(0)
            })
            .unwrap();
        if status != "running" {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job side never committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_cover_three_jobs_and_an_exit_made_while_the_server_was_down() {
    let mut server = TestServer::start();
    let root = server.root.clone();
    let _keep = std::mem::take(server.dir_mut());
    // A live subscriber from now on sees the new jobs pushed.
    let mut live = SseReader::open(&server, "/v1/events", None).await;
    let quick = id_of(
        &server
            .run(json!({"script": "exit 3", "timeout": 30, "label": "trio"}))
            .await,
    );
    let sleeper = id_of(
        &server
            .run(json!({"script": "sleep 600", "timeout": 0.01}))
            .await,
    );
    server
        .status_until(&sleeper, |s| s["status"] == "running")
        .await;
    let (status, _) = server
        .post(&format!("/v1/jobs/{sleeper}/terminate"), json!({}))
        .await;
    assert_eq!(status, 200);
    let reader = id_of(
        &server
            .run(json!({"script": "read go; exit 5", "timeout": 0.01}))
            .await,
    );
    server
        .status_until(&reader, |s| s["status"] == "running")
        .await;
    let pushed = live
        .until(|e| e.data["job_id"] == reader.as_str() && e.data["status"] == "running")
        .await;
    let pushed = transitions(&pushed);
    // A job this quick may end before the server marks it running.
    let mut quick_statuses = pushed[&quick].clone();
    quick_statuses.retain(|(status, _)| status != "running");
    assert_eq!(
        quick_statuses,
        statuses(&[("created", json!(null)), ("exited", json!(3))])
    );
    assert_eq!(
        pushed[&sleeper],
        statuses(&[
            ("created", json!(null)),
            ("running", json!(null)),
            ("terminated", json!(null))
        ])
    );
    drop(live);

    server.kill9();
    server.type_line_through_tmux(&reader, "go");
    assert_eq!(wait_for_committed_exit(&root, &reader), "exited");
    let restarted = server.restart();
    let mut replay = SseReader::open(&restarted, "/v1/events?since=0", None).await;
    let events = replay
        .until(|e| e.data["job_id"] == reader.as_str() && e.data["status"] == "exited")
        .await;
    let by_job = transitions(&events);
    assert_eq!(by_job[&quick], pushed[&quick]);
    assert_eq!(by_job[&sleeper], pushed[&sleeper]);
    assert_eq!(
        by_job[&reader],
        statuses(&[
            ("created", json!(null)),
            ("running", json!(null)),
            ("exited", json!(5))
        ])
    );
    let quick_event = events
        .iter()
        .find(|e| e.data["job_id"] == quick.as_str())
        .unwrap();
    assert_eq!(quick_event.data["label"], "trio");
    let at = quick_event.data["at"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );

    resume_filter_and_delete(&restarted, &events, &quick).await;
}

/// On a replayed lifecycle log: resuming after the second event skips
/// exactly the first two; a label filter keeps one job's events; a delete
/// is an event too.
async fn resume_filter_and_delete(server: &TestServer, events: &[SseEvent], quick: &str) {
    let second = events[1].data["seq"].to_string();
    let mut resumed = SseReader::open(server, "/v1/events?since=0", Some(&second)).await;
    let first_resumed = resumed.next().await.unwrap();
    assert_eq!(first_resumed.data["seq"], events[2].data["seq"]);
    let mut labelled = SseReader::open(server, "/v1/events?since=0&label=trio", None).await;
    let events_of_others = events.iter().filter(|e| e.data["job_id"] != quick).count();
    assert!(events_of_others > 0, "the filter has something to drop");
    let trio = labelled.until(|e| e.data["status"] == "exited").await;
    assert!(trio.iter().all(|e| e.data["job_id"] == quick));
    let (status, _) = server.delete(&format!("/v1/jobs/{quick}")).await;
    assert_eq!(status, 200);
    let deleted = labelled.next().await.unwrap();
    assert_eq!(
        (
            &deleted.data["job_id"],
            &deleted.data["status"],
            &deleted.data["label"]
        ),
        (&json!(quick), &json!("deleted"), &json!("trio"))
    );
}

/// A raw connection to the job's stream that has read the response head
/// and reads nothing more until the test says so.
fn stalled_reader(server: &TestServer, id: &str) -> std::net::TcpStream {
    let address = server.base.strip_prefix("http://").unwrap();
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    write!(
        socket,
        "GET /v1/jobs/{id}/events HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let read = socket.read(&mut head).unwrap();
    assert!(head[..read].starts_with(b"HTTP/1.1 200"));
    socket
}

/// The server's resident memory, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_costs_the_server_bounded_memory() {
    const TOTAL: u64 = 64 * 1024 * 1024;
    let server = TestServer::start();
    // A warm-up stream, so the baseline includes the stream machinery.
    let warm = server
        .run(json!({"script": "echo warm", "timeout": 5}))
        .await;
    let mut warm_stream =
        SseReader::open(&server, &format!("/v1/jobs/{}/events", id_of(&warm)), None).await;
    warm_stream.until(|e| e.name == "end").await;
    let job = server
        .run(json!({
            "script": format!("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {TOTAL}; echo; read hold"),
            "timeout": 0.01
        }))
        .await;
    let id = id_of(&job);
    let baseline = rss_kib(server.child.id());
    let mut socket = stalled_reader(&server, &id);
    // The job writes everything while the reader reads nothing.
    let written = server
        .status_until(&id, |s| s["offset"].as_u64().unwrap() > TOTAL)
        .await;
    let grown_kib = rss_kib(server.child.id()).saturating_sub(baseline);
    eprintln!("server RSS grew by {grown_kib} KiB from {baseline} KiB");
    assert!(
        grown_kib < 32 * 1024,
        "the server grew by {grown_kib} KiB while one reader stalled on {} bytes",
        written["offset"]
    );
    // Nothing was dropped: the stalled reader still gets every byte, up to
    // an event whose id is the whole log's size.
    let size = written["offset"].as_u64().unwrap();
    socket.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    let mut carry = String::new();
    let mut last_id = 0u64;
    while last_id < size {
        let n = socket.read(&mut buffer).unwrap();
        assert!(n > 0, "the stream closed at id {last_id}");
        carry.push_str(&String::from_utf8_lossy(&buffer[..n]));
        // Whole lines only; the unfinished one waits for the next read.
        let cut = carry.rfind('\n').map_or(0, |at| at + 1);
        for line in carry[..cut].lines() {
            if let Some(id) = line.strip_prefix("id: ") {
                last_id = last_id.max(id.trim().parse().unwrap());
            }
        }
        carry.drain(..cut);
    }
    assert_eq!(last_id, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_carries_keep_alive_comments() {
    let server = TestServer::start();
    let job = server
        .run(json!({"script": "read hold", "timeout": 0.01}))
        .await;
    let id = id_of(&job);
    let mut response = server
        .client
        .get(format!("{}/v1/jobs/{id}/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-cache"
    );
    let mut seen = String::new();
    // The job prints nothing: after its status, only a keep-alive comes.
    while !seen.contains("\n: keep-alive\n") {
        let chunk = tokio::time::timeout(HANG_GUARD, response.chunk())
            .await
            .expect("no keep-alive within the hang guard")
            .unwrap()
            .expect("the stream closed");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.starts_with("event: status\n"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stopped_reading_does_not_hold_up_shutdown() {
    let mut server = TestServer::start();
    let job = server
        .run(json!({
            "script": "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 16000000; read hold",
            "timeout": 0.01
        }))
        .await;
    let id = id_of(&job);
    let socket = stalled_reader(&server, &id);
    // Far more output than the socket buffers hold, so the server's
    // writes are blocked when it is told to stop.
    server
        .status_until(&id, |s| s["offset"].as_u64().unwrap() >= 16_000_000)
        .await;
    server.sigterm();
    let deadline = std::time::Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit with a stalled stream open"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    drop(socket);
}
