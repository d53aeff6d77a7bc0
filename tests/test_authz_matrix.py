"""Who may do what: every route of the URL map x every role, on objects in and out of the caller's reach.

`MATRIX` below is the one table of expectations: one row per route (method and rule) and object or
variant, one column per role, the HTTP status each role gets. A route in the URL map without a
row fails `test_every_route_has_a_row` (and a row for a route that is gone fails it too).

Each route is one test: it builds the small world once (restoring a snapshot of it after the
first test of the worker), then sends the row's request as each role. A request that succeeds in
writing is followed by a restore, so every cell sees the same world; a refused request (4xx) that
changed any document (but the rate-limit counters, which count refused attempts) fails its cell. Every answer is also checked
for what must never leak: another resident's phone, WeChat openid, private issue, feedback or inbox.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from bson import ObjectId
from pymongo import monitoring

from tests.test_files import PNG

# --- the table ------------------------------------------------------------------------------------

ROLES = ("anon", "resident", "neighbour", "member", "other_member", "coordinator", "other_coordinator",
         "district_coordinator", "admin")

# Columns: anon = no token; res = resident (home 幸福社区, reporter of `issue`, `resolved`, `board`);
# nbr = neighbour (another resident of 幸福社区, reporter of `far`); mem = member of 幸福社区 studio;
# omem = member of 柳树村 studio (another township); crd = coordinator of 东湖街道 211104001 (幸福);
# ocrd = coordinator of 西山镇 211104002 (柳树); dcrd = district coordinator; adm = admin.
#
# Objects (the `object` column names the one in the route's path, or a variant of the request):
#   issue     the resident's issue at 幸福 held for WeChat review: off the public board, accepted,
#             with a photo (`file`); `issue:supervise` sends `supervise` instead of `comment`
#   far       the neighbour's issue at 柳树 (other township), held for review, accepted
#   resolved  the resident's issue at 幸福 on the public board, resolved (awaiting feedback)
#   board     the resident's issue at 幸福 on the public board, closed with a feedback comment, photo `board_file`
#   loose     the resident's upload attached to nothing
#   session   a session at 幸福 (host: member; neighbour invited) that started 10 minutes ago
#   far_session  the same at 柳树 (host: other member)
#   note      the resident's inbox item
#   xingfu / liushu  the studios; township = region 211104001; resident = the resident's account
#   integration  an Open311 api key issued by the admin; board_number / issue_number the issues' numbers
#   far (no path object)  the same request aimed at 柳树 / 211104002 instead of 幸福 / 211104001
#   public / proxied  /metrics from a public address / relayed by a proxy (X-Forwarded-For); the test
#             client's own address is loopback, which may scrape (no METRICS_TOKEN in the tests)
# Open311 (/open311/v2) is public and ignores the bearer token: every role gets the same answer, and
# the public reads must hold nothing private (no held issue, phone or feedback comment).
MATRIX_TEXT = """
method rule                                               object        anon res nbr mem omem crd ocrd dcrd adm
POST   /api/v1/auth/wechat-login                          -              200 200 200 200 200  200 200  200  200
POST   /api/v1/auth/password-login                        -              200 200 200 200 200  200 200  200  200
POST   /api/v1/auth/refresh                               -              401 200 200 200 200  200 200  200  200
POST   /api/v1/auth/logout                                -              401 204 204 204 204  204 204  204  204

GET    /api/v1/me                                         -              401 200 200 200 200  200 200  200  200
PATCH  /api/v1/me                                         -              401 200 200 200 200  200 200  200  200
DELETE /api/v1/me                                         -              401 204 204 403 403  403 403  403  403
GET    /api/v1/me/export                                  -              401 200 200 200 200  200 200  200  200

GET    /api/v1/users                                      -              401 403 403 403 403  403 403  403  200
POST   /api/v1/users                                      -              401 403 403 403 403  403 403  403  201
GET    /api/v1/users/<user_id>                            resident       401 403 403 403 403  403 403  403  200
PATCH  /api/v1/users/<user_id>                            resident       401 403 403 403 403  403 403  403  200

GET    /api/v1/regions                                    -              401 200 200 200 200  200 200  200  200
POST   /api/v1/regions                                    -              401 403 403 403 403  403 403  403  201
GET    /api/v1/regions/<code>                             township       401 200 200 200 200  200 200  200  200
PATCH  /api/v1/regions/<code>                             township       401 403 403 403 403  403 403  403  200

