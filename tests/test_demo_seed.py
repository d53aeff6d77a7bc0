"""The demo district: scale and shape from CONTEXT.md, working demo logins, and a rerun that changes nothing.

Its year of issues is tests/test_demo_issues.py."""

from __future__ import annotations

import re

import pytest

from yishitang.devtools.demo import DEMO_LOGINS, DISTRICT_CODE, seed_demo
from yishitang.users.models import COMMITTEES

CHINESE_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
PHONE = re.compile(r"^1\d{10}$")


@pytest.fixture
def seeded(app, db):
    with app.app_context():
        return seed_demo(progress=False)


def _by_id(db, collection):
    return {doc["_id"]: doc for doc in db[collection].find()}


def test_seed_builds_a_district_of_real_scale(seeded, db):
    assert seeded == {"districts": 1, "townships": 16, "grassroots": 191, "studios": 191, "members": 209,
                      "coordinators": 17, "admins": 1, "residents": 5, "created": 208 + 191 + 232}
    # The year of issues is a separate step (demo `serve`, `seed-demo --issues`: tests/test_demo_issues.py).
    assert db.issues.count_documents({}) == 0 and db.counters.count_documents({}) == 0
    regions = {r["code"]: r for r in db.regions.find()}
    assert len(regions) == 1 + 16 + 191
    assert regions[DISTRICT_CODE]["kind"] == "district"
    townships = [r for r in regions.values() if r["kind"] in ("town", "street")]
    assert sorted(r["code"] for r in townships) == [f"211104{n:03d}" for n in range(1, 17)]
    assert {r["kind"] for r in townships} == {"town", "street"}
    assert all(r["name"].endswith("镇" if r["kind"] == "town" else "街道") for r in townships)
    grassroots = [r for r in regions.values() if r["kind"] in ("village", "community")]
    assert len(grassroots) == 191
    assert len({r["name"] for r in grassroots}) == 191
    for region in grassroots:
        parent = regions[region["parent_code"]]
        assert region["code"].startswith(parent["code"]) and len(region["code"]) == 12
        assert region["ancestors"] == [DISTRICT_CODE, parent["code"]]
        # Villages belong to towns, communities to streets.
        assert (region["kind"], parent["kind"]) in {("village", "town"), ("community", "street")}
        assert region["name"].endswith("村" if region["kind"] == "village" else "社区")

    studios = list(db.studios.find())
    assert sorted(s["region_code"] for s in studios) == sorted(r["code"] for r in grassroots)
    for studio in studios:
        region = regions[studio["region_code"]]
        assert studio["name"] == region["name"] + "委员工作室"
        assert studio["region_path"] == [*region["ancestors"], region["code"]]
        assert studio["address"] and studio["open_hours"] and studio["active"] is True
        lng, lat = studio["location"]["coordinates"]
        assert 123.1 < lng < 123.7 and 41.6 < lat < 42.0


def test_every_member_has_a_committee_and_studios_near_home(seeded, db):
    studios = {s["_id"]: s for s in db.studios.find()}
    members = list(db.users.find({"roles": "member"}))
    assert sorted(m["username"] for m in members) == [f"member{n:03d}" for n in range(1, 210)]
    assert {m["committee"] for m in members} == set(COMMITTEES)
    members_of = {sid: 0 for sid in studios}
    for member in members:
        assert member["roles"] == ["member"] and member["active"] is True and member["token_version"] == 0
        assert CHINESE_NAME.match(member["display_name"]) and PHONE.match(member["phone"])
        assert member["password_hash"] and "openid" not in member
        assert 1 <= len(member["studio_ids"]) <= 2
        paths = [studios[sid]["region_path"] for sid in member["studio_ids"]]
        # 就地就近: every studio of a member lies in the township of their home.
        township = member["home_region_code"][:9]
        assert {path[1] for path in paths} == {township}
        assert member["home_region_code"] == paths[0][2]
        assert set(member["region_codes"]) == {code for path in paths for code in path}
        for sid in member["studio_ids"]:
            members_of[sid] += 1
    assert min(members_of.values()) >= 1
    # Each person has a name of their own.
    staff = list(db.users.find({"username": {"$exists": True}}))
    assert len({u["display_name"] for u in staff}) == len(staff)


