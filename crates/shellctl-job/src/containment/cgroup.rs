//! Control groups: finding what the host offers (v1 or v2, which
//! controllers, where this process may create groups), making a job's
//! groups with their limits, and the group-side operations: list members,
//! kill them all, count OOM kills, remove the groups.
//!
//! Job groups live under the server's own group in each hierarchy, in a
//! directory of this server's (`shellctl-<instance>`), so that servers on
//! one host, and the host's own groups, never meet:
//!
//! ```text
//! <mount>/<server's own group>/shellctl-<instance>/<job id>/
//! ```
//!
//! On v1 each controller has its own hierarchy, and a job joins only those
//! it needs: one to track its processes (`pids` when present), `freezer` to
//! stop them all at once before the kill, and those of the limits it asked
//! for. On v2 one group does everything; `cgroup.kill` ends it at once.
//!
//! All of it is small file I/O under `/sys/fs/cgroup`.

use serde::{Deserialize, Serialize};
use shellctl_proto::{LimitKind, ResourceLimits};
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a kill waits for a group to freeze, and then to empty.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// CFS period used for `cpu_max` (the kernel's default).
const CPU_PERIOD_MICROS: u64 = 100_000;

/// Which cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// A controller shellctl uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    /// Process counting and `pids.max`.
    Pids,
    /// Memory accounting and limits, OOM counts.
    Memory,
    /// CPU bandwidth limits.
    Cpu,
    /// Freezing a group (v1's `freezer`; v2's `cgroup.freeze` is built in).
    Freezer,
}

impl Controller {
    /// Every controller shellctl uses.
    pub const ALL: [Controller; 4] = [
        Controller::Pids,
        Controller::Memory,
        Controller::Cpu,
        Controller::Freezer,
    ];

    /// The kernel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Freezer => "freezer",
        }
    }

    fn for_limit(kind: LimitKind) -> Controller {
        match kind {
            LimitKind::Memory => Controller::Memory,
            LimitKind::Pids => Controller::Pids,
            LimitKind::Cpu => Controller::Cpu,
        }
    }
}

/// One hierarchy this process can create groups in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    /// The controllers it carries that shellctl uses (none: tracking only).
    controllers: Vec<Controller>,
    /// This process's own group in it, under which job groups go.
    own_group: PathBuf,
}

/// What the host's cgroups offer this process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupSupport {
    version: Option<CgroupVersion>,
    hierarchies: Vec<Hierarchy>,
    notes: Vec<String>,
}

impl CgroupSupport {
    /// Reads the host's cgroup mounts and this process's groups, without
    /// creating anything. A hierarchy counts when this process may write
    /// its own group's directory.
    pub fn detect() -> CgroupSupport {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let groups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Self::from_tables(&mounts, &groups, writable)
    }

