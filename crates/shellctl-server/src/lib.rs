//! The shellctl job server's building blocks.
//!
//! - [`layout`]: where state lives (database, job directories, runtime dir)
//!   and its private permissions;
//! - [`store`]: the job lifecycle in SQLite, every transition one
//!   conditional `UPDATE`;
//! - [`job_files`]: a job's directory: script, spec, start gate, markers;
//! - [`runner`]: the native job runner that runs inside the job's PTY;
//! - [`pipe_side`]: the pipe side of a job: sanitize into `output.log`, then
//!   commit the exit to SQLite even while the server is down.
//!
//! - [`tmux`]: the jobs' tmux server, through [`tmux_control`] (a
//!   persistent control-mode client) or one command line per call;
//! - [`watcher`]: inotify wake-ups for waiters;
//! - [`service`]: what every route does, the monitor and GC;
//! - [`api`]: the v1 HTTP API; [`guard`]: the Host, cross-site and
//!   JSON-body gates in front of every route; [`serve`]: listener and
//!   shutdown.

pub mod api;
pub mod guard;
pub mod job_files;
pub mod layout;
pub mod openapi;
pub mod pipe_side;
pub mod runner;
pub mod serve;
pub mod service;
pub mod store;
pub mod tmux;
pub mod tmux_control;
pub mod watcher;

pub use layout::{LayoutError, StateLayout};
pub use store::{JobRecord, Store, StoreError};
