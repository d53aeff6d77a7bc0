"""Prometheus metrics: `GET /metrics`, request counts and latencies, domain gauges at scrape time.

Requests are counted by method, route template (the url rule, never the path: no ids in labels)
and status. Under gunicorn every worker writes its counts into files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode, chosen by the library itself when that variable is set;
deploy/gunicorn.conf.py sets it) and a scrape of any worker adds up all of them; without it one
process keeps them in memory (`yishitang serve`, tests). The domain gauges (outbox, open and
overdue issues) are counted on indexes by the worker that answers the scrape, never stored.

Access: with METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`; without it,
only loopback and private-network addresses connecting directly (not through a proxy) may scrape.
nginx refuses /metrics as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hmac
import ipaddress
import logging
import os
import time

import prometheus_client
from flask import Blueprint, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.mmap_dict import MmapedDict

from . import config
from .config import ConfigError
from .db import as_utc
from .errors import DATABASE_ERRORS, Forbidden, Unauthorized
from .issues.models import Issue
from .issues.workflow import ACTIVE, OPEN
from .notifications.models import Notification

log = logging.getLogger(__name__)
blp = Blueprint("metrics", __name__)

# Counters and histograms only: their files add up across processes (a gauge in multiprocess mode
# needs a mode per gauge). `_created` series would double the series for nothing.
prometheus_client.disable_created_metrics()
REQUESTS = Counter("yishitang_http_requests", "HTTP requests answered, by method, route template and status",
                   ["method", "route", "status"], registry=None)
LATENCY = Histogram("yishitang_http_request_duration_seconds",
                    "Time from the start of the request to the response, by method and route template",
                    ["method", "route"], registry=None,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no route: a 404 or 405 of the router, whatever path a scanner tried

# Who may scrape without a token: this host and private networks (RFC 1918, IPv6 unique local).
# Spelled out because `ipaddress.is_private` also counts documentation and benchmark ranges.
INTERNAL_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"))
# Set by a proxy in front (nginx, an ingress): the peer's address is then not the client's.
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")

# Children of the labelled metrics by label values: `labels()` validates and locks on each call.
_counters: dict = {}
_latencies: dict = {}


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, or None in single-process mode.

    PROMETHEUS_MULTIPROC_DIR is prometheus_client's own variable, read by the library when it is
    imported (so not one of our settings); this asks the library which mode it chose.
    """
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


def init_app(app) -> None:
    """Count every request and serve `GET /metrics`."""
    path = multiprocess_dir()
    if path is not None:
        if not path:
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR is set but empty: unset it or name a writable directory")
        os.makedirs(path, exist_ok=True)
    app.before_request(_start_timer)
    app.after_request(_record)
    app.register_blueprint(blp)


def _start_timer():
    g._metrics_started = time.perf_counter()


def _record(response):
    started = g.pop("_metrics_started", None)
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "other"
    key = (method, route, response.status_code)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = REQUESTS.labels(method, route, str(response.status_code))
    counter.inc()
    if started is not None:
        latency = _latencies.get(key[:2])
        if latency is None:
            latency = _latencies[key[:2]] = LATENCY.labels(method, route)
        latency.observe(time.perf_counter() - started)
    return response


# --- the scrape -------------------------------------------------------------------------------

@blp.get("/metrics")
def scrape():
    """Prometheus exposition of this process (or, under gunicorn, of all workers) and the gauges."""
    check_access(config.settings().metrics_token)
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        registry.register(_LockedMultiProcessCollector(path))
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(DomainCollector())
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def check_access(token: str) -> None:
    """With a token: the bearer token, compared in constant time. Without: internal addresses only,
    connecting directly."""
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            raise Unauthorized("监控指标需要有效的访问令牌", error="metrics_token_invalid",
                               headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return
    # A request relayed by a proxy (nginx, an ingress) is refused whatever its address: behind a
    # load balancer that rewrites source addresses, a public client can look internal.
    if any(header in request.headers for header in PROXY_HEADERS) or not is_internal(request.remote_addr):
        raise Forbidden("监控指标仅对本机和内网开放", error="metrics_forbidden")


def is_internal(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in INTERNAL_NETWORKS)


class DomainCollector:
    """Gauges counted at scrape time, each on an index that covers every field of its query."""

    def collect(self):
        now = dt.datetime.now(dt.timezone.utc)
        up = GaugeMetricFamily("yishitang_database_up", "1 when the database answered this scrape's queries")
        outbox = GaugeMetricFamily("yishitang_notifications_outbox",
                                   "WeChat messages waiting to be sent (pending) or being sent (sending)",
                                   labels=["state"])
        oldest = GaugeMetricFamily("yishitang_notifications_outbox_oldest_due_seconds",
                                   "How long the oldest due pending message has waited (0: none waits)")
        issues = GaugeMetricFamily("yishitang_issues_active", "Issues not yet final, by status", labels=["status"])
        overdue = GaugeMetricFamily("yishitang_issues_overdue", "Open issues past their deadline, by status",
                                    labels=["status"])
        try:
            notifications = Notification._get_collection()
            # index (delivery.state, delivery.next_attempt_at); the sender's own query
            for state in ("pending", "sending"):
                outbox.add_metric([state], notifications.count_documents({"delivery.state": state}))
            first = notifications.find_one(
                {"delivery.state": "pending", "delivery.next_attempt_at": {"$lte": now}},
                {"_id": 0, "delivery.next_attempt_at": 1}, sort=[("delivery.next_attempt_at", 1)])
            waited = (now - as_utc(first["delivery"]["next_attempt_at"])).total_seconds() if first else 0.0
            oldest.add_metric([], max(0.0, waited))
            collection = Issue._get_collection()
            # index (status, due_at): the deadline sweep's
            for status in ACTIVE:
                issues.add_metric([status], collection.count_documents({"status": status}))
            for status in OPEN:  # one status a query: SecantusDB scans for an $in with a range
                overdue.add_metric([status], collection.count_documents({"status": status, "due_at": {"$lt": now}}))
        except DATABASE_ERRORS as exc:
            log.warning("metrics: database unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, outbox, oldest, issues, overdue)


# --- multiprocess mode: reading the workers' files, folding in those of dead workers ------------

@contextlib.contextmanager
def _directory_lock(path: str, mode: int):
    """A scrape reads the files under a shared lock; folding a dead worker's in takes it exclusively,
    so no scrape sees its counts twice or not at all."""
    with open(os.path.join(path, "metrics.lock"), "a+b") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _LockedMultiProcessCollector:
    def __init__(self, path: str):
        self._inner = multiprocess.MultiProcessCollector(None, path=path)
        self._path = path

    def collect(self):
        with _directory_lock(self._path, fcntl.LOCK_SH):
            return list(self._inner.collect())


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """A worker is gone (gunicorn's `child_exit`): drop its live gauges and add its counters and
    histograms to `<kind>_archive.db`, then delete its files.

    Counts of a dead worker must keep counting (a counter never goes down), but gunicorn recycles
    workers (`max_requests`): without folding them in, every scrape would read one more pair of
    files per recycled worker, for as long as the server runs.
    """
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path or not os.path.isdir(path):
        return
    multiprocess.mark_process_dead(pid, path)
    with _directory_lock(path, fcntl.LOCK_EX):
        for kind in ("counter", "histogram"):
            dead = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))
            try:
                # Both kinds store plain sums (a histogram's buckets are not cumulative in the files).
                for key, value, *_ in MmapedDict.read_all_values_from_file(dead):
                    archive.write_value(key, archive.read_value(key)[0] + value, 0.0)
            finally:
                archive.close()
            os.remove(dead)

