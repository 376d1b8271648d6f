//! `shellctl serve`: turns the command line into the server's
//! configuration (state and runtime directories, durations, tmux mode, env
//! preset) and runs the server until SIGINT or SIGTERM. The directory
//! resolution ([`state_layout`]) is shared with `attach`.

use crate::cli::{CgroupsArg, ServeArgs, TmuxClientArg};
use crate::exit::UsageError;
use crate::logging::{self, Logging};
use anyhow::Context;
use shellctl_job::StateLayout;
use shellctl_server::{JobGuards, ServeConfig, TmuxClientMode};
use std::path::PathBuf;
use std::time::Duration;

/// Runs the job server with `args` (logging to stderr as `RUST_LOG` says,
/// in the `--log-format`).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    logging::init(Logging {
        format: args.log_format,
        default_level: "info",
        ansi_on_terminal: true,
    });
    let config = config(args)?;
    return_freed_memory();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(shellctl_server::serve(config))?;
    Ok(())
}

/// The state and runtime directories a server uses, from `--state-dir` and
/// `--runtime-dir` over the defaults: `$XDG_STATE_HOME/shellctl` (or
/// `~/.local/state/shellctl`), and `$XDG_RUNTIME_DIR/shellctl` (or
/// `<state>/run/shellctl`, under the state dir given). `serve` and
/// `attach` both use this, so `attach` finds the tmux socket the server
/// made from the same flags and environment.
pub fn state_layout(state_dir: Option<PathBuf>, runtime_dir: Option<PathBuf>) -> StateLayout {
    let state_dir = state_dir.unwrap_or_else(|| StateLayout::xdg_defaults().state_dir().to_owned());
    let runtime_dir = match (
        runtime_dir,
        std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()),
    ) {
        (Some(dir), _) => dir,
        (None, Some(xdg)) => PathBuf::from(xdg).join("shellctl"),
        (None, None) => state_dir.join("run").join("shellctl"),
    };
    StateLayout::new(state_dir, runtime_dir)
}

/// The server's configuration: flags over the XDG defaults.
fn config(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    Ok(ServeConfig {
        listen: args.listen,
        auth_token: args.auth_token,
        insecure_no_auth: args.insecure_no_auth,
        layout: state_layout(args.state_dir, args.runtime_dir),
        shellctl_bin: job_side_binary()?,
        default_cwd: std::env::var_os("HOME").map_or_else(|| "/".into(), PathBuf::from),
        gc_interval: seconds("--gc-interval-seconds", args.gc_interval_seconds)?,
        gc_retention: seconds(
            "--gc-finished-job-retention-seconds",
            args.gc_finished_job_retention_seconds,
        )?,
        max_body_bytes: args.max_body_bytes,
        tmux_client: match args.tmux_client {
            TmuxClientArg::Control => TmuxClientMode::Control,
            TmuxClientArg::Cli => TmuxClientMode::Cli,
        },
        allow_hosts: args.allow_hosts,
        allow_origins: args.allow_origins,
        env_preset: args.env_preset.into(),
        guards: JobGuards {
            max_running_jobs: args.max_running_jobs,
            max_log_bytes: Some(args.max_log_bytes).filter(|bytes| *bytes > 0),
            use_cgroups: args.cgroups == CgroupsArg::Auto,
        },
    })
}

/// A positive, finite number of seconds as a duration; else a usage error
/// naming the flag.
fn seconds(flag: &str, value: f64) -> Result<Duration, UsageError> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(UsageError(format!(
            "{flag} must be a positive number of seconds"
        )))
    }
}

/// The binary the server starts twice per job: `shellctl-job` beside this
/// one (lean: no async runtime or HTTP stack to load), else this binary,
/// which takes the same job-side command lines.
fn job_side_binary() -> anyhow::Result<PathBuf> {
    let this = std::env::current_exe().context("locating the shellctl binary")?;
    let lean = this.with_file_name("shellctl-job");
    Ok(if lean.is_file() { lean } else { this })
}

/// Makes glibc's allocator give memory back once a burst of work is over.
/// By default every thread that allocates (the blocking pool grows to
/// dozens under load) gets an arena of its own, up to 8 per core, and keeps
/// what it freed there; and a freed large buffer (an output window) raises
/// the threshold under which buffers come from those arenas instead of
/// their own mappings. Measured with the bench workload (20 jobs, a burst
/// of 32, three 20 MB pipelines, waiters): 34 MiB of heap kept afterwards
/// by default, 4.4 MiB with two arenas and fixed 256 KiB mmap and trim
/// thresholds (see ARCHITECTURE.md, "Memory"). Other C libraries ignore
/// this.
fn return_freed_memory() {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets allocator parameters; it runs before the
    // runtime starts any thread, and a refused value leaves the default.
    unsafe {
        let _arenas = libc::mallopt(libc::M_ARENA_MAX, 2);
        let _mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        let _trim = libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
    }
}
