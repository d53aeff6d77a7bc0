"""Consultation sessions (民生议事堂): schedule, reschedule, cancel, sign in, minute.

Linked issues move through the issue state machine (`issues.service.transition`) in the same
transaction as the session's own write, so a session and its issues never disagree: if one
issue cannot move, nothing is written. People are told only after the transaction commits.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from zoneinfo import ZoneInfo

from flask import current_app
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from .. import db, failpoints
from ..auth import covers, has_role
from ..db import as_utc, get_or_404, utcnow
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from ..issues import service as issues
from ..notifications import service as notifications
from ..studios import service as studios
from ..users import service as users
from . import ics
from .models import FORMAT_NAMES, STATUS_NAMES, Consultation, StudioCalendar

CHECKIN_OPENS_BEFORE = dt.timedelta(minutes=30)  # sign-in opens this long before the start
CODE_STEP_S = 60  # a new code every minute, so a photographed QR code soon goes stale
CODE_LIFETIME = dt.timedelta(minutes=5)  # a code is accepted this long after it was shown
CORRECTION_WINDOW = dt.timedelta(days=7)  # the author may correct the minutes this long
MAX_DURATION = dt.timedelta(hours=12)
MAX_AHEAD = dt.timedelta(days=366)
ISSUE = issues.Issue


def _settings():
    return current_app.config["SETTINGS"]


def local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (UTC) time as people read it: in the configured zone, e.g. +08:00."""
    return as_utc(value).astimezone(ZoneInfo(_settings().tz)) if value is not None else None


def local_text(value: dt.datetime) -> str:
    return local(value).strftime("%Y-%m-%d %H:%M")


def etag(consultation) -> str:
    return f'"{consultation.version}"'


# --- who is who --------------------------------------------------------------------------------

def viewer_keys(user) -> list[str]:
    """The keys a user matches against a session's `access_keys` (see the model)."""
    keys = [f"user:{user.id}"]
    if has_role(user, "member"):
        keys += [f"studio:{s}" for s in user.studio_ids or []]
    if has_role(user, "coordinator") and user.scope_region_code:
        keys.append(f"region:{user.scope_region_code}")
    if user.home_region_code:  # a grassroots region: the sessions of the studio there
        keys.append(f"region:{user.home_region_code}")
    return keys


def _access_keys(studio_id, region_path, participants) -> list[str]:
    return list(dict.fromkeys([*(f"region:{code}" for code in region_path), f"studio:{studio_id}",
                               *(f"user:{uid}" for uid in participants)]))


def participants(c) -> list:
    """Everyone the session concerns: host, members, invitees and reporters of linked issues."""
    return list(dict.fromkeys([c.host_member_id, *c.member_ids, *c.invitee_ids, *c.reporter_ids]))


def can_view(user, c) -> bool:
    return has_role(user, "admin") or bool(set(viewer_keys(user)) & set(c.access_keys))


def can_manage(user, studio_id, region_path) -> bool:
    """Schedule, edit, cancel: the studio's members, coordinators whose scope covers it, admins."""
    return covers(user, region_path) or (has_role(user, "member") and studio_id in (user.studio_ids or []))


def _runs_session(user, c) -> bool:
    return has_role(user, "member") and (user.id == c.host_member_id or user.id in c.member_ids)


def may_show_code(user, c) -> bool:
    return can_manage(user, c.studio_id, c.region_path) or _runs_session(user, c)


def may_minute(user, c) -> bool:
    """First minutes: the host, the session's members, coordinators in scope, admins."""
    return covers(user, c.region_path) or _runs_session(user, c)


def is_staff_viewer(user, c) -> bool:
    """Sees the whole session (invitees, who signed in, earlier minutes)."""
    return may_show_code(user, c)


def get_visible(consultation_id, user) -> Consultation:
    """The session if the user may see it; otherwise the same 404 as for an unknown id."""
    c = get_or_404(Consultation, consultation_id)
    if not can_view(user, c):
        raise NotFound()
    return c


def _require_manage(user, c) -> None:
    if not can_manage(user, c.studio_id, c.region_path):
        raise Forbidden("只有本工作室的委员或辖区联络员可以修改议事会", error="scope_forbidden")


