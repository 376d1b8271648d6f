//! The job server through its HTTP API: real binary, tmux and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use support::*;

const RESULT_FIELDS: &[&str] = &[
    "job_id",
    "done",
    "status",
    "exit_code",
    "output_path",
    "output",
    "offset",
    "truncated",
];
const VIEW_FIELDS: &[&str] = &[
    "job_id",
    "status",
    "done",
    "exit_code",
    "created_at",
    "started_at",
    "ended_at",
    "offset",
];

/// Runs a scenario `async fn name(mode: TmuxMode)` once per way the server
/// talks to tmux: a test `name::control_mode` and a test `name::cli_mode`.
macro_rules! in_both_modes {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn control_mode() {
                super::$scenario(super::TmuxMode::Control).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cli_mode() {
                super::$scenario(super::TmuxMode::Cli).await
            }
        }
    };
}

fn id_of(result: &Value) -> String {
    result["job_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_output_and_exit_code_with_exact_fields() {
    let server = TestServer::start();
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let result = server.run(json!({"script": "echo hi; exit 3"})).await;
    assert_eq!(keys(&result), sorted(RESULT_FIELDS));
    assert_eq!(result["output"], "hi\n");
    assert_eq!(
        (
            result["status"].clone(),
            result["exit_code"].clone(),
            result["done"].clone()
        ),
        (json!("exited"), json!(3), json!(true))
    );
    assert_eq!(result["offset"], 3);
    let id = id_of(&result);
    let path = server.state().join("jobs").join(&id).join("output.log");
    assert_eq!(result["output_path"], path.to_string_lossy().as_ref());

    let (status, view) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&view), sorted(VIEW_FIELDS));
    assert_eq!(
        (view["offset"].clone(), view["exit_code"].clone()),
        (json!(3), json!(3))
    );
    for stamp in ["created_at", "started_at", "ended_at"] {
        let text = view[stamp].as_str().unwrap();
        assert!(shellctl_proto_timestamp_ok(text), "{stamp}={text}");
    }
    let (_, list) = server.get("/v1/jobs").await;
    assert_eq!(keys(&list), sorted(&["jobs"]));
    assert_eq!(
        keys(&list["jobs"][0]),
        sorted(&["job_id", "status", "created_at", "started_at", "ended_at"])
    );
}

