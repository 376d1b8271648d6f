//! Since when each job waits for input, as the server observed it, and
//! when to look at each running job again.
//!
//! Whether a job waits is read fresh from `/proc` on every query
//! ([`shellctl_job::terminal::probe`]); *since when* cannot be read there.
//! So the server keeps, per running job, the wait it saw last (which
//! process, in which terminal mode) and when it first saw it. A wait ends
//! when an observation no longer shows it, or when keys or input are sent.
//!
//! Queries alone would make `since` the time of the first query, however
//! long the job waited before. The monitor therefore also looks at running
//! jobs on a schedule that tightens on activity and relaxes while nothing
//! changes: a job is looked at on the next monitor tick after its output
//! grew or input was sent to it, and otherwise after an interval that
//! doubles from [`MIN_INTERVAL`] to [`MAX_INTERVAL`] while its state stays
//! the same. `since` is thus within a tick of the truth for waits that
//! follow output or input (a prompt), and within [`MAX_INTERVAL`] for a
//! wait that starts silently after a long quiet spell.

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

/// A wait as one observation shows it: the waiting process and the
/// terminal's mode. A different process or mode is a different wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WaitSeen {
    /// The process reading the terminal.
    pub reader: u32,
    /// The terminal's mode then (`None` if unreadable).
    pub mode: Option<TerminalMode>,
}

#[derive(Debug)]
struct Tracked {
    /// The wait seen last, with when it was first seen (wire timestamp).
    wait: Option<(WaitSeen, String)>,
    interval: Duration,
    next_look: Instant,
    /// The job's output change count when it was last looked at.
    output_seen: u64,
}

impl Tracked {
    fn new(now: Instant) -> Tracked {
        Tracked {
            wait: None,
            interval: MIN_INTERVAL,
            next_look: now,
            output_seen: 0,
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

    /// Records what a look at the job saw and returns since when it waits
    /// (`None` when it does not). The next scheduled look comes sooner if
    /// the state changed, later if it did not.
    pub fn observe(&self, job_id: JobId, seen: Option<WaitSeen>, now: Instant) -> Option<String> {
        let mut jobs = self.lock();
        let tracked = jobs.entry(job_id).or_insert_with(|| Tracked::new(now));
        let unchanged = tracked.wait.as_ref().map(|(wait, _)| *wait) == seen;
        tracked.interval = if unchanged {
            (tracked.interval * 2).min(MAX_INTERVAL)
        } else {
            MIN_INTERVAL
        };
        tracked.next_look = now + tracked.interval;
        if !unchanged {
            tracked.wait = seen.map(|wait| (wait, now_timestamp()));
        }
        tracked.wait.as_ref().map(|(_, since)| since.clone())
    }

    /// Keys or input went to the job: any wait it was in is over, and it
    /// is looked at again on the next tick.
    pub fn input_sent(&self, job_id: JobId, now: Instant) {
        let mut jobs = self.lock();
        let tracked = jobs.entry(job_id).or_insert_with(|| Tracked::new(now));
        tracked.wait = None;
        tracked.interval = MIN_INTERVAL;
        tracked.next_look = now;
    }

    /// The running jobs (with their output change counts) due for a look
    /// now: their output grew since the last look, or their interval
    /// passed. Jobs no longer running are forgotten.
    pub fn due(&self, running: &[(JobId, u64)], now: Instant) -> Vec<JobId> {
        let mut jobs = self.lock();
        jobs.retain(|job_id, _| running.iter().any(|(id, _)| id == job_id));
        running
            .iter()
            .filter(|(job_id, output)| {
                let tracked = jobs.entry(*job_id).or_insert_with(|| Tracked::new(now));
                let grew = tracked.output_seen != *output;
                tracked.output_seen = *output;
                grew || now >= tracked.next_look
            })
            .map(|(job_id, _)| *job_id)
            .collect()
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

    #[test]
    fn since_stays_while_the_same_wait_lasts_and_restarts_after_input() {
        let tracker = InputTracker::default();
        let now = Instant::now();
        let first = tracker.observe(job(0), Some(reading(7)), now).unwrap();
        assert_eq!(
            tracker.observe(job(0), Some(reading(7)), now).as_deref(),
            Some(&*first)
        );
        assert_eq!(tracker.observe(job(0), None, now), None);
        tracker.observe(job(0), Some(reading(7)), now).unwrap();
        tracker.input_sent(job(0), now);
        let entry = tracker.lock();
        assert!(entry[&job(0)].wait.is_none());
    }

    #[test]
    fn a_different_reader_is_a_new_wait() {
        let tracker = InputTracker::default();
        let now = Instant::now();
        tracker.observe(job(0), Some(reading(7)), now);
        tracker.observe(job(0), Some(reading(8)), now);
        assert_eq!(tracker.lock()[&job(0)].wait.as_ref().unwrap().0, reading(8));
    }

    #[test]
    fn the_schedule_relaxes_while_nothing_changes_and_tightens_on_output() {
        let tracker = InputTracker::default();
        let start = Instant::now();
        // New jobs are due at once.
        assert_eq!(tracker.due(&[(job(0), 0)], start), vec![job(0)]);
        let mut now = start;
        for _ in 0..10 {
            tracker.observe(job(0), None, now);
            now += Duration::from_millis(1);
        }
        assert_eq!(tracker.lock()[&job(0)].interval, MAX_INTERVAL);
        assert!(tracker.due(&[(job(0), 0)], now).is_empty());
        // Output grew: due on this tick.
        assert_eq!(tracker.due(&[(job(0), 1)], now), vec![job(0)]);
        // A change of state brings the interval back down.
        tracker.observe(job(0), Some(reading(7)), now);
        assert_eq!(tracker.lock()[&job(0)].interval, MIN_INTERVAL);
        assert_eq!(
            tracker.due(&[(job(0), 1)], now + MIN_INTERVAL),
            vec![job(0)]
        );
    }

    #[test]
    fn jobs_no_longer_running_are_forgotten() {
        let tracker = InputTracker::default();
        let now = Instant::now();
        tracker.observe(job(0), Some(reading(7)), now);
        tracker.due(&[(job(1), 0)], now);
        assert!(!tracker.lock().contains_key(&job(0)));
    }
}
