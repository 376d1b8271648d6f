//! The job service: what every API route does, split by concern.
//!
//! - [`commands`]: run, input, terminate, delete, and the read-only routes;
//! - [`guards`]: containment of every process of a job, resource limits,
//!   the running-jobs and log caps, and full-disk rules;
//! - [`waiting`]: the waiting engine behind every route that returns an
//!   output [`Window`](waiting::Window);
//! - [`supervision`]: reconciliation at start-up, the monitor, reacting to
//!   the pipe side's markers, and garbage collection;
//! - [`agents`]: a job's detail, `wait-for`, log search and digests;
//! - [`streams`]: the push routes' streams (a job's output, the lifecycle
//!   events of all jobs);
//! - [`terminal`]: the screen, the input state, keys, signals and resize,
//!   with [`input_tracker`] keeping since when each job waits.
//!
//! SQLite is the source of truth for status; `output.log` and the marker
//! files are the source of truth for output and for exits the pipe side has
//! not committed yet. The lifecycle's rules live in `shellctl-job`
//! ([`shellctl_job::lifecycle`]); this module gathers what they need and
//! acts on their answers. Every filesystem, SQLite and inotify call runs on
//! a blocking thread ([`run_blocking`], [`Service::db`]); what stays on the
//! async runtime is channel, timer and tmux I/O, and the `fstat` of an open
//! log in the wait loop.

mod agents;
mod commands;
mod guards;
mod input_tracker;
mod streams;
mod supervision;
mod terminal;
mod waiting;

use crate::checks::JobChecks;
use crate::metrics::Metrics;
use crate::tmux::{Tmux, TmuxClientMode, TmuxError};
use crate::watcher::{DatabaseWatcher, JobWatcher};
use shellctl_job::lifecycle::{Ending, SettleError, commit_recorded_exit};
use shellctl_job::{JobDir, JobRecord, LayoutError, StateLayout, Store, StoreError};
use shellctl_proto::timestamp::now_timestamp;
use shellctl_proto::{EnvPreset, JobId};
use shellctl_term::WindowError;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

pub use guards::{DEFAULT_MAX_LOG_BYTES, JobGuards};
pub use streams::{JobStream, LifecycleStream};
pub use supervision::{MONITOR_INTERVAL, SWEEP_INTERVAL};

