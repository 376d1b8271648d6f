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

/// The subcommands, in three typed groups flattened into one command line,
/// and the MCP server:
/// `shellctl run …`, `shellctl serve …` and `shellctl job-runner …` are all
/// top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Commands that talk to a server over HTTP.
    #[command(flatten)]
    Client(ClientCommand),
    /// Commands that work on this machine without a server.
    #[command(flatten)]
    Local(LocalCommand),
    /// Hidden commands of the job path, started by the server through tmux.
    #[command(flatten)]
    Internal(InternalCommand),
    /// Serve the shellctl tools to an MCP client over stdio (for example
    /// `claude mcp add shellctl -- shellctl mcp`).
    ///
    /// Talks to the server at --base-url. When none is given and no server
    /// answers at the default local address, starts `shellctl serve`
    /// detached on its defaults (so jobs outlive this process) and says so
    /// on stderr, which is the MCP log; stdout carries only the protocol.
    Mcp(McpArgs),
    /// Check that this machine can run the job server, and say what to fix.
    ///
    /// Checks tmux (on the PATH, its version), the state and runtime
    /// directories `serve` would use with the same flags (private 0700,
    /// yours, writable; a missing one is created on start), the database
    /// and its live jobs, the inotify limits against what those jobs
    /// need, the tmux socket path's length, free disk on the state dir's
    /// filesystem, and the cgroups and controllers jobs would be contained
    /// in (missing ones only warn). Prints one line per check (`ok`,
    /// `warn`, `FAIL`), with the fix under each warning and failure; exits
    /// 78 when something must be fixed. Changes nothing.
    Doctor(DoctorArgs),
}

/// Arguments of `shellctl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The state directory to check [default: as `serve`'s].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The runtime directory to check [default: as `serve`'s].
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
}

/// The client commands: one call each through `shellctl-client`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check that the server is up.
    Health(ClientArgs),
    /// Run a script as a job; print the first output window (JSON), or
    /// with --follow the output as text until the job ends.
    Run(RunArgs),
    /// Wait for output from a byte offset.
    Wait(WaitArgs),
    /// Type text into a job's terminal (no newline added), then wait.
    Input(InputArgs),
    /// Print the end of a job's output.
    Tail(TailArgs),
    /// Print a job's status.
    Status(JobArgs),
    /// List jobs, newest first (a JSON array).
    List(ListArgs),
    /// Terminate a job: Ctrl-C, then kill after the grace.
    Terminate(TerminateArgs),
    /// Delete a job and its output.
    Delete(DeleteArgs),
    /// Print a running job's screen as text, without the blank rows below
    /// its last text (or all of it as JSON with --json), and on stderr
    /// whether it waits for input.
    Screen(ScreenArgs),
    /// Press keys in a job's terminal (key names or text), then wait.
    Keys(KeysArgs),
    /// Send a signal to a job's foreground process group (or, with --job,
    /// to all of its processes).
    Signal(SignalArgs),
    /// Resize a job's terminal; print the screen after it (JSON).
    Resize(ResizeArgs),
    /// Print everything the server knows of a job (JSON): status, label,
    /// cwd, script, terminal size, why it ended, deadlines, pid.
    Detail(JobArgs),
    /// Wait until a job exits, prints a line matching a pattern, waits for
    /// input, or goes idle; print the result (JSON) with the reason.
    WaitFor(WaitForArgs),
    /// Print the lines of a job's whole log that match a pattern (JSON).
    Search(SearchArgs),
    /// Print a job's output from an offset within a byte budget: head and
    /// tail kept, error lines from the middle kept, every cut marked.
    Digest(DigestArgs),
    /// Print the server's metrics in the Prometheus text format (what a
    /// Prometheus server scrapes from `/metrics`).
    Metrics(ClientArgs),
    /// Print the jobs' lifecycle events (created, running, exited, …) as
    /// they happen, one JSON line each, until interrupted.
    ///
    /// Each line is `{"seq","job_id","status","exit_code","at","label"}`.
    /// A broken connection (a server restart) is resumed after the last
    /// event seen; the command fails once the server stayed away for 30 s.
    Events(EventsArgs),
}

