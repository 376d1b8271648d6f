//! The terminal routes: the screen, the input state, keys, signals and
//! resize. The screen comes from tmux, the input state from `/proc`
//! ([`shellctl_job::terminal`]), since-when from the [`InputTracker`].
//! Every route answers `job_not_running` once the job has ended.
//!
//! [`InputTracker`]: super::input_tracker::InputTracker

use super::input_tracker::{Look, WaitSeen};
use super::waiting::Window;
use super::{Service, ServiceError, pane_gone, run_blocking};
use crate::tmux::PaneScreen;
use shellctl_job::JobRecord;
use shellctl_job::process::ProcessIdentity;
use shellctl_job::terminal::{self, ProbeError, TerminalProbe};
use shellctl_proto::{
    Cursor, ForegroundProcess, InputKind, InputState, InputStateView, JobId, JobResult,
    JobStatusView, KeysRequest, ResizeRequest, ScreenQuery, ScreenView, SignalRequest,
    SignalTarget,
};
use std::time::Instant;
use unicode_width::UnicodeWidthChar;

impl Service {
    /// `GET /v1/jobs/{id}/screen`.
    pub async fn screen(
        &self,
        job_id: JobId,
        query: ScreenQuery,
    ) -> Result<ScreenView, ServiceError> {
        let (record, runner) = self.live_terminal(job_id).await?;
        let pane = self.capture(job_id, query.history).await?;
        let (foreground, input) = self.input_of(job_id, runner, Some(&pane)).await?;
        Ok(ScreenView {
            job_id,
            status: record.status,
            cols: pane.cols,
            rows: pane.rows,
            cursor: Cursor {
                row: pane.cursor_row,
                col: pane.cursor_col,
            },
            alternate_screen: pane.alternate_screen,
            title: pane.title,
            lines: pane.lines,
            history: pane.history,
            foreground,
            input,
        })
    }

    /// `GET /v1/jobs/{id}/input-state`.
    pub async fn input_state(&self, job_id: JobId) -> Result<InputStateView, ServiceError> {
        let (record, runner) = self.live_terminal(job_id).await?;
        let (foreground, input) = self.input_of(job_id, runner, None).await?;
        Ok(InputStateView {
            job_id,
            status: record.status,
            foreground,
            input,
        })
    }

    /// `POST /v1/jobs/{id}/keys`: presses the keys, then waits like
    /// `input`.
    pub async fn keys(
        &self,
        job_id: JobId,
        request: KeysRequest,
    ) -> Result<JobResult, ServiceError> {
        self.check_input_offset(job_id, request.offset).await?;
        let sent = self.tmux.send_keys(job_id, &request.keys).await;
        self.input.input_sent(job_id, Instant::now());
        sent.map_err(|err| pane_gone(job_id, err))?;
        self.wait_window(job_id, Window::from(&request)).await
    }

    /// `POST /v1/jobs/{id}/signal`: signals the script's foreground group
    /// or all the job's processes, never its runner.
    pub async fn signal(
        &self,
        job_id: JobId,
        request: SignalRequest,
    ) -> Result<JobStatusView, ServiceError> {
        let (_, runner) = self.live_terminal(job_id).await?;
        let job_dir = self.job_dir(job_id);
        let signalled = run_blocking(move || {
            // Every tracked process, also those that left the job's tree.
            let tracked = (request.target == SignalTarget::Job)
                .then(|| job_dir.read_spec().ok()?.containment)
                .flatten();
            match tracked {
                Some(containment) if runner.is_alive() => {
                    Ok(containment.signal(Some(runner), terminal::nix_signal(request.signal)))
                }
                _ => terminal::signal_job(runner, request.signal, request.target),
            }
        })
        .await?
        .map_err(|ProbeError::TerminalGone| ServiceError::JobNotRunning(job_id))?;
        if signalled == 0 {
            // The script is not running (it ended; the job is about to).
            return Err(ServiceError::JobNotRunning(job_id));
        }
        self.status(job_id).await
    }

    /// `POST /v1/jobs/{id}/resize`: returns the screen after the resize.
    pub async fn resize(
        &self,
        job_id: JobId,
        request: ResizeRequest,
    ) -> Result<ScreenView, ServiceError> {
        self.live_terminal(job_id).await?;
        self.tmux
            .resize(job_id, request.cols, request.rows)
            .await
            .map_err(|err| pane_gone(job_id, err))?;
        self.screen(job_id, ScreenQuery::default()).await
    }

    /// The record of a job that still runs, and its runner; a job that
    /// ended (or has not started) is `job_not_running`.
    pub(super) async fn live_terminal(
        &self,
        job_id: JobId,
    ) -> Result<(JobRecord, ProcessIdentity), ServiceError> {
        let (record, runner) = self.settled(job_id, shellctl_job::JobDir::runner).await?;
        if record.status != shellctl_proto::JobStatus::Running {
            return Err(ServiceError::JobNotRunning(job_id));
        }
        let runner = if let Some(runner) = runner {
            runner
        } else {
            // A job started by a version that did not record its runner:
            // the pane's first process is the runner.
            let pid = self
                .tmux
                .pane_pid(job_id)
                .await
                .map_err(|err| pane_gone(job_id, err))?;
            run_blocking(move || ProcessIdentity::of(pid))
                .await?
                .ok_or(ServiceError::JobNotRunning(job_id))?
        };
        Ok((record, runner))
    }

