//! The agent routes: a job's detail, server-side wait conditions
//! (`wait-for`), log search and output digests.
//!
//! `wait-for` waits on the same events as v1's `wait` (the watcher's
//! counters): new output is matched line by line as it arrives, with a
//! scanner that carries the unfinished line from one read to the next, so
//! a pattern split across writes still matches; and the job's terminal is
//! probed for an input wait on a schedule that starts shortly after output
//! went quiet (a program prints its prompt, then reads) and backs off while
//! nothing happens.

use super::input_tracker::WaitSeen;
use super::terminal::wait_seen;
use super::waiting::{FALLBACK_TICK, JobChanges, earliest, exit_code_of, job_result};
use super::{Service, ServiceError, pane_gone, run_blocking};
use shellctl_job::files::{LOG_CAPPED, LOG_INCOMPLETE, OUTPUT, SCRIPT};
use shellctl_job::process::ProcessIdentity;
use shellctl_job::terminal;
use shellctl_proto::{
    DigestRequest, DigestView, InputKind, JobDetail, JobId, JobStatus, LogSearchMatch,
    LogSearchQuery, LogSearchResponse, PatternMatch, TerminalSize, WaitForRequest, WaitForResult,
    WaitReason, WaitUntil, WaitingForInput,
};
use shellctl_term::search::{LineMatch, LineScanner};
use std::time::Duration;
use tokio::time::Instant;

/// How long output must be quiet, and a wait must have run, before the
/// terminal is probed for an input wait: a program that just got input or
/// printed needs a moment to reach its next read, and a probe before that
/// would see the read it is about to leave.
const INPUT_SETTLE: Duration = Duration::from_millis(100);
/// Longest gap between two input probes while nothing else happens.
const MAX_PROBE_GAP: Duration = Duration::from_secs(1);

impl Service {
    /// `GET /v1/jobs/{id}/detail`.
    pub async fn detail(&self, job_id: JobId) -> Result<JobDetail, ServiceError> {
        let (record, size) = self.settled_record_and_size(job_id).await?;
        let job_dir = self.job_dir(job_id);
        let (spec, script, runner, marks) = run_blocking(move || {
            let spec = job_dir.read_spec();
            let script = std::fs::read_to_string(job_dir.file(SCRIPT));
            let marks = (
                job_dir.leftovers(),
                job_dir.has(LOG_CAPPED),
                job_dir.has(LOG_INCOMPLETE),
            );
            (spec, script, job_dir.runner(), marks)
        })
        .await?;
        let (leftover_processes, log_capped, log_incomplete) = marks;
        let spec = spec.map_err(|err| vanished_or(job_id, err))?;
        let script = script.map_err(|err| vanished_or(job_id, err))?;
        let live = !record.status.is_terminal();
        let started_size = spec.terminal.unwrap_or_default();
        let terminal = if live && record.status == JobStatus::Running {
            match self.tmux.pane_size(job_id).await {
                Ok((cols, rows)) => TerminalSize { cols, rows },
                Err(_) => started_size,
            }
        } else {
            started_size
        };
        Ok(JobDetail {
            exit_code: exit_code_of(&record),
            done: record.status.is_terminal(),
            job_id,
            status: record.status,
            created_at: record.created_at,
            started_at: record.started_at,
            ended_at: record.ended_at,
            offset: size,
            label: record.label,
            idempotency_key: record.idempotency_key,
            cwd: spec.cwd.to_string_lossy().into_owned(),
            script,
            terminal,
            failure_reason: record.failure.map(|reason| reason.as_str().to_owned()),
            end_reason: record.end_reason,
            output_bytes: size,
            max_runtime_seconds: spec.max_runtime_ms.map(millis_to_seconds),
            idle_timeout_seconds: spec.idle_timeout_ms.map(millis_to_seconds),
            pid: runner.filter(|_| live).map(|runner| runner.pid),
            keep_background: spec.keep_background,
            memory_max_bytes: spec.limits.memory_max_bytes,
            pids_max: spec.limits.pids_max,
            cpu_max: spec.limits.cpu_max,
            containment: spec.containment.as_ref().map(|c| c.kind().to_owned()),
            leftover_processes,
            log_capped,
            log_incomplete,
        })
    }

    /// `GET /v1/jobs/{id}/log/search`.
    pub async fn search_log(
        &self,
        job_id: JobId,
        query: LogSearchQuery,
    ) -> Result<LogSearchResponse, ServiceError> {
        let regex = compile(&query.pattern)?;
        self.settled_record(job_id).await?;
        let log = self.job_dir(job_id).file(OUTPUT);
        let found = run_blocking(move || {
            shellctl_term::search::search_log(&log, &regex, query.limit as usize)
        })
        .await?
        .map_err(|err| vanished_or(job_id, err))?;
        Ok(LogSearchResponse {
            matches: found
                .matches
                .into_iter()
                .map(|line| LogSearchMatch {
                    offset: line.offset,
                    line_number: line.line_number,
                    line: line.line,
                })
                .collect(),
            truncated: found.truncated,
        })
    }