/// The local commands.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Run the job server.
    Serve(ServeArgs),
    /// Attach this terminal to a running job's terminal (on the server's
    /// host).
    ///
    /// Runs tmux attached to the job's session on the server's own tmux
    /// socket, found from --state-dir and --runtime-dir exactly as `serve`
    /// finds it (give the same ones the server was started with). You see
    /// and type into the job's terminal as the job sees it. The usual tmux
    /// detach key, Ctrl-b d, leaves and keeps the job running. Attaching
    /// never changes the job's terminal size (tmux's `ignore-size`): a
    /// window smaller than the job's terminal shows part of it; use
    /// `shellctl resize` to change the size. Needs a terminal on stdin.
    Attach(AttachArgs),
    /// Filter raw PTY bytes on stdin into clean UTF-8 text on stdout.
    ///
    /// Used on the job path behind tmux's pipe-pane. Writes each completed
    /// line at once and a pending partial line (a prompt) after a short quiet
    /// period; exits 0 at end of input.
    SanitizePty(SanitizePtyArgs),
}

/// The job-side commands, run by the server's tmux sessions, never by hand.
#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Internal: run a job inside its tmux pane.
    #[command(hide = true)]
    JobRunner(JobRunnerArgs),
    /// Internal: the pipe side of a job (behind tmux's pipe-pane). It has
    /// no subcommand of its own: `sanitize-pty --job-id ID --job-dir DIR
    /// --state-dir DIR` selects it (see [`SanitizePtyArgs::into_mode`]).
    #[command(skip)]
    PipeSide(PipeSideArgs),
}

/// How to reach the server (every client command).
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server's base URL (http or https).
    #[arg(long, value_name = "URL", env = "SHELLCTL_BASE_URL", default_value = shellctl_proto::limits::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Bearer token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHELLCTL_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub auth_token: Option<String>,
}

/// The output-window knobs of commands that return output.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Seconds to wait for output (0 < T <= 300); not used with --follow.
    #[arg(long, value_name = "T")]
    pub timeout: Option<f64>,
    /// Bytes of output per window.
    #[arg(long, value_name = "BYTES")]
    pub output_limit: Option<u32>,
    /// Quiet seconds after new output before returning.
    #[arg(long, value_name = "S")]
    pub idle_flush_seconds: Option<f64>,
}

/// Arguments of `shellctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The script; `-` reads it from stdin.
    pub script: String,
    /// Working directory of the job.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Environment variable for the job, `NAME=VALUE` (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Terminal columns.
    #[arg(long, value_name = "N")]
    pub cols: Option<u16>,
    /// Terminal rows.
    #[arg(long, value_name = "N")]
    pub rows: Option<u16>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub window: WindowArgs,
    /// Environment preset of the job: `noninteractive` sets `PAGER=cat`,
    /// `GIT_TERMINAL_PROMPT=0`, `DEBIAN_FRONTEND=noninteractive` and more,
    /// so tools neither page, edit nor ask; `none` opts out of the server's
    /// `--env-preset`. Unset: the server's preset applies. --env overrides
    /// the preset's variables.
    #[arg(long, value_enum, value_name = "PRESET")]
    pub env_preset: Option<EnvPresetArg>,
    /// A label to find the job by (`shellctl list --label`), up to 128
    /// characters.
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// An idempotency key: a second run with the same key starts nothing
    /// and answers for the first job (also after a server restart); a
    /// different script with the same key is refused.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// End the job after S seconds (Ctrl-C, then kill 3 s later), enforced
    /// by the job itself, also while the server is down.
    #[arg(long, value_name = "S")]
    pub max_runtime: Option<f64>,
    /// End the job once it printed nothing for S seconds.
    #[arg(long, value_name = "S")]
    pub idle_timeout: Option<f64>,
    /// Leave processes the script starts in the background running after
    /// it exits (a daemon started on purpose); terminate and delete still
    /// end them.
    #[arg(long)]
    pub keep_background: bool,
    /// Most memory the job's processes may use together, in bytes (needs
    /// the cgroup memory controller).
    #[arg(long, value_name = "BYTES")]
    pub memory_max: Option<u64>,
    /// Most processes and threads the job may have at once (needs the
    /// cgroup pids controller).
    #[arg(long, value_name = "N")]
    pub pids_max: Option<u32>,
    /// Most CPU the job may use, in cores, e.g. 0.5 (needs the cgroup cpu
    /// controller).
    #[arg(long, value_name = "CORES")]
    pub cpu_max: Option<f64>,
    /// Print the output as text as it arrives and exit with the job's code;
    /// Ctrl-C terminates the job (exit 130).
    #[arg(long)]
    pub follow: bool,
}

