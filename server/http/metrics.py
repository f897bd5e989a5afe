"""Prometheus text exposition for requests, latency and database errors (no client library needed)."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import accumulate

# Latency buckets in seconds, the usual Prometheus shape stretched for a phone-facing API.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Counters whose meaning is not obvious from the name (the others are listed with their type only).
COUNTER_HELP = {
    "backups_total": "Scheduled backups this instance took.",
    "backups_failed_total": "Scheduled backups that failed in this instance (each is logged and told to admins).",
}


@dataclass
class Metrics:
    requests: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    latency_buckets: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    latency_sum: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    latency_count: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    database_errors: int = 0
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        key = (method, route)
        buckets = self.latency_buckets.get(key)
        if buckets is None:
            buckets = self.latency_buckets[key] = [0] * len(BUCKETS)
        # Every request passes here: one bucket counted (the first bound it is within), summed when rendered.
        index = bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            buckets[index] += 1
        self.latency_sum[key] += seconds
        self.latency_count[key] += 1

    def render(self) -> str:
        lines = [
            "# HELP branch_audit_http_requests_total HTTP requests by route and status.",
            "# TYPE branch_audit_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(f'branch_audit_http_requests_total{{method="{method}",route="{_esc(route)}",'
                         f'status="{status}"}} {count}')
        lines += [
            "# HELP branch_audit_http_request_duration_seconds Request latency by route.",
            "# TYPE branch_audit_http_request_duration_seconds histogram",
        ]
        for (method, route), buckets in sorted(self.latency_buckets.items()):
            labels = f'method="{method}",route="{_esc(route)}"'
            for bound, count in zip(BUCKETS, accumulate(buckets), strict=True):
                lines.append(f'branch_audit_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}')
            total = self.latency_count[(method, route)]
            lines.append(f'branch_audit_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}')
            lines.append(f"branch_audit_http_request_duration_seconds_sum{{{labels}}} "
                         f"{self.latency_sum[(method, route)]:.6f}")
            lines.append(f"branch_audit_http_request_duration_seconds_count{{{labels}}} {total}")
        lines += [
            "# HELP branch_audit_database_errors_total Requests that failed because the database was unreachable.",
            "# TYPE branch_audit_database_errors_total counter",
            f"branch_audit_database_errors_total {self.database_errors}",
        ]
        for name, value in sorted(self.counters.items()):
            if name in COUNTER_HELP:
                lines.append(f"# HELP branch_audit_{name} {COUNTER_HELP[name]}")
            lines += [f"# TYPE branch_audit_{name} counter", f"branch_audit_{name} {value}"]
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
