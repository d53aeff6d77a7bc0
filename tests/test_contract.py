"""Real answers of the main routes validated against schemas/openapi.json with openapi-core, headers
included: what a generated client is built from must be what the server sends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.test_issues import ISSUES, SHED
from tests.test_photos import photo

SPEC_PATH = Path(__file__).resolve().parent.parent / "schemas" / "openapi.json"


@pytest.fixture(scope="module")
def openapi():
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture
def checked(client, openapi):
    """`checked(method, url, expect, **kwargs)`: the response, after openapi-core validated the
    request and the response (status, media type, body and headers) against the committed spec."""
    seen = []

    def call(method, url, expect, **kwargs):
        multipart = kwargs.get("content_type") == "multipart/form-data"
        # The same request again, for openapi-core: the server has read the first one's body.
        # (An upload's twin goes without its file, so only its answer is checked.)
        twin = Request(EnvironBuilder(path=url, method=method, **(
            {"headers": kwargs.get("headers")} if multipart else kwargs)).get_environ())
        response = client.open(url, method=method, **kwargs)
        assert response.status_code == expect, (method, url, response.get_data(as_text=True)[:300])
        request = WerkzeugOpenAPIRequest(twin)
        if not multipart and expect not in (400, 401, 422):  # bad input is meant to break the spec
            openapi.validate_request(request)
        openapi.validate_response(request, WerkzeugOpenAPIResponse(response))
        seen.append((method, url, expect))
        return response

    call.seen = seen
    return call


def test_the_resident_member_story_answers_as_the_spec_says(checked, client, people, login, district, fake_wechat):
    resident_code = fake_wechat.issue_login_code("o-contract-resident")
    session = checked("POST", "/api/v1/auth/wechat-login", 200, json={"code": resident_code}).get_json()
    resident = {"Authorization": f"Bearer {session['access_token']}"}
    member = login(people["member"])
    checked("GET", "/api/v1/meta", 200)
    checked("GET", "/api/v1/me", 200, headers=resident)
    checked("GET", "/api/v1/regions", 200, headers=resident)
    studio = str(district["xingfu"].id)
    checked("GET", "/api/v1/studios", 200, headers=resident, query_string={"region": "211104001"})
    checked("GET", f"/api/v1/studios/{studio}", 200, headers=resident)

    upload = checked("POST", "/api/v1/files", 201, headers=resident, content_type="multipart/form-data",
                     data={"file": (io.BytesIO(photo(640, 480)), "a.jpg")}).get_json()
    issue = checked("POST", ISSUES, 201, headers=resident,
                    json={**SHED, "studio_id": studio, "attachments": [upload["id"]]}).get_json()
    listed = checked("GET", ISSUES, 200, headers=member, query_string={"page_size": 5})
    assert json.loads(listed.headers["X-Pagination"])["total"] == 1
    checked("GET", ISSUES, 200, headers=resident, query_string={"board": 1, "studio": studio})
    checked("GET", f"{ISSUES}/similar", 200, headers=resident, query_string={"studio": studio, "title": "充电车棚"})
    url = f"{ISSUES}/{issue['id']}"
    checked("GET", url, 200, headers=member)
    checked("POST", f"{url}/actions", 200, headers=member, json={"action": "accept", "note": "马上安排"})
    checked("POST", f"{url}/actions", 409, headers=member, json={"action": "accept"})
    checked("POST", f"{url}/feedback", 409, headers=resident, json={"rating": "satisfied"})
    checked("POST", f"{url}/actions", 403, headers=resident, json={"action": "resolve", "note": "自己办好了"})
    checked("POST", f"{url}/actions", 200, headers=member, json={"action": "resolve", "note": "车棚已建好"})
    checked("POST", f"{url}/supports", 409, headers=resident)
    checked("POST", f"{url}/feedback", 200, headers=resident, json={"rating": "satisfied", "comment": "谢谢"})
    checked("GET", f"{ISSUES}/000000000000000000000000", 404, headers=resident)
    checked("POST", ISSUES, 422, headers=resident, json={"title": "x"})

    checked("GET", "/api/v1/notifications", 200, headers=resident)
    checked("GET", "/api/v1/notifications/unread-count", 200, headers=resident)
    checked("POST", "/api/v1/notifications/read-all", 200, headers=resident)
    checked("GET", "/api/v1/consultations", 200, headers=member)
    checked("GET", "/api/v1/issues", 401)
    assert len(checked.seen) >= 25


def test_binary_answers_carry_the_media_type_the_spec_declares(checked, people, login, district, openapi):
    coordinator = login(people["coordinator"])
    csv = checked("GET", "/api/v1/stats/overview.csv", 200, headers=coordinator, query_string={"region": "211104001"})
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    checked("GET", "/api/v1/stats/overview.xlsx", 200, headers=coordinator, query_string={"region": "211104001"})
    resident = login(people["resident"])
    upload = checked("POST", "/api/v1/files", 201, headers=resident, content_type="multipart/form-data",
                     data={"file": (io.BytesIO(photo(64, 64)), "a.jpg")}).get_json()
    checked("GET", f"/api/v1/files/{upload['id']}", 200, headers=resident)
    checked("GET", f"/api/v1/files/{upload['id']}/thumb", 200, headers=resident)


def test_every_operation_has_a_unique_operation_id_and_declares_its_statuses(openapi):
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    ids = [op.get("operationId") for ops in spec["paths"].values() for method, op in ops.items()
           if method != "parameters"]
    assert all(ids) and len(ids) == len(set(ids))
    feedback = spec["paths"]["/api/v1/issues/{issue_id}/feedback"]["post"]["responses"]
    supports = spec["paths"]["/api/v1/issues/{issue_id}/supports"]["post"]["responses"]
    assert "409" in feedback and "409" in supports
    ics = spec["paths"]["/api/v1/consultations/{consultation_id}.ics"]["get"]["responses"]["200"]
    assert ics["content"] == {"text/calendar": {}}  # bytes, described by their media type alone (3.1)
    issue = spec["components"]["schemas"]["Issue"]["properties"]
    for name, ref in (("location", "Location"), ("resolution", "Resolution"), ("feedback", "Feedback")):
        assert issue[name] == {"anyOf": [{"$ref": f"#/components/schemas/{ref}"}, {"type": "null"}]}, name
    assert spec["components"]["schemas"]["IssueCreate"]["required"] == ["category", "description", "studio_id", "title"]
