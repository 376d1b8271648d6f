//! The waiting engine: how a request waits for output or an ending and
//! returns one output [`Window`].
//!
//! Waits are event-driven (see [`crate::watcher`]): output growth wakes a
//! waiter, which then needs only an `fstat` of the open log; anything else
//! in the job directory (a marker, or the watch closing because the
//! job ended) means the status may have changed and SQLite is read again.
//! No tmux process is spawned on a waiter's path, and a slow fallback tick
//! covers a lost event.

use super::{Service, ServiceError, run_blocking};
use crate::watcher::Changes;
use shellctl_job::files::OUTPUT;
use shellctl_job::{JobDir, JobRecord};
use shellctl_proto::{
    InputJobRequest, JobId, JobResult, JobStatus, KeysRequest, RunJobRequest, WaitJobRequest,
};
use shellctl_term::OutputWindow;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Waiters re-check this often even without an event.
pub(super) const FALLBACK_TICK: Duration = Duration::from_secs(1);

/// What a request asks of its output window: where to start, how long to
/// wait, how much to return, and how long output may be quiet before a
/// partial window returns. Validated by `shellctl-proto` on the way in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Byte offset into `output.log` to read from.
    pub offset: u64,
    /// Longest wait before returning whatever there is.
    pub timeout: Duration,
    /// Most bytes of output to return.
    pub limit: u32,
    /// Return this long after output last grew, without waiting for more.
    pub idle_flush: Duration,
}

impl Window {
    fn new(offset: u64, timeout: f64, limit: u32, idle_flush: f64) -> Window {
        Window {
            offset,
            timeout: Duration::from_secs_f64(timeout),
            limit,
            idle_flush: Duration::from_secs_f64(idle_flush),
        }
    }
}

impl From<&RunJobRequest> for Window {
    fn from(request: &RunJobRequest) -> Window {
        Window::new(
            0,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
    }
}

impl From<&WaitJobRequest> for Window {
    fn from(request: &WaitJobRequest) -> Window {
        Window::new(
            request.offset,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
    }
}

impl From<&KeysRequest> for Window {
    fn from(request: &KeysRequest) -> Window {
        Window::new(
            request.offset,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
    }
}

impl From<&InputJobRequest> for Window {
    fn from(request: &InputJobRequest) -> Window {
        Window::new(
            request.offset,
            request.timeout,
            request.output_limit,
            request.idle_flush_seconds,
        )
    }
}

impl Service {
    /// Waits until `marker` exists in `job_dir`, or `deadline`.
    pub(super) async fn wait_for_marker(
        &self,
        job_dir: &JobDir,
        marker: &'static str,
        deadline: Instant,
    ) -> Result<(), ()> {
        let seen = self
            .wait_until(job_dir, deadline, || {
                let dir = job_dir.clone();
                async move { run_blocking(move || dir.has(marker)).await }
            })
            .await;
        match seen {
            Ok(true) => Ok(()),
            _ => Err(()),
        }
    }

    /// Waits for the job to reach a terminal status; returns whether it did.
    pub(super) async fn wait_until_ended(
        &self,
        job_id: JobId,
        deadline: Instant,
    ) -> Result<bool, ServiceError> {
        let job_dir = self.job_dir(job_id);
        self.wait_until(&job_dir, deadline, || async move {
            Ok(self.settled_record(job_id).await?.status.is_terminal())
        })
        .await
    }

