//! The job service: what every API route does, the monitor that notices
//! dead panes and pipes, and garbage collection.
//!
//! SQLite is the source of truth for status; `output.log` and the marker
//! files are the source of truth for output and for exits the pipe side has
//! not committed yet. Waits are event-driven (see [`crate::watcher`]); no
//! tmux process is spawned on a waiter's path and SQLite is read once per
//! wake-up, not on a timer. Blocking work (SQLite, reading windows, deleting
//! directories) runs on blocking threads.

use crate::job_files::{
    EXIT, JobDir, JobSpec, OUTPUT, PIPE_DRAINED, PIPE_FAILED, PIPE_READY, write_private,
};
use crate::layout::StateLayout;
use crate::store::{JobRecord, Store, StoreError};
use crate::tmux::{JobLaunch, Tmux, TmuxClientMode, TmuxError};
use crate::watcher::{Changes, JobWatcher};
use shellctl_proto::timestamp::{format_timestamp, now_timestamp};
use shellctl_proto::*;
use shellctl_term::{OutputWindow, WindowError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Longest a job may take to get its pipe side and runner ready. Generous:
/// a busy machine must not fail jobs by missing it (the reference's 1 s
/// deadline fails whole bursts).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Waiters re-check this often even without an event.
const FALLBACK_TICK: Duration = Duration::from_secs(1);
/// How often the monitor looks at panes and pipes.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// How long an exit recorded by the runner may wait for its pipe side to
/// drain before the pipe counts as failed.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Attempts at a fresh job id before giving up.
const ID_ATTEMPTS: usize = 64;

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
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The filesystem failed.
    #[error("filesystem: {0}")]
    Io(#[from] io::Error),
    /// tmux failed.
    #[error(transparent)]
    Tmux(#[from] TmuxError),
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
}

/// The job service.
pub struct Service {
    config: ServiceConfig,
    store: Arc<Store>,
    tmux: Tmux,
    watcher: JobWatcher,
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
        config
            .layout
            .prepare()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let database = config.layout.database();
        let store = Arc::new(
            tokio::task::spawn_blocking(move || Store::open(&database))
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))??,
        );
        let tmux = Tmux::new(
            config.layout.tmux_socket(),
            config.shellctl_bin.clone(),
            config.tmux_client,
        );
        tmux.ensure_server().await?;
        let watcher =
            JobWatcher::new().map_err(|e| ServiceError::Internal(format!("inotify: {e}")))?;
        let service = Arc::new(Service {
            config,
            store,
            tmux,
            watcher,
            shutdown,
        });
        service.reconcile().await?;
        Ok(service)
    }

    fn job_dir(&self, job_id: &JobId) -> JobDir {
        JobDir::open(self.config.layout.job_dir(job_id))
    }

    async fn db<T, F>(&self, call: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|e| ServiceError::Internal(format!("database task: {e}")))?
            .map_err(ServiceError::from)
    }

    async fn record(&self, job_id: &JobId) -> Result<JobRecord, ServiceError> {
        let id = *job_id;
        self.db(move |store| store.get(&id))
            .await?
            .ok_or_else(|| ServiceError::JobNotFound(job_id.to_string()))
    }

    /// The row, after committing an exit the pipe side drained but did not
    /// get to commit.
    async fn settled_record(&self, job_id: &JobId) -> Result<JobRecord, ServiceError> {
        let record = self.record(job_id).await?;
        if record.status.is_terminal() {
            return Ok(record);
        }
        let job_dir = self.job_dir(job_id);
        if !(job_dir.has(PIPE_DRAINED) && job_dir.has(EXIT)) {
            return Ok(record);
        }
        let Some(exit) = job_dir.read_exit()? else {
            return Ok(record);
        };
        let id = *job_id;
        self.db(move |store| {
            store.commit_exit(&id, exit.exit_code, &exit.ended_at)?;
            store.get(&id)
        })
        .await?
        .ok_or_else(|| ServiceError::JobNotFound(job_id.to_string()))
    }

    // ----- routes -------------------------------------------------------

    /// `POST /v1/jobs/run`.
    pub async fn run(&self, request: RunJobRequest) -> Result<JobResult, ServiceError> {
        let cwd = self.resolve_cwd(request.cwd.as_deref())?;
        let (job_id, job_dir) = self.create_job_dir()?;
        let spec = JobSpec {
            cwd,
            env: request.env.clone().unwrap_or_default(),
        };
        job_dir.populate(&request.script, &spec)?;
        self.watcher
            .watch(job_dir.path())
            .map_err(|e| ServiceError::Internal(format!("watching job dir: {e}")))?;
        let created_at = now_timestamp();
        let id = job_id;
        self.db(move |store| {
            store.insert(&id, &created_at)?;
            store.mark_starting(&id)
        })
        .await?;
        let terminal = request.terminal.unwrap_or_default();
        if let Err(reason) = self.launch(&job_id, &job_dir, terminal).await {
            tracing::warn!(job_id = %job_id, "job failed to start: {reason}");
            let _ = self.tmux.kill_session(&job_id).await;
            let id = job_id;
            self.db(move |store| store.mark_failed(&id, "start_failed", &now_timestamp()))
                .await?;
        }
        self.wait_window(
            &job_id,
            0,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
        .await
    }

    fn resolve_cwd(&self, cwd: Option<&str>) -> Result<PathBuf, ServiceError> {
        let path = match cwd {
            None => self.config.default_cwd.clone(),
            Some("~") => self.config.default_cwd.clone(),
            Some(raw) => match raw.strip_prefix("~/") {
                Some(rest) => self.config.default_cwd.join(rest),
                None => PathBuf::from(raw),
            },
        };
        if path.is_absolute() && path.is_dir() {
            Ok(path)
        } else {
            Err(ServiceError::InvalidCwd(cwd.unwrap_or_default().to_owned()))
        }
    }

    fn create_job_dir(&self) -> Result<(JobId, JobDir), ServiceError> {
        for _ in 0..ID_ATTEMPTS {
            let job_id = JobId::generate(OffsetDateTime::now_utc())
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            match JobDir::create(self.config.layout.job_dir(&job_id)) {
                Ok(dir) => return Ok((job_id, dir)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ServiceError::Internal("no free job id this minute".into()))
    }

    /// Starts the session with its pipe, waits for the pipe side, lets the
    /// runner go, and marks the job running.
    async fn launch(
        &self,
        job_id: &JobId,
        job_dir: &JobDir,
        terminal: TerminalSize,
    ) -> Result<(), String> {
        let launch = JobLaunch {
            job_id,
            job_dir: job_dir.path(),
            state_dir: self.config.layout.state_dir(),
            cols: terminal.cols,
            rows: terminal.rows,
        };
        self.tmux
            .start_job(&launch)
            .await
            .map_err(|e| e.to_string())?;
        self.wait_for_marker(job_dir, PIPE_READY, Instant::now() + START_DEADLINE)
            .await
            .map_err(|()| "the output pipe did not start".to_owned())?;
        self.open_gate(job_dir).await?;
        let id = *job_id;
        self.db(move |store| store.mark_running(&id, &now_timestamp()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn open_gate(&self, job_dir: &JobDir) -> Result<(), String> {
        let opener = job_dir.clone();
        let gate = tokio::task::spawn_blocking(move || opener.open_gate());
        match tokio::time::timeout(START_DEADLINE, gate).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(format!("opening the start gate: {err}")),
            Ok(Err(err)) => Err(format!("start gate task: {err}")),
            Err(_) => {
                // Free the blocked opener thread before giving up.
                let _ = job_dir.abandon_gate();
                Err("the runner never reached the start gate".into())
            }
        }
    }

    /// Waits until `marker` exists in `job_dir`, or `deadline`.
    async fn wait_for_marker(
        &self,
        job_dir: &JobDir,
        marker: &str,
        deadline: Instant,
    ) -> Result<(), ()> {
        match self
            .wait_until(job_dir, deadline, || async move { Ok(job_dir.has(marker)) })
            .await
        {
            Ok(true) => Ok(()),
            _ => Err(()),
        }
    }

    /// Re-checks `done` whenever `job_dir` changes (or on the fallback tick)
    /// until it holds or `deadline` passes; returns whether it held.
    async fn wait_until<F, Fut>(
        &self,
        job_dir: &JobDir,
        deadline: Instant,
        mut done: F,
    ) -> Result<bool, ServiceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, ServiceError>>,
    {
        let mut changes = JobChanges::new(self.watcher.subscribe(job_dir.path()));
        loop {
            // Both uses wait for markers or a status, never for output.
            if changes.status_may_have_changed(Instant::now()) && done().await? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            changes
                .wait(deadline.min(Instant::now() + FALLBACK_TICK))
                .await;
        }
    }

    /// `POST /v1/jobs/{id}/wait`.
    pub async fn wait(
        &self,
        job_id: &JobId,
        request: WaitJobRequest,
    ) -> Result<JobResult, ServiceError> {
        self.wait_window(
            job_id,
            request.offset,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
        .await
    }

    /// `POST /v1/jobs/{id}/input`: types the text, then waits.
    pub async fn input(
        &self,
        job_id: &JobId,
        request: InputJobRequest,
    ) -> Result<JobResult, ServiceError> {
        let record = self.settled_record(job_id).await?;
        if record.status.is_terminal() {
            return Err(ServiceError::JobNotRunning(*job_id));
        }
        let size = file_size(&self.job_dir(job_id).file(OUTPUT));
        if request.offset > size {
            return Err(ServiceError::InvalidOffset {
                offset: request.offset,
                size,
            });
        }
        if !request.text.is_empty() {
            self.type_text(job_id, &request.text).await?;
        }
        self.wait_window(
            job_id,
            request.offset,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
        .await
    }

    async fn type_text(&self, job_id: &JobId, text: &str) -> Result<(), ServiceError> {
        let mut nonce = [0u8; 8];
        getrandom_fill(&mut nonce);
        let file = self
            .config
            .layout
            .runtime_dir()
            .join(format!("input-{job_id}-{}", hex(&nonce)));
        write_private(&file, text.as_bytes())?;
        let pasted = self.tmux.paste_file(job_id, &file).await;
        let _ = std::fs::remove_file(&file);
        match pasted {
            Ok(()) => Ok(()),
            // The pane went away between the status check and the paste.
            Err(TmuxError::Failed { .. } | TmuxError::NoServer) => {
                Err(ServiceError::JobNotRunning(*job_id))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// `GET /v1/jobs/{id}/log/tail`.
    pub async fn tail(&self, job_id: &JobId, limit: u32) -> Result<JobResult, ServiceError> {
        let record = self.settled_record(job_id).await?;
        let log = self.job_dir(job_id).file(OUTPUT);
        let path = log.clone();
        let window = blocking(move || shellctl_term::tail_window(&path, limit as usize)).await??;
        Ok(job_result(&record, &log, window))
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn status(&self, job_id: &JobId) -> Result<JobStatusView, ServiceError> {
        let record = self.settled_record(job_id).await?;
        let size = file_size(&self.job_dir(job_id).file(OUTPUT));
        Ok(status_view(record, size))
    }

    /// `GET /v1/jobs`.
    pub async fn list(&self, query: ListJobsQuery) -> Result<ListJobsResponse, ServiceError> {
        let records = self
            .db(move |store| store.list(query.status, query.limit))
            .await?;
        Ok(ListJobsResponse {
            jobs: records
                .into_iter()
                .map(|r| JobInfo {
                    job_id: r.job_id,
                    status: r.status,
                    created_at: r.created_at,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                })
                .collect(),
        })
    }

    /// `POST /v1/jobs/{id}/terminate`: Ctrl-C, then up to `grace` for the
    /// job to end, then the session is killed. Returns as soon as the
    /// outcome is known.
    pub async fn terminate(
        &self,
        job_id: &JobId,
        grace: Duration,
    ) -> Result<JobStatusView, ServiceError> {
        let record = self.settled_record(job_id).await?;
        if !record.status.is_terminal() {
            let id = *job_id;
            if self.db(move |store| store.request_terminate(&id)).await? {
                let _ = self.tmux.send_ctrl_c(job_id).await;
                if !self
                    .wait_until_ended(job_id, Instant::now() + grace)
                    .await?
                {
                    self.tmux.kill_session(job_id).await?;
                    let id = *job_id;
                    self.db(move |store| store.mark_terminated(&id, &now_timestamp()))
                        .await?;
                    self.watcher.poke(self.job_dir(job_id).path());
                }
            }
        }
        self.status(job_id).await
    }

    /// Waits for the job to reach a terminal status; returns whether it did.
    async fn wait_until_ended(
        &self,
        job_id: &JobId,
        deadline: Instant,
    ) -> Result<bool, ServiceError> {
        let job_dir = self.job_dir(job_id);
        self.wait_until(&job_dir, deadline, || async move {
            Ok(self.settled_record(job_id).await?.status.is_terminal())
        })
        .await
    }

    /// `DELETE /v1/jobs/{id}`: the row first, then the directory.
    pub async fn delete(
        &self,
        job_id: &JobId,
        query: DeleteJobQuery,
    ) -> Result<DeleteJobResponse, ServiceError> {
        let record = self.settled_record(job_id).await?;
        if !record.status.is_terminal() {
            if !query.force {
                return Err(ServiceError::JobRunning(*job_id));
            }
            self.terminate(job_id, Duration::from_secs_f64(query.grace_seconds))
                .await?;
        }
        self.remove_job(job_id).await?;
        Ok(DeleteJobResponse {
            job_id: *job_id,
            deleted: true,
        })
    }

    async fn remove_job(&self, job_id: &JobId) -> Result<(), ServiceError> {
        let id = *job_id;
        self.db(move |store| store.delete(&id)).await?;
        let _ = self.tmux.kill_session(job_id).await;
        let dir = self.job_dir(job_id);
        self.watcher.unwatch(dir.path());
        let path = dir.path().to_owned();
        match blocking(move || std::fs::remove_dir_all(path)).await? {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    // ----- waiting for output ------------------------------------------

    async fn wait_window(
        &self,
        job_id: &JobId,
        offset: u64,
        timeout: f64,
        limit: u32,
        idle_flush: f64,
    ) -> Result<JobResult, ServiceError> {
        let job_dir = self.job_dir(job_id);
        let log = job_dir.file(OUTPUT);
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        let idle_flush = Duration::from_secs_f64(idle_flush);
        let mut changes = JobChanges::new(self.watcher.subscribe(job_dir.path()));
        let mut shutdown = self.shutdown.clone();
        // Size of the unread output when it last grew, and when.
        let mut growth: Option<(u64, Instant)> = None;
        let mut known: Option<JobRecord> = None;
        loop {
            // Output growth alone needs only a `stat`; the record is read
            // again when something else changed (or a tick passed).
            let fresh = changes.status_may_have_changed(Instant::now());
            let record = match known.take() {
                Some(record) if !fresh => record,
                _ => self.settled_record(job_id).await?,
            };
            let size = file_size(&log);
            if offset > size {
                return Err(ServiceError::InvalidOffset { offset, size });
            }
            let now = Instant::now();
            if size > offset && growth.is_none_or(|(seen, _)| seen != size) {
                growth = Some((size, now));
            }
            let idle_at = growth.map(|(_, at)| at + idle_flush);
            let ready = record.status.is_terminal()
                || size - offset >= u64::from(limit)
                || idle_at.is_some_and(|at| now >= at)
                || now >= deadline
                || *shutdown.borrow();
            if ready {
                // The answer carries the status as of now, read before the
                // window so that a terminal status comes with all output.
                let record = if fresh {
                    record
                } else {
                    self.settled_record(job_id).await?
                };
                let path = log.clone();
                let window =
                    blocking(move || shellctl_term::read_window(&path, offset, limit as usize))
                        .await??;
                return Ok(job_result(&record, &log, window));
            }
            known = Some(record);
            let wake_at = [Some(deadline), idle_at, Some(now + FALLBACK_TICK)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(deadline);
            tokio::select! {
                () = changes.wait(wake_at) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    // ----- background work ---------------------------------------------

    /// Start-up: watch live jobs, fail jobs that never started, finish the
    /// start of jobs caught at their gate, and run one monitor pass.
    async fn reconcile(&self) -> Result<(), ServiceError> {
        let live = self.db(Store::live_jobs).await?;
        let panes = match self.tmux.job_panes().await {
            Ok(panes) => panes,
            Err(TmuxError::NoServer) => Default::default(),
            Err(err) => return Err(err.into()),
        };
        for record in live {
            let job_dir = self.job_dir(&record.job_id);
            let _ = self.watcher.watch(job_dir.path());
            let id = record.job_id;
            match record.status {
                JobStatus::Created => {
                    self.db(move |store| {
                        store.mark_failed(&id, "start_interrupted", &now_timestamp())
                    })
                    .await?;
                }
                JobStatus::Starting
                    if panes.contains_key(id.as_str()) && job_dir.has(PIPE_READY) =>
                {
                    // Caught at its gate by the last shutdown: let it go.
                    let opened = self.open_gate(&job_dir).await;
                    self.db(move |store| match opened {
                        Ok(()) => store.mark_running(&id, &now_timestamp()),
                        Err(_) => store.mark_failed(&id, "start_failed", &now_timestamp()),
                    })
                    .await?;
                }
                JobStatus::Starting => {
                    let _ = self.tmux.kill_session(&id).await;
                    self.db(move |store| {
                        store.mark_failed(&id, "start_interrupted", &now_timestamp())
                    })
                    .await?;
                }
                _ => {}
            }
        }
        self.monitor_pass().await
    }

    /// One look at every live job: commit drained exits, fail jobs whose
    /// pipe died, mark jobs whose session vanished `lost`.
    pub async fn monitor_pass(&self) -> Result<(), ServiceError> {
        self.tmux.ensure_control().await;
        let live = self.db(Store::live_jobs).await?;
        if live.is_empty() {
            return Ok(());
        }
        let panes = match self.tmux.job_panes().await {
            Ok(panes) => panes,
            Err(TmuxError::NoServer) => {
                // The tmux server died (or was killed): keep serving on a
                // fresh one; every job on the old one is gone.
                let _ = self.tmux.ensure_server().await;
                Default::default()
            }
            Err(err) => {
                tracing::warn!("monitor: listing panes failed: {err}");
                return Ok(());
            }
        };
        for record in live {
            if record.status != JobStatus::Running {
                continue; // `run` owns jobs that are still starting
            }
            let job_id = record.job_id;
            let job_dir = self.job_dir(&job_id);
            if self.settled_record(&job_id).await?.status.is_terminal() {
                self.watcher.unwatch(job_dir.path());
                continue;
            }
            // tmux notices a dead pipe only when the pane next writes, so
            // the pipe side's own liveness is checked as well.
            let pipe_gone = job_dir.pipe_side_alive(job_id.as_str()) == Some(false)
                && !job_dir.has(PIPE_DRAINED);
            let verdict = match panes.get(job_id.as_str()) {
                _ if job_dir.has(PIPE_FAILED) => Some(("failed", "pipe_failed")),
                Some(pane) if (!pane.piped || pipe_gone) && !pane.dead => {
                    Some(("failed", "pipe_failed"))
                }
                Some(_) => None,
                None if job_dir.has(EXIT) => {
                    // The runner finished; the pipe side should drain soon.
                    let stale =
                        modified_ago(&job_dir.file(EXIT)).is_some_and(|age| age > DRAIN_GRACE);
                    stale.then_some(("failed", "pipe_failed"))
                }
                None => Some(("lost", "")),
            };
            let Some((status, reason)) = verdict else {
                continue;
            };
            tracing::info!(job_id = %job_id, status, reason, "monitor");
            let _ = self.tmux.kill_session(&job_id).await;
            let id = job_id;
            let reason = reason.to_owned();
            self.db(move |store| {
                let now = now_timestamp();
                if reason.is_empty() {
                    store.mark_lost(&id, &now)
                } else {
                    store.mark_failed(&id, &reason, &now)
                }
            })
            .await?;
            self.watcher.unwatch(job_dir.path());
        }
        Ok(())
    }

    async fn logged_monitor_pass(&self) {
        if let Err(err) = self.monitor_pass().await {
            tracing::warn!("monitor pass failed: {err}");
        }
    }

    /// Deletes ended jobs older than `retention`.
    pub async fn gc_pass(&self, retention: Duration) -> Result<usize, ServiceError> {
        let cutoff = OffsetDateTime::now_utc() - retention;
        let cutoff = format_timestamp(cutoff);
        let old = self.db(move |store| store.ended_before(&cutoff)).await?;
        for job_id in &old {
            self.remove_job(job_id).await?;
        }
        Ok(old.len())
    }

    /// Runs the monitor and GC until `shutdown` turns true.
    pub async fn run_background(self: Arc<Self>, gc_interval: Duration, gc_retention: Duration) {
        let mut shutdown = self.shutdown.clone();
        let mut monitor = tokio::time::interval(MONITOR_INTERVAL);
        let mut gc = tokio::time::interval(gc_interval.max(Duration::from_secs(1)));
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A control client ends when the tmux server dies: look at once
        // instead of at the next tick.
        let tmux_gone = self.tmux.control_ended().unwrap_or_default();
        loop {
            tokio::select! {
                _ = monitor.tick() => self.logged_monitor_pass().await,
                () = tmux_gone.notified() => self.logged_monitor_pass().await,
                _ = gc.tick() => {
                    match self.gc_pass(gc_retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "gc"),
                        Err(err) => tracing::warn!("gc pass failed: {err}"),
                    }
                }
                _ = shutdown.changed() => {
                    self.tmux.close_control();
                    return;
                }
            }
        }
    }
}

// ----- helpers -----------------------------------------------------------

/// A waiter's view of its job directory's changes (see
/// [`crate::watcher`]).
struct JobChanges {
    /// `None` once the directory is no longer watched.
    receiver: Option<watch::Receiver<Changes>>,
    /// The non-output change count and the time of the last status check.
    checked: Option<(Option<u64>, Instant)>,
}

impl JobChanges {
    fn new(receiver: Option<watch::Receiver<Changes>>) -> Self {
        JobChanges {
            receiver,
            checked: None,
        }
    }

    /// Whether the job's status may differ from the last check: never
    /// checked, a non-output change since, the directory unwatched, or a
    /// fallback tick passed. A `true` counts as the next check (the count
    /// is taken before the caller looks, so no change slips between).
    fn status_may_have_changed(&mut self, now: Instant) -> bool {
        let other = self.receiver.as_ref().map(|rx| rx.borrow().other);
        let due = self
            .checked
            .is_none_or(|(seen, at)| other.is_none() || other != seen || now >= at + FALLBACK_TICK);
        if due {
            self.checked = Some((other, now));
        }
        due
    }

    /// Waits for any change or `until`, whichever is first.
    async fn wait(&mut self, until: Instant) {
        match &mut self.receiver {
            Some(rx) => {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // Unwatched (job ended): fall back to the tick.
                            self.receiver = None;
                        }
                    }
                    () = sleep_until(until) => {}
                }
            }
            None => sleep_until(until).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking task: {e}")))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn modified_ago(path: &Path) -> Option<Duration> {
    std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()
}

fn job_result(record: &JobRecord, log: &Path, window: OutputWindow) -> JobResult {
    JobResult {
        job_id: record.job_id,
        done: record.status.is_terminal(),
        status: record.status,
        exit_code: exit_code_of(record),
        output_path: log.to_string_lossy().into_owned(),
        output: window.output,
        offset: window.offset,
        truncated: window.truncated,
    }
}

fn status_view(record: JobRecord, size: u64) -> JobStatusView {
    JobStatusView {
        exit_code: exit_code_of(&record),
        done: record.status.is_terminal(),
        job_id: record.job_id,
        status: record.status,
        created_at: record.created_at,
        started_at: record.started_at,
        ended_at: record.ended_at,
        offset: size,
    }
}

/// `exit_code` is set only for `exited`.
fn exit_code_of(record: &JobRecord) -> Option<i32> {
    (record.status == JobStatus::Exited)
        .then_some(record.exit_code)
        .flatten()
}

fn getrandom_fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = (nanos >> (8 * (i % 16))) as u8;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_growth_alone_does_not_call_for_a_status_check() {
        let (sender, receiver) = watch::channel(Changes::default());
        let mut changes = JobChanges::new(Some(receiver));
        let start = Instant::now();
        assert!(changes.status_may_have_changed(start), "first look");
        assert!(!changes.status_may_have_changed(start));
        sender.send_modify(|c| c.output += 100);
        assert!(!changes.status_may_have_changed(start));
        sender.send_modify(|c| c.other += 1);
        assert!(changes.status_may_have_changed(start), "a marker or poke");
        assert!(!changes.status_may_have_changed(start));
        assert!(
            changes.status_may_have_changed(start + FALLBACK_TICK),
            "the fallback tick"
        );
    }

    #[test]
    fn an_unwatched_directory_always_calls_for_a_check() {
        let mut changes = JobChanges::new(None);
        let now = Instant::now();
        assert!(changes.status_may_have_changed(now));
        assert!(changes.status_may_have_changed(now));
    }

    #[tokio::test]
    async fn a_dropped_channel_wakes_the_waiter_and_turns_checks_on() {
        let (sender, receiver) = watch::channel(Changes::default());
        let mut changes = JobChanges::new(Some(receiver));
        let now = Instant::now();
        assert!(changes.status_may_have_changed(now));
        drop(sender);
        // Returns at once (the channel closed), long before the deadline.
        tokio::time::timeout(
            Duration::from_secs(60),
            changes.wait(now + Duration::from_secs(3600)),
        )
        .await
        .expect("the waiter was not woken");
        assert!(changes.status_may_have_changed(now));
    }
}
