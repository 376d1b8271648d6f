//! One shell session: a command driven step by step over pipes.

use crate::error::SessionError;
use crate::options::ShellSessionOptions;
use crate::process::{self, SpawnedChild};
use nix::sys::signal::Signal;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

/// What one step collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes the command wrote to stdout during the step.
    pub stdout: Vec<u8>,
    /// Bytes the command wrote to stderr during the step.
    pub stderr: Vec<u8>,
    /// `None` while the command runs; its exit code once it has exited, or
    /// `-N` when signal `N` killed it (as Python reports it).
    pub exit_code: Option<i32>,
}

/// Asks a session to stop from anywhere, even while another task is inside
/// its [`ShellSession::next`]: that step then ends, the process group is
/// terminated, and the session closes. Cheap to clone.
#[derive(Clone)]
pub struct InterruptHandle(Arc<watch::Sender<bool>>);

impl InterruptHandle {
    /// Requests the interrupt. Idempotent.
    pub fn interrupt(&self) {
        self.0.send_replace(true);
    }
}

impl fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptHandle")
            .field("requested", &*self.0.borrow())
            .finish()
    }
}

/// A command run by `sh -c` with piped stdin, stdout and stderr, driven step
/// by step with [`next`](Self::next).
///
/// The command runs in its own process group. Interrupting the session, or
/// dropping it while the command runs, signals the whole group.
pub struct ShellSession {
    command: String,
    options: ShellSessionOptions,
    session_id: String,
    /// An optional short description supplied by the caller.
    pub desc: Option<String>,
    state: State,
    interrupt_tx: Arc<watch::Sender<bool>>,
    interrupt_rx: watch::Receiver<bool>,
}

enum State {
    NotStarted,
    Running(Box<Running>),
    Closed,
}

/// How a step's collection ended.
enum StepEnd {
    Exited,
    TimedOut,
    Quiet,
    Interrupted,
}

impl ShellSession {
    /// A session for `command`; nothing runs until [`start`](Self::start) or
    /// the first [`next`](Self::next).
    pub fn new(command: impl Into<String>, options: ShellSessionOptions) -> Self {
        let (interrupt_tx, interrupt_rx) = watch::channel(false);
        ShellSession {
            command: command.into(),
            options,
            session_id: random_session_id(),
            desc: None,
            state: State::NotStarted,
            interrupt_tx: Arc::new(interrupt_tx),
            interrupt_rx,
        }
    }

    /// The session's 6-digit id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub(crate) fn renew_session_id(&mut self) {
        self.session_id = random_session_id();
    }

    /// The command line this session runs.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The session's options.
    pub fn options(&self) -> &ShellSessionOptions {
        &self.options
    }

    /// Whether the session is closed: its exit was seen by a step, or it was
    /// interrupted, or it failed to start.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// A handle that interrupts this session from any task.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle(Arc::clone(&self.interrupt_tx))
    }

    /// Starts the command if it has not been started. Idempotent while the
    /// session is open.
    #[allow(clippy::unused_async)] // async in the public API, for a start that may wait
    pub async fn start(&mut self) -> Result<(), SessionError> {
        match self.state {
            State::Running(_) => Ok(()),
            State::Closed => Err(SessionError::Closed),
            State::NotStarted => {
                match process::spawn(&self.command, self.options.max_buffered_output) {
                    Ok(spawned) => {
                        self.state = State::Running(Box::new(Running::new(spawned)));
                        Ok(())
                    }
                    Err(err) => {
                        self.state = State::Closed;
                        Err(SessionError::Spawn(err))
                    }
                }
            }
        }
    }

    /// Writes `stdin` (if any), then collects stdout and stderr until the
    /// command exits or `timeout` (default: the session's) passes.
    ///
    /// Starts the command first if needed. A step that sees the exit drains
    /// the output still in flight, closes the session and returns the exit
    /// code; later steps fail with [`SessionError::Closed`]. With
    /// [`ShellSessionOptions::return_after_quiet`] set, a step also ends once
    /// output has arrived and then been quiet that long. An interrupt
    /// requested through an [`InterruptHandle`] ends the step, terminates
    /// the command, and returns what was collected, with the exit code.
    pub async fn next(
        &mut self,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Step, SessionError> {
        let step_timeout = timeout.unwrap_or(self.options.timeout);
        if step_timeout.is_zero() {
            return Err(SessionError::InvalidTimeout);
        }
        if *self.interrupt_rx.borrow() {
            self.interrupt().await;
        }
        self.start().await?;
        let deadline = Instant::now() + step_timeout;
        let State::Running(running) = &mut self.state else {
            return Err(SessionError::Closed);
        };
        let mut step = Step::default();
        let mut end = match stdin {
            Some(data) => {
                running
                    .write_stdin(data, deadline, &mut self.interrupt_rx)
                    .await?
            }
            None => None,
        };
        if end.is_none() {
            end = Some(
                running
                    .collect(&mut step, deadline, &self.options, &mut self.interrupt_rx)
                    .await?,
            );
        }
        match end {
            Some(StepEnd::Exited) => {
                running
                    .drain_after_exit(&mut step, self.options.post_exit_flush)
                    .await;
                step.exit_code = self.close(Some(&mut step)).await;
            }
            Some(StepEnd::Interrupted) => {
                step.exit_code = self.close(Some(&mut step)).await;
            }
            Some(StepEnd::TimedOut | StepEnd::Quiet) | None => {}
        }
        Ok(step)
    }

    /// Closes the command's stdin, so it reads end of input.
    pub fn close_stdin(&mut self) {
        if let State::Running(running) = &mut self.state {
            running.proc.stdin = None;
        }
    }

    /// Terminates the command's process group (SIGTERM, wait, SIGKILL,
    /// wait) and closes the session. Idempotent; never fails.
    pub async fn interrupt(&mut self) {
        self.close(None).await;
    }

    /// Whether the command has exited (without collecting its output).
    pub(crate) fn has_exited(&mut self) -> bool {
        match &mut self.state {
            State::Running(running) => running.poll_exit(),
            State::Closed => true,
            State::NotStarted => false,
        }
    }

    /// Shuts the process group down, collecting late output into `step`.
    /// Returns the exit code of the command, if it has one.
    async fn close(&mut self, step: Option<&mut Step>) -> Option<i32> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Running(mut running) => running.shut_down(&self.options, step).await,
            State::NotStarted | State::Closed => None,
        }
    }
}

