//! Driving the jobs' tmux server: one server per state dir, on its own
//! socket in the private runtime dir, with no user config.
//!
//! Commands travel over a persistent control-mode client
//! ([`crate::tmux_control`]) when one runs, and otherwise as one `tmux`
//! client process per call (the fallback, and the whole story with
//! [`TmuxClientMode::Cli`]). The job start attaches the pipe before the
//! runner is let through its start gate, so none of the job's output is
//! lost. Nothing here runs on a waiter's path: waits watch files.

use crate::checks::JobChecks;
use crate::metrics::{TmuxClient, TmuxTimings};
use crate::tmux_control::{ControlClient, ControlError, ControlHooks};
use shellctl_job::lifecycle::PaneView;
use shellctl_proto::JobId;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio::sync::Notify;

/// After a control client fails to start, the plain command line serves
/// alone this long before the next attempt.
const CONTROL_RETRY: Duration = Duration::from_secs(10);

/// Longest any tmux command may take (they take milliseconds). A wedged
/// tmux fails requests after this instead of hanging them; a control client
/// that misses it is abandoned and replaced.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// How the server talks to tmux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TmuxClientMode {
    /// A persistent control-mode client, the command line as fallback.
    #[default]
    Control,
    /// One `tmux` process per command.
    Cli,
}

/// The oldest tmux the server and `shellctl attach` work with, as
/// (major, minor): 3.2, the stated minimum (README), which brought the
/// client flags `attach` passes (`attach-session -f read-only,ignore-size`).
pub const MIN_TMUX_VERSION: (u32, u32) = (3, 2);

/// Prefix of every job's session name.
pub const SESSION_PREFIX: &str = "shellctl-job-";

/// A tmux call failed.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    /// tmux could not be run at all.
    #[error("running tmux: {0}")]
    Spawn(#[from] std::io::Error),
    /// tmux ran and reported an error.
    #[error("tmux {command}: {stderr}")]
    Failed {
        /// The tmux command that failed.
        command: String,
        /// What tmux said.
        stderr: String,
    },
    /// No tmux server runs on the socket.
    #[error("no tmux server is running")]
    NoServer,
}

/// Everything needed to start one job.
#[derive(Debug)]
pub struct JobLaunch<'a> {
    /// The job.
    pub job_id: JobId,
    /// Its directory.
    pub job_dir: &'a Path,
    /// The server's state dir (the pipe side commits into its database).
    pub state_dir: &'a Path,
    /// PTY width.
    pub cols: u16,
    /// PTY height.
    pub rows: u16,
}

/// The jobs' tmux server.
#[derive(Debug, Clone)]
pub struct Tmux {
    socket: PathBuf,
    shellctl: PathBuf,
    /// `None` in [`TmuxClientMode::Cli`].
    control: Option<Arc<ControlSlot>>,
    /// How long each command takes, by path (the metrics).
    timings: TmuxTimings,
    /// Each job's window, by tmux's window id, so that a closed window
    /// (a control-mode notification) names its job.
    windows: Windows,
    /// Where closed windows of jobs are reported.
    checks: Arc<JobChecks>,
}

/// Job windows by window id (`@N` without the `@`).
type Windows = Arc<Mutex<HashMap<u32, JobId>>>;

/// The current control client, if any, and when to try starting one.
#[derive(Debug, Default)]
struct ControlSlot {
    client: Mutex<Option<Arc<ControlClient>>>,
    retry_at: Mutex<Option<Instant>>,
    /// Notified when a control client ends (the tmux server died).
    ended: Arc<Notify>,
}

