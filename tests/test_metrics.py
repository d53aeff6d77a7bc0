"""GET /metrics: request counts by route template, latencies, domain gauges, who may scrape, and
the counts of several gunicorn workers added up (prometheus_client's multiprocess mode).

Counters are per process and the app is shared by the tests of a worker, so tests compare the
scrape after their requests with the one before.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from bson import ObjectId
from prometheus_client.parser import text_string_to_metric_families

from tests.test_app import assert_error
from tests.test_query_plans import assert_indexed

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-token-0123456789abcdef"
REQUESTS = "yishitang_http_requests_total"
LATENCY = "yishitang_http_request_duration_seconds"


def parse(text: str) -> dict[tuple, float]:
    """{(sample name, frozenset of labels): value} of an exposition."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain" and response.headers["Cache-Control"] == "no-store"
    return parse(response.get_data(as_text=True))


# --- requests and latencies -------------------------------------------------------------------------

def test_requests_are_counted_by_method_route_template_and_status(client, people, login):
    admin = login(people["admin"])
    before = scrape(client)
    unknown_id = str(ObjectId())
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/api/v1/issues/{unknown_id}", headers=admin).status_code == 404
    assert client.get(f"/api/v1/issues/{unknown_id}").status_code == 401
    assert client.get(f"/api/v1/nowhere/{unknown_id}").status_code == 404
    assert client.post("/api/v1/regions", headers=admin, json={"code": 1}).status_code == 422
    assert client.delete("/api/v1/regions", headers=admin).status_code == 405
    assert client.open("/healthz", method="BREW").status_code == 405
    response = client.get("/metrics")
    after = parse(response.get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    issue = "/api/v1/issues/<issue_id>"
    assert delta(REQUESTS, method="GET", route="/healthz", status="200") == 2
    assert delta(REQUESTS, method="GET", route=issue, status="404") == 1
    assert delta(REQUESTS, method="GET", route=issue, status="401") == 1
    assert delta(REQUESTS, method="POST", route="/api/v1/regions", status="422") == 1
    # No route matched: one label for every path tried, and for methods nobody serves.
    assert delta(REQUESTS, method="GET", route="<unmatched>", status="404") == 1
    assert delta(REQUESTS, method="DELETE", route="<unmatched>", status="405") == 1
    assert delta(REQUESTS, method="other", route="<unmatched>", status="405") == 1
    # Latency by method and route, in the histogram's buckets; the scrape before was counted too.
    assert delta(f"{LATENCY}_count", method="GET", route="/healthz") == 2
    assert delta(f"{LATENCY}_bucket", method="GET", route="/healthz", le="+Inf") == 2
    assert delta(f"{LATENCY}_count", method="GET", route=issue) == 2
    assert delta(f"{LATENCY}_sum", method="GET", route=issue) > 0
    assert value(after, REQUESTS, method="GET", route="/metrics", status="200") >= 1
    # Never a raw path or an id in a label.
    text = response.get_data(as_text=True)
    assert unknown_id not in text and "nowhere" not in text and "BREW" not in text
    routes = {dict(labels).get("route") for _name, labels in after}
    assert routes - {None} <= {rule.rule for rule in client.application.url_map.iter_rules()} | {"<unmatched>"}


def test_latency_buckets_are_cumulative(client):
    for _ in range(3):
        client.get("/readyz")
    samples = scrape(client)
    buckets = sorted(((float(dict(labels)["le"]), count) for (name, labels), count in samples.items()
                      if name == f"{LATENCY}_bucket" and dict(labels)["route"] == "/readyz"))
    counts = [count for _le, count in buckets]
    assert counts == sorted(counts) and counts[-1] == value(samples, f"{LATENCY}_count", method="GET", route="/readyz")
    assert buckets[-1][0] == float("inf") and len(buckets) == 14


def test_openmetrics_when_asked(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.mimetype == "application/openmetrics-text"
    assert response.get_data(as_text=True).endswith("# EOF\n")


def test_recording_counts_each_request_once_under_its_route_template(app, monkeypatch):
    """The two hooks every request runs, on metrics of their own so that the counts of the other
    tests stay as they are. Their cost is a benchmark (`make bench`, `metrics_hooks_us` in tests/benchmarks/run.py)."""
    from flask import Response
    from prometheus_client import Counter, Histogram

    from yishitang import metrics

    monkeypatch.setattr(metrics, "REQUESTS", Counter("timed", "t", ["method", "route", "status"], registry=None))
    monkeypatch.setattr(metrics, "LATENCY", Histogram("timed_seconds", "t", ["method", "route"], registry=None))
    monkeypatch.setattr(metrics, "_counters", {})
    monkeypatch.setattr(metrics, "_latencies", {})
    with app.test_request_context(f"/api/v1/issues/{ObjectId()}"):
        for status in [200] * 3 + [404]:
            metrics._start_timer()
            metrics._record(Response(status=status))
    assert metrics.REQUESTS.labels("GET", "/api/v1/issues/<issue_id>", "200")._value.get() == 3
    assert metrics.REQUESTS.labels("GET", "/api/v1/issues/<issue_id>", "404")._value.get() == 1
    counts = {s.labels.get("le"): s.value for s in metrics.LATENCY.collect()[0].samples if s.name.endswith("_bucket")}
    assert counts["+Inf"] == 4


# --- domain gauges -----------------------------------------------------------------------------------

def test_domain_gauges_count_outbox_and_issues(client, app, db, people, login, make_issue):
    from yishitang.notifications.jobs import send_outbox

    empty = scrape(client)
    assert value(empty, "yishitang_database_up") == 1
    assert value(empty, "yishitang_issues_active", status="submitted") == 0
    assert value(empty, "yishitang_notifications_outbox", state="pending") == 0
    assert value(empty, "yishitang_notifications_outbox_oldest_due_seconds") == 0

    first, second, _third = (make_issue(people["resident"], title=title)["id"] for title in ("电动车充电车棚", "楼道灯不亮", "垃圾分类亭异味"))
    accept = client.post(f"/api/v1/issues/{first}/actions", json={"action": "accept"},
                         headers=login(people["member"]))
    assert accept.status_code == 200, accept.get_json()
    now = dt.datetime.now(dt.timezone.utc)
    # One unanswered past its response deadline; the accepted one is within its handling deadline.
    db.issues.update_one({"_id": ObjectId(second)}, {"$set": {"due_at": now - dt.timedelta(hours=1)}})
    # The queue waits: the oldest due message has waited two minutes.
    queued = db.notifications.count_documents({})
    assert queued >= 4  # three new issues for the studio's member, one "accepted" for the reporter
    db.notifications.update_many({}, {"$set": {"delivery.next_attempt_at": now - dt.timedelta(seconds=120)}})

    samples = scrape(client)
    assert value(samples, "yishitang_issues_active", status="submitted") == 2
    assert value(samples, "yishitang_issues_active", status="accepted") == 1
    assert value(samples, "yishitang_issues_active", status="resolved") == 0
    assert value(samples, "yishitang_issues_overdue", status="submitted") == 1
    assert value(samples, "yishitang_issues_overdue", status="accepted") == 0
    assert value(samples, "yishitang_notifications_outbox", state="pending") == queued
    assert value(samples, "yishitang_notifications_outbox", state="sending") == 0
    assert 120 <= value(samples, "yishitang_notifications_outbox_oldest_due_seconds") < 600

    with app.app_context():
        send_outbox(dt.datetime.now(dt.timezone.utc))
    sent = scrape(client)
    assert value(sent, "yishitang_notifications_outbox", state="pending") == 0
    assert value(sent, "yishitang_notifications_outbox_oldest_due_seconds") == 0
    assert value(sent, "yishitang_issues_active", status="submitted") == 2


def test_domain_gauge_queries_run_on_indexes(app, db):
    """SecantusDB takes an index only when it covers every field of the query, as MongoDB may."""
    from yishitang.issues.workflow import ACTIVE, OPEN

    now = dt.datetime.now(dt.timezone.utc)
    for state in ("pending", "sending"):
        assert_indexed(db.notifications, {"delivery.state": state})
    assert_indexed(db.notifications, {"delivery.state": "pending", "delivery.next_attempt_at": {"$lte": now}},
                   [("delivery.next_attempt_at", 1)])
    for status in ACTIVE:
        assert_indexed(db.issues, {"status": status})
    for status in OPEN:
        assert_indexed(db.issues, {"status": status, "due_at": {"$lt": now}})


def test_a_database_outage_still_answers_with_the_request_metrics(settings, caplog):
    from yishitang import create_app, db
    from yishitang.devtools.embedded import free_port

    app = create_app(settings.replace(mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/", mongodb_timeout_ms=300))
    try:
        client = app.test_client()
        client.get("/healthz")
        with caplog.at_level(logging.DEBUG, logger="pymongo.serverSelection"):
            samples = scrape(client)
    finally:
        db.connect(settings)
    # one server selection timed out, not one per gauge: the scrape gives up at the first
    failed = [r for r in caplog.records if r.name == "pymongo.serverSelection" and "Server selection failed" in r.getMessage()]
    assert len(failed) == 1, [r.getMessage()[:200] for r in failed]
    assert value(samples, "yishitang_database_up") == 0
    assert value(samples, REQUESTS, method="GET", route="/healthz", status="200") >= 1
    assert not any(name.startswith("yishitang_issues") for name, _labels in samples)


# --- who may scrape ----------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1", "10.2.3.4", "172.20.0.5", "192.168.1.9", "::1",
                                     "fd12:3456::7", "::ffff:10.0.0.8"])
def test_without_a_token_internal_addresses_may_scrape(client, address):
    scrape(client, environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize("address", ["8.8.8.8", "203.0.113.7", "100.64.0.1", "2001:db8::1", "::ffff:8.8.8.8", ""])
def test_without_a_token_other_addresses_are_refused(client, address):
    # 203.0.113.0/24 and 2001:db8::/32 are documentation ranges that `ipaddress` calls private.
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert_error(response, 403, "metrics_forbidden")
    assert REQUESTS.encode() not in response.get_data()


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
def test_without_a_token_requests_through_a_proxy_are_refused(client, header):
    """nginx or an ingress in front: the peer may be internal, the client is not known to be."""
    value_ = "for=10.0.0.9" if header == "Forwarded" else "10.0.0.9"
    assert_error(client.get("/metrics", headers={header: value_}), 403, "metrics_forbidden")


@pytest.fixture
def token_client(app, client, settings, monkeypatch):
    monkeypatch.setitem(app.config, "SETTINGS", settings.replace(metrics_token=TOKEN))
    return client


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}",
                                           f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN])
