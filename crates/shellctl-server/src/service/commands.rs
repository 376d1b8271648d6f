//! The job commands behind the routes: run, input, terminate, delete, and
//! the read-only status, tail and list.

use super::waiting::Window;
use super::{Service, ServiceError, guards, pane_gone, run_blocking};
use crate::tmux::JobLaunch;
use shellctl_job::containment::JobContainment;
use shellctl_job::files::{JobSpec, PIPE_READY, SCRIPT, write_private};
use shellctl_job::lifecycle::{Ending, FailureReason, TerminateCause};
use shellctl_job::{InsertError, JobDir, JobRecord, NewJob, StateLayout};
use shellctl_proto::timestamp::now_timestamp;
use shellctl_proto::{
    DeleteJobQuery, DeleteJobResponse, EnvOverlay, EnvPreset, InputJobRequest, JobId, JobInfo,
    JobResult, JobStatusView, ListJobsQuery, ListJobsResponse, RunJobRequest, TerminalSize,
    WaitJobRequest,
};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

/// Longest a job may take to get its pipe side and runner ready. Generous:
/// a busy machine must not fail jobs by missing it (the reference's 1 s
/// deadline fails whole bursts).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Attempts at a fresh job id before giving up.
const ID_ATTEMPTS: usize = 64;
/// Start gates opened at once. Opening one blocks a thread of the blocking
/// pool until the job's runner reaches its gate; in a burst of starts on a
/// busy machine runners take a while, and without a bound the waits took
/// all 512 threads of the pool (every request's file and database work
/// then queued behind them) and left the server's memory tens of MiB
/// larger for good. The starts beyond wait for a permit without a thread;
/// the runners reach their gates at the pace tmux starts them, far below
/// what this many waits let through.
pub(super) const GATE_OPENERS: usize = 16;
/// Attempts at a run with an idempotency key whose job vanishes while it
/// is read (deleted at that moment); each vanishing frees the key.
const KEY_ATTEMPTS: usize = 3;

impl Service {
    /// `POST /v1/jobs/run`. With an idempotency key that a job already
    /// holds, nothing starts: the answer is that job's, from offset 0.
    pub async fn run(&self, request: RunJobRequest) -> Result<JobResult, ServiceError> {
        let window = Window::from(&request);
        let Some(key) = request.idempotency_key.clone() else {
            return self.start_job(request).await?.answer(self, window).await;
        };
        // The job holding the key may be deleted between finding it and
        // reading it; the key is then free, and the run tries again.
        for _ in 0..KEY_ATTEMPTS {
            let lookup = key.clone();
            let holder = self
                .db(move |store| store.find_by_idempotency_key(&lookup))
                .await?;
            let started = match holder {
                Some(holder) => Created::KeyTaken(holder),
                None => self.start_job(request.clone()).await?,
            };
            match started
                .answer_for_key(self, &key, &request.script, window)
                .await
            {
                Err(ServiceError::JobNotFound(_)) if started.is_key_taken() => {}
                answer => return answer,
            }
        }
        Err(ServiceError::Internal(format!(
            "idempotency key {key:?}: its job kept vanishing"
        )))
    }

    /// Creates and launches the job, unless its idempotency key is taken.
    async fn start_job(&self, request: RunJobRequest) -> Result<Created, ServiceError> {
        let limits = request.limits();
        self.containment.check(&limits)?;
        let preset = request.env_preset.unwrap_or(self.config.env_preset);
        let terminal = request.terminal.unwrap_or_default();
        let new_job = NewJob {
            label: request.label,
            idempotency_key: request.idempotency_key,
        };
        let spec = JobSpec {
            cwd: PathBuf::new(),
            env: with_preset(preset, request.env.unwrap_or_default()),
            max_runtime_ms: request.max_runtime_seconds.map(seconds_to_millis),
            idle_timeout_ms: request.idle_timeout_seconds.map(seconds_to_millis),
            terminal: Some(terminal),
            containment: None,
            keep_background: request.keep_background.unwrap_or(false),
            limits,
            max_log_bytes: self.config.guards.max_log_bytes,
        };
        let created = self
            .create_job(request.script, request.cwd, spec, new_job)
            .await?;
        if let Created::Job(job_id) = created
            && let Err(reason) = self.launch(job_id, terminal).await
        {
            tracing::warn!(%job_id, "job failed to start: {reason}");
            self.end_job(job_id, Ending::Failed(FailureReason::StartFailed))
                .await?;
        }
        Ok(created)
    }

