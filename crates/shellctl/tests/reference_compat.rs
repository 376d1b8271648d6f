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
    run_python_script(
        reference_python(),
        "compat/reference_client.py",
        &[&server.base, "compat-token"],
        "compat ok",
    )
    .await;
}
