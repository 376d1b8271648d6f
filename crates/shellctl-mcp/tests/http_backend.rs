//! `HttpBackend` against a stub server: each call sends the request it was
//! given (window knobs included, not the client's), and failures keep the
//! server's code and message.
#![cfg(feature = "http-client")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shellctl_client::ShellctlClient;
use shellctl_mcp::{HttpBackend, ShellBackend};
use shellctl_proto::{
    DigestRequest, InputJobRequest, JobId, KeysRequest, ListJobsQuery, LogSearchQuery,
    RunJobRequest, SignalName, SignalRequest, SignalTarget, WaitForRequest,
};
use std::sync::{Arc, Mutex};

type Log = Arc<Mutex<Vec<(String, String, Value)>>>;

const JOB: &str = "05211530-abc";

fn job_result() -> Value {
    json!({"job_id": JOB, "done": false, "status": "running", "exit_code": null,
           "output_path": "/s/output.log", "output": "", "offset": 3, "truncated": false})
}

async fn record(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let target = match parts.uri.query() {
        Some(query) => format!("{}?{query}", parts.uri.path()),
        None => parts.uri.path().to_owned(),
    };
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log.lock()
        .unwrap()
        .push((parts.method.to_string(), target.clone(), body));
    let path = parts.uri.path();
    let answer = match path {
        "/v1/jobs/run" => job_result(),
        "/v1/jobs" => json!({"jobs": []}),
        p if p.ends_with("/input") || p.ends_with("/keys") => job_result(),
        p if p.ends_with("/wait-for") => {
            let mut answer = job_result();
            answer["reason"] = json!("timeout");
            answer["match"] = Value::Null;
            answer["waiting_for_input"] = Value::Null;
            answer
        }
        p if p.ends_with("/digest") => {
            json!({"text": "abc", "offset": 3, "omitted_bytes": 0, "omitted_lines": 0})
        }
        p if p.ends_with("/log/search") => json!({"matches": [], "truncated": false}),
        p if p.ends_with("/signal") => json!({"job_id": JOB, "status": "running", "done": false,
            "exit_code": null, "created_at": "2026-05-21T15:30:20Z", "started_at": null,
            "ended_at": null, "offset": 3}),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {"code": "job_not_found", "message": "job 05211530-abc not found"}})),
            )
                .into_response();
        }
    };
    axum::Json(answer).into_response()
}

async fn stub() -> (HttpBackend, Log) {
    let log: Log = Arc::default();
    let app = Router::new().fallback(record).with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = ShellctlClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_token(Some("tok".into()));
    (HttpBackend::new(client), log)
}

#[tokio::test]
async fn requests_go_out_as_given() {
    let (backend, log) = stub().await;
    let job = JobId::parse(JOB).unwrap();
    let mut run = RunJobRequest::new("make");
    run.label = Some("build".into());
    run.timeout = 0.001;
    run.output_limit = 1;
    run.idle_flush_seconds = 0.0;
    backend.run(run).await.unwrap();
    backend
        .input(
            job,
            InputJobRequest {
                text: "y\n".into(),
                offset: 3,
                timeout: 0.001,
                output_limit: 1,
                idle_flush_seconds: 0.0,
            },
        )
        .await
        .unwrap();
    let mut keys = KeysRequest::new(vec!["Enter".into()], 3);
    keys.timeout = 0.001;
    keys.output_limit = 1;
    keys.idle_flush_seconds = 0.0;
    backend.keys(job, keys).await.unwrap();
    backend.wait_for(job, WaitForRequest::new(3)).await.unwrap();
    backend
        .digest(job, DigestRequest::new(3, 500))
        .await
        .unwrap();
    backend
        .search(
            job,
            LogSearchQuery {
                pattern: "a b".into(),
                limit: 4,
            },
        )
        .await
        .unwrap();
    backend
        .signal(
            job,
            SignalRequest {
                signal: SignalName::INT,
                target: SignalTarget::Foreground,
            },
        )
        .await
        .unwrap();
    backend
        .list(ListJobsQuery {
            label: Some("build".into()),
            ..ListJobsQuery::default()
        })
        .await
        .unwrap();

    let seen = log.lock().unwrap().clone();
    let targets: Vec<&str> = seen.iter().map(|(_, target, _)| target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/v1/jobs/run",
            "/v1/jobs/05211530-abc/input",
            "/v1/jobs/05211530-abc/keys",
            "/v1/jobs/05211530-abc/wait-for",
            "/v1/jobs/05211530-abc/digest",
            "/v1/jobs/05211530-abc/log/search?pattern=a+b&limit=4",
            "/v1/jobs/05211530-abc/signal",
            "/v1/jobs?limit=100&label=build",
        ]
    );
    assert_eq!(
        seen[0].2,
        json!({"script": "make", "label": "build", "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(
        seen[1].2,
        json!({"text": "y\n", "offset": 3, "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(
        seen[2].2,
        json!({"keys": ["Enter"], "offset": 3, "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(seen[4].2, json!({"offset": 3, "max_bytes": 500}));
}

#[tokio::test]
async fn failures_keep_the_servers_code_and_message() {
    let (backend, _log) = stub().await;
    let job = JobId::parse(JOB).unwrap();
    let err = backend.status(job).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("job_not_found"));
    assert_eq!(err.message, "job 05211530-abc not found");

    // Nothing listens on port 9 of loopback: no code, a transport message.
    let unreachable = HttpBackend::new(ShellctlClient::new("http://127.0.0.1:9").unwrap());
    let err = unreachable.status(job).await.unwrap_err();
    assert_eq!(err.code, None);
    assert!(err.message.contains("transport"), "{}", err.message);
}
