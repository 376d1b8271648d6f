//! The `shellctl` command: parses arguments, calls into the library crates,
//! and decides the process's exit code in one place ([`finish`]).
//!
//! Exit codes: 0 success; 1 the server answered with an error (client
//! commands) or any other failure; 2 usage error; 3 the server could not be
//! reached; 4 the server's answer could not be decoded. `run --follow` and
//! `wait --follow` exit with the job's own code instead (see
//! [`client_cmd`] for terminated, failed, lost and Ctrl-C).

mod cli;
mod client_cmd;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, JobRunnerArgs, RunnerExitArgs, SanitizePtyArgs, ServeArgs};
use shellctl_proto::JobId;
use shellctl_server::StateLayout;
use shellctl_server::job_files::JobDir;
use shellctl_server::tmux::TmuxClientMode;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

/// Exit code for a failure the server reported (client commands).
const EXIT_API: u8 = 1;
/// Exit code for any other failure.
const EXIT_FAILURE: u8 = 1;
/// Exit code for arguments that parse but make no sense (clap uses the
/// same code for arguments that do not parse).
const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached.
const EXIT_TRANSPORT: u8 = 3;
/// Exit code when the server's answer is not what the API promises.
const EXIT_DECODE: u8 = 4;

/// A failure that carries its own exit code.
#[derive(Debug, thiserror::Error)]
enum CliFailure {
    #[error("{0}")]
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_client = is_client_command(&cli.command);
    let outcome = match cli.command {
        command if is_client => run_client(command),
        command => run(command).map(|()| 0),
    };
    finish(outcome, is_client)
}

/// The one place that turns an outcome into an exit code (and, for client
/// commands, a compact JSON error object on stderr).
fn finish(outcome: anyhow::Result<u8>, is_client: bool) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) if is_client => {
            let (json, code) = client_cmd::describe_failure(&err);
            eprintln!("{json}");
            ExitCode::from(code)
        }
        Err(err) => {
            eprintln!("shellctl: {err:#}");
            let code = match err.downcast_ref::<CliFailure>() {
                Some(CliFailure::Usage(_)) => EXIT_USAGE,
                None => EXIT_FAILURE,
            };
            ExitCode::from(code)
        }
    }
}

fn is_client_command(command: &Command) -> bool {
    matches!(
        command,
        Command::Health(_)
            | Command::Run(_)
            | Command::Wait(_)
            | Command::Input(_)
            | Command::Tail(_)
            | Command::Status(_)
            | Command::List(_)
            | Command::Terminate(_)
            | Command::Delete(_)
    )
}

fn run_client(command: Command) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(client_cmd::run(command))
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::SanitizePty(args) => sanitize_pty(args),
        Command::JobRunner(args) => job_runner(args),
        Command::RunnerExit(args) => runner_exit(args),
        Command::Serve(args) => serve(args),
        Command::Completions(args) => {
            // Rendered into memory first: clap_complete panics on a write
            // error (say, stdout piped into `head`).
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "shellctl", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .context("writing completions")
        }
        other => Err(anyhow::anyhow!("{other:?} is a client command")),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let defaults = StateLayout::xdg_defaults();
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| defaults.state_dir().to_owned());
    let runtime_dir = match (
        args.runtime_dir,
        std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()),
    ) {
        (Some(dir), _) => dir,
        (None, Some(xdg)) => std::path::PathBuf::from(xdg).join("shellctl"),
        (None, None) => state_dir.join("run").join("shellctl"),
    };
    let seconds = |name: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(std::time::Duration::from_secs_f64(value))
        } else {
            Err(CliFailure::Usage(format!(
                "{name} must be a positive number of seconds"
            )))
        }
    };
    let config = shellctl_server::serve::ServeConfig {
        listen: args.listen,
        auth_token: args.auth_token,
        insecure_no_auth: args.insecure_no_auth,
        layout: StateLayout::new(state_dir, runtime_dir),
        shellctl_bin: std::env::current_exe().context("locating the shellctl binary")?,
        default_cwd: std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/".into()),
        gc_interval: seconds("--gc-interval-seconds", args.gc_interval_seconds)?,
        gc_retention: seconds(
            "--gc-finished-job-retention-seconds",
            args.gc_finished_job_retention_seconds,
        )?,
        max_body_bytes: args.max_body_bytes,
        tmux_client: match args.tmux_client {
            cli::TmuxClientArg::Control => TmuxClientMode::Control,
            cli::TmuxClientArg::Cli => TmuxClientMode::Cli,
        },
        allow_hosts: args.allow_hosts,
        allow_origins: args.allow_origins,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(shellctl_server::serve::serve(config))?;
    Ok(())
}

fn job_runner(args: JobRunnerArgs) -> anyhow::Result<()> {
    shellctl_server::runner::run_job(&JobDir::open(args.job_dir))
        .context("recording the job's exit")
}

fn runner_exit(args: RunnerExitArgs) -> anyhow::Result<()> {
    let job_id = JobId::parse(&args.job_id)?;
    shellctl_proto::timestamp::parse_timestamp(&args.ended_at)?;
    let database = StateLayout::new(&args.state_dir, &args.state_dir).database();
    shellctl_server::Store::open_existing(&database)?.commit_exit(
        &job_id,
        args.exit_code,
        &args.ended_at,
    )?;
    Ok(())
}

fn sanitize_pty(args: SanitizePtyArgs) -> anyhow::Result<()> {
    if let (Some(job_dir), Some(job_id), Some(state_dir)) =
        (&args.job_dir, &args.job_id, &args.state_dir)
    {
        let job_id = JobId::parse(job_id)?;
        let database = StateLayout::new(state_dir, state_dir).database();
        shellctl_server::pipe_side::run_pipe_side(
            std::io::stdin(),
            &JobDir::open(job_dir),
            &database,
            &job_id,
        )?;
        return Ok(());
    }
    if let Some(ready_file) = &args.ready_file {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(ready_file)
            .with_context(|| format!("touching ready file {}", ready_file.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    shellctl_term::run_filter(std::io::stdin(), &mut stdout, Default::default())
        .context("sanitizing standard input")?;
    Ok(())
}
