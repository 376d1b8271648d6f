"""Side-by-side benchmark: our shellctl server against the reference.

Run through scripts/bench, which builds our release binary and the
reference venv. Starts both servers on loopback with private state dirs,
runs the same workloads against each in one run, and prints a table of
figure / ours / reference / ratio. `--quick` runs each workload briefly
(a smoke test of the harness, no thresholds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from leanhttp import LeanClient, probe_health


# Jobs that ended without the output they should have printed, by server port.
FAILURES: dict[int, int] = {}


def note_failure(port: int) -> None:
    FAILURES[port] = FAILURES.get(port, 0) + 1


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    root: Path

    def pid_stats(self) -> tuple[float, int]:
        """CPU seconds (self + waited children) and RSS bytes."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks
        rss = 0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        return cpu, rss


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(name: str, argv: list[str], root: Path, env: dict[str, str]) -> Server:
    port = free_port()
    state, run = root / "state", root / "run"
    cmd = argv + ["serve", "--listen", f"127.0.0.1:{port}", "--state-dir", str(state), "--runtime-dir", str(run)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if probe_health("127.0.0.1", port):
            return Server(name, port, proc, root)
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{name} server did not come up")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
    subprocess.run(["tmux", "-S", str(server.root / "run" / "tmux.sock"), "kill-server"], capture_output=True)
    # The reference names its socket differently; kill whatever tmux runs there.
    for sock in (server.root / "run").glob("**/*"):
        if sock.is_socket():
            subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)
    kill_leftovers(server.root)


def kill_leftovers(root: Path) -> None:
    """Kills processes that still name `root` in their command line (the
    reference's pipe sides outlive its tmux server for minutes and would
    load the machine during later measurements)."""
    marker = str(root).encode()
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit() or int(proc_dir.name) == os.getpid():
            continue
        try:
            if marker in (proc_dir / "cmdline").read_bytes():
                os.kill(int(proc_dir.name), 9)
        except (OSError, ValueError):
            pass


async def run(client: LeanClient, script: str, **extra) -> dict:
    body = {"script": script, **extra}
    response = await client.post("/v1/jobs/run", json=body, timeout=600)
    response.raise_for_status()
    return response.json()


async def wait(client: LeanClient, job_id: str, offset: int, **extra) -> dict:
    response = await client.post(f"/v1/jobs/{job_id}/wait", json={"offset": offset, **extra}, timeout=600)
    response.raise_for_status()
    return response.json()


async def read_to_done(client, result: dict, limit: int) -> int:
    total = len(result["output"].encode())
    while not (result["done"] and not result["truncated"]):
        result = await wait(client, result["job_id"], result["offset"], output_limit=limit, timeout=60)
        total += len(result["output"].encode())
    return total


