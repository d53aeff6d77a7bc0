"""Staff accounts and duties (admin), what others see of a person, and who may list people."""

import pytest

from tests.test_app import assert_error

USERS = "/api/v1/users"


def staff(**overrides):
    body = {"username": "liu.member", "password": "long-enough-1", "display_name": "刘委员", "roles": ["member"],
            "phone": "13700001234", "committee": "提案委员会"}
    body.update(overrides)
    return body


def test_admin_creates_a_member_who_can_sign_in(client, people, login, district):
    body = staff(studio_ids=[str(district["heping"].id)])
    created = client.post(USERS, json=body, headers=login(people["admin"]))
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    assert user["roles"] == ["member"] and user["studio_ids"] == [str(district["heping"].id)]
    assert "password" not in user and "password_hash" not in user
    signed_in = client.post("/api/v1/auth/password-login", json={"username": "liu.member", "password": "long-enough-1"})
    assert signed_in.status_code == 200
    studio = client.get(f"/api/v1/studios/{district['heping'].id}", headers=login(people["resident"])).get_json()
    assert studio["member_ids"] == [user["id"]]


def test_admin_creates_a_township_coordinator(client, people, login):
    body = staff(username="coord.dh", roles=["coordinator"], scope_region_code="211104001", committee=None)
    body.pop("committee")
    created = client.post(USERS, json=body, headers=login(people["admin"]))
    assert created.status_code == 201 and created.get_json()["scope_region_code"] == "211104001"


@pytest.mark.parametrize("overrides, field", [
    ({"roles": ["coordinator"]}, "scope_region_code"),
    ({"roles": ["coordinator"], "scope_region_code": "211104001001"}, "scope_region_code"),  # a community is no scope
    ({"roles": ["coordinator"], "scope_region_code": "211104999"}, "scope_region_code"),
    ({"roles": ["resident"], "studio_ids": ["000000000000000000000000"]}, "studio_ids"),
    ({"studio_ids": ["000000000000000000000000"]}, "studio_ids"),
    ({"roles": ["superuser"]}, "roles"),
    ({"roles": []}, "roles"),
    ({"password": "short"}, "password"),
    ({"username": "有空格 的名字"}, "username"),
    ({"phone": "12345"}, "phone"),
    ({"committee": "不存在的委员会"}, "committee"),
    ({"display_name": "很" * 21}, "display_name"),
    ({"is_admin": True}, "is_admin"),
])
def test_bad_staff_input_is_422_and_creates_nothing(client, people, login, db, overrides, field):
    before = db.users.count_documents({})
    body = assert_error(client.post(USERS, json=staff(**overrides), headers=login(people["admin"])), 422, "validation_failed")
    assert field in body["errors"], body
    assert db.users.count_documents({}) == before


def test_username_taken_is_409(client, people, login):
    headers = login(people["admin"])
    assert client.post(USERS, json=staff(), headers=headers).status_code == 201
    assert_error(client.post(USERS, json=staff(), headers=headers), 409, "username_taken")


def test_list_by_role_region_and_name(client, people, login):
    headers = login(people["admin"])

    def ids(**query):
        response = client.get(USERS, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return {u["id"] for u in response.get_json()}

    assert ids(role="coordinator") == {str(people[k].id) for k in ("coordinator", "other_coordinator", "district_coordinator")}
    # the township 211104002: its coordinator, the member of its studio; not the east street's people
    assert ids(region="211104002") == {str(people["other_coordinator"].id), str(people["other_member"].id)}
    assert ids(region="211104001", role="resident") == {str(people["resident"].id), str(people["neighbour"].id)}
    assert ids(q=people["admin"].display_name) == {str(people["admin"].id)}


def test_admin_sees_phone_numbers_in_full(client, people, login):
    listed = client.get(USERS, query_string={"role": "resident"}, headers=login(people["admin"])).get_json()
    assert sorted(u["phone"] for u in listed) == ["13812345678", "13900001111"]


def test_phone_is_masked_for_everyone_else(people):
    from yishitang.users.service import mask_phone, view

    assert mask_phone("13812345678") == "138****5678"
    assert view(people["resident"], people["neighbour"])["phone"] == "138****5678"
    assert view(people["resident"], people["coordinator"])["phone"] == "138****5678"
    assert view(people["resident"], people["resident"])["phone"] == "13812345678"


@pytest.mark.parametrize("role", ["resident", "member", "coordinator", "district_coordinator"])
def test_only_admins_manage_users(client, people, login, role):
    headers = login(people[role])
    target = people["neighbour"].id
    assert_error(client.get(USERS, headers=headers), 403, "role_forbidden")
    assert_error(client.post(USERS, json=staff(), headers=headers), 403, "role_forbidden")
    assert_error(client.get(f"{USERS}/{target}", headers=headers), 403, "role_forbidden")
    assert_error(client.patch(f"{USERS}/{target}", json={"active": False}, headers=headers), 403, "role_forbidden")


def test_user_routes_need_a_token(client, people):
    assert_error(client.get(USERS), 401, "missing_token")
    assert_error(client.get(f"{USERS}/{people['admin'].id}"), 401, "missing_token")


def test_unknown_user_is_404(client, people, login):
    assert_error(client.get(f"{USERS}/000000000000000000000000", headers=login(people["admin"])), 404, "not_found")
    assert_error(client.patch(f"{USERS}/nope", json={"active": False}, headers=login(people["admin"])), 404, "not_found")


def test_promote_a_resident_to_member_of_a_studio(client, people, login, district):
    url = f"{USERS}/{people['neighbour'].id}"
    response = client.patch(url, json={"roles": ["resident", "member"], "studio_ids": [str(district["heping"].id)],
                                       "committee": "经济科技委员会"}, headers=login(people["admin"]))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["roles"] == ["resident", "member"]
    # dropping the member role unassigns the studio
    response = client.patch(url, json={"roles": ["resident"]}, headers=login(people["admin"]))
    assert response.get_json()["studio_ids"] == []


def test_admin_cannot_lock_themself_out(client, people, login):
    url = f"{USERS}/{people['admin'].id}"
    assert_error(client.patch(url, json={"active": False}, headers=login(people["admin"])), 409, "cannot_demote_self")
    assert_error(client.patch(url, json={"roles": ["member"]}, headers=login(people["admin"])), 409, "cannot_demote_self")


def test_password_reset_by_admin(client, people, login):
    member = people["member"]
    client.patch(f"{USERS}/{member.id}", json={"password": "brand-new-pass"}, headers=login(people["admin"]))
    assert client.post("/api/v1/auth/password-login", json={"username": member.username, "password": "brand-new-pass"}).status_code == 200
    assert client.post("/api/v1/auth/password-login", json={"username": member.username, "password": "secret-pass-1"}).status_code == 401
