//! Containment: every process a job starts is tracked to the job, so that
//! ending the job ends all of them, including ones that left the job's
//! session or process tree (`setsid`, `nohup`, a double fork).
//!
//! Two mechanisms, chosen per host when the server starts:
//!
//! - **cgroups** ([`cgroup`]), where the host lets the server create them
//!   (v1 or v2). The server makes the job's groups before the job starts;
//!   the script's first process joins them between fork and exec
//!   ([`Joiner`]), so everything it starts is in them, and the kernel
//!   enforces the job's limits there. The runner itself stays outside, so
//!   that it outlives the kill to record the exit.
//! - **an inherited marker**, everywhere: the script runs with
//!   [`JOB_MARKER_ENV`] set to a value unique to the job, which children
//!   inherit; a scan of `/proc` finds them by it, together with the
//!   members of the job's terminal session and the runner's descendants.
//!   Its known limit: a process that clears or rewrites its environment and
//!   also leaves the session and the runner's tree is not found.
//!
//! Killing is complete when [`JobContainment::kill_all`] returns: the
//! processes are stopped (frozen, or `SIGSTOP`ped) so none forks while they
//! are listed, killed, and waited for until they are gone.

pub mod cgroup;
mod scan;

pub use cgroup::{CgroupSupport, CgroupVersion, Controller, JobGroups};

use crate::process::ProcessIdentity;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable every process of a job inherits:
/// `<server instance>/<job id>`.
pub const JOB_MARKER_ENV: &str = "SHELLCTL_JOB";
/// Longest a kill waits for the processes it killed to be gone.
const GONE_LIMIT: Duration = Duration::from_secs(5);
/// Scans of `/proc` for newcomers before the marker kill goes ahead.
const STOP_ROUNDS: usize = 8;

/// A server instance's name: a hash of its state directory, so two servers
/// on one host never take each other's processes or groups.
pub fn instance_of(state_dir: &Path) -> String {
    // FNV-1a: stable across builds and versions, unlike std's hasher, so a
    // restarted (or upgraded) server finds its groups again.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in state_dir.as_os_str().as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// How a job's processes are tracked. The server writes it into the job's
/// spec; the runner and the server both act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobContainment {
    /// The value of [`JOB_MARKER_ENV`] for this job.
    pub marker: String,
    /// The job's groups, on a host that offers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<JobGroups>,
}

impl JobContainment {
    /// Containment of job `job_id` of server `instance`, in `groups` if any.
    pub fn new(instance: &str, job_id: &str, groups: Option<JobGroups>) -> JobContainment {
        JobContainment {
            marker: format!("{instance}/{job_id}"),
            groups,
        }
    }