/// Why a service call failed. The HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such job.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// The offset lies past the end of the output.
    #[error("offset {offset} exceeds current output size {size}")]
    InvalidOffset {
        /// Requested offset.
        offset: u64,
        /// Current size of `output.log`.
        size: u64,
    },
    /// The cwd is not an existing directory.
    #[error("cwd {0:?} is not an existing directory")]
    InvalidCwd(String),
    /// Input to a job that has ended.
    #[error("job {0} is not running")]
    JobNotRunning(JobId),
    /// Delete of a running job without force.
    #[error("job {0} is still running; terminate it first or delete with force=true")]
    JobRunning(JobId),
    /// A `run` reused an idempotency key with a different script.
    #[error(
        "idempotency key {key:?} belongs to job {job_id}, which runs a different script; use another key"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The job holding it.
        job_id: JobId,
    },
    /// A resource limit the host cannot enforce.
    #[error("{0}")]
    UnsupportedLimit(String),
    /// `--max-running-jobs` jobs are starting or running already.
    #[error(
        "{running} jobs are starting or running, the server's limit (--max-running-jobs {limit}); wait for one to end"
    )]
    TooManyJobs {
        /// Jobs starting or running.
        running: u64,
        /// The server's limit.
        limit: u32,
    },
    /// The disk holding the state directory is full.
    #[error("the state directory's disk is full ({0}); delete jobs or free space")]
    InsufficientStorage(String),
    /// A search or wait pattern that does not compile.
    #[error("pattern: {0}")]
    InvalidPattern(String),
    /// The state directories could not be prepared.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The filesystem failed.
    #[error("filesystem: {0}")]
    Io(#[from] io::Error),
    /// tmux failed.
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    /// inotify failed (for example, the user's watch limit is reached).
    #[error("watching job directories: {0}")]
    Watch(#[from] notify::Error),
    /// Anything else on the server's side.
    #[error("{0}")]
    Internal(String),
}

impl From<WindowError> for ServiceError {
    fn from(err: WindowError) -> Self {
        match err {
            WindowError::OffsetPastEnd { offset, size } => {
                ServiceError::InvalidOffset { offset, size }
            }
            WindowError::ZeroLimit => ServiceError::Internal("zero output limit".into()),
            WindowError::Io(err) => ServiceError::Io(err),
        }
    }
}

impl From<SettleError> for ServiceError {
    fn from(err: SettleError) -> Self {
        match err {
            SettleError::Io(err) => ServiceError::Io(err),
            SettleError::Store(err) => ServiceError::Store(err),
        }
    }
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where state lives.
    pub layout: StateLayout,
    /// The `shellctl` binary jobs run as runner and pipe side.
    pub shellctl_bin: PathBuf,
    /// The working directory of jobs that name none (the server's home).
    pub default_cwd: PathBuf,
    /// How the server talks to tmux.
    pub tmux_client: TmuxClientMode,
    /// The env preset of jobs whose `run` names none.
    pub env_preset: EnvPreset,
    /// Containment, limits and caps.
    pub guards: JobGuards,
}

/// The job service.
pub struct Service {
    config: ServiceConfig,
    store: Arc<Store>,
    tmux: Tmux,
    watcher: Arc<JobWatcher>,
    /// Jobs events reported (by the watcher and tmux), for [`supervision`]
    /// to look at.
    checks: Arc<JobChecks>,
    /// Running jobs supervision looks at again on its next tick: their
    /// session ended while their pipe side drains, or an event came while
    /// they were still starting. With each, whether its session is known
    /// to be gone.
    lingering: std::sync::Mutex<HashMap<JobId, bool>>,
    /// Bounds the start gates waited on at once (each holds a blocking
    /// thread; see [`commands::GATE_OPENERS`]).
    gate_openers: tokio::sync::Semaphore,
    /// Since when each running job waits for input.
    input: input_tracker::InputTracker,
    /// Writes to the database, for the event feed.
    database_watcher: DatabaseWatcher,
    /// The last lifecycle event seq the feed saw; lifecycle streams wake
    /// when it grows.
    event_feed: watch::Sender<u64>,
    /// How jobs are contained on this host.
    containment: Arc<guards::Containment>,
    /// The metrics at `/metrics`.
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

impl Service {
    /// Prepares the state, opens the database, starts the tmux server and
    /// reconciles jobs left from an earlier run. `shutdown` turning true
    /// makes in-flight waits return early.
    pub async fn start(
        config: ServiceConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Service>, ServiceError> {
        let layout = config.layout.clone();
        let use_cgroups = config.guards.use_cgroups;
        let (store, containment) = run_blocking(
            move || -> Result<(Store, guards::Containment), ServiceError> {
                layout.prepare()?;
                let store = Store::open(&layout.database())?;
                let containment = guards::Containment::prepare(layout.state_dir(), use_cgroups);
                Ok((store, containment))
            },
        )
        .await??;
        let metrics = Arc::new(Metrics::new());
        let checks = Arc::new(JobChecks::default());
        let tmux = Tmux::new(
            config.layout.tmux_socket(),
            config.shellctl_bin.clone(),
            config.tmux_client,
            metrics.tmux(),
            Arc::clone(&checks),
        );
        tmux.ensure_server().await?;
        let for_watcher = Arc::clone(&checks);
        let watcher = run_blocking(move || JobWatcher::new(for_watcher)).await??;
        let database = config.layout.database();
        let database_watcher = run_blocking(move || DatabaseWatcher::new(&database)).await??;
        let service = Arc::new(Service {
            config,
            store: Arc::new(store),
            tmux,
            watcher: Arc::new(watcher),
            checks,
            lingering: std::sync::Mutex::default(),
            gate_openers: tokio::sync::Semaphore::new(commands::GATE_OPENERS),
            input: input_tracker::InputTracker::default(),
            database_watcher,
            event_feed: watch::Sender::new(0),
            containment: Arc::new(containment),
            metrics,
            shutdown,
        });
        service.reconcile().await?;
        Ok(service)
    }

    fn job_dir(&self, job_id: JobId) -> JobDir {
        JobDir::open(self.config.layout.job_dir(job_id))
    }

    /// The server's metrics (for the HTTP layer's request counts).
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// `GET /metrics`: every metric as Prometheus text, with the job
    /// counts per status read in one query on a blocking thread.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let counts = self.db(Store::count_by_status).await?;
        self.metrics
            .render(&counts)
            .map_err(|err| ServiceError::Internal(format!("encoding the metrics: {err}")))
    }

    /// Runs `work` with the store on a blocking thread.
    async fn db<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        Ok(run_blocking(move || work(&store)).await??)
    }

    /// The job's row, after applying the exit-commit rule (for an exit the
    /// pipe side drained but did not get to commit). A job seen ended stops
    /// being watched here, so watches go back to one per live job as jobs
    /// end; its waiters wake when their channel closes.
    async fn settled_record(&self, job_id: JobId) -> Result<JobRecord, ServiceError> {
        self.settled(job_id, |_| ())
            .await
            .map(|(record, ())| record)
    }

    /// [`settled_record`](Self::settled_record) together with the size of
    /// the job's output, read in the same trip to a blocking thread.
    async fn settled_record_and_size(
        &self,
        job_id: JobId,
    ) -> Result<(JobRecord, u64), ServiceError> {
        self.settled(job_id, JobDir::output_size).await
    }

    /// Settles the job's record on a blocking thread, then reads `also`
    /// from its directory there too.
    async fn settled<T: Send + 'static>(
        &self,
        job_id: JobId,
        also: fn(&JobDir) -> T,
    ) -> Result<(JobRecord, T), ServiceError> {
        let store = Arc::clone(&self.store);
        let watcher = Arc::clone(&self.watcher);
        let metrics = Arc::clone(&self.metrics);
        let job_dir = self.job_dir(job_id);
        run_blocking(move || -> Result<(JobRecord, T), ServiceError> {
            let not_found = || ServiceError::JobNotFound(job_id.to_string());
            let mut record = store.get(job_id)?.ok_or_else(not_found)?;
            if !record.status.is_terminal() && commit_recorded_exit(&job_dir, &store, job_id)? {
                record = store.get(job_id)?.ok_or_else(not_found)?;
            }
            if record.status.is_terminal() {
                seen_ended(&watcher, &metrics, &job_dir, &record);
            }
            Ok((record, also(&job_dir)))
        })
        .await?
    }

    /// Ends a live job for a reason no file records (terminate after the
    /// grace, a failed start, a monitor verdict): kills its session, settles
    /// it, and wakes its waiters. Returns whether this call ended it. If the
    /// session cannot be killed (one already gone is fine), the job is not
    /// settled: it may still run, and no status may claim otherwise. A lost
    /// job's session is gone by definition, so there a failed kill is only
    /// logged.
    async fn end_job(&self, job_id: JobId, ending: Ending) -> Result<bool, ServiceError> {
        match self.tmux.kill_session(job_id).await {
            Ok(()) => {}
            Err(err) if ending == Ending::Lost => {
                tracing::warn!(%job_id, "killing the session of a lost job: {err}");
            }
            Err(err) => return Err(err.into()),
        }
        // The session's end leaves processes that left it; the status may
        // say ended only once they are gone too.
        self.end_processes(job_id, false).await;
        let watcher = Arc::clone(&self.watcher);
        let metrics = Arc::clone(&self.metrics);
        let job_dir = self.job_dir(job_id);
        self.db(move |store| {
            let ended = store.settle(job_id, ending, &now_timestamp())?;
            // Unwatching closes the waiters' channels, which wakes them.
            match store.get(job_id) {
                Ok(Some(record)) => seen_ended(&watcher, &metrics, &job_dir, &record),
                // The job's duration goes unobserved; the end stands.
                Ok(None) | Err(_) => {
                    watcher.unwatch(job_dir.path());
                }
            }
            Ok(ended)
        })
        .await
    }
}

