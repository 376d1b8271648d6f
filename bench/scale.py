"""Scale benchmark: our server at the limit (issue 16).

Run through `scripts/bench --scale`, which builds our release binary and
the reference venv (whose Python runs this; only the standard library and
bench/leanhttp.py are used). Two parts, each on a fresh server with a
private state dir on a free port:

1. Live jobs: N (1,000) `sleep 600` jobs started at once. Every one must
   reach `running`; then the server's RSS, its idle CPU, `GET
   /v1/jobs?limit=1000`, a new `run` -> done (against its figure on the
   idle server before the burst), and the host memory each live job costs
   (PSS from /proc/<pid>/smaps_rollup of the tmux server and every job-side
   process), split by what holds it.
2. Ended jobs: M (100,000) ended jobs in the database, seeded directly
   into a state dir a first server start created (rows, lifecycle events
   and job directories shaped like the ones a real job leaves). Then
   `list`, `status`, the server's start (reconcile), and a GC pass that
   deletes all of them while `status` is asked in a loop (p99 latency).

No side-by-side with the reference: it is not expected to handle 1,000
live jobs. Every process started here is ended at the end, the jobs'
tmux server and everything under it included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from leanhttp import LeanClient, probe_health

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# ---------------------------------------------------------------- processes


def free_port() -> int:
    """A free loopback port (never 8765, which CI uses)."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port != 8765:
            return port


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """The process's own CPU time (utime + stime), without children."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_time(pid: int) -> int | None:
    try:
        return int(proc_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages divided among their users."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(proc_stat(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    root: Path
    args: list[str]
    log: Path
    # Every process seen under the jobs' tmux server, with its start time,
    # so cleanup can end what kill-server leaves without touching a
    # recycled pid.
    seen: dict[int, int] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "run" / "tmux.sock"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def client(self) -> LeanClient:
        return LeanClient(HOST, self.port)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True)
        return done.stdout

    def tmux_server_pid(self) -> int | None:
        out = self.tmux("display-message", "-p", "#{pid}").strip()
        return int(out) if out.isdigit() else None


def spawn_server(binary: str, root: Path, extra: list[str], env: dict[str, str]) -> tuple[Server, float]:
    """Starts `shellctl serve` and returns it with the seconds from spawn to
    its first healthy answer."""
    port = free_port()
    args = [binary, "serve", "--listen", f"{HOST}:{port}", "--state-dir", str(root / "state"),
            "--runtime-dir", str(root / "run"), *extra]
    log = root / f"server-{port}.log"
    started = time.perf_counter()
    with log.open("ab") as sink:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if probe_health(HOST, port):
            return Server(proc, port, root, args, log), time.perf_counter() - started
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        time.sleep(0.005)
    proc.kill()
    raise SystemExit(f"the server did not come up; see {log}")


def check_alive(server: Server, when: str) -> None:
    """Fails the bench if the server has exited (its log has the why)."""
    if server.proc.poll() is not None:
        raise SystemExit(f"the server exited ({server.proc.returncode}) {when}; see {server.log}")


def stop_server(server: Server) -> None:
    """SIGTERM (jobs and tmux stay, as in production)."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def remember_job_processes(server: Server) -> None:
    pid = server.tmux_server_pid()
    if pid is None:
        return
    tree = children_map()
    for child in [pid, *descendants(pid, tree)]:
        started = start_time(child)
        if started is not None:
            server.seen[child] = started


def end_everything(server: Server) -> int:
    """Stops the server, kills the jobs' tmux server (the jobs get SIGHUP
    from their terminals), then SIGKILLs any process seen under it (or
    naming the bench's root) still alive 10 s later; a thousand job sides
    ending at once on a loaded machine may take that long. Returns how many
    had to be killed that way; it returns only once none is left."""
    remember_job_processes(server)
    stop_server(server)
    server.tmux("kill-server")
    marker = str(server.root).encode()
    deadline = time.monotonic() + 10
    killed = 0
    while True:
        alive = [pid for pid, started in server.seen.items() if start_time(pid) == started]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "cmdline").read_bytes():
                        alive.append(int(entry.name))
                except OSError:
                    pass
        alive = sorted(set(alive))
        if not alive:
            return killed
        if time.monotonic() > deadline:
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            time.sleep(0.2)
            deadline = time.monotonic() + 5
            continue
        time.sleep(0.1)


