//! Bounds, defaults and field sets of the v1 wire types.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Defaults are exact constants, and `json!` values read best passed by value.
#![allow(clippy::float_cmp, clippy::needless_pass_by_value)]

use serde_json::{Value, json};
use shellctl_proto::*;
use std::collections::BTreeSet;

fn run(body: Value) -> Result<RunJobRequest, RequestError> {
    decode_request(body.to_string().as_bytes())
}
fn wait(body: Value) -> Result<WaitJobRequest, RequestError> {
    decode_request(body.to_string().as_bytes())
}
fn input(body: Value) -> Result<InputJobRequest, RequestError> {
    decode_request(body.to_string().as_bytes())
}
fn terminate(body: Value) -> Result<TerminateJobRequest, RequestError> {
    decode_request(body.to_string().as_bytes())
}

fn field_of(err: RequestError) -> String {
    match err {
        RequestError::Invalid(v) => v.field,
        RequestError::Syntax(m) => panic!("expected a field error, got syntax error {m}"),
    }
}

/// Asserts that `set(value)` is accepted for every `ok` value and rejected,
/// naming `field`, for every `bad` value.
fn check_bounds<T: std::fmt::Debug>(
    field: &str,
    ok: &[Value],
    bad: &[Value],
    set: impl Fn(Value) -> Result<T, RequestError>,
) {
    for value in ok {
        assert!(set(value.clone()).is_ok(), "{field}={value} should pass");
    }
    for value in bad {
        let err = set(value.clone()).expect_err(&format!("{field}={value} should fail"));
        assert_eq!(field_of(err), field, "{field}={value}");
    }
}

#[test]
fn run_defaults_match_the_reference() {
    let req = run(json!({"script": "echo hi"})).unwrap();
    assert_eq!(req, RunJobRequest::new("echo hi"));
    assert_eq!(req.timeout, 30.0);
    assert_eq!(req.output_limit, 8192);
    assert_eq!(req.idle_flush_seconds, 0.5);
    assert_eq!(req.cwd, None);
    assert_eq!(req.env, None);
    assert_eq!(req.terminal, None);
    let req = run(json!({"script": "x", "terminal": {}})).unwrap();
    assert_eq!(
        req.terminal,
        Some(TerminalSize {
            cols: 120,
            rows: 80
        })
    );
}

#[test]
fn timeout_bounds_are_exclusive_zero_to_300() {
    let ok = [json!(0.001), json!(1), json!(300), json!(299.99)];
    let bad = [json!(0), json!(-1), json!(300.001), json!(1e9)];
    check_bounds("timeout", &ok, &bad, |v| {
        run(json!({"script": "x", "timeout": v}))
    });
    check_bounds("timeout", &ok, &bad, |v| {
        wait(json!({"offset": 0, "timeout": v}))
    });
    check_bounds("timeout", &ok, &bad, |v| {
        input(json!({"text": "", "offset": 0, "timeout": v}))
    });
}

#[test]
fn output_limit_bounds_are_1_to_1mib() {
    let ok = [json!(1), json!(8192), json!(1_048_576)];
    let bad = [
        json!(0),
        json!(-1),
        json!(1_048_577),
        json!(1.5),
        json!("10"),
    ];
    check_bounds("output_limit", &ok, &bad, |v| {
        run(json!({"script": "x", "output_limit": v}))
    });
    check_bounds("output_limit", &ok, &bad, |v| {
        wait(json!({"offset": 0, "output_limit": v}))
    });
    check_bounds("output_limit", &ok, &bad, |v| {
        input(json!({"text": "", "offset": 0, "output_limit": v}))
    });
}

#[test]
fn idle_flush_bounds_are_0_to_30() {
    let ok = [json!(0), json!(0.5), json!(30)];
    let bad = [json!(-0.001), json!(30.001)];
    check_bounds("idle_flush_seconds", &ok, &bad, |v| {
        run(json!({"script": "x", "idle_flush_seconds": v}))
    });
    check_bounds("idle_flush_seconds", &ok, &bad, |v| {
        wait(json!({"offset": 0, "idle_flush_seconds": v}))
    });
}

