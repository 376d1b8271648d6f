//! The agent routes against a real server: labels, idempotency keys and
//! deadlines on `run`, a job's detail, `wait-for`, log search and digests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::*;

fn id_of(result: &Value) -> String {
    result["job_id"].as_str().unwrap().to_owned()
}

/// The job's row as the job side left it, read straight from SQLite (for
/// while no server runs).
fn row_of(server_root: &std::path::Path, job_id: &str) -> (String, Option<String>) {
    let db = rusqlite::Connection::open(server_root.join("state/shellctl.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row(
        "SELECT status, end_reason FROM jobs WHERE job_id = ?1",
        [job_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_split_across_two_writes_matches_once_whole() {
    let server = TestServer::start();
    let job = server
        .run(json!({
            "script": "printf 'build sta'; sleep 0.2; printf 'rted ok\\nmore\\n'; sleep 30",
            "timeout": 0.001,
        }))
        .await;
    let id = id_of(&job);
    let (status, found) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "pattern": "started ok", "timeout": 60}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["reason"], "matched", "{found}");
    assert_eq!(found["match"], json!({"offset": 6, "text": "started ok"}));
    // The output runs to the end of the matching line, not past it.
    assert_eq!(found["output"], "build started ok\n");
    assert_eq!(found["offset"], 17);
    assert_eq!(found["waiting_for_input"], Value::Null);
    assert_eq!(found["done"], false);
    // Only matches from the offset on count.
    let (_, later) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 17, "pattern": "started|more", "timeout": 60}),
        )
        .await;
    assert_eq!(
        later["match"],
        json!({"offset": 17, "text": "more"}),
        "{later}"
    );
    server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_ends_on_exit_input_idle_and_timeout() {
    let server = TestServer::start();
    // Exit: the job ends without the pattern showing.
    let job = server
        .run(json!({"script": "echo one; exit 3", "timeout": 0.001}))
        .await;
    let id = id_of(&job);
    let (_, ended) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "pattern": "never", "timeout": 60}),
        )
        .await;
    assert_eq!(ended["reason"], "exited", "{ended}");
    assert_eq!(
        (
            ended["exit_code"].clone(),
            ended["output"].clone(),
            ended["match"].clone()
        ),
        (json!(3), json!("one\n"), Value::Null)
    );

    // Input: a password prompt with echo off.
    let job = server
        .run(json!({
            "script": "stty -echo; printf 'Password: '; read secret; stty echo; echo; echo got ${#secret}",
            "timeout": 0.001,
        }))
        .await;
    let id = id_of(&job);
    let (_, asked) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "timeout": 60}),
        )
        .await;
    assert_eq!(asked["reason"], "waiting_for_input", "{asked}");
    assert_eq!(asked["waiting_for_input"]["kind"], "password", "{asked}");
    assert_eq!(asked["waiting_for_input"]["prompt"], "Password: ");
    let offset = asked["offset"].as_u64().unwrap();
    let (status, typed) = server
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "hunter2\n", "offset": offset, "timeout": 0.001}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    let (_, answered) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": offset, "timeout": 60}),
        )
        .await;
    assert_eq!(answered["reason"], "exited", "{answered}");
    let (all, _) = server.wait_done(&id, 0).await;
    assert!(all.ends_with("got 7\n"), "{all:?}");
    assert!(!all.contains("hunter2"), "echo was off: {all:?}");

    // Idle: output, then quiet.
    let job = server
        .run(json!({"script": "echo working; sleep 30", "timeout": 0.001}))
        .await;
    let id = id_of(&job);
    let (_, idle) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "until": ["idle"], "idle_flush_seconds": 0.2, "timeout": 60}),
        )
        .await;
    assert_eq!(idle["reason"], "idle", "{idle}");
    assert_eq!(idle["output"], "working\n");

    // Timeout: nothing of what was asked for happens.
    let (_, timed_out) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 8, "until": ["exit"], "timeout": 0.3}),
        )
        .await;
    assert_eq!(timed_out["reason"], "timeout", "{timed_out}");
    assert_eq!(timed_out["output"], "");
    server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_wait_for_and_search_requests_are_clear_4xx() {
    let server = TestServer::start();
    let job = server.run(json!({"script": "echo hi"})).await;
    let id = id_of(&job);
    for (body, field) in [
        (json!({"offset": 0, "pattern": "("}), "pattern"),
        (json!({"offset": 0, "until": ["match"]}), "until"),
        (json!({"offset": 0, "until": []}), "until"),
        (json!({"offset": 0, "until": ["later"]}), "until"),
        (json!({"offset": 0, "pattern": ""}), "pattern"),
    ] {
        let (status, error) = server.post(&format!("/v1/jobs/{id}/wait-for"), body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["code"], "validation_error");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let (status, error) = server
        .post(&format!("/v1/jobs/{id}/wait-for"), json!({"offset": 999}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (400, json!("invalid_offset"))
    );
    let (status, _) = server
        .get(&format!("/v1/jobs/{id}/log/search?pattern=%28"))
        .await;
    assert_eq!(status, 422);
    let (status, _) = server.get(&format!("/v1/jobs/{id}/log/search")).await;
    assert_eq!(status, 422, "pattern is required");
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{id}/digest"),
            json!({"offset": 0, "max_bytes": 10}),
        )
        .await;
    assert_eq!(status, 422, "a budget too small for the markers");
    let (status, _) = server.get("/v1/jobs/01010101-zzz/detail").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_starts_one_job_even_across_a_kill_9_restart() {
    let mut server = TestServer::start();
    let root = server.root.clone();
    let _keep = std::mem::take(server.dir_mut());
    let script = "echo started; sleep 30";
    let first = server
        .run(json!({"script": script, "idempotency_key": "deploy-7", "idle_flush_seconds": 0.1}))
        .await;
    let id = id_of(&first);
    assert_eq!(first["output"], "started\n");
    let again = server
        .run(json!({"script": script, "idempotency_key": "deploy-7", "idle_flush_seconds": 0.1}))
        .await;
    assert_eq!(id_of(&again), id);
    assert_eq!(
        again["output"], "started\n",
        "from offset 0, as run answers"
    );
    server.kill9();
    let restarted = TestServer::spawn_in(
        &root,
        Options {
            token: None,
            extra: Vec::new(),
        },
    );
    let after = restarted
        .run(json!({"script": script, "idempotency_key": "deploy-7", "idle_flush_seconds": 0.1}))
        .await;
    assert_eq!(id_of(&after), id);
    assert_eq!(after["status"], "running");
    let (status, conflict) = restarted
        .post(
            "/v1/jobs/run",
            json!({"script": "echo other", "idempotency_key": "deploy-7"}),
        )
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    let (_, listed) = restarted.get("/v1/jobs").await;
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        1,
        "no second job: {listed}"
    );
    let (_, detail) = restarted.get(&format!("/v1/jobs/{id}/detail")).await;
    assert_eq!(detail["idempotency_key"], "deploy-7");
    // Once the job is deleted, the key is free again.
    restarted
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0"))
        .await;
    let fresh = restarted
        .run(json!({"script": "echo other", "idempotency_key": "deploy-7"}))
        .await;
    assert_ne!(id_of(&fresh), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_runtime_ends_the_job_while_the_server_is_stopped() {
    let mut server = TestServer::start();
    let root = server.root.clone();
    let _keep = std::mem::take(server.dir_mut());
    let job = server
        .run(json!({
            "script": "trap 'echo interrupted; exit 130' INT; echo up; while :; do sleep 1; done",
            "max_runtime_seconds": 2,
            "idle_flush_seconds": 0.1,
        }))
        .await;
    let id = id_of(&job);
    assert_eq!(job["status"], "running");
    server.kill9();
    // No server runs: the job side ends the job and commits it.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    let row = loop {
        let row = row_of(&root, &id);
        if row.0 != "running" {
            break row;
        }
        assert!(std::time::Instant::now() < deadline, "never ended: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        row,
        ("terminated".to_owned(), Some("max_runtime".to_owned()))
    );
    let restarted = TestServer::spawn_in(
        &root,
        Options {
            token: None,
            extra: Vec::new(),
        },
    );
    let (output, done) = restarted.wait_done(&id, 0).await;
    assert_eq!(
        output, "up\ninterrupted\n",
        "Ctrl-C first, which the trap saw"
    );
    assert_eq!(
        (done["status"].clone(), done["exit_code"].clone()),
        (json!("terminated"), Value::Null)
    );
    let (_, detail) = restarted.get(&format!("/v1/jobs/{id}/detail")).await;
    assert_eq!(detail["end_reason"], "max_runtime", "{detail}");
    assert_eq!(detail["max_runtime_seconds"], 2.0);
    assert_eq!(detail["pid"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_kills_a_job_that_ignores_ctrl_c_once_output_stops() {
    let server = TestServer::start();
    // Prints for a while (each line resets the idle clock), then goes
    // quiet and ignores SIGINT, so only the kill after the grace ends it.
    let job = server
        .run(json!({
            "script": "trap '' INT; for i in 1 2 3; do echo tick $i; sleep 0.5; done; sleep 600",
            "idle_timeout_seconds": 1.5,
            "timeout": 0.001,
        }))
        .await;
    let id = id_of(&job);
    let (output, done) = server.wait_done(&id, 0).await;
    assert_eq!(output, "tick 1\ntick 2\ntick 3\n");
    assert_eq!(done["status"], "terminated");
    let (_, detail) = server.get(&format!("/v1/jobs/{id}/detail")).await;
    assert_eq!(detail["end_reason"], "idle_timeout", "{detail}");
    assert_eq!(detail["idle_timeout_seconds"], 1.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_filter_the_list() {
    let server = TestServer::start();
    let dev = server
        .run(json!({"script": "echo dev", "label": "dev-server"}))
        .await;
    server
        .run(json!({"script": "echo build", "label": "build"}))
        .await;
    server.run(json!({"script": "echo plain"})).await;
    let (_, listed) = server.get("/v1/jobs?label=dev-server").await;
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [dev["job_id"].as_str().unwrap()]);
    // The v1 listing's rows keep exactly their fields.
    assert_eq!(
        keys(&listed["jobs"][0]),
        sorted(&["job_id", "status", "created_at", "started_at", "ended_at"])
    );
    let (_, all) = server.get("/v1/jobs").await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 3);
    let (_, none) = server.get("/v1/jobs?label=nope").await;
    assert_eq!(none["jobs"], json!([]));
    let (status, error) = server
        .post(
            "/v1/jobs/run",
            json!({"script": "true", "label": "x".repeat(129)}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (422, json!("validation_error"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_tells_everything_about_a_job() {
    let server = TestServer::start();
    let home = server.root.join("home");
    std::fs::create_dir_all(home.join("work")).unwrap();
    let dev = server
        .run(json!({
            "script": "echo dev; sleep 30",
            "label": "dev-server",
            "cwd": "~/work",
            "terminal": {"cols": 100, "rows": 30},
            "max_runtime_seconds": 600,
            "timeout": 0.001,
        }))
        .await;
    let dev_id = id_of(&dev);
    let (status, detail) = server.get(&format!("/v1/jobs/{dev_id}/detail")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        keys(&detail),
        sorted(&[
            "job_id",
            "status",
            "done",
            "exit_code",
            "created_at",
            "started_at",
            "ended_at",
            "offset",
            "label",
            "idempotency_key",
            "cwd",
            "script",
            "terminal",
            "failure_reason",
            "end_reason",
            "output_bytes",
            "max_runtime_seconds",
            "idle_timeout_seconds",
            "pid",
            "keep_background",
            "memory_max_bytes",
            "pids_max",
            "cpu_max",
            "containment",
            "leftover_processes",
            "log_capped",
            "log_incomplete",
        ])
    );
    assert_eq!(detail["label"], "dev-server");
    assert_eq!(detail["keep_background"], false);
    assert_eq!(detail["memory_max_bytes"], Value::Null);
    assert_eq!(detail["leftover_processes"], 0);
    assert_eq!(detail["log_capped"], false);
    assert!(
        ["cgroup", "process_scan"].contains(&detail["containment"].as_str().unwrap()),
        "{detail}"
    );
    assert_eq!(detail["script"], "echo dev; sleep 30");
    assert_eq!(detail["cwd"], home.join("work").to_str().unwrap());
    assert_eq!(detail["terminal"], json!({"cols": 100, "rows": 30}));
    assert_eq!(detail["status"], "running");
    assert_eq!(detail["end_reason"], Value::Null);
    assert!(detail["pid"].as_u64().unwrap() > 1);
    assert_eq!(detail["max_runtime_seconds"], 600.0);
    assert_eq!(detail["idle_timeout_seconds"], Value::Null);
    // The live size follows a resize.
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{dev_id}/resize"),
            json!({"cols": 90, "rows": 20}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, detail) = server.get(&format!("/v1/jobs/{dev_id}/detail")).await;
    assert_eq!(detail["terminal"], json!({"cols": 90, "rows": 20}));
    let (_, terminated) = server
        .post(
            &format!("/v1/jobs/{dev_id}/terminate"),
            json!({"grace_seconds": 0}),
        )
        .await;
    assert_eq!(terminated["status"], "terminated");
    let (_, detail) = server.get(&format!("/v1/jobs/{dev_id}/detail")).await;
    assert_eq!(
        (detail["end_reason"].clone(), detail["pid"].clone()),
        (json!("terminate"), Value::Null)
    );

    let quick = server.run(json!({"script": "echo quick; exit 4"})).await;
    let quick_id = id_of(&quick);
    server.wait_done(&quick_id, 0).await;
    let (_, detail) = server.get(&format!("/v1/jobs/{quick_id}/detail")).await;
    assert_eq!(
        (
            detail["end_reason"].clone(),
            detail["exit_code"].clone(),
            detail["output_bytes"].clone(),
            detail["failure_reason"].clone()
        ),
        (json!("exit"), json!(4), json!(6), Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_digest_read_the_whole_log() {
    let server = TestServer::start();
    let job = server
        .run(json!({
            "script": "seq 1 200000 | sed 's/^/line /'; echo 'ERROR: disk full'; exit 1",
            "timeout": 0.001,
        }))
        .await;
    let id = id_of(&job);
    let (_, ended) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "timeout": 120}),
        )
        .await;
    assert_eq!(
        (ended["reason"].clone(), ended["exit_code"].clone()),
        (json!("exited"), json!(1))
    );
    let (status, found) = server
        .get(&format!(
            "/v1/jobs/{id}/log/search?pattern=%5Eline%20100000%24"
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let offset_of_line = |n: u64| -> u64 {
        // "line N\n" for every N before.
        (1..n).map(|k| 6 + k.to_string().len() as u64).sum()
    };
    assert_eq!(
        found,
        json!({"matches": [{"offset": offset_of_line(100_000), "line_number": 100_000, "line": "line 100000"}], "truncated": false})
    );
    let (_, many) = server
        .get(&format!(
            "/v1/jobs/{id}/log/search?pattern=line%201999&limit=3"
        ))
        .await;
    assert_eq!(many["matches"].as_array().unwrap().len(), 3);
    assert_eq!(many["truncated"], true);

    let (status, digest) = server
        .post(
            &format!("/v1/jobs/{id}/digest"),
            json!({"offset": 0, "max_bytes": 4000}),
        )
        .await;
    assert_eq!(status, 200, "{digest}");
    let text = digest["text"].as_str().unwrap();
    assert!(text.len() <= 4000, "{}", text.len());
    assert!(text.starts_with("line 1\n"), "{text}");
    assert!(text.ends_with("ERROR: disk full\n"), "{text}");
    assert!(text.contains(" omitted, offsets "), "{text}");
    let size = offset_of_line(200_001) + "ERROR: disk full\n".len() as u64;
    assert_eq!(digest["offset"], size);
    assert!(digest["omitted_bytes"].as_u64().unwrap() > size - 4000);
    assert!(digest["omitted_lines"].as_u64().unwrap() > 190_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_at_the_end_of_an_unfinished_line_waits_for_the_rest_or_a_prompt() {
    let server = TestServer::start();
    // "err" arrives, then a second later the rest of the line: `^err$`
    // must not match the start of "error happened".
    let job = server
        .run(json!({
            "script": "printf err; sleep 1; echo 'or happened'; echo err; sleep 30",
            "timeout": 0.001,
        }))
        .await;
    let id = id_of(&job);
    let (_, found) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "pattern": "^err$", "timeout": 60}),
        )
        .await;
    assert_eq!(found["reason"], "matched", "{found}");
    assert_eq!(
        found["match"],
        json!({"offset": 15, "text": "err"}),
        "{found}"
    );
    assert_eq!(found["output"], "error happened\nerr\n");
    server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0"))
        .await;

    // A prompt: the line stays unfinished, and the job reads the terminal.
    let job = server
        .run(json!({"script": "printf 'Name: '; read name; echo \"hi $name\"", "timeout": 0.001}))
        .await;
    let id = id_of(&job);
    let (_, prompt) = server
        .post(
            &format!("/v1/jobs/{id}/wait-for"),
            json!({"offset": 0, "pattern": "Name: $", "until": ["match"], "timeout": 60}),
        )
        .await;
    assert_eq!(prompt["reason"], "matched", "{prompt}");
    assert_eq!(prompt["match"], json!({"offset": 0, "text": "Name: "}));
    assert_eq!(prompt["waiting_for_input"]["kind"], "line", "{prompt}");
    server
        .delete(&format!("/v1/jobs/{id}?force=true&grace_seconds=0"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_ends_every_process_of_the_job_even_when_the_leader_dies_first() {
    let server = TestServer::start();
    // The leader dies of the Ctrl-C at once; its background child ignores
    // SIGINT (a background job of sh does) and would live on.
    let job = server
        .run(json!({
            "script": "sleep 300 & echo $!; sleep 300",
            "max_runtime_seconds": 1,
            "idle_flush_seconds": 0.1,
        }))
        .await;
    let id = id_of(&job);
    let (output, done) = server.wait_done(&id, 0).await;
    assert_eq!(done["status"], "terminated", "{done}");
    let pid: u32 = output.trim().parse().unwrap();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|rest| rest.trim().chars().next())
        })
        .flatten();
    assert!(
        matches!(state, None | Some('Z')),
        "the background sleep {pid} survived the deadline (state {state:?})"
    );
    let (_, detail) = server.get(&format!("/v1/jobs/{id}/detail")).await;
    assert_eq!(detail["end_reason"], "max_runtime");
}
