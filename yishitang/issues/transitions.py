"""The issue state machine at work: the one function that applies `workflow.TRANSITIONS`, and
the effects each action has beyond the state (deadlines, resolution, feedback, moderation).

Every state change goes through `transition`: one conditional update that checks the version
and the state, applies the changes and appends the timeline entry together, so two concurrent
actions never both apply and no change is ever without its entry.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app

from .. import config, db, failpoints
from ..auth import has_role
from ..db import Row, object_id, utcnow
from ..errors import Conflict, Forbidden, InvalidInput, PreconditionFailed
from ..files import service as files
from ..wechat import WeChatError
from . import access as access_rules
from . import notices, workflow
from .models import Issue
from .workflow import REPORTER, STAFF, STATUS_NAMES, SYSTEM

log = logging.getLogger(__name__)

def check_text(content: str, user, scene: int = 3) -> str:
    """WeChat's text check: "pass" or "review"; risky text is refused. An outage holds for review."""
    try:
        verdict = current_app.extensions["wechat"].check_text(content, user.openid or "", scene=scene)
    except WeChatError as exc:  # includes WeChatUnavailable: keep the report, hold it for a person
        log.warning("text check unavailable, holding for review: %s", exc)
        return "review"
    if verdict["suggest"] == "risky":
        raise InvalidInput("内容包含不适宜公开的信息，请修改后再提交", error="content_risky")
    return "review" if verdict["suggest"] == "review" else "pass"


def handling_due(now, level, category) -> dt.datetime:
    return workflow.due(config.settings(), now, level, category)


def timeline_entry(at, user, role, action, from_status, to_status, level, note, **extra) -> dict:
    entry = {"at": at, "action": action, "from_status": from_status, "to_status": to_status, "level": level}
    entry["actor"] = ({"id": user.id, "role": role, "display_name": user.display_name} if user is not None
                      else {"role": "system", "display_name": "系统"})
    if note:
        entry["note"] = note
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


def _actor_role(user, issue, caps) -> str:
    if user is None:
        return "system"
    if REPORTER in caps and not caps - {REPORTER}:
        return "resident"
    for role in ("admin", "coordinator", "member"):
        if has_role(user, role) and (role != "member" or access_rules.member_of_studio(user, issue)):
            return role
    return user.roles[0]


def transition(issue, action: str, user, *, note=None, expected_version=None, system=False,
               now=None, session=None, access=None, **params):
    """Apply one action; 409 when the state does not allow it, 403 when the caller may not.

    `access` is what the user is to the issue as read (see `access.of`), when already decided.
    With `session` the write joins the caller's transaction, and the people concerned are told
    once it commits (an aborted or retried transaction tells nobody anything).
    """
    now = now or utcnow()
    for _attempt in range(5):
        if expected_version is not None and issue.version != expected_version:
            raise PreconditionFailed()
        rule = workflow.rule(issue.status, action)
        if rule is None:
            raise Conflict(f"当前状态（{STATUS_NAMES[issue.status]}）不能执行该操作", error="invalid_transition")
        caps = {SYSTEM} if system else (access or access_rules.of(user, issue)).capacities
        if not rule.who & caps:
            raise Forbidden("您无权对该议题执行此操作", error="action_forbidden")
        workflow.check_condition(action, issue, now, config.settings())
        updated = _store(issue, action, user, rule.to_status or issue.status, caps, now, session, note=note,
                         role="system" if system and user is None else _actor_role(user, issue, caps), **params)
        if updated is not None:
            moved = Row(updated)
            db.after_commit(session, lambda: notices.after_transition(moved, action, note, now))
            return moved
        issue, access = access_rules.load(issue.id), None  # someone else acted first: decide again on the new state
    raise Conflict("该议题正被他人同时处理，请稍后重试", error="concurrent_update")


def _store(issue, action, user, to_status, caps, now, session, *, note, role, **params) -> dict | None:
    """The action's changes and its timeline entry, as one update conditional on the version read."""
    changes, extra = EFFECTS.get(action, _no_effect)(issue, user, now, note=note, caps=caps, **params)
    entry = timeline_entry(now, user, role, _timeline_action(action), issue.status, to_status,
                   changes.get("level", issue.level), note, **extra)
    changes.update(status=to_status, updated_at=now)
    if to_status == "closed":
        changes.setdefault("closed_at", now)
    changes["on_board"] = workflow.on_board(to_status, changes.get("moderation", issue.moderation),
                                   changes.get("duplicate_of", issue.duplicate_of))
    increments = {"version": 1, **changes.pop("$inc", {})}
    query = {"_id": issue.id, "version": issue.version, "status": issue.status}
    if action == "comment":  # changes no state, so it must not lose to another write landing first
        query.pop("version")
        changes = {k: v for k, v in changes.items() if k in ("updated_at", "met_at")}
    failpoints.reach("issue.decided")  # tests hold one action here while another applies
    return db.update_and_get(
        Issue._get_collection(), query,
        {"$set": changes, "$inc": increments, "$push": {"timeline": entry}}, {"_id": issue.id}, session=session)


