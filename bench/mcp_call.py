"""Round trip of one MCP tool call (`shell_run` of `echo hi`) through
`shellctl mcp` on stdio, driven by the official Python SDK.

    target/mcp-venv/bin/python bench/mcp_call.py target/release/shellctl http://127.0.0.1:18765
"""
import asyncio, statistics, sys, time
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["mcp", "--base-url", sys.argv[2]])
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                res = await s.call_tool("shell_run", {"script": "echo hi"})
                ts.append((time.perf_counter() - t0) * 1000)
                assert res.structured_content["exit_code"] == 0, res
            print("shell_run 'echo hi' over stdio MCP: median %.1f ms, min %.1f ms" % (statistics.median(ts), min(ts)))
asyncio.run(main())
