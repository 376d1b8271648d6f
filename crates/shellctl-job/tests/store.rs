//! The SQLite job store on real database files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shellctl_job::lifecycle::{Ending, FailureReason, TerminateCause};
use shellctl_job::store::SCHEMA_VERSION;
use shellctl_job::{InsertError, JobRecord, NewJob, Store, StoreError};
use shellctl_proto::{EndReason, JobId, JobStatus, LifecycleStatus};
use std::os::unix::fs::PermissionsExt;

fn id(s: &str) -> JobId {
    JobId::parse(s).unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("shellctl.db")).unwrap();
    (dir, store)
}

const T0: &str = "2026-05-21T15:30:20Z";
const T1: &str = "2026-05-21T15:30:21Z";
const T2: &str = "2026-05-21T15:30:22Z";

#[test]
fn a_job_walks_the_happy_path() {
    let (_dir, store) = open();
    let job = id("05211530-abc");
    store.insert(job, T0, &NewJob::default()).unwrap();
    assert_eq!(store.get(job).unwrap().unwrap().status, JobStatus::Created);
    assert!(
        !store.mark_running(job, T1).unwrap(),
        "running needs starting first"
    );
    assert!(store.mark_starting(job).unwrap());
    assert!(store.mark_running(job, T1).unwrap());
    assert!(
        store
            .settle(job, Ending::Exited { exit_code: 3 }, T2)
            .unwrap()
    );
    let row = store.get(job).unwrap().unwrap();
    assert_eq!(
        (
            row.status,
            row.exit_code,
            row.started_at.as_deref(),
            row.ended_at.as_deref()
        ),
        (JobStatus::Exited, Some(3), Some(T1), Some(T2))
    );
}

#[test]
fn an_exit_committed_before_running_still_has_a_start() {
    // The pipe side can commit a millisecond job's exit before the server
    // marks it running.
    let (_dir, store) = open();
    let job = id("05211530-fst");
    store.insert(job, T0, &NewJob::default()).unwrap();
    assert!(store.mark_starting(job).unwrap());
    assert!(
        store
            .settle(job, Ending::Exited { exit_code: 0 }, T2)
            .unwrap()
    );
    assert!(!store.mark_running(job, T1).unwrap(), "already ended");
    let row = store.get(job).unwrap().unwrap();
    assert_eq!(
        (
            row.status,
            row.started_at.as_deref(),
            row.ended_at.as_deref()
        ),
        (JobStatus::Exited, Some(T2), Some(T2))
    );
}

#[test]
fn the_first_terminal_writer_wins() {
    let (_dir, store) = open();
    let job = id("05211530-abd");
    store.insert(job, T0, &NewJob::default()).unwrap();
    store.mark_starting(job).unwrap();
    store.mark_running(job, T1).unwrap();
    assert!(store.settle(job, Ending::Lost, T1).unwrap());
    assert!(
        !store
            .settle(job, Ending::Exited { exit_code: 0 }, T2)
            .unwrap()
    );
    assert!(
        !store
            .settle(job, Ending::Failed(FailureReason::PipeFailed), T2)
            .unwrap()
    );
    assert!(
        !store
            .settle(job, Ending::Terminated(TerminateCause::Request), T2)
            .unwrap()
    );
    assert!(!store.request_terminate(job).unwrap());
    let row = store.get(job).unwrap().unwrap();
    assert_eq!(
        (row.status, row.exit_code, row.ended_at.as_deref()),
        (JobStatus::Lost, None, Some(T1))
    );
}

#[test]
fn an_exit_caused_by_a_terminate_stays_terminated() {
    let (_dir, store) = open();
    let job = id("05211530-abe");
    store.insert(job, T0, &NewJob::default()).unwrap();
    store.mark_starting(job).unwrap();
    store.mark_running(job, T1).unwrap();
    assert!(store.request_terminate(job).unwrap());
    // The pipe side commits the exit that Ctrl-C caused (130)...
    assert!(
        store
            .settle(job, Ending::Exited { exit_code: 130 }, T2)
            .unwrap()
    );
    let row = store.get(job).unwrap().unwrap();
    // ...and it reads as terminated, without an exit code.
    assert_eq!((row.status, row.exit_code), (JobStatus::Terminated, None));
    assert!(
        !store
            .settle(job, Ending::Terminated(TerminateCause::Request), T2)
            .unwrap()
    );
}

