//! The child process of a session: spawning it in its own process group,
//! draining its output streams, and signalling the group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes asked for per read of an output pipe.
const READ_CHUNK: usize = 64 * 1024;

/// A running child with its output being drained in the background.
pub(crate) struct SpawnedChild {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub group: ProcessGroup,
    pub stdout: mpsc::Receiver<Vec<u8>>,
    pub stderr: mpsc::Receiver<Vec<u8>>,
    pub readers: [JoinHandle<()>; 2],
}

/// Starts `sh -c command` as the leader of a new process group.
pub(crate) fn spawn(command: &str, max_buffered_output: usize) -> io::Result<SpawnedChild> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let missing = || io::Error::other("child started without a pipe");
    let pid = child.id().ok_or_else(missing)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    // One bounded channel per stream: a stream whose reader is made to wait
    // (its buffer is full) never holds back the other.
    let depth = (max_buffered_output / READ_CHUNK).max(1);
    let (stdout_tx, stdout_rx) = mpsc::channel(depth);
    let (stderr_tx, stderr_rx) = mpsc::channel(depth);
    let readers = [
        tokio::spawn(drain(stdout, stdout_tx)),
        tokio::spawn(drain(stderr, stderr_tx)),
    ];
    let group = ProcessGroup(Pid::from_raw(i32::try_from(pid).map_err(|_| missing())?));
    Ok(SpawnedChild {
        child,
        stdin,
        group,
        stdout: stdout_rx,
        stderr: stderr_rx,
        readers,
    })
}

/// Reads a pipe to its end, handing each chunk over; dropping the sender at
/// the end tells the receiver the stream is done.
async fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin, chunks: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if chunks.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The process group a session's command leads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessGroup(Pid);

impl ProcessGroup {
    /// Sends `signal` to every process of the group. A group that no longer
    /// exists is not an error.
    pub fn signal(self, signal: Signal) {
        let _ = killpg(self.0, signal);
    }

    /// Whether any process of the group is still there.
    pub fn exists(self) -> bool {
        killpg(self.0, None).is_ok()
    }
}