    /// [`detect`](Self::detect) over the given `mountinfo` and
    /// `/proc/self/cgroup` texts; `usable` says whether a group directory
    /// may be written.
    fn from_tables(
        mountinfo: &str,
        own_groups: &str,
        usable: impl Fn(&Path) -> bool,
    ) -> CgroupSupport {
        let mounts = parse_mounts(mountinfo);
        let mut v1 = Vec::new();
        let mut v2 = None;
        let mut notes = Vec::new();
        for line in own_groups.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(names), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if names.is_empty() {
                if let Some(mount) = mounts.iter().find(|m| m.version == CgroupVersion::V2) {
                    v2 = Some(mount.group_dir(path));
                }
                continue;
            }
            let names: Vec<&str> = names.split(',').collect();
            let controllers: Vec<Controller> = Controller::ALL
                .into_iter()
                .filter(|c| names.contains(&c.name()))
                .collect();
            if controllers.is_empty() {
                continue;
            }
            let Some(mount) = mounts.iter().find(|m| {
                m.version == CgroupVersion::V1
                    && names.iter().all(|n| m.options.iter().any(|o| o == n))
            }) else {
                continue;
            };
            let own_group = mount.group_dir(path);
            if usable(&own_group) {
                v1.push(Hierarchy {
                    controllers,
                    own_group,
                });
            } else {
                notes.push(format!(
                    "{} is not writable: no {} groups",
                    own_group.display(),
                    names.join(",")
                ));
            }
        }
        // v2 wins when it carries controllers (a unified host); a hybrid
        // host's empty v2 tree is used only when v1 offers nothing.
        let v2 = v2.filter(|group| usable(group)).map(|own_group| {
            let listed =
                fs::read_to_string(own_group.join("cgroup.controllers")).unwrap_or_default();
            let mut controllers: Vec<Controller> = Controller::ALL
                .into_iter()
                .filter(|c| listed.split_whitespace().any(|n| n == c.name()))
                .collect();
            controllers.push(Controller::Freezer);
            Hierarchy {
                controllers,
                own_group,
            }
        });
        match v2 {
            Some(unified) if unified.controllers.len() > 1 || v1.is_empty() => CgroupSupport {
                version: Some(CgroupVersion::V2),
                hierarchies: vec![unified],
                notes,
            },
            _ if !v1.is_empty() => CgroupSupport {
                version: Some(CgroupVersion::V1),
                hierarchies: v1,
                notes,
            },
            _ => {
                notes.push("no writable cgroup hierarchy".into());
                CgroupSupport {
                    version: None,
                    hierarchies: Vec::new(),
                    notes,
                }
            }
        }
    }

    /// A support over one v2 group directory (for tests on a host with a
    /// spare unified hierarchy).
    pub fn unified_at(own_group: PathBuf) -> CgroupSupport {
        CgroupSupport {
            version: Some(CgroupVersion::V2),
            hierarchies: vec![Hierarchy {
                controllers: vec![Controller::Freezer],
                own_group,
            }],
            notes: Vec::new(),
        }
    }

    /// The cgroup version in use, if any hierarchy is usable.
    pub fn version(&self) -> Option<CgroupVersion> {
        self.version
    }

    /// Whether `controller` is usable.
    pub fn has(&self, controller: Controller) -> bool {
        self.hierarchies
            .iter()
            .any(|h| h.controllers.contains(&controller))
    }

    /// The usable controllers.
    pub fn controllers(&self) -> Vec<Controller> {
        Controller::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .collect()
    }

    /// The server's own group in each usable hierarchy.
    pub fn own_groups(&self) -> Vec<&Path> {
        self.hierarchies
            .iter()
            .map(|h| h.own_group.as_path())
            .collect()
    }

    /// Why something is not usable, in words.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The first limit of `limits` whose controller is missing.
    pub fn unsupported(&self, limits: &ResourceLimits) -> Option<LimitKind> {
        limits
            .requested()
            .find(|kind| !self.has(Controller::for_limit(*kind)))
    }

    /// Makes the instance directory in every usable hierarchy (and, on v2,
    /// hands the controllers down to it). A hierarchy where that fails is
    /// dropped, with a note.
    #[must_use]
    pub fn prepare(mut self, instance: &str) -> CgroupSupport {
        let name = instance_dir_name(instance);
        let mut notes = Vec::new();
        let version = self.version;
        self.hierarchies.retain_mut(|h| {
            let base = h.own_group.join(&name);
            if let Err(err) = create_dir(&base) {
                notes.push(format!("creating {}: {err}", base.display()));
                return false;
            }
            if version == Some(CgroupVersion::V2) {
                h.controllers
                    .retain(|c| *c == Controller::Freezer || enable_v2(&h.own_group, &base, *c));
            }
            h.own_group = base;
            true
        });
        if self.hierarchies.is_empty() {
            self.version = None;
        }
        self.notes.extend(notes);
        self
    }

    /// Makes job `job`'s groups (the support must be
    /// [`prepare`](Self::prepare)d) with `limits` written, in the
    /// hierarchies it needs. On failure nothing is left behind; a limit
    /// the kernel refuses fails with [`ErrorKind::InvalidInput`].
    pub fn create_job_groups(
        &self,
        job: &str,
        limits: &ResourceLimits,
    ) -> io::Result<Option<JobGroups>> {
        let Some(version) = self.version else {
            return Ok(None);
        };
        let mut groups = JobGroups {
            version,
            dirs: Vec::new(),
            tracking: PathBuf::new(),
            freezer: None,
            memory: None,
        };
        let needed: Vec<Controller> = limits.requested().map(Controller::for_limit).collect();
        let mut tracked = false;
        for (index, h) in self.hierarchies.iter().enumerate() {
            let tracks = !tracked
                && (h.controllers.contains(&Controller::Pids)
                    || !self.hierarchies[index + 1..]
                        .iter()
                        .any(|later| later.controllers.contains(&Controller::Pids)));
            let freezes = h.controllers.contains(&Controller::Freezer) && groups.freezer.is_none();
            let limits_here = needed.iter().any(|c| h.controllers.contains(c));
            if !(tracks || freezes || limits_here) {
                continue;
            }
            let dir = h.own_group.join(job);
            if let Err(err) = create_dir(&dir) {
                let _cleaned = groups.remove();
                return Err(err);
            }
            groups.dirs.push(dir.clone());
            if tracks {
                tracked = true;
                groups.tracking.clone_from(&dir);
            }
            if freezes {
                groups.freezer = Some(dir.clone());
            }
            if h.controllers.contains(&Controller::Memory) && limits.memory_max_bytes.is_some() {
                groups.memory = Some(dir.clone());
            }
            if let Err(err) = write_limits(version, &dir, &h.controllers, limits) {
                let _cleaned = groups.remove();
                // The kernel refusing a value (above what the parent group
                // allows, say) is the request's fault, not the server's.
                return Err(match err.raw_os_error() {
                    Some(code)
                        if code == nix::errno::Errno::EINVAL as i32
                            || code == nix::errno::Errno::EBUSY as i32 =>
                    {
                        io::Error::new(
                            ErrorKind::InvalidInput,
                            format!("the host's cgroups refused the limit: {err}"),
                        )
                    }
                    _ => err,
                });
            }
        }
        Ok(Some(groups))
    }
}