/// Whether a command may be sent again after its control client ended
/// without answering (it may have run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Unsafe,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both slots hold a single value; a panic cannot leave them torn.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tmux {
    /// A driver for the server on `socket`; jobs run `shellctl` from
    /// `shellctl_bin` (the runner and the pipe side). Every command's
    /// duration is recorded in `timings`. Jobs whose window closes are
    /// reported to `checks` (in control mode, where tmux tells).
    pub fn new(
        socket: PathBuf,
        shellctl_bin: PathBuf,
        mode: TmuxClientMode,
        timings: TmuxTimings,
        checks: Arc<JobChecks>,
    ) -> Self {
        Tmux {
            socket,
            shellctl: shellctl_bin,
            control: (mode == TmuxClientMode::Control).then(Arc::default),
            timings,
            windows: Arc::default(),
            checks,
        }
    }

    /// Whether tmux reports closed windows now (a control client runs), so
    /// that a vanished session needs no periodic look to be noticed.
    pub fn reports_closed_windows(&self) -> bool {
        self.live_control().is_some()
    }

    /// Records the window of a job.
    fn record_window(&self, window: u32, job_id: JobId) {
        lock(&self.windows).insert(window, job_id);
    }

    /// Forgets the windows of jobs for which `keep` says no (jobs no longer
    /// live: their close notice was missed, or is of no more use).
    pub fn forget_windows(&self, keep: impl Fn(JobId) -> bool) {
        lock(&self.windows).retain(|_, job_id| keep(*job_id));
    }

    /// What a new control client reports to: closed windows of known jobs
    /// as their sessions gone, of unknown windows as a need to look at
    /// everything (a job whose window was never recorded).
    fn hooks(&self, slot: &ControlSlot) -> ControlHooks {
        let windows = Arc::clone(&self.windows);
        let checks = Arc::clone(&self.checks);
        ControlHooks {
            exit: Arc::clone(&slot.ended),
            window_closed: Some(Arc::new(move |window| {
                let job = lock(&windows).remove(&window);
                match job {
                    Some(job_id) => checks.session_gone(job_id),
                    None => checks.everything(),
                }
            })),
        }
    }

    /// Notified whenever a control client ends, which usually means the
    /// tmux server died; `None` in [`TmuxClientMode::Cli`].
    pub fn control_ended(&self) -> Option<Arc<Notify>> {
        self.control.as_ref().map(|slot| Arc::clone(&slot.ended))
    }

    fn live_control(&self) -> Option<Arc<ControlClient>> {
        let slot = self.control.as_ref()?;
        lock(&slot.client)
            .as_ref()
            .filter(|client| client.is_alive())
            .cloned()
    }

    /// Starts a control client if the mode wants one and none runs (at
    /// most once per ten seconds after a failure). Failure is not an
    /// error: the command line keeps serving.
    pub async fn ensure_control(&self) {
        let Some(slot) = &self.control else { return };
        if self.live_control().is_some() {
            return;
        }
        if lock(&slot.retry_at).is_some_and(|at| Instant::now() < at) {
            return;
        }
        match ControlClient::start(&self.socket, self.hooks(slot)).await {
            Ok(client) => {
                *lock(&slot.client) = Some(Arc::new(client));
                *lock(&slot.retry_at) = None;
                // Windows may have closed while no client listened.
                self.checks.everything();
            }
            Err(err) => {
                tracing::warn!("tmux control mode unavailable, using the command line: {err}");
                *lock(&slot.retry_at) = Some(Instant::now() + CONTROL_RETRY);
            }
        }
    }

    /// Ends the control client (at shutdown): tmux detaches it when its
    /// input closes.
    pub fn close_control(&self) {
        if let Some(slot) = &self.control {
            lock(&slot.client).take();
        }
    }

    /// The session name of a job.
    pub fn session_name(job_id: JobId) -> String {
        format!("{SESSION_PREFIX}{job_id}")
    }

    /// Runs `args` (commands separated by `;` words, as on tmux's command
    /// line) on the control client if one runs, else as a tmux process.
    async fn run(&self, args: Vec<OsString>, repeat: Repeat) -> Result<String, TmuxError> {
        if let Some(client) = self.live_control()
            && let Some(words) = utf8_words(&args)
        {
            match run_by_control(&client, &words, &self.timings).await {
                Ok(output) => return Ok(output),
                Err(err) => {
                    if let Some(failure) = control_failure(&args, err, repeat) {
                        return Err(failure);
                    }
                }
            }
        }
        self.run_cli(args).await
    }

    async fn run_cli(&self, args: Vec<OsString>) -> Result<String, TmuxError> {
        let running = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(&args)
            .kill_on_drop(true)
            .output();
        let sent = Instant::now();
        // On the deadline the dropped future kills the tmux client.
        let finished = tokio::time::timeout(COMMAND_DEADLINE, running).await;
        self.timings
            .observe(TmuxClient::Cli, &command_name(&args), sent.elapsed());
        let Ok(output) = finished else {
            return Err(TmuxError::Failed {
                command: command_name(&args),
                stderr: format!("no answer within {} s", COMMAND_DEADLINE.as_secs()),
            });
        };
        let output = output?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.contains("no server running") || stderr.contains("error connecting") {
            return Err(TmuxError::NoServer);
        }
        Err(TmuxError::Failed {
            command: command_name(&args),
            stderr,
        })
    }

    /// Runs each of `commands` (no `;` separators needed: a `;` word is
    /// an argument here) and returns their outputs, in order. On the
    /// control client they go out together; on the command line, one
    /// process each.
    async fn run_each(
        &self,
        commands: Vec<Vec<OsString>>,
        repeat: Repeat,
    ) -> Result<Vec<String>, TmuxError> {
        if let Some(client) = self.live_control() {
            let lines: Option<Vec<Vec<&str>>> =
                commands.iter().map(|command| utf8_words(command)).collect();
            if let Some(lines) = lines {
                match each_by_control(&client, &lines, &self.timings).await {
                    Ok(outputs) => return Ok(outputs),
                    Err(err) => {
                        let first = commands.first().cloned().unwrap_or_default();
                        if let Some(failure) = control_failure(&first, err, repeat) {
                            return Err(failure);
                        }
                    }
                }
            }
        }
        let mut outputs = Vec::with_capacity(commands.len());
        for command in commands {
            outputs.push(
                self.run_cli(command.into_iter().map(cli_word).collect())
                    .await?,
            );
        }
        Ok(outputs)
    }

    /// Starts the tmux server if needed and keeps it alive without sessions,
    /// so no job pays for a server start.
    /// Then starts the control client (see [`Tmux::ensure_control`]).
    pub async fn ensure_server(&self) -> Result<(), TmuxError> {
        self.run_cli(args([
            "start-server",
            ";",
            "set-option",
            "-g",
            "exit-empty",
            "off",
        ]))
        .await?;
        self.ensure_control().await;
        Ok(())
    }

    /// Starts a job: a detached session running the runner, with the pipe
    /// side attached. The runner waits at its gate until the pipe side is
    /// ready, so the pipe may follow the session in a second command.
    pub async fn start_job(&self, launch: &JobLaunch<'_>) -> Result<(), TmuxError> {
        let session = Self::session_name(launch.job_id);
        // The pipe command is a shell string (tmux runs it with `sh -c`)
        // and a format: every piece is quoted for sh, and `#` doubled so
        // tmux keeps it; the job id is validated and needs neither.
        let pipe_command = format!(
            "exec {} sanitize-pty --job-id {} --job-dir {} --state-dir {}",
            format_literal(&shell_quote(&self.shellctl.to_string_lossy())),
            launch.job_id,
            format_literal(&shell_quote(&launch.job_dir.to_string_lossy())),
            format_literal(&shell_quote(&launch.state_dir.to_string_lossy())),
        );
        // `-P -F` prints the new window's id, which closed-window notices
        // name.
        let mut new_session: Vec<OsString> = args([
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{window_id}",
            "-s",
            &session,
            "-x",
            &launch.cols.to_string(),
            "-y",
            &launch.rows.to_string(),
        ]);
        // Given as separate arguments, the runner is executed directly,
        // without a shell.
        new_session.push(self.shellctl.clone().into_os_string());
        new_session.extend(args(["job-runner", "--job-dir"]));
        new_session.push(launch.job_dir.as_os_str().to_owned());
        let pipe_pane = args([
            "pipe-pane",
            "-o",
            "-t",
            &format!("{session}:0.0"),
            &pipe_command,
        ]);
        let mut call = new_session;
        call.push(";".into());
        call.extend(pipe_pane);
        let output = self.run(call, Repeat::Unsafe).await?;
        if let Some(window) = output.lines().next().and_then(window_id) {
            self.record_window(window, launch.job_id);
        } else {
            // Its close then reads as an unknown window's: a look at every
            // job finds it.
            tracing::warn!(job_id = %launch.job_id, "no window id in {output:?}");
        }
        Ok(())
    }

    /// Types the contents of `file` into the job's pane, as pasted text
    /// (line feeds become Enter, as when typed), then drops the buffer.
    pub async fn paste_file(&self, job_id: JobId, file: &Path) -> Result<(), TmuxError> {
        let buffer = format!("shellctl-in-{job_id}");
        let mut call = args(["load-buffer", "-b", &buffer]);
        call.push(file.as_os_str().to_owned());
        call.extend(args([
            ";",
            "paste-buffer",
            "-d",
            "-b",
            &buffer,
            "-t",
            &pane_target(job_id),
        ]));
        self.run(call, Repeat::Unsafe).await.map(drop)
    }

    /// Sends Ctrl-C to the job's pane.
    pub async fn send_ctrl_c(&self, job_id: JobId) -> Result<(), TmuxError> {
        let target = pane_target(job_id);
        self.run(args(["send-keys", "-t", &target, "C-c"]), Repeat::Unsafe)
            .await
            .map(drop)
    }

    /// Kills the job's session; a session already gone is not an error.
    pub async fn kill_session(&self, job_id: JobId) -> Result<(), TmuxError> {
        let target = Self::session_name(job_id);
        match self
            .run(args(["kill-session", "-t", &target]), Repeat::Safe)
            .await
        {
            Ok(_) | Err(TmuxError::NoServer) => Ok(()),
            // tmux says "can't find session", or, when it has no session
            // at all (say, just restarted), "no current target".
            Err(TmuxError::Failed { stderr, .. })
                if stderr.contains("can't find") || stderr.contains("no current target") =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// The job's screen: its size, cursor, alternate-screen flag, title and
    /// visible lines, and up to `history` scrollback lines above them. One
    /// batch of two commands: the formats, then one capture from
    /// `history` lines up through the last visible line, whose last `rows`
    /// lines are the screen (tmux prints every visible line, blank ones
    /// too, and starts at the top of the scrollback when it holds fewer).
    pub async fn capture_screen(
        &self,
        job_id: JobId,
        history: u32,
    ) -> Result<PaneScreen, TmuxError> {
        let target = pane_target(job_id);
        let mut capture = args(["capture-pane", "-p", "-t", &target]);
        if history > 0 {
            capture.extend(args(["-S", &format!("-{history}")]));
        }
        let mut outputs = self
            .run_each(
                vec![
                    args(["display-message", "-p", "-t", &target, SCREEN_FORMAT]),
                    capture,
                ],
                Repeat::Safe,
            )
            .await?
            .into_iter();
        let (Some(formats), Some(captured)) = (outputs.next(), outputs.next()) else {
            return Err(TmuxError::Failed {
                command: "capture-pane".into(),
                stderr: "missing output".into(),
            });
        };
        PaneScreen::parse(&formats, &captured).ok_or_else(|| TmuxError::Failed {
            command: "display-message".into(),
            stderr: format!("unexpected answer {formats:?}"),
        })
    }

    /// Presses `keys` in the job's pane, in order: key names
    /// ([`shellctl_proto::terminal::is_key_name`]) as keys, anything else as
    /// literal text.
    pub async fn send_keys(&self, job_id: JobId, keys: &[String]) -> Result<(), TmuxError> {
        let target = pane_target(job_id);
        let mut commands: Vec<Vec<OsString>> = Vec::new();
        for key in keys {
            match tmux_key_name(key) {
                Some(name) => {
                    // Consecutive keys share one command.
                    let extend = commands
                        .last()
                        .is_some_and(|last| last.get(3).is_none_or(|word| word != "-l"));
                    match commands.last_mut() {
                        Some(last) if extend => last.push(name.into()),
                        _ => commands.push(args(["send-keys", "-t", &target, &name])),
                    }
                }
                None => commands.push(args(["send-keys", "-t", &target, "-l", "--", key])),
            }
        }
        self.run_each(commands, Repeat::Unsafe).await.map(drop)
    }

    /// The pid of the pane's first process (the job's runner).
    pub async fn pane_pid(&self, job_id: JobId) -> Result<u32, TmuxError> {
        let answer = self.pane_format(job_id, "#{pane_pid}").await?;
        answer.trim().parse().map_err(|_| TmuxError::Failed {
            command: "display-message".into(),
            stderr: format!("unexpected pane pid {answer:?}"),
        })
    }

    /// The pane's size now: columns and rows.
    pub async fn pane_size(&self, job_id: JobId) -> Result<(u16, u16), TmuxError> {
        let answer = self
            .pane_format(job_id, "#{pane_width} #{pane_height}")
            .await?;
        let mut numbers = answer.split_whitespace().map(str::parse::<u16>);
        match (numbers.next(), numbers.next()) {
            (Some(Ok(cols)), Some(Ok(rows))) => Ok((cols, rows)),
            _ => Err(TmuxError::Failed {
                command: "display-message".into(),
                stderr: format!("unexpected pane size {answer:?}"),
            }),
        }
    }

    /// One format of the job's pane, as tmux expands it.
    async fn pane_format(&self, job_id: JobId, format: &str) -> Result<String, TmuxError> {
        Ok(self
            .run_each(
                vec![args([
                    "display-message",
                    "-p",
                    "-t",
                    &pane_target(job_id),
                    format,
                ])],
                Repeat::Safe,
            )
            .await?
            .concat())
    }

    /// Resizes the job's terminal (its window; the pane follows and the
    /// program gets `SIGWINCH`). The size then stays fixed, also when a
    /// person attaches.
    pub async fn resize(&self, job_id: JobId, cols: u16, rows: u16) -> Result<(), TmuxError> {
        let session = Self::session_name(job_id);
        self.run_each(
            vec![args([
                "resize-window",
                "-t",
                &session,
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])],
            Repeat::Safe,
        )
        .await
        .map(drop)
    }

    /// The panes of all job sessions, by job id, in one call; their
    /// windows are recorded on the way (for jobs an earlier run started).
    pub async fn job_panes(&self) -> Result<HashMap<JobId, PaneView>, TmuxError> {
        let listing = match self
            .run(
                args([
                    "list-panes",
                    "-a",
                    "-F",
                    "#{session_name} #{pane_pipe} #{pane_dead} #{window_id}",
                ]),
                Repeat::Safe,
            )
            .await
        {
            Ok(listing) => listing,
            // tmux 3.3 answers this when the server has no sessions at all.
            Err(TmuxError::Failed { stderr, .. }) if stderr.contains("no current target") => {
                String::new()
            }
            Err(err) => return Err(err),
        };
        let panes: Vec<(JobId, PaneView, Option<u32>)> = listing
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let job = JobId::parse(fields.next()?.strip_prefix(SESSION_PREFIX)?).ok()?;
                let piped = fields.next()? == "1";
                let dead = fields.next()? == "1";
                let window = fields.next().and_then(window_id);
                Some((job, PaneView { piped, dead }, window))
            })
            .collect();
        let mut windows = lock(&self.windows);
        Ok(panes
            .into_iter()
            .map(|(job_id, pane, window)| {
                if let Some(window) = window {
                    windows.insert(window, job_id);
                }
                (job_id, pane)
            })
            .collect())
    }
}

