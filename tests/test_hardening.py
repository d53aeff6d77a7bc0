"""Second hardening round (issue 14): each finding of the outside probe, through the HTTP API."""

from __future__ import annotations

import base64
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
