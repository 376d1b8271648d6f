//! The `/proc` scan behind the marker fallback: processes whose
//! environment holds a job's marker, or that belong to the job's terminal
//! session.

use crate::process::ProcessIdentity;
use std::fs;

/// Every process (but the caller) whose initial environment holds `entry`
/// (`NAME=value`, matched whole), or whose session is `session`.
pub(super) fn marked_or_in_session(entry: &[u8], session: Option<u32>) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            session.is_some_and(|session| session_of(*pid) == Some(session))
                || has_entry(*pid, entry)
        })
        .filter(|pid| ProcessIdentity::of(*pid).is_some_and(|process| !is_gone(process)))
        .collect()
}

/// Whether `/proc/<pid>/environ` holds `entry` as one whole variable.
fn has_entry(pid: u32, entry: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|byte| *byte == 0).any(|var| var == entry))
}

/// Field 6 (session) of `/proc/<pid>/stat`, counted after the command
/// name, which may hold spaces and parentheses.
fn session_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(6 - 3)?
        .parse()
        .ok()
}

/// Whether `process` has ended: gone, another process under its pid, or a
/// zombie waiting for its parent.
pub(super) fn is_gone(process: ProcessIdentity) -> bool {
    if !process.is_alive() {
        return true;
    }
    fs::read_to_string(format!("/proc/{}/stat", process.pid)).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            == Some("Z")
    })
}
