"""Consultation sessions (民生议事堂) through HTTP: schedule, sign in, minute, and drive issues on."""

from __future__ import annotations

import datetime as dt
import threading

import icalendar
import pytest
from bson import ObjectId

from tests.interleave import race
from tests.test_app import assert_error

URL = "/api/v1/consultations"
ISSUES = "/api/v1/issues"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SCHOOL = {"category": "traffic", "address": "幸福路实验小学门口", "location": {"lng": 123.402, "lat": 41.802}}
SCHOOL_ISSUES = [
    ("实验小学门口上下学拥堵", "每天早上七点半学校门口接送车辆乱停，堵住整条幸福路，孩子过马路很危险。"),
    ("学校周边缺少人行横道", "实验小学东侧路口没有斑马线和信号灯，学生只能从车流中穿行。"),
    ("校门口家长车辆违停", "放学时家长把车停在校门口和消防通道上，希望设置临时停车区并加强管理。"),
]


def at(hours=0.0, minutes=0) -> str:
    """A time from now, as a client sends it (Asia/Shanghai offset), to the minute."""
    moment = dt.datetime.now(SHANGHAI).replace(second=0, microsecond=0) + dt.timedelta(hours=hours, minutes=minutes)
    return moment.isoformat()


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def accepted_issue(client, login, people, make_issue):
    """An issue raised by a resident and accepted by the studio's member, through HTTP."""
    titles = iter(range(1, 100))

    def make(reporter=None, title=None, description=None, studio="xingfu", member=None):
        n = next(titles)
        issue = make_issue(reporter or people["resident"], studio, **SCHOOL, title=title or f"学校周边交通问题{n}",
                           description=description or f"学校周边第 {n} 个交通问题，需要协调解决。")
        response = client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "accept", "note": "已受理"},
                               headers=login(member or people["member"]))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def schedule(client, login, people, district):
    def make(user=None, expect=201, headers=None, **overrides):
        body = {"studio_id": str(district["xingfu"].id), "topic": "学校周边车辆管理", "starts_at": at(24),
                "ends_at": at(26), "location": "幸福社区党群服务中心二楼", "format": "in_person", "capacity": 30,
                **overrides}
        response = client.post(URL, json=body, headers={**login(user or people["member"]), **(headers or {})})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def open_now(db):
    """Move a session so that it started five minutes ago (sessions can only be booked ahead)."""
    def move(consultation, started=dt.timedelta(minutes=5), lasts=dt.timedelta(hours=2)):
        now = utcnow()
        db.consultations.update_one({"_id": ObjectId(consultation["id"])},
                                    {"$set": {"starts_at": now - started, "ends_at": now - started + lasts}})

    return move


def code_for(client, login, user, consultation, expect=200):
    response = client.get(f"{URL}/{consultation['id']}/checkin-code", headers=login(user))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def check_in(client, login, user, consultation, code, expect=201):
    response = client.post(f"{URL}/{consultation['id']}/checkins", json={"code": code}, headers=login(user))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def get(client, login, user, url, expect=200):
    response = client.get(url, headers=login(user))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def stored(db, consultation):
    return db.consultations.find_one({"_id": ObjectId(consultation["id"])})


def issue_doc(db, issue):
    return db.issues.find_one({"_id": ObjectId(issue["id"])})


# --- the story ---------------------------------------------------------------------------------

