//! `shellctl-job`: the job-side commands alone, in a binary that links no
//! async runtime, HTTP stack or argument parser. The server starts two of
//! these per job through tmux (the runner in the job's pane, the pipe side
//! behind its pipe-pane), so their start-up time is on the path of every
//! job and their memory is paid once per live job; the full `shellctl`
//! binary still understands the same command lines, and the server falls
//! back to it when this one is not installed beside it.
//!
//! ```text
//! shellctl-job job-runner --job-dir DIR
//! shellctl-job sanitize-pty --job-id ID --job-dir DIR --state-dir DIR
//! ```

use shellctl_job::{JobDir, StateLayout};
use shellctl_proto::JobId;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// The exit code of a command line this binary does not take.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let command = args.next();
    let flags = match Flags::parse(args) {
        Ok(flags) => flags,
        Err(message) => return usage(&message),
    };
    let outcome = match command.as_ref().and_then(|c| c.to_str()) {
        Some("job-runner") => match flags.only(&["--job-dir"]) {
            Ok(()) => job_runner(&flags),
            Err(message) => return usage(&message),
        },
        Some("sanitize-pty") => match flags.only(&["--job-id", "--job-dir", "--state-dir"]) {
            Ok(()) => pipe_side(&flags),
            Err(message) => return usage(&message),
        },
        _ => return usage("expected job-runner or sanitize-pty"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shellctl-job: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the job's script in its pane, then records its exit.
fn job_runner(flags: &Flags) -> Result<(), String> {
    let job_dir = flags.path("--job-dir")?;
    shellctl_job::runner::run_job(&JobDir::open(job_dir))
        .map_err(|err| format!("recording the job's exit: {err}"))
}

/// Sanitizes the pane's bytes from stdin into the job's `output.log`, then
/// commits the job's exit to the state database.
fn pipe_side(flags: &Flags) -> Result<(), String> {
    let job_id = flags.path("--job-id")?;
    let job_id = JobId::parse(&job_id.to_string_lossy()).map_err(|err| err.to_string())?;
    let job_dir = flags.path("--job-dir")?;
    let database = StateLayout::database_in(&flags.path("--state-dir")?);
    shellctl_job::pipe_side::run_pipe_side(
        std::io::stdin(),
        &JobDir::open(&job_dir),
        &database,
        job_id,
    )
    .map_err(|err| err.to_string())
}

fn usage(message: &str) -> ExitCode {
    eprintln!(
        "shellctl-job: {message}\n\
         usage: shellctl-job job-runner --job-dir DIR\n       \
         shellctl-job sanitize-pty --job-id ID --job-dir DIR --state-dir DIR\n\
         (started by the shellctl server for each job, not by hand)"
    );
    ExitCode::from(USAGE)
}

/// `--name value` pairs, each name at most once.
struct Flags(Vec<(String, OsString)>);

impl Flags {
    fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Flags, String> {
        let mut pairs: Vec<(String, OsString)> = Vec::new();
        while let Some(name) = args.next() {
            let name = name
                .into_string()
                .map_err(|raw| format!("unexpected argument {}", raw.to_string_lossy()))?;
            if !name.starts_with("--") {
                return Err(format!("unexpected argument {name}"));
            }
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(format!("{name} given twice"));
            }
            pairs.push((name, value));
        }
        Ok(Flags(pairs))
    }

    /// Refuses a flag not in `known` and a missing one of them.
    fn only(&self, known: &[&str]) -> Result<(), String> {
        if let Some((name, _)) = self
            .0
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        {
            return Err(format!("unknown flag {name}"));
        }
        known.iter().try_for_each(|name| self.path(name).map(drop))
    }

    fn path(&self, name: &str) -> Result<PathBuf, String> {
        self.0
            .iter()
            .find(|(seen, _)| seen == name)
            .map(|(_, value)| PathBuf::from(value))
            .ok_or_else(|| format!("{name} is required"))
    }
}
