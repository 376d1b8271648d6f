//! Since when each job waits for input, as the server observed it, and
//! when to look at each running job again.
//!
//! Whether a job waits is read fresh from `/proc` on every query
//! ([`shellctl_job::terminal::probe`]); *since when* cannot be read there.
//! So the server keeps, per running job, the wait it saw last (which
//! process, in which terminal mode) and when it first saw it. A wait ends
//! when an observation no longer shows it, when the job printed since it
//! began (a person typing through `attach` makes the echo), or when keys
//! or input are sent. A look that started before keys or input were sent
//! is discarded (it may have seen the wait they ended).
//!
//! Queries alone would make `since` the time of the first query, however
//! long the job waited before. The monitor therefore also looks at the jobs
//! someone is watching (their terminal was queried, or input or keys sent,
//! within the last [`WATCH_SPAN`]) on a schedule that tightens on activity
//! and relaxes while nothing changes: such a job is looked at on the next
//! monitor tick after its output grew or input was sent to it, and
//! otherwise after an interval that doubles from [`MIN_INTERVAL`] to
//! [`MAX_INTERVAL`] while its state stays the same. `since` is thus within
//! a tick of the truth for waits that follow output or input (a prompt),
//! and within [`MAX_INTERVAL`] for a wait that starts silently after a long
//! quiet spell. Jobs nobody watches are not looked at: a thousand idle jobs
//! cost nothing, and the first query of such a job starts its `since` (the
//! wait began no later, and nobody asked before).

use shellctl_job::terminal::TerminalMode;
use shellctl_proto::JobId;
use shellctl_proto::timestamp::now_timestamp;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Shortest interval between scheduled looks at a job.
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval between scheduled looks at a job.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(16);
/// How long after the last query of a job's terminal (or input to it) it
/// counts as watched, and keeps its scheduled looks.
pub(super) const WATCH_SPAN: Duration = Duration::from_secs(600);

/// A wait as one observation shows it: the waiting process and the
/// terminal's mode. A different process or mode is a different wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WaitSeen {
    /// The process reading the terminal.
    pub reader: u32,
    /// The terminal's mode then (`None` if unreadable).
    pub mode: Option<TerminalMode>,
}

/// One look at a job: taken at [`InputTracker::generation`] `generation`,
/// seeing `seen`, when the job's output change count was `output`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Look {
    pub generation: u64,
    pub seen: Option<WaitSeen>,
    pub output: u64,
}

/// A wait in progress.
#[derive(Debug)]
struct Wait {
    seen: WaitSeen,
    /// When it was first seen (wire timestamp).
    since: String,
    /// The job's output change count then.
    output: u64,
}

#[derive(Debug)]
struct Tracked {
    wait: Option<Wait>,
    /// Bumped when keys or input are sent.
    generation: u64,
    interval: Duration,
    next_look: Instant,
    /// The job's output change count when the schedule last checked it.
    output_seen: u64,
    /// Until when someone counts as watching (see [`WATCH_SPAN`]).
    watched_until: Instant,
}

impl Tracked {
    fn new(now: Instant) -> Tracked {
        Tracked {
            wait: None,
            generation: 0,
            interval: MIN_INTERVAL,
            next_look: now,
            output_seen: 0,
            watched_until: now + WATCH_SPAN,
        }
    }
}

/// The per-job record; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct InputTracker {
    jobs: Mutex<HashMap<JobId, Tracked>>,
}

impl InputTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Tracked>> {
        // Each entry is replaced whole; a panic cannot leave one torn.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The job's generation, to take before a look (see [`Look`]).
    pub fn generation(&self, job_id: JobId) -> u64 {
        self.lock()
            .get(&job_id)
            .map_or(0, |tracked| tracked.generation)
    }

