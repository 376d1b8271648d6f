//! `shellctl doctor`: checks that this machine can run the job server on a
//! given state layout, and says what to fix.
//!
//! Every check is split in two: gathering facts (running `tmux -V`,
//! `stat`, `statvfs`, reading `/proc`, counting live jobs in SQLite,
//! detecting cgroups) and a pure judgement of those facts
//! ([`judge_tmux`], [`judge_dir`], [`judge_inotify`], [`judge_disk`],
//! [`judge_cgroups`], …), so the rules are tested with injected numbers
//! and the gathering stays thin. The doctor changes nothing: it creates no
//! directory or cgroup and opens the database read-only.
//!
//! A [`Check`] is `ok`, `warn` (worth knowing, the server runs) or `FAIL`
//! (the server will not start, or jobs will fail or be exposed); warnings
//! and failures name their fix. [`Report::has_failures`] decides the
//! command's exit code.

use crate::tmux::MIN_TMUX_VERSION;
use crate::watcher::{FIXED_WATCHES, INOTIFY_INSTANCES, WATCHES_PER_LIVE_JOB};
use shellctl_job::containment::{self, CgroupSupport, CgroupVersion, Controller};
use shellctl_job::{StateLayout, Store, StoreError};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Below this much free space on the state dir's filesystem the doctor
/// fails: job logs and SQLite's WAL would soon fill it, and a job whose
/// log cannot be written fails.
pub const MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;

/// Watches beyond the live jobs' needs below which the doctor warns: room
/// for this many more concurrent jobs.
pub const HEADROOM_JOBS: u64 = 256;

/// The longest socket path tmux can bind: `sun_path` holds 108 bytes,
/// the terminating NUL included.
pub const MAX_SOCKET_PATH: usize = 107;

/// The permission bits of group and others, which private state must not
/// have.
const GROUP_OTHER_BITS: u32 = 0o077;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Ok,
    /// Worth knowing; the server runs anyway.
    Warn,
    /// Must be fixed: the server will not start, jobs will fail, or state
    /// is exposed.
    Fail,
}

impl Verdict {
    /// The word printed at the start of the check's line.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`tmux`, `state dir`, …).
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about it (warnings and failures).
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check's outcome, in the order they ran, for one state layout.
#[derive(Debug, Clone)]
pub struct Report {
    /// The state directory examined.
    pub state_dir: PathBuf,
    /// The runtime directory examined.
    pub runtime_dir: PathBuf,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any check failed (the command then exits non-zero).
    pub fn has_failures(&self) -> bool {
        self.count(Verdict::Fail) > 0
    }

