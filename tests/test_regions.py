"""The three-tier map: read by everyone signed in, edited by admins, subtree queries on an index."""

import pytest

from tests.test_app import assert_error

REGIONS = "/api/v1/regions"


def codes(response):
    assert response.status_code == 200, response.get_json()
    return [r["code"] for r in response.get_json()]


def test_children_subtree_and_kind(client, people, login):
    headers = login(people["resident"])
    assert codes(client.get(REGIONS, query_string={"parent": "211104"}, headers=headers)) == ["211104001", "211104002"]
    assert codes(client.get(REGIONS, query_string={"within": "211104001"}, headers=headers)) == ["211104001001", "211104001002"]
    assert codes(client.get(REGIONS, query_string={"within": "211104", "kind": "village"}, headers=headers)) == ["211104002001"]
    assert codes(client.get(REGIONS, query_string={"q": "和平"}, headers=headers)) == ["211104001002"]


def test_one_region_with_tier_and_ancestors(client, people, login):
    body = client.get(f"{REGIONS}/211104001002", headers=login(people["member"])).get_json()
    assert body == {"code": "211104001002", "name": "和平社区", "kind": "community", "parent_code": "211104001",
                    "ancestors": ["211104", "211104001"], "tier": "grassroots"}
    assert_error(client.get(f"{REGIONS}/211104999", headers=login(people["member"])), 404, "region_not_found")


def test_pagination_header(client, people, login):
    response = client.get(REGIONS, query_string={"page_size": 2, "page": 2}, headers=login(people["resident"]))
    assert len(response.get_json()) == 2
    assert '"total": 6' in response.headers["X-Pagination"]
    assert_error(client.get(REGIONS, query_string={"page_size": 101}, headers=login(people["resident"])), 422, "validation_failed")


def test_reading_regions_needs_a_token(client, district):
    assert_error(client.get(REGIONS), 401, "missing_token")
    assert_error(client.get(f"{REGIONS}/211104"), 401, "missing_token")


def test_admin_creates_a_community_under_a_street(client, people, login):
    response = client.post(REGIONS, json={"code": "211104001003", "name": "新华社区", "kind": "community", "parent_code": "211104001"},
                           headers=login(people["admin"]))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["ancestors"] == ["211104", "211104001"]


@pytest.mark.parametrize("role", ["resident", "member", "coordinator", "district_coordinator"])
def test_only_admins_edit_regions(client, people, login, role):
    headers = login(people[role])
    assert_error(client.post(REGIONS, json={"code": "211104001009", "name": "x", "kind": "community", "parent_code": "211104001"},
                             headers=headers), 403, "role_forbidden")
    assert_error(client.patch(f"{REGIONS}/211104001001", json={"name": "改名"}, headers=headers), 403, "role_forbidden")


def test_region_writes_need_a_token(client, district):
    assert_error(client.post(REGIONS, json={}), 401, "missing_token")
    assert_error(client.patch(f"{REGIONS}/211104", json={"name": "x"}), 401, "missing_token")


@pytest.mark.parametrize("body, field", [
    ({"code": "211104001003", "name": "新华社区", "kind": "community", "parent_code": "211104999"}, "parent_code"),
    ({"code": "211104001003", "name": "新华社区", "kind": "community", "parent_code": "211104"}, "parent_code"),
    ({"code": "211104001003", "name": "新华社区", "kind": "community"}, "parent_code"),
    ({"code": "211105", "name": "另一个区", "kind": "district", "parent_code": "211104"}, "parent_code"),
    ({"code": "21A", "name": "x", "kind": "community", "parent_code": "211104001"}, "code"),
    ({"code": "211104001003", "name": "x" * 41, "kind": "community", "parent_code": "211104001"}, "name"),
    ({"code": "211104001003", "name": "x", "kind": "hamlet", "parent_code": "211104001"}, "kind"),
    ({"code": 211104001003, "name": "x", "kind": "community", "parent_code": "211104001"}, "code"),
    ({"code": "211104001003", "name": "x", "kind": "community", "parent_code": "211104001", "color": "red"}, "color"),
])
def test_bad_region_input_is_422_with_the_field(client, people, login, db, body, field):
    response = assert_error(client.post(REGIONS, json=body, headers=login(people["admin"])), 422, "validation_failed")
    assert field in response["errors"], response
    assert db.regions.count_documents({}) == 6


def test_duplicate_code_is_409(client, people, login):
    assert_error(client.post(REGIONS, json={"code": "211104001001", "name": "重复", "kind": "community", "parent_code": "211104001"},
                             headers=login(people["admin"])), 409, "region_exists")


def test_rename_only(client, people, login):
    headers = login(people["admin"])
    assert client.patch(f"{REGIONS}/211104001001", json={"name": "幸福里社区"}, headers=headers).get_json()["name"] == "幸福里社区"
    assert_error(client.patch(f"{REGIONS}/211104001001", json={"parent_code": "211104002"}, headers=headers), 422, "validation_failed")
    assert_error(client.patch(f"{REGIONS}/211104001999", json={"name": "x"}, headers=headers), 404, "region_not_found")


def test_subtree_query_uses_an_index(district):
    from yishitang.regions.models import Region
    from yishitang.studios.models import Studio
    from yishitang.users.models import User

    for query in (Region.objects(ancestors="211104001"), Studio.objects(region_path="211104001"),
                  User.objects(region_codes="211104001"), Region.objects(parent_code="211104")):
        plan = query.explain()["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in str(plan), plan
