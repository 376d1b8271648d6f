//! The MCP tool set, [`ShellTools`]: each tool's description for the
//! model, what it asks the backend for and in which order, and the result
//! it gives back, structured and as text (the arguments are in
//! `params`). Errors of any kind become tool errors (`is_error: true`),
//! never protocol errors, so the model reads them and can correct itself.

use crate::backend::{BackendError, ShellBackend};
use crate::params::{
    InputParams, JobParams, ListParams, RunParams, SearchParams, SignalParams, TerminateParams,
    WaitParams,
};
use crate::render;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use serde_json::{Map, Value, json};
use shellctl_proto::agents::{DEFAULT_DIGEST_BYTES, MAX_DIGEST_BYTES, MIN_DIGEST_BYTES};
use shellctl_proto::limits::{
    DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, MAX_LIST_LIMIT, MAX_OUTPUT_LIMIT,
};
use shellctl_proto::terminal::is_key_name;
use shellctl_proto::{
    DigestRequest, InputJobRequest, JobId, JobStatus, JobStatusView, KeysRequest, ListJobsQuery,
    LogSearchQuery, RunJobRequest, SignalName, SignalRequest, SignalTarget, WaitForRequest,
    WaitForResult, WaitReason, WaitUntil, WaitingForInput,
};
use std::fmt::Write as _;
use std::sync::Arc;

/// Default `yield_ms`: long enough for most commands to finish, short
/// enough that a model is not kept waiting on a long job.
const DEFAULT_YIELD_MS: u32 = 10_000;
/// Largest `yield_ms`: the server's longest wait (300 s).
const MAX_YIELD_MS: u32 = 300_000;
/// The wait of a request whose output the tools do not use (run's first
/// window, input's and keys' own windows): the API takes any positive
/// number, and this one answers as soon as the request is done.
const MIN_WINDOW_SECONDS: f64 = 0.001;
/// Default number of jobs `shell_list` returns: enough to find recent
/// work without flooding the context.
const DEFAULT_LIST_JOBS: u32 = 20;
/// Default number of lines `shell_search` returns.
const DEFAULT_SEARCH_MATCHES: u32 = 100;

const INSTRUCTIONS: &str = "shellctl runs shell commands as durable jobs in real terminals (PTYs) on this machine. \
A job keeps running after the tool call that started it returns, and even after you (the agent) stop: \
come back to it by its job_id, or find it with shell_list. \
Start commands with shell_run; read further output with shell_wait, passing the `offset` of the previous result; \
answer prompts with shell_input; look at full-screen programs with shell_screen; find lines in a long log with shell_search. \
Output is budgeted to max_output_bytes: its start and end and error lines are kept, every cut is marked, and `omitted_bytes` says how much was left out.";

const RUN_DESCRIPTION: &str = "Run a shell script as a durable background job in a real terminal (PTY) and return its first output. \
The script runs under sh (or the interpreter of a #! first line), in `cwd`, with `env` added to the environment. \
The call waits up to `yield_ms` (default 10000) for the job to end or to wait for input, then returns what it printed so far. \
A job still running keeps running: it survives this call and the agent, and all its output is kept. \
Continue with shell_wait, passing the job_id and the returned `offset` (the byte position where this output ends) to get only newer output. \
Output is budgeted to `max_output_bytes` (default 16000): the beginning, the end and error lines are kept, every cut is marked in the text, and `omitted_bytes` says how much was left out (find it with shell_search). \
If `waiting_for_input` is set, the program waits on the terminal (kind line, password, key or fullscreen, with its prompt): answer with shell_input, or stop it with shell_signal or shell_terminate. \
Prefer non-interactive flags (-y, --no-pager, --batch) where a command has them.";

const WAIT_DESCRIPTION: &str = "Wait for more output of a job and return it; the job itself is not affected. \
Output is read from `offset`, a byte position in the job's output: pass the `offset` of the previous result to get only new output (default 0: from the start). \
Returns when the job ends, when it waits for input, when `pattern` (a regular expression, matched line by line, also against an unfinished last line such as a prompt) matches output after `offset`, \
or when `yield_ms` passes (default 10000, max 300000; 0 returns at once with what is there). \
After a match the output runs to the end of the matching line and `offset` points just after it, so calling again with that offset continues from there. \
Output is budgeted and marked as in shell_run; `waiting_for_input` is set when the job waits for input (answer with shell_input).";

