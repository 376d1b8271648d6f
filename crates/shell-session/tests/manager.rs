//! `ShellSessionManager` against real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use shell_session::{SessionError, ShellSessionInfo, ShellSessionManager, ShellSessionOptions};
use std::sync::Arc;
use std::time::Duration;

const LONG: Option<Duration> = Some(Duration::from_secs(60));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_register_list_step_and_unregister_on_exit() {
    let manager = ShellSessionManager::new(8);
    let id = manager
        .new_shell(
            "read x; echo \"got $x\"; exit 4",
            ShellSessionOptions::default(),
            Some("reader".into()),
        )
        .await
        .unwrap();
    assert_eq!(id.len(), 6);
    assert_eq!(
        manager.list_sessions().await.unwrap(),
        [ShellSessionInfo {
            session_id: id.clone(),
            desc: Some("reader".into())
        }]
    );
    let step = manager.next(&id, Some(b"it\n"), LONG).await.unwrap();
    assert_eq!(
        (step.stdout.as_slice(), step.exit_code),
        (&b"got it\n"[..], Some(4))
    );
    assert!(manager.list_sessions().await.unwrap().is_empty());
    let err = manager.next(&id, None, LONG).await;
    assert!(
        matches!(err, Err(SessionError::UnknownSession(ref s)) if *s == id),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_sessions_are_pruned_by_list() {
    let manager = ShellSessionManager::new(8);
    let keeper = manager
        .new_shell("cat", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    let quitter = manager
        .new_shell("true", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    // No event tells the test when `true` has exited; re-list until pruned.
    tokio::time::timeout(HANG_GUARD, async {
        while manager
            .list_sessions()
            .await
            .unwrap()
            .iter()
            .any(|s| s.session_id == quitter)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("exited session was never pruned");
    let ids: Vec<String> = manager
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(ids, [keeper]);
    manager.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_unregisters_and_unknown_ids_are_errors() {
    let manager = ShellSessionManager::new(8);
    let id = manager
        .new_shell("sleep 3201", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    wait_until_running("sleep 3201", 1).await;
    manager.interrupt(&id).await.unwrap();
    assert!(pgrep("sleep 3201").is_empty());
    assert!(manager.list_sessions().await.unwrap().is_empty());
    assert!(matches!(
        manager.interrupt(&id).await,
        Err(SessionError::UnknownSession(_))
    ));
    assert!(matches!(
        manager.next("000000", None, LONG).await,
        Err(SessionError::UnknownSession(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_reaches_a_session_in_the_middle_of_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let started = fifo(dir.path(), "started");
    let manager = Arc::new(ShellSessionManager::new(8));
    let command = format!("read go; echo up > '{}'; sleep 3202", started.display());
    let id = manager
        .new_shell(command, ShellSessionOptions::default(), None)
        .await
        .unwrap();
    let stepping = {
        let (manager, id) = (Arc::clone(&manager), id.clone());
        tokio::spawn(async move {
            manager
                .next(&id, Some(b"go\n"), Some(Duration::from_secs(300)))
                .await
        })
    };
    assert_eq!(read_fifo(&started).await, "up\n");
    // The step holds the session: a second step is refused, not queued.
    assert!(matches!(
        manager.next(&id, None, LONG).await,
        Err(SessionError::Busy(_))
    ));
    manager.interrupt(&id).await.unwrap();
    let step = tokio::time::timeout(HANG_GUARD, stepping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(step.exit_code, Some(-15));
    assert!(pgrep("sleep 3202").is_empty());
    assert!(manager.list_sessions().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_is_enforced() {
    let manager = ShellSessionManager::new(2);
    let first = manager
        .new_shell("cat", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    manager
        .new_shell("cat", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    let err = manager
        .new_shell("cat", ShellSessionOptions::default(), None)
        .await;
    assert!(
        matches!(
            err,
            Err(SessionError::TooManySessions { active: 2, max: 2 })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "too many active sessions (2/2)"
    );
    manager.interrupt(&first).await.unwrap();
    manager
        .new_shell("cat", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    manager.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_interrupts_everything_and_keeps_the_manager_open() {
    let manager = ShellSessionManager::new(8);
    for _ in 0..3 {
        manager
            .new_shell("sleep 3203", ShellSessionOptions::default(), None)
            .await
            .unwrap();
    }
    wait_until_running("sleep 3203", 3).await;
    manager.clear().await.unwrap();
    assert!(pgrep("sleep 3203").is_empty());
    assert!(manager.list_sessions().await.unwrap().is_empty());
    manager
        .new_shell("true", ShellSessionOptions::default(), None)
        .await
        .unwrap();
}

fn closed<T>(result: &Result<T, SessionError>) -> bool {
    matches!(result, Err(SessionError::ManagerClosed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_manager_refuses_everything() {
    let manager = ShellSessionManager::new(8);
    let id = manager
        .new_shell("sleep 3204", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    wait_until_running("sleep 3204", 1).await;
    manager.close().await;
    manager.close().await; // idempotent
    assert!(pgrep("sleep 3204").is_empty());
    assert!(closed(
        &manager
            .new_shell("true", ShellSessionOptions::default(), None)
            .await
    ));
    assert!(closed(&manager.next(&id, None, LONG).await));
    assert!(closed(&manager.interrupt(&id).await));
    assert!(closed(&manager.list_sessions().await));
    assert!(closed(&manager.clear().await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_sessions_run_concurrently() {
    let manager = Arc::new(ShellSessionManager::new(64));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let manager = Arc::clone(&manager);
        tasks.push(tokio::spawn(async move {
            let id = manager
                .new_shell(
                    "read x; echo \"$x-$x\"",
                    ShellSessionOptions::default(),
                    Some(format!("n{i}")),
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            let mut stdin = Some(format!("{i}\n").into_bytes());
            loop {
                let step = manager
                    .next(&id, stdin.take().as_deref(), LONG)
                    .await
                    .unwrap();
                out.extend(step.stdout);
                if let Some(code) = step.exit_code {
                    return (i, String::from_utf8(out).unwrap(), code);
                }
            }
        }));
    }
    for task in tasks {
        let (i, out, code) = tokio::time::timeout(HANG_GUARD, task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((out, code), (format!("{i}-{i}\n"), 0));
    }
    assert!(manager.list_sessions().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_dropped_half_way_leaves_no_stuck_entry() {
    let manager = ShellSessionManager::new(8);
    let id = manager
        .new_shell("sleep 3205", ShellSessionOptions::default(), None)
        .await
        .unwrap();
    let step = manager.next(&id, None, Some(Duration::from_secs(300)));
    // Give up on the step at once: the future is dropped mid-way.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), step)
            .await
            .is_err()
    );
    assert!(manager.list_sessions().await.unwrap().is_empty());
    wait_until_gone("sleep 3205").await;
}

/// Every manager future can move between threads (so `tokio::spawn` takes
/// it): no lock guard lives across an `.await` inside.
#[test]
fn manager_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let manager = ShellSessionManager::new(1);
    assert_send(manager.new_shell("true", ShellSessionOptions::default(), None));
    assert_send(manager.next("000000", None, None));
    assert_send(manager.interrupt("000000"));
    assert_send(manager.list_sessions());
    assert_send(manager.clear());
    assert_send(manager.close());
}