def _check_version(c, expected_version) -> None:
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
    found = {u.id: u for u in users.User.objects(id__in=list(wanted), active=True)}
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
    raws = {raw["_id"]: raw for raw in ISSUE._get_collection().find({"_id": {"$in": list(issue_ids)}}, session=session)}
    if any(i not in raws or raws[i]["studio_id"] != studio_id for i in issue_ids):
        raise InvalidInput(errors={"issue_ids": ["包含不存在或不属于本工作室的议题"]})
    stuck = [raws[i] for i in issue_ids if raws[i]["status"] != "accepted"
             and not (consultation_id and raws[i]["status"] == "scheduled" and raws[i].get("consultation_id") == consultation_id)]
    if stuck:
        raise Conflict("只有已受理的议题可以安排协商", error="issue_not_schedulable", errors={"issue_ids": [
            f"{raw['number']} 当前状态为{issues.STATUS_NAMES[raw['status']]}" for raw in stuck]})
    return [ISSUE._from_son(raws[i]) for i in issue_ids]


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
    other = Consultation._get_collection().find_one(query, session=session, hint=INDEX_FOR["studio"])
    if other is not None:
        when = f"{local_text(other['starts_at'])}–{local(other['ends_at']).strftime('%H:%M')}"
        raise Conflict("该工作室在这个时间已有议事会", error="consultation_overlap",
                       errors={"starts_at": [f"与议事会「{other['topic']}」（{when}）时间重叠"]})
    failpoints.reach("consultation.booked")  # tests hold one booking here while another books


def _schedule_note(topic, starts_at, location) -> str:
    return f"安排在民生议事堂「{topic}」协商：{local_text(starts_at)}，{location}"


def notify_about(user_ids, kind, c, title, body, *, dedupe_key=None, template="consultation", now=None) -> int:
    return notifications.notify(
        [u for u in user_ids if u is not None], kind, title=title, body=body,
        page=f"pages/consultation/detail?id={c.id}", template=template,
        data={"thing1": c.topic, "time2": local_text(c.starts_at), "thing3": c.location},
        dedupe_key=dedupe_key, now=now)


def _announce(moved, now) -> None:
    for issue, action, note in moved:
        issues.announce(issue, action, note, now)


# --- schedule, edit, cancel --------------------------------------------------------------------

def create(user, *, studio_id, topic, starts_at, ends_at, location, capacity, format="in_person",
           description="", host_member_id=None, member_ids=(), invitee_ids=(), issue_ids=(), now=None) -> Consultation:
    now = now or utcnow()
    studio = studios.get_many([studio_id], field="studio_id")[0]
    if not can_manage(user, studio.id, studio.region_path):
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
    moved = []

    def write(session):
        moved.clear()
        linked = _issues_to_link(issue_ids, studio.id, None, session)
        _book(studio.id, starts_at, ends_at, None, session)
        c.reporter_ids = list(dict.fromkeys(i.reporter_id for i in linked))
        c.access_keys = _access_keys(studio.id, studio.region_path, participants(c))
        doc = c.to_mongo().to_dict()
        Consultation._get_collection().insert_one(doc, session=session)
        c.id = doc["_id"]
        note = _schedule_note(topic, starts_at, location)
        for issue in linked:
            moved.append((issues.transition(issue, "schedule", None, system=True, note=note, now=now, session=session,
                                            consultation_id=c.id), "schedule", note))

    db.run_in_transaction(write)
    _announce(moved, now)
    # Reporters of linked issues hear of it through their issue ("issue_scheduled").
    notify_about([c.host_member_id, *c.member_ids, *c.invitee_ids], "consultation_scheduled", c, "民生议事堂邀请",
                 f"「{c.topic}」将于 {local_text(c.starts_at)} 在{c.location}召开（{FORMAT_NAMES[c.format]}）", now=now)
    return c


def _ids(host, members, invitees, issue_ids):
    oid = db.object_id
    return (oid(host), [oid(m) for m in dict.fromkeys(members)], [oid(i) for i in dict.fromkeys(invitees)],
            [oid(i) for i in dict.fromkeys(issue_ids)])


WHAT_PEOPLE_NOTICE = ("topic", "starts_at", "ends_at", "location", "format")


