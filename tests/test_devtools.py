"""yishitang/devtools: outside the app, and bound to the issues' one workflow table."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from yishitang.config import Settings
from yishitang.devtools.walk import Walk, submitted
from yishitang.issues import workflow

CREATED = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
RESIDENT = {"role": "resident", "display_name": "居民"}


def test_the_app_never_imports_the_development_tools():
    code = ("import sys\n"
            "from yishitang import create_app\n"
            "from yishitang.config import Settings\n"
            "create_app(Settings(testing=True, jwt_secret='t' * 32, mongodb_uri='mongodb://127.0.0.1:9/', mongodb_timeout_ms=50))\n"
            "print(sorted(m for m in sys.modules if m.startswith('yishitang.devtools')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def walked(settings: Settings, category="safety") -> Walk:
    return Walk(submitted(CREATED, category, RESIDENT, settings), category, settings)


def test_a_walk_takes_only_the_table_s_transitions():
    walk = walked(Settings())
    with pytest.raises(ValueError, match="resolve is not allowed from submitted"):
        walk.act(CREATED, "resolve", note="已办结")
    assert walk.doc["status"] == "submitted" and len(walk.doc["timeline"]) == 1


def test_a_walk_sets_what_the_service_sets_with_the_service_s_deadlines():
    settings = Settings(deadline_overrides={"safety": {"response": 1, "grassroots": 5}})
    walk = walked(settings)
    assert walk.doc["due_at"] == CREATED + dt.timedelta(days=1)  # the category's own response deadline
    accepted = CREATED + dt.timedelta(hours=5)
    walk.act(accepted, "accept")
    assert walk.doc["due_at"] == accepted + dt.timedelta(days=5)
    walk.act(accepted + dt.timedelta(days=1), "escalate")
    assert walk.doc["level"] == "township" and walk.doc["due_at"] == accepted + dt.timedelta(days=21)
    walk.act(accepted + dt.timedelta(days=2), "resolve", note="已办结")
    walk.act(accepted + dt.timedelta(days=3), "rate_satisfied")
    doc = walk.doc
    assert doc["status"] == "closed" and doc["closed_at"] == accepted + dt.timedelta(days=3)
    assert doc["feedback"]["rating"] == "satisfied" and doc["timeline"][-1]["action"] == "feedback"
    assert [e["to_status"] for e in doc["timeline"]] == ["submitted", "accepted", "accepted", "resolved", "closed"]
    assert doc["version"] == len(doc["timeline"]) and doc["on_board"] is True


def test_the_board_rule_is_the_workflow_s():
    walk = walked(Settings())
    walk.act(CREATED + dt.timedelta(hours=1), "reject", note="不属于议事范围")
    assert walk.doc["on_board"] is False and walk.doc["due_at"] is None
    assert workflow.on_board("accepted") and not workflow.on_board("accepted", "review")
    assert not workflow.on_board("closed", duplicate_of="x")
