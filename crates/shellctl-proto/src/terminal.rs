//! Wire types of the terminal routes, new beside the frozen v1 set: the
//! screen, the input state, keys, signals, resize, and the env preset of
//! `run`.
//!
//! Routes: `GET /v1/jobs/{id}/screen`, `GET /v1/jobs/{id}/input-state`,
//! `POST /v1/jobs/{id}/keys`, `POST /v1/jobs/{id}/signal`,
//! `POST /v1/jobs/{id}/resize`. Requests reject unknown fields, like v1's.

use crate::error::ValidationError;
use crate::job_id::JobId;
use crate::limits::{
    DEFAULT_IDLE_FLUSH_SECONDS, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT_SECONDS,
    MAX_TERMINAL_DIMENSION,
};
use crate::requests::{default_idle_flush, default_output_limit, default_timeout, validate_window};
use crate::status::JobStatus;
use crate::validate::{Validate, int_in_range};
use serde::{Deserialize, Serialize};

/// Most scrollback lines a screen request may ask for.
pub const MAX_SCREEN_HISTORY: u32 = 10_000;
/// Most elements of one keys request.
pub const MAX_KEYS: usize = 1000;
/// Most bytes of all elements of one keys request together (tmux takes a
/// command of at most 16 KiB); longer text goes through `input`.
pub const MAX_KEYS_BYTES: usize = 8 * 1024;

/// The key names `keys` understands; any other element is typed as text.
/// Besides these: `F1`…`F12`, `C-a`…`C-z`, and `M-` followed by one
/// character (Alt, sent as Escape and the character).
pub const KEY_NAMES: &[&str] = &[
    "Enter", "Tab", "BTab", "Escape", "BSpace", "Space", "Up", "Down", "Left", "Right", "Home",
    "End", "PageUp", "PageDown", "Insert", "Delete",
];

/// Whether `element` of a keys request is a key name (else it is text).
pub fn is_key_name(element: &str) -> bool {
    if KEY_NAMES.contains(&element) {
        return true;
    }
    if let Some(number) = element.strip_prefix('F') {
        return matches!(number.parse::<u8>(), Ok(1..=12)) && !number.starts_with('0');
    }
    if let Some(letter) = element.strip_prefix("C-") {
        return letter.len() == 1 && letter.bytes().all(|b| b.is_ascii_lowercase());
    }
    if let Some(character) = element.strip_prefix("M-") {
        let mut chars = character.chars();
        return chars.next().is_some_and(|c| !c.is_control()) && chars.next().is_none();
    }
    false
}

/// Query of `GET /v1/jobs/{id}/screen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScreenQuery {
    /// Scrollback lines above the visible screen to include, 0..=10000,
    /// default 0.
    #[serde(default)]
    pub history: u32,
}

impl Validate for ScreenQuery {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range("history", self.history, 0, MAX_SCREEN_HISTORY)
    }
}

/// The cursor on the visible screen, counted from 0 at the top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cursor {
    /// Row, 0 at the top.
    pub row: u16,
    /// Column, 0 at the left.
    pub col: u16,
}

/// The process of the terminal's foreground group worth naming: the one
/// waiting for input if any, else the most recently started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForegroundProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command line (arguments joined by spaces, at most 1 KiB).
    pub command: String,
}

/// What a job waiting for input waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InputKind {
    /// A line, echoed (canonical mode with echo): a shell `read`, `cat`.
    Line,
    /// A line, not echoed (canonical mode without echo): a password prompt.
    Password,
    /// Single keys (non-canonical mode): a line editor such as readline, a
    /// "press any key".
    Key,
    /// A full-screen program (non-canonical on the alternate screen):
    /// `less`, `vi`, `top`.
    Fullscreen,
}

/// Whether a job waits for input, from ground truth: a process of the
/// terminal's foreground group asleep reading the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputState {
    /// Whether the job waits for input now.
    pub waiting: bool,
    /// What it waits for; null when not waiting.
    pub kind: Option<InputKind>,
    /// Since when (wire timestamp) it waits, as the server observed it;
    /// null when not waiting.
    pub since: Option<String>,
    /// The cursor's line up to the cursor (for `line`, `password`, `key`);
    /// null when not waiting or full screen.
    pub prompt: Option<String>,
}

/// Answer of `GET /v1/jobs/{id}/input-state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputStateView {
    /// The job.
    pub job_id: JobId,
    /// The job's status.
    pub status: JobStatus,
    /// The foreground process, null while none of the script's holds the
    /// terminal.
    pub foreground: Option<ForegroundProcess>,
    /// Whether and how the job waits for input.
    pub input: InputState,
}

