//! The push routes' streams: one job's output and status
//! ([`JobStream`]), and the lifecycle events of all jobs
//! ([`LifecycleStream`]). The HTTP layer frames their items as
//! Server-Sent Events.
//!
//! Both are pulled: the next item is produced only when the connection
//! has taken the previous one, so a slow reader costs one chunk of memory,
//! never a backlog. A job stream reads `output.log` from its offset in
//! chunks of at most [`MAX_CHUNK_BYTES`], so a reader that falls behind
//! gets the output coalesced. It wakes on the job directory's inotify
//! events, like the waiters; the lifecycle stream wakes when the event
//! feed (below) sees a new event in SQLite.
//!
//! Both end when the server shuts down, without an `end`: a client
//! resumes from the last id it got, which names a durable position (a log
//! offset, an event seq), so nothing is lost or repeated across a
//! restart.

use super::commands::status_view;
use super::waiting::{FALLBACK_TICK, JobChanges};
use super::{Service, ServiceError, run_blocking};
use crate::metrics::{InFlight, StreamKind};
use shellctl_job::JobRecord;
use shellctl_job::files::OUTPUT;
use shellctl_proto::streams::MAX_CHUNK_BYTES;
use shellctl_proto::{JobId, JobStatus, JobStreamEvent, LifecycleEvent, OutputChunk};
use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// Events a lifecycle stream reads from SQLite at a time.
const EVENT_PAGE: u32 = 256;

/// How often the event feed looks at SQLite without an inotify event, while
/// anyone listens: covers a lost event (an overflowed inotify queue).
const FEED_FALLBACK: Duration = Duration::from_secs(5);

/// When a write shows no new event, the feed looks again after these
/// pauses: another process's commit reaches the WAL file (the inotify
/// event) a moment before its readers can see it.
const FEED_RECHECKS: [Duration; 3] = [
    Duration::from_millis(2),
    Duration::from_millis(20),
    Duration::from_millis(200),
];

/// Longest a job stream waits, after the job ended, for the pipe side to
/// drain the pane's last output into the log (a job the server ended by
/// killing its session is settled before that).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// An item of a job stream with its SSE `id`: the offset after everything
/// sent so far.
pub type JobStreamItem = (JobStreamEvent, u64);

/// One job's output and status changes, from an offset on.
pub struct JobStream {
    service: Arc<Service>,
    job_id: JobId,
    /// Held open: each look at the size is an `fstat`, each read a
    /// positional read (no path lookup, and no open that would wake the
    /// job's other watchers).
    log: Arc<File>,
    offset: u64,
    changes: JobChanges,
    /// Lifecycle events: a status change that touched no file in the job's
    /// directory (`starting` to `running`) wakes the stream through them.
    feed: watch::Receiver<u64>,
    /// Set when the feed woke the stream: the next look reads the status.
    status_due: bool,
    shutdown: watch::Receiver<bool>,
    /// The status last sent.
    sent_status: Option<JobStatus>,
    /// The job's terminal record, once seen; the stream drains the log and
    /// ends.
    ended: Option<JobRecord>,
    finished: bool,
    /// The job had ended and its output was all read before the offset the
    /// stream opened at: nothing is left to send.
    complete_at_open: bool,
    /// Counts the stream as open until it is dropped (the client went
    /// away, the stream ended, or the server shut down).
    _open: InFlight,
}