/// The directory name of a server instance's groups (public for
/// `shellctl doctor`, which says where they would go).
pub fn instance_dir_name(instance: &str) -> String {
    format!("shellctl-{instance}")
}

/// Hands `controller` down from `own` to `base` on v2 (both levels'
/// `cgroup.subtree_control`). Fails when `own` holds processes, which v2
/// forbids for a group that hands controllers down (unless it is the root).
fn enable_v2(own: &Path, base: &Path, controller: Controller) -> bool {
    let entry = format!("+{}", controller.name());
    fs::write(own.join("cgroup.subtree_control"), &entry).is_ok()
        && fs::write(base.join("cgroup.subtree_control"), &entry).is_ok()
}

fn write_limits(
    version: CgroupVersion,
    dir: &Path,
    controllers: &[Controller],
    limits: &ResourceLimits,
) -> io::Result<()> {
    if controllers.contains(&Controller::Memory)
        && let Some(bytes) = limits.memory_max_bytes
    {
        match version {
            CgroupVersion::V1 => {
                fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                // With swap, the limit alone lets the job swap instead of
                // meeting it; memory+swap at the same value keeps it real.
                write_if_present(&dir.join("memory.memsw.limit_in_bytes"), &bytes.to_string())?;
            }
            CgroupVersion::V2 => {
                fs::write(dir.join("memory.max"), bytes.to_string())?;
                write_if_present(&dir.join("memory.swap.max"), "0")?;
            }
        }
    }
    if controllers.contains(&Controller::Pids)
        && let Some(pids) = limits.pids_max
    {
        fs::write(dir.join("pids.max"), pids.to_string())?;
    }
    if controllers.contains(&Controller::Cpu)
        && let Some(cores) = limits.cpu_max
    {
        let quota = cpu_quota_micros(cores);
        match version {
            CgroupVersion::V1 => {
                fs::write(dir.join("cpu.cfs_period_us"), CPU_PERIOD_MICROS.to_string())?;
                fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
            }
            CgroupVersion::V2 => {
                fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_MICROS}"))?;
            }
        }
    }
    Ok(())
}

