//! The control-mode client against a real tmux server.

use crate::tmux_control::{CONTROL_SESSION, ControlClient, ControlError, ControlHooks};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const HANG_GUARD: Duration = Duration::from_secs(60);

fn tmux(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(["-f", "/dev/null"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn words_arrive_literally_and_errors_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tmux.sock");
    let client = ControlClient::start(&socket, ControlHooks::default())
        .await
        .unwrap();
    for text in [
        "plain",
        "it's",
        "a;b ; c",
        "$HOME ~ ~/x",
        "\"double\" \\back\\slash",
        "{braces} %percent %if #{session_name} ##",
        "ünïcödé ✓",
    ] {
        // A paste buffer keeps its text as given, with no format or
        // strftime expansion (unlike `display-message`).
        let set = client.command(&["set-buffer", "-b", "probe", text]).await;
        assert_eq!(set, Ok(String::new()), "{text:?}");
        // `show-buffer` would escape its output; a saved buffer is raw.
        let saved = dir.path().join("probe.txt");
        let save = client
            .command(&["save-buffer", "-b", "probe", saved.to_str().unwrap()])
            .await;
        assert_eq!(save, Ok(String::new()), "{text:?}");
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), text);
    }
    let error = client.command(&["no-such-command"]).await;
    assert!(
        matches!(&error, Err(ControlError::Command(msg)) if msg.contains("no-such-command")),
        "{error:?}"
    );
    assert_eq!(
        client.command(&["display-message", "-p", "a\nb"]).await,
        Err(ControlError::Unrepresentable)
    );
    // Answers keep their order under many commands in flight.
    let pending: Vec<_> = (0..200)
        .map(|i| {
            client
                .submit(&["display-message", "-p", &i.to_string()])
                .unwrap()
        })
        .collect();
    for (i, answer) in pending.into_iter().enumerate() {
        assert_eq!(answer.answer().await, Ok(format!("{i}\n")));
    }
    let sessions = tmux(&socket, &["list-sessions", "-F", "#{session_name}"]);
    assert_eq!(
        String::from_utf8_lossy(&sessions.stdout),
        format!("{CONTROL_SESSION}\n")
    );
    let _ = tmux(&socket, &["kill-server"]);
}

/// A control client on a fresh tmux server, with its end notice.
struct Started {
    /// Holds the socket's directory for the test's lifetime.
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    ended: Arc<Notify>,
    client: ControlClient,
}

async fn start() -> Started {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tmux.sock");
    let ended = Arc::new(Notify::new());
    let hooks = ControlHooks {
        exit: Arc::clone(&ended),
        window_closed: None,
    };
    let client = ControlClient::start(&socket, hooks).await.unwrap();
    Started {
        _dir: dir,
        socket,
        ended,
        client,
    }
}

async fn assert_takes_no_commands(client: &ControlClient) {
    assert!(!client.is_alive());
    assert_eq!(
        client.command(&["display-message", "-p", "x"]).await,
        Err(ControlError::Closed)
    );
}

#[tokio::test]
async fn the_client_ends_with_the_tmux_server() {
    let started = start().await;
    assert!(started.client.is_alive());
    assert!(tmux(&started.socket, &["kill-server"]).status.success());
    tokio::time::timeout(HANG_GUARD, started.ended.notified())
        .await
        .expect("no end notice");
    assert_takes_no_commands(&started.client).await;
}

#[tokio::test]
async fn an_abandoned_client_takes_no_commands_and_detaches_once_dropped() {
    let started = start().await;
    started.client.abandon();
    assert_takes_no_commands(&started.client).await;
    drop(started.client);
    // Its input closes, tmux detaches it, and the reader reaps it.
    tokio::time::timeout(HANG_GUARD, started.ended.notified())
        .await
        .expect("the abandoned client never ended");
    // The tmux server drops the client as it handles the closed socket.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while !tmux(&started.socket, &["list-clients"]).stdout.is_empty() {
        assert!(std::time::Instant::now() < deadline, "still attached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tmux(&started.socket, &["kill-server"]);
}

#[tokio::test]
async fn closed_windows_of_other_sessions_are_reported_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tmux.sock");
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let hooks = ControlHooks {
        exit: Arc::default(),
        window_closed: Some(Arc::new(move |window| {
            let _ = closed_tx.send(window);
        })),
    };
    let client = ControlClient::start(&socket, hooks).await.unwrap();
    let window = |output: std::process::Output| -> u32 {
        let text = String::from_utf8(output.stdout).unwrap();
        text.trim().strip_prefix('@').unwrap().parse().unwrap()
    };
    // One session whose program exits, one killed.
    let exits = window(tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "exits",
            "-P",
            "-F",
            "#{window_id}",
            "true",
        ],
    ));
    let killed = window(tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "killed",
            "-P",
            "-F",
            "#{window_id}",
            "cat",
        ],
    ));
    assert!(
        tmux(&socket, &["kill-session", "-t", "killed"])
            .status
            .success()
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(HANG_GUARD, closed.recv())
            .await
            .expect("no window-close notice")
            .unwrap();
        seen.push(next);
    }
    seen.sort_unstable();
    let mut expected = vec![exits, killed];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    drop(client);
    let _ = tmux(&socket, &["kill-server"]);
}
