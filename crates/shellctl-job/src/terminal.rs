//! A job's terminal read from the outside, from ground truth in `/proc`:
//! which processes hold the terminal's foreground, whether one of them is
//! asleep reading the terminal (so the job waits for input), the
//! terminal's line discipline mode, and the set of the job's processes for
//! signals.
//!
//! Everything starts at the runner, the terminal's session leader
//! ([`crate::runner`]); its identity is recorded in the job directory.
//!
//! - The terminal's foreground process group is field 8 (`tpgid`) of the
//!   runner's `/proc/<pid>/stat`; its members are found among the runner's
//!   descendants (`/proc/<pid>/task/<tid>/children`), with a scan of `/proc`
//!   only when none is (a member whose parent died).
//! - A member waits for input when one of its threads sleeps (`S`) in a
//!   read on the terminal, or in a poll-family call (poll, select, epoll)
//!   whose set holds the terminal for reading. The call and its arguments
//!   come from `/proc/<pid>/task/<tid>/syscall`; poll and select sets from
//!   `/proc/<pid>/mem`, epoll sets from `/proc/<pid>/fdinfo`. Where those
//!   need ptrace rights the server lacks (Yama's `ptrace_scope` ≥ 1), the
//!   kernel's wait channel (`wchan`) and the process's open descriptors
//!   stand in, less precisely (see `ProcessView::waits_by_wait_channel`);
//!   the probe records which ([`Evidence`]).
//! - The mode comes from `tcgetattr` on the terminal, opened through the
//!   runner's stdin without becoming anyone's controlling terminal.
//!
//! All of it is blocking file I/O; a probe of a job with a handful of
//! processes reads a few dozen small `/proc` files.

use crate::process::ProcessIdentity;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::stat::{major, minor};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;
use shellctl_proto::{InputKind, SignalName, SignalTarget};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};

/// Processes followed at most when walking a job's process tree.
const MAX_PROCESSES: usize = 4096;
/// Longest command line reported for the foreground process.
const MAX_COMMAND_BYTES: usize = 1024;
/// Most descriptors of a poll set read from a process's memory.
const MAX_POLL_FDS: u64 = 4096;
/// The device of `/dev/tty`, which stands for a process's controlling
/// terminal.
const DEV_TTY: (u64, u64) = (5, 0);

/// Why a job's terminal could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The runner is gone (the job has ended or is ending).
    #[error("the job's terminal is gone")]
    TerminalGone,
}

/// The process of the terminal's foreground worth naming: the one reading
/// the terminal if any, else the most recently started member of the
/// foreground group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForegroundProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command line, arguments joined by spaces (at most 1 KiB), or its
    /// name when the command line is empty.
    pub command: String,
}

/// How a waiting process waits on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCall {
    /// A `read` (or `readv`, `pread`) of the terminal.
    Read,
    /// A poll-family call (`poll`, `select`, `epoll_wait` and their
    /// variants) with the terminal in its read set.
    Poll,
}

/// What the finding that a process waits rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The system call and its arguments, read from `/proc`.
    Syscall,
    /// Without ptrace rights: the kernel's wait channel, and the terminal
    /// among the process's open descriptors.
    WaitChannel,
}

/// A foreground process asleep on the terminal, waiting for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalReader {
    /// The waiting process.
    pub pid: u32,
    /// How it waits.
    pub call: WaitCall,
    /// What says so.
    pub evidence: Evidence,
}

/// The terminal's line discipline mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalMode {
    /// `ICANON`: input arrives a line at a time.
    pub canonical: bool,
    /// `ECHO`: typed characters are echoed.
    pub echo: bool,
}

impl TerminalMode {
    /// The kind of input a reader in this mode waits for: a line when
    /// canonical with echo, a password when canonical without it, else
    /// single keys, or a full-screen program on the alternate screen.
    pub fn input_kind(self, alternate_screen: bool) -> InputKind {
        match (self.canonical, self.echo) {
            (true, true) => InputKind::Line,
            (true, false) => InputKind::Password,
            (false, _) if alternate_screen => InputKind::Fullscreen,
            (false, _) => InputKind::Key,
        }
    }
}