/// The CFS quota for `cores` cores per period (at least the kernel's
/// minimum of 1 ms).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn cpu_quota_micros(cores: f64) -> u64 {
    const PERIOD: f64 = 100_000.0;
    const _: () = assert!(CPU_PERIOD_MICROS == 100_000);
    // `cores` is validated to 0.01..=1024, so the product fits.
    ((cores * PERIOD).round() as u64).max(1000)
}

fn write_if_present(path: &Path, value: &str) -> io::Result<()> {
    match fs::write(path, value) {
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A job's groups, as recorded in its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobGroups {
    /// The interface they belong to.
    pub version: CgroupVersion,
    /// Every group the job's processes join (one per hierarchy on v1).
    pub dirs: Vec<PathBuf>,
    /// The group whose `cgroup.procs` lists the job's processes.
    pub tracking: PathBuf,
    /// The group to freeze before the kill, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freezer: Option<PathBuf>,
    /// The group with the job's memory limit, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PathBuf>,
}

impl JobGroups {
    /// The `cgroup.procs` file of every group, which a process joins by
    /// writing `0` to.
    pub fn procs_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs"))
    }

    /// The processes in the job's groups now. A group already removed has
    /// none.
    pub fn members(&self) -> Vec<u32> {
        read_pids(&self.tracking.join("cgroup.procs"))
    }

    /// Sends `signal` to every member; returns how many got it.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> usize {
        self.members()
            .into_iter()
            .filter(|pid| super::send(*pid, signal))
            .count()
    }

    /// Kills every member and waits (at most `SETTLE_LIMIT`, 5 s) until the
    /// group is empty. Returns how many processes it killed. The group is
    /// frozen first where it can be, so that nothing forks while the
    /// members are listed and killed.
    pub fn kill_all(&self) -> usize {
        // An empty group stays empty (only a member forks into it, and a
        // join from outside races a kill either way), and on v1 a freeze
        // is not free: the first frozen group on the host flips a kernel
        // static key, which patches code on every CPU. A script that ended
        // with its job leaves the group empty at every natural exit.
        if self.members().is_empty() {
            return 0;
        }
        let mut killed = std::collections::HashSet::new();
        if self.version == CgroupVersion::V2 && self.tracking.join("cgroup.kill").exists() {
            killed.extend(self.members());
            let _written = fs::write(self.tracking.join("cgroup.kill"), "1");
        } else {
            let frozen = self.freeze(true);
            let deadline = Instant::now() + SETTLE_LIMIT;
            // Unfrozen, a member may fork between the listing and the
            // kill; the loop takes the newcomers too.
            loop {
                let members = self.members();
                let fresh: Vec<u32> = members
                    .into_iter()
                    .filter(|pid| !killed.contains(pid) || !frozen)
                    .collect();
                if fresh.is_empty() || Instant::now() > deadline {
                    break;
                }
                for pid in fresh {
                    super::send(pid, nix::sys::signal::Signal::SIGKILL);
                    killed.insert(pid);
                }
                if frozen {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            // Thawed even when the freeze did not settle in time: the
            // write may have taken effect late, and a frozen process
            // cannot act on its SIGKILL.
            if self.freezer.is_some() {
                self.freeze(false);
            }
        }
        super::settle(SETTLE_LIMIT, || self.members().is_empty());
        killed.len()
    }

    /// Freezes (or thaws) the group; `true` once frozen.
    fn freeze(&self, frozen: bool) -> bool {
        let Some(dir) = &self.freezer else {
            return false;
        };
        let (file, value, done) = match (self.version, frozen) {
            (CgroupVersion::V1, true) => ("freezer.state", "FROZEN", "FROZEN"),
            (CgroupVersion::V1, false) => ("freezer.state", "THAWED", "THAWED"),
            (CgroupVersion::V2, true) => ("cgroup.freeze", "1", "frozen 1"),
            (CgroupVersion::V2, false) => ("cgroup.freeze", "0", "frozen 0"),
        };
        if fs::write(dir.join(file), value).is_err() {
            return false;
        }
        let state_file = match self.version {
            CgroupVersion::V1 => dir.join("freezer.state"),
            CgroupVersion::V2 => dir.join("cgroup.events"),
        };
        super::settle(SETTLE_LIMIT, || {
            fs::read_to_string(&state_file).is_ok_and(|state| state.contains(done))
        })
    }

    /// How many times the OOM killer acted in the job's memory group.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else {
            return 0;
        };
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Removes the groups (they must be empty); ones already gone are
    /// fine. Tries every group and reports the first failure.
    pub fn remove(&self) -> io::Result<()> {
        let mut outcome = Ok(());
        for dir in &self.dirs {
            match fs::remove_dir(dir) {
                Err(err) if err.kind() != ErrorKind::NotFound && outcome.is_ok() => {
                    outcome = Err(io::Error::new(
                        err.kind(),
                        format!("removing {}: {err}", dir.display()),
                    ));
                }
                _ => {}
            }
        }
        outcome
    }
}