    /// How many checks came out `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

impl fmt::Display for Report {
    /// One line per check (`ok` / `warn` / `FAIL`, the check, the detail),
    /// a `fix:` line under each warning and failure, and a closing line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shellctl doctor")?;
        writeln!(f, "  state dir:   {}", self.state_dir.display())?;
        writeln!(f, "  runtime dir: {}", self.runtime_dir.display())?;
        for check in &self.checks {
            writeln!(
                f,
                "{:<5} {:<13} {}",
                check.verdict.label(),
                check.name,
                check.detail
            )?;
            if let Some(fix) = &check.fix {
                writeln!(f, "{:<19} fix: {fix}", "")?;
            }
        }
        let (fails, warns) = (self.count(Verdict::Fail), self.count(Verdict::Warn));
        if fails == 0 {
            writeln!(f, "result: ok ({warns} warning(s))")
        } else {
            writeln!(
                f,
                "result: {fails} problem(s) to fix, {warns} warning(s); see the FAIL lines"
            )
        }
    }
}

/// Runs every check for `layout` (the directories `shellctl serve` would
/// use), finding tmux on `search_path` (a `PATH` value).
pub fn examine(layout: &StateLayout, search_path: Option<&OsStr>) -> Report {
    let uid = nix::unistd::geteuid().as_raw();
    let live_jobs = live_jobs(layout);
    let mut checks = vec![
        tmux_check(search_path),
        judge_dir(
            "state dir",
            "--state-dir",
            layout.state_dir(),
            &dir_state(layout.state_dir()),
            uid,
        ),
        judge_dir(
            "runtime dir",
            "--runtime-dir",
            layout.runtime_dir(),
            &dir_state(layout.runtime_dir()),
            uid,
        ),
        judge_socket_path(&layout.tmux_socket()),
        judge_database(&layout.database(), &live_jobs),
        judge_inotify(
            inotify_limits(),
            inotify_usage(uid),
            // No database yet: no jobs; an unreadable one: unknown.
            live_jobs.as_ref().ok().map(|live| live.unwrap_or(0)),
        ),
    ];
    checks.push(disk_check(layout.state_dir()));
    checks.push(judge_cgroups(&cgroup_facts(layout.state_dir())));
    Report {
        state_dir: layout.state_dir().to_owned(),
        runtime_dir: layout.runtime_dir().to_owned(),
        checks,
    }
}

// ---- tmux ----

/// Finds tmux on `search_path` and judges its `tmux -V`.
fn tmux_check(search_path: Option<&OsStr>) -> Check {
    let Some(tmux) = find_program("tmux", search_path) else {
        return judge_tmux(None, None);
    };
    let answer = std::process::Command::new(&tmux)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| err.to_string())
        .and_then(|out| {
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
            } else {
                Err(format!(
                    "`tmux -V` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        });
    judge_tmux(Some(&tmux), Some(answer))
}

/// The first executable file `name` in the directories of `search_path`.
fn find_program(name: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(search_path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The (major, minor) of a `tmux -V` answer: `tmux 3.3a`, `tmux 3.2-rc`,
/// `tmux next-3.4`, `tmux openbsd-7.4` (the last is OpenBSD's release,
/// not tmux's, and reads as no version).
pub fn parse_tmux_version(answer: &str) -> Option<(u32, u32)> {
    let version = answer.trim().strip_prefix("tmux ")?;
    let version = version.strip_prefix("next-").unwrap_or(version);
    let (major, rest) = version.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Judges tmux: `path` where it was found (`None`: not on the PATH), and
/// what `tmux -V` answered.
pub fn judge_tmux(path: Option<&Path>, answer: Option<Result<String, String>>) -> Check {
    let (min_major, min_minor) = MIN_TMUX_VERSION;
    let install = format!(
        "install tmux {min_major}.{min_minor} or newer (Debian/Ubuntu: apt-get install tmux) on the PATH shellctl serve runs with"
    );
    let (Some(path), Some(answer)) = (path, answer) else {
        return Check::fail("tmux", "tmux not found on the PATH", install);
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) => {
            return Check::fail(
                "tmux",
                format!("{} does not run: {err}", path.display()),
                install,
            );
        }
    };
    match parse_tmux_version(&answer) {
        Some(version) if version >= MIN_TMUX_VERSION => Check::ok(
            "tmux",
            format!(
                "{answer} at {} ({min_major}.{min_minor} or newer needed)",
                path.display()
            ),
        ),
        Some(_) => Check::fail(
            "tmux",
            format!(
                "{answer} at {} is too old ({min_major}.{min_minor} or newer needed)",
                path.display()
            ),
            install,
        ),
        None => Check::warn(
            "tmux",
            format!(
                "{} answers {answer:?}, which names no version this doctor can compare",
                path.display()
            ),
            format!(
                "make sure it is tmux {min_major}.{min_minor} or newer (a development build usually is)"
            ),
        ),
    }
}

// ---- directories ----

/// What is at a directory's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// Nothing yet; `serve` will create it under `ancestor`, the nearest
    /// existing one, if `ancestor_writable`.
    Missing {
        /// The nearest existing ancestor.
        ancestor: PathBuf,
        /// Whether this user may create entries in it.
        ancestor_writable: bool,
    },
    /// A directory.
    Present {
        /// Its permission bits.
        mode: u32,
        /// Its owner's uid.
        owner: u32,
        /// Whether this user may create entries in it.
        writable: bool,
    },
    /// Something that is not a directory.
    NotADirectory,
    /// It could not be looked at.
    Unreadable(String),
}

/// Looks at `path` (changing nothing).
fn dir_state(path: &Path) -> DirState {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => DirState::Present {
            mode: meta.permissions().mode() & 0o7777,
            owner: meta.uid(),
            writable: writable(path),
        },
        Ok(_) => DirState::NotADirectory,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let ancestor = nearest_existing(path);
            DirState::Missing {
                ancestor_writable: writable(&ancestor),
                ancestor,
            }
        }
        Err(err) => DirState::Unreadable(err.to_string()),
    }
}

/// Whether this user may create entries in the directory `path`.
fn writable(path: &Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(path, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

/// `path` itself or its nearest ancestor that exists (`/` at worst).
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|dir| dir.exists())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

/// Judges a state or runtime directory: it must be private (0700), owned
/// by this user (`uid`), and writable; or not exist yet, with an ancestor
/// `serve` can create it in. `flag` is the option that picks another.
pub fn judge_dir(name: &'static str, flag: &str, path: &Path, state: &DirState, uid: u32) -> Check {
    let shown = path.display();
    match state {
        DirState::Missing {
            ancestor,
            ancestor_writable: true,
        } => Check::ok(
            name,
            format!(
                "{shown} does not exist yet; it will be created (mode 0700) under {}",
                ancestor.display()
            ),
        ),
        DirState::Missing { ancestor, .. } => Check::fail(
            name,
            format!(
                "{shown} does not exist and cannot be created: {} is not writable by you",
                ancestor.display()
            ),
            format!(
                "create it for this user (as root: mkdir -p {shown} && chown {uid} {shown} && chmod 700 {shown}), or pick another {flag}"
            ),
        ),
        DirState::NotADirectory => Check::fail(
            name,
            format!("{shown} exists but is not a directory"),
            format!("move it out of the way, or pick another {flag}"),
        ),
        DirState::Unreadable(err) => Check::fail(
            name,
            format!("{shown} cannot be examined: {err}"),
            format!("check the permissions of its parent directories, or pick another {flag}"),
        ),
        DirState::Present {
            mode,
            owner,
            writable,
        } => {
            let mut problems = Vec::new();
            let mut fixes = Vec::new();
            if *owner != uid {
                problems.push(format!("owned by uid {owner}, not by you (uid {uid})"));
                fixes.push(format!(
                    "chown {uid} {shown} (or run shellctl as uid {owner})"
                ));
            }
            if mode & 0o777 != 0o700 {
                let why = if mode & GROUP_OTHER_BITS == 0 {
                    "must be exactly 0700"
                } else {
                    "group or others have access; it must be private, 0700"
                };
                problems.push(format!("mode {:04o}: {why}", mode & 0o777));
                fixes.push(format!("chmod 700 {shown}"));
            } else if !writable {
                problems.push("not writable by you".to_owned());
                fixes.push(format!("chmod 700 {shown}"));
            }
            if problems.is_empty() {
                Check::ok(
                    name,
                    format!("{shown}: mode 0700, owned by you (uid {uid}), writable"),
                )
            } else {
                Check::fail(
                    name,
                    format!("{shown}: {}", problems.join("; ")),
                    fixes.join(" and "),
                )
            }
        }
    }
}

/// Judges the length of the tmux socket's path: tmux cannot bind a longer
/// one than [`MAX_SOCKET_PATH`] bytes, and every job would fail to start.
pub fn judge_socket_path(socket: &Path) -> Check {
    let length = socket.as_os_str().as_bytes().len();
    if length <= MAX_SOCKET_PATH {
        Check::ok(
            "tmux socket",
            format!(
                "{} ({length} bytes; at most {MAX_SOCKET_PATH})",
                socket.display()
            ),
        )
    } else {
        Check::fail(
            "tmux socket",
            format!(
                "{} is {length} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                socket.display()
            ),
            "pick a shorter --runtime-dir (for example under /run/user/<uid> or /tmp)",
        )
    }
}

// ---- the database and its live jobs ----

/// Live jobs in the state dir's database: `None` when there is no
/// database yet.
fn live_jobs(layout: &StateLayout) -> Result<Option<u64>, StoreError> {
    let database = layout.database();
    if !database.exists() {
        return Ok(None);
    }
    let store = Store::open_read_only(&database)?;
    let live = store.live_jobs()?.len();
    Ok(Some(u64::try_from(live).unwrap_or(u64::MAX)))
}

/// Judges the database: absent is fine (the first start creates it);
/// present, it must be readable by this shellctl and private (0600).
fn judge_database(database: &Path, live_jobs: &Result<Option<u64>, StoreError>) -> Check {
    let shown = database.display();
    match live_jobs {
        Ok(None) => Check::ok(
            "database",
            format!("{shown} does not exist yet; the first start creates it"),
        ),
        Ok(Some(live)) => {
            let mode = std::fs::metadata(database).map_or(0o600, |m| m.permissions().mode());
            if mode & GROUP_OTHER_BITS == 0 {
                Check::ok("database", format!("{shown}: {live} live job(s)"))
            } else {
                Check::fail(
                    "database",
                    format!(
                        "{shown}: mode {:04o}: group or others can read the jobs' records",
                        mode & 0o777
                    ),
                    format!("chmod 600 {shown}"),
                )
            }
        }
        Err(err @ StoreError::NewerSchema { .. }) => Check::fail(
            "database",
            format!("{shown}: {err}"),
            "run the newer shellctl that wrote it, or pick another --state-dir",
        ),
        Err(err) => Check::fail(
            "database",
            format!("{shown} cannot be read: {err}"),
            "check that the file belongs to you with mode 0600 and is a shellctl database; or pick another --state-dir",
        ),
    }
}

// ---- inotify ----

/// The per-user inotify limits (`fs.inotify.max_user_watches` and
/// `fs.inotify.max_user_instances`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InotifyLimits {
    /// `fs.inotify.max_user_watches`.
    pub max_user_watches: u64,
    /// `fs.inotify.max_user_instances`.
    pub max_user_instances: u64,
}

/// What this user's processes hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InotifyUsage {
    /// inotify instances open.
    pub instances: u64,
    /// Watches on them.
    pub watches: u64,
}

/// The limits from `/proc/sys/fs/inotify`; `None` without inotify.
fn inotify_limits() -> Option<InotifyLimits> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(InotifyLimits {
        max_user_watches: read("max_user_watches")?,
        max_user_instances: read("max_user_instances")?,
    })
}

/// The inotify instances and watches held by processes of `uid`, from
/// `/proc/<pid>/fd` and `fdinfo` (the limits are per user, so other
/// programs' watches count against the server's). `None` if `/proc`
/// cannot be read.
fn inotify_usage(uid: u32) -> Option<InotifyUsage> {
    let mut usage = InotifyUsage::default();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let proc_dir = entry.path();
        let is_pid = entry.file_name().as_bytes().iter().all(u8::is_ascii_digit);
        if !is_pid || std::fs::metadata(&proc_dir).map_or(true, |m| m.uid() != uid) {
            continue;
        }
        // A process may exit or deny us while we look: skip it.
        let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let is_inotify = std::fs::read_link(fd.path())
                .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify");
            if !is_inotify {
                continue;
            }
            usage.instances += 1;
            if let Ok(info) = std::fs::read_to_string(proc_dir.join("fdinfo").join(fd.file_name()))
            {
                usage.watches += info
                    .lines()
                    .filter(|line| line.starts_with("inotify wd:"))
                    .count() as u64;
            }
        }
    }
    Some(usage)
}