/// One look at a job's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalProbe {
    /// The foreground process worth naming; `None` while the runner itself
    /// holds the foreground (before the script starts, after it ended).
    pub foreground: Option<ForegroundProcess>,
    /// The foreground process waiting for input, if one does.
    pub reader: Option<TerminalReader>,
    /// The terminal's mode, read only when a process waits for input;
    /// `None` otherwise or if it could not be read.
    pub mode: Option<TerminalMode>,
}

impl TerminalProbe {
    /// What the job waits for, if it waits for input.
    pub fn input_kind(&self, alternate_screen: bool) -> Option<InputKind> {
        self.reader?;
        Some(
            self.mode
                .map_or(InputKind::Line, |mode| mode.input_kind(alternate_screen)),
        )
    }
}

/// The fields of `/proc/<pid>/stat` this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    session: i32,
    tty: (u64, u64),
    tpgid: i32,
    start_time: u64,
}

impl Stat {
    fn read(path: &str) -> Option<Stat> {
        Self::parse(&fs::read_to_string(path).ok()?)
    }

    /// Fields are counted from the last `)`: the command name before it
    /// may hold spaces and parentheses.
    fn parse(text: &str) -> Option<Stat> {
        let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
        // fields[0] is field 3 of the file.
        let field = |n: usize| fields.get(n - 3).copied();
        let tty_nr: u64 = field(7)?.parse().ok()?;
        Some(Stat {
            state: field(3)?.chars().next()?,
            pgrp: field(5)?.parse().ok()?,
            session: field(6)?.parse().ok()?,
            tty: decode_tty_nr(tty_nr),
            tpgid: field(8)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
        })
    }
}

/// `tty_nr` of `/proc/<pid>/stat` as (major, minor): the major number in
/// bits 8–15, the minor number in bits 0–7 and 20–31.
fn decode_tty_nr(tty_nr: u64) -> (u64, u64) {
    (
        (tty_nr >> 8) & 0xfff,
        (tty_nr & 0xff) | ((tty_nr >> 12) & 0xf_ff00),
    )
}

/// The runner's stat, if this very runner still lives.
fn runner_stat(runner: ProcessIdentity) -> Result<Stat, ProbeError> {
    Stat::read(&format!("/proc/{}/stat", runner.pid))
        .filter(|stat| stat.start_time == runner.start_time)
        .ok_or(ProbeError::TerminalGone)
}

/// Looks at the job's terminal now.
pub fn probe(runner: ProcessIdentity) -> Result<TerminalProbe, ProbeError> {
    let stat = runner_stat(runner)?;
    let terminal = stat.tty;
    let group = stat.tpgid;
    // The runner's own group in the foreground means no script process
    // holds it (none started, or it ended).
    if group <= 0 || group == stat.pgrp {
        return Ok(TerminalProbe {
            foreground: None,
            reader: None,
            mode: None,
        });
    }
    let members = foreground_members(runner.pid, group);
    let reader = members
        .iter()
        .find_map(|member| waits_on_terminal(member.pid, terminal));
    let named = reader.map(|r| r.pid).or_else(|| {
        members
            .iter()
            .max_by_key(|member| member.start_time)
            .map(|member| member.pid)
    });
    Ok(TerminalProbe {
        foreground: named.map(|pid| ForegroundProcess {
            pid,
            command: command_of(pid),
        }),
        reader,
        mode: reader.and_then(|_| terminal_mode(runner.pid)),
    })
}

/// A process found in the job's tree.
#[derive(Debug, Clone, Copy)]
struct Member {
    pid: u32,
    start_time: u64,
}

/// The live members of process group `group` in the runner's session:
/// among the runner's descendants, or, if none is there, anywhere (a
/// member whose parent died). A group number the terminal still names
/// after its last member died, and that the kernel gave to some other
/// process since, has no member in the session.
fn foreground_members(runner: u32, group: i32) -> Vec<Member> {
    let in_group = |pid: u32| {
        Stat::read(&format!("/proc/{pid}/stat"))
            .filter(|stat| {
                stat.pgrp == group
                    && i64::from(stat.session) == i64::from(runner)
                    && stat.state != 'Z'
            })
            .map(|stat| Member {
                pid,
                start_time: stat.start_time,
            })
    };
    let members: Vec<Member> = descendants(runner)
        .into_iter()
        .filter_map(in_group)
        .collect();
    if !members.is_empty() {
        return members;
    }
    all_pids().into_iter().filter_map(in_group).collect()
}