    /// Creates the job's directory, watch and row (`starting`). A failure
    /// at any step leaves none of them behind: a directory without a row
    /// would never be collected. A taken idempotency key is not a failure:
    /// it names the job that holds it.
    async fn create_job(
        &self,
        script: String,
        cwd: Option<String>,
        spec: JobSpec,
        new_job: NewJob,
    ) -> Result<Created, ServiceError> {
        let layout = self.config.layout.clone();
        let default_cwd = self.config.default_cwd.clone();
        let watcher = Arc::clone(&self.watcher);
        let store = Arc::clone(&self.store);
        let containment = Arc::clone(&self.containment);
        let live_limit = self.config.guards.max_running_jobs;
        run_blocking(move || -> Result<Created, ServiceError> {
            let spec = JobSpec {
                cwd: resolve_cwd(&default_cwd, cwd.as_deref())?,
                ..spec
            };
            if !store.restore_reserve() {
                // The reserve is spent (a full disk used it) and cannot be
                // put back: the room left is for ending and deleting jobs.
                return Err(ServiceError::InsufficientStorage(
                    "less free space than the full-disk reserve needs".into(),
                ));
            }
            let (job_id, job_dir, spec) = create_job_dir(&layout, &containment, &script, spec)?;
            let registered = watcher
                .watch(job_dir.path())
                .map_err(|err| Err(ServiceError::from(err)))
                .and_then(|()| {
                    match store.insert_within(job_id, &now_timestamp(), &new_job, live_limit) {
                        Ok(()) => store
                            .mark_starting(job_id)
                            .map(drop)
                            .map_err(|e| Err(guards::store_error(e))),
                        Err(InsertError::KeyTaken(holder)) => Err(Ok(holder)),
                        Err(err) => Err(Err(guards::insert_error(err, live_limit))),
                    }
                });
            if let Err(outcome) = registered {
                watcher.unwatch(job_dir.path());
                if let Err(cleanup) = store.delete(job_id) {
                    tracing::error!(%job_id, "removing the row of a failed creation: {cleanup}");
                }
                if let Err(cleanup) = job_dir.remove() {
                    tracing::error!(%job_id, "removing the directory of a failed creation: {cleanup}");
                }
                remove_groups(job_id, &spec);
                return outcome.map(Created::KeyTaken);
            }
            Ok(Created::Job(job_id))
        })
        .await?
    }