/// Arguments of `shellctl wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Byte offset to read from.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub window: WindowArgs,
    /// Print the output as text as it arrives and exit with the job's code;
    /// Ctrl-C terminates the job (exit 130).
    #[arg(long)]
    pub follow: bool,
}

/// Arguments of `shellctl input`.
#[derive(Debug, Args)]
pub struct InputArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Text to type (add `\n` yourself for Enter: `$'yes\n'`).
    pub text: String,
    /// Byte offset to read from afterwards.
    #[arg(long, value_name = "N")]
    pub offset: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub window: WindowArgs,
}

/// Arguments of `shellctl tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Bytes of the end to print.
    #[arg(long, value_name = "BYTES")]
    pub output_limit: Option<u32>,
}

/// A command on one job.
#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
}

/// Arguments of `shellctl list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// Only jobs with this status.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only jobs with this label.
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// At most this many jobs.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

/// Arguments of `shellctl terminate`.
#[derive(Debug, Args)]
pub struct TerminateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Seconds between Ctrl-C and killing the job.
    #[arg(long, value_name = "S")]
    pub grace_seconds: Option<f64>,
}

/// Arguments of `shellctl delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Terminate a running job first.
    #[arg(long)]
    pub force: bool,
    /// Grace of that terminate.
    #[arg(long, value_name = "S")]
    pub grace_seconds: Option<f64>,
}

/// Arguments of `shellctl screen`.
#[derive(Debug, Args)]
pub struct ScreenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Also print this many scrollback lines above the screen (0..=10000),
    /// before the visible lines.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub history: u32,
    /// Print the whole screen (size, cursor, title, lines, history,
    /// foreground process, input state) as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `shellctl keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Keys, in order: key names (`Enter`, `Tab`, `BTab`, `Escape`,
    /// `BSpace`, `Space`, `Up`, `Down`, `Left`, `Right`, `Home`, `End`,
    /// `PageUp`, `PageDown`, `Insert`, `Delete`, `F1`…`F12`, `C-a`…`C-z`,
    /// `M-<char>`); any other word is typed as text. Put `--` before text
    /// that starts with `-`.
    #[arg(value_name = "KEY", required = true, num_args = 1..)]
    pub keys: Vec<String>,
    /// Byte offset to read from afterwards [default: the end of the output
    /// before the keys, so only what follows them is printed].
    #[arg(long, value_name = "N")]
    pub offset: Option<u64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub window: WindowArgs,
}

/// Arguments of `shellctl signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// The signal: INT, TERM, HUP, QUIT, KILL, USR1, USR2, STOP, CONT,
    /// WINCH or ALRM (any case, `SIG` prefix optional).
    pub signal: String,
    /// Signal every process of the job (but its runner), not only the
    /// terminal's foreground process group.
    #[arg(long)]
    pub job: bool,
}

/// Arguments of `shellctl resize`.
#[derive(Debug, Args)]
pub struct ResizeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Columns (1..=4096).
    pub cols: u16,
    /// Rows (1..=4096).
    pub rows: u16,
}

