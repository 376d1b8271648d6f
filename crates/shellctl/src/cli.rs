//! Command-line syntax of `shellctl`: the argument types clap parses into.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// shellctl: a shell-job server that programs can come back to.
#[derive(Debug, Parser)]
#[command(name = "shellctl", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job server.
    Serve(ServeArgs),
    /// Filter raw PTY bytes on stdin into clean UTF-8 text on stdout.
    ///
    /// Used on the job path behind tmux's pipe-pane. Writes each completed
    /// line at once and a pending partial line (a prompt) after a short quiet
    /// period; exits 0 at end of input.
    SanitizePty(SanitizePtyArgs),
    /// Internal: run a job inside its tmux pane.
    #[command(hide = true)]
    JobRunner(JobRunnerArgs),
    /// Internal: commit a job's exit to the state database.
    RunnerExit(RunnerExitArgs),
}

/// Arguments of `shellctl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. A non-loopback address needs a token.
    #[arg(long, value_name = "HOST:PORT", default_value = shellctl_proto::limits::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Bearer token clients must present; empty or unset means no auth.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHELLCTL_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub auth_token: Option<String>,
    /// Listen on a non-loopback address even without a token.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// State directory [default: $XDG_STATE_HOME/shellctl or ~/.local/state/shellctl].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Runtime directory for the tmux socket [default: $XDG_RUNTIME_DIR/shellctl or STATE/run/shellctl].
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Seconds between garbage-collection passes.
    #[arg(long, value_name = "S", default_value_t = shellctl_proto::limits::DEFAULT_GC_INTERVAL_SECONDS)]
    pub gc_interval_seconds: f64,
    /// Age in seconds after which ended jobs are deleted.
    #[arg(long, value_name = "S", default_value_t = shellctl_proto::limits::DEFAULT_GC_RETENTION_SECONDS)]
    pub gc_finished_job_retention_seconds: f64,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// Arguments of `shellctl job-runner`.
#[derive(Debug, Args)]
pub struct JobRunnerArgs {
    /// The job's directory.
    #[arg(long, value_name = "DIR")]
    pub job_dir: PathBuf,
}

/// Arguments of `shellctl runner-exit`.
#[derive(Debug, Args)]
pub struct RunnerExitArgs {
    /// The server's state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The job.
    #[arg(long, value_name = "ID")]
    pub job_id: String,
    /// The script's exit code.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub exit_code: i32,
    /// When the script ended (`YYYY-MM-DDTHH:MM:SSZ`).
    #[arg(long, value_name = "TIME")]
    pub ended_at: String,
}

/// Arguments of `shellctl sanitize-pty`.
#[derive(Debug, Args)]
pub struct SanitizePtyArgs {
    /// File to create (or touch) once the filter is running, before it reads.
    #[arg(long, value_name = "FILE", conflicts_with = "job_dir")]
    pub ready_file: Option<PathBuf>,
    /// Run as the pipe side of this job: write into its `output.log`
    /// instead of stdout, then commit its exit (needs --job-id, --state-dir).
    #[arg(long, value_name = "DIR", requires_all = ["job_id", "state_dir"])]
    pub job_dir: Option<PathBuf>,
    /// The job (also names the process in `ps`).
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
    /// The server's state directory (for its database).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}
