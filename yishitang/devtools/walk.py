"""Walk a generated issue through the workflow table (issues/workflow.py), as the service would.

The demo histories and the load generator write issues in bulk, around the service; `Walk`
keeps them honest: every action must be a row of `TRANSITIONS` from the issue's state, and its
effect on the stored fields (deadlines from the settings, the public-board rule, counters, the
timeline entry) is the service's. Permissions and validation are the service's business, not
this one's: the caller picks who acts.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, has_app_context

from ..config import Settings
from ..issues import workflow

SYSTEM = {"role": "system", "display_name": "系统"}


def settings_or_default(settings: Settings | None = None) -> Settings:
    """The given settings, else the app's, else the defaults (histories built outside an app)."""
    if settings is not None:
        return settings
    return current_app.config["SETTINGS"] if has_app_context() else Settings()


def submitted(created: dt.datetime, category: str, reporter: dict, settings: Settings) -> dict:
    """The workflow fields of an issue just raised at `created` by `reporter` (an actor dict)."""
    return {"status": "submitted", "level": "grassroots", "due_at": workflow.due(settings, created, "response", category),
            "escalated_count": 0, "reopened_count": 0, "visits_count": 0, "supervised": False,
            "on_board": True, "version": 1, "updated_at": created,
            "timeline": [{"at": created, "actor": reporter, "action": "submit", "from_status": None,
                          "to_status": "submitted", "level": "grassroots"}]}


class Walk:
    """One issue document moved action by action; `doc` holds at least the fields of `submitted`."""

    def __init__(self, doc: dict, category: str, settings: Settings):
        self.doc, self.category, self.settings = doc, category, settings

    def act(self, at: dt.datetime, action: str, actor: dict = SYSTEM, note: str | None = None, **params) -> dt.datetime:
        """Apply `action` at `at`; ValueError when the table has no such row from the current state."""
        doc = self.doc
        rule = workflow.rule(doc["status"], action)
        if rule is None:
            raise ValueError(f"{action} is not allowed from {doc['status']}")
        to_status = rule.to_status or doc["status"]
        entry = {"at": at, "actor": actor, "action": "feedback" if action.startswith("rate_") else action,
                 "from_status": doc["status"], "to_status": to_status}
        EFFECTS.get(action, _no_effect)(self, at, note=note, **params)
        entry["level"] = doc["level"]
        if note:
            entry["note"] = note
        entry.update({k: v for k, v in params.items() if k in ENTRY_PARAMS and v is not None})
        doc["timeline"].append(entry)
        doc.update(status=to_status, updated_at=at, version=doc.get("version", 0) + 1)
        if to_status == "closed" and not doc.get("closed_at"):
            doc["closed_at"] = at
        doc["on_board"] = workflow.on_board(to_status, doc.get("moderation", "pass"), doc.get("duplicate_of"))
        return at

    def due(self, at: dt.datetime, stage: str) -> dt.datetime:
        return workflow.due(self.settings, at, stage, self.category)


ENTRY_PARAMS = ("visit", "consultation_id")  # the params the service also records on the timeline entry


def _no_effect(walk, at, **_):
    pass


def _accept(walk, at, **_):
    walk.doc.update(accepted_at=at, first_response_at=walk.doc.get("first_response_at") or at,
                    due_at=walk.due(at, walk.doc["level"]))


def _reject(walk, at, **_):
    walk.doc.update(first_response_at=walk.doc.get("first_response_at") or at, due_at=None)


def _escalate(walk, at, **_):
    doc = walk.doc
    doc["level"] = workflow.next_level(doc["level"])
    doc["escalated_count"] = doc.get("escalated_count", 0) + 1
    if doc["status"] != "submitted":
        doc["due_at"] = walk.due(at, doc["level"])


def _resolve(walk, at, note=None, owner_unit=None, consultation_id=None, **_):
    walk.doc.update(resolution={"summary": note, "owner_unit": owner_unit, "resolved_at": at, "evidence": []},
                    due_at=None, feedback=None)
    if consultation_id:
        walk.doc["met_at"] = walk.doc.get("met_at") or at


def _rate(rating):
    def effect(walk, at, note=None, **_):
        walk.doc["feedback"] = {"rating": rating, "comment": note, "at": at}
        if rating == "unsatisfied":
            walk.doc["reopened_count"] = walk.doc.get("reopened_count", 0) + 1
            walk.doc["due_at"] = walk.due(at, walk.doc["level"])
    return effect


def _withdraw(walk, at, **_):
    walk.doc.update(withdrawn_at=at, due_at=None)


def _supervise(walk, at, **_):
    walk.doc["supervised"] = True


def _comment(walk, at, visit=False, **_):
    if visit:
        walk.doc["visits_count"] = walk.doc.get("visits_count", 0) + 1
        walk.doc["met_at"] = walk.doc.get("met_at") or at


def _duplicate(walk, at, duplicate_of=None, **_):
    walk.doc.update(duplicate_of=duplicate_of, due_at=None)


def _schedule(walk, at, consultation_id=None, **_):
    walk.doc["consultation_id"] = consultation_id


def _consult(walk, at, **_):
    walk.doc["met_at"] = walk.doc.get("met_at") or at


EFFECTS = {
    "accept": _accept, "reject": _reject, "escalate": _escalate, "resolve": _resolve,
    **{f"rate_{rating}": _rate(rating) for rating in workflow.RATINGS}, "withdraw": _withdraw,
    "supervise": _supervise, "comment": _comment, "duplicate": _duplicate, "schedule": _schedule,
    "consult": _consult,
}