/// Arguments of `shellctl wait-for`.
#[derive(Debug, Args)]
pub struct WaitForArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Byte offset to read and match from.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// A regular expression matched against each line of the output.
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    /// Conditions that end the wait, comma-separated: exit, match, input,
    /// idle [default: exit,match,input].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub until: Vec<WaitUntilArg>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub window: WindowArgs,
}

/// A condition of `wait-for --until`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WaitUntilArg {
    /// The job ended.
    Exit,
    /// The pattern matched.
    Match,
    /// The job waits for input.
    Input,
    /// New output went quiet for the idle flush.
    Idle,
}

impl From<WaitUntilArg> for shellctl_proto::WaitUntil {
    fn from(arg: WaitUntilArg) -> Self {
        match arg {
            WaitUntilArg::Exit => shellctl_proto::WaitUntil::Exit,
            WaitUntilArg::Match => shellctl_proto::WaitUntil::Match,
            WaitUntilArg::Input => shellctl_proto::WaitUntil::Input,
            WaitUntilArg::Idle => shellctl_proto::WaitUntil::Idle,
        }
    }
}

/// Arguments of `shellctl search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// At most this many matching lines (1..=1000).
    #[arg(long, value_name = "N", default_value_t = shellctl_proto::agents::DEFAULT_SEARCH_LIMIT)]
    pub limit: u32,
}

/// Arguments of `shellctl digest`.
#[derive(Debug, Args)]
pub struct DigestArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// The job.
    pub id: String,
    /// Byte offset to start from.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// Byte budget of the text, markers included (256..=1048576).
    #[arg(long, value_name = "BYTES", default_value_t = shellctl_proto::agents::DEFAULT_DIGEST_BYTES)]
    pub max_bytes: u32,
    /// Print the whole answer as JSON instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `shellctl events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
    /// Print the events after this sequence number first (0: every event
    /// the server keeps) [default: only events from now on].
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Only events of jobs with this label.
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
}

/// Arguments of `shellctl mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The server's base URL [default: the local default, started if
    /// nothing answers there].
    #[arg(long, value_name = "URL", env = "SHELLCTL_BASE_URL")]
    pub base_url: Option<String>,
    /// Bearer token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHELLCTL_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub auth_token: Option<String>,
}

/// Arguments of `shellctl attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The job.
    pub id: String,
    /// Watch only: keys typed are not sent to the job.
    #[arg(long)]
    pub read_only: bool,
    /// The server's state directory [default: as `serve`'s].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The server's runtime directory (its tmux socket) [default: as `serve`'s].
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
}

