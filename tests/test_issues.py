"""The issue lifecycle through HTTP: whole stories, every forbidden transition, every wrong role."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from bson import ObjectId

from tests.factories import ISSUES, SHED
from tests.interleave import race
from tests.test_app import assert_error
from yishitang.issues import workflow



@pytest.fixture
def act(client, login):
    def do(user, issue, action, expect=200, headers=None, **body):
        response = client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": action, **body},
                               headers={**login(user), **(headers or {})})
        assert response.status_code == expect, (action, response.get_json())
        return response.get_json()

    return do


def get(client, login, user, issue, expect=200):
    response = client.get(f"{ISSUES}/{issue['id']}", headers=login(user))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def steps(issue):
    return [(e["action"], e["from_status"], e["to_status"], e["level"]) for e in issue["timeline"]]


# --- whole stories -------------------------------------------------------------------------------

def test_charging_shed_raised_supported_escalated_resolved_rated_and_closed(client, login, people, make_issue, act):
    resident, neighbour, member = people["resident"], people["neighbour"], people["member"]
    coordinator = people["coordinator"]
    issue = make_issue(resident, anonymous=True)
    assert issue["number"].startswith("DW-") and issue["status"] == "submitted" and issue["level"] == "grassroots"
    assert issue["contact_phone"] == "13812345678"  # the account's phone, seen by the reporter

    # neighbours support it (once each, however often they tap)
    for _ in range(2):
        supported = client.post(f"{ISSUES}/{issue['id']}/supports", headers=login(neighbour))
        assert supported.status_code == 200 and supported.get_json() == {
            "issue_id": issue["id"], "supported": True, "supporters_count": 1}

    issue = act(member, issue, "accept", note="已受理，将实地查看")
    assert issue["status"] == "accepted" and issue["accepted_at"] and issue["first_response_at"]
    issue = act(member, issue, "comment", note="已到现场查看", visit=True)
    issue = act(member, issue, "escalate", note="需街道协调场地")
    assert issue["level"] == "township" and issue["status"] == "accepted"
    # the studio's members hand over: they still see it, but no longer act on it
    act(member, issue, "start", expect=403)
    issue = act(coordinator, issue, "start", note="街道协调物业腾出场地")
    issue = act(coordinator, issue, "resolve", note="充电车棚已建成，可容纳 40 辆", owner_unit="东湖街道城建办")
    assert issue["status"] == "resolved" and issue["resolution"]["owner_unit"] == "东湖街道城建办"

    rated = client.post(f"{ISSUES}/{issue['id']}/feedback", json={"rating": "satisfied", "comment": "谢谢"},
                        headers=login(resident))
    assert rated.status_code == 200, rated.get_json()
    issue = rated.get_json()
    assert issue["status"] == "closed" and issue["closed_at"] and issue["feedback"]["rating"] == "satisfied"
    assert steps(issue) == [
        ("submit", None, "submitted", "grassroots"),
        ("accept", "submitted", "accepted", "grassroots"),
        ("comment", "accepted", "accepted", "grassroots"),
        ("escalate", "accepted", "accepted", "township"),
        ("start", "accepted", "in_progress", "township"),
        ("resolve", "in_progress", "resolved", "township"),
        ("feedback", "resolved", "closed", "township"),
    ]
    assert issue["timeline"][2]["visit"] is True
    assert [e["actor"]["role"] for e in issue["timeline"]] == [
        "resident", "member", "member", "member", "coordinator", "coordinator", "resident"]

    # on the public board the anonymous reporter stays anonymous and no phone shows
    public = get(client, login, neighbour, issue)
    assert public["reporter"] == {"id": None, "display_name": "匿名居民", "anonymous": True}
    assert public["contact_phone"] is None and public["timeline"][0]["actor"]["display_name"] == "匿名居民"
    assert public["supporters_count"] == 1


def test_rejected_issue_needs_a_reason_and_leaves_the_board(client, login, people, make_issue, act, district):
    issue = make_issue(people["resident"])
    body = act(people["member"], issue, "reject", expect=422)
    assert "note" in body["errors"]
    issue = act(people["member"], issue, "reject", note="属物业合同纠纷，请通过法律途径解决")
    assert issue["status"] == "rejected" and issue["first_response_at"]
    board = client.get(ISSUES, query_string={"board": 1, "studio": str(district["xingfu"].id)},
                       headers=login(people["neighbour"]))
    assert board.get_json() == []
    get(client, login, people["neighbour"], issue, expect=404)
    assert get(client, login, people["resident"], issue)["status"] == "rejected"
    assert act(people["member"], issue, "accept", expect=409)["error"] == "invalid_transition"


def test_reopened_when_unsatisfied_then_closed(client, login, people, make_issue, act):
    issue = make_issue(people["resident"])
    act(people["member"], issue, "accept")
    act(people["member"], issue, "resolve", note="已联系供电公司")
    reopened = client.post(f"{ISSUES}/{issue['id']}/feedback", json={"rating": "unsatisfied", "comment": "还没装好"},
                           headers=login(people["resident"])).get_json()
    assert reopened["status"] == "in_progress" and reopened["reopened_count"] == 1 and reopened["due_at"]
    act(people["member"], issue, "resolve", note="充电桩已安装")
    closed = client.post(f"{ISSUES}/{issue['id']}/feedback", json={"rating": "basically_satisfied"},
                         headers=login(people["resident"])).get_json()
    assert closed["status"] == "closed" and closed["reopened_count"] == 1
    assert [e["action"] for e in closed["timeline"]].count("feedback") == 2


def test_withdrawn_by_the_reporter_only(client, login, people, make_issue, act):
    issue = make_issue(people["resident"])
    act(people["member"], issue, "accept")
    assert act(people["neighbour"], issue, "withdraw", expect=403)["error"] == "action_forbidden"
    assert act(people["member"], issue, "withdraw", expect=403)["error"] == "action_forbidden"
    issue = act(people["resident"], issue, "withdraw", note="问题已自行解决")
    assert issue["status"] == "withdrawn"
    assert act(people["resident"], issue, "withdraw", expect=409)["error"] == "invalid_transition"


def test_escalation_climbs_the_tiers_and_the_staff_change(client, login, people, make_issue, act):
    issue = make_issue(people["resident"])
    act(people["coordinator"], issue, "escalate", expect=200)  # a township coordinator may act at grassroots
    act(people["member"], issue, "accept", expect=403)  # township level now: members hand over
    act(people["other_coordinator"], issue, "accept", expect=403)  # another township
    issue = act(people["coordinator"], issue, "escalate")
    assert issue["level"] == "district" and issue["escalated_count"] == 2
    assert act(people["coordinator"], issue, "accept", expect=403)["error"] == "action_forbidden"  # above their tier
    assert act(people["district_coordinator"], issue, "escalate", expect=409)["error"] == "already_top_tier"
    issue = act(people["district_coordinator"], issue, "accept")
    assert issue["status"] == "accepted"
    # the township coordinator still sees it, in full
    assert get(client, login, people["coordinator"], issue)["reporter"]["display_name"] == people["resident"].display_name


# --- the table: every forbidden transition, every wrong role ---------------------------------------

@pytest.fixture
def issue_in(app, people, make_issue):
    """An issue raised (make_issue), then put into a given state through the service (the stories above
    go through HTTP)."""
    from yishitang.issues import access, service
    from yishitang.issues.models import Issue

    paths = {
        "submitted": [], "accepted": ["accept"], "scheduled": ["accept", "schedule"],
        "consulted": ["accept", "schedule", "consult"], "in_progress": ["accept", "start"],
        "resolved": ["accept", "resolve"], "closed": ["accept", "resolve", "rate_satisfied"],
        "rejected": ["reject"], "withdrawn": ["withdraw"],
    }

    def make(status):
        raised = make_issue(people["resident"])
        with app.test_request_context():
            issue = access.load(raised["id"])
            for action in paths[status]:
                system = action in ("schedule", "consult")  # consultation sessions do these
                actor = people["resident"] if action in ("withdraw", "rate_satisfied") else people["member"]
                issue = service.transition(issue, action, None if system else actor, system=system, note="理由")
        assert Issue.objects.get(id=issue.id).status == status
        return {"id": str(issue.id)}

    return make


@pytest.mark.parametrize("status", workflow.STATUSES)
def test_every_action_the_table_does_not_allow_is_409(status, issue_in, act, people, db):
    issue = issue_in(status)
    before = db.issues.find_one()
    for action in workflow.CLIENT_ACTIONS:
        if workflow.rule(status, action) is None:
            body = act(people["admin"], issue, action, expect=409, note="试一下", duplicate_of=issue["id"])
            assert body["error"] == "invalid_transition", action
    after = db.issues.find_one()
    assert after["version"] == before["version"] and len(after["timeline"]) == len(before["timeline"])


@pytest.mark.parametrize("role, expect", [
    ("neighbour", 403), ("other_member", 403), ("other_coordinator", 403), ("resident", 403),
])
def test_wrong_roles_cannot_act(role, expect, issue_in, act, people):
    issue = issue_in("submitted")
    for action in ("accept", "reject", "escalate", "supervise", "approve", "duplicate"):
        assert act(people[role], issue, action, expect=expect, note="x")["error"] == "action_forbidden", (role, action)


def test_a_member_cannot_supervise_or_close(issue_in, act, people):
    assert act(people["member"], issue_in("accepted"), "supervise", expect=403)["error"] == "action_forbidden"
    assert act(people["member"], issue_in("resolved"), "close", expect=403)["error"] == "action_forbidden"


def test_issue_routes_need_a_token(client, issue_in):
    issue = issue_in("submitted")
    for method, url in [("GET", ISSUES), ("POST", ISSUES), ("GET", f"{ISSUES}/{issue['id']}"),
                        ("POST", f"{ISSUES}/{issue['id']}/actions"), ("POST", f"{ISSUES}/{issue['id']}/feedback"),
                        ("POST", f"{ISSUES}/{issue['id']}/supports"), ("GET", f"{ISSUES}/similar")]:
        assert client.open(url, method=method, json={}).status_code == 401, (method, url)


def test_only_residents_make_issues(client, login, people, district):
    for role in ("member", "coordinator", "admin"):
        response = client.post(ISSUES, json={**SHED, "studio_id": str(district["xingfu"].id)}, headers=login(people[role]))
        assert_error(response, 403, "role_forbidden")


# --- close, supervise, comment, feedback rules ----------------------------------------------------

def test_coordinator_closes_a_resolved_issue_only_after_the_feedback_window(app, db, issue_in, act, people):
    issue = issue_in("resolved")
    assert act(people["coordinator"], issue, "close", expect=409)["error"] == "feedback_window_open"
    eight_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)
    db.issues.update_one({}, {"$set": {"resolution.resolved_at": eight_days_ago}})
    closed = act(people["coordinator"], issue, "close", note="7 天未评价，按规定关闭")
    assert closed["status"] == "closed" and closed["feedback"] is None


def test_supervise_once_by_coordinators(issue_in, act, people):
    issue = issue_in("accepted")
    assert act(people["coordinator"], issue, "supervise", note="请加快办理")["supervised"] is True
    assert act(people["district_coordinator"], issue, "supervise", expect=409)["error"] == "already_supervised"
    assert act(people["other_coordinator"], issue, "supervise", expect=403)["error"] == "action_forbidden"


def test_comments_and_visits(issue_in, act, people):
    issue = issue_in("accepted")
    assert act(people["resident"], issue, "comment", note="请尽快")["timeline"][-1]["actor"]["role"] == "resident"
    assert act(people["resident"], issue, "comment", note="我见过委员了", visit=True, expect=403)["error"] == "action_forbidden"
    assert act(people["neighbour"], issue, "comment", note="我也关心", expect=403)["error"] == "action_forbidden"
    assert act(people["member"], issue, "comment", expect=422)["errors"] == {"note": ["请填写内容"]}


def test_feedback_rules(client, login, issue_in, people):
    issue = issue_in("accepted")
    url = f"{ISSUES}/{issue['id']}/feedback"
    assert_error(client.post(url, json={"rating": "satisfied"}, headers=login(people["resident"])), 409, "invalid_transition")
    resolved = issue_in("resolved")
    url = f"{ISSUES}/{resolved['id']}/feedback"
    assert_error(client.post(url, json={"rating": "satisfied"}, headers=login(people["neighbour"])), 403, "action_forbidden")
    assert_error(client.post(url, json={"rating": "great"}, headers=login(people["resident"])), 422, "validation_failed")


# --- concurrency, idempotency, If-Match -------------------------------------------------------------

# The first action is held between its decision and its write while the second applies: its
# conditional write must then miss, and it decides again on the new state. accept/reject is caught
# by the status in the filter and by the version; supervise (same status) by the version alone.
@pytest.mark.parametrize("first, second, held_answer, timeline", [
    (("accept", "member"), ("reject", "coordinator"), (409, "invalid_transition"), ["submit", "reject"]),
    (("supervise", "coordinator"), ("supervise", "admin"), (409, "already_supervised"), ["submit", "supervise"]),
    (("comment", "member"), ("comment", "coordinator"), (200, None), ["submit", "comment", "comment"]),
])
def test_simultaneous_actions_each_apply_on_the_state_they_saw(app, issue_in, people, login, db,
                                                                first, second, held_answer, timeline):
    issue = issue_in("submitted")

    def post(action, who):
        headers = login(people[who])

        def call():
            response = app.test_client().post(f"{ISSUES}/{issue['id']}/actions",
                                              json={"action": action, "note": "并发"}, headers=headers)
            return response.status_code, response.get_json().get("error")
        return call

    held, applied = race(post(*first), post(*second), hold_at="issue.decided")
    assert applied == (200, None) and held == held_answer, (held, applied)
    stored = db.issues.find_one()
    assert [e["action"] for e in stored["timeline"]] == timeline
    assert stored["version"] == len(timeline)


def test_if_match(client, login, people, make_issue):
    issue = make_issue(people["resident"])
    url = f"{ISSUES}/{issue['id']}"
    etag = client.get(url, headers=login(people["member"])).headers["ETag"]
    assert etag == '"1"'
    ok = client.post(f"{url}/actions", json={"action": "accept"}, headers={**login(people["member"]), "If-Match": etag})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    stale = client.post(f"{url}/actions", json={"action": "comment", "note": "x"},
                        headers={**login(people["member"]), "If-Match": etag})
    assert_error(stale, 412, "stale_version")
    assert_error(client.post(f"{url}/actions", json={"action": "comment", "note": "x"},
                             headers={**login(people["member"]), "If-Match": "garbage"}), 412, "stale_version")


def test_a_retried_submit_creates_one_issue(app, client, login, people, district, db):
    headers = {**login(people["resident"]), "Idempotency-Key": "submit-7f3a"}
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    first = client.post(ISSUES, json=body, headers=headers)
    assert first.status_code == 201
    for _ in range(3):
        again = client.post(ISSUES, json=body, headers=headers)
        assert again.status_code == 201 and again.get_json() == first.get_json()
        assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == first.headers["ETag"]
    # concurrent retries of another submit
    results, barrier = [], threading.Barrier(8)
    headers2 = {**login(people["resident"]), "Idempotency-Key": "submit-9c1e"}

    def fire():
        barrier.wait()
        results.append(app.test_client().post(ISSUES, json=body, headers=headers2).status_code)

    threads = [threading.Thread(target=fire) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert set(results) <= {201, 409} and 201 in results
    assert db.issues.count_documents({}) == 2
    # the same key for another request is refused; another user's same key is theirs alone
    assert_error(client.post(ISSUES, json={**body, "title": "另一个问题标题"}, headers=headers), 409, "idempotency_key_reused")
    other = client.post(ISSUES, json=body, headers={**login(people["neighbour"]), "Idempotency-Key": "submit-7f3a"})
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]


def test_a_retried_action_applies_once(client, login, people, make_issue, db):
    issue = make_issue(people["resident"])
    headers = {**login(people["member"]), "Idempotency-Key": "act-1"}
    for _ in range(3):
        response = client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "comment", "note": "收到"}, headers=headers)
        assert response.status_code == 200
    assert len(db.issues.find_one()["timeline"]) == 2


def test_a_failed_request_does_not_burn_its_key(client, login, people, district, db):
    headers = {**login(people["resident"]), "Idempotency-Key": "k-1"}
    body = {**SHED, "studio_id": "000000000000000000000000"}
    assert client.post(ISSUES, json=body, headers=headers).status_code == 422
    assert client.post(ISSUES, json={**body, "studio_id": str(district["xingfu"].id)}, headers=headers).status_code == 201


# --- content checks and what each viewer sees ---------------------------------------------------------

def test_risky_text_is_refused_and_nothing_is_stored(client, login, people, district, fake_wechat, db):
    fake_wechat.set_text_verdict("赌博", "risky", 20006)
    response = client.post(ISSUES, json={**SHED, "description": "小区里有人组织赌博活动，希望处理。",
                                         "studio_id": str(district["xingfu"].id)}, headers=login(people["resident"]))
    assert_error(response, 422, "content_risky")
    assert db.issues.count_documents({}) == 0


def test_text_for_review_stays_off_the_board_until_a_member_approves(client, login, people, make_issue, act, fake_wechat, district):
    fake_wechat.set_text_verdict("车棚", "review", 21000)
    issue = make_issue(people["resident"])
    assert issue["moderation"] == "review"
    board = {"board": 1, "studio": str(district["xingfu"].id)}
    assert client.get(ISSUES, query_string=board, headers=login(people["neighbour"])).get_json() == []
    get(client, login, people["neighbour"], issue, expect=404)
    get(client, login, people["other_member"], issue, expect=404)
    act(people["member"], issue, "approve", note="内容无问题")
    assert [i["id"] for i in client.get(ISSUES, query_string=board, headers=login(people["neighbour"])).get_json()] == [issue["id"]]
    assert act(people["member"], issue, "approve", expect=409)["error"] == "not_held_for_review"


def test_wechat_check_outage_holds_the_issue_for_review(client, login, people, make_issue, fake_wechat):
    fake_wechat.fail_next("/wxa/msg_sec_check", -1, times=3)
    assert make_issue(people["resident"])["moderation"] == "review"


def test_who_sees_the_phone_and_the_name(client, login, people, make_issue, act):
    issue = make_issue(people["resident"], contact_phone="13611112222")
    assert get(client, login, people["resident"], issue)["contact_phone"] == "13611112222"
    assert get(client, login, people["member"], issue)["contact_phone"] == "13611112222"
    assert get(client, login, people["coordinator"], issue)["contact_phone"] == "13611112222"
    for viewer in ("neighbour", "other_member", "other_coordinator"):
        seen = get(client, login, people[viewer], issue)
        assert seen["contact_phone"] is None, viewer
        assert seen["reporter"]["display_name"] == people["resident"].display_name[0] + "**", viewer
        assert seen["reporter"]["id"] is None and seen["moderation"] is None
    # escalated: the studio's member still sees the issue, no longer the phone
    act(people["coordinator"], issue, "escalate")
    act(people["coordinator"], issue, "escalate")
    assert get(client, login, people["member"], issue)["contact_phone"] is None
    assert get(client, login, people["coordinator"], issue)["contact_phone"] is None
    assert get(client, login, people["district_coordinator"], issue)["contact_phone"] == "13611112222"


# --- lists, filters, search, similar -----------------------------------------------------------------

def test_lists_are_scoped_by_role(client, login, people, make_issue):
    mine = make_issue(people["resident"])
    theirs = make_issue(people["neighbour"], studio="liushu", title="柳树村路灯不亮", category="safety",
                         description="村东头的路灯坏了三个月，晚上出行很不安全。")

    def ids(user, **query):
        response = client.get(ISSUES, query_string=query, headers=login(people[user]))
        assert response.status_code == 200, response.get_json()
        return [i["id"] for i in response.get_json()]

    assert ids("resident") == [mine["id"]]
    assert ids("neighbour") == [theirs["id"]]
    assert ids("member") == [mine["id"]]
    assert ids("other_member") == [theirs["id"]]
    assert ids("coordinator") == [mine["id"]]
    assert ids("other_coordinator") == [theirs["id"]]
    assert ids("district_coordinator") == [theirs["id"], mine["id"]]
    assert ids("admin") == [theirs["id"], mine["id"]]
    assert ids("coordinator", region="211104002") == []  # outside the scope: nothing, not an error
    assert ids("admin", category="safety") == [theirs["id"]]
    assert ids("admin", status="submitted,accepted", level="grassroots") == [theirs["id"], mine["id"]]
    assert ids("admin", status="closed") == []
    assert_error(client.get(ISSUES, query_string={"board": 1}, headers=login(people["resident"])), 422, "validation_failed")
    assert_error(client.get(ISSUES, query_string={"status": "lost"}, headers=login(people["resident"])), 422, "validation_failed")


def test_overdue_and_supervised_filters(client, login, people, make_issue, act, db):
    late = make_issue(people["resident"])
    make_issue(people["resident"], title="小区门口垃圾清运不及时")
    db.issues.update_one({"number": late["number"]}, {"$set": {"due_at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)}})
    act(people["coordinator"], late, "supervise")
    headers = login(people["coordinator"])
    overdue = client.get(ISSUES, query_string={"overdue": 1}, headers=headers).get_json()
    assert [i["id"] for i in overdue] == [late["id"]] and overdue[0]["overdue"] is True
    assert len(client.get(ISSUES, query_string={"overdue": 0}, headers=headers).get_json()) == 1
    assert [i["id"] for i in client.get(ISSUES, query_string={"supervised": 1}, headers=headers).get_json()] == [late["id"]]


def test_chinese_text_search(client, login, people, make_issue):
    shed = make_issue(people["resident"])
    lights = make_issue(people["resident"], title="路灯不亮", description="和平街的路灯坏了很久，晚上很黑。")
    headers = login(people["member"])

    def found(q):
        return [i["id"] for i in client.get(ISSUES, query_string={"q": q}, headers=headers).get_json()]

    assert found("充电") == [shed["id"]]
    assert found("车棚") == [shed["id"]]
    assert found("路灯") == [lights["id"]]
    assert found("灯") == [lights["id"]]
    assert found("晚上") == [lights["id"]]
    assert found("充电路灯") == []
    assert found(shed["number"]) == [shed["id"]]


def test_every_list_query_uses_an_index(app, people, make_issue, district):
    from yishitang.issues import queries as issue_queries

    make_issue(people["resident"])
    queries = [
        dict(user=people["resident"]),
        dict(user=people["resident"], board=True, studio=str(district["xingfu"].id)),
        dict(user=people["member"]),
        dict(user=people["coordinator"]),
        dict(user=people["admin"]),
        dict(user=people["admin"], q="充电"),
        dict(user=people["coordinator"], overdue=True, supervised=True, category="traffic"),
    ]
    for query in queries:
        plan = issue_queries.search(**query).explain()["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in str(plan), (query, plan)


def test_similar_issues_and_marking_a_duplicate(client, login, people, make_issue, act, district):
    original = make_issue(people["resident"])
    response = client.get(f"{ISSUES}/similar", query_string={"studio": str(district["xingfu"].id), "title": "电动车充电车棚"},
                          headers=login(people["neighbour"]))
    assert response.status_code == 200
    similar = response.get_json()
    assert [i["id"] for i in similar] == [original["id"]] and similar[0]["similarity"] >= 0.5
    assert similar[0]["contact_phone"] is None
    unrelated = client.get(f"{ISSUES}/similar", query_string={"studio": str(district["xingfu"].id), "title": "学校门口交通拥堵"},
                           headers=login(people["neighbour"])).get_json()
    assert unrelated == []

    copy = make_issue(people["neighbour"], title="电动车充电车棚")
    closed = act(people["member"], copy, "duplicate", duplicate_of=original["id"], note="与 %s 重复" % original["number"])
    assert closed["status"] == "closed" and closed["duplicate_of"] == original["id"]
    assert act(people["member"], make_issue(people["neighbour"], title="又一个车棚问题"), "duplicate",
               duplicate_of="000000000000000000000000", expect=422)["errors"]["duplicate_of"]


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, field", [
    ({"title": "很" * 41}, "title"),
    ({"title": ""}, "title"),
    ({"description": "太短"}, "description"),
    ({"category": "aliens"}, "category"),
    ({"studio_id": "000000000000000000000000"}, "studio_id"),
    ({"studio_id": "xyz"}, "studio_id"),
    ({"contact_phone": "110"}, "contact_phone"),
    ({"location": {"lng": 123}}, "location"),
    ({"attachments": ["000000000000000000000000"]}, "attachments"),
    ({"anonymous": "perhaps"}, "anonymous"),
    ({"status": "closed"}, "status"),
])
def test_bad_issue_input_is_422_and_stores_nothing(client, login, people, district, db, overrides, field):
    body = {**SHED, "studio_id": str(district["xingfu"].id), **overrides}
    response = assert_error(client.post(ISSUES, json=body, headers=login(people["resident"])), 422, "validation_failed")
    assert field in response["errors"], response
    assert db.issues.count_documents({}) == 0


def test_unknown_issue_is_404(client, login, people, district):
    for issue_id in ("000000000000000000000000", "nope"):
        assert_error(client.get(f"{ISSUES}/{issue_id}", headers=login(people["admin"])), 404, "not_found")
        assert_error(client.post(f"{ISSUES}/{issue_id}/actions", json={"action": "accept"}, headers=login(people["admin"])),
                     404, "not_found")


def test_numbers_are_sequential_per_year(people, make_issue):
    first, second = make_issue(people["resident"]), make_issue(people["neighbour"])
    year = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).year
    assert (first["number"], second["number"]) == (f"DW-{year}-000001", f"DW-{year}-000002")


# --- supports and photos -----------------------------------------------------------------------------

def test_support_rules(client, login, people, make_issue, act):
    issue = make_issue(people["resident"])
    url = f"{ISSUES}/{issue['id']}/supports"
    assert_error(client.post(url, headers=login(people["resident"])), 409, "own_issue")
    assert_error(client.post(url, headers=login(people["member"])), 403, "role_forbidden")
    assert client.post(url, headers=login(people["neighbour"])).get_json()["supporters_count"] == 1
    taken_back = client.delete(url, headers=login(people["neighbour"]))
    assert taken_back.get_json() == {"issue_id": issue["id"], "supported": False, "supporters_count": 0}
    assert client.delete(url, headers=login(people["neighbour"])).get_json()["supporters_count"] == 0
    act(people["resident"], issue, "withdraw")
    assert_error(client.post(url, headers=login(people["neighbour"])), 404, "not_found")  # off the board now


def test_supports_are_counted_once_under_concurrency(app, login, people, make_issue, make_user, db):
    issue = make_issue(people["resident"])
    supporters = [make_user("resident") for _ in range(4)]
    barrier, codes = threading.Barrier(8), []

    def fire(user):
        headers = login(user)
        barrier.wait()
        codes.append(app.test_client().post(f"{ISSUES}/{issue['id']}/supports", headers=headers).status_code)

    threads = [threading.Thread(target=fire, args=(supporters[n % 4],)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert codes == [200] * 8
    assert db.issues.find_one()["supporters_count"] == 4 == db.supports.count_documents({})


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def upload(client, headers, name="shed.png"):
    import io

    response = client.post("/api/v1/files", data={"file": (io.BytesIO(PNG), name)}, headers=headers,
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_photos_are_seen_by_the_reporter_and_staff_and_on_the_board_once_wechat_passed_them(client, db, login, people,
                                                                                         make_issue, act):
    from tests.test_photos import push_query, verdict_event

    photo = upload(client, login(people["resident"]))
    issue = make_issue(people["resident"], attachments=[photo])
    assert [a["id"] for a in issue["attachments"]] == [photo] and issue["attachments"][0]["media_check"] == "pending"
    for user, status in (("resident", 200), ("member", 200), ("coordinator", 200), ("neighbour", 404), ("other_member", 404)):
        assert client.get(f"/api/v1/files/{photo}", headers=login(people[user])).status_code == status, user
    assert get(client, login, people["neighbour"], issue)["attachments"] == []
    trace_id = db.uploads.find_one({"_id": ObjectId(photo)})["media_check"]["trace_id"]
    assert client.post("/api/v1/wechat/events", query_string=push_query(), json=verdict_event(trace_id)).status_code == 200
    [shown] = get(client, login, people["neighbour"], issue)["attachments"]
    assert shown["id"] == photo and shown["media_check"] is None and client.get(shown["url"]).status_code == 200
    # a photo can serve one issue only
    again = client.post(ISSUES, json={**SHED, "studio_id": issue["studio_id"], "attachments": [photo]},
                        headers=login(people["resident"]))
    assert "attachments" in assert_error(again, 422, "validation_failed")["errors"]
    # evidence of the result: uploaded by the member, then seen by the reporter
    evidence = upload(client, login(people["member"]), "done.png")
    act(people["member"], issue, "accept")
    resolved = act(people["member"], issue, "resolve", note="已建成", evidence=[evidence])
    assert [e["id"] for e in resolved["resolution"]["evidence"]] == [evidence]
    assert client.get(f"/api/v1/files/{evidence}", headers=login(people["resident"])).status_code == 200
    foreign = upload(client, login(people["resident"]), "mine.png")
    act(people["member"], issue, "resolve", expect=409)
    other = make_issue(people["neighbour"], title="另一个车棚")
    act(people["member"], other, "accept")
    assert "evidence" in act(people["member"], other, "resolve", note="x", evidence=[foreign], expect=422)["errors"]
