//! Supervision: reconciling jobs left from an earlier run, the monitor that
//! notices dead panes and pipes, and garbage collection.
//!
//! The monitor is driven by events, not by a timer over every job: the
//! watcher reports a job whose pipe side left a marker or closed its log
//! (it exits), tmux's control client reports a job whose window closed
//! (its session ended), and supervision looks at exactly those jobs, a
//! batch at a time ([`JobChecks`](crate::checks::JobChecks)). A look at
//! every live job (one query, one tmux listing, one blocking call) runs at
//! start-up, when events may have been lost (a new control client, an
//! overflowed inotify queue, an unknown window), every [`SWEEP_INTERVAL`]
//! as a safety net, and every [`MONITOR_INTERVAL`] when tmux reports no
//! windows (the command-line client mode). So an idle server with a
//! thousand live jobs does next to nothing.
//!
//! The rules themselves ([`judge`], the exit-commit rule) live in
//! [`shellctl_job::lifecycle`]; this module gathers what they look at (tmux
//! panes, markers, process identities) and carries out their verdicts.

use super::{Service, ServiceError, run_blocking};
use crate::checks::Due;
use crate::tmux::TmuxError;
use shellctl_job::files::PIPE_READY;
use shellctl_job::lifecycle::{
    Ending, FailureReason, MonitorVerdict, Observation, PaneView, commit_recorded_exit, judge,
};
use shellctl_job::{JobDir, JobRecord, Store};
use shellctl_proto::timestamp::format_timestamp;
use shellctl_proto::{JobId, JobStatus};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How often the monitor ticks: it looks again at the few jobs that
/// linger (their session ended while their pipe side drains), takes the
/// scheduled input looks of watched jobs, revives the control client, and,
/// while tmux reports no closed windows (no control client), looks at
/// every live job.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// How often every live job is looked at while tmux reports closed
/// windows: a safety net for a lost event, not how jobs are noticed.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Jobs GC deletes per batch (and lifecycle events per trim), between
/// which requests get the database: each batch holds it for a few
/// milliseconds at most.
const GC_BATCH: u32 = 200;

/// Blocking tasks that remove a GC batch's directories side by side.
const GC_REMOVERS: usize = 4;

/// Up to this many jobs whose verdict depends on their pane are asked
/// about one session each; more, and all panes are listed at once.
const FEW_PANES: usize = 16;

/// The pane values a job may be in, to tell whether a verdict depends on
/// the pane at all.
const ANY_PANE: [Option<PaneView>; 5] = [
    None,
    Some(PaneView {
        piped: true,
        dead: false,
    }),
    Some(PaneView {
        piped: false,
        dead: false,
    }),
    Some(PaneView {
        piped: true,
        dead: true,
    }),
    Some(PaneView {
        piped: false,
        dead: true,
    }),
];

/// What one look at a job's files and row found.
enum Seen {
    /// The job is not running (ended, deleted): nothing to judge.
    Settled,
    /// Still starting: `run` owns it; it is looked at again once it runs.
    Starting,
    /// Running: what the monitor judges (the pane still to be filled in).
    Running(Observation),
}

