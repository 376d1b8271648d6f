//! The terminal routes with real programs in real tmux: the screen, the
//! input state (the whole matrix of the issue), keys, signals, resize, the
//! env preset, and `job_not_running` once a job ended.
//!
//! Synchronization is on events a client can see (output, the input state
//! turning), never on sleeps; the polls below retry until a state shows,
//! bounded by `HANG_GUARD`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

async fn start(server: &TestServer, script: &str) -> String {
    start_sized(server, script, 80, 24).await
}

async fn start_sized(server: &TestServer, script: &str, cols: u16, rows: u16) -> String {
    let result = server
        .run(json!({"script": script, "timeout": 0.2, "terminal": {"cols": cols, "rows": rows}}))
        .await;
    result["job_id"].as_str().unwrap().to_owned()
}

/// Polls `GET path` until `pred` holds on a 200 answer.
async fn get_until(server: &TestServer, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let (status, view) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {view}");
        if pred(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{path} never matched: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn input_state_until(server: &TestServer, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    get_until(server, &format!("/v1/jobs/{id}/input-state"), pred).await
}

/// Reads the job's output from 0 until it contains `needle`.
async fn output_until(server: &TestServer, id: &str, needle: &str) -> String {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let (status, result) = server
            .post(
                &format!("/v1/jobs/{id}/wait"),
                json!({"offset": 0, "timeout": 5, "output_limit": 1_048_576}),
            )
            .await;
        assert_eq!(status, 200, "{result}");
        let output = result["output"].as_str().unwrap().to_owned();
        if output.contains(needle) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {output:?}"
        );
    }
}

