"""Sign-in and tokens: WeChat login end to end, staff passwords, rotation, revocation."""

import datetime as dt

import jwt
import pytest

from tests.test_app import assert_error

LOGIN = "/api/v1/auth/wechat-login"
PASSWORD = "/api/v1/auth/password-login"
REFRESH = "/api/v1/auth/refresh"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_first_wechat_login_creates_a_resident_and_the_second_finds_them(client, fake_wechat, db):
    first = client.post(LOGIN, json={"code": fake_wechat.issue_login_code("o-zhang")})
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["user"]["roles"] == ["resident"] and body["expires_in"] == 900
    second = client.post(LOGIN, json={"code": fake_wechat.issue_login_code("o-zhang")}).get_json()
    assert second["user"]["id"] == body["user"]["id"]
    assert db.users.count_documents({"openid": "o-zhang"}) == 1
    me = client.get("/api/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200 and me.get_json()["id"] == body["user"]["id"]


def test_a_wechat_code_works_once(client, fake_wechat):
    code = fake_wechat.issue_login_code("o-li")
    assert client.post(LOGIN, json={"code": code}).status_code == 200
    assert_error(client.post(LOGIN, json={"code": code}), 401, "invalid_wechat_code")
    assert_error(client.post(LOGIN, json={"code": "never-issued"}), 401, "invalid_wechat_code")


def test_wechat_down_gives_503_with_retry_after_and_creates_nobody(client, fake_wechat, db):
    code = fake_wechat.issue_login_code("o-wang")
    fake_wechat.fail_next("/sns/jscode2session", -1, times=5)
    response = client.post(LOGIN, json={"code": code})
    assert_error(response, 503, "wechat_unavailable")
    assert response.headers["Retry-After"]
    assert db.users.count_documents({}) == 0


def test_wechat_blocked_user_is_refused(client, fake_wechat):
    code = fake_wechat.issue_login_code("o-risky")
    fake_wechat.fail_next("/sns/jscode2session", 40226)
    assert_error(client.post(LOGIN, json={"code": code}), 403, "wechat_user_blocked")


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 42}, {"code": "x" * 129}, {"code": "c", "extra": 1}])
def test_wechat_login_bad_input_is_422_with_field_errors(client, body):
    response = assert_error(client.post(LOGIN, json=body), 422, "validation_failed")
    assert response["errors"]


def test_staff_password_login(client, people):
    ok = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"})
    assert ok.status_code == 200 and ok.get_json()["user"]["roles"] == ["admin"]
    assert_error(client.post(PASSWORD, json={"username": "admin1", "password": "wrong-pass"}), 401, "invalid_credentials")
    assert_error(client.post(PASSWORD, json={"username": "nobody", "password": "admin-pass-1"}), 401, "invalid_credentials")


def test_unknown_usernames_cost_what_wrong_passwords_cost(client, people, db, monkeypatch):
    """SECURITY.md: unknown usernames take as long as wrong passwords. The cost is the scrypt check:
    each refusal runs exactly one, with the parameters of a stored password (so no answer is cheaper)."""
    from yishitang.users import service

    checked, check = [], service.check_password_hash

    def counted(stored, password):  # the real check, counted
        checked.append(stored.split("$", 1)[0])  # method and cost parameters, e.g. scrypt:32768:8:1
        return check(stored, password)

    monkeypatch.setattr(service, "check_password_hash", counted)
    stored = db.users.find_one({"username": "admin1"})["password_hash"].split("$", 1)[0]
    for username, password in [("admin1", "wrong-pass"), ("nobody", "admin-pass-1"), ("openid-1", "x")]:
        checked.clear()
        assert_error(client.post(PASSWORD, json={"username": username, "password": password}), 401, "invalid_credentials")
        assert checked == [stored], (username, checked)


def test_residents_have_no_password_login(client, people):
    resident = people["resident"]
    assert resident.username is None
    assert_error(client.post(PASSWORD, json={"username": "openid-1", "password": "x"}), 401, "invalid_credentials")


