//! The job lifecycle in SQLite, the source of truth for job state.
//!
//! Every transition is one conditional `UPDATE`, so concurrent writers (the
//! server, the pipe side of each job) cannot move a job backwards: the first
//! terminal writer wins and a terminal status never changes. Every terminal
//! write is [`Store::settle`]; statuses and failure reasons reach SQL only
//! through [`JobStatus::as_str`] and [`FailureReason::as_str`].
//!
//! Every status change also lands in the `job_events` table, the durable
//! lifecycle event log behind `GET /v1/events`: SQLite triggers write it in
//! the transition's own transaction, so it holds the changes made by every
//! process, in commit order, with increasing seqs that are never reused.
//!
//! The schema is versioned with `PRAGMA user_version` and changed only by
//! the ordered migrations in this module, applied at [`Store::open`].
//!
//! WAL with `synchronous=NORMAL`: durable across a crash of the process, at
//! most the last transactions lost on power loss. A busy timeout lets the
//! server and the pipe-side processes write without failing on each other.
//! Calls block; async callers run them on a blocking thread.

use crate::layout::PRIVATE_FILE_MODE;
use crate::lifecycle::{Ending, FailureReason};
use rusqlite::{Connection, OptionalExtension, params};
use shellctl_proto::{EndReason, JobId, JobStatus, LifecycleEvent, LifecycleStatus};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a writer waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema's history, oldest first. Migration `i` brings a database
/// from `user_version` `i` to `i + 1`; a database is never changed any
/// other way. Append only: a released migration is never edited.
///
/// Version 1 is the schema shellctl shipped before the schema had a
/// version. Its statements are idempotent, so an unversioned database of
/// that era (version 0 with the table present) migrates to 1 unchanged.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    failure TEXT,
    terminate_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
",
    "
ALTER TABLE jobs ADD COLUMN label TEXT;
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN end_reason TEXT;
CREATE INDEX jobs_by_label ON jobs(label) WHERE label IS NOT NULL;
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs(idempotency_key)
    WHERE idempotency_key IS NOT NULL;
",
    // The lifecycle event log. Triggers write it in the same transaction
    // as the transition, whichever process makes it (the server, or a
    // job's pipe side committing an exit while the server is down), so no
    // writer can forget an event and the order is the commit order. The
    // status names are spelled here once, frozen with the migration; a
    // test checks them against `LifecycleStatus`.
    "
CREATE TABLE job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    at TEXT NOT NULL,
    label TEXT
);
CREATE INDEX job_events_by_at ON job_events(at);
CREATE TRIGGER job_events_on_insert AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, status, exit_code, at, label)
    VALUES (new.job_id, new.status, NULL, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), new.label);
END;
CREATE TRIGGER job_events_on_status AFTER UPDATE OF status ON jobs
    WHEN new.status IS NOT old.status AND new.status <> 'starting'
BEGIN
    INSERT INTO job_events (job_id, status, exit_code, at, label)
    VALUES (new.job_id, new.status,
            CASE WHEN new.status = 'exited' THEN new.exit_code END,
            strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), new.label);
END;
CREATE TRIGGER job_events_on_delete AFTER DELETE ON jobs
BEGIN
    INSERT INTO job_events (job_id, status, exit_code, at, label)
    VALUES (old.job_id, 'deleted', NULL, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), old.label);
END;
",
    // Indexes for a database of many ended jobs: `list` reads its page in
    // creation order straight from an index (with or without a status or
    // label filter) instead of sorting every row, and GC finds expired
    // jobs a batch at a time. The status and label indexes gain the
    // creation time, so the old ones go.
    "
CREATE INDEX jobs_by_created ON jobs(created_at);
DROP INDEX IF EXISTS jobs_by_status;
CREATE INDEX jobs_by_status_created ON jobs(status, created_at);
DROP INDEX IF EXISTS jobs_by_label;
CREATE INDEX jobs_by_label_created ON jobs(label, created_at) WHERE label IS NOT NULL;
CREATE INDEX jobs_by_ended ON jobs(ended_at) WHERE ended_at IS NOT NULL;
",
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 4;
const _: () = assert!(
    MIGRATIONS.len() == SCHEMA_VERSION as usize,
    "one migration per schema version"
);

