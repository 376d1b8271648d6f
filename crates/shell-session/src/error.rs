//! The error type of the session library.

use std::io;

/// Why a session or manager operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session has been closed (its process exited and was collected, or
    /// it was interrupted); it takes no more steps.
    #[error("session is closed")]
    Closed,
    /// No session with this id is registered in the manager.
    #[error("unknown session id: {0}")]
    UnknownSession(String),
    /// The manager already holds its maximum number of sessions.
    #[error("too many active sessions ({active}/{max})")]
    TooManySessions {
        /// Sessions registered now.
        active: usize,
        /// The manager's cap.
        max: usize,
    },
    /// The manager has been closed.
    #[error("session manager is closed")]
    ManagerClosed,
    /// Another task is inside `next` on this session right now.
    #[error("session {0} is busy with another step")]
    Busy(String),
    /// A step's timeout was zero.
    #[error("timeout must be greater than zero")]
    InvalidTimeout,
    /// The command could not be started.
    #[error("failed to start command: {0}")]
    Spawn(#[source] io::Error),
    /// Writing stdin or waiting for the process failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