def _timeline_action(action: str) -> str:
    return "feedback" if action.startswith("rate_") else action


def _no_effect(issue, user, now, **_):
    return {}, {}


def _accept(issue, user, now, **_):
    return {"accepted_at": now, "first_response_at": issue.first_response_at or now,
            "due_at": handling_due(now, issue.level, issue.category)}, {}


def _reject(issue, user, now, note=None, **_):
    if not note:
        raise InvalidInput("不予受理需说明理由", errors={"note": ["请填写不予受理的理由"]})
    return {"first_response_at": issue.first_response_at or now, "due_at": None}, {}


def _escalate(issue, user, now, **_):
    level = workflow.next_level(issue.level)  # not None: the table's condition was checked first
    due = handling_due(now, level, issue.category) if issue.status != "submitted" else issue.due_at
    return {"level": level, "due_at": due, "$inc": {"escalated_count": 1}}, {}


def _resolve(issue, user, now, note=None, owner_unit=None, evidence=(), consultation_id=None, **_):
    if not note:
        raise InvalidInput("办结需填写办理结果", errors={"note": ["请填写办理结果"]})
    evidence_ids = list(dict.fromkeys(object_id(e) for e in evidence or ()))
    if evidence_ids:
        usable = files.UploadedFile.objects(id__in=evidence_ids, owner_id=user.id, issue_id__in=[None, issue.id])
        if user is None or usable.count() != len(evidence_ids):
            raise InvalidInput(errors={"evidence": ["包含不存在、不属于您或已被使用的文件"]})
    return {"resolution": {"summary": note, "owner_unit": owner_unit, "resolved_at": now, "evidence": evidence_ids},
            "due_at": None, "feedback": None,
            **({"met_at": issue.met_at or now} if consultation_id else {})}, {"consultation_id": consultation_id}


def _rate(rating):
    def effect(issue, user, now, note=None, **_):
        changes = {"feedback": {"rating": rating, "comment": note, "at": now}}
        if rating == "unsatisfied":
            changes["$inc"] = {"reopened_count": 1}
            changes["due_at"] = handling_due(now, issue.level, issue.category)
        return changes, {}
    return effect


def _withdraw(issue, user, now, **_):
    return {"withdrawn_at": now, "due_at": None}, {}


def _supervise(issue, user, now, **_):
    return {"supervised": True}, {}


def _comment(issue, user, now, note=None, visit=False, caps=(), **_):
    if not note:
        raise InvalidInput(errors={"note": ["请填写内容"]})
    if visit and STAFF not in caps:
        raise Forbidden("只有工作人员可以记录走访", error="action_forbidden")
    held = None
    if STAFF not in caps:  # a resident's words are shown to others: WeChat checks them first
        held = True if check_text(note, user, scene=2) == "review" else None
    changes = {"$inc": {"visits_count": 1}, "met_at": issue.met_at or now} if visit else {}
    return changes, {"visit": True if visit else None, "held": held}


def _approve(issue, user, now, **_):
    return {"moderation": "pass"}, {}


def _duplicate(issue, user, now, duplicate_of=None, **_):
    if not duplicate_of:
        raise InvalidInput(errors={"duplicate_of": ["请指定原议题"]})
    original = Issue.objects(id=object_id(duplicate_of)).first()
    if (original is None or original.id == issue.id or original.studio_id != issue.studio_id
            or original.status in ("rejected", "withdrawn") or original.duplicate_of):
        raise InvalidInput(errors={"duplicate_of": ["原议题须是本工作室另一个有效议题"]})
    return {"duplicate_of": original.id, "due_at": None}, {}


def _schedule(issue, user, now, consultation_id=None, **_):
    return {"consultation_id": consultation_id}, {"consultation_id": consultation_id}


def _unschedule(issue, user, now, consultation_id=None, **_):
    return {"consultation_id": None}, {"consultation_id": consultation_id}


def _consult(issue, user, now, consultation_id=None, owner_unit=None, due_at=None, **_):
    """Minutes of a held session: the issue was discussed face to face; the outcome may set a deadline."""
    changes = {"met_at": issue.met_at or now}
    if due_at is not None:
        changes["due_at"] = due_at
    if owner_unit:
        changes["owner_unit"] = owner_unit
    return changes, {"consultation_id": consultation_id}


EFFECTS = {
    "accept": _accept, "reject": _reject, "escalate": _escalate, "resolve": _resolve,
    "rate_satisfied": _rate("satisfied"), "rate_basically_satisfied": _rate("basically_satisfied"),
    "rate_unsatisfied": _rate("unsatisfied"), "withdraw": _withdraw,
    "supervise": _supervise, "comment": _comment, "approve": _approve, "duplicate": _duplicate,
    "schedule": _schedule, "unschedule": _unschedule, "consult": _consult,
}