# ------------------------------------------------------------------- timings


async def timed_get(client: LeanClient, path: str) -> float:
    start = time.perf_counter()
    response = await client.get(path, timeout=120)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed


async def latencies(client: LeanClient, path: str, n: int) -> list[float]:
    await timed_get(client, path)  # warm
    return [await timed_get(client, path) for _ in range(n)]


async def run_to_done(client: LeanClient, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = await client.post("/v1/jobs/run", {"script": "echo hi"}, timeout=600)
        response.raise_for_status()
        result = response.json()
        while not result["done"]:
            response = await client.post(f"/v1/jobs/{result['job_id']}/wait", {"offset": result["offset"]}, timeout=600)
            response.raise_for_status()
            result = response.json()
        times.append(time.perf_counter() - start)
        if result["status"] != "exited" or result["output"] != "hi\n":
            raise RuntimeError(f"run -> done: unexpected {result}")
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float) -> float:
    return value * 1000


def idle_cpu(pid: int, seconds: float) -> float:
    """Percent of one core the process used over `seconds`."""
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)


# --------------------------------------------------------------- live jobs


async def start_burst(client: LeanClient, n: int) -> tuple[float, list[dict]]:
    async def one(i: int) -> dict:
        response = await client.post("/v1/jobs/run", {"script": "sleep 600", "timeout": 0.001}, timeout=900)
        if response.status_code != 200:
            return {"status": f"HTTP {response.status_code}", "body": response.body[:200].decode(errors="replace")}
        return response.json()

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    elapsed = time.perf_counter() - start
    return elapsed, [r if isinstance(r, dict) else {"status": repr(r)} for r in results]


def job_memory(server: Server, expected_jobs: int) -> dict:
    """PSS of the tmux server and every job-side process, by role: the
    pane's first process is the runner, its descendants the script (`sh`
    and `sleep`), tmux's `sanitize-pty` children the pipe sides."""
    tmux_pid = server.tmux_server_pid()
    if tmux_pid is None:
        raise RuntimeError("no tmux server")
    tree = children_map()
    runners = set()
    for line in server.tmux("list-panes", "-a", "-F", "#{session_name} #{pane_pid}").splitlines():
        name, _, pid = line.partition(" ")
        if name.startswith("shellctl-job-") and pid.isdigit():
            runners.add(int(pid))
    script = set()
    for runner in runners:
        script.update(descendants(runner, tree))
    roles = {"tmux server": 0, "runner": 0, "pipe side": 0, "script (sh + sleep)": 0, "other": 0}
    counts = dict.fromkeys(roles, 0)
    for pid in [tmux_pid, *descendants(tmux_pid, tree)]:
        if pid == tmux_pid:
            role = "tmux server"
        elif pid in runners:
            role = "runner"
        elif pid in script:
            role = "script (sh + sleep)"
        elif "sanitize-pty" in cmdline(pid):
            role = "pipe side"
        else:
            role = "other"  # the control session's `cat`
        roles[role] += pss_bytes(pid)
        counts[role] += 1
    total = sum(roles.values())
    return {
        "jobs": len(runners),
        "expected": expected_jobs,
        "pss": roles,
        "counts": counts,
        "total": total,
        # The target counts what shellctl runs per job (tmux and the job
        # side); the script's own processes are the user's workload.
        "per_job": (total - roles["script (sh + sleep)"]) / max(1, len(runners)),
        "per_job_with_script": total / max(1, len(runners)),
    }


