//! Reliability and security suite against a live server (run by
//! `scripts/reliability`, and by `scripts/test` in CI): bursts, leaks,
//! hostile input (some of it what a web page could send) and the
//! listen-address gate. Crash recovery (kill -9, SIGTERM, a killed tmux
//! server, a killed sanitizer) lives in `server_api.rs`; the gates against
//! web pages have their own cases in `cross_site.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_jobs_all_exit_zero_with_their_own_output() {
    let server = Arc::new(TestServer::start());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let result = server
                .run(json!({"script": format!("echo burst-{i}")}))
                .await;
            let id = result["job_id"].as_str().unwrap().to_owned();
            let (output, done) = server.wait_done(&id, 0).await;
            (i, output, done["status"].clone(), done["exit_code"].clone())
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        let (i, output, status, code) = tokio::time::timeout(HANG_GUARD * 4, task)
            .await
            .expect("burst hung")
            .unwrap();
        if (output.as_str(), &status, &code)
            != (format!("burst-{i}\n").as_str(), &json!("exited"), &json!(0))
        {
            failed.push((i, output, status, code));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 200 jobs went wrong: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Children of `pid` that are zombies.
fn zombie_children(pid: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&pid.to_string().as_str()) {
            zombies.push(child);
        }
    }
    zombies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sequential_jobs_leak_nothing() {
    let server = TestServer::start();
    let pid = server.child.id();
    let run_one = |i: usize| {
        let server = &server;
        async move {
            let result = server.run(json!({"script": format!("echo seq-{i}")})).await;
            let id = result["job_id"].as_str().unwrap().to_owned();
            let (output, done) = server.wait_done(&id, 0).await;
            assert_eq!(
                (output, done["exit_code"].clone()),
                (format!("seq-{i}\n"), json!(0))
            );
        }
    };
    for i in 0..10 {
        run_one(i).await; // warm up pools and lazily opened files
    }
    let files_before = open_files(pid);
    for i in 10..310 {
        run_one(i).await;
    }
    let files_after = open_files(pid);
    assert!(
        files_after <= files_before + 4,
        "open files grew from {files_before} to {files_after}"
    );
    // The monitor's tmux calls are reaped as they finish; give the last one
    // its moment, then there must be none left.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while !zombie_children(pid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "zombies: {:?}",
            zombie_children(pid)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sessions = server.tmux(&["list-sessions", "-F", "#{session_name}"]);
    let names = String::from_utf8_lossy(&sessions.stdout);
    let jobs: Vec<&str> = names
        .lines()
        .filter(|name| name.starts_with("shellctl-job-"))
        .collect();
    assert!(jobs.is_empty(), "job sessions left over: {jobs:?}");
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIELDS: &[&str] = &[
    "script",
    "cwd",
    "env",
    "terminal",
    "timeout",
    "output_limit",
    "idle_flush_seconds",
    "offset",
    "text",
    "grace_seconds",
    "cols",
    "rows",
    "bogus",
    "",
];

fn hostile_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 2 { 8 } else { 10 }) {
        0 => Value::Null,
        1 => json!(rng.next().is_multiple_of(2)),
        2 => json!(*rng.pick(&[
            0i64,
            -1,
            1,
            7,
            300,
            301,
            4096,
            4097,
            1_048_576,
            1_048_577,
            i64::MAX,
            i64::MIN
        ])),
        3 => json!(*rng.pick(&[0.0f64, -0.5, 0.001, 29.99, 300.0, 300.5, 1e308, -1e308])),
        4 => json!(*rng.pick(&[
            "",
            "~",
            "/",
            "/nonexistent",
            "../../etc",
            "\u{0}",
            "é🙂",
            "$(id)",
            "echo hi"
        ])),
        5 => json!("x".repeat(rng.below(3000))),
        6 => json!(rng.pick(FIELDS).to_string()),
        7 => json!(format!("{:x}", rng.next())),
        8 => Value::Array(
            (0..rng.below(4))
                .map(|_| hostile_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                map.insert(rng.pick(FIELDS).to_string(), hostile_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

fn hostile_body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => (0..rng.below(200))
            .map(|_| rng.next().to_le_bytes()[0])
            .collect(),
        1 => b"{\"script\": \"echo".to_vec(),
        2 => b"[]".to_vec(),
        _ => hostile_value(rng, 0).to_string().into_bytes(),
    }
}

fn hostile_query(rng: &mut Rng) -> String {
    (0..rng.below(4))
        .map(|_| {
            let key = rng.pick(&[
                "limit",
                "status",
                "output_limit",
                "force",
                "grace_seconds",
                "x",
                "%zz",
                "",
            ]);
            let value = rng.pick(&[
                "", "0", "-1", "1", "1001", "1048577", "nan", "inf", "running", "bogus", "true",
                "%FF", "1e400",
            ]);
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
async fn hostile_requests_never_get_a_5xx_or_kill_the_server() {
    let server = TestServer::start_with(Options {
        token: None,
        extra: vec!["--max-body-bytes".into(), "65536".into()],
    });
    let live = server
        .run(json!({"script": "sleep 1000", "timeout": 0.2}))
        .await;
    let live_id = live["job_id"].as_str().unwrap().to_owned();
    let ids = [
        live_id.as_str(),
        "01010101-abc",
        "nope",
        "..",
        "%2e%2e",
        "01010101-ABC",
        "0101010-abcd",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut runs_started = 0;
    for round in 0..600 {
        let id = *rng.pick(&ids);
        let (method, path) = rng
            .pick(&[
                ("POST", "/v1/jobs/run".to_owned()),
                ("POST", format!("/v1/jobs/{id}/wait")),
                ("POST", format!("/v1/jobs/{id}/input")),
                ("POST", format!("/v1/jobs/{id}/terminate")),
                ("GET", format!("/v1/jobs/{id}/log/tail")),
                ("GET", format!("/v1/jobs/{id}")),
                ("GET", "/v1/jobs".to_owned()),
                ("DELETE", format!("/v1/jobs/{id}")),
                ("PUT", "/v1/jobs".to_owned()),
            ])
            .clone();
        // Never terminate or delete the live job with force: keep it alive
        // so the other routes see a running job throughout.
        let query = hostile_query(&mut rng)
            .replace("force=true", "force=false")
            .replace("force=1", "force=0");
        let url = format!("{}{path}?{query}", server.base);
        let body = hostile_body(&mut rng);
        let body = if path.ends_with("/terminate") && id == live_id {
            b"not json".to_vec()
        } else {
            body
        };
        let mut request = server
            .client
            .request(method.parse().unwrap(), &url)
            .timeout(HANG_GUARD);
        // Now and then what a web page would send: a body type a form can
        // post, a foreign origin, a cross-site fetch. All are refused.
        let content_type = *rng.pick(&[
            Some("application/json"),
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("application/json"),
            Some("text/plain"),
            None,
        ]);
        let browser = *rng.pick(&[
            None,
            None,
            None,
            None,
            None,
            Some(("origin", "http://evil.example.com")),
            Some(("sec-fetch-site", "cross-site")),
        ]);
        let json_typed = content_type.is_some_and(|t| t.starts_with("application/json"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some((name, value)) = browser {
            request = request.header(name, value);
        }
        // Waits on the live job would sit out their timeout; keep them short.
        let body = if path.ends_with("/wait") || path.ends_with("/input") {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(mut map)) => {
                    map.insert("timeout".into(), json!(0.05));
                    Value::Object(map).to_string().into_bytes()
                }
                _ => body,
            }
        } else {
            body
        };
        let response = request
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {method} {url}: {e}"));
        let status = response.status().as_u16();
        *by_status.entry(status).or_default() += 1;
        if status == 200 && path == "/v1/jobs/run" {
            runs_started += 1;
        }
        if browser.is_some() || (!json_typed && !body.is_empty()) {
            assert!(
                matches!(status, 403 | 415),
                "round {round}: {method} {url} ({content_type:?}, {browser:?}) was not refused: {status}"
            );
        }
        assert!(
            status < 500,
            "round {round}: {method} {url} with {:?} -> {status}: {}",
            String::from_utf8_lossy(&body),
            response.text().await.unwrap_or_default()
        );
    }
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let (_, view) = server.get(&format!("/v1/jobs/{live_id}")).await;
    assert_eq!(view["status"], "running");
    // Refused requests created nothing: only accepted runs made jobs.
    let (_, list) = server.get("/v1/jobs?limit=1000").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1 + runs_started);
    // The generator must actually reach the interesting answers.
    for expected in [200u16, 403, 404, 415, 422] {
        assert!(
            by_status.contains_key(&expected),
            "never saw {expected}: {by_status:?}"
        );
    }
    let (status, err) = server
        .post("/v1/jobs/run", json!({"script": "x".repeat(70_000)}))
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (413, json!("payload_too_large"))
    );
}

#[test]
fn a_public_listen_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let mut command = std::process::Command::new(BIN);
        command
            .args(["serve", "--listen", "0.0.0.0:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--runtime-dir")
            .arg(dir.path().join("run"))
            .args(extra)
            .env_remove("SHELLCTL_AUTH_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let refused = serve(&[]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without an auth token"));
    for extra in [&["--auth-token", "t"][..], &["--insecure-no-auth"][..]] {
        let mut child = serve(extra).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(
            line.starts_with("shellctl listening on http://0.0.0.0:"),
            "{extra:?}: {line}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let _ = std::process::Command::new("tmux")
        .arg("-S")
        .arg(dir.path().join("run/tmux.sock"))
        .arg("kill-server")
        .output();
}
