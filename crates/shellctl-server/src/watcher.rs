//! Wakes waiters when a job's directory changes, and lifecycle-stream
//! readers when the state database is written ([`DatabaseWatcher`]).
//!
//! One inotify watch (through the `notify` crate) per live job directory,
//! added before the job starts, so no change is missed: output appended to
//! `output.log`, markers created. Each change bumps one of the job's two
//! counters ([`Changes`]) in a `tokio::sync::watch` channel that its
//! waiters hold: output growth, which comes in thousands of events when a
//! job prints fast and only needs a `stat`, apart from everything else,
//! which may mean a new status.
//!
//! Watches are released as jobs end (closing the channel, which wakes the
//! waiters), so the count stays at one per live job. Waiters also keep a
//! slow fallback tick, so a lost event delays them, never strands them.
//!
//! Events that may end a job are also reported to supervision, by job id
//! ([`JobChecks`]): the pipe side's `pipe-drained` and `pipe-failed`
//! markers, and the pipe side closing `output.log` for writing, which it
//! does only as it exits (the kernel closes the file of a killed pipe side
//! too). Supervision then looks at that job alone, at once; no timer looks
//! at every job. An overflowed inotify queue (events lost) asks for a look
//! at every job and wakes every waiter.
//!
//! Opens are ignored: reading a job's files (the server's own look at a
//! marker, a waiter opening the log) changes nothing, and must not wake
//! the job's waiters.

use crate::checks::JobChecks;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use shellctl_job::files::{OUTPUT, PIPE_DRAINED, PIPE_FAILED};
use shellctl_proto::JobId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// How often a job directory changed since it was first watched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Writes to `output.log`.
    pub output: u64,
    /// Everything else: markers, the exit record.
    pub other: u64,
}

/// inotify watches the server holds per live job: [`JobWatcher::watch`]
/// adds one, on the job's directory (non-recursive), until the job ends.
pub const WATCHES_PER_LIVE_JOB: u64 = 1;
/// inotify watches the server holds whatever runs: [`DatabaseWatcher`]'s
/// one, on the state dir (the database's directory).
pub const FIXED_WATCHES: u64 = 1;
/// inotify instances the server holds: one each for [`JobWatcher`] and
/// [`DatabaseWatcher`] (each `notify` watcher opens its own).
pub const INOTIFY_INSTANCES: u64 = 2;

type Channels = Arc<Mutex<HashMap<PathBuf, watch::Sender<Changes>>>>;

