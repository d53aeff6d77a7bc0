"""An issue shaped for one viewer: the public board never shows a phone, a photo or a full name."""

from __future__ import annotations

from .. import config, db
from ..auth import has_role
from ..clock import shown
from ..db import utcnow
from ..files import service as files
from . import access as access_rules
from . import queries, workflow
from .workflow import FINAL, OPEN

ANONYMOUS = "匿名居民"


def masked_name(name: str | None) -> str:
    name = name or "居民"
    return name[0] + "*" * min(max(len(name) - 1, 1), 2)


def is_overdue(issue, now) -> bool:
    return bool(issue.due_at and issue.status in OPEN and db.as_utc(issue.due_at) < now)


def page(issues, viewer) -> list[dict]:
    """A list page shaped for the viewer: supports and photos read once for the whole page."""
    accesses = [access_rules.of(viewer, issue) for issue in issues]
    supported = queries.supported_by(viewer, [issue.id for issue in issues])
    photos = files.describe_many([(issue.attachments, not seen.sees_all) for issue, seen in zip(issues, accesses)])
    return [view(issue, viewer, with_timeline=False, access=seen, supported=issue.id in supported, photos=found)
            for issue, seen, found in zip(issues, accesses, photos)]


def allowed_actions(issue, viewer, access) -> list[str]:
    """What the viewer may do to the issue now, from the table that decides (see workflow.allowed_actions)."""
    if viewer is None or not access.visible:
        return []
    found = workflow.allowed_actions(issue, access.capacities, utcnow(), config.settings())
    if has_role(viewer, "resident") and not access.reporter and issue.on_board and issue.status not in FINAL:
        found.append("support")  # 附议: a neighbour, on the public board, while it is not over
    return found


def view(issue, viewer, with_timeline: bool = True, access=None, supported=None, photos=None) -> dict:
    """The issue shaped for the viewer (`access`: what they are to it, when already decided;
    `supported`, `photos`: read for a whole page at once by `page`)."""
    access = access or access_rules.of(viewer, issue)
    full = access.sees_all
    if supported is None:
        supported = viewer is not None and issue.id in queries.supported_by(viewer, [issue.id])
    anonymous = bool(issue.anonymous)
    reporter = ({"id": str(issue.reporter_id), "display_name": issue.reporter_name, "anonymous": anonymous}
                if full else {"id": None, "display_name": ANONYMOUS if anonymous else masked_name(issue.reporter_name),
                              "anonymous": anonymous})
    return {
        "id": str(issue.id), "number": issue.number, "title": issue.title, "description": issue.description,
        "category": issue.category, "studio_id": str(issue.studio_id), "region_code": issue.region_code,
        "township_code": issue.township_code, "district_code": issue.district_code, "level": issue.level,
        "status": issue.status, "reporter": reporter,
        "contact_phone": issue.contact_phone if access.sees_phone else None,
        "location": _location(issue.location), "address": issue.address,
        "attachments": photos if photos is not None else files.describe(issue.attachments or (), public=not full),
        "supporters_count": issue.supporters_count or 0, "due_at": shown(issue.due_at),
        "overdue": is_overdue(issue, utcnow()), "supervised": bool(issue.supervised),
        "consultation_id": str(issue.consultation_id) if issue.consultation_id else None,
        "owner_unit": issue.owner_unit, "met_at": shown(issue.met_at),
        "resolution": _resolution(issue.resolution, full),
        "feedback": None if issue.feedback is None else {
            "rating": issue.feedback.rating, "comment": issue.feedback.comment if full else None, "at": shown(issue.feedback.at)},
        "moderation": issue.moderation if full else None,
        "duplicate_of": str(issue.duplicate_of) if issue.duplicate_of else None,
        "reopened_count": issue.reopened_count or 0, "escalated_count": issue.escalated_count or 0,
        **({"timeline": _timeline(issue, full)} if with_timeline else {}),
        "created_at": shown(issue.created_at), "updated_at": shown(issue.updated_at), "accepted_at": shown(issue.accepted_at),
        "first_response_at": shown(issue.first_response_at), "closed_at": shown(issue.closed_at),
        "version": issue.version,
        "allowed_actions": allowed_actions(issue, viewer, access), "supported_by_me": bool(supported),
    }


def _resolution(resolution, full: bool) -> dict | None:
    if resolution is None:
        return None
    return {"summary": resolution.summary, "owner_unit": resolution.owner_unit, "resolved_at": shown(resolution.resolved_at),
            "evidence": files.describe(resolution.evidence or (), public=not full)}


def _timeline(issue, full: bool) -> list[dict]:
    return [_shown_entry(issue, entry, full) for entry in _raw_timeline(issue) if full or not entry.get("held")]


def _raw_timeline(issue) -> list[dict]:
    """The stored timeline entries as plain dicts, whether the issue is a raw row or a document."""
    if isinstance(issue, dict):
        return issue.get("timeline") or []
    return [entry.to_mongo() for entry in issue.timeline or ()]


def _public_name(issue, actor_id, name):
    if actor_id == issue.reporter_id and issue.anonymous:
        return ANONYMOUS
    return masked_name(name)


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
        "at": shown(entry.get("at")), "action": entry.get("action"), "from_status": entry.get("from_status"),
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
