//! The SDK's requests on the agent routes (detail, wait-for, log search,
//! digest, the new `run` fields and the label filter of `list`), as a stub
//! server sees them, and its decoding of their answers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shellctl_client::{ClientError, RunOptions, ShellctlClient};
use shellctl_proto::{
    DigestRequest, JobStatus, ListJobsQuery, WaitForRequest, WaitReason, WaitUntil,
};
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

fn detail() -> Value {
    json!({"job_id": JOB, "status": "running", "done": false, "exit_code": null,
           "created_at": "2026-05-21T15:30:20Z", "started_at": "2026-05-21T15:30:20Z", "ended_at": null,
           "offset": 12, "label": "build", "idempotency_key": null, "cwd": "/tmp", "script": "make",
           "terminal": {"cols": 120, "rows": 80}, "failure_reason": null, "end_reason": null,
           "output_bytes": 12, "max_runtime_seconds": 60.0, "idle_timeout_seconds": null, "pid": 4242})
}

fn wait_for_result() -> Value {
    json!({"job_id": JOB, "done": false, "status": "running", "exit_code": null,
           "output_path": "/s/output.log", "output": "ready on :8080\n", "offset": 40, "truncated": false,
           "reason": "matched", "match": {"offset": 26, "text": "ready"},
           "waiting_for_input": null})
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
        ("POST", "/v1/jobs/run") => {
            if seen.body["idempotency_key"] == "clash" {
                return (
                    StatusCode::CONFLICT,
                    axum::Json(json!({"error": {"code": "idempotency_conflict",
                                                "message": "key clash names another script"}})),
                )
                    .into_response();
            }
            json!({"job_id": JOB, "done": false, "status": "running", "exit_code": null,
                   "output_path": "/s/output.log", "output": "", "offset": 0, "truncated": false})
        }
        ("GET", p) if p.ends_with("/detail") => detail(),
        ("POST", p) if p.ends_with("/wait-for") => wait_for_result(),
        ("GET", p) if p.ends_with("/log/search") => json!({
            "matches": [{"offset": 7, "line_number": 2, "line": "error: boom"}],
            "truncated": true
        }),
        ("POST", p) if p.ends_with("/digest") => json!({
            "text": "head\n[… 3 lines (120 bytes) omitted …]\ntail\n",
            "offset": 900, "omitted_bytes": 120, "omitted_lines": 3
        }),
        ("GET", "/v1/jobs") => json!({"jobs": []}),
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

fn client(base: &str) -> ShellctlClient {
    ShellctlClient::new(base)
        .unwrap()
        .with_token(Some("tok".into()))
        .with_output_limit(100)
        .with_idle_flush_seconds(0.1)
}

#[tokio::test]
async fn agent_routes_send_their_request_shapes() {
    let (base, log) = stub().await;
    let client = client(&base);

    let detail = client.detail(JOB).await.unwrap();
    assert_eq!(
        (detail.label.as_deref(), detail.pid, detail.offset),
        (Some("build"), Some(4242), 12)
    );

    let mut wait = WaitForRequest::new(12);
    wait.pattern = Some("ready|listening".into());
    wait.until = Some(vec![WaitUntil::Exit, WaitUntil::Match, WaitUntil::Input]);
    wait.timeout = 7.5;
    wait.output_limit = 1_048_576;
    let waited = client.wait_for(JOB, &wait).await.unwrap();
    assert_eq!(waited.reason, WaitReason::Matched);
    assert_eq!(waited.pattern_match.as_ref().unwrap().offset, 26);
    assert_eq!(waited.result.offset, 40);

    let found = client.search_log(JOB, "error", Some(5)).await.unwrap();
    assert!(found.truncated);
    assert_eq!(found.matches[0].line_number, 2);
    client.search_log(JOB, "x", None).await.unwrap();

    let digest = client
        .digest(
            JOB,
            &DigestRequest {
                offset: 12,
                max_bytes: 4000,
                end_offset: Some(40),
            },
        )
        .await
        .unwrap();
    assert_eq!((digest.offset, digest.omitted_lines), (900, 3));
    client
        .digest(JOB, &DigestRequest::new(0, 16_000))
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
    assert_eq!(line(0), ("GET", "/v1/jobs/05211530-abc/detail", ""));
    assert_eq!(line(1), ("POST", "/v1/jobs/05211530-abc/wait-for", ""));
    // Sent as given: the request's window, not the client's 100 bytes.
    assert_eq!(
        seen[1].body,
        json!({"offset": 12, "pattern": "ready|listening", "until": ["exit", "match", "input"],
               "timeout": 7.5, "output_limit": 1_048_576, "idle_flush_seconds": 0.5})
    );
    assert_eq!(
        line(2),
        (
            "GET",
            "/v1/jobs/05211530-abc/log/search",
            "pattern=error&limit=5"
        )
    );
    assert_eq!(
        line(3),
        ("GET", "/v1/jobs/05211530-abc/log/search", "pattern=x")
    );
    assert_eq!(line(4), ("POST", "/v1/jobs/05211530-abc/digest", ""));
    assert_eq!(
        seen[4].body,
        json!({"offset": 12, "max_bytes": 4000, "end_offset": 40})
    );
    // No end offset: the field is left out, so the log's end applies.
    assert_eq!(seen[5].body, json!({"offset": 0, "max_bytes": 16_000}));
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some("Bearer tok")));
}

