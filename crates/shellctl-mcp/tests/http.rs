//! The Streamable HTTP service mounted in an axum router the way the
//! server mounts it, spoken to as MCP clients (the Python SDK's
//! `streamablehttp_client` among them) speak: `initialize` opens a session
//! (`Mcp-Session-Id`), requests answer as SSE, `DELETE` ends the session.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::Router;
use common::{Fake, JOB};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shellctl_mcp::{CancellationToken, http_service};
use std::sync::Arc;
use std::time::Duration;

const ACCEPT: &str = "application/json, text/event-stream";

/// A server with the service at `/mcp`; its base URL and shutdown token.
async fn serve() -> (String, CancellationToken) {
    let shutdown = CancellationToken::new();
    let service = http_service(Arc::new(Fake::new()), shutdown.clone());
    let app = Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shutdown)
}

/// The JSON-RPC message answering `id` in an SSE (or JSON) response.
async fn answer(mut response: reqwest::Response, id: u64) -> Value {
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    if is_json {
        return response.json().await.unwrap();
    }
    let mut buffer = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .expect("the stream ended without an answer");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        for line in buffer.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(message) = serde_json::from_str::<Value>(data.trim())
                && message["id"] == id
            {
                return message;
            }
        }
    }
}

fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = client
        .post(url)
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .json(body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request
}

#[tokio::test]
async fn a_session_initializes_lists_calls_and_ends() {
    let (base, _shutdown) = serve().await;
    let url = format!("{base}/mcp");
    let client = reqwest::Client::new();

    let init = post(
        &client,
        &url,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let session = init
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let init = answer(init, 1).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "shellctl");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert!(init["result"]["capabilities"]["tools"].is_object());

    let initialized = post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(initialized.status(), StatusCode::ACCEPTED);

    let listed = post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .send()
    .await
    .unwrap();
    let listed = answer(listed, 2).await;
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 8);

    let called = post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "shell_wait", "arguments": {"job_id": JOB}}}),
    )
    .send()
    .await
    .unwrap();
    let called = answer(called, 3).await;
    assert_eq!(called["result"]["isError"], false);
    assert_eq!(called["result"]["structuredContent"]["job_id"], JOB);
    assert_eq!(called["result"]["structuredContent"]["offset"], 57);

    let failed = post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": {"name": "shell_wait", "arguments": {"job_id": "../etc"}}}),
    )
    .send()
    .await
    .unwrap();
    let failed = answer(failed, 4).await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");

    let ended = client
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let after = post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn any_host_passes_the_service_it_is_the_routers_job() {
    let (base, _shutdown) = serve().await;
    let response = post(
        &reqwest::Client::new(),
        &format!("{base}/mcp"),
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}),
    )
    .header("host", "shellctl.internal:8765")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn route_service_serves_the_exact_path_only() {
    let (base, _shutdown) = serve().await;
    let client = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}});
    for (path, status) in [
        ("/mcp", StatusCode::OK),
        ("/mcp/", StatusCode::NOT_FOUND),
        ("/mcp/x", StatusCode::NOT_FOUND),
    ] {
        let response = post(&client, &format!("{base}{path}"), None, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    // A GET without a session is the service's to refuse, not the router's.
    let response = client
        .get(format!("{base}/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::NOT_FOUND);
    assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn cancelling_the_shutdown_token_ends_open_event_streams() {
    let (base, shutdown) = serve().await;
    let url = format!("{base}/mcp");
    let client = reqwest::Client::new();
    let init = post(
        &client,
        &url,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}),
    )
    .send()
    .await
    .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    answer(init, 1).await;
    post(
        &client,
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    // The standalone stream a client keeps open for server messages.
    let mut stream = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream stayed open after the shutdown"
    );
}