async fn kill(server: &TestServer, id: &str) {
    let (status, body) = server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=1"))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The job waits for input of `kind`.
async fn assert_waits(server: &TestServer, script: &str, kind: &str) -> Value {
    let id = start(server, script).await;
    let state = input_state_until(server, &id, |v| v["input"]["waiting"] == true).await;
    assert_eq!(state["input"]["kind"], kind, "{script}: {state}");
    assert!(state["input"]["since"].is_string(), "{state}");
    kill(server, &id).await;
    state
}

/// Once the job shows `started` in its output (its program runs), every
/// look says it does not wait.
async fn assert_not_waiting(server: &TestServer, script: &str, started: &str, command: &str) {
    let id = start(server, script).await;
    output_until(server, &id, started).await;
    let state = input_state_until(server, &id, |v| {
        v["foreground"]["command"]
            .as_str()
            .is_some_and(|c| c.contains(command))
    })
    .await;
    for _ in 0..5 {
        let (status, state) = server.get(&format!("/v1/jobs/{id}/input-state")).await;
        assert_eq!(status, 200);
        assert_eq!(
            state["input"],
            json!({"waiting": false, "kind": null, "since": null, "prompt": null}),
            "{script}"
        );
    }
    assert_eq!(state["status"], "running");
    kill(server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_state_matrix() {
    let server = TestServer::start();
    let line = assert_waits(&server, "printf 'Name: '; read x", "line").await;
    assert_eq!(line["input"]["prompt"], "Name: ");
    let password = assert_waits(
        &server,
        "stty -echo; printf 'Password: '; read x",
        "password",
    )
    .await;
    assert_eq!(password["input"]["prompt"], "Password: ");
    // Python's REPL edits its line with readline, which puts the terminal
    // in non-canonical mode: it reads single keys.
    let python = assert_waits(&server, "python3 -q", "key").await;
    assert_eq!(python["input"]["prompt"], ">>> ");
    let less = assert_waits(
        &server,
        "seq 1 5000 > long.txt; less long.txt",
        "fullscreen",
    )
    .await;
    assert_eq!(less["input"]["prompt"], Value::Null);
    assert!(
        less["foreground"]["command"]
            .as_str()
            .unwrap()
            .starts_with("less")
    );
    assert_waits(&server, "vi notes.txt", "fullscreen").await;
    let cat = assert_waits(&server, "cat", "line").await;
    assert_eq!(cat["foreground"]["command"], "cat");
    assert_not_waiting(&server, "echo started; sleep 30", "started", "sleep 30").await;
    assert_not_waiting(
        &server,
        "echo started; while :; do :; done",
        "started",
        "sh",
    )
    .await;
    assert_not_waiting(&server, "yes", "y\ny\n", "yes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_is_kept_while_the_same_wait_lasts() {
    let server = TestServer::start();
    let id = start(&server, "read x; echo got $x; read y").await;
    let first = input_state_until(&server, &id, |v| v["input"]["waiting"] == true).await;
    let again = input_state_until(&server, &id, |_| true).await;
    assert_eq!(first["input"]["since"], again["input"]["since"]);
    // After input the job reads again: a new wait (the same process and
    // mode, but input ended the first one).
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "one\n", "offset": 0, "timeout": 0.5}),
        )
        .await;
    assert_eq!(status, 200);
    output_until(&server, &id, "got one").await;
    let second = input_state_until(&server, &id, |v| v["input"]["waiting"] == true).await;
    assert!(second["input"]["since"].is_string());
    kill(&server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vi_shows_its_screen_and_keys_save_the_file() {
    let server = TestServer::start();
    let id = start_sized(&server, "vi notes.txt", 60, 12).await;
    let path = format!("/v1/jobs/{id}/screen");
    let screen = get_until(&server, &path, |v| v["input"]["waiting"] == true).await;
    assert_eq!(screen["alternate_screen"], true, "{screen}");
    assert_eq!(screen["input"]["kind"], "fullscreen");
    assert_eq!(
        (screen["cols"].clone(), screen["rows"].clone()),
        (json!(60), json!(12))
    );
    let lines = screen["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[1], "~", "{screen}");
    assert!(lines.iter().all(|l| !l.as_str().unwrap().ends_with(' ')));
    assert_eq!(screen["cursor"], json!({"row": 0, "col": 0}));

    let keys_path = format!("/v1/jobs/{id}/keys");
    let keys = |keys: Value, offset: u64| {
        server.post(
            &keys_path,
            json!({"keys": keys, "offset": offset, "timeout": 1}),
        )
    };
    let (status, typed) = keys(json!(["i", "saved by keys; #{x} 'q' $HOME", "Escape"]), 0).await;
    assert_eq!(status, 200, "{typed}");
    let screen = get_until(&server, &path, |v| v["lines"][0] != "").await;
    assert_eq!(screen["lines"][0], "saved by keys; #{x} 'q' $HOME");
    let (status, done) = keys(json!([":wq", "Enter"]), 0).await;
    assert_eq!(status, 200, "{done}");
    let end = server.status_until(&id, |v| v["done"] == true).await;
    assert_eq!(
        (end["status"].clone(), end["exit_code"].clone()),
        (json!("exited"), json!(0))
    );
    let saved = std::fs::read_to_string(server.root.join("home/notes.txt")).unwrap();
    assert_eq!(saved, "saved by keys; #{x} 'q' $HOME\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_type_text_and_key_names_in_both_tmux_modes() {
    for mode in [TmuxMode::Control, TmuxMode::Cli] {
        let server = TestServer::start_in(mode);
        let id = start(
            &server,
            "while read -r line; do printf '[%s]\\n' \"$line\"; done",
        )
        .await;
        input_state_until(&server, &id, |v| v["input"]["waiting"] == true).await;
        // A word ending in `;` ends a command on tmux's command line; here
        // it is text.
        let (status, result) = server
            .post(
                &format!("/v1/jobs/{id}/keys"),
                json!({"keys": ["ls;", "Enter", "a\\;", "Tab", "b", "Enter", "C-d"], "offset": 0, "timeout": 5}),
            )
            .await;
        assert_eq!(status, 200, "{mode:?}: {result}");
        // C-d at an empty line is end of input: the loop ends, so does the job.
        let (output, end) = server.wait_done(&id, 0).await;
        // The terminal echoes what was typed, interleaved with the loop's
        // answers as it happens to run; the answers are what it read.
        let read: Vec<&str> = output.lines().filter(|l| l.starts_with('[')).collect();
        assert_eq!(read, ["[ls;]", "[a\\;\tb]"], "{mode:?}: {output:?}");
        assert_eq!(end["exit_code"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_validated() {
    let server = TestServer::start();
    let id = start(&server, "cat").await;
    let keys_path = format!("/v1/jobs/{id}/keys");
    let post = |body: Value| server.post(&keys_path, body);
    for body in [
        json!({"keys": [], "offset": 0}),
        json!({"keys": [""], "offset": 0}),
        json!({"keys": ["x"]}),
        json!({"keys": ["x"], "offset": 0, "extra": 1}),
        json!({"keys": ["x".repeat(9000)], "offset": 0}),
    ] {
        let (status, err) = post(body.clone()).await;
        assert_eq!(
            (status, err["error"]["code"].clone()),
            (422, json!("validation_error")),
            "{body}"
        );
    }
    let (status, err) = post(json!({"keys": ["x"], "offset": 99})).await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (400, json!("invalid_offset"))
    );
    kill(&server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reach_the_script_never_the_runner() {
    let server = TestServer::start();
    let id = start(
        &server,
        "trap 'echo got-usr1' USR1; trap 'echo got-term' TERM; echo ready; while :; do sleep 0.1; done",
    )
    .await;
    output_until(&server, &id, "ready").await;
    let signal_path = format!("/v1/jobs/{id}/signal");
    let signal = |body: Value| server.post(&signal_path, body);
    let (status, view) = signal(json!({"signal": "USR1"})).await;
    assert_eq!(
        (status, view["status"].clone()),
        (200, json!("running")),
        "{view}"
    );
    output_until(&server, &id, "got-usr1").await;
    // TERM goes to the foreground group, not to the runner (which would
    // die of it, and the job would end lost instead of with 137 below).
    let (status, _) = signal(json!({"signal": "TERM", "target": "foreground"})).await;
    assert_eq!(status, 200);
    output_until(&server, &id, "got-term").await;
    assert_eq!(
        server.get(&format!("/v1/jobs/{id}")).await.1["status"],
        "running"
    );
    // KILL to the foreground kills the script; the runner records it.
    let (status, _) = signal(json!({"signal": "KILL"})).await;
    assert_eq!(status, 200);
    let end = server.status_until(&id, |v| v["done"] == true).await;
    assert_eq!(
        (end["status"].clone(), end["exit_code"].clone()),
        (json!("exited"), json!(137))
    );
    // Ended: 409.
    let (status, err) = signal(json!({"signal": "TERM"})).await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (409, json!("job_not_running"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_signal_reaches_processes_outside_the_foreground_group() {
    let server = TestServer::start();
    let id = start(
        &server,
        "trap 'echo fg-term' TERM; setsid sleep 300 & echo \"bg=$!\"; while :; do sleep 0.1; done",
    )
    .await;
    let output = output_until(&server, &id, "bg=").await;
    let pid: u32 = output
        .lines()
        .find_map(|line| line.strip_prefix("bg="))
        .unwrap()
        .parse()
        .unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z"))
    };
    // In a session of its own, the sleep is not in the foreground group.
    let signal_path = format!("/v1/jobs/{id}/signal");
    let (status, _) = server
        .post(
            &signal_path,
            json!({"signal": "TERM", "target": "foreground"}),
        )
        .await;
    assert_eq!(status, 200);
    output_until(&server, &id, "fg-term").await;
    assert!(alive(), "a foreground signal reached {pid}");
    // The whole job: the script and the sleep.
    let (status, _) = server
        .post(&signal_path, json!({"signal": "KILL", "target": "job"}))
        .await;
    assert_eq!(status, 200);
    let end = server.status_until(&id, |v| v["done"] == true).await;
    assert_eq!(end["exit_code"], 137);
    let deadline = Instant::now() + HANG_GUARD;
    while alive() {
        assert!(Instant::now() < deadline, "the job's sleep {pid} survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_names_and_targets_are_validated() {
    let server = TestServer::start();
    let id = start(&server, "cat").await;
    for body in [
        json!({"signal": "FOO"}),
        json!({"signal": "SIGINT"}),
        json!({"signal": "int"}),
        json!({"signal": "INT", "target": "everyone"}),
        json!({}),
    ] {
        let (status, err) = server
            .post(&format!("/v1/jobs/{id}/signal"), body.clone())
            .await;
        assert_eq!(
            (status, err["error"]["code"].clone()),
            (422, json!("validation_error")),
            "{body}"
        );
    }
    kill(&server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_changes_what_the_program_sees() {
    let server = TestServer::start();
    let id = start_sized(
        &server,
        "trap 'echo cols=$(tput cols) lines=$(tput lines)' WINCH; echo cols=$(tput cols); while :; do sleep 0.1; done",
        50,
        10,
    )
    .await;
    output_until(&server, &id, "cols=50").await;
    let (status, screen) = server
        .post(
            &format!("/v1/jobs/{id}/resize"),
            json!({"cols": 77, "rows": 12}),
        )
        .await;
    assert_eq!(status, 200, "{screen}");
    assert_eq!(
        (screen["cols"].clone(), screen["rows"].clone()),
        (json!(77), json!(12))
    );
    assert_eq!(screen["lines"].as_array().unwrap().len(), 12);
    output_until(&server, &id, "cols=77 lines=12").await;
    for body in [
        json!({"cols": 0, "rows": 10}),
        json!({"cols": 10, "rows": 4097}),
        json!({"cols": 10}),
    ] {
        let (status, _) = server
            .post(&format!("/v1/jobs/{id}/resize"), body.clone())
            .await;
        assert_eq!(status, 422, "{body}");
    }
    kill(&server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_has_exactly_its_rows_and_history_above_them() {
    let server = TestServer::start();
    let id = start_sized(&server, "seq 1 30; read x", 20, 5).await;
    let path = format!("/v1/jobs/{id}/screen?history=3");
    let screen = get_until(&server, &path, |v| v["input"]["waiting"] == true).await;
    assert_eq!(screen["lines"], json!(["27", "28", "29", "30", ""]));
    assert_eq!(screen["history"], json!(["24", "25", "26"]));
    assert_eq!(screen["cursor"], json!({"row": 4, "col": 0}));
    assert_eq!(screen["alternate_screen"], false);
    let all = get_until(
        &server,
        &format!("/v1/jobs/{id}/screen?history=10000"),
        |_| true,
    )
    .await;
    assert_eq!(all["history"].as_array().unwrap().len(), 26);
    assert_eq!(all["history"][0], "1");
    let none = get_until(&server, &format!("/v1/jobs/{id}/screen"), |_| true).await;
    assert_eq!(none["history"], json!([]));
    let (status, _) = server
        .get(&format!("/v1/jobs/{id}/screen?history=10001"))
        .await;
    assert_eq!(status, 422);
    kill(&server, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_answer_job_not_running_on_every_terminal_route() {
    let server = TestServer::start();
    let result = server.run(json!({"script": "echo bye"})).await;
    let id = result["job_id"].as_str().unwrap().to_owned();
    server.status_until(&id, |v| v["done"] == true).await;
    for (status, err) in [
        server.get(&format!("/v1/jobs/{id}/screen")).await,
        server.get(&format!("/v1/jobs/{id}/input-state")).await,
        server
            .post(
                &format!("/v1/jobs/{id}/keys"),
                json!({"keys": ["x"], "offset": 0}),
            )
            .await,
        server
            .post(&format!("/v1/jobs/{id}/signal"), json!({"signal": "INT"}))
            .await,
        server
            .post(
                &format!("/v1/jobs/{id}/resize"),
                json!({"cols": 10, "rows": 10}),
            )
            .await,
    ] {
        assert_eq!(
            (status, err["error"]["code"].clone()),
            (409, json!("job_not_running")),
            "{err}"
        );
    }
    // Unknown and malformed ids are 404, as on v1.
    for path in [
        "/v1/jobs/01010101-abc/screen",
        "/v1/jobs/nonsense/input-state",
    ] {
        let (status, err) = server.get(path).await;
        assert_eq!(
            (status, err["error"]["code"].clone()),
            (404, json!("job_not_found")),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noninteractive_env_preset() {
    let probe = "echo \"[$PAGER|$GIT_TERMINAL_PROMPT|$DEBIAN_FRONTEND|$TF_INPUT]\"";
    let output_of = |result: Value| result["output"].as_str().unwrap().to_owned();
    // Without a preset a job sees the server's environment, which is this
    // test's.
    let inherited = {
        let var = |name| std::env::var(name).unwrap_or_default();
        format!(
            "[{}|{}|{}|{}]\n",
            var("PAGER"),
            var("GIT_TERMINAL_PROMPT"),
            var("DEBIAN_FRONTEND"),
            var("TF_INPUT")
        )
    };
    let server = TestServer::start();
    let plain = server.run(json!({"script": probe})).await;
    assert_eq!(output_of(plain), inherited);
    let preset = server
        .run(json!({"script": probe, "env_preset": "noninteractive"}))
        .await;
    assert_eq!(output_of(preset), "[cat|0|noninteractive|0]\n");
    let own = server
        .run(json!({"script": probe, "env_preset": "noninteractive", "env": {"PAGER": "more"}}))
        .await;
    assert_eq!(output_of(own), "[more|0|noninteractive|0]\n");
    let (status, _) = server
        .post(
            "/v1/jobs/run",
            json!({"script": "true", "env_preset": "chatty"}),
        )
        .await;
    assert_eq!(status, 422);

    // Server-wide, with a per-job opt-out.
    let server = TestServer::start_with(Options {
        token: None,
        extra: vec!["--env-preset".into(), "noninteractive".into()],
    });
    let preset = server.run(json!({"script": probe})).await;
    assert_eq!(output_of(preset), "[cat|0|noninteractive|0]\n");
    let opted_out = server
        .run(json!({"script": probe, "env_preset": "none"}))
        .await;
    assert_eq!(output_of(opted_out), inherited);
}
