"""Consultation sessions (民生议事堂): schedule, edit, cancel.

Linked issues move through the issue state machine (`issues.transitions.transition`) in the same
transaction as the session's own write, so a session and its issues never disagree: if one
issue cannot move, nothing is written. People are told only after the transaction commits.
Who may do what is in `access` and the state table in `workflow`; sign-in is in `checkin`,
minutes in `minutes`, lists in `queries`, shaping for a viewer in `presenters`.
"""

from __future__ import annotations

import datetime as dt

from pymongo.errors import DuplicateKeyError

from .. import db, failpoints
from ..auth import has_role
from ..db import as_utc, utcnow
from ..errors import Conflict, Forbidden, InvalidInput, PreconditionFailed
from ..issues import transitions as issue_transitions
from ..issues.models import Issue
from ..studios import service as studios
from ..users import service as users
from . import access as access_rules
from . import workflow
from .models import FORMAT_NAMES, Consultation, StudioCalendar
from .presenters import local, local_text, notify_about
from .queries import INDEX_FOR

MAX_DURATION = dt.timedelta(hours=12)
MAX_AHEAD = dt.timedelta(days=366)


def check_version(c, expected_version) -> None:
    if expected_version is not None and c.version != expected_version:
        raise PreconditionFailed()


# --- checks shared by create and edit ----------------------------------------------------------

def _check_times(starts_at, ends_at, now, *, start_changed=True) -> None:
    if ends_at <= starts_at:
        raise InvalidInput(errors={"ends_at": ["结束时间应晚于开始时间"]})
    if ends_at - starts_at > MAX_DURATION:
        raise InvalidInput(errors={"ends_at": ["单次议事会不超过 12 小时"]})
    if (start_changed and starts_at <= now) or ends_at <= now:
        raise InvalidInput("议事会时间不能早于当前时间", error="time_in_past",
                           errors={"starts_at" if start_changed else "ends_at": ["时间已过，请选择将来的时间"]})
    if starts_at > now + MAX_AHEAD:
        raise InvalidInput(errors={"starts_at": ["最多提前一年安排"]})


def _check_people(studio_id, host_member_id, member_ids, invitee_ids) -> None:
    wanted = {host_member_id, *member_ids, *invitee_ids}
    found = users.active_by_id(wanted)
    errors = {}
    host = found.get(host_member_id)
    if host is None or not has_role(host, "member") or studio_id not in host.studio_ids:
        errors["host_member_id"] = ["主持人须是本工作室在职的委员"]
    if any(m not in found or not has_role(found[m], "member") for m in member_ids):
        errors["member_ids"] = ["包含不存在、已停用或不是委员的用户"]
    if any(i not in found for i in invitee_ids):
        errors["invitee_ids"] = ["包含不存在或已停用的用户"]
    if errors:
        raise InvalidInput(errors=errors)


def _issues_to_link(issue_ids, studio_id, consultation_id, session) -> list:
    """The issues as stored now; each must be this studio's and `accepted` (or already ours)."""
    raws = {raw["_id"]: raw for raw in Issue._get_collection().find({"_id": {"$in": list(issue_ids)}}, session=session)}
    if any(i not in raws or raws[i]["studio_id"] != studio_id for i in issue_ids):
        raise InvalidInput(errors={"issue_ids": ["包含不存在或不属于本工作室的议题"]})
    stuck = [raws[i] for i in issue_ids if raws[i]["status"] != "accepted"
             and not (consultation_id and raws[i]["status"] == "scheduled" and raws[i].get("consultation_id") == consultation_id)]
    if stuck:
        raise Conflict("只有已受理的议题可以安排协商", error="issue_not_schedulable", errors={"issue_ids": [
            f"{raw['number']} 当前状态为{issue_transitions.STATUS_NAMES[raw['status']]}" for raw in stuck]})
    return [Issue._from_son(raws[i]) for i in issue_ids]


def _ensure_calendar(studio_id) -> None:
    # Created outside the transaction: two transactions inserting it at once would not retry.
    try:
        StudioCalendar._get_collection().update_one({"_id": studio_id}, {"$setOnInsert": {"seq": 0}}, upsert=True)
    except DuplicateKeyError:  # another request created it a moment ago
        pass


def _book(studio_id, starts_at, ends_at, exclude_id, session) -> None:
    """Refuse a time that overlaps another live session of the studio (race-safe, see StudioCalendar)."""
    StudioCalendar._get_collection().update_one({"_id": studio_id}, {"$inc": {"seq": 1}}, session=session)
    query = {"studio_id": studio_id, "starts_at": {"$lt": ends_at}, "ends_at": {"$gt": starts_at},
             "status": {"$ne": "cancelled"}}
    if exclude_id is not None:
        query["_id"] = {"$ne": exclude_id}
    other = Consultation._get_collection().find_one(query, session=session, hint=db.hint_for(query, INDEX_FOR["studio"]))
    if other is not None:
        when = f"{local_text(other['starts_at'])}–{local(other['ends_at']).strftime('%H:%M')}"
        raise Conflict("该工作室在这个时间已有议事会", error="consultation_overlap",
                       errors={"starts_at": [f"与议事会「{other['topic']}」（{when}）时间重叠"]})
    failpoints.reach("consultation.booked")  # tests hold one booking here while another books


