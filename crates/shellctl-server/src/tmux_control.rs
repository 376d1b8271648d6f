//! A persistent tmux control-mode client (`tmux -C`).
//!
//! Every command becomes one line on the client's stdin, and its answer one
//! `%begin … %end` (or `%error`) block on its stdout, so a job start costs
//! no tmux client process. tmux answers a client's commands in the order it
//! sent them, one block per single-command line (a line that does not parse
//! gets one `%error` block), so replies are matched to requests by order.
//!
//! A control client must be attached to a session; it attaches to a small
//! idle session of its own ([`CONTROL_SESSION`]), which carries none of the
//! job-session prefix and so never shows up as a job. When the tmux server
//! dies, tmux says `%exit` and closes the stream: the client then counts as
//! dead, every unanswered request fails with [`ControlError::Lost`], and
//! [`crate::tmux::Tmux`] uses the plain command line until it starts a new
//! control client.
//!
//! Two tasks own the process: a writer (stdin; records each request's reply
//! slot right before writing its line) and a reader (stdout; parses blocks,
//! answers the oldest open request, reaps the child at the end). No lock is
//! held across an `.await`.
//!
//! Between the blocks, tmux sends notifications. One matters to
//! supervision: a window closed (`%window-close @N`, or
//! `%unlinked-window-close @N` for a window of another session, which is
//! every job's), so the reader hands window ids to
//! [`ControlHooks::window_closed`]: a job's session ended, whether its
//! program exited or someone killed it, and nobody has to ask tmux every
//! second.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, mpsc, oneshot};

/// The session the control client attaches to.
pub const CONTROL_SESSION: &str = "shellctl-control";

/// How long tmux may take to accept a new control client.
const ATTACH_DEADLINE: Duration = Duration::from_secs(10);

/// Why a control-mode command produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The client had ended before the command was handed to it; the
    /// command did not run.
    #[error("the tmux control client has ended")]
    Closed,
    /// The client ended after the command was handed to it and before
    /// tmux answered; the command may or may not have run.
    #[error("the tmux control client ended before answering")]
    Lost,
    /// An argument cannot travel on one control-mode line (it holds a line
    /// break); the command did not run.
    #[error("argument not representable on a control-mode line")]
    Unrepresentable,
    /// tmux ran the command and reported an error (its message).
    #[error("{0}")]
    Command(String),
}

/// Starting a control client failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlStartError {
    /// tmux could not be run.
    #[error("running tmux -C: {0}")]
    Spawn(#[from] std::io::Error),
    /// tmux ran but never attached the client.
    #[error("tmux -C did not attach: {0}")]
    Attach(String),
}

type Reply = oneshot::Sender<Result<String, ControlError>>;

/// Told a window id (the number after `@`) whenever a window closes.
pub type WindowClosed = Arc<dyn Fn(u32) + Send + Sync>;

/// What a control client tells its owner besides answers.
#[derive(Clone, Default)]
pub struct ControlHooks {
    /// Notified once when the client ends (usually: the tmux server died).
    pub exit: Arc<Notify>,
    /// Called with each closed window's id.
    pub window_closed: Option<WindowClosed>,
}

impl std::fmt::Debug for ControlHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlHooks")
            .field("window_closed", &self.window_closed.is_some())
            .finish_non_exhaustive()
    }
}

struct Request {
    line: String,
    reply: Reply,
}