/// The SQL list of statuses a job can still leave, from [`JobStatus`] (the
/// one status vocabulary; SQL never spells a status itself).
fn live_statuses_sql() -> String {
    let live: Vec<String> = JobStatus::ALL
        .into_iter()
        .filter(|status| !status.is_terminal())
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    format!("({})", live.join(","))
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be created.
    #[error("creating database file: {0}")]
    Create(#[from] std::io::Error),
    /// The database was written by a newer shellctl.
    #[error(
        "the state database has schema version {found}; this shellctl knows versions up to {supported} (use the newer shellctl, or another --state-dir)"
    )]
    NewerSchema {
        /// The database's `user_version`.
        found: u32,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// A row holds something no version of shellctl writes.
    #[error("corrupt job row {job_id}: {detail}")]
    Corrupt {
        /// The row's job id.
        job_id: String,
        /// What is wrong.
        detail: String,
    },
}

impl StoreError {
    /// Whether the disk holding the database is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(err) => is_disk_full(err),
            StoreError::Create(err) => err.raw_os_error() == Some(nix::libc::ENOSPC),
            StoreError::NewerSchema { .. } | StoreError::Corrupt { .. } => false,
        }
    }
}

fn is_disk_full(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// One job's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job.
    pub job_id: JobId,
    /// Its status.
    pub status: JobStatus,
    /// Exit code, only for `exited`.
    pub exit_code: Option<i32>,
    /// Creation time (wire timestamp).
    pub created_at: String,
    /// When the script was let go, once it was.
    pub started_at: Option<String>,
    /// When the job ended, once it did.
    pub ended_at: Option<String>,
    /// Why a `failed` job failed.
    pub failure: Option<FailureReason>,
    /// Why the job ended, once it did (none for jobs ended before schema
    /// version 2).
    pub end_reason: Option<EndReason>,
    /// The job's label.
    pub label: Option<String>,
    /// The job's idempotency key.
    pub idempotency_key: Option<String>,
}

/// What a new job's row holds besides its id and creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewJob {
    /// The label to find it by.
    pub label: Option<String>,
    /// The idempotency key; unique among existing rows.
    pub idempotency_key: Option<String>,
}

/// A page of the lifecycle event log; see [`Store::events_after`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<LifecycleEvent>,
    /// The seq the next page starts after: the last event read, or, when
    /// the page is not full, the last seq written (past events of other
    /// labels, which need not be read again).
    pub read_to: u64,
    /// Whether the page hit its limit (more may follow at once).
    pub full: bool,
    /// Rows skipped as unreadable.
    pub skipped: usize,
}

/// A row could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// As many jobs as the limit allows are live already.
    #[error("{live} jobs are live, the limit")]
    TooManyJobs {
        /// Jobs created, starting or running.
        live: u64,
    },
    /// Another row holds the idempotency key; this is its job.
    #[error("idempotency key taken by job {0}")]
    KeyTaken(JobId),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Size of the reserve file kept beside the database: room for the
/// writes that must succeed on a full disk (ending a job, deleting one).
pub const RESERVE_BYTES: usize = 512 * 1024;

