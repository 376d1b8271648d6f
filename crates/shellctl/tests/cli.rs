//! The `shellctl` client commands, run as a real process against a real
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

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

/// Polls `GET /v1/jobs/{id}/input-state` until the job waits for input;
/// returns that view.
async fn until_waiting(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let (status, view) = server.get(&format!("/v1/jobs/{id}/input-state")).await;
        assert_eq!(status, 200, "{view}");
        if view["input"]["waiting"] == true {
            return view;
        }
        assert!(Instant::now() < deadline, "the job never waited: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (repeatedly) from `offset` until the job's output read so far
/// contains `needle`; returns that output and the offset after it.
async fn output_until(
    server: &TestServer,
    id: &str,
    mut offset: u64,
    needle: &str,
) -> (String, u64) {
    let deadline = Instant::now() + HANG_GUARD;
    let mut output = String::new();
    while !output.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never came; output: {output:?}"
        );
        let (status, result) = server
            .post(
                &format!("/v1/jobs/{id}/wait"),
                json!({"offset": offset, "timeout": 5, "idle_flush_seconds": 0}),
            )
            .await;
        assert_eq!(status, 200, "{result}");
        output.push_str(result["output"].as_str().unwrap());
        offset = result["offset"].as_u64().unwrap();
        assert!(
            output.contains(needle) || result["done"] == false,
            "the job ended without {needle:?}: {output:?} {result}"
        );
    }
    (output, offset)
}

