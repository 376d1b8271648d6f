"""Latency of the agent routes against a running shellctl server (ours
only: the reference has none of them).

    target/release/shellctl serve --listen 127.0.0.1:18765 --state-dir DIR --runtime-dir DIR2 &
    python3 bench/agents.py http://127.0.0.1:18765

Prints: how long a printed line takes to reach a wait-for waiter, search,
wait-for and digest over a 200,000-line log, and how long until a password
prompt reads as waiting for input.
"""
import json, time, urllib.request, sys, statistics
base = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r: return json.load(r)
def get(path):
    with urllib.request.urlopen(base + path, timeout=120) as r: return json.load(r)
# 1. wait-for match latency: the job prints its own clock, the client notes when the answer arrived
lat = []
for i in range(10):
    job = post("/v1/jobs/run", {"script": "sleep 0.3; date +%s.%N; sleep 30", "timeout": 0.001})
    t = post(f"/v1/jobs/{job['job_id']}/wait-for", {"offset": 0, "pattern": r"^\d+\.\d+$", "timeout": 30})
    got = time.time()
    printed = float(t["match"]["text"])
    lat.append((got - printed) * 1000)
    post(f"/v1/jobs/{job['job_id']}/terminate", {"grace_seconds": 0})
print("wait-for match latency ms: median %.1f, max %.1f" % (statistics.median(lat), max(lat)))
# 2. the 200,000-line log: search and digest
job = post("/v1/jobs/run", {"script": "seq 1 200000 | sed 's/^/line /'; echo 'ERROR: disk full'; exit 1", "timeout": 0.001})
jid = job["job_id"]
post(f"/v1/jobs/{jid}/wait-for", {"offset": 0, "timeout": 120})
size = get(f"/v1/jobs/{jid}")["offset"]
for name, call in [("search", lambda: get(f"/v1/jobs/{jid}/log/search?pattern=%5Eline%20123456%24")),
                   ("digest 16000", lambda: post(f"/v1/jobs/{jid}/digest", {"offset": 0, "max_bytes": 16000})),
                   ("wait-for pattern over the whole log", lambda: post(f"/v1/jobs/{jid}/wait-for", {"offset": 0, "pattern": "disk full", "timeout": 30, "output_limit": 16}))]:
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); call(); ts.append((time.perf_counter() - t0) * 1000)
    print(f"{name} over {size:,} bytes: median {statistics.median(ts):.1f} ms ({size/1e6/(statistics.median(ts)/1000):.0f} MB/s)")
# 3. password prompt seen as waiting_for_input: time from run to answer
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    job = post("/v1/jobs/run", {"script": "stty -echo; printf 'Password: '; read pw", "timeout": 0.001})
    r = post(f"/v1/jobs/{job['job_id']}/wait-for", {"offset": 0, "timeout": 30})
    ts.append((time.perf_counter() - t0) * 1000)
    assert r["reason"] == "waiting_for_input", r
    post(f"/v1/jobs/{job['job_id']}/terminate", {"grace_seconds": 0})
print("run + wait-for until a password prompt is seen waiting: median %.0f ms" % statistics.median(ts))
