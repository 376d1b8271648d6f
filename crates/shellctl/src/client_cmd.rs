//! The client commands: each one call through `shellctl-client`, printing
//! compact JSON (or, with `--follow`, the job's output as text until the
//! job ends; Ctrl-C then terminates the job; `screen` prints the screen as
//! text unless asked for JSON; `events` prints one JSON line per lifecycle
//! event until Ctrl-C; `metrics` prints the server's Prometheus text as
//! sent).

use crate::cli::{
    ClientArgs, ClientCommand, DigestArgs, EventsArgs, RunArgs, ScreenArgs, WaitArgs, WaitForArgs,
    WindowArgs,
};
use crate::exit::{self, UsageError};
use anyhow::Context;
use serde::Serialize;
use shellctl_client::{Follow, RunOptions, ShellctlClient};
use shellctl_proto::{
    DigestRequest, EnvOverlay, InputKind, InputState, JobResult, JobStatus, ListJobsQuery,
    SignalName, SignalTarget, TerminalSize, WaitForRequest,
};
use std::io::{Read, Write};
use tokio::signal::unix::{Signal, SignalKind};

/// Seconds the run request of `run --follow` waits for first output. The
/// API takes any positive number (`0 < timeout`, ours and the reference's
/// alike); this tiny one makes `run` answer as soon as the job has started,
/// so the CLI has its id and follows all of its output with Ctrl-C handled.
const RUN_FOLLOW_TIMEOUT: f64 = 0.001;

/// Runs a client command on its own async runtime; returns the process
/// exit code on success.
pub fn run(command: ClientCommand) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dispatch(command))
}

/// A client of the server the flags name.
fn client(args: &ClientArgs) -> anyhow::Result<ShellctlClient> {
    Ok(ShellctlClient::new(&args.base_url)?.with_token(args.auth_token.clone()))
}

/// `client` with the window flags applied (and no idle flush when following).
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

/// Prints `value` as one compact JSON line; exit code 0.
fn print_json<T: Serialize>(value: &T) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(0)
}

/// Runs one client command.
async fn dispatch(command: ClientCommand) -> anyhow::Result<u8> {
    match command {
        ClientCommand::Health(args) => print_json(&client(&args)?.health().await?),
        ClientCommand::Run(args) => run_job(args).await,
        ClientCommand::Wait(args) => wait(args).await,
        ClientCommand::Input(args) => {
            let client = windowed(client(&args.client)?, &args.window, false);
            print_json(
                &client
                    .input(&args.id, &args.text, args.offset, args.window.timeout)
                    .await?,
            )
        }
        ClientCommand::Tail(args) => {
            let mut client = client(&args.client)?;
            if let Some(limit) = args.output_limit {
                client = client.with_output_limit(limit);
            }
            print_json(&client.tail(&args.id).await?)
        }
        ClientCommand::Status(args) => print_json(&client(&args.client)?.status(&args.id).await?),
        ClientCommand::List(args) => {
            let status = match args.status.as_deref() {
                Some(raw) => Some(
                    raw.parse::<JobStatus>()
                        .map_err(|e| UsageError(e.to_string()))?,
                ),
                None => None,
            };
            let query = ListJobsQuery {
                status,
                label: args.label,
                limit: args
                    .limit
                    .unwrap_or(shellctl_proto::limits::DEFAULT_LIST_LIMIT),
            };
            print_json(&client(&args.client)?.list_jobs(&query).await?)
        }
        ClientCommand::Terminate(args) => print_json(
            &client(&args.client)?
                .terminate(&args.id, args.grace_seconds)
                .await?,
        ),
        ClientCommand::Delete(args) => print_json(
            &client(&args.client)?
                .delete(&args.id, args.force, args.grace_seconds)
                .await?,
        ),
        ClientCommand::Screen(args) => screen(args).await,
        ClientCommand::Keys(args) => {
            let client = windowed(client(&args.client)?, &args.window, false);
            let offset = match args.offset {
                Some(offset) => offset,
                None => client.status(&args.id).await?.offset,
            };
            print_json(
                &client
                    .keys(&args.id, args.keys, offset, args.window.timeout)
                    .await?,
            )
        }
        ClientCommand::Signal(args) => {
            let signal = parse_signal(&args.signal)?;
            let target = if args.job {
                SignalTarget::Job
            } else {
                SignalTarget::Foreground
            };
            print_json(
                &client(&args.client)?
                    .signal(&args.id, signal, target)
                    .await?,
            )
        }
        ClientCommand::Resize(args) => print_json(
            &client(&args.client)?
                .resize(&args.id, args.cols, args.rows)
                .await?,
        ),
        ClientCommand::Detail(args) => print_json(&client(&args.client)?.detail(&args.id).await?),
        ClientCommand::WaitFor(args) => wait_for(args).await,
        ClientCommand::Search(args) => print_json(
            &client(&args.client)?
                .search_log(&args.id, &args.pattern, Some(args.limit))
                .await?,
        ),
        ClientCommand::Digest(args) => digest(args).await,
        ClientCommand::Events(args) => events(args).await,
        ClientCommand::Metrics(args) => {
            let text = client(&args)?.metrics().await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(0)
        }
    }
}

