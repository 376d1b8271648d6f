//! The job runner: the process tmux starts in a job's pane.
//!
//! It waits at the start gate, changes to the job's directory, applies the
//! env overlay (as data, never through a shell), runs the script, and
//! records the exit code and end time in the `exit` marker. It prints
//! nothing of its own, so the job's output is the script's alone (the one
//! escape sequence it sends, the end-of-output sync, never reaches the log).
//!
//! Exit codes recorded, beyond the script's own: 111 when `cwd` cannot be
//! entered, 127 when the program is not found, 126 when it cannot be
//! executed (or the spec is unreadable), 128+N when signal N killed it, 130
//! when Ctrl-C came before the script started (it is then not started).
//!
//! The runner is the terminal's session leader and does what a job-control
//! shell does: the script gets a process group of its own, made the
//! terminal's foreground group before the script's program starts. So
//! Ctrl-C, keys and signals sent to the terminal's foreground reach the
//! script's processes and never the runner, which must outlive them to
//! record the exit. When the script ends, the runner takes the foreground
//! back. Before the script starts, the runner is the foreground: it
//! catches SIGINT and SIGQUIT then, to end the job with 130 without
//! starting it; caught signals are reset to their default on exec.
//!
//! The runner records its own identity (`runner`) before the gate, so the
//! server can find the job's terminal and processes from it. While the
//! script runs, a thread of the runner enforces the job's deadlines
//! ([`crate::deadlines`]).

use crate::containment::{JOB_MARKER_ENV, JobContainment};
use crate::deadlines::{self, DeadlineWatch, Deadlines};
use crate::files::{ExitMarker, JobDir, JobSpec, SCRIPT};
use crate::lifecycle::TerminateCause;
use crate::process::ProcessIdentity;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::{Pid, getpgrp, getpid, getsid, pipe2, tcgetpgrp, tcsetpgrp};
use shellctl_proto::timestamp::now_timestamp;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Exit code recorded when the job's `cwd` cannot be entered.
pub const EXIT_BAD_CWD: i32 = 111;
/// Exit code recorded when the program to run does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code recorded when the program cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit code recorded when Ctrl-C arrived before the script started
/// (128 + SIGINT, as if the script had died of it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Runs the job in `job_dir` to its end and records how it ended. Returns an
/// error only when the exit marker itself cannot be written.
pub fn run_job(job_dir: &JobDir) -> io::Result<()> {
    // Keep the runner alive through Ctrl-C, and remember one that came
    // before the script started.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }
    // Best effort: without it the job runs the same, only its terminal
    // cannot be inspected (the terminal routes then say so).
    if let Some(me) = ProcessIdentity::current() {
        let _recorded = job_dir.record_runner(me);
    }
    job_dir.wait_at_gate()?;
    // A terminate that arrived while the job was still starting ends it
    // here, as the script would have ended on the same Ctrl-C.
    let exit_code = if interrupted.load(Ordering::Acquire) {
        EXIT_INTERRUPTED
    } else {
        run_script(job_dir)
    };
    job_dir.write_exit(&ExitMarker {
        exit_code,
        ended_at: now_timestamp(),
    })?;
    // Keep the pane open until the pipe side has all output (see
    // `JobDir::sync_with_pipe_side`). A failed handshake is not reported:
    // the pane is the runner's only output and must hold the script's
    // alone, the exit is already recorded, and a pipe side that never
    // answers is the monitor's case.
    let _handshake = job_dir.sync_with_pipe_side(&mut std::io::stdout());
    Ok(())
}