#[test]
fn terminal_bounds_are_1_to_4096() {
    let ok = [json!(1), json!(4096)];
    let bad = [json!(0), json!(4097), json!(-1), json!(70000)];
    check_bounds("terminal.cols", &ok, &bad, |v| {
        run(json!({"script": "x", "terminal": {"cols": v}}))
    });
    check_bounds("terminal.rows", &ok, &bad, |v| {
        run(json!({"script": "x", "terminal": {"rows": v}}))
    });
}

#[test]
fn offset_is_required_and_non_negative() {
    check_bounds(
        "offset",
        &[json!(0), json!(1u64 << 40)],
        &[json!(-1), json!("0")],
        |v| wait(json!({"offset": v})),
    );
    assert_eq!(field_of(wait(json!({})).unwrap_err()), "offset");
    assert_eq!(field_of(input(json!({"text": "x"})).unwrap_err()), "offset");
    assert_eq!(field_of(input(json!({"offset": 0})).unwrap_err()), "text");
    assert_eq!(field_of(run(json!({})).unwrap_err()), "script");
}

#[test]
fn grace_bounds_are_0_to_300() {
    let ok = [json!(0), json!(5), json!(300)];
    let bad = [json!(-0.1), json!(300.1)];
    check_bounds("grace_seconds", &ok, &bad, |v| {
        terminate(json!({"grace_seconds": v}))
    });
    assert_eq!(terminate(json!({})).unwrap().grace_seconds, 5.0);
}

#[test]
fn env_overlay_follows_execve_rules() {
    let ok = run(
        json!({"script": "x", "env": {"A": "1", "weird name!": "$(rm -rf /) 'q' \u{1F642}", "E": ""}}),
    );
    assert!(ok.is_ok());
    for (env, field) in [
        (json!({"": "v"}), "env"),
        (json!({"A=B": "v"}), "env.A=B"),
        (json!({"A\u{0}": "v"}), "env"),
        (json!({"A": "v\u{0}"}), "env.A"),
        (json!({"A": 1}), "env.A"),
    ] {
        let err = run(json!({"script": "x", "env": env})).unwrap_err();
        assert_eq!(field_of(err), field, "{env}");
    }
    assert!(run(json!({"script": "x", "env": null})).is_ok());
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    assert_eq!(
        field_of(run(json!({"script": "x", "bogus": 1})).unwrap_err()),
        "bogus"
    );
    assert_eq!(
        field_of(run(json!({"script": "x", "terminal": {"cols": 1, "depth": 2}})).unwrap_err()),
        "terminal.depth"
    );
    assert_eq!(
        field_of(wait(json!({"offset": 0, "extra": true})).unwrap_err()),
        "extra"
    );
    assert_eq!(
        field_of(terminate(json!({"grace": 1})).unwrap_err()),
        "grace"
    );
}

