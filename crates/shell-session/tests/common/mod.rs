//! Helpers shared by the session library's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shell_session::{SessionError, ShellSession, Step};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Guards against a hang: a working library never comes near it.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Takes steps until the command exits; returns everything collected.
pub async fn run_to_exit(session: &mut ShellSession) -> Step {
    let mut all = Step::default();
    loop {
        let step = tokio::time::timeout(
            HANG_GUARD,
            session.next(None, Some(Duration::from_secs(30))),
        )
        .await
        .expect("step hung")
        .expect("step failed");
        all.stdout.extend(step.stdout);
        all.stderr.extend(step.stderr);
        if step.exit_code.is_some() {
            all.exit_code = step.exit_code;
            return all;
        }
    }
}

/// Pids of live (not zombie) processes whose command line is exactly
/// `command`, as `pgrep -fx` would list them.
pub fn pgrep(command: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.trim_end() == command && is_alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Waits until no live process runs `command` (there is no event for the
/// death of a process that is not our child, so this re-checks).
pub async fn wait_until_gone(command: &str) {
    tokio::time::timeout(HANG_GUARD, async {
        while !pgrep(command).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{command}` survived"));
}

/// Waits until `count` live processes run `command` (a forked shell child
/// takes a moment to exec it, and no event says when).
pub async fn wait_until_running(command: &str, count: usize) {
    tokio::time::timeout(HANG_GUARD, async {
        while pgrep(command).len() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{command}` never reached {count} processes"));
}

/// A named pipe in `dir`.
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// Blocks (off the runtime) until a writer has opened, written and closed
/// `fifo`; returns what it wrote.
pub async fn read_fifo(fifo: &Path) -> String {
    let fifo = fifo.to_owned();
    tokio::time::timeout(
        HANG_GUARD,
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo)),
    )
    .await
    .expect("nobody wrote the fifo")
    .unwrap()
    .unwrap()
}

pub fn assert_closed(err: &Result<Step, SessionError>) {
    assert!(matches!(err, Err(SessionError::Closed)), "{err:?}");
}
