//! The job side of shellctl: everything the three processes of a job agree
//! on, and the two job-side processes themselves.
//!
//! Besides tmux, a job involves three shellctl processes that never call
//! each other: the server, the **runner** (inside the job's PTY, started by
//! tmux) and the **pipe side** (behind tmux's `pipe-pane`). They meet only
//! in files and in SQLite, and this crate owns both meeting points:
//!
//! - [`layout`]: where a server's state lives, with private permissions;
//! - [`files`]: one job's directory, its markers and FIFOs, the start gate
//!   and the end-of-output handshake;
//! - [`store`]: the lifecycle table in SQLite, its versioned schema, and
//!   [`Store::settle`], the one function that ends a job;
//! - [`lifecycle`]: the typed vocabulary of endings, failure reasons and
//!   monitor verdicts, and the rules that decide them (the exit-commit rule
//!   and the monitor's judgement);
//! - [`process`]: process identity (pid plus start time), so liveness checks
//!   cannot be fooled by a recycled pid;
//! - [`terminal`]: the job's terminal read from `/proc` (its foreground,
//!   whether it waits for input, its mode) and signals to its processes;
//! - [`containment`]: every process a job starts, tracked to the job (in
//!   cgroups, or by an inherited marker) and ended with it; per-job limits;
//! - [`deadlines`]: the job's runtime and idle deadlines, enforced by the
//!   runner so they hold while the server is down;
//! - [`runner`] and [`pipe_side`]: the job-side processes, which the
//!   `shellctl` binary runs as `job-runner` (hidden) and
//!   `sanitize-pty --job-id …`.
//!
//! Everything here blocks; the async server calls it on blocking threads.
//! `ARCHITECTURE.md` at the repository root draws the whole picture.

pub mod containment;
pub mod deadlines;
pub mod files;
pub mod layout;
pub mod lifecycle;
pub mod pipe_side;
pub mod process;
pub mod runner;
pub mod store;
pub mod terminal;

pub use files::{ExitMarker, JobDir, JobSpec};
pub use layout::{LayoutError, StateLayout};
pub use lifecycle::{Ending, FailureReason, MonitorVerdict};
pub use store::{EventPage, InsertError, JobRecord, NewJob, Store, StoreError};