    async fn capture(&self, job_id: JobId, history: u32) -> Result<PaneScreen, ServiceError> {
        self.tmux
            .capture_screen(job_id, history)
            .await
            .map_err(|err| pane_gone(job_id, err))
    }

    /// The foreground process and input state, from a fresh probe; the
    /// pane (alternate screen, cursor line) is captured only if the job
    /// waits and the caller has none.
    pub(super) async fn input_of(
        &self,
        job_id: JobId,
        runner: ProcessIdentity,
        pane: Option<&PaneScreen>,
    ) -> Result<(Option<ForegroundProcess>, InputState), ServiceError> {
        let generation = self.input.generation(job_id);
        let watcher = std::sync::Arc::clone(&self.watcher);
        let job_dir = self.job_dir(job_id);
        let (probe, output) = run_blocking(move || {
            let output = watcher.changes(job_dir.path()).map_or(0, |c| c.output);
            (terminal::probe(runner), output)
        })
        .await?;
        let probe =
            probe.map_err(|ProbeError::TerminalGone| ServiceError::JobNotRunning(job_id))?;
        let look = Look {
            generation,
            seen: wait_seen(&probe),
            output,
        };
        let since = self.input.queried(job_id, look, Instant::now());
        let foreground = probe.foreground.as_ref().map(|process| ForegroundProcess {
            pid: process.pid,
            command: process.command.clone(),
        });
        if probe.reader.is_none() {
            return Ok((foreground, InputState::default()));
        }
        let captured;
        let pane = if let Some(pane) = pane {
            pane
        } else {
            captured = self.capture(job_id, 0).await?;
            &captured
        };
        let kind = probe.input_kind(pane.alternate_screen);
        Ok((
            foreground,
            InputState {
                waiting: true,
                kind,
                since,
                prompt: kind
                    .filter(|kind| *kind != InputKind::Fullscreen)
                    .map(|_| prompt_of(pane)),
            },
        ))
    }

    /// One scheduled look at each watched job that is due (see
    /// [`InputTracker`](super::input_tracker::InputTracker)), so `since`
    /// holds between queries. Jobs nobody watches cost nothing here.
    pub(super) async fn look_at_waiting_jobs(&self) {
        if self.input.is_empty() {
            return;
        }
        // A job no longer watched by the watcher has ended.
        let due = self.input.due(Instant::now(), |job_id| {
            let dir = self.config.layout.job_dir(job_id);
            self.watcher.changes(&dir).map(|c| c.output)
        });
        if due.is_empty() {
            return;
        }
        let dirs: Vec<_> = due
            .into_iter()
            .map(|(id, generation, output)| (id, generation, output, self.job_dir(id)))
            .collect();
        let Ok(looks) = run_blocking(move || {
            dirs.into_iter()
                .filter_map(|(id, generation, output, dir)| {
                    let probe = terminal::probe(dir.runner()?).ok()?;
                    let look = Look {
                        generation,
                        seen: wait_seen(&probe),
                        output,
                    };
                    Some((id, look))
                })
                .collect::<Vec<_>>()
        })
        .await
        else {
            return;
        };
        let now = Instant::now();
        for (job_id, look) in looks {
            self.input.observe(job_id, look, now);
        }
    }
}

pub(super) fn wait_seen(probe: &TerminalProbe) -> Option<WaitSeen> {
    probe.reader.map(|reader| WaitSeen {
        reader: reader.pid,
        mode: probe.mode,
    })
}

/// The cursor's line up to the cursor, padded with spaces to the cursor's
/// column (tmux trims trailing spaces, but a prompt such as `Name: `
/// keeps its space). Wide characters count two columns.
fn prompt_of(pane: &PaneScreen) -> String {
    let line = pane
        .lines
        .get(usize::from(pane.cursor_row))
        .map_or("", String::as_str);
    let cursor = usize::from(pane.cursor_col);
    let mut prompt = String::new();
    let mut width = 0;
    for c in line.chars() {
        let w = c.width().unwrap_or(0);
        if width + w > cursor {
            break;
        }
        prompt.push(c);
        width += w;
    }
    prompt.extend(std::iter::repeat_n(' ', cursor.saturating_sub(width)));
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(line: &str, col: u16) -> PaneScreen {
        PaneScreen {
            cols: 80,
            rows: 2,
            cursor_col: col,
            cursor_row: 1,
            alternate_screen: false,
            title: String::new(),
            lines: vec!["above".into(), line.into()],
            history: Vec::new(),
        }
    }

    #[test]
    fn the_prompt_runs_to_the_cursor_with_its_trailing_space() {
        assert_eq!(prompt_of(&pane("Name:", 6)), "Name: ");
        assert_eq!(prompt_of(&pane("$ typed", 2)), "$ ");
        assert_eq!(prompt_of(&pane("", 0)), "");
        // Two columns per wide character.
        assert_eq!(prompt_of(&pane("名前:", 6)), "名前: ");
    }
}