    /// `POST /v1/jobs/{id}/digest`.
    pub async fn digest(
        &self,
        job_id: JobId,
        request: DigestRequest,
    ) -> Result<DigestView, ServiceError> {
        let (_, size) = self.settled_record_and_size(job_id).await?;
        let end = request.end_offset.unwrap_or(size);
        for offset in [request.offset, end] {
            if offset > size {
                return Err(ServiceError::InvalidOffset { offset, size });
            }
        }
        let log = self.job_dir(job_id).file(OUTPUT);
        let digest = run_blocking(move || {
            shellctl_term::digest::digest_file(
                &log,
                request.offset,
                Some(end),
                request.max_bytes as usize,
            )
        })
        .await?
        .map_err(|err| vanished_or(job_id, err))?;
        Ok(DigestView {
            text: digest.text,
            offset: digest.end_offset,
            omitted_bytes: digest.omitted_bytes,
            omitted_lines: digest.omitted_lines,
        })
    }

    /// `POST /v1/jobs/{id}/wait-for`: waits until one of the request's
    /// conditions holds, the job ends, or the timeout passes.
    pub async fn wait_for(
        &self,
        job_id: JobId,
        request: WaitForRequest,
    ) -> Result<WaitForResult, ServiceError> {
        // Counted until this returns, or its request is dropped.
        let _waiter = self.metrics.waiter();
        let conditions = request.conditions();
        let mut matcher = match &request.pattern {
            Some(pattern) if conditions.contains(&WaitUntil::Match) => {
                Some(LineScanner::new(compile(pattern)?, request.offset, 1))
            }
            _ => None,
        };
        let wants_input = conditions.contains(&WaitUntil::Input);
        let wants_idle = conditions.contains(&WaitUntil::Idle);
        let offset = request.offset;
        let idle_flush = Duration::from_secs_f64(request.idle_flush_seconds);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(request.timeout);
        let job_dir = self.job_dir(job_id);
        let mut changes = JobChanges::new(self.watcher.subscribe(job_dir.path()));
        let mut shutdown = self.shutdown.clone();
        changes.status_may_have_changed(Instant::now());
        let mut record = self.settled_record(job_id).await?;
        let path = job_dir.file(OUTPUT);
        let log_file = run_blocking(move || std::fs::File::open(path))
            .await?
            .map_err(|err| vanished_or(job_id, err))?;
        let size_now = || log_file.metadata().map_or(0, |m| m.len());
        let mut growth: Option<(u64, Instant)> = None;
        let mut runner: Option<ProcessIdentity> = None;
        let mut probes = ProbeSchedule::new(started);
        // A match that ends where an unfinished line ends so far: `$` or a
        // greedy tail may match there only because the rest of the line has
        // not arrived. It counts once the job waits for input (the line is
        // a prompt) or has ended (the line is final).
        let mut at_line_end: Option<LineMatch> = None;
        // The wait the last look at the terminal saw.
        let mut seen_waiting: Option<WaitSeen> = None;
        let (reason, found_match, waiting) = loop {
            let now = Instant::now();
            if changes.status_may_have_changed(now) {
                record = self.settled_record(job_id).await?;
            }
            let size = size_now();
            if offset > size {
                return Err(ServiceError::InvalidOffset { offset, size });
            }
            if size > offset && growth.is_none_or(|(seen, _)| seen != size) {
                growth = Some((size, now));
                probes.output_grew(now);
                seen_waiting = None;
            }
            // Matched before the status, so a match in a job's last output
            // reads as `matched`: all of it is in the log once the status
            // is terminal.
            if let Some(scanner) = matcher.take() {
                if size > scanner.offset() {
                    // New output: the line end matched before has moved on.
                    at_line_end = None;
                }
                let (scanner, found) = self.scan_new_output(job_id, scanner, size).await?;
                if let Some(found) = found {
                    if !ends_unfinished_line(&scanner, &found) {
                        break (WaitReason::Matched, Some(found), None);
                    }
                    at_line_end = Some(found);
                }
                matcher = Some(scanner);
            }
            if record.status.is_terminal() {
                match at_line_end.take() {
                    Some(found) => break (WaitReason::Matched, Some(found), None),
                    None => break (WaitReason::Exited, None, None),
                }
            }
            let idle_at = growth.map(|(_, at)| at + idle_flush).filter(|_| wants_idle);
            if idle_at.is_some_and(|at| now >= at) {
                break (WaitReason::Idle, None, None);
            }
            let probe_at = ((wants_input || at_line_end.is_some())
                && record.status == JobStatus::Running)
                .then(|| probes.next_at());
            if probe_at.is_some_and(|at| now >= at) {
                let look = self.confirmed_wait(job_id, &mut runner, &mut seen_waiting, &mut probes);
                if let Some(waiting) = look.await? {
                    match at_line_end.take() {
                        Some(found) => break (WaitReason::Matched, Some(found), Some(waiting)),
                        None if wants_input => {
                            break (WaitReason::WaitingForInput, None, Some(waiting));
                        }
                        None => probes.probed(Instant::now()),
                    }
                }
                continue;
            }
            if now >= deadline || *shutdown.borrow() {
                break (WaitReason::Timeout, None, None);
            }
            let wake_at = earliest(deadline, [idle_at, probe_at, Some(now + FALLBACK_TICK)]);
            tokio::select! {
                () = changes.wait(wake_at) => {}
                _ = shutdown.changed() => {}
            }
        };
        self.wait_for_answer(job_id, &request, reason, found_match, waiting)
            .await
    }