def update(consultation_id, user, *, expected_version=None, now=None, **changes) -> Consultation:
    """Edit or reschedule a planned session; added issues are scheduled, removed ones go back."""
    now = now or utcnow()
    c = get_visible(consultation_id, user)
    _require_manage(user, c)
    _check_version(c, expected_version)
    if c.status != "planned":
        raise Conflict(f"议事会{STATUS_NAMES[c.status]}，不能修改", error="consultation_not_editable")
    before = {key: getattr(c, key) for key in WHAT_PEOPLE_NOTICE}
    old_audience = set(participants(c))
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
    capacity = changes.get("capacity", c.capacity)
    for key in ("topic", "description", "location", "format"):
        if key in changes:
            setattr(c, key, changes[key] if changes[key] is not None else "")
    c.starts_at, c.ends_at, c.capacity = starts_at, ends_at, capacity
    c.host_member_id, c.member_ids, c.invitee_ids = host, members, invitees
    removed = [i for i in c.issue_ids if i not in issue_ids]
    c.issue_ids = issue_ids
    if retimed:
        _ensure_calendar(c.studio_id)
    moved = []

    def write(session):
        moved.clear()
        linked = _issues_to_link(issue_ids, c.studio_id, c.id, session)
        if retimed:
            _book(c.studio_id, starts_at, ends_at, c.id, session)
        c.reporter_ids = list(dict.fromkeys(i.reporter_id for i in linked))
        c.access_keys = _access_keys(c.studio_id, c.region_path, participants(c))
        fields = ("topic", "description", "starts_at", "ends_at", "location", "format", "host_member_id",
                  "member_ids", "invitee_ids", "issue_ids", "reporter_ids", "access_keys", "capacity")
        updated = Consultation._get_collection().find_one_and_update(
            {"_id": c.id, "version": c.version, "status": "planned"},
            {"$set": {**{f: getattr(c, f) for f in fields}, "updated_at": now}, "$inc": {"version": 1}},
            session=session, return_document=ReturnDocument.AFTER)
        if updated is None:
            raise _changed_meanwhile(expected_version)
        note = _schedule_note(c.topic, starts_at, c.location)
        for issue in linked:
            if issue.status == "accepted":
                moved.append((issues.transition(issue, "schedule", None, system=True, note=note, now=now,
                                                session=session, consultation_id=c.id), "schedule", note))
        _unschedule(removed, c, f"已从民生议事堂「{c.topic}」移出", now, session, moved)
        return updated

    c = Consultation._from_son(db.run_in_transaction(write))
    _announce(moved, now)
    audience = set(participants(c))
    newcomers = audience - old_audience - set(c.reporter_ids)
    if any(getattr(c, key) != (as_utc(value) if isinstance(value, dt.datetime) else value)
           for key, value in before.items() if key in changes):
        notify_about(sorted(audience & old_audience - {user.id}), "consultation_changed", c, "议事会安排有变",
                     f"「{c.topic}」调整为 {local_text(c.starts_at)} 在{c.location}召开（{FORMAT_NAMES[c.format]}）", now=now)
    notify_about(sorted(newcomers - {user.id}), "consultation_scheduled", c, "民生议事堂邀请",
                 f"「{c.topic}」将于 {local_text(c.starts_at)} 在{c.location}召开（{FORMAT_NAMES[c.format]}）", now=now)
    return c


def _changed_meanwhile(expected_version):
    # Read before the transaction, changed by someone else before it began.
    return PreconditionFailed() if expected_version is not None else Conflict(
        "议事会刚被他人修改，请刷新后重试", error="concurrent_update")


def _unschedule(issue_ids, c, note, now, session, moved) -> None:
    """Linked issues still waiting for this session go back to `accepted`, each with its entry."""
    if not issue_ids:
        return
    for raw in ISSUE._get_collection().find({"_id": {"$in": list(issue_ids)}, "status": "scheduled",
                                             "consultation_id": c.id}, session=session):
        moved.append((issues.transition(ISSUE._from_son(raw), "unschedule", None, system=True, note=note, now=now,
                                        session=session, consultation_id=c.id), "unschedule", note))