const INPUT_DESCRIPTION: &str = "Type into a job's terminal, then wait for and return the output that follows. \
`text` is typed exactly as given: include \"\\n\" to press Enter (for example \"yes\\n\"); answer a password prompt the same way. \
`keys` are key names pressed after the text, in order: Enter, Tab, BTab, Escape, BSpace, Space, Up, Down, Left, Right, Home, End, PageUp, PageDown, Insert, Delete, F1 to F12, C-a to C-z (Ctrl+letter, e.g. C-c, C-d), M-<char> (Alt+char). \
Give text, keys or both. \
Then waits as shell_wait does, from where the output stood before the input, up to `yield_ms` (default 10000) for the job to end or to wait for input again, and returns that output (usually starting with the echo of what was typed), budgeted as in shell_run.";

const SCREEN_DESCRIPTION: &str = "Show what a running job's terminal displays now, as text: the visible lines, with a █ inserted where the cursor is (the █ is not on the screen, it marks the cursor's cell), \
the terminal's size and title, whether a full-screen program (an editor, a pager, top) is showing, the foreground process, and whether the job waits for input. \
Use it for full-screen and interactive programs, whose log output is hard to read; read a job's output with shell_wait. \
Blank lines below the text and the cursor are left out. Fails for a job that has ended.";

const SIGNAL_DESCRIPTION: &str = "Send a signal to the foreground processes of a job's terminal (what Ctrl-C reaches): \
INT to interrupt, TERM to ask to exit, KILL to force, STOP and CONT to pause and resume, or HUP, QUIT, USR1, USR2, WINCH, ALRM. \
Names are case-insensitive and may start with SIG. Returns the job's status at once; read its reaction with shell_wait.";

const TERMINATE_DESCRIPTION: &str = "Stop a job for good: sends it Ctrl-C, waits up to `grace_seconds` (default 5) for it to end, then kills its terminal session. \
Returns its final status (terminated, or exited if it ended by itself). Its output stays readable with shell_wait and shell_search.";

const LIST_DESCRIPTION: &str = "List jobs, newest first: all of them, or those with a `status` (created, starting, running, exited, terminated, failed, lost) or a `label` (given at shell_run). \
Jobs are durable, so this finds jobs started earlier, also by an earlier session.";

const SEARCH_DESCRIPTION: &str = "Search a job's whole output for lines matching a regular expression (Rust regex syntax, e.g. \"(?i)error|warning\") \
and return the matching lines with their line numbers and byte offsets, in log order, up to `limit` (default 100). \
Use it to find what a budgeted output left out. The listed lines are budgeted to `max_output_bytes` (default 16000); lines past it are counted, not listed. To read the output from a match on, call shell_wait with offset = the match's offset and yield_ms 0.";

/// Why a tool call failed; it becomes a tool error the model reads.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    /// The arguments are wrong; nothing was sent.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// The backend refused or failed; `context` says what had already
    /// happened (a job started, input sent), so the model does not repeat it.
    #[error("{}", backend_message(context.as_deref(), error))]
    Backend {
        /// What had been done before the failure, if anything.
        context: Option<String>,
        /// The backend's error.
        error: BackendError,
    },
}

impl From<BackendError> for ToolError {
    fn from(error: BackendError) -> Self {
        ToolError::Backend {
            context: None,
            error,
        }
    }
}

impl ToolError {
    /// The error with what had already happened said first.
    fn after(self, context: String) -> Self {
        match self {
            ToolError::Backend { error, .. } => ToolError::Backend {
                context: Some(context),
                error,
            },
            invalid @ ToolError::Invalid(_) => invalid,
        }
    }
}

