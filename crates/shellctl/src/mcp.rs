//! `shellctl mcp`: the MCP server on stdin and stdout that agent runtimes
//! launch, serving the `shell_*` tools of `shellctl-mcp` over a running
//! shellctl server through the HTTP client. When no server answers at the
//! default address (and none was named), it starts `shellctl serve`
//! detached, so jobs outlive this process. Stdout carries MCP frames and
//! nothing else; every log line goes to stderr.

use anyhow::{Context, bail};
use shellctl_client::{ClientError, ShellctlClient};
use shellctl_mcp::HttpBackend;
use shellctl_proto::limits::{AUTH_TOKEN_ENV, DEFAULT_BASE_URL};
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often a server being started is asked whether it is up. Polling is
/// acceptable here: it happens once, while nothing else waits on this
/// process.
const HEALTH_POLL: Duration = Duration::from_millis(50);
/// How long a server being started may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long one `/healthz` may take before the server counts as absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutting down may wait for the runtime's blocking threads (a
/// stdin read that never returns must not keep the process alive).
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);
/// The started server's stderr, under the state directory.
const SERVE_LOG: &str = "mcp-serve.log";

/// Serves MCP on stdin and stdout until stdin closes, over the server at
/// `base_url` (default `http://127.0.0.1:8765`, started if it does not
/// answer) with `auth_token` as its bearer token.
pub fn run(base_url: Option<String>, auth_token: Option<String>) -> anyhow::Result<()> {
    init_logging();
    let named = base_url.is_some();
    let base_url = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let auth_token = auth_token.filter(|token| !token.is_empty());
    let client = ShellctlClient::new(&base_url)?.with_token(auth_token.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async move {
        if !answers(&client).await {
            if named {
                log(&format!(
                    "no shellctl server answers at {base_url}; serving anyway (tool calls fail until it answers)"
                ));
            } else {
                start_server(&client, auth_token.as_deref()).await?;
            }
        }
        shellctl_mcp::serve_stdio(HttpBackend::new(client))
            .await
            .context("serving MCP on stdio")
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    served
}

/// Sends rmcp's own diagnostics to stderr (warnings unless `RUST_LOG` says
/// otherwise), never to stdout.
fn init_logging() {
    crate::logging::init(crate::logging::Logging {
        format: crate::cli::LogFormat::Text,
        default_level: "warn",
        ansi_on_terminal: false,
    });
}

/// One line of this command's own log, on stderr.
fn log(message: &str) {
    eprintln!("shellctl mcp: {message}");
}

/// Whether anything answers HTTP at the client's address: any answer
/// counts (an auth error too), only no connection does not.
async fn answers(client: &ShellctlClient) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, client.health()).await {
        Ok(Ok(_) | Err(ClientError::Api { .. } | ClientError::Decode { .. })) => true,
        Ok(Err(_)) | Err(_) => false,
    }
}

/// Starts `shellctl serve` on its defaults (the default address, the
/// default state directory), detached, and waits until it answers.
async fn start_server(client: &ShellctlClient, auth_token: Option<&str>) -> anyhow::Result<()> {
    let log_path = serve_log_path()?;
    let log_file = open_log(&log_path)?;
    let exe = std::env::current_exe().context("locating the shellctl binary")?;
    let mut command = Command::new(&exe);
    command
        .arg("serve")
        // A daemon keeps no directory of its caller busy; its jobs' default
        // directory is the home directory, not this one.
        .current_dir("/")
        .stdin(Stdio::null())
        // Our stdout is the MCP channel: the server's one stdout line must
        // not reach it.
        .stdout(Stdio::null())
        .stderr(log_file)
        // Its own process group: a Ctrl-C or hangup meant for the agent
        // runtime's group does not stop the server (jobs outlive agents).
        .process_group(0);
    // Through the environment, not the command line, which others can read.
    match auth_token {
        Some(token) => command.env(AUTH_TOKEN_ENV, token),
        None => command.env_remove(AUTH_TOKEN_ENV),
    };
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {} serve", exe.display()))?;
    log(&format!(
        "no shellctl server answered at {}; started `{} serve` (pid {}), logging to {}",
        client.base_url(),
        exe.display(),
        child.id(),
        log_path.display()
    ));
    let deadline = Instant::now() + START_DEADLINE;
    let mut exited = None;
    loop {
        if answers(client).await {
            break;
        }
        // A child that exited may have lost the address to a server
        // another `shellctl mcp` started at the same moment: keep asking
        // until the deadline before giving up.
        if exited.is_none() {
            exited = child.try_wait().context("checking on shellctl serve")?;
        }
        if Instant::now() >= deadline {
            match exited {
                Some(status) => bail!(
                    "shellctl serve exited ({status}) and no server answers at {}; see {}",
                    client.base_url(),
                    log_path.display()
                ),
                None => bail!(
                    "shellctl serve did not answer at {} within {} s; see {}",
                    client.base_url(),
                    START_DEADLINE.as_secs(),
                    log_path.display()
                ),
            }
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
    log(&format!("shellctl server is up at {}", client.base_url()));
    if exited.is_none() {
        reap(child, log_path);
    }
    Ok(())
}

/// Waits for the started server on a thread of its own, so it leaves no
/// zombie if it ends while this process runs, and says so if it does.
fn reap(mut child: Child, log_path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("serve-reaper".into())
        .spawn(move || {
            if let Ok(status) = child.wait() {
                log(&format!(
                    "the shellctl serve started by this process exited ({status}); see {}",
                    log_path.display()
                ));
            }
        });
    if let Err(err) = spawned {
        log(&format!("cannot watch the started server: {err}"));
    }
}

/// `<state dir>/mcp-serve.log`, the state directory created (0700) if
/// missing: the one `serve` uses by default.
fn serve_log_path() -> anyhow::Result<PathBuf> {
    let layout = crate::serve::state_layout(None, None);
    let dir = layout.state_dir();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(SERVE_LOG))
}

/// The server's log, appended to, readable by its owner only.
fn open_log(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // `mode` applies only when the file is created.
    file.set_permissions(Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    Ok(file)
}