impl Service {
    /// Opens a job's stream at `offset`. The job and the offset are checked
    /// here, so a bad request fails as a request, before any event.
    pub async fn job_stream(
        self: &Arc<Self>,
        job_id: JobId,
        offset: u64,
    ) -> Result<JobStream, ServiceError> {
        let job_dir = self.job_dir(job_id);
        // Subscribed before the first look, so no change slips between.
        let changes = JobChanges::new(self.watcher.subscribe(job_dir.path()));
        let feed = self.event_feed.subscribe();
        let record = self.settled_record(job_id).await?;
        let dir = job_dir.clone();
        let (log, pipe_done) = run_blocking(move || {
            File::open(dir.file(OUTPUT)).map(|log| (log, dir.pipe_side_done()))
        })
        .await?
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => ServiceError::JobNotFound(job_id.to_string()),
            _ => ServiceError::Io(err),
        })?;
        let size = log.metadata()?.len();
        if offset > size {
            return Err(ServiceError::InvalidOffset { offset, size });
        }
        Ok(JobStream {
            service: Arc::clone(self),
            job_id,
            log: Arc::new(log),
            offset,
            changes,
            feed,
            status_due: false,
            shutdown: self.shutdown.clone(),
            sent_status: None,
            ended: None,
            finished: false,
            complete_at_open: record.status.is_terminal() && offset == size && pipe_done,
            _open: self.metrics.stream(StreamKind::Job),
        })
    }

    /// Opens the lifecycle stream after `since` (exclusive; `None` means
    /// from now on), optionally for one label.
    pub async fn lifecycle_stream(
        self: &Arc<Self>,
        since: Option<u64>,
        label: Option<String>,
    ) -> Result<LifecycleStream, ServiceError> {
        let feed = self.event_feed.subscribe();
        let last = self.db(shellctl_job::Store::last_event_seq).await?;
        // A `since` past every seq ever written comes from another
        // database (the state dir was reset): nothing after it exists, so
        // the stream starts from now rather than skip the next events.
        let since = since.map_or(last, |since| since.min(last));
        Ok(LifecycleStream {
            service: Arc::clone(self),
            since,
            label,
            pending: VecDeque::new(),
            feed,
            shutdown: self.shutdown.clone(),
            failed: false,
            _open: self.metrics.stream(StreamKind::Lifecycle),
        })
    }

    /// Keeps the event feed's seq current while the server runs: wakes on
    /// writes to the database (inotify), reads the last event seq, and
    /// wakes the streams when it grew. Idle when no stream listens.
    /// Returns at shutdown.
    pub(super) async fn feed_events(&self) {
        let mut writes = self.database_watcher.subscribe();
        let mut shutdown = self.shutdown.clone();
        let mut watching = true;
        loop {
            let listened = self.event_feed.receiver_count() > 0;
            tokio::select! {
                changed = writes.changed(), if watching => {
                    // The watcher is gone: only the fallback is left.
                    watching = changed.is_ok();
                }
                () = sleep(FEED_FALLBACK), if listened || !watching => {}
                _ = shutdown.changed() => return,
            }
            if self.event_feed.receiver_count() == 0 {
                continue;
            }
            // A commit by another process is in the WAL file a moment
            // before readers see it, so a write with no new event is
            // looked at again a few times.
            for pause in std::iter::once(Duration::ZERO).chain(FEED_RECHECKS) {
                tokio::select! {
                    () = sleep(pause) => {}
                    _ = shutdown.changed() => return,
                }
                match self.db(shellctl_job::Store::last_event_seq).await {
                    Ok(seq) => {
                        let grew = self.event_feed.send_if_modified(|known| {
                            let grew = seq > *known;
                            *known = (*known).max(seq);
                            grew
                        });
                        if grew {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!("reading the event log: {err}");
                        break;
                    }
                }
            }
        }
    }
}

impl JobStream {
    /// The next event, or `None` once the stream is over: after `end`, at
    /// shutdown, or after an error (returned once).
    pub async fn next(&mut self) -> Option<Result<JobStreamItem, ServiceError>> {
        if self.finished {
            return None;
        }
        let item = self.produce().await;
        if !matches!(
            item,
            Ok(Some((
                JobStreamEvent::Output(_) | JobStreamEvent::Status(_),
                _
            )))
        ) {
            self.finished = true;
        }
        item.transpose()
    }

    /// Whether the stream opened on an ended job past all its output (a
    /// client resuming after `end`).
    pub fn complete_at_open(&self) -> bool {
        self.complete_at_open
    }