/// The job table.
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection, for reads, in the server ([`Store::open`]): in
    /// WAL mode a read never waits for the other connection's write (a GC
    /// batch, a checkpoint's sync), so `status` and `list` stay fast while
    /// thousands of jobs are deleted. Short-lived processes read through
    /// `conn`.
    reader: Option<Mutex<Connection>>,
    /// The reserve file: released when an update finds the disk full, so
    /// that jobs can still end and be deleted (which frees their logs).
    reserve: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens (creating, mode 0600) the database at `path` and brings its
    /// schema up to [`SCHEMA_VERSION`]. A database from a newer shellctl is
    /// refused untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE)
            .open(path)?;
        let mut conn = Self::connect(path)?;
        migrate(&mut conn)?;
        let reader = Self::connect(path)?;
        let store = Store {
            conn: Mutex::new(conn),
            reader: Some(Mutex::new(reader)),
            reserve: path
                .parent()
                .map(|dir| dir.join(crate::layout::RESERVE_FILE)),
        };
        store.restore_reserve();
        Ok(store)
    }

    /// Makes the reserve file again if it was released and the disk has
    /// room for it many times over. Returns whether it is in place.
    pub fn restore_reserve(&self) -> bool {
        let Some(path) = &self.reserve else {
            return false;
        };
        if path.exists() {
            return true;
        }
        let room = path
            .parent()
            .and_then(|dir| nix::sys::statvfs::statvfs(dir).ok())
            .map_or(0, |fs| fs.blocks_available() * fs.fragment_size());
        if room < 16 * RESERVE_BYTES as u64 {
            return false;
        }
        // Real bytes, not a hole: a sparse file would reserve nothing.
        // A name of this process's own: two stores on one state dir (a
        // server and a pipe side) must not write into one temp file.
        let temp = path.with_extension(format!("tmp.{}", std::process::id()));
        let made = crate::files::write_private(&temp, &vec![0u8; RESERVE_BYTES])
            .and_then(|()| std::fs::rename(&temp, path));
        if made.is_err() {
            let _cleaned = std::fs::remove_file(&temp);
        }
        made.is_ok()
    }

    /// Frees the reserve file; whether there was one to free.
    fn release_reserve(&self) -> bool {
        self.reserve
            .as_ref()
            .is_some_and(|path| std::fs::remove_file(path).is_ok())
    }

    /// The database's schema version.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema_version(&self.conn())
    }

    /// Opens an existing database with minimal set-up (no migration), for
    /// the short-lived pipe-side process that commits one exit. A database
    /// from a newer shellctl is refused.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        let conn = Self::connect(path)?;
        refuse_newer(schema_version(&conn)?)?;
        Ok(Store {
            conn: Mutex::new(conn),
            reader: None,
            reserve: path
                .parent()
                .map(|dir| dir.join(crate::layout::RESERVE_FILE)),
        })
    }

    /// Opens an existing database read-only (no migration, no pragma
    /// written), for `shellctl doctor`, which looks and changes nothing. A
    /// database from a newer shellctl is refused.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        refuse_newer(schema_version(&conn)?)?;
        Ok(Store {
            conn: Mutex::new(conn),
            reader: None,
            // Nothing is written, so there is no full disk to make room
            // on, and the doctor must not delete the server's reserve.
            reserve: None,
        })
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-call leaves SQLite itself consistent (statements are
        // atomic), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection for reads that need no write in the same
    /// transaction: the reader where there is one. Each read is its own
    /// transaction, so it sees every write committed before it began.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(reader) => reader.lock().unwrap_or_else(PoisonError::into_inner),
            None => self.conn(),
        }
    }

    /// Inserts a new job in `created`. A taken idempotency key inserts
    /// nothing and names the job that holds it (the unique index decides,
    /// so two concurrent inserts with one key cannot both succeed).
    pub fn insert(&self, job_id: JobId, created_at: &str, job: &NewJob) -> Result<(), InsertError> {
        self.insert_within(job_id, created_at, job, None)
    }

    /// [`insert`](Self::insert), unless `live_limit` jobs are live
    /// (created, starting or running) already: the count and the insert
    /// are one statement, so concurrent inserts cannot both pass it.
    pub fn insert_within(
        &self,
        job_id: JobId,
        created_at: &str,
        job: &NewJob,
        live_limit: Option<u32>,
    ) -> Result<(), InsertError> {
        let conn = self.conn();
        let live_count = format!(
            "SELECT COUNT(*) FROM jobs WHERE status IN {}",
            live_statuses_sql()
        );
        // Cached statements: the server runs these on every request, and
        // parsing the SQL anew cost two thirds of running it (a profile of
        // a burst of starts).
        let inserted = conn
            .prepare_cached(&format!(
                "INSERT INTO jobs (job_id, status, created_at, label, idempotency_key)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE ?6 IS NULL OR ({live_count}) < ?6"
            ))
            .and_then(|mut insert| {
                insert.execute(params![
                    job_id.as_str(),
                    JobStatus::Created.as_str(),
                    created_at,
                    job.label,
                    job.idempotency_key,
                    live_limit
                ])
            });
        match inserted {
            Ok(0) => {
                let live: u64 = conn
                    .query_row(&live_count, [], |row| row.get(0))
                    .map_err(StoreError::from)?;
                Err(InsertError::TooManyJobs { live })
            }
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                let holder = job
                    .idempotency_key
                    .as_deref()
                    .map(|key| Self::job_with_key(&conn, key))
                    .transpose()?
                    .flatten();
                match holder {
                    Some(holder) => Err(InsertError::KeyTaken(holder)),
                    None => Err(
                        StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, None)).into(),
                    ),
                }
            }
            Err(err) => Err(StoreError::from(err).into()),
        }
    }

    /// The job holding an idempotency key, if any.
    pub fn find_by_idempotency_key(&self, key: &str) -> Result<Option<JobId>, StoreError> {
        Self::job_with_key(&self.conn(), key)
    }

    fn job_with_key(conn: &Connection, key: &str) -> Result<Option<JobId>, StoreError> {
        let id: Option<String> = conn
            .prepare_cached("SELECT job_id FROM jobs WHERE idempotency_key = ?1")?
            .query_row(params![key], |row| row.get(0))
            .optional()?;
        id.map(|id| {
            JobId::parse(&id).map_err(|e| StoreError::Corrupt {
                job_id: id.clone(),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// `created → starting`. Returns whether the row changed.
    pub fn mark_starting(&self, job_id: JobId) -> Result<bool, StoreError> {
        self.update(
            "UPDATE jobs SET status = ?2 WHERE job_id = ?1 AND status = ?3",
            params![
                job_id.as_str(),
                JobStatus::Starting.as_str(),
                JobStatus::Created.as_str()
            ],
        )
    }

    /// `starting → running`, stamping `started_at`.
    pub fn mark_running(&self, job_id: JobId, started_at: &str) -> Result<bool, StoreError> {
        self.update(
            "UPDATE jobs SET status = ?2, started_at = ?4 WHERE job_id = ?1 AND status = ?3",
            params![
                job_id.as_str(),
                JobStatus::Running.as_str(),
                JobStatus::Starting.as_str(),
                started_at
            ],
        )
    }

    /// Records that a terminate is under way (before Ctrl-C is sent), so an
    /// exit it causes settles as `terminated`. Returns false if the job had
    /// already ended.
    pub fn request_terminate(&self, job_id: JobId) -> Result<bool, StoreError> {
        self.update(
            &format!(
                "UPDATE jobs SET terminate_requested = 1 WHERE job_id = ?1 AND status IN {}",
                live_statuses_sql()
            ),
            params![job_id.as_str()],
        )
    }

    /// Ends a live job: the one function that writes a terminal status,
    /// whichever process gets there. Returns whether this call ended it
    /// (false if another writer did first; a terminal status never
    /// changes).
    ///
    /// After a terminate request, an ending that is the terminate's doing
    /// ([`Ending::is_terminate_doing`]: an exit, a vanished session)
    /// records `terminated`. An [`Ending::Exited`] stamps `started_at` with
    /// the end if the job ended within moments of passing its gate, before
    /// the server recorded `running` (timestamps have one-second
    /// resolution, and such a job ran for milliseconds).
    pub fn settle(
        &self,
        job_id: JobId,
        ending: Ending,
        ended_at: &str,
    ) -> Result<bool, StoreError> {
        let (exit_code, failure) = match ending {
            Ending::Exited { exit_code } => (Some(exit_code), None),
            Ending::Failed(reason) => (None, Some(reason.as_str())),
            Ending::Terminated(_) | Ending::Lost => (None, None),
        };
        let is_exit = matches!(ending, Ending::Exited { .. });
        self.update(
            &format!(
                "UPDATE jobs SET
                   status = CASE WHEN ?3 AND terminate_requested THEN ?4 ELSE ?2 END,
                   exit_code = CASE WHEN ?3 AND terminate_requested THEN NULL ELSE ?5 END,
                   failure = ?6,
                   started_at = CASE WHEN ?8 THEN COALESCE(started_at, ?7) ELSE started_at END,
                   ended_at = ?7,
                   end_reason = CASE WHEN ?3 AND terminate_requested THEN ?10 ELSE ?9 END
                 WHERE job_id = ?1 AND status IN {}",
                live_statuses_sql()
            ),
            params![
                job_id.as_str(),
                ending.status().as_str(),
                ending.is_terminate_doing(),
                JobStatus::Terminated.as_str(),
                exit_code,
                failure,
                ended_at,
                is_exit,
                ending.end_reason().as_str(),
                EndReason::Terminate.as_str()
            ],
        )
    }

    /// Runs one change. On a full disk, it releases the reserve file and
    /// tries once more: the changes made here (ending a job, deleting one)
    /// must work then, unlike inserts, which are refused.
    fn update(&self, sql: &str, params: impl rusqlite::Params + Copy) -> Result<bool, StoreError> {
        // One guard for both tries: a second `self.conn()` while the
        // scrutinee's guard is alive would deadlock on the mutex.
        let conn = self.conn();
        let execute = || conn.prepare_cached(sql)?.execute(params);
        match execute() {
            Err(err) if is_disk_full(&err) && self.release_reserve() => Ok(execute()? > 0),
            outcome => Ok(outcome? > 0),
        }
    }

    /// One job's row, if it exists.
    pub fn get(&self, job_id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.reader();
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"))?
            .query_row(params![job_id.as_str()], RawRecord::from_row)
            .optional()?;
        row.map(RawRecord::into_record).transpose()
    }

    /// Jobs newest first, optionally of one status and one label, at most
    /// `limit`. Each combination of filters is its own statement, so that
    /// SQLite reads the page in order from the matching index (creation
    /// time, status and creation time, label and creation time) and stops
    /// at `limit`, however many rows the table holds.
    pub fn list(
        &self,
        status: Option<JobStatus>,
        label: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.reader();
        let status = status.map(JobStatus::as_str);
        let filter = match (status, label) {
            (None, None) => "",
            (Some(_), None) => "WHERE status = ?2",
            (None, Some(_)) => "WHERE label = ?2",
            (Some(_), Some(_)) => "WHERE label = ?2 AND status = ?3",
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs {filter} ORDER BY created_at DESC, rowid DESC LIMIT ?1"
        ))?;
        let limit: &dyn rusqlite::ToSql = &limit;
        let bound: Vec<&dyn rusqlite::ToSql> = match (&status, &label) {
            (None, None) => vec![limit],
            (Some(status), None) => vec![limit, status],
            (None, Some(label)) => vec![limit, label],
            (Some(status), Some(label)) => vec![limit, label, status],
        };
        let rows = stmt.query_map(bound.as_slice(), RawRecord::from_row)?;
        rows.map(|row| {
            row.map_err(StoreError::from)
                .and_then(RawRecord::into_record)
        })
        .collect()
    }

    /// Every job id, for start-up's look for directories no row owns (one
    /// read of the primary key's index).
    pub fn job_ids(&self) -> Result<std::collections::HashSet<JobId>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT job_id FROM jobs")?;
        let ids = stmt.query_map([], |row| row.get::<_, String>(0))?;
        ids.map(|id| parse_id(id?)).collect()
    }

    /// Ids of jobs that have not ended, for reconciliation at start-up and
    /// by the monitor.
    pub fn live_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status IN {}",
            live_statuses_sql()
        ))?;
        let rows = stmt.query_map([], RawRecord::from_row)?;
        rows.map(|row| {
            row.map_err(StoreError::from)
                .and_then(RawRecord::into_record)
        })
        .collect()
    }

    /// How many jobs have each status, in one `GROUP BY` query over the
    /// status index (for metrics). Statuses without jobs are absent; a
    /// status this version does not know (a newer one wrote it) is
    /// skipped, so one odd row cannot fail a scrape.
    pub fn count_by_status(&self) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts = Vec::new();
        for row in rows {
            let (status, count) = row?;
            if let Ok(status) = status.parse::<JobStatus>() {
                counts.push((status, u64::try_from(count).unwrap_or(0)));
            }
        }
        Ok(counts)
    }

    /// Ids of at most `limit` ended jobs whose `ended_at` is before
    /// `cutoff`, the longest ended first, for GC (which deletes them a
    /// batch at a time; the `ended_at` index finds each batch without
    /// reading the rest).
    pub fn ended_before(&self, cutoff: &str, limit: u32) -> Result<Vec<JobId>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT job_id FROM jobs WHERE ended_at < ?1 AND status NOT IN {}
             ORDER BY ended_at LIMIT ?2",
            live_statuses_sql()
        ))?;
        let ids = stmt.query_map(params![cutoff, limit], |row| row.get::<_, String>(0))?;
        ids.map(|id| parse_id(id?)).collect()
    }

    /// Lifecycle events after `since` (exclusive), oldest first, at most
    /// `limit`, optionally only those of jobs labelled `label`. Rows no
    /// version of shellctl writes are skipped (and counted), so one bad row
    /// cannot stop every reader.
    pub fn events_after(
        &self,
        since: u64,
        label: Option<&str>,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        // Read first: every event up to it is committed, so the query
        // below sees it.
        let last = self.last_event_seq()?;
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, job_id, status, exit_code, at, label FROM job_events
             WHERE seq > ?1 AND (?2 IS NULL OR label = ?2) ORDER BY seq LIMIT ?3",
        )?;
        // Seqs are positive i64s, so a `since` past i64 means none.
        let since_sql = i64::try_from(since).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![since_sql, label, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<i32>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut page = EventPage {
            events: Vec::new(),
            read_to: since,
            full: false,
            skipped: 0,
        };
        let mut count = 0u32;
        for row in rows {
            let (seq, job_id, status, exit_code, at, label) = row?;
            count += 1;
            let Ok(seq) = u64::try_from(seq) else {
                page.skipped += 1;
                continue;
            };
            page.read_to = page.read_to.max(seq);
            match (JobId::parse(&job_id), LifecycleStatus::parse(&status)) {
                (Ok(job_id), Some(status)) => page.events.push(LifecycleEvent {
                    seq,
                    job_id,
                    status,
                    exit_code,
                    at,
                    label,
                }),
                _ => page.skipped += 1,
            }
        }
        page.full = count == limit;
        if !page.full {
            // Every matching event up to `last` was in this page.
            page.read_to = page.read_to.max(last);
        }
        Ok(page)
    }

    /// The highest event seq ever written (0 before the first event); kept
    /// by SQLite's `AUTOINCREMENT` bookkeeping, so trimming the log does
    /// not lower it and seqs are never reused.
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> = self
            .reader()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'job_events'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        Ok(seq.and_then(|seq| u64::try_from(seq).ok()).unwrap_or(0))
    }

    /// Drops at most `limit` lifecycle events recorded before `cutoff` (a
    /// wire timestamp), for GC, which calls it until fewer come back, so no
    /// single statement holds the database for long. Returns how many.
    pub fn trim_events(&self, cutoff: &str, limit: u32) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM job_events WHERE seq IN
               (SELECT seq FROM job_events WHERE at < ?1 ORDER BY at LIMIT ?2)",
            params![cutoff, limit],
        )?)
    }

    /// Deletes a job's row. Returns whether it existed.
    pub fn delete(&self, job_id: JobId) -> Result<bool, StoreError> {
        self.update(
            "DELETE FROM jobs WHERE job_id = ?1",
            params![job_id.as_str()],
        )
    }

    /// Deletes the rows of `jobs` in one transaction (GC's batches).
    /// Returns how many existed. Like every deletion, it works on a full
    /// disk by releasing the reserve.
    pub fn delete_many(&self, jobs: &[JobId]) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let delete = |conn: &mut Connection| -> rusqlite::Result<usize> {
            let tx = conn.transaction()?;
            let mut deleted = 0;
            {
                let mut stmt = tx.prepare_cached("DELETE FROM jobs WHERE job_id = ?1")?;
                for job_id in jobs {
                    deleted += stmt.execute(params![job_id.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(deleted)
        };
        match delete(&mut conn) {
            Err(err) if is_disk_full(&err) && self.release_reserve() => Ok(delete(&mut conn)?),
            outcome => Ok(outcome?),
        }
    }
}

/// A stored job id, checked.
fn parse_id(id: String) -> Result<JobId, StoreError> {
    match JobId::parse(&id) {
        Ok(job_id) => Ok(job_id),
        Err(err) => Err(StoreError::Corrupt {
            job_id: id,
            detail: err.to_string(),
        }),
    }
}

const COLUMNS: &str = "job_id, status, exit_code, created_at, started_at, ended_at, failure, \
                       end_reason, label, idempotency_key";

/// A row as SQLite gives it, before its strings are checked.
struct RawRecord {
    job_id: String,
    status: String,
    exit_code: Option<i32>,
    created_at: String,
    started_at: Option<String>,
    ended_at: Option<String>,
    failure: Option<String>,
    end_reason: Option<String>,
    label: Option<String>,
    idempotency_key: Option<String>,
}

impl RawRecord {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
        Ok(RawRecord {
            job_id: row.get(0)?,
            status: row.get(1)?,
            exit_code: row.get(2)?,
            created_at: row.get(3)?,
            started_at: row.get(4)?,
            ended_at: row.get(5)?,
            failure: row.get(6)?,
            end_reason: row.get(7)?,
            label: row.get(8)?,
            idempotency_key: row.get(9)?,
        })
    }

    fn into_record(self) -> Result<JobRecord, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            job_id: self.job_id.clone(),
            detail,
        };
        let job_id = JobId::parse(&self.job_id).map_err(|e| corrupt(e.to_string()))?;
        let status = self
            .status
            .parse::<JobStatus>()
            .map_err(|e| corrupt(e.to_string()))?;
        // Never on the wire, so a reason this version does not know (a
        // newer one wrote it) reads as none rather than breaking `list`.
        let failure = self
            .failure
            .as_deref()
            .and_then(|reason| reason.parse::<FailureReason>().ok());
        Ok(JobRecord {
            job_id,
            status,
            exit_code: self.exit_code,
            created_at: self.created_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            failure,
            // Like `failure`: a reason a newer version wrote reads as none.
            end_reason: self.end_reason.as_deref().and_then(|r| r.parse().ok()),
            label: self.label,
            idempotency_key: self.idempotency_key,
        })
    }
}

fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies the migrations the database lacks, each in its own transaction
/// together with its new `user_version`, so a crash leaves a database at
/// one version or the next, never between.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = schema_version(conn)?;
    refuse_newer(found)?;
    for (version, migration) in (found..).zip(&MIGRATIONS[found as usize..]) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited.
        if schema_version(&tx)? != version {
            continue;
        }
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    // A newer shellctl may have migrated past us meanwhile.
    refuse_newer(schema_version(conn)?)
}

fn refuse_newer(found: u32) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// SQLite's plan for `sql` with `params`, one step per line.
    fn plan(store: &Store, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        let conn = store.conn();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps = stmt
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        steps.join("\n")
    }

    /// The reads that must stay fast with a hundred thousand ended jobs
    /// (`list` in each of its forms, GC's batch, the live jobs) read an
    /// index in order: no scan of the table, no sort of its rows.
    #[test]
    fn list_gc_and_live_reads_use_indexes_not_scans_or_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("shellctl.db")).unwrap();
        let order = "ORDER BY created_at DESC, rowid DESC LIMIT 10";
        for (sql, params) in [
            (format!("SELECT job_id FROM jobs {order}"), vec![]),
            (
                format!("SELECT job_id FROM jobs WHERE status = ?1 {order}"),
                vec!["exited"],
            ),
            (
                format!("SELECT job_id FROM jobs WHERE label = ?1 {order}"),
                vec!["l"],
            ),
            (
                format!("SELECT job_id FROM jobs WHERE label = ?1 AND status = ?2 {order}"),
                vec!["l", "exited"],
            ),
            (
                format!(
                    "SELECT job_id FROM jobs WHERE ended_at < ?1 AND status NOT IN {}
                     ORDER BY ended_at LIMIT 10",
                    live_statuses_sql()
                ),
                vec!["2026-01-01T00:00:00Z"],
            ),
            (
                format!(
                    "SELECT job_id FROM jobs WHERE status IN {}",
                    live_statuses_sql()
                ),
                vec![],
            ),
        ] {
            let params: Vec<&dyn rusqlite::ToSql> =
                params.iter().map(|p| p as &dyn rusqlite::ToSql).collect();
            let plan = plan(&store, &sql, &params);
            assert!(
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            assert!(
                !plan.starts_with("SCAN jobs\n") && plan != "SCAN jobs",
                "{sql}: {plan}"
            );
        }
    }

    /// A change that meets a full disk frees the reserve and retries on the
    /// connection it already holds. The retry used to take the mutex a
    /// second time and hang for good; a thread turns a hang into a failure.
    #[test]
    fn a_change_on_a_full_database_frees_the_reserve_and_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("shellctl.db")).unwrap());
        let reserve = dir.path().join(crate::layout::RESERVE_FILE);
        assert!(reserve.exists(), "a fresh store keeps its reserve");
        // SQLite answers SQLITE_FULL, as on a full disk, once the file
        // would outgrow this many pages.
        let pages: i64 = store
            .conn()
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        store
            .conn()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let (done, outcome) = std::sync::mpsc::channel();
        let writer = Arc::clone(&store);
        std::thread::spawn(move || {
            let grown = writer.update("CREATE TABLE filler AS SELECT zeroblob(1000000) AS b", []);
            let _sent = done.send(grown.map_err(|err| err.is_disk_full()));
        });
        let grown = outcome
            .recv_timeout(Duration::from_secs(120))
            .expect("the change returned instead of hanging on its own lock");
        assert_eq!(grown, Err(true), "still full after the retry");
        assert!(!reserve.exists(), "the reserve was freed to make room");
    }
}
