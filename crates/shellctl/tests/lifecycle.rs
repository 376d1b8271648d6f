//! Lifecycle defects found in review, each against a real server: inotify
//! watches go back to one per live job as jobs end, and a job whose
//! creation fails leaves no directory behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::json;
use support::{Options, TestServer};

/// inotify watches the process holds, from `/proc/<pid>/fdinfo`.
fn inotify_watches(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .map(|info| {
            info.lines()
                .filter(|line| line.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

fn jobs_on_disk(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.state().join("jobs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_give_their_inotify_watches_back() {
    let server = TestServer::start();
    let pid = server.child.id();
    let idle = inotify_watches(pid);

    for _ in 0..30 {
        let first = server
            .run(json!({"script": "echo done", "timeout": 30}))
            .await;
        server.wait_done(first["job_id"].as_str().unwrap(), 0).await;
    }
    assert_eq!(
        inotify_watches(pid),
        idle,
        "30 ended jobs still hold watches"
    );

    // A live job holds exactly one, until it ends.
    let live = server
        .run(json!({"script": "sleep 100", "timeout": 0.1}))
        .await;
    let job_id = live["job_id"].as_str().unwrap();
    assert_eq!(inotify_watches(pid), idle + 1);
    let (status, ended) = server
        .post(&format!("/v1/jobs/{job_id}/terminate"), json!({}))
        .await;
    assert_eq!(
        (status, ended["status"].as_str()),
        (200, Some("terminated"))
    );
    assert_eq!(inotify_watches(pid), idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_row_cannot_be_written_leaves_no_directory() {
    let server = TestServer::start();
    let database = rusqlite::Connection::open(server.state().join("shellctl.db")).unwrap();
    // The job's row is refused, after its directory was made.
    database
        .execute_batch(
            "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let (status, body) = server
        .post("/v1/jobs/run", json!({"script": "echo hi", "timeout": 1}))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{body}"
    );
    assert!(
        jobs_on_disk(&server).is_empty(),
        "{:?}",
        jobs_on_disk(&server)
    );

    // The server is unharmed once the database takes rows again.
    database.execute_batch("DROP TRIGGER refuse_jobs").unwrap();
    let first = server
        .run(json!({"script": "echo hi", "timeout": 30}))
        .await;
    let (output, _) = server.wait_done(first["job_id"].as_str().unwrap(), 0).await;
    assert_eq!(output, "hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_job_directories_no_row_owns() {
    let mut server = TestServer::start();
    let first = server
        .run(json!({"script": "echo kept", "timeout": 30}))
        .await;
    let kept = first["job_id"].as_str().unwrap().to_owned();
    server.wait_done(&kept, 0).await;
    let jobs = server.state().join("jobs");
    // An orphan, as an older version left after a failed creation, and a
    // directory that is not a job's.
    std::fs::create_dir(jobs.join("05211530-abc")).unwrap();
    std::fs::write(jobs.join("05211530-abc").join("script"), "echo").unwrap();
    std::fs::create_dir(jobs.join("notes")).unwrap();

    let _keep = std::mem::take(server.dir_mut());
    server.sigterm();
    server.child.wait().unwrap();
    let restarted = TestServer::spawn_in(
        &server.root,
        Options {
            token: None,
            extra: Vec::new(),
        },
    );
    assert_eq!(jobs_on_disk(&restarted), [kept.clone(), "notes".to_owned()]);
    let (status, _) = restarted.get(&format!("/v1/jobs/{kept}")).await;
    assert_eq!(status, 200);
    drop(restarted);
}
