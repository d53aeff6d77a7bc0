"""Faults: the database stopped and restarted under traffic, a write failing half-way through a
multi-document change, WeChat slow or down. What a client sees must stay a clear answer (503 with
Retry-After while the database or WeChat is away, in seconds, never a hang), nothing may be
half-written, and nothing may be lost.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
import threading
import time

import pymongo
import pytest
import requests

from tests.conftest import APPID, APPSECRET
from tests.processes import serving
from tests.test_app import assert_error
from tests.test_files import PNG
from yishitang.devtools.embedded import EmbeddedDatabase

CLI = [sys.executable, "-m", "yishitang.cli"]
UTC = dt.timezone.utc
# Only a hang takes this long: far above the 0.5-1 s the short timeouts here allow, far below the
# driver's 30 s socket wait and with_transaction's 120 s. How fast the answers come is `make bench`'s.
HANG_S = 20
ISSUE = {"title": "小区门口路灯不亮", "category": "community_facilities",
         "description": "小区东门的路灯坏了两个星期，晚上出入很不安全，希望尽快维修。"}


def chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text or ""))


# --- 1. the database stopped and restarted under traffic ----------------------------------------------

@pytest.fixture
def own_database(tmp_path):
    """A database of its own, on disk, so that what was written survives a restart."""
    server = EmbeddedDatabase(str(tmp_path / "db")).start()
    yield server
    server.stop()


@pytest.fixture
def served(own_database, fake_wechat, tmp_path):
    """`yishitang serve` as a real process against that database and the fake WeChat, driven over HTTP."""
    env = {**os.environ, "MONGODB_URI": own_database.uri, "MONGODB_DB": "yishitang_faults", "MONGODB_TIMEOUT_MS": "500",
           "YISHITANG_TESTING": "1", "YISHITANG_DEMO": "", "JWT_SECRET": "", "RETRY_AFTER": "7", "LOG_LEVEL": "ERROR",
           "WECHAT_API_BASE": fake_wechat.url, "WECHAT_APPID": APPID, "WECHAT_SECRET": APPSECRET, "WECHAT_TIMEOUT": "2",
           "RATE_LIMIT_ISSUES": "100000/3600"}
    made = subprocess.run([*CLI, "create-admin", "--username", "chief", "--password", "chief-pass-1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    with serving(env, tmp_path / "serve.log") as base:
        yield base


class Traffic(threading.Thread):
    """A client that keeps calling a mix of routes, recording every answer, until stopped."""

    def __init__(self, base, calls):
        super().__init__(daemon=True)
        self.base, self.calls = base, calls
        # (phase, route, status, body, seconds); phase "a..b" when it changed during the request
        self.answers: list[tuple[str, str, int, dict, float]] = []
        self.phase = "up"
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.answered = threading.Condition()

    def await_answers(self, phase, count=None, route=None, status=None):
        """Wait until `count` answers (every route once, by default) of `phase` are in, or the one named."""
        count = count or len(self.calls)

        def enough():
            return sum(1 for a in self.answers if a[0] == phase and route in (None, a[1]) and status in (None, a[2])) >= count

        with self.answered:
            assert self.answered.wait_for(enough, HANG_S), (phase, route, status, self.answers[-5:], self.errors[-5:])

    def run(self):
        session = requests.Session()
        n = 0
        while not self.halt.is_set():
            method, path, kwargs = self.calls[n % len(self.calls)]
            n += 1
            phase, started = self.phase, time.monotonic()
            try:
                response = session.request(method, self.base + path, timeout=30, **kwargs)
            except requests.RequestException as exc:  # the app itself must never stop answering
                self.errors.append(f"{method} {path}: {exc!r}")
                continue
            body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
            body = {**body, "retry_after": response.headers.get("Retry-After")}
            if self.phase != phase:  # it straddled a change (the database stopping or coming back)
                phase = f"{phase}..{self.phase}"
            with self.answered:
                self.answers.append((phase, f"{method} {path}", response.status_code, body, time.monotonic() - started))
                self.answered.notify_all()


def test_database_stopped_and_restarted_under_traffic(served, own_database, fake_wechat):
    base = served

    def call(method, path, token=None, expect=None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.request(method, base + path, headers=headers, timeout=30, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response

    admin = call("POST", "/api/v1/auth/password-login", expect=200,
                 json={"username": "chief", "password": "chief-pass-1"}).json()["access_token"]
    for code, kind, parent in (("211104", "district", None), ("211104001", "street", "211104"),
                               ("211104001001", "community", "211104001")):
        call("POST", "/api/v1/regions", admin, 201, json={"code": code, "name": f"地区{code}", "kind": kind,
                                                           "parent_code": parent})
    studio = call("POST", "/api/v1/studios", admin, 201, json={"name": "幸福社区委员工作室",
                                                                 "region_code": "211104001001"}).json()["id"]
    resident = call("POST", "/api/v1/auth/wechat-login", expect=200,
                    json={"code": fake_wechat.issue_login_code("o-outage")}).json()["access_token"]
    issue = call("POST", "/api/v1/issues", resident, 201, json={**ISSUE, "studio_id": studio}).json()

    auth = {"headers": {"Authorization": f"Bearer {resident}"}}
    traffic = Traffic(base, [
        ("GET", "/readyz", {}), ("GET", "/healthz", {}),
        ("GET", f"/api/v1/issues/{issue['id']}", auth), ("GET", "/api/v1/me", auth),
        ("POST", "/api/v1/issues", {**auth, "json": {**ISSUE, "title": "流量中的议题", "studio_id": studio}}),
        ("GET", "/api/v1/regions/211104001", {"headers": {"Authorization": f"Bearer {admin}"}}),
    ])
    traffic.start()
    try:
        traffic.await_answers("up")
        traffic.phase = "stopping"
        own_database.stop()  # SIGTERM to the database process, under traffic
        traffic.phase = "down"

        # While it is down: a clear 503 everywhere, quickly, never a 500 or a hang.
        ready = call("GET", "/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable", "database": False}
        assert ready.headers["Retry-After"] == "7"
        assert call("GET", "/healthz").status_code == 200
        for method, path, token, body in (("GET", "/api/v1/me", resident, None),
                                          ("GET", f"/api/v1/issues/{issue['id']}", resident, None),
                                          ("POST", "/api/v1/issues", resident, {**ISSUE, "studio_id": studio}),
                                          ("POST", "/api/v1/auth/password-login", None,
                                           {"username": "chief", "password": "chief-pass-1"})):
            started = time.monotonic()
            response = call(method, path, token, json=body)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (method, path, response.status_code, response.text)
            error = response.json()
            assert error["code"] == 503 and error["error"] == "database_unavailable" and chinese(error["message"])
            assert response.headers["Retry-After"] == "7"
            assert elapsed < HANG_S, f"{method} {path} took {elapsed:.1f}s to say the database is down"
        traffic.await_answers("down")

        # Back on the same port and storage: the app recovers by itself, without a restart.
        traffic.phase = "restarting"
        own_database.start()  # the same port and storage path
        traffic.phase = "restarted"
        traffic.await_answers("restarted", 1, route="GET /readyz", status=200)  # the app saw it come back
        traffic.phase = "recovered"
        traffic.await_answers("recovered")
    finally:
        traffic.halt.set()
        traffic.join(60)

    # The data written before the outage is still there, and writing works again.
    again = call("GET", f"/api/v1/issues/{issue['id']}", resident, 200).json()
    assert again["number"] == issue["number"] and again["title"] == issue["title"]
    assert call("GET", "/api/v1/regions/211104001001", admin, 200).json()["ancestors"] == ["211104", "211104001"]
    created = call("POST", "/api/v1/issues", resident, 201, json={**ISSUE, "studio_id": studio}).json()
    assert created["number"] > issue["number"]
    assert call("POST", "/api/v1/auth/password-login", expect=200, json={"username": "chief", "password": "chief-pass-1"})

    assert not traffic.errors, traffic.errors[:5]
    statuses = {status for _phase, _route, status, _body, _s in traffic.answers}
    assert statuses <= {200, 201, 503}, statuses
    for phase, route, status, body, seconds in traffic.answers:
        if status == 503 and route != "GET /readyz":
            assert body["error"] == "database_unavailable" and chinese(body["message"]), body
            assert body["retry_after"] == "7", (route, body)
        if phase == "down":
            assert status == 503 or route == "GET /healthz", (phase, route, status, seconds)
        assert seconds < HANG_S, (phase, route, status, seconds)
    during = [a for a in traffic.answers if a[0] == "down"]
    after = [a for a in traffic.answers if a[0] == "recovered"]
    assert len(during) >= 3 and all(a[2] == 503 for a in during if a[1] != "GET /healthz")
    assert after and all(a[2] in (200, 201) for a in after), after[:5]


# --- 2. a write failing half-way through a multi-document change ----------------------------------------
#
# A second database started with `--enable-test-commands` takes MongoDB's `failCommand` failpoint.
# The app is pointed at it for the test, and a command listener arms the failpoint the moment the
# change's transaction sends its first write: from then on the writes fail (the first one itself is
# let through), so the failure lands after something of the change is written, whatever the code
# does before its transaction. The kinds of failure:
#   disk_full        a write error that retrying will not cure (OutOfDiskSpace): 500, nothing written
#   database_gone    the connection drops on every write, as when the server dies mid-change: 503 with
#                    Retry-After within the transaction's time limit (db.py), nothing written
#   connection_blip  the connection drops once: the transaction is retried, the change applies once
#   write_conflict   a concurrent writer wins once (WriteConflict): retried, the change applies once

WRITES = ["insert", "update", "delete", "findAndModify"]
KINDS = {
    "disk_full": ({"errorCode": 14031, "errorLabels": []}, None),
    "database_gone": ({"closeConnection": True}, None),
    "connection_blip": ({"closeConnection": True}, 1),
    "write_conflict": ({"errorCode": 112, "errorLabels": ["TransientTransactionError"]}, 1),
}
SURVIVED = {"connection_blip", "write_conflict"}


class FirstTransactionalWrite(pymongo.monitoring.CommandListener):
    """Calls `then()` once, when a write inside a transaction is about to be sent."""

    def __init__(self):
        self.then = None

    def started(self, event):
        if self.then is not None and event.command_name in WRITES and "autocommit" in event.command:
            then, self.then = self.then, None
            then()

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


# Registered at import (collection), before the app's client is created in a fixture.
WATCH = FirstTransactionalWrite()
pymongo.monitoring.register(WATCH)


@pytest.fixture(scope="session")
def failpoint_server():
    server = EmbeddedDatabase(":memory:", options=("--enable-test-commands",)).start()
    yield server
    server.stop()


class FailPoint:
    def __init__(self, uri):
        self.client = pymongo.MongoClient(uri)

    def arm(self, failure: dict, times=None):
        """From the first transactional write on, fail the writes after it (`times` of them; None: all)."""
        def now():
            self.client.admin.command({"configureFailPoint": "failCommand",
                                       "mode": {"skip": 1, "times": times if times is not None else 10_000},
                                       "data": {"failCommands": WRITES, **failure}})
        WATCH.then = now

    def disarm(self):
        WATCH.then = None
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.fixture
def failpoint(app, settings, failpoint_server):
    """The app on the failpoint server for this test (mongoengine's connection is per process)."""
    from yishitang import db as dbmod

    # A short server selection timeout, hence a 2 s transaction time limit: failing fast is the point.
    dbmod.connect(settings.replace(mongodb_uri=failpoint_server.uri, mongodb_timeout_ms=1000))
    point = FailPoint(failpoint_server.uri)
    try:
        database = dbmod.database()
        for name in database.list_collection_names():
            if not name.startswith("system."):
                database[name].delete_many({})
        if not getattr(failpoint_server, "indexed", False):
            dbmod.ensure_indexes()
            failpoint_server.indexed = True
        yield point
    finally:
        point.disarm()
        point.client.close()
        dbmod.connect(settings)


@pytest.fixture
def here(failpoint, request, fake_wechat):
    """The small district and its people, made on the failpoint server."""
    class Here:
        def __init__(self):
            self.people = request.getfixturevalue("people")
            self.district = request.getfixturevalue("district")
            self.login = request.getfixturevalue("login")
            self.client = request.getfixturevalue("client")
            self.db = request.getfixturevalue("db")
            self.point = failpoint
            self.make_issue = request.getfixturevalue("make_issue")

        def call(self, method, url, user, expect=None, **kwargs):
            response = self.client.open(url, method=method, headers=self.login(user), **kwargs)
            if expect is not None:
                assert response.status_code == expect, (method, url, response.get_json())
            return response

        def photo(self, user):
            return self.call("POST", "/api/v1/files", user, 201, content_type="multipart/form-data",
                             data={"file": (io.BytesIO(PNG), "photo.png")}).get_json()["id"]

    return Here()


def raise_with_photos(here):
    """POST /issues with two photos: the issue is inserted, then the photos are attached to it (update)."""
    resident = here.people["resident"]
    here.make_issue(resident, title="先提一个议题")  # also caches WeChat's token, so the request writes nothing else
    photos = [here.photo(resident), here.photo(resident)]
    body = {**ISSUE, "studio_id": str(here.district["xingfu"].id), "attachments": photos}
    headers = {**here.login(resident), "Idempotency-Key": "raise-with-photos"}

    def send():
        return here.client.post("/api/v1/issues", json=body, headers=headers)

    def state():
        issue = here.db.issues.find_one({"title": ISSUE["title"]})
        return {"issues": here.db.issues.count_documents({}),
                "attachments": issue and issue["attachments"],
                "photos_attached": sorted(str(u.get("issue_id")) for u in here.db.uploads.find()),
                "answers_kept": here.db.idempotency_keys.count_documents({"status": {"$ne": None}})}

    def once(before, after):
        issue = here.db.issues.find_one({"title": ISSUE["title"]})
        assert after["issues"] == before["issues"] + 1
        assert [str(a) for a in issue["attachments"]] == photos
        assert after["photos_attached"] == sorted([str(issue["_id"])] * 2)
        assert after["answers_kept"] == 1  # a third try with the key gets this answer back

    def before_retry():
        """The phone retries with the same key. While the database could not write, the key's claim
        could not be released either: it holds the key for a minute (409, Retry-After), then lapses."""
        claims = here.db.idempotency_keys.count_documents({"status": None})
        if claims:
            assert_error(send(), 409, "request_in_progress")
            here.db.idempotency_keys.update_many({"status": None}, {"$set": {
                "created_at": dt.datetime.now(UTC) - dt.timedelta(minutes=2)}})
        return claims

    return send, state, once, before_retry


def support(here):
    """POST /issues/<id>/supports: the support is upserted, then the issue's counter incremented."""
    issue = here.make_issue(here.people["neighbour"], title="邻居的议题")

    def send():
        return here.call("POST", f"/api/v1/issues/{issue['id']}/supports", here.people["resident"])

    def state():
        return {"supports": here.db.supports.count_documents({}),
                "supporters_count": here.db.issues.find_one()["supporters_count"]}

    def once(before, after):
        assert after == {"supports": 1, "supporters_count": 1}

    return send, state, once, None


def schedule(here):
    """POST /consultations with two accepted issues: the session is inserted, then each issue moves."""
    ids = []
    for n in (1, 2):
        issue = here.make_issue(here.people["resident"], title=f"待协商议题{n}")
        here.call("POST", f"/api/v1/issues/{issue['id']}/actions", here.people["member"], 200, json={"action": "accept"})
        ids.append(issue["id"])
    start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=2)
    body = {"studio_id": str(here.district["xingfu"].id), "topic": "路灯协商会", "location": "社区议事厅", "capacity": 30,
            "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "issue_ids": ids}

    def send():
        return here.call("POST", "/api/v1/consultations", here.people["member"], json=body)

    def state():
        issues = list(here.db.issues.find({}, sort=[("_id", 1)]))
        return {"consultations": here.db.consultations.count_documents({}),
                "statuses": [i["status"] for i in issues],
                "schedule_entries": [sum(e["action"] == "schedule" for e in i["timeline"]) for i in issues],
                # The calendar document itself is made before the transaction (consultations/service.py);
                # its sequence moves inside it.
                "calendar_seq": sum(c.get("seq", 0) for c in here.db.consultation_calendars.find()),
                "notifications": here.db.notifications.count_documents({})}

    def once(before, after):
        assert after["consultations"] == 1
        assert after["statuses"] == ["scheduled", "scheduled"] and after["schedule_entries"] == [1, 1]
        session = here.db.consultations.find_one()
        assert all(i["consultation_id"] == session["_id"] for i in here.db.issues.find())

    return send, state, once, None


def delete_account(here):
    """DELETE /me: the account is erased, then the issues anonymised, then the inbox deleted."""
    resident = here.people["resident"]
    issue = here.make_issue(resident, title="注销前提的议题")
    here.call("POST", f"/api/v1/issues/{issue['id']}/actions", here.people["member"], 200, json={"action": "accept"})

    def send():
        return here.call("DELETE", "/api/v1/me", resident)

    def state():
        user = here.db.users.find_one({"_id": resident.id})
        stored = here.db.issues.find_one()
        return {"user": {k: user.get(k) for k in ("phone", "openid", "display_name", "active", "token_version")},
                "reporter": (stored["reporter_name"], stored["contact_phone"], stored["anonymous"]),
                "inbox": here.db.notifications.count_documents({"user_id": resident.id})}

    def once(before, after):
        assert after["user"]["phone"] is None and after["user"]["openid"] is None and after["user"]["active"] is False
        assert after["reporter"] == ("已注销用户", None, True) and after["inbox"] == 0

    return send, state, once, None


CHANGES = {"raise_with_photos": raise_with_photos, "support": support, "schedule": schedule,
           "delete_account": delete_account}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_write_failing_half_way_leaves_nothing_half_done(here, change, kind):
    send, state, once, before_retry = CHANGES[change](here)
    failure, times = KINDS[kind]
    before = state()
    here.point.arm(failure, times=times)
    started = time.monotonic()
    response = send()
    elapsed = time.monotonic() - started
    here.point.disarm()
    after = state()
    if kind in SURVIVED:
        assert response.status_code < 300, response.get_json()
        once(before, after)
        return
    assert after == before, f"{change}: a failed change left part of itself behind"
    if kind == "disk_full":
        assert_error(response, 500, "internal_error")
    else:
        assert_error(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert elapsed < HANG_S, f"{change}: {elapsed:.1f}s before answering that the database cannot write"
    # The database is back: the same request (the same Idempotency-Key, where it has one) now applies once.
    if before_retry:
        before_retry()
    retried = send()
    assert retried.status_code < 300, retried.get_json()
    once(before, state())


def test_the_first_two_requests_of_a_window_racing_on_its_counter_both_count(failpoint, client):
    """The counter's upsert loses a race to insert the window's document (a duplicate key, as when two
    first requests arrive together): the request counts again instead of failing."""
    from yishitang import db as dbmod

    # 11001: a duplicate key the driver raises as DuplicateKeyError (11000 needs the key's details)
    failpoint.client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                                    "data": {"failCommands": ["update"], "errorCode": 11001}})
    refused = client.post("/api/v1/auth/password-login", json={"username": "nobody", "password": "wrong-pass-1"})
    assert_error(refused, 401, "invalid_credentials")
    assert [c["count"] for c in dbmod.database().rate_limits.find()] == [1]


