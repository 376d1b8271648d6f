//! shellctl as a Model Context Protocol (MCP) server: the `shell_*` tools
//! that let a model run durable shell jobs, read their output in budgeted
//! digests, answer their prompts and look at their screens.
//!
//! The tools ([`ShellTools`]) reach jobs through one trait,
//! [`ShellBackend`], with two implementations: `HttpBackend` (feature
//! `http-client`) over a running server's HTTP API, used by `shellctl mcp`;
//! and the server's own over its in-process job service, used for the
//! `/mcp` route. This crate owns the tool set (names, schemas,
//! descriptions, results) and the two ways of serving it: over stdio
//! ([`serve_stdio`]) and as a Streamable HTTP service ([`http_service`]).
//!
//! | tool | what it does |
//! |---|---|
//! | `shell_run` | starts a script, waits up to `yield_ms` for it to end or wait for input, returns its output |
//! | `shell_wait` | waits for more output from an offset (optionally until a pattern matches) |
//! | `shell_input` | types text and/or presses keys, then returns the output that follows |
//! | `shell_screen` | the terminal's screen as text, the cursor marked |
//! | `shell_signal`, `shell_terminate` | signals or stops a job |
//! | `shell_list`, `shell_search` | finds jobs (by status, label) and lines in a job's log |

mod backend;
#[cfg(feature = "http-client")]
mod http_backend;
mod params;
mod render;
mod tools;

pub use backend::{BackendError, ShellBackend};
#[cfg(feature = "http-client")]
pub use http_backend::HttpBackend;
pub use render::CURSOR_MARK;
pub use tools::ShellTools;

/// The token that ends the sessions of an [`http_service`] when cancelled
/// (re-exported so the server needs no dependency of its own for it).
pub use tokio_util::sync::CancellationToken;

use rmcp::ServiceExt;
use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// Why serving MCP stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The MCP session could not be set up (a malformed `initialize`, a
    /// transport failure during the handshake).
    #[error("starting the MCP session: {0}")]
    Initialize(Box<ServerInitializeError>),
    /// The task serving the session failed.
    #[error("serving the MCP session: {0}")]
    Session(#[from] tokio::task::JoinError),
}

impl From<ServerInitializeError> for McpError {
    fn from(error: ServerInitializeError) -> Self {
        McpError::Initialize(Box::new(error))
    }
}

/// Serves the tools over `backend` on stdin and stdout until stdin closes
/// (or the client ends the session). Nothing but MCP frames is written to
/// stdout; a client that closes stdin before the handshake is a clean end.
pub async fn serve_stdio<B: ShellBackend>(backend: B) -> Result<(), McpError> {
    let tools = ShellTools::new(Arc::new(backend));
    let running = match tools.serve(rmcp::transport::stdio()).await {
        Ok(running) => running,
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    match running.waiting().await? {
        QuitReason::JoinError(err) => Err(err.into()),
        _ => Ok(()),
    }
}

/// The tools over `backend` as a Streamable HTTP service (a tower service
/// answering `POST`, `GET` and `DELETE` on whatever path it is mounted at;
/// it does not look at the path).
///
/// Sessions are kept in memory (the standard `Mcp-Session-Id` session
/// mode, which MCP clients such as the Python SDK's
/// `streamablehttp_client` use), with SSE responses. The service does no
/// `Host` or `Origin` checks of its own: it is meant to be mounted behind
/// the server's authentication and cross-site layers, which already apply
/// the server's `--allow-host`/`--allow-origin` rules (rmcp's default
/// loopback-only `Host` check would refuse hosts the server admits).
/// Cancelling `shutdown` ends every session and its open event streams,
/// so a graceful shutdown of the HTTP server is not held up by them.
pub fn http_service<B: ShellBackend>(
    backend: Arc<B>,
    shutdown: CancellationToken,
) -> StreamableHttpService<ShellTools<B>, LocalSessionManager> {
    let tools = ShellTools::new(backend);
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_cancellation_token(shutdown);
    StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