def test_coordinators_admin_and_residents(seeded, db):
    coordinators = {u["username"]: u for u in db.users.find({"roles": "coordinator"})}
    assert set(coordinators) == {f"coord{n:02d}" for n in range(1, 17)} | {"coord-district"}
    for n in range(1, 17):
        coordinator = coordinators[f"coord{n:02d}"]
        assert coordinator["scope_region_code"] == f"211104{n:03d}"
        assert coordinator["region_codes"] == [DISTRICT_CODE, f"211104{n:03d}"]
        assert coordinator["studio_ids"] == []
    assert coordinators["coord-district"]["scope_region_code"] == DISTRICT_CODE
    assert coordinators["coord-district"]["region_codes"] == [DISTRICT_CODE]
    for user in coordinators.values():
        assert CHINESE_NAME.match(user["display_name"]) and PHONE.match(user["phone"])

    (admin,) = db.users.find({"roles": "admin"})
    assert admin["username"] == "admin" and CHINESE_NAME.match(admin["display_name"]) and admin["phone"]

    residents = {u["openid"]: u for u in db.users.find({"roles": "resident"})}
    assert set(residents) == {f"demo-resident-{n}" for n in range(1, 6)}
    for n in range(1, 6):
        resident = residents[f"demo-resident-{n}"]
        home = db.regions.find_one({"code": resident["home_region_code"]})
        assert home["kind"] == "community"
        assert resident["phone"] == f"138001380{n:02d}"
        assert resident["region_codes"] == [*home["ancestors"], home["code"]]
        assert "username" not in resident and "password_hash" not in resident


def test_printed_password_logins_work(seeded, client):
    password_logins = [item for item in DEMO_LOGINS if item["login"] == "password"]
    assert {item["role"] for item in password_logins} == {"admin", "coordinator", "member"}
    for item in password_logins:
        assert item["role"] and item["how"]
        response = client.post("/api/v1/auth/password-login",
                               json={"username": item["username"], "password": item["password"]})
        assert response.status_code == 200, (item["username"], response.get_json())
        body = response.get_json()
        assert body["access_token"] and item["role"] in body["user"]["roles"]

    wrong = client.post("/api/v1/auth/password-login", json={"username": "admin", "password": "demo-member-pass"})
    assert wrong.status_code == 401


def test_printed_resident_login_reaches_the_seeded_resident(seeded, client, db, fake_wechat, monkeypatch):
    monkeypatch.setattr(fake_wechat, "demo", True)  # as `yishitang serve` runs the fake in demo mode
    residents = [item for item in DEMO_LOGINS if item["role"] == "resident"]
    assert len(residents) == 5
    for item in residents:
        response = client.post("/api/v1/auth/wechat-login", json={"code": item["code"]})
        assert response.status_code == 200, response.get_json()
        user = response.get_json()["user"]
        seeded_user = db.users.find_one({"openid": item["openid"]})
        assert user["id"] == str(seeded_user["_id"])
        assert user["home_region_code"] == seeded_user["home_region_code"]
        assert user["phone"] == seeded_user["phone"]  # a user sees their own phone in full
    assert db.users.count_documents({"roles": "resident"}) == 5


def test_seeding_again_creates_and_changes_nothing(seeded, app, db):
    before = {name: _by_id(db, name) for name in ("regions", "studios", "users")}
    with app.app_context():
        again = seed_demo(progress=False)
    assert again == {**seeded, "created": 0}
    after = {name: _by_id(db, name) for name in ("regions", "studios", "users")}
    assert after == before  # same documents, same fields, updated_at untouched


def test_seeding_fills_in_what_is_missing(seeded, app, db):
    """A partly seeded database is completed without touching what is there."""
    db.users.delete_many({"username": {"$in": ["member005", "admin"]}})
    db.studios.delete_one({"region_code": "211104003002"})
    kept = _by_id(db, "users")
    with app.app_context():
        counts = seed_demo(progress=False)
    assert counts == seeded | {"created": 3}
    users = _by_id(db, "users")
    assert all(users[uid] == doc for uid, doc in kept.items())
    assert db.studios.count_documents({"region_code": "211104003002"}) == 1
    member = db.users.find_one({"username": "member005"})
    assert member["studio_ids"] and db.users.find_one({"username": "admin"})["roles"] == ["admin"]
