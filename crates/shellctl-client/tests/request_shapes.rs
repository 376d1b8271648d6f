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
use shellctl_proto::JobStatus;
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

fn job_result(done: bool, output: &str, offset: u64) -> Value {
    json!({"job_id": JOB, "done": done, "status": if done {"exited"} else {"running"}, "exit_code": if done {json!(0)} else {Value::Null},
           "output_path": "/s/output.log", "output": output, "offset": offset, "truncated": false})
}

fn view() -> Value {
    json!({"job_id": JOB, "status": "running", "done": false, "exit_code": null, "created_at": "2026-05-21T15:30:20Z",
           "started_at": null, "ended_at": null, "offset": 0})
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
        ("GET", "/v1/jobs") => {
            json!({"jobs": [{"job_id": JOB, "status": "running", "created_at": "2026-05-21T15:30:20Z", "started_at": null, "ended_at": null}]})
        }
        ("GET", "/v1/jobs/05211530-nope") => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {"code": "job_not_found", "message": "no"}})),
            )
                .into_response();
        }
        ("GET", _) | ("POST", _) => view(),
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
