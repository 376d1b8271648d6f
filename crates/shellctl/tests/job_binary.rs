//! The lean job-side binary: a server starts `shellctl-job` beside it for
//! each job's runner and pipe side, falls back to its own binary when that
//! is missing, and `shellctl-job` refuses command lines it does not take.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Command;
use support::{Options, TestServer};

const LEAN: &str = env!("CARGO_BIN_EXE_shellctl-job");

/// The programs of the job's runner (the script's parent) and of its pipe
/// side (the process whose command line names the job), read while the
/// job sleeps.
async fn job_side_programs(server: &TestServer) -> (String, String) {
    let run = server
        .run(json!({
            "script": "echo runner=$(tr '\\0' ' ' < /proc/$PPID/cmdline); sleep 30",
            "timeout": 10
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap().to_owned();
    let mut output = run["output"].as_str().unwrap().to_owned();
    let mut offset = run["offset"].as_u64().unwrap();
    while !output.contains('\n') {
        let (status, body) = server
            .post(
                &format!("/v1/jobs/{job_id}/wait"),
                json!({"offset": offset, "timeout": 10}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        output.push_str(body["output"].as_str().unwrap());
        offset = body["offset"].as_u64().unwrap();
    }
    let runner = output
        .lines()
        .find_map(|line| line.strip_prefix("runner="))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let pipe_side = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|raw| {
            raw.split(|b| *b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect::<Vec<_>>()
        })
        .find(|args| args.iter().any(|a| a == "sanitize-pty") && args.contains(&job_id))
        .expect("the job's pipe side runs")[0]
        .clone();
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{job_id}/terminate"),
            json!({"grace_seconds": 0}),
        )
        .await;
    assert_eq!(status, 200);
    (runner, pipe_side)
}

#[tokio::test]
async fn jobs_run_under_the_lean_binary_beside_the_server() {
    let server = TestServer::start();
    let (runner, pipe_side) = job_side_programs(&server).await;
    let lean = Path::new(LEAN).canonicalize().unwrap();
    assert_eq!(Path::new(&runner), lean);
    assert_eq!(Path::new(&pipe_side), lean);
}

#[tokio::test]
async fn a_server_without_the_lean_binary_runs_jobs_with_its_own() {
    // A copy of `shellctl` alone in a directory (a hard link: the path the
    // server sees as its own has no `shellctl-job` beside it).
    let solo = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let alone = solo.path().join("shellctl");
    std::fs::hard_link(support::BIN, &alone)
        .or_else(|_| std::fs::copy(support::BIN, &alone).map(drop))
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("home")).unwrap();
    let server = TestServer::spawn_binary(
        &alone,
        root.path(),
        Options {
            token: None,
            extra: Vec::new(),
        },
    );
    let (runner, pipe_side) = job_side_programs(&server).await;
    assert_eq!(Path::new(&runner), alone);
    assert_eq!(Path::new(&pipe_side), alone);
}

#[test]
fn the_lean_binary_refuses_command_lines_it_does_not_take() {
    for args in [
        &[][..],
        &["serve"][..],
        &["job-runner"][..],
        &["job-runner", "--job-dir"][..],
        &["job-runner", "--job-dir", "/x", "--job-dir", "/y"][..],
        &["job-runner", "--job-dir", "/x", "--state-dir", "/y"][..],
        &["sanitize-pty", "--job-dir", "/x", "--state-dir", "/y"][..],
    ] {
        let out = Command::new(LEAN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage: shellctl-job"), "{args:?}: {stderr}");
    }
}
