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
//! - [`window`]: UTF-8-safe forward and tail windows over `output.log`.

pub mod filter;
pub mod sanitize;
pub mod window;

pub use filter::{FilterOptions, PARTIAL_LINE_QUIET, run_filter, run_filter_with_sync};
pub use sanitize::{PtySanitizer, SYNC_SEQUENCE, sanitize_all};
pub use window::{OutputWindow, WindowError, read_window, tail_window};