def cancel(consultation_id, user, reason="", *, expected_version=None, now=None) -> Consultation:
    now = now or utcnow()
    c = get_visible(consultation_id, user)
    _require_manage(user, c)
    _check_version(c, expected_version)
    if c.status != "planned":
        raise Conflict(f"议事会{STATUS_NAMES[c.status]}，不能取消", error="consultation_not_cancellable")
    note = f"民生议事堂「{c.topic}」已取消" + (f"：{reason}" if reason else "")
    moved = []

    def write(session):
        moved.clear()
        updated = Consultation._get_collection().find_one_and_update(
            {"_id": c.id, "version": c.version, "status": "planned"},
            {"$set": {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason or None, "updated_at": now},
             "$inc": {"version": 1}}, session=session, return_document=ReturnDocument.AFTER)
        if updated is None:
            raise _changed_meanwhile(expected_version)
        _unschedule(c.issue_ids, c, note, now, session, moved)
        return updated

    c = Consultation._from_son(db.run_in_transaction(write))
    _announce(moved, now)
    notify_about(sorted(set(participants(c)) - {user.id}), "consultation_cancelled", c, "议事会已取消",
                 f"原定 {local_text(c.starts_at)} 的「{c.topic}」已取消" + (f"：{reason}" if reason else ""), now=now)
    return c


# --- sign-in -----------------------------------------------------------------------------------

