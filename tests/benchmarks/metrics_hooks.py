"""CPU cost of the two metrics hooks every request runs (`make bench` prints it; target < 50 µs).

Timed on their own, in CPU time (a busy machine is fair), on metrics of their own; the test suite
checks only what they record (tests/test_metrics.py). `python -m tests.benchmarks.metrics_hooks`.
"""

from __future__ import annotations

import logging
import time

from bson import ObjectId

TARGET_US = 50.0


def measure(rounds: int = 5, per_round: int = 2000) -> float:
    """Best microseconds of CPU per request over `rounds` of `per_round` requests."""
    from flask import Response
    from prometheus_client import Counter, Histogram

    from yishitang import create_app, metrics
    from yishitang.config import Settings

    logging.getLogger("yishitang").setLevel(logging.ERROR)
    app = create_app(Settings.from_env(env={}, testing=True, mongodb_uri="mongodb://127.0.0.1:9/",
                                       mongodb_timeout_ms=50))
    metrics.REQUESTS = Counter("timed", "t", ["method", "route", "status"], registry=None)
    metrics.LATENCY = Histogram("timed_seconds", "t", ["method", "route"], registry=None)
    metrics._counters, metrics._latencies = {}, {}
    response = Response(status=200)
    best = float("inf")
    with app.test_request_context(f"/api/v1/issues/{ObjectId()}"):
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(per_round):
                metrics._start_timer()
                metrics._record(response)
            best = min(best, (time.process_time() - started) / per_round)
    return best * 1e6


def report() -> float:
    spent = measure()
    verdict = "ok" if spent < TARGET_US else "MISS"
    print(f"metrics hooks: {spent:.1f} µs CPU per request (target < {TARGET_US:.0f} µs): {verdict}", flush=True)
    return spent


if __name__ == "__main__":
    report()