/// Every process below `root` in the process tree (not `root` itself),
/// parents before children.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for child in children(pid) {
            if found.len() >= MAX_PROCESSES {
                return found;
            }
            if seen.insert(child) {
                found.push(child);
                queue.push_back(child);
            }
        }
    }
    found
}

/// The children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    threads(pid)
        .into_iter()
        .filter_map(|tid| fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|word| word.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The thread ids of `pid` (just `pid` if they cannot be listed).
fn threads(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![pid];
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The command line of `pid`, or its name.
fn command_of(pid: u32) -> String {
    let mut raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.truncate(MAX_COMMAND_BYTES);
    let joined = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|arg| !arg.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.is_empty() {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|name| name.trim_end().to_owned())
            .unwrap_or_default()
    } else {
        joined
    }
}

/// The terminal's mode, read through the runner's stdin (which is the
/// terminal). Opened without `O_NOCTTY` it could become the server's
/// controlling terminal; without `O_NONBLOCK` the open could wait.
fn terminal_mode(runner: u32) -> Option<TerminalMode> {
    let tty = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(format!("/proc/{runner}/fd/0"))
        .ok()?;
    let termios = tcgetattr(&tty).ok()?;
    Some(TerminalMode {
        canonical: termios.local_flags.contains(LocalFlags::ICANON),
        echo: termios.local_flags.contains(LocalFlags::ECHO),
    })
}

// ----- waiting on the terminal ---------------------------------------------

/// A blocking call as `/proc/<pid>/task/<tid>/syscall` shows it, sorted by
/// what it waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockedCall {
    /// A read of this descriptor.
    Read { fd: u64 },
    /// `poll`/`ppoll` on `count` `struct pollfd`s at `fds`.
    Poll { fds: u64, count: u64 },
    /// `select`/`pselect6` with descriptors below `nfds`, the read set at
    /// `read_set` (0 when there is none).
    Select { nfds: u64, read_set: u64 },
    /// `epoll_wait` and its variants on this epoll descriptor.
    Epoll { epoll_fd: u64 },
    /// Anything else (sleeps, waits for children, writes, …).
    Other,
}

/// System call numbers of this architecture.
mod nr {
    #[cfg(target_arch = "x86_64")]
    pub const READS: &[i64] = &[0, 17, 19, 295, 327];
    #[cfg(target_arch = "x86_64")]
    pub const POLLS: &[i64] = &[7, 271];
    #[cfg(target_arch = "x86_64")]
    pub const SELECTS: &[i64] = &[23, 270];
    #[cfg(target_arch = "x86_64")]
    pub const EPOLLS: &[i64] = &[232, 281, 441];

    #[cfg(target_arch = "aarch64")]
    pub const READS: &[i64] = &[63, 65, 67, 69, 286];
    #[cfg(target_arch = "aarch64")]
    pub const POLLS: &[i64] = &[73];
    #[cfg(target_arch = "aarch64")]
    pub const SELECTS: &[i64] = &[72];
    #[cfg(target_arch = "aarch64")]
    pub const EPOLLS: &[i64] = &[22, 441];

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const READS: &[i64] = &[];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const POLLS: &[i64] = &[];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const SELECTS: &[i64] = &[];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const EPOLLS: &[i64] = &[];
}

/// Parses `/proc/<pid>/syscall`: `<nr> <arg0> … <arg5> <sp> <pc>` in hex,
/// `running`, or `-1 <sp> <pc>` when not in a system call. `None` for the
/// latter two.
fn parse_syscall(text: &str) -> Option<BlockedCall> {
    let mut words = text.split_whitespace();
    let number: i64 = words.next()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let mut args = [0u64; 6];
    for arg in &mut args {
        *arg = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some(if nr::READS.contains(&number) {
        BlockedCall::Read { fd: args[0] }
    } else if nr::POLLS.contains(&number) {
        BlockedCall::Poll {
            fds: args[0],
            count: args[1],
        }
    } else if nr::SELECTS.contains(&number) {
        BlockedCall::Select {
            nfds: args[0],
            read_set: args[1],
        }
    } else if nr::EPOLLS.contains(&number) {
        BlockedCall::Epoll { epoll_fd: args[0] }
    } else {
        BlockedCall::Other
    })
}

/// Whether `pid` has a thread asleep waiting to read `terminal`.
fn waits_on_terminal(pid: u32, terminal: (u64, u64)) -> Option<TerminalReader> {
    let process = ProcessView::new(pid, terminal);
    threads(pid).into_iter().find_map(|tid| {
        let stat = Stat::read(&format!("/proc/{pid}/task/{tid}/stat"))?;
        if stat.state != 'S' {
            return None;
        }
        let syscall = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"));
        let (call, evidence) = if let Ok(text) = syscall {
            (process.waits_by(parse_syscall(&text)?)?, Evidence::Syscall)
        } else {
            // No ptrace rights over the process: the wait channel stands in.
            let wchan = fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).ok()?;
            let call = wait_channel_call(wchan.trim())?;
            (
                process.waits_by_wait_channel().then_some(call)?,
                Evidence::WaitChannel,
            )
        };
        Some(TerminalReader {
            pid,
            call,
            evidence,
        })
    })
}