def _sign(consultation_id, window: int) -> str:
    key = _settings().signing_key.encode()
    digest = hmac.new(key, f"yishitang-checkin|{consultation_id}|{window}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode()  # 8 characters: enough for a code valid minutes


def _window(now) -> int:
    return int(now.timestamp()) // CODE_STEP_S


def _require_checkin_open(c, now) -> None:
    if c.status == "cancelled":
        raise Conflict("议事会已取消", error="consultation_cancelled")
    opens, closes = as_utc(c.starts_at) - CHECKIN_OPENS_BEFORE, as_utc(c.ends_at)
    if not opens <= now < closes:
        raise Conflict(f"签到时间为 {local_text(opens)} 至 {local_text(closes)}", error="checkin_closed")


def checkin_code(consultation_id, user, now=None) -> dict:
    """The code to show as a QR code now: a new one every minute, each accepted for 5 minutes."""
    now = now or utcnow()
    c = get_visible(consultation_id, user)
    if not may_show_code(user, c):
        raise Forbidden("只有主持人和参会委员可以出示签到码", error="checkin_code_forbidden")
    _require_checkin_open(c, now)
    window = _window(now)
    issued = dt.datetime.fromtimestamp(window * CODE_STEP_S, dt.timezone.utc)
    return {"code": f"{window}.{_sign(c.id, window)}", "expires_at": local(issued + CODE_LIFETIME),
            "refresh_at": local(issued + dt.timedelta(seconds=CODE_STEP_S))}


def _verify_code(c, code: str, now) -> None:
    window_text, _, signature = (code or "").strip().partition(".")
    if not window_text.isdigit() or len(window_text) > 12:
        raise InvalidInput("签到码无效", error="invalid_checkin_code")
    window = int(window_text)
    if not hmac.compare_digest(_sign(c.id, window).encode(), signature.upper().encode()) or window > _window(now) + 1:
        raise InvalidInput("签到码无效", error="invalid_checkin_code")
    if now >= dt.datetime.fromtimestamp(window * CODE_STEP_S, dt.timezone.utc) + CODE_LIFETIME:
        raise InvalidInput("签到码已过期，请扫描屏幕上的最新二维码", error="checkin_code_expired")


def check_in(consultation_id, user, code, now=None) -> dict:
    """Sign the caller in once; capacity holds even when everyone scans at the same moment."""
    now = now or utcnow()
    c = get_visible(consultation_id, user)
    _require_checkin_open(c, now)
    _verify_code(c, code, now)
    collection = Consultation._get_collection()
    for _attempt in range(5):
        if any(ci.user_id == user.id for ci in c.checkins):
            raise Conflict("您已签到", error="already_checked_in")
        if c.checkins_count >= c.capacity:
            raise Conflict("议事会人数已满", error="consultation_full")
        _require_checkin_open(c, now)
        # One conditional update: same status and capacity as read, caller absent, room left.
        updated = collection.find_one_and_update(
            {"_id": c.id, "status": c.status, "capacity": c.capacity, "checkins.user_id": {"$ne": user.id},
             "checkins_count": {"$lt": c.capacity}},
            {"$push": {"checkins": {"user_id": user.id, "at": now}}, "$inc": {"checkins_count": 1},
             "$set": {"status": "held" if c.status == "planned" else c.status}},
            return_document=ReturnDocument.AFTER, projection={"checkins_count": 1})
        if updated is not None:
            return {"consultation_id": str(c.id), "user_id": str(user.id), "at": local(now),
                    "checkins_count": updated["checkins_count"]}
        c = get_or_404(Consultation, c.id)
    raise Conflict("签到人数较多，请稍后重试", error="concurrent_update")


# --- minutes -----------------------------------------------------------------------------------

def record_minutes(consultation_id, user, *, summary, outcomes, attendees_count=None, expected_version=None,
                   now=None) -> Consultation:
    """First minutes move each linked issue; the author's corrections (7 days) only amend the record."""
    now = now or utcnow()
    c = get_visible(consultation_id, user)
    first = c.minutes is None
    if c.status == "cancelled":
        raise Conflict("议事会已取消", error="consultation_cancelled")
    if first:
        if not may_minute(user, c):
            raise Forbidden("只有主持人、参会委员或辖区联络员可以记录纪要", error="minutes_forbidden")
    elif user.id != c.minutes.recorded_by:
        raise Forbidden("只有纪要的记录人可以更正纪要", error="minutes_forbidden")
    _check_version(c, expected_version)
    if first and now < as_utc(c.starts_at):
        raise Conflict("议事会开始后才能记录纪要", error="consultation_not_started")
    if not first and now > as_utc(c.minuted_at) + CORRECTION_WINDOW:
        raise Conflict("纪要形成已超过 7 天，不能再更正", error="correction_window_closed")
    outcomes = _check_outcomes(c, outcomes, now)
    if not first:
        _check_locked(c, outcomes)
    if attendees_count is None:
        attendees_count = c.checkins_count if first else c.minutes.attendees_count
    minutes = {"summary": summary, "attendees_count": attendees_count, "outcomes": outcomes,
               "recorded_by": user.id, "recorded_at": now}
    moved = []

    def write(session):
        moved.clear()
        change = {"$set": {"minutes": minutes, "updated_at": now}, "$inc": {"version": 1}}
        if first:
            change["$set"].update(status="minuted", minuted_at=now)
        else:
            change["$push"] = {"minutes_history": c.minutes.to_mongo().to_dict()}
        updated = Consultation._get_collection().find_one_and_update(
            {"_id": c.id, "version": c.version, "status": c.status}, change, session=session,
            return_document=ReturnDocument.AFTER)
        if updated is None:
            raise _changed_meanwhile(expected_version)
        if first:
            _apply_outcomes(c, outcomes, now, session, moved)
        return updated

    c = Consultation._from_son(db.run_in_transaction(write))
    _announce(moved, now)
    return c


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
        numbers = {raw["_id"]: raw["number"] for raw in ISSUE._get_collection().find({"_id": {"$in": missing}}, {"number": 1})}
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


def _apply_outcomes(c, outcomes, now, session, moved) -> None:
    """Each linked issue still waiting for this session: resolved, or consulted and handed on.
    An issue its reporter withdrew before the minutes keeps its outcome on record only."""
    waiting = {raw["_id"]: ISSUE._from_son(raw) for raw in ISSUE._get_collection().find(
        {"_id": {"$in": list(c.issue_ids)}, "status": "scheduled", "consultation_id": c.id}, session=session)}
    for outcome in outcomes:
        issue = waiting.get(outcome["issue_id"])
        if issue is None:
            continue
        if outcome["resolved"]:
            action, params = "resolve", {"owner_unit": outcome["owner_unit"]}
        else:
            action, params = "consult", {"owner_unit": outcome["owner_unit"], "due_at": outcome["due_at"]}
        moved.append((issues.transition(issue, action, None, system=True, note=outcome["decision"], now=now,
                                        session=session, consultation_id=c.id, **params), action, outcome["decision"]))


# --- finding sessions --------------------------------------------------------------------------

LATEST = [("starts_at", -1), ("_id", -1)]
# The index behind each kind of list, named explicitly (the planner needs every predicate field
# in an index to pick one by itself).
INDEX_FOR = {
    "access": [("access_keys", 1), *LATEST],
    "studio": [("studio_id", 1), *LATEST],
    "region": [("region_path", 1), *LATEST],
    "all": LATEST,
    "reminders": [("status", 1), ("starts_at", 1)],
}


def search(user, studio=None, region=None, status=None, start=None, end=None, order="desc"):
    """Sessions the caller may see, latest start first (or soonest first with order=asc)."""
    query: dict = {}
    if has_role(user, "admin"):
        index = "studio" if studio else "region" if region else "all"
    else:
        query["access_keys"] = {"$in": viewer_keys(user)}
        index = "access"
    if studio:
        query["studio_id"] = db.object_id(studio)
    if region:
        query["region_path"] = region
    if status:
        query["status"] = {"$in": list(status)}
    if start or end:
        query["starts_at"] = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
    sort = ("-starts_at", "-id") if order == "desc" else ("starts_at", "id")
    found = Consultation.objects(__raw__=query).order_by(*sort)
    # Name the index only when there are filters beyond its leading field: SecantusDB's planner
    # then falls back to a scan, while it walks a hinted index whole (MongoDB does neither).
    return found.hint(INDEX_FOR[index]) if set(query) - {INDEX_FOR[index][0][0]} else found


# --- what a viewer sees ------------------------------------------------------------------------

def _names(sessions) -> dict:
    ids = {uid for c in sessions for uid in (c.host_member_id, *c.member_ids)}
    return {u.id: u.display_name for u in users.User.objects(id__in=list(ids)).only("display_name")}


def views(sessions, viewer) -> list[dict]:
    """A page of sessions, with one lookup for the names of all their hosts and members."""
    sessions = list(sessions)
    names = _names(sessions)
    return [view(c, viewer, names) for c in sessions]


def view(c, viewer, names=None) -> dict:
    """The session shaped for the viewer: residents see no invitee list and no one else's sign-in."""
    staff = viewer is not None and (has_role(viewer, "admin") or is_staff_viewer(viewer, c))
    names = _names([c]) if names is None else names

    def minutes_view(m):
        if m is None:
            return None
        return {"summary": m.summary, "attendees_count": m.attendees_count,
                "outcomes": [{"issue_id": str(o.issue_id), "decision": o.decision, "owner_unit": o.owner_unit,
                              "due_at": local(o.due_at), "resolved": o.resolved} for o in m.outcomes],
                "recorded_by": str(m.recorded_by) if staff else None, "recorded_at": local(m.recorded_at)}

    return {
        "id": str(c.id), "studio_id": str(c.studio_id), "region_code": c.region_code, "topic": c.topic,
        "description": c.description, "starts_at": local(c.starts_at), "ends_at": local(c.ends_at),
        "location": c.location, "format": c.format, "host_member_id": str(c.host_member_id),
        "host": {"id": str(c.host_member_id), "display_name": names.get(c.host_member_id)},
        "member_ids": [str(m) for m in c.member_ids],
        "members": [{"id": str(m), "display_name": names.get(m)} for m in c.member_ids],
        "invitee_ids": [str(i) for i in c.invitee_ids] if staff else None,
        "issue_ids": [str(i) for i in c.issue_ids], "capacity": c.capacity, "status": c.status,
        "checkins": [{"user_id": str(ci.user_id), "at": local(ci.at)} for ci in c.checkins] if staff else None,
        "checkins_count": c.checkins_count,
        "checked_in": viewer is not None and any(ci.user_id == viewer.id for ci in c.checkins),
        "minutes": minutes_view(c.minutes),
        "minutes_history": [minutes_view(m) for m in c.minutes_history] if staff else None,
        "cancelled_at": local(c.cancelled_at), "cancel_reason": c.cancel_reason,
        "created_by": str(c.created_by) if staff else None,
        "created_at": local(c.created_at), "updated_at": local(c.updated_at), "version": c.version,
    }


def calendar_text(c) -> str:
    host = users.User.objects(id=c.host_member_id).only("display_name").first()
    return ics.calendar(c, host.display_name if host else None)


def personal_data(user) -> dict:
    """Sessions the person signed in to (check-ins keep only the user id and the time)."""
    attended = Consultation.objects(checkins__user_id=user.id).only("id", "topic", "starts_at", "checkins")
    return {"checkins": [{"consultation_id": str(c.id), "topic": c.topic,
                          "at": next(ch.at for ch in c.checkins if ch.user_id == user.id)} for c in attended]}
