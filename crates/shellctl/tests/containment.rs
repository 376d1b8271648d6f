//! Containment and guards against the real binary, tmux and SQLite: the
//! three escapes (`setsid`, `nohup`, a double fork) end with `terminate` and
//! at a natural exit, in cgroups and with the marker scan;
//! `keep_background`; `pids_max` and `memory_max_bytes` where cgroups allow
//! and `unsupported_limit` where they do not; `--max-running-jobs`;
//! `--max-log-bytes`; and a full disk (a small tmpfs state dir).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{HANG_GUARD, Options, TestServer};

/// A server tracking jobs in cgroups (`auto`) or by the marker (`off`).
fn server(cgroups: &str, extra: &[&str]) -> TestServer {
    let mut args = vec!["--cgroups".to_owned(), cgroups.to_owned()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    TestServer::start_with(Options {
        token: None,
        extra: args,
    })
}

/// Whether this host lets the server make cgroups, decided here by the
/// test itself (not by the code under test): the pids hierarchy (v1) or
/// the unified one (v2) accepts a new group.
fn host_has_cgroups() -> bool {
    ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .iter()
        .any(|root| {
            let probe =
                std::path::Path::new(root).join(format!("shellctl-probe-{}", std::process::id()));
            let made = std::fs::create_dir(&probe).is_ok();
            if made {
                std::fs::remove_dir(&probe).unwrap();
            }
            made && std::path::Path::new(root).join("cgroup.procs").exists()
        })
}

/// A `sleep` duration no other process on the host uses, to find the
/// test's own sleeps in `/proc`.
fn unique_sleep(n: u32) -> String {
    format!("{}.{}", 3000 + n, std::process::id())
}

/// Processes (not zombies) whose command line holds `word` as a whole
/// argument.
fn running_with_arg(word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rfind(')')
                    .map(|end| stat[end + 1..].trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if !zombie && cmdline.split(|b| *b == 0).any(|arg| arg == word.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits until `check` holds (a state of the host, not a time), at most
/// [`HANG_GUARD`].
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A script with the three escapes, each running `sleep` with its own
/// duration, then `tail`.
fn escapes(tags: &[String; 3], tail: &str) -> String {
    format!(
        "setsid sleep {} >/dev/null 2>&1 </dev/null &\n\
         nohup sh -c 'sleep {}' >/dev/null 2>&1 &\n\
         (sh -c 'sleep {} >/dev/null 2>&1 &' &)\n\
         echo started\n{tail}\n",
        tags[0], tags[1], tags[2]
    )
}

fn tags(base: u32) -> [String; 3] {
    [
        unique_sleep(base),
        unique_sleep(base + 1),
        unique_sleep(base + 2),
    ]
}

async fn all_three_running(tags: &[String; 3]) {
    for tag in tags {
        until(&format!("sleep {tag} runs"), || {
            !running_with_arg(tag).is_empty()
        })
        .await;
    }
}

fn none_running(tags: &[String; 3]) {
    for tag in tags {
        assert_eq!(
            running_with_arg(tag),
            Vec::<u32>::new(),
            "sleep {tag} survived"
        );
    }
}

async fn detail(server: &TestServer, job_id: &str) -> Value {
    let (status, detail) = server.get(&format!("/v1/jobs/{job_id}/detail")).await;
    assert_eq!(status, 200, "{detail}");
    detail
}

async fn escapes_end_with_terminate(cgroups: &str, base: u32, kind: &str) {
    let server = server(cgroups, &[]);
    let tags = tags(base);
    let run = server
        .run(json!({"script": escapes(&tags, "sleep 600"), "timeout": 30}))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    all_three_running(&tags).await;
    let (status, ended) = server
        .post(
            &format!("/v1/jobs/{job_id}/terminate"),
            json!({"grace_seconds": 5}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "terminated");
    // Complete before the answer: nothing is left to wait for.
    none_running(&tags);
    let detail = detail(&server, job_id).await;
    assert_eq!(detail["containment"], kind);
    assert!(
        detail["leftover_processes"].as_u64().unwrap() >= 3,
        "{detail}"
    );
}

#[tokio::test]
async fn escapes_end_with_terminate_in_cgroups() {
    assert!(
        host_has_cgroups(),
        "this host offers no cgroups to test with"
    );
    escapes_end_with_terminate("auto", 0, "cgroup").await;
}

#[tokio::test]
async fn escapes_end_with_terminate_by_the_marker() {
    escapes_end_with_terminate("off", 10, "process_scan").await;
}

async fn escapes_end_at_a_natural_exit(cgroups: &str, base: u32) {
    let server = server(cgroups, &[]);
    let tags = tags(base);
    let run = server
        .run(json!({"script": escapes(&tags, "sleep 0.5"), "timeout": 30}))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    let (_, done) = server.wait_done(job_id, 0).await;
    assert_eq!(done["status"], "exited", "{done}");
    assert_eq!(done["exit_code"], 0);
    // The job reads as ended only once what it left behind is gone.
    none_running(&tags);
    let detail = detail(&server, job_id).await;
    assert!(
        detail["leftover_processes"].as_u64().unwrap() >= 3,
        "{detail}"
    );
    assert_eq!(detail["end_reason"], "exit");
}

#[tokio::test]
async fn escapes_end_at_a_natural_exit_in_cgroups() {
    assert!(
        host_has_cgroups(),
        "this host offers no cgroups to test with"
    );
    escapes_end_at_a_natural_exit("auto", 20).await;
}

#[tokio::test]
async fn escapes_end_at_a_natural_exit_by_the_marker() {
    escapes_end_at_a_natural_exit("off", 30).await;
}

async fn keep_background_keeps_a_daemon_until_delete(cgroups: &str, base: u32) {
    let server = server(cgroups, &[]);
    let daemon = unique_sleep(base);
    let run = server
        .run(json!({
            "script": format!("setsid sleep {daemon} >/dev/null 2>&1 </dev/null &\necho started\n"),
            "keep_background": true,
            "timeout": 30
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    let (_, done) = server.wait_done(job_id, 0).await;
    assert_eq!(done["status"], "exited", "{done}");
    until("the daemon runs", || !running_with_arg(&daemon).is_empty()).await;
    let kept = detail(&server, job_id).await;
    assert_eq!(kept["keep_background"], true);
    assert_eq!(kept["leftover_processes"], 0);
    // Still there after the exit was committed.
    assert_eq!(running_with_arg(&daemon).len(), 1);
    let (status, _) = server.delete(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(running_with_arg(&daemon), Vec::<u32>::new());
}

#[tokio::test]
async fn keep_background_keeps_a_daemon_until_delete_in_cgroups() {
    assert!(
        host_has_cgroups(),
        "this host offers no cgroups to test with"
    );
    keep_background_keeps_a_daemon_until_delete("auto", 40).await;
}

#[tokio::test]
async fn keep_background_keeps_a_daemon_until_terminate_by_the_marker() {
    let server = server("off", &[]);
    let daemon = unique_sleep(50);
    let run = server
        .run(json!({
            "script": format!("setsid sleep {daemon} >/dev/null 2>&1 </dev/null &\necho started\n"),
            "keep_background": true,
            "timeout": 30
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    server.wait_done(job_id, 0).await;
    until("the daemon runs", || !running_with_arg(&daemon).is_empty()).await;
    let (status, ended) = server
        .post(&format!("/v1/jobs/{job_id}/terminate"), json!({}))
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "exited", "the exit stands: {ended}");
    assert_eq!(running_with_arg(&daemon), Vec::<u32>::new());
    assert_eq!(detail(&server, job_id).await["leftover_processes"], 1);
}

#[tokio::test]
async fn signal_to_the_job_reaches_a_process_that_left_its_tree() {
    let server = server("off", &[]);
    let escaped = unique_sleep(60);
    let run = server
        .run(json!({
            "script": format!("(setsid sleep {escaped} >/dev/null 2>&1 </dev/null &)\necho started\nsleep 600\n"),
            "timeout": 30
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    until("the escaped sleep runs", || {
        !running_with_arg(&escaped).is_empty()
    })
    .await;
    let (status, view) = server
        .post(
            &format!("/v1/jobs/{job_id}/signal"),
            json!({"signal": "KILL", "target": "job"}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    until("the escaped sleep is killed", || {
        running_with_arg(&escaped).is_empty()
    })
    .await;
}

#[tokio::test]
async fn pids_max_stops_forks_past_the_limit() {
    assert!(
        host_has_cgroups(),
        "this host offers no cgroups to test with"
    );
    let server = server("auto", &[]);
    let tag = unique_sleep(70);
    let run = server
        .run(json!({
            "script": format!("for i in 1 2 3 4 5 6 7 8 9 10; do sleep {tag} & done\necho spawned\n"),
            "pids_max": 4,
            "timeout": 30
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    let (output, done) = server.wait_done(job_id, 0).await;
    // The shell could fork three sleeps at most (it counts itself), then
    // fork failed.
    assert!(output.to_lowercase().contains("fork"), "{output:?}");
    assert_ne!(done["exit_code"], 0, "{done}");
    assert_eq!(detail(&server, job_id).await["pids_max"], 4);
    assert_eq!(running_with_arg(&tag), Vec::<u32>::new());
}

#[tokio::test]
async fn memory_max_ends_a_job_past_it_as_oom() {
    assert!(
        host_has_cgroups(),
        "this host offers no cgroups to test with"
    );
    let server = server("auto", &[]);
    let run = server
        .run(json!({
            "script": "python3 -c 'b = bytearray(512 * 1024 * 1024); print(\"allocated\", len(b))'\n",
            "memory_max_bytes": 64 * 1024 * 1024,
            "timeout": 30
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap();
    let (output, done) = server.wait_done(job_id, 0).await;
    assert!(!output.contains("allocated"), "{output:?}");
    assert_eq!(done["status"], "terminated", "{done}");
    let detail = detail(&server, job_id).await;
    assert_eq!(detail["end_reason"], "oom", "{detail}");
    assert_eq!(detail["memory_max_bytes"], 64 * 1024 * 1024);
}

#[tokio::test]
async fn limits_without_cgroups_are_refused_as_unsupported() {
    let server = server("off", &[]);
    for (field, value) in [
        ("pids_max", json!(16)),
        ("memory_max_bytes", json!(64 * 1024 * 1024)),
        ("cpu_max", json!(0.5)),
    ] {
        let (status, body) = server
            .post(
                "/v1/jobs/run",
                json!({"script": "echo never", field: value}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "unsupported_limit", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    let (_, list) = server.get("/v1/jobs").await;
    assert_eq!(list["jobs"], json!([]), "nothing started");
    // Out of bounds is a validation error, before any host question.
    let (status, body) = server
        .post("/v1/jobs/run", json!({"script": "echo", "pids_max": 0}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "validation_error", "{body}");
}

#[tokio::test]
async fn max_running_jobs_answers_429_until_a_slot_frees() {
    let server = server("auto", &["--max-running-jobs", "2"]);
    let mut live = Vec::new();
    for _ in 0..2 {
        let run = server
            .run(json!({"script": "echo up; sleep 600", "timeout": 30}))
            .await;
        live.push(run["job_id"].as_str().unwrap().to_owned());
    }
    let (status, body) = server
        .post("/v1/jobs/run", json!({"script": "echo third"}))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_jobs", "{body}");
    let (status, _) = server
        .post(&format!("/v1/jobs/{}/terminate", live[0]), json!({}))
        .await;
    assert_eq!(status, 200);
    let third = server.run(json!({"script": "echo third"})).await;
    let (output, _) = server.wait_done(third["job_id"].as_str().unwrap(), 0).await;
    assert_eq!(output, "third\n");
}

#[tokio::test]
async fn a_job_past_max_log_bytes_keeps_running_and_its_log_stops_at_the_cap() {
    const CAP: u64 = 64 * 1024;
    let server = server("auto", &["--max-log-bytes", &CAP.to_string()]);
    // 1 MB of lines, then a prompt the job waits at: it must get there
    // (never blocked on its terminal) and still answer.
    let script = "i=0; while [ $i -lt 10000 ]; do echo \"line $i of a long chatty output\"; i=$((i+1)); done\n\
                  printf 'name? '; read name; echo \"hello $name\"; exit 3\n";
    let run = server.run(json!({"script": script, "timeout": 1})).await;
    let job_id = run["job_id"].as_str().unwrap().to_owned();
    let log = server.state().join("jobs").join(&job_id).join("output.log");
    until("the log is capped", || {
        server
            .state()
            .join("jobs")
            .join(&job_id)
            .join("log-capped")
            .exists()
    })
    .await;
    server
        .post(
            &format!("/v1/jobs/{job_id}/wait-for"),
            json!({"offset": 0, "until": ["input"], "timeout": 60}),
        )
        .await;
    let (status, view) = server.get(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "running", "{view}");
    let (status, typed) = server
        .post(
            &format!("/v1/jobs/{job_id}/input"),
            json!({"text": "cap\n", "offset": view["offset"], "timeout": 5}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    let done = server.status_until(&job_id, |v| v["done"] == true).await;
    assert_eq!(
        done["exit_code"], 3,
        "the script ran to its own end: {done}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let marker = "[shellctl: the output log reached its cap";
    assert_eq!(text.matches(marker).count(), 1);
    let marker_at = text.find(marker).unwrap() as u64;
    // What comes before the marker (and its leading newline) fits the cap.
    assert!(marker_at <= CAP + 1, "{marker_at}");
    assert!(text.len() as u64 <= CAP + 200, "{}", text.len());
    assert!(!text.contains("hello cap"), "nothing after the cap is kept");
    let detail = detail(&server, &job_id).await;
    assert_eq!(detail["log_capped"], true);
    assert_eq!(detail["log_incomplete"], false);
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        std::fs::create_dir(path.join("home")).unwrap();
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_new_jobs_lets_running_ones_end_and_delete_frees_it() {
    let disk = SmallDisk::mount(16);
    let server = TestServer::spawn_in(
        &disk.path,
        Options {
            token: None,
            extra: Vec::new(),
        },
    );
    // About 27 MB of text into a 16 MiB disk, then the job's own end.
    let run = server
        .run(json!({
            "script": "head -c 20000000 /dev/urandom | base64\necho finished\nexit 4\n",
            "timeout": 1
        }))
        .await;
    let job_id = run["job_id"].as_str().unwrap().to_owned();
    let done = server.status_until(&job_id, |v| v["done"] == true).await;
    assert_eq!(done["status"], "exited", "it ended normally: {done}");
    assert_eq!(done["exit_code"], 4, "{done}");
    let detail = detail(&server, &job_id).await;
    assert_eq!(detail["log_incomplete"], true, "{detail}");

    let (status, body) = server
        .post("/v1/jobs/run", json!({"script": "echo no room"}))
        .await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
    let (status, list) = server.get("/v1/jobs").await;
    assert_eq!(status, 200, "{list}");

    let (status, deleted) = server.delete(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(status, 200, "{deleted}");
    let database = rusqlite::Connection::open(server.state().join("shellctl.db")).unwrap();
    let check: String = database
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let again = server.run(json!({"script": "echo room again"})).await;
    let (output, _) = server.wait_done(again["job_id"].as_str().unwrap(), 0).await;
    assert_eq!(output, "room again\n");
    drop(server);
}