/// Starts `script` with `terminal`, and waits until its output holds
/// `ready`; returns the job's id and the offset after that output.
async fn start_job(server: &TestServer, script: &str, ready: &str) -> (String, u64) {
    let run = server
        .run(json!({"script": script, "timeout": 0.001, "terminal": {"cols": 100, "rows": 30}}))
        .await;
    let id = run["job_id"].as_str().unwrap().to_owned();
    let (_, offset) = output_until(server, &id, 0, ready).await;
    (id, offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_shows_a_waiting_job_and_keys_answer_it() {
    let server = TestServer::start();
    let (id, offset) = start_job(
        &server,
        "printf 'hello\\n'; read x; echo \"got $x\"",
        "hello\n",
    )
    .await;
    until_waiting(&server, &id).await;

    let mut c = cli(&server);
    c.args(["screen", &id]);
    let out = blocking(c).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // The rows up to the last text; the blank ones below are left out.
    assert_eq!(text, "hello\n", "{text:?}");
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.starts_with("[waiting for input: line") && note.ends_with("]\n"),
        "{note:?}"
    );
    assert_eq!(note.lines().count(), 1, "{note:?}");

    let mut c = cli(&server);
    c.args(["screen", &id, "--json", "--history", "3"]);
    let screen = json_out(&blocking(c).await);
    assert_eq!(screen["rows"], 30, "{screen}");
    assert_eq!(screen["cols"], 100, "{screen}");
    assert_eq!(screen["lines"].as_array().unwrap().len(), 30, "{screen}");
    assert_eq!(screen["lines"][0], "hello", "{screen}");
    assert_eq!(screen["input"]["kind"], "line", "{screen}");

    let mut c = cli(&server);
    c.args(["keys", &id, "x", "Enter", "--offset", &offset.to_string()]);
    let typed = json_out(&blocking(c).await);
    assert_eq!(typed["job_id"], id.as_str(), "{typed}");
    let (output, result) = server.wait_done(&id, offset).await;
    assert!(output.contains("got x"), "{output:?}");
    assert_eq!(
        (result["status"].clone(), result["exit_code"].clone()),
        (json!("exited"), json!(0)),
        "{result}"
    );

    // An ended job has no screen.
    let mut c = cli(&server);
    c.args(["screen", &id]);
    let out = blocking(c).await;
    assert_eq!(
        (out.status.code(), json_err(&out)["error"]["code"].clone()),
        (Some(1), json!("job_not_running"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_reaches_the_script_and_unknown_names_are_usage_errors() {
    let server = TestServer::start();
    let (id, offset) = start_job(
        &server,
        "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done",
        "ready\n",
    )
    .await;

    for bad in ["BOGUS", "SIGBOGUS", "9"] {
        let mut c = cli(&server);
        c.args(["signal", &id, bad]);
        let out = blocking(c).await;
        let err = json_err(&out);
        assert_eq!(
            (out.status.code(), err["error"]["code"].clone()),
            (Some(2), json!("usage_error")),
            "{bad}: {err}"
        );
        assert!(
            err["error"]["message"].as_str().unwrap().contains("USR1"),
            "the valid names are listed: {err}"
        );
    }

    let mut c = cli(&server);
    c.args(["signal", &id, "usr1"]);
    assert_eq!(json_out(&blocking(c).await)["status"], "running");
    let (_, offset) = output_until(&server, &id, offset, "got-usr1").await;

    let mut c = cli(&server);
    c.args(["signal", &id, "SIGKILL", "--job"]);
    assert_eq!(json_out(&blocking(c).await)["job_id"], id.as_str());
    let (_, result) = server.wait_done(&id, offset).await;
    assert_eq!(result["done"], true, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_reaches_the_script_as_winch() {
    let server = TestServer::start();
    let (id, offset) = start_job(
        &server,
        "trap 'tput cols' WINCH; echo ready; while :; do sleep 0.1; done",
        "ready\n",
    )
    .await;
    let mut c = cli(&server);
    c.args(["resize", &id, "77", "12"]);
    let screen = json_out(&blocking(c).await);
    assert_eq!(
        (screen["cols"].clone(), screen["rows"].clone()),
        (json!(77), json!(12))
    );
    assert_eq!(screen["lines"].as_array().unwrap().len(), 12, "{screen}");
    let (output, _) = output_until(&server, &id, offset, "77\n").await;
    assert!(output.lines().any(|line| line == "77"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_env_preset_sets_the_noninteractive_variables() {
    let server = TestServer::start();
    let mut c = cli(&server);
    c.args([
        "run",
        "--env-preset",
        "noninteractive",
        "--env",
        "EDITOR=mine",
        "--follow",
        "echo \"pager=$PAGER editor=$EDITOR\"",
    ]);
    let out = blocking(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "pager=cat editor=mine\n"
    );
    let mut c = cli(&server);
    c.args(["run", "--env-preset", "bogus", "true"]);
    assert_eq!(blocking(c).await.status.code(), Some(2));
}

#[test]
fn attach_refuses_without_a_terminal() {
    for stdin in [Stdio::null(), Stdio::piped()] {
        let out = Command::new(BIN)
            .args(["attach", "01010101-abc"])
            .stdin(stdin)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let message = String::from_utf8(out.stderr).unwrap();
        assert!(message.contains("stdin is not a terminal"), "{message:?}");
    }
}

/// A tmux server of the test's own (the "outer" terminal a person would
/// use), on a socket in a temp dir; killed on drop.
struct OuterTmux {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl OuterTmux {
    fn start() -> OuterTmux {
        let dir = tempfile::tempdir().unwrap();
        OuterTmux {
            socket: dir.path().join("outer.sock"),
            _dir: dir,
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    /// A detached 80×24 session `name` running the shell command `command`.
    fn session(&self, name: &str, command: &str) {
        let out = self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "80",
            "-y",
            "24",
            command,
        ]);
        assert!(out.status.success(), "{out:?}");
    }

    /// Polls the pane of session `name` (wrapped lines joined) until
    /// `pred` holds; returns what it showed.
    async fn pane_until(&self, name: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let out = self.tmux(&["capture-pane", "-p", "-J", "-t", name]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the outer pane never matched: {text:?} {:?}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OuterTmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Single-quotes `text` for sh.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `shellctl attach ID` with the test server's directories, as a shell
/// command, followed by its exit code.
fn attach_command(server: &TestServer, id: &str) -> String {
    format!(
        "{} attach {} --state-dir {} --runtime-dir {}; echo \"[attach exited $?]\"",
        sh_quote(BIN),
        sh_quote(id),
        sh_quote(&server.state().to_string_lossy()),
        sh_quote(&server.root.join("run").to_string_lossy()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_shows_the_job_and_detaching_leaves_it_running() {
    let server = TestServer::start();
    let (id, _) = start_job(
        &server,
        "echo attach-me; while :; do sleep 0.1; done",
        "attach-me\n",
    )
    .await;
    let outer = OuterTmux::start();

    // A terminal, but no such job, or no job id at all.
    outer.session(
        "refused",
        &format!(
            "{}; {}; sleep 1000",
            attach_command(&server, "01010101-zzz"),
            attach_command(&server, "not-an-id"),
        ),
    );
    let refused = outer
        .pane_until("refused", |text| {
            text.matches("[attach exited").count() == 2
        })
        .await;
    assert!(
        refused.contains("job 01010101-zzz has no terminal on this server")
            && refused.contains("[attach exited 1]")
            && refused.contains("invalid job id")
            && refused.contains("[attach exited 2]"),
        "{refused}"
    );

    outer.session(
        "attached",
        &format!("{}; sleep 1000", attach_command(&server, &id)),
    );
    let shown = outer
        .pane_until("attached", |text| {
            text.contains("attach-me") || text.contains("[attach exited")
        })
        .await;
    assert!(shown.contains("attach-me"), "{shown}");
    // Attaching from an 80×24 terminal left the job's 100×30 alone.
    let (_, screen) = server.get(&format!("/v1/jobs/{id}/screen")).await;
    assert_eq!(
        (screen["cols"].clone(), screen["rows"].clone()),
        (json!(100), json!(30))
    );

    // Ctrl-b d, typed into the outer pane (send-keys bypasses the outer
    // server's own prefix), detaches the inner client.
    let out = outer.tmux(&["send-keys", "-t", "attached", "C-b", "d"]);
    assert!(out.status.success(), "{out:?}");
    let detached = outer
        .pane_until("attached", |text| text.contains("[attach exited"))
        .await;
    assert!(detached.contains("[detached"), "{detached}");
    assert!(detached.contains("[attach exited 0]"), "{detached}");

    let (_, view) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(view["status"], "running", "{view}");
    let (_, screen) = server.get(&format!("/v1/jobs/{id}/screen")).await;
    assert_eq!(
        (screen["cols"].clone(), screen["rows"].clone()),
        (json!(100), json!(30))
    );
}
