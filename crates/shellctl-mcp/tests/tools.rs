//! The tools over a fake backend, through the real protocol: an rmcp
//! client talks to `ShellTools` over an in-memory pipe. Checks the tool
//! list and its schemas, what each tool asks the backend for, the
//! structured and text results, and that every failure is a tool error.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use shellctl_mcp::{BackendError, ShellTools};
use shellctl_proto::{
    DigestView, InputKind, JobStatus, PatternMatch, WaitForResult, WaitReason, WaitingForInput,
};
use std::sync::Arc;

mod common;

use common::{Fake, JOB, job_result};

type Client = RunningService<RoleClient, ()>;

/// An MCP client connected to the tools over `fake`.
async fn connect(fake: Fake) -> (Client, Arc<Fake>) {
    let fake = Arc::new(fake);
    let tools = ShellTools::new(Arc::clone(&fake));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let running = tools.serve(server_io).await.unwrap();
        running.waiting().await.unwrap();
    });
    let client = ().serve(client_io).await.unwrap();
    (client, fake)
}

async fn call(client: &Client, tool: &'static str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
        .await
        .expect("a tool result, not a protocol error")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|content| content.as_text())
        .map(|text| text.text.clone())
        .collect()
}

fn structured(result: &CallToolResult) -> &Value {
    assert_eq!(result.is_error, Some(false), "{}", text(result));
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

fn assert_tool_error(result: &CallToolResult, needles: &[&str]) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let text = text(result);
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

#[tokio::test]
async fn the_server_lists_its_tools_with_schemas_for_a_model() {
    let (client, _fake) = connect(Fake::new()).await;
    let info = client.peer_info().unwrap();
    let server = info.server_info.as_ref().unwrap();
    assert_eq!(server.name, "shellctl");
    let instructions = info.instructions.as_deref().unwrap();
    assert!(instructions.contains("durable"), "{instructions}");

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "shell_input",
            "shell_list",
            "shell_run",
            "shell_screen",
            "shell_search",
            "shell_signal",
            "shell_terminate",
            "shell_wait"
        ]
    );
    let tool = |name: &str| tools.iter().find(|tool| tool.name == name).unwrap();
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 150, "{}: {description}", tool.name);
        let schema = Value::Object((*tool.input_schema).clone());
        assert_eq!(schema["type"], "object", "{}", tool.name);
        assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        // Every argument is described for the model.
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| d.len() > 5),
                "{}.{name}: {property}",
                tool.name
            );
        }
    }

    let run = Value::Object((*tool("shell_run").input_schema).clone());
    assert_eq!(run["required"], json!(["script"]));
    assert_eq!(run["properties"]["yield_ms"]["maximum"], 300_000);
    assert_eq!(run["properties"]["max_output_bytes"]["minimum"], 256);
    let run_description = tool("shell_run").description.as_deref().unwrap();
    for needle in [
        "offset",
        "shell_wait",
        "waiting_for_input",
        "omitted_bytes",
        "survives",
    ] {
        assert!(run_description.contains(needle), "{needle}");
    }
    let input = Value::Object((*tool("shell_input").input_schema).clone());
    assert_eq!(input["required"], json!(["job_id"]));
    assert!(
        input["properties"]["text"]["description"]
            .as_str()
            .unwrap()
            .contains("\\n")
    );
    let wait = Value::Object((*tool("shell_wait").input_schema).clone());
    assert_eq!(wait["required"], json!(["job_id"]));
    assert!(wait["properties"]["pattern"].is_object());
    let annotations = tool("shell_wait").annotations.clone().unwrap();
    assert_eq!(annotations.read_only_hint, Some(true));
    let annotations = tool("shell_run").annotations.clone().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
}