def test_school_traffic_story(client, login, people, make_user, make_issue, open_now, db):
    """Three issues about traffic around a school, one session, two resolved, one to the traffic police."""
    member = people["member"]
    parent = make_user("resident", home_region_code="211104001001", display_name="王家长")
    police = make_user("resident", display_name="交警大队代表")
    reporters = [people["resident"], people["neighbour"], parent]
    raised = [make_issue(reporter, **SCHOOL, title=title, description=text) for reporter, (title, text) in zip(reporters, SCHOOL_ISSUES)]
    for issue in raised:
        accepted = client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "accept", "note": "已受理"},
                               headers=login(member))
        assert accepted.get_json()["status"] == "accepted"

    body = {"topic": "学校周边车辆管理", "description": "实验小学周边上下学高峰交通秩序", "studio_id": raised[0]["studio_id"],
            "starts_at": at(48), "ends_at": at(50), "location": "幸福社区党群服务中心二楼", "format": "hybrid",
            "capacity": 30, "invitee_ids": [str(u.id) for u in (*reporters, police)],
            "issue_ids": [i["id"] for i in raised]}
    response = client.post(URL, json=body, headers=login(member))
    assert response.status_code == 201, response.get_json()
    session = response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert session["status"] == "planned" and session["host_member_id"] == str(member.id)
    assert session["starts_at"] == body["starts_at"] and session["starts_at"].endswith("+08:00")
    assert stored(db, session)["starts_at"].replace(tzinfo=dt.timezone.utc) == dt.datetime.fromisoformat(body["starts_at"])
    for issue in raised:
        doc = issue_doc(db, issue)
        assert doc["status"] == "scheduled" and doc["consultation_id"] == ObjectId(session["id"])
        entry = doc["timeline"][-1]
        assert (entry["action"], entry["from_status"], entry["to_status"]) == ("schedule", "accepted", "scheduled")
        assert entry["consultation_id"] == ObjectId(session["id"]) and entry["actor"]["role"] == "system"
    invited = db.notifications.find({"kind": "consultation_scheduled"}).distinct("user_id")
    assert set(invited) == {member.id, police.id, *(u.id for u in reporters)}
    note = db.notifications.find_one({"kind": "consultation_scheduled", "user_id": police.id})
    assert note["template"] == "consultation" and note["page"] == f"pages/consultation/detail?id={session['id']}"
    assert note["data"] == {"thing1": "学校周边车辆管理", "thing3": "幸福社区党群服务中心二楼",
                            "time2": dt.datetime.fromisoformat(body["starts_at"]).strftime("%Y-%m-%d %H:%M")}

    # the evening of the session: the host shows the code, residents scan it
    open_now(session)
    shown = code_for(client, login, member, session)
    assert shown["code"] and shown["expires_at"].endswith("+08:00")
    for n, resident in enumerate(reporters, start=1):
        signed = check_in(client, login, resident, session, shown["code"])
        assert signed["checkins_count"] == n and signed["user_id"] == str(resident.id)
    seen = get(client, login, people["resident"], f"{URL}/{session['id']}")
    assert seen["status"] == "held" and seen["checked_in"] is True and seen["checkins_count"] == 3
    assert seen["invitee_ids"] is None and seen["checkins"] is None  # residents see no lists of people
    assert "phone" not in str(seen)

    # minutes: two solved on the spot, one handed to the traffic police with a deadline
    due = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=30)).replace(hour=17, minute=0, second=0, microsecond=0)
    minutes = {"summary": "与学校、交警、物业共同商议上下学高峰交通组织方案。", "outcomes": [
        {"issue_id": raised[0]["id"], "decision": "学校错峰放学，社区志愿者高峰时段疏导", "owner_unit": "实验小学",
         "resolved": True},
        {"issue_id": raised[2]["id"], "decision": "物业开放地下车库作为临时接送停车区", "owner_unit": "幸福物业",
         "resolved": True},
        {"issue_id": raised[1]["id"], "decision": "请交警大队评估设置人行横道和信号灯", "owner_unit": "交警大队",
         "due_at": due.isoformat(), "resolved": False},
    ]}
    response = client.put(f"{URL}/{session['id']}/minutes", json=minutes, headers=login(member))
    assert response.status_code == 200, response.get_json()
    session = response.get_json()
    assert session["status"] == "minuted" and session["minutes"]["attendees_count"] == 3  # from the sign-ins
    assert session["minutes"]["recorded_by"] == str(member.id) and response.headers["ETag"] == '"2"'
    assert [o["resolved"] for o in session["minutes"]["outcomes"]] == [True, True, False]

    for issue, action, status in ((raised[0], "resolve", "resolved"), (raised[2], "resolve", "resolved"),
                                  (raised[1], "consult", "consulted")):
        seen = get(client, login, member, f"{ISSUES}/{issue['id']}")
        assert seen["status"] == status and seen["met_at"], issue["title"]
        assert [e["action"] for e in seen["timeline"]] == ["submit", "accept", "schedule", action]
        assert all(e["consultation_id"] == session["id"] for e in seen["timeline"][2:])
    resolved = get(client, login, people["resident"], f"{ISSUES}/{raised[0]['id']}")
    assert resolved["resolution"]["owner_unit"] == "实验小学"
    assert resolved["resolution"]["summary"] == "学校错峰放学，社区志愿者高峰时段疏导"
    handed_on = get(client, login, member, f"{ISSUES}/{raised[1]['id']}")
    assert handed_on["owner_unit"] == "交警大队"
    assert dt.datetime.fromisoformat(handed_on["due_at"]) == due
    assert handed_on["timeline"][-1]["note"] == "请交警大队评估设置人行横道和信号灯"
    # the resident who raised it can follow it, and sees the minutes on the session
    public = get(client, login, people["neighbour"], f"{URL}/{session['id']}")
    assert public["minutes"]["outcomes"][2]["owner_unit"] == "交警大队" and public["minutes"]["recorded_by"] is None


# --- sign-in --------------------------------------------------------------------------------------