/// A backend error in words: the code, the server's message, and a hint
/// for the codes a model can act on.
fn backend_message(context: Option<&str>, error: &BackendError) -> String {
    let mut text = String::new();
    if let Some(context) = context {
        let _ = write!(text, "{context}: ");
    }
    match &error.code {
        Some(code) => {
            let _ = write!(text, "error {code}: {}", error.message);
        }
        None => {
            let _ = write!(text, "error: {}", error.message);
        }
    }
    let hint = match error.code.as_deref() {
        Some("job_not_found") => " (no such job; find jobs with shell_list)",
        Some("job_not_running") => " (the job has ended; read its output with shell_wait)",
        Some("validation_error") => " (check the arguments against the tool's description)",
        Some("idempotency_conflict") => " (another job already uses this key)",
        None => " (is the shellctl server running?)",
        _ => "",
    };
    text.push_str(hint);
    text
}

/// The fields every tool result carries, about the job it concerns.
#[derive(Debug, Serialize)]
struct JobFields {
    /// The job; null for listings.
    job_id: Option<JobId>,
    /// Its status; null for listings.
    status: Option<JobStatus>,
    /// Whether it has ended.
    done: bool,
    /// Its exit code, once it exited.
    exit_code: Option<i32>,
    /// Where to continue reading its output.
    offset: Option<u64>,
    /// Bytes of output left out of this result.
    omitted_bytes: u64,
    /// What the job waits for, if it waits for input.
    waiting_for_input: Option<WaitingForInput>,
}

impl JobFields {
    /// The fields of a status view (nothing omitted, input state unknown).
    fn from_status(view: &JobStatusView) -> Self {
        JobFields {
            job_id: Some(view.job_id),
            status: Some(view.status),
            done: view.done,
            exit_code: view.exit_code,
            offset: Some(view.offset),
            omitted_bytes: 0,
            waiting_for_input: None,
        }
    }
}

/// A successful tool result: the structured fields and the text a model reads.
struct Outcome {
    fields: JobFields,
    extra: Value,
    text: String,
}

impl Outcome {
    fn into_result(self) -> CallToolResult {
        let mut structured = match serde_json::to_value(&self.fields) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Value::Object(extra) = self.extra {
            structured.extend(extra);
        }
        let mut result = CallToolResult::structured(Value::Object(structured));
        result.content = vec![ContentBlock::text(self.text)];
        result
    }
}

/// A tool's result, or its error as a tool error.
fn finish(outcome: Result<Outcome, ToolError>) -> CallToolResult {
    match outcome {
        Ok(outcome) => outcome.into_result(),
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    }
}

fn parse_job_id(raw: &str) -> Result<JobId, ToolError> {
    JobId::parse(raw.trim()).map_err(|err| {
        ToolError::Invalid(format!(
            "{err}; use the job_id a tool returned, or find it with shell_list"
        ))
    })
}

/// `yield_ms` as the seconds of a wait (0 becomes the smallest wait the
/// API takes).
fn yield_seconds(yield_ms: Option<u32>) -> Result<(u32, f64), ToolError> {
    let ms = yield_ms.unwrap_or(DEFAULT_YIELD_MS);
    if ms > MAX_YIELD_MS {
        return Err(ToolError::Invalid(format!(
            "yield_ms must be at most {MAX_YIELD_MS}, got {ms}; wait again with shell_wait for longer"
        )));
    }
    Ok((ms, (f64::from(ms) / 1000.0).max(MIN_WINDOW_SECONDS)))
}

/// `max_output_bytes`, brought into the digest's bounds.
fn output_budget(max_output_bytes: Option<u32>) -> u32 {
    max_output_bytes
        .unwrap_or(DEFAULT_DIGEST_BYTES)
        .clamp(MIN_DIGEST_BYTES, MAX_DIGEST_BYTES)
}

/// A signal name as a model may write it: any case, with or without `SIG`.
fn parse_signal(raw: &str) -> Result<SignalName, ToolError> {
    let upper = raw.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    serde_json::from_value(Value::String(name.to_owned())).map_err(|_| {
        ToolError::Invalid(format!(
            "unknown signal {raw:?}; use one of INT, TERM, HUP, QUIT, KILL, USR1, USR2, STOP, CONT, WINCH, ALRM"
        ))
    })
}

