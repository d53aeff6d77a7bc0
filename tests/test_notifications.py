"""Notifications: the inbox, the WeChat outbox under every failure, deadlines, auto-close, the scheduler."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time

import pytest

from tests.test_app import assert_error
from tests.factories import SHED

NOTES = "/api/v1/notifications"
SEND = "/cgi-bin/message/subscribe/send"
UTC = dt.timezone.utc


@pytest.fixture
def issue_at(app, people, make_issue):
    """An issue raised by the resident (make_issue) and taken through `actions` by the member, via the service."""
    from yishitang.issues import access, service

    def make(*actions, by="member", **overrides):
        raised = make_issue(people["resident"], **overrides)
        with app.test_request_context():
            issue = access.load(raised["id"])
            for action in actions:
                issue = service.transition(issue, action, people[by], note="办理说明")
        return issue

    return make


@pytest.fixture
def run_job(app):
    def run(job, now):
        with app.app_context():
            return job(now)

    return run


def outbox(db, **query):
    return list(db.notifications.find(query).sort("created_at", 1))


# --- the inbox ------------------------------------------------------------------------------------

def test_reporter_hears_of_acceptance_and_members_of_new_issues(client, login, people, issue_at, db):
    issue_at("accept")
    members = outbox(db, user_id=people["member"].id)
    assert [n["kind"] for n in members] == ["issue_new"]
    inbox = client.get(NOTES, query_string={"unread": 1}, headers=login(people["resident"]))
    assert inbox.status_code == 200 and inbox.headers["X-Unread-Count"] == "1"
    item = inbox.get_json()[0]
    assert item["kind"] == "issue_accepted" and item["title"] == "您的议题已受理" and item["read_at"] is None
    read = client.post(f"{NOTES}/{item['id']}/read", headers=login(people["resident"]))
    assert read.status_code == 200 and read.get_json()["read_at"]
    again = client.get(NOTES, query_string={"unread": 1}, headers=login(people["resident"]))
    assert again.get_json() == [] and again.headers["X-Unread-Count"] == "0"
    assert len(client.get(NOTES, headers=login(people["resident"])).get_json()) == 1


def test_nobody_reads_another_persons_inbox(client, login, people, issue_at, db):
    issue_at("accept")
    item = outbox(db, user_id=people["resident"].id)[0]
    assert_error(client.post(f"{NOTES}/{item['_id']}/read", headers=login(people["neighbour"])), 404, "not_found")
    assert_error(client.post(f"{NOTES}/{item['_id']}/read", headers=login(people["admin"])), 404, "not_found")
    assert client.get(NOTES, headers=login(people["neighbour"])).get_json() == []
    assert_error(client.get(NOTES), 401, "missing_token")
    assert_error(client.post(f"{NOTES}/{item['_id']}/read"), 401, "missing_token")


def test_status_changes_reach_the_reporter(people, issue_at, db):
    issue_at("accept", "escalate", "resolve", by="coordinator")
    kinds = [n["kind"] for n in outbox(db, user_id=people["resident"].id)]
    assert kinds == ["issue_accepted", "issue_escalated", "issue_resolved"]
    rate = outbox(db, kind="issue_resolved")[0]
    assert rate["template"] == "rate" and rate["data"]["phrase3"] == "已办结"
    # the township's coordinator hears of the escalation
    assert [n["kind"] for n in outbox(db, user_id=people["coordinator"].id)] == ["issue_escalated_in"]


# --- the sender, against the fake WeChat ------------------------------------------------------------

def accepted_notice(issue_at, db, fake_wechat, people, grant=True, title=SHED["title"]):
    issue_at("accept", title=title)
    db.notifications.delete_many({"kind": {"$ne": "issue_accepted"}})
    if grant:
        fake_wechat.grant(people["resident"].openid, "tmpl-issue-status")
    return outbox(db)[0]


def test_sent_once_with_values_fitted_to_wechat_limits(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    long_title = "幸福小区三号楼前电动车充电车棚建设"
    accepted_notice(issue_at, db, fake_wechat, people, title=long_title)
    now = dt.datetime.now(UTC)
    assert run_job(send_outbox, now) == {"sent": 1}
    assert run_job(send_outbox, now + dt.timedelta(minutes=10)) == {}
    assert len(fake_wechat.sent) == 1
    sent = fake_wechat.sent[0]
    assert sent["touser"] == people["resident"].openid and sent["template_id"] == "tmpl-issue-status"
    assert sent["data"]["thing2"] == long_title  # 17 characters fit the 20 of `thing`
    assert len(sent["data"]["thing4"]) <= 20 and sent["data"]["phrase3"] == "已受理"
    assert outbox(db)[0]["delivery"]["state"] == "sent"


def test_no_grant_is_recorded_and_not_retried(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people, grant=False)
    now = dt.datetime.now(UTC)
    assert run_job(send_outbox, now) == {"no_grant": 1}
    assert run_job(send_outbox, now + dt.timedelta(hours=1)) == {}
    item = outbox(db)[0]
    assert item["delivery"]["state"] == "no_grant" and "43101" in item["delivery"]["last_error"]
    assert item.get("read_at") is None  # the in-app item is still there to read


def test_busy_answers_are_retried_and_sent_once(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    fake_wechat.fail_next(SEND, -1, times=2)  # the client's own retries get through
    assert run_job(send_outbox, dt.datetime.now(UTC)) == {"sent": 1}
    assert len(fake_wechat.sent) == 1


def test_token_invalidated_is_refreshed_and_sent(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    run_job(lambda now: __import__("flask").current_app.extensions["wechat"].access_token(), None)
    fake_wechat.invalidate_tokens()
    assert run_job(send_outbox, dt.datetime.now(UTC)) == {"sent": 1}
    assert len(fake_wechat.sent) == 1


def test_a_timeout_is_retried(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    fake_wechat.fail_next(SEND, "timeout", times=1)
    assert run_job(send_outbox, dt.datetime.now(UTC)) == {"sent": 1}
    assert len(fake_wechat.sent) == 1


def test_minute_quota_backs_off_then_fails_after_bounded_attempts(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import MAX_ATTEMPTS, send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    fake_wechat.fail_next(SEND, 45011, times=1000)
    now = dt.datetime.now(UTC)
    outcomes = []
    for _ in range(MAX_ATTEMPTS):
        outcomes.append(run_job(send_outbox, now))
        assert run_job(send_outbox, now) == {}  # backing off: not due again yet
        now += dt.timedelta(hours=1)
    assert outcomes == [{"retry": 1}] * (MAX_ATTEMPTS - 1) + [{"failed": 1}]
    item = outbox(db)[0]
    assert item["delivery"]["state"] == "failed" and item["delivery"]["attempts"] == MAX_ATTEMPTS
    assert "45011" in item["delivery"]["last_error"] and fake_wechat.sent == []
    # WeChat is back: the failure stays recorded, nothing is sent behind the operator's back
    fake_wechat.reset()
    assert run_job(send_outbox, now) == {}


def test_bad_template_data_fails_without_retry(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    fake_wechat.fail_next(SEND, 47003)
    assert run_job(send_outbox, dt.datetime.now(UTC)) == {"failed": 1}
    assert "47003" in outbox(db)[0]["delivery"]["last_error"]


def test_a_sender_that_died_mid_send_is_taken_over(run_job, issue_at, db, fake_wechat, people):
    from yishitang.notifications.jobs import send_outbox

    accepted_notice(issue_at, db, fake_wechat, people)
    now = dt.datetime.now(UTC)
    db.notifications.update_many({}, {"$set": {"delivery.state": "sending", "delivery.lease_until": now + dt.timedelta(minutes=2)}})
    assert run_job(send_outbox, now) == {}  # the lease still runs
    assert run_job(send_outbox, now + dt.timedelta(minutes=3)) == {"sent": 1}
    assert len(fake_wechat.sent) == 1


def test_without_a_template_the_item_stays_in_app_only(app, run_job, people, db):
    from yishitang.notifications.jobs import send_outbox
    from yishitang.notifications.service import notify

    with app.app_context():
        notify([people["resident"].id], "hello", title="你好")
    assert run_job(send_outbox, dt.datetime.now(UTC)) == {}
    assert outbox(db)[0]["delivery"]["state"] == "skipped"


# --- deadlines and auto-close, with a fixed clock -----------------------------------------------------

def test_unanswered_issue_warns_its_staff_once(run_job, issue_at, people, db):
    from yishitang.issues.jobs import check_deadlines

    issue = issue_at()
    late = issue.due_at + dt.timedelta(hours=1)
    assert run_job(check_deadlines, issue.due_at - dt.timedelta(minutes=1)) == {"warned": 0, "escalated": 0}
    assert run_job(check_deadlines, late) == {"warned": 1, "escalated": 0}
    assert run_job(check_deadlines, late + dt.timedelta(hours=1)) == {"warned": 0, "escalated": 0}
    warnings = outbox(db, kind="issue_overdue")
    assert [n["user_id"] for n in warnings] == [people["member"].id]
    assert db.issues.find_one()["status"] == "submitted"


def test_unresolved_past_the_handling_deadline_climbs_one_tier(run_job, issue_at, people, db):
    from yishitang.issues.jobs import check_deadlines

    issue = issue_at("accept")
    late = issue.due_at + dt.timedelta(minutes=5)
    assert run_job(check_deadlines, late) == {"warned": 0, "escalated": 1}
    assert run_job(check_deadlines, late) == {"warned": 0, "escalated": 0}
    stored = db.issues.find_one()
    assert stored["level"] == "township" and stored["status"] == "accepted"
    entry = stored["timeline"][-1]
    assert entry["action"] == "escalate" and entry["actor"]["role"] == "system" and "自动上报" in entry["note"]
    assert stored["due_at"].replace(tzinfo=UTC) == late + dt.timedelta(days=20)
    # at the district it can climb no further: the district coordinators are warned, once
    run_job(check_deadlines, late + dt.timedelta(days=21))
    at_district = db.issues.find_one()
    assert at_district["level"] == "district"
    final = at_district["due_at"].replace(tzinfo=UTC) + dt.timedelta(minutes=1)
    assert run_job(check_deadlines, final) == {"warned": 1, "escalated": 0}
    assert run_job(check_deadlines, final) == {"warned": 0, "escalated": 0}
    assert [n["user_id"] for n in outbox(db, kind="issue_overdue")] == [people["district_coordinator"].id]


def test_deadlines_per_category(app, issue_at, settings):
    app.config["SETTINGS"] = settings.replace(deadline_overrides={"safety": {"grassroots": 5, "response": 1}})
    try:
        issue = issue_at("accept", category="safety")
        assert issue.due_at - issue.accepted_at == dt.timedelta(days=5)
        fresh = issue_at(category="safety")
        assert fresh.due_at - fresh.created_at == dt.timedelta(days=1)
    finally:
        app.config["SETTINGS"] = settings


def test_deadline_overrides_are_parsed_strictly():
    from yishitang.config import ConfigError, Settings

    settings = Settings.from_env(env={"YISHITANG_TESTING": "1", "DEADLINE_OVERRIDES": "safety:grassroots=5, traffic:response=2"})
    assert settings.deadline_days("grassroots", "safety") == 5 and settings.deadline_days("response", "traffic") == 2
    assert settings.deadline_days("township", "safety") == 20
    with pytest.raises(ConfigError, match="DEADLINE_OVERRIDES"):
        Settings.from_env(env={"YISHITANG_TESTING": "1", "DEADLINE_OVERRIDES": "safety:forever=5"})


def test_unrated_resolved_issues_close_after_the_window(run_job, issue_at, db):
    from yishitang.issues.jobs import auto_close

    issue = issue_at("accept", "resolve")
    resolved_at = issue.resolution.resolved_at
    assert run_job(auto_close, resolved_at + dt.timedelta(days=6)) == 0
    assert run_job(auto_close, resolved_at + dt.timedelta(days=7, minutes=1)) == 1
    assert run_job(auto_close, resolved_at + dt.timedelta(days=8)) == 0
    stored = db.issues.find_one()
    assert stored["status"] == "closed" and stored.get("feedback") is None
    assert stored["timeline"][-1]["actor"]["role"] == "system"


# --- the scheduler ---------------------------------------------------------------------------------

def test_a_slot_runs_once_whoever_reaches_it(app, db):
    from yishitang.scheduler import HOLDER, Job, run_once

    calls = []
    job = Job("probe", 60, lambda now: calls.append(now) or len(calls))
    now = dt.datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
    assert run_once(app, job, now) is True
    assert run_once(app, job, now + dt.timedelta(seconds=20)) is False  # same minute: taken
    assert run_once(app, job, now + dt.timedelta(seconds=40)) is True  # the next minute
    assert len(calls) == 2
    runs = list(db.job_runs.find().sort("slot", 1))
    assert [r["result"] for r in runs] == ["1", "2"] and len(runs[0]["skipped_by"]) == 1
    # the record operators read: who ran it, when (its 7-day expiry counts from started_at), who came second
    first = runs[0]
    assert first["holder"] == HOLDER and first["skipped_by"] == [HOLDER] and "error" not in first
    assert first["started_at"].replace(tzinfo=UTC) == now and first["finished_at"] is not None


def test_a_failing_job_is_recorded_and_the_next_slot_runs(app, db, caplog):
    from yishitang.scheduler import Job, run_once

    job = Job("broken", 60, lambda now: 1 / 0)
    assert run_once(app, job, dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) is True
    assert "ZeroDivisionError" in db.job_runs.find_one()["error"]
    assert db.job_runs.find_one()["finished_at"] is not None
    talkative = Job("talkative", 60, lambda now: (_ for _ in ()).throw(ValueError("x" * 600)))
    assert run_once(app, talkative, dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) is True
    assert "talkative failed" in [r.getMessage() for r in caplog.records if r.name == "yishitang.scheduler"]
    assert len(db.job_runs.find_one({"job": "talkative"})["error"]) == 500  # bounded, whatever the exception says
    assert run_once(app, Job("wordy", 60, lambda now: "y" * 600), dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    assert len(db.job_runs.find_one({"job": "wordy"})["result"]) == 500


def test_the_console_tells_what_a_job_did_and_nothing_when_it_did_nothing(app, issue_at, db, fake_wechat, people,
                                                                         caplog):
    from yishitang.scheduler import jobs, run_once

    by_name = {job.name: job for job in jobs()}
    accepted_notice(issue_at, db, fake_wechat, people)
    caplog.set_level(logging.INFO, logger="yishitang.scheduler")
    now = dt.datetime.now(UTC)
    assert run_once(app, by_name["send_outbox"], now) is True
    assert run_once(app, by_name["issue_deadlines"], now) is True  # nothing is late
    assert run_once(app, by_name["send_outbox"], now + dt.timedelta(minutes=10)) is True  # nothing left to send
    assert [r.getMessage() for r in caplog.records if r.name == "yishitang.scheduler"] == ["send_outbox: 1 sent"]


def test_two_scheduler_processes_run_each_slot_once(settings, issue_at, people, db, fake_wechat):
    """Two real scheduler processes share one database and reach the same slots: nothing happens twice.

    Both run every job over the same ten minutes (tests/scheduler_slots.py), so every slot is
    reached by both whatever their interleaving; the probe job counts its runs and has nothing
    but the slot claim to stop it counting twice."""
    issue = issue_at("accept")
    now = dt.datetime.now(UTC)
    db.issues.update_one({"_id": issue.id}, {"$set": {"due_at": now - dt.timedelta(hours=1)}})
    fake_wechat.grant(people["resident"].openid, "tmpl-issue-status", count=5)
    env = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
           "YISHITANG_TESTING": "1", "WECHAT_API_BASE": settings.wechat_api_base, "WECHAT_APPID": settings.wechat_appid,
           "WECHAT_SECRET": settings.wechat_secret, "WECHAT_TEMPLATE_ISSUE_STATUS": "tmpl-issue-status", "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "tests.scheduler_slots", now.isoformat(), "10"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]  # a bound on a hang, not a measurement
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert [r["runs"] for r in db.probe_runs.find()] == [1] * 10
    probes = list(db.job_runs.find({"job": "probe"}))
    assert len(probes) == 10 and all(len(r.get("skipped_by", [])) == 1 for r in probes)  # both came, one ran
    assert len({r["holder"] for r in db.job_runs.find()} | {h for r in db.job_runs.find() for h in r.get("skipped_by", [])}) == 2
    stored = db.issues.find_one({"_id": issue.id})
    escalations = [e for e in stored["timeline"] if e["action"] == "escalate"]
    assert len(escalations) == 1 and stored["level"] == "township"
    # the acceptance and the escalation reached the resident's phone once each
    assert [m["data"]["phrase3"] for m in fake_wechat.sent] == ["已受理", "已上报"]
    assert db.notifications.count_documents({"user_id": people["resident"].id, "delivery.state": "sent"}) == 2


def test_the_scheduler_command_runs_every_job(settings, db):
    """`yishitang scheduler` wires each job into APScheduler: each runs its first slot at start."""
    from yishitang.scheduler import jobs

    env = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
           "YISHITANG_TESTING": "1", "WECHAT_API_BASE": settings.wechat_api_base, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "yishitang.cli", "scheduler"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60  # a bound on a hang, not a measurement
        while set(db.job_runs.distinct("job")) != {job.name for job in jobs()}:
            assert process.poll() is None and time.monotonic() < deadline, list(db.job_runs.find())
            time.sleep(0.1)  # polling another process
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode in (0, -15), output
