"""Second hardening round (issue 14): each finding of the outside probe, through the HTTP API."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import jwt
import pytest

from tests.test_app import assert_error
from tests.test_consultations import URL as CONSULTATIONS, check_in, code_for, open_now, schedule  # noqa: F401
from yishitang.config import ConfigError, Settings

OLD_PUBLIC_KEY = "yishitang-demo-and-test-only-signing-key-0000"  # the key once written in the source


# --- 1. demo mode and secrets --------------------------------------------------------------------

def test_a_token_forged_with_the_old_public_key_is_refused(client, people, login):
    now = int(__import__("time").time())
    forged = jwt.encode({"sub": str(people["admin"].id), "type": "access", "iat": now, "exp": now + 600,
                         "roles": ["admin"]}, OLD_PUBLIC_KEY, "HS256")
    assert_error(client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_token")
    assert client.get("/api/v1/users", headers=login(people["admin"])).status_code == 200


@pytest.mark.parametrize("env", [{"JWT_SECRET": "s" * 31}, {"JWT_SECRET": "short", "YISHITANG_DEMO": "1"},
                                 {"JWT_SECRET": "short", "YISHITANG_TESTING": "1"}])
def test_every_mode_refuses_a_secret_under_32_bytes(env):
    with pytest.raises(ConfigError, match="32"):
        Settings.from_env(env=env)


def test_demo_mode_refuses_a_database_it_did_not_start(settings):
    from yishitang import create_app

    with pytest.raises(ConfigError, match="embedded database"):
        create_app(settings.replace(demo=True, jwt_secret="k" * 40))
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        create_app(settings.replace(jwt_secret=""))


def test_checkin_codes_are_not_signed_with_the_token_key(app, client, login, people, schedule, open_now):
    session = schedule()
    open_now(session)
    shown = code_for(client, login, people["member"], session)["code"]
    window = int(shown.partition(".")[0])
    key = app.config["SETTINGS"].signing_key.encode()  # how codes were signed before
    digest = hmac.new(key, f"yishitang-checkin|{session['id']}|{window}".encode(), hashlib.sha256).digest()
    old_style = f"{window}.{base64.b32encode(digest[:5]).decode()}"
    assert old_style != shown
    url = f"{CONSULTATIONS}/{session['id']}/checkins"
    assert_error(client.post(url, json={"code": old_style}, headers=login(people["resident"])), 422, "invalid_checkin_code")
    check_in(client, login, people["resident"], session, shown)


# --- 2. a new password ends the old sign-ins -----------------------------------------------------

PASSWORD, REFRESH = "/api/v1/auth/password-login", "/api/v1/auth/refresh"


def test_a_password_reset_revokes_every_sign_in_of_the_account(client, people, login):
    member = people["member"]
    pair = client.post(PASSWORD, json={"username": member.username, "password": "secret-pass-1"}).get_json()
    old = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/api/v1/me", headers=old).status_code == 200
    reset = client.patch(f"/api/v1/users/{member.id}", json={"password": "brand-new-pass"}, headers=login(people["admin"]))
    assert reset.status_code == 200
    assert_error(client.get("/api/v1/me", headers=old), 401, "token_revoked")
    assert client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401
    fresh = client.post(PASSWORD, json={"username": member.username, "password": "brand-new-pass"}).get_json()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    assert client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]}).status_code == 200


# --- 4. refused issues use no quota -------------------------------------------------------------

def test_rejected_issues_do_not_use_up_the_quota(client, limits, login, people, district, db):
    from tests.factories import SHED

    limits(rate_limit_issues="2/3600")
    headers = login(people["resident"])
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    for _ in range(5):
        assert_error(client.post("/api/v1/issues", json={**body, "title": ""}, headers=headers), 422, "validation_failed")
        assert client.post("/api/v1/issues", json={**body, "studio_id": "0" * 24}, headers=headers).status_code in (404, 422)
    for _ in range(2):
        assert client.post("/api/v1/issues", json=body, headers=headers).status_code == 201
    assert_error(client.post("/api/v1/issues", json=body, headers=headers), 429, "rate_limited")
    assert db.issues.count_documents({}) == 2


# --- 8. comments never conflict with each other --------------------------------------------------

def test_twenty_simultaneous_comments_all_land(app, client, login, people, district, db):
    import threading

    from tests.factories import SHED

    issue = client.post("/api/v1/issues", json={**SHED, "studio_id": str(district["xingfu"].id)},
                        headers=login(people["resident"])).get_json()
    headers = [login(people["member"]) for _ in range(20)]
    barrier, results = threading.Barrier(20), []

    def comment(n):
        barrier.wait()
        response = app.test_client().post(f"/api/v1/issues/{issue['id']}/actions", headers=headers[n],
                                          json={"action": "comment", "note": f"第 {n} 条意见：已联系物业"})
        results.append((response.status_code, (response.get_json() or {}).get("error")))

    threads = [threading.Thread(target=comment, args=(n,)) for n in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [(200, None)] * 20, results
    stored = db.issues.find_one()
    assert sum(entry["action"] == "comment" for entry in stored["timeline"]) == 20
    assert stored["status"] == "submitted" and stored["version"] == issue["version"] + 20
    # A state change still checks the version: acting on a stale page is refused.
    stale = client.post(f"/api/v1/issues/{issue['id']}/actions", json={"action": "accept"},
                        headers={**login(people["member"]), "If-Match": f'"{issue["version"]}"'})
    assert_error(stale, 412, "stale_version")


# --- 7. headers from the app itself ---------------------------------------------------------------

def test_signed_in_json_answers_are_never_cached_nor_sniffed(client, login, people):
    headers = login(people["resident"])
    for response in (client.get("/api/v1/me", headers=headers), client.get("/api/v1/issues?mine=1", headers=headers),
                     client.get("/api/v1/users", headers=headers),  # an error answered to a signed-in caller
                     client.get("/api/v1/me", headers={"Authorization": "Bearer forged"})):
        assert response.mimetype == "application/json"
        assert response.headers["Cache-Control"] == "no-store", response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/openapi.json").headers["X-Content-Type-Options"] == "nosniff"


# --- 6. hidden characters: refused in text fields, stripped from calendars ------------------------

HIDDEN_SAMPLES = ["\x00", "\x0b", "\u0085", "\u2028", "\u2029", "\u202e", "\u2066", "\u200b", "\ufeff", "\x1b"]


@pytest.mark.parametrize("char", HIDDEN_SAMPLES, ids=[f"U+{ord(c):04X}" for c in HIDDEN_SAMPLES])
def test_text_fields_refuse_hidden_and_direction_characters(char, client, login, people, district, schedule):
    from tests.factories import SHED

    resident, member = login(people["resident"]), login(people["member"])
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    refused = client.post("/api/v1/issues", json={**body, "title": f"充电{char}车棚"}, headers=resident)
    assert assert_error(refused, 422, "validation_failed")["errors"] == {"title": ["不能含有不可见字符、控制字符或文字方向控制符"]}
    assert_error(client.patch("/api/v1/me", json={"display_name": f"张{char}三"}, headers=resident), 422, "validation_failed")
    issue = client.post("/api/v1/issues", json=body, headers=resident).get_json()
    comment = client.post(f"/api/v1/issues/{issue['id']}/actions", json={"action": "comment", "note": f"已{char}联系"},
                          headers=member)
    assert_error(comment, 422, "validation_failed")
    topic = client.post(CONSULTATIONS, headers=member, json={
        "studio_id": str(district["xingfu"].id), "topic": f"车辆{char}管理", "starts_at": "2099-01-01T10:00:00+08:00",
        "ends_at": "2099-01-01T12:00:00+08:00", "location": "党群服务中心", "format": "in_person", "capacity": 30})
    assert_error(topic, 422, "validation_failed")


def test_emoji_and_ordinary_text_pass(client, login, people):
    patched = client.patch("/api/v1/me", json={"display_name": "张三👨‍👩‍👧"}, headers=login(people["resident"]))
    assert patched.status_code == 200 and patched.get_json()["display_name"] == "张三👨‍👩‍👧"


def test_ics_strips_control_characters_stored_before(client, login, people, schedule, db):
    import icalendar
    from bson import ObjectId

    session = schedule()
    db.consultations.update_one({"_id": ObjectId(session["id"])}, {"$set": {  # as stored before the API refused them
        "topic": "车辆\x00管理\x0b第二次\u202e", "location": "二楼\u0085东侧\u2028会议室\u2029",
        "description": "议题\x1b一\x7f"}})
    raw = client.get(f"{CONSULTATIONS}/{session['id']}.ics", headers=login(people["resident"])).get_data()
    text = raw.decode("utf-8")
    for char in ("\x00", "\x0b", "\x1b", "\x7f", "\u0085", "\u2028", "\u2029", "\u202e"):
        assert char not in text, f"U+{ord(char):04X}"
    event = icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "民生议事堂：车辆管理\n第二次"
    assert str(event["LOCATION"]) == "二楼\n东侧\n会议室\n"
    assert str(event["DESCRIPTION"]).startswith("议题一")


# --- 5. wrong passwords for one account: growing waits, in every process ------------------------------

def test_wrong_passwords_lock_the_account_with_growing_waits(client, people, db):
    wrong = {"username": "admin1", "password": "not-the-password"}
    for n in range(5):  # from many addresses: the per-address limit never sees more than one
        response = client.post(PASSWORD, json=wrong, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        assert_error(response, 401, "invalid_credentials")
    assert db.login_failures.find_one({"_id": "admin1"})["failures"] == 5  # in the database every worker reads
    locked = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"})
    assert_error(locked, 429, "login_locked")  # even the right password waits
    assert 25 <= int(locked.headers["Retry-After"]) <= 30 and "管理员重置密码" in locked.get_json()["message"]

    def wait_over():  # as if the wait had passed
        db.login_failures.update_one({"_id": "admin1"}, {"$set": {"locked_until": dt.datetime(2000, 1, 1)}})

    wait_over()
    assert_error(client.post(PASSWORD, json=wrong), 401, "invalid_credentials")
    assert 55 <= int(client.post(PASSWORD, json=wrong).headers["Retry-After"]) <= 60  # the wait doubled
    wait_over()
    assert client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).status_code == 200
    assert db.login_failures.count_documents({}) == 0  # a right password starts the count again

    # Unknown usernames count the same; another account is not affected.
    for _ in range(5):
        assert_error(client.post(PASSWORD, json={"username": "nobody", "password": "x" * 10}), 401, "invalid_credentials")
    assert_error(client.post(PASSWORD, json={"username": "nobody", "password": "x" * 10}), 429, "login_locked")
    assert client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).status_code == 200


def test_an_admins_password_reset_lets_a_locked_out_member_back_in(client, people, login):
    member = people["member"]
    for _ in range(6):
        client.post(PASSWORD, json={"username": member.username, "password": "wrong-pass-1"})
    assert_error(client.post(PASSWORD, json={"username": member.username, "password": "secret-pass-1"}), 429, "login_locked")
    client.patch(f"/api/v1/users/{member.id}", json={"password": "brand-new-pass"}, headers=login(people["admin"]))
    assert client.post(PASSWORD, json={"username": member.username, "password": "brand-new-pass"}).status_code == 200
