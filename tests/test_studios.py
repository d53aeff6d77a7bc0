"""Studios: found by region or by distance; opened by admins; members assigned within scope."""

import pytest

from tests.test_app import assert_error

STUDIOS = "/api/v1/studios"


def names(response):
    assert response.status_code == 200, response.get_json()
    return [s["name"] for s in response.get_json()]


def test_studios_by_region_subtree(client, people, login):
    headers = login(people["resident"])
    assert names(client.get(STUDIOS, query_string={"region": "211104001"}, headers=headers)) == ["幸福社区委员工作室", "和平社区委员工作室"]
    assert names(client.get(STUDIOS, query_string={"region": "211104002001"}, headers=headers)) == ["柳树村委员工作室"]
    assert len(client.get(STUDIOS, headers=headers).get_json()) == 3


def test_nearest_studio_first_with_distance(client, people, login):
    response = client.get(STUDIOS, query_string={"near": "123.451,41.821"}, headers=login(people["resident"]))
    studios = response.get_json()
    assert [s["name"] for s in studios] == ["和平社区委员工作室", "幸福社区委员工作室", "柳树村委员工作室"]
    assert studios[0]["distance_m"] < 200 < studios[1]["distance_m"] < studios[2]["distance_m"]


@pytest.mark.parametrize("near", ["123.4", "abc,def", "200,41", "123,95"])
def test_bad_near(client, people, login, near):
    body = assert_error(client.get(STUDIOS, query_string={"near": near}, headers=login(people["resident"])), 422, "validation_failed")
    assert "near" in body["errors"]


def test_one_studio_lists_its_members(client, people, login, district):
    body = client.get(f"{STUDIOS}/{district['xingfu'].id}", headers=login(people["resident"])).get_json()
    assert body["member_ids"] == [str(people["member"].id)]
    assert body["township_code"] == "211104001" and body["district_code"] == "211104"
    assert body["location"] == {"lng": 123.40, "lat": 41.80}


@pytest.mark.parametrize("studio_id", ["000000000000000000000000", "not-an-id"])
def test_unknown_studio_is_404(client, people, login, studio_id):
    assert_error(client.get(f"{STUDIOS}/{studio_id}", headers=login(people["resident"])), 404, "not_found")


def test_studios_need_a_token(client, district):
    assert_error(client.get(STUDIOS), 401, "missing_token")
    assert_error(client.get(f"{STUDIOS}/{district['xingfu'].id}"), 401, "missing_token")
    assert_error(client.put(f"{STUDIOS}/{district['xingfu'].id}/members", json={"member_ids": []}), 401, "missing_token")


def test_admin_opens_and_edits_a_studio(client, people, login):
    headers = login(people["admin"])
    created = client.post(STUDIOS, json={"name": "新华社区委员工作室", "region_code": "211104001002",
                                         "location": {"lng": 123.5, "lat": 41.9}, "open_hours": "周三 9:00-11:00"}, headers=headers)
    assert created.status_code == 201, created.get_json()
    studio = created.get_json()
    patched = client.patch(f"{STUDIOS}/{studio['id']}", json={"active": False, "address": "新华路 2 号"}, headers=headers).get_json()
    assert patched["active"] is False and patched["address"] == "新华路 2 号"
    assert [s["id"] for s in client.get(STUDIOS, query_string={"active": "false"}, headers=headers).get_json()] == [studio["id"]]


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "region_code": "211104001"}, "region_code"),  # a street, not a community
    ({"name": "x", "region_code": "211104001999"}, "region_code"),
    ({"name": "", "region_code": "211104001001"}, "name"),
    ({"name": "x", "region_code": "211104001001", "location": {"lng": 500, "lat": 41}}, "location"),
    ({"name": "x", "region_code": "211104001001", "member_ids": []}, "member_ids"),
])
def test_bad_studio_input(client, people, login, db, body, field):
    response = assert_error(client.post(STUDIOS, json=body, headers=login(people["admin"])), 422, "validation_failed")
    assert field in response["errors"]
    assert db.studios.count_documents({}) == 3


@pytest.mark.parametrize("role", ["resident", "member", "coordinator"])
def test_only_admins_open_or_edit_studios(client, people, login, district, role):
    headers = login(people[role])
    assert_error(client.post(STUDIOS, json={"name": "x", "region_code": "211104001001"}, headers=headers), 403, "role_forbidden")
    assert_error(client.patch(f"{STUDIOS}/{district['xingfu'].id}", json={"name": "x"}, headers=headers), 403, "role_forbidden")


def test_coordinator_assigns_members_in_scope_only(client, people, login, district, make_user):
    newcomer = make_user("member")
    url = f"{STUDIOS}/{district['xingfu'].id}/members"
    body = {"member_ids": [str(people["member"].id), str(newcomer.id)]}
    response = client.put(url, json=body, headers=login(people["coordinator"]))
    assert response.status_code == 200, response.get_json()
    assert sorted(response.get_json()["member_ids"]) == sorted(body["member_ids"])
    # the other township's coordinator may not touch this studio
    assert_error(client.put(url, json={"member_ids": []}, headers=login(people["other_coordinator"])), 403, "scope_forbidden")
    # the district coordinator may; a member left out loses the studio
    response = client.put(url, json={"member_ids": [str(newcomer.id)]}, headers=login(people["district_coordinator"]))
    assert response.get_json()["member_ids"] == [str(newcomer.id)]
    me = client.get("/api/v1/me", headers=login(people["member"])).get_json()
    assert me["studio_ids"] == []


@pytest.mark.parametrize("role", ["resident", "member"])
def test_members_cannot_assign_members(client, people, login, district, role):
    assert_error(client.put(f"{STUDIOS}/{district['xingfu'].id}/members", json={"member_ids": []}, headers=login(people[role])),
                 403, "role_forbidden")


def test_only_active_members_can_be_assigned(client, people, login, district):
    url = f"{STUDIOS}/{district['xingfu'].id}/members"
    for ids in ([str(people["resident"].id)], ["000000000000000000000000"], ["zz"]):
        response = assert_error(client.put(url, json={"member_ids": ids}, headers=login(people["admin"])), 422, "validation_failed")
        assert "member_ids" in response["errors"]
    assert client.get(f"{STUDIOS}/{district['xingfu'].id}", headers=login(people["admin"])).get_json()["member_ids"] == [str(people["member"].id)]