GET    /api/v1/studios                                    -              401 200 200 200 200  200 200  200  200
POST   /api/v1/studios                                    -              401 403 403 403 403  403 403  403  201
GET    /api/v1/studios/<studio_id>                        xingfu         401 200 200 200 200  200 200  200  200
PATCH  /api/v1/studios/<studio_id>                        xingfu         401 403 403 403 403  403 403  403  200
PUT    /api/v1/studios/<studio_id>/members                xingfu         401 403 403 403 403  200 403  200  200
PUT    /api/v1/studios/<studio_id>/members                liushu         401 403 403 403 403  403 200  200  200

POST   /api/v1/files                                      -              401 201 201 201 201  201 201  201  201
GET    /api/v1/files/<file_id>                            file           401 200 404 200 404  200 404  200  200
GET    /api/v1/files/<file_id>                            board_file     401 200 404 200 404  200 404  200  200
GET    /api/v1/files/<file_id>                            loose          401 200 404 404 404  404 404  404  404
GET    /api/v1/files/<file_id>/thumb                      file           401 200 404 200 404  200 404  200  200
GET    /api/v1/files/<file_id>/thumb                      board_file     401 200 404 200 404  200 404  200  200
GET    /api/v1/files/<file_id>/thumb                      loose          401 200 404 404 404  404 404  404  404

GET    /api/v1/issues                                     -              401 200 200 200 200  200 200  200  200
GET    /api/v1/issues                                     board          401 200 200 200 200  200 200  200  200
POST   /api/v1/issues                                     -              401 201 201 403 403  403 403  403  403
GET    /api/v1/issues/similar                             -              401 200 200 200 200  200 200  200  200
GET    /api/v1/issues/<issue_id>                          issue          401 200 404 200 404  200 404  200  200
GET    /api/v1/issues/<issue_id>                          far            401 404 200 404 200  404 200  200  200
GET    /api/v1/issues/<issue_id>                          board          401 200 200 200 200  200 200  200  200
POST   /api/v1/issues/<issue_id>/actions                  issue          401 200 404 200 404  200 404  200  200
POST   /api/v1/issues/<issue_id>/actions                  issue:supervise 401 403 404 403 404 200 404  200  200
POST   /api/v1/issues/<issue_id>/actions                  far            401 404 200 404 200  404 200  200  200
POST   /api/v1/issues/<issue_id>/actions                  resolved       401 200 403 200 403  200 403  200  200
POST   /api/v1/issues/<issue_id>/feedback                 resolved       401 200 403 403 403  403 403  403  403
POST   /api/v1/issues/<issue_id>/feedback                 issue          401 409 404 403 404  403 404  403  403
POST   /api/v1/issues/<issue_id>/supports                 resolved       401 409 200 403 403  403 403  403  403
POST   /api/v1/issues/<issue_id>/supports                 issue          401 409 404 403 403  403 403  403  403
DELETE /api/v1/issues/<issue_id>/supports                 resolved       401 200 200 403 403  403 403  403  403
DELETE /api/v1/issues/<issue_id>/supports                 issue          401 200 404 403 403  403 403  403  403

GET    /api/v1/consultations                              -              401 200 200 200 200  200 200  200  200
POST   /api/v1/consultations                              -              401 403 403 201 403  201 403  201  201
POST   /api/v1/consultations                              far            401 403 403 403 201  403 201  201  201
GET    /api/v1/consultations/<consultation_id>            session        401 200 200 200 404  200 404  200  200
GET    /api/v1/consultations/<consultation_id>            far_session    401 404 404 404 200  404 200  200  200
PATCH  /api/v1/consultations/<consultation_id>            session        401 403 403 200 404  200 404  200  200
PATCH  /api/v1/consultations/<consultation_id>            far_session    401 403 403 404 200  404 200  200  200
GET    /api/v1/consultations/<consultation_id>.ics        session        401 200 200 200 404  200 404  200  200
GET    /api/v1/consultations/<consultation_id>.ics        far_session    401 404 404 404 200  404 200  200  200
POST   /api/v1/consultations/<consultation_id>/cancel     session        401 403 403 200 404  200 404  200  200
POST   /api/v1/consultations/<consultation_id>/cancel     far_session    401 403 403 404 200  404 200  200  200
GET    /api/v1/consultations/<consultation_id>/checkin-code session      401 403 403 200 404  200 404  200  200
GET    /api/v1/consultations/<consultation_id>/checkin-code far_session  401 403 403 404 200  404 200  200  200
POST   /api/v1/consultations/<consultation_id>/checkins   session        401 201 201 201 404  201 404  201  201
POST   /api/v1/consultations/<consultation_id>/checkins   far_session    401 404 404 404 201  404 201  201  201
PUT    /api/v1/consultations/<consultation_id>/minutes    session        401 403 403 200 404  200 404  200  200
PUT    /api/v1/consultations/<consultation_id>/minutes    far_session    401 403 403 404 200  404 200  200  200