/// The MCP server of shellctl: the `shell_*` tools over a [`ShellBackend`].
///
/// Serve it with [`serve_stdio`](crate::serve_stdio) or
/// [`http_service`](crate::http_service), or with any rmcp transport.
pub struct ShellTools<B> {
    backend: Arc<B>,
    tool_router: Arc<ToolRouter<Self>>,
}

impl<B> Clone for ShellTools<B> {
    fn clone(&self) -> Self {
        ShellTools {
            backend: Arc::clone(&self.backend),
            tool_router: Arc::clone(&self.tool_router),
        }
    }
}

impl<B> std::fmt::Debug for ShellTools<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellTools").finish_non_exhaustive()
    }
}

impl<B: ShellBackend> ShellTools<B> {
    /// The tools over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        ShellTools {
            backend,
            tool_router: Arc::new(Self::tool_router()),
        }
    }

    /// The backend the tools call.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Every tool this server offers, as `tools/list` returns them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }
}

#[tool_router]
impl<B: ShellBackend> ShellTools<B> {
    #[tool(
        name = "shell_run",
        description = RUN_DESCRIPTION,
        annotations(title = "Run a shell command", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn shell_run(&self, Parameters(params): Parameters<RunParams>) -> CallToolResult {
        finish(self.run(params).await)
    }

    #[tool(
        name = "shell_wait",
        description = WAIT_DESCRIPTION,
        annotations(title = "Wait for a job's output", read_only_hint = true, open_world_hint = false)
    )]
    async fn shell_wait(&self, Parameters(params): Parameters<WaitParams>) -> CallToolResult {
        finish(self.wait(params).await)
    }

    #[tool(
        name = "shell_input",
        description = INPUT_DESCRIPTION,
        annotations(title = "Type into a job's terminal", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn shell_input(&self, Parameters(params): Parameters<InputParams>) -> CallToolResult {
        finish(self.input(params).await)
    }

    #[tool(
        name = "shell_screen",
        description = SCREEN_DESCRIPTION,
        annotations(title = "Show a job's terminal screen", read_only_hint = true, open_world_hint = false)
    )]
    async fn shell_screen(&self, Parameters(params): Parameters<JobParams>) -> CallToolResult {
        finish(self.screen(params).await)
    }

    #[tool(
        name = "shell_signal",
        description = SIGNAL_DESCRIPTION,
        annotations(title = "Signal a job", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn shell_signal(&self, Parameters(params): Parameters<SignalParams>) -> CallToolResult {
        finish(self.signal(params).await)
    }

    #[tool(
        name = "shell_terminate",
        description = TERMINATE_DESCRIPTION,
        annotations(title = "Terminate a job", read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn shell_terminate(
        &self,
        Parameters(params): Parameters<TerminateParams>,
    ) -> CallToolResult {
        finish(self.terminate(params).await)
    }

    #[tool(
        name = "shell_list",
        description = LIST_DESCRIPTION,
        annotations(title = "List jobs", read_only_hint = true, open_world_hint = false)
    )]
    async fn shell_list(&self, Parameters(params): Parameters<ListParams>) -> CallToolResult {
        finish(self.list(params).await)
    }

    #[tool(
        name = "shell_search",
        description = SEARCH_DESCRIPTION,
        annotations(title = "Search a job's output", read_only_hint = true, open_world_hint = false)
    )]
    async fn shell_search(&self, Parameters(params): Parameters<SearchParams>) -> CallToolResult {
        finish(self.search(params).await)
    }
}

/// What a wait found, with its output digested.
struct WaitView {
    waited: WaitForResult,
    output: shellctl_proto::DigestView,
}