/// `shellctl digest`: the digest's text, or with `--json` all of it.
async fn digest(args: DigestArgs) -> anyhow::Result<u8> {
    let digest = client(&args.client)?
        .digest(&args.id, &DigestRequest::new(args.offset, args.max_bytes))
        .await?;
    if args.json {
        return print_json(&digest);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(digest.text.as_bytes())?;
    stdout.flush()?;
    Ok(0)
}

/// `shellctl events`: each lifecycle event as one compact JSON line,
/// flushed at once, until Ctrl-C ([`exit::INTERRUPTED`]) or stdout closes
/// (0); fails when the stream is lost (the server stayed away).
async fn events(args: EventsArgs) -> anyhow::Result<u8> {
    let client = client(&args.client)?;
    let mut interrupt = interrupt_handler()?;
    let mut events = client.lifecycle_events(args.since, args.label.as_deref());
    loop {
        tokio::select! {
            biased;
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            event = events.next() => match event {
                Some(Ok(event)) => {
                    let mut line = serde_json::to_string(&event)?;
                    line.push('\n');
                    let mut stdout = std::io::stdout().lock();
                    match stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush()) {
                        Ok(()) => {}
                        // The reader went away (`shellctl events | head`).
                        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
                        Err(err) => return Err(err.into()),
                    }
                }
                Some(Err(err)) => return Err(err.into()),
                // The stream ends only after an error, which came first.
                None => return Ok(0),
            },
        }
    }
}

/// `shellctl wait-for`: the result as JSON; the exit code is 0 whatever
/// the reason (the reason is in the JSON).
async fn wait_for(args: WaitForArgs) -> anyhow::Result<u8> {
    let mut request = WaitForRequest::new(args.offset);
    request.pattern = args.pattern;
    if !args.until.is_empty() {
        request.until = Some(args.until.into_iter().map(Into::into).collect());
    }
    if let Some(timeout) = args.window.timeout {
        request.timeout = timeout;
    }
    if let Some(limit) = args.window.output_limit {
        request.output_limit = limit;
    }
    if let Some(seconds) = args.window.idle_flush_seconds {
        request.idle_flush_seconds = seconds;
    }
    print_json(&client(&args.client)?.wait_for(&args.id, &request).await?)
}

/// `shellctl screen`: the history and visible lines as text on stdout and,
/// if the job waits for input, one line saying so on stderr; or with
/// `--json` the whole screen as JSON.
async fn screen(args: ScreenArgs) -> anyhow::Result<u8> {
    let screen = client(&args.client)?.screen(&args.id, args.history).await?;
    if args.json {
        return print_json(&screen);
    }
    {
        // Blank rows below the last text are left out (`--json` has all).
        let shown = screen
            .lines
            .iter()
            .rposition(|line| !line.is_empty())
            .map_or(0, |last| last + 1);
        let mut stdout = std::io::stdout().lock();
        for line in screen.history.iter().chain(&screen.lines[..shown]) {
            writeln!(stdout, "{line}")?;
        }
        stdout.flush()?;
    }
    if let Some(note) = waiting_note(&screen.input) {
        eprintln!("{note}");
    }
    Ok(0)
}

/// The stderr line of `screen` for a job waiting for input, e.g. `[waiting
/// for input: password, prompt "Password: "]`; `None` when it does not
/// wait.
fn waiting_note(input: &InputState) -> Option<String> {
    if !input.waiting {
        return None;
    }
    let kind = input.kind.map(|kind| match kind {
        InputKind::Line => "line",
        InputKind::Password => "password",
        InputKind::Key => "key",
        InputKind::Fullscreen => "fullscreen",
    });
    Some(match (kind, &input.prompt) {
        (Some(kind), Some(prompt)) => format!("[waiting for input: {kind}, prompt {prompt:?}]"),
        (Some(kind), None) => format!("[waiting for input: {kind}]"),
        (None, Some(prompt)) => format!("[waiting for input, prompt {prompt:?}]"),
        (None, None) => "[waiting for input]".to_owned(),
    })
}

/// The signals `shellctl signal` sends, by their names without `SIG`.
const SIGNALS: [(&str, SignalName); 11] = [
    ("INT", SignalName::INT),
    ("TERM", SignalName::TERM),
    ("HUP", SignalName::HUP),
    ("QUIT", SignalName::QUIT),
    ("KILL", SignalName::KILL),
    ("USR1", SignalName::USR1),
    ("USR2", SignalName::USR2),
    ("STOP", SignalName::STOP),
    ("CONT", SignalName::CONT),
    ("WINCH", SignalName::WINCH),
    ("ALRM", SignalName::ALRM),
];

