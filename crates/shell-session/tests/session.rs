//! `ShellSession` against real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use shell_session::{SessionError, ShellSession, ShellSessionOptions};
use std::time::Duration;

fn quiet_options() -> ShellSessionOptions {
    ShellSessionOptions {
        return_after_quiet: Some(Duration::from_millis(100)),
        ..ShellSessionOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_closes_the_session_and_streams_stay_apart() {
    let mut session = ShellSession::new(
        "echo out; echo err >&2; exit 7",
        ShellSessionOptions::default(),
    );
    assert_eq!(session.session_id().len(), 6);
    assert!(session.session_id().bytes().all(|b| b.is_ascii_digit()));
    let step = session.next(None, None).await.unwrap();
    assert_eq!(step.stdout, b"out\n");
    assert_eq!(step.stderr, b"err\n");
    assert_eq!(step.exit_code, Some(7));
    assert!(session.is_closed());
    assert_closed(&session.next(None, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_returns_without_exit_and_keeps_the_session_open() {
    let mut session = ShellSession::new("cat", ShellSessionOptions::default());
    let step = session
        .next(None, Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(step.exit_code, None);
    assert!(!session.is_closed());
    session.interrupt().await;
    assert!(session.is_closed());
    session.interrupt().await; // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_timeout_overrides_the_session_default() {
    let options = ShellSessionOptions {
        timeout: Duration::from_millis(1),
        ..ShellSessionOptions::default()
    };
    let command = "sleep 0.3; echo done";
    // The 1 ms default ends the step long before the command can finish...
    let mut by_default = ShellSession::new(command, options.clone());
    assert_eq!(by_default.next(None, None).await.unwrap().exit_code, None);
    by_default.interrupt().await;
    // ...while the per-call override waits for it.
    let mut overridden = ShellSession::new(command, options);
    let step = overridden
        .next(None, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        (step.stdout.as_slice(), step.exit_code),
        (&b"done\n"[..], Some(0))
    );
}

#[tokio::test]
async fn zero_timeout_is_rejected() {
    let mut session = ShellSession::new("true", ShellSessionOptions::default());
    let err = session.next(None, Some(Duration::ZERO)).await;
    assert!(matches!(err, Err(SessionError::InvalidTimeout)), "{err:?}");
    let mut session = ShellSession::new(
        "true",
        ShellSessionOptions {
            timeout: Duration::ZERO,
            ..ShellSessionOptions::default()
        },
    );
    assert!(matches!(
        session.next(None, None).await,
        Err(SessionError::InvalidTimeout)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_round_trips_across_two_steps() {
    let mut session = ShellSession::new(
        "read a; echo \"A=$a\"; read b; echo \"B=$b\" >&2",
        quiet_options(),
    );
    session.start().await.unwrap();
    session.start().await.unwrap(); // idempotent
    // The command blocks on the second `read`, so this step can only end
    // through the quiet interval, after "A=one".
    let first = session
        .next(Some(b"one\n"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        (first.stdout.as_slice(), first.exit_code),
        (&b"A=one\n"[..], None)
    );
    let mut rest = session
        .next(Some(b"two\n"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    if rest.exit_code.is_none() {
        let more = run_to_exit(&mut session).await;
        rest.stderr.extend(more.stderr);
        rest.exit_code = more.exit_code;
    }
    assert_eq!(
        (rest.stderr.as_slice(), rest.exit_code),
        (&b"B=two\n"[..], Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_death_reads_as_minus_the_signal() {
    let mut session = ShellSession::new("kill -9 $$", ShellSessionOptions::default());
    assert_eq!(run_to_exit(&mut session).await.exit_code, Some(-9));
}

/// A session whose command left two background sleeps running, both seen
/// alive.
async fn group_of_two_sleeps(a: &str, b: &str) -> ShellSession {
    let command = format!("sleep {a} & sleep {b} & echo ready; wait");
    let mut session = ShellSession::new(command, quiet_options());
    let step = session
        .next(None, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(step.stdout, b"ready\n");
    wait_until_running(&format!("sleep {a}"), 1).await;
    wait_until_running(&format!("sleep {b}"), 1).await;
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_from_another_task_terminates_the_whole_group() {
    let mut session = group_of_two_sleeps("3101", "3102").await;
    tokio::spawn(async move {
        session.interrupt().await;
        assert!(session.is_closed());
    })
    .await
    .unwrap();
    assert_eq!(pgrep("sleep 3101"), Vec::<u32>::new());
    assert_eq!(pgrep("sleep 3102"), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_handle_ends_a_step_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let started = fifo(dir.path(), "started");
    let command = format!(
        "trap 'echo bye; exit 3' TERM; read go; echo up > '{}'; while :; do sleep 0.05; done",
        started.display()
    );
    let mut session = ShellSession::new(command, ShellSessionOptions::default());
    let handle = session.interrupt_handle();
    let step = tokio::spawn(async move {
        session
            .next(Some(b"go\n"), Some(Duration::from_secs(300)))
            .await
    });
    // The command got the step's stdin, so the step is in flight.
    assert_eq!(read_fifo(&started).await, "up\n");
    handle.interrupt();
    let step = tokio::time::timeout(HANG_GUARD, step)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The trap's output, printed while terminating, is part of the step.
    assert_eq!(step.stdout, b"bye\n");
    assert_eq!(step.exit_code, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_before_the_step_closes_the_session() {
    let mut session = ShellSession::new("cat", ShellSessionOptions::default());
    session.interrupt_handle().interrupt();
    assert_closed(&session.next(None, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_live_session_kills_its_group() {
    let session = group_of_two_sleeps("3103", "3104").await;
    drop(session);
    wait_until_gone("sleep 3103").await;
    wait_until_gone("sleep 3104").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_with_a_background_child_returns_and_cleans_up() {
    // The background sleep keeps stdout open: the step must not wait for it
    // beyond the post-exit flush, and closing the session ends it.
    let mut session = ShellSession::new("sleep 3105 & echo hi", ShellSessionOptions::default());
    let step = run_to_exit(&mut session).await;
    assert_eq!(
        (step.stdout.as_slice(), step.exit_code),
        (&b"hi\n"[..], Some(0))
    );
    assert!(session.is_closed());
    assert_eq!(pgrep("sleep 3105"), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_of_stdout_arrive_whole() {
    let mut session =
        ShellSession::new("head -c 50000000 /dev/zero", ShellSessionOptions::default());
    let step = run_to_exit(&mut session).await;
    assert_eq!(step.exit_code, Some(0));
    assert_eq!(step.stdout.len(), 50_000_000);
    assert!(step.stdout.iter().all(|b| *b == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_flood_does_not_stall_stdout() {
    let options = ShellSessionOptions {
        // A small per-stream buffer: stderr fills it long before the end.
        max_buffered_output: 256 * 1024,
        ..ShellSessionOptions::default()
    };
    let mut session = ShellSession::new(
        "echo first; head -c 20000000 /dev/zero >&2; echo last",
        options,
    );
    let step = run_to_exit(&mut session).await;
    assert_eq!(step.stdout, b"first\nlast\n");
    assert_eq!(step.stderr.len(), 20_000_000);
    assert_eq!(step.exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_to_a_command_that_stopped_reading_is_not_an_error() {
    let mut session = ShellSession::new(
        "exec 0<&-; echo closed; sleep 0.2",
        ShellSessionOptions::default(),
    );
    let big = vec![b'x'; 1 << 20];
    let step = session
        .next(Some(&big), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let mut all = step.stdout;
    if step.exit_code.is_none() {
        all.extend(run_to_exit(&mut session).await.stdout);
    }
    assert_eq!(all, b"closed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stdin_gives_the_command_end_of_input() {
    let mut session = ShellSession::new("cat; echo eof", ShellSessionOptions::default());
    session
        .next(Some(b"abc"), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    session.close_stdin();
    let step = run_to_exit(&mut session).await;
    let expected: &[u8] = b"eof\n";
    assert!(
        step.stdout.ends_with(expected),
        "{:?}",
        String::from_utf8_lossy(&step.stdout)
    );
    assert_eq!(step.exit_code, Some(0));
}