    /// Feeds the log's bytes from where `scanner` stopped up to `size` to
    /// it, on a blocking thread; returns it with the first match.
    async fn scan_new_output(
        &self,
        job_id: JobId,
        scanner: LineScanner,
        size: u64,
    ) -> Result<(LineScanner, Option<LineMatch>), ServiceError> {
        let from = scanner.offset();
        if size <= from {
            return Ok((scanner, None));
        }
        let path = self.job_dir(job_id).file(OUTPUT);
        let (scanner, found) = run_blocking(move || {
            let mut scanner = scanner;
            let found = shellctl_term::search::scan_range(&path, &mut scanner, from, size);
            (scanner, found)
        })
        .await?;
        Ok((scanner, found?))
    }

    /// One look at the terminal: the wait it shows, once two looks in a row
    /// saw the same one (the same reading process, in the same terminal
    /// mode, with no output between: the caller clears `seen` when output
    /// grows). A single look right after input was sent can still catch
    /// the read the input is about to end. Looks read `/proc` only; the
    /// screen (for the prompt and the kind) is captured once, for the wait
    /// confirmed. Schedules the next look.
    async fn confirmed_wait(
        &self,
        job_id: JobId,
        runner: &mut Option<ProcessIdentity>,
        seen: &mut Option<WaitSeen>,
        probes: &mut ProbeSchedule,
    ) -> Result<Option<WaitingForInput>, ServiceError> {
        let Some(identity) = self.runner_of(job_id, runner).await? else {
            return Ok(None);
        };
        let look = run_blocking(move || terminal::probe(identity).ok().and_then(|p| wait_seen(&p)))
            .await?;
        let now = Instant::now();
        if look.is_some() && look == *seen {
            let described = self.describe_wait(job_id, identity).await?;
            if described.is_some() {
                return Ok(described);
            }
        }
        if look.is_some() {
            probes.confirm(now);
        } else {
            probes.probed(now);
        }
        *seen = look;
        Ok(None)
    }

