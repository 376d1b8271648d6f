//! Job groups on the host's real cgroups: a v1 group with a freezer, and a
//! v2 group (the unified hierarchy, whose `cgroup.kill` ends a job at once),
//! each holding a process that left its parent's session, all ended by
//! `kill_all` and removed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shellctl_job::containment::{CgroupSupport, CgroupVersion, JobContainment};
use shellctl_proto::ResourceLimits;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts `sh`, moves it into the job's groups, then lets it start a
/// `setsid` sleep (so the sleep is in the groups from its first
/// instruction) and exit.
fn escaped_sleep_in(containment: &JobContainment, tag: &str) {
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "read go; setsid sleep {tag} >/dev/null 2>&1 </dev/null &"
        ))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    for procs in containment.groups.as_ref().unwrap().procs_files() {
        std::fs::write(procs, shell.id().to_string()).unwrap();
    }
    shell.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(shell.wait().unwrap().success());
}

fn exercise(support: CgroupSupport, expected: CgroupVersion) {
    let instance = format!("test-{}", std::process::id());
    let support = support.prepare(&instance);
    assert_eq!(support.version(), Some(expected), "{:?}", support.notes());
    let job = format!("job-{expected:?}");
    let groups = support
        .create_job_groups(&job, &ResourceLimits::default())
        .unwrap();
    let containment = JobContainment::new(&instance, &job, groups);
    assert_eq!(containment.kind(), "cgroup");
    escaped_sleep_in(&containment, &format!("{}.{}", 4000, std::process::id()));
    let members = containment.members(None);
    assert_eq!(members.len(), 1, "only the sleep is left: {members:?}");
    assert_eq!(containment.kill_all(None), 1);
    assert!(containment.members(None).is_empty());
    containment.remove_groups().unwrap();
    for dir in &containment.groups.as_ref().unwrap().dirs {
        assert!(!dir.exists(), "{}", dir.display());
    }
    for base in support.own_groups() {
        std::fs::remove_dir(base).unwrap();
    }
}

#[test]
fn a_v1_job_group_is_frozen_killed_and_removed() {
    let support = CgroupSupport::detect();
    assert_eq!(
        support.version(),
        Some(CgroupVersion::V1),
        "this test needs a v1 host (as CI is): {:?}",
        support.notes()
    );
    exercise(support, CgroupVersion::V1);
}

#[test]
fn a_v2_job_group_is_killed_with_cgroup_kill_and_removed() {
    // A hybrid host mounts the unified hierarchy beside v1; a pure v2 host
    // has it at the root.
    let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|root| root.join("cgroup.subtree_control").exists())
        .expect("this test needs a mounted cgroup v2 hierarchy");
    exercise(
        CgroupSupport::unified_at(unified.to_owned()),
        CgroupVersion::V2,
    );
}