#[tokio::test]
async fn run_starts_waits_and_digests_and_says_where_to_go_on() {
    let mut fake = Fake::new();
    fake.wait = WaitForResult {
        result: job_result(JobStatus::Running, None, 60),
        reason: WaitReason::WaitingForInput,
        pattern_match: None,
        waiting_for_input: Some(WaitingForInput {
            kind: InputKind::Password,
            prompt: Some("Password: ".into()),
        }),
    };
    fake.digest = DigestView {
        text: "building\n[… 1 line (10 bytes) omitted …]\nPassword: ".into(),
        offset: 61,
        omitted_bytes: 10,
        omitted_lines: 1,
    };
    let (client, fake) = connect(fake).await;
    let result = call(
        &client,
        "shell_run",
        json!({"script": "make", "label": "build", "cwd": "/src", "env": {"A": "1"},
               "yield_ms": 2500, "max_output_bytes": 300}),
    )
    .await;
    let fields = structured(&result);
    assert_eq!(
        *fields,
        json!({
            "job_id": JOB, "status": "running", "done": false, "exit_code": null,
            "offset": 61, "omitted_bytes": 10, "omitted_lines": 1,
            "waiting_for_input": {"kind": "password", "prompt": "Password: "},
            "output": "building\n[… 1 line (10 bytes) omitted …]\nPassword: ",
            "reason": "waiting_for_input", "match": null,
        })
    );
    let text = text(&result);
    for needle in [
        "job 05211530-abc: still running",
        "waits for input",
        "next offset: 61",
        "shell_wait",
        "10 bytes (1 line)",
        "password",
        "\"Password: \"",
        "shell_input",
        "--- output ---\nbuilding\n",
        "unfinished",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }

    let calls = fake.calls();
    assert_eq!(fake.methods(), ["run", "wait_for", "digest"]);
    assert_eq!(
        calls[0].body,
        json!({"script": "make", "cwd": "/src", "env": {"A": "1"}, "label": "build",
               "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(calls[1].job.as_deref(), Some(JOB));
    assert_eq!(
        calls[1].body,
        json!({"offset": 0, "until": ["exit", "input"], "timeout": 2.5,
               "output_limit": 1_048_576, "idle_flush_seconds": 0.5})
    );
    // Not a match: the digest runs to the log's end.
    assert_eq!(calls[2].body, json!({"offset": 0, "max_bytes": 300}));
}

#[tokio::test]
async fn a_finished_run_reports_its_exit_and_defaults_apply() {
    let (client, fake) = connect(Fake::new()).await;
    let result = call(&client, "shell_run", json!({"script": "make"})).await;
    let fields = structured(&result);
    assert_eq!(
        (
            &fields["status"],
            &fields["done"],
            &fields["exit_code"],
            &fields["reason"],
            &fields["waiting_for_input"]
        ),
        (
            &json!("exited"),
            &json!(true),
            &json!(0),
            &json!("exited"),
            &Value::Null
        )
    );
    assert!(text(&result).contains("exited with code 0; the wait ended because the job ended"));
    assert!(text(&result).ends_with("--- output ---\ncompiling\ndone\n"));
    let calls = fake.calls();
    assert_eq!(calls[1].body["timeout"], 10.0);
    assert_eq!(calls[2].body, json!({"offset": 0, "max_bytes": 16_000}));
}

#[tokio::test]
async fn a_matched_wait_digests_up_to_the_end_of_the_matching_line() {
    let mut fake = Fake::new();
    fake.wait = WaitForResult {
        result: job_result(JobStatus::Running, None, 90),
        reason: WaitReason::Matched,
        pattern_match: Some(PatternMatch {
            offset: 70,
            text: "listening".into(),
        }),
        waiting_for_input: None,
    };
    let (client, fake) = connect(fake).await;
    let result = call(
        &client,
        "shell_wait",
        json!({"job_id": JOB, "offset": 40, "pattern": "listening|error", "yield_ms": 0}),
    )
    .await;
    let fields = structured(&result);
    assert_eq!(fields["reason"], "matched");
    assert_eq!(fields["match"], json!({"offset": 70, "text": "listening"}));
    assert!(text(&result).contains("the pattern matched \"listening\" at offset 70"));
    let calls = fake.calls();
    assert_eq!(
        calls[0].body,
        json!({"offset": 40, "pattern": "listening|error", "until": ["exit", "match", "input"],
               "timeout": 0.001, "output_limit": 1_048_576, "idle_flush_seconds": 0.5})
    );
    assert_eq!(
        calls[1].body,
        json!({"offset": 40, "max_bytes": 16_000, "end_offset": 90})
    );
}

#[tokio::test]
async fn input_types_then_presses_keys_then_reads_from_before_the_input() {
    let (client, fake) = connect(Fake::new()).await;
    let result = call(
        &client,
        "shell_input",
        json!({"job_id": JOB, "text": "hunter2\n", "keys": ["C-d", "Enter"], "yield_ms": 1000}),
    )
    .await;
    structured(&result);
    assert!(
        text(&result).starts_with("typed 8 characters ending with Enter, then pressed C-d Enter\n"),
        "{}",
        text(&result)
    );
    assert!(
        !text(&result).contains("hunter2"),
        "the typed text is not repeated"
    );
    let calls = fake.calls();
    assert_eq!(
        fake.methods(),
        ["status", "input", "keys", "wait_for", "digest"]
    );
    assert_eq!(
        calls[1].body,
        json!({"text": "hunter2\n", "offset": 40, "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(
        calls[2].body,
        json!({"keys": ["C-d", "Enter"], "offset": 40, "timeout": 0.001, "output_limit": 1, "idle_flush_seconds": 0.0})
    );
    assert_eq!(calls[3].body["offset"], 40);
    assert_eq!(calls[3].body["timeout"], 1.0);
    assert_eq!(calls[4].body, json!({"offset": 40, "max_bytes": 16_000}));
}

#[tokio::test]
async fn the_screen_comes_with_its_cursor_marked_and_its_input_state() {
    let (client, _fake) = connect(Fake::new()).await;
    let result = call(&client, "shell_screen", json!({"job_id": JOB})).await;
    let fields = structured(&result);
    assert_eq!(
        fields["waiting_for_input"],
        json!({"kind": "password", "prompt": "Password: "})
    );
    assert_eq!(fields["offset"], 40);
    assert_eq!(fields["cursor"], json!({"row": 1, "col": 10}));
    assert_eq!(fields["lines"][1], "Password:");
    let text = text(&result);
    assert!(
        text.contains(
            "--- screen ---\n[sudo] for me\nPassword: █\n--- (2 blank lines below not shown) ---\n"
        ),
        "{text}"
    );
    assert!(text.contains("screen 40x4"), "{text}");
    assert!(text.contains("title \"sudo\""), "{text}");
    assert!(
        text.contains("foreground process: sudo true (pid 42)"),
        "{text}"
    );
}

#[tokio::test]
async fn backend_errors_become_tool_errors_with_the_servers_message() {
    let (client, _fake) = connect(Fake::new().failing(
        "screen",
        BackendError::new("job_not_running", "job 05211530-abc is not running"),
    ))
    .await;
    let result = call(&client, "shell_screen", json!({"job_id": JOB})).await;
    assert_tool_error(
        &result,
        &[
            "job_not_running",
            "job 05211530-abc is not running",
            "shell_wait",
        ],
    );
    // The server goes on serving.
    let result = call(&client, "shell_list", json!({})).await;
    structured(&result);
}

#[tokio::test]
async fn a_run_whose_wait_fails_says_the_job_was_started() {
    let (client, _fake) =
        connect(Fake::new().failing("wait_for", BackendError::other("connection refused"))).await;
    let result = call(&client, "shell_run", json!({"script": "make"})).await;
    assert_tool_error(
        &result,
        &[
            "job 05211530-abc was started",
            "do not start it again",
            "connection refused",
        ],
    );
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_and_send_nothing() {
    let (client, fake) = connect(Fake::new()).await;
    let cases = [
        ("shell_wait", json!({"job_id": "nope"}), "invalid job id"),
        (
            "shell_wait",
            json!({"job_id": JOB, "yield_ms": 300_001}),
            "yield_ms",
        ),
        ("shell_input", json!({"job_id": JOB}), "text"),
        ("shell_input", json!({"job_id": JOB, "text": ""}), "text"),
        (
            "shell_input",
            json!({"job_id": JOB, "keys": ["enter"]}),
            "\"enter\" is not a key name",
        ),
        (
            "shell_signal",
            json!({"job_id": JOB, "signal": "BOOM"}),
            "unknown signal",
        ),
        (
            "shell_list",
            json!({"status": "sleeping"}),
            "unknown status",
        ),
        ("shell_list", json!({"limit": 0}), "limit"),
        (
            "shell_terminate",
            json!({"job_id": JOB, "grace_seconds": -1}),
            "grace_seconds",
        ),
        // Caught by the arguments' types before any tool code runs.
        (
            "shell_run",
            json!({"script": "x", "shell": "bash"}),
            "unknown field",
        ),
        ("shell_run", json!({}), "missing field `script`"),
        (
            "shell_wait",
            json!({"job_id": JOB, "offset": -1}),
            "expected u64",
        ),
    ];
    for (tool, arguments, needle) in cases {
        let result = call(&client, tool, arguments.clone()).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} {arguments}: {result:?}"
        );
        assert!(
            text(&result).contains(needle),
            "{tool} {arguments}: {needle:?} not in {:?}",
            text(&result)
        );
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn signals_are_read_as_a_model_writes_them() {
    let (client, fake) = connect(Fake::new()).await;
    for name in ["INT", "sigint", " SigTerm ", "kill"] {
        let result = call(
            &client,
            "shell_signal",
            json!({"job_id": JOB, "signal": name}),
        )
        .await;
        structured(&result);
    }
    let sent: Vec<Value> = fake.calls().into_iter().map(|call| call.body).collect();
    assert_eq!(
        sent,
        [
            json!({"signal": "INT", "target": "foreground"}),
            json!({"signal": "INT", "target": "foreground"}),
            json!({"signal": "TERM", "target": "foreground"}),
            json!({"signal": "KILL", "target": "foreground"}),
        ]
    );
}

#[tokio::test]
async fn list_search_and_terminate_carry_the_job_fields() {
    let (client, fake) = connect(Fake::new()).await;
    let listed = call(
        &client,
        "shell_list",
        json!({"status": "Exited", "label": "build"}),
    )
    .await;
    let fields = structured(&listed);
    assert_eq!(
        (&fields["job_id"], &fields["done"], &fields["offset"]),
        (&Value::Null, &json!(false), &Value::Null)
    );
    assert_eq!(fields["jobs"][0]["job_id"], JOB);
    assert!(text(&listed).contains("05211530-abc exited created"));

    let found = call(
        &client,
        "shell_search",
        json!({"job_id": JOB, "pattern": "error", "limit": 5}),
    )
    .await;
    let fields = structured(&found);
    assert_eq!(fields["truncated"], true);
    assert_eq!(fields["matches"][0]["line_number"], 7);
    assert_eq!(fields["status"], "running");
    assert!(text(&found).contains("line 7 (offset 120): error[E0308]: mismatched types"));
    assert!(text(&found).contains("more lines match"));

    let ended = call(&client, "shell_terminate", json!({"job_id": JOB})).await;
    let fields = structured(&ended);
    assert_eq!(
        (&fields["status"], &fields["done"]),
        (&json!("terminated"), &json!(true))
    );

    let calls = fake.calls();
    assert_eq!(
        calls[0].body,
        json!({"status": "exited", "label": "build", "limit": 20})
    );
    assert_eq!(calls[1].body, json!({"pattern": "error", "limit": 5}));
    assert_eq!(calls.last().unwrap().body, json!(5.0));
}

#[tokio::test]
async fn a_failure_after_typing_says_the_text_went_in() {
    let (client, fake) = connect(Fake::new().failing(
        "keys",
        BackendError::new("job_not_running", "job 05211530-abc is not running"),
    ))
    .await;
    let result = call(
        &client,
        "shell_input",
        json!({"job_id": JOB, "text": "ls", "keys": ["Enter"]}),
    )
    .await;
    assert_tool_error(
        &result,
        &[
            "typed 2 characters into job 05211530-abc (do not send it again)",
            "pressing the keys failed",
            "job_not_running",
        ],
    );
    assert_eq!(fake.methods(), ["status", "input", "keys"]);
}
