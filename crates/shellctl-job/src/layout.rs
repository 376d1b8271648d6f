//! Where a server's state lives, created with private permissions.
//!
//! ```text
//! <state>/             0700
//!   shellctl.db        0600  (SQLite, WAL)
//!   jobs/              0700
//!     <job id>/        0700  (see `job_files`)
//! <runtime>/           0700
//!   tmux.sock                (the job tmux server's socket)
//! ```

use shellctl_proto::JobId;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory the server creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file the server creates.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The reserve file in the state directory: real bytes set aside so that
/// ending and deleting jobs still work on a full disk (see
/// [`Store::restore_reserve`](crate::Store::restore_reserve)).
pub const RESERVE_FILE: &str = "reserve";

/// A state or runtime directory could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("preparing {path}: {source}")]
pub struct LayoutError {
    /// The directory.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: io::Error,
}

/// The paths of one server's state.
#[derive(Debug, Clone)]
pub struct StateLayout {
    state_dir: PathBuf,
    runtime_dir: PathBuf,
}

impl StateLayout {
    /// Paths under `state_dir` and `runtime_dir`; nothing is created yet.
    pub fn new(state_dir: impl Into<PathBuf>, runtime_dir: impl Into<PathBuf>) -> Self {
        StateLayout {
            state_dir: state_dir.into(),
            runtime_dir: runtime_dir.into(),
        }
    }

    /// The XDG defaults: `$XDG_STATE_HOME/shellctl` (or
    /// `~/.local/state/shellctl`) and `$XDG_RUNTIME_DIR/shellctl` (or
    /// `<state>/run/shellctl`).
    pub fn xdg_defaults() -> Self {
        let env_dir = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let state_dir = env_dir("XDG_STATE_HOME")
            .or_else(|| env_dir("HOME").map(|home| home.join(".local").join("state")))
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join("shellctl");
        let runtime_dir = env_dir("XDG_RUNTIME_DIR").map_or_else(
            || state_dir.join("run").join("shellctl"),
            |dir| dir.join("shellctl"),
        );
        StateLayout::new(state_dir, runtime_dir)
    }

    /// Creates the state, jobs and runtime directories (0700), and tightens
    /// the mode of ones that already exist.
    pub fn prepare(&self) -> Result<(), LayoutError> {
        for dir in [&self.state_dir, &self.jobs_dir(), &self.runtime_dir] {
            create_private_dir(dir).map_err(|source| LayoutError {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The runtime directory (tmux socket).
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        Self::database_in(&self.state_dir)
    }

    /// The SQLite database of the state dir `state_dir`, for the job-side
    /// processes, which are told only the state dir.
    pub fn database_in(state_dir: &Path) -> PathBuf {
        state_dir.join("shellctl.db")
    }

    /// The directory holding one directory per job.
    pub fn jobs_dir(&self) -> PathBuf {
        self.state_dir.join("jobs")
    }

    /// One job's directory. The id is validated, so this stays inside
    /// [`jobs_dir`](Self::jobs_dir).
    pub fn job_dir(&self, id: JobId) -> PathBuf {
        self.jobs_dir().join(id.as_str())
    }

    /// The socket of the jobs' tmux server.
    pub fn tmux_socket(&self) -> PathBuf {
        self.runtime_dir.join("tmux.sock")
    }
}

/// Creates `dir` and its missing parents with mode 0700; sets 0700 on `dir`
/// itself if it already existed.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn prepare_creates_private_dirs_and_tightens_existing_ones() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        let layout = StateLayout::new(&state, root.path().join("run/shellctl"));
        layout.prepare().unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&layout.jobs_dir()), 0o700);
        assert_eq!(mode(layout.runtime_dir()), 0o700);
        let id = JobId::parse("05211530-abc").unwrap();
        assert_eq!(layout.job_dir(id), state.join("jobs/05211530-abc"));
    }
}