/// The instance groups' subdirectories that no `keep` job owns: job
/// groups left by jobs deleted while their removal failed. Each is
/// emptied and removed; returns how many processes that killed.
pub fn sweep_orphans(support: &CgroupSupport, keep: &dyn Fn(&str) -> bool) -> usize {
    let mut killed = 0;
    let Some(version) = support.version else {
        return 0;
    };
    for h in &support.hierarchies {
        let Ok(entries) = fs::read_dir(&h.own_group) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !entry.path().is_dir() || keep(name) {
                continue;
            }
            let dir = entry.path();
            let orphan = JobGroups {
                version,
                dirs: vec![dir.clone()],
                tracking: dir.clone(),
                freezer: h
                    .controllers
                    .contains(&Controller::Freezer)
                    .then(|| dir.clone()),
                memory: None,
            };
            killed += orphan.kill_all();
            // A group that cannot go now is tried again at the next sweep.
            let _removed = orphan.remove();
        }
    }
    killed
}

fn read_pids(path: &Path) -> Vec<u32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect()
}

fn create_dir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Whether this process may create entries in `dir`.
fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// A cgroup mount from `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The hierarchy's directory mounted here (field 4): `/` on a host, a
    /// container's own group where only that is mounted.
    root: String,
    point: PathBuf,
    version: CgroupVersion,
    options: Vec<String>,
}

impl Mount {
    /// The directory of `group`, a path from `/proc/self/cgroup`, under
    /// this mount: the part of it the mount's root already covers is
    /// dropped.
    fn group_dir(&self, group: &str) -> PathBuf {
        let root = self.root.trim_end_matches('/');
        let inside = match group.strip_prefix(root) {
            Some(rest) if root.is_empty() || rest.is_empty() || rest.starts_with('/') => rest,
            _ => group,
        };
        self.point.join(inside.trim_start_matches('/'))
    }
}

/// The cgroup mounts of a `mountinfo` text: field 4 is the mounted root,
/// field 5 the mount point;
/// after the ` - ` separator come the type, the source and the
/// superblock options (which name a v1 hierarchy's controllers).
fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut fields = before.split(' ').skip(3);
            let root = unescape_mount_point(fields.next()?);
            let point = fields.next()?;
            let mut tail = after.split(' ');
            let version = match tail.next()? {
                "cgroup" => CgroupVersion::V1,
                "cgroup2" => CgroupVersion::V2,
                _ => return None,
            };
            let _source = tail.next();
            let options = tail
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect();
            Some(Mount {
                root,
                point: PathBuf::from(unescape_mount_point(point)),
                version,
                options,
            })
        })
        .collect()
}

