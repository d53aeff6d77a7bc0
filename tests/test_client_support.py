"""What the mini-program reads before and around its screens: /meta, the inbox badge, UTF-8 JSON."""

from __future__ import annotations

import datetime as dt
import io
import json

from bson import ObjectId

from tests.test_app import assert_error
from tests.test_issues import ISSUES, SHED
from yishitang.issues import workflow

INBOX = "/api/v1/notifications"


def test_meta_serves_a_chinese_label_for_every_key_the_api_sends_without_sign_in(client, settings):
    from yishitang.issues.models import CATEGORIES

    response = client.get("/api/v1/meta")
    assert response.status_code == 200
    meta = response.get_json()
    labels = meta["labels"]
    assert set(labels["issue_status"]) == set(workflow.STATUSES)
    assert set(workflow.CLIENT_ACTIONS) <= set(labels["issue_action"])
    assert {action for _state, action in workflow.TRANSITIONS if not action.startswith("rate_")} \
        <= set(labels["issue_action"])
    assert set(labels["category"]) == set(CATEGORIES) and labels["category"]["traffic"] == "交通出行"
    assert set(labels["level"]) == set(workflow.LEVELS) and set(labels["rating"]) == set(workflow.RATINGS)
    assert {"resident", "member", "coordinator", "admin"} <= set(labels["role"])
    assert set(labels["consultation_status"]) == {"planned", "held", "minuted", "cancelled"}
    for names in labels.values():
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names.values()), names
    templates = {t["key"]: t["template_id"] for t in meta["subscribe_templates"]}
    assert {key: templates[key] for key in settings.wechat_templates} == settings.wechat_templates
    assert meta["uploads"]["max_bytes"] == 10 * 1024 * 1024 and meta["uploads"]["thumbnail_px"] == 320
    server_time = dt.datetime.fromisoformat(meta["server_time"])
    assert server_time.utcoffset() == dt.timedelta(hours=8)
    assert abs(server_time - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_a_template_not_configured_is_served_as_null(app, client, settings):
    from yishitang import create_app

    bare = create_app(settings.replace(wechat_templates={"rate": "tmpl-only-rate"}))
    templates = {t["key"]: t["template_id"] for t in bare.test_client().get("/api/v1/meta").get_json()["subscribe_templates"]}
    assert templates["rate"] == "tmpl-only-rate" and templates["issue_status"] is None


def test_read_all_marks_only_the_callers_unread_items_and_the_badge_follows(client, people, login):
    from yishitang.notifications.service import notify

    resident, neighbour = people["resident"], people["neighbour"]
    for n in range(3):
        notify([resident.id, neighbour.id], "test", title=f"消息{n}")
    headers = login(resident)
    first = client.get(INBOX, headers=headers).get_json()[0]
    assert client.post(f"{INBOX}/{first['id']}/read", headers=headers).status_code == 200
    assert client.get(f"{INBOX}/unread-count", headers=headers).get_json() == {"unread_count": 2}

    assert client.post(f"{INBOX}/read-all", headers=headers).get_json() == {"marked": 2, "unread_count": 0}
    assert client.get(f"{INBOX}/unread-count", headers=headers).get_json() == {"unread_count": 0}
    assert client.get(INBOX, headers=headers, query_string={"unread": 1}).get_json() == []
    assert client.post(f"{INBOX}/read-all", headers=headers).get_json()["marked"] == 0
    # the neighbour's items are untouched, and the count matches the list counted from scratch
    other = login(neighbour)
    assert client.get(f"{INBOX}/unread-count", headers=other).get_json() == {"unread_count": 3}
    assert len(client.get(INBOX, headers=other, query_string={"unread": 1}).get_json()) == 3
    assert_error(client.post(f"{INBOX}/read-all"), 401, "missing_token")


def test_json_is_sent_as_utf8_without_escapes(client, people, login, district):
    """Flask escapes every non-ASCII character by default (`\\u5e78`: 6 bytes for 3)."""
    headers = login(people["resident"])
    for n in range(3):
        assert client.post(ISSUES, headers=headers, json={**SHED, "title": f"{SHED['title']}{n}",
                                                          "studio_id": str(district["xingfu"].id)}).status_code == 201
    response = client.get(ISSUES, headers=headers)
    raw = response.get_data()
    assert response.mimetype == "application/json" and b"\\u" not in raw
    assert SHED["title"].encode("utf-8") in raw
    # The same page as Flask's default would send it: each Chinese character 6 bytes instead of 3.
    escaped = json.dumps(response.get_json(), separators=(",", ":")).encode()
    raw = raw.rstrip(b"\n")
    text = raw.decode("utf-8")
    assert len(escaped) - len(raw) == sum(6 - len(ch.encode()) for ch in text if ord(ch) > 127) > 0
    error = client.post(ISSUES, headers=headers, json={}).get_data()
    assert b"\\u" not in error and "必填".encode() in error


def test_a_studio_shows_its_members_on_duty_with_their_committee_and_no_phone(client, people, login, district,
                                                                             make_user):
    retired = make_user("member", studios=[district["xingfu"]], display_name="退休委员", active=False, phone="13700001111")
    body = client.get(f"/api/v1/studios/{district['xingfu'].id}", headers=login(people["resident"])).get_json()
    member = people["member"]
    assert body["members"] == [{"id": str(member.id), "display_name": member.display_name,
                                "committee": "社会法制委员会"}]
    assert str(retired.id) in body["member_ids"]  # the admin's list of assignments still names them
    listed = client.get("/api/v1/studios", headers=login(people["resident"]), query_string={"region": "211104002"})
    assert [s["members"] for s in listed.get_json()] == [[{"id": str(people["other_member"].id),
                                                          "display_name": people["other_member"].display_name,
                                                          "committee": None}]]


# --- the notices residents and staff were missing ----------------------------------------------------

def kinds_for(db, user) -> list[str]:
    return [n["kind"] for n in db.notifications.find({"user_id": user.id}).sort("_id", 1)]


def test_a_staff_reply_reaches_the_reporter_and_the_reporters_own_comment_does_not(client, db, people, login,
                                                                                  make_issue):
    resident, member = people["resident"], people["member"]
    issue = make_issue(resident)
    url = f"{ISSUES}/{issue['id']}/actions"
    assert client.post(url, json={"action": "comment", "note": "请问什么时候处理？"}, headers=login(resident)).status_code == 200
    assert "issue_comment" not in kinds_for(db, resident)
    assert client.post(url, json={"action": "comment", "note": "已联系物业，本周内上门查看", "visit": True},
                       headers=login(member)).status_code == 200
    note = db.notifications.find_one({"user_id": resident.id, "kind": "issue_comment"})
    assert note["body"].endswith("已联系物业，本周内上门查看") and note["page"] == f"pages/issue/detail?id={issue['id']}"
    assert kinds_for(db, member).count("issue_comment") == 0


def test_an_unsatisfied_rating_tells_the_staff_the_issue_is_reopened(client, db, people, login, make_issue):
    resident, member = people["resident"], people["member"]
    issue = make_issue(resident)
    url = f"{ISSUES}/{issue['id']}"
    for action, note in (("accept", "已受理"), ("resolve", "已修好")):
        assert client.post(f"{url}/actions", json={"action": action, "note": note}, headers=login(member)).status_code == 200
    response = client.post(f"{url}/feedback", json={"rating": "unsatisfied", "comment": "还是漏水"}, headers=login(resident))
    assert response.get_json()["status"] == "in_progress"
    note = db.notifications.find_one({"user_id": member.id, "kind": "issue_reopened"})
    assert note is not None and "还是漏水" in note["body"]
    assert db.notifications.count_documents({"kind": "issue_reopened", "user_id": {"$ne": member.id}}) == 0


def test_minutes_that_discuss_an_issue_tell_its_reporter(client, db, people, login, make_issue):
    resident, member = people["resident"], people["member"]
    issue = make_issue(resident)
    assert client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "accept"}, headers=login(member)).status_code == 200
    start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0) + dt.timedelta(days=1)
    session = client.post("/api/v1/consultations", headers=login(member), json={
        "studio_id": issue["studio_id"], "topic": "充电车棚选址", "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "location": "社区二楼", "capacity": 20,
        "issue_ids": [issue["id"]]})
    assert session.status_code == 201, session.get_json()["errors"]
    now = dt.datetime.now(dt.timezone.utc)  # the evening comes: the session started five minutes ago
    db.consultations.update_one({"_id": ObjectId(session.get_json()["id"])},
                                {"$set": {"starts_at": now - dt.timedelta(minutes=5), "ends_at": now + dt.timedelta(hours=1)}})
    minutes = {"summary": "讨论了车棚选址。", "outcomes": [{"issue_id": issue["id"], "decision": "物业测算用电负荷",
                                                         "owner_unit": "幸福物业", "resolved": False}]}
    response = client.put(f"/api/v1/consultations/{session.get_json()['id']}/minutes", json=minutes, headers=login(member))
    assert response.status_code == 200, response.get_json()
    assert "issue_consulted" in kinds_for(db, resident)


