//! The SDK's requests, as a stub server sees them, and its decoding of
//! answers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shellctl_client::{ClientError, RunOptions, ShellctlClient};
use shellctl_proto::{EnvPreset, JobStatus, SignalName, SignalTarget};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

const JOB: &str = "05211530-abc";

const METRICS: &str =
    "# HELP shellctl_waiters Long-poll waits.\n# TYPE shellctl_waiters gauge\nshellctl_waiters 0\n";

fn job_result(done: bool, output: &str, offset: u64) -> Value {
    json!({"job_id": JOB, "done": done, "status": if done {"exited"} else {"running"}, "exit_code": if done {json!(0)} else {Value::Null},
           "output_path": "/s/output.log", "output": output, "offset": offset, "truncated": false})
}

fn view() -> Value {
    json!({"job_id": JOB, "status": "running", "done": false, "exit_code": null, "created_at": "2026-05-21T15:30:20Z",
           "started_at": null, "ended_at": null, "offset": 0})
}

fn screen_view() -> Value {
    json!({"job_id": JOB, "status": "running", "cols": 80, "rows": 2, "cursor": {"row": 1, "col": 10},
           "alternate_screen": false, "title": "", "lines": ["hello", "Password: "], "history": ["before"],
           "foreground": {"pid": 42, "command": "read x"},
           "input": {"waiting": true, "kind": "password", "since": "2026-05-21T15:30:21Z", "prompt": "Password: "}})
}

fn input_state_view() -> Value {
    json!({"job_id": JOB, "status": "running", "foreground": null,
           "input": {"waiting": false, "kind": null, "since": null, "prompt": null}})
}

async fn record(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        auth: parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    log.lock().unwrap().push(seen.clone());
    let answer = match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/metrics") if seen.auth.is_none() => {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"code": "unauthorized", "message": "no"}})),
            )
                .into_response();
        }
        ("GET", "/metrics") => {
            return (
                [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                METRICS,
            )
                .into_response();
        }
        ("GET", "/healthz") => json!({"status": "ok"}),
        ("POST", "/v1/jobs/run") => job_result(false, "a\n", 2),
        ("POST", p) if p.ends_with("/wait") => {
            let offset = seen.body["offset"].as_u64().unwrap();
            if offset < 4 {
                job_result(false, "b\n", 4)
            } else {
                job_result(true, "c\n", 6)
            }
        }
        ("POST", p) if p.ends_with("/input") => job_result(false, "", 2),
        ("GET", p) if p.ends_with("/tail") => job_result(false, "a\n", 2),
        ("POST", p) if p.ends_with("/keys") => job_result(false, "got x\n", 8),
        ("GET", p) if p.ends_with("/screen") => screen_view(),
        ("POST", p) if p.ends_with("/resize") => screen_view(),
        ("GET", p) if p.ends_with("/input-state") => input_state_view(),
        ("GET", "/v1/jobs") => {
            json!({"jobs": [{"job_id": JOB, "status": "running", "created_at": "2026-05-21T15:30:20Z", "started_at": null, "ended_at": null}]})
        }
        // Like the reference server, the stub has no event streams: a
        // follow falls back to waits.
        ("GET", p) if p.ends_with("/events") => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"detail": "Not Found"})),
            )
                .into_response();
        }
        ("GET", "/v1/jobs/05211530-nope") => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {"code": "job_not_found", "message": "no"}})),
            )
                .into_response();
        }
        ("GET" | "POST", _) => view(),
        ("DELETE", _) => json!({"job_id": JOB, "deleted": true}),
        _ => Value::Null,
    };
    axum::Json(answer).into_response()
}

async fn stub() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new().fallback(record).with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

