//! The job lifecycle in SQLite, the source of truth for job state.
//!
//! Every transition is one conditional `UPDATE`, so concurrent writers (the
//! server, the pipe side of each job) cannot move a job backwards: the first
//! terminal writer wins and a terminal status never changes. The one
//! exception: once a terminate has been requested, an exit committed by the
//! pipe side records `terminated`, because that exit is the terminate's own
//! doing.
//!
//! WAL with `synchronous=NORMAL`: durable across a crash of the process, at
//! most the last transactions lost on power loss. A busy timeout lets the
//! server and the pipe-side processes write without failing on each other.
//! Calls block; async callers run them on a blocking thread.

use rusqlite::{Connection, OptionalExtension, params};
use shellctl_proto::{JobId, JobStatus};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::layout::PRIVATE_FILE_MODE;

/// How long a writer waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
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
";

/// SQL list of the statuses a job can still leave.
const LIVE: &str = "('created','starting','running')";

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be created.
    #[error("creating database file: {0}")]
    Create(#[from] std::io::Error),
    /// A row holds something no version of shellctl writes.
    #[error("corrupt job row {job_id}: {detail}")]
    Corrupt {
        /// The row's job id.
        job_id: String,
        /// What is wrong.
        detail: String,
    },
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
    /// Why a `failed` job failed (for example `pipe_failed`).
    pub failure: Option<String>,
}

/// The job table.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating, mode 0600) the database at `path` with the schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE)
            .open(path)?;
        let conn = Self::connect(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing database with minimal set-up, for the short-lived
    /// pipe-side process that commits one exit.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        let conn = Self::connect(path)?;
        Ok(Store {
            conn: Mutex::new(conn),
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

    /// Inserts a new job in `created`.
    pub fn insert(&self, job_id: &JobId, created_at: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO jobs (job_id, status, created_at) VALUES (?1, 'created', ?2)",
            params![job_id.as_str(), created_at],
        )?;
        Ok(())
    }

    /// `created → starting`. Returns whether the row changed.
    pub fn mark_starting(&self, job_id: &JobId) -> Result<bool, StoreError> {
        self.update(
            "UPDATE jobs SET status = 'starting' WHERE job_id = ?1 AND status = 'created'",
            params![job_id.as_str()],
        )
    }

    /// `starting → running`, stamping `started_at`.
    pub fn mark_running(&self, job_id: &JobId, started_at: &str) -> Result<bool, StoreError> {
        self.update(
            "UPDATE jobs SET status = 'running', started_at = ?2
             WHERE job_id = ?1 AND status = 'starting'",
            params![job_id.as_str(), started_at],
        )
    }

    /// Commits the script's exit: `exited` with its code, or `terminated`
    /// when a terminate was requested. Only a live job changes.
    ///
    /// A job that ends within moments of passing its gate can have its exit
    /// committed before the server's `starting → running`: its start is then
    /// stamped with its end (timestamps have one-second resolution, and
    /// such a job ran for milliseconds).
    pub fn commit_exit(
        &self,
        job_id: &JobId,
        exit_code: i32,
        ended_at: &str,
    ) -> Result<bool, StoreError> {
        self.update(
            &format!(
                "UPDATE jobs SET
                   status = CASE WHEN terminate_requested THEN 'terminated' ELSE 'exited' END,
                   exit_code = CASE WHEN terminate_requested THEN NULL ELSE ?2 END,
                   started_at = COALESCE(started_at, ?3),
                   ended_at = ?3
                 WHERE job_id = ?1 AND status IN {LIVE}"
            ),
            params![job_id.as_str(), exit_code, ended_at],
        )
    }

    /// Records that a terminate is under way (before Ctrl-C is sent), so an
    /// exit it causes is committed as `terminated`. Returns false if the job
    /// had already ended.
    pub fn request_terminate(&self, job_id: &JobId) -> Result<bool, StoreError> {
        self.update(
            &format!(
                "UPDATE jobs SET terminate_requested = 1 WHERE job_id = ?1 AND status IN {LIVE}"
            ),
            params![job_id.as_str()],
        )
    }

    /// Live → `terminated`.
    pub fn mark_terminated(&self, job_id: &JobId, ended_at: &str) -> Result<bool, StoreError> {
        self.end(job_id, "terminated", None, ended_at)
    }

    /// Live → `failed`, with the reason.
    pub fn mark_failed(
        &self,
        job_id: &JobId,
        failure: &str,
        ended_at: &str,
    ) -> Result<bool, StoreError> {
        self.end(job_id, "failed", Some(failure), ended_at)
    }

    /// Live → `lost`.
    pub fn mark_lost(&self, job_id: &JobId, ended_at: &str) -> Result<bool, StoreError> {
        self.end(job_id, "lost", None, ended_at)
    }

    fn end(
        &self,
        job_id: &JobId,
        status: &str,
        failure: Option<&str>,
        ended_at: &str,
    ) -> Result<bool, StoreError> {
        self.update(
            &format!(
                "UPDATE jobs SET status = ?2, failure = ?3, ended_at = ?4
                 WHERE job_id = ?1 AND status IN {LIVE}"
            ),
            params![job_id.as_str(), status, failure, ended_at],
        )
    }

    fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<bool, StoreError> {
        Ok(self.conn().execute(sql, params)? > 0)
    }

    /// One job's row, if it exists.
    pub fn get(&self, job_id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"),
                params![job_id.as_str()],
                RawRecord::from_row,
            )
            .optional()?;
        row.map(RawRecord::into_record).transpose()
    }

    /// Jobs newest first, optionally of one status, at most `limit`.
    pub fn list(
        &self,
        status: Option<JobStatus>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1)
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![status.map(JobStatus::as_str), limit],
            RawRecord::from_row,
        )?;
        rows.map(|row| {
            row.map_err(StoreError::from)
                .and_then(RawRecord::into_record)
        })
        .collect()
    }

    /// Ids of jobs that have not ended, for reconciliation at start-up and
    /// by the monitor.
    pub fn live_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status IN {LIVE}"
        ))?;
        let rows = stmt.query_map([], RawRecord::from_row)?;
        rows.map(|row| {
            row.map_err(StoreError::from)
                .and_then(RawRecord::into_record)
        })
        .collect()
    }

    /// Ids of ended jobs whose `ended_at` is before `cutoff`, for GC.
    pub fn ended_before(&self, cutoff: &str) -> Result<Vec<JobId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT job_id FROM jobs WHERE status NOT IN {LIVE} AND ended_at < ?1"
        ))?;
        let ids = stmt.query_map(params![cutoff], |row| row.get::<_, String>(0))?;
        ids.map(|id| {
            let id = id?;
            JobId::parse(&id).map_err(|e| StoreError::Corrupt {
                job_id: id,
                detail: e.to_string(),
            })
        })
        .collect()
    }

    /// Deletes a job's row. Returns whether it existed.
    pub fn delete(&self, job_id: &JobId) -> Result<bool, StoreError> {
        self.update(
            "DELETE FROM jobs WHERE job_id = ?1",
            params![job_id.as_str()],
        )
    }
}

const COLUMNS: &str = "job_id, status, exit_code, created_at, started_at, ended_at, failure";

/// A row as SQLite gives it, before its strings are checked.
struct RawRecord {
    job_id: String,
    status: String,
    exit_code: Option<i32>,
    created_at: String,
    started_at: Option<String>,
    ended_at: Option<String>,
    failure: Option<String>,
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
        Ok(JobRecord {
            job_id,
            status,
            exit_code: self.exit_code,
            created_at: self.created_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            failure: self.failure,
        })
    }
}