def test_with_a_token_a_missing_or_wrong_one_is_refused(token_client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = token_client.get("/metrics", headers=headers)
    body = assert_error(response, 401, "metrics_token_invalid")
    assert "令牌" in body["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert REQUESTS.encode() not in response.get_data()


def test_with_a_token_a_users_access_token_is_refused(token_client, people, login):
    assert_error(token_client.get("/metrics", headers=login(people["admin"])), 401, "metrics_token_invalid")


def test_with_the_token_any_address_may_scrape(token_client):
    for environ in ({}, {"REMOTE_ADDR": "8.8.8.8"}, {"HTTP_X_FORWARDED_FOR": "8.8.4.4"}):
        samples = scrape(token_client, headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=environ)
        assert value(samples, "yishitang_database_up") == 1
    assert scrape(token_client, headers={"Authorization": f"bearer  {TOKEN} "})


def test_metrics_token_setting():
    from yishitang.config import ConfigError, Settings

    assert Settings.from_env(env={"YISHITANG_TESTING": "1"}).metrics_token == ""
    assert Settings.from_env(env={"YISHITANG_TESTING": "1", "METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        Settings.from_env(env={"YISHITANG_TESTING": "1", "METRICS_TOKEN": "short"})


def test_nginx_refuses_metrics_from_outside():
    from tests.deploy.files import directive, directives, nginx_conf

    server = directive(directive(nginx_conf(ROOT / "deploy" / "nginx.conf"), "http")["block"], "server")["block"]
    locations = {tuple(item["args"]): item["block"] for item in directives(server, "location")}
    metrics = locations[("=", "/metrics")]
    assert directive(metrics, "deny")["args"] == ["all"] and not directives(metrics, "proxy_pass")


# --- several processes: gunicorn's workers -----------------------------------------------------------

def gunicorn_conf() -> dict:
    return runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))


def test_gunicorn_makes_and_removes_a_metrics_folder_when_none_is_named(monkeypatch, tmp_path):
    conf = gunicorn_conf()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # unset; restored afterwards
    conf["on_starting"](None)
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and made.name.startswith("yishitang-metrics-")
    (made / "counter_1.db").write_bytes(b"")
    conf["on_exit"](None)
    assert not made.exists()

    # A named folder is emptied of old counts at start, and kept at exit.
    named = tmp_path / "named"
    named.mkdir()
    (named / "counter_99.db").write_bytes(b"x")
    (named / "histogram_archive.db").write_bytes(b"x")
    (named / "README").write_text("kept")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(named))
    conf["on_starting"](None)
    conf["on_exit"](None)
    assert sorted(path.name for path in named.iterdir()) == ["README"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new" / "folder"))
    conf["on_starting"](None)
    assert (tmp_path / "new" / "folder").is_dir()


def stale_counts(folder: Path, pid: int, count: float) -> None:
    """What a previous run left: a worker's file with healthz requests counted."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    stale = MmapedDict(str(folder / f"counter_{pid}.db"))
    stale.write_value(mmap_key("yishitang_http_requests", "yishitang_http_requests_total", ["method", "route", "status"],
                               ["GET", "/healthz", "200"], "old"), count, 0.0)
    stale.close()


def test_gunicorn_workers_counts_add_up_and_survive_dead_workers(settings, tmp_path):
    """Two workers under the production gunicorn config: a scrape of either one counts the
    requests of both, and the counts of workers that die stay while their files go."""
    from yishitang.devtools.embedded import free_port

    folder = tmp_path / "metrics"
    folder.mkdir()
    stale_counts(folder, 4242, 1000)
    port = free_port()
    env = {key: item for key, item in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": f"{settings.mongodb_db}_metrics",
                "YISHITANG_TESTING": "1", "PORT": str(port), "WEB_CONCURRENCY": "2", "LOG_LEVEL": "INFO",
                "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(ROOT)})
    log_path = tmp_path / "gunicorn.log"
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def workers() -> list[int]:
        return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log_path.read_text())]

    def wait_for(condition, what, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()}")

    def ready():
        try:
            return requests.get(f"{base}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def counts():
        response = requests.get(f"{base}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        samples = parse(response.text)
        return (value(samples, REQUESTS, method="GET", route="/healthz", status="200"),
                value(samples, REQUESTS, method="GET", route="/api/v1/issues/<issue_id>", status="401"),
                value(samples, f"{LATENCY}_count", method="GET", route="/healthz"))

    try:
        wait_for(lambda: len(workers()) == 2 and ready(), "two workers")
        assert not (folder / "counter_4242.db").exists(), "the last run's counts are gone at start"
        for _ in range(30):
            assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        for _ in range(3):
            assert requests.get(f"{base}/api/v1/issues/{ObjectId()}", timeout=5).status_code == 401
        assert counts() == (30, 3, 30)
        first = workers()
        assert {f"counter_{pid}.db" for pid in first} >= {p.name for p in folder.glob("counter_*.db")}

        # Both workers die (a crash: no goodbye); the master starts two more and folds their counts
        # into the archive. The scrape is then answered by a worker that counted none of them.
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(workers()) == 4 and not any((folder / f"counter_{pid}.db").exists() for pid in first)
                 and ready(), "two new workers")
        assert (folder / "counter_archive.db").exists() and (folder / "histogram_archive.db").exists()
        assert counts() == (30, 3, 30)
        for _ in range(5):
            requests.get(f"{base}/healthz", timeout=5)
        assert counts() == (35, 3, 35)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        from pymongo import MongoClient

        with MongoClient(settings.mongodb_uri) as mongo:
            mongo.drop_database(env["MONGODB_DB"])
    assert process.returncode == 0, log_path.read_text()
    assert folder.is_dir(), "a folder named by the operator stays"
    assert "could not fold" not in log_path.read_text()