impl Tmux {
    /// The pane of one job's session; `None` when the session is gone.
    pub async fn job_pane(&self, job_id: JobId) -> Result<Option<PaneView>, TmuxError> {
        let target = Self::session_name(job_id);
        let listing = self
            .run(
                args([
                    "list-panes",
                    "-s",
                    "-t",
                    &target,
                    "-F",
                    "#{pane_pipe} #{pane_dead}",
                ]),
                Repeat::Safe,
            )
            .await;
        match listing {
            Ok(listing) => {
                let mut fields = listing.split_whitespace();
                match (fields.next(), fields.next()) {
                    (Some(piped), Some(dead)) => Ok(Some(PaneView {
                        piped: piped == "1",
                        dead: dead == "1",
                    })),
                    _ => Ok(None),
                }
            }
            Err(TmuxError::NoServer) => Ok(None),
            Err(TmuxError::Failed { stderr, .. })
                if stderr.contains("can't find") || stderr.contains("no current target") =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }
}

/// The number of a window id as tmux prints it (`@12`).
fn window_id(word: &str) -> Option<u32> {
    word.trim().strip_prefix('@')?.parse().ok()
}

fn args<const N: usize>(items: [&str; N]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// The formats of a screen capture, space-separated, the title last (it
/// may hold spaces).
const SCREEN_FORMAT: &str =
    "#{pane_width} #{pane_height} #{cursor_x} #{cursor_y} #{alternate_on} #{pane_title}";

/// The pane of a job.
fn pane_target(job_id: JobId) -> String {
    format!("{}:0.0", Tmux::session_name(job_id))
}

/// tmux's name for one of our key names; `None` for text.
fn tmux_key_name(key: &str) -> Option<String> {
    if !shellctl_proto::terminal::is_key_name(key) {
        return None;
    }
    Some(
        match key {
            "Insert" => "IC",
            "Delete" => "DC",
            "PageUp" => "PPage",
            "PageDown" => "NPage",
            other => other,
        }
        .to_owned(),
    )
}

/// A word for tmux's command line, where an argument ending in `;` ends
/// the command: such a `;` is escaped to stay part of the argument.
fn cli_word(word: OsString) -> OsString {
    match word.to_str() {
        Some(text) if text.ends_with(';') => format!("{}\\;", &text[..text.len() - 1]).into(),
        _ => word,
    }
}

/// A job's pane as [`Tmux::capture_screen`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneScreen {
    /// Width.
    pub cols: u16,
    /// Height.
    pub rows: u16,
    /// Cursor column, from 0.
    pub cursor_col: u16,
    /// Cursor row, from 0 at the top of the visible screen.
    pub cursor_row: u16,
    /// Whether the alternate screen is on.
    pub alternate_screen: bool,
    /// The pane's title.
    pub title: String,
    /// Exactly `rows` visible lines, trailing spaces trimmed.
    pub lines: Vec<String>,
    /// Scrollback lines above them, oldest first.
    pub history: Vec<String>,
}

impl PaneScreen {
    fn parse(formats: &str, captured: &str) -> Option<PaneScreen> {
        let formats = formats.strip_suffix('\n').unwrap_or(formats);
        let mut fields = formats.splitn(6, ' ');
        let mut number = || fields.next()?.parse::<u16>().ok();
        let (cols, rows, cursor_col, cursor_row) = (number()?, number()?, number()?, number()?);
        let alternate_screen = fields.next()? == "1";
        let title = fields.next().unwrap_or_default().to_owned();
        let mut all: Vec<String> = captured
            .lines()
            .map(|line| line.trim_end_matches(' ').to_owned())
            .collect();
        let visible = usize::from(rows);
        // A resize between the two commands could change the count: the
        // screen is always exactly `rows` lines.
        let split = all.len().saturating_sub(visible);
        let mut lines = all.split_off(split);
        lines.resize(visible, String::new());
        Some(PaneScreen {
            cols,
            rows,
            cursor_col,
            cursor_row,
            alternate_screen,
            title,
            lines,
            history: all,
        })
    }
}

/// Sends each command as its own line, all before awaiting any (an answer
/// that never comes abandons the client), and returns each one's output. The first failure is the answer; `Closed`
/// only if nothing was sent. Each command's time, from sending the batch
/// to its own answer (or to giving up on it), goes into `timings`.
async fn each_by_control(
    client: &ControlClient,
    commands: &[Vec<&str>],
    timings: &TmuxTimings,
) -> Result<Vec<String>, ControlError> {
    // Checked before anything is sent: a command refused half-way would
    // leave the caller unable to tell what ran.
    if commands
        .iter()
        .flatten()
        .any(|word| word.contains(['\n', '\r']))
    {
        return Err(ControlError::Unrepresentable);
    }
    let sent = Instant::now();
    let mut answers = Vec::new();
    for command in commands {
        match client.submit(command) {
            Ok(answer) => answers.push((command.first().copied().unwrap_or_default(), answer)),
            Err(ControlError::Closed) if !answers.is_empty() => return Err(ControlError::Lost),
            Err(err) => return Err(err),
        }
    }
    let mut outputs = Vec::with_capacity(answers.len());
    for (name, answer) in answers {
        let answered = tokio::time::timeout(COMMAND_DEADLINE, answer.answer()).await;
        timings.observe(TmuxClient::Control, name, sent.elapsed());
        if let Ok(answer) = answered {
            outputs.push(answer?);
        } else {
            client.abandon();
            return Err(ControlError::Lost);
        }
    }
    Ok(outputs)
}

/// Sends each `;`-separated command as its own line (one line, one
/// answer) and joins their outputs.
async fn run_by_control(
    client: &ControlClient,
    words: &[&str],
    timings: &TmuxTimings,
) -> Result<String, ControlError> {
    let commands: Vec<Vec<&str>> = words
        .split(|word| *word == ";")
        .map(<[&str]>::to_vec)
        .collect();
    Ok(each_by_control(client, &commands, timings).await?.concat())
}

fn utf8_words(args: &[OsString]) -> Option<Vec<&str>> {
    args.iter().map(|arg| arg.to_str()).collect()
}

fn command_name(args: &[OsString]) -> String {
    args.first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn lost(args: &[OsString]) -> TmuxError {
    TmuxError::Failed {
        command: command_name(args),
        stderr: ControlError::Lost.to_string(),
    }
}

/// What a control-mode failure means for the caller: `None` when the
/// command line should take the command instead (it never ran, or running
/// it again is harmless), else the error to report.
fn control_failure(args: &[OsString], err: ControlError, repeat: Repeat) -> Option<TmuxError> {
    match err {
        ControlError::Closed | ControlError::Unrepresentable => None,
        ControlError::Lost if repeat == Repeat::Safe => None,
        ControlError::Lost => Some(lost(args)),
        ControlError::Command(stderr) => Some(TmuxError::Failed {
            command: command_name(args),
            stderr,
        }),
    }
}

/// Escapes `text` for a tmux format, so it expands to itself.
pub fn format_literal(text: &str) -> String {
    text.replace('#', "##")
}

/// Quotes `text` for `sh`: single quotes, with embedded ones spliced in.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_every_character() {
        for raw in [
            "plain",
            "with space",
            "it's",
            "$(rm -rf /)",
            "a\"b",
            "`x`",
            "\\n",
            "'",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(raw)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), raw);
        }
    }
}
