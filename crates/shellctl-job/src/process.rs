//! Process identity: a pid together with the process's start time.
//!
//! A pid alone names a process only while it lives; after it dies the
//! kernel hands the number out again. The start time (in clock ticks since
//! boot, field 22 of `/proc/<pid>/stat`) never repeats for one pid within a
//! boot, so the pair identifies one process for as long as the machine is
//! up. Marker files record the pair; checkers compare it.

use std::fmt;
use std::fs;
use std::str::FromStr;

/// One process, as recorded in a marker file: `<pid> <start time>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

/// A marker that does not hold `<pid> <start time>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed process identity {0:?}")]
pub struct MalformedIdentity(pub String);

impl ProcessIdentity {
    /// The calling process. `None` only without a readable `/proc`.
    pub fn current() -> Option<ProcessIdentity> {
        Self::of(std::process::id())
    }

    /// The process running under `pid` now, if any.
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcessIdentity {
            pid,
            start_time: start_time_from_stat(&stat)?,
        })
    }

    /// Whether this very process still runs (same pid, same start time).
    pub fn is_alive(&self) -> bool {
        Self::of(self.pid).is_some_and(|now| now == *self)
    }
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn start_time_from_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; start time is field 22.
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

impl fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pid, self.start_time)
    }
}

impl FromStr for ProcessIdentity {
    type Err = MalformedIdentity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || MalformedIdentity(s.to_owned());
        let mut words = s.split_whitespace();
        let pid = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(malformed)?;
        let start_time = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(malformed)?;
        if words.next().is_some() {
            return Err(malformed());
        }
        Ok(ProcessIdentity { pid, start_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 1";
        assert_eq!(start_time_from_stat(stat), Some(98765));
        assert_eq!(start_time_from_stat("42 (x) S 1"), None);
    }

    #[test]
    fn the_current_process_is_alive_and_round_trips_through_text() {
        let me = ProcessIdentity::current().unwrap();
        assert!(me.is_alive());
        assert_eq!(me.to_string().parse::<ProcessIdentity>().unwrap(), me);
        assert!("12".parse::<ProcessIdentity>().is_err());
        assert!("12 3 4".parse::<ProcessIdentity>().is_err());
    }

    #[test]
    fn a_live_pid_with_another_start_time_is_another_process() {
        let me = ProcessIdentity::current().unwrap();
        let impostor = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!impostor.is_alive());
    }
}