def _schedule_note(topic, starts_at, location) -> str:
    return f"安排在民生议事堂「{topic}」协商：{local_text(starts_at)}，{location}"


def _move(issues, action, note, now, session, c, **params) -> None:
    """Move each issue by a system action in the caller's transaction (told after it commits)."""
    for issue in issues:
        issue_transitions.transition(issue, action, None, system=True, note=note, now=now, session=session,
                                     consultation_id=c.id, **params)


def _unschedule(issue_ids, c, note, now, session) -> None:
    """Linked issues still waiting for this session go back to `accepted`, each with its entry."""
    if issue_ids:
        waiting = Issue._get_collection().find({"_id": {"$in": list(issue_ids)}, "status": "scheduled",
                                                "consultation_id": c.id}, session=session)
        _move([Issue._from_son(raw) for raw in waiting], "unschedule", note, now, session, c)


def changed_meanwhile(expected_version):
    # Read before the transaction, changed by someone else before it began.
    return PreconditionFailed() if expected_version is not None else Conflict(
        "议事会刚被他人修改，请刷新后重试", error="concurrent_update")


def _linked(c, issue_ids, consultation_id, session) -> list:
    """The issues to link (checked), with the session's derived fields set from them."""
    linked = _issues_to_link(issue_ids, c.studio_id, consultation_id, session)
    c.reporter_ids = list(dict.fromkeys(i.reporter_id for i in linked))
    c.access_keys = access_rules.access_keys(c.studio_id, c.region_path, access_rules.participants(c))
    return linked


def _invite(c, user_ids, now) -> None:
    notify_about(user_ids, "consultation_scheduled", c, "民生议事堂邀请",
                 f"「{c.topic}」将于 {local_text(c.starts_at)} 在{c.location}召开（{FORMAT_NAMES[c.format]}）", now=now)


# --- schedule, edit, cancel --------------------------------------------------------------------

def create(user, *, studio_id, topic, starts_at, ends_at, location, capacity, format="in_person",
           description="", host_member_id=None, member_ids=(), invitee_ids=(), issue_ids=(), now=None) -> Consultation:
    now = now or utcnow()
    studio = studios.get_many([studio_id], field="studio_id")[0]
    if not access_rules.can_manage(user, studio.id, studio.region_path):
        raise Forbidden("只有本工作室的委员或辖区联络员可以安排议事会", error="scope_forbidden")
    if not studio.active:
        raise InvalidInput(errors={"studio_id": ["该工作室已停用"]})
    if host_member_id is None:
        if not (has_role(user, "member") and studio.id in user.studio_ids):
            raise InvalidInput(errors={"host_member_id": ["请指定主持委员"]})
        host_member_id = user.id
    host_member_id, member_ids, invitee_ids, issue_ids = _ids(host_member_id, member_ids, invitee_ids, issue_ids)
    _check_times(starts_at, ends_at, now)
    _check_people(studio.id, host_member_id, member_ids, invitee_ids)
    c = Consultation(studio_id=studio.id, region_code=studio.region_code, region_path=studio.region_path,
                     topic=topic, description=description or "", starts_at=starts_at, ends_at=ends_at,
                     location=location, format=format, host_member_id=host_member_id, member_ids=member_ids,
                     invitee_ids=invitee_ids, issue_ids=issue_ids, capacity=capacity, created_by=user.id,
                     created_at=now, updated_at=now)
    c.validate()
    _ensure_calendar(studio.id)

    def write(session):
        linked = _linked(c, issue_ids, None, session)
        _book(studio.id, starts_at, ends_at, None, session)
        doc = c.to_mongo().to_dict()
        Consultation._get_collection().insert_one(doc, session=session)
        c.id = doc["_id"]
        _move(linked, "schedule", _schedule_note(topic, starts_at, location), now, session, c)

    db.run_in_transaction(write)
    # Reporters of linked issues hear of it through their issue ("issue_scheduled").
    _invite(c, [c.host_member_id, *c.member_ids, *c.invitee_ids], now)
    return c


def _ids(host, members, invitees, issue_ids):
    oid = db.object_id
    return (oid(host), [oid(m) for m in dict.fromkeys(members)], [oid(i) for i in dict.fromkeys(invitees)],
            [oid(i) for i in dict.fromkeys(issue_ids)])


WHAT_PEOPLE_NOTICE = ("topic", "starts_at", "ends_at", "location", "format")


EDITABLE = ("topic", "starts_at", "ends_at", "location", "format", "description", "host_member_id", "member_ids",
            "invitee_ids", "issue_ids", "capacity")