GET    /api/v1/notifications                              -              401 200 200 200 200  200 200  200  200
POST   /api/v1/notifications/<notification_id>/read       note           401 200 404 404 404  404 404  404  404
POST   /api/v1/notifications/read-all                     -              401 200 200 200 200  200 200  200  200
GET    /api/v1/notifications/unread-count                 -              401 200 200 200 200  200 200  200  200

GET    /api/v1/meta                                       -              200 200 200 200 200  200 200  200  200
GET    /api/v1/feed                                       -              401 200 200 200 200  200 200  200  200
GET    /api/v1/wechat/events                              -              422 422 422 422 422  422 422  422  422
GET    /api/v1/wechat/events                              signed         200 200 200 200 200  200 200  200  200
GET    /api/v1/wechat/events                              forged         403 403 403 403 403  403 403  403  403
POST   /api/v1/wechat/events                              -              422 422 422 422 422  422 422  422  422
POST   /api/v1/wechat/events                              signed         200 200 200 200 200  200 200  200  200
POST   /api/v1/wechat/events                              forged         403 403 403 403 403  403 403  403  403

GET    /api/v1/stats/overview                             -              401 403 403 403 403  200 403  200  200
GET    /api/v1/stats/overview                             far            401 403 403 403 403  403 200  200  200
GET    /api/v1/stats/overview.csv                         -              401 403 403 403 403  200 403  200  200
GET    /api/v1/stats/overview.csv                         far            401 403 403 403 403  403 200  200  200
GET    /api/v1/stats/overview.xlsx                        -              401 403 403 403 403  200 403  200  200
GET    /api/v1/stats/overview.xlsx                        far            401 403 403 403 403  403 200  200  200

GET    /api/v1/integrations                               -              401 403 403 403 403  403 403  403  200
POST   /api/v1/integrations                               -              401 403 403 403 403  403 403  403  201
GET    /api/v1/integrations/<integration_id>              integration    401 403 403 403 403  403 403  403  200
POST   /api/v1/integrations/<integration_id>/revoke       integration    401 403 403 403 403  403 403  403  200

GET    /open311/v2/                                       -              200 200 200 200 200  200 200  200  200
GET    /open311/v2/discovery.<any(json, xml):fmt>         -              200 200 200 200 200  200 200  200  200
GET    /open311/v2/services.<any(json, xml):fmt>          -              200 200 200 200 200  200 200  200  200
GET    /open311/v2/services/<service_code>.<any(json, xml):fmt> traffic  200 200 200 200 200  200 200  200  200
GET    /open311/v2/requests.<any(json, xml):fmt>          -              200 200 200 200 200  200 200  200  200
POST   /open311/v2/requests.<any(json, xml):fmt>          -              201 201 201 201 201  201 201  201  201
POST   /open311/v2/requests.<any(json, xml):fmt>          no_key         403 403 403 403 403  403 403  403  403
GET    /open311/v2/requests/<service_request_id>.<any(json, xml):fmt> board_number 200 200 200 200 200 200 200 200 200
GET    /open311/v2/requests/<service_request_id>.<any(json, xml):fmt> issue_number 404 404 404 404 404 404 404 404 404
GET    /open311/v2/<path:rest>                            nowhere        404 404 404 404 404  404 404  404  404
POST   /open311/v2/<path:rest>                            nowhere        404 404 404 404 404  404 404  404  404
PUT    /open311/v2/<path:rest>                            nowhere        404 404 404 404 404  404 404  404  404
PATCH  /open311/v2/<path:rest>                            nowhere        404 404 404 404 404  404 404  404  404
DELETE /open311/v2/<path:rest>                            nowhere        404 404 404 404 404  404 404  404  404

