"""An agent-like MCP session against shellctl, with the official `mcp`
Python SDK as the client.

    agent_session.py stdio BIN BASE_URL TOKEN   # `shellctl mcp` on stdio
    agent_session.py http BASE_URL TOKEN        # the server's own /mcp

Prints "mcp session ok" when every step behaved; any failed check raises.
"""

import asyncio
import contextlib
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

EXPECTED_TOOLS = {
    "shell_run",
    "shell_wait",
    "shell_input",
    "shell_screen",
    "shell_signal",
    "shell_terminate",
    "shell_list",
    "shell_search",
}
COMMON_FIELDS = {"job_id", "status", "done", "exit_code", "offset", "omitted_bytes", "waiting_for_input"}
BUDGET = 16000


def check(condition, what, result=None):
    if not condition:
        detail = "" if result is None else f"\n{describe(result)}"
        raise AssertionError(f"{what}{detail}")


def describe(result):
    texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
    return json.dumps(
        {"is_error": result.is_error, "structured": result.structured_content, "text": texts},
        indent=1,
    )[:4000]


def text_of(result):
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    check(not result.is_error, f"{name} failed", result)
    structured = result.structured_content
    check(isinstance(structured, dict), f"{name}: no structured result", result)
    missing = COMMON_FIELDS - structured.keys()
    check(not missing, f"{name}: structured result lacks {sorted(missing)}", result)
    return result, structured


async def agent_session(session):
    await session.initialize()
    tools = (await session.list_tools()).tools
    names = {tool.name for tool in tools}
    check(names == EXPECTED_TOOLS, f"tools: {sorted(names)}")
    for tool in tools:
        check(len(tool.description or "") > 40, f"{tool.name}: description too thin")
        schema = tool.input_schema if hasattr(tool, "input_schema") else tool.inputSchema
        check(schema.get("type") == "object", f"{tool.name}: input schema {schema}")

    # A script that asks for a password with echo off.
    result, run = await call(
        session,
        "shell_run",
        script="stty -echo; printf 'Password: '; read pw; stty echo; echo; echo \"got ${#pw} chars\"",
        yield_ms=60000,
    )
    check(run["done"] is False, "the password job ended early", result)
    check(run["waiting_for_input"] is not None, "not seen waiting for input", result)
    check(run["waiting_for_input"]["kind"] == "password", "not a password prompt", result)
    check("Password:" in (run["waiting_for_input"]["prompt"] or ""), "prompt missing", result)
    check("Password:" in text_of(result), "the prompt is not in the text", result)
    job = run["job_id"]
    result, answered = await call(
        session, "shell_input", job_id=job, text="s3cret-pw\n", yield_ms=60000
    )
    check(answered["done"] is True and answered["exit_code"] == 0, "the answer did not end the job", result)
    check("got 9 chars" in text_of(result), "the job did not read the answer", result)
    check("s3cret-pw" not in text_of(result), "the password was echoed", result)

    # 200,000 lines, then the error that matters, then exit 1.
    result, big = await call(
        session,
        "shell_run",
        script="seq 1 200000 | sed 's/^/line /'; echo 'ERROR: disk full'; exit 1",
        yield_ms=120000,
        max_output_bytes=BUDGET,
    )
    text = text_of(result)
    check(big["done"] is True and big["exit_code"] == 1, "exit code 1 not reported", result)
    check("ERROR: disk full" in text, "the final error line is missing", result)
    check(big["omitted_bytes"] > 1_000_000, "nothing said about what was omitted", result)
    check("omitted" in text, "the text does not mark the cut", result)
    output = big.get("output")
    check(isinstance(output, str) and len(output.encode()) <= BUDGET, "output over the budget", result)
    # The header is short; the output part is bounded by the budget.
    check(len(text.encode()) <= BUDGET + 2000, f"text of {len(text.encode())} bytes", result)
    big_job = big["job_id"]

    # A line from the middle, found by search.
    result, found = await call(session, "shell_search", job_id=big_job, pattern="^line 123456$")
    matches = found.get("matches")
    check(isinstance(matches, list) and len(matches) == 1, "search found no single line", result)
    check(matches[0]["line_number"] == 123456 and matches[0]["line"] == "line 123456", "wrong line", result)
    check("line 123456" in text_of(result), "search text lacks the line", result)

    # A sleep, ended on request.
    result, sleeping = await call(session, "shell_run", script="sleep 600", yield_ms=200, label="mcp-sleeper")
    check(sleeping["status"] == "running" and sleeping["done"] is False, "the sleep is not running", result)
    result, listed = await call(session, "shell_list", label="mcp-sleeper")
    check([job["job_id"] for job in listed["jobs"]] == [sleeping["job_id"]], "label filter", result)
    result, ended = await call(session, "shell_terminate", job_id=sleeping["job_id"], grace_seconds=1)
    check(ended["status"] == "terminated" and ended["done"] is True, "the sleep was not terminated", result)

    # A runaway command bounded by its deadline.
    result, bounded = await call(
        session, "shell_run", script="sleep 600", max_runtime_seconds=1, yield_ms=60000
    )
    check(bounded["status"] == "terminated" and bounded["done"] is True, "the deadline did not end it", result)

    # Errors come back as tool errors with the server's message.
    failed = await session.call_tool("shell_wait", {"job_id": "01010101-zzz"})
    check(failed.is_error, "an unknown job is not a tool error", failed)
    check("not found" in text_of(failed), "the server's message is missing", failed)
    failed = await session.call_tool("shell_search", {"job_id": big_job, "pattern": "("})
    check(failed.is_error, "a bad pattern is not a tool error", failed)


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        binary, base, token = sys.argv[2:5]
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--base-url", base],
            env={"SHELLCTL_AUTH_TOKEN": token, "RUST_LOG": "warn"},
        )
        transport = stdio_client(params)
        http = contextlib.nullcontext()
    else:
        base, token = sys.argv[2:4]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=300)
        transport = None
    async with http as client:
        if transport is None:
            transport = streamable_http_client(f"{base}/mcp", http_client=client)
        async with transport as (read, write):
            async with ClientSession(read, write) as session:
                await agent_session(session)
    print("mcp session ok")


asyncio.run(main())
