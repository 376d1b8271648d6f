//! Defaults and bounds of the v1 API, shared by the server, client and CLI.
//!
//! The numbers are the reference's, so a client written against it sees the
//! same defaults from us.

/// Environment variable holding the bearer token, for both server and clients.
pub const AUTH_TOKEN_ENV: &str = "SHELLCTL_AUTH_TOKEN";
/// Environment variable naming the server's base URL for clients.
pub const BASE_URL_ENV: &str = "SHELLCTL_BASE_URL";
/// Base URL clients use when none is given.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8765";
/// Address the server listens on when none is given (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";

/// Default size of one output window, in bytes.
pub const DEFAULT_OUTPUT_LIMIT: u32 = 8 * 1024;
/// Largest output window a request may ask for, in bytes.
pub const MAX_OUTPUT_LIMIT: u32 = 1024 * 1024;
/// Default time a run, wait or input waits for output, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 30.0;
/// Longest a run, wait or input may wait, in seconds (exclusive lower bound 0).
pub const MAX_TIMEOUT_SECONDS: f64 = 300.0;
/// Default quiet interval after new output before a wait returns, in seconds.
pub const DEFAULT_IDLE_FLUSH_SECONDS: f64 = 0.5;
/// Largest quiet interval a wait may ask for, in seconds.
pub const MAX_IDLE_FLUSH_SECONDS: f64 = 30.0;
/// Default grace between Ctrl-C and killing a job, in seconds.
pub const DEFAULT_GRACE_SECONDS: f64 = 5.0;
/// Largest grace a terminate or delete may ask for, in seconds.
pub const MAX_GRACE_SECONDS: f64 = 300.0;
/// Default terminal width of a job's PTY.
pub const DEFAULT_TERMINAL_COLS: u16 = 120;
/// Default terminal height of a job's PTY.
pub const DEFAULT_TERMINAL_ROWS: u16 = 80;
/// Largest terminal width or height.
pub const MAX_TERMINAL_DIMENSION: u16 = 4096;
/// Default number of jobs a list returns.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Largest number of jobs a list may return.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Default seconds between garbage-collection passes.
pub const DEFAULT_GC_INTERVAL_SECONDS: f64 = 600.0;
/// Default age after which finished jobs are collected, in seconds.
pub const DEFAULT_GC_RETENTION_SECONDS: f64 = 24.0 * 3600.0;