    /// A query of the job's terminal: records what its look saw (see
    /// [`observe`](Self::observe)), and the job counts as watched for
    /// [`WATCH_SPAN`] from now.
    pub fn queried(&self, job_id: JobId, look: Look, now: Instant) -> Option<String> {
        let mut jobs = self.lock();
        let tracked = jobs.entry(job_id).or_insert_with(|| Tracked::new(now));
        tracked.watched_until = now + WATCH_SPAN;
        Self::record(tracked, look, now)
    }

    /// Records what a look at the job saw and returns since when it waits
    /// (`None` when it does not). The next scheduled look comes sooner if
    /// the state changed, later if it did not. A look older than the last
    /// keys or input changes nothing.
    pub fn observe(&self, job_id: JobId, look: Look, now: Instant) -> Option<String> {
        let mut jobs = self.lock();
        let tracked = jobs.entry(job_id).or_insert_with(|| Tracked::new(now));
        Self::record(tracked, look, now)
    }

    fn record(tracked: &mut Tracked, look: Look, now: Instant) -> Option<String> {
        if look.generation == tracked.generation {
            let same_wait = match (&tracked.wait, look.seen) {
                (Some(wait), Some(seen)) => wait.seen == seen && wait.output == look.output,
                (None, None) => true,
                _ => false,
            };
            tracked.interval = if same_wait {
                (tracked.interval * 2).min(MAX_INTERVAL)
            } else {
                MIN_INTERVAL
            };
            tracked.next_look = now + tracked.interval;
            if !same_wait {
                tracked.wait = look.seen.map(|seen| Wait {
                    seen,
                    since: now_timestamp(),
                    output: look.output,
                });
            }
        }
        tracked.wait.as_ref().map(|wait| wait.since.clone())
    }

    /// Keys or input went to the job: any wait it was in is over, looks
    /// begun before are void, and it is looked at again on the next tick.
    pub fn input_sent(&self, job_id: JobId, now: Instant) {
        let mut jobs = self.lock();
        let tracked = jobs.entry(job_id).or_insert_with(|| Tracked::new(now));
        tracked.wait = None;
        tracked.generation += 1;
        tracked.interval = MIN_INTERVAL;
        tracked.next_look = now;
        tracked.watched_until = now + WATCH_SPAN;
    }

