//! The log subscriber of the long-running commands: every log line goes to
//! stderr (stdout is the server's address line, or `mcp`'s protocol),
//! filtered by `RUST_LOG` over a default level, as human-readable text or
//! as one JSON object per line (`serve --log-format json`, for a log
//! collector).

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// How [`init`] sets up logging.
#[derive(Debug, Clone, Copy)]
pub struct Logging {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// The level (an `EnvFilter` directive) when `RUST_LOG` is unset or
    /// invalid.
    pub default_level: &'static str,
    /// Colour the text when stderr is a terminal (JSON never is).
    pub ansi_on_terminal: bool,
}

/// Installs the process's log subscriber. A second call (a subscriber is
/// already installed) changes nothing.
pub fn init(logging: Logging) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(logging.default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match logging.format {
        LogFormat::Text => builder
            .with_ansi(
                logging.ansi_on_terminal && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