/// A signal name in any case, with or without `SIG` (`usr1`, `SIGUSR1`);
/// anything else is a usage error listing the valid names.
fn parse_signal(raw: &str) -> Result<SignalName, UsageError> {
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, signal)| *signal)
        .ok_or_else(|| {
            let names: Vec<&str> = SIGNALS.iter().map(|(known, _)| *known).collect();
            UsageError(format!(
                "unknown signal {raw:?}; expected one of {} (any case, SIG prefix optional)",
                names.join(", ")
            ))
        })
}

/// `shellctl run`: the first window as JSON, or with `--follow` the output
/// until the job ends.
async fn run_job(args: RunArgs) -> anyhow::Result<u8> {
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
    let mut options = RunOptions {
        cwd: args.cwd,
        env: parse_env(&args.env)?,
        timeout: args.window.timeout,
        terminal,
        env_preset: args.env_preset.map(Into::into),
        label: args.label,
        idempotency_key: args.idempotency_key,
        max_runtime_seconds: args.max_runtime,
        idle_timeout_seconds: args.idle_timeout,
        keep_background: args.keep_background.then_some(true),
        limits: shellctl_proto::ResourceLimits {
            memory_max_bytes: args.memory_max,
            pids_max: args.pids_max,
            cpu_max: args.cpu_max,
        },
    };
    if !args.follow {
        return print_json(&client.run(&script, options).await?);
    }
    // Ctrl-C is ours before the job exists: one that comes while the run
    // request is in flight is acted on once it answers with the job's id.
    let mut interrupt = interrupt_handler()?;
    options.timeout = Some(RUN_FOLLOW_TIMEOUT);
    let first = client.run(&script, options).await?;
    follow(
        &client,
        first.job_id.as_str(),
        client.follow(&first),
        &mut interrupt,
    )
    .await
}

/// `shellctl wait`: one window as JSON, or with `--follow` the output until
/// the job ends.
async fn wait(args: WaitArgs) -> anyhow::Result<u8> {
    let client = windowed(client(&args.client)?, &args.window, args.follow);
    if !args.follow {
        return print_json(
            &client
                .wait(&args.id, args.offset, args.window.timeout)
                .await?,
        );
    }
    let mut interrupt = interrupt_handler()?;
    follow(
        &client,
        &args.id,
        client.follow_from(&args.id, args.offset),
        &mut interrupt,
    )
    .await
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

/// Takes over SIGINT (Ctrl-C) from the default, which would kill the
/// process and leave the followed job running. Registered at once, not on
/// first poll as `ctrl_c()` would: from this call on, every Ctrl-C is seen.
fn interrupt_handler() -> anyhow::Result<Signal> {
    tokio::signal::unix::signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")
}

/// Prints job `job_id`'s output as it arrives until the job ends, and
/// returns the exit code that mirrors its end ([`exit::job_end`]). Ctrl-C,
/// at any point (also one that came before this call), terminates the job
/// and returns [`exit::INTERRUPTED`].
async fn follow(
    client: &ShellctlClient,
    job_id: &str,
    mut chunks: Follow<'_>,
    interrupt: &mut Signal,
) -> anyhow::Result<u8> {
    let mut last: Option<JobResult> = None;
    loop {
        tokio::select! {
            // A pending Ctrl-C goes before output that is ready, too.
            biased;
            _ = interrupt.recv() => {
                client.terminate(job_id, None).await?;
                return Ok(exit::INTERRUPTED);
            }
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
        }
    }
    Ok(exit::job_end(last.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_take_any_case_and_an_optional_sig() {
        for raw in ["usr1", "USR1", "SIGUSR1", "sigUsr1"] {
            assert_eq!(parse_signal(raw).ok(), Some(SignalName::USR1), "{raw}");
        }
        assert_eq!(parse_signal("winch").ok(), Some(SignalName::WINCH));
        for raw in ["BOGUS", "", "SIG", "SIGSIGINT", "9", "USR3"] {
            let err = parse_signal(raw).err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains("INT, TERM, HUP"), "{raw}: {err}");
        }
    }

    #[test]
    fn the_waiting_note_names_kind_and_prompt() {
        let mut input = InputState::default();
        assert_eq!(waiting_note(&input), None);
        input.waiting = true;
        input.kind = Some(InputKind::Password);
        input.prompt = Some("Password: ".into());
        assert_eq!(
            waiting_note(&input).as_deref(),
            Some("[waiting for input: password, prompt \"Password: \"]")
        );
        input.kind = Some(InputKind::Fullscreen);
        input.prompt = None;
        assert_eq!(
            waiting_note(&input).as_deref(),
            Some("[waiting for input: fullscreen]")
        );
    }
}
