//! `GET /metrics` on a real server (real tmux, real SQLite): the families
//! move with jobs, waiters, streams and requests; route labels are
//! templates and no job id appears; the text parses with the Prometheus
//! client's own parser (from the venv `scripts/mcp-venv` makes,
//! scripts/test does); the route is behind the token and the site gates;
//! `shellctl metrics` prints it. And `serve --log-format json` writes JSON
//! lines on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use support::*;

const TOKEN: &str = "metrics-token";

fn server() -> TestServer {
    TestServer::start_with(Options {
        token: Some(TOKEN.into()),
        extra: Vec::new(),
    })
}

/// One scrape with the token; asserts 200 and the Prometheus text type.
async fn scrape(server: &TestServer) -> String {
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .bearer_auth(TOKEN)
        .timeout(HANG_GUARD)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as written),
/// a whole number as every sample asserted on here is; 0 when the series
/// is absent (a label set not used yet).
fn count(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{series} = {v}: not a count"))
        })
}

/// Scrapes until `series` is `wanted`: gauges follow requests the server
/// is handling, which no client event announces.
async fn scrape_until(server: &TestServer, series: &str, wanted: u64) -> String {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let text = scrape(server).await;
        if count(&text, series) == wanted {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never {wanted}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn id_of(result: &Value) -> String {
    result["job_id"].as_str().unwrap().to_owned()
}

/// An open SSE response and what it sent so far.
struct OpenStream {
    response: reqwest::Response,
    seen: String,
}

impl OpenStream {
    async fn open(server: &TestServer, path: &str) -> OpenStream {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        OpenStream {
            response,
            seen: String::new(),
        }
    }

    /// Reads until what was sent contains `needle`.
    async fn read_until(&mut self, needle: &str) {
        while !self.seen.contains(needle) {
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk())
                .await
                .expect("the stream stalled")
                .unwrap()
                .expect("the stream ended");
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Runs `script` and reads it to its end; returns its id and the bytes of
/// output its answers carried.
async fn run_to_end(server: &TestServer, script: &str) -> (String, usize) {
    let result = server.run(json!({"script": script})).await;
    let (output, _) = server.wait_done(&id_of(&result), 0).await;
    (
        id_of(&result),
        result["output"].as_str().unwrap().len() + output.len(),
    )
}

/// A long-poll wait on `job_id` from offset 0, in a task of its own.
fn spawn_waiter(
    server: &TestServer,
    job_id: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let url = format!("{}/v1/jobs/{job_id}/wait", server.base);
    let client = server.client.clone();
    tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(TOKEN)
            .json(&json!({"offset": 0, "timeout": 300, "idle_flush_seconds": 30}))
            .send()
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_jobs_waiters_streams_and_requests() {
    let server = server();
    let before = scrape(&server).await;
    assert_eq!(count(&before, "shellctl_job_starts_total"), 0);
    assert_eq!(count(&before, "shellctl_waiters"), 0);

    // Two jobs that end, read to their end.
    let (first, first_bytes) = run_to_end(&server, "echo one").await;
    let (second, second_bytes) = run_to_end(&server, "echo two; exit 3").await;
    // A job that waits for a line: a long-poll waiter and a stream on it.
    let reader = server
        .run(json!({"script": "read line; echo got $line", "timeout": 0.001}))
        .await;
    let reader_id = id_of(&reader);
    let waiter = spawn_waiter(&server, &reader_id);
    let mut stream = OpenStream::open(&server, &format!("/v1/jobs/{reader_id}/events")).await;
    stream.read_until("event: status").await;
    let mut lifecycle = OpenStream::open(&server, "/v1/events").await;
    lifecycle.read_until("id:").await;
    let during = scrape_until(&server, "shellctl_waiters", 1).await;
    assert_eq!(count(&during, "shellctl_streams{kind=\"job\"}"), 1);
    assert_eq!(count(&during, "shellctl_streams{kind=\"lifecycle\"}"), 1);
    assert_eq!(count(&during, "shellctl_jobs{status=\"running\"}"), 1);
    assert_eq!(count(&during, "shellctl_jobs{status=\"exited\"}"), 2);

    // The line ends the job: the waiter answers, the stream ends.
    server.type_line_through_tmux(&reader_id, "hi");
    let answer: Value = tokio::time::timeout(HANG_GUARD, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["done"], true, "{answer}");
    stream.read_until("event: end").await;
    assert!(stream.seen.contains("got hi"), "{}", stream.seen);
    drop(stream);
    // The lifecycle stream stays open until its client goes away.
    drop(lifecycle);
    scrape_until(&server, "shellctl_streams{kind=\"lifecycle\"}", 0).await;
    let after = scrape_until(&server, "shellctl_streams{kind=\"job\"}", 0).await;
    assert_eq!(count(&after, "shellctl_waiters"), 0);

    // Counters moved.
    assert_eq!(count(&after, "shellctl_job_starts_total"), 3);
    assert_eq!(count(&after, "shellctl_jobs{status=\"exited\"}"), 3);
    assert_eq!(count(&after, "shellctl_jobs{status=\"running\"}"), 0);
    assert_eq!(count(&after, "shellctl_job_duration_seconds_count"), 3);
    // The windows read above, and the stream's output event on top.
    let read = first_bytes + second_bytes + answer["output"].as_str().unwrap().len();
    let bytes = count(&after, "shellctl_output_bytes_total");
    assert!(bytes >= (read + "got hi".len()) as u64, "{bytes} < {read}");
    let requests = |route: &str, code: u16| {
        count(
            &after,
            &format!("shellctl_http_requests_total{{route=\"{route}\",code=\"{code}\"}}"),
        )
    };
    assert_eq!(requests("/v1/jobs/run", 200), 3);
    assert!(requests("/v1/jobs/{id}/wait", 200) >= 3, "{after}");
    assert!(requests("/metrics", 200) >= 2, "{after}");
    // Every start went over the control client (the default).
    assert_eq!(
        count(
            &after,
            "shellctl_tmux_command_duration_seconds_count{client=\"control\",command=\"new-session\"}"
        ),
        3,
        "{after}"
    );
    route_labels_hold_no_job_ids(&server, &[first, second, reader_id]).await;
}

/// Unmatched routes get one fixed label, matched ones their template, and
/// no job id shows anywhere; the Prometheus client's own parser reads the
/// scrape.
async fn route_labels_hold_no_job_ids(server: &TestServer, ids: &[String]) {
    let (status, _) = server.get(&format!("/v2/jobs/{}", ids[0])).await;
    assert_eq!(status, 404);
    let (status, _) = server.get(&format!("/v1/jobs/{}", ids[0])).await;
    assert_eq!(status, 200);
    let last = scrape(server).await;
    assert_eq!(
        count(
            &last,
            "shellctl_http_requests_total{route=\"unmatched\",code=\"404\"}"
        ),
        1
    );
    assert_eq!(
        count(
            &last,
            "shellctl_http_requests_total{route=\"/v1/jobs/{id}\",code=\"200\"}"
        ),
        1
    );
    for id in ids {
        assert!(!last.contains(id.as_str()), "{id} in:\n{last}");
    }
    let file = server.root.join("scrape.txt");
    std::fs::write(&file, &last).unwrap();
    run_python_script(
        venv_python("mcp-venv", "scripts/mcp-venv"),
        "metrics/parse_metrics.py",
        &[file.to_str().unwrap()],
        "metrics parse ok",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_client_went_away_is_no_longer_counted() {
    let server = server();
    let reader = server
        .run(json!({"script": "read line", "timeout": 0.001}))
        .await;
    let waiter = spawn_waiter(&server, &id_of(&reader));
    scrape_until(&server, "shellctl_waiters", 1).await;
    let mut stream =
        OpenStream::open(&server, &format!("/v1/jobs/{}/events", id_of(&reader))).await;
    stream.read_until("event: status").await;
    scrape_until(&server, "shellctl_streams{kind=\"job\"}", 1).await;
    // Both clients hang up while the job still runs.
    waiter.abort();
    drop(stream);
    scrape_until(&server, "shellctl_waiters", 0).await;
    let text = scrape_until(&server, "shellctl_streams{kind=\"job\"}", 0).await;
    assert_eq!(count(&text, "shellctl_jobs{status=\"running\"}"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_pass_the_site_gates() {
    let server = server();
    let url = format!("{}/metrics", server.base);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    for (request, expected) in [
        (server.client.get(&url), (401, "unauthorized")),
        (
            server.client.get(&url).bearer_auth("wrong"),
            (401, "unauthorized"),
        ),
        (
            server
                .client
                .get(&url)
                .bearer_auth(TOKEN)
                .header("origin", "http://evil.example.com"),
            (403, "cross_origin"),
        ),
        (
            server
                .client
                .get(&url)
                .bearer_auth(TOKEN)
                .header("sec-fetch-site", "cross-site"),
            (403, "cross_origin"),
        ),
        (
            server
                .client
                .get(&url)
                .bearer_auth(TOKEN)
                .header("host", format!("evil.example.com:{port}")),
            (403, "host_not_allowed"),
        ),
    ] {
        let (status, body) = server.send(request).await;
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            expected,
            "{body}"
        );
        assert!(!body.to_string().contains("shellctl_"), "{body}");
    }
    // Refusals are counted under the route they were refused on.
    let text = scrape(&server).await;
    assert_eq!(
        count(
            &text,
            "shellctl_http_requests_total{route=\"/metrics\",code=\"401\"}"
        ),
        2
    );
    assert_eq!(
        count(
            &text,
            "shellctl_http_requests_total{route=\"/metrics\",code=\"403\"}"
        ),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shellctl_metrics_prints_the_scrape() {
    let server = server();
    server.run(json!({"script": "true"})).await;
    let mut command = cli(&server);
    command.arg("metrics");
    let output = blocking(command).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("# TYPE shellctl_jobs gauge"), "{stdout}");
    assert_eq!(count(&stdout, "shellctl_job_starts_total"), 1);
    // Without the token: the API error, as every client command reports it.
    let mut command = cli(&server);
    command.arg("metrics").env_remove("SHELLCTL_AUTH_TOKEN");
    let output = blocking(command).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(stderr["error"]["code"], "unauthorized");
}

/// A `serve` with `--log-format json` whose stderr the test reads; killed,
/// with its tmux server, when dropped.
struct JsonLoggingServer {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for JsonLoggingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_json_object_per_line_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("home")).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--state-dir")
        .arg(root.join("state"))
        .arg("--runtime-dir")
        .arg(root.join("run"))
        .env("HOME", root.join("home"))
        .env_remove("SHELLCTL_AUTH_TOKEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = JsonLoggingServer {
        child,
        socket: root.join("run").join("tmux.sock"),
        _dir: dir,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("shellctl listening on ")
        .unwrap()
        .to_owned();
    // Every stderr line, read on a thread of its own, until the one that
    // logs the request below.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let mut seen = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|err| panic!("{err}; stderr so far: {seen:#?}"));
        let object: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("not a JSON line: {line:?}; before it: {seen:#?}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        assert!(object["fields"].is_object(), "{line}");
        seen.push(line);
        if object["fields"]["message"] == "request" && object["fields"]["path"] == "/healthz" {
            assert_eq!(object["level"], "INFO");
            assert_eq!(object["fields"]["status"], 200);
            break;
        }
    }
    // The start-up line came first, as JSON too.
    assert!(
        seen.iter().any(|line| line.contains("shellctl serving")),
        "{seen:#?}"
    );
    drop(server);
}