    /// Starts the session with its pipe, waits for the pipe side, lets the
    /// runner go, and marks the job running.
    async fn launch(&self, job_id: JobId, terminal: TerminalSize) -> Result<(), String> {
        let job_dir = self.job_dir(job_id);
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
        self.wait_for_marker(&job_dir, PIPE_READY, Instant::now() + START_DEADLINE)
            .await
            .map_err(|()| "the output pipe did not start".to_owned())?;
        // The job's clock starts before its runner is let go: a job that
        // ends at once may be seen ending before the gate call returns.
        self.metrics.job_launching(job_id);
        self.open_gate(&job_dir).await?;
        self.metrics.job_started();
        self.db(move |store| store.mark_running(job_id, &now_timestamp()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Lets the runner through its start gate (blocking until it is there,
    /// at most [`START_DEADLINE`]).
    async fn open_gate(&self, job_dir: &JobDir) -> Result<(), String> {
        // A permit is held at most `START_DEADLINE` (then the open is
        // abandoned below), so the wait for one is bounded too.
        let _permit = self
            .gate_openers
            .acquire()
            .await
            .map_err(|err| format!("start gate permits: {err}"))?;
        let opener = job_dir.clone();
        let gate = tokio::task::spawn_blocking(move || opener.open_gate());
        match tokio::time::timeout(START_DEADLINE, gate).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(format!("opening the start gate: {err}")),
            Ok(Err(err)) => Err(format!("start gate task: {err}")),
            Err(_) => {
                // Free the blocked opener thread before giving up.
                let abandoner = job_dir.clone();
                if let Ok(Err(err)) = run_blocking(move || abandoner.abandon_gate()).await {
                    tracing::warn!("freeing an abandoned start gate: {err}");
                }
                Err("the runner never reached the start gate".into())
            }
        }
    }

    /// `POST /v1/jobs/{id}/wait`.
    pub async fn wait(
        &self,
        job_id: JobId,
        request: WaitJobRequest,
    ) -> Result<JobResult, ServiceError> {
        self.wait_window(job_id, Window::from(&request)).await
    }

    /// `POST /v1/jobs/{id}/input`: types the text, then waits.
    pub async fn input(
        &self,
        job_id: JobId,
        request: InputJobRequest,
    ) -> Result<JobResult, ServiceError> {
        self.check_input_offset(job_id, request.offset).await?;
        if !request.text.is_empty() {
            let typed = self.type_text(job_id, request.text.clone()).await;
            self.input.input_sent(job_id, std::time::Instant::now());
            typed?;
        }
        self.wait_window(job_id, Window::from(&request)).await
    }

    /// Before typing into a job: it must still run, and the offset its
    /// answer reads from must exist.
    pub(super) async fn check_input_offset(
        &self,
        job_id: JobId,
        offset: u64,
    ) -> Result<(), ServiceError> {
        let (record, size) = self.settled_record_and_size(job_id).await?;
        if record.status.is_terminal() {
            return Err(ServiceError::JobNotRunning(job_id));
        }
        if offset > size {
            return Err(ServiceError::InvalidOffset { offset, size });
        }
        Ok(())
    }

    async fn type_text(&self, job_id: JobId, text: String) -> Result<(), ServiceError> {
        // Unique within this server, which owns the private runtime dir.
        static TYPED: AtomicU64 = AtomicU64::new(0);
        let serial = TYPED.fetch_add(1, Ordering::Relaxed);
        let file = self
            .config
            .layout
            .runtime_dir()
            .join(format!("input-{job_id}-{serial}"));
        let path = file.clone();
        run_blocking(move || write_private(&path, text.as_bytes())).await??;
        let pasted = self.tmux.paste_file(job_id, &file).await;
        if let Ok(Err(err)) = run_blocking(move || std::fs::remove_file(file)).await {
            tracing::warn!(%job_id, "removing a typed-input file: {err}");
        }
        pasted.map_err(|err| pane_gone(job_id, err))
    }

    /// `GET /v1/jobs/{id}/log/tail`.
    pub async fn tail(&self, job_id: JobId, limit: u32) -> Result<JobResult, ServiceError> {
        let record = self.settled_record(job_id).await?;
        let log = self.job_dir(job_id).file(shellctl_job::files::OUTPUT);
        let path = log.clone();
        let window =
            run_blocking(move || shellctl_term::tail_window(&path, limit as usize)).await??;
        self.metrics.output_served(window.output.len());
        Ok(super::waiting::job_result(&record, &log, window))
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn status(&self, job_id: JobId) -> Result<JobStatusView, ServiceError> {
        let (record, size) = self.settled_record_and_size(job_id).await?;
        Ok(status_view(record, size))
    }

    /// `GET /v1/jobs`.
    pub async fn list(&self, query: ListJobsQuery) -> Result<ListJobsResponse, ServiceError> {
        let records = self
            .db(move |store| {
                // `label=` (empty) filters nothing, like an absent one.
                let label = query.label.as_deref().filter(|label| !label.is_empty());
                store.list(query.status, label, query.limit)
            })
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
        job_id: JobId,
        grace: Duration,
    ) -> Result<JobStatusView, ServiceError> {
        let record = self.settled_record(job_id).await?;
        if record.status.is_terminal() {
            // Processes a job kept (`keep_background`) end with a
            // terminate of the job, as with its delete.
            self.end_processes(job_id, true).await;
        } else if self
            .db(move |store| store.request_terminate(job_id))
            .await?
        {
            if let Err(err) = self.tmux.send_ctrl_c(job_id).await {
                // The kill after the grace still ends it.
                tracing::warn!(%job_id, "sending Ctrl-C: {err}");
            }
            if self
                .wait_until_ended(job_id, Instant::now() + grace)
                .await?
            {
                // The script ended at the Ctrl-C; what it started and
                // left running ends now, before the answer.
                self.end_processes(job_id, true).await;
            } else {
                self.end_job(job_id, Ending::Terminated(TerminateCause::Request))
                    .await?;
            }
        }
        self.status(job_id).await
    }

    /// `DELETE /v1/jobs/{id}`: terminates first when forced.
    pub async fn delete(
        &self,
        job_id: JobId,
        query: DeleteJobQuery,
    ) -> Result<DeleteJobResponse, ServiceError> {
        let record = self.settled_record(job_id).await?;
        if !record.status.is_terminal() {
            if !query.force {
                return Err(ServiceError::JobRunning(job_id));
            }
            self.terminate(job_id, Duration::from_secs_f64(query.grace_seconds))
                .await?;
        }
        self.remove_job(job_id).await?;
        Ok(DeleteJobResponse {
            job_id,
            deleted: true,
        })
    }

    /// Deletes an ended job: the row first, so that readers get 404 from
    /// then on rather than a job whose output is vanishing; then its
    /// session, watch and directory. A directory whose removal fails is
    /// removed at the next start (no row owns it).
    pub(super) async fn remove_job(&self, job_id: JobId) -> Result<(), ServiceError> {
        // Processes of a job that kept them (`keep_background`).
        self.end_processes(job_id, true).await;
        let deleted = self.db(move |store| store.delete(job_id)).await;
        if let Err(ServiceError::Store(err)) = &deleted
            && err.is_disk_full()
        {
            // Deleting must work on a full disk, since it is how space is
            // freed: the job's files go first, then the row again.
            tracing::warn!(%job_id, "deleting on a full disk: removing the job's files first");
            let job_dir = self.job_dir(job_id);
            run_blocking(move || job_dir.remove()).await??;
            self.db(move |store| store.delete(job_id)).await?;
        } else {
            deleted?;
        }
        if let Err(err) = self.tmux.kill_session(job_id).await {
            tracing::warn!(%job_id, "killing the session of a removed job: {err}");
        }
        // A job removed without being seen ending (its row went first).
        self.metrics.job_forgotten(job_id);
        let job_dir = self.job_dir(job_id);
        let watcher = Arc::clone(&self.watcher);
        let store = Arc::clone(&self.store);
        run_blocking(move || {
            watcher.unwatch(job_dir.path());
            let removed = job_dir.remove();
            store.restore_reserve();
            removed
        })
        .await??;
        Ok(())
    }
}

/// What [`Service::create_job`] made.
#[derive(Debug, Clone, Copy)]
enum Created {
    /// A new job.
    Job(JobId),
    /// Nothing: this job holds the idempotency key.
    KeyTaken(JobId),
}

impl Created {
    fn is_key_taken(self) -> bool {
        matches!(self, Created::KeyTaken(_))
    }

    /// The answer to a run without a key: the new job's first window.
    async fn answer(self, service: &Service, window: Window) -> Result<JobResult, ServiceError> {
        match self {
            Created::Job(job_id) | Created::KeyTaken(job_id) => {
                service.wait_window(job_id, window).await
            }
        }
    }

    /// The answer to a run with `key`: the new job's first window; or, when
    /// another job holds the key, that job's output from offset 0 (as `run`
    /// would answer) if it runs the same script, else a conflict.
    async fn answer_for_key(
        self,
        service: &Service,
        key: &str,
        script: &str,
        window: Window,
    ) -> Result<JobResult, ServiceError> {
        let holder = match self {
            Created::Job(job_id) => return service.wait_window(job_id, window).await,
            Created::KeyTaken(holder) => holder,
        };
        let path = service.job_dir(holder).file(SCRIPT);
        let theirs = run_blocking(move || std::fs::read_to_string(path))
            .await?
            .map_err(|err| match err.kind() {
                // Deleted since the key was looked up.
                io::ErrorKind::NotFound => ServiceError::JobNotFound(holder.to_string()),
                _ => ServiceError::Io(err),
            })?;
        if theirs != script {
            return Err(ServiceError::IdempotencyConflict {
                key: key.to_owned(),
                job_id: holder,
            });
        }
        service
            .wait_window(
                holder,
                Window {
                    offset: 0,
                    ..window
                },
            )
            .await
    }
}

/// A validated deadline (at most 30 days) in whole milliseconds.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn seconds_to_millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(1.0) as u64
}

/// The job's env overlay: the preset's variables, then the request's own
/// over them.
fn with_preset(preset: EnvPreset, own: EnvOverlay) -> EnvOverlay {
    let mut env: EnvOverlay = preset
        .variables()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    env.extend(own);
    env
}

/// The job's working directory: the server's home for none or `~`, `~/…`
/// under it, else an absolute path. It must be an existing directory.
fn resolve_cwd(default_cwd: &std::path::Path, cwd: Option<&str>) -> Result<PathBuf, ServiceError> {
    let path = match cwd {
        None | Some("~") => default_cwd.to_owned(),
        Some(raw) => match raw.strip_prefix("~/") {
            Some(rest) => default_cwd.join(rest),
            None => PathBuf::from(raw),
        },
    };
    if path.is_absolute() && path.is_dir() {
        Ok(path)
    } else {
        Err(ServiceError::InvalidCwd(cwd.unwrap_or_default().to_owned()))
    }
}

/// A fresh id and its populated directory, with the job's groups made; a
/// taken id (the directory exists) is a collision, and another id is
/// drawn. Returns the spec as written (with its containment). A failure
/// leaves nothing behind; a full disk is `insufficient_storage`.
fn create_job_dir(
    layout: &StateLayout,
    containment: &guards::Containment,
    script: &str,
    spec: JobSpec,
) -> Result<(JobId, JobDir, JobSpec), ServiceError> {
    for _ in 0..ID_ATTEMPTS {
        let job_id = JobId::generate(OffsetDateTime::now_utc())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let job_dir = match JobDir::create(layout.job_dir(job_id)) {
            Ok(dir) => dir,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(guards::io_error(err)),
        };
        let removed_dir = |job_dir: &JobDir| {
            if let Err(cleanup) = job_dir.remove() {
                tracing::error!(%job_id, "removing the directory of a failed creation: {cleanup}");
            }
        };
        let tracking = match containment.create(job_id, &spec.limits) {
            Ok(tracking) => tracking,
            Err(err) => {
                removed_dir(&job_dir);
                return Err(if err.kind() == io::ErrorKind::InvalidInput {
                    ServiceError::UnsupportedLimit(err.to_string())
                } else {
                    guards::io_error(err)
                });
            }
        };
        let spec = JobSpec {
            containment: Some(tracking),
            ..spec
        };
        if let Err(err) = job_dir.populate(script, &spec) {
            removed_dir(&job_dir);
            remove_groups(job_id, &spec);
            return Err(guards::io_error(err));
        }
        return Ok((job_id, job_dir, spec));
    }
    Err(ServiceError::Internal("no free job id this minute".into()))
}

/// Removes the (still empty) groups of a job whose creation failed.
fn remove_groups(job_id: JobId, spec: &JobSpec) {
    if let Some(Err(err)) = spec.containment.as_ref().map(JobContainment::remove_groups) {
        tracing::error!(%job_id, "removing the groups of a failed creation: {err}");
    }
}

pub(super) fn status_view(record: JobRecord, size: u64) -> JobStatusView {
    JobStatusView {
        exit_code: super::waiting::exit_code_of(&record),
        done: record.status.is_terminal(),
        job_id: record.job_id,
        status: record.status,
        created_at: record.created_at,
        started_at: record.started_at,
        ended_at: record.ended_at,
        offset: size,
    }
}