/// A live control-mode client; cheap to share behind an `Arc`.
pub struct ControlClient {
    requests: mpsc::UnboundedSender<Request>,
    alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl ControlClient {
    /// Starts `tmux -C` on `socket`, attached to [`CONTROL_SESSION`]
    /// (created if missing), and waits until tmux has accepted it.
    /// `hooks.exit` is notified once when the client ends (usually: the
    /// tmux server died); `hooks.window_closed` hears of closed windows.
    pub async fn start(
        socket: &Path,
        hooks: ControlHooks,
    ) -> Result<ControlClient, ControlStartError> {
        let mut child = Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args(["-f", "/dev/null", "-C", "new-session", "-A", "-s"])
            .arg(CONTROL_SESSION)
            // Two words, so tmux runs it directly: an idle process that
            // reads a terminal nobody types into.
            .args(["cat", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ControlStartError::Attach("no pipes to tmux -C".into()));
        };
        let mut lines = BufReader::new(stdout);
        match tokio::time::timeout(ATTACH_DEADLINE, wait_for_attach(&mut lines)).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(ControlStartError::Attach(stderr_or(child, reason).await));
            }
            Err(_) => return Err(ControlStartError::Attach("timed out".into())),
        }
        let alive = Arc::new(AtomicBool::new(true));
        let pending: Pending = Arc::default();
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_requests(
            stdin,
            queue,
            Arc::clone(&pending),
            Arc::clone(&alive),
        ));
        tokio::spawn(read_replies(
            child,
            lines,
            pending,
            Arc::clone(&alive),
            hooks,
        ));
        Ok(ControlClient { requests, alive })
    }

    /// Whether the client still runs.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Stops using the client (it stopped answering): it counts as dead,
    /// takes no new commands, and ends once the last handle is dropped
    /// (its input closes, so tmux detaches it).
    pub fn abandon(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Runs one tmux command (its words, unquoted) and returns its output.
    /// The server submits and awaits separately; tests use this.
    #[cfg(test)]
    pub async fn command<S: AsRef<str>>(&self, words: &[S]) -> Result<String, ControlError> {
        self.submit(words)?.answer().await
    }

    /// Hands one command to the client without waiting: commands run in
    /// the order they were submitted.
    pub fn submit<S: AsRef<str>>(&self, words: &[S]) -> Result<PendingAnswer, ControlError> {
        let line = command_line(words).ok_or(ControlError::Unrepresentable)?;
        let (reply, answer) = oneshot::channel();
        if !self.is_alive() || self.requests.send(Request { line, reply }).is_err() {
            return Err(ControlError::Closed);
        }
        Ok(PendingAnswer(answer))
    }
}

/// The answer to a [`ControlClient::submit`]ted command, to await.
#[derive(Debug)]
pub struct PendingAnswer(oneshot::Receiver<Result<String, ControlError>>);

impl PendingAnswer {
    /// The command's output, or why there is none.
    pub async fn answer(self) -> Result<String, ControlError> {
        self.0.await.unwrap_or(Err(ControlError::Lost))
    }
}

/// Reply slots of the requests written so far, oldest first.
type Pending = Arc<Mutex<VecDeque<Reply>>>;

fn lock(pending: &Pending) -> MutexGuard<'_, VecDeque<Reply>> {
    // A queue of reply slots stays consistent across a panic.
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fail_all(pending: &Pending) {
    for reply in lock(pending).drain(..) {
        let _ = reply.send(Err(ControlError::Lost));
    }
}

async fn wait_for_attach(lines: &mut BufReader<ChildStdout>) -> Result<(), String> {
    let mut parser = BlockParser::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if lines
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("tmux -C ended".into());
        }
        match parser.line(&String::from_utf8_lossy(&buf)) {
            // The block answering the command line itself (not flagged as
            // a client command) closes once the client is attached.
            Some(ControlEvent::OtherBlockEnded { ok: true }) => return Ok(()),
            Some(ControlEvent::OtherBlockEnded { ok: false }) => {
                return Err("tmux -C refused the attach".into());
            }
            Some(ControlEvent::Exit) => return Err("tmux -C exited".into()),
            _ => {}
        }
    }
}

async fn stderr_or(mut child: Child, reason: String) -> String {
    let _ = child.start_kill();
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
    }
    let _ = child.wait().await;
    let text = text.trim();
    if text.is_empty() {
        reason
    } else {
        format!("{reason}: {text}")
    }
}

async fn write_requests(
    mut stdin: ChildStdin,
    mut queue: mpsc::UnboundedReceiver<Request>,
    pending: Pending,
    alive: Arc<AtomicBool>,
) {
    while let Some(Request { line, reply }) = queue.recv().await {
        // The slot goes in before the line goes out, so the reader always
        // finds it when the answer arrives.
        lock(&pending).push_back(reply);
        if stdin.write_all(line.as_bytes()).await.is_err() {
            alive.store(false, Ordering::Release);
            fail_all(&pending);
            return;
        }
    }
}