def test_checkin_errors_each_change_nothing(app, client, login, people, make_user, schedule, open_now, db):
    session = schedule(capacity=2)
    other = schedule(starts_at=at(72), ends_at=at(73))
    resident, neighbour = people["resident"], people["neighbour"]
    # before the window: no code and no sign-in
    assert_error(client.get(f"{URL}/{session['id']}/checkin-code", headers=login(people["member"])), 409, "checkin_closed")
    open_now(session)
    open_now(other)
    code = code_for(client, login, people["member"], session)["code"]
    before = stored(db, session)

    def unchanged():
        after = stored(db, session)
        assert after["checkins"] == before["checkins"] and after["checkins_count"] == before["checkins_count"]
        assert after["status"] == before["status"] and after["version"] == before["version"]

    url = f"{URL}/{session['id']}/checkins"
    assert_error(client.post(url, json={"code": "12345.ABCDEFGH"}, headers=login(resident)), 422, "invalid_checkin_code")
    assert_error(client.post(url, json={"code": "rubbish"}, headers=login(resident)), 422, "invalid_checkin_code")
    other_code = code_for(client, login, people["member"], other)["code"]  # a real code, of another session
    assert_error(client.post(url, json={"code": other_code}, headers=login(resident)), 422, "invalid_checkin_code")
    from yishitang.consultations import checkin

    with app.test_request_context():
        stale = checkin.checkin_code(session["id"], people["member"], now=utcnow() - dt.timedelta(minutes=6))["code"]
        fresh_a_minute_ago = checkin.checkin_code(session["id"], people["member"],
                                                  now=utcnow() - dt.timedelta(minutes=1))["code"]
    assert_error(client.post(url, json={"code": stale}, headers=login(resident)), 422, "checkin_code_expired")
    assert_error(client.post(url, json={}, headers=login(resident)), 422, "validation_failed")
    unchanged()

    check_in(client, login, resident, session, fresh_a_minute_ago)  # a code stays good for 5 minutes
    before = stored(db, session)
    assert_error(client.post(url, json={"code": code}, headers=login(resident)), 409, "already_checked_in")
    unchanged()
    check_in(client, login, neighbour, session, code)
    before = stored(db, session)
    latecomer = make_user("resident", home_region_code="211104001001")
    assert_error(client.post(url, json={"code": code}, headers=login(latecomer)), 409, "consultation_full")
    unchanged()
    assert before["checkins_count"] == 2 and before["status"] == "held"
    assert [c["user_id"] for c in before["checkins"]] == [resident.id, neighbour.id]

    # after the end, sign-in is closed; people who cannot see the session get 404
    db.consultations.update_one({"_id": before["_id"]}, {"$set": {"ends_at": utcnow() - dt.timedelta(minutes=1)}})
    assert_error(client.post(url, json={"code": code}, headers=login(latecomer)), 409, "checkin_closed")
    stranger = make_user("resident", home_region_code="211104002001")
    assert_error(client.post(f"{URL}/{other['id']}/checkins", json={"code": other_code}, headers=login(stranger)),
                 404, "not_found")


def test_who_may_show_the_code(client, login, people, make_user, schedule, open_now):
    guest_member = make_user("member", studios=[])
    session = schedule(member_ids=[str(guest_member.id)])
    open_now(session)
    for who in ("member", "coordinator", "district_coordinator", "admin"):
        assert code_for(client, login, people[who], session)["code"], who
    assert code_for(client, login, guest_member, session)["code"]  # a member taking part, from elsewhere
    assert_error(client.get(f"{URL}/{session['id']}/checkin-code", headers=login(people["resident"])), 403, "role_forbidden")
    for who in ("other_member", "other_coordinator"):
        assert_error(client.get(f"{URL}/{session['id']}/checkin-code", headers=login(people[who])), 404, "not_found")


