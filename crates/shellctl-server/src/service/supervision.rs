//! Supervision: reconciling jobs left from an earlier run, the monitor that
//! notices dead panes and pipes, settling jobs as soon as their pipe side
//! leaves a marker, and garbage collection.
//!
//! The rules themselves ([`judge`], the exit-commit rule) live in
//! [`shellctl_job::lifecycle`]; this module gathers what they look at (tmux
//! panes, markers, process identities) and carries out their verdicts.

use super::{Service, ServiceError, run_blocking};
use crate::tmux::TmuxError;
use shellctl_job::files::PIPE_READY;
use shellctl_job::lifecycle::{Ending, FailureReason, Observation, PaneView, judge};
use shellctl_job::{JobDir, Store};
use shellctl_proto::timestamp::format_timestamp;
use shellctl_proto::{JobId, JobStatus};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How often the monitor looks at panes and pipes.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

impl Service {
    /// Start-up: remove job directories no row owns, watch live jobs, fail
    /// jobs whose start an earlier run left half-done (or finish the start
    /// of jobs caught at their gate), and run one monitor pass.
    pub(super) async fn reconcile(&self) -> Result<(), ServiceError> {
        self.remove_orphaned_dirs().await?;
        let live = self.db(Store::live_jobs).await?;
        let panes = match self.tmux.job_panes().await {
            Ok(panes) => panes,
            Err(TmuxError::NoServer) => HashMap::new(),
            Err(err) => return Err(err.into()),
        };
        for record in live {
            let job_id = record.job_id;
            let job_dir = self.job_dir(job_id);
            let watcher = Arc::clone(&self.watcher);
            let dir = job_dir.clone();
            if let Err(err) = run_blocking(move || watcher.watch(dir.path())).await? {
                // Its waiters fall back to the slow tick; the job still ends.
                tracing::warn!(%job_id, "watching a live job: {err}; its waiters will poll");
            }
            match record.status {
                JobStatus::Starting if panes.contains_key(job_id.as_str()) => {
                    let dir = job_dir.clone();
                    let released = run_blocking(move || -> std::io::Result<Option<bool>> {
                        if !dir.has(PIPE_READY) {
                            return Ok(None);
                        }
                        dir.release_waiting_runner().map(Some)
                    })
                    .await?;
                    match released {
                        // Caught at its gate by the last shutdown: it is let
                        // go now. Or no runner waits: it passed the gate
                        // before the last run could record `running` (it
                        // must not be killed now), or has not reached it
                        // yet (it then waits there, visibly `running`, until
                        // terminated; a runner takes milliseconds to get
                        // there, a restart far longer).
                        Ok(Some(_)) => {
                            let now = shellctl_proto::timestamp::now_timestamp();
                            self.db(move |store| store.mark_running(job_id, &now))
                                .await?;
                        }
                        Ok(None) => {
                            tracing::warn!(%job_id, "interrupted start: the output pipe never started");
                            self.end_job(job_id, Ending::Failed(FailureReason::StartInterrupted))
                                .await?;
                        }
                        Err(err) => {
                            tracing::warn!(%job_id, "resuming an interrupted start: {err}");
                            self.end_job(job_id, Ending::Failed(FailureReason::StartFailed))
                                .await?;
                        }
                    }
                }
                JobStatus::Created | JobStatus::Starting => {
                    self.end_job(job_id, Ending::Failed(FailureReason::StartInterrupted))
                        .await?;
                }
                _ => {}
            }
        }
        self.monitor_pass().await
    }