GET    /healthz                                           -              200 200 200 200 200  200 200  200  200
GET    /readyz                                            -              200 200 200 200 200  200 200  200  200
GET    /metrics                                           -              200 200 200 200 200  200 200  200  200
GET    /metrics                                           public         403 403 403 403 403  403 403  403  403
GET    /metrics                                           proxied        403 403 403 403 403  403 403  403  403
GET    /openapi.json                                      -              200 200 200 200 200  200 200  200  200
GET    /docs                                              -              200 200 200 200 200  200 200  200  200
GET    /docs/assets/<path:filename>                       swagger-ui.css 200 200 200 200 200  200 200  200  200
GET    /dashboard                                         -              200 200 200 200 200  200 200  200  200
GET    /dashboard/static/<path:filename>                  dashboard.js   200 200 200 200 200  200 200  200  200
GET    /static/<path:filename>                            nothing.js     404 404 404 404 404  404 404  404  404
"""


def parse_matrix(text: str) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    table: dict = {}
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in lines[1:]:
        # Werkzeug's `<any(json, xml):fmt>` holds a space; keep it in the rule.
        method, rule, case, *statuses = line.replace("json, xml", "json,\0xml").split()
        rule = rule.replace("json,\0xml", "json, xml")
        assert len(statuses) == len(ROLES), line
        row = table.setdefault((method, rule), {})
        assert case not in row, f"two rows for {method} {rule} {case}"
        row[case] = dict(zip(ROLES, map(int, statuses), strict=True))
    return table


MATRIX = parse_matrix(MATRIX_TEXT)

# --- what must never leak -------------------------------------------------------------------------

RESIDENT_PHONE, NEIGHBOUR_PHONE = "13812345678", "13900001111"
PRIVATE_TITLE, FAR_TITLE = "私密议题甲：楼道堆物待审核", "私密议题乙：村口路灯待审核"
FEEDBACK_COMMENT = "评价悄悄话：维修师傅很负责"
HELD = "待审核"  # the fake WeChat holds text containing this for review: the issue stays off the board
# Who may see what is the resident's (at 幸福, in the coordinator's township) and what is the
# neighbour's (their issue at 柳树, in the other township).
RESIDENTS_SIDE = {"resident", "member", "coordinator", "district_coordinator", "admin"}
NEIGHBOURS_SIDE = {"neighbour", "other_member", "other_coordinator", "district_coordinator", "admin"}


def secrets_of(world) -> dict[str, set[str]]:
    """Each value that must appear only in answers to the roles listed."""
    return {
        RESIDENT_PHONE: RESIDENTS_SIDE,
        NEIGHBOUR_PHONE: NEIGHBOURS_SIDE,
        world.people["resident"].openid: {"resident"},
        world.people["neighbour"].openid: {"neighbour"},
        PRIVATE_TITLE: RESIDENTS_SIDE,
        FAR_TITLE: NEIGHBOURS_SIDE,
        FEEDBACK_COMMENT: RESIDENTS_SIDE,
        world.ids["note"]: {"resident"},
        world.ids["loose"]: {"resident"},
    }


# --- the world ------------------------------------------------------------------------------------

class World:
    def __init__(self, people, ids):
        self.people = people  # role -> User (None for anon)
        self.ids = ids  # object name -> id or code


_built: dict = {}  # per test process: the snapshot and ids of the world, built by the first test


class WriteTracker(monitoring.CommandListener):
    """The collections written since the last restore, so that a restore rewrites only those
    (a full restore costs ~150 ms on the embedded server; most cells touch two or three)."""

    WRITES = {"insert", "update", "delete", "findAndModify"}

    def __init__(self):
        self.written: set[str] = set()  # sent a write (to restore)
        self.changed: set[str] = set()  # a write that changed a document (a refused request must not)
        self.pending: dict[int, str] = {}

    def started(self, event):
        if event.command_name in self.WRITES:
            self.written.add(event.command[event.command_name])
            self.pending[event.request_id] = event.command[event.command_name]

    def succeeded(self, event):
        name = self.pending.pop(event.request_id, None)
        reply = event.reply
        if name is not None and (reply.get("nModified", reply.get("n", 0)) or reply.get("upserted")
                                 or (reply.get("lastErrorObject") or {}).get("n")):
            self.changed.add(name)

    def failed(self, event):
        pass


# Registered at import, i.e. at collection, before any fixture creates the app's client.
TRACKER = WriteTracker()
monitoring.register(TRACKER)


def snapshot(db) -> dict:
    return {name: list(db[name].find()) for name in db.list_collection_names() if not name.startswith("system.")}


# A refused request writes nothing, but for the counter of attempts that refuses the next ones.
COUNTED_WHEN_REFUSED = {"rate_limits"}


def restore(db, saved: dict, only=None, emptied=False) -> None:
    names = [n for n in db.list_collection_names() if not n.startswith("system.")] if only is None else only
    for name in names:
        if not emptied:
            db[name].delete_many({})
        if saved.get(name):
            db[name].insert_many(saved[name])
    TRACKER.written.clear()
    TRACKER.changed.clear()


def build(request, app, client, db, fake_wechat) -> dict:
    from yishitang.consultations import service as consultations
    from yishitang.db import utcnow

    district = request.getfixturevalue("district")
    people = request.getfixturevalue("people")
    login = request.getfixturevalue("login")
    make_issue = request.getfixturevalue("make_issue")
    resident, neighbour, member, other_member = (people[k] for k in ("resident", "neighbour", "member", "other_member"))
    fake_wechat.set_text_verdict(HELD, "review", 20001)

    def call(method, url, user, expect, **kwargs):
        response = client.open(url, method=method, headers=login(user), **kwargs)
        assert response.status_code == expect, (method, url, response.get_json())
        return response.get_json()

    def photo(user):
        return call("POST", "/api/v1/files", user, 201, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(PNG), "photo.png")})["id"]

    def act(user, issue_id, action, **extra):
        call("POST", f"/api/v1/issues/{issue_id}/actions", user, 200, json={"action": action, **extra})

    ids = {"file": photo(resident), "board_file": photo(resident), "loose": photo(resident)}
    ids["issue"] = make_issue(resident, "xingfu", title=PRIVATE_TITLE, attachments=[ids["file"]])["id"]
    act(member, ids["issue"], "accept")
    ids["far"] = make_issue(neighbour, "liushu", title=FAR_TITLE, contact_phone=NEIGHBOUR_PHONE)["id"]
    act(other_member, ids["far"], "accept")
    ids["resolved"] = make_issue(resident, "xingfu", title="小区路灯不亮")["id"]
    act(member, ids["resolved"], "accept")
    act(member, ids["resolved"], "resolve", note="已更换灯泡")
    ids["board"] = make_issue(resident, "xingfu", title="楼道扶手松动", attachments=[ids["board_file"]])["id"]
    act(member, ids["board"], "accept")
    act(member, ids["board"], "resolve", note="已加固扶手")
    call("POST", f"/api/v1/issues/{ids['board']}/feedback", resident, 200,
         json={"rating": "satisfied", "comment": FEEDBACK_COMMENT})
    assert db.issues.count_documents({"on_board": True}) == 2  # resolved, board; the two held ones are not

    ids["note"] = str(db.notifications.find_one({"user_id": resident.id, "kind": "issue_accepted"})["_id"])
    ids["board_number"] = db.issues.find_one({"_id": ObjectId(ids["board"])})["number"]
    ids["issue_number"] = db.issues.find_one({"_id": ObjectId(ids["issue"])})["number"]
    hotline = call("POST", "/api/v1/integrations", people["admin"], 201, json={"name": "12345 热线", "contact": "区热线办"})
    ids["integration"], ids["api_key"] = hotline["id"], hotline["api_key"]
    now = utcnow()
    with app.test_request_context():
        for name, studio, host in (("session", "xingfu", member), ("far_session", "liushu", other_member)):
            session = consultations.create(
                host, studio_id=str(district[studio].id), topic="楼道与路灯协商会", location="社区党群服务中心",
                starts_at=now - dt.timedelta(minutes=10), ends_at=now + dt.timedelta(hours=3), capacity=100,
                invitee_ids=[str(neighbour.id)] if studio == "xingfu" else [], now=now - dt.timedelta(hours=1))
            ids[name] = str(session.id)
    ids.update({"xingfu": str(district["xingfu"].id), "liushu": str(district["liushu"].id), "township": "211104001",
                "resident": str(resident.id), "swagger-ui.css": "swagger-ui.css", "dashboard.js": "dashboard.js",
                "nothing.js": "nothing.js", "traffic": "traffic", "nowhere": "nowhere/at-all"})
    return {"snapshot": snapshot(db), "ids": ids, "user_ids": {role: user.id for role, user in people.items()}}


@pytest.fixture
def world(request, app, client, db, fake_wechat):
    from yishitang.users.models import User

    if not _built:
        TRACKER.written.clear()
        built = build(request, app, client, db, fake_wechat)
        assert "issues" in TRACKER.written, "the write tracker must be registered before the app connects"
        _built.update(built)
        TRACKER.written.clear()
    else:  # conftest's clean_state has just emptied every collection
        restore(db, _built["snapshot"], only=list(_built["snapshot"]), emptied=True)
    people = {role: User.objects.get(id=uid) for role, uid in _built["user_ids"].items()}
    return World({"anon": None, **people}, _built["ids"])


# --- one request per cell -------------------------------------------------------------------------

def in_future(days):
    moment = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0) + dt.timedelta(days=days)
    return moment.isoformat()


def request_for(app, fake_wechat, world, method, rule, case, role):
    """(url, keyword arguments for client.open) of the row's request as `role`."""
    from yishitang.consultations import checkin
    from yishitang.users import tokens

    ids, people = world.ids, world.people
    obj, _, variant = case.partition(":")
    far = case == "far" and "<" not in rule
    url = rule.replace("<any(json, xml):fmt>", "json")
    url = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", lambda _m: ids[obj], url)
    xingfu, liushu = ids["xingfu"], ids["liushu"]
    kwargs: dict = {}
    key = (method, rule)
    if key == ("POST", "/api/v1/auth/wechat-login"):
        kwargs["json"] = {"code": fake_wechat.issue_login_code(f"o-matrix-{role}")}
    elif key == ("POST", "/api/v1/auth/password-login"):
        kwargs["json"] = {"username": "admin1", "password": "admin-pass-1"}
    elif key == ("POST", "/api/v1/auth/refresh"):
        if people[role] is None:
            kwargs["json"] = {"refresh_token": "made-up-refresh-token"}
        else:
            with app.test_request_context():
                kwargs["json"] = {"refresh_token": tokens.issue(people[role])["refresh_token"]}
    elif key == ("PATCH", "/api/v1/me"):
        kwargs["json"] = {"display_name": "改个名字"}
    elif key == ("POST", "/api/v1/users"):
        kwargs["json"] = {"username": f"matrix-{role}", "password": "matrix-pass-1", "display_name": "新委员",
                          "roles": ["member"], "studio_ids": [xingfu]}
    elif key == ("PATCH", "/api/v1/users/<user_id>"):
        kwargs["json"] = {"display_name": "改名居民"}
    elif key == ("POST", "/api/v1/regions"):
        kwargs["json"] = {"code": "211104001003", "name": "新建社区", "kind": "community", "parent_code": "211104001"}
    elif key == ("PATCH", "/api/v1/regions/<code>"):
        kwargs["json"] = {"name": "东湖街道新名"}
    elif key == ("POST", "/api/v1/studios"):
        kwargs["json"] = {"name": "和平社区第二工作室", "region_code": "211104001002"}
    elif key == ("PATCH", "/api/v1/studios/<studio_id>"):
        kwargs["json"] = {"open_hours": "周一至周五 9:00-17:00"}
    elif key == ("PUT", "/api/v1/studios/<studio_id>/members"):
        kwargs["json"] = {"member_ids": [str(people["member" if obj == "xingfu" else "other_member"].id)]}
    elif key == ("POST", "/api/v1/files"):
        kwargs.update(content_type="multipart/form-data", data={"file": (io.BytesIO(PNG), "photo.png")})
    elif key == ("GET", "/api/v1/issues") and case == "board":
        kwargs["query_string"] = {"board": 1, "studio": xingfu}
    elif key == ("POST", "/api/v1/issues"):
        kwargs["json"] = {"title": "垃圾分类亭异味", "category": "environment", "studio_id": xingfu,
                          "description": "垃圾分类亭夏天异味很大，希望增加清运次数。"}
    elif key == ("GET", "/api/v1/feed"):
        kwargs["query_string"] = {"near": "123.401,41.801"}
    elif key == ("GET", "/api/v1/issues/similar"):
        kwargs["query_string"] = {"studio": xingfu, "title": "路灯不亮"}
    elif key == ("POST", "/api/v1/issues/<issue_id>/actions"):
        kwargs["json"] = {"action": variant or "comment", "note": "跟进一下进展"}
    elif key == ("POST", "/api/v1/issues/<issue_id>/feedback"):
        kwargs["json"] = {"rating": "satisfied", "comment": "谢谢"}
    elif key == ("POST", "/api/v1/consultations"):
        host = people["other_member" if far else "member"]
        kwargs["json"] = {"studio_id": liushu if far else xingfu, "topic": "下月议事会", "location": "村委会",
                          "starts_at": in_future(20), "ends_at": in_future(20.05), "capacity": 20,
                          "host_member_id": str(host.id)}
    elif key == ("PATCH", "/api/v1/consultations/<consultation_id>"):
        kwargs["json"] = {"topic": "楼道与路灯协商会（改）"}
    elif key == ("POST", "/api/v1/consultations/<consultation_id>/cancel"):
        kwargs["json"] = {"reason": "天气原因"}
    elif key == ("POST", "/api/v1/consultations/<consultation_id>/checkins"):
        with app.test_request_context():
            kwargs["json"] = {"code": checkin.checkin_code(ids[obj], people["admin"])["code"]}
    elif key == ("PUT", "/api/v1/consultations/<consultation_id>/minutes"):
        kwargs["json"] = {"summary": "大家讨论了楼道与路灯问题。", "outcomes": []}
    elif key == ("POST", "/api/v1/integrations"):
        kwargs["json"] = {"name": "市民热线", "contact": "区热线办 024-12345678"}
    elif key == ("POST", "/open311/v2/requests.<any(json, xml):fmt>"):
        kwargs["data"] = {"service_code": "community_facilities", "description": "5 号楼单元门禁坏了一个月",
                          "lat": "41.801", "long": "123.401", **({} if case == "no_key" else {"api_key": ids["api_key"]})}
    elif rule == "/api/v1/wechat/events" and case in ("signed", "forged"):
        from yishitang.wechatpush.service import signature

        token = "yishitang-demo-push-token" if case == "signed" else "someone-elses-token"
        kwargs["query_string"] = {"signature": signature(token, "1700000000", "n"), "timestamp": "1700000000",
                                  "nonce": "n", "echostr": "e"}
        if method == "POST":  # a verdict for a trace nobody has: acknowledged, nothing changes
            kwargs["json"] = {"MsgType": "event", "Event": "wxa_media_check", "trace_id": "t-none",
                              "errcode": 0, "result": {"suggest": "pass", "label": 100}}
    elif key == ("GET", "/metrics") and case == "public":
        kwargs["environ_base"] = {"REMOTE_ADDR": "8.8.8.8"}
    elif key == ("GET", "/metrics") and case == "proxied":
        kwargs["environ_base"] = {"HTTP_X_FORWARDED_FOR": "10.0.0.7"}
    elif key[0] == "GET" and rule.startswith("/api/v1/stats/"):
        kwargs["query_string"] = {"region": "211104002" if far else "211104001"}
    return url, kwargs