async def bench_run_to_done(client, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = await run(client, "echo hi")
        while not result["done"]:
            result = await wait(client, result["job_id"], result["offset"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def bench_first_line(client, n: int) -> float:
    """Seconds from a line printed by a running job to a waiter having it."""
    lags = []
    for _ in range(n):
        result = await run(client, "sleep 0.3; date +%s.%N; sleep 3", idle_flush_seconds=0, timeout=30)
        while not result["output"].strip() and not result["done"]:
            result = await wait(client, result["job_id"], result["offset"], idle_flush_seconds=0, timeout=30)
        arrived = time.time()
        if not result["output"].strip():
            note_failure(client.port)
            continue
        printed = float(result["output"].split()[0])
        lags.append(arrived - printed)
        await client.post(f"/v1/jobs/{result['job_id']}/terminate", json={"grace_seconds": 0}, timeout=60)
    return statistics.median(lags) if lags else float("nan")


async def bench_sse_line(port: int, n: int) -> float:
    """Seconds from a line printed by a running job to a client of its
    Server-Sent Events stream having it (ours only: the reference has no
    streams). The job prints its own clock; lines are 0.2 s apart, so each
    arrives on an idle stream."""
    client = LeanClient("127.0.0.1", port)
    script = f"sleep 0.3; for i in $(seq {n}); do date +%s.%N; sleep 0.2; done"
    result = await run(client, script, timeout=0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /v1/jobs/{result['job_id']}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    lags, pending, done = [], "", False
    while not done:
        line = await asyncio.wait_for(reader.readline(), 60)
        if not line:
            break
        arrived = time.time()
        text = line.decode().rstrip("\r\n")
        if text.startswith("event: end"):
            done = True
        if not text.startswith("data: "):
            continue
        data = json.loads(text[6:])
        if "text" not in data:
            continue
        pending += data["text"]
        *complete, pending = pending.split("\n")
        for printed in complete:
            if printed.strip():
                lags.append(arrived - float(printed))
    writer.close()
    if len(lags) != n:
        raise RuntimeError(f"sse: {len(lags)} of {n} lines arrived")
    return statistics.median(lags)


async def bench_terminal_query(client, path_suffix: str, n: int) -> float:
    """Median latency of a terminal query on a job waiting at a prompt (ours
    only: the reference has no terminal routes)."""
    result = await run(client, "printf 'Name: '; read x", timeout=0.2)
    job = result["job_id"]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = await client.get(f"/v1/jobs/{job}/{path_suffix}", timeout=60)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
        if not response.json()["input"]["waiting"]:
            # The first looks may come before `read` sleeps; only waiting
            # answers count (they do the most work: probe, capture, prompt).
            times.pop()
    await client.post(f"/v1/jobs/{job}/terminate", json={"grace_seconds": 0}, timeout=60)
    if not times:
        raise RuntimeError(f"{path_suffix}: the job never showed as waiting")
    return statistics.median(times)


async def bench_concurrent(client, n: int) -> float:
    async def one(i: int) -> None:
        result = await run(client, f"echo job-{i}")
        while not result["done"]:
            result = await wait(client, result["job_id"], result["offset"])
        if result["status"] != "exited" or not result["output"].startswith("job-"):
            note_failure(client.port)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start



PIPELINE_SCRIPT = "yes 'the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLM' | head -c {n}"


async def bench_pipeline(client, size: int) -> float:
    start = time.perf_counter()
    result = await run(client, PIPELINE_SCRIPT.format(n=size), output_limit=1048576, timeout=300)
    got = await read_to_done(client, result, 1048576)
    elapsed = time.perf_counter() - start
    if got < size:
        # Output lost: counts as a failed job; the rate is of what arrived.
        note_failure(client.port)
    return got / elapsed / 1e6


def bench_bare_tmux(size: int, root: Path) -> float:
    """The ceiling: a bare tmux pane piped into `cat`, no sanitizer."""
    sock, out, done = root / "bare.sock", root / "bare.out", root / "bare.done"
    script = root / "bare.sh"
    for stale in (out, done):
        stale.unlink(missing_ok=True)
    script.write_text(f"sleep 0.2; {PIPELINE_SCRIPT.format(n=size)}\n")
    start = time.perf_counter()
    subprocess.run(
        ["tmux", "-S", str(sock), "-f", "/dev/null", "new-session", "-d", "-s", "bare", "-x", "120", "-y", "80",
         "sh", str(script), ";", "pipe-pane", "-o", "-t", "bare:0.0", f"cat > {out}; touch {done}"],
        check=True,
    )
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline:
            raise SystemExit("bare tmux ceiling run never finished")
        time.sleep(0.005)
    elapsed = time.perf_counter() - start - 0.2
    subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)
    return size / elapsed / 1e6


async def bench_pipeline_rounds(client, root: Path, quick: bool, r: dict) -> float:
    """Ours and the bare tmux ceiling in alternating rounds, so that both
    medians see the same moments of this machine's load."""
    size = 1_000_000 if quick else 20_000_000
    ours, bare = [], []
    for _ in range(1 if quick else 3):
        ours.append(await bench_pipeline(client, size))
        bare.append(bench_bare_tmux(size, root))
    r["bare_tmux_mbs"] = statistics.median(bare)
    return statistics.median(ours)


# The kernel counts CPU time in ticks (10 ms here), so a 5 s window could
# only say 0, 0.2 or 0.4% of a core; 20 s resolves 0.05%.
IDLE_SECONDS = 20


async def open_stream(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An SSE stream, its response head read: the server holds it open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 60)
    if b" 200 " not in status:
        raise RuntimeError(f"stream {path}: {status!r}")
    while (await asyncio.wait_for(reader.readline(), 60)) not in (b"\r\n", b""):
        pass
    return reader, writer


async def bench_idle_waiters(server: Server, client, seconds: float, streams: int = 0) -> float:
    """Server CPU while 20 long-poll waiters wait on a silent job, with
    `streams` open streams beside them (half on the job's output, half on
    the lifecycle feed; ours only: the reference has no streams)."""
    result = await run(client, "sleep 600", timeout=0.5)
    job_id = result["job_id"]
    opened = [await open_stream(server.port, f"/v1/jobs/{job_id}/events" if i % 2 else "/v1/events")
              for i in range(streams)]
    await asyncio.sleep(0.5)
    cpu0, _ = server.pid_stats()
    start = time.perf_counter()
    await asyncio.gather(*(wait(client, job_id, result["offset"], timeout=seconds) for _ in range(20)))
    elapsed = time.perf_counter() - start
    cpu1, _ = server.pid_stats()
    for _, writer in opened:
        writer.close()
    await client.post(f"/v1/jobs/{job_id}/terminate", json={"grace_seconds": 0}, timeout=60)
    return (cpu1 - cpu0) / elapsed * 100


async def bench_rss(server: Server, client) -> float:
    for i in range(20):
        result = await run(client, f"echo rss-{i}")
        while not result["done"]:
            result = await wait(client, result["job_id"], result["offset"])
    return server.pid_stats()[1] / (1024 * 1024)


def bench_sanitizer(argv: list[str], data: Path, env) -> float:
    start = time.perf_counter()
    with data.open("rb") as stdin:
        subprocess.run(argv + ["sanitize-pty"], stdin=stdin, stdout=subprocess.DEVNULL, check=True, env=env)
    return data.stat().st_size / (time.perf_counter() - start) / 1e6


def coloured_log(path: Path, size: int) -> None:
    line = "\x1b[2m2026-11-26T15:04:05Z\x1b[0m \x1b[32mINFO \x1b[0m \x1b[1mworker::3\x1b[0m processed request id=42 in 7ms status=ok\r\n"
    path.write_bytes((line * (size // len(line) + 1)).encode()[:size])


def plain_ascii(path: Path, size: int) -> None:
    """Lines of printable ASCII (0 to 119 characters) ending in a lone `\\n`."""
    block = "".join("".join(chr(32 + (i * 7 + j) % 95) for j in range(i % 120)) + "\n" for i in range(997))
    path.write_bytes((block * (size // len(block) + 1)).encode()[:size])


async def measure(server: Server, quick: bool, results: dict) -> None:
    """Runs every workload; an error of ours fails the run, an error of the
    reference is recorded as NaN (it fails jobs on its own, see FAILURES)."""
    strict = server.name == "ours"
    client = LeanClient("127.0.0.1", server.port)
    port = server.port
    r = results[server.name]
    n = 3 if quick else 15
    workloads = [
        ("rss_mib", lambda: bench_rss(server, client)),
        ("run_to_done_ms", lambda: scaled(1000, bench_run_to_done(client, n))),
        ("first_line_ms", lambda: scaled(1000, bench_first_line(client, 2 if quick else 5))),
        ("concurrent32_s", lambda: bench_concurrent(client, 4 if quick else 32)),
        ("pipeline_mbs", lambda: bench_pipeline_rounds(client, server.root, quick, r) if strict
         else median_of(1 if quick else 3, lambda: bench_pipeline(client, 1_000_000 if quick else 20_000_000))),
        ("idle_cpu_pct", lambda: bench_idle_waiters(server, client, 1 if quick else IDLE_SECONDS)),
    ]
    if strict:
        workloads += [
            ("idle_streams_cpu_pct", lambda: bench_idle_waiters(server, client, 1 if quick else IDLE_SECONDS, streams=20)),
            ("sse_line_ms", lambda: scaled(1000, bench_sse_line(port, 3 if quick else 25))),
            ("screen_ms", lambda: scaled(1000, bench_terminal_query(client, "screen", 10 if quick else 200))),
            ("input_state_ms", lambda: scaled(1000, bench_terminal_query(client, "input-state", 10 if quick else 200))),
        ]
    for key, workload in workloads:
        try:
            r[key] = await workload()
        except Exception as err:  # noqa: BLE001 - the reference's own faults
            if strict:
                raise
            print(f"reference: {key} failed: {err!r}", file=sys.stderr)
            r[key] = float("nan")
            note_failure(port)
    r["rss_end_mib"] = server.pid_stats()[1] / (1024 * 1024)
    r["failed_jobs"] = FAILURES.get(port, 0)


async def scaled(factor: float, value) -> float:
    return factor * await value


async def median_of(runs: int, workload) -> float:
    return statistics.median([await workload() for _ in range(runs)])


# Input of the sanitizer rows: at 1 GB/s, 0.2 s of work against a few ms of
# process start.
SANITIZER_INPUT_BYTES = 200_000_000


def print_sanitizer_rows(results: dict, quick: bool) -> None:
    ours, ref = results["ours"], results["reference"]
    runs = 1 if quick else 5
    print(f"{'figure':52} {'ours':>10} {'reference':>10} {'ratio':>10}")
    print(f"{f'sanitize-pty, coloured log, ours median of {runs} (MB/s)':52} {ours['sanitizer_mbs']:10.2f}"
          f" {ref['sanitizer_mbs']:10.2f} {ours['sanitizer_mbs'] / ref['sanitizer_mbs']:9.1f}x")
    print(f"{f'sanitize-pty, plain ASCII, ours median of {runs} (MB/s)':52} {ours['sanitizer_plain_mbs']:10.2f}"
          f" {'(none)':>10} {'-':>10}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True, help="our shellctl binary")
    parser.add_argument("--reference", required=True, help="the reference's shellctl console script")
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny workloads, no thresholds")
    parser.add_argument("--only", choices=["sanitizer"], help="run one part: the sanitizer alone, both sides")
    args = parser.parse_args()
    env = dict(os.environ)
    env["PATH"] = f"{Path(args.reference).parent}:{env['PATH']}"
    env.pop("SHELLCTL_AUTH_TOKEN", None)
    # Give the reference its best case: Python may cache bytecode (some
    # environments forbid it, which adds ~0.4 s to every Python start on its
    # job path), and the cache is warm before the first job.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([args.reference, "sanitize-pty"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, check=True)
    load_at_start = os.getloadavg()
    results: dict = {"ours": {}, "reference": {}}
    with tempfile.TemporaryDirectory(prefix="shellctl-bench-") as tmp:
        root = Path(tmp)
        # Our sanitizer first, on a machine no server has loaded yet (the
        # reference's run leaves its job processes winding down for a while).
        data = root / "coloured.log"
        # Large enough that starting the binary (a few ms) does not count.
        coloured_log(data, 2_000_000 if args.quick else SANITIZER_INPUT_BYTES)
        # Ours takes well under a second, so the median of 5 damps this
        # machine's run-to-run noise; the reference takes ~40 s, run once.
        results["ours"]["sanitizer_mbs"] = statistics.median(
            bench_sanitizer([args.ours], data, env) for _ in range(1 if args.quick else 5)
        )
        plain = root / "plain.txt"
        plain_ascii(plain, 1_000_000 if args.quick else SANITIZER_INPUT_BYTES)
        results["ours"]["sanitizer_plain_mbs"] = statistics.median(
            bench_sanitizer([args.ours], plain, env) for _ in range(1 if args.quick else 5)
        )
        if args.only == "sanitizer":
            results["reference"]["sanitizer_mbs"] = bench_sanitizer([args.reference], data, env)
            print_sanitizer_rows(results, args.quick)
            return
        for name, argv in (("ours", [args.ours]), ("reference", [args.reference])):
            (root / name / "home").mkdir(parents=True)
            server_env = dict(env, HOME=str(root / name / "home"))
            server = start_server(name, argv, root / name, server_env)
            try:
                asyncio.run(measure(server, args.quick, results))
            finally:
                stop_server(server)
        results["reference"]["bare_tmux_mbs"] = results["ours"]["bare_tmux_mbs"]
        results["reference"]["sanitizer_mbs"] = bench_sanitizer([args.reference], data, env)

    ours, ref = results["ours"], results["reference"]
    runs = 1 if args.quick else 3
    rows = [
        ("run `echo hi` to done, median (ms)", "run_to_done_ms", "lower"),
        ("line printed -> waiter has it, median (ms)", "first_line_ms", "lower"),
        ("line printed -> SSE client has it, median (ms)", "sse_line_ms", "lower"),
        (f"{4 if args.quick else 32} concurrent echo jobs, wall (s)", "concurrent32_s", "lower"),
        (f"output pipeline PTY->log->wait, median of {runs} (MB/s)", "pipeline_mbs", "higher"),
        (f"bare tmux->cat ceiling, alternating, median of {runs} (MB/s)", "bare_tmux_mbs", "same"),
        ("20 idle long-poll waiters (% of a core)", "idle_cpu_pct", "lower"),
        ("20 idle waiters and 20 open streams (% of a core)", "idle_streams_cpu_pct", "lower"),
        ("server RSS after 20 jobs on a fresh server (MiB)", "rss_mib", "lower"),
        ("server RSS after all of the above (MiB)", "rss_end_mib", "lower"),
        (f"sanitize-pty alone, coloured log, ours median of {1 if args.quick else 5} (MB/s)", "sanitizer_mbs", "higher"),
        (f"sanitize-pty alone, plain ASCII, ours median of {1 if args.quick else 5} (MB/s)", "sanitizer_plain_mbs", "higher"),
        ("GET screen of a job at a prompt, median (ms)", "screen_ms", "lower"),
        ("GET input-state of a job at a prompt, median (ms)", "input_state_ms", "lower"),
    ]
    print(f"{'figure':52} {'ours':>10} {'reference':>10} {'ratio':>10}")
    for label, key, better in rows:
        a, b = ours[key], ref.get(key)
        if b is None:
            print(f"{label:52} {a:10.2f} {'(none)':>10} {'-':>10}")
            continue
        if better == "lower":
            ratio = f"{b / a:.1f}x" if a > 0 else "inf"
        elif better == "higher":
            ratio = f"{a / b:.1f}x" if b > 0 else "inf"
        else:
            ratio = "-"
        print(f"{label:52} {a:10.2f} {b:10.2f} {ratio:>10}")
    print(f"{'jobs that ended without their output':52} {ours['failed_jobs']:10d} {ref['failed_jobs']:10d}")
    pipeline_share = 100 * ours["pipeline_mbs"] / ours["bare_tmux_mbs"]
    print(f"our pipeline reaches {pipeline_share:.0f}% of the bare tmux ceiling")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_at_start)} at the start,"
          f" {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print("ratio: how many times better ours is (reference/ours for times, ours/reference for rates)")


if __name__ == "__main__":
    main()