/// The wait call a kernel wait channel stands for, for the waits a
/// terminal reader sleeps in.
fn wait_channel_call(wchan: &str) -> Option<WaitCall> {
    let name = wchan.split('.').next().unwrap_or(wchan);
    match name {
        "wait_woken" | "n_tty_read" => Some(WaitCall::Read),
        "poll_schedule_timeout" | "do_select" | "do_sys_poll" | "core_sys_select" | "ep_poll" => {
            Some(WaitCall::Poll)
        }
        _ => None,
    }
}

/// One process's descriptors, as far as they concern the terminal.
struct ProcessView {
    pid: u32,
    terminal: (u64, u64),
    /// The process's controlling terminal (what `/dev/tty` means to it).
    controlling: Option<(u64, u64)>,
}

impl ProcessView {
    fn new(pid: u32, terminal: (u64, u64)) -> ProcessView {
        ProcessView {
            pid,
            terminal,
            controlling: Stat::read(&format!("/proc/{pid}/stat")).map(|stat| stat.tty),
        }
    }

    /// Whether descriptor `fd` is the job's terminal: its device, or
    /// `/dev/tty` in a process whose controlling terminal it is.
    fn is_terminal(&self, fd: u64) -> bool {
        let Ok(meta) = fs::metadata(format!("/proc/{}/fd/{fd}", self.pid)) else {
            return false;
        };
        if !meta.file_type().is_char_device() {
            return false;
        }
        let device = (major(meta.rdev()), minor(meta.rdev()));
        device == self.terminal || (device == DEV_TTY && self.controlling == Some(self.terminal))
    }

    /// How a blocked call waits on the terminal, if it does.
    fn waits_by(&self, call: BlockedCall) -> Option<WaitCall> {
        match call {
            BlockedCall::Read { fd } => self.is_terminal(fd).then_some(WaitCall::Read),
            BlockedCall::Poll { fds, count } => {
                self.polls_terminal(fds, count).then_some(WaitCall::Poll)
            }
            BlockedCall::Select { nfds, read_set } => self
                .selects_terminal(nfds, read_set)
                .then_some(WaitCall::Poll),
            BlockedCall::Epoll { epoll_fd } => self
                .epoll_watches_terminal(epoll_fd)
                .then_some(WaitCall::Poll),
            BlockedCall::Other => None,
        }
    }