impl fmt::Debug for ShellSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShellSession")
            .field("session_id", &self.session_id)
            .field("desc", &self.desc)
            .field(
                "command",
                &crate::command_slug_parts(&self.command).join("-"),
            )
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        if let State::Running(running) = &mut self.state {
            running.kill_now();
        }
    }
}

/// The running command and what a step needs to know about it.
struct Running {
    proc: SpawnedChild,
    stdout_done: bool,
    stderr_done: bool,
    exit: Option<ExitStatus>,
}

impl Running {
    fn new(proc: SpawnedChild) -> Self {
        Running {
            proc,
            stdout_done: false,
            stderr_done: false,
            exit: None,
        }
    }

    fn exit_code(&self) -> Option<i32> {
        self.exit.map(|status| {
            status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0))
        })
    }

    fn poll_exit(&mut self) -> bool {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.proc.child.try_wait()
        {
            self.exit = Some(status);
        }
        self.exit.is_some()
    }

    /// Writes stdin within the step's deadline. A command that no longer
    /// reads stdin (broken pipe) is not an error: the step goes on to collect
    /// its output and exit. Returns how the step ended if it ended here.
    async fn write_stdin(
        &mut self,
        data: &[u8],
        deadline: Instant,
        interrupt: &mut watch::Receiver<bool>,
    ) -> Result<Option<StepEnd>, SessionError> {
        let Some(stdin) = self.proc.stdin.as_mut() else {
            return Ok(None);
        };
        let write = async {
            stdin.write_all(data).await?;
            stdin.flush().await
        };
        tokio::select! {
            biased;
            _ = interrupt.wait_for(|requested| *requested) => Ok(Some(StepEnd::Interrupted)),
            written = timeout_at(deadline, write) => match written {
                Ok(Ok(())) => Ok(None),
                Ok(Err(err)) if err.kind() == io::ErrorKind::BrokenPipe => {
                    self.proc.stdin = None;
                    Ok(None)
                }
                Ok(Err(err)) => Err(SessionError::Io(err)),
                Err(_elapsed) => Ok(Some(StepEnd::TimedOut)),
            },
        }
    }

    /// Collects output until exit, deadline, quiet interval or interrupt.
    async fn collect(
        &mut self,
        step: &mut Step,
        deadline: Instant,
        options: &ShellSessionOptions,
        interrupt: &mut watch::Receiver<bool>,
    ) -> Result<StepEnd, SessionError> {
        let mut quiet_until: Option<Instant> = None;
        loop {
            if self.exit.is_some() {
                return Ok(StepEnd::Exited);
            }
            let quiet = async {
                match quiet_until {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let got_output = tokio::select! {
                biased;
                _ = interrupt.wait_for(|requested| *requested) => return Ok(StepEnd::Interrupted),
                chunk = self.proc.stdout.recv(), if !self.stdout_done => {
                    absorb(chunk, &mut step.stdout, &mut self.stdout_done)
                }
                chunk = self.proc.stderr.recv(), if !self.stderr_done => {
                    absorb(chunk, &mut step.stderr, &mut self.stderr_done)
                }
                status = self.proc.child.wait() => {
                    self.exit = Some(status?);
                    false
                }
                () = sleep_until(deadline) => return Ok(StepEnd::TimedOut),
                () = quiet => return Ok(StepEnd::Quiet),
            };
            if got_output {
                quiet_until = options.return_after_quiet.map(|q| Instant::now() + q);
            }
        }
    }

    /// After the exit, takes output still in flight until both streams end
    /// or `flush` passes (a background process may hold a pipe open).
    async fn drain_after_exit(&mut self, step: &mut Step, flush: Duration) {
        let until = Instant::now() + flush;
        while !(self.stdout_done && self.stderr_done) {
            tokio::select! {
                chunk = self.proc.stdout.recv(), if !self.stdout_done => {
                    absorb(chunk, &mut step.stdout, &mut self.stdout_done);
                }
                chunk = self.proc.stderr.recv(), if !self.stderr_done => {
                    absorb(chunk, &mut step.stderr, &mut self.stderr_done);
                }
                () = sleep_until(until) => return,
            }
        }
    }

    /// Waits until the leader has exited and both output streams have ended
    /// (every process of the group that held them is gone), keeping output
    /// in `step` if given.
    async fn wait_gone(&mut self, mut step: Option<&mut Step>) -> io::Result<()> {
        let mut discard = Vec::new();
        while self.exit.is_none() || !(self.stdout_done && self.stderr_done) {
            let (out, err) = if let Some(step) = step.as_deref_mut() {
                (&mut step.stdout, &mut step.stderr)
            } else {
                discard.clear();
                (&mut discard, &mut Vec::new())
            };
            tokio::select! {
                chunk = self.proc.stdout.recv(), if !self.stdout_done => {
                    absorb(chunk, out, &mut self.stdout_done);
                }
                chunk = self.proc.stderr.recv(), if !self.stderr_done => {
                    absorb(chunk, err, &mut self.stderr_done);
                }
                status = self.proc.child.wait(), if self.exit.is_none() => {
                    self.exit = Some(status?);
                }
            }
        }
        Ok(())
    }

    /// SIGTERM to the group, wait; SIGKILL if anything is left, wait.
    async fn shut_down(
        &mut self,
        options: &ShellSessionOptions,
        mut step: Option<&mut Step>,
    ) -> Option<i32> {
        self.proc.stdin = None;
        let group = self.proc.group;
        let leader_running = !self.poll_exit();
        if leader_running || group.exists() {
            group.signal(Signal::SIGTERM);
            let gone = timeout(options.terminate_wait, self.wait_gone(step.as_deref_mut())).await;
            if !matches!(gone, Ok(Ok(()))) || group.exists() {
                group.signal(Signal::SIGKILL);
                let _ = timeout(options.kill_wait, self.wait_gone(step)).await;
            }
        }
        for reader in &self.proc.readers {
            reader.abort();
        }
        for reader in &mut self.proc.readers {
            let _ = timeout(options.process_close_wait, reader).await;
        }
        self.exit_code()
    }

    /// Synchronous last resort for a session dropped while running.
    fn kill_now(&mut self) {
        let group = self.proc.group;
        if !self.poll_exit() || group.exists() {
            group.signal(Signal::SIGKILL);
        }
        for reader in &self.proc.readers {
            reader.abort();
        }
    }
}

/// Adds a received chunk to `buf`, or marks the stream done at its end.
/// Returns whether output arrived.
fn absorb(chunk: Option<Vec<u8>>, buf: &mut Vec<u8>, done: &mut bool) -> bool {
    if let Some(bytes) = chunk {
        buf.extend_from_slice(&bytes);
        true
    } else {
        *done = true;
        false
    }
}

/// Six random decimal digits. The modulo bias over a `u32` is below one in
/// four thousand, which does not matter for an id checked for collisions.
fn random_session_id() -> String {
    let mut bytes = [0u8; 4];
    let value = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        // Without OS randomness fall back to the clock: ids stay unique
        // enough for an in-memory registry that checks for collisions.
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    };
    format!("{:06}", value % 1_000_000)
}