    /// Whether no job is watched (the monitor's tick then has nothing to
    /// look at).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The watched jobs due for a look now: their output grew since the
    /// last look, or their interval passed. `output_of` gives a job's
    /// output change count, `None` once it no longer runs (it is then
    /// forgotten, as are jobs nobody asked about for [`WATCH_SPAN`]).
    /// Each comes with its generation and output count, for its [`Look`].
    pub fn due(
        &self,
        now: Instant,
        output_of: impl Fn(JobId) -> Option<u64>,
    ) -> Vec<(JobId, u64, u64)> {
        let mut jobs = self.lock();
        let mut due = Vec::new();
        jobs.retain(|&job_id, tracked| {
            let Some(output) = output_of(job_id).filter(|_| now < tracked.watched_until) else {
                return false;
            };
            let grew = tracked.output_seen != output;
            tracked.output_seen = output;
            if grew || now >= tracked.next_look {
                due.push((job_id, tracked.generation, output));
            }
            true
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u8) -> JobId {
        JobId::parse(&format!("01010101-ab{}", char::from(b'a' + n))).unwrap()
    }

    fn reading(reader: u32) -> WaitSeen {
        WaitSeen {
            reader,
            mode: Some(TerminalMode {
                canonical: true,
                echo: true,
            }),
        }
    }

    fn look(tracker: &InputTracker, seen: Option<WaitSeen>, output: u64) -> Look {
        Look {
            generation: tracker.generation(job(0)),
            seen,
            output,
        }
    }

    fn since(tracker: &InputTracker, seen: Option<WaitSeen>, output: u64) -> Option<String> {
        tracker.observe(job(0), look(tracker, seen, output), Instant::now())
    }

    fn wait_of(tracker: &InputTracker) -> Option<(WaitSeen, u64)> {
        tracker.lock()[&job(0)]
            .wait
            .as_ref()
            .map(|wait| (wait.seen, wait.output))
    }

    #[test]
    fn since_stays_while_the_same_wait_lasts() {
        let tracker = InputTracker::default();
        let first = since(&tracker, Some(reading(7)), 0).unwrap();
        assert_eq!(since(&tracker, Some(reading(7)), 0), Some(first));
        assert_eq!(since(&tracker, None, 0), None);
        assert_eq!(wait_of(&tracker), None);
    }

    #[test]
    fn a_new_reader_or_new_output_is_a_new_wait() {
        let tracker = InputTracker::default();
        since(&tracker, Some(reading(7)), 0);
        since(&tracker, Some(reading(8)), 0);
        assert_eq!(wait_of(&tracker), Some((reading(8), 0)));
        since(&tracker, Some(reading(8)), 3);
        assert_eq!(wait_of(&tracker), Some((reading(8), 3)));
    }

    #[test]
    fn input_ends_the_wait_and_voids_older_looks() {
        let tracker = InputTracker::default();
        since(&tracker, Some(reading(7)), 0);
        let stale = look(&tracker, Some(reading(7)), 0);
        tracker.input_sent(job(0), Instant::now());
        assert_eq!(wait_of(&tracker), None);
        assert_eq!(tracker.observe(job(0), stale, Instant::now()), None);
        assert_eq!(wait_of(&tracker), None);
        assert!(since(&tracker, Some(reading(7)), 0).is_some());
    }

    /// `due` for jobs whose output counts are `counts` (others are not
    /// running).
    fn due(
        tracker: &InputTracker,
        counts: &[(JobId, u64)],
        now: Instant,
    ) -> Vec<(JobId, u64, u64)> {
        tracker.due(now, |job_id| {
            counts
                .iter()
                .find(|(id, _)| *id == job_id)
                .map(|(_, output)| *output)
        })
    }

    #[test]
    fn the_schedule_relaxes_while_nothing_changes_and_tightens_on_output() {
        let tracker = InputTracker::default();
        let start = Instant::now();
        // A job nobody asked about is not looked at.
        assert!(due(&tracker, &[(job(0), 0)], start).is_empty());
        // Once asked about, it is looked at on its schedule (the query was
        // the first look).
        tracker.queried(job(0), look(&tracker, None, 0), start);
        assert!(due(&tracker, &[(job(0), 0)], start).is_empty());
        assert_eq!(
            due(&tracker, &[(job(0), 0)], start + MAX_INTERVAL),
            vec![(job(0), 0, 0)]
        );
        let mut now = start;
        for _ in 0..10 {
            tracker.observe(job(0), look(&tracker, None, 0), now);
            now += Duration::from_millis(1);
        }
        assert_eq!(tracker.lock()[&job(0)].interval, MAX_INTERVAL);
        assert!(due(&tracker, &[(job(0), 0)], now).is_empty());
        // Output grew: due on this tick.
        assert_eq!(due(&tracker, &[(job(0), 1)], now), vec![(job(0), 0, 1)]);
        // A change of state brings the interval back down.
        tracker.observe(job(0), look(&tracker, Some(reading(7)), 1), now);
        assert_eq!(tracker.lock()[&job(0)].interval, MIN_INTERVAL);
        assert_eq!(
            due(&tracker, &[(job(0), 1)], now + MIN_INTERVAL),
            vec![(job(0), 0, 1)]
        );
    }

    #[test]
    fn jobs_no_longer_running_or_watched_are_forgotten() {
        let tracker = InputTracker::default();
        let start = Instant::now();
        since(&tracker, Some(reading(7)), 0);
        due(&tracker, &[(job(1), 0)], start);
        assert!(tracker.is_empty(), "no longer running");
        tracker.queried(job(0), look(&tracker, None, 0), start);
        assert!(!due(&tracker, &[(job(0), 1)], start).is_empty());
        assert!(due(&tracker, &[(job(0), 2)], start + WATCH_SPAN).is_empty());
        assert!(tracker.is_empty(), "nobody asked for a while");
    }
}