    fn open_fds(&self) -> Vec<u64> {
        let Ok(entries) = fs::read_dir(format!("/proc/{}/fd", self.pid)) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    fn has_terminal_open(&self) -> bool {
        self.open_fds().into_iter().any(|fd| self.is_terminal(fd))
    }

    /// The stand-in for the system call when it cannot be read. The wait
    /// channels of a terminal read are also those of socket reads and of
    /// polls on anything, so more must hold: the process reads its
    /// terminal on stdin and holds no socket (a network client waiting
    /// for data, or a server polling its listener, is not waiting for
    /// input). What stays ambiguous: a wait on a pipe or file by a process
    /// whose stdin is the terminal, and a write stalled on a full
    /// terminal, read as waiting.
    fn waits_by_wait_channel(&self) -> bool {
        let fds = self.open_fds();
        self.is_terminal(0)
            && !fds.iter().any(|fd| {
                fs::read_link(format!("/proc/{}/fd/{fd}", self.pid))
                    .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            })
    }

    fn memory(&self) -> Option<File> {
        File::open(format!("/proc/{}/mem", self.pid)).ok()
    }

    /// Whether the `pollfd` array holds the terminal with `POLLIN`. If the
    /// array cannot be read, any open terminal descriptor counts.
    fn polls_terminal(&self, fds: u64, count: u64) -> bool {
        const POLLIN: i16 = 0x1;
        let count = count.min(MAX_POLL_FDS);
        let Some(memory) = self.memory() else {
            return self.has_terminal_open();
        };
        let Ok(len) = usize::try_from(count * 8) else {
            return false;
        };
        let mut array = vec![0u8; len];
        if memory.read_exact_at(&mut array, fds).is_err() {
            return self.has_terminal_open();
        }
        array.chunks_exact(8).any(|entry| {
            let fd = i32::from_ne_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let events = i16::from_ne_bytes([entry[4], entry[5]]);
            events & POLLIN != 0 && u64::try_from(fd).is_ok_and(|fd| self.is_terminal(fd))
        })
    }

    /// Whether the read set holds the terminal. If the set cannot be read,
    /// a terminal descriptor below `nfds` counts.
    fn selects_terminal(&self, nfds: u64, read_set: u64) -> bool {
        if read_set == 0 {
            return false;
        }
        let nfds = nfds.min(MAX_POLL_FDS);
        let below = || (0..nfds).any(|fd| self.is_terminal(fd));
        let Some(memory) = self.memory() else {
            return below();
        };
        let Ok(len) = usize::try_from(nfds.div_ceil(64) * 8) else {
            return false;
        };
        let mut set = vec![0u8; len];
        if memory.read_exact_at(&mut set, read_set).is_err() {
            return below();
        }
        (0..nfds).any(|fd| {
            let byte = usize::try_from(fd / 8).map_or(0, |i| set[i]);
            byte & (1 << (fd % 8)) != 0 && self.is_terminal(fd)
        })
    }

    /// Whether the epoll set holds the terminal for reading, from the
    /// epoll descriptor's `fdinfo` (`tfd: <fd> events: <hex> …` lines).
    fn epoll_watches_terminal(&self, epoll_fd: u64) -> bool {
        const EPOLLIN: u64 = 0x1;
        let Ok(info) = fs::read_to_string(format!("/proc/{}/fdinfo/{epoll_fd}", self.pid)) else {
            return false;
        };
        info.lines().any(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("tfd:") {
                return false;
            }
            let fd = words.next().and_then(|w| w.parse().ok());
            let events = match (words.next(), words.next()) {
                (Some("events:"), Some(hex)) => u64::from_str_radix(hex, 16).ok(),
                _ => None,
            };
            matches!((fd, events), (Some(fd), Some(events))
                if events & EPOLLIN != 0 && self.is_terminal(fd))
        })
    }
}

// ----- signals -------------------------------------------------------------

/// Sends `signal` to the job's processes as `target` says, never to the
/// runner. Returns how many processes or groups were signalled; 0 means
/// the script has no process left to signal.
///
/// `Job` means the script's process group and every process below the
/// runner in the process tree; a process that left the tree before (a
/// double fork, whose parent exited) is not found.
pub fn signal_job(
    runner: ProcessIdentity,
    signal: SignalName,
    target: SignalTarget,
) -> Result<usize, ProbeError> {
    let signal = nix_signal(signal);
    let stat = runner_stat(runner)?;
    let script_group = script_group(runner.pid, &stat)
        .filter(|group| !foreground_members(runner.pid, *group).is_empty());
    match target {
        SignalTarget::Foreground => Ok(script_group.map_or(0, |group| {
            usize::from(killpg(Pid::from_raw(group), signal).is_ok())
        })),
        SignalTarget::Job => {
            // Listed before anything is signalled: once a parent dies, its
            // children move to init and out of the runner's tree.
            let processes = descendants(runner.pid);
            let mut signalled = 0;
            if let Some(group) = script_group {
                signalled += usize::from(killpg(Pid::from_raw(group), signal).is_ok());
            }
            for pid in processes {
                let Ok(raw) = i32::try_from(pid) else {
                    continue;
                };
                signalled += usize::from(kill(Pid::from_raw(raw), signal).is_ok());
            }
            Ok(signalled)
        }
    }
}

