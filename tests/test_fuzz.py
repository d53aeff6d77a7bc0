"""Schemathesis against the served OpenAPI contract: generated requests, valid and invalid, as every role.

One test per operation of the spec. Each runs a bounded, derandomized Hypothesis search
(`EXAMPLES` cases, positive and negative data mixed, callers drawn from every role, path and
body ids drawn half the time from a small real world so that requests get past 404) and checks
every answer: never a 5xx, the status explicitly documented for the operation (the catch-all
`default` does not count), the documented content type, the response body valid against its
schema, invalid data refused with a 4xx, X-Pagination well formed, and every error in the one
error shape. Run `pytest tests/test_fuzz.py -s -p no:xdist` to see how many cases each ran.

Below that: what the fuzzer found (pages far past the end), and hostile uploads.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from tests.test_app import assert_error
from tests.test_authz_matrix import ROLES, TRACKER, _built, restore, world  # noqa: F401  (the world fixture)

ROOT = Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "schemas" / "openapi.json").read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = sorted((method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops if method in METHODS)
EXAMPLES = 20  # per operation; about 50 operations, so ~1000 cases in well under a minute on two cores
# Not schemathesis' response_headers_conformance: X-Pagination is documented as JSON (`content`), which
# that check does not parse; it is checked below.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def explicitly_documented(response, operation) -> None:
    """The status is one the operation lists itself: `default` is there for 503 and would hide anything."""
    documented = set(operation.definition.raw["responses"])
    assert str(response.status_code) in documented or response.status_code == 503, (
        f"{operation.label}: {response.status_code} is not documented (documented: {sorted(documented)})")


def pagination_header(response, operation, query) -> None:
    documented = operation.definition.raw["responses"].get(str(response.status_code), {}).get("headers", {})
    sent = {name.lower(): values[0] for name, values in response.headers.items()}
    if "X-Pagination" in documented and "cursor" not in (query or {}):  # a cursor page counts nothing
        assert "x-pagination" in sent, operation.label
    if "x-pagination" in sent:
        meta = json.loads(sent["x-pagination"])
        assert isinstance(meta["total"], int) and isinstance(meta["total_pages"], int), meta


def one_error_shape(response) -> None:
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert body["code"] == response.status_code and re.fullmatch(r"[a-z0-9_]+", body["error"]), body
        assert re.search(r"[\u4e00-\u9fff]", body["message"]), body


_schemas: dict = {}


def served_schema(app, client):
    """The spec as the app serves it, loaded once per process. The operations to test are read from
    schemas/openapi.json at collection; tests/test_app.py checks that the two are the same."""
    if "schema" not in _schemas:
        served = client.get("/openapi.json").get_json()
        schema = schemathesis.openapi.from_dict(served)
        schema.app = app
        _schemas["schema"] = schema
    return _schemas["schema"]


def known_ids(world) -> dict[str, list[str]]:
    """Real values for path parameters, query filters and body fields, by name."""
    ids, people = world.ids, world.people
    users = [str(u.id) for u in people.values() if u is not None]
    return {
        "issue_id": [ids[k] for k in ("issue", "far", "resolved", "board")],
        "file_id": [ids[k] for k in ("file", "board_file", "loose")],
        "consultation_id": [ids["session"], ids["far_session"]],
        "notification_id": [ids["note"]],
        "studio_id": [ids["xingfu"], ids["liushu"]], "studio": [ids["xingfu"], ids["liushu"]],
        "user_id": users, "host_member_id": [str(people["member"].id), str(people["other_member"].id)],
        "code": ["211104", "211104001", "211104001001"], "region": ["211104", "211104001", "211104002"],
        "region_code": ["211104001001", "211104002001"], "parent_code": ["211104", "211104001"],
        "home_region_code": ["211104001001"], "scope_region_code": ["211104", "211104002"],
        "member_ids": [[str(people["member"].id)]], "invitee_ids": [users[:2]],
        "attachments": [[ids["loose"]]], "issue_ids": [[ids["issue"]]], "studio_ids": [[ids["xingfu"]]],
    }


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_the_contract(method, path, app, client, db, world, login):
    operation = served_schema(app, client)[path][method]
    tokens = {role: login(user) if user is not None else {} for role, user in world.people.items()}
    TRACKER.written.clear()
    known = known_ids(world)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    ran = []

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=cases, role=st.sampled_from(ROLES), data=st.data())
    def run(case, role, data):
        positive = case.meta is None or case.meta.generation.mode.is_positive
        headers = dict(tokens[role])
        if not positive and "Authorization" not in (case.headers or {}):
            headers = {}  # the negative case is the missing token itself
        for name in list(case.path_parameters or {}) if positive else ():
            if name in known and data.draw(st.booleans(), label=f"real {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(known[name]))
        for where in (case.query, case.body) if positive else ():
            if isinstance(where, dict):
                for name in list(where):
                    if name in known and data.draw(st.booleans(), label=f"real {name}"):
                        where[name] = data.draw(st.sampled_from(known[name]))
        response = case.call(headers=headers)
        ran.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
            explicitly_documented(response, operation)
            pagination_header(response, operation, case.query)
            one_error_shape(response)
        finally:
            if TRACKER.written:
                restore(db, _built["snapshot"], only=sorted(TRACKER.written))

    run()
    print(f"fuzz cases run: {len(ran)} {method} {path}")  # shown with -s; summed for the figures
    raw = operation.definition.raw
    inputs = raw.get("parameters") or raw.get("requestBody") or raw.get("security")
    # An operation with no input at all (GET /meta) has only a few distinct cases to generate.
    assert len(ran) >= (EXAMPLES // 2 if inputs else 1), f"only {len(ran)} cases ran"


@pytest.mark.parametrize("url", ["/api/v1/regions", "/api/v1/issues", "/api/v1/notifications"])
def test_a_page_far_past_the_end_is_empty_not_a_500(client, login, people, url):
    """Found by the fuzzer: `page=2028534430515380480` made a skip MongoDB cannot encode."""
    response = client.get(url, query_string={"page": 2**61, "page_size": 100}, headers=login(people["admin"]))
    assert response.status_code == 200 and response.get_json() == []
    assert json.loads(response.headers["X-Pagination"])["total"] >= 0


def test_open311_page_numbers_are_bounded(client):
    response = client.get("/open311/v2/requests.json", query_string={"page": 2**61})
    assert response.status_code == 400 and "page" in response.get_data(as_text=True)
    assert client.get("/open311/v2/requests.json", query_string={"page": 100_000}).get_json() == []


# --- hostile uploads: nothing a browser would run is ever served --------------------------------------

POLYGLOTS = {
    # Bytes a browser would run, named and declared as a photo.
    "html": (b"<!DOCTYPE html><script>fetch('/api/v1/me')</script>", 415),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 415),
    "javascript": (b"alert(document.cookie)//", 415),
    "html-with-bom": (b"\xef\xbb\xbf<html><body onload=alert(1)>", 415),
    # A real JPEG start with HTML after it: stored, but only ever served as image/jpeg, unsniffable, sandboxed.
    "jpeg-then-html": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<html><script>alert(1)</script></html>", 201),
}


@pytest.mark.parametrize("name", sorted(POLYGLOTS))
def test_uploads_are_never_served_as_something_a_browser_runs(client, login, people, name):
    from yishitang.files.models import CONTENT_TYPES

    data, expected = POLYGLOTS[name]
    headers = login(people["resident"])
    response = client.post("/api/v1/files", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), "photo.jpg", "image/jpeg")})
    assert response.status_code == expected, response.get_json()
    if expected != 201:
        assert response.get_json()["error"] == "unsupported_file_type"
        return
    served = client.get(f"/api/v1/files/{response.get_json()['id']}", headers=headers)
    assert served.status_code == 200 and served.mimetype in CONTENT_TYPES and served.mimetype == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    csp = served.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp
    assert served.headers["Content-Disposition"].startswith(("inline", "attachment"))


# --- text that is not Unicode, bodies nested too deep (the outside probe's 500s) ------------------------

JSON_OPERATIONS = sorted((method.upper(), path) for path, ops in SPEC["paths"].items() for method, op in ops.items()
                         if method in METHODS and "application/json" in op.get("requestBody", {}).get("content", {}))
LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
# Any text with half of a UTF-16 pair somewhere in it: parses as JSON, cannot be stored or answered.
broken_text = st.builds(lambda before, half, after: before + half + after, st.text(max_size=6), LONE_SURROGATES,
                        st.text(max_size=6))


def hostile_body(field_names):
    """The operation's own fields, holding broken text as a value, inside lists or objects, or as a key."""
    leaf = st.one_of(broken_text, st.lists(broken_text, min_size=1, max_size=2),
                     st.dictionaries(broken_text, st.text(max_size=4), min_size=1, max_size=2))
    return st.dictionaries(st.sampled_from(field_names or ["x"]), leaf, min_size=1, max_size=3)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "211104" if m.group(1) == "code" else "0" * 24, path)