#[tokio::test]
async fn every_route_sends_the_reference_request_shape() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base)
        .unwrap()
        .with_token(Some("tok".into()))
        .with_output_limit(100)
        .with_idle_flush_seconds(0.1);
    client.health().await.unwrap();
    let run = client
        .run(
            "echo a",
            RunOptions {
                cwd: Some("/tmp".into()),
                timeout: Some(5.0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.wait(JOB, 2, Some(3.0)).await.unwrap();
    client.input(JOB, "x\n", 2, None).await.unwrap();
    client.tail(JOB).await.unwrap();
    client.status(JOB).await.unwrap();
    client
        .list(Some(JobStatus::Running), Some(7))
        .await
        .unwrap();
    client.terminate(JOB, Some(1.5)).await.unwrap();
    client.delete(JOB, true, Some(2.0)).await.unwrap();
    assert_eq!(run.offset, 2);

    let seen = log.lock().unwrap().clone();
    let line = |i: usize| {
        (
            seen[i].method.as_str(),
            seen[i].path.as_str(),
            seen[i].query.as_str(),
        )
    };
    assert_eq!(line(0), ("GET", "/healthz", ""));
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer tok"));
    assert_eq!(line(1), ("POST", "/v1/jobs/run", ""));
    // No nulls for absent options, as the reference client sends.
    assert_eq!(
        seen[1].body,
        json!({"script": "echo a", "cwd": "/tmp", "timeout": 5.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(line(2), ("POST", "/v1/jobs/05211530-abc/wait", ""));
    assert_eq!(
        seen[2].body,
        json!({"offset": 2, "timeout": 3.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(
        seen[3].body,
        json!({"text": "x\n", "offset": 2, "timeout": 30.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(
        line(4),
        ("GET", "/v1/jobs/05211530-abc/log/tail", "output_limit=100")
    );
    assert_eq!(line(5), ("GET", "/v1/jobs/05211530-abc", ""));
    assert_eq!(line(6), ("GET", "/v1/jobs", "limit=7&status=running"));
    assert_eq!(line(7), ("POST", "/v1/jobs/05211530-abc/terminate", ""));
    assert_eq!(seen[7].body, json!({"grace_seconds": 1.5}));
    assert_eq!(
        line(8),
        (
            "DELETE",
            "/v1/jobs/05211530-abc",
            "force=true&grace_seconds=2"
        )
    );
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some("Bearer tok")));
}

#[tokio::test]
async fn terminal_routes_send_their_request_shapes() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base)
        .unwrap()
        .with_token(Some("tok".into()))
        .with_output_limit(100)
        .with_idle_flush_seconds(0.1);
    let screen = client.screen(JOB, 5).await.unwrap();
    assert_eq!(
        (screen.lines.len(), screen.input.prompt.as_deref()),
        (2, Some("Password: "))
    );
    let state = client.input_state(JOB).await.unwrap();
    assert!(!state.input.waiting);
    let keys = client.keys(JOB, ["x", "Enter"], 6, None).await.unwrap();
    assert_eq!(keys.offset, 8);
    client
        .keys(JOB, vec![String::from("C-c")], 8, Some(2.5))
        .await
        .unwrap();
    client
        .signal(JOB, SignalName::USR1, SignalTarget::Foreground)
        .await
        .unwrap();
    client
        .signal(JOB, SignalName::TERM, SignalTarget::Job)
        .await
        .unwrap();
    let resized = client.resize(JOB, 77, 12).await.unwrap();
    assert_eq!(resized.cols, 80, "the answer is the server's screen");
    client
        .run(
            "true",
            RunOptions {
                env_preset: Some(EnvPreset::Noninteractive),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .run(
            "true",
            RunOptions {
                env_preset: Some(EnvPreset::None),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let seen = log.lock().unwrap().clone();
    let line = |i: usize| {
        (
            seen[i].method.as_str(),
            seen[i].path.as_str(),
            seen[i].query.as_str(),
        )
    };
    assert_eq!(
        line(0),
        ("GET", "/v1/jobs/05211530-abc/screen", "history=5")
    );
    assert_eq!(line(1), ("GET", "/v1/jobs/05211530-abc/input-state", ""));
    assert_eq!(line(2), ("POST", "/v1/jobs/05211530-abc/keys", ""));
    assert_eq!(
        seen[2].body,
        json!({"keys": ["x", "Enter"], "offset": 6, "timeout": 30.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(
        seen[3].body,
        json!({"keys": ["C-c"], "offset": 8, "timeout": 2.5, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(line(4), ("POST", "/v1/jobs/05211530-abc/signal", ""));
    assert_eq!(
        seen[4].body,
        json!({"signal": "USR1", "target": "foreground"})
    );
    assert_eq!(seen[5].body, json!({"signal": "TERM", "target": "job"}));
    assert_eq!(line(6), ("POST", "/v1/jobs/05211530-abc/resize", ""));
    assert_eq!(seen[6].body, json!({"cols": 77, "rows": 12}));
    assert_eq!(line(7), ("POST", "/v1/jobs/run", ""));
    assert_eq!(seen[7].body["env_preset"], "noninteractive");
    assert_eq!(seen[8].body["env_preset"], "none");
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some("Bearer tok")));
}

#[tokio::test]
async fn follow_yields_chunks_until_done() {
    let (base, _log) = stub().await;
    let client = ShellctlClient::new(&base).unwrap().with_token(None);
    let first = client.run("x", RunOptions::default()).await.unwrap();
    let mut follow = client.follow(&first);
    let mut chunks = Vec::new();
    while let Some(chunk) = follow.next().await {
        chunks.push(chunk.unwrap().output);
    }
    assert_eq!(chunks, ["a\n", "b\n", "c\n"]);
    assert_eq!(follow.offset(), 6);
}

#[tokio::test]
async fn metrics_come_back_as_the_text_sent_with_the_token() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base)
        .unwrap()
        .with_token(Some("tok".into()));
    assert_eq!(client.metrics().await.unwrap(), METRICS);
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (
            seen.method.as_str(),
            seen.path.as_str(),
            seen.auth.as_deref()
        ),
        ("GET", "/metrics", Some("Bearer tok"))
    );
    let anonymous = ShellctlClient::new(&base).unwrap().with_token(None);
    let err = anonymous.metrics().await.unwrap_err();
    assert_eq!(err.code(), Some("unauthorized"), "{err:?}");
}

#[tokio::test]
async fn api_and_transport_errors_are_told_apart() {
    let (base, _log) = stub().await;
    let client = ShellctlClient::new(&base).unwrap().with_token(None);
    let err = client.status("05211530-nope").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Api { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("job_not_found"));
    // Nothing listens on port 9 of loopback.
    let unreachable = ShellctlClient::new("http://127.0.0.1:9").unwrap();
    assert!(matches!(
        unreachable.health().await,
        Err(ClientError::Transport(_))
    ));
}

/// Calls every route that takes a job id with `id`, in this order: wait,
/// input, tail, status, terminate, delete, a follow's first chunk (its
/// stream request, which the stub answers 404, then a wait), screen, input
/// state, keys, signal and resize.
async fn call_every_job_route(client: &ShellctlClient, id: &str) -> Vec<Result<(), ClientError>> {
    let mut follow = client.follow_from(id, 0);
    vec![
        client.wait(id, 0, Some(1.0)).await.map(drop),
        client.input(id, "x", 0, Some(1.0)).await.map(drop),
        client.tail(id).await.map(drop),
        client.status(id).await.map(drop),
        client.terminate(id, Some(1.0)).await.map(drop),
        client.delete(id, false, None).await.map(drop),
        follow.next().await.expect("a first chunk").map(drop),
        client.screen(id, 0).await.map(drop),
        client.input_state(id).await.map(drop),
        client.keys(id, ["Enter"], 0, Some(1.0)).await.map(drop),
        client
            .signal(id, SignalName::INT, SignalTarget::Foreground)
            .await
            .map(drop),
        client.resize(id, 80, 24).await.map(drop),
    ]
}

/// What the requests of each call of [`call_every_job_route`] add after
/// the id segment.
const JOB_ROUTE_TAILS: [&[&str]; 12] = [
    &["/wait"],
    &["/input"],
    &["/log/tail"],
    &[""],
    &["/terminate"],
    &[""],
    &["/events", "/wait"],
    &["/screen"],
    &["/input-state"],
    &["/keys"],
    &["/signal"],
    &["/resize"],
];

const DOT_SEGMENT_IDS: [&str; 9] = [
    "..", ".", "%2e%2e", "%2E%2e", ".%2e", "%2E.", "%2e", "%2E", "",
];

#[tokio::test]
async fn dot_segment_ids_are_refused_and_nothing_is_sent() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base).unwrap();
    for id in DOT_SEGMENT_IDS {
        for (result, tail) in call_every_job_route(&client, id)
            .await
            .iter()
            .zip(JOB_ROUTE_TAILS)
        {
            assert!(
                matches!(result, Err(ClientError::InvalidJobId(got)) if got == id),
                "{id:?} on {tail:?}: {result:?}"
            );
        }
    }
    let sent: Vec<_> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    assert!(sent.is_empty(), "sent {sent:?}");
}

/// Whatever the id, a job route either fails without sending anything or
/// sends its requests, each with the path `/v1/jobs/<one segment>` plus
/// the route's tail, the segment unescaping to the id. (The stub answers every
/// request with success, so a call that sent something succeeded.)
#[tokio::test]
async fn no_id_moves_a_request_off_its_route() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base).unwrap();
    let odd_ids = [
        JOB, "a/b", "a?b", "a#b", "a b", "../x", "x/..", "a\\b", "...", "a.b", "%2e%2e/x", "%252e",
        "\t", "é",
    ];
    for id in DOT_SEGMENT_IDS.into_iter().chain(odd_ids) {
        let results = call_every_job_route(&client, id).await;
        let sent: Vec<Seen> = log.lock().unwrap().drain(..).collect();
        let sent_by: Vec<&str> = results
            .iter()
            .zip(JOB_ROUTE_TAILS)
            .filter(|(result, _)| result.is_ok())
            .flat_map(|(_, tails)| tails.iter().copied())
            .collect();
        assert_eq!(
            sent.len(),
            sent_by.len(),
            "{id:?}: {results:?}, sent {sent:?}"
        );
        for (seen, tail) in sent.iter().zip(sent_by) {
            let path = &seen.path;
            let segment = path
                .strip_prefix("/v1/jobs/")
                .and_then(|rest| rest.strip_suffix(tail))
                .unwrap_or_else(|| panic!("{id:?} on {tail:?}: sent to {path:?}"));
            assert!(
                !segment.contains('/'),
                "{id:?} on {tail:?}: sent to {path:?}"
            );
            assert_eq!(
                unescape_segment(segment),
                id,
                "{id:?} on {tail:?}: sent to {path:?}"
            );
        }
    }
}

#[tokio::test]
async fn ordinary_and_odd_ids_become_one_escaped_segment() {
    let (base, log) = stub().await;
    let client = ShellctlClient::new(&base).unwrap();
    let cases = [
        (JOB, "05211530-abc"),
        ("a/b", "a%2Fb"),
        ("a?b#c d", "a%3Fb%23c%20d"),
        ("../x", "..%2Fx"),
        ("a\\b", "a%5Cb"),
        ("...", "..."),
        ("%2e%2e/x", "%252e%252e%2Fx"),
        ("é", "%C3%A9"),
    ];
    for (id, segment) in cases {
        client.status(id).await.unwrap();
        client.wait(id, 0, Some(1.0)).await.unwrap();
        let sent: Vec<String> = log.lock().unwrap().drain(..).map(|s| s.path).collect();
        assert_eq!(
            sent,
            [
                format!("/v1/jobs/{segment}"),
                format!("/v1/jobs/{segment}/wait")
            ],
            "{id:?}"
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
