//! Drives the real `shellctl sanitize-pty` process as a black box.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Expected texts are built the plainest way.
#![allow(clippy::format_collect)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Generous guard so a broken filter fails the test instead of hanging it;
/// the test never waits this long when the filter works.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Reads the child's stdout on a thread and hands over bytes as they come.
fn spawn_reader(mut stdout: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects output until exactly `expected` has arrived.
fn read_exactly(rx: &mpsc::Receiver<Vec<u8>>, expected: &str) {
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let chunk = rx.recv_timeout(HANG_GUARD).unwrap_or_else(|_| {
            panic!(
                "waiting for {expected:?}, got {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        got.extend(chunk);
    }
    assert_eq!(String::from_utf8(got).unwrap(), expected);
}

#[test]
fn lines_and_prompts_arrive_before_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shellctl"))
        .args(["sanitize-pty", "--ready-file"])
        .arg(&ready)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let output = spawn_reader(child.stdout.take().unwrap());

    stdin.write_all(b"\x1b[1;32mhello\x1b[0m\r\r\n").unwrap();
    read_exactly(&output, "hello\n");
    assert!(ready.exists(), "ready file is touched at start");

    stdin.write_all(b"Name: ").unwrap();
    read_exactly(&output, "Name: ");

    stdin.write_all(b"bob\r\n0%\r50%\r100%\r\nbye").unwrap();
    read_exactly(&output, "bob\n100%\n");
    drop(stdin);
    read_exactly(&output, "bye");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn exits_zero_at_end_of_input_and_flushes_everything() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shellctl"))
        .arg("sanitize-pty")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // More than one pipe buffer, so reading and writing must overlap.
    let mut input = Vec::new();
    for i in 0..20_000 {
        input.extend_from_slice(format!("\x1b[33mline {i}\x1b[0m\r\n").as_bytes());
    }
    input.extend_from_slice(b"tail\xf0\x9f");
    let writer = thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let expected: String = (0..20_000)
        .map(|i| format!("line {i}\n"))
        .collect::<String>()
        + "tail\u{FFFD}";
    assert_eq!(text, expected);
}