/// A job seen ended (`record` is terminal): releases its watch, which
/// wakes its waiters; the first release (of a job this server watched)
/// observes the job's duration, so each job is observed once.
fn seen_ended(watcher: &JobWatcher, metrics: &Metrics, job_dir: &JobDir, record: &JobRecord) {
    if watcher.unwatch(job_dir.path()) {
        metrics.job_ended(record);
    }
}

/// A tmux failure on a job that passed the running check. If tmux no
/// longer knows the pane, it went away meanwhile and the job is ending
/// (`job_not_running`); anything else is the server's failure.
fn pane_gone(job_id: JobId, err: TmuxError) -> ServiceError {
    match err {
        TmuxError::NoServer => ServiceError::JobNotRunning(job_id),
        TmuxError::Failed { ref stderr, .. }
            if stderr.contains("can't find") || stderr.contains("no current target") =>
        {
            ServiceError::JobNotRunning(job_id)
        }
        err => err.into(),
    }
}

/// Blocking tasks of the service running at once, at most. The work is
/// short (a file, a query), and the database is one connection behind a
/// lock: beyond a few threads, more only wait for that lock. Without a
/// bound, a burst of a thousand requests put a thread each on the lock
/// (tokio's pool grows to 512), which cost the tasks of every other request
/// their turn and left the server's heap tens of MiB larger after the
/// burst. Tasks beyond the bound wait for a permit on the async runtime,
/// holding no thread. (The start gates, which block until a runner
/// arrives, have their own bound: `commands::GATE_OPENERS`.)
const BLOCKING_TASKS: usize = 16;

static BLOCKING_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BLOCKING_TASKS);

/// Runs blocking work (files, SQLite, inotify) off the async runtime, at
/// most [`BLOCKING_TASKS`] at once.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    // The semaphore is never closed. The permit moves into the task, so
    // it is held until the work ends, even if the caller goes away.
    let permit = BLOCKING_PERMITS
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking permits: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("blocking task: {e}")))
}