impl Service {
    /// Start-up: remove job directories no row owns, watch live jobs, fail
    /// jobs whose start an earlier run left half-done (or finish the start
    /// of jobs caught at their gate), and look at every live job once. The
    /// cost is in the live jobs; ended ones cost one read of their ids.
    pub(super) async fn reconcile(&self) -> Result<(), ServiceError> {
        self.remove_orphaned_dirs().await?;
        let live = self.db(Store::live_jobs).await?;
        let panes = match self.tmux.job_panes().await {
            Ok(panes) => panes,
            Err(TmuxError::NoServer) => HashMap::new(),
            Err(err) => return Err(err.into()),
        };
        let watcher = Arc::clone(&self.watcher);
        let dirs: Vec<(JobId, PathBuf)> = live
            .iter()
            .map(|record| (record.job_id, self.config.layout.job_dir(record.job_id)))
            .collect();
        run_blocking(move || {
            for (job_id, dir) in dirs {
                if let Err(err) = watcher.watch(&dir) {
                    // Its waiters fall back to the slow tick; the job still ends.
                    tracing::warn!(%job_id, "watching a live job: {err}; its waiters will poll");
                }
            }
        })
        .await?;
        for record in live {
            let job_id = record.job_id;
            match record.status {
                JobStatus::Starting if panes.contains_key(&job_id) => {
                    let dir = self.job_dir(job_id);
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
    /// accepts requests, so no creation is in flight. One read of every
    /// job id, then one pass over the directory: no query per job.
    async fn remove_orphaned_dirs(&self) -> Result<(), ServiceError> {
        let jobs_dir = self.config.layout.jobs_dir();
        let store = Arc::clone(&self.store);
        let containment = Arc::clone(&self.containment);
        let (removed, killed) =
            run_blocking(move || -> Result<(Vec<PathBuf>, usize), ServiceError> {
                let owned = store.job_ids()?;
                let mut removed = Vec::new();
                for entry in std::fs::read_dir(&jobs_dir)? {
                    let path = entry?.path();
                    let orphan = match path.file_name().and_then(|n| n.to_str()).map(JobId::parse) {
                        Some(Ok(job_id)) => !owned.contains(&job_id),
                        // Not a job directory: not ours to remove.
                        _ => false,
                    };
                    if orphan {
                        JobDir::open(&path).remove()?;
                        removed.push(path);
                    }
                }
                // Groups whose job is gone (their removal failed at the time).
                let killed = containment.sweep(&|name| match JobId::parse(name) {
                    Ok(job_id) => owned.contains(&job_id),
                    Err(_) => true,
                });
                Ok((removed, killed))
            })
            .await??;
        for path in removed {
            tracing::info!(dir = %path.display(), "removed a job directory with no job");
        }
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
    /// fails a job, a vanished session loses it). One query, one tmux
    /// listing and one blocking call, whatever the number of jobs.
    pub async fn monitor_pass(&self) -> Result<(), ServiceError> {
        self.tmux.ensure_control().await;
        let live = self.db(Store::live_jobs).await?;
        self.release_ended_watches(&live).await?;
        let live_ids: HashSet<JobId> = live.iter().map(|record| record.job_id).collect();
        self.tmux
            .forget_windows(|job_id| live_ids.contains(&job_id));
        // `run` owns jobs that are still starting.
        let running: Vec<JobId> = live
            .iter()
            .filter(|record| record.status == JobStatus::Running)
            .map(|record| record.job_id)
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        // Panes first, files second: a job that exits in between shows its
        // exit in the files, rather than a vanished session without one.
        let Some(panes) = self.all_panes().await else {
            return Ok(());
        };
        for (job_id, seen) in self.observe(running).await? {
            if let Seen::Running(seen) = seen {
                let pane = panes.get(&job_id).copied();
                self.carry_out(job_id, Observation { pane, ..seen }).await?;
            }
        }
        Ok(())
    }

    /// Every job pane, or `None` when tmux could not be asked (logged).
    /// A tmux server that is gone is started again (its jobs are gone:
    /// their panes are missing from the empty answer).
    async fn all_panes(&self) -> Option<HashMap<JobId, PaneView>> {
        match self.tmux.job_panes().await {
            Ok(panes) => Some(panes),
            Err(TmuxError::NoServer) => {
                // The tmux server died (or was killed): keep serving on a
                // fresh one; every job on the old one is gone.
                if let Err(err) = self.tmux.ensure_server().await {
                    tracing::error!(
                        "monitor: the jobs' tmux server is gone and could not be restarted: {err}; new jobs will fail to start until it can"
                    );
                }
                Some(HashMap::new())
            }
            Err(err) => {
                tracing::warn!("monitor: listing panes failed: {err}");
                None
            }
        }
    }

    /// A look at the jobs events reported: each one's row, its exit
    /// committed if it can be, its files. The pane only matters where the
    /// verdict depends on it, and a closed window already says the session
    /// is gone. Otherwise tmux is asked only on a second look (`again`,
    /// the lingering jobs on the tick): a pipe side closing its log is
    /// usually followed at once by its `pipe-drained`, which settles the
    /// job without tmux, and every tmux command costs the tmux server a
    /// pass over all its panes.
    async fn check_jobs(&self, due: Due, again: bool) -> Result<(), ServiceError> {
        let Due { jobs, gone, .. } = due;
        let mut needs_pane = Vec::new();
        for (job_id, seen) in self.observe(jobs.into_iter().collect()).await? {
            match seen {
                Seen::Settled => {}
                Seen::Starting => self.linger(job_id, gone.contains(&job_id)),
                Seen::Running(seen) if gone.contains(&job_id) => {
                    self.carry_out(job_id, Observation { pane: None, ..seen })
                        .await?;
                }
                Seen::Running(seen) => match verdict_without_pane(&seen) {
                    Some(MonitorVerdict::Healthy) => {}
                    Some(_) => self.carry_out(job_id, seen).await?,
                    None if again => needs_pane.push(job_id),
                    None => self.linger(job_id, false),
                },
            }
        }
        if needs_pane.is_empty() {
            return Ok(());
        }
        // Panes first, then the files again (see `monitor_pass`).
        let Some(panes) = self.panes_of(&needs_pane).await else {
            return Ok(());
        };
        for (job_id, seen) in self.observe(needs_pane).await? {
            if let Seen::Running(seen) = seen {
                let pane = panes.get(&job_id).copied().flatten();
                self.carry_out(job_id, Observation { pane, ..seen }).await?;
            }
        }
        Ok(())
    }

    /// The panes of a few jobs (`None` for a session that is gone), one
    /// tmux command each, or of many with one listing.
    async fn panes_of(&self, jobs: &[JobId]) -> Option<HashMap<JobId, Option<PaneView>>> {
        if jobs.len() > FEW_PANES {
            let all = self.all_panes().await?;
            return Some(jobs.iter().map(|id| (*id, all.get(id).copied())).collect());
        }
        let mut panes = HashMap::new();
        for &job_id in jobs {
            match self.tmux.job_pane(job_id).await {
                Ok(pane) => {
                    panes.insert(job_id, pane);
                }
                Err(err) => {
                    tracing::warn!(%job_id, "monitor: asking tmux for the pane failed: {err}");
                }
            }
        }
        Some(panes)
    }

    /// Reads the row and files of each job in one blocking call, applying
    /// the exit-commit rule first; a job seen ended releases its watch.
    async fn observe(&self, jobs: Vec<JobId>) -> Result<Vec<(JobId, Seen)>, ServiceError> {
        let store = Arc::clone(&self.store);
        let watcher = Arc::clone(&self.watcher);
        let metrics = Arc::clone(&self.metrics);
        let layout = self.config.layout.clone();
        run_blocking(move || -> Result<Vec<(JobId, Seen)>, ServiceError> {
            let mut seen = Vec::with_capacity(jobs.len());
            for job_id in jobs {
                let job_dir = JobDir::open(layout.job_dir(job_id));
                let mut record = store.get(job_id)?;
                if record.as_ref().is_some_and(|r| !r.status.is_terminal())
                    && commit_recorded_exit(&job_dir, &store, job_id)?
                {
                    record = store.get(job_id)?;
                }
                let look = match record {
                    None => Seen::Settled,
                    Some(record) if record.status.is_terminal() => {
                        super::seen_ended(&watcher, &metrics, &job_dir, &record);
                        Seen::Settled
                    }
                    Some(JobRecord {
                        status: JobStatus::Running,
                        ..
                    }) => Seen::Running(observation(&job_dir)),
                    Some(_) => Seen::Starting,
                };
                seen.push((job_id, look));
            }
            Ok(seen)
        })
        .await?
    }

    /// Settles the monitor's verdict on one running job, if it has one; a
    /// healthy job whose session is gone (its pipe side still drains) is
    /// looked at again on the next tick.
    async fn carry_out(&self, job_id: JobId, seen: Observation) -> Result<(), ServiceError> {
        let verdict = judge(&seen);
        let Some(ending) = verdict.ending() else {
            if seen.pane.is_none() {
                self.linger(job_id, true);
            }
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

    /// Looks at `job_id` again on the next tick.
    fn linger(&self, job_id: JobId, gone: bool) {
        self.lingering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(job_id)
            .and_modify(|known| *known |= gone)
            .or_insert(gone);
    }

    /// Looks again at the jobs that linger (asking tmux where the pane
    /// decides).
    async fn check_lingering(&self) -> Result<(), ServiceError> {
        let lingering = std::mem::take(
            &mut *self
                .lingering
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if lingering.is_empty() {
            return Ok(());
        }
        let mut due = Due::default();
        for (job_id, gone) in lingering {
            due.jobs.insert(job_id);
            if gone {
                due.gone.insert(job_id);
            }
        }
        self.check_jobs(due, true).await
    }

    /// Unwatches directories of jobs that ended with no request looking
    /// (so [`Service::settled_record`] never saw it). Only a row that
    /// exists and is terminal releases a watch: a directory without a row
    /// is a creation in flight (its watch comes before its row). Jobs in
    /// `live` are skipped; only the other watched jobs' rows are read.
    async fn release_ended_watches(&self, live: &[JobRecord]) -> Result<(), ServiceError> {
        let live: HashSet<JobId> = live.iter().map(|record| record.job_id).collect();
        let watcher = Arc::clone(&self.watcher);
        let metrics = Arc::clone(&self.metrics);
        let store = Arc::clone(&self.store);
        run_blocking(move || -> Result<(), ServiceError> {
            for dir in watcher.watched() {
                let job_id = dir.file_name().and_then(|n| n.to_str()).map(JobId::parse);
                let Some(Ok(job_id)) = job_id else { continue };
                if live.contains(&job_id) {
                    continue;
                }
                if let Some(row) = store.get(job_id)?.filter(|row| row.status.is_terminal()) {
                    super::seen_ended(&watcher, &metrics, &JobDir::open(&dir), &row);
                }
            }
            Ok(())
        })
        .await?
    }

    async fn logged_monitor_pass(&self) {
        if let Err(err) = self.monitor_pass().await {
            tracing::warn!("monitor pass failed: {err}");
        }
    }

    /// Deletes ended jobs older than `retention`, and the lifecycle events
    /// recorded before then, in batches of 200, yielding between
    /// them: requests keep being answered while thousands go. Stops early
    /// at shutdown (the next pass goes on).
    pub async fn gc_pass(&self, retention: Duration) -> Result<usize, ServiceError> {
        let cutoff = format_timestamp(OffsetDateTime::now_utc() - retention);
        // Lifecycle events age out with the jobs they describe.
        loop {
            let cut = cutoff.clone();
            let trimmed = self
                .db(move |store| store.trim_events(&cut, GC_BATCH))
                .await?;
            if trimmed < GC_BATCH as usize || *self.shutdown.borrow() {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Sessions of ended jobs are normally gone; the few left are known
        // from one listing, not asked for job by job.
        let mut sessions: Option<HashSet<JobId>> = None;
        let mut removed = 0;
        loop {
            let cut = cutoff.clone();
            let batch = self
                .db(move |store| store.ended_before(&cut, GC_BATCH))
                .await?;
            if batch.is_empty() {
                break;
            }
            if sessions.is_none() {
                sessions = Some(match self.tmux.job_panes().await {
                    Ok(panes) => panes.into_keys().collect(),
                    Err(TmuxError::NoServer) => HashSet::new(),
                    Err(err) => return Err(err.into()),
                });
            }
            let full = batch.len() == GC_BATCH as usize;
            removed += self
                .remove_ended_jobs(batch, sessions.as_ref().unwrap_or(&HashSet::new()))
                .await?;
            if !full || *self.shutdown.borrow() {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Put back the full-disk reserve if a full disk used it up.
        self.db(|store| Ok(store.restore_reserve())).await?;
        Ok(removed)
    }

    /// Removes a batch of ended jobs as [`Service::remove_job`] removes one
    /// (rows first, then sessions, watches and directories), with one
    /// transaction for the rows and one blocking call for the files.
    async fn remove_ended_jobs(
        &self,
        jobs: Vec<JobId>,
        sessions: &HashSet<JobId>,
    ) -> Result<usize, ServiceError> {
        let store = Arc::clone(&self.store);
        let layout = self.config.layout.clone();
        let batch = jobs.clone();
        let deleted = run_blocking(move || -> Result<usize, ServiceError> {
            for &job_id in &batch {
                // Processes of a job that kept them (`keep_background`).
                let job_dir = JobDir::open(layout.job_dir(job_id));
                if let Err(err) = super::guards::end_processes(&job_dir, true) {
                    tracing::warn!(%job_id, "ending the job's processes: {err}");
                }
            }
            match store.delete_many(&batch) {
                // Deleting must work on a full disk, since it is how space
                // is freed: the jobs' files go first, then the rows again.
                Err(err) if err.is_disk_full() => {
                    tracing::warn!("collecting on a full disk: removing the jobs' files first");
                    for &job_id in &batch {
                        JobDir::open(layout.job_dir(job_id)).remove()?;
                    }
                    Ok(store.delete_many(&batch)?)
                }
                outcome => Ok(outcome?),
            }
        })
        .await??;
        for &job_id in jobs.iter().filter(|id| sessions.contains(id)) {
            if let Err(err) = self.tmux.kill_session(job_id).await {
                tracing::warn!(%job_id, "killing the session of a removed job: {err}");
            }
        }
        for &job_id in &jobs {
            // A job removed without being seen ending (its row went first).
            self.metrics.job_forgotten(job_id);
        }
        // Removing a directory is mostly waiting for the filesystem, so a
        // batch is removed by a few blocking tasks side by side.
        let removals = jobs
            .chunks(jobs.len().div_ceil(GC_REMOVERS).max(1))
            .map(|chunk| {
                let watcher = Arc::clone(&self.watcher);
                let layout = self.config.layout.clone();
                let chunk = chunk.to_vec();
                run_blocking(move || {
                    for job_id in chunk {
                        let job_dir = layout.job_dir(job_id);
                        watcher.unwatch(&job_dir);
                        // Removed at the next start (no row owns it).
                        if let Err(err) = JobDir::open(job_dir).remove() {
                            tracing::warn!(%job_id, "removing a collected job's directory: {err}");
                        }
                    }
                })
            });
        for removed in futures_util::future::join_all(removals).await {
            removed?;
        }
        self.db(|store| Ok(store.restore_reserve())).await?;
        Ok(deleted)
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
        let mut tick = tokio::time::interval(MONITOR_INTERVAL);
        let mut gc = tokio::time::interval(gc_interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A control client ends when the tmux server dies: look at once.
        let tmux_gone = self.tmux.control_ended().unwrap_or_default();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                due = self.checks.next() => {
                    if due.everything {
                        last_sweep = tokio::time::Instant::now();
                        self.logged_monitor_pass().await;
                    }
                    if let Err(err) = self.check_jobs(due, false).await {
                        tracing::warn!("looking at reported jobs: {err}");
                    }
                }
                _ = tick.tick() => {
                    self.tmux.ensure_control().await;
                    if !self.tmux.reports_closed_windows() || last_sweep.elapsed() >= SWEEP_INTERVAL {
                        self.checks.everything();
                    }
                    if let Err(err) = self.check_lingering().await {
                        tracing::warn!("looking again at lingering jobs: {err}");
                    }
                    self.look_at_waiting_jobs().await;
                }
                () = tmux_gone.notified() => self.checks.everything(),
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

/// What the monitor sees in a running job's files (the pane is filled in
/// by the caller). Liveness first: a pipe side seen dead and then not
/// drained really died before draining.
fn observation(job_dir: &JobDir) -> Observation {
    let pipe_side_alive = job_dir.pipe_side_alive();
    Observation {
        pane: None,
        pipe_failed: job_dir.pipe_failed(),
        pipe_drained: job_dir.pipe_drained(),
        pipe_side_alive,
        exit_recorded_ago: job_dir.exit_recorded_ago(),
    }
}

/// The verdict on `seen` if it is the same whatever the pane (so tmux
/// need not be asked); `None` when the pane decides.
fn verdict_without_pane(seen: &Observation) -> Option<MonitorVerdict> {
    let mut verdicts = ANY_PANE
        .iter()
        .map(|&pane| judge(&Observation { pane, ..*seen }));
    let first = verdicts.next()?;
    verdicts.all(|v| v == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: Observation = Observation {
        pane: None,
        pipe_failed: false,
        pipe_drained: false,
        pipe_side_alive: Some(true),
        exit_recorded_ago: None,
    };

    #[test]
    fn tmux_is_asked_only_when_the_pane_decides() {
        // A failed pipe fails the job whatever the pane.
        let failed = Observation {
            pipe_failed: true,
            ..RUNNING
        };
        assert_eq!(
            verdict_without_pane(&failed),
            Some(MonitorVerdict::Failed(FailureReason::PipeFailed))
        );
        // A pipe side that died, or an exit while the pipe side drains: a
        // live pane, a detached pipe and a vanished session differ.
        let died = Observation {
            pipe_side_alive: Some(false),
            ..RUNNING
        };
        assert_eq!(verdict_without_pane(&died), None);
        let draining = Observation {
            exit_recorded_ago: Some(Duration::from_secs(1)),
            ..RUNNING
        };
        assert_eq!(verdict_without_pane(&draining), None);
        assert_eq!(verdict_without_pane(&RUNNING), None);
    }
}