def test_refresh_rotates_and_reuse_revokes_the_whole_family(client, people):
    first = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).get_json()
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    # the stolen first token is replayed: the family dies, including the newest token
    assert_error(client.post(REFRESH, json={"refresh_token": first["refresh_token"]}), 401, "refresh_token_reused")
    assert_error(client.post(REFRESH, json={"refresh_token": second["refresh_token"]}), 401, "refresh_token_reused")
    # another sign-in of the same user is a different family and still works
    other = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).get_json()
    assert client.post(REFRESH, json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_a_refresh_gives_a_pair_for_the_token_owner_not_another_signed_in_user(client, people):
    client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"})  # an earlier sign-in, stored first
    member = client.post(PASSWORD, json={"username": people["member"].username, "password": "secret-pass-1"}).get_json()
    renewed = client.post(REFRESH, json={"refresh_token": member["refresh_token"]}).get_json()
    me = client.get("/api/v1/me", headers=bearer(renewed["access_token"])).get_json()
    assert me["id"] == str(people["member"].id)


def test_a_refresh_token_of_a_deleted_user_is_refused(client, people, db):
    pair = client.post(PASSWORD, json={"username": people["member"].username, "password": "secret-pass-1"}).get_json()
    db.users.delete_one({"_id": people["member"].id})
    assert_error(client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401, "account_disabled")


def test_unknown_refresh_token(client, people):
    assert_error(client.post(REFRESH, json={"refresh_token": "made-up"}), 401, "invalid_refresh_token")


def test_expired_refresh_token(client, people, db):
    pair = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).get_json()
    db.refresh_tokens.update_many({}, {"$set": {"expires_at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)}})
    assert_error(client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401, "invalid_refresh_token")


def test_logout_revokes_this_sign_in(client, people):
    pair = client.post(PASSWORD, json={"username": "admin1", "password": "admin-pass-1"}).get_json()
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    assert_error(client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401, "refresh_token_reused")


def test_logout_needs_a_token(client):
    assert_error(client.post("/api/v1/auth/logout"), 401, "missing_token")


def _claims(user, settings, **overrides):
    now = dt.datetime.now(dt.timezone.utc)
    claims = {"sub": str(user.id), "type": "access", "roles": user.roles, "tv": 0, "fam": "f",
              "iat": now, "exp": now + dt.timedelta(minutes=5)}
    claims.update(overrides)
    return claims


def test_expired_access_token(client, people, settings):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    token = jwt.encode(_claims(people["admin"], settings, iat=past, exp=past + dt.timedelta(minutes=15)), settings.signing_key, "HS256")
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "token_expired")


def test_tampered_token(client, people, login):
    token = login(people["resident"])["Authorization"].split()[1]
    header, payload, signature = token.split(".")
    forged = jwt.encode(_claims(people["admin"], None, roles=["admin"]), "guess-a-key-that-is-long-enough-000000", "HS256").split(".")[1]
    assert_error(client.get("/api/v1/me", headers=bearer(f"{header}.{forged}.{signature}")), 401, "invalid_token")


def test_alg_none_token_is_refused(client, people):
    token = jwt.encode(_claims(people["admin"], None), None, algorithm="none")
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")


def test_token_signed_with_another_key(client, people):
    token = jwt.encode(_claims(people["admin"], None), "another-key-of-sufficient-length-000000", "HS256")
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")


def test_refresh_token_is_not_an_access_token(client, people, settings):
    token = jwt.encode(_claims(people["admin"], settings, type="refresh"), settings.signing_key, "HS256")
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "type"])
def test_a_signed_token_missing_a_required_claim_is_refused(client, people, settings, missing):
    """Signed with the right key but without `exp` it would never expire: every listed claim is required."""
    claims = _claims(people["admin"], settings)
    del claims[missing]
    assert_error(client.get("/api/v1/me", headers=bearer(jwt.encode(claims, settings.signing_key, "HS256"))),
                 401, "invalid_token")


@pytest.mark.parametrize("sub", ["not-an-object-id", "0" * 25])
def test_a_signed_token_whose_subject_is_no_user_id_is_refused(client, people, settings, sub):
    token = jwt.encode(_claims(people["admin"], settings, sub=sub), settings.signing_key, "HS256")
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "token_revoked")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic abc", "Token x.y.z"])
def test_missing_or_malformed_authorization(client, header):
    assert_error(client.get("/api/v1/me", headers={"Authorization": header}), 401, "missing_token")


def test_disabling_a_user_rejects_their_tokens_at_once(client, people, login):
    member_headers = login(people["member"])
    pair = client.post(PASSWORD, json={"username": people["member"].username, "password": "secret-pass-1"}).get_json()
    assert client.get("/api/v1/me", headers=member_headers).status_code == 200
    patched = client.patch(f"/api/v1/users/{people['member'].id}", json={"active": False}, headers=login(people["admin"]))
    assert patched.status_code == 200 and patched.get_json()["active"] is False
    assert_error(client.get("/api/v1/me", headers=member_headers), 401, "account_disabled")
    assert_error(client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401, "refresh_token_reused")
    assert_error(client.post(PASSWORD, json={"username": people["member"].username, "password": "secret-pass-1"}), 401, "account_disabled")
    # enabled again: a fresh sign-in works, the old tokens stay dead
    client.patch(f"/api/v1/users/{people['member'].id}", json={"active": True}, headers=login(people["admin"]))
    assert_error(client.get("/api/v1/me", headers=member_headers), 401, "token_revoked")
    assert client.post(PASSWORD, json={"username": people["member"].username, "password": "secret-pass-1"}).status_code == 200


def test_token_of_a_deleted_user(client, people, login, db):
    headers = login(people["neighbour"])
    db.users.delete_one({"_id": people["neighbour"].id})
    assert_error(client.get("/api/v1/me", headers=headers), 401, "token_revoked")


def test_me_shows_own_phone_in_full_and_sets_phone_through_wechat(client, people, login, fake_wechat):
    headers = login(people["resident"])
    assert client.get("/api/v1/me", headers=headers).get_json()["phone"] == "13812345678"
    code = fake_wechat.issue_phone_code("13698765432")
    patched = client.patch("/api/v1/me", json={"phone_code": code, "display_name": "张阿姨"}, headers=headers)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["phone"] == "13698765432" and patched.get_json()["display_name"] == "张阿姨"
    body = assert_error(client.patch("/api/v1/me", json={"phone_code": code}, headers=headers), 422, "invalid_phone_code")
    assert "phone_code" in body["errors"]


def test_me_home_region_must_be_a_village_or_community(client, people, login):
    headers = login(people["resident"])
    assert client.patch("/api/v1/me", json={"home_region_code": "211104002001"}, headers=headers).get_json()["home_region_code"] == "211104002001"
    body = assert_error(client.patch("/api/v1/me", json={"home_region_code": "211104001"}, headers=headers), 422, "validation_failed")
    assert "home_region_code" in body["errors"]
    assert_error(client.patch("/api/v1/me", json={"home_region_code": "999999999999"}, headers=headers), 422, "validation_failed")
    assert_error(client.patch("/api/v1/me", json={"roles": ["admin"]}, headers=headers), 422, "validation_failed")