impl<B: ShellBackend> ShellTools<B> {
    async fn run(&self, params: RunParams) -> Result<Outcome, ToolError> {
        let (yield_ms, timeout) = yield_seconds(params.yield_ms)?;
        let budget = output_budget(params.max_output_bytes);
        let mut request = RunJobRequest::new(params.script);
        request.cwd = params.cwd;
        request.env = params.env;
        request.label = params.label;
        request.max_runtime_seconds = params.max_runtime_seconds;
        request.idle_timeout_seconds = params.idle_timeout_seconds;
        request.keep_background = params.keep_background;
        request.memory_max_bytes = params.memory_max_bytes;
        request.pids_max = params.pids_max;
        request.cpu_max = params.cpu_max;
        // The first output comes from the wait below, which knows why it
        // stopped; run only has to start the job.
        request.timeout = MIN_WINDOW_SECONDS;
        request.output_limit = 1;
        request.idle_flush_seconds = 0.0;
        let started = self.backend.run(request).await?;
        let job_id = started.job_id;
        let view = self
            .wait_and_digest(job_id, 0, None, timeout, budget)
            .await
            .map_err(|err| {
                err.after(format!(
                    "job {job_id} was started (do not start it again), but reading its output failed"
                ))
            })?;
        Ok(wait_outcome(&view, yield_ms, String::new()))
    }

    async fn wait(&self, params: WaitParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let (yield_ms, timeout) = yield_seconds(params.yield_ms)?;
        let budget = output_budget(params.max_output_bytes);
        let view = self
            .wait_and_digest(
                job_id,
                params.offset.unwrap_or(0),
                params.pattern,
                timeout,
                budget,
            )
            .await?;
        Ok(wait_outcome(&view, yield_ms, String::new()))
    }

    async fn input(&self, params: InputParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let (yield_ms, timeout) = yield_seconds(params.yield_ms)?;
        let budget = output_budget(params.max_output_bytes);
        let text = params.text.filter(|text| !text.is_empty());
        let keys = params.keys.filter(|keys| !keys.is_empty());
        if text.is_none() && keys.is_none() {
            return Err(ToolError::Invalid(
                "give `text` to type (with \"\\n\" for Enter), `keys` to press, or both".into(),
            ));
        }
        if let Some(keys) = &keys
            && let Some(bad) = keys.iter().find(|key| !is_key_name(key))
        {
            return Err(ToolError::Invalid(format!(
                "{bad:?} is not a key name; key names are Enter, Tab, BTab, Escape, BSpace, Space, Up, Down, Left, Right, Home, End, PageUp, PageDown, Insert, Delete, F1..F12, C-a..C-z, M-<char> (case matters); put text to type in `text`"
            )));
        }
        // The output that follows the input starts where the log ends now.
        let offset = self.backend.status(job_id).await?.offset;
        let mut sent = Vec::new();
        if let Some(text) = text {
            let request = InputJobRequest {
                offset,
                timeout: MIN_WINDOW_SECONDS,
                output_limit: 1,
                idle_flush_seconds: 0.0,
                text: text.clone(),
            };
            self.backend.input(job_id, request).await?;
            // The text itself is not repeated: it may be a password, which
            // must not land in the model's transcript a second time.
            sent.push(format!(
                "typed {} characters{}",
                text.chars().count(),
                if text.ends_with('\n') {
                    " ending with Enter"
                } else {
                    ""
                }
            ));
        }
        if let Some(keys) = keys {
            let mut request = KeysRequest::new(keys.clone(), offset);
            request.timeout = MIN_WINDOW_SECONDS;
            request.output_limit = 1;
            request.idle_flush_seconds = 0.0;
            self.backend.keys(job_id, request).await.map_err(|err| {
                let err = ToolError::from(err);
                match sent.first() {
                    // The text went in: say so, or the model types it twice.
                    Some(typed) => err.after(format!(
                        "{typed} into job {job_id} (do not send it again), but pressing the keys failed"
                    )),
                    None => err,
                }
            })?;
            sent.push(format!("pressed {}", keys.join(" ")));
        }
        let sent = sent.join(", then ");
        let view = self
            .wait_and_digest(job_id, offset, None, timeout, budget)
            .await
            .map_err(|err| {
                err.after(format!(
                    "{sent} into job {job_id} (do not send it again), but reading the output failed"
                ))
            })?;
        Ok(wait_outcome(&view, yield_ms, format!("{sent}\n")))
    }

