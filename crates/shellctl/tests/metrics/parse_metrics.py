"""Parses a scrape of shellctl's /metrics with the Prometheus client's own
text parser (prometheus_client.parser.text_string_to_metric_families) and
checks every family is there with its type. Prints "metrics parse ok".

Usage: parse_metrics.py FILE
"""

import sys

from prometheus_client.parser import text_string_to_metric_families

# Family names as the parser reports them: a counter's "_total" is not
# part of its family's name.
EXPECTED = {
    "shellctl_jobs": "gauge",
    "shellctl_job_starts": "counter",
    "shellctl_job_duration_seconds": "histogram",
    "shellctl_output_bytes": "counter",
    "shellctl_waiters": "gauge",
    "shellctl_streams": "gauge",
    "shellctl_http_requests": "counter",
    "shellctl_tmux_command_duration_seconds": "histogram",
}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as scrape:
        text = scrape.read()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind in EXPECTED.items():
        family = families.get(name)
        if family is None:
            sys.exit(f"family {name} missing; parsed {sorted(families)}")
        if family.type != kind:
            sys.exit(f"family {name} is a {family.type}, expected a {kind}")
        if not family.samples:
            sys.exit(f"family {name} has no samples")
    statuses = {s.labels["status"] for s in families["shellctl_jobs"].samples}
    wanted = {"created", "starting", "running", "exited", "terminated", "failed", "lost"}
    if statuses != wanted:
        sys.exit(f"shellctl_jobs statuses {sorted(statuses)}")
    for sample in families["shellctl_http_requests"].samples:
        route = sample.labels.get("route", "")
        if not (route == "unmatched" or route.startswith("/")):
            sys.exit(f"odd route label {route!r}")
    buckets = [
        s for s in families["shellctl_job_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels.get("le") == "+Inf"
    ]
    if len(buckets) != 1:
        sys.exit(f"shellctl_job_duration_seconds has {len(buckets)} +Inf buckets")
    print("metrics parse ok")


if __name__ == "__main__":
    main()