/// Watches job directories and hands out change subscriptions.
pub struct JobWatcher {
    watcher: Mutex<RecommendedWatcher>,
    channels: Channels,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both maps stay consistent across a panic (single inserts and removes).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JobWatcher {
    /// Starts the inotify thread; jobs whose pipe side may have ended
    /// are reported to `checks`.
    pub fn new(checks: Arc<JobChecks>) -> notify::Result<JobWatcher> {
        let channels: Channels = Arc::default();
        let for_events = Arc::clone(&channels);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    tracing::warn!("inotify: {err}; waiters fall back to their tick");
                    return;
                }
            };
            if event.need_rescan() {
                // The kernel's queue overflowed: events of any job may be
                // lost. Every waiter looks again, supervision at every job.
                tracing::warn!("inotify: events were lost; looking at every job");
                for sender in lock(&for_events).values() {
                    sender.send_modify(|changes| changes.other = changes.other.wrapping_add(1));
                }
                checks.everything();
                return;
            }
            if matches!(event.kind, EventKind::Access(AccessKind::Open(_))) {
                return;
            }
            let closed_for_writing = matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
            );
            let channels = lock(&for_events);
            for path in &event.paths {
                let Some(dir) = path.parent() else { continue };
                if let Some(sender) = channels.get(dir) {
                    let name = path.file_name();
                    let is_output = name.is_some_and(|name| name == OUTPUT);
                    let is_pipe_marker =
                        name.is_some_and(|name| name == PIPE_DRAINED || name == PIPE_FAILED);
                    if is_pipe_marker || (is_output && closed_for_writing) {
                        let job_id = dir.file_name().and_then(|n| n.to_str()).map(JobId::parse);
                        if let Some(Ok(job_id)) = job_id {
                            checks.job(job_id);
                        }
                    }
                    sender.send_modify(|changes| {
                        if is_output {
                            changes.output = changes.output.wrapping_add(1);
                        } else {
                            changes.other = changes.other.wrapping_add(1);
                        }
                    });
                }
            }
        })?;
        Ok(JobWatcher {
            watcher: Mutex::new(watcher),
            channels,
        })
    }

    /// Starts watching a job directory (idempotent).
    ///
    /// Lock order matters: notify's `watch` waits for its event thread, and
    /// that thread takes the channels lock in the callback, so the channels
    /// lock is never held while calling into notify.
    pub fn watch(&self, job_dir: &Path) -> notify::Result<()> {
        if lock(&self.channels).contains_key(job_dir) {
            return Ok(());
        }
        lock(&self.watcher).watch(job_dir, RecursiveMode::NonRecursive)?;
        lock(&self.channels)
            .entry(job_dir.to_owned())
            .or_insert_with(|| watch::channel(Changes::default()).0);
        Ok(())
    }

    /// Stops watching a job directory (when it ended or was deleted).
    /// Dropping its channel wakes its waiters. Returns whether it was
    /// watched: of concurrent calls, exactly one gets `true`, so the
    /// first sighting of a job's end is known (its duration is observed
    /// then, once).
    pub fn unwatch(&self, job_dir: &Path) -> bool {
        let removed = lock(&self.channels).remove(job_dir).is_some();
        if removed {
            // Fails when the directory is already gone, which removed the
            // kernel's watch with it.
            if let Err(err) = lock(&self.watcher).unwatch(job_dir) {
                tracing::debug!(dir = %job_dir.display(), "unwatch: {err}");
            }
        }
        removed
    }

    /// A receiver that changes whenever something in `job_dir` does; `None`
    /// if the directory is not watched (the job has ended).
    pub fn subscribe(&self, job_dir: &Path) -> Option<watch::Receiver<Changes>> {
        lock(&self.channels)
            .get(job_dir)
            .map(watch::Sender::subscribe)
    }

    /// How often `job_dir` changed so far; `None` if it is not watched.
    pub fn changes(&self, job_dir: &Path) -> Option<Changes> {
        lock(&self.channels)
            .get(job_dir)
            .map(|sender| *sender.borrow())
    }

    /// Directories watched now.
    pub fn watched(&self) -> Vec<PathBuf> {
        lock(&self.channels).keys().cloned().collect()
    }
}

/// Counts writes to the state database, whichever process makes them (the
/// server, or a job's pipe side committing an exit), so the lifecycle
/// stream learns of new events from inotify instead of asking SQLite on a
/// timer.
///
/// SQLite in WAL mode appends every commit to `<db>-wal`; the watch is on
/// the database's directory (non-recursive), keeping the events of files
/// whose name starts with the database's.
pub struct DatabaseWatcher {
    /// Kept alive for its inotify thread.
    _watcher: RecommendedWatcher,
    writes: watch::Receiver<u64>,
}

impl DatabaseWatcher {
    /// Starts watching the directory of `database`.
    pub fn new(database: &Path) -> notify::Result<DatabaseWatcher> {
        let dir = database.parent().unwrap_or(Path::new("."));
        let name = database
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        let (sender, writes) = watch::channel(0u64);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else {
                    // A lost event delays readers until their fallback tick.
                    return;
                };
                // A process that closes its connection (a job's pipe side
                // after committing an exit) also counts: its last commit
                // is visible to readers by then.
                let written = matches!(
                    event.kind,
                    notify::EventKind::Modify(_)
                        | notify::EventKind::Create(_)
                        | notify::EventKind::Access(notify::event::AccessKind::Close(
                            notify::event::AccessMode::Write
                        ))
                ) && event.paths.iter().any(|path| {
                    path.file_name().is_some_and(|file| {
                        file.as_encoded_bytes().starts_with(name.as_encoded_bytes())
                    })
                });
                if written {
                    sender.send_modify(|count| *count = count.wrapping_add(1));
                }
            })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(DatabaseWatcher {
            _watcher: watcher,
            writes,
        })
    }

    /// A receiver that changes whenever the database is written.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.writes.clone()
    }
}