    async fn screen(&self, params: JobParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let screen = self.backend.screen(job_id).await?;
        let status = self.backend.status(job_id).await?;
        let waiting = screen
            .input
            .kind
            .filter(|_| screen.input.waiting)
            .map(|kind| WaitingForInput {
                kind,
                prompt: screen.input.prompt.clone(),
            });
        let mut text = format!(
            "job {job_id}: {}. Output offset: {}.\n",
            render::status_phrase(status.status, status.exit_code),
            status.offset
        );
        if let Some(waiting) = &waiting {
            text.push_str(&render::input_phrase(waiting));
            text.push('\n');
        }
        text.push_str(&render::screen_text(&screen));
        let mut fields = JobFields::from_status(&status);
        fields.waiting_for_input = waiting;
        Ok(Outcome {
            extra: json!({
                "cols": screen.cols,
                "rows": screen.rows,
                "cursor": screen.cursor,
                "title": screen.title,
                "alternate_screen": screen.alternate_screen,
                "foreground": screen.foreground,
                "lines": screen.lines,
            }),
            fields,
            text,
        })
    }

    async fn signal(&self, params: SignalParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let signal = parse_signal(&params.signal)?;
        let request = SignalRequest {
            signal,
            target: SignalTarget::Foreground,
        };
        let view = self.backend.signal(job_id, request).await?;
        let name = format!("SIG{signal:?}");
        let text = format!(
            "sent {name} to the foreground processes of job {job_id}; it is {}. Output offset: {} (read the job's reaction with shell_wait from there).\n",
            render::status_phrase(view.status, view.exit_code),
            view.offset
        );
        Ok(Outcome {
            fields: JobFields::from_status(&view),
            extra: json!({ "signal": name }),
            text,
        })
    }

    async fn terminate(&self, params: TerminateParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let grace = params.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        if !(0.0..=MAX_GRACE_SECONDS).contains(&grace) {
            return Err(ToolError::Invalid(format!(
                "grace_seconds must be between 0 and {MAX_GRACE_SECONDS}, got {grace}"
            )));
        }
        let view = self.backend.terminate(job_id, grace).await?;
        let text = format!(
            "job {job_id}: {}. Its output ({} bytes) stays readable with shell_wait and shell_search.\n",
            render::status_phrase(view.status, view.exit_code),
            view.offset
        );
        Ok(Outcome {
            fields: JobFields::from_status(&view),
            extra: json!({}),
            text,
        })
    }

    async fn list(&self, params: ListParams) -> Result<Outcome, ToolError> {
        let status = match params.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.to_ascii_lowercase().parse::<JobStatus>().map_err(|_| {
                ToolError::Invalid(format!(
                    "unknown status {raw:?}; use created, starting, running, exited, terminated, failed or lost"
                ))
            })?),
        };
        let limit = params.limit.unwrap_or(DEFAULT_LIST_JOBS);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(ToolError::Invalid(format!(
                "limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
            )));
        }
        let query = ListJobsQuery {
            status,
            label: params.label.filter(|label| !label.is_empty()),
            limit,
        };
        let listing = self.backend.list(query).await?;
        Ok(Outcome {
            fields: JobFields {
                job_id: None,
                status: None,
                done: false,
                exit_code: None,
                offset: None,
                omitted_bytes: 0,
                waiting_for_input: None,
            },
            text: render::jobs_text(&listing.jobs),
            extra: json!({ "jobs": listing.jobs }),
        })
    }

    async fn search(&self, params: SearchParams) -> Result<Outcome, ToolError> {
        let job_id = parse_job_id(&params.job_id)?;
        let query = LogSearchQuery {
            pattern: params.pattern,
            limit: params.limit.unwrap_or(DEFAULT_SEARCH_MATCHES),
        };
        let found = self.backend.search(job_id, query).await?;
        let status = self.backend.status(job_id).await?;
        // Lines are cut at 4 KiB by the server, but a thousand of them
        // would still flood the context: list only what fits the budget.
        let budget = output_budget(params.max_output_bytes) as usize;
        let (listed, left_out) = render::matches_within(&found.matches, budget);
        let shown = &found.matches[..found.matches.len() - left_out];
        let mut text = format!(
            "job {job_id}: {}. {} matching line{} in its output{}.\n",
            render::status_phrase(status.status, status.exit_code),
            found.matches.len(),
            if found.matches.len() == 1 { "" } else { "s" },
            if found.truncated {
                " (more lines match: raise limit or narrow the pattern)"
            } else {
                ""
            }
        );
        if left_out > 0 {
            let _ = writeln!(
                text,
                "{left_out} of them not listed (over max_output_bytes): narrow the pattern or raise max_output_bytes."
            );
        }
        text.push_str(&listed);
        Ok(Outcome {
            fields: JobFields::from_status(&status),
            extra: json!({
                "matches": shown,
                "truncated": found.truncated || left_out > 0,
            }),
            text,
        })
    }

    /// Waits from `offset` until the job ends or waits for input (or
    /// `pattern` matches), then digests the output from `offset`: up to
    /// the end of the matching line after a match, else to the log's end,
    /// so even a job that printed megabytes ends with its last line.
    async fn wait_and_digest(
        &self,
        job_id: JobId,
        offset: u64,
        pattern: Option<String>,
        timeout: f64,
        budget: u32,
    ) -> Result<WaitView, ToolError> {
        let mut request = WaitForRequest::new(offset);
        request.until = Some(if pattern.is_some() {
            vec![WaitUntil::Exit, WaitUntil::Match, WaitUntil::Input]
        } else {
            vec![WaitUntil::Exit, WaitUntil::Input]
        });
        request.pattern = pattern;
        request.timeout = timeout;
        // A large window lets a match's offset reach the end of its line.
        request.output_limit = MAX_OUTPUT_LIMIT;
        let waited = self.backend.wait_for(job_id, request).await?;
        let end_offset = (waited.reason == WaitReason::Matched).then_some(waited.result.offset);
        let output = self
            .backend
            .digest(
                job_id,
                DigestRequest {
                    offset,
                    max_bytes: budget,
                    end_offset,
                },
            )
            .await?;
        Ok(WaitView { waited, output })
    }
}

