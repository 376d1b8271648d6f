//! The job's deadlines, enforced by the runner: `max_runtime` (the script
//! runs at most so long) and `idle_timeout` (the job prints something at
//! least that often).
//!
//! They live on the job side so that they hold while the server is down.
//! A thread of the runner sleeps until the nearest deadline; it wakes
//! early only when the script ends (its channel closes). At an idle
//! deadline it looks at the log's modification time, which the pipe side
//! bumps with every write, and sleeps again if output came meanwhile. So a
//! quiet job costs one `stat` per idle period, and nothing polls.
//!
//! When a deadline passes while the script runs, the thread sends SIGINT
//! to the terminal's foreground group as Ctrl-C would, and after
//! [`DEADLINE_GRACE`] kills every process of the job. Once the script has
//! ended, the runner learns from the thread whether a deadline ended it,
//! kills whatever the script left behind, and records the deadline in the
//! `deadline` marker before the exit ([`conclude`]), so the exit commits as
//! `terminated` with that cause. A script that exits by itself just before
//! its deadline is not mistaken for one the deadline ended: the thread
//! checks that the script still runs before it signals.

use crate::containment::JobContainment;
use crate::files::{JobDir, JobSpec, OUTPUT};
use crate::lifecycle::TerminateCause;
use crate::process::ProcessIdentity;
use crate::terminal::signal_job;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use shellctl_proto::{SignalName, SignalTarget};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Between the Ctrl-C of a passed deadline and the kill.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(3);

/// A job's deadlines, from its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// Longest the script may run.
    pub max_runtime: Option<Duration>,
    /// Longest the job may go without output.
    pub idle_timeout: Option<Duration>,
}

impl Deadlines {
    /// The deadlines a spec asks for.
    pub fn of(spec: &JobSpec) -> Deadlines {
        Deadlines {
            max_runtime: spec.max_runtime_ms.map(Duration::from_millis),
            idle_timeout: spec.idle_timeout_ms.map(Duration::from_millis),
        }
    }

    /// Whether there is any deadline to enforce.
    pub fn any(self) -> bool {
        self.max_runtime.is_some() || self.idle_timeout.is_some()
    }

    /// The nearest deadline after `started`, given when output was last
    /// seen, and which one it is.
    pub fn next(self, started: Instant, last_output: Instant) -> Option<(Instant, TerminateCause)> {
        let runtime = self
            .max_runtime
            .map(|limit| (started + limit, TerminateCause::MaxRuntime));
        let idle = self.idle_timeout.map(|limit| {
            (
                last_output.max(started) + limit,
                TerminateCause::IdleTimeout,
            )
        });
        [runtime, idle]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }
}

/// The thread that enforces a running script's deadlines. The runner
/// calls [`finish`](Self::finish) once the script ended, which says whether
/// a deadline ended it.
pub struct DeadlineWatch {
    script_ended: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Option<TerminateCause>>>,
}

impl DeadlineWatch {
    /// Starts watching the script whose leader is `script` (also its
    /// process group), started at `started`. Returns `None` when there is
    /// nothing to enforce (no deadlines), or the thread cannot start (the
    /// job then runs without them, which the runner cannot report anywhere
    /// better than by running on).
    pub fn start(
        job_dir: &JobDir,
        deadlines: Deadlines,
        containment: Option<JobContainment>,
        script: u32,
        started: Instant,
    ) -> Option<DeadlineWatch> {
        if !deadlines.any() {
            return None;
        }
        let script = Pid::from_raw(i32::try_from(script).ok()?);
        let (script_ended, ended) = mpsc::channel();
        let job_dir = job_dir.clone();
        let thread = std::thread::Builder::new()
            .name("deadlines".into())
            .spawn(move || {
                enforce(
                    &job_dir,
                    deadlines,
                    containment.as_ref(),
                    script,
                    started,
                    &ended,
                )
            })
            .ok()?;
        Some(DeadlineWatch {
            script_ended: Some(script_ended),
            thread: Some(thread),
        })
    }

    /// Tells the thread the script ended, waits for it (at once, unless it
    /// is signalling the job right now), and returns the deadline that
    /// ended the script, if one did.
    pub fn finish(mut self) -> Option<TerminateCause> {
        self.stop()
    }

    fn stop(&mut self) -> Option<TerminateCause> {
        self.script_ended.take();
        self.thread
            .take()
            .and_then(|thread| thread.join().ok().flatten())
    }
}