    async fn produce(&mut self) -> Result<Option<JobStreamItem>, ServiceError> {
        loop {
            if *self.shutdown.borrow() {
                return Ok(None);
            }
            let status_due = std::mem::take(&mut self.status_due);
            if self.ended.is_none()
                && (self.changes.status_may_have_changed(Instant::now()) || status_due)
            {
                let record = self.service.settled_record(self.job_id).await?;
                if record.status.is_terminal() {
                    // The terminal status goes after the last output, once
                    // the pipe side has drained the pane into the log.
                    self.service.wait_for_drain(self.job_id).await;
                    self.ended = Some(record);
                } else if self.sent_status != Some(record.status) {
                    self.sent_status = Some(record.status);
                    let size = self.log.metadata()?.len();
                    return Ok(Some((
                        JobStreamEvent::Status(status_view(record, size)),
                        self.offset,
                    )));
                }
            }
            let size = self.log.metadata()?.len();
            if size > self.offset {
                let (log, offset) = (Arc::clone(&self.log), self.offset);
                let window = run_blocking(move || {
                    shellctl_term::window::read_window_at(&log, offset, MAX_CHUNK_BYTES)
                })
                .await??;
                if window.offset > offset {
                    self.offset = window.offset;
                    self.service.metrics.output_served(window.output.len());
                    let chunk = OutputChunk {
                        offset,
                        text: window.output,
                    };
                    return Ok(Some((JobStreamEvent::Output(chunk), self.offset)));
                }
            }
            if let Some(record) = &self.ended {
                let view = status_view(record.clone(), size);
                if self.sent_status != Some(record.status) {
                    self.sent_status = Some(record.status);
                    return Ok(Some((JobStreamEvent::Status(view), self.offset)));
                }
                return Ok(Some((JobStreamEvent::End(view), self.offset)));
            }
            tokio::select! {
                () = self.changes.wait(Instant::now() + FALLBACK_TICK) => {}
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                    self.status_due = true;
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

impl Service {
    /// Waits, at most [`DRAIN_WAIT`], until the job's pipe side has drained
    /// the pane into the log, failed, or died.
    async fn wait_for_drain(&self, job_id: JobId) {
        let job_dir = self.job_dir(job_id);
        let deadline = Instant::now() + DRAIN_WAIT;
        let drained = self
            .wait_until(&job_dir, deadline, || {
                let dir = job_dir.clone();
                async move { run_blocking(move || dir.pipe_side_done()).await }
            })
            .await;
        if !matches!(drained, Ok(true)) {
            tracing::debug!(%job_id, "the pipe side did not report drained in time");
        }
    }
}

/// The lifecycle events of all jobs (or of one label), after a seq.
pub struct LifecycleStream {
    service: Arc<Service>,
    /// The seq of the last event taken from SQLite.
    since: u64,
    label: Option<String>,
    pending: VecDeque<LifecycleEvent>,
    feed: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    failed: bool,
    /// Counts the stream as open until it is dropped.
    _open: InFlight,
}

impl LifecycleStream {
    /// The seq the stream starts after: the `id` to send before any event,
    /// so a client that reconnects before the first event resumes there.
    pub fn since(&self) -> u64 {
        self.since
    }

    /// The next event; `None` at shutdown. A failed read of the event log
    /// is returned and ends the stream (the client resumes from its last
    /// id).
    pub async fn next(&mut self) -> Option<Result<LifecycleEvent, ServiceError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.failed || *self.shutdown.borrow() {
                return None;
            }
            // Marked seen before the read: a write after it wakes the wait.
            self.feed.borrow_and_update();
            let (since, label) = (self.since, self.label.clone());
            let page = self
                .service
                .db(move |store| store.events_after(since, label.as_deref(), EVENT_PAGE))
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) => {
                    self.failed = true;
                    return Some(Err(err));
                }
            };
            if page.skipped > 0 {
                tracing::warn!(
                    skipped = page.skipped,
                    "unreadable rows in the lifecycle event log"
                );
            }
            self.since = self.since.max(page.read_to);
            self.pending.extend(page.events);
            if page.full || !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}
