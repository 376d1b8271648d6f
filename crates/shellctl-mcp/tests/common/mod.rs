//! A fake backend for the tests: canned answers, every call recorded.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use serde_json::Value;
use shellctl_mcp::{BackendError, ShellBackend};
use shellctl_proto::{
    Cursor, DigestRequest, DigestView, ForegroundProcess, InputJobRequest, InputKind, InputState,
    InputStateView, JobId, JobInfo, JobResult, JobStatus, JobStatusView, KeysRequest,
    ListJobsQuery, ListJobsResponse, LogSearchMatch, LogSearchQuery, LogSearchResponse,
    RunJobRequest, ScreenView, SignalRequest, WaitForRequest, WaitForResult, WaitReason,
};
use std::sync::Mutex;

pub const JOB: &str = "05211530-abc";

pub fn job() -> JobId {
    JobId::parse(JOB).unwrap()
}

/// One backend call: the method, the job, and the request as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub job: Option<String>,
    pub body: Value,
}

/// A backend answering from canned values and recording every call.
pub struct Fake {
    pub calls: Mutex<Vec<Call>>,
    /// The method that fails, with what.
    pub fail: Option<(&'static str, BackendError)>,
    pub wait: WaitForResult,
    pub digest: DigestView,
    pub status: JobStatusView,
    pub screen: ScreenView,
}

impl Fake {
    pub fn new() -> Self {
        Fake {
            calls: Mutex::default(),
            fail: None,
            wait: WaitForResult {
                result: job_result(JobStatus::Exited, Some(0), 57),
                reason: WaitReason::Exited,
                pattern_match: None,
                waiting_for_input: None,
            },
            digest: DigestView {
                text: "compiling\ndone\n".into(),
                offset: 57,
                omitted_bytes: 0,
                omitted_lines: 0,
            },
            status: JobStatusView {
                job_id: job(),
                status: JobStatus::Running,
                done: false,
                exit_code: None,
                created_at: "2026-05-21T15:30:20Z".into(),
                started_at: Some("2026-05-21T15:30:20Z".into()),
                ended_at: None,
                offset: 40,
            },
            screen: ScreenView {
                job_id: job(),
                status: JobStatus::Running,
                cols: 40,
                rows: 4,
                cursor: Cursor { row: 1, col: 10 },
                alternate_screen: false,
                title: "sudo".into(),
                lines: vec![
                    "[sudo] for me".into(),
                    "Password:".into(),
                    String::new(),
                    String::new(),
                ],
                history: vec![],
                foreground: Some(ForegroundProcess {
                    pid: 42,
                    command: "sudo true".into(),
                }),
                input: InputState {
                    waiting: true,
                    kind: Some(InputKind::Password),
                    since: Some("2026-05-21T15:30:21Z".into()),
                    prompt: Some("Password: ".into()),
                },
            },
        }
    }

    pub fn failing(mut self, method: &'static str, error: BackendError) -> Self {
        self.fail = Some((method, error));
        self
    }

    fn record<T: serde::Serialize>(
        &self,
        method: &'static str,
        job: Option<JobId>,
        body: &T,
    ) -> Result<(), BackendError> {
        self.calls.lock().unwrap().push(Call {
            method,
            job: job.map(|id| id.to_string()),
            body: serde_json::to_value(body).unwrap(),
        });
        match &self.fail {
            Some((failing, error)) if *failing == method => Err(error.clone()),
            _ => Ok(()),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn methods(&self) -> Vec<&'static str> {
        self.calls().iter().map(|call| call.method).collect()
    }
}

pub fn job_result(status: JobStatus, exit_code: Option<i32>, offset: u64) -> JobResult {
    JobResult {
        job_id: job(),
        done: status.is_terminal(),
        status,
        exit_code,
        output_path: "/s/jobs/05211530-abc/output.log".into(),
        output: String::new(),
        offset,
        truncated: false,
    }
}

impl ShellBackend for Fake {
    async fn run(&self, request: RunJobRequest) -> Result<JobResult, BackendError> {
        self.record("run", None, &request)?;
        Ok(job_result(JobStatus::Running, None, 0))
    }
    async fn wait_for(
        &self,
        job_id: JobId,
        request: WaitForRequest,
    ) -> Result<WaitForResult, BackendError> {
        self.record("wait_for", Some(job_id), &request)?;
        Ok(self.wait.clone())
    }
    async fn input(
        &self,
        job_id: JobId,
        request: InputJobRequest,
    ) -> Result<JobResult, BackendError> {
        self.record("input", Some(job_id), &request)?;
        Ok(job_result(JobStatus::Running, None, request.offset))
    }
    async fn keys(&self, job_id: JobId, request: KeysRequest) -> Result<JobResult, BackendError> {
        self.record("keys", Some(job_id), &request)?;
        Ok(job_result(JobStatus::Running, None, request.offset))
    }
    async fn status(&self, job_id: JobId) -> Result<JobStatusView, BackendError> {
        self.record("status", Some(job_id), &())?;
        Ok(self.status.clone())
    }
    async fn screen(&self, job_id: JobId) -> Result<ScreenView, BackendError> {
        self.record("screen", Some(job_id), &())?;
        Ok(self.screen.clone())
    }
    async fn input_state(&self, job_id: JobId) -> Result<InputStateView, BackendError> {
        self.record("input_state", Some(job_id), &())?;
        Ok(InputStateView {
            job_id,
            status: JobStatus::Running,
            foreground: None,
            input: InputState::default(),
        })
    }
    async fn signal(
        &self,
        job_id: JobId,
        request: SignalRequest,
    ) -> Result<JobStatusView, BackendError> {
        self.record("signal", Some(job_id), &request)?;
        Ok(self.status.clone())
    }
    async fn terminate(
        &self,
        job_id: JobId,
        grace_seconds: f64,
    ) -> Result<JobStatusView, BackendError> {
        self.record("terminate", Some(job_id), &grace_seconds)?;
        let mut view = self.status.clone();
        view.status = JobStatus::Terminated;
        view.done = true;
        Ok(view)
    }
    async fn list(&self, query: ListJobsQuery) -> Result<ListJobsResponse, BackendError> {
        self.record("list", None, &query)?;
        Ok(ListJobsResponse {
            jobs: vec![JobInfo {
                job_id: job(),
                status: JobStatus::Exited,
                created_at: "2026-05-21T15:30:20Z".into(),
                started_at: Some("2026-05-21T15:30:20Z".into()),
                ended_at: Some("2026-05-21T15:31:00Z".into()),
            }],
        })
    }
    async fn search(
        &self,
        job_id: JobId,
        query: LogSearchQuery,
    ) -> Result<LogSearchResponse, BackendError> {
        self.record("search", Some(job_id), &query)?;
        Ok(LogSearchResponse {
            matches: vec![LogSearchMatch {
                offset: 120,
                line_number: 7,
                line: "error[E0308]: mismatched types".into(),
            }],
            truncated: true,
        })
    }
    async fn digest(
        &self,
        job_id: JobId,
        request: DigestRequest,
    ) -> Result<DigestView, BackendError> {
        self.record("digest", Some(job_id), &request)?;
        Ok(self.digest.clone())
    }
}