def check_cell(world, role, method, rule, case, expected, response, problems):
    status = response.status_code
    body = response.get_data()
    if status != expected:
        detail = response.get_json(silent=True) or {}
        problems.append(f"{case:>12} {role:>20}: expected {expected}, got {status} {detail.get('error', '')}")
        return
    if status >= 400 and response.mimetype == "application/json" and not rule.startswith("/open311/"):
        error = response.get_json()
        if not (error.get("code") == status and error.get("error") and re.search(r"[\u4e00-\u9fff]", error.get("message", ""))):
            problems.append(f"{case:>12} {role:>20}: error without the one shape: {error}")
    for secret, allowed in secrets_of(world).items():
        if role not in allowed and secret.encode() in body:
            problems.append(f"{case:>12} {role:>20}: the answer holds {secret!r}, which only {sorted(allowed)} may see")
    if rule.startswith("/dashboard") and status == 200:
        problems.extend(f"{case:>12} {role:>20}: {p}" for p in dashboard_header_problems(response))
    if rule.startswith("/api/v1/files/<file_id>") and status == 200:
        from yishitang.files.models import CONTENT_TYPES

        if response.mimetype not in CONTENT_TYPES or response.headers.get("X-Content-Type-Options") != "nosniff" \
                or "sandbox" not in response.headers.get("Content-Security-Policy", ""):
            problems.append(f"{case:>12} {role:>20}: an upload served as {response.content_type} without nosniff and a sandbox")