    /// Removes directories under `jobs/` that no row owns: left by a crash
    /// between creating a directory and inserting its row, or by a version
    /// that did not clean up a failed creation. Runs before the server
    /// accepts requests, so no creation is in flight.
    async fn remove_orphaned_dirs(&self) -> Result<(), ServiceError> {
        let jobs_dir = self.config.layout.jobs_dir();
        let store = Arc::clone(&self.store);
        let removed = run_blocking(move || -> Result<Vec<PathBuf>, ServiceError> {
            let mut removed = Vec::new();
            for entry in std::fs::read_dir(&jobs_dir)? {
                let path = entry?.path();
                let owned = match path.file_name().and_then(|n| n.to_str()).map(JobId::parse) {
                    Some(Ok(job_id)) => store.get(job_id)?.is_some(),
                    // Not a job directory: not ours to remove.
                    _ => true,
                };
                if !owned {
                    JobDir::open(&path).remove()?;
                    removed.push(path);
                }
            }
            Ok(removed)
        })
        .await??;
        for path in removed {
            tracing::info!(dir = %path.display(), "removed a job directory with no job");
        }
        // Groups whose job is gone (their removal failed at the time).
        let store = Arc::clone(&self.store);
        let containment = Arc::clone(&self.containment);
        let killed = run_blocking(move || {
            containment.sweep(&|name| match JobId::parse(name) {
                Ok(job_id) => !matches!(store.get(job_id), Ok(None)),
                Err(_) => true,
            })
        })
        .await?;
        if killed > 0 {
            tracing::info!(
                killed,
                "ended processes in the groups of jobs that are gone"
            );
        }
        Ok(())
    }

    /// One look at every live job: release the watches of jobs that ended,
    /// commit drained exits, and settle the monitor's verdicts (a dead pipe
    /// fails a job, a vanished session loses it).
    pub async fn monitor_pass(&self) -> Result<(), ServiceError> {
        self.tmux.ensure_control().await;
        self.release_ended_watches().await?;
        let live = self.db(Store::live_jobs).await?;
        if live.is_empty() {
            return Ok(());
        }
        let panes = match self.tmux.job_panes().await {
            Ok(panes) => panes,
            Err(TmuxError::NoServer) => {
                // The tmux server died (or was killed): keep serving on a
                // fresh one; every job on the old one is gone.
                if let Err(err) = self.tmux.ensure_server().await {
                    tracing::error!(
                        "monitor: the jobs' tmux server is gone and could not be restarted: {err}; new jobs will fail to start until it can"
                    );
                }
                HashMap::new()
            }
            Err(err) => {
                tracing::warn!("monitor: listing panes failed: {err}");
                return Ok(());
            }
        };
        let mut running = Vec::with_capacity(live.len());
        for record in live {
            // `run` owns jobs that are still starting.
            if record.status == JobStatus::Running {
                let pane = panes.get(record.job_id.as_str()).copied();
                self.check_running_job(record.job_id, pane).await?;
                running.push(record.job_id);
            }
        }
        self.look_at_waiting_jobs(&running).await;
        Ok(())
    }

    /// Unwatches directories of jobs that ended with no request looking
    /// (so [`Service::settled_record`] never saw it). Only a row that
    /// exists and is terminal releases a watch: a directory without a row
    /// is a creation in flight (its watch comes before its row).
    async fn release_ended_watches(&self) -> Result<(), ServiceError> {
        let watcher = Arc::clone(&self.watcher);
        let metrics = Arc::clone(&self.metrics);
        let store = Arc::clone(&self.store);
        run_blocking(move || -> Result<(), ServiceError> {
            for dir in watcher.watched() {
                let job_id = dir.file_name().and_then(|n| n.to_str()).map(JobId::parse);
                let Some(Ok(job_id)) = job_id else { continue };
                if let Some(row) = store.get(job_id)?.filter(|row| row.status.is_terminal()) {
                    super::seen_ended(&watcher, &metrics, &JobDir::open(&dir), &row);
                }
            }
            Ok(())
        })
        .await?
    }