def test_capacity_holds_when_everyone_scans_at_once(app, login, people, make_user, schedule, open_now, db):
    session = schedule(capacity=3)
    open_now(session)
    code = code_for(app.test_client(), login, people["member"], session)["code"]
    crowd = [make_user("resident", home_region_code="211104001001") for _ in range(8)]
    headers = [login(user) for user in crowd]
    barrier, results = threading.Barrier(8), []

    def scan(n):
        barrier.wait()
        response = app.test_client().post(f"{URL}/{session['id']}/checkins", json={"code": code}, headers=headers[n])
        results.append((response.status_code, response.get_json().get("error")))

    threads = [threading.Thread(target=scan, args=(n,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results, key=str) == sorted([(201, None)] * 3 + [(409, "consultation_full")] * 5, key=str), results
    doc = stored(db, session)
    assert doc["checkins_count"] == 3 == len(doc["checkins"]) == len({c["user_id"] for c in doc["checkins"]})


def test_a_cancelled_session_takes_no_sign_in(client, login, people, schedule, open_now):
    session = schedule()
    open_now(session)
    code = code_for(client, login, people["member"], session)["code"]
    # a session that already started can still be called off while nobody has signed in
    assert client.post(f"{URL}/{session['id']}/cancel", json={}, headers=login(people["member"])).status_code == 200
    assert_error(client.post(f"{URL}/{session['id']}/checkins", json={"code": code}, headers=login(people["resident"])),
                 409, "consultation_cancelled")
    assert_error(client.get(f"{URL}/{session['id']}/checkin-code", headers=login(people["member"])), 409,
                 "consultation_cancelled")


@pytest.mark.parametrize("status", ["planned", "held", "minuted", "cancelled"])
def test_edit_and_cancel_follow_the_state_table(client, login, people, schedule, db, status):
    """What the server allows from each state is what `workflow.allowed_actions` says a client may offer."""
    from yishitang.consultations import workflow

    session = schedule()
    db.consultations.update_one({"_id": ObjectId(session["id"])}, {"$set": {"status": status}})
    offered = workflow.allowed_actions(status, frozenset({workflow.MANAGER, workflow.COVERER, workflow.VIEWER}))
    headers = login(people["member"])
    edited = client.patch(f"{URL}/{session['id']}", json={"topic": "改期后的议题"}, headers=headers)
    cancelled = client.post(f"{URL}/{session['id']}/cancel", json={}, headers=headers)
    for action, response, refusal in (("edit", edited, "consultation_not_editable"),
                                      ("cancel", cancelled, "consultation_not_cancellable")):
        if action in offered:
            assert response.status_code == 200, response.get_json()
        else:
            assert_error(response, 409, refusal)
    assert ("edit" in offered) == ("cancel" in offered) == (status == "planned")


# --- minutes ---------------------------------------------------------------------------------------

@pytest.fixture
def minuted_setup(people, accepted_issue, schedule, open_now, make_user):
    """A session with two accepted issues linked, started five minutes ago."""
    def make(**overrides):
        first, second = accepted_issue(), accepted_issue(people["neighbour"])
        session = schedule(issue_ids=[first["id"], second["id"]], **overrides)
        open_now(session)
        return session, first, second

    return make


def outcomes_for(*issues, resolved=(True, False)):
    return [{"issue_id": issue["id"], "decision": f"决定{n}", "owner_unit": "街道城建办", "resolved": flag}
            for n, (issue, flag) in enumerate(zip(issues, resolved))]


def test_minutes_refused_change_nothing(client, login, people, make_user, minuted_setup, accepted_issue, db):
    colleague = make_user("member", studios=[people["member"].studio_ids[0]])  # the studio's, not the session's
    session, first, second = minuted_setup()
    url = f"{URL}/{session['id']}/minutes"
    body = {"summary": "会议纪要", "outcomes": outcomes_for(first, second)}
    before_session, before_issues = stored(db, session), [issue_doc(db, first), issue_doc(db, second)]

    def unchanged():
        after = stored(db, session)
        assert after["status"] == "planned" and after.get("minutes") is None and after["version"] == before_session["version"]
        assert [issue_doc(db, first), issue_doc(db, second)] == before_issues

    assert_error(client.put(url, json=body, headers=login(colleague)), 403, "minutes_forbidden")
    assert_error(client.put(url, json=body, headers=login(people["resident"])), 403, "role_forbidden")
    assert_error(client.put(url, json=body, headers=login(people["other_member"])), 404, "not_found")
    assert_error(client.put(url, json=body, headers=login(people["other_coordinator"])), 404, "not_found")
    stray = accepted_issue(title="和平社区路灯")
    wrong = {**body, "outcomes": [*body["outcomes"], *outcomes_for(stray)]}
    refused = assert_error(client.put(url, json=wrong, headers=login(people["member"])), 422, "outcome_issue_not_linked")
    assert refused["errors"] == {"outcomes": {"2": {"issue_id": ["该议题未列入本次议事会"]}}}
    missing = assert_error(client.put(url, json={**body, "outcomes": body["outcomes"][:1]}, headers=login(people["member"])),
                           422, "outcome_missing")
    assert second["number"] in missing["errors"]["outcomes"][0]
    twice = {**body, "outcomes": [*body["outcomes"], body["outcomes"][0]]}
    assert_error(client.put(url, json=twice, headers=login(people["member"])), 422, "outcome_duplicate")
    past_due = [*body["outcomes"][:1], {**body["outcomes"][1], "due_at": at(-1)}]
    assert "due_at" in str(assert_error(client.put(url, json={**body, "outcomes": past_due}, headers=login(people["member"])),
                                        422, "validation_failed")["errors"])
    assert_error(client.put(url, json={"summary": "x"}, headers=login(people["member"])), 422, "validation_failed")
    unchanged()
    # not before the session has started
    db.consultations.update_one({"_id": before_session["_id"]},
                                {"$set": {"starts_at": utcnow() + dt.timedelta(hours=1), "ends_at": utcnow() + dt.timedelta(hours=2)}})
    assert_error(client.put(url, json=body, headers=login(people["member"])), 409, "consultation_not_started")
    unchanged()


def test_minutes_corrections_by_the_author_within_seven_days(client, login, people, make_user, minuted_setup, db):
    session, first, second = minuted_setup()
    url = f"{URL}/{session['id']}/minutes"
    body = {"summary": "初稿", "attendees_count": 12, "outcomes": outcomes_for(first, second)}
    coordinator = people["coordinator"]  # a coordinator in scope records them
    etag = client.put(url, json=body, headers=login(coordinator)).headers["ETag"]
    issues_after_first = [issue_doc(db, first), issue_doc(db, second)]
    assert [d["status"] for d in issues_after_first] == ["resolved", "consulted"]

    corrected = {**body, "summary": "修订稿：补充了与会单位", "attendees_count": 14,
                 "outcomes": [{**o, "decision": o["decision"] + "（措辞修订）"} for o in body["outcomes"]]}
    assert_error(client.put(url, json=corrected, headers={**login(coordinator), "If-Match": '"1"'}), 412, "stale_version")
    response = client.put(url, json=corrected, headers={**login(coordinator), "If-Match": etag})
    assert response.status_code == 200, response.get_json()
    session = response.get_json()
    assert session["minutes"]["summary"] == "修订稿：补充了与会单位" and session["minutes"]["attendees_count"] == 14
    assert [m["summary"] for m in session["minutes_history"]] == ["初稿"]
    assert [issue_doc(db, first), issue_doc(db, second)] == issues_after_first  # issues moved once only

    flip = {**corrected, "outcomes": outcomes_for(first, second, resolved=(True, True))}
    locked = assert_error(client.put(url, json=flip, headers=login(coordinator)), 409, "outcome_locked")
    assert "resolved" in locked["errors"]["outcomes"]["1"]
    other_unit = {**corrected, "outcomes": [corrected["outcomes"][0], {**corrected["outcomes"][1], "owner_unit": "区住建局"}]}
    assert_error(client.put(url, json=other_unit, headers=login(coordinator)), 409, "outcome_locked")
    assert_error(client.put(url, json=corrected, headers=login(people["member"])), 403, "minutes_forbidden")  # not the author
    assert_error(client.put(url, json=corrected, headers=login(people["admin"])), 403, "minutes_forbidden")
    db.consultations.update_one({"_id": ObjectId(session["id"])},
                                {"$set": {"minuted_at": utcnow() - dt.timedelta(days=7, minutes=1)}})
    assert_error(client.put(url, json=corrected, headers=login(coordinator)), 409, "correction_window_closed")
    assert len(stored(db, session)["minutes_history"]) == 1
    # residents see the current minutes, not their history
    seen = get(client, login, people["resident"], f"{URL}/{session['id']}")
    assert seen["minutes"]["summary"] == "修订稿：补充了与会单位" and seen["minutes_history"] is None


def test_minutes_skip_an_issue_its_reporter_withdrew(client, login, people, minuted_setup, db):
    session, first, second = minuted_setup()
    withdrawn = client.post(f"{ISSUES}/{second['id']}/actions", json={"action": "withdraw", "note": "已自行解决"},
                            headers=login(people["neighbour"]))
    assert withdrawn.get_json()["status"] == "withdrawn"
    response = client.put(f"{URL}/{session['id']}/minutes", json={"summary": "纪要", "outcomes": outcomes_for(first, second)},
                          headers=login(people["member"]))
    assert response.status_code == 200, response.get_json()
    assert issue_doc(db, first)["status"] == "resolved" and issue_doc(db, second)["status"] == "withdrawn"


# --- scheduling rules --------------------------------------------------------------------------

def test_overlap_past_times_and_bad_input(client, login, people, make_user, district, schedule, db):
    first = schedule(starts_at=at(24), ends_at=at(26))
    assert_error(client.post(URL, json={**_body(district), "starts_at": at(25), "ends_at": at(27)},
                             headers=login(people["member"])), 409, "consultation_overlap")
    inside = assert_error(client.post(URL, json={**_body(district), "starts_at": at(24, 30), "ends_at": at(25),
                                                 "host_member_id": str(people["member"].id)},
                                      headers=login(people["coordinator"])), 409, "consultation_overlap")
    assert "学校周边车辆管理" in inside["errors"]["starts_at"][0]
    schedule(starts_at=at(26), ends_at=at(27))  # back to back is fine
    heping_member = make_user("member", studios=[district["heping"]])
    schedule(starts_at=at(24), ends_at=at(26), studio_id=str(district["heping"].id), user=people["coordinator"],
             host_member_id=str(heping_member.id))  # another studio, same time
    past = assert_error(client.post(URL, json={**_body(district), "starts_at": at(-1), "ends_at": at(1)},
                                    headers=login(people["member"])), 422, "time_in_past")
    assert "starts_at" in past["errors"]
    assert "ends_at" in assert_error(client.post(URL, json={**_body(district), "starts_at": at(30), "ends_at": at(29)},
                                                 headers=login(people["member"])), 422, "validation_failed")["errors"]
    naive = assert_error(client.post(URL, json={**_body(district), "starts_at": "2030-12-01T19:00:00", "ends_at": "2030-12-01T21:00:00"},
                                     headers=login(people["member"])), 422, "validation_failed")
    assert set(naive["errors"]) == {"starts_at", "ends_at"}
    for field, value in (("format", "carrier_pigeon"), ("capacity", 0), ("topic", ""), ("member_ids", ["nope"])):
        errors = assert_error(client.post(URL, json={**_body(district), "starts_at": at(40), "ends_at": at(41), field: value},
                                          headers=login(people["member"])), 422, "validation_failed")["errors"]
        assert field in errors, field
    not_a_member = assert_error(client.post(URL, json={**_body(district), "starts_at": at(40), "ends_at": at(41),
                                                       "host_member_id": str(people["other_member"].id)},
                                            headers=login(people["member"])), 422, "validation_failed")
    assert "host_member_id" in not_a_member["errors"]
    assert db.consultations.count_documents({}) == 3 and first["status"] == "planned"


def _body(district):
    return {"studio_id": str(district["xingfu"].id), "topic": "另一场议事会", "location": "会议室", "capacity": 20}


def test_wrong_roles_and_scopes(client, login, people, district, schedule):
    body = {**_body(district), "starts_at": at(30), "ends_at": at(31)}
    assert_error(client.post(URL, json=body, headers=login(people["resident"])), 403, "role_forbidden")
    assert_error(client.post(URL, json=body, headers=login(people["other_member"])), 403, "scope_forbidden")
    assert_error(client.post(URL, json=body, headers=login(people["other_coordinator"])), 403, "scope_forbidden")
    # a coordinator or admin names the host; a member of the studio hosts by default
    assert "host_member_id" in assert_error(client.post(URL, json=body, headers=login(people["admin"])), 422,
                                            "validation_failed")["errors"]
    made = schedule(user=people["district_coordinator"], host_member_id=str(people["member"].id),
                    starts_at=at(30), ends_at=at(31))
    assert made["host"] == {"id": str(people["member"].id), "display_name": people["member"].display_name}
    url = f"{URL}/{made['id']}"
    for who, status, error in (("other_member", 404, "not_found"), ("other_coordinator", 404, "not_found"),
                               ("resident", 403, "role_forbidden")):
        assert_error(client.patch(url, json={"topic": "改个题目"}, headers=login(people[who])), status, error)
        assert_error(client.post(f"{url}/cancel", json={}, headers=login(people[who])), status, error)
    guest = schedule(user=people["admin"], host_member_id=str(people["member"].id), starts_at=at(50), ends_at=at(51),
                     member_ids=[str(people["other_member"].id)])
    # a member from elsewhere taking part sees the session but does not manage it
    assert get(client, login, people["other_member"], f"{URL}/{guest['id']}")["id"] == guest["id"]
    assert_error(client.patch(f"{URL}/{guest['id']}", json={"topic": "改个题目"}, headers=login(people["other_member"])),
                 403, "scope_forbidden")


def test_an_issue_that_cannot_be_scheduled_stops_everything(client, login, people, district, accepted_issue,
                                                             make_issue, db):
    ready = accepted_issue()
    fresh = make_issue(people["neighbour"], **SCHOOL, title="学校门口缺少减速带",
                       description="学校门口车速太快，希望设置减速带和警示标志。")
    elsewhere = accepted_issue(title="柳树村村口路灯", studio="liushu", member=people["other_member"])
    body = {**_body(district), "starts_at": at(30), "ends_at": at(31)}
    refused = assert_error(client.post(URL, json={**body, "issue_ids": [ready["id"], fresh["id"]]},
                                       headers=login(people["member"])), 409, "issue_not_schedulable")
    assert fresh["number"] in refused["errors"]["issue_ids"][0]
    assert_error(client.post(URL, json={**body, "issue_ids": [ready["id"], elsewhere["id"]]}, headers=login(people["member"])),
                 422, "validation_failed")
    assert db.consultations.count_documents({}) == 0
    assert issue_doc(db, ready)["status"] == "accepted" and len(issue_doc(db, ready)["timeline"]) == 2
    # an issue can wait for one session at a time
    client.post(URL, json={**body, "issue_ids": [ready["id"]]}, headers=login(people["member"]))
    assert_error(client.post(URL, json={**body, "starts_at": at(40), "ends_at": at(41), "issue_ids": [ready["id"]]},
                             headers=login(people["member"])), 409, "issue_not_schedulable")


def test_routes_need_a_token(client, schedule):
    session = schedule()
    base = f"{URL}/{session['id']}"
    for method, url in [("GET", URL), ("POST", URL), ("GET", base), ("PATCH", base), ("POST", f"{base}/cancel"),
                        ("GET", f"{base}/checkin-code"), ("POST", f"{base}/checkins"), ("PUT", f"{base}/minutes"),
                        ("GET", f"{base}.ics")]:
        assert_error(client.open(url, method=method, json={}), 401, "missing_token")


# --- reschedule and cancel ---------------------------------------------------------------------------

def test_reschedule_tells_the_invitees(client, login, people, make_user, accepted_issue, schedule, db):
    guest = make_user("resident", display_name="交警大队代表")
    first, second = accepted_issue(), accepted_issue(people["neighbour"])
    session = schedule(invitee_ids=[str(people["resident"].id), str(guest.id)], issue_ids=[first["id"]])
    url = f"{URL}/{session['id']}"
    etag = client.get(url, headers=login(people["member"])).headers["ETag"]
    db.notifications.delete_many({})

    moved = client.patch(url, json={"starts_at": at(48), "ends_at": at(50), "location": "社区活动中心"},
                         headers={**login(people["member"]), "If-Match": etag})
    assert moved.status_code == 200, moved.get_json()
    assert moved.headers["ETag"] == '"2"' and moved.get_json()["location"] == "社区活动中心"
    changed = list(db.notifications.find({"kind": "consultation_changed"}))
    assert {n["user_id"] for n in changed} == {people["resident"].id, guest.id}  # not the member who moved it
    assert changed[0]["data"]["thing3"] == "社区活动中心" and changed[0]["template"] == "consultation"
    assert changed[0]["data"]["time2"] == dt.datetime.fromisoformat(at(48)).strftime("%Y-%m-%d %H:%M")

    # stale pages get 412, and nothing changes
    for method, path, body in (("PATCH", url, {"topic": "新题目"}), ("POST", f"{url}/cancel", {}),
                               ("PUT", f"{url}/minutes", {"summary": "x", "outcomes": []})):
        assert_error(client.open(path, method=method, json=body, headers={**login(people["member"]), "If-Match": etag}),
                     412, "stale_version")
    assert stored(db, session)["version"] == 2

    # the list of issues is replaced: the new one is scheduled, the dropped one goes back
    swapped = client.patch(url, json={"issue_ids": [second["id"]]}, headers=login(people["member"]))
    assert swapped.status_code == 200, swapped.get_json()
    assert issue_doc(db, first)["status"] == "accepted" and issue_doc(db, first)["timeline"][-1]["action"] == "unschedule"
    assert issue_doc(db, second)["status"] == "scheduled"
    assert db.notifications.count_documents({"kind": "consultation_changed"}) == 2  # nothing people notice changed

    other = schedule(starts_at=at(72), ends_at=at(74))
    assert_error(client.patch(f"{URL}/{other['id']}", json={"starts_at": at(49), "ends_at": at(51)},
                              headers=login(people["member"])), 409, "consultation_overlap")
    assert_error(client.patch(url, json={"starts_at": at(-2), "ends_at": at(-1)}, headers=login(people["member"])),
                 422, "time_in_past")
    assert_error(client.patch(url, json={}, headers=login(people["member"])), 422, "validation_failed")


def test_cancel_sends_issues_back_and_tells_everyone(client, login, people, accepted_issue, schedule, db):
    first, second = accepted_issue(), accepted_issue(people["neighbour"])
    session = schedule(invitee_ids=[str(people["resident"].id)], issue_ids=[first["id"], second["id"]])
    response = client.post(f"{URL}/{session['id']}/cancel", json={"reason": "会议室临时停电"},
                           headers=login(people["coordinator"]))
    assert response.status_code == 200, response.get_json()
    cancelled = response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "会议室临时停电"
    for issue in (first, second):
        doc = issue_doc(db, issue)
        entry = doc["timeline"][-1]
        assert doc["status"] == "accepted" and doc.get("consultation_id") is None
        assert (entry["action"], entry["from_status"], entry["to_status"]) == ("unschedule", "scheduled", "accepted")
        assert entry["consultation_id"] == ObjectId(session["id"]) and "会议室临时停电" in entry["note"]
    told = {n["user_id"] for n in db.notifications.find({"kind": "consultation_cancelled"})}
    assert told == {people["resident"].id, people["member"].id, people["neighbour"].id}  # reporters too
    assert_error(client.post(f"{URL}/{session['id']}/cancel", json={}, headers=login(people["member"])), 409,
                 "consultation_not_cancellable")
    assert_error(client.patch(f"{URL}/{session['id']}", json={"topic": "再议"}, headers=login(people["member"])), 409,
                 "consultation_not_editable")
    # the slot is free again, and the issues can be scheduled anew
    again = schedule(issue_ids=[first["id"], second["id"]])
    assert again["status"] == "planned" and issue_doc(db, first)["status"] == "scheduled"


# --- who sees what, lists ----------------------------------------------------------------------------

def test_who_sees_which_sessions(client, login, people, make_user, district, schedule):
    heping_resident = make_user("resident", home_region_code="211104001002")
    invited = make_user("resident", home_region_code="211104001002")
    xingfu = schedule(invitee_ids=[str(invited.id)], starts_at=at(24), ends_at=at(25))
    liushu = schedule(user=people["other_member"], studio_id=str(district["liushu"].id), starts_at=at(48), ends_at=at(49))

    def ids(user, **query):
        response = client.get(URL, query_string=query, headers=login(user))
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()]

    assert ids(people["resident"]) == [xingfu["id"]]
    assert ids(heping_resident) == []
    assert ids(invited) == [xingfu["id"]]
    assert ids(people["member"]) == [xingfu["id"]]
    assert ids(people["other_member"]) == [liushu["id"]]
    assert ids(people["coordinator"]) == [xingfu["id"]]
    assert ids(people["other_coordinator"]) == [liushu["id"]]
    assert ids(people["district_coordinator"]) == [liushu["id"], xingfu["id"]]
    assert ids(people["admin"]) == [liushu["id"], xingfu["id"]]
    assert ids(people["admin"], order="asc") == [xingfu["id"], liushu["id"]]
    assert ids(people["admin"], studio=str(district["liushu"].id)) == [liushu["id"]]
    assert ids(people["admin"], region="211104001") == [xingfu["id"]]
    assert ids(people["district_coordinator"], region="211104002") == [liushu["id"]]
    assert ids(people["coordinator"], region="211104002") == []  # outside the scope: nothing, not an error
    tomorrow = dt.datetime.fromisoformat(at(24)).date()
    assert ids(people["admin"], **{"from": at(36)}) == [liushu["id"]]
    assert ids(people["admin"], to=at(36)) == [xingfu["id"]]
    day = {"from": tomorrow.isoformat(), "to": (tomorrow + dt.timedelta(days=1)).isoformat()}  # days in Asia/Shanghai
    assert ids(people["admin"], **day) == [xingfu["id"]]
    assert ids(people["admin"], status="planned,held") == [liushu["id"], xingfu["id"]]
    assert ids(people["admin"], status="cancelled") == []
    assert_error(client.get(URL, query_string={"status": "postponed"}, headers=login(people["admin"])), 422, "validation_failed")
    assert_error(client.get(URL, query_string={"from": "tomorrow"}, headers=login(people["admin"])), 422, "validation_failed")
    assert_error(client.get(URL, query_string={"from": "2026-12-01T19:00:00"}, headers=login(people["admin"])), 422,
                 "validation_failed")
    paged = client.get(URL, query_string={"page_size": 1}, headers=login(people["admin"]))
    assert len(paged.get_json()) == 1 and '"total": 2' in paged.headers["X-Pagination"]

    # one session: residents of the studio's community see it without its lists of people
    url = f"{URL}/{xingfu['id']}"
    seen = get(client, login, people["resident"], url)
    assert seen["invitee_ids"] is None and seen["checkins"] is None and seen["created_by"] is None
    assert seen["host"]["display_name"] == people["member"].display_name
    staff = get(client, login, people["coordinator"], url)
    assert staff["invitee_ids"] == [str(invited.id)] and staff["checkins"] == []
    for who in (heping_resident, people["other_member"], people["other_coordinator"]):
        get(client, login, who, url, expect=404)
    for bad in ("000000000000000000000000", "nope"):
        assert_error(client.get(f"{URL}/{bad}", headers=login(people["admin"])), 404, "not_found")


def test_every_list_query_uses_an_index(app, people, district, schedule):
    from yishitang.consultations import queries as session_queries

    schedule()
    start = utcnow()
    queries = [
        dict(user=people["resident"]), dict(user=people["member"]), dict(user=people["coordinator"]),
        dict(user=people["admin"]), dict(user=people["admin"], studio=str(district["xingfu"].id)),
        dict(user=people["admin"], region="211104001", status=["planned"]),
        dict(user=people["member"], start=start, end=start + dt.timedelta(days=3), order="asc"),
    ]
    for query in queries:
        plan = session_queries.search(**query).explain()["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in str(plan), (query, plan)


# --- reminders ------------------------------------------------------------------------------------

def test_reminders_go_out_once_a_day_and_once_an_hour_before(app, people, make_user, schedule, db):
    from yishitang.consultations import jobs

    guest = make_user("resident")
    session = schedule(invitee_ids=[str(guest.id)], member_ids=[str(people["other_member"].id)],
                       starts_at=at(20), ends_at=at(22))
    schedule(starts_at=at(60), ends_at=at(61))  # too far ahead for a reminder
    starts = dt.datetime.fromisoformat(session["starts_at"])
    people_concerned = {people["member"].id, people["other_member"].id, guest.id}
    clock = starts - dt.timedelta(hours=20)
    with app.app_context():
        assert jobs.send_reminders(clock) == 3
        assert jobs.send_reminders(clock) == 0
        assert jobs.send_reminders(clock + dt.timedelta(hours=5)) == 0
    reminders = list(db.notifications.find({"kind": "consultation_reminder"}))
    assert {n["user_id"] for n in reminders} == people_concerned and len(reminders) == 3
    assert reminders[0]["template"] == "reminder" and "24 小时" in reminders[0]["body"]
    with app.app_context():
        assert jobs.send_reminders(starts - dt.timedelta(minutes=50)) == 3
        assert jobs.send_reminders(starts - dt.timedelta(minutes=10)) == 0
        assert jobs.send_reminders(starts + dt.timedelta(minutes=1)) == 0  # started: no more reminders
    assert db.notifications.count_documents({"kind": "consultation_reminder"}) == 6
    assert db.notifications.count_documents({"kind": "consultation_reminder", "body": {"$regex": "1 小时"}}) == 3


# --- calendar file ----------------------------------------------------------------------------------

def test_ics_is_a_valid_calendar_event(client, login, people, schedule):
    topic = "学校周边车辆管理；接送秩序, 第二次"
    description = "议题一：上下学拥堵；\n议题二：人行横道, 信号灯\\补充。" + "很长的说明文字" * 20
    session = schedule(topic=topic, description=description, location="幸福社区党群服务中心, 二楼; 东侧会议室",
                       starts_at=at(24), ends_at=at(26))
    response = client.get(f"{URL}/{session['id']}.ics", headers=login(people["resident"]))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    raw = response.get_data()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) <= 75 for line in lines), max(map(len, lines))
    assert any(line.startswith(b" ") for line in lines)  # long lines were folded
    raw.decode("utf-8")  # folding never splits a character

    calendar = icalendar.Calendar.from_ical(raw)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert str(event["UID"]) == f"consultation-{session['id']}@yishitang"
    assert event["DTSTAMP"].dt.tzinfo is not None
    assert event["DTSTART"].dt == dt.datetime.fromisoformat(session["starts_at"])
    assert event["DTEND"].dt == dt.datetime.fromisoformat(session["ends_at"])
    assert event["DTSTART"].dt.utcoffset() == dt.timedelta(0)
    assert str(event["SUMMARY"]) == f"民生议事堂：{topic}"
    assert str(event["LOCATION"]) == "幸福社区党群服务中心, 二楼; 东侧会议室"
    assert str(event["DESCRIPTION"]).startswith(description + "\n形式：线下")
    assert str(event["STATUS"]) == "CONFIRMED"
    assert b"DTSTART:" in raw and raw.count(b"Z\r\n") >= 3  # UTC times

    client.post(f"{URL}/{session['id']}/cancel", json={}, headers=login(people["member"]))
    cancelled = icalendar.Calendar.from_ical(client.get(f"{URL}/{session['id']}.ics", headers=login(people["member"])).get_data())
    event = cancelled.walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    assert_error(client.get(f"{URL}/{session['id']}.ics", headers=login(people["other_member"])), 404, "not_found")


def test_a_retried_schedule_creates_one_session(client, login, people, district, db):
    headers = {**login(people["member"]), "Idempotency-Key": "schedule-1"}
    body = {**_body(district), "starts_at": at(30), "ends_at": at(31)}
    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    assert db.consultations.count_documents({}) == 1


def test_simultaneous_bookings_of_one_slot_make_one_session(app, login, people, district, db):
    # The first booking is held after its overlap check found the slot free, inside its open
    # transaction, while the second books an overlapping time: the studio calendar (written before
    # the check) makes the second roll back and retry after the first commits, so it sees the first.
    headers = [login(people["member"]), login(people["coordinator"])]
    body = {**_body(district), "host_member_id": str(people["member"].id)}

    def post(n):
        times = {"starts_at": at(30, n * 20), "ends_at": at(31, n * 20)}  # overlapping, not equal

        def call():
            response = app.test_client().post(URL, json={**body, **times}, headers=headers[n])
            return response.status_code, response.get_json().get("error")
        return call

    held, second = race(post(0), post(1), hold_at="consultation.booked")
    assert (held, second) == ((201, None), (409, "consultation_overlap"))
    assert db.consultations.count_documents({}) == 1