/// Answer of `GET /v1/jobs/{id}/screen` and `POST /v1/jobs/{id}/resize`:
/// the rendered screen of the job's terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScreenView {
    /// The job.
    pub job_id: JobId,
    /// The job's status.
    pub status: JobStatus,
    /// Width of the terminal.
    pub cols: u16,
    /// Height of the terminal.
    pub rows: u16,
    /// Where the cursor is.
    pub cursor: Cursor,
    /// Whether a full-screen program switched to the alternate screen.
    pub alternate_screen: bool,
    /// The terminal's title as a program set it (OSC 0 or 2); until one
    /// does, tmux's default, the host's name.
    pub title: String,
    /// Exactly `rows` visible lines, top first, trailing spaces trimmed.
    pub lines: Vec<String>,
    /// The scrollback lines directly above the visible screen, oldest
    /// first (as many as asked for and kept; none on the alternate screen).
    pub history: Vec<String>,
    /// The foreground process, null while none of the script's holds the
    /// terminal.
    pub foreground: Option<ForegroundProcess>,
    /// Whether and how the job waits for input.
    pub input: InputState,
}

/// Body of `POST /v1/jobs/{id}/keys`: keys to press, then an output window
/// as `input` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysRequest {
    /// Key names ([`KEY_NAMES`], `F1`…`F12`, `C-a`…`C-z`, `M-<char>`) and
    /// text, in order; an element that is not a key name is typed as text.
    /// 1..=1000 non-empty elements, at most 8 KiB in all.
    pub keys: Vec<String>,
    /// Byte offset into `output.log` to read from afterwards (required).
    pub offset: u64,
    /// Seconds to wait, `0 < t <= 300`, default 30.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Bytes of output to return at most, 1..=1048576, default 8192.
    #[serde(default = "default_output_limit")]
    pub output_limit: u32,
    /// Quiet seconds after new output before returning, 0..=30, default 0.5.
    #[serde(default = "default_idle_flush")]
    pub idle_flush_seconds: f64,
}

impl KeysRequest {
    /// A request pressing `keys`, reading from `offset`, other fields at
    /// their defaults.
    pub fn new(keys: Vec<String>, offset: u64) -> Self {
        KeysRequest {
            keys,
            offset,
            timeout: DEFAULT_TIMEOUT_SECONDS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            idle_flush_seconds: DEFAULT_IDLE_FLUSH_SECONDS,
        }
    }
}

impl Validate for KeysRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.keys.is_empty() {
            return Err(ValidationError::new("keys", "must hold at least one key"));
        }
        if self.keys.len() > MAX_KEYS {
            return Err(ValidationError::new(
                "keys",
                format!("must hold at most {MAX_KEYS} keys"),
            ));
        }
        if self.keys.iter().map(String::len).sum::<usize>() > MAX_KEYS_BYTES {
            return Err(ValidationError::new(
                "keys",
                format!(
                    "must hold at most {MAX_KEYS_BYTES} bytes in all; send longer text with input"
                ),
            ));
        }
        if let Some(index) = self.keys.iter().position(String::is_empty) {
            return Err(ValidationError::new(
                format!("keys.{index}"),
                "must not be empty",
            ));
        }
        if let Some(index) = self.keys.iter().position(|key| key.contains('\0')) {
            return Err(ValidationError::new(
                format!("keys.{index}"),
                "must not contain NUL",
            ));
        }
        validate_window(self.timeout, self.output_limit, self.idle_flush_seconds)
    }
}

/// A signal the signal route sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum SignalName {
    INT,
    TERM,
    HUP,
    QUIT,
    KILL,
    USR1,
    USR2,
    STOP,
    CONT,
    WINCH,
    ALRM,
}

/// Who gets a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignalTarget {
    /// The terminal's foreground process group (the script's processes,
    /// never the job's runner).
    #[default]
    Foreground,
    /// Every process of the job but its runner.
    Job,
}

/// Body of `POST /v1/jobs/{id}/signal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalRequest {
    /// The signal, by name without `SIG`.
    pub signal: SignalName,
    /// Who gets it; default `foreground`.
    #[serde(default)]
    pub target: SignalTarget,
}

