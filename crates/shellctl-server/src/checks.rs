//! Which running jobs supervision must look at, as events report them.
//!
//! Nothing re-checks every job on a timer: the inotify watcher reports a
//! job whose pipe side left a marker or closed its log (it exits), the tmux
//! control client reports a job whose window closed (its session is gone),
//! and either can ask for a look at every job when it may have missed
//! events (an overflowed inotify queue, a window nobody knew, a new control
//! client). Reports coalesce: a job reported many times before supervision
//! gets to it is looked at once, so a burst costs one batch, and the set is
//! bounded by the live jobs (no backlog to overflow, unlike a channel).

use shellctl_proto::JobId;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// What supervision has to look at next; see [`JobChecks::next`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Due {
    /// Jobs something happened to (a marker, a closed log, a closed
    /// window).
    pub jobs: HashSet<JobId>,
    /// Of those, the jobs whose tmux window closed: their session is gone,
    /// so no tmux call is needed to know it.
    pub gone: HashSet<JobId>,
    /// Events may have been missed: look at every live job.
    pub everything: bool,
}

impl Due {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && !self.everything
    }
}

/// The coalescing set of jobs due for a look, shared by the event sources
/// (watcher, tmux) and supervision.
#[derive(Debug, Default)]
pub struct JobChecks {
    due: Mutex<Due>,
    ready: Notify,
}

impl JobChecks {
    fn lock(&self) -> MutexGuard<'_, Due> {
        // Plain inserts and a swap: a panic cannot leave the sets torn.
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Something happened to `job_id` (in its directory).
    pub fn job(&self, job_id: JobId) {
        if self.lock().jobs.insert(job_id) {
            self.ready.notify_one();
        }
    }

    /// `job_id`'s tmux window (and with it its session) closed.
    pub fn session_gone(&self, job_id: JobId) {
        {
            let mut due = self.lock();
            due.gone.insert(job_id);
            due.jobs.insert(job_id);
        }
        self.ready.notify_one();
    }

    /// Events may have been missed: every live job is due.
    pub fn everything(&self) {
        self.lock().everything = true;
        self.ready.notify_one();
    }

    /// Takes what is due now (possibly nothing).
    pub fn take(&self) -> Due {
        std::mem::take(&mut *self.lock())
    }

    /// Waits until something is due and takes it.
    pub async fn next(&self) -> Due {
        loop {
            let due = self.take();
            if !due.is_empty() {
                return due;
            }
            // A report between the take and here left a permit: no wait.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(n: u8) -> JobId {
        JobId::parse(&format!("01010101-ab{}", char::from(b'a' + n))).unwrap()
    }

    #[tokio::test]
    async fn reports_coalesce_until_taken() {
        let checks = JobChecks::default();
        checks.job(job(0));
        checks.job(job(0));
        checks.session_gone(job(1));
        let due = tokio::time::timeout(Duration::from_secs(60), checks.next())
            .await
            .unwrap();
        assert_eq!(due.jobs, HashSet::from([job(0), job(1)]));
        assert_eq!(due.gone, HashSet::from([job(1)]));
        assert!(!due.everything);
        assert!(checks.take().is_empty());
    }

    #[tokio::test]
    async fn a_report_wakes_a_waiting_taker() {
        let checks = std::sync::Arc::new(JobChecks::default());
        let taker = tokio::spawn({
            let checks = std::sync::Arc::clone(&checks);
            async move { checks.next().await }
        });
        tokio::task::yield_now().await;
        checks.everything();
        let due = tokio::time::timeout(Duration::from_secs(60), taker)
            .await
            .unwrap()
            .unwrap();
        assert!(due.everything);
    }
}