def update(consultation_id, user, *, expected_version=None, now=None, **changes) -> Consultation:
    """Edit or reschedule a planned session; added issues are scheduled, removed ones go back."""
    now = now or utcnow()
    c, access = access_rules.get_visible(consultation_id, user)
    workflow.require_who("edit", workflow.capacities(access, user, c))
    check_version(c, expected_version)
    workflow.next_status(c.status, "edit")
    before = {key: getattr(c, key) for key in WHAT_PEOPLE_NOTICE}
    old_audience = set(access_rules.participants(c))
    retimed, removed = _apply_changes(c, changes, now)
    if retimed:
        _ensure_calendar(c.studio_id)

    def write(session):
        linked = _linked(c, c.issue_ids, c.id, session)
        if retimed:
            _book(c.studio_id, c.starts_at, c.ends_at, c.id, session)
        updated = db.update_and_get(
            Consultation._get_collection(), {"_id": c.id, "version": c.version, "status": "planned"},
            {"$set": {**{f: getattr(c, f) for f in (*EDITABLE, "reporter_ids", "access_keys")}, "updated_at": now},
             "$inc": {"version": 1}}, {"_id": c.id}, session=session)
        if updated is None:
            raise changed_meanwhile(expected_version)
        _move([i for i in linked if i.status == "accepted"], "schedule",
              _schedule_note(c.topic, c.starts_at, c.location), now, session, c)
        _unschedule(removed, c, f"已从民生议事堂「{c.topic}」移出", now, session)
        return updated

    c = Consultation._from_son(db.run_in_transaction(write))
    _tell_about_changes(c, user, before, old_audience, changes, now)
    return c


def _apply_changes(c, changes, now) -> tuple[bool, list]:
    """Check the edit and apply it to `c` in memory: (whether the time moved, the issues taken off)."""
    host, members, invitees, issue_ids = _ids(changes.get("host_member_id", c.host_member_id),
                                              changes.get("member_ids", c.member_ids),
                                              changes.get("invitee_ids", c.invitee_ids),
                                              changes.get("issue_ids", c.issue_ids))
    starts_at = changes.get("starts_at", as_utc(c.starts_at))
    ends_at = changes.get("ends_at", as_utc(c.ends_at))
    retimed = starts_at != as_utc(c.starts_at) or ends_at != as_utc(c.ends_at)
    if retimed:
        _check_times(starts_at, ends_at, now, start_changed=starts_at != as_utc(c.starts_at))
    if {"host_member_id", "member_ids", "invitee_ids"} & set(changes):
        _check_people(c.studio_id, host, members, invitees)
    for key in ("topic", "description", "location", "format"):
        if key in changes:
            setattr(c, key, changes[key] if changes[key] is not None else "")
    c.starts_at, c.ends_at, c.capacity = starts_at, ends_at, changes.get("capacity", c.capacity)
    c.host_member_id, c.member_ids, c.invitee_ids = host, members, invitees
    removed = [i for i in c.issue_ids if i not in issue_ids]
    c.issue_ids = issue_ids
    return retimed, removed


def _tell_about_changes(c, user, before, old_audience, changes, now) -> None:
    """Those invited before hear what changed that they would notice; newcomers get an invitation."""
    audience = set(access_rules.participants(c))
    newcomers = audience - old_audience - set(c.reporter_ids)
    if any(getattr(c, key) != (as_utc(value) if isinstance(value, dt.datetime) else value)
           for key, value in before.items() if key in changes):
        notify_about(sorted(audience & old_audience - {user.id}), "consultation_changed", c, "议事会安排有变",
                     f"「{c.topic}」调整为 {local_text(c.starts_at)} 在{c.location}召开（{FORMAT_NAMES[c.format]}）", now=now)
    _invite(c, sorted(newcomers - {user.id}), now)


def cancel(consultation_id, user, reason="", *, expected_version=None, now=None) -> Consultation:
    now = now or utcnow()
    c, access = access_rules.get_visible(consultation_id, user)
    workflow.require_who("cancel", workflow.capacities(access, user, c))
    check_version(c, expected_version)
    to_status = workflow.next_status(c.status, "cancel")
    note = f"民生议事堂「{c.topic}」已取消" + (f"：{reason}" if reason else "")

    def write(session):
        updated = db.update_and_get(
            Consultation._get_collection(), {"_id": c.id, "version": c.version, "status": c.status},
            {"$set": {"status": to_status, "cancelled_at": now, "cancel_reason": reason or None, "updated_at": now},
             "$inc": {"version": 1}}, {"_id": c.id}, session=session)
        if updated is None:
            raise changed_meanwhile(expected_version)
        _unschedule(c.issue_ids, c, note, now, session)
        return updated

    c = Consultation._from_son(db.run_in_transaction(write))
    notify_about(sorted(set(access_rules.participants(c)) - {user.id}), "consultation_cancelled", c, "议事会已取消",
                 f"原定 {local_text(c.starts_at)} 的「{c.topic}」已取消" + (f"：{reason}" if reason else ""), now=now)
    return c


def personal_data(user) -> dict:
    """Sessions the person signed in to (check-ins keep only the user id and the time)."""
    attended = Consultation.objects(checkins__user_id=user.id).only("id", "topic", "starts_at", "checkins")
    return {"checkins": [{"consultation_id": str(c.id), "topic": c.topic,
                          "at": next(ch.at for ch in c.checkins if ch.user_id == user.id)} for c in attended]}
