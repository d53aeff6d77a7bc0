"""Issues: raise, see, act through the state machine, support and rate.

Every state change goes through `transition`: one conditional update that checks the version
and the state, applies the changes and appends the timeline entry together, so two concurrent
actions never both apply and no change is ever without its entry.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from flask import current_app
from pymongo import ReturnDocument

from .. import db, failpoints
from ..auth import has_role
from ..db import Row, iso, object_id, utcnow
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from ..files import service as files
from ..studios import service as studios
from ..wechat import WeChatError
from . import notices, text, workflow
from .models import Counter, Issue, Support, TimelineEntry
from .workflow import FINAL, OPEN, REPORTER, STAFF, SUPERVISOR, SYSTEM

log = logging.getLogger(__name__)
ANONYMOUS = "匿名居民"
TIER_RANK = {"grassroots": 0, "township": 1, "district": 2}


def _settings():
    return current_app.config["SETTINGS"]


# --- who is who --------------------------------------------------------------------------------

def _coordinator_covers(user, issue, *, any_level=False) -> bool:
    """A coordinator whose scope covers the issue, at their own tier or below (or at any tier)."""
    if not has_role(user, "coordinator") or user.scope_region_code not in issue.region_path:
        return False
    scope_tier = "district" if user.scope_region_code == issue.district_code else "township"
    return any_level or TIER_RANK[scope_tier] >= TIER_RANK[issue.level]


def _member_of_studio(user, issue) -> bool:
    return has_role(user, "member") and issue.studio_id in (user.studio_ids or [])


def capacities(user, issue) -> set[str]:
    """What the user is to this issue: staff (responsible now), supervisor, reporter."""
    found = set()
    if user is None:
        return found
    if user.id == issue.reporter_id:
        found.add(REPORTER)
    if has_role(user, "admin"):
        found |= {STAFF, SUPERVISOR}
    if _coordinator_covers(user, issue):
        found |= {STAFF, SUPERVISOR}
    if issue.level == "grassroots" and _member_of_studio(user, issue):
        found.add(STAFF)
    return found


def is_staff_viewer(user, issue) -> bool:
    """Staff who may see the whole issue (if not act on it): its studio, any covering coordinator."""
    return (has_role(user, "admin") or _member_of_studio(user, issue)
            or _coordinator_covers(user, issue, any_level=True))


def can_view(user, issue) -> bool:
    return (user is not None and (user.id == issue.reporter_id or issue.on_board
                                  or is_staff_viewer(user, issue)))


def can_view_issue_id(user, issue_id) -> bool:
    """Whether the user may see an issue's photos: its reporter and staff (not the public board,
    since WeChat's asynchronous media check is not wired in yet)."""
    issue = Issue._get_collection().find_one({"_id": issue_id}, VISIBILITY_FIELDS)
    return issue is not None and user is not None and (
        user.id == issue["reporter_id"] or is_staff_viewer(user, Row(issue)))


VISIBILITY_FIELDS = {"reporter_id": 1, "studio_id": 1, "region_path": 1, "district_code": 1, "level": 1, "on_board": 1}


def load(issue_id) -> Row:
    """One issue as a raw document (see `db.Row`), or the 404 of an unknown id."""
    raw = Issue._get_collection().find_one({"_id": object_id(issue_id)})
    if raw is None:
        raise NotFound()
    return Row(raw)


def get_visible(issue_id, user) -> Row:
    """The issue if the user may see it; otherwise the same 404 as for an unknown id."""
    issue = load(issue_id)
    if not can_view(user, issue):
        raise NotFound()
    return issue


# --- what a viewer sees ------------------------------------------------------------------------

def masked_name(name: str | None) -> str:
    name = name or "居民"
    return name[0] + "*" * min(max(len(name) - 1, 1), 2)


def _public_name(issue, actor_id, name):
    if actor_id == issue.reporter_id and issue.anonymous:
        return ANONYMOUS
    return masked_name(name)


def etag(issue) -> str:
    return f'"{issue.version}"'