/// inotify watches a server needs with `live_jobs` jobs running.
pub fn watches_needed(live_jobs: u64) -> u64 {
    FIXED_WATCHES.saturating_add(WATCHES_PER_LIVE_JOB.saturating_mul(live_jobs))
}

/// A `max_user_watches` to suggest for `needed` watches: room for
/// [`HEADROOM_JOBS`] more jobs, rounded up to a power of two, at least
/// 65536.
fn suggested_watches(needed: u64) -> u64 {
    needed
        .saturating_add(HEADROOM_JOBS * WATCHES_PER_LIVE_JOB)
        .next_power_of_two()
        .max(65_536)
}

/// The sysctl lines that set `name` to `value` now and at every boot.
fn sysctl_fix(name: &str, value: u64) -> String {
    format!(
        "as root: sysctl -w {name}={value}, and to keep it: echo {name}={value} > /etc/sysctl.d/60-shellctl.conf"
    )
}

/// Judges the inotify limits against a server with `live_jobs` running
/// (`None`: unknown, judged as none) and what this user's processes hold
/// now (`usage`, which includes a running server's own).
pub fn judge_inotify(
    limits: Option<InotifyLimits>,
    usage: Option<InotifyUsage>,
    live_jobs: Option<u64>,
) -> Check {
    let Some(limits) = limits else {
        return Check::fail(
            "inotify",
            "/proc/sys/fs/inotify is missing: this kernel has no inotify, which the server needs",
            "run shellctl on a Linux kernel built with inotify (CONFIG_INOTIFY_USER)",
        );
    };
    let jobs = live_jobs.unwrap_or(0);
    let needed = watches_needed(jobs);
    let jobs_text = match live_jobs {
        Some(jobs) => format!("{jobs} live job(s)"),
        None => "live jobs unknown, counted as none".to_owned(),
    };
    let needs = format!(
        "the server needs {needed} watch(es) ({FIXED_WATCHES} + {WATCHES_PER_LIVE_JOB} per live job; {jobs_text}) and {INOTIFY_INSTANCES} instances"
    );
    let limits_text = format!(
        "max_user_watches {}, max_user_instances {}",
        limits.max_user_watches, limits.max_user_instances
    );
    let usage_text = usage.map_or_else(String::new, |u| {
        format!(
            "; your processes hold {} watch(es) on {} instance(s) now",
            u.watches, u.instances
        )
    });
    let detail = format!("{limits_text}; {needs}{usage_text}");
    if limits.max_user_instances < INOTIFY_INSTANCES {
        return Check::fail(
            "inotify",
            detail,
            sysctl_fix("fs.inotify.max_user_instances", 128),
        );
    }
    if limits.max_user_watches < needed {
        return Check::fail(
            "inotify",
            detail,
            sysctl_fix("fs.inotify.max_user_watches", suggested_watches(needed)),
        );
    }
    let busy = usage.unwrap_or_default();
    let room_for_jobs = limits
        .max_user_watches
        .saturating_sub(needed.max(busy.watches))
        / WATCHES_PER_LIVE_JOB;
    if room_for_jobs < HEADROOM_JOBS {
        return Check::warn(
            "inotify",
            format!("{detail}; room for only {room_for_jobs} more concurrent job(s)"),
            sysctl_fix("fs.inotify.max_user_watches", suggested_watches(needed)),
        );
    }
    if busy.instances.saturating_add(INOTIFY_INSTANCES) > limits.max_user_instances {
        return Check::warn(
            "inotify",
            format!("{detail}; a new server may find no free instance"),
            sysctl_fix(
                "fs.inotify.max_user_instances",
                limits.max_user_instances.saturating_mul(2).max(128),
            ),
        );
    }
    Check::ok("inotify", detail)
}

