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
use shellctl_job::JobRecord;
use shellctl_job::files::OUTPUT;
use shellctl_proto::streams::MAX_CHUNK_BYTES;
use shellctl_proto::{JobId, JobStatus, JobStreamEvent, LifecycleEvent, OutputChunk};
use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// Events a lifecycle stream reads from SQLite at a time.
const EVENT_PAGE: u32 = 256;

/// How often the event feed looks at SQLite without an inotify event, while
/// anyone listens: covers a lost event (an overflowed inotify queue).
const FEED_FALLBACK: Duration = Duration::from_secs(5);

/// An item of a job stream with its SSE `id`: the offset after everything
/// sent so far.
pub type JobStreamItem = (JobStreamEvent, u64);

/// One job's output and status changes, from an offset on.
pub struct JobStream {
    service: Arc<Service>,
    job_id: JobId,
    log_path: PathBuf,
    /// Held open: each look at the size is an `fstat`.
    log: File,
    offset: u64,
    changes: JobChanges,
    shutdown: watch::Receiver<bool>,
    /// The status last sent.
    sent_status: Option<JobStatus>,
    /// The job's terminal record, once seen; the stream drains the log and
    /// ends.
    ended: Option<JobRecord>,
    finished: bool,
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
        self.settled_record(job_id).await?;
        let log_path = job_dir.file(OUTPUT);
        let path = log_path.clone();
        let log = run_blocking(move || File::open(path))
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
            log_path,
            log,
            offset,
            changes,
            shutdown: self.shutdown.clone(),
            sent_status: None,
            ended: None,
            finished: false,
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
        })
    }

    /// Keeps the event feed's seq current while the server runs: wakes on
    /// writes to the database (inotify), reads the last event seq, and
    /// wakes the lifecycle streams when it grew. Idle when no stream
    /// listens. Returns at shutdown.
    pub(super) async fn feed_events(&self) {
        let mut writes = self.database_watcher.subscribe();
        let mut shutdown = self.shutdown.clone();
        loop {
            let listened = self.event_feed.receiver_count() > 0;
            tokio::select! {
                changed = writes.changed() => {
                    if changed.is_err() {
                        // The watcher is gone; only the fallback is left.
                        sleep(FEED_FALLBACK).await;
                    }
                }
                () = sleep(FEED_FALLBACK), if listened => {}
                _ = shutdown.changed() => return,
            }
            if self.event_feed.receiver_count() == 0 {
                continue;
            }
            match self.db(shellctl_job::Store::last_event_seq).await {
                Ok(seq) => {
                    self.event_feed.send_if_modified(|known| {
                        let grew = seq > *known;
                        *known = (*known).max(seq);
                        grew
                    });
                }
                Err(err) => tracing::warn!("reading the event log: {err}"),
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

    async fn produce(&mut self) -> Result<Option<JobStreamItem>, ServiceError> {
        loop {
            if *self.shutdown.borrow() {
                return Ok(None);
            }
            if self.ended.is_none() && self.changes.status_may_have_changed(Instant::now()) {
                let record = self.service.settled_record(self.job_id).await?;
                if record.status.is_terminal() {
                    // Sent after the last output: a terminal status means
                    // the log is complete.
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
                let (path, offset) = (self.log_path.clone(), self.offset);
                let window = run_blocking(move || {
                    shellctl_term::read_window(&path, offset, MAX_CHUNK_BYTES)
                })
                .await??;
                if window.offset > offset {
                    self.offset = window.offset;
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
                _ = self.shutdown.changed() => {}
            }
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
}

impl LifecycleStream {
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
            match page {
                Ok(events) if !events.is_empty() => {
                    self.since = events.last().map_or(since, |event| event.seq);
                    self.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    self.failed = true;
                    return Some(Err(err));
                }
            }
            tokio::select! {
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.shutdown.changed() => {}
            }
        }
    }
}