impl Validate for SignalRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Body of `POST /v1/jobs/{id}/resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResizeRequest {
    /// Columns, 1..=4096.
    pub cols: u16,
    /// Rows, 1..=4096.
    pub rows: u16,
}

impl Validate for ResizeRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        int_in_range("cols", self.cols, 1, MAX_TERMINAL_DIMENSION)?;
        int_in_range("rows", self.rows, 1, MAX_TERMINAL_DIMENSION)
    }
}

/// Environment presets of `run` (field `env_preset`) and of the server
/// (`--env-preset`). The job's own `env` overrides a preset's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EnvPreset {
    /// No preset: the job inherits the server's environment as it is (and
    /// a server-wide preset is not applied to this job).
    #[default]
    None,
    /// Variables that keep common tools from opening pagers or editors or
    /// asking questions ([`NONINTERACTIVE_ENV`]).
    Noninteractive,
}

/// The variables of [`EnvPreset::Noninteractive`], each with why it is set.
pub const NONINTERACTIVE_ENV: &[(&str, &str, &str)] = &[
    (
        "PAGER",
        "cat",
        "man, git, psql, systemctl and most CLIs print instead of opening a pager",
    ),
    (
        "GIT_PAGER",
        "cat",
        "git prints log and diff output instead of opening less",
    ),
    ("MANPAGER", "cat", "man prints the page"),
    (
        "SYSTEMD_PAGER",
        "cat",
        "systemctl and journalctl print instead of opening less",
    ),
    (
        "GH_PAGER",
        "cat",
        "the GitHub CLI prints instead of opening a pager",
    ),
    (
        "AWS_PAGER",
        "",
        "the AWS CLI v2 prints instead of opening less",
    ),
    (
        "GIT_EDITOR",
        "true",
        "git commit without -m aborts (empty message) and merge/rebase keep their default messages, instead of opening an editor",
    ),
    (
        "EDITOR",
        "true",
        "tools that open $EDITOR get an editor that changes nothing and returns at once",
    ),
    ("VISUAL", "true", "the same for tools that prefer $VISUAL"),
    (
        "GIT_TERMINAL_PROMPT",
        "0",
        "git fails instead of asking for a username or password",
    ),
    (
        "GCM_INTERACTIVE",
        "never",
        "Git Credential Manager fails instead of prompting",
    ),
    (
        "GH_PROMPT_DISABLED",
        "1",
        "the GitHub CLI fails instead of prompting",
    ),
    (
        "DEBIAN_FRONTEND",
        "noninteractive",
        "apt and dpkg take default answers instead of asking",
    ),
    (
        "PIP_NO_INPUT",
        "1",
        "pip fails instead of prompting (for credentials, say)",
    ),
    (
        "TF_INPUT",
        "0",
        "Terraform fails instead of asking for missing variables",
    ),
];

impl EnvPreset {
    /// The variables this preset sets, as (name, value).
    pub fn variables(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        let table: &[(&str, &str, &str)] = match self {
            EnvPreset::None => &[],
            EnvPreset::Noninteractive => NONINTERACTIVE_ENV,
        };
        table.iter().map(|(name, value, _)| (*name, *value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_and_text_are_told_apart() {
        for key in [
            "Enter", "Escape", "BSpace", "F1", "F12", "C-a", "C-z", "M-x", "M-.", "PageDown",
        ] {
            assert!(is_key_name(key), "{key}");
        }
        for text in [
            ":wq",
            "q",
            "F13",
            "F0",
            "F01",
            "C-",
            "C-ab",
            "C-A",
            "M-",
            "M-ab",
            "enter",
            "hello world",
        ] {
            assert!(!is_key_name(text), "{text}");
        }
    }

    #[test]
    fn an_empty_keys_list_or_element_is_refused() {
        assert!(KeysRequest::new(vec![], 0).validate().is_err());
        assert!(
            KeysRequest::new(vec!["a".into(), String::new()], 0)
                .validate()
                .is_err()
        );
        assert!(KeysRequest::new(vec!["Enter".into()], 0).validate().is_ok());
        assert!(
            KeysRequest::new(vec!["x".repeat(MAX_KEYS_BYTES + 1)], 0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn signal_names_and_targets_are_strict() {
        let parsed: SignalRequest = serde_json::from_str(r#"{"signal":"USR1"}"#).unwrap();
        assert_eq!(parsed.target, SignalTarget::Foreground);
        assert!(serde_json::from_str::<SignalRequest>(r#"{"signal":"SIGUSR1"}"#).is_err());
        assert!(
            serde_json::from_str::<SignalRequest>(r#"{"signal":"INT","target":"all"}"#).is_err()
        );
    }

    #[test]
    fn the_noninteractive_preset_sets_no_pager() {
        let vars: Vec<_> = EnvPreset::Noninteractive.variables().collect();
        assert!(vars.contains(&("PAGER", "cat")));
        assert_eq!(EnvPreset::None.variables().count(), 0);
    }
}
