//! The reference's own Python SDK (`ShellctlClient` of
//! shell-session-manager 2.2.0) against our server. Needs the venv that
//! `scripts/ref-venv` makes (scripts/test does).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use support::*;

fn reference_python() -> PathBuf {
    venv_python("ref-venv", "scripts/ref-venv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_python_client_works_unchanged() {
    let server = TestServer::start_with(Options {
        token: Some("compat-token".into()),
        extra: Vec::new(),
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/reference_client.py");
    let output = tokio::process::Command::new(reference_python())
        .arg(script)
        .arg(&server.base)
        .arg("compat-token")
        .env_remove("SHELLCTL_AUTH_TOKEN")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "reference client failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "compat ok");
}