def test_every_time_shown_carries_the_display_offset(client, people, login, make_issue):
    """Issues, their timelines, notifications, uploads, sessions and the caller: all +08:00."""
    import re

    from tests.test_photos import photo

    resident, member = people["resident"], people["member"]
    headers = login(resident)
    upload = client.post("/api/v1/files", headers=headers, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(photo(32, 32)), "a.jpg")}).get_json()
    issue = make_issue(resident, attachments=[upload["id"]])
    assert client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "accept"}, headers=login(member)).status_code == 200
    bodies = [client.get(f"{ISSUES}/{issue['id']}", headers=headers).get_data(as_text=True),
              client.get(ISSUES, headers=headers).get_data(as_text=True),
              client.get(INBOX, headers=headers).get_data(as_text=True),
              json.dumps(upload), client.get("/api/v1/me", headers=headers).get_data(as_text=True),
              client.get("/api/v1/meta").get_data(as_text=True)]
    times = [t for body in bodies for t in re.findall(r'"(\d{4}-\d\d-\d\dT[^"]+)"', body)]
    assert len(times) >= 12 and all(t.endswith("+08:00") for t in times), [t for t in times if not t.endswith("+08:00")]


def test_the_feed_shows_the_nearest_studios_their_public_issues_and_coming_sessions(client, db, people, login,
                                                                                   make_issue, district):
    resident, member = people["resident"], people["member"]
    near_xingfu = "123.401,41.801"
    mine = make_issue(resident, title="幸福社区的车棚")
    far = make_issue(people["neighbour"], studio="liushu", title="柳树村的路")
    start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0) + dt.timedelta(days=1)
    session = client.post("/api/v1/consultations", headers=login(member), json={
        "studio_id": str(district["xingfu"].id), "topic": "车棚选址", "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=2)).isoformat(), "location": "社区二楼", "capacity": 20}).get_json()

    feed = client.get("/api/v1/feed", headers=login(resident), query_string={"near": near_xingfu, "studios": 2})
    assert feed.status_code == 200, feed.get_json()
    body = feed.get_json()
    assert [s["name"] for s in body["studios"]] == ["幸福社区委员工作室", "和平社区委员工作室"]
    assert body["studios"][0]["members"][0]["id"] == str(member.id) and body["studios"][0]["distance_m"] < 500
    assert [i["id"] for i in body["issues"]] == [mine["id"]]  # 柳树村 is not among the two nearest
    assert body["issues"][0]["contact_phone"] == "13812345678" and "allowed_actions" in body["issues"][0]
    assert [c["id"] for c in body["consultations"]] == [session["id"]]
    assert body["consultations"][0]["starts_at"].endswith("+08:00")
    # a neighbour far away sees the public side only: a masked name, no phone
    other = client.get("/api/v1/feed", headers=login(people["other_member"]),
                       query_string={"near": near_xingfu, "studios": 2}).get_json()
    assert [i["id"] for i in other["issues"]] == [mine["id"]] and other["issues"][0]["contact_phone"] is None
    assert other["issues"][0]["reporter"]["display_name"].endswith("*") and other["consultations"] == []
    three = client.get("/api/v1/feed", headers=login(resident), query_string={"near": near_xingfu}).get_json()
    assert [i["id"] for i in three["issues"]] == [far["id"], mine["id"]]  # newest first across the studios
    assert_error(client.get("/api/v1/feed", headers=login(resident), query_string={"near": "east"}), 422,
                 "validation_failed")
