//! The server's metrics, served at `GET /metrics` in the Prometheus text
//! exposition format (version 0.0.4), encoded by `prometheus-client`.
//!
//! This module owns the one [`Registry`] and every metric handle in it
//! ([`Metrics`]); the rest of the server only calls its methods: the
//! service when a job starts or is seen ending and when output is served,
//! the waiting and streaming paths through drop guards ([`InFlight`]), the
//! HTTP layer once per response, and the tmux driver once per command
//! ([`TmuxTimings`]). Updates are atomic operations on shared handles (no
//! lock is taken on a request's path except a label set's first use), so
//! recording costs next to nothing.
//!
//! The families (each name carries the `shellctl_` prefix):
//!
//! | family | type | labels | what |
//! |---|---|---|---|
//! | `jobs` | gauge | `status` | jobs per status in the database, read at scrape time (one `GROUP BY` query) |
//! | `job_starts_total` | counter | | jobs this server started (launched into their terminal) |
//! | `job_duration_seconds` | histogram | | from a job's start to its end, observed once, when this server first sees the end: on the server's clock for jobs it started, else from the recorded times (whole seconds; from creation for a job that never started) |
//! | `output_bytes_total` | counter | | bytes of job output sent to clients: output windows (`run`, `wait`, `input`, `keys`, `tail`, `wait-for`, and the MCP tools over them) and output events of job streams |
//! | `waiters` | gauge | | long-poll waits in flight (`run`, `wait`, `input`, `keys`, `wait-for`) |
//! | `streams` | gauge | `kind` (`job`, `lifecycle`) | open event streams |
//! | `http_requests_total` | counter | `route`, `code` | answered requests, by route template (never a job id) and status code |
//! | `tmux_command_duration_seconds` | histogram | `client` (`control`, `cli`), `command` | each tmux command, from sending it to its answer |

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use shellctl_job::JobRecord;
use shellctl_proto::timestamp::parse_timestamp;
use shellctl_proto::{JobId, JobStatus};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The `Content-Type` of a scrape: the Prometheus text format, 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the job duration buckets, in seconds: a tenth of a
/// second to a day.
const JOB_DURATION_BUCKETS: [f64; 13] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
];

/// Upper bounds of the tmux command buckets, in seconds: tmux answers in
/// about a millisecond; the top buckets catch a stalled server.
const TMUX_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// Labels of `shellctl_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// Which kind of event stream a [`Metrics::stream`] guard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// One job's output and status (`GET /v1/jobs/{id}/events`).
    Job,
    /// Every job's lifecycle events (`GET /v1/events`).
    Lifecycle,
}

impl StreamKind {
    /// The `kind` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Job => "job",
            StreamKind::Lifecycle => "lifecycle",
        }
    }
}

/// Labels of `shellctl_streams`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabel {
    kind: &'static str,
}

/// Labels of `shellctl_http_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    /// The route's template (`/v1/jobs/{id}`), or [`UNMATCHED_ROUTE`].
    route: String,
    code: u16,
}

/// How a tmux command travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TmuxClient {
    /// A line on the persistent control-mode client.
    Control,
    /// A `tmux` process of its own.
    Cli,
}

impl TmuxClient {
    /// The `client` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TmuxClient::Control => "control",
            TmuxClient::Cli => "cli",
        }
    }
}

/// Labels of `shellctl_tmux_command_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TmuxLabels {
    client: &'static str,
    /// The tmux command's name (`new-session`, `capture-pane`, …): one of
    /// the few the server sends.
    command: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A map of instants, or nothing: consistent across a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn job_duration_histogram() -> Histogram {
    Histogram::new(JOB_DURATION_BUCKETS)
}

fn tmux_histogram() -> Histogram {
    Histogram::new(TMUX_BUCKETS)
}