    /// `cgroup` or `process_scan`, as the job's detail reports it.
    pub fn kind(&self) -> &'static str {
        if self.groups.is_some() {
            "cgroup"
        } else {
            "process_scan"
        }
    }

    /// What the script's first process needs to join the job's groups, made
    /// before the fork (the child may not allocate).
    pub fn joiner(&self) -> Joiner {
        let files = self
            .groups
            .iter()
            .flat_map(JobGroups::procs_files)
            .filter_map(|path| CString::new(path.as_os_str().as_bytes()).ok())
            .collect();
        Joiner { files }
    }

    /// The job's processes now, never the runner nor the caller. `runner`
    /// (the terminal's session leader) widens the marker scan to its
    /// session and descendants. With groups, the marker scan runs too: a
    /// script whose join failed (allowed for a job without limits) is
    /// outside them but still carries the marker.
    pub fn members(&self, runner: Option<ProcessIdentity>) -> Vec<u32> {
        let mut found = self.scan(runner);
        if let Some(groups) = &self.groups {
            found.extend(groups.members());
            found.sort_unstable();
            found.dedup();
        }
        found
    }

    /// Sends `signal` to every process of the job; returns how many got it.
    pub fn signal(&self, runner: Option<ProcessIdentity>, signal: Signal) -> usize {
        self.members(runner)
            .into_iter()
            .filter(|pid| send(*pid, signal))
            .count()
    }

    /// Kills every process of the job and returns once they are gone (or
    /// after `GONE_LIMIT`, 5 s, for one the kernel holds, say in an
    /// uninterruptible sleep). Returns how many it killed. With groups, the
    /// group kill goes first and a marker kill follows for anything outside
    /// them (see [`JobContainment::members`]).
    pub fn kill_all(&self, runner: Option<ProcessIdentity>) -> usize {
        let in_groups = self.groups.as_ref().map_or(0, JobGroups::kill_all);
        in_groups + self.kill_scanned(runner)
    }

    /// [`JobContainment::kill_all`] for the runner once it saw its script
    /// join the groups: nothing of the job can
    /// be outside them then, so no `/proc` scan is needed.
    pub fn kill_all_joined(&self, runner: Option<ProcessIdentity>) -> usize {
        match &self.groups {
            Some(groups) => groups.kill_all(),
            None => self.kill_scanned(runner),
        }
    }

    /// How many times the OOM killer acted in the job (0 without a memory
    /// limit).
    pub fn oom_kills(&self) -> u64 {
        self.groups.as_ref().map_or(0, JobGroups::oom_kills)
    }

    /// Removes the job's groups once they are empty.
    pub fn remove_groups(&self) -> io::Result<()> {
        self.groups.as_ref().map_or(Ok(()), JobGroups::remove)
    }

    fn marker_entry(&self) -> Vec<u8> {
        format!("{JOB_MARKER_ENV}={}", self.marker).into_bytes()
    }

    fn scan(&self, runner: Option<ProcessIdentity>) -> Vec<u32> {
        // The runner leads the terminal's session, whose id is its pid. The
        // session outlives its leader (killing the tmux session ends the
        // runner first), and the kernel reuses no pid that still names a
        // session, so its members are found after the runner died too,
        // unless another process holds the pid now: then the session was
        // empty, and the pid names someone else's.
        let session = runner
            .filter(|r| ProcessIdentity::of(r.pid).is_none_or(|now| now == *r))
            .map(|r| r.pid);
        let mut found = scan::marked_or_in_session(&self.marker_entry(), session);
        if let Some(runner) = runner.filter(ProcessIdentity::is_alive) {
            found.extend(crate::terminal::descendants(runner.pid));
        }
        if let Some(runner) = runner {
            found.retain(|pid| *pid != runner.pid);
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The marker kill: stop every process found (a stopped process cannot
    /// fork), scan again for ones started meanwhile until none is new, then
    /// kill them all. Identities guard against a pid reused meanwhile.
    fn kill_scanned(&self, runner: Option<ProcessIdentity>) -> usize {
        let mut stopped: HashMap<u32, ProcessIdentity> = HashMap::new();
        for _ in 0..STOP_ROUNDS {
            let fresh: Vec<ProcessIdentity> = self
                .scan(runner)
                .into_iter()
                .filter(|pid| !stopped.contains_key(pid))
                .filter_map(ProcessIdentity::of)
                .collect();
            if fresh.is_empty() {
                break;
            }
            for process in fresh {
                send(process.pid, Signal::SIGSTOP);
                stopped.insert(process.pid, process);
            }
        }
        // One that exited meanwhile (a zombie now) was not killed here.
        let killed: Vec<ProcessIdentity> = stopped
            .into_values()
            .filter(|process| !scan::is_gone(*process) && send(process.pid, Signal::SIGKILL))
            .collect();
        settle(GONE_LIMIT, || killed.iter().all(|p| scan::is_gone(*p)));
        killed.len()
    }
}

/// Joins the current process to its job's groups; made by
/// [`JobContainment::joiner`].
#[derive(Debug, Clone, Default)]
pub struct Joiner {
    files: Vec<CString>,
}

impl Joiner {
    /// Whether there is any group to join.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes `0` (the writer itself) to every group's `cgroup.procs`.
    /// Made for the child between fork and exec: it uses only `open`,
    /// `write` and `close`, and allocates nothing.
    pub fn join_current(&self) -> io::Result<()> {
        for file in &self.files {
            let fd = open(
                file.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            nix::unistd::write(&fd, b"0")?;
        }
        Ok(())
    }
}

/// Sends `signal` to `pid`; whether it was delivered.
fn send(pid: u32, signal: Signal) -> bool {
    i32::try_from(pid).is_ok_and(|raw| raw > 0 && kill(Pid::from_raw(raw), signal).is_ok())
}

/// Waits until `done` holds, looking again after 1, 2, 4… ms (at most
/// 50 ms apart), for at most `limit`. Returns whether it held. The kernel
/// offers no event for "these processes are gone" that covers every case
/// here (other processes' children, v1 groups), and the wait is short:
/// a killed process goes within a few milliseconds.
fn settle(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn instances_differ_by_state_dir_and_stay_put() {
        let a = instance_of(Path::new("/var/lib/a"));
        assert_eq!(a, instance_of(Path::new("/var/lib/a")));
        assert_ne!(a, instance_of(Path::new("/var/lib/b")));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn the_marker_kill_ends_a_setsid_grandchild_that_left_the_tree() {
        let containment = JobContainment::new("test", &format!("job-{}", std::process::id()), None);
        // The shell exits at once; its setsid'd child lives on, out of
        // this process's tree and session, found only by the marker.
        let status = Command::new("sh")
            .arg("-c")
            .arg("setsid sleep 300 >/dev/null 2>&1 < /dev/null &")
            .env(JOB_MARKER_ENV, &containment.marker)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert!(settle(Duration::from_secs(10), || !containment
            .members(None)
            .is_empty()));
        let members = containment.members(None);
        assert_eq!(members.len(), 1, "{members:?}");
        assert_eq!(containment.kill_all(None), 1);
        assert!(containment.members(None).is_empty());
    }
}
