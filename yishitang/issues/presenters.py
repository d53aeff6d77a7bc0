"""An issue shaped for one viewer: the public board never shows a phone, a photo or a full name."""

from __future__ import annotations

from .. import db
from ..db import iso, utcnow
from . import access as access_rules
from .workflow import OPEN

ANONYMOUS = "匿名居民"


def masked_name(name: str | None) -> str:
    name = name or "居民"
    return name[0] + "*" * min(max(len(name) - 1, 1), 2)


def is_overdue(issue, now) -> bool:
    return bool(issue.due_at and issue.status in OPEN and db.as_utc(issue.due_at) < now)


def view(issue, viewer, with_timeline: bool = True, access=None) -> dict:
    """The issue shaped for the viewer (`access`: what they are to it, when already decided)."""
    access = access or access_rules.of(viewer, issue)
    full = access.sees_all
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
        "attachments": [str(a) for a in issue.attachments or ()] if full else [],
        "supporters_count": issue.supporters_count or 0, "due_at": iso(issue.due_at),
        "overdue": is_overdue(issue, utcnow()), "supervised": bool(issue.supervised),
        "consultation_id": str(issue.consultation_id) if issue.consultation_id else None,
        "owner_unit": issue.owner_unit, "met_at": iso(issue.met_at),
        "resolution": _resolution(issue.resolution, full),
        "feedback": None if issue.feedback is None else {
            "rating": issue.feedback.rating, "comment": issue.feedback.comment if full else None, "at": iso(issue.feedback.at)},
        "moderation": issue.moderation if full else None,
        "duplicate_of": str(issue.duplicate_of) if issue.duplicate_of else None,
        "reopened_count": issue.reopened_count or 0, "escalated_count": issue.escalated_count or 0,
        **({"timeline": _timeline(issue, full)} if with_timeline else {}),
        "created_at": iso(issue.created_at), "updated_at": iso(issue.updated_at), "accepted_at": iso(issue.accepted_at),
        "first_response_at": iso(issue.first_response_at), "closed_at": iso(issue.closed_at),
        "version": issue.version,
    }


def _resolution(resolution, full: bool) -> dict | None:
    if resolution is None:
        return None
    return {"summary": resolution.summary, "owner_unit": resolution.owner_unit, "resolved_at": iso(resolution.resolved_at),
            "evidence": [str(e) for e in resolution.evidence or ()] if full else []}


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