/// `mountinfo` writes spaces and a few other bytes as octal escapes.
fn unescape_mount_point(raw: &str) -> String {
    raw.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 30 0:29 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";
    const HYBRID_GROUPS: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/box/7
2:cpu,cpuacct:/
0::/
";

    #[test]
    fn a_v1_host_offers_each_mounted_controller_under_the_own_group() {
        let support = CgroupSupport::from_tables(HYBRID_MOUNTS, HYBRID_GROUPS, |_| true);
        assert_eq!(support.version(), Some(CgroupVersion::V1));
        assert_eq!(support.controllers(), Controller::ALL.to_vec());
        assert!(
            support
                .own_groups()
                .contains(&Path::new("/sys/fs/cgroup/memory/box/7"))
        );
        assert!(
            support
                .own_groups()
                .contains(&Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
    }

    #[test]
    fn an_unwritable_hierarchy_is_left_out_with_a_note() {
        let support = CgroupSupport::from_tables(HYBRID_MOUNTS, HYBRID_GROUPS, |path| {
            !path.starts_with("/sys/fs/cgroup/memory")
        });
        assert!(!support.has(Controller::Memory));
        assert!(support.has(Controller::Pids));
        assert!(support.notes().iter().any(|n| n.contains("memory")));
        let limits = ResourceLimits {
            memory_max_bytes: Some(64 << 20),
            ..ResourceLimits::default()
        };
        assert_eq!(support.unsupported(&limits), Some(LimitKind::Memory));
    }

    #[test]
    fn no_cgroup_mount_means_no_support() {
        let support = CgroupSupport::from_tables("", "0::/\n", |_| true);
        assert_eq!(support.version(), None);
        assert!(support.controllers().is_empty());
        let limits = ResourceLimits {
            pids_max: Some(8),
            ..ResourceLimits::default()
        };
        assert_eq!(support.unsupported(&limits), Some(LimitKind::Pids));
    }

    #[test]
    fn a_unified_host_without_v1_uses_v2() {
        let mounts = "31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let support = CgroupSupport::from_tables(mounts, "0::/user.slice/x.scope\n", |_| true);
        assert_eq!(support.version(), Some(CgroupVersion::V2));
        assert_eq!(
            support.own_groups(),
            vec![Path::new("/sys/fs/cgroup/user.slice/x.scope")]
        );
        assert!(support.has(Controller::Freezer));
    }

    #[test]
    fn a_container_mount_of_its_own_group_is_not_joined_twice() {
        // A container sees only its group mounted, while its
        // /proc/self/cgroup still names the full path from the host's root.
        let mounts = "\
40 30 0:28 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 30 0:29 /docker/abc /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
";
        let groups = "8:pids:/docker/abc/inner\n6:freezer:/docker/abc\n";
        let support = CgroupSupport::from_tables(mounts, groups, |_| true);
        assert_eq!(
            support.own_groups(),
            vec![
                Path::new("/sys/fs/cgroup/pids/inner"),
                Path::new("/sys/fs/cgroup/freezer")
            ]
        );
        // A namespaced view names groups from the mount's root already.
        let support = CgroupSupport::from_tables(mounts, "8:pids:/\n", |_| true);
        assert_eq!(support.own_groups(), vec![Path::new("/sys/fs/cgroup/pids")]);
        // A sibling whose name only starts like the root is not under it.
        let support = CgroupSupport::from_tables(mounts, "8:pids:/docker/abcd\n", |_| true);
        assert_eq!(
            support.own_groups(),
            vec![Path::new("/sys/fs/cgroup/pids/docker/abcd")]
        );
    }

    #[test]
    fn cpu_quota_is_a_share_of_the_period_with_a_floor() {
        assert_eq!(cpu_quota_micros(0.5), 50_000);
        assert_eq!(cpu_quota_micros(2.0), 200_000);
        assert_eq!(cpu_quota_micros(0.001), 1000);
    }

    #[test]
    fn escaped_mount_points_are_read_back() {
        assert_eq!(unescape_mount_point("/a\\040b"), "/a b");
    }
}