#[test]
fn a_session_that_vanishes_during_a_terminate_reads_as_terminated() {
    let (_dir, store) = open();
    let job = id("05211530-abg");
    store.insert(job, T0, &NewJob::default()).unwrap();
    store.mark_starting(job).unwrap();
    store.mark_running(job, T1).unwrap();
    assert!(store.request_terminate(job).unwrap());
    // The kill after the grace removed the session; a monitor pass that
    // saw it gone first must not call the job lost.
    assert!(store.settle(job, Ending::Lost, T2).unwrap());
    let row = store.get(job).unwrap().unwrap();
    assert_eq!(
        (row.status, row.started_at.as_deref()),
        (JobStatus::Terminated, Some(T1))
    );
    // Without a terminate request, a vanished session is lost.
    let other = id("05211530-abh");
    store.insert(other, T0, &NewJob::default()).unwrap();
    assert!(store.settle(other, Ending::Lost, T2).unwrap());
    assert_eq!(store.get(other).unwrap().unwrap().status, JobStatus::Lost);
}

#[test]
fn failure_reason_is_kept() {
    let (_dir, store) = open();
    let job = id("05211530-abf");
    store.insert(job, T0, &NewJob::default()).unwrap();
    assert!(
        store
            .settle(job, Ending::Failed(FailureReason::PipeFailed), T1)
            .unwrap()
    );
    let row = store.get(job).unwrap().unwrap();
    assert_eq!(
        (row.status, row.failure),
        (JobStatus::Failed, Some(FailureReason::PipeFailed))
    );
}