    /// Re-checks `done` whenever `job_dir` changes (or on the fallback tick)
    /// until it holds or `deadline` passes; returns whether it held.
    pub(super) async fn wait_until<F, Fut>(
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

    /// Waits until the window is ready (the job ended, `limit` bytes are
    /// there, output went quiet for `idle_flush`, the timeout passed, or the
    /// server shuts down) and returns it with the status as of then.
    pub(super) async fn wait_window(
        &self,
        job_id: JobId,
        window: Window,
    ) -> Result<JobResult, ServiceError> {
        let Window {
            offset,
            timeout,
            limit,
            idle_flush,
        } = window;
        // Counted until this returns, or its request is dropped.
        let _waiter = self.metrics.waiter();
        let job_dir = self.job_dir(job_id);
        let log = job_dir.file(OUTPUT);
        let deadline = Instant::now() + timeout;
        let mut changes = JobChanges::new(self.watcher.subscribe(job_dir.path()));
        let mut shutdown = self.shutdown.clone();
        // The first look counts as a status check, taken before the read.
        changes.status_may_have_changed(Instant::now());
        let record = self.settled_record(job_id).await?;
        let path = log.clone();
        // Held open so each look at its size is an `fstat` of an open file:
        // constant time, no path lookup, fine on the async runtime.
        let log_file = run_blocking(move || std::fs::File::open(path))
            .await?
            .map_err(|err| match err.kind() {
                // Deleted since the row was read.
                std::io::ErrorKind::NotFound => ServiceError::JobNotFound(job_id.to_string()),
                _ => ServiceError::Io(err),
            })?;
        let size_now = || log_file.metadata().map_or(0, |m| m.len());
        // Size of the unread output when it last grew, and when.
        let mut growth: Option<(u64, Instant)> = None;
        let mut known = Some(record);
        loop {
            // Output growth alone needs only the size; the record is read
            // again when something else changed (or a tick passed).
            let fresh = changes.status_may_have_changed(Instant::now());
            let record = match known.take() {
                Some(record) if !fresh => record,
                _ => self.settled_record(job_id).await?,
            };
            let size = size_now();
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
                    run_blocking(move || shellctl_term::read_window(&path, offset, limit as usize))
                        .await??;
                self.metrics.output_served(window.output.len());
                return Ok(job_result(&record, &log, window));
            }
            known = Some(record);
            let wake_at = earliest(deadline, [idle_at, Some(now + FALLBACK_TICK)]);
            tokio::select! {
                () = changes.wait(wake_at) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// A waiter's view of its job directory's changes (see
/// [`crate::watcher`]).
pub(super) struct JobChanges {
    /// `None` once the directory is no longer watched.
    receiver: Option<watch::Receiver<Changes>>,
    /// The non-output change count and the time of the last status check.
    checked: Option<(Option<u64>, Instant)>,
}

impl JobChanges {
    pub(super) fn new(receiver: Option<watch::Receiver<Changes>>) -> Self {
        JobChanges {
            receiver,
            checked: None,
        }
    }

    /// Whether the job's status may differ from the last check: never
    /// checked, a non-output change since, the directory unwatched, or a
    /// fallback tick passed. A `true` counts as the next check (the count
    /// is taken before the caller looks, so no change slips between).
    pub(super) fn status_may_have_changed(&mut self, now: Instant) -> bool {
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
    pub(super) async fn wait(&mut self, until: Instant) {
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

/// When a waiter must look again: the deadline, or an earlier moment it
/// expects something at.
pub(super) fn earliest<const N: usize>(deadline: Instant, others: [Option<Instant>; N]) -> Instant {
    others.into_iter().flatten().fold(deadline, Instant::min)
}

/// The wire answer for a window of `record`'s output.
pub(super) fn job_result(record: &JobRecord, log: &Path, window: OutputWindow) -> JobResult {
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

/// `exit_code` is set only for `exited`.
pub(super) fn exit_code_of(record: &JobRecord) -> Option<i32> {
    (record.status == JobStatus::Exited)
        .then_some(record.exit_code)
        .flatten()
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
        assert!(changes.status_may_have_changed(start), "a marker");
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

    #[test]
    fn every_request_maps_its_own_window() {
        let wait: WaitJobRequest = serde_json::from_str(
            r#"{"offset": 5, "timeout": 2.5, "output_limit": 10, "idle_flush_seconds": 0.5}"#,
        )
        .unwrap();
        assert_eq!(
            Window::from(&wait),
            Window {
                offset: 5,
                timeout: Duration::from_millis(2500),
                limit: 10,
                idle_flush: Duration::from_millis(500),
            }
        );
        let run: RunJobRequest = serde_json::from_str(r#"{"script": "true"}"#).unwrap();
        assert_eq!(Window::from(&run).offset, 0);
    }
}
