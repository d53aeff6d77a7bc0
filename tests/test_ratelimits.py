"""Rate limits, shared across processes through the database: 429 with Retry-After."""

import pytest

from tests.test_app import assert_error
from tests.factories import SHED


@pytest.fixture
def limits(app, settings):
    def tighten(**specs):
        app.config["SETTINGS"] = settings.replace(**specs)

    yield tighten
    app.config["SETTINGS"] = settings


@pytest.fixture
def mid_window(monkeypatch):
    """The limiter's clock stopped 30 s into a minute: a slow machine cannot carry a test's requests
    across a one-minute window's end, and Retry-After is known to the second."""
    from yishitang import ratelimit

    stopped = ratelimit.utcnow().replace(second=30, microsecond=0)
    monkeypatch.setattr(ratelimit, "utcnow", lambda: stopped)
    return stopped


def test_logins_per_address(client, limits, people, fake_wechat, mid_window):
    limits(rate_limit_login="3/60")
    for _ in range(3):
        response = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"})
        assert response.status_code == 200
    refused = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"})
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "30"  # the seconds left in the window
    assert_error(client.post("/api/v1/auth/wechat-login", json={"code": fake_wechat.issue_login_code("o-x")}), 429, "rate_limited")
    # another address has its own budget
    other = client.post("/api/v1/auth/password-login", json={"username": "admin1", "password": "admin-pass-1"},
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_issues_per_user(client, limits, login, people, district, db):
    limits(rate_limit_issues="2/3600")
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    for _ in range(2):
        assert client.post("/api/v1/issues", json=body, headers=login(people["resident"])).status_code == 201
    assert_error(client.post("/api/v1/issues", json=body, headers=login(people["resident"])), 429, "rate_limited")
    assert db.issues.count_documents({}) == 2
    assert client.post("/api/v1/issues", json=body, headers=login(people["neighbour"])).status_code == 201


def test_a_replayed_submit_does_not_count(client, limits, login, people, district):
    limits(rate_limit_issues="1/3600")
    headers = {**login(people["resident"]), "Idempotency-Key": "same"}
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    assert client.post("/api/v1/issues", json=body, headers=headers).status_code == 201
    assert client.post("/api/v1/issues", json=body, headers=headers).status_code == 201


def test_supports_per_user(client, limits, login, people, district):
    limits(rate_limit_supports="2/3600")
    issue = client.post("/api/v1/issues", json={**SHED, "studio_id": str(district["xingfu"].id)},
                        headers=login(people["resident"])).get_json()
    url = f"/api/v1/issues/{issue['id']}/supports"
    assert client.post(url, headers=login(people["neighbour"])).status_code == 200
    assert client.delete(url, headers=login(people["neighbour"])).status_code == 200
    assert_error(client.post(url, headers=login(people["neighbour"])), 429, "rate_limited")


def test_the_count_is_shared_by_every_process(app, limits, settings, people, mid_window):
    """Two app instances (as two workers would be) draw on one budget in the database."""
    from yishitang.ratelimit import Rule, hit
    from yishitang.errors import RateLimited

    rule = Rule.parse("probe", "2/60", "ip")
    with app.app_context():
        hit(rule, "1.2.3.4")
    with app.app_context():  # a fresh context, no process memory involved
        hit(rule, "1.2.3.4")
        with pytest.raises(RateLimited):
            hit(rule, "1.2.3.4")


def test_behind_a_proxy_the_forwarded_address_counts(settings, db, mid_window):
    from yishitang import create_app, db as dbmod

    app = create_app(settings.replace(proxy_count=1, rate_limit_login="1/60"))
    try:
        client = app.test_client()
        body = {"username": "nobody", "password": "whatever-1"}
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 401
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 401
        assert client.post("/api/v1/auth/password-login", json=body, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 429
    finally:
        dbmod.connect(settings)


def test_bad_limit_settings_are_refused():
    from yishitang.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="RATE_LIMIT_ISSUES"):
        Settings.from_env(env={"YISHITANG_TESTING": "1", "RATE_LIMIT_ISSUES": "ten per hour"})