// ---- disk ----

/// Free space on the filesystem of `state_dir` (or of its nearest existing
/// ancestor, where it will be created).
fn disk_check(state_dir: &Path) -> Check {
    let on = nearest_existing(state_dir);
    match nix::sys::statvfs::statvfs(&on) {
        Ok(stat) => judge_disk(
            &on,
            stat.blocks_available().saturating_mul(stat.fragment_size()),
        ),
        Err(err) => Check::warn(
            "disk",
            format!("free space on {} unknown: {err}", on.display()),
            "check it with df",
        ),
    }
}

/// Judges `free_bytes` available to this user on the filesystem of `on`:
/// under [`MIN_FREE_BYTES`] fails.
pub fn judge_disk(on: &Path, free_bytes: u64) -> Check {
    let mib = free_bytes / (1024 * 1024);
    let detail = format!("{mib} MiB free on the filesystem of {}", on.display());
    if free_bytes >= MIN_FREE_BYTES {
        Check::ok("disk", detail)
    } else {
        Check::fail(
            "disk",
            format!(
                "{detail} (at least {} MiB needed)",
                MIN_FREE_BYTES / (1024 * 1024)
            ),
            "free space there (ended jobs' logs go with `shellctl delete` or the GC), or pick a --state-dir on a filesystem with room",
        )
    }
}

