"""Rate limits, shared across processes through the database: 429 with Retry-After."""

import os
from contextlib import ExitStack

import pymongo
import pytest
import requests

from tests.conftest import APPID, APPSECRET
from tests.processes import serving
from tests.test_app import assert_error
from tests.factories import SHED


# One window longer than any run: no window boundary can fall inside a test and reset its counts.
WINDOW = 10**9


@pytest.fixture
def mid_window(monkeypatch):
    """The limiter's clock stopped 30 s into a minute: a slow machine cannot carry a test's requests
    across a one-minute window's end, and Retry-After is known to the second."""
    from yishitang import ratelimit

    stopped = ratelimit.utcnow().replace(second=30, microsecond=0)
    monkeypatch.setattr(ratelimit, "utcnow", lambda: stopped)
    return stopped


def test_logins_per_address(client, limits, people, fake_wechat, mid_window):
    limits(rate_limit_login="3/60")
    for _ in range(3):
        response = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"})
        assert response.status_code == 200
    refused = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"})
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "30"  # the seconds left in the window
    assert_error(client.post("/api/v1/auth/wechat-login", json={"code": fake_wechat.issue_login_code("o-x")}), 429, "rate_limited")
    # another address has its own budget
    other = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"},
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_issues_per_user(client, limits, login, people, district, db):
    limits(rate_limit_issues=f"2/{WINDOW}")
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    for _ in range(2):
        assert client.post("/api/v1/issues", json=body, headers=login(people["resident"])).status_code == 201
    assert_error(client.post("/api/v1/issues", json=body, headers=login(people["resident"])), 429, "rate_limited")
    assert db.issues.count_documents({}) == 2
    assert client.post("/api/v1/issues", json=body, headers=login(people["neighbour"])).status_code == 201


def test_a_replayed_submit_does_not_count(client, limits, login, people, district):
    limits(rate_limit_issues=f"1/{WINDOW}")
    headers = {**login(people["resident"]), "Idempotency-Key": "same"}
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    assert client.post("/api/v1/issues", json=body, headers=headers).status_code == 201
    assert client.post("/api/v1/issues", json=body, headers=headers).status_code == 201


def test_supports_per_user(client, limits, login, people, district):
    limits(rate_limit_supports=f"2/{WINDOW}")
    issue = client.post("/api/v1/issues", json={**SHED, "studio_id": str(district["xingfu"].id)},
                        headers=login(people["resident"])).get_json()
    url = f"/api/v1/issues/{issue['id']}/supports"
    assert client.post(url, headers=login(people["neighbour"])).status_code == 200
    assert client.delete(url, headers=login(people["neighbour"])).status_code == 200
    assert_error(client.post(url, headers=login(people["neighbour"])), 429, "rate_limited")


def test_behind_a_proxy_the_forwarded_address_counts(settings, db, mid_window):
    from yishitang import create_app, db as dbmod

    app = create_app(settings.replace(proxy_count=1, rate_limit_login=f"1/{WINDOW}"))
    try:
        client = app.test_client()
        body = {"username": "nobody", "password": "whatever-1"}
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 401
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 401
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 429
    finally:
        dbmod.connect(settings)


def test_bad_limit_settings_are_refused():
    from yishitang.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="RATE_LIMIT_ISSUES"):
        Settings.from_env(env={"YISHITANG_TESTING": "1", "RATE_LIMIT_ISSUES": "ten per hour"})


# --- shared by every process ------------------------------------------------------------------------

@pytest.fixture
def two_servers(mongo_uri, worker_id, fake_wechat, tmp_path):
    """Two `yishitang serve` processes on one database, as two API containers behind nginx."""
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DB": f"yishitang_shared_limits_{worker_id}",
           "YISHITANG_TESTING": "1", "YISHITANG_DEMO": "", "LOG_LEVEL": "ERROR", "WECHAT_API_BASE": fake_wechat.url,
           "WECHAT_APPID": APPID, "WECHAT_SECRET": APPSECRET,
           "RATE_LIMIT_LOGIN": f"{LOGINS}/{WINDOW}"}
    pymongo.MongoClient(mongo_uri).drop_database(env["MONGODB_DB"])
    with ExitStack() as stack:
        yield [stack.enter_context(serving(env, tmp_path / f"serve-{n}.log")) for n in range(2)]
    pymongo.MongoClient(mongo_uri).drop_database(env["MONGODB_DB"])


LOGINS = 4


def test_a_limit_is_shared_by_every_process(two_servers):
    first, second = two_servers
    wrong = {"username": "nobody", "password": "wrong-password-1"}
    answers = [requests.post(f"{base}/api/v1/auth/password-login", json=wrong, timeout=30)
               for base in [first, second] * (LOGINS // 2)]
    assert [a.status_code for a in answers] == [401] * LOGINS  # counted, whichever process answered
    for base in (first, second):  # each process alone has seen only half of them: a per-process count would let these in
        refused = requests.post(f"{base}/api/v1/auth/password-login", json=wrong, timeout=30)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited", refused.text
        assert int(refused.headers["Retry-After"]) >= 1


# --- the counter itself, at chosen times -------------------------------------------------------------

def test_windows_are_fixed_counted_apart_and_say_when_they_end(app, db):
    import datetime as dt

    from yishitang.errors import RateLimited
    from yishitang.ratelimit import Rule, hit

    rule = Rule.parse("probe", "2/60", "ip")
    start = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.timezone.utc)  # a window starts on the minute
    at = [start + dt.timedelta(seconds=s) for s in (0, 30, 50, 59.5, 60)]
    with app.app_context():
        hit(rule, "10.0.0.1", at[0])
        hit(rule, "10.0.0.1", at[1])
        hit(rule, "10.0.0.2", at[1])  # another caller, its own count
        with pytest.raises(RateLimited) as early:
            hit(rule, "10.0.0.1", at[2])
        with pytest.raises(RateLimited) as late:
            hit(rule, "10.0.0.1", at[3])
        hit(rule, "10.0.0.1", at[4])  # the next window counts from one
    assert early.value.headers["Retry-After"] == "10" and late.value.headers["Retry-After"] == "1"
    window = int(start.timestamp())
    counter = db.rate_limits.find_one({"_id": f"probe:10.0.0.1:{window}"})
    # kept a minute past the window's end, then the TTL monitor takes it
    assert counter["count"] == 4 and counter["expires_at"].replace(tzinfo=dt.timezone.utc) == at[4] + dt.timedelta(seconds=60)
    assert db.rate_limits.find_one({"_id": f"probe:10.0.0.1:{window + 60}"})["count"] == 1


def test_each_rule_counts_apart_for_one_caller(client, limits, login, people, district):
    limits(rate_limit_issues=f"2/{WINDOW}", rate_limit_supports=f"2/{WINDOW}")
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    neighbour = login(people["neighbour"])
    for _ in range(2):
        assert client.post("/api/v1/issues", json=body, headers=neighbour).status_code == 201
    issue = client.post("/api/v1/issues", json=body, headers=login(people["resident"])).get_json()
    url = f"/api/v1/issues/{issue['id']}/supports"
    assert client.post(url, headers=neighbour).status_code == 200  # raising issues spent none of it
    assert client.delete(url, headers=neighbour).status_code == 200
    assert_error(client.post(url, headers=neighbour), 429, "rate_limited")