fn run_script(job_dir: &JobDir) -> i32 {
    let Ok(spec) = job_dir.read_spec() else {
        return EXIT_CANNOT_EXECUTE;
    };
    if std::env::set_current_dir(&spec.cwd).is_err() {
        return EXIT_BAD_CWD;
    }
    let script = job_dir.file(SCRIPT);
    let mut command = if has_shebang(&script) {
        if fs::set_permissions(&script, fs::Permissions::from_mode(0o700)).is_err() {
            return EXIT_CANNOT_EXECUTE;
        }
        Command::new(&script)
    } else {
        let mut sh = Command::new("sh");
        sh.arg(&script);
        sh
    };
    command.envs(&spec.env);
    let containment = spec.containment.as_ref();
    let mut join_report = None;
    if let Some(containment) = containment {
        command.env(JOB_MARKER_ENV, &containment.marker);
        match join_groups_in_child(&mut command, containment, &spec) {
            Ok(report) => join_report = report,
            Err(err) => return err,
        }
    }
    let controls_terminal = controls_terminal();
    if controls_terminal {
        hand_terminal_to_child(&mut command);
    }
    let deadlines = Deadlines::of(&spec);
    let started = Instant::now();
    let status = command.spawn().and_then(|mut child| {
        if controls_terminal {
            give_terminal_to(child.id());
        }
        // A join that failed (a job without limits starts anyway) leaves
        // only the marker to find the job's processes by at the exit.
        let joined = join_report.is_some_and(|report| joined_groups(&report));
        let watch = DeadlineWatch::start(
            job_dir,
            deadlines,
            containment.cloned(),
            child.id(),
            started,
        );
        let status = child.wait();
        let deadline = watch.and_then(DeadlineWatch::finish);
        if let Some(cause) = deadline {
            // Before the exit is written: the exit-commit rule reads it.
            let _recorded = deadlines::conclude(job_dir, cause, child.id(), containment);
        } else if let Some(containment) = containment {
            end_left_behind(job_dir, &spec, containment, joined, status.as_ref().ok());
        }
        // Every process was killed, so the groups are empty; a job that
        // keeps its background processes keeps its groups until the
        // server ends them (terminate, delete).
        if let Some(containment) = containment
            && (deadline.is_some() || !spec.keep_background)
        {
            let _removed = containment.remove_groups();
        }
        status
    });
    if controls_terminal {
        take_terminal_back();
    }
    match status {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(err) => match err.kind() {
            io::ErrorKind::NotFound => EXIT_NOT_FOUND,
            _ => EXIT_CANNOT_EXECUTE,
        },
    }
}

/// Once the script's leader exited by itself: records an OOM kill that
/// ended it (the job then ends `terminated`, `oom`), and unless the job
/// keeps its background processes, ends every process it left behind and
/// records how many. Both before the exit is written, so that a job reads
/// as ended only once its processes are gone.
fn end_left_behind(
    job_dir: &JobDir,
    spec: &JobSpec,
    containment: &JobContainment,
    joined: bool,
    status: Option<&std::process::ExitStatus>,
) {
    if status.is_some_and(|status| !status.success()) && containment.oom_kills() > 0 {
        let _recorded = job_dir.record_deadline(TerminateCause::Oom);
    }
    if !spec.keep_background {
        let me = ProcessIdentity::current();
        let left = if joined {
            containment.kill_all_joined(me)
        } else {
            containment.kill_all(me)
        };
        // Best effort: the count is a report; the processes are gone.
        let _recorded = job_dir.add_leftovers(left);
    }
}

/// Makes the script's first process join the job's groups between fork and
/// exec, so that nothing it starts escapes them. A join that fails fails
/// the start only when the job has limits (which must not silently not
/// hold); without, the marker still tracks the job, and the child says so
/// on the returned pipe (see [`joined_groups`]). Returns the exit code to
/// record when the groups' files cannot even be named.
fn join_groups_in_child(
    command: &mut Command,
    containment: &JobContainment,
    spec: &JobSpec,
) -> Result<Option<OwnedFd>, i32> {
    let joiner = containment.joiner();
    if joiner.is_empty() {
        return if spec.limits.is_empty() {
            Ok(None)
        } else {
            Err(EXIT_CANNOT_EXECUTE)
        };
    }
    let must_join = !spec.limits.is_empty();
    // Close-on-exec on both ends: the script inherits neither.
    let Ok((report, failed)) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) else {
        return Err(EXIT_CANNOT_EXECUTE);
    };
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only
    // opens, writes and closes files through paths made before the fork
    // (`Joiner::join_current`) and writes one byte to a pipe made before
    // it: no allocation, no lock, all async-signal-safe calls.
    unsafe {
        command.pre_exec(move || match joiner.join_current() {
            Err(err) if must_join => Err(err),
            Err(_) => {
                let _told = nix::unistd::write(&failed, b"!");
                Ok(())
            }
            Ok(()) => Ok(()),
        });
    }
    Ok(Some(report))
}

