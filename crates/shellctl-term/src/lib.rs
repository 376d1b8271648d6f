//! Terminal output for shellctl.
//!
//! This crate owns how raw PTY bytes become the clean UTF-8 text of a job's
//! `output.log`, and how that log is read back in windows:
//!
//! - [`sanitize`]: [`PtySanitizer`], a pure streaming converter (feed bytes,
//!   get newly committed text; finish, get the rest) with a terminal-correct
//!   model of the current line;
//! - [`filter`]: the loop behind `shellctl sanitize-pty`, which writes each
//!   completed line at once and a pending partial line (a prompt) once input
//!   has been quiet for a moment;
//! - [`window`]: UTF-8-safe forward and tail windows over `output.log`;
//! - [`search`]: per-line regex search over `output.log`, streamed, for a
//!   one-off search and for a waiter watching the log grow;
//! - [`digest`]: a range of `output.log` within a byte budget (head, error
//!   lines, tail, and markers for what is left out).

pub mod digest;
pub mod filter;
pub mod sanitize;
pub mod search;
pub mod window;

pub use digest::{Digest, ERROR_PATTERNS, MIN_DIGEST_BYTES, digest_file, digest_reader};
pub use filter::{FilterOptions, PARTIAL_LINE_QUIET, run_filter, run_filter_with_sync};
pub use sanitize::{PtySanitizer, SYNC_SEQUENCE, sanitize_all};
pub use search::{
    LineMatch, LineScanner, LogLine, LogSearch, MAX_PATTERN_LEN, compile_pattern, scan_range,
    search_log,
};
pub use window::{OutputWindow, WindowError, read_window, tail_window};
