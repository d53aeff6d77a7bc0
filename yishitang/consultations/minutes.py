"""Minutes of a session: the first ones move each linked issue; the author may correct them
for 7 days, which amends the record only."""

from __future__ import annotations


from .. import db
from ..db import as_utc, utcnow
from ..errors import Conflict, InvalidInput
from ..issues import transitions as issue_transitions
from ..issues.models import Issue
from . import access as access_rules
from . import workflow
from .models import Consultation
from .service import changed_meanwhile, check_version



def record_minutes(consultation_id, user, *, summary, outcomes, attendees_count=None, expected_version=None,
                   now=None) -> Consultation:
    """First minutes move each linked issue; the author's corrections (7 days) only amend the record."""
    now = now or utcnow()
    c, access = access_rules.get_visible(consultation_id, user)
    first = c.minutes is None
    action = "minute" if first else "correct"
    to_status = workflow.next_status(c.status, action)
    workflow.require_who(action, workflow.capacities(access, user, c))
    check_version(c, expected_version)
    if first and not workflow.in_time(action, c, now):
        raise Conflict("议事会开始后才能记录纪要", error="consultation_not_started")
    if not first and not workflow.in_time(action, c, now):
        raise Conflict("纪要形成已超过 7 天，不能再更正", error="correction_window_closed")
    outcomes = _check_outcomes(c, outcomes, now)
    if not first:
        _check_locked(c, outcomes)
    if attendees_count is None:
        attendees_count = c.checkins_count if first else c.minutes.attendees_count
    minutes = {"summary": summary, "attendees_count": attendees_count, "outcomes": outcomes,
               "recorded_by": user.id, "recorded_at": now}

    def write(session):
        change = {"$set": {"minutes": minutes, "status": to_status, "updated_at": now}, "$inc": {"version": 1}}
        if first:
            change["$set"]["minuted_at"] = now
        else:
            change["$push"] = {"minutes_history": c.minutes.to_mongo().to_dict()}
        updated = db.update_and_get(Consultation._get_collection(), {"_id": c.id, "version": c.version, "status": c.status},
                                    change, {"_id": c.id}, session=session)
        if updated is None:
            raise changed_meanwhile(expected_version)
        if first:
            _apply_outcomes(c, outcomes, now, session)
        return updated

    return Consultation._from_son(db.run_in_transaction(write))


def _check_outcomes(c, outcomes, now) -> list[dict]:
    """One outcome per linked issue and none for any other; 422 with field errors otherwise."""
    linked = set(c.issue_ids)
    not_linked, seen, duplicates, dates = {}, set(), {}, {}
    parsed = []
    for index, outcome in enumerate(outcomes):
        issue_id = db.object_id(outcome["issue_id"])
        if issue_id not in linked:
            not_linked[str(index)] = {"issue_id": ["该议题未列入本次议事会"]}
        elif issue_id in seen:
            duplicates[str(index)] = {"issue_id": ["同一议题只能有一条协商结果"]}
        seen.add(issue_id)
        due_at = outcome.get("due_at")
        if due_at is not None and outcome["resolved"]:
            dates[str(index)] = {"due_at": ["已解决的议题无需办理期限"]}
        elif due_at is not None and due_at <= now:
            dates[str(index)] = {"due_at": ["办理期限应晚于当前时间"]}
        parsed.append({"issue_id": issue_id, "decision": outcome["decision"], "owner_unit": outcome.get("owner_unit"),
                       "due_at": due_at, "resolved": outcome["resolved"]})
    if not_linked:
        raise InvalidInput("协商结果中的议题未列入本次议事会", error="outcome_issue_not_linked", errors={"outcomes": not_linked})
    if duplicates:
        raise InvalidInput("同一议题只能有一条协商结果", error="outcome_duplicate", errors={"outcomes": duplicates})
    if dates:
        raise InvalidInput(errors={"outcomes": dates})
    missing = [i for i in c.issue_ids if i not in seen]
    if missing:
        numbers = {raw["_id"]: raw["number"] for raw in Issue._get_collection().find({"_id": {"$in": missing}}, {"number": 1})}
        raise InvalidInput("每个列入本次议事会的议题都需要一条协商结果", error="outcome_missing",
                           errors={"outcomes": [f"缺少议题 {numbers.get(i, i)} 的协商结果" for i in missing]})
    return parsed


def _check_locked(c, outcomes) -> None:
    """A correction may reword; what moved the issues (resolved, unit, deadline) stays as decided."""
    before = {o.issue_id: o for o in c.minutes.outcomes}
    locked = {}
    for index, outcome in enumerate(outcomes):
        old = before.get(outcome["issue_id"])
        if old is None:
            continue
        fields = [f for f in ("resolved", "owner_unit", "due_at")
                  if (as_utc(getattr(old, f)) if f == "due_at" else getattr(old, f)) != outcome[f]]
        if fields:
            locked[str(index)] = {f: ["议题已按原纪要办理，不能更改"] for f in fields}
    if locked:
        raise Conflict("纪要更正不能改变议题的办理结果（是否解决、责任单位、期限）", error="outcome_locked",
                       errors={"outcomes": locked})


def _apply_outcomes(c, outcomes, now, session) -> None:
    """Each linked issue still waiting for this session: resolved, or consulted and handed on.
    An issue its reporter withdrew before the minutes keeps its outcome on record only."""
    waiting = {raw["_id"]: Issue._from_son(raw) for raw in Issue._get_collection().find(
        {"_id": {"$in": list(c.issue_ids)}, "status": "scheduled", "consultation_id": c.id}, session=session)}
    for outcome in outcomes:
        issue = waiting.get(outcome["issue_id"])
        if issue is None:
            continue
        params = {"owner_unit": outcome["owner_unit"]} if outcome["resolved"] else \
            {"owner_unit": outcome["owner_unit"], "due_at": outcome["due_at"]}
        issue_transitions.transition(issue, "resolve" if outcome["resolved"] else "consult", None, system=True,
                                     note=outcome["decision"], now=now, session=session, consultation_id=c.id, **params)
