//! The CLI on the push routes, run as a real process against a real
//! server: `shellctl events` prints lifecycle events as JSON lines, and
//! `run --follow` / `wait --follow` (which now read the job stream) print
//! the same output and exit with the same codes as before.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use support::*;

/// Sends SIGINT (what Ctrl-C sends) to `child`.
fn interrupt(child: &std::process::Child) {
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// The lines a child prints on stdout, read on a thread as they come.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_prints_lifecycle_events_as_json_lines() {
    let server = TestServer::start();
    let mut child = cli(&server)
        .args(["events", "--since", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let run = server
        .run(json!({"script": "echo hi; exit 4", "timeout": 0.2, "label": "streams-cli"}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    // Lines until both the created and the exited event of the job came.
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<Value> = Vec::new();
        while !["created", "exited"]
            .iter()
            .all(|status| seen.iter().any(|e| e["status"] == *status))
        {
            let line = lines
                .recv_timeout(HANG_GUARD)
                .expect("an event line before the hang guard");
            assert_eq!(line.trim(), line, "one compact line: {line:?}");
            seen.push(serde_json::from_str(&line).unwrap());
        }
        seen
    })
    .await
    .unwrap();
    for event in &seen {
        assert_eq!(event["job_id"], id.as_str(), "{event}");
        assert_eq!(event["label"], "streams-cli", "{event}");
        assert!(event["seq"].as_u64().unwrap() > 0, "{event}");
        assert!(event["at"].is_string(), "{event}");
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let exited = seen.iter().find(|e| e["status"] == "exited").unwrap();
    assert_eq!(exited["exit_code"], 4);
    // Ctrl-C ends it, with the interrupted code.
    interrupt(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filters_by_label() {
    let server = TestServer::start();
    server
        .run(json!({"script": "exit 0", "timeout": 0.2, "label": "other"}))
        .await;
    let run = server
        .run(json!({"script": "exit 2", "timeout": 0.2, "label": "mine"}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    let mut child = cli(&server)
        .args(["events", "--since", "0", "--label", "mine"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<Value> = Vec::new();
        while !seen.iter().any(|e| e["status"] == "exited") {
            let line = lines.recv_timeout(HANG_GUARD).expect("an event line");
            seen.push(serde_json::from_str(&line).unwrap());
        }
        seen
    })
    .await
    .unwrap();
    assert!(seen.iter().all(|e| e["job_id"] == id.as_str()), "{seen:?}");
    assert_eq!(seen[0]["status"], "created");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_against_no_server_fails_at_once_as_a_transport_error() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new(BIN);
    c.args(["events", "--base-url", &format!("http://127.0.0.1:{port}")])
        .env_remove("SHELLCTL_AUTH_TOKEN");
    let out = blocking(c).await;
    assert_eq!(out.status.code(), Some(3));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "transport_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follow_prints_the_output_and_exits_with_the_job_code() {
    let server = TestServer::start();
    let mut c = cli(&server);
    c.args([
        "run",
        "--follow",
        "echo one; sleep 0.2; printf 'twö\\n'; exit 7",
    ]);
    let out = blocking(c).await;
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "one\ntwö\n");
    assert_eq!(out.status.code(), Some(7));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Output larger than a stream chunk (64 KiB) comes whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follow_prints_long_output_whole() {
    let server = TestServer::start();
    let mut c = cli(&server);
    c.args(["run", "--follow", "seq 1 30000"]);
    let out = blocking(c).await;
    let expected: String = (1..=30000)
        .flat_map(|n| [n.to_string(), "\n".into()])
        .collect();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.len(), expected.len());
    assert!(printed == expected, "the output differs");
    assert_eq!(out.status.code(), Some(0));
}

/// `wait --follow` from an offset of an ended job prints the rest of its
/// output; a terminated job's code is 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_follow_from_an_offset_and_of_a_terminated_job() {
    let server = TestServer::start();
    let run = server
        .run(json!({"script": "echo first; echo second; exit 5", "timeout": 0.2}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    let (output, _) = server.wait_done(&id, 0).await;
    assert_eq!(output, "first\nsecond\n");
    let mut c = cli(&server);
    c.args(["wait", &id, "--offset", "6", "--follow"]);
    let out = blocking(c).await;
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "second\n");
    assert_eq!(out.status.code(), Some(5));

    let run = server
        .run(json!({"script": "echo up; sleep 1000", "timeout": 5}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{id}/terminate"),
            json!({"grace_seconds": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let mut c = cli(&server);
    c.args(["wait", &id, "--offset", "0", "--follow"]);
    let out = blocking(c).await;
    assert!(
        String::from_utf8(out.stdout).unwrap().starts_with("up\n"),
        "the output before the end"
    );
    assert_eq!(out.status.code(), Some(143));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_follow_of_an_unknown_job_is_a_job_not_found_error() {
    let server = TestServer::start();
    let mut c = cli(&server);
    c.args(["wait", "01010101-abc", "--follow"]);
    let out = blocking(c).await;
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "job_not_found");
}
