//! The `shellctl` client commands, run as a real process against a real
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn cli(server: &TestServer) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("SHELLCTL_BASE_URL", &server.base)
        .env_remove("SHELLCTL_AUTH_TOKEN");
    if let Some(token) = &server.token {
        command.env("SHELLCTL_AUTH_TOKEN", token);
    }
    command
}

fn json_out(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one compact JSON line: {text:?}");
    serde_json::from_str(&text).unwrap()
}

fn json_err(output: &Output) -> Value {
    serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("stderr: {}", String::from_utf8_lossy(&output.stderr)))
}

async fn blocking(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_one_compact_json_value() {
    let server = TestServer::start();
    let mut c = cli(&server);
    c.arg("health");
    assert_eq!(json_out(&blocking(c).await), json!({"status": "ok"}));

    let mut c = cli(&server);
    c.args([
        "run",
        "--env",
        "GREETING=hi there",
        "--cwd",
        "/tmp",
        "--idle-flush-seconds",
        "0.2",
        "echo \"$GREETING\"; pwd; read x; echo \"got $x\"",
    ]);
    let run = json_out(&blocking(c).await);
    assert_eq!(run["output"], "hi there\n/tmp\n");
    let id = run["job_id"].as_str().unwrap().to_owned();
    let offset = run["offset"].as_u64().unwrap().to_string();

    let mut c = cli(&server);
    c.args([
        "input",
        &id,
        "ok\n",
        "--offset",
        &offset,
        "--idle-flush-seconds",
        "0.2",
    ]);
    let typed = json_out(&blocking(c).await);
    assert_eq!(typed["output"], "ok\ngot ok\n");

    let mut c = cli(&server);
    c.args(["wait", &id, "--offset", "0"]);
    let waited = json_out(&blocking(c).await);
    assert_eq!(
        (waited["output"].clone(), waited["exit_code"].clone()),
        (json!("hi there\n/tmp\nok\ngot ok\n"), json!(0))
    );

    let mut c = cli(&server);
    c.args(["tail", &id, "--output-limit", "7"]);
    assert_eq!(json_out(&blocking(c).await)["output"], "got ok\n");
    let mut c = cli(&server);
    c.args(["status", &id]);
    assert_eq!(json_out(&blocking(c).await)["status"], "exited");
    let mut c = cli(&server);
    c.args(["list", "--status", "exited", "--limit", "5"]);
    let list = json_out(&blocking(c).await);
    assert!(list.is_array(), "list prints a bare array");
    assert_eq!(list[0]["job_id"], id.as_str());
    let mut c = cli(&server);
    c.args(["terminate", &id]);
    assert_eq!(json_out(&blocking(c).await)["status"], "exited");
    let mut c = cli(&server);
    c.args(["delete", &id]);
    assert_eq!(
        json_out(&blocking(c).await),
        json!({"job_id": id, "deleted": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_on_stderr_with_distinct_exit_codes() {
    let server = TestServer::start_with(Options {
        token: Some("tok".into()),
        extra: Vec::new(),
    });
    let mut c = cli(&server);
    c.args(["status", "01010101-abc"]);
    let out = blocking(c).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_err(&out)["error"]["code"], "job_not_found");
    assert!(out.stdout.is_empty());

    let mut c = cli(&server);
    c.args(["list", "--auth-token", "wrong"]);
    let out = blocking(c).await;
    assert_eq!(
        (out.status.code(), json_err(&out)["error"]["code"].clone()),
        (Some(1), json!("unauthorized"))
    );

    let mut c = cli(&server);
    c.args(["health", "--base-url", "http://127.0.0.1:9"]);
    let out = blocking(c).await;
    assert_eq!(
        (out.status.code(), json_err(&out)["error"]["code"].clone()),
        (Some(3), json!("transport_error"))
    );

    for bad in [
        ["run", "--env", "NOVALUE", "true"],
        ["run", "--env", "=x", "true"],
        ["list", "--status", "bogus", "--limit=1"],
    ] {
        let mut c = cli(&server);
        c.args(bad);
        let out = blocking(c).await;
        assert_eq!(
            (out.status.code(), json_err(&out)["error"]["code"].clone()),
            (Some(2), json!("usage_error")),
            "{bad:?}"
        );
    }
    // A token from the environment is used.
    let mut c = cli(&server);
    c.arg("list");
    assert!(json_out(&blocking(c).await).is_array());
}

/// Starts `shellctl run --follow SCRIPT`, waits for its first line, and
/// returns the process, the rest of its stdout, that line and the job's id.
async fn follow_first_line(
    server: &TestServer,
    script: &str,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
    String,
) {
    let mut child = cli(server)
        .args(["run", "--follow", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    // The job still runs: the line came before its end.
    let (_, listed) = server.get("/v1/jobs?status=running").await;
    let id = listed["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    (child, lines, first, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follow_streams_lines_before_the_job_ends_and_exits_with_its_code() {
    let server = TestServer::start();
    let (mut child, mut lines, first, id) =
        follow_first_line(&server, "echo first; read x; echo \"got $x\"; exit 7").await;
    assert_eq!(first, "first\n");
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "ok\n", "offset": 6, "timeout": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
        (rest, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(rest.0, "ok\ngot ok\n");
    assert_eq!(rest.1.code(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_following_terminates_the_job_and_exits_130() {
    let server = TestServer::start();
    let (mut child, _lines, first, id) = follow_first_line(&server, "echo ready; sleep 1000").await;
    assert_eq!(first, "ready\n");
    interrupt(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let (_, view) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(view["status"], "terminated");
}

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

/// Waits for `child` to exit; kills it and fails if it is still running
/// after [`HANG_GUARD`] (only a hung CLI gets there).
async fn exit_status(mut child: std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the CLI did not exit within {HANG_GUARD:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the CLI exited on its own with 130, not killed by the signal.
fn assert_interrupted(status: std::process::ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (status.code(), status.signal()),
        (Some(130), None),
        "expected exit 130, got {status:?}"
    );
}

/// `shellctl run --follow 'sleep 100'`: a job that prints nothing.
fn follow_a_silent_job(server: &TestServer) -> std::process::Child {
    cli(server)
        .args(["run", "--follow", "sleep 100"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C at any moment once the job exists terminates it, even before the
/// job printed anything (the run request then is still waiting for first
/// output unless the CLI returns from it at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_any_output_terminates_the_job_and_exits_130() {
    let server = TestServer::start();
    let child = follow_a_silent_job(&server);
    // The job exists and runs once the server lists it so.
    let deadline = Instant::now() + HANG_GUARD;
    let id = loop {
        let (_, listed) = server.get("/v1/jobs?status=running").await;
        if let Some(id) = listed["jobs"][0]["job_id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    interrupt(&child);
    assert_interrupted(exit_status(child).await);
    let (_, view) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(view["status"], "terminated", "{view}");
}

/// Whether process `pid` catches SIGINT (its handler is installed), from
/// the `SigCgt` mask in `/proc/PID/status`.
fn catches_sigint(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

/// Ctrl-C that comes while `run --follow` still waits for the server to
/// create the job: the request finishes, then the new job is terminated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_run_request_terminates_the_job_it_creates() {
    let server = TestServer::start();
    let child = follow_a_silent_job(&server);
    // The CLI catches SIGINT from just before it sends the run request.
    wait_until_catches_sigint(&child).await;
    interrupt(&child);
    assert_interrupted(exit_status(child).await);
    let (_, listed) = server.get("/v1/jobs").await;
    let jobs = listed["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{listed}");
    assert_eq!(jobs[0]["status"], "terminated", "{listed}");
}

/// Waits until `child` has installed its SIGINT handler.
async fn wait_until_catches_sigint(child: &std::process::Child) {
    let deadline = Instant::now() + HANG_GUARD;
    while !catches_sigint(child.id()) {
        assert!(Instant::now() < deadline, "the CLI never handled SIGINT");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `wait --follow` on a job that prints nothing: Ctrl-C, as soon as the
/// CLI handles it, terminates the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_wait_following_a_silent_job_terminates_it() {
    let server = TestServer::start();
    let run = server
        .run(json!({"script": "sleep 100", "timeout": 0.001}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    let child = cli(&server)
        .args(["wait", &id, "--offset", "0", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_catches_sigint(&child).await;
    interrupt(&child);
    assert_interrupted(exit_status(child).await);
    let (_, view) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(view["status"], "terminated", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_follow_and_script_from_stdin() {
    let server = TestServer::start();
    let mut child = cli(&server)
        .args(["run", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin; sleep 0.3; echo later; exit 4\n")
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let run = json_out(&out);
    let id = run["job_id"].as_str().unwrap().to_owned();
    assert!(run["output"].as_str().unwrap().starts_with("from-stdin\n"));
    let mut c = cli(&server);
    c.args(["wait", &id, "--offset", "0", "--follow"]);
    let out = blocking(c).await;
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "from-stdin\nlater\n"
    );
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("terminate") && script.contains("--follow"),
            "{shell}"
        );
    }
}

/// The reference server (from the venv `scripts/ref-venv` makes), answering
/// our CLI. Only routes that do not start jobs: the reference fails jobs
/// whose Python pipe side takes over 1 s to start, which is common here.
#[test]
fn the_cli_works_against_the_reference_server() {
    let venv =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ref-venv/bin");
    assert!(
        venv.join("shellctl").exists(),
        "run scripts/ref-venv (scripts/test does) first"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut reference = Command::new(venv.join("shellctl"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .arg("--runtime-dir")
        .arg(dir.path().join("run"))
        .env_remove("SHELLCTL_AUTH_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // uvicorn says on stderr when it listens.
    let mut log = BufReader::new(reference.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Uvicorn running") {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "reference server exited"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let base = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("SHELLCTL_BASE_URL", &base)
            .env_remove("SHELLCTL_AUTH_TOKEN")
            .output()
            .unwrap()
    };
    assert_eq!(json_out(&run(&["health"])), json!({"status": "ok"}));
    assert_eq!(json_out(&run(&["list"])), json!([]));
    let out = run(&["status", "01010101-abc"]);
    assert_eq!(
        (out.status.code(), json_err(&out)["error"]["code"].clone()),
        (Some(1), json!("job_not_found"))
    );
    // FastAPI's own 422 shape decodes too.
    let out = run(&["run", "--timeout", "0", "true"]);
    assert_eq!(
        (out.status.code(), json_err(&out)["error"]["code"].clone()),
        (Some(1), json!("validation_error"))
    );
    let _ = reference.kill();
    let _ = reference.wait();
}
