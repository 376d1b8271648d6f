//! The server's guards around jobs: containment (every process of a job
//! tracked, in cgroups or by the inherited marker, and ended with it),
//! per-job resource limits, the cap on running jobs, the log cap handed to
//! each job's pipe side, and the disk-full rules.
//!
//! The mechanisms live in `shellctl-job` ([`shellctl_job::containment`]);
//! this module decides, per job, what to make and when to kill, and keeps
//! the blocking work off the async runtime.

use super::{Service, ServiceError, run_blocking};
use shellctl_job::containment::{self, CgroupSupport, JobContainment};
use shellctl_job::{InsertError, JobDir, StoreError};
use shellctl_proto::{JobId, ResourceLimits};
use std::io;

/// The log cap of jobs when the server is given none: 1 GiB.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 1 << 30;

/// The guards a server applies to its jobs (`shellctl serve` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobGuards {
    /// Most jobs starting or running at once (`--max-running-jobs`).
    pub max_running_jobs: Option<u32>,
    /// Most bytes of output kept per job (`--max-log-bytes`).
    pub max_log_bytes: Option<u64>,
    /// Track jobs in cgroups where the host allows (`--cgroups auto`);
    /// `false` uses the marker scan alone (`--cgroups off`).
    pub use_cgroups: bool,
}

impl Default for JobGuards {
    fn default() -> Self {
        JobGuards {
            max_running_jobs: None,
            max_log_bytes: Some(DEFAULT_MAX_LOG_BYTES),
            use_cgroups: true,
        }
    }
}

/// What the server found of the host's cgroups, prepared for its jobs.
#[derive(Debug)]
pub(super) struct Containment {
    /// This server's name among others on the host (from its state dir).
    pub(super) instance: String,
    /// The usable hierarchies, with the instance's directories made.
    pub(super) cgroups: CgroupSupport,
}

impl Containment {
    /// Detects the host's cgroups and makes this server's directories in
    /// them (blocking).
    pub(super) fn prepare(state_dir: &std::path::Path, use_cgroups: bool) -> Containment {
        let instance = containment::instance_of(state_dir);
        let cgroups = if use_cgroups {
            CgroupSupport::detect().prepare(&instance)
        } else {
            CgroupSupport::default()
        };
        if let Some(version) = cgroups.version() {
            tracing::info!(
                ?version,
                controllers = ?cgroups.controllers().iter().map(|c| c.name()).collect::<Vec<_>>(),
                "jobs are contained in cgroups"
            );
        } else {
            tracing::info!(
                notes = ?cgroups.notes(),
                "jobs are contained by an inherited marker and /proc scans (no usable cgroups)"
            );
        }
        Containment { instance, cgroups }
    }

    /// Refuses limits the host cannot enforce.
    pub(super) fn check(&self, limits: &ResourceLimits) -> Result<(), ServiceError> {
        match self.cgroups.unsupported(limits) {
            None => Ok(()),
            Some(kind) => {
                let why = if self.cgroups.version().is_none() {
                    "this server has no usable cgroups".to_owned()
                } else {
                    format!(
                        "the cgroup controller {:?} is not available to this server",
                        kind.controller()
                    )
                };
                Err(ServiceError::UnsupportedLimit(format!(
                    "{} cannot be enforced: {why}; run without it, or see `shellctl doctor`",
                    kind.field()
                )))
            }
        }
    }

    /// Makes job `job_id`'s groups (if the host offers them) with its
    /// limits, and says how the job is tracked.
    pub(super) fn create(
        &self,
        job_id: JobId,
        limits: &ResourceLimits,
    ) -> io::Result<JobContainment> {
        let groups = self.cgroups.create_job_groups(job_id.as_str(), limits)?;
        Ok(JobContainment::new(&self.instance, job_id.as_str(), groups))
    }

    /// Ends processes in this server's groups that no job owns any more
    /// (groups of jobs whose removal failed).
    pub(super) fn sweep(&self, owned: &dyn Fn(&str) -> bool) -> usize {
        containment::cgroup::sweep_orphans(&self.cgroups, owned)
    }
}

/// Kills every process of the job in `job_dir` and waits until they are
/// gone, then removes its groups. With `leftovers`, the job had ended, so
/// what was killed is counted as left behind. Returns how many it killed.
pub(super) fn end_processes(job_dir: &JobDir, leftovers: bool) -> io::Result<usize> {
    let spec = match job_dir.read_spec() {
        Ok(spec) => spec,
        // Deleted meanwhile: nothing of it to end here.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let Some(containment) = spec.containment else {
        return Ok(0);
    };
    let killed = containment.kill_all(job_dir.runner());
    if leftovers {
        job_dir.add_leftovers(killed)?;
    }
    containment.remove_groups()?;
    Ok(killed)
}

impl Service {
    /// [`end_processes`] on a blocking thread; a failure is logged, not
    /// returned: the caller's own outcome (an ended, deleted job) stands.
    pub(super) async fn end_processes(&self, job_id: JobId, leftovers: bool) {
        let job_dir = self.job_dir(job_id);
        match run_blocking(move || end_processes(&job_dir, leftovers)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(killed)) => tracing::info!(%job_id, killed, "ended the job's processes"),
            Ok(Err(err)) => tracing::warn!(%job_id, "ending the job's processes: {err}"),
            Err(err) => tracing::warn!(%job_id, "ending the job's processes: {err}"),
        }
    }
}

/// A failed insert as the service reports it.
pub(super) fn insert_error(err: InsertError, limit: Option<u32>) -> ServiceError {
    match err {
        InsertError::TooManyJobs { live } => ServiceError::TooManyJobs {
            running: live,
            limit: limit.unwrap_or_default(),
        },
        InsertError::KeyTaken(holder) => {
            ServiceError::Internal(format!("idempotency key held by {holder}"))
        }
        InsertError::Store(err) => store_error(err),
    }
}

/// A store failure, with a full disk told apart.
pub(super) fn store_error(err: StoreError) -> ServiceError {
    if err.is_disk_full() {
        ServiceError::InsufficientStorage(err.to_string())
    } else {
        ServiceError::Store(err)
    }
}

/// A filesystem failure, with a full disk told apart.
pub(super) fn io_error(err: io::Error) -> ServiceError {
    if shellctl_job::files::is_disk_full(&err) {
        ServiceError::InsufficientStorage(err.to_string())
    } else {
        ServiceError::Io(err)
    }
}