/// The result of run, wait and input: header lines, then the output.
fn wait_outcome(view: &WaitView, yield_ms: u32, prefix: String) -> Outcome {
    let result = &view.waited.result;
    let mut text = prefix;
    let _ = writeln!(
        text,
        "job {}: {}; the wait ended because {}.",
        result.job_id,
        render::status_phrase(result.status, result.exit_code),
        render::reason_phrase(
            view.waited.reason,
            view.waited.pattern_match.as_ref(),
            yield_ms
        )
    );
    if result.done {
        let _ = writeln!(text, "next offset: {}.", view.output.offset);
    } else {
        let _ = writeln!(
            text,
            "next offset: {} (pass it to shell_wait to get only newer output).",
            view.output.offset
        );
    }
    if let Some(omitted) =
        render::omitted_phrase(view.output.omitted_bytes, view.output.omitted_lines)
    {
        text.push_str(&omitted);
        text.push('\n');
    }
    if let Some(waiting) = &view.waited.waiting_for_input {
        text.push_str(&render::input_phrase(waiting));
        text.push('\n');
    }
    if view.output.text.is_empty() {
        text.push_str("--- no output ---\n");
    } else {
        text.push_str("--- output ---\n");
        text.push_str(&view.output.text);
        if !view.output.text.ends_with('\n') {
            // An unfinished last line (a prompt): say so, or the model may
            // take the header's newline for the program's.
            text.push_str("\n--- (the last line is unfinished) ---\n");
        }
    }
    Outcome {
        fields: JobFields {
            job_id: Some(result.job_id),
            status: Some(result.status),
            done: result.done,
            exit_code: result.exit_code,
            offset: Some(view.output.offset),
            omitted_bytes: view.output.omitted_bytes,
            waiting_for_input: view.waited.waiting_for_input.clone(),
        },
        extra: json!({
            "output": view.output.text,
            "omitted_lines": view.output.omitted_lines,
            "reason": view.waited.reason,
            "match": view.waited.pattern_match,
        }),
        text,
    }
}

#[tool_handler(router = self.tool_router)]
impl<B: ShellBackend> ServerHandler for ShellTools<B> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("shellctl", env!("CARGO_PKG_VERSION"))
                    .with_title("shellctl: durable shell jobs"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}
