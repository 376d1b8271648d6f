//! The client commands: each one call through `shellctl-client`, printing
//! compact JSON (or, with `--follow`, the job's output as text).

use crate::cli::{ClientArgs, Command, WindowArgs};
use anyhow::Context;
use serde::Serialize;
use shellctl_client::{ClientError, Follow, RunOptions, ShellctlClient};
use shellctl_proto::{EnvOverlay, JobResult, JobStatus, TerminalSize};
use std::io::{Read, Write};

/// Exit code when following a job that was terminated (128 + SIGTERM).
pub const EXIT_JOB_TERMINATED: u8 = 143;
/// Exit code when following a job that failed (pipe or start failure).
pub const EXIT_JOB_FAILED: u8 = 70;
/// Exit code when following a job that was lost (its session vanished).
pub const EXIT_JOB_LOST: u8 = 69;
/// Exit code after Ctrl-C while following (the job is terminated).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A usage error found after parsing (bad `--env`, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn client(args: &ClientArgs) -> anyhow::Result<ShellctlClient> {
    Ok(ShellctlClient::new(&args.base_url)?.with_token(args.auth_token.clone()))
}

fn windowed(mut client: ShellctlClient, window: &WindowArgs, follow: bool) -> ShellctlClient {
    if let Some(limit) = window.output_limit {
        client = client.with_output_limit(limit);
    }
    // Following wants each line at once, not after a quiet spell.
    match (window.idle_flush_seconds, follow) {
        (Some(seconds), _) => client.with_idle_flush_seconds(seconds),
        (None, true) => client.with_idle_flush_seconds(0.0),
        (None, false) => client,
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(0)
}

/// Runs a client command; returns the process exit code on success.
pub async fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Health(args) => print_json(&client(&args)?.health().await?),
        Command::Run(args) => {
            let client = windowed(client(&args.client)?, &args.window, args.follow);
            let script = if args.script == "-" {
                let mut script = String::new();
                std::io::stdin()
                    .read_to_string(&mut script)
                    .context("reading the script from stdin")?;
                script
            } else {
                args.script
            };
            let terminal = match (args.cols, args.rows) {
                (None, None) => None,
                (cols, rows) => {
                    let default = TerminalSize::default();
                    Some(TerminalSize {
                        cols: cols.unwrap_or(default.cols),
                        rows: rows.unwrap_or(default.rows),
                    })
                }
            };
            let options = RunOptions {
                cwd: args.cwd,
                env: parse_env(&args.env)?,
                timeout: args.window.timeout,
                terminal,
            };
            let first = client.run(&script, options).await?;
            if args.follow {
                follow(&client, client.follow(&first)).await
            } else {
                print_json(&first)
            }
        }
        Command::Wait(args) => {
            let client = windowed(client(&args.client)?, &args.window, args.follow);
            if args.follow {
                follow(&client, client.follow_from(&args.id, args.offset)).await
            } else {
                print_json(
                    &client
                        .wait(&args.id, args.offset, args.window.timeout)
                        .await?,
                )
            }
        }
        Command::Input(args) => {
            let client = windowed(client(&args.client)?, &args.window, false);
            print_json(
                &client
                    .input(&args.id, &args.text, args.offset, args.window.timeout)
                    .await?,
            )
        }
        Command::Tail(args) => {
            let mut client = client(&args.client)?;
            if let Some(limit) = args.output_limit {
                client = client.with_output_limit(limit);
            }
            print_json(&client.tail(&args.id).await?)
        }
        Command::Status(args) => print_json(&client(&args.client)?.status(&args.id).await?),
        Command::List(args) => {
            let status = match args.status.as_deref() {
                Some(raw) => Some(
                    raw.parse::<JobStatus>()
                        .map_err(|e| UsageError(e.to_string()))?,
                ),
                None => None,
            };
            print_json(&client(&args.client)?.list(status, args.limit).await?)
        }
        Command::Terminate(args) => print_json(
            &client(&args.client)?
                .terminate(&args.id, args.grace_seconds)
                .await?,
        ),
        Command::Delete(args) => print_json(
            &client(&args.client)?
                .delete(&args.id, args.force, args.grace_seconds)
                .await?,
        ),
        other => Err(anyhow::anyhow!("not a client command: {other:?}")),
    }
}

/// `NAME=VALUE` pairs into an overlay; anything else is a usage error.
fn parse_env(pairs: &[String]) -> anyhow::Result<Option<EnvOverlay>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut env = EnvOverlay::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                env.insert(name.to_owned(), value.to_owned());
            }
            _ => return Err(UsageError(format!("--env expects NAME=VALUE, got {pair:?}")).into()),
        }
    }
    Ok(Some(env))
}

/// Prints output as it arrives until the job ends; Ctrl-C terminates the
/// job. Returns the exit code that mirrors the job's end.
async fn follow(client: &ShellctlClient, mut chunks: Follow<'_>) -> anyhow::Result<u8> {
    // Registered before the first output is printed: `ctrl_c()` would only
    // install its handler when first polled, and a Ctrl-C right after the
    // first line would then kill the process instead of terminating the job.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the Ctrl-C handler")?;
    let mut last: Option<JobResult> = None;
    loop {
        tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(Ok(result)) => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(result.output.as_bytes())?;
                    stdout.flush()?;
                    last = Some(result);
                }
                Some(Err(err)) => return Err(err.into()),
                None => break,
            },
            _ = interrupt.recv() => {
                if let Some(job) = &last {
                    client.terminate(job.job_id.as_str(), None).await?;
                }
                return Ok(EXIT_INTERRUPTED);
            }
        }
    }
    Ok(match last {
        Some(result) => match result.status {
            JobStatus::Exited => {
                u8::try_from(result.exit_code.unwrap_or(0).clamp(0, 255)).unwrap_or(255)
            }
            JobStatus::Terminated => EXIT_JOB_TERMINATED,
            JobStatus::Lost => EXIT_JOB_LOST,
            _ => EXIT_JOB_FAILED,
        },
        None => EXIT_JOB_FAILED,
    })
}

/// The JSON error object printed on stderr, and the exit code, for a
/// failed client command.
pub fn describe_failure(err: &anyhow::Error) -> (serde_json::Value, u8) {
    use serde_json::json;
    if let Some(client_err) = err.downcast_ref::<ClientError>() {
        return match client_err {
            ClientError::Api {
                status,
                code,
                message,
            } => (
                json!({"error": {"code": code, "message": message, "status": status}}),
                crate::EXIT_API,
            ),
            ClientError::Transport(_) => (
                json!({"error": {"code": "transport_error", "message": err.to_string()}}),
                crate::EXIT_TRANSPORT,
            ),
            ClientError::Decode { .. } => (
                json!({"error": {"code": "decode_error", "message": err.to_string()}}),
                crate::EXIT_DECODE,
            ),
            ClientError::InvalidUrl(_) => (
                json!({"error": {"code": "usage_error", "message": err.to_string()}}),
                crate::EXIT_USAGE,
            ),
        };
    }
    if err.downcast_ref::<UsageError>().is_some() {
        return (
            json!({"error": {"code": "usage_error", "message": err.to_string()}}),
            crate::EXIT_USAGE,
        );
    }
    (
        json!({"error": {"code": "client_error", "message": format!("{err:#}")}}),
        crate::EXIT_FAILURE,
    )
}