// ---- cgroups ----

/// What the host's cgroups offer, as `shellctl serve` detects them
/// ([`CgroupSupport::detect`]), seen from this process: a server started
/// from the same place (shell, unit, container) sits in the same group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupFacts {
    /// The usable cgroup version, if any hierarchy is usable.
    pub version: Option<CgroupVersion>,
    /// The usable controllers among those shellctl uses.
    pub controllers: Vec<Controller>,
    /// Where job groups would go: the instance directory under this
    /// process's own group, in each usable hierarchy.
    pub job_groups_under: Vec<PathBuf>,
    /// Why something is not usable, in detection's words.
    pub notes: Vec<String>,
}

/// Detects the cgroups a server on `state_dir` would use; creates
/// nothing (the server makes its instance directory when it starts).
fn cgroup_facts(state_dir: &Path) -> CgroupFacts {
    let support = CgroupSupport::detect();
    let instance = containment::cgroup::instance_dir_name(&containment::instance_of(state_dir));
    CgroupFacts {
        version: support.version(),
        controllers: support.controllers(),
        job_groups_under: support
            .own_groups()
            .iter()
            .map(|group| group.join(&instance))
            .collect(),
        notes: support.notes().to_vec(),
    }
}

/// What a controller gives jobs, for the warning when it is missing.
fn controller_use(controller: Controller) -> &'static str {
    match controller {
        Controller::Pids => "limits.pids_max",
        Controller::Memory => "limits.memory_max_bytes and OOM reports",
        Controller::Cpu => "limits.cpu_max",
        Controller::Freezer => "freezing a job's processes before the kill",
    }
}

