//! In-process async shell sessions.
//!
//! A [`ShellSession`] runs one command under `sh -c` with piped stdin, stdout
//! and stderr, and is driven step by step: each [`ShellSession::next`] writes
//! optional stdin, then collects stdout and stderr until the process exits or
//! the step's timeout passes. A step that sees the exit drains the remaining
//! output and closes the session. A [`ShellSessionManager`] keeps many
//! sessions under short 6-digit ids, with a cap, pruning of exited sessions,
//! and interrupt/clear/close.
//!
//! This mirrors `ShellSession` / `ShellSessionManager` of the Python package
//! `shell-session-manager`, and goes further:
//!
//! - the command runs in its own process group, and interrupting or dropping
//!   a session signals the whole group, so `sh -c 'a & b & wait'` leaves no
//!   orphans;
//! - [`ShellSessionOptions::return_after_quiet`] (off by default) ends a step
//!   once output has been quiet for a while, for interactive programs;
//! - stdout and stderr are drained by independent tasks into separate
//!   buffers, so a flood on one never stalls the other;
//! - the manager steps different sessions concurrently, and an interrupt
//!   reaches a session even while another task is inside its `next`.
//!
//! ```no_run
//! use shell_session::{ShellSession, ShellSessionOptions};
//! use std::time::Duration;
//!
//! # async fn demo() -> Result<(), shell_session::SessionError> {
//! let options = ShellSessionOptions {
//!     return_after_quiet: Some(Duration::from_millis(100)),
//!     ..Default::default()
//! };
//! let mut session = ShellSession::new("read name; echo \"hello $name\"", options);
//! let step = session.next(Some(b"world\n"), None).await?;
//! assert_eq!(step.stdout, b"hello world\n");
//! # Ok(())
//! # }
//! ```

mod error;
mod manager;
mod options;
mod process;
mod session;
mod slug;

pub use error::SessionError;
pub use manager::{ShellSessionInfo, ShellSessionManager};
pub use options::ShellSessionOptions;
pub use session::{InterruptHandle, ShellSession, Step};
pub use slug::command_slug_parts;
