"""Clients generated from schemas/openapi.json, with no hand edits: the Python one drives a whole
story against the running server; the mini-program's TypeScript types pass a strict type-check."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_dashboard import serving

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "schemas" / "openapi.json"
MINIPROGRAM = ROOT / "tests" / "miniprogram"
BIN = Path(sys.executable).parent
# Generator settings, not edits: a package name, and the binary media types read as raw bytes.
PY_CONFIG = """\
package_name_override: yishitang_client
project_name_override: yishitang-client
content_type_overrides:
  image/jpeg: application/octet-stream
  image/png: application/octet-stream
  image/webp: application/octet-stream
  video/mp4: application/octet-stream
  application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: application/octet-stream
"""


def run(*command, cwd=None):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def python_client(tmp_path_factory):
    """The package openapi-python-client writes from the committed spec, imported as it is."""
    where = tmp_path_factory.mktemp("generated")
    (where / "config.yaml").write_text(PY_CONFIG, encoding="utf-8")
    output = run(BIN / "openapi-python-client", "generate", "--path", SPEC, "--output-path",
                 where / "yishitang_client", "--meta", "none", "--config", where / "config.yaml")
    assert "Warning" not in output and "Cannot parse" not in output, output
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("yishitang_client")
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == "yishitang_client" or n.startswith("yishitang_client.")]:
            del sys.modules[name]


def test_a_generated_python_client_drives_resident_member_rating_story(python_client, app, people, district,
                                                                         fake_wechat):
    from yishitang_client import AuthenticatedClient, Client
    from yishitang_client.api.auth import password_login, wechat_login
    from yishitang_client.api.issues import act_on_issue, create_issue, get_issue, list_issues, rate_issue
    from yishitang_client.api.meta import get_meta
    from yishitang_client.api.notifications import unread_count
    from yishitang_client.models import (Action, ActionAction, FeedbackCreate, FeedbackCreateRating, IssueCreate,
                                         IssueCreateCategory, Location, PasswordLogin, WeChatLogin)

    with serving(app) as base:
        anonymous = Client(base_url=base, raise_on_unexpected_status=True)
        meta = get_meta.sync(client=anonymous)
        assert meta.labels.issue_status.additional_properties["resolved"] == "已办结待评价"

        login = wechat_login.sync(client=anonymous, body=WeChatLogin(code=fake_wechat.issue_login_code("o-generated")))
        resident = AuthenticatedClient(base_url=base, token=login.access_token, raise_on_unexpected_status=True)
        issue = create_issue.sync(client=resident, idempotency_key="story-1", body=IssueCreate(
            studio_id=str(district["xingfu"].id), title="健身器材损坏", category=IssueCreateCategory.COMMUNITY_FACILITIES,
            description="小区广场的健身器材断了一根扶手，老人锻炼不安全。", location=Location(lng=123.401, lat=41.801)))
        assert issue.status == "submitted" and issue.location.lat == 41.801

        staff = password_login.sync(client=anonymous, body=PasswordLogin(username=people["member"].username,
                                                                          password="secret-pass-1"))
        member = AuthenticatedClient(base_url=base, token=staff.access_token, raise_on_unexpected_status=True)
        queue = list_issues.sync(client=member)
        assert [summary.id for summary in queue] == [issue.id]
        act_on_issue.sync(client=member, issue_id=issue.id, body=Action(action=ActionAction.ACCEPT, note="已受理"))
        resolved = act_on_issue.sync(client=member, issue_id=issue.id,
                                     body=Action(action=ActionAction.RESOLVE, note="扶手已更换"))
        assert resolved.status == "resolved" and resolved.resolution.summary == "扶手已更换"

        refused = act_on_issue.sync_detailed(client=member, issue_id=issue.id, body=Action(action=ActionAction.ACCEPT))
        assert refused.status_code == 409 and refused.parsed.error == "invalid_transition"  # a declared, typed 409
        assert unread_count.sync(client=resident).unread_count >= 2  # accepted, resolved (please rate)
        closed = rate_issue.sync(client=resident, issue_id=issue.id,
                                 body=FeedbackCreate(rating=FeedbackCreateRating.SATISFIED, comment="很及时"))
        assert closed.status == "closed" and closed.feedback.rating == "satisfied"
        again = get_issue.sync(client=resident, issue_id=issue.id)
        assert [entry.action for entry in again.timeline] == ["submit", "accept", "resolve", "feedback"]


def test_the_mini_programs_typescript_client_type_checks_in_strict_mode(tmp_path):
    """openapi-typescript types from the committed spec, and tests/miniprogram/client.ts (openapi-fetch,
    `strict`) compiled against them: `issue.location?.lat` and a form without the optional fields."""
    bin_dir = MINIPROGRAM / "node_modules" / ".bin"
    assert (bin_dir / "tsc").exists(), "tests/miniprogram/node_modules is missing: `make test` runs npm ci there"
    assert shutil.which("node"), "node is missing: `make test` installs it"
    generated = MINIPROGRAM / "generated"
    generated.mkdir(exist_ok=True)
    run(bin_dir / "openapi-typescript", SPEC, "--output", generated / "api.d.ts", cwd=MINIPROGRAM)
    run(bin_dir / "tsc", "-p", "tsconfig.json", cwd=MINIPROGRAM)