/// Judges the cgroups: never a failure, since without them the server
/// tracks jobs by an inherited marker and `/proc` scans; a missing
/// controller, or no usable hierarchy, is a warning naming what is lost.
pub fn judge_cgroups(facts: &CgroupFacts) -> Check {
    let notes = if facts.notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.notes.join("; "))
    };
    let Some(version) = facts.version else {
        return Check::warn(
            "cgroups",
            format!(
                "no cgroup hierarchy this user may create groups in{notes}: jobs are tracked by an inherited marker and /proc scans, and jobs asking for limits are refused"
            ),
            "run the server where it may create cgroups: a systemd unit with Delegate=yes (packaging/systemd), or a delegated, writable group",
        );
    };
    let version = match version {
        CgroupVersion::V1 => "v1",
        CgroupVersion::V2 => "v2",
    };
    let usable: Vec<&str> = facts.controllers.iter().map(|c| c.name()).collect();
    let under: Vec<String> = facts
        .job_groups_under
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    let detail = format!(
        "cgroup {version}, controllers: {}; job groups go under {}",
        if usable.is_empty() {
            "none".to_owned()
        } else {
            usable.join(", ")
        },
        under.join(", ")
    );
    let missing: Vec<Controller> = Controller::ALL
        .into_iter()
        .filter(|c| !facts.controllers.contains(c))
        .collect();
    if missing.is_empty() {
        return Check::ok("cgroups", detail);
    }
    let lost: Vec<String> = missing
        .iter()
        .map(|c| format!("{} ({})", c.name(), controller_use(*c)))
        .collect();
    Check::warn(
        "cgroups",
        format!("{detail}; missing {}{notes}", lost.join(", ")),
        "hand those controllers down to the server's group (systemd: Delegate=yes, the server alone in its unit; cgroup v2: enable them in the parent's cgroup.subtree_control; v1: mount their hierarchies)",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // judge_inotify takes the limits as read, which may be missing.
    #[allow(clippy::unnecessary_wraps)]
    fn limits(watches: u64, instances: u64) -> Option<InotifyLimits> {
        Some(InotifyLimits {
            max_user_watches: watches,
            max_user_instances: instances,
        })
    }

    #[test]
    fn tmux_versions_parse_with_suffixes_and_prefixes() {
        assert_eq!(parse_tmux_version("tmux 3.3a\n"), Some((3, 3)));
        assert_eq!(parse_tmux_version("tmux 3.2-rc"), Some((3, 2)));
        assert_eq!(parse_tmux_version("tmux next-3.6"), Some((3, 6)));
        assert_eq!(parse_tmux_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(parse_tmux_version("tmux 10.0"), Some((10, 0)));
        assert_eq!(parse_tmux_version("tmux master"), None);
        assert_eq!(parse_tmux_version("screen 4.0"), None);
    }

    #[test]
    fn tmux_older_than_the_minimum_or_missing_fails() {
        let path = Path::new("/usr/bin/tmux");
        let judge = |answer: &str| judge_tmux(Some(path), Some(Ok(answer.to_owned())));
        assert_eq!(judge("tmux 3.2").verdict, Verdict::Ok);
        assert_eq!(judge("tmux 3.3a").verdict, Verdict::Ok);
        let old = judge("tmux 3.1c");
        assert_eq!(old.verdict, Verdict::Fail);
        assert!(old.detail.contains("too old"), "{old:?}");
        assert!(old.fix.unwrap().contains("3.2 or newer"));
        assert_eq!(judge("tmux master").verdict, Verdict::Warn);
        let missing = judge_tmux(None, None);
        assert_eq!(missing.verdict, Verdict::Fail);
        assert!(missing.fix.unwrap().contains("install tmux"));
        let broken = judge_tmux(Some(path), Some(Err("exec format error".into())));
        assert_eq!(broken.verdict, Verdict::Fail);
    }

    #[test]
    fn a_private_directory_passes_and_an_open_one_names_chmod() {
        let dir = Path::new("/s");
        let present = |mode, owner, writable| DirState::Present {
            mode,
            owner,
            writable,
        };
        let good = judge_dir("state dir", "--state-dir", dir, &present(0o700, 7, true), 7);
        assert_eq!(good.verdict, Verdict::Ok, "{good:?}");
        let open = judge_dir("state dir", "--state-dir", dir, &present(0o755, 7, true), 7);
        assert_eq!(open.verdict, Verdict::Fail);
        assert!(open.detail.contains("0755"), "{open:?}");
        assert_eq!(open.fix.as_deref(), Some("chmod 700 /s"));
        let read_only = judge_dir(
            "state dir",
            "--state-dir",
            dir,
            &present(0o700, 7, false),
            7,
        );
        assert_eq!(read_only.verdict, Verdict::Fail);
        assert_eq!(read_only.fix.as_deref(), Some("chmod 700 /s"));
        let foreign = judge_dir("state dir", "--state-dir", dir, &present(0o700, 8, true), 7);
        assert_eq!(foreign.verdict, Verdict::Fail);
        assert!(foreign.fix.unwrap().starts_with("chown 7 /s"));
    }

    #[test]
    fn a_missing_directory_is_fine_when_it_can_be_created() {
        let dir = Path::new("/a/b/state");
        let creatable = DirState::Missing {
            ancestor: "/a".into(),
            ancestor_writable: true,
        };
        let check = judge_dir("state dir", "--state-dir", dir, &creatable, 0);
        assert_eq!(check.verdict, Verdict::Ok);
        assert!(check.detail.contains("will be created"), "{check:?}");
        let stuck = DirState::Missing {
            ancestor: "/a".into(),
            ancestor_writable: false,
        };
        let check = judge_dir("state dir", "--state-dir", dir, &stuck, 0);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.fix.unwrap().contains("--state-dir"));
    }

    #[test]
    fn socket_paths_longer_than_sun_path_fail() {
        let fits = PathBuf::from(format!("/{}", "r".repeat(MAX_SOCKET_PATH - 1)));
        assert_eq!(judge_socket_path(&fits).verdict, Verdict::Ok);
        let long = PathBuf::from(format!("/{}", "r".repeat(MAX_SOCKET_PATH)));
        let check = judge_socket_path(&long);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.fix.unwrap().contains("--runtime-dir"));
    }

    #[test]
    fn watches_short_of_the_live_jobs_fail_with_the_sysctl_fix() {
        // 1000 live jobs need 1001 watches; a limit of 1000 is short.
        let check = judge_inotify(limits(1000, 128), None, Some(1000));
        assert_eq!(check.verdict, Verdict::Fail, "{check:?}");
        assert!(check.detail.contains("needs 1001 watch"), "{check:?}");
        let fix = check.fix.unwrap();
        assert!(
            fix.contains("sysctl -w fs.inotify.max_user_watches=65536"),
            "{fix}"
        );
        assert!(fix.contains("/etc/sysctl.d/"), "{fix}");
        // Exactly enough runs, but leaves no room: a warning.
        let tight = judge_inotify(limits(1001, 128), None, Some(1000));
        assert_eq!(tight.verdict, Verdict::Warn, "{tight:?}");
        // Plenty.
        let roomy = judge_inotify(limits(8192, 128), Some(InotifyUsage::default()), Some(3));
        assert_eq!(roomy.verdict, Verdict::Ok, "{roomy:?}");
        // Other programs' watches count against the same per-user limit.
        let crowded = judge_inotify(
            limits(8192, 128),
            Some(InotifyUsage {
                instances: 5,
                watches: 8100,
            }),
            Some(3),
        );
        assert_eq!(crowded.verdict, Verdict::Warn, "{crowded:?}");
        // A big suggestion for a big need.
        let huge = judge_inotify(limits(8192, 128), None, Some(100_000));
        assert!(
            huge.fix
                .unwrap()
                .contains("fs.inotify.max_user_watches=131072")
        );
    }

    #[test]
    fn too_few_inotify_instances_or_none_at_all_fail() {
        let check = judge_inotify(limits(8192, 1), None, Some(0));
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check
                .fix
                .unwrap()
                .contains("fs.inotify.max_user_instances=128")
        );
        let busy = judge_inotify(
            limits(8192, 128),
            Some(InotifyUsage {
                instances: 127,
                watches: 0,
            }),
            None,
        );
        assert_eq!(busy.verdict, Verdict::Warn, "{busy:?}");
        assert_eq!(judge_inotify(None, None, None).verdict, Verdict::Fail);
    }

    #[test]
    fn disk_under_100_mib_fails() {
        let on = Path::new("/var/lib/shellctl");
        let short = judge_disk(on, MIN_FREE_BYTES - 1);
        assert_eq!(short.verdict, Verdict::Fail);
        assert!(short.detail.contains("99 MiB free"), "{short:?}");
        assert!(short.fix.unwrap().contains("--state-dir"));
        assert_eq!(judge_disk(on, MIN_FREE_BYTES).verdict, Verdict::Ok);
        assert_eq!(judge_disk(on, 0).verdict, Verdict::Fail);
    }

    #[test]
    fn a_missing_controller_or_no_cgroups_at_all_only_warns() {
        let all = CgroupFacts {
            version: Some(CgroupVersion::V2),
            controllers: Controller::ALL.to_vec(),
            job_groups_under: vec!["/sys/fs/cgroup/user.slice/shellctl-ab".into()],
            notes: Vec::new(),
        };
        let check = judge_cgroups(&all);
        assert_eq!(check.verdict, Verdict::Ok, "{check:?}");
        assert!(
            check
                .detail
                .contains("cgroup v2, controllers: pids, memory, cpu, freezer"),
            "{check:?}"
        );
        assert!(
            check
                .detail
                .contains("/sys/fs/cgroup/user.slice/shellctl-ab")
        );
        let no_memory = CgroupFacts {
            controllers: vec![Controller::Pids, Controller::Freezer],
            ..all.clone()
        };
        let check = judge_cgroups(&no_memory);
        assert_eq!(check.verdict, Verdict::Warn, "{check:?}");
        assert!(
            check
                .detail
                .contains("missing memory (limits.memory_max_bytes")
        );
        assert!(check.detail.contains("cpu (limits.cpu_max)"), "{check:?}");
        assert!(check.fix.unwrap().contains("Delegate=yes"));
        let none = CgroupFacts {
            notes: vec!["no writable cgroup hierarchy".into()],
            ..CgroupFacts::default()
        };
        let check = judge_cgroups(&none);
        assert_eq!(check.verdict, Verdict::Warn, "{check:?}");
        assert!(check.detail.contains("no writable cgroup hierarchy"));
        assert!(check.detail.contains("/proc scans"));
    }

    #[test]
    fn the_report_prints_one_line_per_check_and_fixes_under_problems() {
        let report = Report {
            state_dir: "/s".into(),
            runtime_dir: "/r".into(),
            checks: vec![
                Check::ok("tmux", "tmux 3.3a"),
                Check::fail("disk", "1 MiB free", "free space"),
            ],
        };
        let text = report.to_string();
        assert!(report.has_failures());
        assert!(text.contains("\nok    tmux          tmux 3.3a\n"), "{text}");
        assert!(
            text.contains("\nFAIL  disk          1 MiB free\n"),
            "{text}"
        );
        assert!(text.contains("fix: free space\n"), "{text}");
        assert!(text.ends_with("result: 1 problem(s) to fix, 0 warning(s); see the FAIL lines\n"));
    }
}