/// Arguments of `shellctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
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
    /// State directory [default: $`XDG_STATE_HOME/shellctl` or ~/.local/state/shellctl].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Runtime directory for the tmux socket [default: $`XDG_RUNTIME_DIR/shellctl` or STATE/run/shellctl].
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
    /// How to talk to tmux: `control` keeps one control-mode client
    /// (`tmux -C`) and falls back to the command line; `cli` runs one
    /// `tmux` process per command.
    #[arg(long, value_enum, default_value_t = TmuxClientArg::Control)]
    pub tmux_client: TmuxClientArg,
    /// Also answer requests whose `Host` is NAME (or NAME:PORT), e.g. a
    /// tunnel's name (repeatable). On loopback only `localhost`,
    /// `127.0.0.1` and `[::1]` are answered otherwise (DNS-rebinding
    /// protection).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Admit browser requests from ORIGIN (`scheme://host[:port]`) and answer
    /// its CORS preflights (repeatable). By default every cross-site browser
    /// request is refused.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Environment preset of every job that names none: `noninteractive`
    /// sets `PAGER=cat`, `GIT_TERMINAL_PROMPT=0`,
    /// `DEBIAN_FRONTEND=noninteractive` and more (see README), so tools
    /// neither page, edit nor ask. A job's own `env` overrides it;
    /// `"env_preset": "none"` opts a job out.
    #[arg(long, value_enum, default_value_t = EnvPresetArg::None)]
    pub env_preset: EnvPresetArg,
    /// Most jobs starting or running at once; a `run` beyond it answers
    /// 429 `too_many_jobs`. A slot frees when a job ends. Default: no cap;
    /// 0 is refused (it would refuse every job).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_running_jobs: Option<u32>,
    /// Most bytes of output kept per job (default 1 GiB). Past it the log
    /// gets one marker line, later output is read and discarded, and the
    /// job runs on (its detail says `log_capped`). 0: no cap.
    #[arg(long, value_name = "BYTES", default_value_t = shellctl_server::DEFAULT_MAX_LOG_BYTES)]
    pub max_log_bytes: u64,
    /// How to track each job's processes: `auto` uses cgroups where the
    /// host lets the server create them (needed for per-job limits), else
    /// an inherited marker found by `/proc` scans; `off` uses the marker
    /// alone.
    #[arg(long, value_enum, default_value_t = CgroupsArg::Auto)]
    pub cgroups: CgroupsArg,
    /// How log lines on stderr look: `text`, one human-readable line each,
    /// or `json`, one JSON object per line (`timestamp`, `level`,
    /// `fields`, `target`) for a log collector. `RUST_LOG` sets the level.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Values of `serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Values of `serve --cgroups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CgroupsArg {
    /// Cgroups where the host allows, else the marker scan.
    Auto,
    /// The marker scan only; per-job limits are refused.
    Off,
}

/// Values of `serve --env-preset` and `run --env-preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvPresetArg {
    /// No preset.
    None,
    /// Keep tools from opening pagers or editors or asking questions.
    Noninteractive,
}

impl From<EnvPresetArg> for shellctl_proto::EnvPreset {
    fn from(arg: EnvPresetArg) -> Self {
        match arg {
            EnvPresetArg::None => shellctl_proto::EnvPreset::None,
            EnvPresetArg::Noninteractive => shellctl_proto::EnvPreset::Noninteractive,
        }
    }
}

/// Values of `serve --tmux-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TmuxClientArg {
    /// A persistent control-mode client.
    Control,
    /// One tmux process per command.
    Cli,
}

/// Arguments of `shellctl job-runner`.
#[derive(Debug, Args)]
pub struct JobRunnerArgs {
    /// The job's directory.
    #[arg(long, value_name = "DIR")]
    pub job_dir: PathBuf,
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

/// What a `sanitize-pty` invocation asks for.
#[derive(Debug)]
pub enum SanitizeMode {
    /// Filter stdin to stdout, touching `ready_file` first if given.
    Filter {
        /// File to create (or touch) once the filter runs.
        ready_file: Option<PathBuf>,
    },
    /// Be the pipe side of a job (an internal command).
    PipeSide(PipeSideArgs),
}

/// Arguments of the pipe side of a job (`sanitize-pty` with `--job-dir`,
/// `--job-id` and `--state-dir`).
#[derive(Debug)]
pub struct PipeSideArgs {
    /// The job's directory.
    pub job_dir: PathBuf,
    /// The job, as given (parsed by the pipe side).
    pub job_id: String,
    /// The server's state directory.
    pub state_dir: PathBuf,
}

impl SanitizePtyArgs {
    /// Which form this is. clap guarantees `--job-dir` comes with `--job-id`
    /// and `--state-dir`; without `--job-dir` it is the plain filter (a
    /// stray `--job-id` only names the process in `ps`).
    pub fn into_mode(self) -> SanitizeMode {
        match (self.job_dir, self.job_id, self.state_dir) {
            (Some(job_dir), Some(job_id), Some(state_dir)) => {
                SanitizeMode::PipeSide(PipeSideArgs {
                    job_dir,
                    job_id,
                    state_dir,
                })
            }
            _ => SanitizeMode::Filter {
                ready_file: self.ready_file,
            },
        }
    }
}