async def live_part(binary: str, root: Path, env: dict, n_jobs: int, quick: bool, results: dict) -> None:
    server, _ = spawn_server(binary, root, [], env)
    try:
        client = server.client()
        n_runs = 5 if quick else 15
        idle = await run_to_done(client, n_runs)
        results["run_done_idle_ms"] = ms(statistics.median(idle))
        time.sleep(1)
        results["idle_cpu_empty_pct"] = idle_cpu(server.proc.pid, 5 if quick else 10)

        load_before = load_average()
        elapsed, started = await start_burst(client, n_jobs)
        results["burst_s"] = elapsed
        statuses: dict[str, int] = {}
        for r in started:
            statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
        results["burst_statuses"] = statuses
        results["burst_load"] = f"{load_before} -> {load_average()}"
        check_alive(server, "during the burst")
        remember_job_processes(server)
        listing = (await client.get(f"/v1/jobs?status=running&limit=1000", timeout=120)).json()["jobs"]
        results["running"] = len(listing)
        results["all_running"] = statuses.get("running", 0) == n_jobs and len(listing) == n_jobs

        # Let the burst's after-effects settle before measuring idleness.
        time.sleep(3 if quick else 10)
        check_alive(server, "after the burst")
        results["rss_mib"] = rss_bytes(server.proc.pid) / MIB
        samples = [idle_cpu(server.proc.pid, 5 if quick else 20) for _ in range(1 if quick else 3)]
        results["idle_cpu_samples"] = samples
        results["idle_cpu_pct"] = statistics.median(samples)
        tmux_pid = server.tmux_server_pid()
        if tmux_pid:
            results["tmux_idle_cpu_pct"] = idle_cpu(tmux_pid, 5 if quick else 10)
        results["idle_load"] = load_average()

        list_times = await latencies(client, "/v1/jobs?limit=1000", 10 if quick else 30)
        results["list_live_ms"] = ms(statistics.median(list_times))
        results["list_live_p95_ms"] = ms(pct(list_times, 0.95))
        busy = await run_to_done(client, n_runs)
        results["run_done_live_ms"] = ms(statistics.median(busy))

        check_alive(server, "while measuring")
        memory = job_memory(server, n_jobs)
        results["memory"] = memory
        results["rss_end_mib"] = rss_bytes(server.proc.pid) / MIB
    finally:
        results["leaked_killed"] = end_everything(server)


