"""Test fixtures: one real database server per run, a real HTTP fake of WeChat, a clean db per test.

With MONGODB_URI set, the suite runs against that server instead (one database per xdist worker).
"""

from __future__ import annotations

import os

import pytest

from yishitang.config import Settings
from yishitang.devtools.embedded import EmbeddedDatabase
from yishitang.devtools.fakewechat import FakeWeChat

APPID, APPSECRET = "wx-test-appid", "wx-test-secret"
TEMPLATES = {
    "issue_status": "tmpl-issue-status",
    "consultation": "tmpl-consultation",
    "reminder": "tmpl-reminder",
    "rate": "tmpl-rate",
    "overdue": "tmpl-overdue",
}


@pytest.fixture(scope="session")
def mongo_uri():
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    server = EmbeddedDatabase(":memory:").start()
    yield server.uri
    server.stop()


@pytest.fixture(scope="session")
def db_name(worker_id):
    return f"yishitang_test_{worker_id}"


@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def fake_wechat():
    fake = FakeWeChat(appid=APPID, secret=APPSECRET).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def settings(mongo_uri, db_name, fake_wechat):
    return Settings.from_env(
        env={},
        mongodb_uri=mongo_uri,
        mongodb_db=db_name,
        testing=True,
        wechat_appid=APPID,
        wechat_secret=APPSECRET,
        wechat_api_base=fake_wechat.url,
        wechat_timeout_s=2.0,
        wechat_templates=dict(TEMPLATES),
        # Stories raise many issues from one account; tests/test_hardening.py sets tight limits itself.
        rate_limit_login="10000/60", rate_limit_issues="10000/3600", rate_limit_supports="10000/3600",
    )


@pytest.fixture(scope="session")
def app(settings):
    from yishitang import create_app

    return create_app(settings)


@pytest.fixture(autouse=True)
def clean_state(request):
    """Every test that touches the database starts from empty collections (indexes kept)."""
    if "app" not in request.fixturenames and "db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("app")
    from yishitang import db as dbmod

    database = dbmod.database()
    for name in database.list_collection_names():
        if not name.startswith("system."):
            database[name].delete_many({})
    request.getfixturevalue("fake_wechat").reset()
    yield


@pytest.fixture
def db(app):
    from yishitang import db as dbmod

    return dbmod.database()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def limits(app, settings):
    """Tighten settings (e.g. rate limits) for one test; restored afterwards."""
    def tighten(**specs):
        app.config["SETTINGS"] = settings.replace(**specs)

    yield tighten
    app.config["SETTINGS"] = settings


from tests.factories import *  # noqa: E402,F401,F403  (factory fixtures: make_region, make_user, ...)