def body_fields(method, path) -> list[str]:
    schema = SPEC["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


def raw_json(client, method, url, body: str, headers=None):
    return client.open(url, method=method, data=body, content_type="application/json", headers=headers or {})


@pytest.mark.parametrize("method, path", JSON_OPERATIONS, ids=[f"{m} {p}" for m, p in JSON_OPERATIONS])
def test_broken_unicode_in_any_json_body_is_a_400(method, path, client, login, people):
    headers = login(people["admin"])

    @settings(max_examples=10, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(body=hostile_body(body_fields(method, path)))
    def run(body):
        response = raw_json(client, method, concrete(path), json.dumps(body), headers)  # \ud800 escaped, valid JSON
        assert_error(response, 400, "bad_request")

    run()


@pytest.mark.parametrize("depth", [100, 3000, 50_000])
@pytest.mark.parametrize("method, path", [("POST", "/api/v1/issues"), ("POST", "/api/v1/auth/password-login"),
                                          ("PATCH", "/api/v1/me")])
def test_json_nested_thousands_deep_is_a_400(method, path, depth, client, login, people):
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = raw_json(client, method, path, body, login(people["resident"]))
        assert_error(response, 400, "bad_request")


def test_the_probes_lone_surrogates_each_get_a_400(client, login, people, district):
    """The requests the probe sent, each otherwise valid, each with "\\ud800" in one string."""
    resident, member = login(people["resident"]), login(people["member"])
    issue = client.post("/api/v1/issues", headers=resident, json={
        "studio_id": str(district["xingfu"].id), "category": "traffic", "title": "路口缺少红绿灯",
        "description": "学校门口的路口没有红绿灯，孩子过马路很危险。", "address": "幸福路 1 号"}).get_json()
    probes = [
        ("POST", "/api/v1/issues", resident, {"studio_id": str(district["xingfu"].id), "category": "traffic",
                                             "title": "路口\ud800缺少红绿灯", "description": "孩子过马路很危险。"}),
        ("POST", f"/api/v1/issues/{issue['id']}/actions", member, {"action": "accept", "note": "收到\ud800"}),
        ("PATCH", "/api/v1/me", resident, {"display_name": "张\ud800"}),
        ("POST", "/api/v1/auth/password-login", {}, {"username": "admin\ud800", "password": "x" * 10}),
        ("POST", "/api/v1/auth/wechat-login", {}, {"code": "\ud800"}),
        ("POST", "/api/v1/auth/refresh", {}, {"refresh_token": "\ud800" * 20}),
    ]
    for method, url, headers, body in probes:
        assert_error(raw_json(client, method, url, json.dumps(body), headers), 400, "bad_request")
    assert client.get(f"/api/v1/issues/{issue['id']}", headers=member).get_json()["status"] == "submitted"


@pytest.mark.parametrize("api_key", [12345, ["k"], {"k": 1}, True])
def test_open311_api_key_that_is_not_text_is_a_400(client, district, api_key):
    response = client.post("/open311/v2/requests.json", json={"api_key": api_key, "service_code": "traffic",
                                                              "description": "路口缺少红绿灯", "lat": 41.8, "long": 123.4})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()[0]["code"] == 400
