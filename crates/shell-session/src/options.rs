//! Timing knobs of a session.

use std::time::Duration;

/// Timing knobs of a [`ShellSession`](crate::ShellSession).
///
/// `Default` gives the reference's values. Build variations with struct
/// update syntax: `ShellSessionOptions { timeout: …, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSessionOptions {
    /// How long a step collects output when the caller gives no timeout
    /// (15 s).
    pub timeout: Duration,
    /// How long one wait for output lasts inside a step (100 ms). Steps are
    /// event-driven here, so this only bounds how often a step re-checks;
    /// kept for parity with the reference.
    pub idle_output_wait: Duration,
    /// After the process exits, how long to keep draining output that is
    /// still in flight (500 ms); ends early once both streams reach EOF.
    pub post_exit_flush: Duration,
    /// One wait for output during the post-exit flush (10 ms); kept for
    /// parity with the reference.
    pub post_exit_drain_wait: Duration,
    /// After SIGTERM, how long to wait for the process to end (2 s).
    pub terminate_wait: Duration,
    /// After SIGKILL, how long to wait for the process to end (2 s).
    pub kill_wait: Duration,
    /// How long closing the process's pipes may take (500 ms).
    pub process_close_wait: Duration,
    /// End a step once output has arrived and then been quiet this long,
    /// even though the process still runs. `None` (the default) keeps the
    /// reference's semantics: a step ends only at exit or timeout.
    pub return_after_quiet: Option<Duration>,
    /// Bytes of unread output buffered per stream before the process is made
    /// to wait (64 MiB). Each stream has its own buffer, so a full stderr
    /// never holds back stdout.
    pub max_buffered_output: usize,
}

impl Default for ShellSessionOptions {
    fn default() -> Self {
        ShellSessionOptions {
            timeout: Duration::from_secs(15),
            idle_output_wait: Duration::from_millis(100),
            post_exit_flush: Duration::from_millis(500),
            post_exit_drain_wait: Duration::from_millis(10),
            terminate_wait: Duration::from_secs(2),
            kill_wait: Duration::from_secs(2),
            process_close_wait: Duration::from_millis(500),
            return_after_quiet: None,
            max_buffered_output: 64 * 1024 * 1024,
        }
    }
}