# --- 3. WeChat slow or down -----------------------------------------------------------------------------------

LOGIN, SEND, CHECK = "/sns/jscode2session", "/cgi-bin/message/subscribe/send", "/wxa/msg_sec_check"


@pytest.fixture
def quick_wechat(app, settings, fake_wechat, monkeypatch):
    """A WeChat client that gives up after 0.3 s (the fake hangs 0.6 s on an injected timeout) and
    does not sleep between its retries, so that an outage costs the test seconds, not minutes."""
    from yishitang.wechat import WeChatClient

    monkeypatch.setattr(fake_wechat, "timeout_s", 0.6)
    monkeypatch.setitem(app.extensions, "wechat", WeChatClient(settings.replace(wechat_timeout_s=0.3), sleep=lambda s: None))
    return fake_wechat


@pytest.mark.parametrize("failure", ["timeout", -1])
def test_wechat_slow_or_down_at_login_is_a_clear_503_and_the_code_still_works(client, quick_wechat, db, failure):
    code = quick_wechat.issue_login_code("o-patient")
    quick_wechat.fail_next(LOGIN, failure, times=3)  # every attempt of the client's three
    started = time.monotonic()
    response = client.post("/api/v1/auth/wechat-login", json={"code": code})
    assert time.monotonic() - started < HANG_S
    assert len([c for c in quick_wechat.calls if c[0] == LOGIN]) == 3  # three attempts, then it gave up
    body = assert_error(response, 503, "wechat_unavailable")
    assert body["message"] == "微信服务暂时不可用，请稍后重试" and response.headers["Retry-After"] == "5"
    assert db.users.count_documents({}) == 0
    # WeChat answers again: the same code (never spent) signs the person in, once.
    assert client.post("/api/v1/auth/wechat-login", json={"code": code}).status_code == 200
    assert db.users.count_documents({"openid": "o-patient"}) == 1