#[test]
fn malformed_json_is_a_syntax_error() {
    for body in [
        &b"{"[..],
        b"",
        b"not json",
        b"{\"script\": \"x\"} trailing",
        b"\xff",
    ] {
        assert!(
            matches!(
                decode_request::<RunJobRequest>(body),
                Err(RequestError::Syntax(_))
            ),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Valid JSON of the wrong shape is a validation error, not a syntax error.
    assert!(matches!(run(json!([1, 2])), Err(RequestError::Invalid(_))));
    assert!(matches!(run(json!(null)), Err(RequestError::Invalid(_))));
}

#[test]
fn null_for_a_defaulted_number_is_rejected() {
    assert_eq!(
        field_of(run(json!({"script": "x", "timeout": null})).unwrap_err()),
        "timeout"
    );
}

#[test]
fn queries_parse_with_bounds_and_lenient_booleans() {
    let tail: TailQuery = decode_query("").unwrap();
    assert_eq!(tail.output_limit, 8192);
    assert!(decode_query::<TailQuery>("output_limit=1").is_ok());
    assert!(decode_query::<TailQuery>("output_limit=1048576").is_ok());
    for bad in [
        "output_limit=0",
        "output_limit=1048577",
        "output_limit=x",
        "output_limit=-1",
    ] {
        let err = decode_query::<TailQuery>(bad).unwrap_err();
        assert_eq!(field_of(err), "output_limit", "{bad}");
    }

    let list: ListJobsQuery = decode_query("status=running&limit=5&unknown=1").unwrap();
    assert_eq!(
        list,
        ListJobsQuery {
            status: Some(JobStatus::Running),
            label: None,
            limit: 5
        }
    );
    assert_eq!(
        decode_query::<ListJobsQuery>("").unwrap(),
        ListJobsQuery::default()
    );
    assert!(decode_query::<ListJobsQuery>("limit=1000").is_ok());
    for (bad, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("status=bogus", "status"),
    ] {
        assert_eq!(
            field_of(decode_query::<ListJobsQuery>(bad).unwrap_err()),
            field,
            "{bad}"
        );
    }

    for (query, force) in [
        ("force=true", true),
        ("force=1", true),
        ("force=False", false),
        ("", false),
    ] {
        assert_eq!(
            decode_query::<DeleteJobQuery>(query).unwrap().force,
            force,
            "{query}"
        );
    }
    assert_eq!(
        field_of(decode_query::<DeleteJobQuery>("force=maybe").unwrap_err()),
        "force"
    );
    for bad in [
        "grace_seconds=-1",
        "grace_seconds=301",
        "grace_seconds=nan",
        "grace_seconds=inf",
    ] {
        assert_eq!(
            field_of(decode_query::<DeleteJobQuery>(bad).unwrap_err()),
            "grace_seconds"
        );
    }
}

fn keys(value: &impl serde::Serialize) -> BTreeSet<String> {
    match serde_json::to_value(value).unwrap() {
        Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

#[test]
fn response_field_sets_are_exactly_the_references() {
    let id = JobId::parse("05211530-abc").unwrap();
    let result = JobResult {
        job_id: id,
        done: false,
        status: JobStatus::Running,
        exit_code: None,
        output_path: "/s/jobs/05211530-abc/output.log".into(),
        output: String::new(),
        offset: 0,
        truncated: false,
    };
    assert_eq!(
        keys(&result),
        set(&[
            "job_id",
            "done",
            "status",
            "exit_code",
            "output_path",
            "output",
            "offset",
            "truncated"
        ])
    );
    // Optional fields are present as null, not left out.
    assert_eq!(
        serde_json::to_value(&result).unwrap()["exit_code"],
        Value::Null
    );

    let view = JobStatusView {
        job_id: id,
        status: JobStatus::Exited,
        done: true,
        exit_code: Some(0),
        created_at: "2026-05-21T15:30:20Z".into(),
        started_at: None,
        ended_at: None,
        offset: 3,
    };
    assert_eq!(
        keys(&view),
        set(&[
            "job_id",
            "status",
            "done",
            "exit_code",
            "created_at",
            "started_at",
            "ended_at",
            "offset"
        ])
    );

    let info = JobInfo {
        job_id: id,
        status: JobStatus::Lost,
        created_at: "2026-05-21T15:30:20Z".into(),
        started_at: None,
        ended_at: None,
    };
    assert_eq!(
        keys(&info),
        set(&["job_id", "status", "created_at", "started_at", "ended_at"])
    );
    assert_eq!(keys(&ListJobsResponse { jobs: vec![info] }), set(&["jobs"]));
    assert_eq!(
        keys(&DeleteJobResponse {
            job_id: id,
            deleted: true
        }),
        set(&["job_id", "deleted"])
    );
    assert_eq!(keys(&HealthResponse::default()), set(&["status"]));
    assert_eq!(
        serde_json::to_value(HealthResponse::default()).unwrap(),
        json!({"status": "ok"})
    );
    assert_eq!(
        keys(&ApiErrorBody::new(ErrorCode::InvalidCwd, "x")),
        set(&["error"])
    );
}

#[test]
fn run_request_serializes_without_absent_options() {
    // The reference client sends `exclude_none`; ours does the same.
    let body = serde_json::to_value(RunJobRequest::new("echo")).unwrap();
    assert_eq!(
        body,
        json!({"script": "echo", "timeout": 30.0, "output_limit": 8192, "idle_flush_seconds": 0.5})
    );
}
