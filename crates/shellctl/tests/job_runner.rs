//! The job runner (`shellctl-job job-runner`, and the same command line of
//! the full `shellctl`), driven directly through its job directory and
//! start gate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shellctl_job::{JobDir, JobSpec};
use shellctl_term::SYNC_SEQUENCE;
use std::collections::BTreeMap;
use std::process::Command;

/// Runs `script` in a fresh job dir with `cwd` and returns the recorded
/// exit code and the runner's stdout up to its sync sequence (the runner
/// prints nothing else of its own).
fn run(script: &str, cwd: &str, env: &[(&str, &str)]) -> (i32, String) {
    run_with(LEAN, script, cwd, env)
}

/// The lean job-side binary the server starts, and the full one it falls
/// back to.
const LEAN: &str = env!("CARGO_BIN_EXE_shellctl-job");
const FULL: &str = env!("CARGO_BIN_EXE_shellctl");

fn run_with(binary: &str, script: &str, cwd: &str, env: &[(&str, &str)]) -> (i32, String) {
    let root = tempfile::tempdir().unwrap();
    let dir = JobDir::create(root.path().join("job")).unwrap();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    dir.populate(
        script,
        &JobSpec {
            cwd: cwd.into(),
            env,
            ..JobSpec::default()
        },
    )
    .unwrap();
    let mut runner = Command::new(binary)
        .arg("job-runner")
        .arg("--job-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    dir.open_gate().unwrap();
    // Play the pipe side: read until the runner's end-of-output sync
    // sequence, then acknowledge it so the runner exits.
    let mut stdout = runner.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.ends_with(SYNC_SEQUENCE) {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "runner closed stdout before syncing: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    dir.acknowledge_sync();
    assert!(runner.wait().unwrap().success());
    let exit = dir.read_exit().unwrap().expect("exit marker");
    seen.truncate(seen.len() - SYNC_SEQUENCE.len());
    (exit.exit_code, String::from_utf8(seen).unwrap())
}

#[test]
fn exit_codes_of_the_script_and_of_failures_to_start_it() {
    for binary in [LEAN, FULL] {
        let run = |script, cwd| run_with(binary, script, cwd, &[]);
        assert_eq!(run("exit 9", "/"), (9, String::new()), "{binary}");
        assert_eq!(run("echo out", "/tmp"), (0, "out\n".into()), "{binary}");
        assert_eq!(run("true", "/no/such/dir").0, 111, "{binary}");
        assert_eq!(run("#!/no/such/interpreter\n", "/").0, 127, "{binary}");
        assert_eq!(run("kill -KILL $$", "/").0, 137, "{binary}");
    }
}

#[test]
fn env_overlay_is_applied_as_data() {
    let (code, out) = run(
        "printf '%s|%s\\n' \"$A\" \"$B\"",
        "/",
        &[("A", "$(echo no)"), ("B", "x y")],
    );
    assert_eq!((code, out.as_str()), (0, "$(echo no)|x y\n"));
}
