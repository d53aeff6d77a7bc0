"""Factory fixtures: short tests that build exactly the district they need."""

from __future__ import annotations

import itertools

import pytest

ISSUES = "/api/v1/issues"
# The body of a typical issue; tests override only what they are about.
SHED = {"title": "老旧小区充电车棚", "category": "community_facilities",
        "description": "幸福小区 3 号楼前电动车无处充电，居民飞线充电有火灾隐患，希望建一个充电车棚。",
        "address": "幸福小区 3 号楼", "location": {"lng": 123.401, "lat": 41.801}}
_seq = itertools.count(1)
_hashes: dict[str, str] = {}


def password_hash(password: str) -> str:
    """scrypt is slow on purpose; tests hash each password once."""
    from werkzeug.security import generate_password_hash

    if password not in _hashes:
        _hashes[password] = generate_password_hash(password)
    return _hashes[password]


@pytest.fixture
def make_region(app):
    from yishitang.regions import service

    def make(code, name=None, kind="community", parent_code=None):
        with app.app_context():
            return service.create(code=code, name=name or f"地区{code}", kind=kind, parent_code=parent_code)

    return make


@pytest.fixture
def district(make_region):
    """A small district: two townships, three communities, one studio each."""
    from yishitang.studios import service as studios

    make_region("211104", "示范区", "district")
    make_region("211104001", "东湖街道", "street", "211104")
    make_region("211104002", "西山镇", "town", "211104")
    make_region("211104001001", "幸福社区", "community", "211104001")
    make_region("211104001002", "和平社区", "community", "211104001")
    make_region("211104002001", "柳树村", "village", "211104002")
    made = {
        "xingfu": studios.create("幸福社区委员工作室", "211104001001", "幸福路 1 号", {"lng": 123.40, "lat": 41.80}),
        "heping": studios.create("和平社区委员工作室", "211104001002", "和平街 8 号", {"lng": 123.45, "lat": 41.82}),
        "liushu": studios.create("柳树村委员工作室", "211104002001", "柳树村村委会", {"lng": 123.60, "lat": 41.95}),
    }
    return made


@pytest.fixture
def make_user(app):
    from yishitang.users.models import User
    from yishitang.users.service import _refresh_region_codes

    def make(*roles, password=None, **fields):
        n = next(_seq)
        roles = list(roles or ("resident",))
        fields.setdefault("display_name", f"用户{n}")
        if "resident" in roles:
            fields.setdefault("openid", f"openid-{n}")
        if password or set(roles) - {"resident"}:
            fields.setdefault("username", f"staff{n}")
            fields["password_hash"] = password_hash(password or "secret-pass-1")
        studio_ids = [s.id if hasattr(s, "id") else s for s in fields.pop("studios", [])]
        user = User(roles=roles, studio_ids=studio_ids, **fields)
        with app.app_context():
            _refresh_region_codes(user)
        user.save()
        return user

    return make


@pytest.fixture
def login(app):
    """Headers with a fresh access token for a user."""
    from yishitang.users import tokens

    def headers(user, **extra):
        with app.test_request_context():
            pair = tokens.issue(user)
        return {"Authorization": f"Bearer {pair['access_token']}", **extra}

    return headers


@pytest.fixture
def people(district, make_user):
    """One of each role around the small district."""
    return {
        "resident": make_user("resident", home_region_code="211104001001", phone="13812345678"),
        "neighbour": make_user("resident", home_region_code="211104001001", phone="13900001111"),
        "member": make_user("member", studios=[district["xingfu"]], committee="社会法制委员会"),
        "other_member": make_user("member", studios=[district["liushu"]]),
        "coordinator": make_user("coordinator", scope_region_code="211104001"),
        "other_coordinator": make_user("coordinator", scope_region_code="211104002"),
        "district_coordinator": make_user("coordinator", scope_region_code="211104"),
        "admin": make_user("admin", username="admin1", password="admin-pass-1"),
    }


@pytest.fixture
def make_issue(client, login, district):
    """POST /api/v1/issues as `user` at one of the district's studios; the issue as the API returns it."""
    def make(user, studio="xingfu", expect=201, headers=None, **fields):
        body = {**SHED, "studio_id": str(district[studio].id), **fields}
        response = client.post(ISSUES, json=body, headers={**login(user), **(headers or {})})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return make
