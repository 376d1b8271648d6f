//! The shellctl job server: the HTTP API, the job service behind it, and
//! its tmux and inotify plumbing. The job side (state layout, a job's files,
//! the lifecycle in SQLite, the runner and the pipe side) is in
//! `shellctl-job`, which this crate drives.
//!
//! The public surface is small: [`serve()`] with its [`ServeConfig`] runs a
//! server; [`Service`] is the job service for embedding or testing without
//! HTTP; [`api::router`] and [`openapi`] expose the HTTP layer;
//! [`doctor`] checks a machine and a state layout before a server runs
//! there (`shellctl doctor`). Everything else is private:
//!
//! - `service`: what every route does (commands · waiting · streams ·
//!   supervision);
//! - `tmux` / `tmux_control`: the jobs' tmux server, through a persistent
//!   control-mode client or one command line per call;
//! - `watcher`: inotify wake-ups for waiters, one watch per live job, and
//!   for lifecycle streams, one watch on the database's directory;
//! - `checks`: the jobs events report to supervision (a pipe side that
//!   ended, a tmux window that closed), coalesced;
//! - `guard`: the Host, cross-site and JSON-body gates in front of every
//!   route;
//! - `mcp`: the MCP tools at `/mcp`, over the in-process service;
//! - `metrics`: the registry and handles behind `/metrics` (Prometheus
//!   text);
//! - `console`: the embedded web console at `/` and the API page at `/docs`.

pub mod api;
mod checks;
mod console;
pub mod doctor;
mod guard;
mod mcp;
mod metrics;
pub mod openapi;
mod serve;
mod service;
mod tmux;
mod tmux_control;
mod watcher;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tmux_control_tests;

pub use guard::{SitePolicy, SitePolicyError};
pub use serve::{ServeConfig, ServeError, serve};
pub use service::{
    DEFAULT_MAX_LOG_BYTES, JobGuards, MONITOR_INTERVAL, SWEEP_INTERVAL, Service, ServiceConfig,
    ServiceError,
};
pub use tmux::{SESSION_PREFIX, TmuxClientMode};