def view(issue: Issue, viewer, with_timeline: bool = True) -> dict:
    """The issue shaped for the viewer: the public board never shows a phone or a full name."""
    full = viewer is not None and (viewer.id == issue.reporter_id or is_staff_viewer(viewer, issue))
    may_see_phone = viewer is not None and (viewer.id == issue.reporter_id or STAFF in capacities(viewer, issue))
    now = utcnow()
    timeline = [_shown_entry(issue, entry, full) for entry in _raw_timeline(issue) if full or not entry.get("held")] \
        if with_timeline else []
    anonymous = bool(issue.anonymous)
    reporter = ({"id": str(issue.reporter_id), "display_name": issue.reporter_name, "anonymous": anonymous}
                if full else {"id": None, "display_name": ANONYMOUS if anonymous else masked_name(issue.reporter_name),
                              "anonymous": anonymous})
    resolution = issue.resolution
    return {
        "id": str(issue.id), "number": issue.number, "title": issue.title, "description": issue.description,
        "category": issue.category, "studio_id": str(issue.studio_id), "region_code": issue.region_code,
        "township_code": issue.township_code, "district_code": issue.district_code, "level": issue.level,
        "status": issue.status, "reporter": reporter,
        "contact_phone": issue.contact_phone if may_see_phone else None,
        "location": _location(issue.location), "address": issue.address,
        "attachments": [str(a) for a in issue.attachments or ()] if full else [],
        "supporters_count": issue.supporters_count or 0, "due_at": iso(issue.due_at),
        "overdue": is_overdue(issue, now), "supervised": bool(issue.supervised),
        "consultation_id": str(issue.consultation_id) if issue.consultation_id else None,
        "owner_unit": issue.owner_unit, "met_at": iso(issue.met_at),
        "resolution": None if resolution is None else {
            "summary": resolution.summary, "owner_unit": resolution.owner_unit, "resolved_at": iso(resolution.resolved_at),
            "evidence": [str(e) for e in resolution.evidence or ()] if full else []},
        "feedback": None if issue.feedback is None else {
            "rating": issue.feedback.rating, "comment": issue.feedback.comment if full else None, "at": iso(issue.feedback.at)},
        "moderation": issue.moderation if full else None,
        "duplicate_of": str(issue.duplicate_of) if issue.duplicate_of else None,
        "reopened_count": issue.reopened_count or 0, "escalated_count": issue.escalated_count or 0,
        **({"timeline": timeline} if with_timeline else {}),
        "created_at": iso(issue.created_at), "updated_at": iso(issue.updated_at), "accepted_at": iso(issue.accepted_at),
        "first_response_at": iso(issue.first_response_at), "closed_at": iso(issue.closed_at),
        "version": issue.version,
    }


def _raw_timeline(issue) -> list[dict]:
    """The stored timeline entries as plain dicts, whether the issue is a raw row or a document."""
    if isinstance(issue, dict):
        return issue.get("timeline") or []
    return [entry.to_mongo() for entry in issue.timeline or ()]


def _shown_entry(issue, entry: dict, full: bool) -> dict:
    actor = entry.get("actor") or {}
    role = actor.get("role")
    is_resident = role == "resident"
    name = actor.get("display_name") if actor else "系统"
    if is_resident and not full:
        name = _public_name(issue, actor.get("id"), name)
    # A rating's comment is the reporter's word to the staff (unchecked by WeChat): like
    # `feedback.comment`, it is not for the public board.
    note = entry.get("note") if full or entry.get("action") != "feedback" else None
    consultation = entry.get("consultation_id")
    return {
        "at": iso(entry.get("at")), "action": entry.get("action"), "from_status": entry.get("from_status"),
        "to_status": entry.get("to_status"), "level": entry.get("level"), "note": note, "visit": bool(entry.get("visit")),
        "consultation_id": str(consultation) if consultation else None,
        "actor": {"id": str(actor["id"]) if actor.get("id") and (full or not is_resident) else None,
                  "role": role if actor else "system", "display_name": name},
    }