async fn read_replies(
    mut child: Child,
    mut lines: BufReader<ChildStdout>,
    pending: Pending,
    alive: Arc<AtomicBool>,
    hooks: ControlHooks,
) {
    let mut parser = BlockParser::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match parser.line(&String::from_utf8_lossy(&buf)) {
            Some(ControlEvent::Reply { ok, output }) => {
                let answer = if ok {
                    Ok(output)
                } else {
                    Err(ControlError::Command(output.trim_end().to_owned()))
                };
                // A reply with no slot would be a protocol surprise; it has
                // nobody to go to.
                if let Some(slot) = lock(&pending).pop_front() {
                    let _ = slot.send(answer);
                }
            }
            Some(ControlEvent::WindowClosed(window)) => {
                if let Some(window_closed) = &hooks.window_closed {
                    window_closed(window);
                }
            }
            Some(ControlEvent::Exit) => break,
            Some(ControlEvent::OtherBlockEnded { .. }) | None => {}
        }
    }
    alive.store(false, Ordering::Release);
    fail_all(&pending);
    let _ = child.start_kill();
    let _ = child.wait().await;
    hooks.exit.notify_one();
}

/// What one line of control-mode output completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEvent {
    /// The answer to one of this client's commands.
    Reply {
        /// `%end` (true) or `%error` (false).
        ok: bool,
        /// The command's output, one `\n` after each line.
        output: String,
    },
    /// A block not flagged as this client's command ended (the answer to
    /// the command on tmux's own command line).
    OtherBlockEnded {
        /// `%end` (true) or `%error` (false).
        ok: bool,
    },
    /// A window closed (`%window-close @N`, `%unlinked-window-close @N`):
    /// its id.
    WindowClosed(u32),
    /// tmux is detaching the client (`%exit`).
    Exit,
}

/// Turns control-mode output lines into [`ControlEvent`]s. Notifications
/// outside blocks are skipped (`%sessions-changed`, `%output`, …) except a
/// closed window; inside a block every line is output, even one that
/// looks like a notification.
#[derive(Debug, Default)]
pub struct BlockParser {
    open: Option<OpenBlock>,
}

#[derive(Debug)]
struct OpenBlock {
    /// `<time> <number> <flags>` of the `%begin` line, which the closing
    /// line repeats. Output lines are not escaped (a captured screen may
    /// hold anything), so the whole guard is compared, not the number
    /// alone.
    guard: String,
    from_client: bool,
    output: String,
}

impl BlockParser {
    /// Feeds one line (a trailing `\n` or `\r\n` is ignored).
    pub fn line(&mut self, line: &str) -> Option<ControlEvent> {
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(block) = &mut self.open {
            let closing = block_guard(line, "%end")
                .map(|_| true)
                .or_else(|| block_guard(line, "%error").map(|_| false));
            let same_guard = line.split_once(' ').map(|(_, guard)| guard) == Some(&block.guard);
            match closing {
                Some(ok) if same_guard => {
                    let block = self.open.take()?;
                    return Some(if block.from_client {
                        ControlEvent::Reply {
                            ok,
                            output: block.output,
                        }
                    } else {
                        ControlEvent::OtherBlockEnded { ok }
                    });
                }
                _ => {
                    block.output.push_str(line);
                    block.output.push('\n');
                    return None;
                }
            }
        }
        if let Some((_, flags)) = block_guard(line, "%begin") {
            self.open = Some(OpenBlock {
                guard: line
                    .split_once(' ')
                    .map(|(_, guard)| guard)
                    .unwrap_or_default()
                    .to_owned(),
                // Flag 1 marks a command this client sent.
                from_client: flags & 1 == 1,
                output: String::new(),
            });
            return None;
        }
        if line == "%exit" || line.starts_with("%exit ") {
            return Some(ControlEvent::Exit);
        }
        let closed = line
            .strip_prefix("%window-close @")
            .or_else(|| line.strip_prefix("%unlinked-window-close @"));
        if let Some(Ok(window)) = closed.map(str::parse::<u32>) {
            return Some(ControlEvent::WindowClosed(window));
        }
        None
    }
}

/// Parses `%begin|%end|%error <time> <number> <flags>` into the command
/// number and flags.
fn block_guard<'a>(line: &'a str, keyword: &str) -> Option<(&'a str, u32)> {
    let mut words = line.split(' ');
    if words.next()? != keyword {
        return None;
    }
    let _time = words.next()?.parse::<u64>().ok()?;
    let number = words.next()?;
    number.parse::<u64>().ok()?;
    let flags = words.next().map_or(Some(0), |f| f.parse::<u32>().ok())?;
    if words.next().is_some() {
        return None;
    }
    Some((number, flags))
}

