//! Per-job resource limits and containment options of `run` (not in the
//! reference): the optional fields `memory_max_bytes`, `pids_max`,
//! `cpu_max` and `keep_background`, and their bounds.
//!
//! The limits are enforced by the kernel through the job's cgroup; a server
//! on a host without the controller refuses them (`422 unsupported_limit`)
//! rather than running the job unbounded.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// Smallest memory limit accepted: below it a shell cannot even start.
pub const MIN_MEMORY_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Largest `pids_max` accepted (the kernel's own ceiling, `PID_MAX_LIMIT`).
pub const MAX_PIDS_MAX: u32 = 4_194_304;
/// Smallest CPU limit accepted, in cores (1% of one core).
pub const MIN_CPU_MAX: f64 = 0.01;
/// Largest CPU limit accepted, in cores.
pub const MAX_CPU_MAX: f64 = 1024.0;

/// Which kernel controller a limit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `memory_max_bytes`: the memory controller.
    Memory,
    /// `pids_max`: the pids controller.
    Pids,
    /// `cpu_max`: the cpu controller.
    Cpu,
}

impl LimitKind {
    /// The request field that asks for the limit.
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory_max_bytes",
            LimitKind::Pids => "pids_max",
            LimitKind::Cpu => "cpu_max",
        }
    }

    /// The cgroup controller that enforces it.
    pub fn controller(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Pids => "pids",
            LimitKind::Cpu => "cpu",
        }
    }
}

/// The resource limits a job runs under. Every field is optional; none set
/// means no limit beyond the server's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Most memory (bytes) the job's processes may use together; past it the
    /// kernel's OOM killer ends one of them, and the job ends with
    /// `end_reason` `oom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max_bytes: Option<u64>,
    /// Most processes (and threads) the job may have at once; a `fork`
    /// beyond it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u32>,
    /// Most CPU time the job may use, as a fraction of one core (`0.5`: half
    /// a core, `2`: two cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<f64>,
}

impl ResourceLimits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.requested().next().is_none()
    }

    /// The limits that are set.
    pub fn requested(&self) -> impl Iterator<Item = LimitKind> {
        [
            self.memory_max_bytes.map(|_| LimitKind::Memory),
            self.pids_max.map(|_| LimitKind::Pids),
            self.cpu_max.map(|_| LimitKind::Cpu),
        ]
        .into_iter()
        .flatten()
    }

    /// Checks the bounds of every limit that is set.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(bytes) = self.memory_max_bytes
            && bytes < MIN_MEMORY_MAX_BYTES
        {
            return Err(ValidationError::new(
                "memory_max_bytes",
                format!("must be at least {MIN_MEMORY_MAX_BYTES}"),
            ));
        }
        if let Some(pids) = self.pids_max
            && !(1..=MAX_PIDS_MAX).contains(&pids)
        {
            return Err(ValidationError::new(
                "pids_max",
                format!("must be between 1 and {MAX_PIDS_MAX}"),
            ));
        }
        if let Some(cores) = self.cpu_max {
            crate::validate::float_in_range("cpu_max", cores, MIN_CPU_MAX, true, MAX_CPU_MAX)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_named() {
        let ok = ResourceLimits {
            memory_max_bytes: Some(64 << 20),
            pids_max: Some(32),
            cpu_max: Some(0.5),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.requested().count(), 3);
        let small = ResourceLimits {
            memory_max_bytes: Some(1024),
            ..ResourceLimits::default()
        };
        assert_eq!(small.validate().unwrap_err().field, "memory_max_bytes");
        let no_pids = ResourceLimits {
            pids_max: Some(0),
            ..ResourceLimits::default()
        };
        assert_eq!(no_pids.validate().unwrap_err().field, "pids_max");
        let no_cpu = ResourceLimits {
            cpu_max: Some(0.0),
            ..ResourceLimits::default()
        };
        assert_eq!(no_cpu.validate().unwrap_err().field, "cpu_max");
        assert!(ResourceLimits::default().is_empty());
    }
}
