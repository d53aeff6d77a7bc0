"""The service shell: health, readiness, docs, the OpenAPI contract, the error shape, config."""

import json
from pathlib import Path

import pytest

from yishitang.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent


def assert_error(response, status, error):
    body = response.get_json()
    assert response.status_code == status, body
    assert body["code"] == status and body["error"] == error, body
    assert body["status"] and any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    return body


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok", "database": True}


def test_served_spec_equals_committed_file(client):
    served = client.get("/openapi.json").get_json()
    committed = json.loads((ROOT / "schemas" / "openapi.json").read_text(encoding="utf-8"))
    assert served == committed, "run `yishitang export-openapi` and commit schemas/openapi.json"


def test_every_api_route_is_documented_with_bearer_auth_or_public(client):
    spec = client.get("/openapi.json").get_json()
    public = {"/api/v1/auth/wechat-login", "/api/v1/auth/password-login", "/api/v1/auth/refresh", "/api/v1/meta",
              "/api/v1/wechat/events"}
    by_link = {"/api/v1/files/{file_id}", "/api/v1/files/{file_id}/thumb"}  # or a signed link: <image src> sends no header
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method == "parameters":
                continue
            assert op.get("summary"), (method, path)
            if path in by_link:
                assert op["security"] == [{"bearerAuth": []}, {}] and "401" in op["responses"], (method, path)
            elif path not in public:
                assert op["security"] == [{"bearerAuth": []}], (method, path)
                assert "401" in op["responses"], (method, path)


def test_docs_page_is_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/docs/assets/swagger-ui-bundle.js" in html and "//cdn" not in html
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.get_data()) > 100_000


def test_unknown_route_and_method_use_the_error_shape(client):
    assert_error(client.get("/api/v1/nowhere"), 404, "not_found")
    body = assert_error(client.delete("/api/v1/regions"), 405, "method_not_allowed")
    assert "code" in body


def test_malformed_json_is_400_not_500(client, people, login):
    response = client.post("/api/v1/regions", data="{not json", headers={**login(people["admin"]), "Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")


def test_jwt_secret_required_outside_demo_and_test_mode():
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.from_env(env={"MONGODB_URI": "mongodb://x/"})
    with pytest.raises(ConfigError, match="32"):
        Settings.from_env(env={"JWT_SECRET": "short"})
    assert Settings.from_env(env={"YISHITANG_DEMO": "1"}).demo is True
    assert Settings.from_env(env={"JWT_SECRET": "x" * 32}).jwt_secret == "x" * 32


def test_settings_parse_types_and_templates():
    settings = Settings.from_env(env={"YISHITANG_TESTING": "1", "MONGODB_TIMEOUT_MS": "1234",
                                      "WECHAT_TEMPLATE_ISSUE_STATUS": "tmpl-1"})
    assert settings.mongodb_timeout_ms == 1234
    assert settings.wechat_templates == {"issue_status": "tmpl-1"}
    with pytest.raises(ConfigError, match="MONGODB_TIMEOUT_MS"):
        Settings.from_env(env={"YISHITANG_TESTING": "1", "MONGODB_TIMEOUT_MS": "soon"})


def test_create_app_refuses_to_start_without_a_database_uri():
    from yishitang import create_app

    with pytest.raises(ConfigError, match="MONGODB_URI"):
        create_app(Settings.from_env(env={"YISHITANG_TESTING": "1"}))


@pytest.fixture
def unreachable_app(settings):
    """An app whose database does not answer; the shared connection is restored afterwards."""
    from yishitang import create_app, db
    from yishitang.devtools.embedded import free_port

    app = create_app(settings.replace(mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/", mongodb_timeout_ms=300))
    yield app
    db.connect(settings)


def test_unreachable_database_gives_503_with_retry_after(unreachable_app):
    client = unreachable_app.test_client()
    response = client.post("/api/v1/auth/password-login", json={"username": "admin", "password": "whatever-1"})
    body = assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["database"] is False
    assert ready.headers["Retry-After"] == "5"
    assert client.get("/healthz").status_code == 200
    assert "数据库" in body["message"]


PUBLIC_ROUTES = {"/api/v1/auth/wechat-login", "/api/v1/auth/password-login", "/api/v1/auth/refresh",
                 "/api/v1/meta", "/api/v1/wechat/events"}  # the last one checks WeChat's signature instead


def test_every_api_route_refuses_a_request_without_a_token(app, client):
    """Generated from the URL map: a new route that forgets authentication fails here."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule in PUBLIC_ROUTES:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", "000000000000000000000000")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, rule.rule, response.get_json())
            checked += 1
    assert checked >= 15


def test_readme_and_sample_env_name_every_setting():
    from yishitang.config import SETTINGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = (ROOT / "deploy" / "yishitang.env.example").read_text(encoding="utf-8")
    for var, _kind, _doc in SETTINGS.values():
        assert f"`{var}`" in readme, var
        assert f"\n{var}=" in sample, var


def test_field_errors_are_in_chinese(client, people, login):
    response = client.post("/api/v1/regions", headers=login(people["admin"]),
                           json={"code": 1, "name": "x" * 41, "kind": "hamlet", "colour": "red"})
    errors = assert_error(response, 422, "validation_failed")["errors"]
    assert errors == {"code": ["应为字符串"], "name": ["长度应在 1 到 40 之间"],
                      "kind": ["应为以下之一：district, town, street, village, community"],
                      "colour": ["不允许的字段"]}
    missing = client.post("/api/v1/regions", headers=login(people["admin"]), json={}).get_json()["errors"]
    assert missing["code"] == ["必填"]