/// The registry and every metric handle of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Held while the job counts are set and the registry encoded, so a
    /// scrape never shows counts from two queries.
    scrape: Mutex<()>,
    jobs: Family<StatusLabel, Gauge>,
    job_starts: Counter,
    /// When each job this server started was started, on the monotonic
    /// clock, until it is seen ending: wire timestamps have whole seconds
    /// only. At most one entry per live job.
    started: Mutex<HashMap<JobId, Instant>>,
    job_duration: Histogram,
    output_bytes: Counter,
    waiters: Gauge,
    streams: Family<StreamLabel, Gauge>,
    http_requests: Family<RequestLabels, Counter>,
    tmux: TmuxTimings,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("shellctl");
        let jobs = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the state database, by status",
            jobs.clone(),
        );
        let job_starts = Counter::default();
        registry.register("job_starts", "Jobs this server started", job_starts.clone());
        let job_duration = job_duration_histogram();
        registry.register_with_unit(
            "job_duration",
            "Time from a job's start (its creation, if it never started) to its end, observed when this server first saw the end",
            Unit::Seconds,
            job_duration.clone(),
        );
        let output_bytes = Counter::default();
        registry.register_with_unit(
            "output",
            "Bytes of job output sent to clients (output windows and job stream output events)",
            Unit::Bytes,
            output_bytes.clone(),
        );
        let waiters = Gauge::default();
        registry.register(
            "waiters",
            "Long-poll waits in flight (run, wait, input, keys, wait-for)",
            waiters.clone(),
        );
        let streams = Family::<StreamLabel, Gauge>::default();
        registry.register("streams", "Open event streams, by kind", streams.clone());
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status code",
            http_requests.clone(),
        );
        let tmux = TmuxTimings::default();
        registry.register_with_unit(
            "tmux_command_duration",
            "Time from sending a tmux command to its answer, by client and command",
            Unit::Seconds,
            tmux.0.clone(),
        );
        // Every kind shows from the first scrape on, at zero.
        for kind in [StreamKind::Job, StreamKind::Lifecycle] {
            drop(streams.get_or_create(&StreamLabel {
                kind: kind.as_str(),
            }));
        }
        Metrics {
            registry,
            scrape: Mutex::new(()),
            jobs,
            job_starts,
            started: Mutex::default(),
            job_duration,
            output_bytes,
            waiters,
            streams,
            http_requests,
            tmux,
        }
    }

    /// The scrape: every family as Prometheus text, with `shellctl_jobs`
    /// set from `counts` (jobs per status; a status absent from it has
    /// none).
    pub fn render(&self, counts: &[(JobStatus, u64)]) -> Result<String, std::fmt::Error> {
        let _consistent = lock(&self.scrape);
        for status in JobStatus::ALL {
            let count = counts
                .iter()
                .find(|(counted, _)| *counted == status)
                .map_or(0, |(_, count)| *count);
            self.jobs
                .get_or_create(&StatusLabel {
                    status: status.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut text = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// `job_id`'s runner is about to be let go: its clock starts.
    pub fn job_launching(&self, job_id: JobId) {
        lock(&self.started).insert(job_id, Instant::now());
    }

    /// A job was started: its terminal launched, its runner let go.
    pub fn job_started(&self) {
        self.job_starts.inc();
    }

    /// This server saw `record`'s job ended for the first time (the caller
    /// makes sure of "first": it released the job's watch): observes its
    /// duration. For a job this server started, from that moment to now on
    /// the monotonic clock; for any other (started by an earlier run, or
    /// never started), from its recorded start, or creation, to its
    /// recorded end, in whole seconds. A record whose times are missing or
    /// do not parse is skipped.
    pub fn job_ended(&self, record: &JobRecord) {
        if let Some(started) = lock(&self.started).remove(&record.job_id) {
            self.job_duration.observe(started.elapsed().as_secs_f64());
            return;
        }
        let from = record.started_at.as_deref().unwrap_or(&record.created_at);
        let (Some(ended), Ok(from)) = (record.ended_at.as_deref(), parse_timestamp(from)) else {
            return;
        };
        let Ok(ended) = parse_timestamp(ended) else {
            return;
        };
        self.job_duration
            .observe((ended - from).as_seconds_f64().max(0.0));
    }

    /// `job_id` is being removed: forgets its start if it was never seen
    /// ending.
    pub fn job_forgotten(&self, job_id: JobId) {
        lock(&self.started).remove(&job_id);
    }

    /// `bytes` of job output were sent to a client.
    pub fn output_served(&self, bytes: usize) {
        self.output_bytes
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Counts a long-poll wait until the guard is dropped.
    pub fn waiter(&self) -> InFlight {
        InFlight::new(&self.waiters)
    }

    /// Counts an open event stream of `kind` until the guard is dropped.
    pub fn stream(&self, kind: StreamKind) -> InFlight {
        InFlight::new(&self.streams.get_or_create(&StreamLabel {
            kind: kind.as_str(),
        }))
    }

    /// A request was answered with `code`; `route` is the template of the
    /// route it matched (`None`: none).
    pub fn request_answered(&self, route: Option<&str>, code: u16) {
        self.http_requests
            .get_or_create(&RequestLabels {
                route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
                code,
            })
            .inc();
    }

    /// The handle the tmux driver records its commands with.
    pub fn tmux(&self) -> TmuxTimings {
        self.tmux.clone()
    }
}

/// Records how long tmux commands take (`shellctl_tmux_command_duration_seconds`).
/// Cheap to clone: it shares the registry's family.
#[derive(Debug, Clone)]
pub struct TmuxTimings(Family<TmuxLabels, Histogram, fn() -> Histogram>);

impl Default for TmuxTimings {
    /// Timings kept in no registry (for a driver whose commands nobody
    /// scrapes).
    fn default() -> Self {
        TmuxTimings(Family::new_with_constructor(tmux_histogram))
    }
}

impl TmuxTimings {
    /// `command` (its name, the first word) took `elapsed` over `client`.
    pub fn observe(&self, client: TmuxClient, command: &str, elapsed: Duration) {
        self.0
            .get_or_create(&TmuxLabels {
                client: client.as_str(),
                command: command.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Counts one thing in flight on a gauge: up when made, down when dropped,
/// on every path out (an answer, an error, a client that went away and
/// dropped the request's future or the stream's body).
#[derive(Debug)]
#[must_use = "the gauge goes down when the guard is dropped"]
pub struct InFlight(Gauge);

impl InFlight {
    fn new(gauge: &Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(started_at: Option<&str>, ended_at: Option<&str>) -> JobRecord {
        JobRecord {
            job_id: shellctl_proto::JobId::parse("01010101-abc").unwrap(),
            status: JobStatus::Exited,
            exit_code: Some(0),
            created_at: "2025-01-01T00:00:00Z".into(),
            started_at: started_at.map(Into::into),
            ended_at: ended_at.map(Into::into),
            failure: None,
            end_reason: None,
            label: None,
            idempotency_key: None,
        }
    }

    /// The value of the sample line that starts with `name`, as written.
    fn sample<'t>(text: &'t str, name: &str) -> &'t str {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
    }

    #[test]
    fn every_family_renders_with_its_prefix_unit_and_suffix() {
        let metrics = Metrics::new();
        let text = metrics.render(&[(JobStatus::Running, 2)]).unwrap();
        for family in [
            "# TYPE shellctl_jobs gauge",
            "# TYPE shellctl_job_starts_total counter",
            "# TYPE shellctl_job_duration_seconds histogram",
            "# TYPE shellctl_output_bytes_total counter",
            "# TYPE shellctl_waiters gauge",
            "# TYPE shellctl_streams gauge",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        assert_eq!(sample(&text, "shellctl_jobs{status=\"running\"}"), "2");
        assert_eq!(sample(&text, "shellctl_jobs{status=\"lost\"}"), "0");
        // Families whose labels come from use show once used.
        assert!(!text.contains("shellctl_http_requests_total"), "{text}");
        metrics.request_answered(Some("/healthz"), 200);
        metrics
            .tmux()
            .observe(TmuxClient::Control, "list-panes", Duration::from_millis(1));
        let text = metrics.render(&[(JobStatus::Exited, 1)]).unwrap();
        for family in [
            "# TYPE shellctl_http_requests_total counter",
            "# TYPE shellctl_tmux_command_duration_seconds histogram",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        // Each scrape's counts replace the last one's.
        assert_eq!(sample(&text, "shellctl_jobs{status=\"running\"}"), "0");
        assert_eq!(sample(&text, "shellctl_jobs{status=\"exited\"}"), "1");
        assert_eq!(sample(&text, "shellctl_streams{kind=\"job\"}"), "0");
    }

    #[test]
    fn guards_go_down_when_dropped_and_counters_move() {
        let metrics = Metrics::new();
        let waiter = metrics.waiter();
        let stream = metrics.stream(StreamKind::Lifecycle);
        metrics.job_started();
        metrics.output_served(5);
        metrics.request_answered(Some("/v1/jobs/{id}"), 200);
        metrics.request_answered(None, 404);
        metrics
            .tmux()
            .observe(TmuxClient::Cli, "kill-session", Duration::from_millis(2));
        let text = metrics.render(&[]).unwrap();
        assert_eq!(sample(&text, "shellctl_waiters"), "1");
        assert_eq!(sample(&text, "shellctl_streams{kind=\"lifecycle\"}"), "1");
        assert_eq!(sample(&text, "shellctl_job_starts_total"), "1");
        assert_eq!(sample(&text, "shellctl_output_bytes_total"), "5");
        assert_eq!(
            sample(
                &text,
                "shellctl_http_requests_total{route=\"/v1/jobs/{id}\",code=\"200\"}"
            ),
            "1"
        );
        assert_eq!(
            sample(
                &text,
                "shellctl_http_requests_total{route=\"unmatched\",code=\"404\"}"
            ),
            "1"
        );
        assert_eq!(
            sample(
                &text,
                "shellctl_tmux_command_duration_seconds_count{client=\"cli\",command=\"kill-session\"}"
            ),
            "1"
        );
        drop((waiter, stream));
        let text = metrics.render(&[]).unwrap();
        assert_eq!(sample(&text, "shellctl_waiters"), "0");
        assert_eq!(sample(&text, "shellctl_streams{kind=\"lifecycle\"}"), "0");
    }

    #[test]
    fn a_job_duration_runs_from_its_start_or_its_creation() {
        let metrics = Metrics::new();
        // Recorded times (a job an earlier run started, or none started).
        metrics.job_ended(&record(
            Some("2025-01-01T00:00:10Z"),
            Some("2025-01-01T00:00:12Z"),
        ));
        metrics.job_ended(&record(None, Some("2025-01-01T00:00:01Z")));
        // Not ended, or unreadable: nothing observed.
        metrics.job_ended(&record(Some("2025-01-01T00:00:10Z"), None));
        metrics.job_ended(&record(Some("garbage"), Some("2025-01-01T00:00:12Z")));
        let text = metrics.render(&[]).unwrap();
        assert_eq!(sample(&text, "shellctl_job_duration_seconds_count"), "2");
        assert_eq!(sample(&text, "shellctl_job_duration_seconds_sum"), "3.0");
        // A job this server started: its own clock, whatever the record
        // says, and only once.
        let job = record(Some("2025-01-01T00:00:00Z"), Some("2025-01-01T09:00:00Z"));
        metrics.job_launching(job.job_id);
        metrics.job_ended(&job);
        let text = metrics.render(&[]).unwrap();
        assert_eq!(sample(&text, "shellctl_job_duration_seconds_count"), "3");
        assert!(
            sample(&text, "shellctl_job_duration_seconds_sum")
                .parse::<f64>()
                .unwrap()
                < 3.0 + 3600.0
        );
    }
}