# -------------------------------------------------------------- ended jobs

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def wire(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def seed(state: Path, template_job: str, n: int, ended_age: float, recent: bool) -> tuple[list[str], str | None]:
    """Inserts `n` ended jobs into the database (with the lifecycle events
    a real job leaves) and their directories, modelled on a real job's.
    The jobs ended about `ended_age` seconds ago, one every 2 s before
    that. With `recent`, one more job ended just now. Returns the ids."""
    template = state / "jobs" / template_job
    files = {}
    for item in template.iterdir():
        if item.is_file() and not item.name.startswith("."):
            files[item.name] = item.read_bytes()
    spec = json.loads(files["job.json"])
    spec.pop("containment", None)  # the template's groups are its own
    files["job.json"] = json.dumps(spec).encode()
    # Pipes are not kept: a finished job's gate and sync FIFOs are inert.
    now = time.time()
    rows, events, ids = [], [], []
    taken: set[str] = set()
    rng = random.Random(16)
    for i in range(n):
        created = now - ended_age - 2 * (n - i)
        stamp = time.strftime("%m%d%H%M", time.gmtime(created))
        while True:
            job_id = f"{stamp}-{''.join(rng.choice(ALPHABET) for _ in range(3))}"
            if job_id not in taken:
                taken.add(job_id)
                break
        ids.append(job_id)
        label = f"batch-{i % 50}" if i % 10 == 0 else None
        c, e = wire(created), wire(created + 1)
        rows.append((job_id, "exited", 0, c, c, e, None, "exit", label))
        events.append((job_id, "created", None, c, label))
        events.append((job_id, "running", None, c, label))
    recent_id = None
    if recent:
        stamp = time.strftime("%m%d%H%M", time.gmtime(now))
        recent_id = f"{stamp}-zzz"
        ids.append(recent_id)
        rows.append((recent_id, "exited", 0, wire(now - 1), wire(now - 1), wire(now), None, "exit", None))
    db = sqlite3.connect(state / "shellctl.db", timeout=60)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            first = db.execute("SELECT COALESCE(MAX(seq), 0) FROM job_events").fetchone()[0]
            db.executemany(
                "INSERT INTO jobs (job_id, status, exit_code, created_at, started_at, ended_at, failure,"
                " end_reason, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # The insert trigger logged each as `exited` now; a real job's
            # exit was logged when it ended.
            db.execute(
                "UPDATE job_events SET at = (SELECT ended_at FROM jobs WHERE jobs.job_id = job_events.job_id)"
                " WHERE seq > ?",
                (first,),
            )
            db.executemany("INSERT INTO job_events (job_id, status, exit_code, at, label) VALUES (?, ?, ?, ?, ?)", events)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    jobs = state / "jobs"
    for job_id in ids:
        d = jobs / job_id
        d.mkdir(mode=0o700)
        for name, data in files.items():
            fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
    return ids, recent_id


async def jobs_left(client: LeanClient, status: str, at_most: int) -> int:
    """How many jobs have `status`, counted up to `at_most + 1` (one page
    of `list`, read from its index: cheap, unlike a full count, so the
    watch does not slow the requests it measures)."""
    response = await client.get(f"/v1/jobs?status={status}&limit={at_most + 1}", timeout=120)
    response.raise_for_status()
    return len(response.json()["jobs"])


async def status_during_gc(server: Server, job_id: str, expected_left: int, limit_s: float) -> dict:
    client = server.client()
    times: list[float] = []
    start = time.perf_counter()
    done_at = None
    stop = asyncio.Event()

    async def prober():
        while not stop.is_set():
            times.append(await timed_get(client, f"/v1/jobs/{job_id}"))

    jobs_dir = server.state / "jobs"

    async def watcher():
        # Done when the rows are gone (the metric) and then their
        # directories (GC removes rows first).
        nonlocal done_at
        rows_gone = False
        while time.perf_counter() - start < limit_s:
            if not rows_gone:
                rows_gone = await jobs_left(client, "exited", expected_left) <= expected_left
            if rows_gone and sum(1 for _ in os.scandir(jobs_dir)) <= expected_left:
                done_at = time.perf_counter() - start
                break
            await asyncio.sleep(0.25)
        stop.set()

    await asyncio.gather(prober(), watcher())
    return {
        "gc_s": done_at,
        "n": len(times),
        "p50_ms": ms(statistics.median(times)),
        "p99_ms": ms(pct(times, 0.99)),
        "max_ms": ms(max(times)),
    }


async def ended_part(binary: str, root: Path, env: dict, n_ended: int, quick: bool, results: dict) -> None:
    # A first start makes the state dir and its database; one real job
    # is the model for the seeded ones.
    server, _ = spawn_server(binary, root, [], env)
    try:
        response = await server.client().post("/v1/jobs/run", {"script": "echo hi"}, timeout=60)
        response.raise_for_status()
        template = response.json()
        while not template["done"]:
            template = (await server.client().post(f"/v1/jobs/{template['job_id']}/wait", {"offset": 0}, timeout=60)).json()
    finally:
        end_everything(server)
    t0 = time.perf_counter()
    ids, recent = seed(root / "state", template["job_id"], n_ended, ended_age=3 * 86400, recent=True)
    results["seed_s"] = time.perf_counter() - t0

    keep = ["--gc-finished-job-retention-seconds", str(30 * 86400)]
    starts = []
    for _ in range(1 if quick else 3):
        server, took = spawn_server(binary, root, keep, env)
        starts.append(took)
        end_everything(server)
    results["start_samples_s"] = starts
    results["start_s"] = statistics.median(starts)

    server, _ = spawn_server(binary, root, keep, env)
    try:
        client = server.client()
        n = 10 if quick else 30
        results["list_ended_ms"] = ms(statistics.median(await latencies(client, "/v1/jobs?limit=1000", n)))
        results["list_ended_default_ms"] = ms(statistics.median(await latencies(client, "/v1/jobs", n)))
        results["list_ended_running_ms"] = ms(statistics.median(await latencies(client, "/v1/jobs?status=running", n)))
        results["list_ended_label_ms"] = ms(statistics.median(await latencies(client, "/v1/jobs?label=batch-7", n)))
        rng = random.Random(7)
        status_times = []
        for job_id in rng.sample(ids, 100 if quick else 300):
            status_times.append(await timed_get(client, f"/v1/jobs/{job_id}"))
        results["status_ended_ms"] = ms(statistics.median(status_times))
        results["status_ended_p99_ms"] = ms(pct(status_times, 0.99))
    finally:
        end_everything(server)

    # GC: a retention of one day expires all but the recent job; the first
    # GC pass runs as the server starts.
    collect = ["--gc-finished-job-retention-seconds", "86400", "--gc-interval-seconds", "3600"]
    server, _ = spawn_server(binary, root, collect, env)
    try:
        results["gc"] = await status_during_gc(server, recent, 1 + 1, 900)  # + the template job
        results["gc_dirs_left"] = sum(1 for _ in (root / "state" / "jobs").iterdir())
    finally:
        end_everything(server)


# ---------------------------------------------------------------- report


def row(label: str, value: str, target: str, met: bool | None) -> None:
    verdict = "-" if met is None else ("met" if met else "NOT MET")
    print(f"{label:58} {value:>14} {target:>12} {verdict:>8}")


def report(live: dict, ended: dict, n_jobs: int, n_ended: int) -> None:
    print()
    print(f"scale bench: {n_jobs} live jobs, {n_ended} ended jobs; load average now {load_average()}")
    print("(ours only: the reference is not expected to handle 1,000 live jobs, so no side-by-side)")
    print()
    print(f"{'figure':58} {'ours':>14} {'target':>12} {'verdict':>8}")
    if live:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(live["burst_statuses"].items()))
        row(f"{n_jobs} `sleep 600` started at once: all running", f"{live['running']}/{n_jobs}", "all", live["all_running"])
        row("  wall time of the burst (s)", f"{live['burst_s']:.1f}", "", None)
        print(f"    statuses: {statuses}; load {live['burst_load']}")
        row(f"server RSS with {n_jobs} live (MiB)", f"{live['rss_mib']:.1f}", "<= 64", live["rss_mib"] <= 64)
        samples = " ".join(f"{s:.2f}" for s in live["idle_cpu_samples"])
        row(f"idle server CPU with {n_jobs} live (% of a core)", f"{live['idle_cpu_pct']:.2f}", "<= 1", live["idle_cpu_pct"] <= 1)
        print(f"    samples: {samples}; load {live['idle_load']}; with no jobs: {live['idle_cpu_empty_pct']:.2f}%;"
              f" tmux server meanwhile: {live.get('tmux_idle_cpu_pct', float('nan')):.2f}%")
        row("GET /v1/jobs?limit=1000, median (ms)", f"{live['list_live_ms']:.2f}", "<= 20", live["list_live_ms"] <= 20)
        limit = 2 * live["run_done_idle_ms"]
        row(f"run `echo hi` -> done, {n_jobs} live, median (ms)", f"{live['run_done_live_ms']:.1f}",
            f"<= {limit:.1f}", live["run_done_live_ms"] <= limit)
        row("  the same on the idle server, median (ms)", f"{live['run_done_idle_ms']:.1f}", "", None)
        mem = live["memory"]
        per_job = mem["per_job"] / MIB
        row("host PSS per live job: tmux + runner + pipe side (MiB)", f"{per_job:.3f}", "<= 0.6", per_job <= 0.6)
        row("  the same with the script's own sh + sleep (MiB)", f"{mem['per_job_with_script'] / MIB:.3f}", "", None)
        for role, pss in mem["pss"].items():
            count = mem["counts"][role]
            if count:
                share = 100 * pss / mem["total"] if mem["total"] else 0
                print(f"    {role:22} {count:5} processes  {pss / MIB:8.1f} MiB  {pss / max(1, mem['jobs']) / MIB:6.3f} MiB/job  {share:4.0f}%")
        row("  server RSS at the end (MiB)", f"{live['rss_end_mib']:.1f}", "", None)
        row("  cleanup: processes SIGKILLed 10 s after kill-server", f"{live['leaked_killed']}", "", None)
        print("    (cleanup returns only once no process of the bench is left)")
    if ended:
        row(f"GET /v1/jobs?limit=1000, {n_ended} ended, median (ms)", f"{ended['list_ended_ms']:.2f}", "<= 20",
            ended["list_ended_ms"] <= 20)
        row("  GET /v1/jobs (limit 100), median (ms)", f"{ended['list_ended_default_ms']:.2f}", "<= 20",
            ended["list_ended_default_ms"] <= 20)
        row("  GET /v1/jobs?status=running, median (ms)", f"{ended['list_ended_running_ms']:.2f}", "<= 20",
            ended["list_ended_running_ms"] <= 20)
        row("  GET /v1/jobs?label=L, median (ms)", f"{ended['list_ended_label_ms']:.2f}", "<= 20",
            ended["list_ended_label_ms"] <= 20)
        row(f"GET /v1/jobs/ID, {n_ended} ended, median (ms)", f"{ended['status_ended_ms']:.2f}", "<= 2",
            ended["status_ended_ms"] <= 2)
        row("  the same, p99, no GC running (ms)", f"{ended['status_ended_p99_ms']:.2f}", "", None)
        samples = " ".join(f"{s:.2f}" for s in ended["start_samples_s"])
        row(f"server start with {n_ended} ended, median (s)", f"{ended['start_s']:.2f}", "<= 1", ended["start_s"] <= 1)
        print(f"    samples: {samples}")
        gc = ended["gc"]
        finished = gc["gc_s"] is not None
        row(f"GC of {n_ended} expired jobs (rows and dirs), wall (s)", f"{gc['gc_s']:.1f}" if finished else "unfinished", "", None)
        row("  status p99 while GC runs (ms)", f"{gc['p99_ms']:.2f}", "no stall", None)
        print("    (compare with the p99 above, no GC running: the difference is what GC costs a request)")
        print(f"    {gc['n']} status calls: p50 {gc['p50_ms']:.2f} ms, p99 {gc['p99_ms']:.2f} ms, max {gc['max_ms']:.1f} ms;"
              f" job dirs left {ended['gc_dirs_left']} (seeding took {ended['seed_s']:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True, help="our shellctl binary")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 50 live, 2,000 ended jobs")
    parser.add_argument("--jobs", type=int, help="live jobs (default 1000)")
    parser.add_argument("--ended", type=int, help="ended jobs (default 100000)")
    parser.add_argument("--only", choices=["live", "ended"], help="run one part")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    n_jobs = args.jobs or (50 if args.quick else 1000)
    n_ended = args.ended or (2000 if args.quick else 100_000)
    # One connection per request: a burst needs a descriptor each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * n_jobs + 1024)), hard))
    env = dict(os.environ)
    env.pop("SHELLCTL_AUTH_TOKEN", None)
    env.setdefault("RUST_LOG", "warn")
    live: dict = {}
    ended: dict = {}
    print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="shellctl-scale-") as tmp:
        root = Path(tmp)
        try:
            if args.only in (None, "live"):
                (root / "live" / "home").mkdir(parents=True)
                asyncio.run(live_part(args.ours, root / "live", dict(env, HOME=str(root / "live" / "home")),
                                      n_jobs, args.quick, live))
            if args.only in (None, "ended"):
                (root / "ended" / "home").mkdir(parents=True)
                asyncio.run(ended_part(args.ours, root / "ended", dict(env, HOME=str(root / "ended" / "home")),
                                       n_ended, args.quick, ended))
        except BaseException:
            for log in root.glob("*/server-*.log"):
                tail = log.read_text(errors="replace").splitlines()[-20:]
                print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)
            raise
    report(live, ended, n_jobs, n_ended)
    if args.json:
        Path(args.json).write_text(json.dumps({"live": live, "ended": ended, "load_end": load_average()}, indent=1))


if __name__ == "__main__":
    main()