#[test]
fn list_is_newest_first_with_filter_and_limit() {
    let (_dir, store) = open();
    let jobs = [
        "05211530-aaa",
        "05211530-bbb",
        "05211530-ccc",
        "05211530-ddd",
    ]
    .map(id);
    for (i, job) in jobs.iter().enumerate() {
        // Two jobs share a second: insertion order breaks the tie.
        let created = if i < 2 { T0 } else { T1 };
        store.insert(*job, created, &NewJob::default()).unwrap();
    }
    store.mark_starting(jobs[1]).unwrap();
    let ids = |rows: Vec<JobRecord>| {
        rows.into_iter()
            .map(|r| r.job_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list(None, None, 100).unwrap()),
        [
            "05211530-ddd",
            "05211530-ccc",
            "05211530-bbb",
            "05211530-aaa"
        ]
    );
    assert_eq!(
        ids(store.list(None, None, 2).unwrap()),
        ["05211530-ddd", "05211530-ccc"]
    );
    assert_eq!(
        ids(store.list(Some(JobStatus::Starting), None, 100).unwrap()),
        ["05211530-bbb"]
    );
    assert!(
        store
            .list(Some(JobStatus::Lost), None, 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.live_jobs().unwrap().len(), 4);
}

#[test]
fn gc_query_and_delete() {
    let (_dir, store) = open();
    let (old, recent, live) = (id("05211530-d01"), id("05211530-d02"), id("05211530-d03"));
    for job in [old, recent, live] {
        store.insert(job, T0, &NewJob::default()).unwrap();
    }
    store.settle(old, Ending::Lost, T0).unwrap();
    store.settle(recent, Ending::Lost, T2).unwrap();
    assert_eq!(store.ended_before(T1, 100).unwrap(), [old]);
    let later = "2999-01-01T00:00:00Z";
    assert_eq!(
        store.ended_before(later, 1).unwrap(),
        [old],
        "the longest ended first"
    );
    assert_eq!(store.ended_before(later, 100).unwrap(), [old, recent]);
    assert!(store.delete(old).unwrap());
    assert!(!store.delete(old).unwrap());
    assert!(store.get(old).unwrap().is_none());
    // GC deletes its batches in one transaction each.
    assert_eq!(store.delete_many(&[old, recent]).unwrap(), 1);
    assert!(store.get(recent).unwrap().is_none());
    assert!(store.get(live).unwrap().is_some());
    assert_eq!(
        store.job_ids().unwrap(),
        std::collections::HashSet::from([live])
    );
}

#[test]
fn database_is_private_and_a_second_connection_sees_commits() {
    let (dir, store) = open();
    let path = dir.path().join("shellctl.db");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let job = id("05211530-xyz");
    store.insert(job, T0, &NewJob::default()).unwrap();
    store.mark_starting(job).unwrap();
    store.mark_running(job, T1).unwrap();
    // The pipe side of a job commits through its own connection.
    let pipe_side = Store::open_existing(&path).unwrap();
    assert!(
        pipe_side
            .settle(job, Ending::Exited { exit_code: 0 }, T2)
            .unwrap()
    );
    assert_eq!(store.get(job).unwrap().unwrap().status, JobStatus::Exited);
}

#[test]
fn concurrent_writers_do_not_fail_on_each_other() {
    let (dir, store) = open();
    let path = dir.path().join("shellctl.db");
    let ids: Vec<JobId> = (0..200)
        .map(|i| JobId::parse(&format!("05211530-{}", three(i))).unwrap())
        .collect();
    for &job in &ids {
        store.insert(job, T0, &NewJob::default()).unwrap();
        store.mark_starting(job).unwrap();
        store.mark_running(job, T1).unwrap();
    }
    let threads: Vec<_> = ids
        .chunks(50)
        .map(|chunk| {
            let (path, chunk) = (path.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for job in chunk {
                    let writer = Store::open_existing(&path).unwrap();
                    assert!(
                        writer
                            .settle(job, Ending::Exited { exit_code: 0 }, T2)
                            .unwrap()
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        store
            .list(Some(JobStatus::Exited), None, 1000)
            .unwrap()
            .len(),
        200
    );
}

/// Three id characters for `i` (distinct for i < 32768).
fn three(i: usize) -> String {
    let alphabet = shellctl_proto::job_id::JOB_ID_ALPHABET;
    [i / 1024 % 32, i / 32 % 32, i % 32]
        .iter()
        .map(|d| char::from(alphabet[*d]))
        .collect()
}

/// The schema shellctl created before the schema had a version, exactly as
/// it shipped (`user_version` 0). State dirs made by it must keep working.
const UNVERSIONED_SCHEMA: &str = "
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

#[test]
fn a_database_made_before_schema_versions_is_migrated_and_keeps_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shellctl.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(UNVERSIONED_SCHEMA).unwrap();
        old.execute_batch(
            "INSERT INTO jobs (job_id, status, exit_code, created_at, started_at, ended_at)
               VALUES ('05211530-e01', 'exited', 7, '2026-05-21T15:30:20Z',
                       '2026-05-21T15:30:20Z', '2026-05-21T15:30:21Z');
             INSERT INTO jobs (job_id, status, created_at, ended_at, failure)
               VALUES ('05211530-e02', 'failed', '2026-05-21T15:30:20Z',
                       '2026-05-21T15:30:21Z', 'pipe_failed');
             INSERT INTO jobs (job_id, status, created_at, started_at)
               VALUES ('05211530-e03', 'running', '2026-05-21T15:30:20Z',
                       '2026-05-21T15:30:20Z');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let exited = store.get(id("05211530-e01")).unwrap().unwrap();
    assert_eq!(
        (exited.status, exited.exit_code),
        (JobStatus::Exited, Some(7))
    );
    let failed = store.get(id("05211530-e02")).unwrap().unwrap();
    assert_eq!(failed.failure, Some(FailureReason::PipeFailed));
    assert_eq!(store.live_jobs().unwrap().len(), 1);
    // The migrated database goes on working, and opening it again is a no-op.
    assert!(store.settle(id("05211530-e03"), Ending::Lost, T2).unwrap());
    drop(store);
    let again = Store::open(&path).unwrap();
    assert_eq!(again.list(None, None, 10).unwrap().len(), 3);
}

#[test]
fn a_database_from_a_newer_shellctl_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shellctl.db");
    {
        let newer = rusqlite::Connection::open(&path).unwrap();
        newer
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    for opened in [Store::open(&path), Store::open_existing(&path)] {
        match opened {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected NewerSchema, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn jobs_are_counted_by_status_and_unknown_statuses_skipped() {
    let (dir, store) = open();
    assert_eq!(store.count_by_status().unwrap(), []);
    for (job, exit) in [
        ("05211530-aaa", true),
        ("05211530-bbb", true),
        ("05211530-ccc", false),
    ] {
        let job = id(job);
        store.insert(job, T0, &NewJob::default()).unwrap();
        store.mark_starting(job).unwrap();
        store.mark_running(job, T1).unwrap();
        if exit {
            store
                .settle(job, Ending::Exited { exit_code: 0 }, T2)
                .unwrap();
        }
    }
    store
        .insert(id("05211530-ddd"), T0, &NewJob::default())
        .unwrap();
    rusqlite::Connection::open(dir.path().join("shellctl.db"))
        .unwrap()
        .execute(
            "UPDATE jobs SET status = 'hibernating' WHERE job_id = '05211530-ddd'",
            [],
        )
        .unwrap();
    let mut counts = store.count_by_status().unwrap();
    counts.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(counts, [(JobStatus::Exited, 2), (JobStatus::Running, 1)]);
}

#[test]
fn an_unknown_failure_reason_reads_as_none_and_the_row_still_lists() {
    let (dir, store) = open();
    let job = id("05211530-bad");
    store.insert(job, T0, &NewJob::default()).unwrap();
    rusqlite::Connection::open(dir.path().join("shellctl.db"))
        .unwrap()
        .execute(
            "UPDATE jobs SET status = 'failed', failure = 'gremlins'",
            [],
        )
        .unwrap();
    let row = store.get(job).unwrap().unwrap();
    assert_eq!((row.status, row.failure), (JobStatus::Failed, None));
    assert_eq!(store.list(None, None, 10).unwrap().len(), 1);
}

#[test]
fn labels_filter_the_listing() {
    let (_dir, store) = open();
    let labelled = |label: &str| NewJob {
        label: Some(label.to_owned()),
        idempotency_key: None,
    };
    store
        .insert(id("05211530-aaa"), T0, &labelled("dev"))
        .unwrap();
    store
        .insert(id("05211530-bbb"), T0, &labelled("build"))
        .unwrap();
    store
        .insert(id("05211530-ccc"), T1, &labelled("dev"))
        .unwrap();
    let dev: Vec<String> = store
        .list(None, Some("dev"), 100)
        .unwrap()
        .into_iter()
        .map(|row| row.job_id.to_string())
        .collect();
    assert_eq!(dev, ["05211530-ccc", "05211530-aaa"]);
    assert!(store.list(None, Some("nope"), 100).unwrap().is_empty());
    assert_eq!(
        store
            .get(id("05211530-bbb"))
            .unwrap()
            .unwrap()
            .label
            .as_deref(),
        Some("build")
    );
}

#[test]
fn an_idempotency_key_is_held_by_one_row_at_a_time() {
    let (_dir, store) = open();
    let keyed = NewJob {
        label: None,
        idempotency_key: Some("deploy-42".to_owned()),
    };
    let first = id("05211530-aaa");
    store.insert(first, T0, &keyed).unwrap();
    match store.insert(id("05211530-bbb"), T0, &keyed) {
        Err(InsertError::KeyTaken(holder)) => assert_eq!(holder, first),
        other => panic!("expected KeyTaken, got {other:?}"),
    }
    assert_eq!(
        store.find_by_idempotency_key("deploy-42").unwrap(),
        Some(first)
    );
    assert_eq!(store.list(None, None, 10).unwrap().len(), 1);
    // Deleting the job frees the key.
    assert!(store.delete(first).unwrap());
    store.insert(id("05211530-ccc"), T1, &keyed).unwrap();
}

#[test]
fn every_ending_records_its_end_reason() {
    let (_dir, store) = open();
    let cases = [
        (
            "05211530-e01",
            Ending::Exited { exit_code: 0 },
            false,
            EndReason::Exit,
        ),
        (
            "05211530-e02",
            Ending::Exited { exit_code: 130 },
            true,
            EndReason::Terminate,
        ),
        ("05211530-e03", Ending::Lost, true, EndReason::Terminate),
        ("05211530-e04", Ending::Lost, false, EndReason::Lost),
        (
            "05211530-e05",
            Ending::Terminated(TerminateCause::MaxRuntime),
            false,
            EndReason::MaxRuntime,
        ),
        (
            "05211530-e06",
            Ending::Terminated(TerminateCause::IdleTimeout),
            false,
            EndReason::IdleTimeout,
        ),
        (
            "05211530-e07",
            Ending::Failed(FailureReason::PipeFailed),
            false,
            EndReason::PipeFailed,
        ),
    ];
    for (job, ending, terminate_requested, reason) in cases {
        let job = id(job);
        store.insert(job, T0, &NewJob::default()).unwrap();
        store.mark_starting(job).unwrap();
        store.mark_running(job, T1).unwrap();
        if terminate_requested {
            assert!(store.request_terminate(job).unwrap());
        }
        assert!(store.settle(job, ending, T2).unwrap());
        let row = store.get(job).unwrap().unwrap();
        assert_eq!(row.end_reason, Some(reason), "{ending:?}");
    }
}

fn event_log(store: &Store, since: u64) -> Vec<(String, LifecycleStatus, Option<i32>)> {
    store
        .events_after(since, None, 1000)
        .unwrap()
        .events
        .into_iter()
        .map(|event| (event.job_id.to_string(), event.status, event.exit_code))
        .collect()
}

#[test]
fn every_transition_but_starting_lands_in_the_event_log_in_commit_order() {
    use LifecycleStatus::{Created, Deleted, Exited, Failed, Lost, Running};
    let (_dir, store) = open();
    let (a, b, c) = (id("05211530-eva"), id("05211530-evb"), id("05211530-evc"));
    let labelled = NewJob {
        label: Some("batch".into()),
        idempotency_key: None,
    };
    store.insert(a, T0, &labelled).unwrap();
    store.insert(b, T0, &NewJob::default()).unwrap();
    store.mark_starting(a).unwrap();
    store.mark_running(a, T1).unwrap();
    store
        .settle(a, Ending::Exited { exit_code: 7 }, T2)
        .unwrap();
    // b ends before it was marked running: created straight to its end.
    store.settle(b, Ending::Lost, T2).unwrap();
    store.insert(c, T0, &NewJob::default()).unwrap();
    store
        .settle(c, Ending::Failed(FailureReason::StartFailed), T2)
        .unwrap();
    // A write that changes nothing writes no event.
    store.settle(a, Ending::Lost, T2).unwrap();
    store.delete(a).unwrap();
    let expected = [
        ("05211530-eva", Created, None),
        ("05211530-evb", Created, None),
        ("05211530-eva", Running, None),
        ("05211530-eva", Exited, Some(7)),
        ("05211530-evb", Lost, None),
        ("05211530-evc", Created, None),
        ("05211530-evc", Failed, None),
        ("05211530-eva", Deleted, None),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(job, status, code)| ((*job).to_owned(), *status, *code))
        .collect();
    assert_eq!(event_log(&store, 0), expected);
    let all = store.events_after(0, None, 1000).unwrap().events;
    assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(store.last_event_seq().unwrap(), all.last().unwrap().seq);
    // `since` is exclusive.
    assert_eq!(event_log(&store, all[5].seq), expected[6..].to_vec());
    // The label is kept on every event of the job, its deletion included.
    let batch = store.events_after(0, Some("batch"), 1000).unwrap();
    assert_eq!(batch.events.len(), 4);
    assert!(
        batch
            .events
            .iter()
            .all(|e| e.label.as_deref() == Some("batch"))
    );
    // A page that is not full reads past the other labels' events.
    assert!(!batch.full);
    assert_eq!(batch.read_to, store.last_event_seq().unwrap());
    let two = store.events_after(0, None, 2).unwrap();
    assert_eq!(
        (two.events.len(), two.full, two.read_to),
        (2, true, all[1].seq)
    );
}

#[test]
fn trimming_the_event_log_never_lowers_the_seq() {
    let (_dir, store) = open();
    assert_eq!(store.last_event_seq().unwrap(), 0);
    let job = id("05211530-trm");
    store.insert(job, T0, &NewJob::default()).unwrap();
    store.delete(job).unwrap();
    let last = store.last_event_seq().unwrap();
    assert_eq!(last, 2);
    // Events are stamped with the real time, so a cutoff in the future
    // trims them all.
    assert_eq!(store.trim_events("2999-01-01T00:00:00Z", 1).unwrap(), 1);
    assert_eq!(store.trim_events("2999-01-01T00:00:00Z", 100).unwrap(), 1);
    assert!(store.events_after(0, None, 10).unwrap().events.is_empty());
    assert_eq!(store.last_event_seq().unwrap(), last);
    store.insert(job, T0, &NewJob::default()).unwrap();
    assert_eq!(
        store.events_after(0, None, 10).unwrap().events[0].seq,
        last + 1
    );
}

#[test]
fn an_unreadable_event_row_is_skipped_and_a_status_rewrite_is_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shellctl.db");
    let store = Store::open(&path).unwrap();
    let job = id("05211530-bad");
    store.insert(job, T0, &NewJob::default()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "INSERT INTO job_events (job_id, status, at) VALUES ('not an id', 'created', ?1)",
        [T0],
    )
    .unwrap();
    // An UPDATE that leaves the status as it is writes no event.
    raw.execute("UPDATE jobs SET status = status", []).unwrap();
    store
        .settle(job, Ending::Terminated(TerminateCause::Request), T1)
        .unwrap();
    let page = store.events_after(0, None, 100).unwrap();
    assert_eq!(page.skipped, 1);
    let statuses: Vec<_> = page.events.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [LifecycleStatus::Created, LifecycleStatus::Terminated]
    );
    assert_eq!(page.read_to, store.last_event_seq().unwrap());
}

#[test]
fn a_read_only_store_counts_live_jobs_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shellctl.db");
    let store = Store::open(&path).unwrap();
    let (live, ended) = (id("05211530-abc"), id("05211530-xyz"));
    for job in [live, ended] {
        store.insert(job, T0, &NewJob::default()).unwrap();
        store.mark_starting(job).unwrap();
        store.mark_running(job, T1).unwrap();
    }
    store
        .settle(ended, Ending::Exited { exit_code: 0 }, T2)
        .unwrap();
    // Closed, as a stopped server leaves it: WAL checkpointed, no -wal or
    // -shm files left for the reader.
    drop(store);

    let reader = Store::open_read_only(&path).unwrap();
    let ids: Vec<JobId> = reader
        .live_jobs()
        .unwrap()
        .into_iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(ids, [live]);
    assert!(
        reader.settle(live, Ending::Lost, T2).is_err(),
        "a read-only store must refuse writes"
    );
}

#[test]
fn a_read_only_open_of_a_missing_database_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shellctl.db");
    assert!(Store::open_read_only(&path).is_err());
    assert!(!path.exists());
}