def _location(point):
    if not point:
        return None
    lng, lat = point["coordinates"] if isinstance(point, dict) else point
    return {"lng": lng, "lat": lat}


def is_overdue(issue, now) -> bool:
    return bool(issue.due_at and issue.status in OPEN and db.as_utc(issue.due_at) < now)


# --- raising an issue --------------------------------------------------------------------------

def next_number(now: dt.datetime) -> str:
    year = now.astimezone(ZoneInfo(_settings().tz)).year
    counter = Counter._get_collection().find_one_and_update(
        {"_id": f"issue-{year}"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    return f"{_settings().issue_number_prefix}-{year}-{counter['seq']:06d}"


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


_on_board = workflow.on_board


def _response_due(now, category) -> dt.datetime:
    return workflow.due(_settings(), now, "response", category)


def _handling_due(now, level, category) -> dt.datetime:
    return workflow.due(_settings(), now, level, category)


def create(reporter, title, description, category, studio_id, location=None, address="",
           anonymous=False, contact_phone=None, attachments=()) -> Issue:
    studio = studios.get_many([studio_id], field="studio_id")[0]
    if not studio.active:
        raise InvalidInput(errors={"studio_id": ["该工作室已停用"]})
    moderation = check_text(f"{title}\n{description}\n{address or ''}", reporter)
    now = utcnow()
    number = next_number(now)
    issue = Issue(
        number=number, title=title, description=description, category=category, studio_id=studio.id,
        region_code=studio.region_code, township_code=studio.township_code, district_code=studio.district_code,
        region_path=studio.region_path, reporter_id=reporter.id, reporter_name=reporter.display_name,
        anonymous=anonymous, contact_phone=contact_phone or reporter.phone,
        location=[location["lng"], location["lat"]] if location else None, address=address or "",
        due_at=_response_due(now, category), moderation=moderation, on_board=_on_board("submitted", moderation, None),
        search_terms=text.index_terms(title, description, number), created_at=now, updated_at=now,
        timeline=[TimelineEntry._from_son(_entry(now, reporter, "resident", "submit", None, "submitted", "grassroots", None))],
    )
    issue.validate()
    doc = issue.to_mongo().to_dict()

    def write(session):
        Issue._get_collection().insert_one(doc, session=session)
        if attachments:
            issue.attachments = files.attach(list(attachments), reporter.id, doc["_id"], session=session)
            Issue._get_collection().update_one({"_id": doc["_id"]}, {"$set": {"attachments": issue.attachments}},
                                               session=session)

    db.run_in_transaction(write)
    issue.id = doc["_id"]
    notices.issue_raised(issue)
    return issue


def _entry(at, user, role, action, from_status, to_status, level, note, **extra) -> dict:
    entry = {"at": at, "action": action, "from_status": from_status, "to_status": to_status, "level": level}
    entry["actor"] = ({"id": user.id, "role": role, "display_name": user.display_name} if user is not None
                      else {"role": "system", "display_name": "系统"})
    if note:
        entry["note"] = note
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


# --- the state machine -------------------------------------------------------------------------

def _actor_role(user, issue, caps) -> str:
    if user is None:
        return "system"
    if REPORTER in caps and not caps - {REPORTER}:
        return "resident"
    for role in ("admin", "coordinator", "member"):
        if has_role(user, role) and (role != "member" or _member_of_studio(user, issue)):
            return role
    return user.roles[0]


def transition(issue: Issue, action: str, user, *, note=None, expected_version=None, system=False,
               now=None, session=None, **params) -> Issue:
    """Apply one action; 409 when the state does not allow it, 403 when the caller may not.

    With `session` the write joins the caller's transaction, and the caller calls `announce`
    once it has committed (an aborted or retried transaction must tell nobody anything).
    """
    now = now or utcnow()
    for _attempt in range(5):
        if expected_version is not None and issue.version != expected_version:
            raise PreconditionFailed()
        rule = workflow.rule(issue.status, action)
        if rule is None:
            raise Conflict(f"当前状态（{STATUS_NAMES[issue.status]}）不能执行该操作", error="invalid_transition")
        caps = {SYSTEM} if system else capacities(user, issue)
        if not rule.who & caps:
            raise Forbidden("您无权对该议题执行此操作", error="action_forbidden")
        to_status = rule.to_status or issue.status
        changes, extra = EFFECTS.get(action, _no_effect)(issue, user, now, note=note, caps=caps, **params)
        role = "system" if system and user is None else _actor_role(user, issue, caps)
        entry = _entry(now, user, role, _timeline_action(action), issue.status, to_status,
                       changes.get("level", issue.level), note, **extra)
        changes.update(status=to_status, updated_at=now)
        if to_status == "closed":
            changes.setdefault("closed_at", now)
        changes["on_board"] = _on_board(to_status, changes.get("moderation", issue.moderation),
                                        changes.get("duplicate_of", issue.duplicate_of))
        increments = {"version": 1, **changes.pop("$inc", {})}
        failpoints.reach("issue.decided")  # tests hold one action here while another applies
        updated = db.update_and_get(
            Issue._get_collection(), {"_id": issue.id, "version": issue.version, "status": issue.status},
            {"$set": changes, "$inc": increments, "$push": {"timeline": entry}}, {"_id": issue.id}, session=session)
        if updated is not None:
            issue = Row(updated)
            if session is None:
                notices.after_transition(issue, action, note, now)
            return issue
        issue = load(issue.id)  # someone else acted first: decide again on the new state
    raise Conflict("该议题正被他人同时处理，请稍后重试", error="concurrent_update")


def announce(issue: Issue, action: str, note=None, now=None) -> None:
    """Tell the people concerned about a transition stored in a caller's transaction, after commit."""
    notices.after_transition(issue, action, note, now or utcnow())


def _timeline_action(action: str) -> str:
    return "feedback" if action.startswith("rate_") else action


def _no_effect(issue, user, now, **_):
    return {}, {}


def _accept(issue, user, now, **_):
    return {"accepted_at": now, "first_response_at": issue.first_response_at or now,
            "due_at": _handling_due(now, issue.level, issue.category)}, {}


def _reject(issue, user, now, note=None, **_):
    if not note:
        raise InvalidInput("不予受理需说明理由", errors={"note": ["请填写不予受理的理由"]})
    return {"first_response_at": issue.first_response_at or now, "due_at": None}, {}


def _escalate(issue, user, now, **_):
    level = workflow.next_level(issue.level)
    if level is None:
        raise Conflict("议题已在区级办理，不能再上报", error="already_top_tier")
    due = _handling_due(now, level, issue.category) if issue.status != "submitted" else issue.due_at
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
            changes["due_at"] = _handling_due(now, issue.level, issue.category)
        return changes, {}
    return effect


def _close(issue, user, now, caps=(), **_):
    window = dt.timedelta(days=_settings().feedback_window_days)
    resolved_at = db.as_utc(issue.resolution.resolved_at) if issue.resolution else None
    if issue.feedback is not None or resolved_at is None or now - resolved_at < window:
        raise Conflict(f"居民评价期（{window.days} 天）未满，暂不能关闭", error="feedback_window_open")
    return {}, {}


def _withdraw(issue, user, now, **_):
    return {"withdrawn_at": now, "due_at": None}, {}


def _supervise(issue, user, now, **_):
    if issue.supervised:
        raise Conflict("该议题已在督办中", error="already_supervised")
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
    if issue.moderation != "review":
        raise Conflict("该议题无需审核", error="not_held_for_review")
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
    "rate_unsatisfied": _rate("unsatisfied"), "close": _close, "withdraw": _withdraw,
    "supervise": _supervise, "comment": _comment, "approve": _approve, "duplicate": _duplicate,
    "schedule": _schedule, "unschedule": _unschedule, "consult": _consult,
}

STATUS_NAMES = {
    "submitted": "待受理", "accepted": "已受理", "scheduled": "待协商", "consulted": "已协商",
    "in_progress": "办理中", "resolved": "已办结待评价", "closed": "已关闭", "rejected": "不予受理",
    "withdrawn": "已撤回",
}


def act(issue_id, user, action, *, expected_version=None, **params) -> Issue:
    issue = get_visible(issue_id, user)
    issue = transition(issue, action, user, expected_version=expected_version, **params)
    if issue.resolution and issue.resolution.evidence and action == "resolve":
        # Evidence photos belong to the issue from now on: whoever sees the issue sees them.
        files.UploadedFile.objects(id__in=issue.resolution.evidence, issue_id=None).update(set__issue_id=issue.id)
    return issue


def give_feedback(issue_id, user, rating, comment=None, expected_version=None) -> Issue:
    issue = get_visible(issue_id, user)
    if user.id != issue.reporter_id:
        raise Forbidden("只有提出人可以评价", error="action_forbidden")
    return transition(issue, f"rate_{rating}", user, note=comment, expected_version=expected_version)


# --- supports (附议) -----------------------------------------------------------------------------

def support(issue_id, user) -> dict:
    issue = get_visible(issue_id, user)
    if user.id == issue.reporter_id:
        raise Conflict("不能附议自己提出的议题", error="own_issue")
    if issue.status in FINAL or not issue.on_board:
        raise Conflict("该议题已结束，不能附议", error="issue_closed")

    def write(session):
        # An upsert, not an insert: a duplicate-key error would abort the whole transaction.
        added = Support._get_collection().update_one(
            {"issue_id": issue.id, "user_id": user.id}, {"$setOnInsert": {"created_at": utcnow()}},
            upsert=True, session=session)
        if added.upserted_id is not None:  # one per user: count only a new support
            Issue._get_collection().update_one({"_id": issue.id}, {"$inc": {"supporters_count": 1}}, session=session)

    db.run_in_transaction(write)
    return _support_state(issue.id, user)


def withdraw_support(issue_id, user) -> dict:
    issue = get_visible(issue_id, user)

    def write(session):
        removed = Support._get_collection().delete_one({"issue_id": issue.id, "user_id": user.id}, session=session)
        if removed.deleted_count:
            Issue._get_collection().update_one({"_id": issue.id}, {"$inc": {"supporters_count": -1}}, session=session)

    db.run_in_transaction(write)
    return _support_state(issue.id, user)


def _support_state(issue_id, user) -> dict:
    count = Issue._get_collection().find_one({"_id": issue_id}, {"supporters_count": 1})["supporters_count"]
    supported = Support.objects(issue_id=issue_id, user_id=user.id).count() == 1
    return {"issue_id": str(issue_id), "supported": supported, "supporters_count": count}


# --- finding issues ----------------------------------------------------------------------------

NEWEST = [("created_at", -1), ("_id", -1)]
# The index behind each kind of list (see `search` for when it is named to the planner).
INDEX_FOR = {
    "text": [("search_terms", 1)],
    "board": [("studio_id", 1), ("on_board", 1), *NEWEST],
    "reporter": [("reporter_id", 1), *NEWEST],
    "studio": [("studio_id", 1), *NEWEST],
    "region": [("region_path", 1), *NEWEST],
    "all": NEWEST,
}


def search(user, board=False, mine=False, studio=None, region=None, status=None, level=None,
           category=None, overdue=None, supervised=None, q=None):
    """Issues the caller may list, newest first, each kind of list on its own index."""
    query: dict = {}
    if board:
        if not studio:
            raise InvalidInput(errors={"studio": ["查看公开议题需指定工作室"]})
        query.update(studio_id=object_id(studio), on_board=True)
        index = "board"
    elif mine or not has_role(user, "admin", "coordinator", "member"):
        query["reporter_id"] = user.id
        index = "reporter"
    elif has_role(user, "admin"):
        index = "studio" if studio else "region" if region else "all"
    elif has_role(user, "coordinator"):
        query["region_path"] = user.scope_region_code
        index = "region"
    else:
        query["studio_id"] = {"$in": list(user.studio_ids)}
        index = "studio"
    conditions = []
    if studio and not board:
        conditions.append({"studio_id": object_id(studio)})
    if region:
        conditions.append({"region_path": region})
    if status:
        conditions.append({"status": {"$in": list(status)}})
    if level:
        conditions.append({"level": level})
    if category:
        conditions.append({"category": category})
    if supervised is not None:
        conditions.append({"supervised": supervised})
    if overdue is not None:
        now = utcnow()
        conditions.append({"status": {"$in": list(OPEN)}, "due_at": {"$lt": now}} if overdue
                          else {"$or": [{"status": {"$nin": list(OPEN)}}, {"due_at": None}, {"due_at": {"$gte": now}}]})
    if q:
        terms = text.query_terms(q)
        if not terms:
            raise InvalidInput(errors={"q": ["请输入要搜索的文字"]})
        conditions.append({"search_terms": {"$all": terms}})
        index = "text"
    if conditions:
        query["$and"] = conditions
    # Lists show no timeline: leaving it (and the search terms) in the database keeps pages light.
    found = Issue.objects(__raw__=query).exclude("timeline", "search_terms").order_by("-created_at", "-id")
    # With filters beyond the index's own fields, name the index: SecantusDB's planner uses an index
    # only when it covers every field. Without them the planner finds it and walks just its range
    # (SecantusDB walks a hinted index whole).
    return (found.hint(INDEX_FOR[index]) if conditions else found).as_pymongo()


def similar(user, studio_id, title, limit=5) -> list[tuple[Issue, float]]:
    """Open issues on the studio's board that look like the same problem, most alike first."""
    studio = studios.get(studio_id)
    terms = text.ngrams(title)
    if not terms:
        return []
    candidates = Issue.objects(studio_id=studio.id, on_board=True, status__in=list(OPEN) + ["resolved"],
                               search_terms__in=terms).order_by("-created_at").limit(200)
    scored = [(issue, text.similarity(terms, text.ngrams(issue.title))) for issue in candidates]
    scored = [(issue, round(score, 2)) for issue, score in scored if score >= 0.3]
    return sorted(scored, key=lambda pair: -pair[1])[:limit]


def board_issues(region=None, numbers=None, categories=None, statuses=None, created_from=None, created_to=None):
    """Public-board issues across a region subtree, newest first (for outside readers: Open311)."""
    query: dict = {"on_board": True}
    index = INDEX_FOR["all"]
    if region:
        query["region_path"] = region
        index = INDEX_FOR["region"]
    if numbers is not None:
        query["number"] = {"$in": list(numbers)}
        index = [("number", 1)]
    if categories:
        query["category"] = {"$in": list(categories)}
    if statuses:
        query["status"] = {"$in": list(statuses)}
    if created_from or created_to:
        query["created_at"] = {key: value for key, value in (("$gte", created_from), ("$lte", created_to)) if value}
    return Issue.objects(__raw__=query).exclude("search_terms").order_by("-created_at", "-id").hint(index)


# --- personal data (PIPL) ------------------------------------------------------------------------

FORGOTTEN = "已注销用户"


def personal_data(user) -> dict:
    """What the issues feature holds about a person: what they raised, supported and rated."""
    raised = Issue.objects(reporter_id=user.id).order_by("-created_at", "-id").hint(INDEX_FOR["reporter"])
    supported = Support.objects(user_id=user.id)
    return {
        "issues_raised": [view(issue, user) for issue in raised],
        "supports": [{"issue_id": str(s.issue_id), "at": s.created_at} for s in supported],
    }


def forget_reporter(user, session=None) -> int:
    """The issues stay on the public record; the person behind them does not."""
    collection = Issue._get_collection()
    result = collection.update_many(
        {"reporter_id": user.id},
        {"$set": {"reporter_name": FORGOTTEN, "anonymous": True, "contact_phone": None,
                  # Residents act only on their own issues, so their timeline entries are all here.
                  "timeline.$[mine].actor.display_name": FORGOTTEN}},
        array_filters=[{"mine.actor.id": user.id}], session=session)
    return result.modified_count