impl Drop for DeadlineWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the runner does once a script that a deadline ended has exited:
/// records the deadline (so the exit commits as `terminated` with it), and
/// kills what the script left behind, since "ended" means every process
/// of the job, not only its leader (which may have died of the Ctrl-C
/// while its children ignored it).
pub fn conclude(
    job_dir: &JobDir,
    cause: TerminateCause,
    script: u32,
    containment: Option<&JobContainment>,
) -> std::io::Result<()> {
    kill_everything(
        Pid::from_raw(i32::try_from(script).unwrap_or(0)),
        containment,
    );
    job_dir.record_deadline(cause)
}

/// Kills every process of the job: all of its tracked processes where the
/// job has containment, else its tree and the script's process group.
fn kill_everything(script: Pid, containment: Option<&JobContainment>) {
    let me = ProcessIdentity::current();
    match containment {
        Some(containment) => {
            containment.kill_all(me);
        }
        None => {
            if let Some(me) = me {
                let _killed = signal_job(me, SignalName::KILL, SignalTarget::Job);
            }
        }
    }
    if script.as_raw() > 0 {
        let _killed = killpg(script, Signal::SIGKILL);
    }
}

/// Sleeps until the nearest deadline; returns early when `ended` closes.
/// Returns the deadline that fired, if one did while the script ran.
fn enforce(
    job_dir: &JobDir,
    deadlines: Deadlines,
    containment: Option<&JobContainment>,
    script: Pid,
    started: Instant,
    ended: &mpsc::Receiver<()>,
) -> Option<TerminateCause> {
    loop {
        let (at, cause) = deadlines.next(started, last_output(job_dir))?;
        let now = Instant::now();
        if now < at {
            match ended.recv_timeout(at - now) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
        // A script that already exited by itself (the runner has not
        // reaped it yet) ended within the deadline: not its doing.
        if !still_running(script) {
            return None;
        }
        end_script(script, containment, ended);
        return Some(cause);
    }
}

/// Whether the script's leader has not exited yet (it may be a zombie the
/// runner is about to reap; `WNOWAIT` leaves that to the runner).
fn still_running(script: Pid) -> bool {
    matches!(
        waitid(
            Id::Pid(script),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
        ),
        Ok(WaitStatus::StillAlive)
    )
}

/// When the log last grew, as an [`Instant`] (its modification time, which
/// every append of the pipe side sets). An unreadable log counts as output
/// now: a deadline must not fire on a read error.
fn last_output(job_dir: &JobDir) -> Instant {
    let now = Instant::now();
    std::fs::metadata(job_dir.file(OUTPUT))
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .and_then(|age| now.checked_sub(age))
        .unwrap_or(now)
}

/// Ctrl-C's signal to the terminal's foreground, then after the grace, if
/// the script's leader still runs, a kill of every process of the job.
/// (When the leader ends sooner, the runner kills what it left behind:
/// [`conclude`].)
fn end_script(script: Pid, containment: Option<&JobContainment>, ended: &mpsc::Receiver<()>) {
    let me = ProcessIdentity::current();
    let interrupted = me
        .and_then(|me| signal_job(me, SignalName::INT, SignalTarget::Foreground).ok())
        .unwrap_or(0);
    if interrupted == 0 {
        let _sent = killpg(script, Signal::SIGINT);
    }
    if matches!(
        ended.recv_timeout(DEADLINE_GRACE),
        Ok(()) | Err(RecvTimeoutError::Disconnected)
    ) {
        return;
    }
    kill_everything(script, containment);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_deadline_wins() {
        let start = Instant::now();
        let deadlines = Deadlines {
            max_runtime: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            deadlines.next(start, start),
            Some((start + Duration::from_secs(3), TerminateCause::IdleTimeout))
        );
        // Output at 8 s moves the idle deadline past the runtime's.
        assert_eq!(
            deadlines.next(start, start + Duration::from_secs(8)),
            Some((start + Duration::from_secs(10), TerminateCause::MaxRuntime))
        );
        assert_eq!(Deadlines::default().next(start, start), None);
    }

    #[test]
    fn output_before_the_start_does_not_shorten_the_idle_deadline() {
        let before = Instant::now();
        let start = before + Duration::from_secs(4);
        let deadlines = Deadlines {
            max_runtime: None,
            idle_timeout: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            deadlines.next(start, before),
            Some((start + Duration::from_secs(2), TerminateCause::IdleTimeout))
        );
    }
}