    /// The job's runner, found once per wait; `None` once the job no
    /// longer runs (the next status check sees it end).
    async fn runner_of(
        &self,
        job_id: JobId,
        runner: &mut Option<ProcessIdentity>,
    ) -> Result<Option<ProcessIdentity>, ServiceError> {
        if let Some(identity) = *runner {
            return Ok(Some(identity));
        }
        match self.live_terminal(job_id).await {
            Ok((_, identity)) => Ok(Some(*runner.insert(identity))),
            Err(ServiceError::JobNotRunning(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// What the job waits for now (kind and prompt, from the terminal's
    /// mode and its screen); `None` if it no longer waits, or its terminal
    /// is gone.
    async fn describe_wait(
        &self,
        job_id: JobId,
        runner: ProcessIdentity,
    ) -> Result<Option<WaitingForInput>, ServiceError> {
        match self.input_of(job_id, runner, None).await {
            Ok((_, input)) if input.waiting => Ok(Some(WaitingForInput {
                kind: input.kind.unwrap_or(InputKind::Line),
                prompt: input.prompt,
            })),
            Ok(_) | Err(ServiceError::JobNotRunning(_)) => Ok(None),
            Err(ServiceError::Tmux(err)) => match pane_gone(job_id, err) {
                ServiceError::JobNotRunning(_) => Ok(None),
                err => Err(err),
            },
            Err(err) => Err(err),
        }
    }

    /// The answer of a `wait-for`: the window from `offset` with the status
    /// as of now, cut after the matching line when there is a match.
    async fn wait_for_answer(
        &self,
        job_id: JobId,
        request: &WaitForRequest,
        reason: WaitReason,
        matched: Option<LineMatch>,
        waiting_for_input: Option<WaitingForInput>,
    ) -> Result<WaitForResult, ServiceError> {
        let (offset, limit) = (request.offset, request.output_limit);
        let record = self.settled_record(job_id).await?;
        let limit = match &matched {
            Some(found) => u32::try_from(found.line_end.saturating_sub(offset))
                .unwrap_or(u32::MAX)
                .clamp(1, limit),
            None => limit,
        };
        let log = self.job_dir(job_id).file(OUTPUT);
        let path = log.clone();
        let window =
            run_blocking(move || shellctl_term::read_window(&path, offset, limit as usize))
                .await??;
        self.metrics.output_served(window.output.len());
        Ok(WaitForResult {
            result: job_result(&record, &log, window),
            reason,
            pattern_match: matched.map(|found| PatternMatch {
                offset: found.match_start,
                text: found.text,
            }),
            waiting_for_input,
        })
    }
}

/// Whether `found` is the scanner's match on its unfinished last line and
/// ends where that line ends so far.
fn ends_unfinished_line(scanner: &LineScanner, found: &LineMatch) -> bool {
    found.match_end == found.line_end
        && scanner
            .partial_match()
            .is_some_and(|partial| partial == *found)
}

/// When a `wait-for` probes the terminal next: [`INPUT_SETTLE`] after the
/// wait began or output last grew, then at doubling gaps up to
/// [`MAX_PROBE_GAP`] while nothing changes; a look that saw a wait is
/// confirmed [`INPUT_SETTLE`] later.
struct ProbeSchedule {
    next: Instant,
    gap: Duration,
    /// When the last probe was taken (or the wait began).
    last: Instant,
}

impl ProbeSchedule {
    fn new(started: Instant) -> Self {
        ProbeSchedule {
            next: started + INPUT_SETTLE,
            gap: INPUT_SETTLE,
            last: started,
        }
    }

    fn next_at(&self) -> Instant {
        self.next
    }

    /// Output moves the next probe to shortly after it, but never later
    /// than [`MAX_PROBE_GAP`] after the last one: a job whose background
    /// process keeps printing while its foreground reads still gets seen.
    fn output_grew(&mut self, now: Instant) {
        self.gap = INPUT_SETTLE;
        self.next = (now + INPUT_SETTLE).min(self.last + MAX_PROBE_GAP);
    }

    /// A look saw a wait: look again [`INPUT_SETTLE`] later to confirm it.
    fn confirm(&mut self, now: Instant) {
        self.last = now;
        self.next = now + INPUT_SETTLE;
    }

    fn probed(&mut self, now: Instant) {
        self.gap = (self.gap * 2).min(MAX_PROBE_GAP);
        self.last = now;
        self.next = now + self.gap;
    }
}

/// A job file that cannot be read: gone means the job was deleted
/// meanwhile.
fn vanished_or(job_id: JobId, err: std::io::Error) -> ServiceError {
    if err.kind() == std::io::ErrorKind::NotFound {
        ServiceError::JobNotFound(job_id.to_string())
    } else {
        ServiceError::Io(err)
    }
}

/// Compiles a request's pattern; a bad one is the request's fault (422).
fn compile(pattern: &str) -> Result<regex::bytes::Regex, ServiceError> {
    shellctl_term::search::compile_pattern(pattern)
        .map_err(|err| ServiceError::InvalidPattern(err.to_string()))
}

#[allow(clippy::cast_precision_loss)] // deadlines are at most 30 days in ms
fn millis_to_seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_settle_after_output_and_back_off_while_nothing_happens() {
        let start = Instant::now();
        let mut schedule = ProbeSchedule::new(start);
        assert_eq!(schedule.next_at(), start + INPUT_SETTLE);
        let mut now = schedule.next_at();
        let mut gaps = Vec::new();
        for _ in 0..6 {
            schedule.probed(now);
            gaps.push(schedule.next_at() - now);
            now = schedule.next_at();
        }
        assert_eq!(gaps[0], INPUT_SETTLE * 2);
        assert_eq!(*gaps.last().unwrap(), MAX_PROBE_GAP);
        // Output shortly after a look: the next look follows the settle.
        schedule.probed(now);
        let soon = now + INPUT_SETTLE;
        schedule.output_grew(soon);
        assert_eq!(schedule.next_at(), soon + INPUT_SETTLE);
        // Output all the time never holds a look off for longer than the
        // longest gap.
        let mut later = now;
        for _ in 0..100 {
            later += INPUT_SETTLE / 2;
            schedule.output_grew(later);
        }
        assert_eq!(schedule.next_at(), now + MAX_PROBE_GAP);
        // A look that saw a wait is confirmed a settle later.
        schedule.confirm(later);
        assert_eq!(schedule.next_at(), later + INPUT_SETTLE);
    }
}