def test_wechat_slow_twice_then_answering_is_absorbed_by_the_client(client, quick_wechat):
    code = quick_wechat.issue_login_code("o-lucky")
    quick_wechat.fail_next(LOGIN, "timeout", times=2)
    assert client.post("/api/v1/auth/wechat-login", json={"code": code}).status_code == 200


def test_content_check_down_keeps_the_issue_held_for_review(client, quick_wechat, login, people, district, db):
    quick_wechat.fail_next(CHECK, -1, times=3)
    response = client.post("/api/v1/issues", json={**ISSUE, "studio_id": str(district["xingfu"].id)},
                           headers=login(people["resident"]))
    assert response.status_code == 201, response.get_json()
    stored = db.issues.find_one()
    assert stored["moderation"] == "review" and stored["on_board"] is False  # kept, but not public until approved


def test_wechat_down_notifications_wait_in_the_outbox_and_none_is_lost(app, client, quick_wechat, login, people,
                                                                       district, db):
    from yishitang.notifications.jobs import RETRY_BASE, send_outbox

    resident, member = people["resident"], people["member"]
    for title in ("小区门口路灯不亮", "楼道扶手松动"):
        issue = client.post("/api/v1/issues", json={**ISSUE, "title": title, "studio_id": str(district["xingfu"].id)},
                            headers=login(resident)).get_json()
        assert client.post(f"/api/v1/issues/{issue['id']}/actions", json={"action": "accept"},
                           headers=login(member)).status_code == 200
    quick_wechat.grant(resident.openid, "tmpl-issue-status", count=10)
    queued = {n["_id"] for n in db.notifications.find({"user_id": resident.id})}
    assert len(queued) == 2

    def run(now):
        with app.app_context():
            return send_outbox(now)

    now = dt.datetime.now(UTC)
    quick_wechat.fail_next(SEND, "timeout", times=6)  # slow: both items, three attempts each
    assert run(now) == {"retry": 2, "skipped": 2}  # the members' "new issue" items: no WeChat account, in-app only
    quick_wechat.fail_next(SEND, -1, times=6)  # then down
    assert run(now + dt.timedelta(seconds=10)) == {}  # backing off: not due yet
    now += RETRY_BASE + dt.timedelta(seconds=1)
    assert run(now) == {"retry": 2}
    for item in db.notifications.find({"_id": {"$in": list(queued)}}):
        assert item["delivery"]["state"] == "pending" and item["delivery"]["attempts"] == 2
        assert "-1" in item["delivery"]["last_error"]
    # The inbox has them all along: the in-app item does not wait for WeChat.
    inbox = client.get("/api/v1/notifications", headers=login(resident))
    assert inbox.headers["X-Unread-Count"] == "2"

    # WeChat is back: each is sent, exactly once, at the next due run.
    now += 2 * RETRY_BASE + dt.timedelta(seconds=1)
    assert run(now) == {"sent": 2}
    assert run(now + dt.timedelta(hours=1)) == {}
    sent = [m for m in quick_wechat.sent if m["touser"] == resident.openid]
    assert len(sent) == 2 and all(db.notifications.find_one({"_id": i})["delivery"]["state"] == "sent" for i in queued)