fn shellctl_proto_timestamp_ok(text: &str) -> bool {
    text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_overlay_keeps_path_and_passes_values_as_data() {
    let server = TestServer::start();
    let tricky = "$(touch /tmp/pwned) `id` 'q' \"dq\" ; | & \u{1F642} é";
    let result = server
        .run(json!({
            "script": "printf '%s\\n' \"$TRICKY\" \"$HOME_OVERRIDE\"; command -v sh >/dev/null && echo path-ok",
            "env": {"TRICKY": tricky, "HOME_OVERRIDE": "x=y"}
        }))
        .await;
    assert_eq!(
        result["output"].as_str().unwrap(),
        format!("{tricky}\nx=y\npath-ok\n")
    );
    assert_eq!(result["exit_code"], 0);
}

in_both_modes!(live_output_and_prompts_are_visible_before_exit_and_input_round_trips);
async fn live_output_and_prompts_are_visible_before_exit_and_input_round_trips(mode: TmuxMode) {
    let server = TestServer::start_in(mode);
    let result = server
        .run(json!({"script": "echo first; printf 'Name: '; read name; echo \"hello $name\"; read _", "timeout": 30, "idle_flush_seconds": 0.2}))
        .await;
    assert_eq!(result["done"], false);
    assert_eq!(result["output"], "first\nName: ");
    let id = id_of(&result);
    let offset = result["offset"].as_u64().unwrap();
    let (status, typed) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "bob\n", "offset": offset, "idle_flush_seconds": 0.2}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    assert_eq!(typed["output"], "bob\nhello bob\n");
    let offset = typed["offset"].as_u64().unwrap();
    let (_, typed) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "\n", "offset": offset}),
        )
        .await;
    let (rest, done) = server.wait_done(&id, offset).await;
    assert!(typed["offset"].as_u64().unwrap() >= offset, "{typed}");
    assert_eq!(rest, "\n");
    assert_eq!(
        (done["status"].clone(), done["exit_code"].clone()),
        (json!("exited"), json!(0))
    );
    // Input to an ended job is refused.
    let (status, err) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "x", "offset": 0}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (409, json!("job_not_running"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_reread_and_truncated_windows_reassemble_multibyte_output() {
    let server = TestServer::start();
    let result = server
        .run(json!({"script": "i=0; while [ $i -lt 300 ]; do printf 'é🙂x'; i=$((i+1)); done; echo", "output_limit": 7}))
        .await;
    assert_eq!(result["truncated"], true);
    let id = id_of(&result);
    let mut offset = 0u64;
    let mut text = String::new();
    loop {
        let (status, window) = server
            .post(
                &format!("/v1/jobs/{id}/wait"),
                json!({"offset": offset, "output_limit": 7}),
            )
            .await;
        assert_eq!(status, 200);
        assert!(window["output"].as_str().unwrap().len() <= 7);
        text.push_str(window["output"].as_str().unwrap());
        offset = window["offset"].as_u64().unwrap();
        if !window["truncated"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(text, format!("{}\n", "é🙂x".repeat(300)));
    // Re-reading from 0 gives the same bytes again.
    let (_, again) = server
        .post(
            &format!("/v1/jobs/{id}/wait"),
            json!({"offset": 0, "output_limit": 1_048_576}),
        )
        .await;
    assert_eq!(again["output"].as_str().unwrap(), text);
    let (status, err) = server
        .post(
            &format!("/v1/jobs/{id}/wait"),
            json!({"offset": offset + 1}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (400, json!("invalid_offset"))
    );
    let (status, tail) = server
        .get(&format!("/v1/jobs/{id}/log/tail?output_limit=5"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (tail["output"].clone(), tail["truncated"].clone()),
        (json!("x\n"), json!(false))
    );
    assert_eq!(tail["offset"].as_u64().unwrap(), offset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_output_is_sanitized_through_a_real_pty() {
    let server = TestServer::start();
    let result = server
        .run(json!({"script": "printf '\\033[1;31mred\\033[0m\\r\\n0%%\\r50%%\\r100%%\\n'; printf 'abcdef\\rXY\\n'; printf 'ok\\r\\n'; tput sgr0 2>/dev/null; printf '\\033(Bplain\\016\\n'"}))
        .await;
    assert_eq!(result["output"], "red\n100%\nXYcdef\nok\nplain\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_modes_and_exec_failures() {
    let server = TestServer::start();
    let cases = [
        ("echo $0 | grep -q script && echo sh-mode", "sh-mode\n", 0),
        ("#!/bin/sh\necho shebang-sh", "shebang-sh\n", 0),
        (
            "#!/usr/bin/env bash\necho \"bash ${BASH_VERSINFO[0]:+yes}\"",
            "bash yes\n",
            0,
        ),
        ("#!/usr/bin/env python3\nprint('py', 6 * 7)", "py 42\n", 0),
        ("#!/nonexistent/interpreter\necho never", "", 127),
        ("kill -TERM $$", "", 143),
    ];
    for (script, output, code) in cases {
        let result = server.run(json!({"script": script})).await;
        assert_eq!(
            (
                result["output"].as_str().unwrap(),
                result["exit_code"].as_i64().unwrap()
            ),
            (output, code),
            "{script}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_default_explicit_tilde_and_missing() {
    let server = TestServer::start();
    let home = server.root.join("home");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    let pwd = |r: &Value| r["output"].as_str().unwrap().trim().to_owned();
    assert_eq!(
        pwd(&server.run(json!({"script": "pwd"})).await),
        home.to_string_lossy()
    );
    assert_eq!(
        pwd(&server.run(json!({"script": "pwd", "cwd": "/tmp"})).await),
        "/tmp"
    );
    assert_eq!(
        pwd(&server.run(json!({"script": "pwd", "cwd": "~/sub"})).await),
        home.join("sub").to_string_lossy()
    );
    let (status, err) = server
        .post(
            "/v1/jobs/run",
            json!({"script": "pwd", "cwd": "/no/such/dir"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (400, json!("invalid_cwd"))
    );
}

in_both_modes!(terminate_keeps_trap_output_and_is_idempotent);
async fn terminate_keeps_trap_output_and_is_idempotent(mode: TmuxMode) {
    let server = TestServer::start_in(mode);
    let result = server
        .run(json!({"script": "trap 'echo cleanup; exit 5' INT; echo armed; while :; do sleep 0.1; done", "idle_flush_seconds": 0.2}))
        .await;
    assert_eq!(result["output"], "armed\n");
    let id = id_of(&result);
    let (status, view) = server
        .post(
            &format!("/v1/jobs/{id}/terminate"),
            json!({"grace_seconds": 30}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(keys(&view), sorted(VIEW_FIELDS));
    assert_eq!(
        (
            view["status"].clone(),
            view["done"].clone(),
            view["exit_code"].clone()
        ),
        (json!("terminated"), json!(true), Value::Null)
    );
    let (output, _) = server.wait_done(&id, 0).await;
    assert!(output.contains("cleanup\n"), "{output:?}");
    let (status, again) = server
        .post(&format!("/v1/jobs/{id}/terminate"), json!({}))
        .await;
    assert_eq!(
        (status, again["status"].clone()),
        (200, json!("terminated"))
    );
    // A job that ignores Ctrl-C is killed after the grace.
    let stubborn = server
        .run(json!({"script": "trap '' INT; echo stubborn; sleep 1000", "idle_flush_seconds": 0.2}))
        .await;
    let (_, view) = server
        .post(
            &format!("/v1/jobs/{}/terminate", id_of(&stubborn)),
            json!({"grace_seconds": 0.2}),
        )
        .await;
    assert_eq!(view["status"], "terminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_refuses_running_jobs_unless_forced() {
    let server = TestServer::start();
    let result = server
        .run(json!({"script": "sleep 1000", "timeout": 0.2}))
        .await;
    let id = id_of(&result);
    let (status, err) = server.delete(&format!("/v1/jobs/{id}")).await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (409, json!("job_running"))
    );
    let (status, deleted) = server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0.5"))
        .await;
    assert_eq!(
        (status, deleted),
        (200, json!({"job_id": id, "deleted": true}))
    );
    assert!(!server.state().join("jobs").join(&id).exists());
    let (status, _) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_newest_first_with_filter_and_limit() {
    let server = TestServer::start();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(id_of(
            &server.run(json!({"script": format!("exit {i}")})).await,
        ));
    }
    let running = id_of(
        &server
            .run(json!({"script": "sleep 1000", "timeout": 0.2}))
            .await,
    );
    let listed = |v: &Value| {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (_, all) = server.get("/v1/jobs").await;
    assert_eq!(
        listed(&all),
        [
            running.clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
    let (_, two) = server.get("/v1/jobs?limit=2").await;
    assert_eq!(listed(&two).len(), 2);
    let (_, only) = server.get("/v1/jobs?status=running").await;
    assert_eq!(listed(&only), [running]);
    let (status, _) = server.get("/v1/jobs?status=bogus").await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_are_404_everywhere() {
    let server = TestServer::start();
    for id in ["01010101-abc", "nope", "..%2F..%2Fetc", "01010101-ABC"] {
        let routes = [
            server.get(&format!("/v1/jobs/{id}")).await,
            server.get(&format!("/v1/jobs/{id}/log/tail")).await,
            server
                .post(&format!("/v1/jobs/{id}/wait"), json!({"offset": 0}))
                .await,
            server
                .post(
                    &format!("/v1/jobs/{id}/input"),
                    json!({"text": "x", "offset": 0}),
                )
                .await,
            server
                .post(&format!("/v1/jobs/{id}/terminate"), json!({}))
                .await,
            server.delete(&format!("/v1/jobs/{id}")).await,
        ];
        for (status, body) in routes {
            assert_eq!(
                (status, body["error"]["code"].clone()),
                (404, json!("job_not_found")),
                "{id}: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_clear_4xx() {
    let server = TestServer::start_with(Options {
        token: None,
        extra: vec!["--max-body-bytes".into(), "1024".into()],
    });
    let (status, err) = server
        .post("/v1/jobs/run", json!({"script": "x", "bogus": 1}))
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (422, json!("validation_error"))
    );
    assert!(err["error"]["message"].as_str().unwrap().contains("bogus"));
    let (status, err) = server
        .post(
            "/v1/jobs/run",
            json!({"script": "x", "terminal": {"cols": 0}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("terminal.cols")
    );
    let (status, err) = server
        .post("/v1/jobs/run", json!({"script": "x".repeat(2000)}))
        .await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (413, json!("payload_too_large"))
    );
    let raw = server
        .client
        .post(format!("{}/v1/jobs/run", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 422);
    let (status, _) = server
        .post("/v1/jobs/run", json!({"script": "x", "env": {"A=B": "c"}}))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_wrong_empty_and_public_routes() {
    let server = TestServer::start_with(Options {
        token: Some("s3cret".into()),
        extra: Vec::new(),
    });
    assert_eq!(
        server.run(json!({"script": "echo ok"})).await["output"],
        "ok\n"
    );
    let anonymous = |path: &str| server.client.get(format!("{}{path}", server.base));
    for (builder, expected) in [
        (anonymous("/v1/jobs"), 401),
        (anonymous("/v1/jobs").bearer_auth("wrong"), 401),
        (anonymous("/v1/jobs").bearer_auth(""), 401),
        (anonymous("/v1/jobs").header("authorization", "s3cret"), 401),
        (anonymous("/healthz"), 200),
        (anonymous("/openapi.json"), 200),
    ] {
        let status = builder.send().await.unwrap().status().as_u16();
        assert_eq!(status, expected);
    }
    let (status, err) = server.send(anonymous("/v1/jobs/01010101-abc")).await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_private() {
    let server = TestServer::start();
    let result = server.run(json!({"script": "true"})).await;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(server.state()), 0o700);
    assert_eq!(mode(server.state().join("jobs")), 0o700);
    assert_eq!(
        mode(server.state().join("jobs").join(id_of(&result))),
        0o700
    );
    assert_eq!(mode(server.root.join("run")), 0o700);
    assert_eq!(mode(server.state().join("shellctl.db")), 0o600);
    assert_eq!(
        mode(
            server
                .state()
                .join("jobs")
                .join(id_of(&result))
                .join("output.log")
        ),
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_server_crash_and_finishes_with_full_output() {
    let mut server = TestServer::start();
    let _keep = std::mem::take(server.dir_mut());
    let result = server
        .run(json!({"script": "echo before; read go; echo after; exit 7", "idle_flush_seconds": 0.2}))
        .await;
    assert_eq!(result["output"], "before\n");
    let id = id_of(&result);
    server.kill9();
    // While no server runs, the job goes on; type into it through tmux.
    server.type_line_through_tmux(&id, "go");
    let restarted = server.restart();
    let (output, done) = restarted.wait_done(&id, 0).await;
    assert_eq!(output, "before\ngo\nafter\n");
    assert_eq!(
        (done["status"].clone(), done["exit_code"].clone()),
        (json!("exited"), json!(7))
    );
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_promptly_and_leaves_jobs_running() {
    let mut server = TestServer::start();
    let _keep = std::mem::take(server.dir_mut());
    let result = server
        .run(json!({"script": "echo up; read x; echo got $x", "idle_flush_seconds": 0.2}))
        .await;
    let id = id_of(&result);
    server.sigterm();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let restarted = server.restart();
    let (status, view) = restarted.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!((status, view["status"].clone()), (200, json!("running")));
    let offset = view["offset"].as_u64().unwrap();
    let (status, typed) = restarted
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "z\n", "offset": offset}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    let (output, done) = restarted.wait_done(&id, 0).await;
    assert_eq!(output, "up\nz\ngot z\n");
    assert_eq!(done["exit_code"], 0);
}

in_both_modes!(a_killed_tmux_server_makes_jobs_lost_and_new_jobs_still_work);
async fn a_killed_tmux_server_makes_jobs_lost_and_new_jobs_still_work(mode: TmuxMode) {
    let server = TestServer::start_in(mode);
    let result = server
        .run(json!({"script": "sleep 1000", "timeout": 0.2}))
        .await;
    let id = id_of(&result);
    assert!(server.tmux(&["kill-server"]).status.success());
    let view = server.status_until(&id, |v| v["done"] == true).await;
    assert_eq!(view["status"], "lost");
    assert_eq!(
        server.run(json!({"script": "echo alive"})).await["output"],
        "alive\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sanitizer_fails_the_job() {
    let server = TestServer::start();
    let result = server
        .run(json!({"script": "sleep 1000", "timeout": 0.2}))
        .await;
    let id = id_of(&result);
    let killed = std::process::Command::new("pkill")
        .args(["-f", &format!("sanitize-pty --job-id {id}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let view = server.status_until(&id, |v| v["done"] == true).await;
    assert_eq!(view["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_ended_jobs_after_the_retention() {
    let server = TestServer::start_with(Options {
        token: None,
        extra: [
            "--gc-interval-seconds",
            "0.2",
            "--gc-finished-job-retention-seconds",
            "0.5",
        ]
        .map(String::from)
        .to_vec(),
    });
    let done = id_of(&server.run(json!({"script": "true"})).await);
    let running = id_of(
        &server
            .run(json!({"script": "sleep 1000", "timeout": 0.2}))
            .await,
    );
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while server.get(&format!("/v1/jobs/{done}")).await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "ended job was never collected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The row goes first (from then on, 404), the directory right after.
    while server.state().join("jobs").join(&done).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the collected job's directory was never removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.get(&format!("/v1/jobs/{running}")).await.0,
        200,
        "running jobs are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_in_flight_waits_early() {
    let mut server = TestServer::start();
    let result = server
        .run(json!({"script": "sleep 1000", "timeout": 0.2}))
        .await;
    let id = id_of(&result);
    // Write the whole wait request on its own connection first...
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = json!({"offset": 0, "timeout": 300}).to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let request = format!(
        "POST /v1/jobs/{id}/wait HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    // ...then a request on a later connection: once it is answered, the
    // server has taken up the earlier one, whose bytes were already there.
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.0, 200);
    let waiter = tokio::task::spawn_blocking(move || {
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).map(|_| response)
    });
    server.sigterm();
    let response = tokio::time::timeout(HANG_GUARD, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"running\""), "{response}");
    assert!(server.child.wait().unwrap().success());
}

in_both_modes!(many_concurrent_jobs_all_finish_with_their_own_output);
async fn many_concurrent_jobs_all_finish_with_their_own_output(mode: TmuxMode) {
    let server = std::sync::Arc::new(TestServer::start_in(mode));
    let mut tasks = Vec::new();
    for i in 0..48 {
        let server = std::sync::Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let result = server.run(json!({"script": format!("echo job-{i}")})).await;
            let (output, done) = server.wait_done(&id_of(&result), 0).await;
            (i, output, done["status"].clone(), done["exit_code"].clone())
        }));
    }
    for task in tasks {
        let (i, output, status, code) = tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("job hung")
            .unwrap();
        assert_eq!(
            (output, status, code),
            (format!("job-{i}\n"), json!("exited"), json!(0))
        );
    }
}

in_both_modes!(state_paths_with_shell_and_tmux_metacharacters_work);
async fn state_paths_with_shell_and_tmux_metacharacters_work(mode: TmuxMode) {
    let dir = tempfile::tempdir().unwrap();
    // Quotes, a format character, a command separator, a variable and a
    // tilde: each would change the meaning of a badly quoted tmux command.
    let root = dir.path().join("it's #{pane_id} a;b $HOME ~");
    std::fs::create_dir_all(root.join("home")).unwrap();
    let flag = match mode {
        TmuxMode::Control => "control",
        TmuxMode::Cli => "cli",
    };
    let server = TestServer::spawn_in(
        &root,
        Options {
            token: None,
            extra: vec!["--tmux-client".into(), flag.into()],
        },
    );
    let result = server.run(json!({"script": "echo odd paths"})).await;
    let (output, done) = server.wait_done(&id_of(&result), 0).await;
    assert_eq!(
        (output.as_str(), done["exit_code"].clone()),
        ("odd paths\n", json!(0))
    );
    assert!(
        std::path::Path::new(result["output_path"].as_str().unwrap()).starts_with(&root),
        "{result}"
    );
}

/// Pids of the tmux server's control-mode clients.
fn control_clients(server: &TestServer) -> Vec<String> {
    let listing = server.tmux(&["list-clients", "-F", "#{client_pid} #{client_control_mode}"]);
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(" 1").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_control_client_falls_back_to_the_command_line_and_comes_back() {
    let server = TestServer::start_in(TmuxMode::Control);
    assert_eq!(
        server.run(json!({"script": "echo one"})).await["output"],
        "one\n"
    );
    let clients = control_clients(&server);
    assert_eq!(clients.len(), 1, "{clients:?}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &clients[0]])
        .status()
        .unwrap();
    assert!(killed.success());
    // Whether or not the server has noticed yet, jobs keep working. One
    // exception: a start whose `new-session` was handed to the client as
    // it died may or may not have run, and is not repeated blindly (the
    // tmux layer's `Repeat::Unsafe`): that job fails as `start_failed`,
    // and the next start goes through the command line.
    let mut two = server.run(json!({"script": "echo two"})).await;
    let mut jobs = 3;
    if two["status"] == "failed" {
        jobs += 1;
        let (_, detail) = server
            .get(&format!("/v1/jobs/{}/detail", id_of(&two)))
            .await;
        assert_eq!(detail["failure_reason"], "start_failed", "{detail}");
        two = server.run(json!({"script": "echo two"})).await;
    }
    assert_eq!(two["output"], "two\n", "{two}");
    let deadline = std::time::Instant::now() + HANG_GUARD;
    let revived = loop {
        let now = control_clients(&server);
        if now.len() == 1 && now[0] != clients[0] {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new control client: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(revived.len(), 1);
    assert_eq!(
        server.run(json!({"script": "echo three"})).await["output"],
        "three\n"
    );
    // The control client's own session is never listed as a job.
    let (_, listing) = server.get("/v1/jobs").await;
    assert_eq!(listing["jobs"].as_array().unwrap().len(), jobs, "{listing}");
}
