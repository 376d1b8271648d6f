//! A real `shellctl serve` process for integration tests, on its own state
//! dir, runtime dir and tmux socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_shellctl");
/// Generous bound on waits that only a broken server would reach.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub struct TestServer {
    pub child: Child,
    pub base: String,
    pub root: PathBuf,
    pub token: Option<String>,
    pub client: reqwest::Client,
    dir: Option<tempfile::TempDir>,
}

pub struct Options {
    pub token: Option<String>,
    pub extra: Vec<String>,
}

/// How the server under test talks to tmux (`serve --tmux-client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmuxMode {
    Control,
    Cli,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(Options {
            token: None,
            extra: Vec::new(),
        })
    }

    /// A server using `mode` to talk to tmux.
    pub fn start_in(mode: TmuxMode) -> TestServer {
        let flag = match mode {
            TmuxMode::Control => "control",
            TmuxMode::Cli => "cli",
        };
        Self::start_with(Options {
            token: None,
            extra: vec!["--tmux-client".into(), flag.into()],
        })
    }

    pub fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        std::fs::create_dir_all(root.join("home")).unwrap();
        let mut server = Self::spawn_in(&root, options);
        server.dir = Some(dir);
        server
    }

    /// A server on an existing root (to restart after a crash).
    pub fn spawn_in(root: &Path, options: Options) -> TestServer {
        Self::spawn_binary(Path::new(BIN), root, options)
    }

    /// A server run from `binary` (a copy of `shellctl` elsewhere) on an
    /// existing root.
    pub fn spawn_binary(binary: &Path, root: &Path, options: Options) -> TestServer {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(root.join("state"))
            .arg("--runtime-dir")
            .arg(root.join("run"))
            .args(&options.extra);
        // Test servers are mostly killed, not stopped, and a killed server
        // leaves its cgroup directories behind: only tests that are about
        // containment ask for cgroups.
        if !options.extra.iter().any(|arg| arg == "--cgroups") {
            command.args(["--cgroups", "off"]);
        }
        command
            .env("HOME", root.join("home"))
            .env_remove("SHELLCTL_AUTH_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(token) = &options.token {
            command.env("SHELLCTL_AUTH_TOKEN", token);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("shellctl listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        TestServer {
            child,
            base,
            root: root.to_owned(),
            token: options.token,
            client: reqwest::Client::new(),
            dir: None,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn tmux_socket(&self) -> PathBuf {
        self.root.join("run").join("tmux.sock")
    }

    /// Types `text` and Enter into a job's pane through tmux directly (so
    /// it works while no server runs).
    pub fn type_line_through_tmux(&self, job_id: &str, text: &str) {
        let pane = format!("shellctl-job-{job_id}:0.0");
        let typed = self.tmux(&["send-keys", "-t", &pane, text, "Enter"]);
        assert!(typed.status.success(), "{typed:?}");
    }

    /// A new server on this one's root and token (after a crash of this
    /// one).
    pub fn restart(&self) -> TestServer {
        TestServer::spawn_in(
            &self.root,
            Options {
                token: self.token.clone(),
                extra: Vec::new(),
            },
        )
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.tmux_socket())
            .args(args)
            .output()
            .unwrap()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(HANG_GUARD);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> (u16, Value) {
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Runs a script; asserts 200.
    pub async fn run(&self, body: Value) -> Value {
        let (status, result) = self.post("/v1/jobs/run", body).await;
        assert_eq!(status, 200, "{result}");
        result
    }

    /// Waits (repeatedly) from `offset` until the job is done; returns all
    /// output read and the last result.
    pub async fn wait_done(&self, job_id: &str, mut offset: u64) -> (String, Value) {
        let mut output = String::new();
        loop {
            let (status, result) = self
                .post(
                    &format!("/v1/jobs/{job_id}/wait"),
                    json!({"offset": offset, "timeout": 30}),
                )
                .await;
            assert_eq!(status, 200, "{result}");
            output.push_str(result["output"].as_str().unwrap());
            offset = result["offset"].as_u64().unwrap();
            if result["done"].as_bool().unwrap() && !result["truncated"].as_bool().unwrap() {
                return (output, result);
            }
        }
    }

    /// Polls the job's status until `pred` holds (the monitor acts on its
    /// own schedule; there is no event a client could wait on).
    pub async fn status_until(&self, job_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            let (status, view) = self.get(&format!("/v1/jobs/{job_id}")).await;
            assert_eq!(status, 200, "{view}");
            if pred(&view) {
                return view;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "status never matched: {view}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The temp dir that holds this server's state (taken out, it outlives
    /// the server).
    pub fn dir_mut(&mut self) -> &mut Option<tempfile::TempDir> {
        &mut self.dir
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for TestServer {
    /// The server goes first: a live server would start a new tmux server
    /// (through its control client) right after this one is killed.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.tmux(&["kill-server"]);
        remove_cgroups_of(&self.root.join("state"));
    }
}

/// Removes the cgroup directories a killed server on `state_dir` left
/// (a stopped one removes its own), so that test runs do not pile them up
/// on the host. Its jobs die with their tmux server, a few milliseconds
/// after it, so a busy group is tried again for a while.
fn remove_cgroups_of(state_dir: &Path) {
    use shellctl_job::containment::{CgroupSupport, cgroup::instance_dir_name, instance_of};
    let name = instance_dir_name(&instance_of(state_dir));
    for own in CgroupSupport::detect().own_groups() {
        let base = own.join(&name);
        if !base.exists() {
            continue;
        }
        for _ in 0..200 {
            let jobs: Vec<PathBuf> = std::fs::read_dir(&base)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| entry.path())
                        .filter(|path| path.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            // A runner killed with its tmux server in the middle of its
            // group kill leaves the group frozen, and a frozen process
            // cannot act on its SIGKILL: thaw first.
            for job in &jobs {
                let _ = std::fs::write(job.join("freezer.state"), "THAWED");
                let _ = std::fs::write(job.join("cgroup.freeze"), "0");
            }
            // What outlived the tmux server (a kept daemon) goes now.
            let left: Vec<String> = jobs
                .iter()
                .filter_map(|job| std::fs::read_to_string(job.join("cgroup.procs")).ok())
                .flat_map(|procs| {
                    procs
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect();
            if !left.is_empty() {
                let _ = Command::new("kill").arg("-9").args(&left).status();
            }
            // Every one is tried, not only up to the first that is busy.
            let busy = jobs
                .iter()
                .filter(|job| std::fs::remove_dir(job).is_err())
                .count();
            let all_gone = busy == 0;
            if all_gone && std::fs::remove_dir(&base).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }
}

pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

pub fn sorted(fields: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The `shellctl` binary as a client of `server` (its address and token
/// from the environment, as a user would set them).
pub fn cli(server: &TestServer) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("SHELLCTL_BASE_URL", &server.base)
        .env_remove("SHELLCTL_AUTH_TOKEN");
    if let Some(token) = &server.token {
        command.env("SHELLCTL_AUTH_TOKEN", token);
    }
    command
}

/// Runs `command` to its end on a blocking thread.
pub async fn blocking(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The python of a venv the project's scripts make under `target/`
/// (`scripts/ref-venv`, `scripts/mcp-venv`; scripts/test runs both).
pub fn venv_python(venv: &str, made_by: &str) -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(venv)
        .join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run {made_by} (scripts/test does)",
        python.display()
    );
    python
}

/// Runs `tests/<script>` with `python` and `args` (no token or base URL
/// inherited from the environment); asserts it succeeded and printed
/// exactly `expected` on stdout.
pub async fn run_python_script(python: PathBuf, script: &str, args: &[&str], expected: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args(args)
        .env_remove("SHELLCTL_AUTH_TOKEN")
        .env_remove("SHELLCTL_BASE_URL")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    assert_eq!(stdout.trim(), expected, "{stderr}");
}