    /// Applies the exit-commit rule, then the monitor's judgement, to one
    /// running job.
    async fn check_running_job(
        &self,
        job_id: JobId,
        pane: Option<PaneView>,
    ) -> Result<(), ServiceError> {
        if self.settled_record(job_id).await?.status.is_terminal() {
            return Ok(());
        }
        let job_dir = self.job_dir(job_id);
        let seen = run_blocking(move || {
            // Liveness first: a pipe side seen dead and then not drained
            // really died before draining.
            let pipe_side_alive = job_dir.pipe_side_alive();
            Observation {
                pane,
                pipe_failed: job_dir.pipe_failed(),
                pipe_drained: job_dir.pipe_drained(),
                pipe_side_alive,
                exit_recorded_ago: job_dir.exit_recorded_ago(),
            }
        })
        .await?;
        let verdict = judge(&seen);
        let Some(ending) = verdict.ending() else {
            return Ok(());
        };
        // The pipe side may have drained and committed meanwhile.
        if self.settled_record(job_id).await?.status.is_terminal() {
            return Ok(());
        }
        tracing::info!(%job_id, ?verdict, ?seen, "monitor");
        self.end_job(job_id, ending).await?;
        Ok(())
    }

    /// A pipe side left a marker (drained or failed): settle the job now
    /// rather than at the next monitor tick.
    async fn on_pipe_marker(&self, job_id: JobId) -> Result<(), ServiceError> {
        let (record, pipe_failed) = match self.settled(job_id, JobDir::pipe_failed).await {
            Ok(seen) => seen,
            // Deleted meanwhile.
            Err(ServiceError::JobNotFound(_)) => return Ok(()),
            Err(err) => return Err(err),
        };
        if record.status == JobStatus::Running && pipe_failed {
            // The marker alone decides the verdict; the pane does not matter.
            self.check_running_job(job_id, None).await?;
        }
        Ok(())
    }

    async fn logged_monitor_pass(&self) {
        if let Err(err) = self.monitor_pass().await {
            tracing::warn!("monitor pass failed: {err}");
        }
    }

    /// Deletes ended jobs older than `retention`, and the lifecycle events
    /// recorded before then.
    pub async fn gc_pass(&self, retention: Duration) -> Result<usize, ServiceError> {
        let cutoff = format_timestamp(OffsetDateTime::now_utc() - retention);
        let old = self
            .db(move |store| {
                // Lifecycle events age out with the jobs they describe.
                store.trim_events(&cutoff)?;
                store.ended_before(&cutoff)
            })
            .await?;
        for &job_id in &old {
            self.remove_job(job_id).await?;
        }
        // Put back the full-disk reserve if a full disk used it up.
        self.db(|store| Ok(store.restore_reserve())).await?;
        Ok(old.len())
    }

    /// Runs the monitor, marker reactions and GC, and the lifecycle event
    /// feed, until `shutdown` turns true.
    pub async fn run_background(self: Arc<Self>, gc_interval: Duration, gc_retention: Duration) {
        tokio::join!(
            self.supervise(gc_interval, gc_retention),
            self.feed_events()
        );
    }

    async fn supervise(&self, gc_interval: Duration, gc_retention: Duration) {
        let mut shutdown = self.shutdown.clone();
        let mut monitor = tokio::time::interval(MONITOR_INTERVAL);
        let mut gc = tokio::time::interval(gc_interval.max(Duration::from_secs(1)));
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A control client ends when the tmux server dies: look at once
        // instead of at the next tick.
        let tmux_gone = self.tmux.control_ended().unwrap_or_default();
        let taken = self
            .marker_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut markers) = taken else {
            tracing::error!("the background task was started twice; the second one stops");
            return;
        };
        loop {
            tokio::select! {
                _ = monitor.tick() => self.logged_monitor_pass().await,
                () = tmux_gone.notified() => self.logged_monitor_pass().await,
                Some(job_id) = markers.recv() => {
                    if let Err(err) = self.on_pipe_marker(job_id).await {
                        tracing::warn!(%job_id, "settling after a pipe-side marker: {err}");
                    }
                }
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