def dashboard_header_problems(response) -> list[str]:
    """The coordinators' page and its files: no framing, no inline or foreign script, no sniffing, no referrer."""
    headers, problems = response.headers, []
    csp = headers.get("Content-Security-Policy", "")
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        if directive not in csp:
            problems.append(f"CSP lacks {directive!r}: {csp!r}")
    if "unsafe-inline" in csp or "unsafe-eval" in csp or "*" in csp:
        problems.append(f"CSP allows too much: {csp!r}")
    expected = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    problems += [f"{name}: {headers.get(name)!r}" for name, value in expected.items() if headers.get(name) != value]
    return problems


def expected_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}


# --- the tests ------------------------------------------------------------------------------------

def test_every_route_has_a_row(app):
    """A new route must say who may call it before it ships; a removed route must leave the table."""
    routes = expected_routes(app)
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without a row in tests/test_authz_matrix.py MATRIX: {missing}"
    assert not stale, f"rows for routes that are not in the URL map: {stale}"


@pytest.mark.parametrize("method, rule", sorted(MATRIX), ids=[f"{m} {r}" for m, r in sorted(MATRIX)])
def test_route(method, rule, app, client, db, fake_wechat, world, login):
    problems: list[str] = []
    tokens = {role: login(user) if user is not None else {} for role, user in world.people.items()}
    TRACKER.written.clear()  # signing in wrote refresh tokens; the access tokens are what the cells use
    TRACKER.changed.clear()
    for case, expectations in MATRIX[(method, rule)].items():
        for role in ROLES:
            url, kwargs = request_for(app, fake_wechat, world, method, rule, case, role)
            response = client.open(url, method=method, headers=tokens[role], **kwargs)
            check_cell(world, role, method, rule, case, expectations[role], response, problems)
            if response.status_code >= 400:
                problems.extend(f"{case} {role}: refused ({response.status_code}) but changed {name}"
                                for name in sorted(TRACKER.changed - COUNTED_WHEN_REFUSED))
            if TRACKER.written:
                restore(db, _built["snapshot"], only=sorted(TRACKER.written))  # the next cell sees the same world
    assert not problems, f"{method} {rule}\n" + "\n".join(problems)


