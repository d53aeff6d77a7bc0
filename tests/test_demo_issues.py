"""The demo's year of issues: added once to an empty database, by people of the district, counted by
the dashboard, and a walkthrough for the accounts the README names; through `serve` and `seed-demo`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from zoneinfo import ZoneInfo

import pymongo
import pytest
import requests

from yishitang.devtools.demo import COORDINATOR_PASSWORD, DISTRICT_CODE, MEMBER_PASSWORD, RESIDENT_COUNT, seed_demo
from yishitang.devtools.demo_issues import NEIGHBOURS_PER_STUDIO, seed_demo_issues
from yishitang.devtools.embedded import free_port

COUNT = 300  # the tests' year: smaller than the demo's, the same code
ADDED = COUNT + COUNT // 60 + RESIDENT_COUNT * 4 + 4  # duplicates, the residents' and member001's stories
SHANGHAI = ZoneInfo("Asia/Shanghai")
CLI = [sys.executable, "-m", "yishitang.cli"]


@pytest.fixture
def demo(app, db):
    with app.app_context():
        seed_demo(progress=False)
        return seed_demo_issues(COUNT)


def sign_in(client, username, password):
    response = client.post("/api/v1/auth/password-login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_a_year_of_issues_is_added_once(demo, app, db):
    assert demo == {"issues": ADDED, "neighbours": 191 * NEIGHBOURS_PER_STUDIO}
    issues = list(db.issues.find())
    assert len(issues) == ADDED
    now = dt.datetime.now(dt.timezone.utc)
    created = [issue["created_at"].replace(tzinfo=dt.timezone.utc) for issue in issues]
    assert now - dt.timedelta(days=366) < min(created) and max(created) <= now
    assert {issue["status"] for issue in issues} >= {"submitted", "accepted", "in_progress", "resolved", "closed",
                                                     "rejected", "withdrawn"}
    assert sum(1 for issue in issues if issue["duplicate_of"]) > 0
    # Numbers run in order of creation within each year, and the counters stand at the last one.
    numbers: dict[int, list[int]] = {}
    for issue in sorted(issues, key=lambda doc: doc["created_at"]):
        year = issue["created_at"].replace(tzinfo=dt.timezone.utc).astimezone(SHANGHAI).year
        match = re.fullmatch(rf"DW-{year}-(\d{{6}})", issue["number"])
        assert match, issue["number"]
        numbers.setdefault(year, []).append(int(match[1]))
    for year, sequence in numbers.items():
        assert sequence == list(range(1, len(sequence) + 1))
        assert db.counters.find_one({"_id": f"issue-{year}"})["seq"] == len(sequence)

    with app.app_context():
        assert seed_demo_issues(COUNT) == {"issues": 0, "neighbours": 0}
        db.issues.delete_many({"_id": {"$ne": issues[0]["_id"]}})  # any issue at all: the demo is not seeded
        assert seed_demo_issues(COUNT) == {"issues": 0, "neighbours": 0}
    assert db.issues.count_documents({}) == 1


def test_issues_are_raised_and_handled_by_people_of_the_district(demo, db):
    users = {user["_id"]: user for user in db.users.find()}
    studios = {studio["_id"]: studio for studio in db.studios.find()}
    roles = Counter()
    for issue in db.issues.find():
        reporter = users[issue["reporter_id"]]
        studio = studios[issue["studio_id"]]
        assert reporter["roles"] == ["resident"] and reporter["home_region_code"] == studio["region_code"]
        assert issue["reporter_name"] == reporter["display_name"] and issue["contact_phone"] == reporter["phone"]
        assert issue["search_terms"] and issue["description"].startswith(studio["name"].removesuffix("委员工作室"))
        level = "grassroots"
        for entry in issue["timeline"]:
            actor = entry["actor"]
            roles[actor["role"]] += 1
            if actor["role"] == "system":
                assert entry["action"] == "close" and "id" not in actor
                continue
            person = users[actor["id"]]
            assert actor["display_name"] == person["display_name"] and actor["role"] in person["roles"]
            if entry["action"] in ("submit", "withdraw", "feedback"):
                assert person["_id"] == issue["reporter_id"]
            elif actor["role"] == "member":  # a member of the studio, while the issue is at the studio
                assert issue["studio_id"] in person["studio_ids"] and level == "grassroots"
            else:  # a coordinator whose scope covers the studio
                assert person["scope_region_code"] in studio["region_path"]
            level = entry["level"]
    assert roles["resident"] and roles["member"] and roles["coordinator"] and roles["system"]


def test_the_dashboard_counts_them_before_and_after_the_rollup_job(app, db, client):
    from yishitang.db import utcnow
    from yishitang.stats import jobs

    with app.app_context():
        seed_demo(progress=False)
        # A scheduler that already ran over the empty district must not hide the back-dated issues.
        assert jobs.refresh_rollups(utcnow())["mode"] == "rebuild"
        seed_demo_issues(COUNT)
    assert db.stats_state.count_documents({}) == 0
    today = dt.datetime.now(SHANGHAI).date()
    year = {"from": (today - dt.timedelta(days=366)).isoformat(), "to": today.isoformat()}

    def overview(username, region):
        response = client.get("/api/v1/stats/overview", query_string={"region": region, **year},
                              headers=sign_in(client, username, COORDINATOR_PASSWORD))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    live = overview("coord-district", DISTRICT_CODE)
    assert live["totals"]["received"] == db.issues.count_documents({}) == ADDED
    assert live["rollup"]["as_of"] is None  # counted live until the job rebuilds the cells
    assert 0 < live["totals"]["response_rate"] < 1 and 0 < live["totals"]["satisfaction_rate"] <= 1
    township = overview("coord01", f"{DISTRICT_CODE}001")
    assert township["totals"]["received"] == db.issues.count_documents({"township_code": f"{DISTRICT_CODE}001"}) > 0

    with app.app_context():
        assert jobs.refresh_rollups(utcnow())["mode"] == "rebuild"
    stored = overview("coord-district", DISTRICT_CODE)
    assert stored["rollup"]["as_of"] is not None
    assert stored["totals"] == live["totals"] and stored["rows"] == live["rows"]


def test_the_readme_accounts_find_their_own_issues(demo, client, db, fake_wechat, monkeypatch):
    # member001's queue: new issues to accept, and accepting one works on the seeded document.
    member = sign_in(client, "member001", MEMBER_PASSWORD)
    queue = client.get("/api/v1/issues", query_string={"page_size": 100}, headers=member)
    assert queue.status_code == 200
    waiting = [issue for issue in queue.get_json() if issue["status"] == "submitted"]
    assert len(waiting) >= 2
    accepted = client.post(f"/api/v1/issues/{waiting[0]['id']}/actions", json={"action": "accept", "note": "已受理"},
                           headers=member)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["timeline"][-1]["actor"]["display_name"] == db.users.find_one(
        {"username": "member001"})["display_name"]

    monkeypatch.setattr(fake_wechat, "demo", True)  # as `yishitang serve` runs the fake in demo mode
    for n in range(1, RESIDENT_COUNT + 1):
        login = client.post("/api/v1/auth/wechat-login", json={"code": f"demo:demo-resident-{n}:walkthrough"})
        assert login.status_code == 200, login.get_json()
        resident = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
        mine = client.get("/api/v1/issues", query_string={"mine": 1}, headers=resident).get_json()
        statuses = Counter(issue["status"] for issue in mine)
        assert statuses["submitted"] == statuses["resolved"] == 1
        assert statuses["accepted"] + statuses["in_progress"] == 1 and statuses["closed"] == 1
        resolved = next(issue for issue in mine if issue["status"] == "resolved")
        rated = client.post(f"/api/v1/issues/{resolved['id']}/feedback", json={"rating": "satisfied"}, headers=resident)
        assert rated.status_code == 200 and rated.get_json()["status"] == "closed", rated.get_json()

    # A new issue (by the last resident, at their studio) continues this year's numbers.
    home = db.users.find_one({"openid": f"demo-resident-{RESIDENT_COUNT}"})["home_region_code"]
    studio = db.studios.find_one({"region_code": home})
    raised = client.post("/api/v1/issues", headers=resident, json={
        "title": "小区门口路灯不亮", "category": "community_facilities", "studio_id": str(studio["_id"]),
        "description": "小区东门的路灯坏了两个星期，晚上出入很不安全，希望尽快维修。"})
    assert raised.status_code == 201, raised.get_json()
    year = dt.datetime.now(SHANGHAI).year
    assert raised.get_json()["number"] == f"DW-{year}-{db.counters.find_one({'_id': f'issue-{year}'})['seq']:06d}"
    assert db.issues.count_documents({"number": raised.get_json()["number"]}) == 1


def run_cli(*args, env):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env={**os.environ, **env})


def test_seed_demo_adds_issues_only_when_asked_and_once(mongo_uri):
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": "yishitang_cli_demo_issues", "YISHITANG_TESTING": "1"}
    try:
        plain = run_cli("seed-demo", env=env)
        assert plain.returncode == 0, plain.stderr
        assert "issues" not in json.loads(plain.stdout)
        database = pymongo.MongoClient(mongo_uri)["yishitang_cli_demo_issues"]
        assert database.issues.count_documents({}) == 0

        first = run_cli("seed-demo", "--issues", str(COUNT), env=env)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout).items() >= {"created": 0, "issues": ADDED, "created_issues": ADDED}.items()
        again = run_cli("seed-demo", "--issues", str(COUNT), env=env)
        assert json.loads(again.stdout).items() >= {"created": 0, "issues": ADDED, "created_issues": 0}.items()
        assert database.issues.count_documents({}) == ADDED
    finally:
        pymongo.MongoClient(mongo_uri).drop_database("yishitang_cli_demo_issues")


def serve(tmp_path, port):
    env = {**os.environ, "YISHITANG_DEMO": "1", "YISHITANG_DB_PATH": str(tmp_path / "db"), "MONGODB_URI": "",
           "JWT_SECRET": "", "YISHITANG_TESTING": ""}
    env.pop("WECHAT_API_BASE", None)
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--demo-issues", str(COUNT)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"serve did not answer: {process.communicate()[0]}")


def stop(process) -> str:
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=60)[0]


def test_demo_serve_seeds_a_living_district_on_the_first_start_only(tmp_path):
    """`make run` twice: the first start adds the year of issues, the restart adds none."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"

    def look():
        token = requests.post(f"{api}/auth/password-login", timeout=10,
                              json={"username": "coord-district", "password": COORDINATOR_PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        listed = requests.get(f"{api}/issues", params={"page_size": 1}, headers=headers, timeout=10)
        figures = requests.get(f"{api}/stats/overview", params={"region": DISTRICT_CODE}, headers=headers, timeout=30)
        assert figures.status_code == 200, figures.text
        token = requests.post(f"{api}/auth/password-login", timeout=10,
                              json={"username": "member001", "password": MEMBER_PASSWORD}).json()
        queue = requests.get(f"{api}/issues", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
        return json.loads(listed.headers["X-Pagination"])["total"], figures.json()["totals"]["received"], queue.json()

    process = serve(tmp_path, port)
    try:
        total, received, queue = look()
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert total == ADDED and received > 0 and any(issue["status"] == "submitted" for issue in queue)
    assert f"演示议题 (demo issues): {ADDED} " in output

    process = serve(tmp_path, port)
    try:
        assert look()[0] == ADDED
    finally:
        output = stop(process)
    assert "演示议题" not in output
