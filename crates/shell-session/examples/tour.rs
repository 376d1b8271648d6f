//! A two-minute tour of `shell-session`: one session driven step by step,
//! then a manager running a few sessions by id.
//!
//! Run with `cargo run -p shell-session --example tour`.

use shell_session::{ShellSession, ShellSessionManager, ShellSessionOptions};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), shell_session::SessionError> {
    // A conversation with an interactive program. `return_after_quiet` ends
    // each step once the program has answered and gone quiet, instead of
    // waiting for the whole timeout.
    let options = ShellSessionOptions {
        return_after_quiet: Some(Duration::from_millis(100)),
        ..ShellSessionOptions::default()
    };
    let mut calc = ShellSession::new("while read expr; do echo \"$(($expr))\"; done", options);
    for expr in ["6 * 7", "1 << 10"] {
        let step = calc
            .next(Some(format!("{expr}\n").as_bytes()), None)
            .await?;
        print!("{expr} = {}", String::from_utf8_lossy(&step.stdout));
    }
    calc.close_stdin();
    let last = calc.next(None, None).await?;
    println!("calculator exited with {:?}", last.exit_code);

    // A manager keeps sessions under short ids, for callers that come back.
    let manager = ShellSessionManager::new(8);
    let id = manager
        .new_shell(
            "echo working; sleep 0.2; echo done >&2; exit 3",
            ShellSessionOptions::default(),
            Some("demo".into()),
        )
        .await?;
    println!("sessions: {:?}", manager.list_sessions().await?);
    let step = manager
        .next(&id, None, Some(Duration::from_secs(10)))
        .await?;
    println!(
        "stdout={:?} stderr={:?} exit={:?}",
        String::from_utf8_lossy(&step.stdout),
        String::from_utf8_lossy(&step.stderr),
        step.exit_code
    );
    manager.close().await;
    Ok(())
}
