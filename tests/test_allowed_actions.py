"""`allowed_actions` and the server agree: for every role and every state of an issue, each action
listed succeeds and each action not listed is refused (the buttons a client shows never lie)."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from yishitang.issues import workflow

ISSUES = "/api/v1/issues"
ROLES = ("resident", "neighbour", "member", "other_member", "coordinator", "other_coordinator",
         "district_coordinator", "admin")
CANDIDATES = (*workflow.CLIENT_ACTIONS, "feedback", "support")
HELD = "待审核"  # the fake WeChat holds text with this for review
# Each scenario: the staff actions that bring a new issue there, then any direct adjustment of time.
SCENARIOS = {
    "submitted": [],
    "held_for_review": [],
    "accepted": [("member", "accept")],
    "in_progress": [("member", "accept"), ("member", "start")],
    "township": [("member", "escalate")],
    "district_supervised": [("member", "escalate"), ("coordinator", "escalate"), ("district_coordinator", "supervise")],
    "resolved": [("member", "accept"), ("member", "resolve")],
    "resolved_long_ago": [("member", "accept"), ("member", "resolve")],
    "closed": [("member", "accept"), ("member", "resolve"), ("resident", "feedback")],
    "rejected": [("member", "reject")],
    "withdrawn": [("resident", "withdraw")],
}


def body_for(action, original_id):
    if action == "feedback":
        return {"rating": "satisfied", "comment": "谢谢"}
    return {"action": action, "note": "按规定办理", **({"duplicate_of": original_id} if action == "duplicate" else {})}


def attempt(client, headers, issue_id, action, original_id):
    if action == "feedback":
        return client.post(f"{ISSUES}/{issue_id}/feedback", json=body_for(action, None), headers=headers)
    if action == "support":
        return client.post(f"{ISSUES}/{issue_id}/supports", headers=headers)
    return client.post(f"{ISSUES}/{issue_id}/actions", json=body_for(action, original_id), headers=headers)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_listed_action_succeeds_and_every_other_is_refused(scenario, client, db, people, login, make_issue,
                                                                  fake_wechat):
    fake_wechat.set_text_verdict(HELD, "review", 20001)
    tokens = {role: login(people[role]) for role in ROLES}
    original = make_issue(people["neighbour"], title="同一个问题的原议题")
    extra = {"description": f"{HELD}：楼道灯坏了，晚上看不见台阶。"} if scenario == "held_for_review" else {}
    issue = make_issue(people["resident"], **extra)
    for role, action in SCENARIOS[scenario]:
        response = attempt(client, tokens[role], issue["id"], action, original["id"])
        assert response.status_code == 200, (role, action, response.get_json())
    if scenario == "resolved_long_ago":
        db.issues.update_one({"_id": ObjectId(issue["id"])}, {"$set": {
            "resolution.resolved_at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)}})
    saved = db.issues.find_one({"_id": ObjectId(issue["id"])})

    problems, listed_somewhere = [], set()
    for role in ROLES:
        shown = client.get(f"{ISSUES}/{issue['id']}", headers=tokens[role])
        allowed = set(shown.get_json()["allowed_actions"]) if shown.status_code == 200 else set()
        assert allowed <= set(CANDIDATES), allowed
        listed_somewhere |= allowed
        for action in CANDIDATES:
            response = attempt(client, tokens[role], issue["id"], action, original["id"])
            succeeded = response.status_code == 200
            if succeeded != (action in allowed):
                problems.append(f"{role:>20} {action:<10} listed={action in allowed} got {response.status_code} "
                                f"{(response.get_json() or {}).get('error')}")
            db.issues.replace_one({"_id": saved["_id"]}, saved)  # the next attempt sees the same issue
            db.supports.delete_many({"issue_id": saved["_id"]})
    assert not problems, f"{scenario} ({saved['status']}):\n" + "\n".join(problems)
    assert listed_somewhere or scenario in ("rejected", "withdrawn", "closed")


def test_a_list_carries_allowed_actions_and_supported_by_me(client, people, login, make_issue):
    issue = make_issue(people["resident"])
    board = {"board": 1, "studio": issue["studio_id"]}
    neighbour = login(people["neighbour"])
    [seen] = client.get(ISSUES, headers=neighbour, query_string=board).get_json()
    assert seen["supported_by_me"] is False and "support" in seen["allowed_actions"]
    assert client.post(f"{ISSUES}/{issue['id']}/supports", headers=neighbour).status_code == 200
    [seen] = client.get(ISSUES, headers=neighbour, query_string=board).get_json()
    assert seen["supported_by_me"] is True
    assert client.get(f"{ISSUES}/{issue['id']}", headers=neighbour).get_json()["supported_by_me"] is True
    [own] = client.get(ISSUES, headers=login(people["resident"])).get_json()
    assert own["supported_by_me"] is False and set(own["allowed_actions"]) == {"withdraw", "comment"}
    [queued] = client.get(ISSUES, headers=login(people["member"])).get_json()
    assert {"accept", "reject", "escalate", "comment", "duplicate"} <= set(queued["allowed_actions"])


# --- consultations: the state table and its clock ------------------------------------------------------

SESSION_ROLES = ("resident", "neighbour", "member", "other_member", "coordinator", "other_coordinator", "admin")
# scenario: (status, starts this long from now, minutes recorded this long ago)
SESSION_SCENARIOS = {
    "planned_tomorrow": ("planned", dt.timedelta(days=1), None),
    "planned_started": ("planned", dt.timedelta(minutes=-5), None),
    "held": ("held", dt.timedelta(minutes=-30), None),
    "minuted_today": ("minuted", dt.timedelta(hours=-3), dt.timedelta(hours=1)),
    "minuted_long_ago": ("minuted", dt.timedelta(days=-9), dt.timedelta(days=8)),
    "cancelled": ("cancelled", dt.timedelta(days=1), None),
}


def session_attempt(client, app, people, headers, session_id, action):
    from yishitang.consultations import checkin

    url = f"/api/v1/consultations/{session_id}"
    if action == "edit":
        return client.patch(url, json={"description": "补充说明"}, headers=headers)
    if action == "cancel":
        return client.post(f"{url}/cancel", json={"reason": "改期"}, headers=headers)
    if action in ("minute", "correct"):
        return client.put(f"{url}/minutes", json={"summary": "讨论了充电车棚选址。", "outcomes": []}, headers=headers)
    with app.test_request_context():
        try:
            code = checkin.checkin_code(session_id, people["admin"])["code"]
        except Exception:  # noqa: BLE001  (no code outside the sign-in time: any code will do to be refused)
            code = "no-code"
    return client.post(f"{url}/checkins", json={"code": code}, headers=headers)


@pytest.mark.parametrize("scenario", sorted(SESSION_SCENARIOS))
def test_every_listed_session_action_succeeds_and_every_other_is_refused(scenario, app, client, db, people, login,
                                                                          district):
    from yishitang.consultations import workflow as session_workflow

    status, starts_in, minuted_ago = SESSION_SCENARIOS[scenario]
    start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0) + dt.timedelta(days=2)
    created = client.post("/api/v1/consultations", headers=login(people["member"]), json={
        "studio_id": str(district["xingfu"].id), "topic": "充电车棚选址", "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "location": "社区二楼", "capacity": 20})
    assert created.status_code == 201, created.get_json()
    now = dt.datetime.now(dt.timezone.utc)
    change = {"status": status, "starts_at": now + starts_in, "ends_at": now + starts_in + dt.timedelta(hours=2)}
    if minuted_ago is not None:
        change.update(minuted_at=now - minuted_ago, minutes={
            "summary": "已讨论", "attendees_count": 3, "outcomes": [], "recorded_by": people["member"].id,
            "recorded_at": now - minuted_ago})
    session_id = ObjectId(created.get_json()["id"])
    db.consultations.update_one({"_id": session_id}, {"$set": change})
    saved = db.consultations.find_one({"_id": session_id})

    problems, listed_somewhere = [], set()
    for role in SESSION_ROLES:
        headers = login(people[role])
        shown = client.get(f"/api/v1/consultations/{session_id}", headers=headers)
        allowed = set(shown.get_json()["allowed_actions"]) if shown.status_code == 200 else set()
        listed_somewhere |= allowed
        for action in session_workflow.TRANSITIONS:
            if action == "correct" and saved.get("minutes") is None or action == "minute" and saved.get("minutes"):
                continue  # one PUT /minutes: it is `minute` the first time and `correct` after
            response = session_attempt(client, app, people, headers, str(session_id), action)
            if (response.status_code in (200, 201)) != (action in allowed):
                problems.append(f"{role:>18} {action:<8} listed={action in allowed} got {response.status_code} "
                                f"{(response.get_json() or {}).get('error')}")
            db.consultations.replace_one({"_id": session_id}, saved)
    assert not problems, f"{scenario}:\n" + "\n".join(problems)
    assert listed_somewhere or scenario in ("cancelled", "minuted_long_ago")  # nothing is left to do there