/// Whether the script joined its groups, read once it was spawned (the
/// child wrote before its exec, which `spawn` waits for): an empty pipe
/// means it did.
fn joined_groups(report: &OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        nix::unistd::read(report, &mut byte),
        Err(nix::errno::Errno::EAGAIN)
    )
}

/// The runner's stdin: the job's terminal.
fn terminal() -> std::io::Stdin {
    std::io::stdin()
}

/// Whether the runner leads its terminal's session and holds its
/// foreground, as it does in a job's pane. Run any other way (say, from a
/// test with a pipe as stdin), it leaves process groups alone.
fn controls_terminal() -> bool {
    getsid(None).is_ok_and(|sid| sid == getpid())
        && tcgetpgrp(terminal()).is_ok_and(|group| group == getpgrp())
}

/// Makes the child the leader of a new process group and that group the
/// terminal's foreground, in the child between fork and exec, so the
/// script's program never runs in the background (where reading the
/// terminal would stop it). A claim that fails there must not keep the
/// script from running: the parent claims again after the spawn
/// ([`give_terminal_to`]), as job-control shells do.
fn hand_terminal_to_child(command: &mut Command) {
    command.process_group(0);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (sigprocmask, tcsetpgrp, getpid);
    // it allocates nothing and touches no lock. The runner is
    // single-threaded until the script is spawned (the deadline thread
    // starts after), so no other thread's state is copied half-done.
    unsafe {
        command.pre_exec(|| {
            let stdin = BorrowedFd::borrow_raw(0);
            // A background group that claims the terminal gets SIGTTOU
            // unless it is blocked; the mask is restored before exec.
            let mut ttou = SigSet::empty();
            ttou.add(Signal::SIGTTOU);
            if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None).is_ok() {
                let _claimed = tcsetpgrp(stdin, getpid());
                let _restored = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&ttou), None);
            }
            Ok(())
        });
    }
}

/// The parent's claim of the terminal for the child's group, when the
/// child's own failed (the runner's group still holds it). Only then: once
/// the script runs, it may have given the terminal to a group of its own
/// (an interactive shell running a command), which must keep it.
fn give_terminal_to(child: u32) {
    let Ok(pid) = i32::try_from(child) else {
        return;
    };
    if tcgetpgrp(terminal()).is_ok_and(|group| group == getpgrp()) {
        with_ttou_blocked(|| {
            let _claimed = tcsetpgrp(terminal(), Pid::from_raw(pid));
        });
    }
}

/// Runs `claim` with `SIGTTOU` blocked: a process outside the terminal's
/// foreground that sets the foreground group gets it otherwise.
fn with_ttou_blocked(claim: impl FnOnce()) {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None).is_ok() {
        claim();
        let _restored = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&ttou), None);
    }
}

/// Makes the runner's group the terminal's foreground again once the
/// script ended (the runner is in the background then, so SIGTTOU is
/// blocked around the claim). A failure only matters to processes the
/// script left behind, so it is not reported.
fn take_terminal_back() {
    with_ttou_blocked(|| {
        let _claimed = tcsetpgrp(terminal(), getpgrp());
    });
}

fn has_shebang(script: &std::path::Path) -> bool {
    let mut head = [0u8; 2];
    fs::File::open(script)
        .and_then(|mut file| file.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}
