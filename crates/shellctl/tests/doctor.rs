//! `shellctl doctor` as a user runs it: the real binary on real
//! directories, with the machine's real tmux (or a PATH without it), and a
//! real server's state dir for the live-job count.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use support::{BIN, TestServer};

/// The doctor's exit code when something must be fixed.
const PROBLEMS: i32 = 78;

/// `shellctl doctor` on `state` (and `runtime`, when given), with none of
/// the caller's XDG directories leaking into the defaults.
fn doctor(state: &Path, runtime: Option<&Path>) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("doctor")
        .arg("--state-dir")
        .arg(state)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_STATE_HOME");
    if let Some(runtime) = runtime {
        command.arg("--runtime-dir").arg(runtime);
    }
    command
}

/// Runs `command`; returns its exit code and stdout.
fn report(mut command: Command) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
    (status.code().unwrap(), String::from_utf8(stdout).unwrap())
}

fn private_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The line of check `name`.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|line| line.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} line in:\n{text}"))
}

#[test]
fn a_healthy_layout_passes_and_names_tmux_modes_and_free_disk() {
    let root = tempfile::tempdir().unwrap();
    let (state, runtime) = (root.path().join("state"), root.path().join("run"));
    private_dir(&state);
    private_dir(&runtime);
    let (code, text) = report(doctor(&state, Some(&runtime)));
    assert_eq!(code, 0, "{text}");
    let tmux = line(&text, "tmux ");
    assert!(tmux.starts_with("ok "), "{text}");
    let version = Command::new("tmux").arg("-V").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(tmux.contains(version.trim()), "{tmux} lacks {version}");
    for (name, dir) in [("state dir", &state), ("runtime dir", &runtime)] {
        let check = line(&text, name);
        assert!(check.starts_with("ok "), "{text}");
        assert!(
            check.contains(&format!("{}: mode 0700", dir.display())),
            "{check}"
        );
    }
    let disk = line(&text, "disk");
    assert!(
        disk.starts_with("ok ") && disk.contains("MiB free"),
        "{disk}"
    );
    // cgroups only ever warn: without them jobs are tracked by scans.
    let cgroups = line(&text, "cgroups");
    assert!(
        cgroups.starts_with("ok ") || cgroups.starts_with("warn "),
        "{cgroups}"
    );
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn a_state_dir_open_to_others_fails_and_names_chmod() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, text) = report(doctor(&state, Some(&root.path().join("run"))));
    assert_eq!(code, PROBLEMS, "{text}");
    let check = line(&text, "state dir");
    assert!(check.starts_with("FAIL "), "{text}");
    assert!(check.contains("0755"), "{check}");
    assert!(
        text.contains(&format!("fix: chmod 700 {}", state.display())),
        "{text}"
    );
    // The doctor looks; it does not repair.
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

#[test]
fn a_state_dir_not_made_yet_is_fine_and_stays_unmade() {
    let root = tempfile::tempdir().unwrap();
    private_dir(root.path());
    let state = root.path().join("not").join("yet");
    // No --runtime-dir and no XDG_RUNTIME_DIR: the runtime dir defaults
    // under the state dir, as `serve` makes it.
    let (code, text) = report(doctor(&state, None));
    assert_eq!(code, 0, "{text}");
    let check = line(&text, "state dir");
    assert!(
        check.starts_with("ok ") && check.contains("will be created"),
        "{text}"
    );
    let runtime = line(&text, "runtime dir");
    assert!(
        runtime.contains(&format!("{}", state.join("run/shellctl").display())),
        "{runtime}"
    );
    assert!(line(&text, "database").contains("does not exist yet"));
    assert!(!state.exists(), "the doctor created {}", state.display());
}

#[test]
fn a_path_without_tmux_fails_naming_tmux() {
    let root = tempfile::tempdir().unwrap();
    let (state, empty_bin) = (root.path().join("state"), root.path().join("bin"));
    private_dir(&state);
    std::fs::create_dir(&empty_bin).unwrap();
    let mut command = doctor(&state, Some(&root.path().join("run")));
    command.env("PATH", &empty_bin);
    let (code, text) = report(command);
    assert_eq!(code, PROBLEMS, "{text}");
    let check = line(&text, "tmux ");
    assert!(
        check.starts_with("FAIL ") && check.contains("tmux not found"),
        "{text}"
    );
    assert!(text.contains("fix: install tmux 3.2 or newer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_servers_live_jobs_are_counted_for_inotify() {
    let server = TestServer::start();
    let result = server
        .run(json!({"script": "sleep 600", "timeout": 0.2}))
        .await;
    assert_eq!(result["status"], "running", "{result}");
    let command = doctor(&server.state(), Some(&server.root.join("run")));
    let (code, text) = tokio::task::spawn_blocking(move || report(command))
        .await
        .unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(line(&text, "database").contains("1 live job(s)"), "{text}");
    assert!(
        line(&text, "inotify").contains("needs 2 watch(es)"),
        "{text}"
    );
}
