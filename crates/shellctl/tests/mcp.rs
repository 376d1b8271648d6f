//! The MCP tools driven by the official MCP SDK for Python (`mcp` from
//! `PyPI`) through an agent-like session: `shellctl mcp` on stdio, and the
//! server's own `/mcp` over Streamable HTTP. Needs the venv that
//! `scripts/mcp-venv` makes (scripts/test does).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use support::*;

fn mcp_python() -> PathBuf {
    venv_python("mcp-venv", "scripts/mcp-venv")
}

/// Runs the session script with `args`; asserts it reported success.
async fn agent_session(args: &[&str]) {
    run_python_script(mcp_python(), "mcp/agent_session.py", args, "mcp session ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_session_over_stdio_through_shellctl_mcp() {
    let server = TestServer::start_with(Options {
        token: Some("mcp-token".into()),
        extra: Vec::new(),
    });
    agent_session(&["stdio", BIN, &server.base, "mcp-token"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_session_over_http_at_slash_mcp() {
    let server = TestServer::start_with(Options {
        token: Some("mcp-token".into()),
        extra: Vec::new(),
    });
    agent_session(&["http", &server.base, "mcp-token"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_mcp_needs_the_token() {
    let server = TestServer::start_with(Options {
        token: Some("mcp-token".into()),
        extra: Vec::new(),
    });
    let response = reqwest::Client::new()
        .post(format!("{}/mcp", server.base))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

/// One JSON-RPC line to `shellctl mcp`'s stdin.
fn rpc_line(value: &serde_json::Value) -> String {
    format!("{value}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shellctl_mcp_starts_a_detached_server_when_none_answers() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let probe = reqwest::Client::new()
        .get("http://127.0.0.1:8765/healthz")
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    assert!(
        probe.is_err(),
        "something already answers at 127.0.0.1:8765; this test needs the default address free"
    );
    let home = tempfile::tempdir().unwrap();
    let mut mcp = Command::new(BIN)
        .arg("mcp")
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SHELLCTL_BASE_URL")
        .env_remove("SHELLCTL_AUTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = mcp.stdin.take().unwrap();
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}});
    let run = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "shell_run", "arguments": {"script": "echo from-the-started-server"}}});
    stdin.write_all(rpc_line(&initialize).as_bytes()).unwrap();
    let mut stdout = BufReader::new(mcp.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 1, "{line}");
    stdin
        .write_all(
            rpc_line(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .as_bytes(),
        )
        .unwrap();
    stdin.write_all(rpc_line(&run).as_bytes()).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 2, "{line}");
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "exited",
        "{line}"
    );
    assert!(line.contains("from-the-started-server"), "{line}");
    drop(stdin);
    let status = mcp.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut mcp.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    // The server outlives the MCP process, and said where it logs.
    let health = reqwest::get("http://127.0.0.1:8765/healthz").await.unwrap();
    let state = home.path().join(".local/state/shellctl");
    let serve_pid: i32 = log
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the log: {log}"));
    let _ = Command::new("kill").arg(serve_pid.to_string()).status();
    let _ = Command::new("tmux")
        .arg("-S")
        .arg(state.join("run/shellctl/tmux.sock"))
        .arg("kill-server")
        .status();
    assert_eq!(health.status().as_u16(), 200);
    assert!(log.contains("started"), "{log}");
    assert!(state.join("mcp-serve.log").exists(), "{log}");
}