#[tokio::test]
async fn a_search_pattern_survives_the_query_string() {
    let (base, log) = stub().await;
    let client = client(&base);
    let patterns = [
        r"a+b & c=d #e %f",
        r"^\s*error\[E\d+\]: (.*)$",
        "é ü 日本 /?x",
        "+",
    ];
    for pattern in patterns {
        client.search_log(JOB, pattern, Some(3)).await.unwrap();
    }
    let seen = log.lock().unwrap().clone();
    for (seen, pattern) in seen.iter().zip(patterns) {
        let pairs: Vec<(String, String)> = form_urlencoded_pairs(&seen.query).into_iter().collect();
        assert_eq!(
            pairs,
            [
                ("pattern".to_owned(), pattern.to_owned()),
                ("limit".to_owned(), "3".to_owned())
            ],
            "sent {:?}",
            seen.query
        );
        assert_eq!(seen.path, "/v1/jobs/05211530-abc/log/search");
    }
}

/// Decodes a query string as a server does (`application/x-www-form-urlencoded`:
/// `+` is a space, `%XX` a byte).
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |raw: &str| {
                percent_encoding::percent_decode_str(&raw.replace('+', " "))
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (decode(name), decode(value))
        })
        .collect()
}

#[tokio::test]
async fn run_sends_the_new_fields_only_when_set() {
    let (base, log) = stub().await;
    let client = client(&base);
    client
        .run(
            "make",
            RunOptions {
                label: Some("build".into()),
                idempotency_key: Some("build-1".into()),
                max_runtime_seconds: Some(600.0),
                idle_timeout_seconds: Some(30.0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.run("true", RunOptions::default()).await.unwrap();
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen[0].body,
        json!({"script": "make", "label": "build", "idempotency_key": "build-1",
               "max_runtime_seconds": 600.0, "idle_timeout_seconds": 30.0,
               "timeout": 30.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
    assert_eq!(
        seen[1].body,
        json!({"script": "true", "timeout": 30.0, "output_limit": 100, "idle_flush_seconds": 0.1})
    );
}

#[tokio::test]
async fn an_idempotency_conflict_is_an_api_error_with_its_code() {
    let (base, _log) = stub().await;
    let err = client(&base)
        .run(
            "other",
            RunOptions {
                idempotency_key: Some("clash".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Api { status: 409, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("idempotency_conflict"));
}

#[tokio::test]
async fn list_filters_by_label_and_keeps_the_old_form() {
    let (base, log) = stub().await;
    let client = client(&base);
    client
        .list_jobs(&ListJobsQuery {
            status: Some(JobStatus::Exited),
            label: Some("nightly build & test".into()),
            limit: 5,
        })
        .await
        .unwrap();
    client.list_jobs(&ListJobsQuery::default()).await.unwrap();
    client.list(None, None).await.unwrap();
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/v1/jobs");
    assert_eq!(
        form_urlencoded_pairs(&seen[0].query),
        [
            ("limit".to_owned(), "5".to_owned()),
            ("status".to_owned(), "exited".to_owned()),
            ("label".to_owned(), "nightly build & test".to_owned()),
        ]
    );
    assert_eq!(seen[1].query, "limit=100");
    assert_eq!(seen[2].query, "limit=100");
}

#[tokio::test]
async fn agent_routes_refuse_dot_segment_ids_without_sending() {
    let (base, log) = stub().await;
    let client = client(&base);
    for id in ["..", ".", "%2e%2E", ""] {
        let results = [
            client.detail(id).await.map(drop),
            client.wait_for(id, &WaitForRequest::new(0)).await.map(drop),
            client.search_log(id, "x", None).await.map(drop),
            client
                .digest(id, &DigestRequest::new(0, 256))
                .await
                .map(drop),
        ];
        for result in results {
            assert!(
                matches!(&result, Err(ClientError::InvalidJobId(got)) if got == id),
                "{id:?}: {result:?}"
            );
        }
    }
    assert!(log.lock().unwrap().is_empty());
    // An odd id stays one escaped segment.
    client.detail("a/b?c").await.unwrap();
    assert_eq!(log.lock().unwrap()[0].path, "/v1/jobs/a%2Fb%3Fc/detail");
}