/// One control-mode line for a command: every word single-quoted for
/// tmux's command parser, so `;`, `#`, `$`, `~` and spaces stay literal.
/// `None` when a word holds a line break, which no line can carry.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> Option<String> {
    let mut line = String::new();
    for word in words {
        let word = word.as_ref();
        if word.contains(['\n', '\r']) {
            return None;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push('\'');
        // A single quote cannot appear inside single quotes: close, add it
        // double-quoted, reopen (tmux joins adjacent quoted pieces).
        line.push_str(&word.replace('\'', "'\"'\"'"));
        line.push('\'');
    }
    line.push('\n');
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(parser: &mut BlockParser, lines: &[&str]) -> Vec<ControlEvent> {
        lines.iter().filter_map(|l| parser.line(l)).collect()
    }

    #[test]
    fn the_attach_block_is_not_a_reply() {
        let mut parser = BlockParser::default();
        let events = feed(
            &mut parser,
            &["%begin 1795714939 263 0", "%end 1795714939 263 0"],
        );
        assert_eq!(events, vec![ControlEvent::OtherBlockEnded { ok: true }]);
    }

    #[test]
    fn replies_carry_their_output_and_skip_interleaved_notifications() {
        let mut parser = BlockParser::default();
        let events = feed(
            &mut parser,
            &[
                "%window-add @0",
                "%sessions-changed",
                "%begin 1795714939 270 1",
                "a b c",
                "%sessions-changed",
                "%end 1795714939 270 1",
                "%unlinked-window-close @3",
                "%begin 1795714939 271 1",
                "%end 1795714939 271 1",
            ],
        );
        assert_eq!(
            events,
            vec![
                ControlEvent::Reply {
                    ok: true,
                    output: "a b c\n%sessions-changed\n".into()
                },
                ControlEvent::WindowClosed(3),
                ControlEvent::Reply {
                    ok: true,
                    output: String::new()
                },
            ]
        );
    }

    #[test]
    fn closed_windows_are_reported_outside_blocks_only() {
        let mut parser = BlockParser::default();
        let events = feed(
            &mut parser,
            &[
                "%window-close @7",
                "%unlinked-window-close @12",
                "%unlinked-window-close @x",
                "%begin 1 9 1",
                "%unlinked-window-close @13",
                "%end 1 9 1",
            ],
        );
        assert_eq!(
            events,
            vec![
                ControlEvent::WindowClosed(7),
                ControlEvent::WindowClosed(12),
                ControlEvent::Reply {
                    ok: true,
                    output: "%unlinked-window-close @13\n".into()
                },
            ]
        );
    }

    #[test]
    fn errors_and_lookalike_guards_inside_a_block() {
        let mut parser = BlockParser::default();
        let events = feed(
            &mut parser,
            &[
                "%begin 1 275 1",
                // Another command's number, or a malformed guard: output.
                "%end 1 999 1",
                "%error x 275 1",
                "parse error: unknown command: bogus",
                "%error 1 275 1",
            ],
        );
        assert_eq!(
            events,
            vec![ControlEvent::Reply {
                ok: false,
                output: "%end 1 999 1\n%error x 275 1\nparse error: unknown command: bogus\n"
                    .into()
            }]
        );
    }

    #[test]
    fn exit_ends_the_stream_only_outside_blocks() {
        let mut parser = BlockParser::default();
        assert_eq!(
            feed(&mut parser, &["%begin 1 5 1", "%exit", "%end 1 5 1"]),
            vec![ControlEvent::Reply {
                ok: true,
                output: "%exit\n".into()
            }]
        );
        assert_eq!(
            feed(&mut parser, &["%exit server exited"]),
            vec![ControlEvent::Exit]
        );
    }

    #[test]
    fn command_lines_quote_every_word() {
        assert_eq!(
            command_line(&["display-message", "-p", "it's; #{x} $HOME ~"]).unwrap(),
            "'display-message' '-p' 'it'\"'\"'s; #{x} $HOME ~'\n"
        );
        assert_eq!(command_line(&["a\nb"]), None);
        assert_eq!(command_line(&["a\rb"]), None);
    }

    #[tokio::test]
    async fn unanswered_requests_fail_as_lost_when_the_reader_ends() {
        let pending: Pending = Arc::default();
        let (reply, answer) = oneshot::channel();
        lock(&pending).push_back(reply);
        fail_all(&pending);
        assert_eq!(answer.await.unwrap(), Err(ControlError::Lost));
    }
}