/// The signal a wire signal name stands for.
pub fn nix_signal(name: SignalName) -> Signal {
    match name {
        SignalName::INT => Signal::SIGINT,
        SignalName::TERM => Signal::SIGTERM,
        SignalName::HUP => Signal::SIGHUP,
        SignalName::QUIT => Signal::SIGQUIT,
        SignalName::KILL => Signal::SIGKILL,
        SignalName::USR1 => Signal::SIGUSR1,
        SignalName::USR2 => Signal::SIGUSR2,
        SignalName::STOP => Signal::SIGSTOP,
        SignalName::CONT => Signal::SIGCONT,
        SignalName::WINCH => Signal::SIGWINCH,
        SignalName::ALRM => Signal::SIGALRM,
    }
}

/// The script's process group: the terminal's foreground group when it is
/// not the runner's, else the group of the runner's child (the script's
/// leader), if it still runs.
fn script_group(runner: u32, stat: &Stat) -> Option<i32> {
    if stat.tpgid > 0 && stat.tpgid != stat.pgrp {
        return Some(stat.tpgid);
    }
    children(runner)
        .into_iter()
        .filter_map(|child| Stat::read(&format!("/proc/{child}/stat")))
        .map(|child| child.pgrp)
        .find(|group| *group != stat.pgrp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "14259 (sle ep) (x) S 1 14249 13577 34816 -1 4194304 128 0 0 0 0 0 0 0 20 0 1 0 972887 2990080";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 14249);
        assert_eq!(stat.session, 13577);
        assert_eq!(stat.tty, (136, 0));
        assert_eq!(stat.tpgid, -1);
        assert_eq!(stat.start_time, 972_887);
    }

    #[test]
    fn tty_numbers_above_255_decode() {
        // pts/300: major 136, minor 300 = 0x12c.
        let encoded = 0x2c | (136 << 8) | (0x100 << 12);
        assert_eq!(decode_tty_nr(encoded), (136, 300));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn syscalls_are_sorted_by_what_they_wait_on() {
        assert_eq!(
            parse_syscall("0 0x3 0x7fff8e2ff527 0x1 0x0 0x0 0x0 0x7ffd 0x7f86"),
            Some(BlockedCall::Read { fd: 3 })
        );
        assert_eq!(
            parse_syscall("270 0x1 0x7ffcde6f6180 0x0 0x0 0x0 0x0 0x1 0x2"),
            Some(BlockedCall::Select {
                nfds: 1,
                read_set: 0x7ffc_de6f_6180
            })
        );
        assert_eq!(
            parse_syscall("7 0x55a0 0x2 0xffffffff 0x0 0x0 0x0 0x1 0x2"),
            Some(BlockedCall::Poll {
                fds: 0x55a0,
                count: 2
            })
        );
        assert_eq!(
            parse_syscall("232 0x4 0x7ff 0x1 0x0 0x0 0x0 0x1 0x2"),
            Some(BlockedCall::Epoll { epoll_fd: 4 })
        );
        assert_eq!(
            parse_syscall("230 0x0 0x0 0x7ffd819ca310 0x7ffd819ca350 0x0 0x0 0x1 0x2"),
            Some(BlockedCall::Other)
        );
        assert_eq!(parse_syscall("running"), None);
        assert_eq!(parse_syscall("-1 0x7ffd 0x7f86"), None);
    }

    #[test]
    fn wait_channels_name_the_terminal_waits() {
        assert_eq!(wait_channel_call("wait_woken"), Some(WaitCall::Read));
        assert_eq!(
            wait_channel_call("poll_schedule_timeout.constprop.0"),
            Some(WaitCall::Poll)
        );
        assert_eq!(wait_channel_call("ep_poll"), Some(WaitCall::Poll));
        assert_eq!(wait_channel_call("hrtimer_nanosleep"), None);
        assert_eq!(wait_channel_call("do_wait"), None);
    }

    #[test]
    fn the_mode_decides_the_kind() {
        let mode = |canonical, echo| TerminalMode { canonical, echo };
        assert_eq!(mode(true, true).input_kind(false), InputKind::Line);
        assert_eq!(mode(true, false).input_kind(false), InputKind::Password);
        assert_eq!(mode(false, false).input_kind(false), InputKind::Key);
        assert_eq!(mode(false, true).input_kind(true), InputKind::Fullscreen);
        // Canonical mode on the alternate screen still reads lines.
        assert_eq!(mode(true, true).input_kind(true), InputKind::Line);
    }

    #[test]
    fn descendants_of_this_process_include_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
    }
}
