//! Running the server: listener, background tasks, graceful shutdown.

use crate::api::{self, ApiLimits, AppState};
use crate::guard::{SitePolicy, SitePolicyError};
use crate::service::{Service, ServiceConfig, ServiceError};
use shellctl_job::StateLayout;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Everything `shellctl serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token; `None` (or empty) means no auth.
    pub auth_token: Option<String>,
    /// Allow a non-loopback address without a token.
    pub insecure_no_auth: bool,
    /// Where state lives.
    pub layout: StateLayout,
    /// The `shellctl` binary jobs run.
    pub shellctl_bin: PathBuf,
    /// Working directory of jobs that name none.
    pub default_cwd: PathBuf,
    /// Seconds between GC passes.
    pub gc_interval: Duration,
    /// Age after which ended jobs are collected.
    pub gc_retention: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// How the server talks to tmux.
    pub tmux_client: crate::tmux::TmuxClientMode,
    /// Extra names answered in `Host` (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// Browser origins admitted, with CORS (`--allow-origin`).
    pub allow_origins: Vec<String>,
    /// The env preset of jobs whose `run` names none (`--env-preset`).
    pub env_preset: shellctl_proto::EnvPreset,
    /// Containment, limits and caps of jobs (`--max-running-jobs`,
    /// `--max-log-bytes`, `--cgroups`).
    pub guards: crate::service::JobGuards,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Refused to expose job execution without a token.
    #[error(
        "refusing to listen on non-loopback address {0} without an auth token; set --auth-token (or SHELLCTL_AUTH_TOKEN), or pass --insecure-no-auth"
    )]
    PublicWithoutToken(SocketAddr),
    /// Binding the listener failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `--allow-host` or `--allow-origin` value is unusable.
    #[error(transparent)]
    SitePolicy(#[from] SitePolicyError),
    /// The service could not start.
    #[error("starting the job service: {0}")]
    Service(#[from] ServiceError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    /// The monitor and GC task died (a panic); the server stopped rather
    /// than go on without a monitor.
    #[error("the background task (monitor, GC) failed: {0}")]
    Background(String),
}

/// How long open connections (a stream whose client stopped reading) may
/// hold up a shutdown.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves until SIGINT or SIGTERM. Jobs keep running for the next start.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let auth_token = config.auth_token.clone().filter(|t| !t.is_empty());
    if auth_token.is_none() && !config.listen.ip().is_loopback() && !config.insecure_no_auth {
        return Err(ServeError::PublicWithoutToken(config.listen));
    }
    let site_policy = SitePolicy::new(config.listen, &config.allow_hosts, &config.allow_origins)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let service = Service::start(
        ServiceConfig {
            layout: config.layout.clone(),
            shellctl_bin: config.shellctl_bin.clone(),
            default_cwd: config.default_cwd.clone(),
            tmux_client: config.tmux_client,
            env_preset: config.env_preset,
            guards: config.guards,
        },
        shutdown_rx.clone(),
    )
    .await?;
    // The background task ends only at shutdown; if it ends first (a
    // panic), the server shuts down with an error instead of serving on
    // with nothing watching its jobs.
    let (background_ended_tx, background_ended) = tokio::sync::oneshot::channel::<()>();
    let background = tokio::spawn({
        let work =
            std::sync::Arc::clone(&service).run_background(config.gc_interval, config.gc_retention);
        async move {
            let outcome = tokio::spawn(work).await;
            let _ = background_ended_tx.send(());
            outcome
        }
    });
    let mcp_shutdown = tokio_util::sync::CancellationToken::new();
    let state = AppState {
        service,
        auth_token: auth_token.map(Into::into),
        mcp_shutdown: mcp_shutdown.clone(),
    };
    let app = api::router(
        state,
        ApiLimits {
            max_body_bytes: config.max_body_bytes,
            site_policy: std::sync::Arc::new(site_policy),
        },
    );
    let bound = listener.local_addr()?;
    // The one line on stdout: scripts and tests learn the address from it
    // (useful with port 0).
    println!("shellctl listening on http://{bound}");
    tracing::info!(
        listen = %bound,
        state_dir = %config.layout.state_dir().display(),
        runtime_dir = %config.layout.runtime_dir().display(),
        "shellctl serving"
    );
    let mut stop = shutdown_rx.clone();
    let mut draining = shutdown_rx.clone();
    // Served as one make-service: a `Router` handed to `axum::serve` as
    // it is rebuilds its whole route table for every connection (a clone
    // of some 70 KB), and most clients (curl, the CLI, SDKs without a
    // pool) open a connection per request; a burst of a thousand left the
    // heap 60 MiB larger for good.
    let serving = axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown_signal() => tracing::info!("shutting down; jobs keep running"),
                _ = background_ended => tracing::error!("the background task ended; shutting down"),
            }
            // Receivers outlive this future (the service holds one).
            let _ = shutdown_tx.send(true);
            mcp_shutdown.cancel();
            let _ = stop.changed().await;
        })
        .into_future();
    // Streams end at shutdown, but hyper polls a response only while its
    // socket takes data: a client that stopped reading would hold the
    // shutdown forever. Connections get DRAIN_LIMIT to finish.
    let served = tokio::select! {
        served = serving => served,
        () = async {
            let _ = draining.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        } => {
            tracing::warn!("connections still open {DRAIN_LIMIT:?} after shutdown began; closing them");
            Ok(())
        }
    };
    let background = match background.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) | Err(err) => Err(ServeError::Background(err.to_string())),
    };
    served.map_err(ServeError::from).and(background)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server can only be killed; keep serving.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