# --- another resident's data, asked for explicitly ----------------------------------------------------

def test_a_resident_cannot_read_another_residents_phone_issue_file_inbox_or_feedback(client, world, login):
    """The neighbour tries every place where the resident's data lives."""
    resident, neighbour = world.people["resident"], world.people["neighbour"]
    ids, headers = world.ids, login(neighbour)

    def get(url, **query):
        response = client.get(url, headers=headers, query_string=query)
        assert RESIDENT_PHONE.encode() not in response.get_data(), url
        assert resident.openid.encode() not in response.get_data(), url
        return response

    # phone: no user list or profile, a masked or no phone on the public board, none in sessions or exports
    assert get("/api/v1/users", role="resident").status_code == 403
    assert get(f"/api/v1/users/{resident.id}").status_code == 403
    board = get(f"/api/v1/issues/{ids['board']}").get_json()
    assert board["contact_phone"] is None and board["reporter"]["id"] is None
    assert board["reporter"]["display_name"].endswith("*") and board["attachments"] == []
    assert board["feedback"]["rating"] == "satisfied" and board["feedback"]["comment"] is None  # feedback: the rating only
    assert all(e["actor"]["id"] is None for e in board["timeline"] if e["actor"]["role"] == "resident")
    listed = get("/api/v1/issues", board=1, studio=ids["xingfu"]).get_json()
    assert {i["id"] for i in listed} == {ids["board"], ids["resolved"]}
    assert all(i["contact_phone"] is None for i in listed)
    session = get(f"/api/v1/consultations/{ids['session']}").get_json()
    assert session["invitee_ids"] is None and session["checkins"] is None
    export = get("/api/v1/me/export").get_json()
    assert [i["id"] for i in export["issues_raised"]] == [ids["far"]]
    # issue: the held one is unknown to them, and so is everything under it
    assert get(f"/api/v1/issues/{ids['issue']}").status_code == 404
    assert PRIVATE_TITLE not in get("/api/v1/issues").get_data(as_text=True)
    assert client.post(f"/api/v1/issues/{ids['issue']}/actions", headers=headers,
                       json={"action": "comment", "note": "看看"}).status_code == 404
    # file: neither the held issue's photo, nor the public issue's, nor an unattached upload
    for name in ("file", "board_file", "loose"):
        assert get(f"/api/v1/files/{ids[name]}").status_code == 404, name
    # inbox: theirs holds nothing of the resident's, and the resident's item cannot be touched
    assert ids["note"] not in get("/api/v1/notifications").get_data(as_text=True)
    assert client.post(f"/api/v1/notifications/{ids['note']}/read", headers=headers).status_code == 404
    # feedback: only the reporter rates
    refused = client.post(f"/api/v1/issues/{ids['resolved']}/feedback", headers=headers, json={"rating": "unsatisfied"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "action_forbidden"


def test_staff_out_of_scope_see_nothing_private_and_admins_see_phones_in_full(client, world, login):
    ids = world.ids
    far_staff = [login(world.people[r]) for r in ("other_member", "other_coordinator")]
    for headers in far_staff:
        assert client.get(f"/api/v1/issues/{ids['issue']}", headers=headers).status_code == 404
        board = client.get(f"/api/v1/issues/{ids['board']}", headers=headers).get_json()
        assert board["contact_phone"] is None and board["feedback"]["comment"] is None
    # in scope: the staff responsible see the contact phone, for the public record no one else
    for role in ("member", "coordinator", "district_coordinator", "admin"):
        seen = client.get(f"/api/v1/issues/{ids['issue']}", headers=login(world.people[role])).get_json()
        assert seen["contact_phone"] == RESIDENT_PHONE, role
    users = client.get("/api/v1/users", headers=login(world.people["admin"]), query_string={"role": "resident"}).get_json()
    assert {u["phone"] for u in users if u["phone"]} == {RESIDENT_PHONE, NEIGHBOUR_PHONE}


def test_the_matrix_is_not_vacuous():
    """Every role is allowed somewhere and refused somewhere; every route has at least one success."""
    for role in ROLES[1:]:
        statuses = [row[role] for rows in MATRIX.values() for row in rows.values()]
        assert any(s < 300 for s in statuses) and any(s >= 400 for s in statuses), role
    catch_alls = ("/static/<path:filename>", "/open311/v2/<path:rest>")  # there to answer 404 in their shape
    for key, rows in MATRIX.items():
        if key[1] not in catch_alls:
            assert any(s < 300 for row in rows.values() for s in row.values()), key
    cells = sum(len(rows) for rows in MATRIX.values()) * len(ROLES)
    assert cells >= 600, cells


if __name__ == "__main__":  # print the figures for a closing note
    print(json.dumps({"routes": len(MATRIX), "rows": sum(len(r) for r in MATRIX.values()),
                      "cells": sum(len(r) for r in MATRIX.values()) * len(ROLES)}))
