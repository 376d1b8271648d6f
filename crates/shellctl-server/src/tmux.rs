//! Driving the jobs' tmux server: one server per state dir, on its own
//! socket in the private runtime dir, with no user config.
//!
//! Every call is one `tmux` client process; a job starts with a single call
//! (`new-session … ; pipe-pane …`), so the pipe is attached in the same
//! server loop iteration that creates the pane and none of the job's output
//! is lost. Nothing here runs on a waiter's path: waits watch files.

use shellctl_proto::JobId;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::process::Command;

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

/// What the monitor needs to know about one job's pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneState {
    /// A pipe (the job's sanitizer) is attached.
    pub piped: bool,
    /// The pane's process has exited.
    pub dead: bool,
}

/// Everything needed to start one job.
#[derive(Debug)]
pub struct JobLaunch<'a> {
    /// The job.
    pub job_id: &'a JobId,
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
}

impl Tmux {
    /// A driver for the server on `socket`; jobs run `shellctl` from
    /// `shellctl_bin` (the runner and the pipe side).
    pub fn new(socket: PathBuf, shellctl_bin: PathBuf) -> Self {
        Tmux {
            socket,
            shellctl: shellctl_bin,
        }
    }

    /// The session name of a job.
    pub fn session_name(job_id: &JobId) -> String {
        format!("{SESSION_PREFIX}{job_id}")
    }

    async fn run(&self, args: Vec<OsString>) -> Result<String, TmuxError> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(&args)
            .kill_on_drop(true)
            .output()
            .await?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.contains("no server running") || stderr.contains("error connecting") {
            return Err(TmuxError::NoServer);
        }
        let command = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        Err(TmuxError::Failed { command, stderr })
    }

    /// Starts the tmux server if needed and keeps it alive without sessions,
    /// so no job pays for a server start.
    pub async fn ensure_server(&self) -> Result<(), TmuxError> {
        self.run(args([
            "start-server",
            ";",
            "set-option",
            "-g",
            "exit-empty",
            "off",
        ]))
        .await
        .map(drop)
    }

    /// Starts a job: a detached session running the runner, with the pipe
    /// side attached in the same call.
    pub async fn start_job(&self, launch: &JobLaunch<'_>) -> Result<(), TmuxError> {
        let session = Self::session_name(launch.job_id);
        // The pipe command is a shell string (tmux runs it with `sh -c`):
        // every piece is quoted; the job id is validated and needs none.
        let pipe_command = format!(
            "exec {} sanitize-pty --job-id {} --job-dir {} --state-dir {}",
            shell_quote(&self.shellctl.to_string_lossy()),
            launch.job_id,
            shell_quote(&launch.job_dir.to_string_lossy()),
            shell_quote(&launch.state_dir.to_string_lossy()),
        );
        let mut call: Vec<OsString> = args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            &launch.cols.to_string(),
            "-y",
            &launch.rows.to_string(),
        ]);
        // Given as separate arguments, the runner is executed directly,
        // without a shell.
        call.push(self.shellctl.clone().into_os_string());
        call.extend(args(["job-runner", "--job-dir"]));
        call.push(launch.job_dir.as_os_str().to_owned());
        call.extend(args([
            ";",
            "pipe-pane",
            "-o",
            "-t",
            &format!("{session}:0.0"),
            &pipe_command,
        ]));
        self.run(call).await.map(drop)
    }

    /// Types the contents of `file` into the job's pane, as pasted text
    /// (line feeds become Enter, as when typed), then drops the buffer.
    pub async fn paste_file(&self, job_id: &JobId, file: &Path) -> Result<(), TmuxError> {
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
            &format!("{}:0.0", Self::session_name(job_id)),
        ]));
        self.run(call).await.map(drop)
    }

    /// Sends Ctrl-C to the job's pane.
    pub async fn send_ctrl_c(&self, job_id: &JobId) -> Result<(), TmuxError> {
        let target = format!("{}:0.0", Self::session_name(job_id));
        self.run(args(["send-keys", "-t", &target, "C-c"]))
            .await
            .map(drop)
    }

    /// Kills the job's session; a session already gone is not an error.
    pub async fn kill_session(&self, job_id: &JobId) -> Result<(), TmuxError> {
        let target = Self::session_name(job_id);
        match self.run(args(["kill-session", "-t", &target])).await {
            Ok(_) | Err(TmuxError::NoServer) => Ok(()),
            Err(TmuxError::Failed { stderr, .. }) if stderr.contains("can't find") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The panes of all job sessions, by job id, in one call.
    pub async fn job_panes(&self) -> Result<HashMap<String, PaneState>, TmuxError> {
        let listing = match self
            .run(args([
                "list-panes",
                "-a",
                "-F",
                "#{session_name} #{pane_pipe} #{pane_dead}",
            ]))
            .await
        {
            Ok(listing) => listing,
            // tmux 3.3 answers this when the server has no sessions at all.
            Err(TmuxError::Failed { stderr, .. }) if stderr.contains("no current target") => {
                String::new()
            }
            Err(err) => return Err(err),
        };
        Ok(listing
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let job = fields.next()?.strip_prefix(SESSION_PREFIX)?.to_owned();
                let piped = fields.next()? == "1";
                let dead = fields.next()? == "1";
                Some((job, PaneState { piped, dead }))
            })
            .collect())
    }
}

fn args<const N: usize>(items: [&str; N]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
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
